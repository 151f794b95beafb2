//! Byte-compatibility with Prometheus, checked with the real `promtool` (skipped when it is not installed):
//! promtool must read our blocks and WAL, and we must read blocks promtool writes.

use model::storage::{Queryable, Storage};
use model::{Labels, MatchOp, Matcher};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use tsdb::{Db, Options};

/// The promtool binary, or None (test skipped with a notice) when it is not installed. With
/// `IGNIS_REQUIRE_INTEROP=1` a missing promtool fails the test instead.
fn promtool() -> Option<&'static str> {
    let ok = Command::new("promtool").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("IGNIS_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "promtool not installed but IGNIS_REQUIRE_INTEROP=1"
        );
        eprintln!("NOTICE: promtool not installed: skipping compatibility test");
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
    // The WAL promtool reads below is snappy-compressed (the default): some segment starts with a flagged record.
    let mut flagged = 0;
    for e in walkdir(&td.path().join("wal")) {
        let b = std::fs::read(&e).unwrap();
        flagged += usize::from(b.first().is_some_and(|t| t & 0x08 != 0));
    }
    assert!(flagged > 0, "no compressed WAL record found");
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

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
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

/// Asserts two outputs are identical, reporting the first differing line instead of both texts.
fn same(ours: &str, theirs: &str, what: &str) {
    if ours == theirs {
        return;
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    let i = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    panic!(
        "{what}: outputs differ at line {} (ours {} lines, promtool {}):\n ours: {:?}\n them: {:?}",
        i + 1,
        a.len(),
        b.len(),
        a.get(i),
        b.get(i)
    );
}

fn ours_dump(dir: &Path, ms: &[Matcher], mint: i64, maxt: i64) -> String {
    let mut out = Vec::new();
    tsdb::dump(dir, ms, mint, maxt, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn ours_list(dir: &Path, human: bool) -> String {
    let mut out = Vec::new();
    tsdb::list_blocks(dir, human, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Awkward values and labels: Go's %g layout, quoting of escapes and non-ASCII, stale markers.
fn awkward_value(i: usize, step: i64) -> f64 {
    match (i + step as usize) % 9 {
        0 => model::STALE_NAN,
        1 => f64::INFINITY,
        2 => 1e21 * step as f64,
        3 => 0.0001 / (step + 1) as f64,
        4 => -(step as f64) / 3.0,
        5 => 123456.0 + step as f64,
        6 => 1e-7,
        7 => -0.0,
        _ => step as f64 * 0.1,
    }
}

fn awkward_labels(n: usize) -> Vec<Labels> {
    let vals = ["plain", "quote\"back\\slash", "new\nline\ttab", "ünï 日本", "nbsp\u{a0}zw\u{200b}", "ctl\u{1}\u{7f}", ""];
    // Created in an order that is not label order, so the head's ref order differs from a sorted dump.
    (0..n)
        .rev()
        .map(|i| {
            Labels::from_pairs(&[
                ("__name__", format!("m_{}", i % 4)),
                ("instance", format!("h{i}")),
                ("weird", vals[i % vals.len()].to_string()),
            ])
        })
        .collect()
}

fn fill(db: &Db, ls: &[Labels], from: i64, to: i64, step_ms: i64) {
    let mut a = db.appender();
    let mut t = from;
    while t < to {
        for (i, l) in ls.iter().enumerate() {
            a.append(0, l, t, awkward_value(i, t / step_ms)).unwrap();
        }
        a.commit().unwrap();
        t += step_ms;
    }
}

#[test]
fn dump_and_list_are_byte_identical_to_promtool() {
    let Some(pt) = promtool() else { return };
    let td = tempfile::tempdir().unwrap();
    let dir = td.path();
    let ls = awkward_labels(30);

    // 1. Head only (WAL, no blocks); series created out of label order.
    let db = Db::open_without_background(dir, Options::default()).unwrap();
    fill(&db, &ls, 1_700_000_000_000, 1_700_000_000_000 + 3_600_000, 60_000);
    db.close().unwrap();
    drop(db);
    let theirs = run(Command::new(pt).args(["tsdb", "dump"]).arg(dir));
    assert_eq!(theirs.lines().count(), 30 * 60);
    same(&ours_dump(dir, &[], i64::MIN, i64::MAX), &theirs, "dump");

    // 2. Blocks + head: merged in label order.
    let db = Db::open_without_background(dir, Options::default()).unwrap();
    fill(&db, &ls, 1_700_000_000_000 + 3_600_000, 1_700_000_000_000 + 9 * 3_600_000, 60_000);
    db.maintain().unwrap();
    assert!(db.blocks().len() >= 2, "{:?}", db.blocks());
    db.close().unwrap();
    drop(db);
    let theirs = run(Command::new(pt).args(["tsdb", "dump"]).arg(dir));
    assert_eq!(theirs.lines().count(), 30 * 60 * 9);
    same(&ours_dump(dir, &[], i64::MIN, i64::MAX), &theirs, "dump");

    // 3. With a selector and a time range (one block only: its own order).
    let (mint, maxt) = (1_700_000_000_000 + 3_600_000, 1_700_000_000_000 + 4 * 3_600_000 + 1);
    let theirs = run(Command::new(pt).args([
        "tsdb",
        "dump",
        "--match",
        "{__name__=~\"m_[12]\",weird!=\"plain\"}",
        &format!("--min-time={mint}"),
        &format!("--max-time={maxt}"),
    ]).arg(dir));
    let ms = [Matcher::new(MatchOp::Regex, "__name__", "m_[12]").unwrap(), Matcher::new(MatchOp::NotEqual, "weird", "plain").unwrap()];
    let ours = ours_dump(dir, &ms, mint, maxt);
    assert!(!ours.is_empty());
    same(&ours, &theirs, "dump --match");

    // 4. list, plain and human-readable.
    same(&ours_list(dir, false), &run(Command::new(pt).args(["tsdb", "list"]).arg(dir)), "list");
    same(&ours_list(dir, true), &run(Command::new(pt).args(["tsdb", "list", "-r"]).arg(dir)), "list -r");
}

#[test]
fn backfill_matches_promtool_create_blocks_from() {
    let Some(pt) = promtool() else { return };
    let td = tempfile::tempdir().unwrap();
    // 3 series over ~5h, written in time order per series but series interleaved unevenly; escapes in values.
    let mut om = String::from("# HELP req Requests.\n# TYPE req counter\n");
    for t in (1_700_000_000i64..1_700_000_000 + 5 * 3600).step_by(15) {
        for (i, l) in ["a", "b\\\"q", "c\\\\d"].iter().enumerate() {
            om.push_str(&format!("req_total{{code=\"{l}\"}} {} {t}.{}\n", (t - 1_700_000_000) * (i as i64 + 1), i * 25));
        }
    }
    om.push_str("# EOF\n");
    let input = td.path().join("in.om");
    std::fs::write(&input, &om).unwrap();
    let (ours_dir, theirs_dir) = (td.path().join("ours"), td.path().join("theirs"));
    let mut progress = Vec::new();
    let rep = tsdb::create_blocks_from_openmetrics_to(&input, &ours_dir, tsdb::BackfillOptions::default(), &mut progress).unwrap();
    let printed_theirs = run(Command::new(pt).args(["tsdb", "create-blocks-from", "openmetrics"]).arg(&input).arg(&theirs_dir));
    let printed_ours = String::from_utf8(progress).unwrap();
    assert_eq!(printed_ours, rep.printed);
    // Same table apart from ULIDs, chunk counts and sizes (chunk cutting differs; data does not).
    let cols = |s: &str| -> Vec<Vec<String>> {
        s.lines()
            .map(|l| {
                let c: Vec<String> = l.split_whitespace().map(String::from).collect();
                if c[0] == "BLOCK" { c } else { vec![c[1].clone(), c[2].clone(), c[3].clone(), c[4].clone(), c[6].clone()] }
            })
            .collect()
    };
    assert_eq!(cols(&printed_ours), cols(&printed_theirs), "ours:\n{printed_ours}\ntheirs:\n{printed_theirs}");
    assert_eq!(printed_ours.lines().next(), printed_theirs.lines().next());
    assert_eq!(rep.blocks.len(), 3);
    // promtool 2.42's dump insists on a wal directory.
    for d in [&ours_dir, &theirs_dir] {
        std::fs::create_dir_all(d.join("wal")).unwrap();
    }
    let promtool_on_ours = run(Command::new(pt).args(["tsdb", "dump"]).arg(&ours_dir));
    let promtool_on_theirs = run(Command::new(pt).args(["tsdb", "dump"]).arg(&theirs_dir));
    assert_eq!(promtool_on_ours.lines().count(), 3 * 5 * 240);
    same(&promtool_on_ours, &promtool_on_theirs, "promtool dump of both");
    same(&ours_dump(&ours_dir, &[], i64::MIN, i64::MAX), &promtool_on_ours, "dump of our backfill");
    same(&ours_dump(&theirs_dir, &[], i64::MIN, i64::MAX), &promtool_on_theirs, "dump of promtool backfill");
    run(Command::new(pt).args(["tsdb", "analyze"]).arg(&ours_dir));
}

