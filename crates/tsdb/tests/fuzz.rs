//! Fuzz-style property tests: the block (index, chunks, tombstones, meta.json) and WAL decoders must never
//! panic or allocate without bound, whatever the bytes. Mutations start from valid files, and where a CRC
//! would reject the damage before the decoder sees it, the test recomputes the CRC, so the decoders behind
//! the checksums are exercised too. The cargo-fuzz targets in `fuzz/` run the same entry points unbounded.

use model::storage::{Querier, Queryable, Storage};
use model::{Labels, MatchOp, Matcher};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tsdb::block::Block;
use tsdb::wal::{self, WalWriter};
use tsdb::{Db, Options};

const H: i64 = 3_600_000;

/// A valid block (and the WAL bytes that produced it), built once.
fn fixture() -> &'static (PathBuf, Vec<u8>) {
    static F: OnceLock<(PathBuf, Vec<u8>)> = OnceLock::new();
    F.get_or_init(|| {
        // Under cargo's per-target scratch dir rather than a leaked tempdir (statics are never dropped).
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Fixtures of earlier runs whose process is gone are removed here.
        for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("tsdb-fuzz-fixture-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let td = tmp.join(format!("tsdb-fuzz-fixture-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&td);
        let db = Db::open_without_background(&td, Options { no_lockfile: true, ..Options::default() }).unwrap();
        let mut a = db.appender();
        for t in 0..60 {
            for i in 0..12 {
                let l = Labels::from_pairs(&[("__name__", format!("m{}", i % 3)), ("i", i.to_string()), ("job", "x".into())]);
                let v = if t % 7 == 0 { model::STALE_NAN } else { (t * i) as f64 * 0.5 };
                a.append(0, &l, t * 60_000, v).unwrap();
            }
            a.commit().unwrap();
        }
        a.append(0, &Labels::from_pairs(&[("__name__", "late")]), 3 * H, 1.0).unwrap();
        a.commit().unwrap();
        db.flush_head_before(2 * H).unwrap();
        let blocks = db.blocks();
        assert_eq!(blocks.len(), 1);
        let dir = td.join(blocks[0].ulid.to_string());
        // Tombstones so that file has a body to mutate.
        let mut ts = tsdb::block::Tombstones::new();
        let b = Block::open(&dir).unwrap();
        let ids = tsdb::postings::PostingsIndex::all_postings(b.index()).unwrap();
        ts.insert(ids[1], vec![(60_000, 120_000)]);
        ts.insert(ids[3], vec![(0, 10), (500_000, 900_000)]);
        tsdb::block::write_tombstones(&dir, &ts).unwrap();
        db.close().unwrap();
        let mut w = WalWriter::create(&td.join("wal-fixture"), 0, wal::DEFAULT_SEGMENT_SIZE).unwrap();
        let mut rec = Vec::new();
        for i in 0..20u64 {
            rec.clear();
            wal::encode_series(&mut rec, i + 1, &Labels::from_pairs(&[("__name__", "m"), ("i", &i.to_string())]));
            w.log(&rec).unwrap();
            rec.clear();
            wal::encode_samples(&mut rec, (0..30).map(|k| wal::RefSample { r: i + 1, t: k * 1000, v: k as f64 }));
            w.log(&rec).unwrap();
        }
        w.close().unwrap();
        let wal_bytes = std::fs::read(td.join("wal-fixture").join("00000000")).unwrap();
        (dir, wal_bytes)
    })
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

/// Reads everything a block offers; errors are fine, panics and hangs are not.
fn exercise(dir: &Path) {
    let Ok(b) = Block::open(dir) else { return };
    let b = Arc::new(b);
    let ms: [Vec<Matcher>; 4] = [
        vec![],
        vec![Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()],
        vec![Matcher::equal("job", "x"), Matcher::new(MatchOp::NotEqual, "i", "3").unwrap()],
        vec![Matcher::new(MatchOp::NotRegex, "i", "1.*").unwrap()],
    ];
    for (mint, maxt) in [(i64::MIN, i64::MAX), (100_000, 1_000_000)] {
        let q = b.querier(mint, maxt);
        for m in &ms {
            if let Ok(set) = q.select(true, None, m) {
                for s in set.take(10_000) {
                    let Ok(mut s) = s else { continue };
                    let mut n = 0;
                    while s.samples.next().is_some() && n < 100_000 {
                        n += 1;
                    }
                    let _ = s.samples.seek(500_000);
                }
            }
            let _ = q.label_values("i", m);
            let _ = q.label_names(m);
        }
    }
    let _ = b.index().postings_stats();
    let _ = b.index().symbols();
    // Compaction reads every series and chunk and re-encodes what it must.
    let out = tempfile::tempdir().unwrap();
    let _ = tsdb::compact::compact_blocks(out.path(), &[b]);
}

#[derive(Debug, Clone)]
enum Target {
    /// Anywhere in the index file, checksums left as they are.
    IndexRaw,
    /// Inside one CRC-protected index section (0 symbols, 1 label table, 2 postings table, 3 all-postings,
    /// 4+ a series entry), CRC recomputed.
    IndexSection(usize),
    ChunksRaw,
    /// Inside one chunk's data, CRC recomputed.
    ChunkData(usize),
    Tombstones,
    Meta,
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

fn uvarint(b: &[u8], at: usize) -> (usize, usize) {
    let (mut x, mut s, mut i) = (0usize, 0, at);
    loop {
        let c = b[i];
        x |= ((c & 0x7f) as usize) << s;
        i += 1;
        if c < 0x80 {
            return (x, i);
        }
        s += 7;
    }
}

/// Applies `muts` (position fraction, xor) to `b[start..end]`.
fn mutate(b: &mut [u8], start: usize, end: usize, muts: &[(u16, u8)]) {
    if end <= start {
        return;
    }
    for &(p, x) in muts {
        let i = start + (p as usize * (end - start)) / 65_536;
        b[i] ^= x;
    }
}

fn apply(dir: &Path, target: &Target, muts: &[(u16, u8)], truncate: Option<u16>) {
    let crc = |b: &[u8]| crc32c::crc32c(b).to_be_bytes();
    match target {
        Target::IndexRaw | Target::IndexSection(_) => {
            let p = dir.join("index");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            let toc: Vec<usize> = (0..6).map(|k| u64::from_be_bytes(b[n - 52 + 8 * k..n - 44 + 8 * k].try_into().unwrap()) as usize).collect();
            match target {
                Target::IndexSection(k) => {
                    // `len u32 | body | crc` sections, or a series `uvarint len | body | crc`.
                    let (body_start, len) = match *k {
                        0 => (toc[0] + 4, be32(&b, toc[0])),
                        1 => (toc[3] + 4, be32(&b, toc[3])),
                        2 => (toc[5] + 4, be32(&b, toc[5])),
                        3 => (toc[4] + 4, be32(&b, toc[4])),
                        s => {
                            // The s-4'th series entry (entries are 16-byte aligned after toc[1]).
                            let mut at = toc[1];
                            for _ in 0..(s - 4) % 12 {
                                let (l, st) = uvarint(&b, at);
                                at = (st + l + 4).div_ceil(16) * 16;
                            }
                            let (l, st) = uvarint(&b, at);
                            (st, l)
                        }
                    };
                    mutate(&mut b, body_start, body_start + len, muts);
                    let c = crc(&b[body_start..body_start + len]);
                    b[body_start + len..body_start + len + 4].copy_from_slice(&c);
                }
                _ => mutate(&mut b, 0, n, muts),
            }
            if let Some(t) = truncate {
                b.truncate(t as usize % (n + 1));
            }
            std::fs::write(&p, &b).unwrap();
        }
        Target::ChunksRaw | Target::ChunkData(_) => {
            let p = dir.join("chunks").join("000001");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            if let Target::ChunkData(k) = target {
                let mut at = 8;
                for _ in 0..*k % 20 {
                    let (l, st) = uvarint(&b, at);
                    if st + 1 + l + 4 >= n {
                        break;
                    }
                    at = st + 1 + l + 4;
                }
                let (l, st) = uvarint(&b, at);
                mutate(&mut b, st + 1, st + 1 + l, muts);
                let c = crc(&b[st..st + 1 + l]);
                b[st + 1 + l..st + 1 + l + 4].copy_from_slice(&c);
            } else {
                mutate(&mut b, 0, n, muts);
            }
            if let Some(t) = truncate {
                b.truncate(t as usize % (n + 1));
            }
            std::fs::write(&p, &b).unwrap();
        }
        Target::Tombstones => {
            let p = dir.join("tombstones");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            mutate(&mut b, 5, n - 4, muts);
            let c = crc(&b[5..n - 4]);
            b[n - 4..].copy_from_slice(&c);
            if let Some(t) = truncate {
                b.truncate(t as usize % (n + 1));
            }
            std::fs::write(&p, &b).unwrap();
        }
        Target::Meta => {
            let p = dir.join("meta.json");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            mutate(&mut b, 0, n, muts);
            std::fs::write(&p, &b).unwrap();
        }
    }
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::IndexRaw),
        (0usize..16).prop_map(Target::IndexSection),
        Just(Target::ChunksRaw),
        (0usize..20).prop_map(Target::ChunkData),
        Just(Target::Tombstones),
        Just(Target::Meta),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200), ..ProptestConfig::default() })]

    #[test]
    fn mutated_blocks_never_panic(
        target in target(),
        muts in proptest::collection::vec((any::<u16>(), 1u8..=255), 1..6),
        truncate in proptest::option::weighted(0.15, any::<u16>()),
    ) {
        let (src, _) = fixture();
        let td = tempfile::tempdir().unwrap();
        let dir = td.path().join("b");
        copy_dir(src, &dir);
        apply(&dir, &target, &muts, truncate);
        exercise(&dir);
    }

    #[test]
    fn mutated_wal_never_panics(
        muts in proptest::collection::vec((any::<u16>(), 1u8..=255), 0..6),
        truncate in proptest::option::of(any::<u32>()),
        fix_crc in any::<bool>(),
    ) {
        let (_, wal_bytes) = fixture();
        let mut b = wal_bytes.clone();
        let used = b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
        mutate(&mut b, 0, used, &muts);
        if fix_crc {
            // Re-checksum every fragment so mutated payloads reach the record decoder.
            let mut pos = 0;
            while pos + 7 <= used {
                let rem = 32 * 1024 - pos % (32 * 1024);
                if rem < 7 || b[pos] == 0 { pos += rem; continue; }
                let len = u16::from_be_bytes([b[pos + 1], b[pos + 2]]) as usize;
                if pos + 7 + len > b.len() { break; }
                let c = crc32c::crc32c(&b[pos + 7..pos + 7 + len]).to_be_bytes();
                b[pos + 3..pos + 7].copy_from_slice(&c);
                pos += 7 + len;
            }
        }
        if let Some(t) = truncate {
            b.truncate(t as usize % (b.len() + 1));
        }
        let _ = wal::read_segment(&b, 0, &mut |rec| {
            let _ = wal::decode(rec);
            Ok(())
        });
        let _ = wal::read_segment_from(&b[b.len() / 2..], (b.len() / 2) as u64, 0, &mut |rec, _| {
            let _ = wal::decode(rec);
            Ok(())
        });
    }

    #[test]
    fn random_records_never_panic(rec in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = wal::decode(&rec);
        let mut r = rec.clone();
        if let Some(f) = r.first_mut() { *f = 1 + (*f % 2); }
        let _ = wal::decode(&r);
        let _ = wal::read_segment(&rec, 0, &mut |_| Ok(()));
        let _ = tsdb::chunkenc::XorIter::collect_all(&rec);
    }
}

/// A damaged WAL in a data dir: the Db opens, keeps the good prefix, and a read-only dump of the same dir
/// does not modify it.
#[test]
fn corrupt_wal_replays_prefix_and_dump_leaves_it_alone() {
    let td = tempfile::tempdir().unwrap();
    let db = Db::open_without_background(td.path(), Options { no_lockfile: true, ..Options::default() }).unwrap();
    let mut a = db.appender();
    for t in 0..200 {
        a.append(0, &Labels::from_pairs(&[("__name__", "m")]), t * 1000, t as f64).unwrap();
        a.commit().unwrap();
    }
    db.close().unwrap();
    drop(db);
    let seg = wal::list_segments(&td.path().join("wal")).unwrap()[0].1.clone();
    let mut b = std::fs::read(&seg).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&seg, &b).unwrap();
    let mut out = Vec::new();
    tsdb::dump(td.path(), &[], i64::MIN, i64::MAX, &mut out).unwrap();
    let n = out.iter().filter(|&&c| c == b'\n').count();
    assert!(n > 0 && n < 200, "{n}");
    assert_eq!(std::fs::read(&seg).unwrap(), b, "dump is read-only");
    let db = Db::open_without_background(td.path(), Options { no_lockfile: true, ..Options::default() }).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let got = q.select(true, None, &[]).unwrap().count();
    assert_eq!(got, 1);
    assert_eq!(db.metrics().wal_corruptions.load(std::sync::atomic::Ordering::Relaxed), 1);
    let _ = db.appender();
}
