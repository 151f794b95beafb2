//! Measures head memory per series: N series with 10 labels, 2h of samples at 15s (480 per series).
//! Usage: head_mem [series] — prints RSS growth and the head's own accounting per series.

use model::storage::Appender;
use model::Labels;
use std::sync::Arc;
use tsdb::{Head, Metrics};

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace().nth(1).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mk = |i: usize| {
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
    };
    let before = rss_bytes();
    let head = Head::new(7_200_000, None, Arc::new(Metrics::default()));
    let mut refs = vec![0u64; n];
    let mut app = head.appender();
    let start = std::time::Instant::now();
    let mut samples = 0u64;
    let mut first_done = None;
    for step in 0..480i64 {
        let t = step * 15_000;
        for (i, r) in refs.iter_mut().enumerate() {
            // Mixed shapes as in real node_exporter data: integer counters, constant gauges, and gauges
            // that change every few scrapes.
            let v = match i % 3 {
                0 => (step * (i as i64 % 7 + 1) * 1000 + (step * step) % 17) as f64,
                1 => (i % 10) as f64,
                _ => ((step / 4) % 9) as f64 * 0.25,
            };
            if *r == 0 {
                *r = app.append(0, &mk(i), t, v).unwrap();
            } else {
                app.append(*r, &Labels::empty(), t, v).unwrap();
            }
            samples += 1;
            if samples.is_multiple_of(1000) {
                app.commit().unwrap();
            }
        }
        app.commit().unwrap();
        if step == 0 {
            first_done = Some(std::time::Instant::now());
        }
    }
    let steady = first_done.map(|f| f.elapsed()).unwrap_or_default();
    let after = rss_bytes();
    let st = head.stats();
    println!("series={} samples={} chunks={} symbols={}", st.num_series, st.num_samples, st.num_chunks, head.num_symbols());
    println!("total {:.2?}; steady-state append (existing series, single thread): {:.2} M samples/s",
        start.elapsed(), (samples - n as u64) as f64 / steady.as_secs_f64() / 1e6);
    let chunk_bytes = head.chunk_bytes();
    println!("chunk data: {} bytes/series ({:.2} bytes/sample)", chunk_bytes / n, chunk_bytes as f64 / samples as f64);
    println!("RSS growth: {} bytes/series; head accounting: {} bytes/series",
        (after.saturating_sub(before)) / n as u64, head.heap_size() / n);
    for (name, bytes) in head.heap_breakdown() {
        println!("  {name:<20} {:>8.1} bytes/series", bytes as f64 / n as f64);
    }
}
