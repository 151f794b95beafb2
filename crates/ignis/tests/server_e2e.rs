//! End to end: `ignis server` scrapes itself, stores through the TSDB, answers PromQL through the HTTP API,
//! survives kill -9 with its data, and is readable by Prometheus's own client (`promtool query`).

mod common;
use common::*;
use std::time::Duration;

fn self_scrape_config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let p = dir.join("prometheus.yml");
    std::fs::write(
        &p,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    p
}

/// A server in a new data dir scraping itself, once its `up` is 1: (data dir, port, config path, process).
fn self_scraping_server() -> (tempfile::TempDir, u16, std::path::PathBuf, Proc) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = self_scrape_config(dir.path(), port);
    let server = start_server(port, dir.path(), &cfg, &[]);
    wait_until(Duration::from_secs(30), "up{job=self} == 1", || up_of_self(port).as_deref() == Some("1"));
    (dir, port, cfg, server)
}

fn up_of_self(port: u16) -> Option<String> {
    let (status, v) = get_json(&format!("http://127.0.0.1:{port}/api/v1/query?query=up%7Bjob%3D%22self%22%7D"));
    assert_eq!(status, 200, "{v}");
    let r = &v["data"]["result"];
    r.get(0).map(|s| s["value"][1].as_str().unwrap_or("").to_string())
}

#[test]
fn scrape_store_query_restart() {
    let (dir, port, cfg, mut server) = self_scraping_server();
    let base = format!("http://127.0.0.1:{port}");

    // Instant query result shape.
    let (s, v) = post_form(&format!("{base}/api/v1/query"), &[("query", "up"), ("time", "")]);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    let m = &v["data"]["result"][0]["metric"];
    assert_eq!(m["__name__"], "up");
    assert_eq!(m["job"], "self");
    assert_eq!(m["instance"], format!("127.0.0.1:{port}"));

    // Query stats on request.
    let (s, v) = get_json(&format!("{base}/api/v1/query?query=up&stats=all"));
    assert_eq!(s, 200);
    assert!(v["data"]["stats"]["samples"]["totalQueryableSamples"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["data"]["stats"]["timings"]["execTotalTime"].is_number(), "{v}");

    // Grafana's health check.
    let (s, v) = post_form(&format!("{base}/api/v1/query"), &[("query", "1+1")]);
    assert_eq!(s, 200);
    assert_eq!(v["data"]["resultType"], "scalar");
    assert_eq!(v["data"]["result"][1], "2");

    // Range query over the last seconds.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let (s, v) = get_json(&format!(
        "{base}/api/v1/query_range?query=scrape_samples_scraped&start={}&end={}&step=1",
        now - 30.0,
        now
    ));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    assert!(!v["data"]["result"][0]["values"].as_array().unwrap().is_empty());

    // Metadata APIs.
    let (_, v) = get_json(&format!("{base}/api/v1/label/__name__/values"));
    let names: Vec<&str> = v["data"].as_array().unwrap().iter().filter_map(|x| x.as_str()).collect();
    assert!(names.contains(&"up") && names.contains(&"scrape_duration_seconds"), "{names:?}");
    let (_, v) = get_json(&format!("{base}/api/v1/labels"));
    assert!(v["data"].as_array().unwrap().iter().any(|x| x == "instance"));
    let (s, v) = get_json(&format!("{base}/api/v1/series?match[]=up"));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"][0]["job"], "self");

    // Errors as Prometheus.
    let (s, v) = get_json(&format!("{base}/api/v1/query?query=sum(up"));
    assert_eq!(s, 400);
    assert_eq!(v["errorType"], "bad_data");
    assert!(v["error"].as_str().unwrap().starts_with("invalid parameter \"query\""), "{v}");
    let (s, v) = get_json(&format!("{base}/api/v1/query_range?query=up&start=10&end=0&step=1"));
    assert_eq!(s, 400, "{v}");
    let (s, _) = get_json(&format!("{base}/api/v1/series"));
    assert_eq!(s, 400);

    // Buildinfo for Grafana.
    let (s, v) = get_json(&format!("{base}/api/v1/status/buildinfo"));
    assert_eq!(s, 200);
    assert!(v["data"]["version"].as_str().unwrap().starts_with("2."));

    // Count samples of `up` so far, kill -9, restart: all of them are still there (WAL replay).
    let count_q = format!("{base}/api/v1/query?query=count_over_time(up%7Bjob%3D%22self%22%7D%5B1h%5D)");
    let (_, v) = get_json(&count_q);
    let before: f64 = v["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(before >= 1.0);
    server.kill9();
    let _server = start_server(port, dir.path(), &cfg, &[]);
    let (_, v) = get_json(&count_q);
    let after: f64 = v["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(after >= before, "samples lost across kill -9: before {before}, after {after}");
}

/// A clean shutdown writes no stale markers (Prometheus skips end-of-run markers once the server is stopping):
/// after a restart that scrapes nothing, the last `up` sample still answers an instant query within the
/// lookback delta, as it does in Prometheus.
#[test]
fn graceful_restart_keeps_last_samples_current() {
    let (dir, port, _, mut server) = self_scraping_server();
    assert!(server.terminate(Duration::from_secs(30)), "no clean exit on SIGTERM");
    let quiet = write_file(dir.path(), "quiet.yml", "global:\n  scrape_interval: 1s\n");
    let _server = start_server(port, dir.path(), &quiet, &[]);
    assert_eq!(up_of_self(port).as_deref(), Some("1"), "the series went stale across a clean restart");
}

#[test]
fn promtool_queries_ignis() {
    if !have_peer("promtool") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = self_scrape_config(dir.path(), port);
    let _server = start_server(port, dir.path(), &cfg, &[]);
    wait_until(Duration::from_secs(30), "first scrape", || up_of_self(port).is_some());
    let url = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("promtool").args(args).output().expect("run promtool");
        assert!(out.status.success(), "promtool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let inst = run(&["query", "instant", &url, "up"]);
    assert!(inst.contains("up{instance=") && inst.contains("job=\"self\""), "{inst}");
    let labels = run(&["query", "labels", &url, "job"]);
    assert!(labels.contains("self"), "{labels}");
    let series = run(&["query", "series", &url, "--match=up"]);
    assert!(series.contains("job=\"self\""), "{series}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let range = run(&[
        "query",
        "range",
        &url,
        "up",
        &format!("--start={}", now - 20),
        &format!("--end={}", now + 1),
        "--step=1s",
    ]);
    assert!(range.contains("job=\"self\""), "{range}");
}
