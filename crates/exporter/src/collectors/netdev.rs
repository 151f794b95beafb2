//! netdev: per-interface counters (node_exporter netdev_linux.go, legacy metric names).
//!
//! node_exporter 1.5 reads rtnetlink stats64 by default; the legacy names it then emits are exactly the
//! /proc/net/dev columns (the kernel computes the same sums for drop/frame/carrier), except
//! `receive_nohandler`, which /proc/net/dev lacks and we read from sysfs `statistics/rx_nohandler`.

use std::fmt::Write as _;

use super::prelude::*;

pub struct Netdev;

const RX: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];
const TX: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];

impl Collector for Netdev {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let path = cfg.proc("net/dev");
        let text = read_str(&path, &mut s.buf)?;
        for line in text.lines().skip(2) {
            let Some((dev, rest)) = line.split_once(':') else {
                continue;
            };
            let dev = dev.trim();
            if cfg.netdev_filter.ignored(dev) {
                continue;
            }
            let vals: Vec<&str> = rest.split_ascii_whitespace().collect();
            if vals.len() < 16 {
                return Err(CollectError::parse(&path, format!("invalid line: {line}")));
            }
            let names = RX
                .iter()
                .map(|n| ("receive", n))
                .chain(TX.iter().map(|n| ("transmit", n)));
            for ((dir, n), v) in names.zip(&vals) {
                let v: f64 = v
                    .parse()
                    .map_err(|_| CollectError::parse(&path, format!("invalid value {v}")))?;
                s.name.clear();
                let _ = write!(s.name, "node_network_{dir}_{n}_total");
                out.emit_fmt(
                    &s.name,
                    format_args!("Network device statistic {dir}_{n}."),
                    Counter,
                    &[("device", dev)],
                    v,
                );
            }
            s.help.clear();
            let _ = write!(s.help, "class/net/{dev}/statistics/rx_nohandler");
            if let Ok(v) = read_u64(&cfg.sys(&s.help)) {
                out.emit(
                    "node_network_receive_nohandler_total",
                    "Network device statistic receive_nohandler.",
                    Counter,
                    &[("device", dev)],
                    v as f64,
                );
            }
        }
        Ok(())
    }
}
