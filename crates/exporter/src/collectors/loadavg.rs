//! loadavg: /proc/loadavg (node_exporter loadavg_linux.go).

use super::prelude::*;

pub struct Loadavg;

impl Collector for Loadavg {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let path = cfg.proc("loadavg");
        let text = read_str(&path, &mut s.buf)?;
        let mut it = text.split_ascii_whitespace();
        let mut loads = [0.0; 3];
        for l in loads.iter_mut() {
            let f = it
                .next()
                .ok_or_else(|| CollectError::parse(&path, "unexpected content"))?;
            *l = f
                .parse()
                .map_err(|_| CollectError::parse(&path, format!("could not parse load '{f}'")))?;
        }
        out.emit("node_load1", "1m load average.", Gauge, &[], loads[0]);
        out.emit("node_load5", "5m load average.", Gauge, &[], loads[1]);
        out.emit("node_load15", "15m load average.", Gauge, &[], loads[2]);
        Ok(())
    }
}
