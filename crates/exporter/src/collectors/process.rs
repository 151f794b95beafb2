//! process_*: the exporter's own process metrics (client_golang's process collector), read from
//! /proc/self — cheap, so we keep them; go_* and promhttp_* are not reproduced.

use super::prelude::*;

pub struct Process {
    ticks: f64,
    page: f64,
    boot_time: Option<f64>,
}

impl Process {
    pub fn new() -> Self {
        // SAFETY: sysconf has no memory-safety preconditions.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        Process {
            ticks: if ticks > 0 { ticks as f64 } else { 100.0 },
            page: if page > 0 { page as f64 } else { 4096.0 },
            boot_time: None,
        }
    }

    /// Best effort: a failure here only drops process_* for this scrape.
    pub fn update(&mut self, cfg: &Config, s: &mut Scratch, out: &mut Registry) {
        if self.boot_time.is_none() {
            if let Ok(t) = read_str(&cfg.proc("stat"), &mut s.buf) {
                self.boot_time = t
                    .lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse().ok());
            }
        }
        // Our own /proc entry, not the configured procfs (which may be a fixture tree).
        let Ok(stat) = read_str(std::path::Path::new("/proc/self/stat"), &mut s.buf) else {
            return;
        };
        // Fields after the parenthesised comm; comm may contain spaces.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            return;
        };
        let f: Vec<&str> = rest.split_ascii_whitespace().collect();
        if f.len() < 22 {
            return;
        }
        let n = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
        // Indices relative to field 3 (state): utime=14, stime=15, starttime=22, vsize=23, rss=24.
        let cpu = (n(11) + n(12)) / self.ticks;
        let start = n(19) / self.ticks + self.boot_time.unwrap_or(0.0);
        let (vsize, rss) = (n(20), n(21) * self.page);
        out.emit(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            Counter,
            &[],
            cpu,
        );
        out.emit(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Gauge,
            &[],
            rss,
        );
        out.emit(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            Gauge,
            &[],
            vsize,
        );
        out.emit(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Gauge,
            &[],
            start,
        );
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let open = rd.count().saturating_sub(1);
            out.emit(
                "process_open_fds",
                "Number of open file descriptors.",
                Gauge,
                &[],
                open as f64,
            );
        }
        if let Ok(limits) = read_str(std::path::Path::new("/proc/self/limits"), &mut s.buf) {
            for l in limits.lines() {
                let (key, idx) = if l.starts_with("Max open files") {
                    ("process_max_fds", 3)
                } else if l.starts_with("Max address space") {
                    ("process_virtual_memory_max_bytes", 3)
                } else {
                    continue;
                };
                let v = l.split_ascii_whitespace().nth(idx).map(|v| {
                    if v == "unlimited" {
                        -1.0
                    } else {
                        v.parse().unwrap_or(0.0)
                    }
                });
                if let Some(v) = v {
                    let help = if key == "process_max_fds" {
                        "Maximum number of open file descriptors."
                    } else {
                        "Maximum amount of virtual memory available in bytes."
                    };
                    out.emit(key, help, Gauge, &[], v);
                }
            }
        }
    }
}
