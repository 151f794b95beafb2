//! `promtool tsdb create-blocks-from openmetrics FILE DIR` (Prometheus 2.42 semantics): turns an OpenMetrics
//! text with timestamps into blocks, one per aligned block range (2h by default) that has samples.
//!
//! Like promtool, a block's `minTime`/`maxTime` are its first sample and last sample + 1 ms (not the range
//! bounds), its compaction level is 1, and a table row is printed for each block as it is written.
//! Differences, all deliberate: samples need not be sorted within a series (each range is buffered and
//! sorted; promtool refuses or silently drops out-of-order samples depending on its 5000-sample batches),
//! negative timestamps land in the right range (promtool's truncating division skips them), every error
//! names its input line, and the syntax and labels of the whole input are checked before the first block
//! is written (a conflicting duplicate sample is only found when its range is buffered; blocks written
//! before it stay, as with promtool).
//!
//! Memory: the input is memory-mapped; samples of as many consecutive ranges as fit in
//! [`BackfillOptions::max_buffered_samples`] are buffered per pass over the input (24 bytes each).

use crate::block::{encode_chunks, write_block, Block, BlockMeta, BlockMetaCompaction};
use crate::error::{IoContext, TsdbError};
use crate::gofmt;
use crate::openmetrics::{Entry, Reader, SampleLine};
use crate::tools::{block_row, header_row};
use hashbrown::HashMap;
use model::{Labels, StorageError};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

const HOUR_MS: i64 = 3_600_000;
/// Prometheus's `tsdb.DefaultBlockDuration`.
pub const DEFAULT_BLOCK_DURATION_MS: i64 = 2 * HOUR_MS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillOptions {
    /// `--max-block-duration` in ms: the block range is the largest of 2h × 3^k (k < 10) not above it;
    /// anything under 2h (including 0) means 2h.
    pub max_block_duration_ms: i64,
    /// `--human-readable` / `-r`: times and sizes in the printed table in human units.
    pub human_readable: bool,
    /// `--quiet` / `-q`: print nothing.
    pub quiet: bool,
    /// Samples buffered in memory at most per pass over the input (one range is always taken whole).
    pub max_buffered_samples: usize,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions { max_block_duration_ms: 0, human_readable: false, quiet: false, max_buffered_samples: 20_000_000 }
    }
}

/// What an import wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillReport {
    /// The block range used (ms).
    pub block_duration_ms: i64,
    /// Written blocks, oldest first, with their size on disk.
    pub blocks: Vec<(BlockMeta, u64)>,
    /// Sample lines read.
    pub samples_read: u64,
    /// Samples written (lines minus exact duplicates).
    pub samples_written: u64,
    /// Lines repeating a series' timestamp with the same value (dropped, as the head does).
    pub duplicates_dropped: u64,
    /// Exactly what promtool would have printed (empty when `quiet`).
    pub printed: String,
}

/// Prometheus's `getCompatibleBlockDuration`.
pub fn compatible_block_duration(max_block_duration_ms: i64) -> i64 {
    let mut d = DEFAULT_BLOCK_DURATION_MS;
    if max_block_duration_ms > DEFAULT_BLOCK_DURATION_MS {
        let ranges: Vec<i64> = (0..10).map(|k| DEFAULT_BLOCK_DURATION_MS * 3i64.pow(k)).collect();
        d = ranges.iter().copied().take_while(|&r| r <= max_block_duration_ms).last().unwrap_or(d);
    }
    d
}

fn parse_err(input: &Path, e: impl std::fmt::Display) -> TsdbError {
    TsdbError::Corrupt { location: input.display().to_string(), reason: e.to_string() }
}

/// Imports `input` into new blocks under `out_dir` (created if missing). See the module docs.
pub fn create_blocks_from_openmetrics(input: &Path, out_dir: &Path, opts: BackfillOptions) -> Result<BackfillReport, TsdbError> {
    create_blocks_from_openmetrics_to(input, out_dir, opts, &mut std::io::sink())
}

/// [`create_blocks_from_openmetrics`], also writing promtool's progress table to `progress` as each block is
/// written (unless `quiet`).
pub fn create_blocks_from_openmetrics_to(
    input: &Path,
    out_dir: &Path,
    opts: BackfillOptions,
    progress: &mut dyn Write,
) -> Result<BackfillReport, TsdbError> {
    let f = std::fs::File::open(input).ctx(input)?;
    let len = f.metadata().ctx(input)?.len();
    // SAFETY: the input is only read; like promtool we assume nobody truncates it while we import (that
    // would be a SIGBUS, not memory corruption of ours).
    let map = if len == 0 { None } else { Some(unsafe { memmap2::Mmap::map(&f) }.ctx(input)?) };
    let data: &[u8] = map.as_deref().unwrap_or(&[]);
    std::fs::create_dir_all(out_dir).ctx(out_dir)?;
    backfill_bytes(data, input, out_dir, &opts, progress)
}

/// Labels of a sample line, refusing what the head would refuse (repeated label names).
fn line_labels(s: &SampleLine<'_>) -> Result<Labels, String> {
    let mut pairs = s.label_pairs();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("label name {:?} is not unique", w[0].0));
    }
    Ok(Labels::from_sorted_unchecked(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))))
}

fn backfill_bytes(
    data: &[u8],
    input: &Path,
    out_dir: &Path,
    opts: &BackfillOptions,
    progress: &mut dyn Write,
) -> Result<BackfillReport, TsdbError> {
    let bd = compatible_block_duration(opts.max_block_duration_ms);
    let mut report = BackfillReport { block_duration_ms: bd, ..Default::default() };

    // Pass 1: validate everything and count samples per block range.
    let mut per_range: BTreeMap<i64, u64> = BTreeMap::new();
    let mut checked: hashbrown::HashSet<&[u8]> = hashbrown::HashSet::new();
    for e in Reader::new(data) {
        let Entry::Sample(s) = e.map_err(|e| parse_err(input, e))? else { continue };
        if checked.insert(s.series) {
            line_labels(&s).map_err(|m| parse_err(input, format!("line {}: {m}", s.line)))?;
        }
        let Some(t) = s.timestamp else {
            let l = line_labels(&s).map_err(|m| parse_err(input, m))?;
            return Err(parse_err(input, format!("line {}: expected timestamp for series {l}, got none", s.line)));
        };
        *per_range.entry(t.div_euclid(bd)).or_default() += 1;
        report.samples_read += 1;
    }
    drop(checked);

    // Pass 2..n: buffer consecutive ranges while they fit, then write their blocks in time order.
    let ranges: Vec<(i64, u64)> = per_range.into_iter().collect();
    let mut i = 0;
    let mut wrote_header = false;
    while i < ranges.len() {
        let mut j = i + 1;
        let mut n = ranges[i].1;
        while j < ranges.len() && n + ranges[j].1 <= opts.max_buffered_samples as u64 {
            n += ranges[j].1;
            j += 1;
        }
        let batch = &ranges[i..j];
        let (lo, hi) = (batch[0].0 * bd, batch[batch.len() - 1].0 * bd + bd);
        let series = collect(data, input, lo, hi)?;
        for &(r, _) in batch {
            let Some(meta) = write_range(&series, input, out_dir, r * bd, r * bd + bd, &mut report)? else {
                continue;
            };
            let b = Block::open(&out_dir.join(meta.ulid.to_string()))?;
            report.blocks.push((meta, b.size()));
            if !opts.quiet {
                // promtool prints each block through its own tabwriter, the first one with the header.
                let mut rows = Vec::new();
                if !wrote_header {
                    rows.push(header_row());
                    wrote_header = true;
                }
                rows.push(block_row(&b, opts.human_readable));
                let text = gofmt::tabwrite(&rows);
                progress.write_all(text.as_bytes()).ctx("<progress output>")?;
                report.printed.push_str(&text);
            }
        }
        i = j;
    }
    Ok(report)
}

/// One series' buffered samples: (t, value, line).
struct Buffered {
    labels: Labels,
    samples: Vec<(i64, f64, u32)>,
}

/// Samples with `lo <= t < hi`, per series, each series sorted by time (stable, so file order among equal
/// timestamps).
fn collect(data: &[u8], input: &Path, lo: i64, hi: i64) -> Result<Vec<Buffered>, TsdbError> {
    let mut by_raw: HashMap<&[u8], u32> = HashMap::new();
    let mut by_labels: HashMap<Labels, u32> = HashMap::new();
    let mut series: Vec<Buffered> = Vec::new();
    for e in Reader::new(data) {
        let Entry::Sample(s) = e.map_err(|e| parse_err(input, e))? else { continue };
        let Some(t) = s.timestamp.filter(|t| (lo..hi).contains(t)) else { continue };
        let idx = match by_raw.get(s.series) {
            Some(&i) => i,
            None => {
                let l = line_labels(&s).map_err(|m| parse_err(input, format!("line {}: {m}", s.line)))?;
                let next = series.len() as u32;
                let i = *by_labels.entry(l.clone()).or_insert(next);
                if i == next {
                    series.push(Buffered { labels: l, samples: Vec::new() });
                }
                by_raw.insert(s.series, i);
                i
            }
        };
        series[idx as usize].samples.push((t, s.value, s.line as u32));
    }
    for s in &mut series {
        s.samples.sort_by_key(|x| x.0);
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(series)
}

/// Writes the block of `[start, end)` from the buffered series; None when no sample falls in it.
fn write_range(
    series: &[Buffered],
    input: &Path,
    out_dir: &Path,
    start: i64,
    end: i64,
    report: &mut BackfillReport,
) -> Result<Option<BlockMeta>, TsdbError> {
    let mut out: Vec<Result<(Labels, Vec<crate::query::ChunkRef>), StorageError>> = Vec::new();
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    let mut samples: Vec<(i64, f64)> = Vec::new();
    for s in series {
        let a = s.samples.partition_point(|x| x.0 < start);
        let z = s.samples.partition_point(|x| x.0 < end);
        if a == z {
            continue;
        }
        samples.clear();
        let mut prev: Option<(i64, f64, u32)> = None;
        for &x in &s.samples[a..z] {
            if let Some(p) = prev.filter(|p| p.0 == x.0) {
                if p.1.to_bits() == x.1.to_bits() {
                    report.duplicates_dropped += 1;
                    continue;
                }
                return Err(parse_err(
                    input,
                    format!(
                        "line {}: duplicate sample for timestamp {} of series {} (different value on line {})",
                        x.2, x.0, s.labels, p.2
                    ),
                ));
            }
            samples.push((x.0, x.1));
            prev = Some(x);
        }
        mint = mint.min(samples[0].0);
        maxt = maxt.max(samples[samples.len() - 1].0);
        report.samples_written += samples.len() as u64;
        out.push(Ok((s.labels.clone(), encode_chunks(&samples))));
    }
    if out.is_empty() {
        return Ok(None);
    }
    let compaction = BlockMetaCompaction { level: 1, ..Default::default() };
    // promtool's block writer: [first sample, last sample + 1).
    write_block(out_dir, mint, maxt + 1, compaction, None, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_duration_rounding() {
        assert_eq!(compatible_block_duration(0), 2 * HOUR_MS);
        assert_eq!(compatible_block_duration(HOUR_MS), 2 * HOUR_MS);
        assert_eq!(compatible_block_duration(6 * HOUR_MS), 6 * HOUR_MS);
        assert_eq!(compatible_block_duration(17 * HOUR_MS), 6 * HOUR_MS);
        assert_eq!(compatible_block_duration(i64::MAX), 2 * HOUR_MS * 3i64.pow(9));
    }

    fn run(input: &str, opts: BackfillOptions) -> (tempfile::TempDir, Result<BackfillReport, TsdbError>) {
        let td = tempfile::tempdir().unwrap();
        let p = td.path().join("in.om");
        std::fs::write(&p, input).unwrap();
        let r = create_blocks_from_openmetrics(&p, &td.path().join("data"), opts);
        (td, r)
    }

    #[test]
    fn unsorted_input_multiple_ranges_and_dedup() {
        // Series interleaved and out of time order; two 2h ranges; one exact duplicate.
        let input = "# TYPE m gauge\nm{a=\"2\"} 3 7300\nm{a=\"1\"} 2 20\nm{a=\"1\"} 1 10\nm{a=\"1\"} 1 10\n\
                     m{a=\"2\"} 4 10.5\nm{a=\"1\"} 5 7200\n# EOF\n";
        let (td, r) = run(input, BackfillOptions::default());
        let r = r.unwrap();
        assert_eq!((r.samples_read, r.samples_written, r.duplicates_dropped), (6, 5, 1));
        assert_eq!(r.blocks.len(), 2);
        let (m0, m1) = (&r.blocks[0].0, &r.blocks[1].0);
        assert_eq!((m0.min_time, m0.max_time, m0.stats.num_samples, m0.stats.num_series), (10_000, 20_001, 3, 2));
        assert_eq!((m1.min_time, m1.max_time, m1.stats.num_samples), (7_200_000, 7_300_001, 2));
        assert_eq!(r.printed.lines().count(), 3, "{}", r.printed);
        assert!(r.printed.starts_with("BLOCK ULID                  MIN TIME"), "{}", r.printed);
        let mut dumped = Vec::new();
        crate::tools::dump(&td.path().join("data"), &[], i64::MIN, i64::MAX, &mut dumped).unwrap();
        assert_eq!(
            String::from_utf8(dumped).unwrap(),
            "{__name__=\"m\", a=\"1\"} 1 10000\n{__name__=\"m\", a=\"1\"} 2 20000\n{__name__=\"m\", a=\"1\"} 5 7200000\n\
             {__name__=\"m\", a=\"2\"} 4 10500\n{__name__=\"m\", a=\"2\"} 3 7300000\n"
        );
        // A larger max block duration puts everything in one 6h block; small buffers force several passes.
        let opts = BackfillOptions { max_block_duration_ms: 6 * HOUR_MS, max_buffered_samples: 1, quiet: true, ..Default::default() };
        let (_td, r) = run(input, opts);
        let r = r.unwrap();
        assert_eq!(r.blocks.len(), 1);
        assert!(r.printed.is_empty());
    }

    #[test]
    fn errors_name_the_line_and_write_nothing() {
        let cases = [
            ("m 1 1\nm 2\n# EOF\n", "line 2: expected timestamp for series {__name__=\"m\"}, got none"),
            ("m 1 1\nm{a=\"1\",a=\"2\"} 1 1\n# EOF\n", "line 2: label name \"a\" is not unique"),
            ("m 1 1\nm 2 1\n# EOF\n", "line 2: duplicate sample for timestamp 1000"),
            ("m 1 1\n", "line 2: data does not end with # EOF"),
        ];
        for (input, want) in cases {
            let (td, r) = run(input, BackfillOptions::default());
            let e = r.unwrap_err().to_string();
            assert!(e.contains(want), "{input:?}: {e}");
            let n = std::fs::read_dir(td.path().join("data")).map_or(0, |d| d.count());
            assert_eq!(n, 0, "{input:?} left blocks behind");
        }
    }

    #[test]
    fn negative_timestamps_and_empty_input() {
        let (_td, r) = run("m 1 -1\nm 2 0\n# EOF\n", BackfillOptions::default());
        let r = r.unwrap();
        assert_eq!(r.blocks.len(), 2);
        assert_eq!((r.blocks[0].0.min_time, r.blocks[0].0.max_time), (-1000, -999));
        let (_td, r) = run("# EOF\n", BackfillOptions::default());
        assert!(r.unwrap().blocks.is_empty());
    }
}
