//! Block chunk segment files `chunks/000001`, … (docs/format/chunks.md), byte-compatible with Prometheus.
//!
//! Each file: magic `0x85BD40DD` (u32 BE), version 1, 3 zero bytes, then chunks
//! `len(data) <uvarint> | encoding <1b> | data | crc32c(encoding ‖ data) <u32 BE>`. A chunk reference is
//! `file index (0-based) << 32 | offset`.

use crate::chunkenc::{ChunkBytes, ENC_XOR};
use crate::encoding::{crc32c, put_uvarint, uvarint, DecodeError};
use memmap2::Mmap;
use model::StorageError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const MAGIC_CHUNKS: u32 = 0x85BD_40DD;
pub const CHUNKS_FORMAT_V1: u8 = 1;
pub const SEGMENT_HEADER_SIZE: u64 = 8;
pub const DEFAULT_CHUNK_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;

fn werr(path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

pub struct ChunkWriter {
    dir: PathBuf,
    segment_size: u64,
    files: u32,
    cur: Option<(BufWriter<File>, PathBuf)>,
    pos: u64,
    buf: Vec<u8>,
}

impl ChunkWriter {
    pub fn create(dir: &Path, segment_size: u64) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| werr(dir, e))?;
        Ok(ChunkWriter { dir: dir.to_path_buf(), segment_size, files: 0, cur: None, pos: 0, buf: Vec::new() })
    }

    fn finish_current(&mut self) -> Result<(), StorageError> {
        if let Some((mut f, p)) = self.cur.take() {
            f.flush().map_err(|e| werr(&p, e))?;
            f.get_ref().sync_all().map_err(|e| werr(&p, e))?;
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<(), StorageError> {
        self.finish_current()?;
        self.files += 1;
        let p = self.dir.join(format!("{:06}", self.files));
        let f = File::create(&p).map_err(|e| werr(&p, e))?;
        let mut f = BufWriter::with_capacity(1 << 20, f);
        let mut h = [0u8; 8];
        h[..4].copy_from_slice(&MAGIC_CHUNKS.to_be_bytes());
        h[4] = CHUNKS_FORMAT_V1;
        f.write_all(&h).map_err(|e| werr(&p, e))?;
        self.cur = Some((f, p));
        self.pos = SEGMENT_HEADER_SIZE;
        Ok(())
    }

    /// Writes one chunk and returns its reference.
    pub fn write_chunk(&mut self, encoding: u8, data: &[u8]) -> Result<u64, StorageError> {
        let size = 10 + 1 + data.len() as u64 + 4;
        if self.cur.is_none() || (self.pos + size > self.segment_size && self.pos > SEGMENT_HEADER_SIZE) {
            self.cut()?;
        }
        let r = ((self.files as u64 - 1) << 32) | self.pos;
        self.buf.clear();
        put_uvarint(&mut self.buf, data.len() as u64);
        self.buf.push(encoding);
        self.buf.extend_from_slice(data);
        let crc = crc32c(&self.buf[self.buf.len() - data.len() - 1..]);
        self.buf.extend_from_slice(&crc.to_be_bytes());
        let Some((f, p)) = self.cur.as_mut() else { return Err(StorageError::Other("BUG: no chunk segment".into())) };
        f.write_all(&self.buf).map_err(|e| werr(p, e))?;
        self.pos += self.buf.len() as u64;
        Ok(r)
    }

    pub fn finish(mut self) -> Result<(), StorageError> {
        self.finish_current()
    }
}

/// Memory-mapped chunk segments of one block.
pub struct ChunkReader {
    segs: Vec<Arc<Mmap>>,
    names: Vec<String>,
    size: u64,
}

impl ChunkReader {
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let mut files: Vec<(u64, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| werr(dir, e))? {
            let e = e.map_err(|e| werr(dir, e))?;
            let name = e.file_name();
            let Some(n) = name.to_str().and_then(|s| s.parse::<u64>().ok()) else { continue };
            files.push((n, e.path()));
        }
        files.sort();
        let mut segs = Vec::new();
        let mut names = Vec::new();
        let mut size = 0;
        for (_, p) in files {
            let f = File::open(&p).map_err(|e| werr(&p, e))?;
            // SAFETY: block files are immutable after creation and mapped read-only.
            let m = unsafe { Mmap::map(&f) }.map_err(|e| werr(&p, e))?;
            let name = p.display().to_string();
            if m.len() < SEGMENT_HEADER_SIZE as usize
                || u32::from_be_bytes([m[0], m[1], m[2], m[3]]) != MAGIC_CHUNKS
                || m[4] != CHUNKS_FORMAT_V1
            {
                return Err(DecodeError { offset: 0, reason: "invalid chunk segment header" }.corrupt(&name));
            }
            size += m.len() as u64;
            segs.push(Arc::new(m));
            names.push(name);
        }
        Ok(ChunkReader { segs, names, size })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The chunk at `r`, CRC-verified: (encoding, bytes).
    pub fn chunk(&self, r: u64) -> Result<(u8, ChunkBytes), StorageError> {
        let seg = (r >> 32) as usize;
        let off = (r & 0xffff_ffff) as usize;
        let Some(m) = self.segs.get(seg) else {
            return Err(StorageError::Corrupt {
                location: format!("chunk ref {r:#x}"),
                reason: format!("segment index {seg} out of range"),
            });
        };
        let name = &self.names[seg];
        let fail = |reason| DecodeError { offset: off, reason }.corrupt(name);
        if off < SEGMENT_HEADER_SIZE as usize || off >= m.len() {
            return Err(fail("chunk offset out of range"));
        }
        let (len, n) = uvarint(&m[off..]).ok_or_else(|| fail("invalid chunk length"))?;
        let enc_at = off + n;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| enc_at.checked_add(1 + l + 4))
            .filter(|&e| e <= m.len())
            .ok_or_else(|| fail("chunk exceeds segment"))?;
        let data_end = end - 4;
        let crc = u32::from_be_bytes([m[data_end], m[data_end + 1], m[data_end + 2], m[data_end + 3]]);
        if crc32c(&m[enc_at..data_end]) != crc {
            return Err(fail("chunk checksum mismatch"));
        }
        Ok((m[enc_at], ChunkBytes::Mapped(m.clone(), enc_at + 1, data_end)))
    }

    /// An XOR chunk, or None for other encodings (native histograms are not supported and are skipped).
    pub fn xor_chunk(&self, r: u64) -> Result<Option<ChunkBytes>, StorageError> {
        let (enc, b) = self.chunk(r)?;
        Ok((enc == ENC_XOR).then_some(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_cut_segments() {
        let td = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::create(td.path(), 64).unwrap();
        let refs: Vec<u64> = (0..5u8).map(|i| w.write_chunk(ENC_XOR, &[i; 20]).unwrap()).collect();
        w.finish().unwrap();
        assert_eq!(refs[0], 8);
        assert!(refs[4] >> 32 >= 1, "small segment size forces new files");
        let r = ChunkReader::open(td.path()).unwrap();
        for (i, rf) in refs.iter().enumerate() {
            let (enc, b) = r.chunk(*rf).unwrap();
            assert_eq!(enc, ENC_XOR);
            assert_eq!(b.as_slice(), &[i as u8; 20][..]);
        }
        assert!(r.chunk(9).is_err());
        assert!(r.chunk(99 << 32).is_err());
    }
}
