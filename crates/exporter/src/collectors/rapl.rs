//! rapl: Intel RAPL energy counters from /sys/class/powercap (node_exporter rapl_linux.go).

use std::collections::HashMap;

use super::prelude::*;

pub struct Rapl;

/// "package-0" → (0, "package"); other names get a running index per name (procfs getIndexAndName).
fn index_and_name(counts: &HashMap<String, u64>, name: &str) -> (u64, String) {
    if let Some((base, idx)) = name.split_once('-') {
        if let Ok(i) = idx.parse() {
            return (i, base.to_string());
        }
    }
    (counts.get(name).copied().unwrap_or(0), name.to_string())
}

impl Collector for Rapl {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("class/powercap");
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut sname = String::new();
        for d in sorted_dir(&base)? {
            let dir = base.join(&d);
            let Some(raw) = read_attr(&dir.join("name")) else {
                continue;
            };
            let (idx, name) = index_and_name(&counts, &raw);
            read_u64(&dir.join("max_energy_range_uj"))?;
            counts.insert(name.clone(), idx + 1);
            let uj = read_u64(&dir.join("energy_uj"))?;
            let path = dir.to_string_lossy();
            let mut nb = itoa_buf();
            let index = fmt_u64(&mut nb, idx);
            if cfg.rapl_zone_label {
                out.emit(
                    "node_rapl_joules_total",
                    "Current RAPL value in joules",
                    Counter,
                    &[("index", index), ("path", &path), ("rapl_zone", &name)],
                    uj as f64 / 1e6,
                );
            } else {
                crate::util::sanitize_metric_name(&name, &mut sname);
                let metric = format!("node_rapl_{sname}_joules_total");
                out.emit_fmt(
                    &metric,
                    format_args!("Current RAPL {name} value in joules"),
                    Counter,
                    &[("index", index), ("path", &path)],
                    uj as f64 / 1e6,
                );
            }
        }
        Ok(())
    }
}
