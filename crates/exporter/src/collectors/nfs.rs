//! nfs / nfsd: /proc/net/rpc/nfs (client) and /proc/net/rpc/nfsd (server), node_exporter nfs_linux.go and
//! nfsd_linux.go over procfs' parsers. Method names and positions follow procfs v0.8's structs.
//!
//! Difference: procfs rejects unknown line labels (newer kernels add some to nfsd); we ignore them, so
//! nfsd keeps working on such kernels.

use std::collections::HashMap;

use super::prelude::*;

pub struct Nfs;
pub struct Nfsd;

const V2: [&str; 18] = [
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write",
    "Create", "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];
const V3: [&str; 22] = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];
const CLIENT_V4: [&str; 59] = [
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "LayoutGet",
    "GetDeviceInfo",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];
/// Server v4 operations node_exporter reports, with their index in the proc4ops line (after the count).
const SERVER_V4_OPS: [(&str, usize); 33] = [
    ("Access", 3),
    ("Close", 4),
    ("Commit", 5),
    ("Create", 6),
    ("DelegPurge", 7),
    ("DelegReturn", 8),
    ("GetAttr", 9),
    ("GetFH", 10),
    ("Link", 11),
    ("Lock", 12),
    ("Lockt", 13),
    ("Locku", 14),
    ("Lookup", 15),
    ("LookupRoot", 16),
    ("Nverify", 17),
    ("Open", 18),
    ("OpenAttr", 19),
    ("OpenConfirm", 20),
    ("OpenDgrd", 21),
    ("PutFH", 22),
    ("Read", 25),
    ("ReadDir", 26),
    ("ReadLink", 27),
    ("Remove", 28),
    ("Rename", 29),
    ("Renew", 30),
    ("RestoreFH", 31),
    ("SaveFH", 32),
    ("SecInfo", 33),
    ("SetAttr", 34),
    ("Verify", 35),
    ("Write", 36),
    ("RelLockOwner", 37),
];

/// label → values of each line.
fn parse_lines(text: &str) -> Result<HashMap<String, Vec<u64>>, String> {
    let mut m = HashMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        if parts.len() < 2 {
            return Err(format!("invalid NFS metric line {line:?}"));
        }
        // "th" carries a float histogram on old kernels; only its first two fields are integers.
        let take = if parts[0] == "th" {
            &parts[1..3.min(parts.len())]
        } else {
            &parts[1..]
        };
        let vals: Result<Vec<u64>, _> = take.iter().map(|v| v.parse::<u64>()).collect();
        m.insert(
            parts[0].to_string(),
            vals.map_err(|_| format!("error parsing NFS metric line {line:?}"))?,
        );
    }
    Ok(m)
}

/// Values of a `procN count v1 v2 ...` line, checked against `min` like procfs.
fn proc_values<'a>(
    m: &'a HashMap<String, Vec<u64>>,
    key: &str,
    min: usize,
    exact: bool,
) -> Result<Option<&'a [u64]>, String> {
    let Some(v) = m.get(key) else { return Ok(None) };
    let n = *v.first().ok_or_else(|| format!("empty {key} line"))? as usize;
    if v.len() - 1 != n || (exact && n < min) {
        return Err(format!("invalid {key} line"));
    }
    Ok(Some(&v[1..]))
}

fn emit_requests(out: &mut Registry, help: &str, proto: &str, names: &[&str], vals: &[u64]) {
    for (i, n) in names.iter().enumerate() {
        let v = vals.get(i).copied().unwrap_or(0);
        out.emit(
            "node_nfs_requests_total",
            help,
            Counter,
            &[("proto", proto), ("method", n)],
            v as f64,
        );
    }
}

impl Collector for Nfs {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let p = cfg.proc("net/rpc/nfs");
        let text = read_str(&p, &mut s.buf)?;
        let m = parse_lines(text).map_err(|e| CollectError::parse(&p, e))?;
        let perr = |e: String| CollectError::parse(&p, e);
        let net = m.get("net").cloned().unwrap_or_else(|| vec![0; 4]);
        if net.len() != 4 {
            return Err(perr("invalid Network line".into()));
        }
        let help_pk = "Total NFSd network packets (sent+received) by protocol type.";
        out.emit(
            "node_nfs_packets_total",
            help_pk,
            Counter,
            &[("protocol", "udp")],
            net[1] as f64,
        );
        out.emit(
            "node_nfs_packets_total",
            help_pk,
            Counter,
            &[("protocol", "tcp")],
            net[2] as f64,
        );
        out.emit(
            "node_nfs_connections_total",
            "Total number of NFSd TCP connections.",
            Counter,
            &[],
            net[3] as f64,
        );
        let rpc = m.get("rpc").cloned().unwrap_or_else(|| vec![0; 3]);
        if rpc.len() != 3 {
            return Err(perr("invalid RPC line".into()));
        }
        out.emit(
            "node_nfs_rpcs_total",
            "Total number of RPCs performed.",
            Counter,
            &[],
            rpc[0] as f64,
        );
        out.emit(
            "node_nfs_rpc_retransmissions_total",
            "Number of RPC transmissions performed.",
            Counter,
            &[],
            rpc[1] as f64,
        );
        out.emit(
            "node_nfs_rpc_authentication_refreshes_total",
            "Number of RPC authentication refreshes performed.",
            Counter,
            &[],
            rpc[2] as f64,
        );
        let help = "Number of NFS procedures invoked.";
        let v2 = proc_values(&m, "proc2", 18, true)
            .map_err(perr)?
            .unwrap_or(&[]);
        emit_requests(out, help, "2", &V2, v2);
        let v3 = proc_values(&m, "proc3", 22, true)
            .map_err(perr)?
            .unwrap_or(&[]);
        emit_requests(out, help, "3", &V3, v3);
        let v4 = proc_values(&m, "proc4", 0, false)
            .map_err(perr)?
            .unwrap_or(&[]);
        emit_requests(out, help, "4", &CLIENT_V4, v4);
        Ok(())
    }
}

impl Collector for Nfsd {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let p = cfg.proc("net/rpc/nfsd");
        let text = read_str(&p, &mut s.buf)?;
        let m = parse_lines(text).map_err(|e| CollectError::parse(&p, e))?;
        let perr = |e: String| CollectError::parse(&p, e);
        let get = |k: &str, n: usize| -> Result<Vec<u64>, CollectError> {
            match m.get(k) {
                Some(v) if v.len() >= n => Ok(v.clone()),
                Some(_) => Err(CollectError::parse(&p, format!("invalid {k} line"))),
                None => Ok(vec![0; n]),
            }
        };
        let rc = get("rc", 3)?;
        out.emit(
            "node_nfsd_reply_cache_hits_total",
            "Total number of NFSd Reply Cache hits (client lost server response).",
            Counter,
            &[],
            rc[0] as f64,
        );
        out.emit(
            "node_nfsd_reply_cache_misses_total",
            "Total number of NFSd Reply Cache an operation that requires caching (idempotent).",
            Counter,
            &[],
            rc[1] as f64,
        );
        out.emit(
            "node_nfsd_reply_cache_nocache_total",
            "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
            Counter,
            &[],
            rc[2] as f64,
        );
        let fh = get("fh", 1)?;
        out.emit(
            "node_nfsd_file_handles_stale_total",
            "Total number of NFSd stale file handles",
            Counter,
            &[],
            fh[0] as f64,
        );
        let io = get("io", 2)?;
        out.emit(
            "node_nfsd_disk_bytes_read_total",
            "Total NFSd bytes read.",
            Counter,
            &[],
            io[0] as f64,
        );
        out.emit(
            "node_nfsd_disk_bytes_written_total",
            "Total NFSd bytes written.",
            Counter,
            &[],
            io[1] as f64,
        );
        let th = get("th", 1)?;
        out.emit(
            "node_nfsd_server_threads",
            "Total number of NFSd kernel threads that are running.",
            Gauge,
            &[],
            th[0] as f64,
        );
        let ra = get("ra", 12)?;
        out.emit(
            "node_nfsd_read_ahead_cache_size_blocks",
            "How large the read ahead cache is in blocks.",
            Gauge,
            &[],
            ra[0] as f64,
        );
        out.emit(
            "node_nfsd_read_ahead_cache_not_found_total",
            "Total number of NFSd read ahead cache not found.",
            Counter,
            &[],
            ra[11] as f64,
        );
        let net = get("net", 4)?;
        let help_pk = "Total NFSd network packets (sent+received) by protocol type.";
        out.emit(
            "node_nfsd_packets_total",
            help_pk,
            Counter,
            &[("proto", "udp")],
            net[1] as f64,
        );
        out.emit(
            "node_nfsd_packets_total",
            help_pk,
            Counter,
            &[("proto", "tcp")],
            net[2] as f64,
        );
        out.emit(
            "node_nfsd_connections_total",
            "Total number of NFSd TCP connections.",
            Counter,
            &[],
            net[3] as f64,
        );
        let rpc = get("rpc", 5)?;
        let help_err = "Total number of NFSd RPC errors by error type.";
        out.emit(
            "node_nfsd_rpc_errors_total",
            help_err,
            Counter,
            &[("error", "fmt")],
            rpc[2] as f64,
        );
        out.emit(
            "node_nfsd_rpc_errors_total",
            help_err,
            Counter,
            &[("error", "auth")],
            rpc[3] as f64,
        );
        out.emit(
            "node_nfsd_rpc_errors_total",
            help_err,
            Counter,
            &[("error", "cInt")],
            rpc[4] as f64,
        );
        out.emit(
            "node_nfsd_server_rpcs_total",
            "Total number of NFSd RPCs.",
            Counter,
            &[],
            rpc[0] as f64,
        );
        let help = "Total number NFSd Requests by method and protocol.";
        let emit =
            |out: &mut Registry, proto: &str, names: &[&str], vals: &[u64], skip_null: bool| {
                for (i, n) in names.iter().enumerate() {
                    if skip_null && i == 0 {
                        continue; // node_exporter does not report the server's Null procedure
                    }
                    let v = vals.get(i).copied().unwrap_or(0);
                    out.emit(
                        "node_nfsd_requests_total",
                        help,
                        Counter,
                        &[("proto", proto), ("method", n)],
                        v as f64,
                    );
                }
            };
        let v2 = proc_values(&m, "proc2", 18, true)
            .map_err(perr)?
            .unwrap_or(&[]);
        emit(out, "2", &V2, v2, true);
        let v3 = proc_values(&m, "proc3", 22, true)
            .map_err(perr)?
            .unwrap_or(&[]);
        emit(out, "3", &V3, v3, true);
        let ops = proc_values(&m, "proc4ops", 39, true)
            .map_err(perr)?
            .unwrap_or(&[]);
        for (n, idx) in SERVER_V4_OPS {
            let v = ops.get(idx).copied().unwrap_or(0);
            out.emit(
                "node_nfsd_requests_total",
                help,
                Counter,
                &[("proto", "4"), ("method", n)],
                v as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_line_validation() {
        let m = parse_lines("net 1 2 3 4\nproc3 2 5 6\n").unwrap();
        assert!(proc_values(&m, "proc3", 22, true).is_err());
        let m = parse_lines("proc4 3 1 2 3\n").unwrap();
        assert_eq!(
            proc_values(&m, "proc4", 0, false).unwrap(),
            Some(&[1u64, 2, 3][..])
        );
        assert!(parse_lines("bad\n").is_err());
    }
}
