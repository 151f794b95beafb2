//! Append scaling over threads: T threads, each with its own appender over its own series (disjoint, like
//! scrape loops), batches of 1000 samples, cached refs. Prints samples/s, and CPU time / wall time so a
//! busy machine (CPU < T × wall) can be told from contention (CPU ≈ T × wall, no speed-up).
//! Usage: append_scaling [series_per_thread] [rounds] [wal: 0|1]

use model::storage::Appender;
use model::Labels;
use std::sync::Arc;
use tsdb::{wal::WalWriter, Head, Metrics};

fn cpu_secs() -> f64 {
    // utime + stime of this process, in clock ticks (100 Hz on Linux).
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let series: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let rounds: i64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let wal = args.get(3).is_some_and(|s| s == "1");
    for threads in [1usize, 2] {
        let td = std::env::temp_dir().join(format!("append_scaling_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&td);
        let w = wal.then(|| WalWriter::create(&td, 0, 128 << 20).expect("wal"));
        let head = Head::new(7_200_000, w, Arc::new(Metrics::default()));
        let mut work: Vec<(Vec<Labels>, Vec<u64>)> = (0..threads)
            .map(|th| {
                let ls: Vec<Labels> = (0..series)
                    .map(|i| {
                        Labels::from_pairs(&[
                            ("__name__".to_string(), format!("metric_{}", i % 50)),
                            ("instance".to_string(), format!("10.{th}.{}.{}:9100", i / 250, i % 250)),
                            ("job".to_string(), "node".to_string()),
                        ])
                    })
                    .collect();
                let mut app = head.appender();
                let refs = ls.iter().map(|l| app.append(0, l, 0, 0.0).expect("append")).collect();
                app.commit().expect("commit");
                (ls, refs)
            })
            .collect();
        let (cpu0, start) = (cpu_secs(), std::time::Instant::now());
        std::thread::scope(|sc| {
            for (ls, refs) in work.iter_mut() {
                let head = head.clone();
                sc.spawn(move || {
                    let mut app = head.appender();
                    for k in 1..=rounds {
                        let ts = k * 15_000;
                        for (i, l) in ls.iter().enumerate() {
                            refs[i] = app.append(refs[i], l, ts, (k + i as i64) as f64).expect("append");
                            if (i + 1) % 1000 == 0 {
                                app.commit().expect("commit");
                            }
                        }
                        app.commit().expect("commit");
                    }
                });
            }
        });
        let wall = start.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu0;
        let n = (threads * series) as f64 * rounds as f64;
        println!(
            "threads={threads} wal={wal}: {:.2} M samples/s ({:.2} M/s per thread), cpu/wall={:.2}",
            n / wall / 1e6,
            n / wall / 1e6 / threads as f64,
            cpu / wall
        );
        let _ = std::fs::remove_dir_all(&td);
    }
}
