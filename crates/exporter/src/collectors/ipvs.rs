//! ipvs: IPVS totals and per-backend connections (node_exporter ipvs_linux.go over procfs' parser).
//! Backend series carry the labels chosen by --collector.ipvs.backend-labels (default: all six); backends
//! that agree on the chosen labels are summed, as node_exporter does.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::prelude::*;

pub struct Ipvs;

fn parse_ip_port(s: &str) -> Result<(String, u16), String> {
    let ip = match s.len() {
        13 => {
            let v = u32::from_str_radix(&s[0..8], 16).map_err(|_| format!("bad ip {s}"))?;
            IpAddr::V4(Ipv4Addr::from(v)).to_string()
        }
        46 => s[1..40]
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("invalid IPv6 address: {}", &s[1..40]))?
            .to_string(),
        _ => return Err(format!("unexpected IP:Port: {s}")),
    };
    let port = u16::from_str_radix(&s[s.len() - 4..], 16).map_err(|_| format!("bad port {s}"))?;
    Ok((ip, port))
}

/// (local_address, local_port, remote_address, remote_port, proto, local_mark) → (active, inactive, weight)
type Backends = BTreeMap<[String; 6], [u64; 3]>;

pub fn parse_backends(text: &str) -> Result<Backends, String> {
    let mut sums = Backends::new();
    let (mut proto, mut mark, mut laddr, mut lport) =
        (String::new(), String::new(), String::new(), 0u16);
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f[0] == "IP" || f[0] == "Prot" || f.get(1) == Some(&"RemoteAddress:Port") {
            continue;
        }
        match f[0] {
            "TCP" | "UDP" if f.len() >= 2 => {
                proto = f[0].to_string();
                mark.clear();
                (laddr, lport) = parse_ip_port(f[1])?;
            }
            "FWM" if f.len() >= 2 => {
                proto = f[0].to_string();
                mark = f[1].to_string();
                laddr.clear();
                lport = 0;
            }
            "->" if f.len() >= 6 => {
                let (raddr, rport) = parse_ip_port(f[1])?;
                let n = |s: &str| s.parse::<u64>().map_err(|_| format!("bad number {s}"));
                let (w, a, i) = (n(f[3])?, n(f[4])?, n(f[5])?);
                let key = [
                    laddr.clone(),
                    lport.to_string(),
                    raddr,
                    rport.to_string(),
                    proto.clone(),
                    mark.clone(),
                ];
                let e = sums.entry(key).or_default();
                e[0] += a;
                e[1] += i;
                e[2] += w;
            }
            _ => {}
        }
    }
    Ok(sums)
}

impl Collector for Ipvs {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let p = cfg.proc("net/ip_vs_stats");
        let text = read_str(&p, &mut s.buf)?;
        let lines: Vec<&str> = text.splitn(4, '\n').collect();
        if lines.len() != 4 {
            return Err(CollectError::parse(&p, "ip_vs_stats corrupt: too short"));
        }
        let f: Vec<&str> = lines[2].split_ascii_whitespace().collect();
        if f.len() != 5 {
            return Err(CollectError::parse(
                &p,
                "ip_vs_stats corrupt: unexpected number of fields",
            ));
        }
        let mut v = [0f64; 5];
        for (slot, x) in v.iter_mut().zip(&f) {
            *slot = u64::from_str_radix(x, 16)
                .map_err(|_| CollectError::parse(&p, format!("bad hex {x}")))?
                as f64;
        }
        out.emit(
            "node_ipvs_connections_total",
            "The total number of connections made.",
            Counter,
            &[],
            v[0],
        );
        out.emit(
            "node_ipvs_incoming_packets_total",
            "The total number of incoming packets.",
            Counter,
            &[],
            v[1],
        );
        out.emit(
            "node_ipvs_outgoing_packets_total",
            "The total number of outgoing packets.",
            Counter,
            &[],
            v[2],
        );
        out.emit(
            "node_ipvs_incoming_bytes_total",
            "The total amount of incoming data.",
            Counter,
            &[],
            v[3],
        );
        out.emit(
            "node_ipvs_outgoing_bytes_total",
            "The total amount of outgoing data.",
            Counter,
            &[],
            v[4],
        );
        let bp = cfg.proc("net/ip_vs");
        let text = read_str(&bp, &mut s.buf)?;
        let full = parse_backends(text).map_err(|m| CollectError::parse(&bp, m))?;
        let chosen = &cfg.ipvs_backend_labels;
        // Project each backend onto the chosen labels and sum those that coincide.
        let mut sums: BTreeMap<Vec<&str>, [u64; 3]> = BTreeMap::new();
        for (k, v) in &full {
            let key: Vec<&str> = chosen
                .iter()
                .map(|l| {
                    let i = super::IPVS_BACKEND_LABELS
                        .iter()
                        .position(|x| x == l)
                        .unwrap_or(0);
                    k[i].as_str()
                })
                .collect();
            let e = sums.entry(key).or_default();
            for (a, b) in e.iter_mut().zip(v) {
                *a += b;
            }
        }
        let mut l: Vec<(&str, &str)> = Vec::with_capacity(6);
        for (k, [a, i, w]) in &sums {
            l.clear();
            l.extend(chosen.iter().copied().zip(k.iter().copied()));
            out.emit(
                "node_ipvs_backend_connections_active",
                "The current active connections by local and remote address.",
                Gauge,
                &l,
                *a as f64,
            );
            out.emit(
                "node_ipvs_backend_connections_inactive",
                "The current inactive connections by local and remote address.",
                Gauge,
                &l,
                *i as f64,
            );
            out.emit(
                "node_ipvs_backend_weight",
                "The current backend weight by local and remote address.",
                Gauge,
                &l,
                *w as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backends() {
        let t = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  C0A80016:0CEA wlc\n  -> C0A82016:0CEA      Tunnel  100    248        2\n  -> C0A82016:0CEA      Tunnel  100    2        1\nFWM  10001000 wlc\n  -> C0A8323C:0CEA      Route   20     64         1\n";
        let b = super::parse_backends(t).unwrap();
        let k = [
            "192.168.0.22".to_string(),
            "3306".into(),
            "192.168.32.22".into(),
            "3306".into(),
            "TCP".into(),
            "".into(),
        ];
        assert_eq!(b[&k], [250, 3, 200]);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn backend_label_flag() {
        use crate::collectors::parse_ipvs_labels;
        assert_eq!(
            parse_ipvs_labels("proto,local_port,,").expect("valid"),
            ["local_port", "proto"]
        );
        assert_eq!(parse_ipvs_labels("").expect("empty").len(), 0);
        let e = parse_ipvs_labels("foo,proto,bar").expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "invalid flags: unknown IPVS backend labels: \"bar, foo\""
        );
    }
}
