//! WAL size and replay cost. Two phases, run as separate processes so each has its own peak RSS:
//!
//!   wal_replay write DIR [series] [compress 0|1]  — N series (10 labels, as head_mem) × 2h @15s through a Db
//!                                                   (commits of 1000 samples); prints WAL bytes/sample and
//!                                                   the steady-state RSS per series.
//!   wal_replay replay DIR                          — opens the Db (WAL replay); prints time, samples/s, peak
//!                                                   RSS (VmHWM), RSS after replay, their ratio, and the
//!                                                   head's own accounting per series.

use model::storage::Storage;
use model::Labels;
use std::path::Path;
use std::time::Instant;
use tsdb::{Db, Options};

fn status_kb(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs(&[
        ("__name__".to_string(), format!("node_metric_{}", i % 200)),
        ("instance".to_string(), format!("10.{}.{}.{}:9100", i / 65536 % 256, i / 256 % 256, i % 256)),
        ("job".to_string(), "node".to_string()),
        ("cluster".to_string(), format!("cluster-{}", i % 5)),
        ("region".to_string(), format!("region-{}", i % 3)),
        ("env".to_string(), "prod".to_string()),
        ("team".to_string(), format!("team-{}", i % 20)),
        ("cpu".to_string(), format!("{}", i % 16)),
        ("mode".to_string(), ["user", "system", "idle", "iowait"][i % 4].to_string()),
        ("service".to_string(), format!("svc-{}", i % 100)),
    ])
}

fn opts(compress: bool) -> Options {
    // No head cut while measuring: 2h of data stays in the head.
    Options { wal_compression: compress, min_block_duration_ms: 4 * 3_600_000, ..Options::default() }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: wal_replay write DIR [series] [compress 0|1] | wal_replay replay DIR");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    match mode.as_str() {
        "write" => {
            let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
            let compress = args.get(4).is_none_or(|s| s != "0");
            let _ = std::fs::remove_dir_all(dir);
            let rss0 = status_kb("VmRSS:");
            let db = Db::open_without_background(dir, opts(compress)).expect("open");
            let start = Instant::now();
            let mut refs = vec![0u64; n];
            let mut app = db.appender();
            let mut samples = 0u64;
            for step in 0..480i64 {
                let t = step * 15_000;
                for (i, r) in refs.iter_mut().enumerate() {
                    let v = match i % 3 {
                        0 => (step * (i as i64 % 7 + 1) * 1000 + (step * step) % 17) as f64,
                        1 => (i % 10) as f64,
                        _ => ((step / 4) % 9) as f64 * 0.25,
                    };
                    *r = if *r == 0 {
                        app.append(0, &labels(i), t, v).expect("append")
                    } else {
                        app.append(*r, &Labels::empty(), t, v).expect("append")
                    };
                    samples += 1;
                    if samples.is_multiple_of(1000) {
                        app.commit().expect("commit");
                    }
                }
                app.commit().expect("commit");
            }
            drop(app);
            let rss = status_kb("VmRSS:");
            db.close().expect("close");
            let wal = tsdb::wal::dir_size(&dir.join("wal"));
            println!(
                "series={n} samples={samples} compress={compress} ingest={:.1?} wal={} bytes ({:.3} B/sample) steady RSS={} MiB ({} B/series)",
                start.elapsed(),
                wal,
                wal as f64 / samples as f64,
                rss / 1024,
                (rss.saturating_sub(rss0)) * 1024 / n as u64
            );
        }
        "replay" => {
            let rss0 = status_kb("VmRSS:");
            let start = Instant::now();
            let db = Db::open_without_background(dir, opts(true)).expect("open");
            let took = start.elapsed();
            let st = db.head_stats();
            let (peak, after) = (status_kb("VmHWM:"), status_kb("VmRSS:"));
            let n = st.num_series.max(1);
            println!(
                "replayed series={} samples={} in {:.2?} ({:.2} M samples/s); peak RSS (VmHWM)={} MiB; RSS after replay={} MiB (start {} MiB); peak/after={:.2}; after: {} B/series RSS, {} B/series head accounting",
                st.num_series,
                st.num_samples,
                took,
                st.num_samples as f64 / took.as_secs_f64() / 1e6,
                peak / 1024,
                after / 1024,
                rss0 / 1024,
                peak as f64 / after.max(1) as f64,
                after.saturating_sub(rss0) * 1024 / n,
                db.head().heap_size() as u64 / n
            );
            db.close().expect("close");
        }
        _ => {
            eprintln!("unknown mode {mode}");
            std::process::exit(2);
        }
    }
}
