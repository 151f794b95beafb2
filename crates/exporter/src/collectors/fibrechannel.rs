//! fibrechannel: /sys/class/fc_host (node_exporter fibrechannel_linux.go over procfs' sysfs parser).

use std::fmt::Write as _;

use super::prelude::*;

pub struct Fibrechannel;

/// (statistics file, metric suffix, help)
const COUNTERS: [(&str, &str, &str); 14] = [
    (
        "dumped_frames",
        "dumped_frames_total",
        "Number of dumped frames",
    ),
    (
        "error_frames",
        "error_frames_total",
        "Number of errors in frames",
    ),
    (
        "invalid_crc_count",
        "invalid_crc_total",
        "Invalid Cyclic Redundancy Check count",
    ),
    ("rx_frames", "rx_frames_total", "Number of frames received"),
    (
        "rx_words",
        "rx_words_total",
        "Number of words received by host port",
    ),
    (
        "tx_frames",
        "tx_frames_total",
        "Number of frames transmitted by host port",
    ),
    (
        "tx_words",
        "tx_words_total",
        "Number of words transmitted by host port",
    ),
    (
        "seconds_since_last_reset",
        "seconds_since_last_reset_total",
        "Number of seconds since last host port reset",
    ),
    (
        "invalid_tx_word_count",
        "invalid_tx_words_total",
        "Number of invalid words transmitted by host port",
    ),
    (
        "link_failure_count",
        "link_failure_total",
        "Number of times the host port link has failed",
    ),
    (
        "loss_of_sync_count",
        "loss_of_sync_total",
        "Number of failures on either bit or transmission word boundaries",
    ),
    (
        "loss_of_signal_count",
        "loss_of_signal_total",
        "Number of times signal has been lost",
    ),
    (
        "nos_count",
        "nos_total",
        "Number Not_Operational Primitive Sequence received by host port",
    ),
    (
        "fcp_packet_aborts",
        "fcp_packet_aborts_total",
        "Number of aborted packets",
    ),
];

impl Collector for Fibrechannel {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("class/fc_host");
        for host in sorted_dir(&base)? {
            let hd = base.join(&host);
            let a = |f: &str| read_attr(&hd.join(f)).unwrap_or_default();
            // procfs drops the first two characters (the "0x") of these hex identifiers.
            let hex = |f: &str| {
                let v = a(f);
                if v.len() > 2 {
                    v[2..].to_string()
                } else {
                    v
                }
            };
            let vals = [
                a("speed"),
                a("port_state"),
                a("port_type"),
                hex("port_id"),
                hex("port_name"),
                hex("fabric_name"),
                a("symbolic_name"),
                a("supported_classes"),
                a("supported_speeds"),
                a("dev_loss_tmo"),
            ];
            let names = [
                "speed",
                "port_state",
                "port_type",
                "port_id",
                "port_name",
                "fabric_name",
                "symbolic_name",
                "supported_classes",
                "supported_speeds",
                "dev_loss_tmo",
            ];
            let mut labels: Vec<(&str, &str)> = vec![("fc_host", host.as_str())];
            labels.extend(names.iter().zip(&vals).map(|(n, v)| (*n, v.as_str())));
            out.emit(
                "node_fibrechannel_info",
                "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
                Gauge,
                &labels,
                1.0,
            );
            for (file, suffix, help) in COUNTERS {
                let v = read_attr(&hd.join("statistics").join(file))
                    .and_then(|v| parse_u64_auto(&v))
                    .unwrap_or(0);
                // All-ones means the HBA firmware does not implement the counter.
                if v == u64::MAX {
                    continue;
                }
                s.name.clear();
                let _ = write!(s.name, "node_fibrechannel_{suffix}");
                out.emit(&s.name, help, Counter, &[("fc_host", &host)], v as f64);
            }
        }
        Ok(())
    }
}

fn parse_u64_auto(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}
