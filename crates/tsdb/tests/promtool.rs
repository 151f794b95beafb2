//! Byte-compatibility with Prometheus, checked with the real `promtool` (skipped when it is not installed):
//! promtool must read our blocks and WAL, and we must read blocks promtool writes.

use model::storage::{Queryable, Storage};
use model::{Labels, MatchOp, Matcher};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use tsdb::{Db, Options};

fn promtool() -> Option<&'static str> {
    let ok = Command::new("promtool").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        eprintln!("promtool not installed: skipping compatibility test");
    }
    ok.then_some("promtool")
}

/// `{labels} value t` lines as (labels, value bits or NaN marker, t). Values are compared as numbers because
/// Go and Rust print some floats differently.
fn parse(lines: &str) -> BTreeSet<(String, u64, i64)> {
    lines
        .lines()
        .filter_map(|l| {
            let close = l.rfind('}')?;
            let mut rest = l[close + 1..].split_whitespace();
            let v: f64 = rest.next()?.parse().ok()?;
            let t: i64 = rest.next()?.parse().ok()?;
            Some((l[..=close].to_string(), if v.is_nan() { u64::MAX } else { v.to_bits() }, t))
        })
        .collect()
}

fn our_dump(dir: &Path) -> BTreeSet<(String, u64, i64)> {
    let db = Db::open_without_background(dir, Options { no_lockfile: true, ..Options::default() }).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = BTreeSet::new();
    for s in q.select(true, None, &[Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()]).unwrap() {
        let mut s = s.unwrap();
        while let Some(x) = s.samples.next() {
            out.insert((s.labels.to_string(), if x.v.is_nan() { u64::MAX } else { x.v.to_bits() }, x.t));
        }
    }
    out
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn promtool_reads_our_blocks_and_wal() {
    let Some(pt) = promtool() else { return };
    let td = tempfile::tempdir().unwrap();
    let db = Db::open_without_background(td.path(), Options::default()).unwrap();
    let ls: Vec<Labels> = (0..50)
        .map(|i| Labels::from_pairs(&[("__name__", format!("m{}", i % 3)), ("instance", format!("h{i}")), ("job", "x".into())]))
        .collect();
    let mut a = db.appender();
    let mut t = 0;
    while t < 10 * 3_600_000 {
        for (i, l) in ls.iter().enumerate() {
            let v = if t % 900_000 == 0 && i % 4 == 0 { model::STALE_NAN } else { (t / 15_000) as f64 * 0.25 + i as f64 };
            a.append(0, l, t, v).unwrap();
        }
        a.commit().unwrap();
        t += 15_000;
    }
    db.maintain().unwrap();
    assert!(db.blocks().len() >= 2);
    let ours = our_dump(td.path());
    db.close().unwrap();
    drop(db);
    let dir = td.path().to_str().unwrap();
    let analyze = run(Command::new(pt).args(["tsdb", "analyze", dir]));
    assert!(analyze.contains("Series: 50"), "{analyze}");
    let list = run(Command::new(pt).args(["tsdb", "list", dir]));
    assert_eq!(list.lines().count(), 1 + db_block_count(td.path()));
    // promtool's dump covers blocks and replays our WAL checkpoint and segments.
    let theirs = parse(&run(Command::new(pt).args(["tsdb", "dump", dir])));
    assert_eq!(theirs.len(), 50 * 10 * 240);
    assert_eq!(theirs, ours);
}

fn db_block_count(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().path().join("meta.json").exists()).count()
}

#[test]
fn we_read_blocks_promtool_writes() {
    let Some(pt) = promtool() else { return };
    let td = tempfile::tempdir().unwrap();
    let mut om = String::from("# TYPE foo gauge\n");
    for t in (0..5 * 3600).step_by(30) {
        for i in 0..10 {
            om.push_str(&format!("foo{{instance=\"h{i}\",job=\"om\"}} {} {t}\n", t as f64 / 7.0 + i as f64));
        }
    }
    om.push_str("# EOF\n");
    let input = td.path().join("in.om");
    std::fs::write(&input, om).unwrap();
    let data = td.path().join("data");
    run(Command::new(pt).args(["tsdb", "create-blocks-from", "openmetrics"]).arg(&input).arg(&data));
    // promtool 2.42's dump insists on a wal directory.
    std::fs::create_dir_all(data.join("wal")).unwrap();
    let theirs = parse(&run(Command::new(pt).args(["tsdb", "dump"]).arg(&data)));
    assert_eq!(theirs.len(), 10 * 600);
    assert_eq!(our_dump(&data), theirs);
    // And our compaction of their blocks still reads the same.
    let db = Db::open_without_background(&data, Options { no_lockfile: true, ..Options::default() }).unwrap();
    db.maintain().unwrap();
    drop(db);
    assert_eq!(our_dump(&data), theirs);
    run(Command::new(pt).args(["tsdb", "analyze"]).arg(&data));
}
