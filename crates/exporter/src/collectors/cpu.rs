//! cpu: /proc/stat per-CPU times, thermal throttle counters and isolated CPUs from sysfs, optional
//! /proc/cpuinfo info metrics (node_exporter cpu_linux.go).

use std::collections::BTreeMap;

use super::prelude::*;

/// node_exporter resets a CPU's remembered counters when idle jumps back by this much (hotplug).
const JUMP_BACK_SECONDS: f64 = 3.0;
/// procfs divides /proc/stat ticks by a fixed USER_HZ of 100, as the Go procfs library does.
const USER_HZ: f64 = 100.0;

#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct CpuTimes {
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub idle: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
    pub guest: f64,
    pub guest_nice: f64,
}

impl CpuTimes {
    fn fields_mut(&mut self) -> [&mut f64; 10] {
        [
            &mut self.user,
            &mut self.nice,
            &mut self.system,
            &mut self.idle,
            &mut self.iowait,
            &mut self.irq,
            &mut self.softirq,
            &mut self.steal,
            &mut self.guest,
            &mut self.guest_nice,
        ]
    }
}

#[derive(Default)]
pub struct Cpu {
    /// Last reported values per CPU; counters never go backwards in our output (node_exporter keeps the
    /// maximum because some kernels report slightly decreasing idle/iowait).
    stats: Vec<CpuTimes>,
    isolated: Option<Vec<u32>>,
    isolated_read: bool,
    cur: Vec<CpuTimes>,
}

/// Parses the `cpuN` lines of /proc/stat into `out`, indexed by CPU number.
pub fn parse_cpu_lines(text: &str, out: &mut Vec<CpuTimes>) {
    out.clear();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let mut it = rest.split_ascii_whitespace();
        let Some(id) = it.next() else { continue };
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            continue; // the aggregate "cpu " line
        }
        let Ok(id) = id.parse::<usize>() else {
            continue;
        };
        let mut t = CpuTimes::default();
        for (f, v) in t.fields_mut().into_iter().zip(it) {
            *f = v.parse::<f64>().unwrap_or(0.0) / USER_HZ;
        }
        if out.len() <= id {
            out.resize(id + 1, CpuTimes::default());
        }
        out[id] = t;
    }
}

/// Parses a CPU list like "0-2,5" (sysfs isolated / online format).
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut v = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                v.extend(a..=b);
            }
            None => v.push(part.parse().ok()?),
        }
    }
    Some(v)
}

impl Cpu {
    fn merge(&mut self) {
        if self.stats.len() != self.cur.len() {
            self.stats = vec![CpuTimes::default(); self.cur.len()];
        }
        for (old, new) in self.stats.iter_mut().zip(&self.cur) {
            if old.idle - new.idle >= JUMP_BACK_SECONDS {
                *old = CpuTimes::default();
            }
            let mut n = *new;
            for (o, v) in old.fields_mut().into_iter().zip(n.fields_mut()) {
                if *v >= *o {
                    *o = *v;
                }
            }
        }
    }
}

impl Collector for Cpu {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        if !self.isolated_read {
            self.isolated_read = true;
            let p = cfg.sys("devices/system/cpu/isolated");
            if let Some(text) = read_attr(&p) {
                self.isolated = parse_cpu_list(&text);
            }
        }
        if cfg.cpu_info {
            update_info(cfg, s, out)?;
        }
        let text = read_str(&cfg.proc("stat"), &mut s.buf)?;
        parse_cpu_lines(text, &mut self.cur);
        self.merge();
        let mut nb = itoa_buf();
        for (i, c) in self.stats.iter().enumerate() {
            let cpu = fmt_u64(&mut nb, i as u64);
            for (mode, v) in [
                ("user", c.user),
                ("nice", c.nice),
                ("system", c.system),
                ("idle", c.idle),
                ("iowait", c.iowait),
                ("irq", c.irq),
                ("softirq", c.softirq),
                ("steal", c.steal),
            ] {
                out.emit(
                    "node_cpu_seconds_total",
                    "Seconds the CPUs spent in each mode.",
                    Counter,
                    &[("cpu", cpu), ("mode", mode)],
                    v,
                );
            }
            if cfg.cpu_guest {
                for (mode, v) in [("user", c.guest), ("nice", c.guest_nice)] {
                    out.emit(
                        "node_cpu_guest_seconds_total",
                        "Seconds the CPUs spent in guests (VMs) for each mode.",
                        Counter,
                        &[("cpu", cpu), ("mode", mode)],
                        v,
                    );
                }
            }
        }
        if let Some(iso) = &self.isolated {
            for &c in iso {
                out.emit(
                    "node_cpu_isolated",
                    "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
                    Gauge,
                    &[("cpu", fmt_u64(&mut nb, c as u64))],
                    1.0,
                );
            }
        }
        thermal_throttle(cfg, out)
    }
}

fn thermal_throttle(cfg: &Config, out: &mut Registry) -> Result<(), CollectError> {
    let base = cfg.sys("devices/system/cpu");
    let Ok(names) = sorted_dir(&base) else {
        return Ok(());
    };
    let mut pkg: BTreeMap<u64, u64> = BTreeMap::new();
    let mut core: BTreeMap<(u64, u64), Option<u64>> = BTreeMap::new();
    for n in names.iter().filter(|n| {
        n.strip_prefix("cpu")
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    }) {
        let dir = base.join(n);
        let Ok(pid) = read_u64(&dir.join("topology/physical_package_id")) else {
            continue;
        };
        let Ok(cid) = read_u64(&dir.join("topology/core_id")) else {
            continue;
        };
        core.entry((pid, cid))
            .or_insert_with(|| read_u64(&dir.join("thermal_throttle/core_throttle_count")).ok());
        if let std::collections::btree_map::Entry::Vacant(e) = pkg.entry(pid) {
            if let Ok(v) = read_u64(&dir.join("thermal_throttle/package_throttle_count")) {
                e.insert(v);
            }
        }
    }
    let (mut b1, mut b2) = (itoa_buf(), itoa_buf());
    for (p, v) in &pkg {
        out.emit(
            "node_cpu_package_throttles_total",
            "Number of times this CPU package has been throttled.",
            Counter,
            &[("package", fmt_u64(&mut b1, *p))],
            *v as f64,
        );
    }
    for ((p, c), v) in &core {
        if let Some(v) = v {
            out.emit(
                "node_cpu_core_throttles_total",
                "Number of times this CPU core has been throttled.",
                Counter,
                &[
                    ("package", fmt_u64(&mut b1, *p)),
                    ("core", fmt_u64(&mut b2, *c)),
                ],
                *v as f64,
            );
        }
    }
    Ok(())
}

fn update_info(cfg: &Config, s: &mut Scratch, out: &mut Registry) -> Result<(), CollectError> {
    let text = read_str(&cfg.proc("cpuinfo"), &mut s.buf2)?;
    let mut first = true;
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let get = |k: &str| -> &str {
            block
                .lines()
                .find_map(|l| {
                    let (a, b) = l.split_once(':')?;
                    (a.trim() == k).then(|| b.trim())
                })
                .unwrap_or("")
        };
        out.emit(
            "node_cpu_info",
            "CPU information from /proc/cpuinfo.",
            Gauge,
            &[
                ("package", get("physical id")),
                ("core", get("core id")),
                ("cpu", get("processor")),
                ("vendor", get("vendor_id")),
                ("family", get("cpu family")),
                ("model", get("model")),
                ("model_name", get("model name")),
                ("microcode", get("microcode")),
                ("stepping", get("stepping")),
                ("cachesize", get("cache size")),
            ],
            1.0,
        );
        if first {
            first = false;
            if let Some(re) = &cfg.cpu_flags_include {
                for f in get("flags")
                    .split_ascii_whitespace()
                    .filter(|f| re.is_match(f))
                {
                    out.emit(
                        "node_cpu_flag_info",
                        "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
                        Gauge,
                        &[("flag", f)],
                        1.0,
                    );
                }
            }
            if let Some(re) = &cfg.cpu_bugs_include {
                for f in get("bugs")
                    .split_ascii_whitespace()
                    .filter(|f| re.is_match(f))
                {
                    out.emit(
                        "node_cpu_bug_info",
                        "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
                        Gauge,
                        &[("bug", f)],
                        1.0,
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lines_and_keeps_counters_monotonic() {
        let mut c = Cpu::default();
        parse_cpu_lines(
            "cpu  1 2 3 4\ncpu0 100 0 50 1000 5 0 1 0 7 8\ncpu1 200 0 0 2000\nintr 5\n",
            &mut c.cur,
        );
        c.merge();
        assert_eq!(c.stats.len(), 2);
        assert_eq!(c.stats[0].user, 1.0);
        assert_eq!(c.stats[0].idle, 10.0);
        assert_eq!(c.stats[0].guest_nice, 0.08);
        // iowait decreases slightly: keep the old value.
        parse_cpu_lines(
            "cpu0 100 0 50 1001 4 0 1 0 7 8\ncpu1 200 0 0 2000\n",
            &mut c.cur,
        );
        c.merge();
        assert_eq!(c.stats[0].iowait, 0.05);
        assert_eq!(c.stats[0].idle, 10.01);
        // idle jumps back by > 3s: reset, take the new values.
        parse_cpu_lines("cpu0 1 0 0 10 4 0 1 0 7 8\ncpu1 200 0 0 2000\n", &mut c.cur);
        c.merge();
        assert_eq!(c.stats[0].idle, 0.1);
        assert_eq!(c.stats[0].iowait, 0.04);
    }

    #[test]
    fn cpu_list() {
        assert_eq!(parse_cpu_list("0-2,5\n"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("x"), None);
    }
}
