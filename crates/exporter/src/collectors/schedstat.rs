//! schedstat: /proc/schedstat per-CPU scheduler times (node_exporter schedstat_linux.go).

use super::prelude::*;

pub struct Schedstat;

impl Collector for Schedstat {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let p = cfg.proc("schedstat");
        let text = read_str(&p, &mut s.buf)?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            let Some(cpu) = f.first().and_then(|c| c.strip_prefix("cpu")) else {
                continue;
            };
            if f.len() < 10 {
                return Err(CollectError::parse(&p, format!("invalid line: {line}")));
            }
            let n = |i: usize| {
                f[i].parse::<f64>()
                    .map_err(|_| CollectError::parse(&p, format!("invalid value {}", f[i])))
            };
            let (run, wait, slices) = (n(7)?, n(8)?, n(9)?);
            let l = [("cpu", cpu)];
            out.emit(
                "node_schedstat_running_seconds_total",
                "Number of seconds CPU spent running a process.",
                Counter,
                &l,
                run / 1e9,
            );
            out.emit(
                "node_schedstat_waiting_seconds_total",
                "Number of seconds spent by processing waiting for this CPU.",
                Counter,
                &l,
                wait / 1e9,
            );
            out.emit(
                "node_schedstat_timeslices_total",
                "Number of timeslices executed by CPU.",
                Counter,
                &l,
                slices,
            );
        }
        Ok(())
    }
}
