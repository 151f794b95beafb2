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

/// Query instrumentation kept by the web layer around the engine (the engine itself stays free of global
/// state): Prometheus's `prometheus_engine_*` metrics and the query log.
#[derive(Default)]
pub struct EngineMetrics {
    pub queries_in_flight: AtomicU64,
    pub queries_total: AtomicU64,
    /// `prometheus_engine_query_duration_seconds{slice=…}`, indexed as [`SLICES`].
    pub slices: [Summary; 4],
    /// `global.query_log_file` writer, reopened when the configuration is reloaded.
    pub query_log: crate::api::QueryLog,
}

/// Slice names in the order Prometheus's client exports them (sorted by label value).
pub const SLICES: [&str; 4] = ["inner_eval", "prepare_time", "queue_time", "result_sort"];

impl EngineMetrics {
    /// Records one query's timings. Prometheus also observes `result_sort` whenever it sorts a matrix result;
    /// ignis's engine sorts inside its evaluation and does not report that time separately yet, so it is part
    /// of `inner_eval` and `result_sort` stays unobserved rather than filled with invented zeros.
    pub fn observe(&self, stats: &promql::QueryStats) {
        self.slices[0].observe(stats.eval_time.as_secs_f64());
        self.slices[1].observe(stats.prepare_time.as_secs_f64());
        self.slices[2].observe(stats.queue_time.as_secs_f64());
    }
}

/// A Prometheus summary: quantiles 0.5/0.9/0.99 over a sliding window of the last 10 minutes (as client_golang's
/// default `MaxAge` with 5 age buckets), plus all-time `_sum` and `_count`.
pub struct Summary {
    window: parking_lot::Mutex<Window>,
    /// All-time sum in seconds as f64 bits, updated under the window lock (an integer unit would round).
    sum_bits: AtomicU64,
    count: AtomicU64,
    clock: std::time::Instant,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            window: parking_lot::Mutex::new(Window::default()),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
            clock: std::time::Instant::now(),
        }
    }
}

/// The quantiles Prometheus's engine summary exports.
pub const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

impl Summary {
    pub fn observe(&self, v: f64) {
        let now = self.clock.elapsed().as_secs();
        let mut w = self.window.lock();
        w.observe(v, now);
        let sum = f64::from_bits(self.sum_bits.load(Ordering::Relaxed)) + v;
        self.sum_bits.store(sum.to_bits(), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn quantile(&self, q: f64) -> f64 {
        let now = self.clock.elapsed().as_secs();
        self.window.lock().quantile(q, now)
    }

    pub fn sum(&self) -> f64 {
        let _g = self.window.lock(); // orders the read after a concurrent observe's store
        f64::from_bits(self.sum_bits.load(Ordering::Relaxed))
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Age buckets of the sliding window: each collects 2 minutes; a read merges the buckets of the last 5 epochs,
/// so it covers between 8 and 10 minutes, like client_golang's rotating streams.
const AGE_BUCKETS: usize = 5;
const AGE_BUCKET_SECS: u64 = 120;
/// Bin growth factor: a value is reported as its bin's geometric middle, within ±0.5% of the observation.
/// Query durations are what is summarised, so relative precision is what matters; a fixed log grid keeps
/// observe O(log n) with bounded memory however many queries arrive.
const GAMMA: f64 = 1.01;
/// Values below 1 ns share the zero bin.
const MIN_VALUE: f64 = 1e-9;

#[derive(Default)]
pub struct Window {
    buckets: [AgeBucket; AGE_BUCKETS],
}

#[derive(Default)]
struct AgeBucket {
    epoch: u64,
    /// Log bin index → observations (0 = zero bin). Sparse: a bucket sees few distinct magnitudes.
    bins: std::collections::BTreeMap<i32, u64>,
    min: f64,
    max: f64,
}

fn bin_of(v: f64) -> i32 {
    if !(v >= MIN_VALUE) {
        return 0; // zero, negative and NaN observations
    }
    1 + ((v / MIN_VALUE).ln() / GAMMA.ln()).floor().min(i32::MAX as f64 - 2.0) as i32
}

fn bin_value(b: i32) -> f64 {
    if b == 0 {
        return 0.0;
    }
    MIN_VALUE * GAMMA.powf(b as f64 - 0.5)
}

impl Window {
    /// `now` in seconds on any monotonic clock.
    pub fn observe(&mut self, v: f64, now: u64) {
        let epoch = now / AGE_BUCKET_SECS + 1; // +1 so epoch 0 means "never used"
        let b = &mut self.buckets[(epoch as usize) % AGE_BUCKETS];
        if b.epoch != epoch {
            *b = AgeBucket { epoch, bins: Default::default(), min: v, max: v };
        }
        *b.bins.entry(bin_of(v)).or_insert(0) += 1;
        b.min = b.min.min(v);
        b.max = b.max.max(v);
    }

    /// The `q` quantile of the observations of the last 8–10 minutes; NaN when there are none (as
    /// client_golang reports an empty summary window).
    pub fn quantile(&self, q: f64, now: u64) -> f64 {
        let epoch = now / AGE_BUCKET_SECS + 1;
        let live = |b: &&AgeBucket| b.epoch != 0 && b.epoch + (AGE_BUCKETS as u64) > epoch;
        let mut merged: std::collections::BTreeMap<i32, u64> = Default::default();
        let (mut min, mut max, mut total) = (f64::INFINITY, f64::NEG_INFINITY, 0u64);
        for b in self.buckets.iter().filter(live) {
            for (k, n) in &b.bins {
                *merged.entry(*k).or_insert(0) += n;
                total += n;
            }
            min = min.min(b.min);
            max = max.max(b.max);
        }
        if total == 0 {
            return f64::NAN;
        }
        // The observation of rank ceil(q·n) (1-based), as a targeted-quantile stream answers.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (k, n) in merged {
            seen += n;
            if seen >= rank {
                // The extreme bins hold the exact min/max: report those exactly, and never beyond them.
                if k == bin_of(max) {
                    return max;
                }
                if k == bin_of(min) {
                    return min;
                }
                return bin_value(k).clamp(min, max);
            }
        }
        max
    }
}

pub fn engine_metrics(w: &mut TextWriter, opts: &promql::EngineOptions, m: &EngineMetrics) {
    w.single("prometheus_engine_queries", "gauge", "The current number of queries being executed or waiting.", c(&m.queries_in_flight));
    w.single("prometheus_engine_queries_concurrent_max", "gauge", "The max number of concurrent queries.", opts.max_concurrency as f64);
    w.single("prometheus_engine_query_log_enabled", "gauge", "State of the query log.", m.query_log.enabled() as u8 as f64);
    w.single(
        "prometheus_engine_query_log_failures_total",
        "counter",
        "The number of query log failures.",
        m.query_log.failures() as f64,
    );
    w.header("prometheus_engine_query_duration_seconds", "summary", "Query timings");
    let mut qbuf = String::new();
    for (i, s) in SLICES.iter().enumerate() {
        let sm = &m.slices[i];
        for q in QUANTILES {
            qbuf.clear();
            crate::metrics::push_float(&mut qbuf, q);
            w.sample("prometheus_engine_query_duration_seconds", &[("slice", s), ("quantile", &qbuf)], sm.quantile(q));
        }
        w.sample("prometheus_engine_query_duration_seconds_sum", &[("slice", s)], sm.sum());
        w.sample("prometheus_engine_query_duration_seconds_count", &[("slice", s)], sm.count() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact quantile (rank ceil(q·n)) of a sorted slice, the oracle for the estimator.
    fn exact(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn empty_window_is_nan_and_single_value_is_exact() {
        let mut w = Window::default();
        assert!(w.quantile(0.5, 0).is_nan());
        w.observe(0.0123, 10);
        for q in QUANTILES {
            assert_eq!(w.quantile(q, 10), 0.0123);
        }
    }

    #[test]
    fn zero_observations() {
        let mut w = Window::default();
        for _ in 0..10 {
            w.observe(0.0, 1);
        }
        w.observe(1.0, 1);
        assert_eq!(w.quantile(0.5, 1), 0.0);
        assert_eq!(w.quantile(0.99, 1), 1.0);
    }

    #[test]
    fn observations_expire_after_ten_minutes() {
        let mut w = Window::default();
        w.observe(5.0, 0);
        w.observe(1.0, 500);
        // At 599 s both are in the window (bucket of t=0 covers 0..120, still within 5 epochs).
        assert_eq!(w.quantile(0.99, 599), 5.0);
        // At 600 s the first bucket has aged out: only the 1 s observation is left.
        assert_eq!(w.quantile(0.99, 600), 1.0);
        assert!(w.quantile(0.5, 500 + 600).is_nan(), "everything expired");
        // A reused slot forgets its old epoch's data.
        w.observe(2.0, 1200);
        assert_eq!(w.quantile(0.5, 1200), 2.0);
    }

    proptest::proptest! {
        /// Against the exact quantile of the same observations: within the bin's relative error.
        #[test]
        fn close_to_exact_quantiles(vals in proptest::collection::vec(1e-7f64..100.0, 1..400), q in 0.0f64..1.0) {
            let mut w = Window::default();
            for (i, v) in vals.iter().enumerate() {
                w.observe(*v, (i as u64) % 300);
            }
            let mut sorted = vals.clone();
            sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let want = exact(&sorted, q);
            let got = w.quantile(q, 299);
            proptest::prop_assert!((got - want).abs() <= want * 0.0101, "q={} got {} want {}", q, got, want);
        }
    }

    #[test]
    fn summary_sum_count_and_text() {
        let m = EngineMetrics::default();
        let stats = promql::QueryStats {
            eval_time: std::time::Duration::from_millis(20),
            prepare_time: std::time::Duration::from_micros(50),
            ..Default::default()
        };
        m.observe(&stats);
        m.observe(&stats);
        let mut w = TextWriter::new();
        engine_metrics(&mut w, &promql::EngineOptions::default(), &m);
        let text = w.out;
        assert!(text.contains("# TYPE prometheus_engine_query_duration_seconds summary\n"), "{text}");
        assert!(text.contains("prometheus_engine_query_duration_seconds{slice=\"inner_eval\",quantile=\"0.5\"} 0.02\n"), "{text}");
        assert!(text.contains("prometheus_engine_query_duration_seconds{slice=\"inner_eval\",quantile=\"0.99\"} 0.02\n"), "{text}");
        assert!(text.contains("prometheus_engine_query_duration_seconds_sum{slice=\"inner_eval\"} 0.04\n"), "{text}");
        assert!(text.contains("prometheus_engine_query_duration_seconds_count{slice=\"prepare_time\"} 2\n"), "{text}");
        assert!(text.contains("prometheus_engine_query_duration_seconds{slice=\"result_sort\",quantile=\"0.9\"} NaN\n"), "{text}");
        // Prometheus's order: quantiles, _sum, _count per slice, slices sorted by name.
        let inner = text.find("slice=\"inner_eval\",quantile=\"0.5\"").unwrap();
        let prep = text.find("slice=\"prepare_time\",quantile=\"0.5\"").unwrap();
        let queue = text.find("slice=\"queue_time\",quantile=\"0.5\"").unwrap();
        assert!(inner < prep && prep < queue);
    }
}
