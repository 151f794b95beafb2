//! A simple, obviously-correct in-memory storage: the reference model for TSDB tests and a backend for unit
//! tests of the engine. Not for production use (one global lock, samples as plain vectors).

use crate::storage::{Appender, Querier, Queryable, SelectHints, Series, SeriesSet, Storage, VecSampleIter};
use crate::{AppendError, Labels, Matcher, Sample, SeriesRef, StorageError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

type Map = BTreeMap<Labels, Vec<Sample>>;

#[derive(Clone, Default)]
pub struct MemStorage {
    data: Arc<RwLock<Map>>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes every series.
    pub fn clear(&self) {
        self.data.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// A copy of everything stored, for comparisons in tests.
    pub fn snapshot(&self) -> Map {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

struct MemAppender {
    data: Arc<RwLock<Map>>,
    pending: Vec<(Labels, Sample)>,
}

impl Appender for MemAppender {
    fn append(&mut self, _hint: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        if labels.is_empty() {
            return Err(AppendError::InvalidLabels("empty label set".into()));
        }
        let last = self
            .pending
            .iter()
            .rev()
            .find(|(l, _)| l == labels)
            .map(|(_, s)| *s)
            .or_else(|| {
                let d = self.data.read().unwrap_or_else(|e| e.into_inner());
                d.get(labels).and_then(|s| s.last().copied())
            });
        if let Some(last) = last {
            if t < last.t {
                return Err(AppendError::OutOfOrder);
            }
            if t == last.t {
                if last.v.to_bits() == v.to_bits() {
                    return Ok(1);
                }
                return Err(AppendError::DuplicateSample);
            }
        }
        self.pending.push((labels.clone(), Sample::new(t, v)));
        Ok(1)
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        let mut d = self.data.write().unwrap_or_else(|e| e.into_inner());
        for (l, s) in self.pending.drain(..) {
            let v = d.entry(l).or_default();
            if v.last().is_none_or(|last| last.t < s.t) {
                v.push(s);
            }
        }
        Ok(())
    }

    fn rollback(&mut self) {
        self.pending.clear();
    }
}

impl Storage for MemStorage {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(MemAppender { data: self.data.clone(), pending: Vec::new() })
    }
}

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(MemQuerier { data: self.data.clone(), mint, maxt }))
    }
}

struct MemQuerier {
    data: Arc<RwLock<Map>>,
    mint: i64,
    maxt: i64,
}

fn matches_all(l: &Labels, ms: &[Matcher]) -> bool {
    ms.iter().all(|m| m.matches(l.get_or_empty(&m.name)))
}

impl MemQuerier {
    fn matching(&self, ms: &[Matcher]) -> Vec<(Labels, Vec<Sample>)> {
        let d = self.data.read().unwrap_or_else(|e| e.into_inner());
        d.iter()
            .filter(|(l, _)| matches_all(l, ms))
            .map(|(l, s)| {
                let s: Vec<Sample> = s.iter().filter(|s| s.t >= self.mint && s.t <= self.maxt).copied().collect();
                (l.clone(), s)
            })
            .filter(|(_, s)| !s.is_empty())
            .collect()
    }
}

impl Querier for MemQuerier {
    fn select(&self, _sorted: bool, _hints: Option<&SelectHints>, ms: &[Matcher]) -> Result<SeriesSet, StorageError> {
        let v = self.matching(ms);
        Ok(Box::new(
            v.into_iter().map(|(labels, s)| Ok(Series { labels, samples: Box::new(VecSampleIter::new(s)) })),
        ))
    }

    fn label_values(&self, name: &str, ms: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let set: BTreeSet<String> =
            self.matching(ms).iter().filter_map(|(l, _)| l.get(name).map(str::to_string)).collect();
        Ok(set.into_iter().collect())
    }

    fn label_names(&self, ms: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let set: BTreeSet<String> =
            self.matching(ms).iter().flat_map(|(l, _)| l.iter().map(|x| x.name.to_string())).collect();
        Ok(set.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{SampleIter, VecSampleIter};
    use crate::{labels, MatchOp};

    #[test]
    fn append_commit_select() {
        let s = MemStorage::new();
        let mut a = s.appender();
        let l = labels! {"__name__" => "up", "job" => "x"};
        a.append(0, &l, 10, 1.0).unwrap();
        a.append(0, &l, 20, 2.0).unwrap();
        assert_eq!(a.append(0, &l, 15, 3.0), Err(AppendError::OutOfOrder));
        assert_eq!(a.append(0, &l, 20, 3.0), Err(AppendError::DuplicateSample));
        assert!(s.snapshot().is_empty(), "nothing visible before commit");
        a.commit().unwrap();
        let q = s.querier(0, 15).unwrap();
        let mut set = q.select(true, None, &[Matcher::new(MatchOp::Equal, "job", "x").unwrap()]).unwrap();
        let mut series = set.next().unwrap().unwrap();
        assert_eq!(series.samples.next(), Some(Sample::new(10, 1.0)));
        assert_eq!(series.samples.next(), None);
        a.append(0, &l, 30, 3.0).unwrap();
        a.rollback();
        a.commit().unwrap();
        assert_eq!(s.snapshot()[&l].len(), 2);
    }

    #[test]
    fn vec_iter_seek_never_goes_back() {
        let mut it = VecSampleIter::new((0..5).map(|i| Sample::new(i * 10, i as f64)).collect());
        assert_eq!(it.seek(15).map(|s| s.t), Some(20));
        assert_eq!(it.seek(5).map(|s| s.t), Some(20));
        assert_eq!(it.next().map(|s| s.t), Some(30));
        assert_eq!(it.seek(100), None);
    }
}
