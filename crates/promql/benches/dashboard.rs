//! The side-by-side harness's dashboard queries (bench/run.py `dashboard_queries`) against a local tsdb::Db
//! holding the harness's shapes, so engine changes can be measured without the 30-minute harness.
//!
//! Data (bench/loadgen/src/sim.rs shapes, simplified values): 100 targets x 32 pods x 32 series = 102,400
//! series with job/instance/namespace/pod/container (+ method/route/code, le, queue, …), 1 h at 15 s in the
//! head; the first 10 targets (10,240 series) also have the 23 h before that in a block (the harness's 24 h
//! backfill), so the 24 h range queries cross a block and the head as there. The last two entries are the
//! harness's metadata calls (series lookup, label values with `match[]`), run through the querier as the web
//! API runs them (no HTTP or JSON).
//!
//!     cargo bench -p promql --bench dashboard -- [--reps N] [--dir DIR] [name-filter…]
//!
//! `--dir` keeps the generated data between runs (the WAL is replayed on open). Prints median and min wall
//! time per query; compare numbers within one run (the machine is shared).

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use model::storage::{Queryable, SelectHints, Storage};
use model::{Labels, StorageError};
use promql::{Engine, EngineOptions, QueryOpts, Value};
use tsdb::block::{write_block, BlockMetaCompaction};
use tsdb::chunkenc::{ChunkBytes, XorAppender};
use tsdb::query::ChunkRef;
use tsdb::{Db, Options};

const TARGETS: usize = 100;
const GROUPS: usize = 32;
const DATASET_TARGETS: usize = 10;
const INTERVAL_MS: i64 = 15_000;
/// Query time: a multiple of 2 h so head chunks are cut as in a live server.
const NOW: i64 = 1_764_000_000_000 / 7_200_000 * 7_200_000 + 3_600_000;
const HEAD_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

const CODES: [&str; 12] = ["200", "201", "204", "301", "304", "400", "401", "403", "404", "429", "500", "503"];
const CODE_SHARE: [f64; 12] = [0.80, 0.05, 0.03, 0.005, 0.03, 0.02, 0.01, 0.005, 0.03, 0.005, 0.01, 0.005];
const LE: [&str; 11] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"];
const APPS: [&str; 16] = [
    "checkout", "payments", "cart", "catalog", "search", "frontend", "auth", "inventory", "shipping", "recommender",
    "orders", "billing", "notifier", "gateway", "profile", "reviews",
];
const NAMESPACES: [&str; 8] = ["prod", "prod-eu", "prod-us", "staging", "shop", "platform", "data", "edge"];
const CONTAINERS: [&str; 4] = ["server", "worker", "api", "app"];
const ROUTES: [&str; 16] = [
    "/api/v1/orders", "/api/v1/orders/{id}", "/api/v2/cart/items", "/api/v1/users/{id}", "/api/v1/search",
    "/api/v1/products/{id}", "/api/v2/payments", "/api/v1/login", "/api/v1/inventory", "/api/v1/shipments/{id}",
    "/api/v2/recommendations", "/api/v1/invoices", "/healthz", "/api/v1/reviews", "/api/v1/profile", "/graphql",
];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const GAUGES: [&str; 6] = [
    "bench_container_memory_working_set_bytes",
    "bench_container_threads",
    "bench_process_open_fds",
    "bench_work_queue_depth",
    "bench_cache_hit_ratio",
    "bench_upstream_latency_ewma_seconds",
];

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}

/// One pod: its 32 series' labels and current values.
struct Group {
    key: u64,
    labels: Vec<Labels>,
    values: [f64; 32],
    req_rate: f64,
}

fn group(t: usize, g: usize) -> Group {
    let k = mix((t as u64) << 32 | g as u64);
    let pick = |salt: u64, n: usize| (mix(k ^ salt) % n as u64) as usize;
    let pod = format!("{}-{:09x}-{:05x}", APPS[pick(1, 16)], mix(k ^ 2) & 0xf_ffff_ffff, mix(k ^ 3) & 0xfffff);
    let ns = NAMESPACES[pick(4, 8)];
    let container = CONTAINERS[pick(5, 4)];
    let route = ROUTES[pick(6, 16)];
    let method = METHODS[pick(7, 4)];
    let instance = format!("loadgen-{t}");
    let base = |name: &str, extra: &[(&str, &str)]| {
        let mut v: Vec<(String, String)> = vec![
            ("__name__".into(), name.into()),
            ("job".into(), "bench".into()),
            ("instance".into(), instance.clone()),
            ("namespace".into(), ns.into()),
            ("pod".into(), pod.clone()),
            ("container".into(), container.into()),
        ];
        v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        Labels::from_pairs(&v)
    };
    let mut labels = Vec::with_capacity(32);
    for c in CODES {
        labels.push(base("bench_http_requests_total", &[("method", method), ("route", route), ("code", c)]));
    }
    for le in LE {
        labels.push(base("bench_http_request_duration_seconds_bucket", &[("method", method), ("route", route), ("le", le)]));
    }
    labels.push(base("bench_http_request_duration_seconds_count", &[("method", method), ("route", route)]));
    labels.push(base("bench_http_request_duration_seconds_sum", &[("method", method), ("route", route)]));
    labels.push(base("bench_container_cpu_usage_seconds_total", &[]));
    for (i, n) in GAUGES.iter().enumerate() {
        let extra: &[(&str, &str)] = match i {
            3 => &[("queue", "default")],
            4 => &[("cache", "session")],
            5 => &[("upstream", "postgres")],
            _ => &[],
        };
        labels.push(base(n, extra));
    }
    let mut values = [0.0; 32];
    values[26] = ((1u64 << 24) + (mix(k ^ 8) % (1 << 28))) as f64 / 4096.0 * 4096.0;
    values[27] = (8 + mix(k ^ 9) % 248) as f64;
    values[28] = (16 + mix(k ^ 10) % 2000) as f64;
    values[30] = 0.8;
    values[31] = 0.05;
    Group { key: k, labels, values, req_rate: 10f64.powf(unit(k ^ 11) * 3.3 - 1.0) }
}

impl Group {
    /// Advances one tick, like the load generator: integer counters, cumulative buckets, gauge random walks.
    fn step(&mut self, tick: u64) {
        let tk = mix(self.key ^ tick.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let v = &mut self.values;
        let n_req = self.req_rate * 15.0 * (0.6 + 0.8 * unit(tk ^ 1));
        for i in 0..12 {
            v[i] += (n_req * CODE_SHARE[i] * (0.8 + 0.4 * unit(tk ^ (16 + i as u64))) + unit(tk ^ (48 + i as u64))).floor();
        }
        let n_obs = (n_req + unit(tk ^ 2)).floor();
        let mut cum = 0.0;
        for j in 0..10 {
            cum += (n_obs * 0.1 * (0.5 + unit(tk ^ (80 + j as u64)))).floor();
            v[12 + j] += cum.min(n_obs);
        }
        v[22] += n_obs;
        v[23] += n_obs;
        v[24] += n_obs * 0.05 * (0.85 + 0.3 * unit(tk ^ 3));
        v[25] += 0.2 * (0.5 + unit(tk ^ 4));
        v[26] = (v[26] + 4096.0 * ((unit(tk ^ 5) - 0.5) * 128.0).round()).max(4096.0);
        if unit(tk ^ 6) < 0.15 {
            v[27] = (v[27] + if unit(tk ^ 7) < 0.5 { -1.0 } else { 1.0 }).max(1.0);
        }
        v[28] = (v[28] + ((unit(tk ^ 8) - 0.5) * 4.0).round()).max(3.0);
        v[29] = if unit(tk ^ 9) < 0.7 { 0.0 } else { (unit(tk ^ 10) * 4.0).exp().floor() };
        v[30] = ((v[30] + (unit(tk ^ 11) - 0.5) * 0.01).clamp(0.0, 1.0) * 1e4).round() / 1e4;
        v[31] = ((0.8 * v[31] + 0.2 * 0.05 * (0.5 + 1.5 * unit(tk ^ 12))) * 1e6).round() / 1e6;
    }
}

fn build(dir: &std::path::Path) -> Arc<Db> {
    let began = Instant::now();
    // The backfilled block: 23 h before the head's hour, for the first DATASET_TARGETS targets.
    let block_start = NOW - DAY_MS;
    let block_end = NOW - HEAD_MS;
    let mut groups: Vec<Group> = (0..TARGETS).flat_map(|t| (0..GROUPS).map(move |g| group(t, g))).collect();
    let mut block_series: Vec<(Labels, Vec<ChunkRef>)> = Vec::new();
    let mut apps: Vec<XorAppender> = Vec::new();
    for gr in groups.iter_mut().take(DATASET_TARGETS * GROUPS) {
        let mut chunks: Vec<Vec<ChunkRef>> = vec![Vec::new(); 32];
        apps.clear();
        apps.resize_with(32, XorAppender::new);
        let mut mint = [block_start; 32];
        let mut t = block_start;
        while t < block_end {
            gr.step((t / INTERVAL_MS) as u64);
            for s in 0..32 {
                if apps[s].num_samples() == 120 {
                    let a = std::mem::take(&mut apps[s]);
                    let last = a.last().map_or(t, |l| l.0);
                    chunks[s].push(ChunkRef { mint: mint[s], maxt: last, data: ChunkBytes::Heap(Arc::from(a.into_bytes())) });
                    mint[s] = t;
                }
                apps[s].append(t, gr.values[s]);
            }
            t += INTERVAL_MS;
        }
        for (s, a) in apps.drain(..).enumerate() {
            let last = a.last().map_or(t, |l| l.0);
            chunks[s].push(ChunkRef { mint: mint[s], maxt: last, data: ChunkBytes::Heap(Arc::from(a.into_bytes())) });
            block_series.push((gr.labels[s].clone(), std::mem::take(&mut chunks[s])));
        }
    }
    block_series.sort_by(|a, b| a.0.cmp(&b.0));
    let n_block = block_series.len();
    write_block(
        dir,
        block_start,
        block_end,
        BlockMetaCompaction { level: 1, ..Default::default() },
        None,
        block_series.into_iter().map(Ok::<_, StorageError>),
    )
    .expect("write block");
    eprintln!("block: {n_block} series in {:.1?}", began.elapsed());

    let db = Db::open_without_background(dir, Options { retention_ms: 0, ..Options::default() }).expect("open db");
    let mut app = db.appender();
    let mut refs = vec![0u64; groups.len() * 32];
    let mut t = block_end;
    let mut n = 0u64;
    while t <= NOW {
        for (gi, gr) in groups.iter_mut().enumerate() {
            gr.step((t / INTERVAL_MS) as u64);
            for s in 0..32 {
                let r = &mut refs[gi * 32 + s];
                *r = app.append(*r, &gr.labels[s], t, gr.values[s]).expect("append");
                n += 1;
            }
            if gi % 64 == 63 {
                app.commit().expect("commit");
            }
        }
        app.commit().expect("commit");
        t += INTERVAL_MS;
    }
    std::fs::write(dir.join("qperf-complete"), b"").expect("marker");
    eprintln!("head: {} series, {n} samples; total build {:.1?}", refs.len(), began.elapsed());
    db
}

/// CPU time of the whole process (all threads) in ms: on a shared, loaded machine wall time mostly measures
/// the neighbours.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// How a bench entry runs: a PromQL instant or 24 h range query, or one of the harness's metadata calls
/// (`/api/v1/series`, `/api/v1/label/<name>/values` with `match[]`) over the last hour, as the web API runs them.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Instant,
    Range,
    Series,
    LabelValues(&'static str),
}

fn queries() -> Vec<(&'static str, String, Kind)> {
    let w = "[60s]";
    vec![
        ("rate_sum_by", format!("sum by (namespace) (rate(bench_http_requests_total{w}))"), Kind::Instant),
        (
            "error_ratio",
            format!(
                "sum by (route) (rate(bench_http_requests_total{{code=~\"5..\"}}{w})) / sum by (route) (rate(bench_http_requests_total{w}))"
            ),
            Kind::Instant,
        ),
        (
            "histogram_quantile",
            format!("histogram_quantile(0.99, sum by (le, namespace) (rate(bench_http_request_duration_seconds_bucket{w})))"),
            Kind::Instant,
        ),
        ("topk_count_by_name", "topk(10, count by (__name__) ({job=\"bench\"}))".into(), Kind::Instant),
        (
            "regex_matchers",
            format!("sum by (code) (rate(bench_http_requests_total{{route=~\"/api/v1/orders.*\",code=~\"4..|5..\"}}{w}))"),
            Kind::Instant,
        ),
        ("topk_gauge", "topk(5, max by (pod) (bench_container_memory_working_set_bytes))".into(), Kind::Instant),
        ("range24h_rate_sum_by", format!("sum by (namespace) (rate(bench_http_requests_total{w}))"), Kind::Range),
        (
            "range24h_histogram_quantile",
            format!("histogram_quantile(0.9, sum by (le) (rate(bench_http_request_duration_seconds_bucket{w})))"),
            Kind::Range,
        ),
        (
            "range24h_regex",
            format!("sum by (namespace) (rate(bench_http_requests_total{{namespace=~\"prod.*\",code!~\"2..\"}}{w}))"),
            Kind::Range,
        ),
        ("series_lookup", "bench_container_threads{namespace=\"prod\"}".into(), Kind::Series),
        (
            "label_values_matched",
            "bench_http_requests_total{namespace=\"prod\"}".into(),
            Kind::LabelValues("route"),
        ),
    ]
}

/// `/api/v1/series?match[]=…` over the last hour: sorted, unique label sets.
fn series_lookup(q: &dyn Queryable, selector: &str) -> Result<(usize, u64), String> {
    let ms = promql::parse_matchers(selector).map_err(|e| e.to_string())?;
    let querier = q.querier(NOW - HEAD_MS, NOW).map_err(|e| e.to_string())?;
    let hints = SelectHints { start: NOW - HEAD_MS, end: NOW, func: Some("series".into()), ..Default::default() };
    let mut all: Vec<Labels> = Vec::new();
    for s in querier.select(true, Some(&hints), &ms).map_err(|e| e.to_string())? {
        all.push(s.map_err(|e| e.to_string())?.labels);
    }
    all.sort();
    all.dedup();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for l in &all {
        l.to_string().hash(&mut h);
    }
    Ok((all.len(), h.finish()))
}

/// `/api/v1/label/<label>/values?match[]=…` over the last hour.
fn label_values(q: &dyn Queryable, label: &str, selector: &str) -> Result<(usize, u64), String> {
    let ms = promql::parse_matchers(selector).map_err(|e| e.to_string())?;
    let querier = q.querier(NOW - HEAD_MS, NOW).map_err(|e| e.to_string())?;
    let v = querier.label_values(label, &ms).map_err(|e| e.to_string())?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    Ok((v.len(), h.finish()))
}

fn main() {
    let mut reps = 7usize;
    let mut dir: Option<PathBuf> = None;
    let mut filters: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().and_then(|s| s.parse().ok()).unwrap_or(reps),
            "--dir" => dir = args.next().map(PathBuf::from),
            "--bench" => {}
            f if f.starts_with("--") => {}
            f => filters.push(f.to_string()),
        }
    }
    let _tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            _tmp = tempfile::tempdir().expect("tempdir");
            _tmp.path().to_path_buf()
        }
    };
    let db = if dir.join("qperf-complete").exists() {
        let t = Instant::now();
        let db = Db::open_without_background(&dir, Options { retention_ms: 0, ..Options::default() }).expect("open");
        eprintln!("reopened {} in {:.1?}", dir.display(), t.elapsed());
        db
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        build(&dir)
    };
    let q: &dyn Queryable = &*db;
    let engine = Engine::new(EngineOptions::default());
    let opts = QueryOpts::default();
    println!(
        "{:<30} {:>10} {:>10} {:>11} {:>8} {:>17}",
        "query", "median ms", "min ms", "median cpu", "series", "result digest"
    );
    for (name, expr, kind) in queries() {
        if !filters.is_empty() && !filters.iter().any(|f| name == f) {
            continue;
        }
        // (series in the result, digest of the result: labels and value bits, to check A/B builds agree)
        let run = || -> Result<(usize, u64), String> {
            let r = match kind {
                Kind::Range => engine.range_query(q, &expr, NOW - DAY_MS, NOW, 60_000, &opts),
                Kind::Instant => engine.instant_query(q, &expr, NOW, &opts),
                Kind::Series => return series_lookup(q, &expr),
                Kind::LabelValues(label) => return label_values(q, label, &expr),
            };
            // Order-independent, values to 10 significant digits: a change in the order series are read in
            // (which changes float summation order, as in Prometheus) keeps the digest.
            let round = |v: f64| format!("{v:.9e}");
            let mut entries: Vec<(String, Vec<(i64, String)>)> = Vec::new();
            let n = match r.map_err(|e| e.to_string())?.value {
                Value::Vector(v) => {
                    entries.extend(v.iter().map(|s| (s.labels.to_string(), vec![(s.t, round(s.v))])));
                    v.len()
                }
                Value::Matrix(m) => {
                    entries.extend(
                        m.iter().map(|s| (s.labels.to_string(), s.samples.iter().map(|p| (p.t, round(p.v))).collect())),
                    );
                    m.len()
                }
                _ => 1,
            };
            entries.sort();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            entries.hash(&mut h);
            Ok((n, h.finish()))
        };
        let (series, digest) = run().unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut times = Vec::with_capacity(reps);
        let mut cpu = Vec::with_capacity(reps);
        for _ in 0..reps {
            let (t, c) = (Instant::now(), cpu_ms());
            let r = run();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            cpu.push(cpu_ms() - c);
            assert!(r.is_ok());
        }
        times.sort_by(|a, b| a.total_cmp(b));
        cpu.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{:<30} {:>10.1} {:>10.1} {:>11.1} {:>8} {:>17x}",
            name,
            times[times.len() / 2],
            times[0],
            cpu[cpu.len() / 2],
            series,
            digest
        );
    }
}
