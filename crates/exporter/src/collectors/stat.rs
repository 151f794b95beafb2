//! stat: /proc/stat totals (node_exporter stat_linux.go).

use super::prelude::*;

pub struct Stat;

const SOFTIRQ_VECTORS: [&str; 10] = [
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
];

impl Collector for Stat {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let path = cfg.proc("stat");
        let text = read_str(&path, &mut s.buf)?;
        let (mut intr, mut ctxt, mut forks, mut btime, mut running, mut blocked) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let mut softirq = [0.0f64; 10];
        for line in text.lines() {
            let mut it = line.split_ascii_whitespace();
            let key = it.next().unwrap_or("");
            let first = || -> f64 {
                line.split_ascii_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0)
            };
            match key {
                "intr" => intr = first(),
                "ctxt" => ctxt = first(),
                "processes" => forks = first(),
                "btime" => btime = first(),
                "procs_running" => running = first(),
                "procs_blocked" => blocked = first(),
                "softirq" => {
                    // First number is the total, then one per vector.
                    for (slot, v) in softirq.iter_mut().zip(it.skip(1)) {
                        *slot = v.parse().unwrap_or(0.0);
                    }
                }
                _ => {}
            }
        }
        out.emit(
            "node_intr_total",
            "Total number of interrupts serviced.",
            Counter,
            &[],
            intr,
        );
        out.emit(
            "node_context_switches_total",
            "Total number of context switches.",
            Counter,
            &[],
            ctxt,
        );
        out.emit(
            "node_forks_total",
            "Total number of forks.",
            Counter,
            &[],
            forks,
        );
        out.emit(
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
            Gauge,
            &[],
            btime,
        );
        out.emit(
            "node_procs_running",
            "Number of processes in runnable state.",
            Gauge,
            &[],
            running,
        );
        out.emit(
            "node_procs_blocked",
            "Number of processes blocked waiting for I/O to complete.",
            Gauge,
            &[],
            blocked,
        );
        if cfg.stat_softirq {
            for (name, v) in SOFTIRQ_VECTORS.iter().zip(softirq) {
                out.emit(
                    "node_softirqs_total",
                    "Number of softirq calls.",
                    Counter,
                    &[("vector", name)],
                    v,
                );
            }
        }
        Ok(())
    }
}
