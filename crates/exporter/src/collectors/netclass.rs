//! netclass: /sys/class/net/<iface> attributes (node_exporter netclass_linux.go, sysfs path).

use std::fmt::Write as _;

use super::prelude::*;

pub struct Netclass;

/// Parses an integer the way Go's strconv.ParseInt(s, 0, 64) does (0x.. hex, 0.. octal, decimal).
pub fn parse_int_auto(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// (sysfs attribute, metric suffix, type) of the numeric properties, in node_exporter's order.
const PROPS: [(&str, &str, MetricType); 16] = [
    ("addr_assign_type", "address_assign_type", Gauge),
    ("carrier", "carrier", Gauge),
    ("carrier_changes", "carrier_changes_total", Counter),
    ("carrier_up_count", "carrier_up_changes_total", Counter),
    ("carrier_down_count", "carrier_down_changes_total", Counter),
    ("dev_id", "device_id", Gauge),
    ("dormant", "dormant", Gauge),
    ("flags", "flags", Gauge),
    ("ifindex", "iface_id", Gauge),
    ("iflink", "iface_link", Gauge),
    ("link_mode", "iface_link_mode", Gauge),
    ("mtu", "mtu_bytes", Gauge),
    ("name_assign_type", "name_assign_type", Gauge),
    ("netdev_group", "net_dev_group", Gauge),
    ("speed", "speed_bytes", Gauge),
    ("tx_queue_len", "transmit_queue_length", Gauge),
];

impl Collector for Netclass {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("class/net");
        let names = sorted_dir(&base)?;
        for dev in &names {
            let dir = base.join(dev);
            // Skip plain files such as bonding_masters; devices are (symlinks to) directories.
            if !dir.is_dir() || cfg.netclass_ignored.is_match(dev) {
                continue;
            }
            let attr = |n: &str| read_attr(&dir.join(n));
            let oper = attr("operstate").unwrap_or_default();
            out.emit(
                "node_network_up",
                "Value is 1 if operstate is 'up', 0 otherwise.",
                Gauge,
                &[("device", dev)],
                if oper == "up" { 1.0 } else { 0.0 },
            );
            let (address, broadcast, duplex, ifalias) = (
                attr("address").unwrap_or_default(),
                attr("broadcast").unwrap_or_default(),
                attr("duplex").unwrap_or_default(),
                attr("ifalias").unwrap_or_default(),
            );
            out.emit(
                "node_network_info",
                "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
                Gauge,
                &[
                    ("device", dev),
                    ("address", &address),
                    ("broadcast", &broadcast),
                    ("duplex", &duplex),
                    ("operstate", &oper),
                    ("ifalias", &ifalias),
                ],
                1.0,
            );
            for (file, suffix, typ) in PROPS {
                let Some(v) = attr(file).and_then(|v| parse_int_auto(&v)) else {
                    continue;
                };
                let v = if file == "speed" {
                    if v < 0 && cfg.netclass_ignore_invalid_speed {
                        continue;
                    }
                    (v * 1000 * 1000 / 8) as f64
                } else {
                    v as f64
                };
                s.name.clear();
                let _ = write!(s.name, "node_network_{suffix}");
                out.emit_fmt(
                    &s.name,
                    format_args!("Network device property: {suffix}"),
                    typ,
                    &[("device", dev)],
                    v,
                );
            }
            // node_exporter emits protocol_type (the `type` attribute) last.
            if let Some(v) = attr("type").and_then(|v| parse_int_auto(&v)) {
                out.emit(
                    "node_network_protocol_type",
                    "Network device property: protocol_type",
                    Gauge,
                    &[("device", dev)],
                    v as f64,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_style_ints() {
        use super::parse_int_auto as p;
        assert_eq!(p("0x1003"), Some(0x1003));
        assert_eq!(p("-1"), Some(-1));
        assert_eq!(p("010"), Some(8));
        assert_eq!(p("0"), Some(0));
        assert_eq!(p("x"), None);
    }
}
