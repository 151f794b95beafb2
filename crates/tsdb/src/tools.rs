//! Library side of `ignis tsdb dump|list`: read-only views of a data directory that print exactly what
//! `promtool tsdb dump|list` (Prometheus 2.42) prints, so scripts written against promtool keep working.
//!
//! Both open the directory the way promtool's `DBReadOnly` does: no lock file, nothing created, deleted or
//! repaired (a torn WAL tail just ends the replay), so they are safe next to a running server.

use crate::block::{open_blocks, Block};
use crate::error::{IoContext, TsdbError};
use crate::gofmt;
use crate::head::{Head, HeadQuerier};
use crate::metrics::Metrics;
use crate::query::MergeQuerier;
use model::storage::Querier;
use model::{Matcher, StorageError};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

const HOUR_MS: i64 = 3_600_000;

/// The loadable blocks of `dir`, oldest first; errors like promtool if a block is unreadable, unless a
/// readable block lists it among its compaction parents (then it is a leftover of a finished compaction).
fn read_only_blocks(dir: &Path) -> Result<Vec<Arc<Block>>, TsdbError> {
    if !dir.is_dir() {
        return Err(TsdbError::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory")));
    }
    let (blocks, bad) = open_blocks(dir, true)?;
    let superseded = |u: &ulid::Ulid| blocks.iter().any(|b| b.meta().compaction.parents.iter().any(|p| p.ulid == *u));
    let bad: Vec<_> = bad.into_iter().filter(|b| !superseded(&b.ulid)).collect();
    if let Some(b) = bad.first() {
        let all: Vec<String> = bad.iter().map(|b| format!("{}: {}", b.ulid, b.error)).collect();
        return Err(TsdbError::Corrupt {
            location: b.dir.display().to_string(),
            reason: format!("unexpected corrupted block: {}", all.join("; ")),
        });
    }
    Ok(blocks)
}

/// `promtool tsdb dump [--min-time] [--max-time] [--match]`: every sample of the series matching `matchers`
/// (all series when empty) in `[mint, maxt]`, one line each: `{__name__="up", job="x"} 1 1700000000000`
/// (Go's `%g` value, ms timestamp). Reads blocks and replays the WAL (head) read-only.
///
/// Series come in label order, as promtool 2.42 prints them (checked against it for head-only, block-only
/// and mixed directories); a series present in several sources is merged, equal timestamps deduplicated.
pub fn dump(dir: &Path, matchers: &[Matcher], mint: i64, maxt: i64, out: &mut dyn Write) -> Result<(), TsdbError> {
    let blocks = read_only_blocks(dir)?;
    let metrics = Arc::new(Metrics::default());
    let head = Head::new(2 * HOUR_MS, None, metrics.clone());
    // promtool's DBReadOnly: blocks sorted by min time, the last one's end is where the head starts.
    let max_block_time = blocks.last().map_or(i64::MIN, |b| b.meta().max_time);
    if max_block_time <= maxt {
        if !blocks.is_empty() {
            head.set_min_valid_time(max_block_time);
        }
        let wal_dir = dir.join("wal");
        if wal_dir.is_dir() {
            crate::db::replay_wal(&wal_dir, &head, &metrics, false)?;
        }
    }
    let mut qs: Vec<Box<dyn Querier>> = Vec::new();
    for b in &blocks {
        if b.overlaps(mint, maxt) {
            qs.push(Box::new(b.querier(mint, maxt)));
        }
    }
    if maxt >= head.min_time() {
        qs.push(Box::new(HeadQuerier { head: head.clone(), mint, maxt }));
    }
    if qs.is_empty() {
        return Ok(());
    }
    let q = MergeQuerier::new(qs);
    let set = q.select(true, None, matchers)?;
    let mut buf = String::with_capacity(1 << 16);
    let flush = |buf: &mut String, out: &mut dyn Write| -> Result<(), TsdbError> {
        out.write_all(buf.as_bytes()).map_err(|e| TsdbError::io("<dump output>", e))?;
        buf.clear();
        Ok(())
    };
    let mut prefix = String::new();
    for s in set {
        let mut s = s?;
        prefix.clear();
        gofmt::labels(&mut prefix, &s.labels);
        prefix.push(' ');
        while let Some(x) = s.samples.next() {
            buf.push_str(&prefix);
            gofmt::fmt_g(&mut buf, x.v);
            buf.push(' ');
            let _ = write!(buf, "{}", x.t);
            buf.push('\n');
            if buf.len() >= 1 << 16 {
                flush(&mut buf, out)?;
            }
        }
        if let Some(e) = s.samples.err() {
            flush(&mut buf, out)?;
            return Err(TsdbError::Storage(StorageError::Corrupt {
                location: s.labels.to_string(),
                reason: e.to_string(),
            }));
        }
    }
    flush(&mut buf, out)?;
    out.flush().map_err(|e| TsdbError::io("<dump output>", e))
}

/// One `promtool tsdb list` row for `b`.
pub(crate) fn block_row(b: &Block, human_readable: bool) -> Vec<String> {
    let m = b.meta();
    let time = |t: i64| if human_readable { gofmt::utc_time(t) } else { t.to_string() };
    let size = b.size() as i64;
    vec![
        m.ulid.to_string(),
        time(m.min_time),
        time(m.max_time),
        gofmt::duration_ms(m.max_time - m.min_time),
        m.stats.num_samples.to_string(),
        m.stats.num_chunks.to_string(),
        m.stats.num_series.to_string(),
        if human_readable { gofmt::base2_bytes(size) } else { size.to_string() },
    ]
}

pub(crate) fn header_row() -> Vec<String> {
    ["BLOCK ULID", "MIN TIME", "MAX TIME", "DURATION", "NUM SAMPLES", "NUM CHUNKS", "NUM SERIES", "SIZE"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// `promtool tsdb list [-r]`: the blocks of `dir` (oldest first) as promtool's table. Fails like promtool
/// when a block cannot be read.
pub fn list_blocks(dir: &Path, human_readable: bool, out: &mut dyn Write) -> Result<(), TsdbError> {
    let blocks = read_only_blocks(dir)?;
    let mut rows = vec![header_row()];
    rows.extend(blocks.iter().map(|b| block_row(b, human_readable)));
    out.write_all(gofmt::tabwrite(&rows).as_bytes()).ctx("<list output>")
}
