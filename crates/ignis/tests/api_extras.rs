//! The query log (`global.query_log_file`, reopened on reload) and the engine's query duration summary, through
//! the real server binary.

mod common;
use common::*;
use std::time::Duration;

fn log_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("query log line is not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn query_log_follows_config_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("queries.log");
    let second = dir.path().join("queries-2.log");
    let cfg_text = |p: &std::path::Path| format!("global:\n  scrape_interval: 1m\n  query_log_file: {}\n", p.display());
    let cfg = write_file(dir.path(), "p.yml", &cfg_text(&first));
    let port = free_port();
    let _s = start_server(port, dir.path(), &cfg, &["--web.enable-lifecycle"]);
    let base = format!("http://127.0.0.1:{port}");

    let (status, _) = get_json(&format!("{base}/api/v1/query?query=1%2B1&time=1700000000.5"));
    assert_eq!(status, 200);
    let (status, _) = post_form(
        &format!("{base}/api/v1/query_range"),
        &[("query", "vector(3)"), ("start", "1700000000"), ("end", "1700000600"), ("step", "60")],
    );
    assert_eq!(status, 200);
    // A parse error is refused before execution: not logged, as in Prometheus.
    let (status, _) = get_json(&format!("{base}/api/v1/query?query=sum("));
    assert_eq!(status, 400);

    let lines = log_lines(&first);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (a, b) = (&lines[0], &lines[1]);
    assert_eq!(a["params"]["query"], "1+1");
    assert_eq!(a["params"]["start"], "2023-11-14T22:13:20.500Z");
    assert_eq!(a["params"]["end"], "2023-11-14T22:13:20.500Z");
    assert_eq!(a["params"]["step"], 0);
    assert_eq!(a["httpRequest"]["method"], "GET");
    assert_eq!(a["httpRequest"]["path"], "/api/v1/query");
    assert!(a["stats"]["timings"]["execTotalTime"].is_number(), "{a}");
    assert!(a["ts"].as_str().is_some_and(|t| t.ends_with('Z')), "{a}");
    assert_eq!(b["params"]["query"], "vector(3)");
    assert_eq!(b["params"]["step"], 60);
    assert_eq!(b["httpRequest"]["method"], "POST");
    assert_eq!(b["httpRequest"]["path"], "/api/v1/query_range");

    let metrics = ureq::get(&format!("{base}/metrics")).call().unwrap().into_string().unwrap();
    assert!(metrics.contains("\nprometheus_engine_query_log_enabled 1\n"), "{metrics}");

    // Reload with another file: later queries go there, the first file is closed and left as it is.
    std::fs::write(&cfg, cfg_text(&second)).unwrap();
    let r = ureq::post(&format!("{base}/-/reload")).call().unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = get_json(&format!("{base}/api/v1/query?query=vector(7)"));
    assert_eq!(status, 200);
    assert_eq!(log_lines(&first).len(), 2);
    let l2 = log_lines(&second);
    assert_eq!(l2.len(), 1);
    assert_eq!(l2[0]["params"]["query"], "vector(7)");

    // Without query_log_file nothing is logged and the gauge says so.
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\n").unwrap();
    assert_eq!(ureq::post(&format!("{base}/-/reload")).call().unwrap().status(), 200);
    get_json(&format!("{base}/api/v1/query?query=vector(8)"));
    assert_eq!(log_lines(&second).len(), 1);
    let metrics = ureq::get(&format!("{base}/metrics")).call().unwrap().into_string().unwrap();
    assert!(metrics.contains("\nprometheus_engine_query_log_enabled 0\n"), "{metrics}");
}

#[test]
fn query_duration_summary_has_quantiles() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "p.yml", "global:\n  scrape_interval: 1m\n");
    let port = free_port();
    let _s = start_server(port, dir.path(), &cfg, &[]);
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..5 {
        get_json(&format!("{base}/api/v1/query?query=vector(1)"));
    }
    let metrics = ureq::get(&format!("{base}/metrics")).timeout(Duration::from_secs(10)).call().unwrap().into_string().unwrap();
    let value = |line_start: &str| -> f64 {
        let l = metrics.lines().find(|l| l.starts_with(line_start)).unwrap_or_else(|| panic!("no {line_start}:\n{metrics}"));
        l.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(metrics.contains("# TYPE prometheus_engine_query_duration_seconds summary"), "{metrics}");
    for slice in ["inner_eval", "prepare_time", "queue_time"] {
        for q in ["0.5", "0.9", "0.99"] {
            let v = value(&format!("prometheus_engine_query_duration_seconds{{slice=\"{slice}\",quantile=\"{q}\"}} "));
            assert!(v >= 0.0 && v < 10.0, "{slice} {q}: {v}");
        }
        assert_eq!(value(&format!("prometheus_engine_query_duration_seconds_count{{slice=\"{slice}\"}} ")), 5.0);
    }
    let p50 = value("prometheus_engine_query_duration_seconds{slice=\"inner_eval\",quantile=\"0.5\"} ");
    let p99 = value("prometheus_engine_query_duration_seconds{slice=\"inner_eval\",quantile=\"0.99\"} ");
    assert!(p50 <= p99, "{p50} {p99}");
}
