//! netdev: per-interface counters (node_exporter netdev_linux.go + netdev_common.go).
//!
//! node_exporter 1.5 has two sources and two naming schemes:
//! - `--collector.netdev.netlink` (default on): rtnetlink's rtnl_link_stats64. We read the very same
//!   counters from sysfs `class/net/<dev>/statistics/*` (the kernel fills both from dev_get_stats) for
//!   the devices listed in /proc/net/dev. With legacy names the values equal the /proc/net/dev columns
//!   (the kernel computes the same sums for drop/fifo/frame/carrier), so those are read from there, plus
//!   `receive_nohandler`, which /proc/net/dev lacks.
//! - `--no-collector.netdev.netlink`: /proc/net/dev only (no `receive_nohandler`).
//! - `--collector.netdev.enable-detailed-metrics` keeps each source's own field names instead of the
//!   legacy ones (netlink: 24 counters, e.g. `receive_crc_errors`; /proc: `receive_errors`, `receive_dropped`…).
//!
//! `--collector.netdev.address-info` adds `node_network_address_info{device,address,netmask,scope}` for
//! every address of every interface (getifaddrs, as Go's net.Interfaces/Addrs; not filtered by device).

use std::fmt::Write as _;
use std::net::IpAddr;

use super::prelude::*;

pub struct Netdev;

/// /proc/net/dev columns with legacy names.
const PROC_LEGACY: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// /proc/net/dev columns as procNetDevStats names them (what --enable-detailed-metrics exposes).
const PROC_DETAILED: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errors",
    "receive_dropped",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errors",
    "transmit_dropped",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// rtnl_link_stats64 fields as parseNetlinkStats names them, with their sysfs statistics file.
const NETLINK_DETAILED: [(&str, &str); 24] = [
    ("receive_packets", "rx_packets"),
    ("transmit_packets", "tx_packets"),
    ("receive_bytes", "rx_bytes"),
    ("transmit_bytes", "tx_bytes"),
    ("receive_errors", "rx_errors"),
    ("transmit_errors", "tx_errors"),
    ("receive_dropped", "rx_dropped"),
    ("transmit_dropped", "tx_dropped"),
    ("multicast", "multicast"),
    ("collisions", "collisions"),
    ("receive_length_errors", "rx_length_errors"),
    ("receive_over_errors", "rx_over_errors"),
    ("receive_crc_errors", "rx_crc_errors"),
    ("receive_frame_errors", "rx_frame_errors"),
    ("receive_fifo_errors", "rx_fifo_errors"),
    ("receive_missed_errors", "rx_missed_errors"),
    ("transmit_aborted_errors", "tx_aborted_errors"),
    ("transmit_carrier_errors", "tx_carrier_errors"),
    ("transmit_fifo_errors", "tx_fifo_errors"),
    ("transmit_heartbeat_errors", "tx_heartbeat_errors"),
    ("transmit_window_errors", "tx_window_errors"),
    ("receive_compressed", "rx_compressed"),
    ("transmit_compressed", "tx_compressed"),
    ("receive_nohandler", "rx_nohandler"),
];

fn emit_counter(out: &mut Registry, name: &mut String, key: &str, dev: &str, v: f64) {
    name.clear();
    let _ = write!(name, "node_network_{key}_total");
    out.emit_fmt(
        name,
        format_args!("Network device statistic {key}."),
        Counter,
        &[("device", dev)],
        v,
    );
}

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
            if cfg.netdev_netlink && cfg.netdev_detailed {
                for (key, file) in NETLINK_DETAILED {
                    s.help.clear();
                    let _ = write!(s.help, "class/net/{dev}/statistics/{file}");
                    if let Ok(v) = read_u64(&cfg.sys(&s.help)) {
                        emit_counter(out, &mut s.name, key, dev, v as f64);
                    }
                }
                continue;
            }
            let names = if cfg.netdev_detailed {
                &PROC_DETAILED
            } else {
                &PROC_LEGACY
            };
            let mut vals = [0f64; 16];
            let mut n = 0;
            for (slot, v) in vals.iter_mut().zip(rest.split_ascii_whitespace()) {
                *slot = v
                    .parse()
                    .map_err(|_| CollectError::parse(&path, format!("invalid value {v}")))?;
                n += 1;
            }
            if n < names.len() {
                return Err(CollectError::parse(&path, format!("invalid line: {line}")));
            }
            for (key, v) in names.iter().zip(vals) {
                emit_counter(out, &mut s.name, key, dev, v);
            }
            if cfg.netdev_netlink {
                s.help.clear();
                let _ = write!(s.help, "class/net/{dev}/statistics/rx_nohandler");
                if let Ok(v) = read_u64(&cfg.sys(&s.help)) {
                    emit_counter(out, &mut s.name, "receive_nohandler", dev, v as f64);
                }
            }
        }
        if cfg.netdev_address_info {
            for (dev, addr, prefix) in interface_addresses().map_err(|e| {
                CollectError::Other(format!("could not get network interfaces: {e}"))
            })? {
                let mut b = itoa_buf();
                out.emit(
                    "node_network_address_info",
                    "node network address by device",
                    Gauge,
                    &[
                        ("device", &dev),
                        ("address", &addr.to_string()),
                        ("netmask", fmt_u64(&mut b, prefix as u64)),
                        ("scope", scope(&addr)),
                    ],
                    1.0,
                );
            }
        }
        Ok(())
    }
}

/// Go's classification in netdev_common.go's scope().
pub fn scope(ip: &IpAddr) -> &'static str {
    let (loopback, ll_unicast, ll_multicast, if_local_multicast) = match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            (
                a.is_loopback(),
                o[0] == 169 && o[1] == 254,
                o[0] == 224 && o[1] == 0 && o[2] == 0,
                false,
            )
        }
        IpAddr::V6(a) => {
            let o = a.octets();
            (
                a.is_loopback(),
                o[0] == 0xfe && o[1] & 0xc0 == 0x80,
                o[0] == 0xff && o[1] & 0x0f == 0x02,
                o[0] == 0xff && o[1] & 0x0f == 0x01,
            )
        }
    };
    if loopback || ll_unicast || ll_multicast {
        return "link-local";
    }
    if if_local_multicast {
        return "interface-local";
    }
    // Go's IsGlobalUnicast: not unspecified, loopback, multicast, link-local unicast or v4 broadcast.
    let global = match ip {
        IpAddr::V4(a) => !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast(),
        IpAddr::V6(a) => !a.is_unspecified() && !a.is_multicast(),
    };
    if global {
        "global"
    } else {
        ""
    }
}

/// (interface, address, prefix length) of every IPv4/IPv6 address, from getifaddrs(3).
fn interface_addresses() -> std::io::Result<Vec<(String, IpAddr, u32)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list and stores its head in `head` on success.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut v = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: sa_family is valid for every sockaddr; the cast below matches that family.
        let fam = unsafe { (*ifa.ifa_addr).sa_family } as i32;
        let (addr, prefix) = match fam {
            libc::AF_INET => {
                // SAFETY: family AF_INET means both point at sockaddr_in.
                let (a, m) = unsafe {
                    (
                        &*(ifa.ifa_addr as *const libc::sockaddr_in),
                        &*(ifa.ifa_netmask as *const libc::sockaddr_in),
                    )
                };
                let mask = u32::from_be(m.sin_addr.s_addr);
                if mask.leading_ones() + mask.trailing_zeros() != 32 {
                    continue; // non-canonical mask: Go's ParseCIDR rejects it
                }
                (
                    IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()),
                    mask.leading_ones(),
                )
            }
            libc::AF_INET6 => {
                // SAFETY: family AF_INET6 means both point at sockaddr_in6.
                let (a, m) = unsafe {
                    (
                        &*(ifa.ifa_addr as *const libc::sockaddr_in6),
                        &*(ifa.ifa_netmask as *const libc::sockaddr_in6),
                    )
                };
                let mask = u128::from_be_bytes(m.sin6_addr.s6_addr);
                if mask.leading_ones() + mask.trailing_zeros() != 128 {
                    continue;
                }
                (IpAddr::from(a.sin6_addr.s6_addr), mask.leading_ones())
            }
            _ => continue,
        };
        v.push((name, addr, prefix));
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_as_go() {
        for (ip, want) in [
            ("127.0.0.1", "link-local"),
            ("169.254.1.1", "link-local"),
            ("224.0.0.251", "link-local"),
            ("10.0.0.1", "global"),
            ("8.8.8.8", "global"),
            ("0.0.0.0", ""),
            ("255.255.255.255", ""),
            ("239.1.1.1", ""),
            ("::1", "link-local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "link-local"),
            ("ff01::1", "interface-local"),
            ("2001:db8::1", "global"),
            ("fd00::1", "global"),
            ("::", ""),
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(scope(&ip), want, "{ip}");
        }
    }

    #[test]
    fn loopback_has_an_address() {
        let a = interface_addresses().expect("getifaddrs");
        assert!(
            a.iter()
                .any(|(_, ip, p)| ip.is_loopback() && (*p == 8 || *p == 128)),
            "{a:?}"
        );
    }
}
