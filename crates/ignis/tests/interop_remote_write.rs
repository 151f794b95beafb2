//! ignis remote-writes into Prometheus 2.42 (its receiver flag) and VictoriaMetrics 1.79: every sample arrives
//! exactly once, including across a one-minute receiver outage.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

fn now_s() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Raw sample timestamps (ms) of a selector up to `at` (seconds), through the Prometheus API of `base`.
fn raw_timestamps(base: &str, selector: &str, at: f64) -> BTreeSet<i64> {
    let q = format!("{selector}[10m]");
    let (s, v) = get_json(&format!("{base}/api/v1/query?query={}&time={at}", urlencode(&q)));
    assert_eq!(s, 200, "{v}");
    let mut out = BTreeSet::new();
    for series in v["data"]["result"].as_array().unwrap() {
        for p in series["values"].as_array().unwrap() {
            out.insert((p[0].as_f64().unwrap() * 1000.0).round() as i64);
        }
    }
    out
}

fn ignis_config(port: u16, url: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  external_labels:\n    source: ignis\nscrape_configs:\n  - job_name: ignis-self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\nremote_write:\n  - url: {url}\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n"
    )
}

#[test]
fn ignis_remote_writes_into_prometheus_across_an_outage() {
    if !have_peer("prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ip, pp) = (free_port(), free_port());
    let pcfg = write_file(dir.path(), "prom.yml", "global:\n  scrape_interval: 1m\n");
    let mut prom = start_prometheus(pp, dir.path(), &pcfg, &["--web.enable-remote-write-receiver"]);
    let icfg = write_file(dir.path(), "ignis.yml", &ignis_config(ip, &format!("http://127.0.0.1:{pp}/api/v1/write")));
    let _ignis = start_server(ip, dir.path(), &icfg, &[]);
    let pbase = format!("http://127.0.0.1:{pp}");
    let ibase = format!("http://127.0.0.1:{ip}");
    let sel = "up{job=\"ignis-self\",source=\"ignis\"}";
    wait_until(T, "first remote-written samples in Prometheus", || !raw_timestamps(&pbase, sel, now_s()).is_empty());

    // Receiver down for a minute (the case), then back: the backlog arrives, each sample once. ignis
    // keeps scraping every second meanwhile, so ~60 samples wait in its WAL (at least 40 asked: a loaded CI box
    // delays scrapes).
    let before = raw_timestamps(&pbase, sel, now_s()).len();
    prom.terminate(Duration::from_secs(20));
    let down = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(60));
    let _prom = start_prometheus(pp, dir.path(), &pcfg, &["--web.enable-remote-write-receiver"]);
    let outage = down.elapsed();
    let cut = now_s() - 1.0;
    let want = raw_timestamps(&ibase, "up{job=\"ignis-self\"}", cut);
    assert!(want.len() >= before + 40, "ignis has {} samples, Prometheus had {before} before the outage", want.len());
    let t = std::time::Instant::now();
    wait_until(T, "backlog delivered", || raw_timestamps(&pbase, sel, cut).len() >= want.len());
    assert_eq!(raw_timestamps(&pbase, sel, cut), want, "exactly the samples ignis has");
    println!(
        "FIGURE receiver outage of {outage:?}: {} samples in Prometheus after it came back ({} before), backlog visible {:?} after its restart",
        want.len(),
        before,
        t.elapsed()
    );
}

#[test]
fn ignis_remote_writes_into_victoria_metrics() {
    if !have_peer("victoria-metrics") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ip, vp) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("vm.log")).unwrap();
    let child = std::process::Command::new("victoria-metrics")
        .arg(format!("-httpListenAddr=127.0.0.1:{vp}"))
        .arg(format!("-storageDataPath={}", dir.path().join("vm").display()))
        .arg("-search.latencyOffset=0s")
        .arg("-search.disableCache")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start victoria-metrics");
    let _vm = Proc { child, name: "victoria-metrics".into() };
    wait_for(&format!("http://127.0.0.1:{vp}/health"), Duration::from_secs(30));
    let icfg = write_file(dir.path(), "ignis.yml", &ignis_config(ip, &format!("http://127.0.0.1:{vp}/api/v1/write")));
    let _ignis = start_server(ip, dir.path(), &icfg, &[]);
    let ibase = format!("http://127.0.0.1:{ip}");
    std::thread::sleep(Duration::from_secs(6));
    let cut = now_s() - 1.0;
    let want = raw_timestamps(&ibase, "up{job=\"ignis-self\"}", cut);
    assert!(want.len() >= 3);
    let export = || -> BTreeSet<i64> {
        let url = format!(
            "http://127.0.0.1:{vp}/api/v1/export?match[]={}&end={cut}",
            urlencode("up{job=\"ignis-self\",source=\"ignis\"}")
        );
        let body = ureq::get(&url).call().map(|r| r.into_string().unwrap_or_default()).unwrap_or_default();
        let mut out = BTreeSet::new();
        for line in body.lines().filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            for t in v["timestamps"].as_array().unwrap() {
                let t = t.as_i64().unwrap();
                if (t as f64) <= cut * 1000.0 {
                    out.insert(t);
                }
            }
        }
        out
    };
    // VictoriaMetrics makes new data searchable after a short delay; poll.
    wait_until(T, "samples in VictoriaMetrics", || export().len() >= want.len());
    assert_eq!(export(), want);
}
