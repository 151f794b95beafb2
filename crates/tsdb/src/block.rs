//! Persistent blocks: `<ulid>/{meta.json, index, chunks/, tombstones}` in Prometheus's layout.
//!
//! Blocks are written into `<ulid>.tmp-for-creation` and renamed into place once complete and fsynced, so a
//! crash leaves either a whole block or a tmp dir that the next open removes. Deletion renames to
//! `<ulid>.tmp-for-deletion` first for the same reason.

use crate::chunkenc::{ChunkBytes, XorAppender, XorIter, ENC_XOR, SAMPLES_PER_CHUNK};
use crate::chunks::{ChunkReader, ChunkWriter, DEFAULT_CHUNK_SEGMENT_SIZE};
use crate::encoding::{crc32c, put_be32, put_uvarint, put_varint, Decbuf, DecodeError};
use crate::error::{IoContext, TsdbError};
use crate::index::{ChunkMeta, IndexReader, IndexWriter};
use crate::postings::postings_for_matchers;
use crate::query::{ChunkRef, ChunksIter};
use model::storage::{Querier, SampleIter, SelectHints, Series, SeriesSet};
use model::{Labels, Matcher, StorageError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use ulid::Ulid;

pub const META_FILENAME: &str = "meta.json";
pub const INDEX_FILENAME: &str = "index";
pub const TOMBSTONES_FILENAME: &str = "tombstones";
pub const MAGIC_TOMBSTONES: u32 = 0x0130_BA30;
const TMP_CREATION: &str = ".tmp-for-creation";
const TMP_DELETION: &str = ".tmp-for-deletion";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    #[serde(rename = "numSamples", default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    #[serde(rename = "numSeries", default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    #[serde(rename = "numChunks", default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDesc {
    pub ulid: Ulid,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMetaCompaction {
    pub level: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Ulid>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// `meta.json`. Unknown top-level fields (e.g. Thanos's `thanos` section) are kept and written back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub ulid: Ulid,
    /// First timestamp included (ms).
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// End of the block, exclusive (ms).
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: BlockMetaCompaction,
    pub version: u32,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BlockMeta {
    pub fn read(dir: &Path) -> Result<BlockMeta, TsdbError> {
        let p = dir.join(META_FILENAME);
        let b = fs::read(&p).ctx(&p)?;
        let m: BlockMeta = serde_json::from_slice(&b)
            .map_err(|e| TsdbError::Corrupt { location: p.display().to_string(), reason: e.to_string() })?;
        if m.version != 1 {
            return Err(TsdbError::Corrupt {
                location: p.display().to_string(),
                reason: format!("unsupported meta.json version {}", m.version),
            });
        }
        Ok(m)
    }

    /// Writes `meta.json` atomically (tmp file, fsync, rename), tab-indented like Prometheus.
    pub fn write(&self, dir: &Path) -> Result<u64, TsdbError> {
        let p = dir.join(META_FILENAME);
        let tmp = dir.join(format!("{META_FILENAME}.tmp"));
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser).map_err(|e| TsdbError::Storage(StorageError::Other(e.to_string())))?;
        fs::write(&tmp, &out).ctx(&tmp)?;
        fs::File::open(&tmp).and_then(|f| f.sync_all()).ctx(&tmp)?;
        fs::rename(&tmp, &p).ctx(&p)?;
        Ok(out.len() as u64)
    }
}

/// Deleted intervals per series id (closed intervals), from the `tombstones` file.
pub type Tombstones = BTreeMap<u32, Vec<(i64, i64)>>;

pub fn write_tombstones(dir: &Path, t: &Tombstones) -> Result<u64, TsdbError> {
    let p = dir.join(TOMBSTONES_FILENAME);
    let mut b = Vec::new();
    put_be32(&mut b, MAGIC_TOMBSTONES);
    b.push(1);
    let body_at = b.len();
    for (r, ivs) in t {
        for &(a, z) in ivs {
            put_uvarint(&mut b, *r as u64);
            put_varint(&mut b, a);
            put_varint(&mut b, z);
        }
    }
    let crc = crc32c(&b[body_at..]);
    b.extend_from_slice(&crc.to_be_bytes());
    fs::write(&p, &b).ctx(&p)?;
    fs::File::open(&p).and_then(|f| f.sync_all()).ctx(&p)?;
    Ok(b.len() as u64)
}

pub fn read_tombstones(dir: &Path) -> Result<Tombstones, TsdbError> {
    let p = dir.join(TOMBSTONES_FILENAME);
    let b = match fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tombstones::new()),
        Err(e) => return Err(TsdbError::io(&p, e)),
    };
    let loc = p.display().to_string();
    let corrupt = |e: DecodeError| TsdbError::Corrupt { location: loc.clone(), reason: e.to_string() };
    if b.len() < 9 {
        return Err(corrupt(DecodeError { offset: 0, reason: "tombstones file too short" }));
    }
    let mut d = Decbuf::new(&b, 0);
    if d.be32().map_err(corrupt)? != MAGIC_TOMBSTONES {
        return Err(corrupt(DecodeError { offset: 0, reason: "invalid tombstones magic" }));
    }
    if d.byte().map_err(corrupt)? != 1 {
        return Err(corrupt(DecodeError { offset: 4, reason: "unsupported tombstones version" }));
    }
    let body = &b[5..b.len() - 4];
    let crc = u32::from_be_bytes([b[b.len() - 4], b[b.len() - 3], b[b.len() - 2], b[b.len() - 1]]);
    if crc32c(body) != crc {
        return Err(corrupt(DecodeError { offset: b.len() - 4, reason: "tombstones checksum mismatch" }));
    }
    let mut d = Decbuf::new(body, 5);
    let mut out = Tombstones::new();
    while !d.is_empty() {
        let r = d.uvarint32().map_err(corrupt)?;
        let a = d.varint().map_err(corrupt)?;
        let z = d.varint().map_err(corrupt)?;
        out.entry(r).or_default().push((a, z));
    }
    Ok(out)
}

/// An open, immutable block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    tombstones: Tombstones,
    size: u64,
}

impl Block {
    pub fn open(dir: &Path) -> Result<Block, TsdbError> {
        let meta = BlockMeta::read(dir)?;
        let ip = dir.join(INDEX_FILENAME);
        let index = IndexReader::open(&ip)?;
        let chunks = ChunkReader::open(&dir.join("chunks"))?;
        let tombstones = read_tombstones(dir)?;
        let mut size = chunks.size();
        for f in [INDEX_FILENAME, META_FILENAME, TOMBSTONES_FILENAME] {
            size += fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
        }
        Ok(Block { dir: dir.to_path_buf(), meta, index, chunks, tombstones, size })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes on disk.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    pub fn chunk_reader(&self) -> &ChunkReader {
        &self.chunks
    }

    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// Whether `[mint, maxt]` (closed) meets the block's `[min_time, max_time)`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.min_time <= maxt && mint < self.meta.max_time
    }

    pub fn querier(self: &Arc<Self>, mint: i64, maxt: i64) -> BlockQuerier {
        BlockQuerier { block: self.clone(), mint, maxt }
    }

    /// Iterates all series in label order with their (XOR) chunks, tombstones applied by the caller via
    /// [`Block::deleted`].
    pub fn series_iter(self: &Arc<Self>) -> Result<BlockSeriesIter, StorageError> {
        let ids = self.index.all_postings_list()?;
        Ok(BlockSeriesIter { block: self.clone(), ids, pos: 0, mint: i64::MIN, maxt: i64::MAX })
    }

    pub fn deleted(&self, id: u32) -> Option<&[(i64, i64)]> {
        self.tombstones.get(&id).map(Vec::as_slice)
    }

    /// Labels and chunks (those overlapping `[mint, maxt]`) of series `id`.
    fn load(&self, id: u32, mint: i64, maxt: i64, metas: &mut Vec<ChunkMeta>) -> Result<(Labels, Vec<ChunkRef>), StorageError> {
        let labels = self.index.series(id, metas)?;
        let mut chunks = Vec::with_capacity(metas.len());
        for m in metas.iter() {
            if m.maxt < mint || m.mint > maxt {
                continue;
            }
            if let Some(data) = self.chunks.xor_chunk(m.r)? {
                chunks.push(ChunkRef { mint: m.mint, maxt: m.maxt, data });
            }
        }
        Ok((labels, chunks))
    }
}

impl IndexReader {
    pub(crate) fn all_postings_list(&self) -> Result<Vec<u32>, StorageError> {
        crate::postings::PostingsIndex::all_postings(self)
    }
}

/// All series of a block, in order.
pub struct BlockSeriesIter {
    block: Arc<Block>,
    ids: Vec<u32>,
    pos: usize,
    mint: i64,
    maxt: i64,
}

impl Iterator for BlockSeriesIter {
    type Item = Result<(u32, Labels, Vec<ChunkRef>), StorageError>;
    fn next(&mut self) -> Option<Self::Item> {
        let id = *self.ids.get(self.pos)?;
        self.pos += 1;
        let mut metas = Vec::new();
        Some(self.block.load(id, self.mint, self.maxt, &mut metas).map(|(l, c)| (id, l, c)))
    }
}

pub struct BlockQuerier {
    block: Arc<Block>,
    mint: i64,
    maxt: i64,
}

impl BlockQuerier {
    /// Labels of the series matching `ms`. As Prometheus's block queriers for label names and values, a block
    /// that overlaps the query range answers for all its series (no per-series time check).
    fn matching_labels(&self, ms: &[Matcher]) -> Result<Vec<Labels>, StorageError> {
        let ids = postings_for_matchers(&self.block.index, ms)?;
        let mut metas = Vec::new();
        ids.into_iter().map(|id| self.block.index.series(id, &mut metas)).collect()
    }
}

impl Querier for BlockQuerier {
    fn select(&self, _sorted: bool, _hints: Option<&SelectHints>, ms: &[Matcher]) -> Result<SeriesSet, StorageError> {
        // Series ids are in label order, so the result is sorted without sorting.
        let ids = postings_for_matchers(&self.block.index, ms)?;
        let block = self.block.clone();
        let (mint, maxt) = (self.mint, self.maxt);
        let loc: Arc<str> = Arc::from(block.dir.display().to_string());
        let none: Arc<[(i64, i64)]> = Arc::from(Vec::new());
        let mut metas = Vec::new();
        let mut ids = ids.into_iter();
        Ok(Box::new(std::iter::from_fn(move || loop {
            let id = ids.next()?;
            match block.load(id, mint, maxt, &mut metas) {
                Err(e) => return Some(Err(e)),
                Ok((_, chunks)) if chunks.is_empty() => continue,
                Ok((labels, chunks)) => {
                    let del = block.deleted(id).map_or_else(|| none.clone(), Arc::from);
                    let it: Box<dyn SampleIter> = Box::new(ChunksIter::new(chunks, mint, maxt, del, loc.clone()));
                    return Some(Ok(Series { labels, samples: it }));
                }
            }
        })))
    }

    fn label_values_list(&self, name: &str, ms: &[Matcher]) -> Result<model::StrList, StorageError> {
        if ms.is_empty() {
            return Ok(self.block.index.label_value_strs(name).collect());
        }
        Ok(model::StrList::from(self.label_values(name, ms)?))
    }

    fn label_values(&self, name: &str, ms: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if ms.is_empty() {
            return Ok(self.block.index.label_values(name));
        }
        let ix = &self.block.index;
        let ids = postings_for_matchers(ix, ms)?;
        // Few values among many series: test each value's postings against the matches (as the head does)
        // instead of decoding every matching series.
        if ix.value_count(name).saturating_mul(4) <= ids.len() {
            return ix.values_among(name, &ids);
        }
        let mut metas = Vec::new();
        let mut set = BTreeSet::new();
        for id in ids {
            if let Some(v) = ix.series(id, &mut metas)?.get(name) {
                if !set.contains(v) {
                    set.insert(v.to_string());
                }
            }
        }
        Ok(set.into_iter().collect())
    }

    fn label_names(&self, ms: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if ms.is_empty() {
            return Ok(self.block.index.label_names());
        }
        let set: BTreeSet<String> =
            self.matching_labels(ms)?.iter().flat_map(|l| l.iter().map(|p| p.name.to_string()).collect::<Vec<_>>()).collect();
        Ok(set.into_iter().collect())
    }
}

/// Re-encodes samples into chunks of at most 120 samples.
pub(crate) fn encode_chunks(samples: &[(i64, f64)]) -> Vec<ChunkRef> {
    samples
        .chunks(SAMPLES_PER_CHUNK as usize)
        .map(|part| {
            let mut a = XorAppender::with_capacity(part.len() * 2 + 16);
            for &(t, v) in part {
                a.append(t, v);
            }
            ChunkRef {
                mint: part[0].0,
                maxt: part[part.len() - 1].0,
                data: ChunkBytes::Heap(Arc::from(a.into_bytes())),
            }
        })
        .collect()
}

/// Brings a series' chunks into block shape for `[mint, maxt)`: kept as they are when sorted, disjoint and
/// inside the range; otherwise decoded, merged (first occurrence of a timestamp wins), cut to the range and
/// re-encoded. `deleted` intervals are dropped.
pub(crate) fn normalize_chunks(
    chunks: Vec<ChunkRef>,
    mint: i64,
    maxt: i64,
    deleted: &[(i64, i64)],
) -> Result<Vec<ChunkRef>, StorageError> {
    let clean = deleted.is_empty()
        && chunks.iter().all(|c| c.mint >= mint && c.maxt < maxt)
        && chunks.windows(2).all(|w| w[0].maxt < w[1].mint);
    if clean {
        return Ok(chunks);
    }
    let mut samples: Vec<(i64, f64)> = Vec::new();
    for c in &chunks {
        let s = XorIter::collect_all(c.data.as_slice()).map_err(|e| e.corrupt("chunk"))?;
        samples.extend(s);
    }
    // Stable sort keeps the first source's sample first among equal timestamps.
    samples.sort_by_key(|s| s.0);
    samples.dedup_by_key(|s| s.0);
    samples.retain(|s| s.0 >= mint && s.0 < maxt && !deleted.iter().any(|&(a, z)| s.0 >= a && s.0 <= z));
    Ok(encode_chunks(&samples))
}

/// Writes a block for `[mint, maxt)` from series given in label order. Returns None (and leaves nothing
/// behind) when no series has samples in range.
pub fn write_block<I>(
    parent: &Path,
    mint: i64,
    maxt: i64,
    compaction: BlockMetaCompaction,
    symbols: Option<Vec<String>>,
    series: I,
) -> Result<Option<BlockMeta>, TsdbError>
where
    I: IntoIterator<Item = Result<(Labels, Vec<ChunkRef>), StorageError>>,
{
    let ulid = Ulid::new();
    let tmp = parent.join(format!("{ulid}{TMP_CREATION}"));
    let res = write_block_into(&tmp, ulid, mint, maxt, compaction, symbols, series);
    match res {
        Ok(Some(meta)) => {
            let dst = parent.join(ulid.to_string());
            fs::rename(&tmp, &dst).ctx(&dst)?;
            crate::wal::sync_dir(parent).ctx(parent)?;
            Ok(Some(meta))
        }
        Ok(None) => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(None)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn write_block_into<I>(
    tmp: &Path,
    ulid: Ulid,
    mint: i64,
    maxt: i64,
    mut compaction: BlockMetaCompaction,
    symbols: Option<Vec<String>>,
    series: I,
) -> Result<Option<BlockMeta>, TsdbError>
where
    I: IntoIterator<Item = Result<(Labels, Vec<ChunkRef>), StorageError>>,
{
    fs::create_dir_all(tmp).ctx(tmp)?;
    let stats = match symbols {
        Some(syms) => write_series(tmp, &syms, series.into_iter(), mint, maxt)?,
        None => {
            // Without a given symbol set, the series are buffered to collect it first.
            let all: Vec<_> = series.into_iter().collect::<Result<Vec<_>, _>>()?;
            let mut set = BTreeSet::new();
            for (l, _) in &all {
                for p in l.iter() {
                    for s in [p.name, p.value] {
                        if !set.contains(s) {
                            set.insert(s.to_string());
                        }
                    }
                }
            }
            let syms: Vec<String> = set.into_iter().collect();
            write_series(tmp, &syms, all.into_iter().map(Ok), mint, maxt)?
        }
    };
    let Some(stats) = stats else { return Ok(None) };
    write_tombstones(tmp, &Tombstones::new())?;
    if compaction.sources.is_empty() {
        compaction.sources.push(ulid);
    }
    let meta = BlockMeta {
        ulid,
        min_time: mint,
        max_time: maxt,
        stats,
        compaction,
        version: 1,
        extra: serde_json::Map::new(),
    };
    meta.write(tmp)?;
    crate::wal::sync_dir(tmp).ctx(tmp)?;
    Ok(Some(meta))
}

fn write_series(
    tmp: &Path,
    symbols: &[String],
    series: impl Iterator<Item = Result<(Labels, Vec<ChunkRef>), StorageError>>,
    mint: i64,
    maxt: i64,
) -> Result<Option<BlockStats>, TsdbError> {
    let mut cw = ChunkWriter::create(&tmp.join("chunks"), DEFAULT_CHUNK_SEGMENT_SIZE)?;
    let mut iw = IndexWriter::create(&tmp.join(INDEX_FILENAME))?;
    iw.add_symbols(symbols.iter().map(String::as_str))?;
    let mut stats = BlockStats::default();
    let mut metas = Vec::new();
    for s in series {
        let (labels, chunks) = s?;
        let chunks = normalize_chunks(chunks, mint, maxt, &[])?;
        if chunks.is_empty() {
            continue;
        }
        metas.clear();
        for c in &chunks {
            let b = c.data.as_slice();
            let &[n0, n1, ..] = b else {
                return Err(TsdbError::Corrupt { location: format!("chunk of {labels}"), reason: "chunk shorter than its header".into() });
            };
            stats.num_samples += u16::from_be_bytes([n0, n1]) as u64;
            let r = cw.write_chunk(ENC_XOR, b)?;
            metas.push(ChunkMeta { mint: c.mint, maxt: c.maxt, r });
        }
        stats.num_chunks += chunks.len() as u64;
        stats.num_series += 1;
        iw.add_series(&labels, &metas)?;
    }
    if stats.num_series == 0 {
        return Ok(None);
    }
    cw.finish()?;
    iw.finish()?;
    Ok(Some(stats))
}

/// Removes `*.tmp-for-creation` / `*.tmp-for-deletion` leftovers of interrupted writes and deletions.
pub fn remove_tmp_dirs(dir: &Path) -> Result<(), TsdbError> {
    for e in fs::read_dir(dir).ctx(dir)? {
        let e = e.ctx(dir)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TMP_CREATION) || name.ends_with(TMP_DELETION) {
            tracing::info!(dir = name, "removing leftover temporary block directory");
            fs::remove_dir_all(e.path()).ctx(e.path())?;
        }
    }
    Ok(())
}

/// A block directory that could not be opened.
#[derive(Debug)]
pub struct UnreadableBlock {
    pub dir: PathBuf,
    /// The directory name as a ULID.
    pub ulid: Ulid,
    pub error: TsdbError,
}

/// Opens every block directory (named by a ULID) in `dir`, oldest first. A block that cannot be opened
/// (missing or corrupt meta.json, index or chunks) is returned in the second list and left on disk untouched:
/// one bad block must not take the rest of the history offline, and deleting it would destroy evidence and
/// possibly recoverable data. With `read_only`, blocks marked deletable are skipped instead of deleted.
pub fn open_blocks(dir: &Path, read_only: bool) -> Result<(Vec<Arc<Block>>, Vec<UnreadableBlock>), TsdbError> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for e in fs::read_dir(dir).ctx(dir)? {
        let e = e.ctx(dir)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(ulid) = Ulid::from_string(name) else { continue };
        if !e.path().is_dir() {
            continue;
        }
        let opened = BlockMeta::read(&e.path()).and_then(|meta| {
            if meta.compaction.deletable {
                return Ok(None);
            }
            Block::open(&e.path()).map(Some)
        });
        match opened {
            Ok(Some(b)) => out.push(Arc::new(b)),
            Ok(None) if read_only => {}
            Ok(None) => delete_block_dir(&e.path())?,
            Err(error) => bad.push(UnreadableBlock { dir: e.path(), ulid, error }),
        }
    }
    out.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
    bad.sort_by_key(|b| b.ulid);
    Ok((out, bad))
}

/// Deletes a block directory: rename first, so a crash midway leaves a tmp dir the next open removes.
pub fn delete_block_dir(dir: &Path) -> Result<(), TsdbError> {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else { return Ok(()) };
    let tmp = dir.with_file_name(format!("{name}{TMP_DELETION}"));
    fs::rename(dir, &tmp).ctx(dir)?;
    fs::remove_dir_all(&tmp).ctx(&tmp)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{labels, MatchOp, Sample, STALE_NAN_BITS};

    #[test]
    fn write_open_query_block() {
        let td = tempfile::tempdir().unwrap();
        let mut series = Vec::new();
        for i in 0..10 {
            let i_s = format!("{i:02}");
            let l = labels! {"__name__" => "m", "i" => i_s.as_str()};
            let samples: Vec<(i64, f64)> = (0..300).map(|t| (t * 1000, if t == 5 { model::STALE_NAN } else { (i * t) as f64 })).collect();
            series.push(Ok((l, encode_chunks(&samples))));
        }
        let meta = write_block(td.path(), 0, 200_000, BlockMetaCompaction { level: 1, ..Default::default() }, None, series)
            .unwrap()
            .unwrap();
        assert_eq!(meta.stats.num_series, 10);
        assert_eq!(meta.stats.num_samples, 10 * 200);
        let b = Arc::new(Block::open(&td.path().join(meta.ulid.to_string())).unwrap());
        assert_eq!(b.meta(), &meta);
        let q = b.querier(0, 10_000);
        let mut set = q.select(true, None, &[Matcher::equal("i", "03")]).unwrap();
        let mut s = set.next().unwrap().unwrap();
        assert!(set.next().is_none());
        let got: Vec<Sample> = std::iter::from_fn(|| s.samples.next()).collect();
        assert_eq!(got.len(), 11);
        assert_eq!(got[5].v.to_bits(), STALE_NAN_BITS);
        assert_eq!(q.label_values("i", &[]).unwrap().len(), 10);
        let raw = fs::read_to_string(td.path().join(meta.ulid.to_string()).join("meta.json")).unwrap();
        assert!(raw.contains("\"minTime\": 0") && raw.contains("\"numSamples\": 2000"), "{raw}");
        assert_eq!(fs::read(td.path().join(meta.ulid.to_string()).join("tombstones")).unwrap(), [0x01, 0x30, 0xba, 0x30, 1, 0, 0, 0, 0]);
    }

    /// Label values with matchers answer the same on both paths: per-value postings tests (few values among
    /// the matches) and per-series decoding (many values).
    #[test]
    fn label_values_with_matchers_both_paths() {
        let td = tempfile::tempdir().unwrap();
        let mut series = Vec::new();
        for i in 0..200u32 {
            let (i_s, few, many) = (format!("{i:03}"), format!("f{}", i % 7), format!("m{}", i % 97));
            let parity = if i % 2 == 0 { "even" } else { "odd" };
            let l = labels! {"__name__" => "m", "few" => few.as_str(), "i" => i_s.as_str(), "many" => many.as_str(), "p" => parity};
            series.push((l, encode_chunks(&[(0, 1.0), (1000, 2.0)])));
        }
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let series = series.into_iter().map(Ok);
        let meta = write_block(td.path(), 0, 10_000, BlockMetaCompaction { level: 1, ..Default::default() }, None, series)
            .unwrap()
            .unwrap();
        let b = Arc::new(Block::open(&td.path().join(meta.ulid.to_string())).unwrap());
        let q = b.querier(0, 10_000);
        let naive = |name: &str, keep: &dyn Fn(u32) -> bool| {
            let set: BTreeSet<String> = (0..200u32)
                .filter(|&i| keep(i))
                .map(|i| if name == "few" { format!("f{}", i % 7) } else { format!("m{}", i % 97) })
                .collect();
            set.into_iter().collect::<Vec<_>>()
        };
        let ms = [Matcher::equal("p", "odd")];
        // 7 values among 100 matches: the per-value path; 97 among 100: per series.
        assert!(b.index.value_count("few") * 4 <= 100 && b.index.value_count("many") * 4 > 100);
        assert_eq!(q.label_values("few", &ms).unwrap(), naive("few", &|i| i % 2 == 1));
        assert_eq!(q.label_values("many", &ms).unwrap(), naive("many", &|i| i % 2 == 1));
        let ms = [Matcher::new(MatchOp::Regex, "i", "00[0-3]").unwrap()];
        assert_eq!(q.label_values("few", &ms).unwrap(), naive("few", &|i| i <= 3));
        assert_eq!(q.label_values("few", &[Matcher::equal("p", "none")]).unwrap(), Vec::<String>::new());
        assert_eq!(q.label_values("absent", &[Matcher::equal("p", "odd")]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn tombstones_roundtrip_and_apply() {
        let td = tempfile::tempdir().unwrap();
        let mut t = Tombstones::new();
        t.insert(3, vec![(10, 20), (30, 40)]);
        write_tombstones(td.path(), &t).unwrap();
        assert_eq!(read_tombstones(td.path()).unwrap(), t);
        let c = encode_chunks(&(0..50).map(|t| (t, t as f64)).collect::<Vec<_>>());
        let n = normalize_chunks(c, 0, 45, &[(10, 20)]).unwrap();
        let s = XorIter::collect_all(n[0].data.as_slice()).unwrap();
        assert_eq!(s.len(), 45 - 11);
    }
}
