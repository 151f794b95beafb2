//! conntrack: netfilter connection tracking (node_exporter conntrack_linux.go).

use super::prelude::*;

pub struct Conntrack;

const STATS: [(&str, &str, &str); 8] = [
    ("found", "node_nf_conntrack_stat_found", "Number of searched entries which were successful."),
    ("invalid", "node_nf_conntrack_stat_invalid", "Number of packets seen which can not be tracked."),
    ("ignore", "node_nf_conntrack_stat_ignore", "Number of packets seen which are already connected to a conntrack entry."),
    ("insert", "node_nf_conntrack_stat_insert", "Number of entries inserted into the list."),
    ("insert_failed", "node_nf_conntrack_stat_insert_failed", "Number of entries for which list insertion was attempted but failed."),
    ("drop", "node_nf_conntrack_stat_drop", "Number of packets dropped due to conntrack failure."),
    ("early_drop", "node_nf_conntrack_stat_early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."),
    ("search_restart", "node_nf_conntrack_stat_search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
];

/// Sums the per-CPU hex rows of /proc/net/stat/nf_conntrack by header name.
pub fn parse_stat(text: &str) -> Result<[f64; 8], String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or("empty file")?
        .split_ascii_whitespace()
        .collect();
    let idx: Vec<Option<usize>> = STATS
        .iter()
        .map(|(k, _, _)| header.iter().position(|h| h == k))
        .collect();
    let mut sums = [0.0; 8];
    for line in lines {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() != header.len() {
            return Err(format!("field count mismatch: {line}"));
        }
        for (sum, i) in sums.iter_mut().zip(&idx) {
            if let Some(i) = i {
                *sum += u64::from_str_radix(f[*i], 16)
                    .map_err(|_| format!("invalid hex {}", f[*i]))? as f64;
            }
        }
    }
    Ok(sums)
}

impl Collector for Conntrack {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let count = read_u64(&cfg.proc("sys/net/netfilter/nf_conntrack_count"))?;
        out.emit(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            Gauge,
            &[],
            count as f64,
        );
        let max = read_u64(&cfg.proc("sys/net/netfilter/nf_conntrack_max"))?;
        out.emit(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            Gauge,
            &[],
            max as f64,
        );
        let p = cfg.proc("net/stat/nf_conntrack");
        let text = read_str(&p, &mut s.buf)?;
        let sums = parse_stat(text).map_err(|m| CollectError::parse(&p, m))?;
        for ((_, name, help), v) in STATS.iter().zip(sums) {
            out.emit(name, help, Gauge, &[], v);
        }
        Ok(())
    }
}
