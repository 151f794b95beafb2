//! The two narrow interfaces every part of ignis writes and reads through.
//!
//! * [`Appender`]: `append(labels, t, v)` … `commit()` / `rollback()`. A batch is all-or-nothing: nothing
//!   appended becomes visible to queries before `commit`, and `rollback` discards it. Per-sample errors
//!   (out of order, duplicate, too old) are returned by `append` and leave the rest of the batch intact.
//! * [`Queryable`] → [`Querier`]: `select(matchers)` → series sorted by labels, each with a sample iterator,
//!   plus label names and values. A querier covers the closed time range `[mint, maxt]` (ms) and returns only
//!   samples inside it.

use crate::{Labels, Matcher, Sample};

/// Opaque id of a series inside one storage, returned by `append` so later appends can skip the label lookup
/// (the scrape cache fast path). 0 means "unknown".
pub type SeriesRef = u64;

/// Why one sample was refused. The strings are Prometheus's, because users grep logs and metrics for them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    #[error("out of order sample")]
    OutOfOrder,
    #[error("out of bounds")]
    OutOfBounds,
    #[error("duplicate sample for timestamp")]
    DuplicateSample,
    #[error("invalid labels: {0}")]
    InvalidLabels(String),
    #[error("storage closed")]
    Closed,
    #[error("storage error: {0}")]
    Storage(String),
}

/// Errors from reading or committing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt data in {location}: {reason}")]
    Corrupt { location: String, reason: String },
    #[error("query canceled")]
    Canceled,
    #[error("storage closed")]
    Closed,
    #[error("{0}")]
    Other(String),
}

/// Writes samples in all-or-nothing batches.
pub trait Appender: Send {
    /// Stages one sample. `hint` is a ref an earlier `append` returned for the same labels, or 0; when it is
    /// valid the storage may skip looking `labels` up. Returns the series' ref.
    fn append(&mut self, hint: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError>;

    /// Makes every staged sample durable (per the storage's fsync policy) and visible, then empties the batch.
    fn commit(&mut self) -> Result<(), StorageError>;

    /// Discards every staged sample.
    fn rollback(&mut self);
}

/// What the caller will do with selected series; storages may use it to prune or pre-aggregate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectHints {
    /// Start and end of the data needed, in ms (already widened by lookback/range).
    pub start: i64,
    pub end: i64,
    /// Evaluation step in ms (0 for instant queries).
    pub step: i64,
    /// Range of a range vector selector in ms (0 for instant vector selectors).
    pub range: i64,
    /// Name of the function wrapping the selector, if any ("rate", "series" for metadata calls, …).
    pub func: Option<String>,
    /// Grouping labels of the enclosing aggregation, and whether they are `by` (true) or `without`.
    pub grouping: Vec<String>,
    pub by: bool,
    /// The caller needs, of each series, only the latest sample at or before `end`, and only if it is at or
    /// after `start` (an instant vector selector evaluated at one time). A querier may then return just that
    /// sample, or nothing for a series whose latest sample is before `start`. Queriers that ignore the hint
    /// return all samples as usual.
    pub latest_only: bool,
}

/// Iterates one series' samples in increasing time order.
pub trait SampleIter: Send {
    /// The next sample, or `None` at the end (or on error; see [`SampleIter::err`]).
    fn next(&mut self) -> Option<Sample>;

    /// The first sample at or after `t`, never moving backwards: if the sample last returned is already at or
    /// after `t` it is returned again. Before any call to `next` it searches from the start.
    fn seek(&mut self, t: i64) -> Option<Sample>;

    /// Appends to `out` every sample `next` would return up to and including `maxt`, and returns the first one
    /// after `maxt` (consumed, as `next` returned it), or `None` at the end. Same result as calling `next` in a
    /// loop; sources override it to hand over runs of samples without a call per sample.
    fn next_until(&mut self, maxt: i64, out: &mut Vec<Sample>) -> Option<Sample> {
        while let Some(s) = self.next() {
            if s.t > maxt {
                return Some(s);
            }
            out.push(s);
        }
        None
    }

    /// The error that ended iteration early, if any.
    fn err(&self) -> Option<&StorageError> {
        None
    }
}

/// One selected series.
pub struct Series {
    pub labels: Labels,
    pub samples: Box<dyn SampleIter>,
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series").field("labels", &self.labels).finish_non_exhaustive()
    }
}

/// Series in label order (when `sorted` was asked for).
pub type SeriesSet = Box<dyn Iterator<Item = Result<Series, StorageError>> + Send>;

/// Reads a fixed time range.
pub trait Querier: Send + Sync {
    /// Series matching all `matchers`. A matcher on a missing label sees the value "".
    fn select(&self, sorted: bool, hints: Option<&SelectHints>, matchers: &[Matcher])
        -> Result<SeriesSet, StorageError>;

    /// Sorted, unique values of label `name` over series matching `matchers` (all series when empty).
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// [`Querier::label_values`] in one buffer. Sources with many values override it to skip the allocation
    /// per value; the default converts.
    fn label_values_list(&self, name: &str, matchers: &[Matcher]) -> Result<crate::StrList, StorageError> {
        Ok(crate::StrList::from(self.label_values(name, matchers)?))
    }

    /// Sorted, unique label names over series matching `matchers` (all series when empty).
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
}

/// Something that can be queried: the head, a block, the merge of many, a remote store.
pub trait Queryable: Send + Sync {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError>;
}

/// A queryable that also accepts writes.
pub trait Storage: Queryable {
    fn appender(&self) -> Box<dyn Appender>;
}

/// A [`SampleIter`] over an owned vector (used by simple storages and tests).
pub struct VecSampleIter {
    samples: Vec<Sample>,
    /// Index of the next sample to return; the last returned one is `pos - 1`.
    pos: usize,
}

/// Test helper: forwards `next`, `seek` and `err` only, so `next_until` is the trait's one-by-one default: the
/// reference a source's own `next_until` is checked against.
pub struct OneByOne<I>(pub I);

impl<I: SampleIter> SampleIter for OneByOne<I> {
    fn next(&mut self) -> Option<Sample> {
        self.0.next()
    }
    fn seek(&mut self, t: i64) -> Option<Sample> {
        self.0.seek(t)
    }
    fn err(&self) -> Option<&StorageError> {
        self.0.err()
    }
}

impl VecSampleIter {
    pub fn new(samples: Vec<Sample>) -> Self {
        VecSampleIter { samples, pos: 0 }
    }
}

impl SampleIter for VecSampleIter {
    fn next(&mut self) -> Option<Sample> {
        let s = self.samples.get(self.pos).copied();
        if s.is_some() {
            self.pos += 1;
        }
        s
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        if self.pos > 0 && self.samples[self.pos - 1].t >= t {
            return Some(self.samples[self.pos - 1]);
        }
        let start = self.pos;
        let i = start + self.samples[start..].partition_point(|s| s.t < t);
        self.pos = i;
        self.next()
    }

    fn next_until(&mut self, maxt: i64, out: &mut Vec<Sample>) -> Option<Sample> {
        let rest = &self.samples[self.pos.min(self.samples.len())..];
        let k = rest.partition_point(|s| s.t <= maxt);
        out.extend_from_slice(&rest[..k]);
        self.pos += k;
        self.next()
    }
}
