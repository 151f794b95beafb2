//! udp_queues: summed tx/rx queue bytes of /proc/net/udp{,6} (node_exporter udp_queues_linux.go).

use super::prelude::*;

pub struct UdpQueues;

/// Sums the hex `tx_queue:rx_queue` column over all sockets.
pub fn queue_sums(text: &str) -> Result<(f64, f64), String> {
    let (mut tx, mut rx) = (0u64, 0u64);
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 5 {
            continue;
        }
        let (t, r) = f[4]
            .split_once(':')
            .ok_or_else(|| format!("invalid queue field {}", f[4]))?;
        tx += u64::from_str_radix(t, 16).map_err(|_| format!("invalid hex {t}"))?;
        rx += u64::from_str_radix(r, 16).map_err(|_| format!("invalid hex {r}"))?;
    }
    Ok((tx as f64, rx as f64))
}

impl Collector for UdpQueues {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let mut missing = 0;
        let mut last = None;
        for (f, ip) in [("net/udp", "v4"), ("net/udp6", "v6")] {
            let p = cfg.proc(f);
            match read_str(&p, &mut s.buf) {
                Ok(text) => {
                    let (tx, rx) = queue_sums(text).map_err(|m| CollectError::parse(&p, m))?;
                    let help =
                        "Number of allocated memory in the kernel for UDP datagrams in bytes.";
                    out.emit(
                        "node_udp_queues",
                        help,
                        Gauge,
                        &[("queue", "tx"), ("ip", ip)],
                        tx,
                    );
                    out.emit(
                        "node_udp_queues",
                        help,
                        Gauge,
                        &[("queue", "rx"), ("ip", ip)],
                        rx,
                    );
                }
                Err(e) if e.is_not_found() => {
                    missing += 1;
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        match (missing, last) {
            (2, Some(e)) => Err(e),
            _ => Ok(()),
        }
    }
}
