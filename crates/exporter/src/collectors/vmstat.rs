//! vmstat: /proc/vmstat fields matching --collector.vmstat.fields, untyped (node_exporter vmstat_linux.go).

use std::fmt::Write as _;

use super::prelude::*;

pub struct Vmstat;

impl Collector for Vmstat {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let path = cfg.proc("vmstat");
        let text = read_str(&path, &mut s.buf)?;
        for line in text.lines() {
            let mut it = line.split_ascii_whitespace();
            let (Some(k), Some(v)) = (it.next(), it.next()) else {
                continue;
            };
            let v: f64 = v
                .parse()
                .map_err(|_| CollectError::parse(&path, format!("invalid value {v}")))?;
            if !cfg.vmstat_fields.is_match(k) {
                continue;
            }
            s.name.clear();
            let _ = write!(s.name, "node_vmstat_{k}");
            out.emit_fmt(
                &s.name,
                format_args!("/proc/vmstat information field {k}."),
                Untyped,
                &[],
                v,
            );
        }
        Ok(())
    }
}
