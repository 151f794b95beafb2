//! Per-queue metrics under Prometheus's names (`storage/remote/queue_manager.go`), kept as atomics and rendered
//! in the text exposition format so the web crate can append them to `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

const NS: &str = "prometheus_remote_storage_";

/// Prometheus's `DefBuckets` plus 25, 60, 120, 300 (as `sent_batch_duration_seconds` uses).
pub const SENT_BATCH_DURATION_BUCKETS: [f64; 15] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 120.0, 300.0];

/// A float gauge stored as bits.
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed)
    }
    fn add(&self, d: f64) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(cur) + d).to_bits();
            match self.0.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(c) => cur = c,
            }
        }
    }
}

/// A cumulative histogram with fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    /// Non-cumulative counts per bucket of [`SENT_BATCH_DURATION_BUCKETS`]; the last slot is +Inf.
    counts: [AtomicU64; SENT_BATCH_DURATION_BUCKETS.len() + 1],
    sum: AtomicF64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: std::array::from_fn(|_| AtomicU64::new(0)), sum: AtomicF64::default() }
    }
}

impl Histogram {
    pub fn observe(&self, v: f64) {
        let i = SENT_BATCH_DURATION_BUCKETS.iter().position(|&b| v <= b).unwrap_or(SENT_BATCH_DURATION_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum.add(v);
    }
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// Metrics of one remote-write queue. Counters only grow; gauges are set by the queue.
#[derive(Debug, Default)]
pub struct QueueMetrics {
    /// `remote_name` label: the config's `name`, or a short hash of its URL and name.
    pub remote_name: String,
    /// `url` label.
    pub url: String,
    /// Samples handed to the HTTP client, counted once per attempt (as Prometheus does).
    pub samples_total: AtomicU64,
    pub samples_failed_total: AtomicU64,
    pub samples_retried_total: AtomicU64,
    pub samples_dropped_total: AtomicU64,
    pub enqueue_retries_total: AtomicU64,
    pub samples_pending: AtomicI64,
    pub shards: AtomicI64,
    pub shards_desired: AtomicF64,
    pub shards_max: AtomicI64,
    pub shards_min: AtomicI64,
    pub shard_capacity: AtomicI64,
    pub max_samples_per_send: AtomicI64,
    /// Milliseconds; rendered in whole seconds like Prometheus (`highest / 1000`).
    pub highest_sent_timestamp_ms: AtomicI64,
    /// Highest sample timestamp this queue read from the WAL (milliseconds), for the unlabelled
    /// `highest_timestamp_in_seconds`.
    pub highest_read_timestamp_ms: AtomicI64,
    pub bytes_total: AtomicU64,
    /// Metadata entries sent / finally failed / retried, and compressed metadata request bytes
    /// (`metadata_config`).
    pub metadata_total: AtomicU64,
    pub metadata_failed_total: AtomicU64,
    pub metadata_retried_total: AtomicU64,
    pub metadata_bytes_total: AtomicU64,
    pub sent_batch_duration: Histogram,
}

impl QueueMetrics {
    pub fn new(remote_name: &str, url: &str) -> Self {
        QueueMetrics { remote_name: remote_name.to_string(), url: url.to_string(), ..Default::default() }
    }

    /// Renders this queue's families, each with HELP and TYPE.
    pub fn write_text(&self, out: &mut String) {
        write_families(&[self], out);
    }

    pub(crate) fn set_max_i64(a: &AtomicI64, v: i64) {
        a.fetch_max(v, Ordering::Relaxed);
    }
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Formats a float like Go's `strconv.FormatFloat(v, 'g', -1, 64)` for the values these metrics take.
pub(crate) fn fmt_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == v.trunc() && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else if v.abs() >= 1e21 || (v != 0.0 && v.abs() < 1e-4) {
        // Go switches to exponent form outside [1e-4, 1e21); Rust's `{:e}` gives "1e-5", Go "1e-05".
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
                let _ = write!(out, "{m}e{sign}{digits:0>2}");
            }
            None => out.push_str(&s),
        }
    } else {
        let _ = write!(out, "{v}");
    }
}

fn labels(out: &mut String, m: &QueueMetrics, extra: Option<(&str, &str)>) {
    out.push_str("{remote_name=\"");
    escape_label_value(out, &m.remote_name);
    out.push_str("\",url=\"");
    escape_label_value(out, &m.url);
    out.push('"');
    if let Some((k, v)) = extra {
        let _ = write!(out, ",{k}=\"{v}\"");
    }
    out.push('}');
}

type Get = fn(&QueueMetrics) -> f64;

/// The plain (non-histogram) families: name, type, Prometheus's help text, value.
const SIMPLE: [(&str, &str, &str, Get); 18] = [
    ("samples_total", "counter", "Total number of samples sent to remote storage.", |m| {
        m.samples_total.load(Ordering::Relaxed) as f64
    }),
    ("samples_failed_total", "counter", "Total number of samples which failed on send to remote storage, non-recoverable errors.", |m| {
        m.samples_failed_total.load(Ordering::Relaxed) as f64
    }),
    ("samples_retried_total", "counter", "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.", |m| {
        m.samples_retried_total.load(Ordering::Relaxed) as f64
    }),
    ("samples_dropped_total", "counter", "Total number of samples which were dropped after being read from the WAL before being sent via remote write, either via relabelling or unintentionally because of an unknown reference ID.", |m| {
        m.samples_dropped_total.load(Ordering::Relaxed) as f64
    }),
    ("enqueue_retries_total", "counter", "Total number of times enqueue has failed because a shards queue was full.", |m| {
        m.enqueue_retries_total.load(Ordering::Relaxed) as f64
    }),
    ("samples_pending", "gauge", "The number of samples pending in the queues shards to be sent to the remote storage.", |m| {
        m.samples_pending.load(Ordering::Relaxed) as f64
    }),
    ("shard_capacity", "gauge", "The capacity of each shard of the queue used for parallel sending to the remote storage.", |m| {
        m.shard_capacity.load(Ordering::Relaxed) as f64
    }),
    ("shards", "gauge", "The number of shards used for parallel sending to the remote storage.", |m| {
        m.shards.load(Ordering::Relaxed) as f64
    }),
    ("shards_max", "gauge", "The maximum number of shards that the queue is allowed to run.", |m| {
        m.shards_max.load(Ordering::Relaxed) as f64
    }),
    ("shards_min", "gauge", "The minimum number of shards that the queue is allowed to run.", |m| {
        m.shards_min.load(Ordering::Relaxed) as f64
    }),
    ("shards_desired", "gauge", "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.", |m| {
        m.shards_desired.get()
    }),
    ("queue_highest_sent_timestamp_seconds", "gauge", "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.", |m| {
        (m.highest_sent_timestamp_ms.load(Ordering::Relaxed).max(0) / 1000) as f64
    }),
    ("bytes_total", "counter", "The total number of bytes of data (not metadata) sent by the queue after compression. Note that when exemplars over remote write is enabled the exemplars included in a remote write request count towards this metric.", |m| {
        m.bytes_total.load(Ordering::Relaxed) as f64
    }),
    ("metadata_total", "counter", "Total number of metadata entries sent to remote storage.", |m| {
        m.metadata_total.load(Ordering::Relaxed) as f64
    }),
    ("metadata_failed_total", "counter", "Total number of metadata entries which failed on send to remote storage, non-recoverable errors.", |m| {
        m.metadata_failed_total.load(Ordering::Relaxed) as f64
    }),
    ("metadata_retried_total", "counter", "Total number of metadata entries which failed on send to remote storage but were retried because the send error was recoverable.", |m| {
        m.metadata_retried_total.load(Ordering::Relaxed) as f64
    }),
    ("metadata_bytes_total", "counter", "The total number of bytes of metadata sent by the queue after compression.", |m| {
        m.metadata_bytes_total.load(Ordering::Relaxed) as f64
    }),
    ("max_samples_per_send", "gauge", "The maximum number of samples to be sent, in a single request, to the remote storage. Note that, when sending of exemplars over remote write is enabled, exemplars count towards this limt.", |m| {
        m.max_samples_per_send.load(Ordering::Relaxed) as f64
    }),
];

/// Renders the families of many queues: HELP and TYPE once per family, then one line per queue (a family must
/// not be split in the exposition format).
pub fn write_families(qs: &[&QueueMetrics], out: &mut String) {
    if qs.is_empty() {
        return;
    }
    for (name, typ, help, get) in SIMPLE {
        let _ = writeln!(out, "# HELP {NS}{name} {help}\n# TYPE {NS}{name} {typ}");
        for m in qs {
            out.push_str(NS);
            out.push_str(name);
            labels(out, m, None);
            out.push(' ');
            fmt_float(out, get(m));
            out.push('\n');
        }
    }
    let name = "sent_batch_duration_seconds";
    let _ = writeln!(out, "# HELP {NS}{name} Duration of send calls to the remote storage.\n# TYPE {NS}{name} histogram");
    let mut le = String::new();
    for m in qs {
        let h = &m.sent_batch_duration;
        let mut cum = 0u64;
        for (i, b) in SENT_BATCH_DURATION_BUCKETS.iter().chain(std::iter::once(&f64::INFINITY)).enumerate() {
            cum += h.counts[i].load(Ordering::Relaxed);
            le.clear();
            fmt_float(&mut le, *b);
            let _ = write!(out, "{NS}{name}_bucket");
            labels(out, m, Some(("le", &le)));
            let _ = writeln!(out, " {cum}");
        }
        let _ = write!(out, "{NS}{name}_sum");
        labels(out, m, None);
        out.push(' ');
        fmt_float(out, h.sum.get());
        let _ = write!(out, "\n{NS}{name}_count");
        labels(out, m, None);
        let _ = writeln!(out, " {cum}");
    }
}

/// The unlabelled `prometheus_remote_storage_highest_timestamp_in_seconds` (one series for all queues, as in
/// Prometheus, so `… - ignoring(remote_name, url) group_right …queue_highest_sent_timestamp_seconds` works).
pub fn write_highest_timestamp(out: &mut String, highest_ms: i64) {
    let name = "highest_timestamp_in_seconds";
    let _ = writeln!(
        out,
        "# HELP {NS}{name} Highest timestamp that has come into the remote storage via the Appender interface, in seconds since epoch.\n# TYPE {NS}{name} gauge\n{NS}{name} {}",
        highest_ms.max(0) / 1000
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_has_each_family_once_with_both_queues() {
        let a = QueueMetrics::new("a", "http://x/api/v1/write");
        let b = QueueMetrics::new("b\"q", "http://y");
        a.samples_total.store(10, Ordering::Relaxed);
        b.highest_sent_timestamp_ms.store(1_700_000_000_999, Ordering::Relaxed);
        a.sent_batch_duration.observe(0.02);
        a.sent_batch_duration.observe(400.0);
        a.shards_desired.set(1.5);
        let mut out = String::new();
        write_families(&[&a, &b], &mut out);
        write_highest_timestamp(&mut out, 1_700_000_001_000);
        assert_eq!(out.matches("# TYPE prometheus_remote_storage_samples_total counter").count(), 1);
        assert!(out.contains("prometheus_remote_storage_samples_total{remote_name=\"a\",url=\"http://x/api/v1/write\"} 10\n"));
        assert!(out.contains("prometheus_remote_storage_queue_highest_sent_timestamp_seconds{remote_name=\"b\\\"q\",url=\"http://y\"} 1700000000\n"));
        assert!(out.contains("prometheus_remote_storage_shards_desired{remote_name=\"a\",url=\"http://x/api/v1/write\"} 1.5\n"));
        assert!(out.contains("_bucket{remote_name=\"a\",url=\"http://x/api/v1/write\",le=\"0.025\"} 1\n"), "{out}");
        assert!(out.contains("_bucket{remote_name=\"a\",url=\"http://x/api/v1/write\",le=\"300\"} 1\n"));
        assert!(out.contains("_bucket{remote_name=\"a\",url=\"http://x/api/v1/write\",le=\"+Inf\"} 2\n"));
        assert!(out.contains("_count{remote_name=\"a\",url=\"http://x/api/v1/write\"} 2\n"));
        assert!(out.contains("\nprometheus_remote_storage_highest_timestamp_in_seconds 1700000001\n"));
        assert_eq!(a.sent_batch_duration.count(), 2);
        // Every sample line belongs to the family announced just before it.
        let mut family = String::new();
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap().to_string();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(&family), "{line} outside {family}");
            }
        }
    }

    #[test]
    fn floats_format_like_go() {
        let f = |v| {
            let mut s = String::new();
            fmt_float(&mut s, v);
            s
        };
        assert_eq!(f(0.005), "0.005");
        assert_eq!(f(2.5), "2.5");
        assert_eq!(f(300.0), "300");
        assert_eq!(f(1e-5), "1e-05");
        assert_eq!(f(f64::INFINITY), "+Inf");
    }
}
