//! Db-level tests: restart and crash recovery, torn WAL tails, head → block cuts, compaction, retention,
//! the lock file, and a model-based test against `model::mem::MemStorage`.

use model::mem::MemStorage;
use model::storage::{Queryable, Storage};
use model::{labels, AppendError, Labels, MatchOp, Matcher, STALE_NAN};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tsdb::{Db, Options, TsdbError};

const H: i64 = 3_600_000;

type Dump = BTreeMap<Labels, Vec<(i64, u64)>>;

fn dump(q: &dyn Queryable, mint: i64, maxt: i64) -> Dump {
    let q = q.querier(mint, maxt).unwrap();
    let mut out = BTreeMap::new();
    let mut prev: Option<Labels> = None;
    for s in q.select(true, None, &[Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()]).unwrap() {
        let mut s = s.unwrap();
        assert!(prev.as_ref().is_none_or(|p| *p < s.labels), "series not sorted");
        prev = Some(s.labels.clone());
        let v: Vec<(i64, u64)> = std::iter::from_fn(|| s.samples.next()).map(|x| (x.t, x.v.to_bits())).collect();
        assert!(s.samples.err().is_none());
        if !v.is_empty() {
            out.insert(s.labels, v);
        }
    }
    out
}

fn opts() -> Options {
    Options { no_lockfile: true, ..Options::default() }
}

fn open(dir: &Path) -> Arc<Db> {
    Db::open_without_background(dir, opts()).unwrap()
}

fn fill(db: &Db, series: usize, from: i64, to: i64, step: i64) {
    let mut a = db.appender();
    let ls: Vec<Labels> = (0..series).map(|i| labels! {"__name__" => "m", "i" => i.to_string().as_str()}).collect();
    let mut refs = vec![0u64; series];
    let mut t = from;
    while t < to {
        for (i, l) in ls.iter().enumerate() {
            let v = if t % (7 * step) == 0 { STALE_NAN } else { (t / step) as f64 * 0.5 + i as f64 };
            refs[i] = a.append(refs[i], l, t, v).unwrap();
        }
        a.commit().unwrap();
        t += step;
    }
}

#[test]
fn restart_and_crash_lose_nothing_committed() {
    let td = tempfile::tempdir().unwrap();
    let db = open(td.path());
    fill(&db, 20, 0, 600_000, 15_000);
    let want = dump(&*db, i64::MIN, i64::MAX);
    assert_eq!(want.len(), 20);
    db.close().unwrap();
    drop(db);
    let db = open(td.path());
    assert_eq!(dump(&*db, i64::MIN, i64::MAX), want);
    assert_eq!(db.head_stats().num_series, 20);

    // "kill -9": no close, no drop; committed batches were written to the OS already.
    let mut a = db.appender();
    a.append(0, &labels! {"__name__" => "late"}, 700_000, 1.0).unwrap();
    a.commit().unwrap();
    a.append(0, &labels! {"__name__" => "uncommitted"}, 700_000, 1.0).unwrap();
    std::mem::forget(a);
    std::mem::forget(db);
    let db = open(td.path());
    let got = dump(&*db, i64::MIN, i64::MAX);
    assert_eq!(got.len(), 21);
    assert!(got.contains_key(&labels! {"__name__" => "late"}));
}

#[test]
fn torn_wal_tail_is_repaired() {
    let td = tempfile::tempdir().unwrap();
    let db = open(td.path());
    fill(&db, 5, 0, 300_000, 15_000);
    db.close().unwrap();
    drop(db);
    let segs: Vec<_> = std::fs::read_dir(td.path().join("wal")).unwrap().map(|e| e.unwrap().path()).collect();
    let seg = segs.iter().find(|p| std::fs::metadata(p).unwrap().len() > 0).unwrap();
    let len = std::fs::metadata(seg).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(seg).unwrap().set_len(len - 20).unwrap();
    let db = open(td.path());
    assert_eq!(db.metrics().wal_corruptions.load(Ordering::Relaxed), 1);
    let got = dump(&*db, i64::MIN, i64::MAX);
    // Only the last batch (one sample per series) was torn.
    let n: usize = got.values().map(Vec::len).sum();
    assert_eq!(n, 5 * 19);
    // And the database keeps working.
    fill(&db, 5, 300_000, 330_000, 15_000);
}

#[test]
fn head_cut_into_blocks_then_compacted_and_reopened() {
    let td = tempfile::tempdir().unwrap();
    let db = open(td.path());
    // 11h of data at 1m: the head cuts a 2h block whenever it spans more than 3h, leaving four blocks.
    fill(&db, 10, 0, 11 * H, 60_000);
    let want = dump(&*db, i64::MIN, i64::MAX);
    db.maintain().unwrap();
    let blocks = db.blocks();
    assert!(!blocks.is_empty());
    assert!(db.head_stats().min_time >= blocks.last().unwrap().max_time);
    assert_eq!(dump(&*db, i64::MIN, i64::MAX), want, "head+blocks serve the same data");
    // Three 2h blocks [0,6h) were compacted into one 6h block (level 2).
    assert!(blocks.iter().any(|b| b.max_time - b.min_time == 6 * H && b.compaction.level == 2), "{blocks:?}");
    // WAL was checkpointed.
    assert!(std::fs::read_dir(td.path().join("wal")).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("checkpoint.")));
    db.close().unwrap();
    drop(db);
    let db = open(td.path());
    assert_eq!(db.blocks(), blocks);
    assert_eq!(dump(&*db, i64::MIN, i64::MAX), want, "after reopen");
    // Range queries crossing the block/head boundary.
    let part = dump(&*db, 5 * H + 1, 7 * H);
    assert_eq!(part.values().next().unwrap().first().unwrap().0, 5 * H + 60_000);
    // Old samples are refused as out of bounds.
    let mut a = db.appender();
    assert_eq!(a.append(0, &labels! {"__name__" => "m", "i" => "1"}, 1000, 1.0), Err(AppendError::OutOfBounds));
}

#[test]
fn retention_by_time_and_size() {
    let td = tempfile::tempdir().unwrap();
    let o = Options { retention_ms: 4 * H, no_lockfile: true, max_block_duration_ms: 2 * H, ..Options::default() };
    let db = Db::open_without_background(td.path(), o).unwrap();
    fill(&db, 3, 0, 12 * H, 120_000);
    db.maintain().unwrap();
    let bs = db.blocks();
    let newest = bs.iter().map(|b| b.max_time).max().unwrap();
    assert!(bs.iter().all(|b| newest - b.max_time < 4 * H), "{bs:?}");
    assert!(db.metrics().time_retentions.load(Ordering::Relaxed) > 0);
    drop(db);

    let td = tempfile::tempdir().unwrap();
    let o = Options { retention_bytes: 1, no_lockfile: true, max_block_duration_ms: 2 * H, ..Options::default() };
    let db = Db::open_without_background(td.path(), o).unwrap();
    fill(&db, 3, 0, 8 * H, 120_000);
    db.maintain().unwrap();
    assert!(db.blocks().is_empty(), "every block exceeds a 1-byte budget");
    assert!(db.metrics().size_retentions.load(Ordering::Relaxed) > 0);
}

#[test]
fn lock_file_excludes_second_open() {
    let td = tempfile::tempdir().unwrap();
    let db = Db::open(td.path(), Options::default()).unwrap();
    assert!(td.path().join("lock").exists());
    // flock locks are per open file description, so a second open in the same process is refused too.
    match Db::open(td.path(), Options::default()) {
        Err(TsdbError::Locked(_)) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    db.close().unwrap();
    drop(db);
    let db = Db::open(td.path(), Options::default()).unwrap();
    db.close().unwrap();
}

#[test]
fn leftover_tmp_dirs_removed() {
    let td = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(td.path().join("01H00000000000000000000000.tmp-for-creation/chunks")).unwrap();
    let db = open(td.path());
    assert!(!td.path().join("01H00000000000000000000000.tmp-for-creation").exists());
    drop(db);
}

#[test]
fn label_names_and_values_across_head_and_blocks() {
    let td = tempfile::tempdir().unwrap();
    let db = open(td.path());
    let mut a = db.appender();
    a.append(0, &labels! {"__name__" => "old", "a" => "1"}, 1000, 1.0).unwrap();
    a.commit().unwrap();
    a.append(0, &labels! {"__name__" => "new", "b" => "2"}, 5 * H, 1.0).unwrap();
    a.commit().unwrap();
    db.maintain().unwrap();
    assert_eq!(db.blocks().len(), 1);
    let q = db.querier(0, 6 * H).unwrap();
    assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__", "a", "b"]);
    assert_eq!(q.label_values("__name__", &[]).unwrap(), vec!["new", "old"]);
    assert_eq!(q.label_values("__name__", &[Matcher::equal("a", "1")]).unwrap(), vec!["old"]);
}

// ---- model-based test ----

#[derive(Debug, Clone)]
enum Op {
    Append { series: u8, dt: i64, v: u8 },
    Commit,
    Rollback,
    Maintain,
    Restart,
    Crash { tear: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (0u8..6, -20_000i64..1_200_000, 0u8..8).prop_map(|(series, dt, v)| Op::Append { series, dt, v }),
        6 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Maintain),
        1 => Just(Op::Restart),
        1 => (0u8..3).prop_map(|tear| Op::Crash { tear }),
    ]
}

fn series_labels(i: u8) -> Labels {
    labels! {"__name__" => "m", "s" => i.to_string().as_str(), "job" => if i % 2 == 0 { "even" } else { "odd" }}
}

/// Truncates the newest non-empty WAL segment by a few bytes (a torn write of the last, committed batch).
fn tear_wal(dir: &Path) -> bool {
    let mut segs: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    segs.sort();
    let Some(last) = segs.last() else { return false };
    let len = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(last).unwrap().set_len(len - 3).unwrap();
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn behaves_like_mem_storage(ops in proptest::collection::vec(op(), 1..80)) {
        let td = tempfile::tempdir().unwrap();
        let mut db = open(td.path());
        let mut oracle = MemStorage::new();
        let mut ta = db.appender();
        let mut oa = oracle.appender();
        let mut t = 0i64;
        // Samples of the open batch, replayed into the oracle on commit of a batch we later tear.
        let mut last_committed: Vec<(Labels, i64, f64)> = Vec::new();
        let mut batch: Vec<(Labels, i64, f64)> = Vec::new();
        // `s` values of the series with `job="even"` ever appended (the ones label values may list).
        let mut touched = std::collections::BTreeSet::new();
        for op in ops {
            match op {
                Op::Append { series, dt, v } => {
                    t += dt;
                    let l = series_labels(series);
                    let v = if v == 7 { STALE_NAN } else { v as f64 };
                    let got = ta.append(0, &l, t, v);
                    match got {
                        Err(AppendError::OutOfBounds) => {}
                        Err(e) => prop_assert_eq!(oa.append(0, &l, t, v).unwrap_err(), e),
                        Ok(_) => {
                            if series % 2 == 0 {
                                touched.insert(series.to_string());
                            }
                            prop_assert!(oa.append(0, &l, t, v).is_ok());
                            batch.push((l, t, v));
                        }
                    }
                }
                Op::Commit => {
                    ta.commit().unwrap();
                    oa.commit().unwrap();
                    if !batch.is_empty() {
                        last_committed = std::mem::take(&mut batch);
                    }
                }
                Op::Rollback => {
                    ta.rollback();
                    oa.rollback();
                    batch.clear();
                }
                Op::Maintain => {
                    ta.rollback();
                    oa.rollback();
                    batch.clear();
                    db.maintain().unwrap();
                }
                Op::Restart => {
                    ta.rollback();
                    oa.rollback();
                    batch.clear();
                    drop(ta);
                    db.close().unwrap();
                    drop(db);
                    db = open(td.path());
                    ta = db.appender();
                }
                Op::Crash { tear } => {
                    drop(ta);
                    std::mem::forget(db);
                    batch.clear();
                    oa.rollback();
                    if tear == 0 && !last_committed.is_empty() && tear_wal(td.path()) {
                        // The torn batch is lost as a whole or in part: rebuild the oracle from what survived,
                        // checking that everything older survived.
                        db = open(td.path());
                        let got = dump(&*db, i64::MIN, i64::MAX);
                        let before: Dump = oracle.snapshot().into_iter().map(|(l, s)| (l, s.iter().map(|x| (x.t, x.v.to_bits())).collect::<Vec<_>>())).filter(|(_, s): &(Labels, Vec<(i64, u64)>)| !s.is_empty()).collect();
                        for (l, s) in &before {
                            let g = got.get(l).cloned().unwrap_or_default();
                            let lost: Vec<_> = s.iter().filter(|x| !g.contains(x)).collect();
                            for x in &lost {
                                prop_assert!(last_committed.iter().any(|(ll, tt, _)| ll == l && *tt == x.0), "lost {:?} of {} not in last batch", x, l);
                            }
                        }
                        oracle = MemStorage::new();
                        let mut w = oracle.appender();
                        for (l, s) in &got {
                            for (tt, vb) in s {
                                w.append(0, l, *tt, f64::from_bits(*vb)).unwrap();
                            }
                        }
                        w.commit().unwrap();
                        drop(w);
                    } else {
                        db = open(td.path());
                    }
                    last_committed.clear();
                    ta = db.appender();
                    oa = oracle.appender();
                }
            }
            if !matches!(op, Op::Append { .. }) {
                let want: Dump = oracle.snapshot().into_iter()
                    .map(|(l, s)| (l, s.iter().map(|x| (x.t, x.v.to_bits())).collect::<Vec<_>>()))
                    .filter(|(_, s)| !s.is_empty())
                    .collect();
                prop_assert_eq!(dump(&*db, i64::MIN, i64::MAX), want.clone());
                // A range query sees the same as the oracle's range.
                let (lo, hi) = (t / 3, t / 2);
                let want_r: Dump = want.iter()
                    .map(|(l, s)| (l.clone(), s.iter().copied().filter(|x| x.0 >= lo && x.0 <= hi).collect::<Vec<_>>()))
                    .filter(|(_, s)| !s.is_empty()).collect();
                prop_assert_eq!(dump(&*db, lo, hi), want_r);
                let q = db.querier(i64::MIN, i64::MAX).unwrap();
                let oq = oracle.querier(i64::MIN, i64::MAX).unwrap();
                let ms = [Matcher::new(MatchOp::NotEqual, "job", "odd").unwrap()];
                // Label values come from the indexes, as Prometheus's: a series the head created for an append
                // that was rolled back or torn off the WAL is listed until the head drops it, so the answer
                // holds every value the oracle has and only values of series ever appended.
                let got = q.label_values("s", &ms).unwrap();
                let want = oq.label_values("s", &ms).unwrap();
                prop_assert!(want.iter().all(|v| got.contains(v)), "{:?} misses some of {:?}", got, want);
                prop_assert!(got.iter().all(|v| touched.contains(v)), "{:?} not all in {:?}", got, touched);
                prop_assert!(got.is_sorted(), "{:?}", got);
                // The one-buffer form the HTTP API uses (head and block indexes answer it directly).
                prop_assert_eq!(q.label_values_list("s", &[]).unwrap().to_vec(), q.label_values("s", &[]).unwrap());
                prop_assert_eq!(q.label_values_list("s", &ms).unwrap().to_vec(), got);
            }
        }
    }
}

#[test]
fn unreadable_blocks_are_skipped_and_kept_on_disk() {
    let td = tempfile::tempdir().unwrap();
    let db = open(td.path());
    fill(&db, 5, 0, 7 * H, 60_000);
    db.flush_head_before(6 * H).unwrap();
    let metas = db.blocks();
    assert_eq!(metas.len(), 3);
    let want_first = dump(&*db, 0, 2 * H - 1);
    db.close().unwrap();
    drop(db);
    // Break the second block's index and the third block's meta.json.
    let b1 = td.path().join(metas[1].ulid.to_string());
    let b2 = td.path().join(metas[2].ulid.to_string());
    let idx = std::fs::read(b1.join("index")).unwrap();
    std::fs::write(b1.join("index"), &idx[..idx.len() / 2]).unwrap();
    std::fs::write(b2.join("meta.json"), b"{ not json").unwrap();

    let db = open(td.path());
    assert_eq!(db.blocks().len(), 1);
    let bad: Vec<_> = db.unreadable_blocks().iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(bad, vec![b1.clone(), b2.clone()]);
    assert_eq!(db.metrics().blocks_unreadable.load(Ordering::Relaxed), 2);
    assert_eq!(dump(&*db, 0, 2 * H - 1), want_first, "readable history still served");
    assert!(!dump(&*db, 6 * H, 7 * H).is_empty(), "head replayed");
    // Maintenance (compaction, retention) never touches what it could not read.
    db.maintain().unwrap();
    drop(db);
    assert!(b1.join("index").exists() && b2.join("meta.json").exists());
    // The read-only tools refuse, like promtool, and name the block.
    let e = tsdb::list_blocks(td.path(), false, &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains(&metas[1].ulid.to_string()), "{e}");
}

/// Read isolation: while two writers commit batches over their own 64 series (one sample per series per
/// commit, same timestamp), concurrent queries must always see every series of a writer at the same
/// commit: never some series with a batch and others without it.
#[test]
fn queries_never_see_part_of_a_commit() {
    const N: usize = 64;
    const COMMITS: i64 = 1500;
    let td = tempfile::tempdir().unwrap();
    let db = open(td.path());
    let done = std::sync::atomic::AtomicUsize::new(0);
    let checks = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|sc| {
        for w in 0..2 {
            let (db, done, checks, total) = (&db, &done, &checks, &total);
            sc.spawn(move || {
                let ls: Vec<Labels> = (0..N)
                    .map(|i| labels! {"__name__" => "iso", "w" => w.to_string().as_str(), "i" => i.to_string().as_str()})
                    .collect();
                let mut refs = vec![0u64; N];
                let mut a = db.appender();
                // At least COMMITS commits, and on until the readers have checked enough snapshots.
                let mut k = 0;
                while k < COMMITS || (checks.load(Ordering::Relaxed) < 300 && k < 100 * COMMITS) {
                    k += 1;
                    for (i, l) in ls.iter().enumerate() {
                        refs[i] = a.append(refs[i], l, k * 1000, k as f64).unwrap();
                    }
                    a.commit().unwrap();
                }
                total.fetch_add(k as u64 * N as u64, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        for _ in 0..2 {
            let (db, done, checks) = (&db, &done, &checks);
            sc.spawn(move || {
                while done.load(Ordering::SeqCst) < 2 {
                    // The last ~20 commits' window keeps each query cheap as the head grows.
                    let from = db.head_stats().max_time.saturating_sub(20_000);
                    let q = db.querier(from, i64::MAX).unwrap();
                    // writer -> distinct timestamp lists seen over its series, and how many series.
                    let mut seen: BTreeMap<String, (std::collections::BTreeSet<Vec<i64>>, usize)> = BTreeMap::new();
                    for s in q.select(true, None, &[Matcher::equal("__name__", "iso")]).unwrap() {
                        let mut s = s.unwrap();
                        let ts: Vec<i64> = std::iter::from_fn(|| s.samples.next()).map(|x| x.t).collect();
                        assert!(s.samples.err().is_none(), "{:?}", s.samples.err());
                        let e = seen.entry(s.labels.get("w").unwrap().to_string()).or_default();
                        e.0.insert(ts);
                        e.1 += 1;
                    }
                    for (w, (states, n)) in &seen {
                        assert_eq!(*n, N, "writer {w}: only {n} of {N} series visible: {states:?}");
                        assert_eq!(states.len(), 1, "writer {w}: series at different commits: {states:?}");
                    }
                    checks.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert!(checks.load(Ordering::Relaxed) >= 300, "readers ran {} times", checks.load(Ordering::Relaxed));
    assert_eq!(db.head_stats().num_samples, total.load(Ordering::SeqCst));
}
