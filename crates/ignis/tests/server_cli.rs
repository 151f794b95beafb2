//! Config reload (SIGHUP and /-/reload), `ignis check config` against promtool, `ignis node-exporter`, and the
//! targets/metadata/status APIs of a running server.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

fn metric_value(base: &str, name: &str) -> Option<f64> {
    let body = ureq::get(&format!("{base}/metrics")).call().ok()?.into_string().ok()?;
    body.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))?.rsplit(' ').next()?.parse().ok()
}

#[test]
fn reload_good_and_bad_configs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = write_file(
        dir.path(),
        "p.yml",
        &format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"),
    );
    let server = start_server(port, dir.path(), &cfg, &["--web.enable-lifecycle"]);
    let jobs = || -> Vec<String> {
        let (_, v) = get_json(&format!("{base}/api/v1/targets"));
        let mut j: Vec<String> = v["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["labels"]["job"].as_str().unwrap().to_string())
            .collect();
        j.sort();
        j
    };
    assert_eq!(jobs(), vec!["a"]);
    let (_, v) = get_json(&format!("{base}/api/v1/targets"));
    let t = &v["data"]["activeTargets"][0];
    for k in ["discoveredLabels", "scrapePool", "scrapeUrl", "lastError", "lastScrape", "lastScrapeDuration", "health", "scrapeInterval", "scrapeTimeout"] {
        assert!(t.get(k).is_some(), "target lacks {k}: {t}");
    }
    assert_eq!(metric_value(&base, "prometheus_config_last_reload_successful"), Some(1.0));

    // A good new config through /-/reload.
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n  - job_name: b\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"),
    )
    .unwrap();
    let r = ureq::post(&format!("{base}/-/reload")).call().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(jobs(), vec!["a", "b"]);

    // A bad config is refused, the old one keeps running, and the metric says so.
    std::fs::write(&cfg, "scrape_configs:\n  - job_name: a\n    bogus_field: 1\n").unwrap();
    match ureq::post(&format!("{base}/-/reload")).call() {
        Err(ureq::Error::Status(500, r)) => {
            let body = r.into_string().unwrap();
            assert!(body.contains("bogus_field"), "{body}");
        }
        other => panic!("bad config accepted: {other:?}"),
    }
    assert_eq!(jobs(), vec!["a", "b"]);
    assert_eq!(metric_value(&base, "prometheus_config_last_reload_successful"), Some(0.0));

    // SIGHUP reloads too.
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: c\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"),
    )
    .unwrap();
    Command::new("kill").arg("-HUP").arg(server.child.id().to_string()).status().unwrap();
    wait_until(Duration::from_secs(10), "SIGHUP reload", || jobs() == vec!["c"]);
    assert_eq!(metric_value(&base, "prometheus_config_last_reload_successful"), Some(1.0));

    // Status endpoints.
    let (s, v) = get_json(&format!("{base}/api/v1/status/config"));
    assert_eq!(s, 200);
    assert!(v["data"]["yaml"].as_str().unwrap().contains("job_name: c"), "{v}");
    let (_, v) = get_json(&format!("{base}/api/v1/status/flags"));
    assert_eq!(v["data"]["web.enable-lifecycle"], "true");
    let (_, v) = get_json(&format!("{base}/api/v1/status/runtimeinfo"));
    assert_eq!(v["data"]["reloadConfigSuccess"], true);
    wait_until(Duration::from_secs(10), "a scrape of job c", || !query_vector(&base, "up{job=\"c\"}").is_empty());
    let (_, v) = get_json(&format!("{base}/api/v1/status/tsdb"));
    assert!(v["data"]["headStats"]["numSeries"].as_u64().unwrap() > 0, "{v}");
    let (_, v) = get_json(&format!("{base}/api/v1/metadata?metric=up"));
    let _ = v; // `up` is synthetic and has no metadata; the call must simply succeed.
    let (_, v) = get_json(&format!("{base}/api/v1/metadata"));
    assert!(v["data"]["prometheus_tsdb_head_series"][0]["type"] == "gauge", "{v}");
}

#[test]
fn lifecycle_disabled_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_file(dir.path(), "p.yml", "global:\n  scrape_interval: 1m\n");
    let _s = start_server(port, dir.path(), &cfg, &[]);
    match ureq::post(&format!("http://127.0.0.1:{port}/-/reload")).call() {
        Err(ureq::Error::Status(403, _)) => {}
        other => panic!("expected 403, got {other:?}"),
    }
    let r = ureq::get(&format!("http://127.0.0.1:{port}/-/healthy")).call().unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn check_config_like_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_file(
        dir.path(),
        "good.yml",
        "global:\n  scrape_interval: 30s\n  evaluation_interval: 30s\nrule_files:\n  - \"recording_rules.yml\"\nscrape_configs:\n  - job_name: 'self'\n    static_configs:\n      - targets: ['localhost:9090']\n",
    );
    write_file(dir.path(), "recording_rules.yml", "groups: []\n");
    let bad = write_file(dir.path(), "bad.yml", "scrape_configs:\n  - job_name: x\n    scrape_intervall: 5s\n");
    let ours = |f: &std::path::Path| Command::new(ignis_bin()).args(["check", "config"]).arg(f).output().unwrap();
    let g = ours(&good);
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    assert!(String::from_utf8_lossy(&g.stdout).contains("SUCCESS"));
    let b = ours(&bad);
    assert_eq!(b.status.code(), Some(1));
    let err = String::from_utf8_lossy(&b.stderr).to_string() + &String::from_utf8_lossy(&b.stdout);
    assert!(err.contains("scrape_intervall") && err.contains("line 3"), "{err}");
    if have_peer("promtool") {
        let p = |f: &std::path::Path| Command::new("promtool").args(["check", "config"]).arg(f).output().unwrap();
        assert_eq!(p(&good).status.code(), g.status.code());
        assert_eq!(p(&bad).status.code(), b.status.code());
    }
}

#[test]
fn node_exporter_subcommand_serves_metrics() {
    let port = free_port();
    let child = Command::new(ignis_bin())
        .args(["node-exporter", &format!("--web.listen-address=127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _p = Proc { child, name: "node-exporter".into() };
    wait_for(&format!("http://127.0.0.1:{port}/metrics"), Duration::from_secs(20));
    let body = ureq::get(&format!("http://127.0.0.1:{port}/metrics")).call().unwrap().into_string().unwrap();
    assert!(body.contains("# TYPE node_cpu_seconds_total counter"), "no cpu family");
    assert!(body.contains("node_scrape_collector_success{collector=\"cpu\"} 1"));
}
