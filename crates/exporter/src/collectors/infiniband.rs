//! infiniband: /sys/class/infiniband devices and port counters (node_exporter infiniband_linux.go over
//! procfs' sysfs parser; data counters are in 4-byte words and multiplied by 4 as procfs does).

use std::fmt::Write as _;

use super::prelude::*;

pub struct Infiniband;

/// (directory, file, metric suffix, help, multiply by 4)
const COUNTERS: [(&str, &str, &str, &str, bool); 30] = [
    ("counters_ext", "port_multicast_rcv_packets", "legacy_multicast_packets_received_total", "Number of multicast packets received", false),
    ("counters_ext", "port_multicast_xmit_packets", "legacy_multicast_packets_transmitted_total", "Number of multicast packets transmitted", false),
    ("counters_ext", "port_rcv_data_64", "legacy_data_received_bytes_total", "Number of data octets received on all links", true),
    ("counters_ext", "port_rcv_packets_64", "legacy_packets_received_total", "Number of data packets received on all links", false),
    ("counters_ext", "port_unicast_rcv_packets", "legacy_unicast_packets_received_total", "Number of unicast packets received", false),
    ("counters_ext", "port_unicast_xmit_packets", "legacy_unicast_packets_transmitted_total", "Number of unicast packets transmitted", false),
    ("counters_ext", "port_xmit_data_64", "legacy_data_transmitted_bytes_total", "Number of data octets transmitted on all links", true),
    ("counters_ext", "port_xmit_packets_64", "legacy_packets_transmitted_total", "Number of data packets received on all links", false),
    ("counters", "excessive_buffer_overrun_errors", "excessive_buffer_overrun_errors_total", "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.", false),
    ("counters", "link_downed", "link_downed_total", "Number of times the link failed to recover from an error state and went down", false),
    ("counters", "link_error_recovery", "link_error_recovery_total", "Number of times the link successfully recovered from an error state", false),
    ("counters", "local_link_integrity_errors", "local_link_integrity_errors_total", "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.", false),
    ("counters", "multicast_rcv_packets", "multicast_packets_received_total", "Number of multicast packets received (including errors)", false),
    ("counters", "multicast_xmit_packets", "multicast_packets_transmitted_total", "Number of multicast packets transmitted (including errors)", false),
    ("counters", "port_rcv_constraint_errors", "port_constraint_errors_received_total", "Number of packets received on the switch physical port that are discarded", false),
    ("counters", "port_xmit_constraint_errors", "port_constraint_errors_transmitted_total", "Number of packets not transmitted from the switch physical port", false),
    ("counters", "port_rcv_data", "port_data_received_bytes_total", "Number of data octets received on all links", true),
    ("counters", "port_xmit_data", "port_data_transmitted_bytes_total", "Number of data octets transmitted on all links", true),
    ("counters", "port_rcv_discards", "port_discards_received_total", "Number of inbound packets discarded by the port because the port is down or congested", false),
    ("counters", "port_xmit_discards", "port_discards_transmitted_total", "Number of outbound packets discarded by the port because the port is down or congested", false),
    ("counters", "port_rcv_errors", "port_errors_received_total", "Number of packets containing an error that were received on this port", false),
    ("counters", "port_rcv_packets", "port_packets_received_total", "Number of packets received on all VLs by this port (including errors)", false),
    ("counters", "port_xmit_packets", "port_packets_transmitted_total", "Number of packets transmitted on all VLs from this port (including errors)", false),
    ("counters", "port_xmit_wait", "port_transmit_wait_total", "Number of ticks during which the port had data to transmit but no data was sent during the entire tick", false),
    ("counters", "unicast_rcv_packets", "unicast_packets_received_total", "Number of unicast packets received (including errors)", false),
    ("counters", "unicast_xmit_packets", "unicast_packets_transmitted_total", "Number of unicast packets transmitted (including errors)", false),
    ("counters", "port_rcv_remote_physical_errors", "port_receive_remote_physical_errors_total", "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.", false),
    ("counters", "port_rcv_switch_relay_errors", "port_receive_switch_relay_errors_total", "Number of packets that could not be forwarded by the switch.", false),
    ("counters", "symbol_error", "symbol_error_total", "Number of minor link errors detected on one or more physical lanes.", false),
    ("counters", "VL15_dropped", "vl15_dropped_total", "Number of incoming VL15 packets dropped due to resource limitations.", false),
];

/// "4: ACTIVE" → 4
fn state_id(s: &str) -> Option<u64> {
    let (id, _) = s.split_once(':')?;
    id.trim().parse().ok()
}

/// "100 Gb/sec (4X EDR)" → bytes per second.
fn rate(s: &str) -> Option<f64> {
    let (v, _) = s.split_once(' ')?;
    Some(v.trim().parse::<f32>().ok()? as f64 * 125_000_000.0)
}

impl Collector for Infiniband {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("class/infiniband");
        for dev in sorted_dir(&base)? {
            let dd = base.join(&dev);
            let a = |f: &str| read_attr(&dd.join(f)).unwrap_or_default();
            out.emit(
                "node_infiniband_info",
                "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
                Gauge,
                &[
                    ("device", &dev),
                    ("board_id", &a("board_id")),
                    ("firmware_version", &a("fw_ver")),
                    ("hca_type", &a("hca_type")),
                ],
                1.0,
            );
            let pdir = dd.join("ports");
            for port in sorted_dir(&pdir)? {
                let pp = pdir.join(&port);
                let bad = |f: &str| CollectError::parse(&pp.join(f), "could not parse");
                let st = read_attr(&pp.join("state"))
                    .as_deref()
                    .and_then(state_id)
                    .ok_or_else(|| bad("state"))?;
                let ph = read_attr(&pp.join("phys_state"))
                    .as_deref()
                    .and_then(state_id)
                    .ok_or_else(|| bad("phys_state"))?;
                let rt = read_attr(&pp.join("rate"))
                    .as_deref()
                    .and_then(rate)
                    .ok_or_else(|| bad("rate"))?;
                let l = [("device", dev.as_str()), ("port", port.as_str())];
                out.emit("node_infiniband_state_id", "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)", Gauge, &l, st as f64);
                out.emit("node_infiniband_physical_state_id", "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)", Gauge, &l, ph as f64);
                out.emit(
                    "node_infiniband_rate_bytes_per_second",
                    "Maximum signal transfer rate",
                    Gauge,
                    &l,
                    rt.trunc(),
                );
                for (dir, file, suffix, help, x4) in COUNTERS {
                    // "N/A (no PMA)" and unreadable counters are absent, as in procfs.
                    let Some(v) =
                        read_attr(&pp.join(dir).join(file)).and_then(|v| v.parse::<u64>().ok())
                    else {
                        continue;
                    };
                    let v = if x4 { v.wrapping_mul(4) } else { v };
                    s.name.clear();
                    let _ = write!(s.name, "node_infiniband_{suffix}");
                    out.emit(&s.name, help, Counter, &l, v as f64);
                }
            }
        }
        Ok(())
    }
}
