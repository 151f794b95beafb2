//! Counters and gauges the web crate exports. Each field's doc names the Prometheus metric it stands for.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    /// prometheus_tsdb_head_series (gauge)
    pub head_series: AtomicU64,
    /// prometheus_tsdb_head_series_created_total
    pub head_series_created: AtomicU64,
    /// prometheus_tsdb_head_series_removed_total
    pub head_series_removed: AtomicU64,
    /// prometheus_tsdb_head_chunks (gauge)
    pub head_chunks: AtomicU64,
    /// prometheus_tsdb_head_chunks_created_total
    pub head_chunks_created: AtomicU64,
    /// prometheus_tsdb_head_chunks_removed_total
    pub head_chunks_removed: AtomicU64,
    /// prometheus_tsdb_head_samples_appended_total{type="float"}
    pub head_samples_appended: AtomicU64,
    /// prometheus_tsdb_out_of_order_samples_total{type="float"}
    pub out_of_order_samples: AtomicU64,
    /// prometheus_tsdb_out_of_bound_samples_total{type="float"}
    pub out_of_bound_samples: AtomicU64,
    /// prometheus_tsdb_duplicate_samples_total (ignis-specific name; Prometheus counts these in
    /// prometheus_target_scrapes_sample_duplicate_timestamp_total at the scrape layer)
    pub duplicate_samples: AtomicU64,
    /// prometheus_tsdb_head_truncations_total
    pub head_truncations: AtomicU64,
    /// prometheus_tsdb_head_gc_duration_seconds (last, in ms; ignis reports the last value)
    pub head_gc_last_ms: AtomicU64,
    /// prometheus_tsdb_wal_corruptions_total
    pub wal_corruptions: AtomicU64,
    /// prometheus_tsdb_wal_truncations_total
    pub wal_truncations: AtomicU64,
    /// prometheus_tsdb_checkpoint_creations_total
    pub checkpoint_creations: AtomicU64,
    /// prometheus_tsdb_wal_writes_failed_total
    pub wal_writes_failed: AtomicU64,
    /// prometheus_tsdb_blocks_loaded (gauge)
    pub blocks_loaded: AtomicU64,
    /// ignis_tsdb_blocks_unreadable (gauge): block directories skipped at open because they could not be read
    pub blocks_unreadable: AtomicU64,
    /// prometheus_tsdb_compactions_total
    pub compactions: AtomicU64,
    /// prometheus_tsdb_compactions_failed_total
    pub compactions_failed: AtomicU64,
    /// prometheus_tsdb_compactions_triggered_total
    pub compactions_triggered: AtomicU64,
    /// prometheus_tsdb_reloads_total
    pub reloads: AtomicU64,
    /// prometheus_tsdb_reloads_failures_total
    pub reload_failures: AtomicU64,
    /// prometheus_tsdb_time_retentions_total
    pub time_retentions: AtomicU64,
    /// prometheus_tsdb_size_retentions_total
    pub size_retentions: AtomicU64,
    /// prometheus_tsdb_storage_blocks_bytes (gauge)
    pub blocks_bytes: AtomicU64,
    /// prometheus_tsdb_lowest_timestamp (gauge, ms)
    pub lowest_timestamp: AtomicI64,
    /// prometheus_tsdb_head_min_time (gauge, ms)
    pub head_min_time: AtomicI64,
    /// prometheus_tsdb_head_max_time (gauge, ms)
    pub head_max_time: AtomicI64,
}

impl Metrics {
    #[inline]
    pub(crate) fn inc(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}
