//! The query log (`global.query_log_file`): one JSON object per executed query, in the shape Prometheus's
//! engine writes through go-kit's JSON logger — keys sorted (`error`, `httpRequest`, `params`, `spanID`,
//! `stats`, `ts`), `params` with RFC3339-millisecond `start`/`end` and integer-second `step`.
//!
//! Prometheus opens the file when a configuration is applied and reopens it on every reload (so log rotation
//! works by renaming the file and reloading). The web layer sees each reload as a new `Arc<Config>` in the
//! server state, so the log compares the config it opened for with the current one on every write and
//! reopens on change; no hook in the reload path is needed.

use parking_lot::Mutex;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
pub struct QueryLog {
    state: Mutex<Option<Opened>>,
    enabled: AtomicBool,
    failures: AtomicU64,
}

struct Opened {
    /// Held (not a Weak) so that a new config can never reuse this one's address unnoticed.
    config: Arc<config::Config>,
    file: Option<File>,
}

/// Where a query came from, as Prometheus's `httpRequest` origin.
pub struct HttpOrigin<'a> {
    pub client_ip: &'a str,
    pub method: &'a str,
    pub path: &'a str,
}

/// What one log line says about a query.
pub struct Entry<'a> {
    pub query: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Range step in ms, 0 for instant queries.
    pub step_ms: i64,
    pub error: Option<&'a str>,
    pub stats: &'a promql::QueryStats,
    pub origin: Option<HttpOrigin<'a>>,
}

impl QueryLog {
    /// Whether queries are being logged (for `prometheus_engine_query_log_enabled`).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// `prometheus_engine_query_log_failures_total`.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Opens, reopens or closes the file to match `cfg`. Cheap when `cfg` is the config already applied.
    pub fn apply(&self, cfg: &Arc<config::Config>) {
        let mut st = self.state.lock();
        self.apply_locked(&mut st, cfg);
    }

    fn apply_locked(&self, st: &mut Option<Opened>, cfg: &Arc<config::Config>) {
        if st.as_ref().is_some_and(|o| Arc::ptr_eq(&o.config, cfg)) {
            return;
        }
        let path = &cfg.global.query_log_file;
        // Dropping the old handle closes it; a renamed (rotated) file is left to whoever renamed it.
        let file = if path.is_empty() {
            None
        } else {
            match std::fs::OpenOptions::new().append(true).create(true).open(path) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::error!(path = %path, error = %e, "can't open query log file; queries are not logged");
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        };
        self.enabled.store(file.is_some(), Ordering::Relaxed);
        *st = Some(Opened { config: cfg.clone(), file });
    }

    /// Writes one line for a query when `cfg` asks for a query log.
    pub fn log(&self, cfg: &Arc<config::Config>, e: &Entry<'_>) {
        let mut st = self.state.lock();
        self.apply_locked(&mut st, cfg);
        let Some(file) = st.as_mut().and_then(|o| o.file.as_mut()) else { return };
        let line = render(e, chrono::Utc::now().timestamp_millis());
        // One write per line: with O_APPEND, concurrent writers (and a second process) never interleave.
        if let Err(err) = file.write_all(line.as_bytes()) {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "can't log query");
        }
    }
}

/// Prometheus's `formatDate`: UTC, millisecond precision, `Z` suffix.
fn push_date(out: &mut String, ms: i64) {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(d) => crate::json::push_str(out, &d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        None => crate::json::push_str(out, ""),
    }
}

/// The JSON line (with its newline) for one query at wall time `now_ms`.
pub fn render(e: &Entry<'_>, now_ms: i64) -> String {
    use crate::json::push_str;
    let mut out = String::with_capacity(512 + e.query.len());
    out.push('{');
    if let Some(err) = e.error {
        out.push_str(r#""error":"#);
        push_str(&mut out, err);
        out.push(',');
    }
    if let Some(o) = &e.origin {
        out.push_str(r#""httpRequest":{"clientIP":"#);
        push_str(&mut out, o.client_ip);
        out.push_str(r#","method":"#);
        push_str(&mut out, o.method);
        out.push_str(r#","path":"#);
        push_str(&mut out, o.path);
        out.push_str("},");
    }
    out.push_str(r#""params":{"end":"#);
    push_date(&mut out, e.end_ms);
    out.push_str(r#","query":"#);
    push_str(&mut out, e.query);
    out.push_str(r#","start":"#);
    push_date(&mut out, e.start_ms);
    // The step is logged in whole seconds (Go's Duration / time.Second).
    out.push_str(&format!(r#","step":{}}},"#, e.step_ms / 1000));
    // Prometheus always has a (no-op) tracing span here, whose id is all zeros when tracing is off.
    out.push_str(r#""spanID":"0000000000000000","stats":"#);
    super::push_stats(&mut out, e.stats);
    out.push_str(r#","ts":"#);
    push_date(&mut out, now_ms);
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg_with(path: &str) -> Arc<config::Config> {
        let mut c = config::Config::default();
        c.global.query_log_file = path.to_string();
        Arc::new(c)
    }

    fn entry<'a>(stats: &'a promql::QueryStats, q: &'a str) -> Entry<'a> {
        Entry { query: q, start_ms: 1_580_000_000_123, end_ms: 1_580_003_600_000, step_ms: 15_000, error: None, stats, origin: None }
    }

    #[test]
    fn line_has_prometheus_shape() {
        let stats = promql::QueryStats {
            total_samples: 42,
            peak_samples: 7,
            queue_time: Duration::from_micros(2),
            prepare_time: Duration::from_micros(68),
            eval_time: Duration::from_micros(357),
        };
        let mut e = entry(&stats, "up == 0");
        e.origin = Some(HttpOrigin { client_ip: "127.0.0.1", method: "GET", path: "/api/v1/query_range" });
        let line = render(&e, 1_581_173_990_387);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["params"]["query"], "up == 0");
        assert_eq!(v["params"]["start"], "2020-01-26T00:53:20.123Z");
        assert_eq!(v["params"]["end"], "2020-01-26T01:53:20.000Z");
        assert_eq!(v["params"]["step"], 15);
        assert_eq!(v["httpRequest"]["path"], "/api/v1/query_range");
        assert_eq!(v["ts"], "2020-02-08T14:59:50.387Z");
        assert_eq!(v["spanID"], "0000000000000000");
        assert_eq!(v["stats"]["samples"]["totalQueryableSamples"], 42);
        assert_eq!(v["stats"]["timings"]["innerEvalTime"], 0.000357);
        assert_eq!(v["stats"]["timings"]["execQueueTime"], 0.000002);
        assert!(v.get("error").is_none());
        // Keys in go-kit's (sorted) order.
        let keys: Vec<usize> =
            ["\"httpRequest\"", "\"params\"", "\"spanID\"", "\"stats\"", "\"ts\""].iter().map(|k| line.find(k).unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{line}");
        e.error = Some("query timed out in expression evaluation");
        let v: serde_json::Value = serde_json::from_str(&render(&e, 0)).unwrap();
        assert_eq!(v["error"], "query timed out in expression evaluation");
    }

    #[test]
    fn writes_only_when_configured_and_reopens_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.log");
        let log = QueryLog::default();
        let stats = promql::QueryStats::default();
        let off = cfg_with("");
        log.log(&off, &entry(&stats, "a"));
        assert!(!path.exists());
        assert!(!log.enabled());

        let on = cfg_with(path.to_str().unwrap());
        log.log(&on, &entry(&stats, "b"));
        log.log(&on, &entry(&stats, "c"));
        assert!(log.enabled());
        // Rotation: rename the file; the same config keeps writing to the renamed file...
        let rotated = dir.path().join("q.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.log(&on, &entry(&stats, "d"));
        // ...until a reload (a new config value, even with the same path) reopens the path.
        let reloaded = cfg_with(path.to_str().unwrap());
        log.log(&reloaded, &entry(&stats, "e"));
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        let queries = |s: &str| -> Vec<String> {
            s.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["params"]["query"].as_str().unwrap().to_string()).collect()
        };
        assert_eq!(queries(&old), ["b", "c", "d"]);
        assert_eq!(queries(&new), ["e"]);
        // Turning it off closes the log.
        log.log(&off, &entry(&stats, "f"));
        assert!(!log.enabled());
        assert_eq!(queries(&std::fs::read_to_string(&path).unwrap()), ["e"]);
    }

    #[test]
    fn unopenable_file_counts_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let log = QueryLog::default();
        let stats = promql::QueryStats::default();
        let bad = cfg_with(dir.path().join("missing-dir/q.log").to_str().unwrap());
        log.log(&bad, &entry(&stats, "x"));
        assert!(!log.enabled());
        assert_eq!(log.failures(), 1);
        // Not retried on every query: the config is unchanged.
        log.log(&bad, &entry(&stats, "y"));
        assert_eq!(log.failures(), 1);
    }
}
