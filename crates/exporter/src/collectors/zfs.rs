//! zfs: kstats under /proc/spl/kstat/zfs (node_exporter zfs.go, zfs_linux.go). All untyped, named after
//! the kstat, HELP is the kstat path, as node_exporter does.

use std::fmt::Write as _;
use std::path::Path;

use super::prelude::*;

pub struct Zfs;

const SUBSYSTEMS: [(&str, &str); 11] = [
    ("zfs_abd", "abdstats"),
    ("zfs_arc", "arcstats"),
    ("zfs_dbuf", "dbuf_stats"),
    ("zfs_dmu_tx", "dmu_tx"),
    ("zfs_dnode", "dnodestats"),
    ("zfs_fm", "fm"),
    ("zfs_vdev_cache", "vdev_cache_stats"),
    ("zfs_vdev_mirror", "vdev_mirror_stats"),
    ("zfs_xuio", "xuio_stats"),
    ("zfs_zfetch", "zfetchstats"),
    ("zfs_zil", "zil"),
];
const POOL_STATES: [&str; 6] = [
    "online", "degraded", "faulted", "offline", "removed", "unavail",
];

/// Iterates the `name type data` table of a kstat file, yielding uint64 (type 4) rows.
fn kstat_rows(text: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut started = false;
    let mut v = Vec::new();
    for line in text.lines() {
        let p: Vec<&str> = line.split_ascii_whitespace().collect();
        if !started && p.len() == 3 && p[0] == "name" && p[1] == "type" && p[2] == "data" {
            started = true;
            continue;
        }
        if started && p.len() >= 3 {
            v.push((p[0], if p[1] == "4" { p[2] } else { "" }));
        }
    }
    if !started {
        return Err("did not parse a single metric".into());
    }
    Ok(v)
}

fn parse_u64(s: &str, key: &str, p: &Path) -> Result<f64, CollectError> {
    s.parse::<u64>().map(|v| v as f64).map_err(|_| {
        CollectError::parse(
            p,
            format!("could not parse expected integer value for {key:?}"),
        )
    })
}

impl Collector for Zfs {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.proc("spl/kstat/zfs");
        if !base.exists() {
            return Err(CollectError::io(&base, std::io::ErrorKind::NotFound.into()));
        }
        for (subsystem, file) in SUBSYSTEMS {
            let p = base.join(file);
            let Ok(text) = read_str(&p, &mut s.buf) else {
                continue;
            };
            for (name, val) in kstat_rows(text).map_err(|m| CollectError::parse(&p, m))? {
                if val.is_empty() {
                    continue;
                }
                s.help.clear();
                let _ = write!(s.help, "kstat.zfs.misc.{file}.{name}");
                let v = parse_u64(val, &s.help, &p)?;
                s.name.clear();
                let _ = write!(s.name, "node_{subsystem}_{}", name.replace('-', "_"));
                out.emit(&s.name, &s.help, Untyped, &[], v);
            }
        }
        for pool in sorted_dir(&base)? {
            let pd = base.join(&pool);
            if !pd.is_dir() {
                continue;
            }
            // <pool>/io: header line starting with "nread" then one value line.
            let io = pd.join("io");
            if let Ok(text) = read_str(&io, &mut s.buf) {
                let mut fields: Option<Vec<String>> = None;
                for line in text.lines() {
                    let p: Vec<&str> = line.split_ascii_whitespace().collect();
                    match &fields {
                        None if p.len() >= 12 && p[0] == "nread" => {
                            fields = Some(p.iter().map(|s| s.to_string()).collect())
                        }
                        None => {}
                        Some(f) => {
                            for (i, field) in f.iter().enumerate() {
                                let key = format!("kstat.zfs.misc.io.{field}");
                                let v = parse_u64(p.get(i).copied().unwrap_or(""), &key, &io)?;
                                let name = format!("node_zfs_zpool_{}", field.replace('-', "_"));
                                out.emit(&name, &key, Untyped, &[("zpool", &pool)], v);
                            }
                        }
                    }
                }
            }
            for f in sorted_dir(&pd)?
                .into_iter()
                .filter(|f| f.starts_with("objset-"))
            {
                let p = pd.join(&f);
                let text = read_str(&p, &mut s.buf)?;
                let rows = kstat_rows(text).map_err(|m| CollectError::parse(&p, m))?;
                let dataset = text
                    .lines()
                    .find_map(|l| {
                        let v: Vec<&str> = l.split_ascii_whitespace().collect();
                        (v.len() >= 3 && v[0] == "dataset_name").then(|| v[2].to_string())
                    })
                    .unwrap_or_default();
                for (name, val) in rows {
                    if val.is_empty() || name == "dataset_name" {
                        continue;
                    }
                    let key = format!("kstat.zfs.misc.objset.{name}");
                    let v = parse_u64(val, &key, &p)?;
                    let metric = format!("node_zfs_zpool_dataset_{}", name.replace('-', "_"));
                    out.emit(
                        &metric,
                        &key,
                        Untyped,
                        &[("zpool", &pool), ("dataset", &dataset)],
                        v,
                    );
                }
            }
            if let Some(state) = read_attr(&pd.join("state")) {
                let state = state.lines().next().unwrap_or("").to_lowercase();
                for st in POOL_STATES {
                    out.emit(
                        "node_zfs_zpool_state",
                        "kstat.zfs.misc.state",
                        Gauge,
                        &[("zpool", &pool), ("state", st)],
                        if state == st { 1.0 } else { 0.0 },
                    );
                }
            }
        }
        Ok(())
    }
}
