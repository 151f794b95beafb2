//! Export of other crates' counters under Prometheus's metric names.

use crate::metrics::TextWriter;
use std::sync::atomic::{AtomicU64, Ordering};

fn c(x: &AtomicU64) -> f64 {
    x.load(Ordering::Relaxed) as f64
}

pub fn tsdb_metrics(w: &mut TextWriter, db: &tsdb::Db) {
    let m = db.metrics();
    let g = |w: &mut TextWriter, name: &str, help: &str, v: f64| w.single(name, "gauge", help, v);
    let k = |w: &mut TextWriter, name: &str, help: &str, v: f64| w.single(name, "counter", help, v);
    g(w, "prometheus_tsdb_head_series", "Total number of series in the head block.", c(&m.head_series));
    k(w, "prometheus_tsdb_head_series_created_total", "Total number of series created in the head", c(&m.head_series_created));
    k(w, "prometheus_tsdb_head_series_removed_total", "Total number of series removed in the head", c(&m.head_series_removed));
    g(w, "prometheus_tsdb_head_chunks", "Total number of chunks in the head block.", c(&m.head_chunks));
    k(w, "prometheus_tsdb_head_chunks_created_total", "Total number of chunks created in the head", c(&m.head_chunks_created));
    k(w, "prometheus_tsdb_head_chunks_removed_total", "Total number of chunks removed in the head", c(&m.head_chunks_removed));
    w.header("prometheus_tsdb_head_samples_appended_total", "counter", "Total number of appended samples.");
    w.sample("prometheus_tsdb_head_samples_appended_total", &[("type", "float")], c(&m.head_samples_appended));
    w.header("prometheus_tsdb_out_of_order_samples_total", "counter", "Total number of out of order samples ingestion failed attempts due to out of order being disabled.");
    w.sample("prometheus_tsdb_out_of_order_samples_total", &[("type", "float")], c(&m.out_of_order_samples));
    w.header("prometheus_tsdb_out_of_bound_samples_total", "counter", "Total number of out of bound samples ingestion failed attempts with out of order support disabled.");
    w.sample("prometheus_tsdb_out_of_bound_samples_total", &[("type", "float")], c(&m.out_of_bound_samples));
    k(w, "prometheus_tsdb_head_truncations_total", "Total number of head truncations attempted.", c(&m.head_truncations));
    k(w, "prometheus_tsdb_wal_corruptions_total", "Total number of WAL corruptions.", c(&m.wal_corruptions));
    k(w, "prometheus_tsdb_wal_truncations_total", "Total number of write log truncations attempted.", c(&m.wal_truncations));
    k(w, "prometheus_tsdb_checkpoint_creations_total", "Total number of checkpoint creations attempted.", c(&m.checkpoint_creations));
    k(w, "prometheus_tsdb_wal_writes_failed_total", "Total number of write log writes that failed.", c(&m.wal_writes_failed));
    g(w, "prometheus_tsdb_blocks_loaded", "Number of currently loaded data blocks", c(&m.blocks_loaded));
    k(w, "prometheus_tsdb_compactions_total", "Total number of compactions that were executed for the partition.", c(&m.compactions));
    k(w, "prometheus_tsdb_compactions_failed_total", "Total number of compactions that failed for the partition.", c(&m.compactions_failed));
    k(w, "prometheus_tsdb_compactions_triggered_total", "Total number of triggered compactions for the partition.", c(&m.compactions_triggered));
    k(w, "prometheus_tsdb_reloads_total", "Number of times the database reloaded block data from disk.", c(&m.reloads));
    k(w, "prometheus_tsdb_reloads_failures_total", "Number of times the database failed to reloadBlocks block data from disk.", c(&m.reload_failures));
    k(w, "prometheus_tsdb_time_retentions_total", "The number of times that blocks were deleted because the maximum time limit was exceeded.", c(&m.time_retentions));
    k(w, "prometheus_tsdb_size_retentions_total", "The number of times that blocks were deleted because the maximum number of bytes was exceeded.", c(&m.size_retentions));
    g(w, "prometheus_tsdb_storage_blocks_bytes", "The number of bytes that are currently used for local storage by all blocks.", c(&m.blocks_bytes));
    g(w, "prometheus_tsdb_lowest_timestamp", "Lowest timestamp value stored in the database. The unit is decided by the library consumer.", m.lowest_timestamp.load(Ordering::Relaxed) as f64);
    g(w, "prometheus_tsdb_head_min_time", "Minimum time bound of the head block. The unit is decided by the library consumer.", m.head_min_time.load(Ordering::Relaxed) as f64);
    g(w, "prometheus_tsdb_head_max_time", "Maximum timestamp of the head block. The unit is decided by the library consumer.", m.head_max_time.load(Ordering::Relaxed) as f64);
    let opts = db.options();
    g(w, "prometheus_tsdb_retention_limit_bytes", "Max number of bytes to be retained in the tsdb blocks, configured 0 means disabled", opts.retention_bytes as f64);
}

/// Query counters kept by the web layer around the engine (the engine itself stays free of global state).
#[derive(Default)]
pub struct EngineMetrics {
    pub queries_in_flight: AtomicU64,
    pub queries_total: AtomicU64,
    /// Microsecond sums and counts per slice: queue_time, prepare_time, inner_eval, result_sort.
    pub slice_us: [AtomicU64; 4],
    pub slice_count: [AtomicU64; 4],
}

pub const SLICES: [&str; 4] = ["queue_time", "prepare_time", "inner_eval", "result_sort"];

impl EngineMetrics {
    pub fn observe(&self, stats: &promql::QueryStats) {
        let d = [stats.queue_time, stats.prepare_time, stats.eval_time, std::time::Duration::ZERO];
        for (i, x) in d.iter().enumerate() {
            self.slice_us[i].fetch_add(x.as_micros() as u64, Ordering::Relaxed);
            self.slice_count[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub fn engine_metrics(w: &mut TextWriter, opts: &promql::EngineOptions, m: &EngineMetrics) {
    w.single("prometheus_engine_queries", "gauge", "The current number of queries being executed or waiting.", c(&m.queries_in_flight));
    w.single("prometheus_engine_queries_concurrent_max", "gauge", "The max number of concurrent queries.", opts.max_concurrency as f64);
    w.single(
        "prometheus_engine_query_log_enabled",
        "gauge",
        "State of the query log.",
        0.0,
    );
    w.header("prometheus_engine_query_duration_seconds", "summary", "Query timings");
    for (i, s) in SLICES.iter().enumerate() {
        w.sample("prometheus_engine_query_duration_seconds_sum", &[("slice", s)], c(&m.slice_us[i]) / 1e6);
        w.sample("prometheus_engine_query_duration_seconds_count", &[("slice", s)], c(&m.slice_count[i]));
    }
}
