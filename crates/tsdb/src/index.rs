//! Block index, format v2, byte-compatible with Prometheus (docs/format/index.md).
//!
//! File order: header (magic `0xBAAAD700`, version 2), symbol table, series (16-byte aligned; a series' id is
//! its offset / 16), label indices, postings (4-byte aligned; the all-series list under the empty label pair
//! comes first), label offset table, postings offset table, TOC (6 × u64 BE + CRC32C). Every section carries
//! a CRC32C of its body. The writer enforces this order through [`IndexWriter`]'s stage checks; the reader
//! verifies the TOC, symbol table and offset tables when opening, and each series and postings list when read.

use crate::encoding::{crc32c, put_be32, put_be64, put_uvarint, put_uvarint_str, put_varint, Decbuf, DecodeError};
use crate::postings::{union_many, PostingsIndex};
use hashbrown::HashMap;
use memmap2::Mmap;
use model::{Labels, StorageError};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const MAGIC_INDEX: u32 = 0xBAAA_D700;
pub const INDEX_VERSION_V2: u8 = 2;
const HEADER_LEN: usize = 5;
const TOC_LEN: usize = 6 * 8 + 4;
const SERIES_ALIGN: u64 = 16;

/// One chunk entry of a series in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    pub mint: i64,
    pub maxt: i64,
    /// `segment index << 32 | offset` into the block's chunk files.
    pub r: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Symbols,
    Series,
    Done,
}

/// Streams an index to a file. Call [`IndexWriter::add_symbols`] once, then [`IndexWriter::add_series`] in
/// label order, then [`IndexWriter::finish`].
pub struct IndexWriter {
    f: BufWriter<File>,
    path: PathBuf,
    pos: u64,
    stage: Stage,
    toc: Toc,
    symbols: Vec<Box<str>>,
    symbol_ids: HashMap<Box<str>, u32>,
    /// (name symbol, value symbol) → series ids.
    postings: HashMap<(u32, u32), Vec<u32>>,
    all: Vec<u32>,
    last_series: Option<Labels>,
    last_chunk_ref: u64,
    buf: Vec<u8>,
}

fn werr(path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn order_err(msg: String) -> StorageError {
    StorageError::Other(format!("index writer: {msg}"))
}

impl IndexWriter {
    pub fn create(path: &Path) -> Result<Self, StorageError> {
        let f = File::create(path).map_err(|e| werr(path, e))?;
        let mut w = IndexWriter {
            f: BufWriter::with_capacity(1 << 20, f),
            path: path.to_path_buf(),
            pos: 0,
            stage: Stage::Symbols,
            toc: Toc::default(),
            symbols: Vec::new(),
            symbol_ids: HashMap::new(),
            postings: HashMap::new(),
            all: Vec::new(),
            last_series: None,
            last_chunk_ref: 0,
            buf: Vec::new(),
        };
        let mut h = Vec::with_capacity(HEADER_LEN);
        put_be32(&mut h, MAGIC_INDEX);
        h.push(INDEX_VERSION_V2);
        w.write(&h)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), StorageError> {
        self.f.write_all(b).map_err(|e| werr(&self.path, e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, align: u64) -> Result<(), StorageError> {
        let rem = self.pos % align;
        if rem != 0 {
            let z = [0u8; 16];
            self.write(&z[..(align - rem) as usize])?;
        }
        Ok(())
    }

    /// Writes the symbol table: every label name and value used, sorted and unique.
    pub fn add_symbols<'a>(&mut self, syms: impl IntoIterator<Item = &'a str>) -> Result<(), StorageError> {
        if self.stage != Stage::Symbols {
            return Err(order_err("symbols must be added first and once".into()));
        }
        self.toc.symbols = self.pos;
        let mut body = Vec::new();
        body.extend_from_slice(&[0; 4]); // #symbols, patched below
        let mut n = 0u32;
        for s in syms {
            if let Some(last) = self.symbols.last() {
                if **last >= *s {
                    return Err(order_err(format!("symbol {s:?} out of order")));
                }
            }
            put_uvarint_str(&mut body, s);
            self.symbols.push(s.into());
            self.symbol_ids.insert(s.into(), n);
            n += 1;
        }
        body[..4].copy_from_slice(&n.to_be_bytes());
        let len = u32::try_from(body.len()).map_err(|_| order_err("symbol table exceeds 4 GiB".into()))?;
        let crc = crc32c(&body);
        self.write(&len.to_be_bytes())?;
        self.write(&body)?;
        self.write(&crc.to_be_bytes())?;
        self.stage = Stage::Series;
        self.toc.series = self.pos;
        Ok(())
    }

    /// Adds a series; label sets must increase and chunks be sorted, non-overlapping, with increasing refs.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<(), StorageError> {
        if self.stage != Stage::Series {
            return Err(order_err("series added outside the series stage".into()));
        }
        if self.last_series.as_ref().is_some_and(|l| labels <= l) {
            return Err(order_err(format!("series {labels} out of order")));
        }
        let mut last_ref = self.last_chunk_ref;
        for (i, c) in chunks.iter().enumerate() {
            if c.r < last_ref {
                return Err(order_err(format!("unsorted chunk reference {} after {last_ref}", c.r)));
            }
            if c.maxt < c.mint || (i > 0 && c.mint <= chunks[i - 1].maxt) {
                return Err(order_err(format!("bad chunk time range for {labels}")));
            }
            last_ref = c.r;
        }
        self.pad(SERIES_ALIGN)?;
        let id = u32::try_from(self.pos / SERIES_ALIGN).map_err(|_| order_err("index exceeds 64 GiB".into()))?;
        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        put_uvarint(&mut b, labels.len() as u64);
        for l in labels.iter() {
            let (Some(&n), Some(&v)) = (self.symbol_ids.get(l.name), self.symbol_ids.get(l.value)) else {
                return Err(order_err(format!("symbol of {labels} missing from the symbol table")));
            };
            put_uvarint(&mut b, n as u64);
            put_uvarint(&mut b, v as u64);
            self.postings.entry((n, v)).or_default().push(id);
        }
        self.all.push(id);
        put_uvarint(&mut b, chunks.len() as u64);
        if let Some(c0) = chunks.first() {
            put_varint(&mut b, c0.mint);
            put_uvarint(&mut b, (c0.maxt - c0.mint) as u64);
            put_uvarint(&mut b, c0.r);
            let (mut t0, mut r0) = (c0.maxt, c0.r as i64);
            for c in &chunks[1..] {
                put_uvarint(&mut b, (c.mint - t0) as u64);
                put_uvarint(&mut b, (c.maxt - c.mint) as u64);
                t0 = c.maxt;
                put_varint(&mut b, c.r as i64 - r0);
                r0 = c.r as i64;
            }
        }
        let mut head = Vec::with_capacity(10);
        put_uvarint(&mut head, b.len() as u64);
        let crc = crc32c(&b);
        self.write(&head)?;
        self.write(&b)?;
        self.write(&crc.to_be_bytes())?;
        self.buf = b;
        self.last_series = Some(labels.clone());
        self.last_chunk_ref = last_ref;
        Ok(())
    }

    /// Writes a `len <4b> | body | crc32c(body)` section.
    fn write_section(&mut self, body: &[u8]) -> Result<(), StorageError> {
        let len = u32::try_from(body.len()).map_err(|_| order_err("section exceeds 4 GiB".into()))?;
        self.write(&len.to_be_bytes())?;
        self.write(body)?;
        self.write(&crc32c(body).to_be_bytes())
    }

    /// Writes label indices, postings, offset tables and the TOC; flushes and fsyncs the file.
    pub fn finish(mut self) -> Result<(), StorageError> {
        if self.stage == Stage::Symbols {
            self.add_symbols(std::iter::empty())?;
        }
        if self.stage != Stage::Series {
            return Err(order_err("finish called twice".into()));
        }
        self.stage = Stage::Done;
        // name symbol → sorted value symbols (symbol order is string order).
        let mut by_name: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for &(n, v) in self.postings.keys() {
            by_name.entry(n).or_default().push(v);
        }
        for vals in by_name.values_mut() {
            vals.sort_unstable();
        }

        // Label indices (unused by modern readers, written for compatibility with older tools).
        self.toc.label_indices = self.pos;
        let mut label_index_offsets: Vec<(u32, u64)> = Vec::new();
        for (&n, vals) in &by_name {
            self.pad(4)?;
            label_index_offsets.push((n, self.pos));
            let mut b = Vec::with_capacity(8 + 4 * vals.len());
            put_be32(&mut b, 1);
            put_be32(&mut b, vals.len() as u32);
            for &v in vals {
                put_be32(&mut b, v);
            }
            self.write_section(&b)?;
        }

        // Postings: the all-series list first, then by name and value.
        self.pad(4)?;
        self.toc.postings = self.pos;
        let mut postings_offsets: Vec<(Option<(u32, u32)>, u64)> = Vec::new();
        let all = std::mem::take(&mut self.all);
        postings_offsets.push((None, self.pos));
        self.write_postings(&all)?;
        for (&n, vals) in &by_name {
            for &v in vals {
                let list = self.postings.remove(&(n, v)).unwrap_or_default();
                self.pad(4)?;
                postings_offsets.push((Some((n, v)), self.pos));
                self.write_postings(&list)?;
            }
        }

        // Label offset table.
        self.toc.label_indices_table = self.pos;
        let mut b = Vec::new();
        put_be32(&mut b, label_index_offsets.len() as u32);
        for (n, off) in &label_index_offsets {
            put_uvarint(&mut b, 1);
            put_uvarint_str(&mut b, &self.symbols[*n as usize]);
            put_uvarint(&mut b, *off);
        }
        self.write_section(&b)?;

        // Postings offset table.
        self.toc.postings_table = self.pos;
        let mut b = Vec::new();
        put_be32(&mut b, postings_offsets.len() as u32);
        for (k, off) in &postings_offsets {
            put_uvarint(&mut b, 2);
            match k {
                None => {
                    put_uvarint_str(&mut b, "");
                    put_uvarint_str(&mut b, "");
                }
                Some((n, v)) => {
                    put_uvarint_str(&mut b, &self.symbols[*n as usize]);
                    put_uvarint_str(&mut b, &self.symbols[*v as usize]);
                }
            }
            put_uvarint(&mut b, *off);
        }
        self.write_section(&b)?;

        let mut t = Vec::with_capacity(TOC_LEN);
        for x in [
            self.toc.symbols,
            self.toc.series,
            self.toc.label_indices,
            self.toc.label_indices_table,
            self.toc.postings,
            self.toc.postings_table,
        ] {
            put_be64(&mut t, x);
        }
        let crc = crc32c(&t);
        t.extend_from_slice(&crc.to_be_bytes());
        self.write(&t)?;
        self.f.flush().map_err(|e| werr(&self.path, e))?;
        self.f.get_ref().sync_all().map_err(|e| werr(&self.path, e))?;
        Ok(())
    }

    fn write_postings(&mut self, ids: &[u32]) -> Result<(), StorageError> {
        let mut b = Vec::with_capacity(4 + 4 * ids.len());
        put_be32(&mut b, ids.len() as u32);
        for &id in ids {
            put_be32(&mut b, id);
        }
        self.write_section(&b)
    }
}

/// Body of a `len <4b> | body | crc` section at `off`, verified, with its absolute offset.
fn section<'a>(b: &'a [u8], path: &str, off: u64) -> Result<(&'a [u8], usize), StorageError> {
    let off = usize::try_from(off).unwrap_or(usize::MAX);
    let fail = |reason| DecodeError { offset: off, reason }.corrupt(path);
    if off.checked_add(4).is_none_or(|e| e > b.len()) {
        return Err(fail("section offset out of range"));
    }
    let len = u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as usize;
    let start = off + 4;
    if start.checked_add(len).and_then(|x| x.checked_add(4)).is_none_or(|e| e > b.len()) {
        return Err(fail("section exceeds file"));
    }
    let body = &b[start..start + len];
    let crc = u32::from_be_bytes([b[start + len], b[start + len + 1], b[start + len + 2], b[start + len + 3]]);
    if crc32c(body) != crc {
        return Err(fail("section checksum mismatch"));
    }
    Ok((body, start))
}

/// Reads an index file through a memory map.
pub struct IndexReader {
    b: Arc<Mmap>,
    path: Arc<str>,
    toc: Toc,
    symbol_offsets: Vec<u32>,
    /// name → (value, offset of its postings list), values sorted. The all-series list is under "".
    postings: BTreeMap<String, Vec<(String, u64)>>,
}

impl IndexReader {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let f = File::open(path).map_err(|e| werr(path, e))?;
        // SAFETY: blocks are immutable once renamed into place; nothing in this process writes to the file,
        // and the mapping is read-only.
        let m = unsafe { Mmap::map(&f) }.map_err(|e| werr(path, e))?;
        Self::from_mmap(Arc::new(m), Arc::from(path.display().to_string()))
    }

    /// An index held in memory (e.g. fetched from object storage, or fuzz input). `name` is used in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self, StorageError> {
        let name: Arc<str> = Arc::from(name);
        if bytes.len() < HEADER_LEN + TOC_LEN {
            return Err(DecodeError { offset: 0, reason: "index file too short" }.corrupt(&name));
        }
        let mut m = memmap2::MmapMut::map_anon(bytes.len()).map_err(StorageError::Io)?;
        m.copy_from_slice(bytes);
        let m = m.make_read_only().map_err(StorageError::Io)?;
        Self::from_mmap(Arc::new(m), name)
    }

    pub fn from_mmap(b: Arc<Mmap>, path: Arc<str>) -> Result<Self, StorageError> {
        let c = |e: DecodeError| e.corrupt(&path);
        if b.len() < HEADER_LEN + TOC_LEN {
            return Err(DecodeError { offset: 0, reason: "index file too short" }.corrupt(&path));
        }
        let mut d = Decbuf::new(&b[..HEADER_LEN], 0);
        if d.be32().map_err(c)? != MAGIC_INDEX {
            return Err(DecodeError { offset: 0, reason: "invalid index magic number" }.corrupt(&path));
        }
        let version = d.byte().map_err(c)?;
        if version != INDEX_VERSION_V2 {
            return Err(StorageError::Corrupt {
                location: path.to_string(),
                reason: format!("unsupported index version {version} (only v2 is supported)"),
            });
        }
        let toc_at = b.len() - TOC_LEN;
        let mut d = Decbuf::new(&b[toc_at..], toc_at);
        let toc_body = &b[toc_at..toc_at + 48];
        let toc = Toc {
            symbols: d.be64().map_err(c)?,
            series: d.be64().map_err(c)?,
            label_indices: d.be64().map_err(c)?,
            label_indices_table: d.be64().map_err(c)?,
            postings: d.be64().map_err(c)?,
            postings_table: d.be64().map_err(c)?,
        };
        if d.be32().map_err(c)? != crc32c(toc_body) {
            return Err(DecodeError { offset: toc_at, reason: "TOC checksum mismatch" }.corrupt(&path));
        }
        let mut symbol_offsets = Vec::new();
        let mut postings: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
        // Symbols.
        let (body, base) = section(&b, &path, toc.symbols)?;
        let mut d = Decbuf::new(body, base);
        let n = d.be32().map_err(c)?;
        // A symbol takes at least one byte, so a count beyond the body is corrupt; never reserve by it.
        if n as usize > d.remaining() {
            return Err(d.err("symbol count exceeds the symbol table").corrupt(&path));
        }
        symbol_offsets.reserve(n as usize);
        for _ in 0..n {
            let off = d.offset();
            d.uvarint_str().map_err(c)?;
            symbol_offsets.push(u32::try_from(off).map_err(|_| d.err("symbol offset overflow")).map_err(c)?);
        }
        // Postings offset table.
        if toc.postings_table != 0 {
            let (body, base) = section(&b, &path, toc.postings_table)?;
            let mut d = Decbuf::new(body, base);
            let n = d.be32().map_err(c)?;
            for _ in 0..n {
                if d.uvarint().map_err(c)? != 2 {
                    return Err(d.err("postings offset entry with key count != 2").corrupt(&path));
                }
                let name = d.uvarint_str().map_err(c)?;
                let value = d.uvarint_str().map_err(c)?;
                let off = d.uvarint().map_err(c)?;
                postings.entry(name.to_string()).or_default().push((value.to_string(), off));
            }
        }
        Ok(IndexReader { b: b.clone(), path: path.clone(), toc, symbol_offsets, postings })
    }

    fn section(&self, off: u64) -> Result<(&[u8], usize), StorageError> {
        section(&self.b, &self.path, off)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn toc(&self) -> Toc {
        self.toc
    }

    pub fn num_symbols(&self) -> usize {
        self.symbol_offsets.len()
    }

    pub fn symbol(&self, i: u32) -> Result<&str, StorageError> {
        let off = *self
            .symbol_offsets
            .get(i as usize)
            .ok_or_else(|| DecodeError { offset: 0, reason: "symbol reference out of range" }.corrupt(&self.path))?
            as usize;
        let mut d = Decbuf::new(&self.b[off..], off);
        d.uvarint_str().map_err(|e| e.corrupt(&self.path))
    }

    /// All symbols in order.
    pub fn symbols(&self) -> Result<Vec<&str>, StorageError> {
        (0..self.symbol_offsets.len() as u32).map(|i| self.symbol(i)).collect()
    }

    /// Labels and chunk metas of series `id` (its offset / 16); `chunks` is cleared and refilled.
    pub fn series(&self, id: u32, chunks: &mut Vec<ChunkMeta>) -> Result<Labels, StorageError> {
        let off = id as usize * SERIES_ALIGN as usize;
        let c = |e: DecodeError| e.corrupt(&self.path);
        if off >= self.b.len() {
            return Err(DecodeError { offset: off, reason: "series reference out of range" }.corrupt(&self.path));
        }
        let mut d = Decbuf::new(&self.b[off..], off);
        let len = d.uvarint().map_err(c)? as usize;
        let body_at = d.offset();
        let body = d.bytes(len).map_err(c)?;
        let crc = d.be32().map_err(c)?;
        if crc32c(body) != crc {
            return Err(DecodeError { offset: off, reason: "series checksum mismatch" }.corrupt(&self.path));
        }
        let mut d = Decbuf::new(body, body_at);
        let n = d.uvarint().map_err(c)?;
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(n.min(64) as usize);
        for _ in 0..n {
            let name = self.symbol(d.uvarint32().map_err(c)?)?;
            let value = self.symbol(d.uvarint32().map_err(c)?)?;
            pairs.push((name, value));
        }
        if pairs.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(d.err("series labels not sorted").corrupt(&self.path));
        }
        let labels = Labels::from_sorted_unchecked(pairs.iter().copied());
        chunks.clear();
        let k = d.uvarint().map_err(c)?;
        if k > 0 {
            let mint = d.varint().map_err(c)?;
            let maxt = mint.wrapping_add(d.uvarint().map_err(c)? as i64);
            let r = d.uvarint().map_err(c)?;
            chunks.push(ChunkMeta { mint, maxt, r });
            let (mut t0, mut r0) = (maxt, r as i64);
            for _ in 1..k {
                let mint = t0.wrapping_add(d.uvarint().map_err(c)? as i64);
                let maxt = mint.wrapping_add(d.uvarint().map_err(c)? as i64);
                let r = r0.wrapping_add(d.varint().map_err(c)?);
                chunks.push(ChunkMeta { mint, maxt, r: r as u64 });
                t0 = maxt;
                r0 = r;
            }
        }
        Ok(labels)
    }

    /// The postings list at `off`.
    fn read_postings(&self, off: u64) -> Result<Vec<u32>, StorageError> {
        let (body, base) = self.section(off)?;
        let mut d = Decbuf::new(body, base);
        let c = |e: DecodeError| e.corrupt(&self.path);
        let n = d.be32().map_err(c)? as usize;
        if n * 4 != d.remaining() {
            return Err(d.err("postings list length mismatch").corrupt(&self.path));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(d.be32().map_err(c)?);
        }
        Ok(out)
    }

    /// Label names (sorted), without the all-postings key.
    pub fn label_names(&self) -> Vec<String> {
        self.postings.keys().filter(|k| !k.is_empty()).cloned().collect()
    }

    /// Values of `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        if name.is_empty() {
            return Vec::new();
        }
        self.postings.get(name).map(|v| v.iter().map(|(v, _)| v.clone()).collect()).unwrap_or_default()
    }

    /// Values of `name`, sorted, borrowed from the index.
    pub fn label_value_strs<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let vals = if name.is_empty() { None } else { self.postings.get(name) };
        vals.map_or(&[][..], Vec::as_slice).iter().map(|(v, _)| v.as_str())
    }

    /// Number of values `name` has in this index.
    pub fn value_count(&self, name: &str) -> usize {
        self.postings.get(name).map_or(0, Vec::len)
    }

    /// Values of `name` (sorted) carried by at least one series of `ids` (sorted): one postings list read per
    /// value, no series decoded. For labels with few values among many series.
    pub fn values_among(&self, name: &str, ids: &[u32]) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        if name.is_empty() || ids.is_empty() {
            return Ok(out);
        }
        for (v, off) in self.postings.get(name).map_or(&[][..], Vec::as_slice) {
            if crate::postings::have_common(&self.read_postings(*off)?, ids) {
                out.push(v.clone());
            }
        }
        Ok(out)
    }

    /// (name, value, number of series) for every label pair: for `tsdb analyze`.
    pub fn postings_stats(&self) -> Result<Vec<(String, String, usize)>, StorageError> {
        let mut out = Vec::new();
        for (n, vals) in &self.postings {
            if n.is_empty() {
                continue;
            }
            for (v, off) in vals {
                let (body, _) = self.section(*off)?;
                let cnt = body.get(..4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
                out.push((n.clone(), v.clone(), cnt));
            }
        }
        Ok(out)
    }
}

impl PostingsIndex for IndexReader {
    type List = Vec<u32>;
    fn all_postings(&self) -> Result<Vec<u32>, StorageError> {
        match self.postings.get("").and_then(|v| v.first()) {
            Some((_, off)) => self.read_postings(*off),
            None => Ok(Vec::new()),
        }
    }

    fn postings_for_values(
        &self,
        name: &str,
        values_hint: Option<&[String]>,
        prefix: Option<&str>,
        pred: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<u32>, StorageError> {
        if name.is_empty() {
            return Ok(Vec::new());
        }
        let Some(vals) = self.postings.get(name) else { return Ok(Vec::new()) };
        let mut lists = Vec::new();
        match values_hint {
            Some(hint) => {
                for h in hint {
                    if let Ok(i) = vals.binary_search_by(|(v, _)| v.as_str().cmp(h)) {
                        if pred(&vals[i].0) {
                            lists.push(self.read_postings(vals[i].1)?);
                        }
                    }
                }
            }
            None => {
                let start = prefix.map_or(0, |p| vals.partition_point(|(v, _)| v.as_str() < p));
                for (v, off) in &vals[start..] {
                    if prefix.is_some_and(|p| !v.starts_with(p)) {
                        break;
                    }
                    if pred(v) {
                        lists.push(self.read_postings(*off)?);
                    }
                }
            }
        }
        Ok(union_many(lists))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postings::postings_for_matchers;
    use model::{labels, MatchOp, Matcher};

    #[test]
    fn write_then_read() {
        let td = tempfile::tempdir().unwrap();
        let p = td.path().join("index");
        let series = vec![
            labels! {"__name__" => "a", "job" => "x"},
            labels! {"__name__" => "a", "job" => "y"},
            labels! {"__name__" => "b", "job" => "x"},
        ];
        let mut syms: Vec<&str> = series.iter().flat_map(|l| l.iter().flat_map(|p| [p.name, p.value])).collect();
        syms.sort();
        syms.dedup();
        let mut w = IndexWriter::create(&p).unwrap();
        w.add_symbols(syms.iter().copied()).unwrap();
        for (i, l) in series.iter().enumerate() {
            let i = i as i64;
            w.add_series(l, &[ChunkMeta { mint: i * 10, maxt: i * 10 + 5, r: 8 + i as u64 * 100 }, ChunkMeta { mint: i * 10 + 6, maxt: i * 10 + 9, r: 58 + i as u64 * 100 }]).unwrap();
        }
        assert!(w.add_series(&series[0], &[]).is_err(), "out of order refused");
        w.finish().unwrap();

        let r = IndexReader::open(&p).unwrap();
        assert_eq!(r.label_names(), vec!["__name__", "job"]);
        assert_eq!(r.label_values("job"), vec!["x", "y"]);
        let all = r.all_postings().unwrap();
        assert_eq!(all.len(), 3);
        let mut chunks = Vec::new();
        for (id, want) in all.iter().zip(&series) {
            assert_eq!(&r.series(*id, &mut chunks).unwrap(), want);
            assert_eq!(chunks.len(), 2);
        }
        r.series(all[1], &mut chunks).unwrap();
        assert_eq!(chunks[1], ChunkMeta { mint: 16, maxt: 19, r: 158 });
        let ms = [Matcher::equal("job", "x"), Matcher::new(MatchOp::NotEqual, "__name__", "b").unwrap()];
        let ids = postings_for_matchers(&r, &ms).unwrap();
        assert_eq!(ids, vec![all[0]]);

        // Corruption anywhere is reported, never a panic.
        let bytes = std::fs::read(&p).unwrap();
        for i in (0..bytes.len()).step_by(3) {
            let mut b = bytes.clone();
            b[i] ^= 0x41;
            std::fs::write(&p, &b).unwrap();
            if let Ok(r) = IndexReader::open(&p) {
                for id in 0..20 {
                    let _ = r.series(id, &mut chunks);
                }
                let _ = postings_for_matchers(&r, &ms);
            }
        }
    }
}
