//! Metric metadata over remote write (`metadata_config`), as Prometheus 2.42's `MetadataWatcher` and
//! `QueueManager.AppendMetadata`: every `send_interval` (the first time one interval after the queue starts),
//! the metadata of all active scrape targets, deduplicated on (family, type, help, unit), goes out in
//! `WriteRequest`s that hold only `metadata`, at most `max_samples_per_send` entries each, one request after the
//! other, with the samples' retry rules (backoff on 5xx and network errors, 429 with `retry_on_http_429`).
//!
//! Metadata is not in the WAL: it comes from the scrape targets' caches through a [`MetadataSource`] callback
//! that the server wires to the scrape manager, so the `remote` crate does not depend on `scrape`. Nothing is
//! remembered across restarts; the next interval sends the current metadata again anyway.

use super::http::{SendError, WriteClient};
use super::metrics::QueueMetrics;
use super::queue::StopSignal;
use crate::prompb;
use prost::Message;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Metadata of one metric family as a scrape target exposes it (`# TYPE`, `# HELP`, `# UNIT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricMetadata {
    /// Family name (`metric_family_name`).
    pub metric: String,
    /// Exposition type in lower case: `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`,
    /// `stateset`, `unknown` (anything else is sent as UNKNOWN).
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// Where queues get the metadata to send: called once per `send_interval` per queue.
pub type MetadataSource = Arc<dyn Fn() -> Vec<MetricMetadata> + Send + Sync>;

/// `prompb.MetricMetadata.MetricType` of an exposition type (Prometheus upper-cases and looks it up).
pub(crate) fn type_code(kind: &str) -> i32 {
    match kind.to_ascii_lowercase().as_str() {
        "counter" => 1,
        "gauge" => 2,
        "histogram" => 3,
        "gaugehistogram" => 4,
        "summary" => 5,
        "info" => 6,
        "stateset" => 7,
        _ => 0,
    }
}

/// What the metadata loop needs.
pub(crate) struct MetadataArgs {
    pub source: MetadataSource,
    pub client: WriteClient,
    pub metrics: Arc<QueueMetrics>,
    pub interval: Duration,
    pub max_per_send: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

/// Runs until `stop`: collect, deduplicate, send in batches; sleep `interval`.
pub(crate) fn run(a: MetadataArgs, stop: Arc<StopSignal>) {
    let interval = a.interval.max(Duration::from_millis(1));
    let mut buf = Vec::new();
    while !stop.sleep(interval) {
        let all = (a.source)();
        let mut seen = HashSet::with_capacity(all.len());
        let entries: Vec<prompb::MetricMetadata> = all
            .into_iter()
            .filter(|m| seen.insert(m.clone()))
            .map(|m| prompb::MetricMetadata {
                r#type: type_code(&m.kind),
                metric_family_name: m.metric,
                help: m.help,
                unit: m.unit,
            })
            .collect();
        for batch in entries.chunks(a.max_per_send.max(1)) {
            if !send(&a, batch, &mut buf, &stop) {
                return;
            }
        }
    }
}

/// Sends one batch with retries. Returns false if stopped while retrying.
fn send(a: &MetadataArgs, batch: &[prompb::MetricMetadata], buf: &mut Vec<u8>, stop: &StopSignal) -> bool {
    let m = &a.metrics;
    let n = batch.len() as u64;
    buf.clear();
    // Not a hot path (one request per interval): prost is fine here.
    let req = prompb::WriteRequest { timeseries: Vec::new(), metadata: batch.to_vec() };
    if let Err(e) = req.encode(buf) {
        tracing::error!("BUG: encoding a metadata write request: {e}");
        return true;
    }
    let body = crate::snappy_encode(buf);
    let mut backoff = a.min_backoff;
    loop {
        let t0 = Instant::now();
        let res = a.client.store(&body);
        m.sent_batch_duration.observe(t0.elapsed().as_secs_f64());
        match res {
            Ok(()) => {
                m.metadata_total.fetch_add(n, Ordering::Relaxed);
                m.metadata_bytes_total.fetch_add(body.len() as u64, Ordering::Relaxed);
                return true;
            }
            Err(SendError::Unrecoverable(msg)) => {
                m.metadata_failed_total.fetch_add(n, Ordering::Relaxed);
                tracing::error!(remote_name = %m.remote_name, url = %m.url, count = n, error = %msg,
                    "non-recoverable error while sending metadata");
                return true;
            }
            Err(SendError::Recoverable { msg, retry_after }) => {
                let sleep = retry_after.unwrap_or(backoff);
                tracing::debug!(remote_name = %m.remote_name, error = %msg, ?sleep, "failed to send metadata, retrying");
                if stop.sleep(sleep) {
                    return false;
                }
                m.metadata_retried_total.fetch_add(n, Ordering::Relaxed);
                backoff = (sleep * 2).min(a.max_backoff.max(a.min_backoff));
            }
        }
    }
}
