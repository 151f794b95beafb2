//! Real clients, same data: one OpenMetrics dataset is backfilled into Prometheus 2.42 (`promtool tsdb
//! create-blocks-from openmetrics`) and into ignis (`ignis tsdb create-blocks-from openmetrics`); then
//! `promtool query instant|range|series|labels -o json` runs against both servers and the answers must agree:
//! same label sets, same timestamps, float values within 1e-9 relative, and the same order where Prometheus
//! defines one (sort/sort_desc/topk/bottomk results, matrices, label lists).

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

/// Deterministic xorshift so the dataset (and any failure) is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const STEP_S: i64 = 15;
const HOURS: i64 = 5;
const JOBS: [&str; 2] = ["api", "db"];
const INSTANCES: [&str; 4] = ["10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:9100", "10.0.0.4:9100"];
const CODES: [&str; 3] = ["200", "404", "500"];
const METHODS: [&str; 2] = ["GET", "POST"];
const BUCKETS: [&str; 8] = ["0.005", "0.01", "0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
const SENSORS: [&str; 5] = ["cpu", "gpu", "mb", "nvme0", "nvme1"];

/// 2 jobs x 4 instances: 48 request counters, 80 histogram buckets + 16 _sum/_count, 40 temperature gauges,
/// 8 `up` gauges = 192 series; 5 h at 15 s = 1,200 samples each. One counter resets mid-way.
fn dataset(base: i64) -> String {
    let n = HOURS * 3600 / STEP_S;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut om = String::with_capacity(16 << 20);

    om.push_str("# HELP http_requests Requests served.\n# TYPE http_requests counter\n");
    let mut counters = vec![0u64; JOBS.len() * INSTANCES.len() * CODES.len() * METHODS.len()];
    for i in 0..n {
        let t = base + i * STEP_S;
        let mut k = 0;
        for job in JOBS {
            for inst in INSTANCES {
                for code in CODES {
                    for method in METHODS {
                        let weight = match code {
                            "200" => 40,
                            "404" => 4,
                            _ => 1,
                        };
                        counters[k] += rng.below(weight * 15);
                        // A counter reset (process restart) for one series halfway through.
                        if k == 7 && i == n / 2 {
                            counters[k] = rng.below(5);
                        }
                        om.push_str(&format!(
                            "http_requests_total{{code=\"{code}\",instance=\"{inst}\",job=\"{job}\",method=\"{method}\"}} {} {t}\n",
                            counters[k]
                        ));
                        k += 1;
                    }
                }
            }
        }
    }

    om.push_str("# HELP request_duration_seconds Request latency.\n# TYPE request_duration_seconds histogram\n");
    let per = BUCKETS.len();
    let mut buckets = vec![0u64; JOBS.len() * INSTANCES.len() * per];
    let mut sums = vec![0f64; JOBS.len() * INSTANCES.len()];
    for i in 0..n {
        let t = base + i * STEP_S;
        let mut s = 0;
        for (ji, job) in JOBS.iter().enumerate() {
            for inst in INSTANCES {
                let reqs = rng.below(50);
                for _ in 0..reqs {
                    // Latency distribution differs per job so the quantiles differ.
                    let lat = rng.unit().powi(3) * if ji == 0 { 0.8 } else { 2.0 };
                    sums[s] += lat;
                    for (b, le) in BUCKETS.iter().enumerate() {
                        let bound: f64 = if *le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
                        if lat <= bound {
                            buckets[s * per + b] += 1;
                        }
                    }
                }
                let lbl = format!("instance=\"{inst}\",job=\"{job}\"");
                for (b, le) in BUCKETS.iter().enumerate() {
                    om.push_str(&format!(
                        "request_duration_seconds_bucket{{{lbl},le=\"{le}\"}} {} {t}\n",
                        buckets[s * per + b]
                    ));
                }
                om.push_str(&format!("request_duration_seconds_sum{{{lbl}}} {} {t}\n", sums[s]));
                om.push_str(&format!("request_duration_seconds_count{{{lbl}}} {} {t}\n", buckets[s * per + per - 1]));
                s += 1;
            }
        }
    }

    om.push_str("# HELP node_temperature_celsius Temperature.\n# TYPE node_temperature_celsius gauge\n");
    let mut temps: Vec<f64> = (0..JOBS.len() * INSTANCES.len() * SENSORS.len()).map(|k| 30.0 + k as f64).collect();
    for i in 0..n {
        let t = base + i * STEP_S;
        let mut k = 0;
        for job in JOBS {
            for inst in INSTANCES {
                for sensor in SENSORS {
                    temps[k] = (temps[k] + (rng.unit() - 0.5) * 2.0).clamp(20.0, 90.0);
                    // Rounded to 1/8 degree so that `floor` and equality comparisons are stable.
                    let v = (temps[k] * 8.0).round() / 8.0;
                    om.push_str(&format!(
                        "node_temperature_celsius{{instance=\"{inst}\",job=\"{job}\",sensor=\"{sensor}\"}} {v} {t}\n"
                    ));
                    k += 1;
                }
            }
        }
    }

    om.push_str("# HELP up Target health.\n# TYPE up gauge\n");
    for i in 0..n {
        let t = base + i * STEP_S;
        for (j, job) in JOBS.iter().enumerate() {
            for (x, inst) in INSTANCES.iter().enumerate() {
                // One target is down for 20 minutes.
                let v = if j == 1 && x == 2 && (i * STEP_S) / 60 % 120 < 20 { 0 } else { 1 };
                om.push_str(&format!("up{{instance=\"{inst}\",job=\"{job}\"}} {v} {t}\n"));
            }
        }
    }
    om.push_str("# EOF\n");
    om
}

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Float equality within 1e-9 relative; NaN equals NaN, infinities equal themselves.
fn close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
            let scale = x.abs().max(y.abs());
            (x - y).abs() <= 1e-9 * scale || (x - y).abs() < 1e-12
        }
        _ => false,
    }
}

/// Compares two `[t, "v"]` points.
fn same_point(a: &Value, b: &Value) -> bool {
    a[0].as_f64() == b[0].as_f64() && close(a[1].as_str().unwrap_or("?a"), b[1].as_str().unwrap_or("?b"))
}

fn metric_key(s: &Value) -> String {
    // serde_json's Map is ordered by key, so this is a canonical rendering of the label set.
    s["metric"].to_string()
}

/// How two answers must agree.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Same series in any order (Prometheus does not define the order of instant vectors).
    Unordered,
    /// Same series in the same order.
    Ordered,
    /// topk/bottomk: as Ordered, except that series tied at the selection boundary may be swapped. Prometheus
    /// 2.42 evicts with heap.Pop+Push, 2.53 (which ignis follows) replaces heap[0] and calls heap.Fix, so the
    /// two versions legitimately keep different members of a tie. Accepted when at every step both answers
    /// hold the same multiset of values (a swap between equal values), and reported.
    TiesMaySwap,
}

/// Compares two promtool JSON outputs of a query.
fn compare(what: &str, ours: &str, theirs: &str, mode: Mode) -> Result<(), String> {
    match compare_exact(what, ours, theirs, mode == Mode::Unordered) {
        Err(e) if mode == Mode::TiesMaySwap => {
            let (a, b): (Value, Value) = (serde_json::from_str(ours).unwrap(), serde_json::from_str(theirs).unwrap());
            let steps = |v: &Value| {
                use std::collections::BTreeMap;
                let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
                for s in v.as_array().into_iter().flatten() {
                    let pts: Vec<&Value> = match s.get("value") {
                        Some(p) => vec![p],
                        None => s["values"].as_array().map(|a| a.iter().collect()).unwrap_or_default(),
                    };
                    for p in pts {
                        let t = (p[0].as_f64().unwrap_or(0.0) * 1000.0) as i64;
                        out.entry(t).or_default().push(p[1].as_str().unwrap_or("").to_string());
                    }
                }
                for v in out.values_mut() {
                    v.sort();
                }
                out
            };
            if steps(&a) == steps(&b) {
                eprintln!("accepted (tie broken differently than Prometheus 2.42, as 2.53 does): {what}");
                Ok(())
            } else {
                Err(e)
            }
        }
        r => r,
    }
}

fn compare_exact(what: &str, ours: &str, theirs: &str, unordered: bool) -> Result<(), String> {
    let a: Value = serde_json::from_str(ours).map_err(|e| format!("{what}: ignis output not JSON ({e}): {ours}"))?;
    let b: Value =
        serde_json::from_str(theirs).map_err(|e| format!("{what}: prometheus output not JSON ({e}): {theirs}"))?;
    let diff = |m: String| Err(format!("{what}: {m}\n  ignis:      {}\n  prometheus: {}", clip(ours), clip(theirs)));
    let is_point = |v: &Value| v.as_array().is_some_and(|x| x.len() == 2 && x[0].is_number() && x[1].is_string());
    if is_point(&a) || is_point(&b) {
        // Scalars and strings: `[t, "v"]`.
        return if is_point(&a) && is_point(&b) && same_point(&a, &b) { Ok(()) } else { diff("scalar differs".into()) };
    }
    match (&a, &b) {
        (Value::Array(xa), Value::Array(xb)) => {
            if xa.len() != xb.len() {
                return diff(format!("{} vs {} elements", xa.len(), xb.len()));
            }
            if xa.iter().all(|v| v.is_string()) || xa.iter().all(|v| v.is_object() && v.get("metric").is_none()) {
                // labels / series lists: Prometheus sorts them, so order must match exactly.
                if a != b {
                    return diff("lists differ".into());
                }
                return Ok(());
            }
            let mut xa: Vec<&Value> = xa.iter().collect();
            let mut xb: Vec<&Value> = xb.iter().collect();
            if unordered {
                xa.sort_by_key(|s| metric_key(s));
                xb.sort_by_key(|s| metric_key(s));
            }
            for (sa, sb) in xa.iter().zip(&xb) {
                if sa["metric"] != sb["metric"] {
                    return diff(format!("series {} vs {}", sa["metric"], sb["metric"]));
                }
                if let (Some(va), Some(vb)) = (sa.get("value"), sb.get("value")) {
                    if !same_point(va, vb) {
                        return diff(format!("{}: value {va} vs {vb}", sa["metric"]));
                    }
                } else {
                    let (Some(pa), Some(pb)) = (sa["values"].as_array(), sb["values"].as_array()) else {
                        return diff("result shapes differ".into());
                    };
                    if pa.len() != pb.len() {
                        return diff(format!(
                            "{}: {} vs {} points; {}",
                            sa["metric"],
                            pa.len(),
                            pb.len(),
                            first_step_difference(&xa, &xb)
                        ));
                    }
                    if let Some((x, y)) = pa.iter().zip(pb).find(|(x, y)| !same_point(x, y)) {
                        return diff(format!("{}: point {x} vs {y}", sa["metric"]));
                    }
                }
            }
            Ok(())
        }
        _ if a == b => Ok(()),
        _ => diff("values differ".into()),
    }
}

/// For matrices whose series hold different steps: the first timestamp at which the two answers differ, with
/// each side's samples at that step.
fn first_step_difference(a: &[&Value], b: &[&Value]) -> String {
    use std::collections::BTreeMap;
    let by_step = |m: &[&Value]| {
        let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for s in m {
            for p in s["values"].as_array().into_iter().flatten() {
                let t = (p[0].as_f64().unwrap_or(0.0) * 1000.0) as i64;
                out.entry(t).or_default().push(format!("{} {}", s["metric"], p[1]));
            }
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    };
    let (ma, mb) = (by_step(a), by_step(b));
    for (t, va) in &ma {
        if mb.get(t) != Some(va) {
            return format!("first differing step {t}: ignis {va:?} vs prometheus {:?}", mb.get(t));
        }
    }
    match mb.keys().find(|t| !ma.contains_key(t)) {
        Some(t) => format!("step {t} only in prometheus: {:?}", mb[t]),
        None => "no step differs".into(),
    }
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.len() > 600 {
        format!("{}… ({} bytes)", &s[..s.floor_char_boundary(600)], s.len())
    } else {
        s.to_string()
    }
}

const INSTANT: &[&str] = &[
    "up",
    "rate(http_requests_total[5m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum without (instance, method) (increase(http_requests_total[1h]))",
    "irate(http_requests_total{job=\"api\"}[2m])",
    "resets(http_requests_total[3h])",
    "histogram_quantile(0.9, sum by (le, job) (rate(request_duration_seconds_bucket[10m])))",
    "histogram_quantile(0.5, rate(request_duration_seconds_bucket[5m]))",
    "histogram_quantile(0.99, sum by (le) (rate(request_duration_seconds_bucket[1h])))",
    "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
    "topk(5, node_temperature_celsius)",
    "bottomk(3, sum by (instance) (rate(http_requests_total[5m])))",
    "topk(2, max by (job, sensor) (node_temperature_celsius))",
    "sort_desc(sum by (code) (rate(http_requests_total[5m])))",
    "sort(node_temperature_celsius{sensor=\"cpu\"})",
    "label_replace(node_temperature_celsius, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
    "label_replace(up, \"job\", \"x-$1\", \"job\", \"(a.*)\")",
    "label_join(up, \"both\", \"/\", \"job\", \"instance\")",
    "node_temperature_celsius offset 1h",
    "rate(http_requests_total[5m] offset 30m)",
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "avg_over_time(node_temperature_celsius[10m:30s])",
    "min_over_time(sum by (job) (node_temperature_celsius)[1h:5m] offset 10m)",
    "http_requests_total{code=~\"5..\", method!~\"P.*\"}",
    "count by (job) ({__name__=~\"http_.*|node_.*\"})",
    "node_temperature_celsius{sensor=~\"nvme.*\", instance!=\"10.0.0.1:9100\"}",
    "sum by (job) (rate(http_requests_total{code=~\"2..\"}[5m])) / sum by (job) (rate(http_requests_total[5m]))",
    "sum by (job, instance) (rate(http_requests_total[5m])) / on (job, instance) group_left up",
    "quantile(0.9, node_temperature_celsius)",
    "node_temperature_celsius > 40",
    "node_temperature_celsius > bool 40",
    "deriv(node_temperature_celsius[15m])",
    "predict_linear(node_temperature_celsius[30m], 3600)",
    "stddev by (job) (node_temperature_celsius)",
    "count_values(\"value\", floor(node_temperature_celsius / 10))",
    "scalar(sum(up))",
    "absent(nonexistent_metric{job=\"x\"})",
    "avg_over_time(up[1h]) < 1",
    "changes(up[2h])",
    "time()",
    "holt_winters(node_temperature_celsius{sensor=\"cpu\"}[30m], 0.5, 0.3)",
    "quantile_over_time(0.75, node_temperature_celsius{job=\"api\"}[1h])",
    "stddev_over_time(node_temperature_celsius{sensor=\"mb\"}[20m])",
    "timestamp(up offset -30m)",
    "node_temperature_celsius{sensor=\"gpu\"} @ start()",
    "rate(http_requests_total{code=\"404\"}[10m] @ end() offset 1h)",
    "sum(rate(http_requests_total[5m])) without (code, method)",
    "stdvar(rate(http_requests_total[5m]))",
    "0 / (up - 1)",
    "vector(1) + on() group_left sum(up)",
    "absent_over_time(up{job=\"db\"}[5m])",
    "hour(timestamp(up{instance=\"10.0.0.1:9100\"}))",
    "{__name__=~\"up|node_temperature_celsius\", sensor=~\"|cpu\"}",
    "histogram_quantile(0.95, sum by (le) (rate(request_duration_seconds_bucket{le=~\"0.1|1|\\\\+Inf\"}[5m])))",
];

const RANGE: &[&str] = &[
    "up",
    "sum by (job) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.9, sum by (le, job) (rate(request_duration_seconds_bucket[10m])))",
    "topk(3, node_temperature_celsius)",
    "label_replace(rate(http_requests_total{code=\"500\"}[5m]), \"c\", \"$1\", \"code\", \"(.)..\")",
    "node_temperature_celsius{sensor=\"gpu\"} offset 20m",
    "max_over_time(sum by (job) (rate(http_requests_total[5m]))[20m:1m])",
    "sum by (job) (rate(http_requests_total{code=~\"4..|5..\"}[5m])) / sum by (job) (rate(http_requests_total[5m]))",
    "increase(http_requests_total{job=\"api\", method=\"POST\"}[15m])",
    "scalar(sum(up))",
];

#[test]
fn promtool_answers_equal_on_same_data() {
    if !have_peer("promtool") || !have_peer("prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Data ends two hours before now, aligned to 2 h blocks, so both servers keep it under default retention
    // and neither head overlaps it.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let base = (now / 7200) * 7200 - (HOURS + 2) * 3600;
    let input = write_file(dir.path(), "data.om", &dataset(base));
    let input_s = input.to_str().unwrap();

    let prom_data = dir.path().join(format!("prom-data-{}", 0));
    let ignis_root = dir.path().join("ignis");
    std::fs::create_dir_all(&ignis_root).unwrap();
    let ignis_data = ignis_root.join("data");
    run("promtool", &["tsdb", "create-blocks-from", "openmetrics", input_s, prom_data.to_str().unwrap()]);
    run(ignis_bin(), &["tsdb", "create-blocks-from", "openmetrics", input_s, ignis_data.to_str().unwrap()]);

    // No scrape configs: the only data is the backfill.
    let cfg = write_file(dir.path(), "p.yml", "global:\n  scrape_interval: 1m\n");
    let prom_port = free_port();
    // start_prometheus puts data in prom-data-<port>; move the backfill there first.
    std::fs::rename(&prom_data, dir.path().join(format!("prom-data-{prom_port}"))).unwrap();
    let _prom = start_prometheus(prom_port, dir.path(), &cfg, &[]);
    let ignis_port = free_port();
    let _ignis = start_server(ignis_port, &ignis_root, &cfg, &[]);
    let prom = format!("http://127.0.0.1:{prom_port}");
    let ours = format!("http://127.0.0.1:{ignis_port}");

    let mut failures = Vec::new();
    let mut check = |what: String, args: Vec<String>, mode: Mode| {
        let with = |server: &str| {
            let mut a: Vec<&str> = vec!["query", "-o", "json"];
            let sub = args[0].as_str();
            a.push(sub);
            a.push(server);
            a.extend(args[1..].iter().map(|s| s.as_str()));
            run("promtool", &a)
        };
        let (x, y) = (with(&ours), with(&prom));
        if let Err(e) = compare(&what, &x, &y, mode) {
            failures.push(e);
        }
        // Guard against comparing two empty answers by accident.
        x.len()
    };

    let mode = |q: &str, range: bool| {
        if q.starts_with("topk") || q.starts_with("bottomk") {
            Mode::TiesMaySwap
        } else if range || q.starts_with("sort") {
            Mode::Ordered
        } else {
            Mode::Unordered
        }
    };
    let eval_at = base + 3 * 3600 + 7; // deliberately not on a sample timestamp
    let mut non_empty = 0;
    for q in INSTANT {
        let n = check(format!("instant {q}"), vec!["instant".into(), format!("--time={eval_at}"), q.to_string()], mode(q, false));
        non_empty += (n > 3) as usize;
    }
    for (start, end, step) in [(base + 1800, base + 4 * 3600 + 1800, "60s"), (base + 3 * 3600 + 11, base + 4 * 3600, "37s")] {
        for q in RANGE {
            check(
                format!("range[{step}] {q}"),
                vec![
                    "range".into(),
                    format!("--start={start}"),
                    format!("--end={end}"),
                    format!("--step={step}"),
                    q.to_string(),
                ],
                mode(q, true),
            );
        }
    }
    let (s, e) = (format!("--start={}", base + 3600), format!("--end={}", base + 2 * 3600));
    for m in [
        vec!["--match=http_requests_total{code=\"500\"}"],
        vec!["--match={__name__=~\"node_.*\",sensor=~\"nvme.*\"}", "--match=request_duration_seconds_count"],
        vec!["--match=up{job=\"db\"}", "--match=up"],
        vec!["--match=nonexistent"],
    ] {
        let mut args: Vec<String> = vec!["series".into()];
        args.extend(m.iter().map(|s| s.to_string()));
        check(format!("series {m:?}"), args.clone(), Mode::Ordered);
        args.push(s.clone());
        args.push(e.clone());
        check(format!("series {m:?} {s} {e}"), args, Mode::Ordered);
    }
    for name in ["__name__", "job", "le", "instance", "sensor", "nonexistent"] {
        check(format!("labels {name}"), vec!["labels".into(), name.into()], Mode::Ordered);
        check(format!("labels {name} ranged"), vec!["labels".into(), s.clone(), e.clone(), name.into()], Mode::Ordered);
    }
    check(
        "labels job matched".into(),
        vec!["labels".into(), "--match=node_temperature_celsius{sensor=\"cpu\"}".into(), "job".into()],
        Mode::Ordered,
    );
    drop(check);

    assert!(non_empty >= INSTANT.len() - 2, "most instant queries must return data: {non_empty}");
    assert!(failures.is_empty(), "{} of the comparisons differ:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn comparison_helper_catches_differences() {
    let v = |s: &str| s.to_string();
    let a = v(r#"[{"metric":{"a":"1"},"value":[10,"1.0000000001"]},{"metric":{"a":"2"},"value":[10,"NaN"]}]"#);
    let b = v(r#"[{"metric":{"a":"2"},"value":[10,"NaN"]},{"metric":{"a":"1"},"value":[10,"1"]}]"#);
    assert!(compare("x", &a, &b, Mode::Unordered).is_ok());
    assert!(compare("x", &a, &b, Mode::Ordered).is_err(), "order matters when Prometheus defines it");
    let c = v(r#"[{"metric":{"a":"1"},"value":[10,"1.001"]},{"metric":{"a":"2"},"value":[10,"NaN"]}]"#);
    assert!(compare("x", &a, &c, Mode::Unordered).is_err());
    assert!(compare("x", r#"["a","b"]"#, r#"["b","a"]"#, Mode::Ordered).is_err());
    // A tie swapped at the boundary is accepted for topk/bottomk only.
    let t1 = r#"[{"metric":{"a":"1"},"value":[10,"5"]},{"metric":{"a":"2"},"value":[10,"3"]}]"#;
    let t2 = r#"[{"metric":{"a":"1"},"value":[10,"5"]},{"metric":{"a":"3"},"value":[10,"3"]}]"#;
    let t3 = r#"[{"metric":{"a":"1"},"value":[10,"5"]},{"metric":{"a":"3"},"value":[10,"4"]}]"#;
    assert!(compare("x", t1, t2, Mode::TiesMaySwap).is_ok());
    assert!(compare("x", t1, t2, Mode::Ordered).is_err());
    assert!(compare("x", t1, t3, Mode::TiesMaySwap).is_err());
    assert!(compare("x", r#"[1,"2"]"#, r#"[1,"2.0000000000001"]"#, Mode::Ordered).is_ok());
    assert!(compare("x", r#"[1,"2"]"#, r#"[1,"3"]"#, Mode::Ordered).is_err());
    assert!(compare("x", r#"[{"metric":{"a":"1"},"values":[[1,"2"]]}]"#, r#"[{"metric":{"a":"1"},"values":[[2,"2"]]}]"#, Mode::Ordered).is_err());
}
