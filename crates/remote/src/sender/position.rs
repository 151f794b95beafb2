//! The position file of one queue: where in the WAL the sender has everything before acknowledged.
//! Layout (docs/format/remote.md, "Sender"): 32 bytes, all integers big-endian:
//!
//! ```text
//! magic "IGRW" <4b> | version <1b> = 1 | reserved <3b> = 0 | segment <4b> | offset <8b> | acked_max_t <8b> | crc32c <4b>
//! ```
//! The CRC covers the first 28 bytes. The file is replaced atomically (write `.tmp`, fsync, rename).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

pub(crate) const MAGIC: [u8; 4] = *b"IGRW";
pub(crate) const VERSION: u8 = 1;
pub(crate) const SIZE: usize = 32;

/// A WAL position: every record ending at or before (`segment`, `offset`) has been acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub segment: u32,
    /// File offset just past the last acknowledged record of `segment`.
    pub offset: u64,
    /// Highest sample timestamp among the acknowledged records (`i64::MIN` if none). Used only when the
    /// segment is gone after a restart, to pick samples out of the WAL checkpoint.
    pub acked_max_t: i64,
}

impl Position {
    pub fn encode(&self) -> [u8; SIZE] {
        let mut b = [0u8; SIZE];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[8..12].copy_from_slice(&self.segment.to_be_bytes());
        b[12..20].copy_from_slice(&self.offset.to_be_bytes());
        b[20..28].copy_from_slice(&self.acked_max_t.to_be_bytes());
        let crc = crc32c::crc32c(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Position, String> {
        if b.len() != SIZE {
            return Err(format!("position file has {} bytes, want {SIZE}", b.len()));
        }
        if b[0..4] != MAGIC {
            return Err("bad magic".into());
        }
        if b[4] != VERSION {
            return Err(format!("unsupported version {}", b[4]));
        }
        let crc = u32::from_be_bytes([b[28], b[29], b[30], b[31]]);
        if crc32c::crc32c(&b[..28]) != crc {
            return Err("checksum mismatch".into());
        }
        let be4 = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        let be8 = |s: &[u8]| u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
        Ok(Position { segment: be4(&b[8..12]), offset: be8(&b[12..20]), acked_max_t: be8(&b[20..28]) as i64 })
    }
}

/// Reads a position file. A missing file is `None`; an unreadable one is logged and treated as missing (the
/// queue then starts at the end of the WAL, which loses at most what was unsent, never sends twice).
pub fn load(path: &Path) -> io::Result<Option<Position>> {
    match fs::read(path) {
        Ok(b) => match Position::decode(&b) {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring damaged remote-write position file");
                Ok(None)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn store(path: &Path, p: &Position) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("pos.tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&p.encode())?;
        f.sync_data()?;
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage() {
        let td = tempfile::tempdir().unwrap();
        let path = td.path().join("rw").join("q.pos");
        assert_eq!(load(&path).unwrap(), None);
        let p = Position { segment: 7, offset: 123_456, acked_max_t: -5 };
        store(&path, &p).unwrap();
        assert_eq!(load(&path).unwrap(), Some(p));
        let mut b = fs::read(&path).unwrap();
        for i in 0..SIZE {
            b[i] ^= 0x10;
            assert!(Position::decode(&b).is_err(), "flip at {i} undetected");
            b[i] ^= 0x10;
        }
        fs::write(&path, &b[..10]).unwrap();
        assert_eq!(load(&path).unwrap(), None);
    }
}
