//! Read-side building blocks shared by the head, blocks and the DB: a sample iterator over a series' chunks,
//! and the merge of several sorted series sets (head + blocks, or overlapping blocks).

use crate::chunkenc::{ChunkBytes, XorDecoder};
use model::storage::SampleIter;
use model::{Sample, StorageError};
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

// Merging head and blocks uses the generic merge of `model` (the same one remote-read sources go through).
pub use model::merge::{MergeQuerier, MergeSampleIter, MergeSeriesSet};

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
