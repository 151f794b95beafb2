//! mdadm: /proc/mdstat software RAID state (node_exporter mdadm_linux.go over procfs' parser).

use std::sync::OnceLock;

use regex::Regex;

use super::prelude::*;

pub struct Mdadm;

#[derive(Debug, Default, PartialEq)]
pub struct MdStat {
    pub name: String,
    pub state: String,
    pub active: i64,
    pub total: i64,
    pub failed: i64,
    pub spare: i64,
    pub blocks: i64,
    pub synced: i64,
}

fn re(i: usize) -> &'static Regex {
    static RES: OnceLock<[Regex; 2]> = OnceLock::new();
    // Literal patterns from procfs; compiling cannot fail.
    &RES.get_or_init(|| {
        [
            Regex::new(r"(\d+) blocks .*\[(\d+)/(\d+)\] \[([U_]+)\]").expect("BUG: mdstat regex"),
            Regex::new(r"\((\d+)/\d+\)").expect("BUG: mdstat regex"),
        ]
    })[i]
}

/// Parses /proc/mdstat like procfs v0.8 parseMDStat.
pub fn parse_mdstat(text: &str) -> Result<Vec<MdStat>, String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut v = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || line.starts_with(' ')
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 3 {
            return Err(format!("not enough fields in mdline: {line}"));
        }
        if lines.len() <= i + 3 {
            return Err(format!("too few lines for md device {}", f[0]));
        }
        let mut state = f[2].to_string();
        let failed = line.matches("(F)").count() as i64;
        let spare = line.matches("(S)").count() as i64;
        let status = lines[i + 1];
        let size: i64 = status
            .split_ascii_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("unexpected statusLine {status:?}"))?;
        let (active, total) = if line.contains("raid0") || line.contains("linear") {
            let t = line.matches('[').count() as i64;
            (t, t)
        } else if line.contains("inactive") {
            (0, 0)
        } else {
            let c = re(0)
                .captures(status)
                .ok_or_else(|| format!("couldn't find all the substring matches: {status}"))?;
            let total: i64 = c[2].parse().map_err(|_| "bad total".to_string())?;
            let active: i64 = c[3].parse().map_err(|_| "bad active".to_string())?;
            (active, total)
        };
        let mut sync_idx = i + 2;
        if lines[i + 2].contains("bitmap") {
            sync_idx += 1;
        }
        let sync = lines.get(sync_idx).copied().unwrap_or("");
        let mut synced = size;
        let (rec, res, chk) = (
            sync.contains("recovery"),
            sync.contains("resync"),
            sync.contains("check"),
        );
        if rec || res || chk {
            state = if rec {
                "recovering"
            } else if chk {
                "checking"
            } else {
                "resyncing"
            }
            .to_string();
            if sync.contains("PENDING") || sync.contains("DELAYED") {
                synced = 0;
            } else {
                let c = re(1)
                    .captures(sync)
                    .ok_or_else(|| format!("unexpected recoveryLine: {sync}"))?;
                synced = c[1].parse().map_err(|_| "bad synced".to_string())?;
            }
        }
        v.push(MdStat {
            name: f[0].to_string(),
            state,
            active,
            total,
            failed,
            spare,
            blocks: size,
            synced,
        });
    }
    Ok(v)
}

impl Collector for Mdadm {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let p = cfg.proc("mdstat");
        let text = read_str(&p, &mut s.buf)?;
        for md in parse_mdstat(text).map_err(|m| CollectError::parse(&p, m))? {
            let d = md.name.as_str();
            out.emit(
                "node_md_disks_required",
                "Total number of disks of device.",
                Gauge,
                &[("device", d)],
                md.total as f64,
            );
            for (st, v) in [
                ("active", md.active),
                ("failed", md.failed),
                ("spare", md.spare),
            ] {
                out.emit(
                    "node_md_disks",
                    "Number of active/failed/spare disks of device.",
                    Gauge,
                    &[("device", d), ("state", st)],
                    v as f64,
                );
            }
            for (label, key) in [
                ("active", "active"),
                ("inactive", "inactive"),
                ("recovering", "recovering"),
                ("resync", "resyncing"),
                ("check", "checking"),
            ] {
                let v = if md.state == key { 1.0 } else { 0.0 };
                out.emit(
                    "node_md_state",
                    "Indicates the state of md-device.",
                    Gauge,
                    &[("device", d), ("state", label)],
                    v,
                );
            }
            out.emit(
                "node_md_blocks",
                "Total number of blocks on device.",
                Gauge,
                &[("device", d)],
                md.blocks as f64,
            );
            out.emit(
                "node_md_blocks_synced",
                "Number of blocks synced on device.",
                Gauge,
                &[("device", d)],
                md.synced as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_mdstat() {
        let t = "Personalities : [raid1]\nmd0 : active raid1 sdb1[1] sda1[0](F)\n      1046528 blocks super 1.2 [2/1] [U_]\n      [==>......]  recovery = 12.5% (131072/1046528) finish=1.0min speed=1000K/sec\n\nunused devices: <none>\n";
        let m = super::parse_mdstat(t).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].state, "recovering");
        assert_eq!((m[0].active, m[0].total, m[0].failed), (1, 2, 1));
        assert_eq!(m[0].synced, 131072);
    }
}
