//! The embedded storage engine of ignis: a compact in-memory head with a write-ahead log, immutable blocks in
//! Prometheus's on-disk format, levelled compaction and retention. See docs/format/*.md for the formats.
//!
//! Entry point: [`Db::open`]. `Db` implements `model::storage::Storage` (appends go to the head) and
//! `Queryable` (a merge of the head and every block overlapping the query range).

pub mod backfill;
pub mod block;
pub mod chunkenc;
pub mod chunks;
pub mod compact;
pub mod db;
pub mod encoding;
pub mod error;
pub mod gofmt;
pub mod head;
pub mod index;
pub mod metrics;
pub mod openmetrics;
pub mod postings;
pub mod query;
pub mod tools;
pub mod wal;

pub use backfill::{create_blocks_from_openmetrics, create_blocks_from_openmetrics_to, BackfillOptions, BackfillReport};
pub use block::{Block, BlockMeta, BlockStats};
pub use db::{Db, Options};
pub use error::TsdbError;
pub use head::{Head, HeadStats};
pub use metrics::Metrics;
pub use tools::{dump, list_blocks};
