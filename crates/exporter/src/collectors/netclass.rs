//! netclass: /sys/class/net/<iface> attributes (node_exporter netclass_linux.go, sysfs path), or with
//! --collector.netclass.netlink the metric set of node_exporter's rtnetlink variant
//! (netclass_rtnl_linux.go). That variant reads RTM_GETLINK and ethtool link modes; we read the same
//! kernel values from sysfs (sysfs and rtnetlink both come from struct net_device): `flags` gets the
//! bits dev_get_flags() adds (RUNNING, LOWER_UP, DORMANT), speed is ethtool's u32 (unknown = 2^32-1) and
//! duplex ethtool's capitalised name. Known gap: sysfs refuses `carrier` (and speed/duplex) for a link
//! that is administratively down, where rtnetlink still reports them; we then emit carrier 0 and no
//! speed/duplex.

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
        if cfg.netclass_netlink {
            return rtnl_update(cfg, s, out);
        }
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

/// (metric, sysfs attribute, type, default when unreadable) of the rtnetlink variant, in its order.
/// `dormant` is rtnetlink's LinkMode there (a node_exporter 1.5 quirk we keep).
const RTNL_PROPS: [(&str, &str, MetricType, Option<i64>); 13] = [
    ("carrier", "carrier", Gauge, Some(0)),
    ("carrier_changes_total", "carrier_changes", Counter, Some(0)),
    (
        "carrier_up_changes_total",
        "carrier_up_count",
        Counter,
        Some(0),
    ),
    (
        "carrier_down_changes_total",
        "carrier_down_count",
        Counter,
        Some(0),
    ),
    ("flags", "flags", Gauge, None),
    ("iface_id", "ifindex", Gauge, None),
    ("iface_link_mode", "link_mode", Gauge, None),
    ("dormant", "link_mode", Gauge, None),
    ("iface_link", "iflink", Gauge, None),
    ("mtu_bytes", "mtu", Gauge, None),
    ("net_dev_group", "netdev_group", Gauge, None),
    ("transmit_queue_length", "tx_queue_len", Gauge, None),
    ("protocol_type", "type", Gauge, None),
];

/// rtnl_link_stats64 fields exposed by --collector.netclass_rtnl.with-stats (as gauges, like upstream).
const RTNL_STATS: [(&str, &str); 24] = [
    ("receive_packets_total", "rx_packets"),
    ("transmit_packets_total", "tx_packets"),
    ("receive_bytes_total", "rx_bytes"),
    ("transmit_bytes_total", "tx_bytes"),
    ("receive_errors_total", "rx_errors"),
    ("transmit_errors_total", "tx_errors"),
    ("receive_dropped_total", "rx_dropped"),
    ("transmit_dropped_total", "tx_dropped"),
    ("multicast_total", "multicast"),
    ("collisions_total", "collisions"),
    ("receive_length_errors_total", "rx_length_errors"),
    ("receive_over_errors_total", "rx_over_errors"),
    ("receive_crc_errors_total", "rx_crc_errors"),
    ("receive_frame_errors_total", "rx_frame_errors"),
    ("receive_fifo_errors_total", "rx_fifo_errors"),
    ("receive_missed_errors_total", "rx_missed_errors"),
    ("transmit_aborted_errors_total", "tx_aborted_errors"),
    ("transmit_carrier_errors_total", "tx_carrier_errors"),
    ("transmit_fifo_errors_total", "tx_fifo_errors"),
    ("transmit_heartbeat_errors_total", "tx_heartbeat_errors"),
    ("transmit_window_errors_total", "tx_window_errors"),
    ("receive_compressed_total", "rx_compressed"),
    ("transmit_compressed_total", "tx_compressed"),
    ("receive_nohandler_total", "rx_nohandler"),
];

fn prop(out: &mut Registry, name: &mut String, key: &str, typ: MetricType, dev: &str, v: f64) {
    name.clear();
    let _ = write!(name, "node_network_{key}");
    out.emit_fmt(
        name,
        format_args!("Network device property: {key}"),
        typ,
        &[("device", dev)],
        v,
    );
}

/// dev_get_flags(): sysfs `flags` is dev->flags; rtnetlink adds RUNNING (operstate up or unknown),
/// LOWER_UP (carrier) and DORMANT for a running (IFF_UP) device.
fn rtnl_flags(flags: i64, carrier: bool, oper: &str) -> i64 {
    const IFF_UP: i64 = 0x1;
    const IFF_RUNNING: i64 = 0x40;
    const IFF_LOWER_UP: i64 = 0x1_0000;
    const IFF_DORMANT: i64 = 0x2_0000;
    let mut f = flags & !(IFF_RUNNING | IFF_LOWER_UP | IFF_DORMANT);
    if flags & IFF_UP != 0 {
        if oper == "up" || oper == "unknown" {
            f |= IFF_RUNNING;
        }
        if carrier {
            f |= IFF_LOWER_UP;
        }
        if oper == "dormant" {
            f |= IFF_DORMANT;
        }
    }
    f
}

fn rtnl_update(cfg: &Config, s: &mut Scratch, out: &mut Registry) -> Result<(), CollectError> {
    let base = cfg.sys("class/net");
    let names = sorted_dir(&base)?;
    for dev in &names {
        let dir = base.join(dev);
        if !dir.is_dir() || cfg.netclass_ignored.is_match(dev) {
            continue;
        }
        let attr = |n: &str| read_attr(&dir.join(n));
        // ethtool link modes report speed as u32 with SPEED_UNKNOWN = 0xffffffff, which node_exporter
        // scales like any other speed.
        if let Some(v) = attr("speed").and_then(|v| parse_int_auto(&v)) {
            let mbit = v as i32 as u32 as u64;
            prop(
                out,
                &mut s.name,
                "speed_bytes",
                Gauge,
                dev,
                (mbit * 1000 * 1000 / 8) as f64,
            );
        }
        let oper = attr("operstate").unwrap_or_else(|| "unknown".to_string());
        out.emit(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
            Gauge,
            &[("device", dev)],
            if oper == "up" { 1.0 } else { 0.0 },
        );
        let (address, broadcast, ifalias) = (
            attr("address").unwrap_or_default(),
            attr("broadcast").unwrap_or_default(),
            attr("ifalias").unwrap_or_default(),
        );
        // mdlayher/ethtool's Duplex.String().
        let duplex = match attr("duplex").as_deref() {
            Some("full") => "Full",
            Some("half") => "Half",
            Some(_) => "Unknown",
            None => "",
        };
        out.emit(
            "node_network_info",
            "Non-numeric data of <iface>, value is always 1.",
            Gauge,
            &[
                ("device", dev),
                ("address", &address),
                ("broadcast", &broadcast),
                ("duplex", duplex),
                ("operstate", &oper),
                ("ifalias", &ifalias),
            ],
            1.0,
        );
        let carrier = attr("carrier")
            .and_then(|v| parse_int_auto(&v))
            .unwrap_or(0);
        for (key, file, typ, default) in RTNL_PROPS {
            let Some(mut v) = attr(file).and_then(|v| parse_int_auto(&v)).or(default) else {
                continue;
            };
            if key == "flags" {
                v = rtnl_flags(v, carrier == 1, &oper);
            }
            prop(out, &mut s.name, key, typ, dev, v as f64);
        }
        if cfg.netclass_rtnl_with_stats {
            for (key, file) in RTNL_STATS {
                if let Some(v) =
                    attr(&format!("statistics/{file}")).and_then(|v| v.parse::<u64>().ok())
                {
                    prop(out, &mut s.name, key, Gauge, dev, v as f64);
                }
            }
        }
    }
    Ok(())
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

    #[test]
    fn rtnl_flags_as_dev_get_flags() {
        // Values seen on this host: node_exporter's netlink variant vs sysfs flags.
        assert_eq!(super::rtnl_flags(0x1003, true, "up"), 69699);
        assert_eq!(super::rtnl_flags(0x9, true, "unknown"), 65609);
        assert_eq!(super::rtnl_flags(0x1002, false, "down"), 0x1002);
    }
}
