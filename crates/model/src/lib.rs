//! Shared vocabulary of ignis: labels, matchers, samples, durations, and the two narrow storage interfaces
//! (`Appender` for writes, `Queryable` for reads) that everything else is built on.
//!
//! Architecture invariant: this crate knows nothing about how data is stored. The TSDB, remote-read clients,
//! bucket stores and the dedup merger implement [`storage::Queryable`]; the PromQL engine, the API and
//! /federate only consume it.

pub mod duration;
mod goregex;
pub mod labels;
pub mod matcher;
pub mod mem;
pub mod merge;
pub mod sample;
pub mod storage;
pub mod strlist;

pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use sample::{is_stale_nan, Sample, STALE_NAN, STALE_NAN_BITS};
pub use strlist::StrList;
pub use storage::{Storage, VecSampleIter, 
    AppendError, Appender, Querier, Queryable, SampleIter, SelectHints, Series, SeriesRef, SeriesSet,
    StorageError,
};
