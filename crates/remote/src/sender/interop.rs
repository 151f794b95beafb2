//! Interop: ship samples from a `tsdb::Db` to a real Prometheus (`--web.enable-remote-write-receiver`) and to
//! VictoriaMetrics, then read them back. Skipped with a notice when a binary is absent; failing instead when
//! `IGNIS_REQUIRE_INTEROP=1`.

use super::tests::{open_db, rw_config, wait_until, write, Got};
use super::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn available(bin: &str) -> bool {
    if Path::new(bin).exists() {
        return true;
    }
    assert!(std::env::var("IGNIS_REQUIRE_INTEROP").as_deref() != Ok("1"), "{bin} is required (IGNIS_REQUIRE_INTEROP=1)");
    println!("SKIPPED: {bin} not installed");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(url: &str) -> Option<String> {
    let r = reqwest::blocking::Client::new().get(url).timeout(Duration::from_secs(5)).send().ok()?;
    r.status().is_success().then(|| r.text().ok()).flatten()
}

/// Writes known samples (timestamps in the last minutes, so any receiver accepts them), ships them and stops
/// the sender once the receiver has acknowledged everything. Returns what was written, stale markers removed
/// (range queries and exports do not return them).
fn ship(td: &Path, url: &str, name: &str) -> Got {
    let db = open_db(&td.join("ignis"), 1 << 20);
    let state = td.join("ignis");
    let m = RemoteWriteManager::with_options(state.join("wal"), state.clone(), Labels::empty(), super::tests::fast_opts());
    m.apply_config(&[rw_config(url, "    queue_config: {batch_send_deadline: 50ms, max_samples_per_send: 100}\n")]).unwrap();
    wait_until("position file", Duration::from_secs(10), || state.join("remote_write").exists());
    let now = queue::tests_now_ms() / 1000 * 1000;
    let mut want = write(&db, name, 20, now - 600_000, 10_000, 50);
    let total: u64 = want.values().map(|v| v.len() as u64).sum();
    wait_until("sent", Duration::from_secs(30), || {
        let q = &m.queue_metrics()[0];
        q.samples_pending.load(Ordering::SeqCst) == 0
            && q.samples_total.load(Ordering::SeqCst) >= total
            && q.highest_sent_timestamp_ms.load(Ordering::SeqCst) == now - 600_000 + 49 * 10_000
    });
    let q = &m.queue_metrics()[0];
    assert_eq!(q.samples_failed_total.load(Ordering::SeqCst), 0, "receiver refused samples");
    assert_eq!(q.samples_retried_total.load(Ordering::SeqCst), 0);
    m.stop();
    for v in want.values_mut() {
        v.retain(|s| !model::is_stale_nan(f64::from_bits(s.1)));
    }
    want
}

fn metric_key(m: &serde_json::Value) -> Vec<(String, String)> {
    let mut k: Vec<(String, String)> = m
        .as_object()
        .unwrap()
        .iter()
        .map(|(a, b)| (a.clone(), b.as_str().unwrap().to_string()))
        .collect();
    k.sort();
    k
}

#[test]
fn interop_prometheus_receiver() {
    let bin = "/usr/bin/prometheus";
    if !available(bin) {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = td.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\n").unwrap();
    let _p = Proc(
        Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", td.path().join("prom").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_until("prometheus ready", Duration::from_secs(30), || get(&format!("{base}/-/ready")).is_some());
    let want = ship(td.path(), &format!("{base}/api/v1/write"), "rw_interop");
    // An instant query of a range selector returns the raw samples.
    let t = queue::tests_now_ms() as f64 / 1000.0;
    let body = get(&format!("{base}/api/v1/query?query=rw_interop%5B20m%5D&time={t}")).expect("query");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut got = Got::new();
    for r in v["data"]["result"].as_array().unwrap() {
        let e = got.entry(metric_key(&r["metric"])).or_default();
        for p in r["values"].as_array().unwrap() {
            let ts = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            let val: f64 = p[1].as_str().unwrap().parse().unwrap();
            e.push((ts, val.to_bits()));
        }
    }
    super::tests::assert_exactly(&got, &want);
    println!("interop: Prometheus 2.42 stored all {} samples", want.values().map(Vec::len).sum::<usize>());
}

#[test]
fn interop_victoria_metrics_receiver() {
    let bin = "/usr/bin/victoria-metrics";
    if !available(bin) {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let port = free_port();
    let _p = Proc(
        Command::new(bin)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", td.path().join("vm").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_until("victoria-metrics ready", Duration::from_secs(30), || get(&format!("{base}/health")).is_some());
    let want = ship(td.path(), &format!("{base}/api/v1/write"), "rw_interop_vm");
    let total: usize = want.values().map(Vec::len).sum();
    let mut got = Got::new();
    // Ingested rows become searchable after a flush; retry briefly.
    wait_until("export complete", Duration::from_secs(20), || {
        let _ = get(&format!("{base}/internal/force_flush"));
        got.clear();
        let Some(body) = get(&format!("{base}/api/v1/export?match[]=rw_interop_vm")) else { return false };
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let e = got.entry(metric_key(&v["metric"])).or_default();
            for (t, x) in v["timestamps"].as_array().unwrap().iter().zip(v["values"].as_array().unwrap()) {
                let x = x.as_f64().unwrap_or(f64::NAN);
                if !x.is_nan() {
                    e.push((t.as_i64().unwrap(), x.to_bits()));
                }
            }
        }
        got.values().map(Vec::len).sum::<usize>() >= total
    });
    for v in got.values_mut() {
        v.sort_by_key(|s| s.0);
    }
    super::tests::assert_exactly(&got, &want);
    println!("interop: VictoriaMetrics stored all {total} samples exactly once");
}
