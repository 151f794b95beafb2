//! Remote-write receive cost in process, old path (prost decode into owned strings, label lookup per series)
//! against the in-place path with the series-ref cache, on a real TSDB (WAL on), the same stream as
//! bench/rwflood: N series with ~9 labels, 1,000 samples per request, one warm-up round that creates the series,
//! then timed rounds. Both paths run in one process, alternating, each on its own fresh database.
//!
//!     cargo run --release -p remote --example receive_bench -- [series] [rounds]

use model::storage::Storage;
use prost::Message;
use remote::prompb;
use std::time::Instant;

fn request(first: usize, n: usize, t: i64) -> Vec<u8> {
    let mut req = prompb::WriteRequest::default();
    for i in first..first + n {
        let labels = [
            ("__name__", format!("flood_metric_{}", i % 50)),
            ("cluster", "eu-west-1".to_string()),
            ("env", "prod".to_string()),
            ("instance", format!("10.1.{}.{}:9100", (i / 250) % 256, i % 250)),
            ("job", format!("service-{}", i % 20)),
            ("namespace", format!("team-{}", i % 8)),
            ("pod", format!("pod-{:06}", i / 50)),
            ("region", "eu".to_string()),
            ("series", i.to_string()),
        ];
        req.timeseries.push(prompb::TimeSeries {
            labels: labels.iter().map(|(n, v)| prompb::Label { name: n.to_string(), value: v.clone() }).collect(),
            samples: vec![prompb::Sample { value: (i as f64) * 1.5 + t as f64, timestamp: t }],
            ..Default::default()
        });
    }
    remote::snappy_encode(&req.encode_to_vec())
}

fn cpu_s() -> f64 {
    // utime + stime of this process: the receive work runs on this thread only.
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let series: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    const PER: usize = 1000;
    let body = |round: usize| -> Vec<Vec<u8>> {
        (0..series).step_by(PER).map(|f| request(f, PER.min(series - f), 1_000_000 + round as i64 * 15_000)).collect()
    };
    let mut results: Vec<(&str, f64, f64)> = Vec::new();
    for path in ["prost", "in-place+cache", "prost", "in-place+cache"] {
        let td = tempfile::tempdir().expect("tempdir");
        let db = tsdb::Db::open_without_background(td.path(), Default::default()).expect("open");
        let cache = remote::receive::SeriesCache::new();
        let mut buf = Vec::new();
        let mut apply = |b: &[u8]| {
            let mut app = db.appender();
            if path == "prost" {
                let req = remote::decode_write_request(b).expect("decode");
                remote::apply_write(app.as_mut(), &req).expect("apply");
            } else {
                remote::receive::apply_write_body(app.as_mut(), b, &cache, &mut buf).expect("apply");
            }
        };
        for b in body(0) {
            apply(&b); // warm-up: creates the series
        }
        let (mut wall, mut cpu) = (0.0, 0.0);
        for r in 1..=rounds {
            let bodies = body(r);
            let (t0, c0) = (Instant::now(), cpu_s());
            for b in &bodies {
                apply(b);
            }
            wall += t0.elapsed().as_secs_f64();
            cpu += cpu_s() - c0;
        }
        let n = (series * rounds) as f64;
        println!("{path:>16}: {:>9.0} samples/s wall, {:>9.0} samples per CPU-second", n / wall, n / cpu.max(1e-9));
        results.push((path, n / wall, n / cpu.max(1e-9)));
        drop(db);
    }
    let med = |p: &str| {
        let v: Vec<f64> = results.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    println!("in-place+cache / prost (wall, mean of 2): {:.2}x", med("in-place+cache") / med("prost"));
}
