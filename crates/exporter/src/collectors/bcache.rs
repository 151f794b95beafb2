//! bcache: /sys/fs/bcache/<uuid> (node_exporter bcache_linux.go over procfs' bcache parser, including its
//! "human" number parsing: `1.2M` where the fraction is in tenths of 1024ths).
//! --collector.bcache.priorityStats adds the (expensive to read) priority_stats percentages per cache.

use std::fmt::Write as _;
use std::path::Path;

use super::prelude::*;

pub struct Bcache;

fn pseudo_float(s: &str) -> Option<f64> {
    match s.split_once('.') {
        Some((i, f)) => Some(i.parse::<f64>().ok()? + f.parse::<f64>().ok()? / 10.24),
        None => s.parse().ok(),
    }
}

/// procfs' dehumanize: optional k/M/G/T/P/E/Z/Y suffix in powers of 1024.
pub fn dehumanize(s: &str) -> Option<u64> {
    let last = *s.as_bytes().last()?;
    if last > b'9' {
        let mul = match last {
            b'k' => 1u64 << 10,
            b'M' => 1 << 20,
            b'G' => 1 << 30,
            b'T' => 1 << 40,
            b'P' => 1 << 50,
            b'E' => 1 << 60,
            _ => 0, // Z/Y overflow u64; procfs' float product saturates the same way in practice
        };
        Some((pseudo_float(&s[..s.len() - 1])? * mul as f64) as u64)
    } else {
        Some(s.parse::<f64>().ok()? as u64)
    }
}

fn signed(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(r) => dehumanize(r).map(|v| -(v as i64)),
        None => dehumanize(s).map(|v| v as i64),
    }
}

/// Reads a value file; absent files read as 0 (procfs), unparsable ones are errors.
fn value(p: &Path) -> Result<f64, CollectError> {
    match read_attr(p) {
        None if !p.exists() => Ok(0.0),
        None => Err(CollectError::parse(p, "failed to read")),
        Some(v) => dehumanize(v.trim())
            .map(|v| v as f64)
            .ok_or_else(|| CollectError::parse(p, format!("bad value {v}"))),
    }
}

const PERIOD: [(&str, &str, &str); 7] = [
    (
        "bypassed",
        "bypassed_bytes_total",
        "Amount of IO (both reads and writes) that has bypassed the cache.",
    ),
    (
        "cache_hits",
        "cache_hits_total",
        "Hits counted per individual IO as bcache sees them.",
    ),
    (
        "cache_misses",
        "cache_misses_total",
        "Misses counted per individual IO as bcache sees them.",
    ),
    (
        "cache_bypass_hits",
        "cache_bypass_hits_total",
        "Hits for IO intended to skip the cache.",
    ),
    (
        "cache_bypass_misses",
        "cache_bypass_misses_total",
        "Misses for IO intended to skip the cache.",
    ),
    (
        "cache_miss_collisions",
        "cache_miss_collisions_total",
        "Instances where data insertion from cache miss raced with write (data already present).",
    ),
    (
        "cache_readaheads",
        "cache_readaheads_total",
        "Count of times readahead occurred.",
    ),
];

impl Collector for Bcache {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("fs/bcache");
        let Ok(names) = sorted_dir(&base) else {
            return Ok(());
        };
        let mut emit = |out: &mut Registry,
                        name: &str,
                        help: &str,
                        typ: MetricType,
                        labels: &[(&str, &str)],
                        v: f64| {
            s.name.clear();
            let _ = write!(s.name, "node_bcache_{name}");
            out.emit(&s.name, help, typ, labels, v);
        };
        for uuid in names.iter().filter(|n| n.contains('-')) {
            let d = base.join(uuid);
            let u = [("uuid", uuid.as_str())];
            for (file, name, help, typ, scale) in [
                ("average_key_size", "average_key_size_sectors", "Average data per key in the btree (sectors).", Gauge, 1.0),
                ("btree_cache_size", "btree_cache_size_bytes", "Amount of memory currently used by the btree cache.", Gauge, 1.0),
                ("cache_available_percent", "cache_available_percent", "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).", Gauge, 1.0),
                ("congested", "congested", "Congestion.", Gauge, 1.0),
                ("root_usage_percent", "root_usage_percent", "Percentage of the root btree node in use (tree depth increases if too high).", Gauge, 1.0),
                ("tree_depth", "tree_depth", "Depth of the btree.", Gauge, 1.0),
                ("internal/active_journal_entries", "active_journal_entries", "Number of journal entries that are newer than the index.", Gauge, 1.0),
                ("internal/btree_nodes", "btree_nodes", "Total nodes in the btree.", Gauge, 1.0),
                ("internal/btree_read_average_duration_us", "btree_read_average_duration_seconds", "Average btree read duration.", Gauge, 1e-9),
                ("internal/cache_read_races", "cache_read_races_total", "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.", Counter, 1.0),
            ] {
                emit(out, name, help, typ, &u, value(&d.join(file))? * scale);
            }
            let entries = sorted_dir(&d)?;
            for bdev in entries.iter().filter(|n| {
                n.strip_prefix("bdev")
                    .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
            }) {
                let bd = d.join(bdev);
                let l = [("uuid", uuid.as_str()), ("backing_device", bdev.as_str())];
                emit(
                    out,
                    "dirty_data_bytes",
                    "Amount of dirty data for this backing device in the cache.",
                    Gauge,
                    &l,
                    value(&bd.join("dirty_data"))?,
                );
                let wp = bd.join("writeback_rate_debug");
                let text = read_str(&wp, &mut s.buf)?;
                let (mut rate, mut target, mut prop, mut integ, mut change) =
                    (0.0, 0.0, 0.0, 0.0, 0.0);
                for line in text.lines() {
                    let last = line.split_ascii_whitespace().last().unwrap_or("");
                    let bad = || CollectError::parse(&wp, format!("failed to parse {line:?}"));
                    if line.starts_with("rate:") {
                        rate = dehumanize(last.trim_end_matches("/sec")).ok_or_else(bad)? as f64;
                    } else if line.starts_with("target:") {
                        target = dehumanize(last).ok_or_else(bad)? as f64;
                    } else if line.starts_with("proportional:") {
                        prop = signed(last).ok_or_else(bad)? as f64;
                    } else if line.starts_with("integral:") {
                        integ = signed(last).ok_or_else(bad)? as f64;
                    } else if line.starts_with("change:") {
                        change = signed(last.trim_end_matches("/sec")).ok_or_else(bad)? as f64;
                    }
                }
                emit(
                    out,
                    "dirty_target_bytes",
                    "Current dirty data target threshold for this backing device in bytes.",
                    Gauge,
                    &l,
                    target,
                );
                emit(
                    out,
                    "writeback_rate",
                    "Current writeback rate for this backing device in bytes.",
                    Gauge,
                    &l,
                    rate,
                );
                emit(
                    out,
                    "writeback_rate_proportional_term",
                    "Current result of proportional controller, part of writeback rate",
                    Gauge,
                    &l,
                    prop,
                );
                emit(
                    out,
                    "writeback_rate_integral_term",
                    "Current result of integral controller, part of writeback rate",
                    Gauge,
                    &l,
                    integ,
                );
                emit(
                    out,
                    "writeback_change",
                    "Last writeback rate change step for this backing device.",
                    Gauge,
                    &l,
                    change,
                );
                for (file, name, help) in PERIOD {
                    emit(
                        out,
                        name,
                        help,
                        Counter,
                        &l,
                        value(&bd.join("stats_total").join(file))?,
                    );
                }
            }
            for cache in entries.iter().filter(|n| {
                n.strip_prefix("cache")
                    .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
            }) {
                let cd = d.join(cache);
                let l = [("uuid", uuid.as_str()), ("cache_device", cache.as_str())];
                emit(
                    out,
                    "io_errors",
                    "Number of errors that have occurred, decayed by io_error_halflife.",
                    Gauge,
                    &l,
                    value(&cd.join("io_errors"))?,
                );
                emit(
                    out,
                    "metadata_written_bytes_total",
                    "Sum of all non data writes (btree writes and all other metadata).",
                    Counter,
                    &l,
                    value(&cd.join("metadata_written"))?,
                );
                emit(
                    out,
                    "written_bytes_total",
                    "Sum of all data that has been written to the cache.",
                    Counter,
                    &l,
                    value(&cd.join("written"))?,
                );
                if cfg.bcache_priority_stats {
                    let (unused, metadata) =
                        priority_stats(&cd.join("priority_stats"), &mut s.buf)?;
                    emit(
                        out,
                        "priority_stats_unused_percent",
                        "The percentage of the cache that doesn't contain any data.",
                        Gauge,
                        &l,
                        unused as f64,
                    );
                    emit(
                        out,
                        "priority_stats_metadata_percent",
                        "Bcache's metadata overhead.",
                        Gauge,
                        &l,
                        metadata as f64,
                    );
                }
            }
        }
        Ok(())
    }
}

/// procfs' getPriorityStats: the `Unused:` and `Metadata:` lines' last field without `%`; an absent file
/// or a bad number fails the collector, as in node_exporter.
fn priority_stats(p: &Path, buf: &mut Vec<u8>) -> Result<(u64, u64), CollectError> {
    let text = read_str(p, buf).map_err(|_| CollectError::parse(p, "failed to read"))?;
    parse_priority_stats(text).map_err(|m| CollectError::parse(p, m))
}

pub fn parse_priority_stats(text: &str) -> Result<(u64, u64), String> {
    let (mut unused, mut metadata) = (0, 0);
    for line in text.lines() {
        let slot = if line.starts_with("Unused:") {
            &mut unused
        } else if line.starts_with("Metadata:") {
            &mut metadata
        } else {
            continue;
        };
        let last = line.split_ascii_whitespace().last().unwrap_or("");
        let v = last.strip_suffix('%').unwrap_or(last);
        *slot = v
            .parse()
            .map_err(|_| format!("invalid value {last:?} in {line:?}"))?;
    }
    Ok((unused, metadata))
}

#[cfg(test)]
mod tests {
    #[test]
    fn priority_stats_lines() {
        let t = "Unused:\t\t99%\nClean:\t\t0%\nDirty:\t\t0%\nMetadata:\t0%\nAverage:\t0\nSectors per Q:\t1234\nQuantiles:\t[0 0 0]\n";
        assert_eq!(super::parse_priority_stats(t), Ok((99, 0)));
        assert!(super::parse_priority_stats("Unused: x%\n").is_err());
    }

    #[test]
    fn dehumanize_like_procfs() {
        assert_eq!(super::dehumanize("542"), Some(542));
        assert_eq!(
            super::dehumanize("1.5k"),
            Some(1024 + (5.0f64 / 10.24 * 1024.0) as u64)
        );
        assert_eq!(super::dehumanize("2M"), Some(2 << 20));
        assert_eq!(
            super::signed("-1.5k"),
            Some(-((1024.0 + 5.0 / 10.24 * 1024.0) as i64))
        );
    }
}
