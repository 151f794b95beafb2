//! pressure: PSI totals from /proc/pressure/{cpu,io,memory} (node_exporter pressure_linux.go).

use super::prelude::*;

pub struct Pressure;

/// Returns the `total=` values (microseconds) of the "some" and "full" lines.
fn totals(text: &str) -> (Option<f64>, Option<f64>) {
    let (mut some, mut full) = (None, None);
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let kind = it.next();
        let total = it
            .find_map(|kv| kv.strip_prefix("total="))
            .and_then(|v| v.parse::<f64>().ok());
        match kind {
            Some("some") => some = total,
            Some("full") => full = total,
            _ => {}
        }
    }
    (some, full)
}

impl Collector for Pressure {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        for res in ["cpu", "io", "memory"] {
            let p = cfg.proc(&format!("pressure/{res}"));
            let text = read_str(&p, &mut s.buf)?;
            let (some, full) = totals(text);
            let some =
                some.ok_or_else(|| CollectError::parse(&p, "missing some line"))? / 1000.0 / 1000.0;
            match res {
                "cpu" => out.emit(
                    "node_pressure_cpu_waiting_seconds_total",
                    "Total time in seconds that processes have waited for CPU time",
                    Counter,
                    &[],
                    some,
                ),
                "io" => {
                    out.emit(
                        "node_pressure_io_waiting_seconds_total",
                        "Total time in seconds that processes have waited due to IO congestion",
                        Counter,
                        &[],
                        some,
                    );
                    out.emit(
                        "node_pressure_io_stalled_seconds_total",
                        "Total time in seconds no process could make progress due to IO congestion",
                        Counter,
                        &[],
                        full.unwrap_or(0.0) / 1000.0 / 1000.0,
                    );
                }
                _ => {
                    out.emit(
                        "node_pressure_memory_waiting_seconds_total",
                        "Total time in seconds that processes have waited for memory",
                        Counter,
                        &[],
                        some,
                    );
                    out.emit(
                        "node_pressure_memory_stalled_seconds_total",
                        "Total time in seconds no process could make progress due to memory congestion",
                        Counter,
                        &[],
                        full.unwrap_or(0.0) / 1000.0 / 1000.0,
                    );
                }
            }
        }
        Ok(())
    }
}
