//! Shared state of a running server, handed to every handler.

use crate::error::ApiError;
use crate::json::{push_str, push_ts};
use model::storage::Queryable;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A request to reload the configuration; the answer says whether it succeeded.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

pub struct AppState {
    pub engine: Arc<promql::Engine>,
    /// What queries read: the TSDB (and later remote-read sources merged in).
    pub(crate) queryable: RwLock<Arc<dyn Queryable>>,
    pub db: Option<Arc<tsdb::Db>>,
    /// Where remote-write-received samples go (the TSDB).
    pub storage: Option<Arc<dyn model::storage::Storage>>,
    pub enable_remote_write_receiver: bool,
    pub scrape: Option<Arc<scrape::ScrapeManager>>,
    pub remote_write: Option<Arc<remote::sender::RemoteWriteManager>>,
    /// The loaded configuration (as YAML for /api/v1/status/config).
    pub config: RwLock<Arc<config::Config>>,
    /// Flag name (without dashes) → value, for /api/v1/status/flags.
    pub flags: BTreeMap<String, String>,
    pub enable_lifecycle: bool,
    pub reload_tx: Option<mpsc::Sender<ReloadRequest>>,
    pub quit_tx: Option<mpsc::Sender<()>>,
    pub ready: AtomicBool,
    pub start_time_ms: i64,
    pub last_reload_success: AtomicBool,
    pub last_reload_time_ms: AtomicU64,
    pub retention_desc: String,
    pub metrics: Arc<crate::metrics::ServerMetrics>,
    pub engine_metrics: crate::metrics_ext::EngineMetrics,
}

pub struct RuntimeInfo {
    pub start_time_rfc3339: String,
    pub cwd: String,
    pub reload_config_success: bool,
    pub last_config_time_rfc3339: String,
    pub corruption_count: u64,
    pub threads: usize,
    pub cpus: usize,
    pub storage_retention: String,
}

/// The config's `global.external_labels` as a label set.
pub fn external_labels(cfg: &config::Config) -> model::Labels {
    model::Labels::from_pairs(&cfg.global.external_labels.iter().collect::<Vec<_>>())
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

impl AppState {
    /// What queries read now (swapped on reload when remote_read sources change).
    pub fn queryable(&self) -> Arc<dyn Queryable> {
        self.queryable.read().clone()
    }

    /// Whether queries also read remote-read sources (network calls) besides the local TSDB.
    pub fn has_remote_read(&self) -> bool {
        !self.config.read().remote_read.is_empty()
    }

    pub fn set_queryable(&self, q: Arc<dyn Queryable>) {
        *self.queryable.write() = q;
    }

    pub fn config_yaml(&self) -> String {
        self.config.read().to_yaml()
    }

    pub fn runtime_info(&self) -> RuntimeInfo {
        RuntimeInfo {
            start_time_rfc3339: rfc3339(self.start_time_ms),
            cwd: std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
            reload_config_success: self.last_reload_success.load(Ordering::Relaxed),
            last_config_time_rfc3339: rfc3339(self.last_reload_time_ms.load(Ordering::Relaxed) as i64),
            corruption_count: self.db.as_ref().map(|d| d.metrics().wal_corruptions.load(Ordering::Relaxed)).unwrap_or(0),
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            storage_retention: self.retention_desc.clone(),
        }
    }

    /// `/api/v1/status/tsdb`: head stats and the top-10 cardinality tables.
    pub fn tsdb_status(&self) -> Result<String, ApiError> {
        let mut out = String::from("{");
        let (num_series, chunks, min_t, max_t) = match &self.db {
            Some(db) => {
                let h = db.head_stats();
                (h.num_series, h.num_chunks, h.min_time, h.max_time)
            }
            None => (0, 0, 0, 0),
        };
        let q = self.queryable().querier(min_t, max_t)?;
        let names = q.label_names(&[])?;
        // Cardinality tables, computed from the index through the Queryable.
        let mut by_metric: Vec<(String, u64)> = Vec::new();
        let mut values_per_label: Vec<(String, u64)> = Vec::new();
        let mut mem_per_label: Vec<(String, u64)> = Vec::new();
        let mut pairs: Vec<(String, u64)> = Vec::new();
        let mut num_pairs = 0u64;
        for n in &names {
            let vals = q.label_values(n, &[])?;
            num_pairs += vals.len() as u64;
            values_per_label.push((n.clone(), vals.len() as u64));
            mem_per_label.push((n.clone(), vals.iter().map(|v| v.len() as u64).sum()));
            if vals.len() <= 10_000 {
                for v in &vals {
                    let m = model::Matcher::equal(n.clone(), v.clone());
                    let count = q.select(false, None, std::slice::from_ref(&m))?.count() as u64;
                    if n == model::METRIC_NAME {
                        by_metric.push((v.clone(), count));
                    }
                    pairs.push((format!("{n}={v}"), count));
                }
            }
        }
        let top = |mut v: Vec<(String, u64)>| {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(10);
            v
        };
        out.push_str(&format!(r#""headStats":{{"numSeries":{num_series},"numLabelPairs":{num_pairs},"chunkCount":{chunks},"minTime":{min_t},"maxTime":{max_t}}}"#));
        for (key, table) in [
            ("seriesCountByMetricName", top(by_metric)),
            ("labelValueCountByLabelName", top(values_per_label)),
            ("memoryInBytesByLabelName", top(mem_per_label)),
            ("seriesCountByLabelValuePair", top(pairs)),
        ] {
            out.push(',');
            push_str(&mut out, key);
            out.push_str(":[");
            for (i, (n, c)) in table.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"name":"#);
                push_str(&mut out, n);
                out.push_str(&format!(r#","value":{c}}}"#));
            }
            out.push(']');
        }
        out.push('}');
        Ok(out)
    }

    pub fn targets_json(&self, state: &str) -> String {
        let mut out = String::from("{");
        let (active, dropped) = match &self.scrape {
            Some(m) => (m.active_targets(), m.dropped_targets()),
            None => (Vec::new(), Vec::new()),
        };
        out.push_str(r#""activeTargets":["#);
        if state == "any" || state == "active" || state.is_empty() {
            for (i, t) in active.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                crate::targets::push_active(&mut out, t);
            }
        }
        out.push_str(r#"],"droppedTargets":["#);
        if state == "any" || state == "dropped" || state.is_empty() {
            for (i, t) in dropped.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                crate::targets::push_dropped(&mut out, t);
            }
        }
        out.push_str("]}");
        out
    }

    pub fn metadata_json(&self, metric: &str, limit: i64) -> String {
        match &self.scrape {
            Some(m) => crate::targets::metadata_json(m, metric, limit),
            None => "{}".into(),
        }
    }
}

#[allow(unused)]
fn ts(t: i64) -> String {
    let mut s = String::new();
    push_ts(&mut s, t);
    s
}
