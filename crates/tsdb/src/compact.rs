//! Levelled compaction as Prometheus's `LeveledCompactor`: overlapping blocks are merged first; otherwise
//! blocks (except the newest) that fill an aligned range of 3×, 9×, … the base range are merged into one.
//! The result is renamed into place before the sources are deleted, so a crash at any point loses nothing
//! (at worst both exist, overlap, and are merged again at the next start).

use crate::block::{write_block, Block, BlockDesc, BlockMetaCompaction};
use crate::db::Db;
use crate::error::TsdbError;
use crate::metrics::Metrics;
use crate::query::ChunkRef;
use model::{Labels, StorageError};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Blocks to compact next (sorted by min time), or empty.
pub fn plan(blocks: &[Arc<Block>], ranges: &[i64]) -> Vec<Arc<Block>> {
    let mut bs: Vec<Arc<Block>> = blocks.to_vec();
    bs.sort_by_key(|b| b.meta().min_time);
    let over = select_overlapping(&bs);
    if !over.is_empty() {
        return over;
    }
    if bs.len() < 2 {
        return Vec::new();
    }
    // Leave the newest block alone for a full block range (Prometheus: gives backups a stable window).
    bs.pop();
    select_dirs(&bs, ranges)
}

fn select_overlapping(bs: &[Arc<Block>]) -> Vec<Arc<Block>> {
    let mut out: Vec<Arc<Block>> = Vec::new();
    let Some(first) = bs.first() else { return out };
    let mut global_max = first.meta().max_time;
    for i in 1..bs.len() {
        let m = bs[i].meta();
        if m.min_time < global_max {
            if out.is_empty() {
                out.push(bs[i - 1].clone());
            }
            out.push(bs[i].clone());
        } else if !out.is_empty() {
            break;
        }
        global_max = global_max.max(m.max_time);
    }
    out
}

fn split_by_range(bs: &[Arc<Block>], tr: i64) -> Vec<Vec<Arc<Block>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bs.len() {
        let m = bs[i].meta();
        let t0 = tr * m.min_time.div_euclid(tr);
        if m.max_time > t0 + tr {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < bs.len() && bs[i].meta().max_time <= t0 + tr {
            group.push(bs[i].clone());
            i += 1;
        }
        if !group.is_empty() {
            out.push(group);
        }
    }
    out
}

fn select_dirs(bs: &[Arc<Block>], ranges: &[i64]) -> Vec<Arc<Block>> {
    if ranges.len() < 2 || bs.is_empty() {
        return Vec::new();
    }
    let high = bs[bs.len() - 1].meta().min_time;
    for &iv in &ranges[1..] {
        for p in split_by_range(bs, iv) {
            if p.iter().any(|b| b.meta().compaction.failed) {
                continue;
            }
            let mint = p[0].meta().min_time;
            let maxt = p[p.len() - 1].meta().max_time;
            if (maxt - mint == iv || maxt <= high) && p.len() > 1 {
                return p;
            }
        }
    }
    Vec::new()
}

/// Merges `blocks` into one new block; returns it (None when nothing was left, e.g. all deleted).
pub fn compact_blocks(parent: &std::path::Path, blocks: &[Arc<Block>]) -> Result<Option<Arc<Block>>, TsdbError> {
    let mint = blocks.iter().map(|b| b.meta().min_time).min().unwrap_or(0);
    let maxt = blocks.iter().map(|b| b.meta().max_time).max().unwrap_or(0);
    let mut sources = BTreeSet::new();
    let mut level = 0;
    for b in blocks {
        sources.extend(b.meta().compaction.sources.iter().copied());
        level = level.max(b.meta().compaction.level);
    }
    let compaction = BlockMetaCompaction {
        level: level + 1,
        sources: sources.into_iter().collect(),
        parents: blocks
            .iter()
            .map(|b| BlockDesc { ulid: b.meta().ulid, min_time: b.meta().min_time, max_time: b.meta().max_time })
            .collect(),
        ..Default::default()
    };
    let mut syms = BTreeSet::new();
    for b in blocks {
        for s in b.index().symbols()? {
            if !syms.contains(s) {
                syms.insert(s.to_string());
            }
        }
    }
    let symbols: Vec<String> = syms.into_iter().collect();
    let merged = MergedSeries::new(blocks)?;
    let meta = write_block(parent, mint, maxt, compaction, Some(symbols), merged)?;
    match meta {
        Some(m) => Ok(Some(Arc::new(Block::open(&parent.join(m.ulid.to_string()))?))),
        None => Ok(None),
    }
}

/// Series of several blocks merged by labels, tombstones applied.
struct MergedSeries {
    blocks: Vec<Arc<Block>>,
    iters: Vec<std::iter::Peekable<crate::block::BlockSeriesIter>>,
}

impl MergedSeries {
    fn new(blocks: &[Arc<Block>]) -> Result<Self, StorageError> {
        let mut iters = Vec::new();
        for b in blocks {
            iters.push(b.series_iter()?.peekable());
        }
        Ok(MergedSeries { blocks: blocks.to_vec(), iters })
    }
}

impl Iterator for MergedSeries {
    type Item = Result<(Labels, Vec<ChunkRef>), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut min: Option<Labels> = None;
        for it in self.iters.iter_mut() {
            match it.peek() {
                Some(Ok((_, l, _))) if min.as_ref().is_none_or(|m| l < m) => min = Some(l.clone()),
                Some(Ok(_)) => {}
                Some(Err(_)) => return it.next().map(|r| r.map(|(_, l, c)| (l, c))),
                None => {}
            }
        }
        let min = min?;
        let mut chunks = Vec::new();
        for (i, it) in self.iters.iter_mut().enumerate() {
            if matches!(it.peek(), Some(Ok((_, l, _))) if *l == min) {
                if let Some(Ok((id, _, cs))) = it.next() {
                    match self.blocks[i].deleted(id) {
                        Some(del) => match crate::block::normalize_chunks(cs, i64::MIN, i64::MAX, del) {
                            Ok(cs) => chunks.extend(cs),
                            Err(e) => return Some(Err(e)),
                        },
                        None => chunks.extend(cs),
                    }
                }
            }
        }
        chunks.sort_by_key(|c| c.mint);
        Some(Ok((min, chunks)))
    }
}

/// Runs compaction plans until none is left. Returns whether anything was compacted.
pub(crate) fn compact_all(db: &Db) -> Result<bool, TsdbError> {
    let ranges = db.options().block_ranges();
    let mut changed = false;
    loop {
        let blocks = db.blocks_snapshot();
        let todo = plan(&blocks, &ranges);
        if todo.is_empty() {
            return Ok(changed);
        }
        Metrics::inc(&db.metrics().compactions_triggered, 1);
        let start = std::time::Instant::now();
        let new = match compact_blocks(db.dir(), &todo) {
            Ok(n) => n,
            Err(e) => {
                Metrics::inc(&db.metrics().compactions_failed, 1);
                return Err(e);
            }
        };
        tracing::info!(
            sources = todo.len(),
            result = ?new.as_ref().map(|b| b.meta().ulid),
            ms = start.elapsed().as_millis() as u64,
            "compacted blocks"
        );
        db.swap_blocks(&todo, new.into_iter().collect())?;
        Metrics::inc(&db.metrics().compactions, 1);
        changed = true;
    }
}
