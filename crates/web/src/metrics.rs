//! The server's own `/metrics`, with Prometheus's metric names so the seed's `self` job and existing
//! meta-monitoring dashboards work unchanged.

use crate::state::AppState;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters owned by the web layer itself.
#[derive(Default)]
pub struct ServerMetrics {
    pub config_last_reload_successful: AtomicU64,
    pub config_last_reload_success_timestamp_seconds: AtomicU64,
    pub http_requests_total: AtomicU64,
    /// prometheus_remote_storage_samples_received_total (ignis counts accepted remote-write samples)
    pub remote_write_samples_received: AtomicU64,
    /// Remote-write requests refused because of out-of-order samples.
    pub remote_write_out_of_order: AtomicU64,
}

impl ServerMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn config_reloaded(&self, ok: bool) {
        self.config_last_reload_successful.store(ok as u64, Ordering::Relaxed);
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.config_last_reload_success_timestamp_seconds.store(now, Ordering::Relaxed);
        }
    }
}

/// Writes text-format 0.0.4 families.
pub struct TextWriter {
    pub out: String,
}

impl TextWriter {
    pub fn new() -> Self {
        TextWriter { out: String::with_capacity(16 * 1024) }
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, typ: &str, help: &str, v: f64) {
        self.header(name, typ, help);
        self.sample(name, &[], v);
    }

    pub fn header(&mut self, name: &str, typ: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {typ}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                let _ = model::labels::write_escaped(&mut self.out, val);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_float(&mut self.out, v);
        self.out.push('\n');
    }
}

impl Default for TextWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// Go's `FormatFloat(v, 'g', -1, 64)` style used by the text format: `NaN`, `+Inf`, `-Inf`, exponent for large.
pub fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == v.trunc() && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else if v.abs() >= 1e21 || (v != 0.0 && v.abs() < 1e-4) {
        let _ = write!(out, "{v:e}");
    } else {
        let _ = write!(out, "{v}");
    }
}

fn process_metrics(w: &mut TextWriter) {
    let Ok(me) = procfs::process::Process::myself() else { return };
    let tps = procfs::ticks_per_second() as f64;
    let page = procfs::page_size() as f64;
    if let Ok(stat) = me.stat() {
        w.single(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (stat.utime + stat.stime) as f64 / tps,
        );
        w.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", stat.rss as f64 * page);
        w.single("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", stat.vsize as f64);
        if let Ok(boot) = procfs::boot_time_secs() {
            w.single(
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                boot as f64 + stat.starttime as f64 / tps,
            );
        }
        w.single("process_threads", "gauge", "Number of OS threads in the process.", stat.num_threads as f64);
    }
    if let Ok(n) = me.fd_count() {
        w.single("process_open_fds", "gauge", "Number of open file descriptors.", n as f64);
    }
    if let Ok(limits) = me.limits() {
        if let procfs::process::LimitValue::Value(v) = limits.max_open_files.soft_limit {
            w.single("process_max_fds", "gauge", "Maximum number of open file descriptors.", v as f64);
        }
    }
}

/// Renders the whole `/metrics` page.
pub fn render(st: &AppState) -> String {
    let mut w = TextWriter::new();
    process_metrics(&mut w);
    let m = &st.metrics;
    w.single(
        "prometheus_config_last_reload_successful",
        "gauge",
        "Whether the last configuration reload attempt was successful.",
        m.config_last_reload_successful.load(Ordering::Relaxed) as f64,
    );
    w.single(
        "prometheus_config_last_reload_success_timestamp_seconds",
        "gauge",
        "Timestamp of the last successful configuration reload.",
        m.config_last_reload_success_timestamp_seconds.load(Ordering::Relaxed) as f64,
    );
    w.header("prometheus_build_info", "gauge", "A metric with a constant '1' value labeled by version, revision, branch, goversion from which prometheus was built, and the goos and goarch for the build.");
    w.sample(
        "prometheus_build_info",
        &[
            ("branch", "main"),
            ("goarch", std::env::consts::ARCH),
            ("goos", std::env::consts::OS),
            ("goversion", "rust"),
            ("revision", env!("CARGO_PKG_VERSION")),
            ("tags", "ignis"),
            ("version", crate::PROMETHEUS_COMPAT_VERSION),
        ],
        1.0,
    );
    w.single(
        "prometheus_ready",
        "gauge",
        "Whether Prometheus startup was fully completed and the server is ready for normal operation.",
        st.ready.load(Ordering::Relaxed) as u8 as f64,
    );
    if let Some(db) = &st.db {
        crate::metrics_ext::tsdb_metrics(&mut w, db);
    }
    if let Some(s) = &st.scrape {
        s.metrics().write_text(&mut w.out);
    }
    if let Some(rw) = &st.remote_write {
        rw.write_metrics(&mut w.out);
    }
    crate::metrics_ext::engine_metrics(&mut w, st.engine.options(), &st.engine_metrics);
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        let f = |v: f64| {
            let mut s = String::new();
            push_float(&mut s, v);
            s
        };
        assert_eq!(f(1.0), "1");
        assert_eq!(f(0.25), "0.25");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(1e22), "1e22");
    }
}
