//! Label names/values with matchers on the head (the /api/v1/label/<name>/values?match[]=… and
//! /api/v1/labels?match[]=… paths): 100k series with head_mem's 10-label sets, one sample each.

use criterion::{criterion_group, criterion_main, Criterion};
use model::storage::{Appender, Querier};
use model::{Labels, Matcher};
use std::sync::Arc;
use tsdb::{Head, Metrics};

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

fn bench(c: &mut Criterion) {
    const N: usize = 100_000;
    let head = Head::new(7_200_000, None, Arc::new(Metrics::default()));
    let mut app = head.appender();
    for i in 0..N {
        app.append(0, &labels(i), 1000, i as f64).unwrap();
        if i % 1000 == 999 {
            app.commit().unwrap();
        }
    }
    app.commit().unwrap();
    let q = head.querier(0, 10_000);
    let mut g = c.benchmark_group("head_labels_100k");
    // 20k matching series, 20k distinct values.
    let cluster = [Matcher::equal("job", "node"), Matcher::equal("cluster", "cluster-1")];
    g.bench_function("label_values_instance_20k_series", |b| {
        b.iter(|| q.label_values("instance", &cluster).unwrap().len())
    });
    // 20k matching series, 4 distinct values (the common Grafana variable query).
    g.bench_function("label_values_mode_20k_series", |b| b.iter(|| q.label_values("mode", &cluster).unwrap().len()));
    // 500 matching series.
    let name = [Matcher::equal("__name__", "node_metric_7")];
    g.bench_function("label_values_cpu_500_series", |b| b.iter(|| q.label_values("cpu", &name).unwrap().len()));
    g.bench_function("label_names_20k_series", |b| b.iter(|| q.label_names(&cluster).unwrap().len()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
