//! arp: /proc/net/arp entries per device (node_exporter arp_linux.go).

use std::collections::BTreeMap;

use super::prelude::*;

#[derive(Default)]
pub struct Arp {
    counts: BTreeMap<String, u64>,
}

impl Collector for Arp {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let p = cfg.proc("net/arp");
        let text = read_str(&p, &mut s.buf)?;
        for v in self.counts.values_mut() {
            *v = 0;
        }
        for line in text.lines() {
            let cols: Vec<&str> = line.split_ascii_whitespace().collect();
            if cols.len() < 6 {
                return Err(CollectError::parse(&p, "unexpected ARP table format"));
            }
            if cols[0] != "IP" {
                let dev = cols[cols.len() - 1];
                match self.counts.get_mut(dev) {
                    Some(c) => *c += 1,
                    None => {
                        self.counts.insert(dev.to_string(), 1);
                    }
                }
            }
        }
        self.counts.retain(|_, v| *v > 0);
        for (dev, n) in &self.counts {
            if cfg.arp_filter.ignored(dev) {
                continue;
            }
            out.emit(
                "node_arp_entries",
                "ARP entries by device",
                Gauge,
                &[("device", dev)],
                *n as f64,
            );
        }
        Ok(())
    }
}
