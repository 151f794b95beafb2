//! Helpers for tests that start real processes on 127.0.0.1.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait up to `timeout` for a clean exit.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn ignis_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ignis")
}

/// Starts `ignis server` on `port` with `dir` as data dir and `config` as prometheus.yml.
pub fn start_server(port: u16, dir: &Path, config: &Path, extra: &[&str]) -> Proc {
    let log = std::fs::File::create(dir.join(format!("server-{port}.log"))).expect("log file");
    let child = Command::new(ignis_bin())
        .arg("server")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--config.file={}", config.display()))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start ignis server");
    let p = Proc { child, name: "ignis".into() };
    wait_for(&format!("http://127.0.0.1:{port}/-/ready"), Duration::from_secs(30));
    p
}

/// Polls `url` until it answers 200 or panics after `timeout`.
pub fn wait_for(url: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = ureq::get(url).timeout(Duration::from_secs(2)).call() {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} did not become ready within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET returning (status, parsed JSON).
pub fn get_json(url: &str) -> (u16, serde_json::Value) {
    let resp = match ureq::get(url).timeout(Duration::from_secs(30)).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = resp.status();
    let body = resp.into_string().expect("body");
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: bad JSON {e}: {body}"));
    (status, v)
}

/// Form-encoded POST returning (status, parsed JSON).
pub fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let resp = match ureq::post(url).timeout(Duration::from_secs(30)).send_form(form) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url}: {e}"),
    };
    let status = resp.status();
    let body = resp.into_string().expect("body");
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("POST {url}: bad JSON {e}: {body}")))
}

/// Whether an interop peer binary exists; when it doesn't, prints a notice, and fails if IGNIS_REQUIRE_INTEROP=1.
pub fn have_peer(bin: &str) -> bool {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(bin).exists());
    if !found {
        if std::env::var("IGNIS_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("{bin} is required (IGNIS_REQUIRE_INTEROP=1) but not installed");
        }
        eprintln!("SKIPPED: {bin} not installed (apt-get install prometheus prometheus-node-exporter)");
    }
    found
}

pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts Debian's Prometheus on `port` with `config`, data under `dir`.
pub fn start_prometheus(port: u16, dir: &Path, config: &Path, extra: &[&str]) -> Proc {
    let data = dir.join(format!("prom-data-{port}"));
    let log = std::fs::File::create(dir.join(format!("prometheus-{port}.log"))).expect("log file");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let p = Proc { child, name: "prometheus".into() };
    wait_for(&format!("http://127.0.0.1:{port}/-/ready"), Duration::from_secs(60));
    p
}

/// Instant query → `[(labels, value)]` sorted, from either server.
pub fn query_vector(base: &str, q: &str) -> Vec<(std::collections::BTreeMap<String, String>, String)> {
    let url = format!("{base}/api/v1/query?query={}", urlencode(q));
    let (status, v) = get_json(&url);
    assert_eq!(status, 200, "{url}: {v}");
    let mut out: Vec<_> = v["data"]["result"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|s| {
            let m: std::collections::BTreeMap<String, String> = s["metric"]
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
                .unwrap_or_default();
            (m, s["value"][1].as_str().unwrap_or("").to_string())
        })
        .collect();
    out.sort();
    out
}

pub fn urlencode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

pub fn write_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}
