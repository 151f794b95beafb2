//! Parse + relabel + append of a 10,000-series exposition through one target's append path (no HTTP).
//! The appender only counts, so the figure is the scrape side's own cost; the target is ≥ 1.5M samples/s.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use model::{AppendError, Appender, Labels, SeriesRef, StorageError};
use scrape::bench_support::BenchTarget;
use scrape::Format;

struct CountingAppender {
    n: u64,
}

impl Appender for CountingAppender {
    fn append(&mut self, hint: SeriesRef, _l: &Labels, _t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        self.n += 1;
        std::hint::black_box(v);
        Ok(if hint == 0 { self.n } else { hint })
    }
    fn commit(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn rollback(&mut self) {}
}

/// 10,000 series: 100 metric families × 100 label combinations, node_exporter-like shapes.
fn exposition(om: bool) -> String {
    let mut s = String::new();
    for m in 0..100 {
        s.push_str(&format!("# HELP bench_metric_{m}_total A benchmark counter number {m}.\n# TYPE bench_metric_{m}_total counter\n"));
        for i in 0..100 {
            s.push_str(&format!(
                "bench_metric_{m}_total{{device=\"sd{i}\",mode=\"user\",cpu=\"{}\"}} {}.{}\n",
                i % 16,
                m * 1000 + i,
                i % 7
            ));
        }
    }
    if om {
        s.push_str("# EOF\n");
    }
    s
}

fn bench(c: &mut Criterion) {
    let cfg = config::Config::from_yaml_str(
        "scrape_configs:\n- job_name: node\n  metric_relabel_configs:\n  - source_labels: [__name__]\n    regex: go_gc_.*\n    action: drop\n  - source_labels: [device]\n    regex: 'sd(.*)'\n    target_label: disk\n",
        std::path::Path::new("/"),
    )
    .unwrap();
    let sc = &cfg.scrape_configs[0];
    let mut g = c.benchmark_group("scrape_10k_series");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(20);
    for (name, om) in [("prom_text", false), ("openmetrics", true)] {
        let body = exposition(om);
        let fmt = if om { Format::OpenMetrics } else { Format::PromText };
        // Steady state: every series is in the scrape cache (the normal case from the second scrape on).
        let t = BenchTarget::new(sc, "host:9100").unwrap();
        let mut ts = 1_000;
        let mut app = CountingAppender { n: 0 };
        t.append(&mut app, body.as_bytes(), fmt, ts).unwrap();
        g.bench_function(format!("{name}/cached"), |b| {
            b.iter(|| {
                ts += 1_000;
                let r = t.append(&mut app, body.as_bytes(), fmt, ts).unwrap();
                assert_eq!(r.1, 10_000);
            })
        });
        // First scrape of a target: every series is parsed, labelled and relabeled.
        // The fresh target is made, and the filled one dropped, outside the timed part.
        g.bench_function(format!("{name}/uncached"), |b| {
            b.iter_batched(
                || (BenchTarget::new(sc, "host:9100").unwrap(), CountingAppender { n: 0 }),
                |(t, mut app)| {
                    let r = t.append(&mut app, body.as_bytes(), fmt, 1_000).unwrap();
                    assert_eq!(r.2, 10_000);
                    t
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
