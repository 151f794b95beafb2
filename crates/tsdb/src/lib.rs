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

/// The bytes an allocation of `n` bytes really takes: the size class jemalloc (the `ignis` binary's global
/// allocator) serves it from. Classes are multiples of 8 up to 16, of 16 up to 128, then four per doubling
/// (160, 192, 224, 256, 320, ...); jemalloc adds no per-allocation header. The head sizes its growing buffers
/// to whole classes and counts its heap with this.
pub fn alloc_size(n: usize) -> usize {
    match n {
        0..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            let lg = usize::BITS - 1 - (n - 1).leading_zeros();
            let step = 1usize << (lg - 2);
            n.div_ceil(step) * step
        }
    }
}

#[cfg(test)]
mod alloc_size_tests {
    use super::alloc_size;

    #[test]
    fn follows_jemalloc_size_classes() {
        let classes = [8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280];
        let mut prev = 0;
        for &c in &classes {
            for n in prev + 1..=c {
                assert_eq!(alloc_size(n), c, "request {n}");
            }
            prev = c;
        }
        assert_eq!(alloc_size(1 << 20), 1 << 20);
        assert_eq!(alloc_size((1 << 20) + 1), (1 << 20) + (1 << 18));
    }
}
