//! Read-side building blocks shared by the head, blocks and the DB: a sample iterator over a series' chunks,
//! and the merge of several sorted series sets (head + blocks, or overlapping blocks).

use crate::chunkenc::{ChunkBytes, XorDecoder};
use model::storage::{Querier, SampleIter, SelectHints, Series, SeriesSet};
use model::{Labels, Matcher, Sample, StorageError};
use std::collections::BTreeSet;
use std::sync::Arc;

/// One chunk of a series as handed to readers.
#[derive(Clone, Debug)]
pub struct ChunkRef {
    pub mint: i64,
    pub maxt: i64,
    pub data: ChunkBytes,
}

/// Iterates the samples of time-ordered, non-overlapping XOR chunks, restricted to `[mint, maxt]` and with
/// deleted intervals (tombstones) skipped.
pub struct ChunksIter {
    chunks: Vec<ChunkRef>,
    idx: usize,
    dec: Option<XorDecoder>,
    mint: i64,
    maxt: i64,
    deleted: Arc<[(i64, i64)]>,
    last: Option<Sample>,
    done: bool,
    err: Option<StorageError>,
    location: Arc<str>,
}

impl ChunksIter {
    pub fn new(chunks: Vec<ChunkRef>, mint: i64, maxt: i64, deleted: Arc<[(i64, i64)]>, location: Arc<str>) -> Self {
        ChunksIter { chunks, idx: 0, dec: None, mint, maxt, deleted, last: None, done: false, err: None, location }
    }

    fn is_deleted(&self, t: i64) -> bool {
        self.deleted.iter().any(|&(a, b)| t >= a && t <= b)
    }

    /// Next raw sample of the chunk sequence (any time), or None.
    fn next_raw(&mut self) -> Option<Sample> {
        loop {
            if self.idx >= self.chunks.len() {
                return None;
            }
            if self.dec.is_none() {
                let c = &self.chunks[self.idx];
                if c.maxt < self.mint {
                    self.idx += 1;
                    continue;
                }
                if c.mint > self.maxt {
                    self.idx = self.chunks.len();
                    return None;
                }
                match XorDecoder::new(c.data.as_slice()) {
                    Ok(d) => self.dec = Some(d),
                    Err(e) => {
                        self.err = Some(e.corrupt(&self.location));
                        self.idx = self.chunks.len();
                        return None;
                    }
                }
            }
            let data = self.chunks[self.idx].data.as_slice();
            let dec = self.dec.as_mut()?;
            match dec.next(data) {
                Ok(Some((t, v))) => return Some(Sample::new(t, f64::from_bits(v))),
                Ok(None) => {
                    self.dec = None;
                    self.idx += 1;
                }
                Err(e) => {
                    self.err = Some(e.corrupt(&self.location));
                    self.idx = self.chunks.len();
                    return None;
                }
            }
        }
    }
}

impl SampleIter for ChunksIter {
    fn next(&mut self) -> Option<Sample> {
        if self.done {
            return None;
        }
        loop {
            let Some(s) = self.next_raw() else {
                self.done = true;
                return None;
            };
            if s.t < self.mint || self.last.is_some_and(|l| s.t <= l.t) {
                continue;
            }
            if s.t > self.maxt {
                self.done = true;
                return None;
            }
            if !self.deleted.is_empty() && self.is_deleted(s.t) {
                continue;
            }
            self.last = Some(s);
            return Some(s);
        }
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        if let Some(l) = self.last {
            if l.t >= t {
                return Some(l);
            }
        }
        if self.done {
            return None;
        }
        // Skip whole chunks that end before t.
        while self.idx < self.chunks.len() && self.chunks[self.idx].maxt < t {
            self.idx += 1;
            self.dec = None;
        }
        loop {
            let s = self.next()?;
            if s.t >= t {
                return Some(s);
            }
        }
    }

    fn err(&self) -> Option<&StorageError> {
        self.err.as_ref()
    }
}

/// Merges several iterators of one series; on equal timestamps the earliest iterator wins.
pub struct MergeSampleIter {
    its: Vec<Box<dyn SampleIter>>,
    heads: Vec<Option<Sample>>,
    started: bool,
    last: Option<Sample>,
}

impl MergeSampleIter {
    pub fn new(its: Vec<Box<dyn SampleIter>>) -> Self {
        let n = its.len();
        MergeSampleIter { its, heads: vec![None; n], started: false, last: None }
    }

    fn pick(&mut self) -> Option<Sample> {
        let mut best: Option<usize> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some(s) = h {
                if best.is_none_or(|b| s.t < self.heads[b].map_or(i64::MAX, |x| x.t)) {
                    best = Some(i);
                }
            }
        }
        let b = best?;
        let s = self.heads[b]?;
        // Advance every iterator sitting on this timestamp (duplicates across sources).
        for i in 0..self.its.len() {
            if self.heads[i].is_some_and(|h| h.t == s.t) {
                self.heads[i] = self.its[i].next();
            }
        }
        self.last = Some(s);
        Some(s)
    }
}

impl SampleIter for MergeSampleIter {
    fn next(&mut self) -> Option<Sample> {
        if !self.started {
            self.started = true;
            for i in 0..self.its.len() {
                self.heads[i] = self.its[i].next();
            }
        }
        self.pick()
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        if let Some(l) = self.last {
            if l.t >= t {
                return Some(l);
            }
        }
        self.started = true;
        for i in 0..self.its.len() {
            if self.heads[i].is_none_or(|h| h.t < t) {
                self.heads[i] = self.its[i].seek(t);
            }
        }
        self.pick()
    }

    fn err(&self) -> Option<&StorageError> {
        self.its.iter().find_map(|i| i.err())
    }
}

/// A querier over several queriers whose results are merged by labels.
pub struct MergeQuerier {
    pub queriers: Vec<Box<dyn Querier>>,
}

impl Querier for MergeQuerier {
    fn select(&self, sorted: bool, hints: Option<&SelectHints>, ms: &[Matcher]) -> Result<SeriesSet, StorageError> {
        if self.queriers.len() == 1 {
            return self.queriers[0].select(sorted, hints, ms);
        }
        let mut sets = Vec::with_capacity(self.queriers.len());
        for q in &self.queriers {
            // Merging needs every input sorted.
            sets.push(q.select(true, hints, ms)?);
        }
        Ok(Box::new(MergeSeriesSet::new(sets)))
    }

    fn label_values(&self, name: &str, ms: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut set = BTreeSet::new();
        for q in &self.queriers {
            set.extend(q.label_values(name, ms)?);
        }
        Ok(set.into_iter().collect())
    }

    fn label_names(&self, ms: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut set = BTreeSet::new();
        for q in &self.queriers {
            set.extend(q.label_names(ms)?);
        }
        Ok(set.into_iter().collect())
    }
}

/// K-way merge of sorted series sets; series with equal labels get a [`MergeSampleIter`].
pub struct MergeSeriesSet {
    sets: Vec<SeriesSet>,
    heads: Vec<Option<Series>>,
    started: bool,
    failed: bool,
}

impl MergeSeriesSet {
    pub fn new(sets: Vec<SeriesSet>) -> Self {
        let n = sets.len();
        MergeSeriesSet { sets, heads: (0..n).map(|_| None).collect(), started: false, failed: false }
    }
}

impl Iterator for MergeSeriesSet {
    type Item = Result<Series, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if !self.started {
            self.started = true;
            for i in 0..self.sets.len() {
                match self.sets[i].next() {
                    Some(Ok(s)) => self.heads[i] = Some(s),
                    Some(Err(e)) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                    None => {}
                }
            }
        }
        let mut min: Option<Labels> = None;
        for s in self.heads.iter().flatten() {
            if min.as_ref().is_none_or(|m| s.labels < *m) {
                min = Some(s.labels.clone());
            }
        }
        let min = min?;
        let mut its: Vec<Box<dyn SampleIter>> = Vec::new();
        for i in 0..self.sets.len() {
            if self.heads[i].as_ref().is_some_and(|s| s.labels == min) {
                if let Some(s) = self.heads[i].take() {
                    its.push(s.samples);
                }
                match self.sets[i].next() {
                    Some(Ok(s)) => self.heads[i] = Some(s),
                    Some(Err(e)) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                    None => {}
                }
            }
        }
        let samples: Box<dyn SampleIter> =
            if its.len() == 1 { its.pop()? } else { Box::new(MergeSampleIter::new(its)) };
        Some(Ok(Series { labels: min, samples }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::XorAppender;
    use model::VecSampleIter;

    fn chunk(samples: &[(i64, f64)]) -> ChunkRef {
        let mut a = XorAppender::new();
        for &(t, v) in samples {
            a.append(t, v);
        }
        ChunkRef {
            mint: samples[0].0,
            maxt: samples[samples.len() - 1].0,
            data: ChunkBytes::Heap(Arc::from(a.bytes())),
        }
    }

    #[test]
    fn chunks_iter_range_seek_and_tombstones() {
        let cs = vec![chunk(&[(1, 1.0), (2, 2.0), (3, 3.0)]), chunk(&[(10, 10.0), (11, 11.0)])];
        let mut it = ChunksIter::new(cs.clone(), 2, 10, Arc::from(vec![(3, 3)]), Arc::from("t"));
        assert_eq!(it.next().map(|s| s.t), Some(2));
        assert_eq!(it.next().map(|s| s.t), Some(10));
        assert_eq!(it.next(), None);
        let mut it = ChunksIter::new(cs, 0, 100, Arc::from(vec![]), Arc::from("t"));
        assert_eq!(it.seek(5).map(|s| s.t), Some(10));
        assert_eq!(it.seek(1).map(|s| s.t), Some(10));
        assert_eq!(it.next().map(|s| s.t), Some(11));
        assert_eq!(it.seek(12), None);
    }

    #[test]
    fn merge_dedups_timestamps() {
        let a = VecSampleIter::new(vec![Sample::new(1, 1.0), Sample::new(3, 3.0)]);
        let b = VecSampleIter::new(vec![Sample::new(1, 9.0), Sample::new(2, 2.0), Sample::new(4, 4.0)]);
        let mut m = MergeSampleIter::new(vec![Box::new(a), Box::new(b)]);
        let got: Vec<(i64, f64)> = std::iter::from_fn(|| m.next()).map(|s| (s.t, s.v)).collect();
        assert_eq!(got, vec![(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]);
    }
}
