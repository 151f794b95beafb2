//! edac: memory controller error counters (node_exporter edac_linux.go).

use super::prelude::*;

pub struct Edac;

fn numbered<'a>(names: &'a [String], prefix: &str) -> impl Iterator<Item = (&'a String, &'a str)> {
    let p = prefix.to_string();
    names.iter().filter_map(move |n| {
        let r = n.strip_prefix(p.as_str())?;
        (r.bytes().next().is_some_and(|b| b.is_ascii_digit())).then_some((n, r))
    })
}

impl Collector for Edac {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("devices/system/edac/mc");
        // A missing edac tree is "no controllers" (node_exporter globs and finds nothing).
        let Ok(names) = sorted_dir(&base) else {
            return Ok(());
        };
        for (n, mc) in numbered(&names, "mc") {
            let dir = base.join(n);
            let ce = read_u64(&dir.join("ce_count"))?;
            out.emit(
                "node_edac_correctable_errors_total",
                "Total correctable memory errors.",
                Counter,
                &[("controller", mc)],
                ce as f64,
            );
            let ce_no = read_u64(&dir.join("ce_noinfo_count"))?;
            out.emit(
                "node_edac_csrow_correctable_errors_total",
                "Total correctable memory errors for this csrow.",
                Counter,
                &[("controller", mc), ("csrow", "unknown")],
                ce_no as f64,
            );
            let ue = read_u64(&dir.join("ue_count"))?;
            out.emit(
                "node_edac_uncorrectable_errors_total",
                "Total uncorrectable memory errors.",
                Counter,
                &[("controller", mc)],
                ue as f64,
            );
            let ue_no = read_u64(&dir.join("ue_noinfo_count"))?;
            out.emit(
                "node_edac_csrow_uncorrectable_errors_total",
                "Total uncorrectable memory errors for this csrow.",
                Counter,
                &[("controller", mc), ("csrow", "unknown")],
                ue_no as f64,
            );
            let rows = sorted_dir(&dir)?;
            for (r, row) in numbered(&rows, "csrow") {
                let rd = dir.join(r);
                let ce = read_u64(&rd.join("ce_count"))?;
                out.emit(
                    "node_edac_csrow_correctable_errors_total",
                    "Total correctable memory errors for this csrow.",
                    Counter,
                    &[("controller", mc), ("csrow", row)],
                    ce as f64,
                );
                let ue = read_u64(&rd.join("ue_count"))?;
                out.emit(
                    "node_edac_csrow_uncorrectable_errors_total",
                    "Total uncorrectable memory errors for this csrow.",
                    Counter,
                    &[("controller", mc), ("csrow", row)],
                    ue as f64,
                );
            }
        }
        Ok(())
    }
}
