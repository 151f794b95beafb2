//! Append throughput of the head for existing series (the scrape steady state): batches of 1000 series, one
//! sample each, with cached refs; with and without the WAL. `head_append_threads` measures scaling: 1 or 2
//! threads, each with its own appender over its own 10k series (disjoint, like scrape loops), in batches
//! of 1000 samples.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use model::storage::Appender;
use model::Labels;
use std::sync::Arc;
use tsdb::{wal::WalWriter, Head, Metrics};

fn labels(n: usize) -> Vec<Labels> {
    (0..n)
        .map(|i| {
            Labels::from_pairs(&[
                ("__name__".to_string(), format!("metric_{}", i % 50)),
                ("instance".to_string(), format!("10.0.{}.{}:9100", i / 250, i % 250)),
                ("job".to_string(), "node".to_string()),
                ("le".to_string(), format!("{}", i % 10)),
            ])
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_append");
    const N: usize = 1000;
    g.throughput(Throughput::Elements(N as u64));
    for with_wal in [false, true] {
        let td = tempfile::tempdir().unwrap();
        let wal = with_wal.then(|| WalWriter::create(&td.path().join("wal"), 0, 128 << 20).unwrap());
        let head = Head::new(7_200_000, wal, Arc::new(Metrics::default()));
        let ls = labels(N);
        let mut app = head.appender();
        let mut refs: Vec<u64> = ls.iter().map(|l| app.append(0, l, 0, 0.0).unwrap()).collect();
        app.commit().unwrap();
        let mut t = 0i64;
        g.bench_function(BenchmarkId::new("existing_series_batch_1000", if with_wal { "wal" } else { "no_wal" }), |b| {
            b.iter(|| {
                t += 15_000;
                for (i, l) in ls.iter().enumerate() {
                    refs[i] = app.append(refs[i], l, t, (t / 15_000 + i as i64) as f64).unwrap();
                }
                app.commit().unwrap();
            })
        });
    }
    g.finish();
}

fn bench_threads(c: &mut Criterion) {
    const SERIES: usize = 10_000;
    const BATCH: usize = 1000;
    let mut g = c.benchmark_group("head_append_threads");
    for with_wal in [false, true] {
        for threads in [1usize, 2] {
            let td = tempfile::tempdir().unwrap();
            let wal = with_wal.then(|| WalWriter::create(&td.path().join("wal"), 0, 128 << 20).unwrap());
            let head = Head::new(7_200_000, wal, Arc::new(Metrics::default()));
            // Per thread: its labels and cached refs (created once, outside the measurement).
            let mut per_thread: Vec<(Vec<Labels>, Vec<u64>)> = (0..threads)
                .map(|th| {
                    let ls: Vec<Labels> = labels(SERIES)
                        .into_iter()
                        .map(|l| {
                            let mut b = l.builder();
                            b.set("thread", &th.to_string());
                            b.build()
                        })
                        .collect();
                    let mut app = head.appender();
                    let refs = ls.iter().map(|l| app.append(0, l, 0, 0.0).unwrap()).collect();
                    app.commit().unwrap();
                    (ls, refs)
                })
                .collect();
            let mut t = 0i64;
            g.throughput(Throughput::Elements((threads * SERIES) as u64));
            let id = BenchmarkId::new(if with_wal { "wal" } else { "no_wal" }, format!("{threads}_threads"));
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let start = std::time::Instant::now();
                    let t0 = t;
                    std::thread::scope(|sc| {
                        for (ls, refs) in per_thread.iter_mut() {
                            let head = head.clone();
                            sc.spawn(move || {
                                let mut app = head.appender();
                                for k in 0..iters as i64 {
                                    let ts = t0 + (k + 1) * 15_000;
                                    for (i, l) in ls.iter().enumerate() {
                                        refs[i] = app.append(refs[i], l, ts, (ts / 15_000 + i as i64) as f64).unwrap();
                                        if (i + 1) % BATCH == 0 {
                                            app.commit().unwrap();
                                        }
                                    }
                                    app.commit().unwrap();
                                }
                            });
                        }
                    });
                    t = t0 + iters as i64 * 15_000;
                    start.elapsed()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench, bench_threads);
criterion_main!(benches);
