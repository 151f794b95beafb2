//! Scrape-loop tests against MemStorage, and end-to-end tests with a tiny HTTP exporter on 127.0.0.1.

use crate::bench_support::BenchTarget;
use crate::parse::Format;
use crate::{ManagerOptions, ScrapeManager};
use model::mem::MemStorage;
use model::{labels, is_stale_nan, Labels, Sample, Storage};
use std::sync::Arc;
use std::time::Duration;

fn scrape_cfg(extra: &str) -> config::ScrapeConfig {
    let y = format!("scrape_configs:\n- job_name: j\n{extra}");
    config::Config::from_yaml_str(&y, std::path::Path::new("/")).unwrap().scrape_configs[0].clone()
}

fn run(t: &BenchTarget, s: &MemStorage, body: &str, ts: i64) -> Result<(usize, usize, usize), String> {
    let mut app = s.appender();
    let r = t.append(app.as_mut(), body.as_bytes(), Format::PromText, ts);
    match &r {
        Ok(_) => app.commit().unwrap(),
        Err(_) => app.rollback(),
    }
    r
}

fn series(s: &MemStorage, l: &Labels) -> Vec<Sample> {
    s.snapshot().get(l).cloned().unwrap_or_default()
}

#[test]
fn appends_with_target_labels_and_marks_stale() {
    let s = MemStorage::new();
    let t = BenchTarget::new(&scrape_cfg(""), "h:1").unwrap();
    assert_eq!(run(&t, &s, "a 1\nb{x=\"y\"} 2\n", 1000), Ok((2, 2, 2)));
    assert_eq!(run(&t, &s, "a 3\nb{x=\"y\"} 4\n", 2000), Ok((2, 2, 0)));
    let a = labels! {"__name__" => "a", "instance" => "h:1", "job" => "j"};
    let b = labels! {"__name__" => "b", "instance" => "h:1", "job" => "j", "x" => "y"};
    assert_eq!(series(&s, &a), vec![Sample::new(1000, 1.0), Sample::new(2000, 3.0)]);
    // b disappears: it gets a staleness marker at the next scrape's timestamp, once.
    assert_eq!(run(&t, &s, "a 5\n", 3000), Ok((1, 1, 0)));
    assert_eq!(run(&t, &s, "a 6\n", 4000), Ok((1, 1, 0)));
    let bs = series(&s, &b);
    assert_eq!(bs.len(), 3);
    assert_eq!(bs[2].t, 3000);
    assert!(is_stale_nan(bs[2].v));
    // It comes back: a new series for the cache, ordinary samples again.
    assert_eq!(run(&t, &s, "a 7\nb{x=\"y\"} 8\n", 5000), Ok((2, 2, 1)));
    assert_eq!(series(&s, &b).last(), Some(&Sample::new(5000, 8.0)));
}

#[test]
fn failed_scrape_marks_everything_stale() {
    let s = MemStorage::new();
    let t = BenchTarget::new(&scrape_cfg(""), "h:1").unwrap();
    run(&t, &s, "a 1\nb 2\n", 1000).unwrap();
    // A scrape that fails is recorded as an empty scrape.
    run(&t, &s, "", 2000).unwrap();
    let a = labels! {"__name__" => "a", "instance" => "h:1", "job" => "j"};
    assert!(is_stale_nan(series(&s, &a)[1].v));
    // And not marked stale again by the next failure.
    run(&t, &s, "", 3000).unwrap();
    assert_eq!(series(&s, &a).len(), 2);
}

#[test]
fn honor_labels_and_exported_conflicts() {
    let s = MemStorage::new();
    let t = BenchTarget::new(&scrape_cfg(""), "h:1").unwrap();
    run(&t, &s, "m{job=\"other\",instance=\"i\",exported_job=\"x\"} 1\n", 1000).unwrap();
    let want = labels! {"__name__" => "m", "instance" => "h:1", "job" => "j", "exported_instance" => "i",
        "exported_job" => "x", "exported_exported_job" => "other"};
    assert_eq!(series(&s, &want).len(), 1, "{:?}", s.snapshot().keys().collect::<Vec<_>>());

    let s = MemStorage::new();
    let t = BenchTarget::new(&scrape_cfg("  honor_labels: true\n"), "h:1").unwrap();
    run(&t, &s, "m{job=\"other\"} 1\n", 1000).unwrap();
    assert_eq!(series(&s, &labels! {"__name__" => "m", "instance" => "h:1", "job" => "other"}).len(), 1);
}

#[test]
fn metric_relabeling_drops_and_rewrites() {
    let s = MemStorage::new();
    let cfg = scrape_cfg(
        "  metric_relabel_configs:\n  - source_labels: [__name__]\n    regex: go_.*\n    action: drop\n  - source_labels: [x]\n    target_label: y\n",
    );
    let t = BenchTarget::new(&cfg, "h:1").unwrap();
    assert_eq!(run(&t, &s, "go_goroutines 5\nm{x=\"1\"} 1\n", 1000), Ok((2, 1, 1)));
    assert_eq!(run(&t, &s, "go_goroutines 5\nm{x=\"1\"} 1\n", 2000), Ok((2, 1, 0)));
    assert_eq!(s.snapshot().len(), 1);
    assert_eq!(series(&s, &labels! {"__name__" => "m", "instance" => "h:1", "job" => "j", "x" => "1", "y" => "1"}).len(), 2);
}

#[test]
fn limits_fail_the_scrape() {
    let s = MemStorage::new();
    let t = BenchTarget::new(&scrape_cfg("  sample_limit: 2\n"), "h:1").unwrap();
    assert_eq!(run(&t, &s, "a 1\nb 1\nc 1\n", 1000), Err("sample limit exceeded".into()));
    assert!(s.snapshot().is_empty(), "rolled back");
    assert!(run(&t, &s, "a 1\nb 1\n", 2000).is_ok());

    let t = BenchTarget::new(&scrape_cfg("  label_limit: 2\n"), "h:1").unwrap();
    let e = run(&t, &s, "a{x=\"1\"} 1\n", 1000).unwrap_err();
    assert!(e.starts_with("label_limit exceeded (metric: a, number of labels: 4, limit: 2)"), "{e}");
    let t = BenchTarget::new(&scrape_cfg("  label_value_length_limit: 3\n"), "h:1").unwrap();
    assert!(run(&t, &s, "a{x=\"long\"} 1\n", 1000).unwrap_err().starts_with("label_value_length_limit exceeded"));
    let t = BenchTarget::new(&scrape_cfg("  label_name_length_limit: 3\n"), "h:1").unwrap();
    assert!(run(&t, &s, "a{long=\"v\"} 1\n", 1000).unwrap_err().starts_with("label_name_length_limit exceeded"));
}

#[test]
fn malformed_body_fails_with_line() {
    let s = MemStorage::new();
    let t = BenchTarget::new(&scrape_cfg(""), "h:1").unwrap();
    let e = run(&t, &s, "a 1\nb{ 2\n", 1000).unwrap_err();
    assert!(e.starts_with("line 2:"), "{e}");
    assert!(s.snapshot().is_empty());
}

#[test]
fn explicit_timestamps_and_duplicates() {
    let s = MemStorage::new();
    let t = BenchTarget::new(&scrape_cfg(""), "h:1").unwrap();
    run(&t, &s, "a 1 500\nb 1\nb 2\n", 1000).unwrap();
    let a = labels! {"__name__" => "a", "instance" => "h:1", "job" => "j"};
    assert_eq!(series(&s, &a), vec![Sample::new(500, 1.0)]);
    let b = labels! {"__name__" => "b", "instance" => "h:1", "job" => "j"};
    assert_eq!(series(&s, &b), vec![Sample::new(1000, 1.0)], "second b is a duplicate");
    // Series with explicit timestamps don't get staleness markers.
    run(&t, &s, "b 3\n", 2000).unwrap();
    assert_eq!(series(&s, &a).len(), 1);

    let s = MemStorage::new();
    let t = BenchTarget::new(&scrape_cfg("  honor_timestamps: false\n"), "h:1").unwrap();
    run(&t, &s, "a 1 500\n", 1000).unwrap();
    assert_eq!(series(&s, &a), vec![Sample::new(1000, 1.0)]);
}

// ---------------------------------------------------------------------------------------------------------
// End to end: a tiny exporter served by axum on 127.0.0.1.

#[derive(Default)]
struct Exporter {
    body: String,
    content_type: String,
    gzip: bool,
    accept: Vec<String>,
    accept_encoding: Vec<String>,
    auth: Vec<String>,
}

async fn serve(state: Arc<parking_lot::Mutex<Exporter>>) -> std::net::SocketAddr {
    use axum::http::{header, HeaderMap};
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |h: HeaderMap| {
            let state = state.clone();
            async move {
                let mut st = state.lock();
                let get = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                st.accept.push(get(header::ACCEPT));
                st.accept_encoding.push(get(header::ACCEPT_ENCODING));
                st.auth.push(get(header::AUTHORIZATION));
                let mut body = st.body.clone().into_bytes();
                let mut hm = HeaderMap::new();
                hm.insert(header::CONTENT_TYPE, st.content_type.parse().unwrap());
                if st.gzip {
                    use std::io::Write;
                    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    enc.write_all(&body).unwrap();
                    body = enc.finish().unwrap();
                    hm.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
                }
                (hm, body)
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn samples_of(s: &MemStorage, name: &str) -> Vec<(Labels, Vec<Sample>)> {
    s.snapshot().into_iter().filter(|(l, _)| l.metric_name() == Some(name)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_scrape_staleness_reload_stop() {
    let state = Arc::new(parking_lot::Mutex::new(Exporter {
        body: "# HELP a_total A counter.\n# TYPE a_total counter\na_total 1\nb{x=\"1\"} 2\n".into(),
        content_type: "text/plain; version=0.0.4".into(),
        ..Exporter::default()
    }));
    let addr = serve(state.clone()).await;
    let storage = MemStorage::new();
    let mgr = ScrapeManager::new(Arc::new(storage.clone()), ManagerOptions::default());
    let yaml = format!(
        "scrape_configs:\n- job_name: e2e\n  scrape_interval: 300ms\n  scrape_timeout: 250ms\n  bearer_token: tok\n  static_configs:\n  - targets: ['{addr}']\n    labels: {{env: test}}\n"
    );
    let cfg = config::Config::from_yaml_str(&yaml, std::path::Path::new("/")).unwrap();
    mgr.apply_config(&cfg).await.unwrap();
    assert_eq!(mgr.active_targets().len(), 1);
    wait_for("two scrapes", || samples_of(&storage, "up").first().is_some_and(|(_, s)| s.len() >= 2)).await;

    let inst = addr.to_string();
    let up = labels! {"__name__" => "up", "instance" => inst.as_str(), "job" => "e2e", "env" => "test"};
    assert!(storage.snapshot()[&up].iter().all(|s| s.v == 1.0));
    for n in ["scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"] {
        assert_eq!(samples_of(&storage, n).len(), 1, "{n}");
    }
    assert_eq!(samples_of(&storage, "scrape_samples_scraped")[0].1[0].v, 2.0);
    assert_eq!(samples_of(&storage, "scrape_series_added")[0].1[0].v, 2.0);
    let t = &mgr.active_targets()[0];
    assert_eq!(t.health, crate::Health::Up);
    assert_eq!(t.scrape_url, format!("http://{addr}/metrics"));
    assert_eq!(t.labels["env"], "test");
    assert_eq!(t.discovered_labels["__address__"], inst);
    assert_eq!(t.scrape_interval, "300ms");
    assert!(t.last_error.is_empty());
    let md = mgr.metadata();
    assert!(md.iter().any(|m| m.metric == "a_total" && m.kind == "counter" && m.help == "A counter."), "{md:?}");
    {
        let st = state.lock();
        assert_eq!(
            st.accept[0],
            "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
        assert!(st.accept_encoding[0].contains("gzip"));
        assert_eq!(st.auth[0], "Bearer tok");
    }

    // OpenMetrics, gzip-compressed; `b` disappears and must get a staleness marker.
    {
        let mut st = state.lock();
        st.body = "# TYPE a counter\na_total 5\na_created 1.7e9\n# EOF\n".into();
        st.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8".into();
        st.gzip = true;
    }
    let b = labels! {"__name__" => "b", "instance" => inst.as_str(), "job" => "e2e", "env" => "test", "x" => "1"};
    wait_for("stale marker for b", || storage.snapshot().get(&b).is_some_and(|s| s.iter().any(|s| is_stale_nan(s.v)))).await;
    wait_for("a_created ingested", || !samples_of(&storage, "a_created").is_empty()).await;

    // A malformed body fails the scrape: up=0 and the error is on the target.
    state.lock().body = "a_total 5\nbroken{\n# EOF\n".into();
    wait_for("scrape error", || mgr.active_targets()[0].health == crate::Health::Down).await;
    assert!(mgr.active_targets()[0].last_error.contains("line 2"), "{}", mgr.active_targets()[0].last_error);
    assert_eq!(storage.snapshot()[&up].last().unwrap().v, 0.0);

    // Reload with the same config keeps the loop; a config without the job removes it and, after the
    // end-of-run delay (two intervals), writes stale markers for its series.
    mgr.apply_config(&cfg).await.unwrap();
    assert_eq!(mgr.active_targets().len(), 1);
    state.lock().body = "a_total 6\n# EOF\n".into();
    wait_for("healthy again", || mgr.active_targets()[0].health == crate::Health::Up).await;
    let empty = config::Config::from_yaml_str("", std::path::Path::new("/")).unwrap();
    mgr.apply_config(&empty).await.unwrap();
    assert!(mgr.active_targets().is_empty());
    wait_for("end-of-run stale up", || storage.snapshot()[&up].last().is_some_and(|s| is_stale_nan(s.v))).await;
    mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_writes_no_stale_markers_and_limits_apply() {
    let state = Arc::new(parking_lot::Mutex::new(Exporter {
        body: format!("big {}\n", "1"),
        content_type: "text/plain".into(),
        ..Exporter::default()
    }));
    let addr = serve(state.clone()).await;
    let storage = MemStorage::new();
    let mgr = ScrapeManager::new(Arc::new(storage.clone()), ManagerOptions::default());
    let yaml = format!(
        "scrape_configs:\n- job_name: s\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n  body_size_limit: 1KB\n  enable_compression: false\n  static_configs:\n  - targets: ['{addr}']\n- job_name: dropped\n  relabel_configs:\n  - action: drop\n    source_labels: [__address__]\n  static_configs:\n  - targets: ['x:1']\n"
    );
    let cfg = config::Config::from_yaml_str(&yaml, std::path::Path::new("/")).unwrap();
    mgr.apply_config(&cfg).await.unwrap();
    assert_eq!(mgr.dropped_targets().len(), 1);
    assert_eq!(mgr.dropped_targets()[0].discovered_labels["__address__"], "x:1");
    wait_for("first scrape", || !samples_of(&storage, "big").is_empty()).await;
    assert_eq!(state.lock().accept_encoding[0], "identity");

    state.lock().body = format!("big {}\n", "1".repeat(2000));
    wait_for("body size limit", || mgr.active_targets()[0].last_error == "body size limit exceeded").await;
    assert!(mgr.metrics().target_scrapes_exceeded_body_size_limit_total.load(std::sync::atomic::Ordering::Relaxed) > 0);

    state.lock().body = "big 2\n".into();
    wait_for("recovered", || mgr.active_targets()[0].health == crate::Health::Up).await;
    wait_for("big 2 stored", || samples_of(&storage, "big")[0].1.last().is_some_and(|s| s.v == 2.0)).await;
    mgr.stop().await;
    // A shutdown leaves every series' last sample as it was (Prometheus writes no end-of-run markers once the
    // server is stopping), so after a restart instant queries still see them within the lookback delta.
    // (The body-limit failure above did mark `big` stale, as any failed scrape does.)
    let (big, up) = (&samples_of(&storage, "big")[0].1, &samples_of(&storage, "up")[0].1);
    assert_eq!(big.last().unwrap().v, 2.0, "shutdown wrote a stale marker: {big:?}");
    assert_eq!(up.last().unwrap().v, 1.0, "shutdown wrote a stale up: {up:?}");
    // Nothing is written after the stop returns either.
    let n = storage.snapshot().values().map(Vec::len).sum::<usize>();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(storage.snapshot().values().map(Vec::len).sum::<usize>(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_targets_and_target_limit() {
    let state = Arc::new(parking_lot::Mutex::new(Exporter { body: "m 1\n".into(), content_type: "text/plain".into(), ..Exporter::default() }));
    let addr = serve(state.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.json"), format!(r#"[{{"targets": ["{addr}"], "labels": {{"team": "a"}}}}]"#)).unwrap();
    let storage = MemStorage::new();
    let mgr = ScrapeManager::new(Arc::new(storage.clone()), ManagerOptions::default());
    let yaml = "scrape_configs:\n- job_name: f\n  scrape_interval: 200ms\n  scrape_timeout: 100ms\n  file_sd_configs:\n  - files: ['*.json']\n  relabel_configs:\n  - source_labels: [__meta_filepath]\n    regex: '.*/(.*)'\n    target_label: file\n";
    let cfg = config::Config::from_yaml_str(yaml, dir.path()).unwrap();
    mgr.apply_config(&cfg).await.unwrap();
    wait_for("file_sd target", || mgr.active_targets().len() == 1).await;
    let t = mgr.active_targets()[0].clone();
    assert_eq!(t.labels["team"], "a");
    assert_eq!(t.labels["file"], "t.json");
    assert!(!t.labels.contains_key("__meta_filepath"));
    wait_for("scrape", || !samples_of(&storage, "m").is_empty()).await;

    let limited = format!("{yaml}  target_limit: 1\n");
    let two = format!(r#"[{{"targets": ["{addr}", "127.0.0.1:1"]}}]"#);
    std::fs::write(dir.path().join("t.json"), two).unwrap();
    let cfg = config::Config::from_yaml_str(&limited, dir.path()).unwrap();
    mgr.apply_config(&cfg).await.unwrap();
    wait_for("target limit error", || {
        mgr.active_targets().iter().any(|t| t.last_error.starts_with("target_limit exceeded (number of targets: 2, limit: 1)"))
    })
    .await;
    mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_sd_is_accepted_and_discovers_nothing() {
    let storage = MemStorage::new();
    let mgr = ScrapeManager::new(Arc::new(storage.clone()), ManagerOptions::default());
    let yaml = "scrape_configs:\n- job_name: k\n  static_configs:\n  - targets: ['127.0.0.1:1']\n  kubernetes_sd_configs:\n  - role: pod\n  consul_sd_configs:\n  - server: localhost:8500\n";
    let cfg = config::Config::from_yaml_str(yaml, std::path::Path::new("/")).unwrap();
    mgr.apply_config(&cfg).await.unwrap();
    // Applying again (a reload) is fine too; only the static target exists.
    mgr.apply_config(&cfg).await.unwrap();
    assert_eq!(mgr.active_targets().len(), 1);
    assert_eq!(mgr.warned_sd.lock().len(), 2);
    mgr.stop().await;
}

/// An HTTPS exporter with a self-signed certificate for `scrape.example` only, recording the SNI name and
/// Host header of each request.
async fn serve_tls(seen: Arc<parking_lot::Mutex<Vec<(String, String)>>>) -> (std::net::SocketAddr, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ck = rcgen::generate_simple_self_signed(vec!["scrape.example".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                // A handshake the client aborts (wrong name) just ends this connection.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let sni = tls.get_ref().1.server_name().unwrap_or("").to_string();
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).to_string();
                let host = text
                    .lines()
                    .find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: ")))
                    .unwrap_or("")
                    .to_string();
                seen.lock().push((sni, host));
                let body = "m 1\n";
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, ck.cert.pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_name_is_sni_and_verified_name() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (addr, ca) = serve_tls(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
    let storage = MemStorage::new();
    let mgr = ScrapeManager::new(Arc::new(storage.clone()), ManagerOptions::default());
    let job = |name: &str, extra: &str| {
        format!("- job_name: {name}\n  scheme: https\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n  tls_config:\n    ca_file: ca.pem\n{extra}  static_configs:\n  - targets: ['{addr}']\n")
    };
    let yaml = format!("scrape_configs:\n{}{}", job("named", "    server_name: scrape.example\n"), job("plain", ""));
    let cfg = config::Config::from_yaml_str(&yaml, dir.path()).unwrap();
    mgr.apply_config(&cfg).await.unwrap();
    let target = |job: &str| mgr.active_targets().into_iter().find(|t| t.labels["job"] == job);
    wait_for("both scraped", || {
        ["named", "plain"].iter().all(|j| target(j).is_some_and(|t| t.health != crate::Health::Unknown))
    })
    .await;
    let named = target("named").unwrap();
    assert_eq!(named.health, crate::Health::Up, "{}", named.last_error);
    assert_eq!(named.scrape_url, format!("https://{addr}/metrics"));
    // Without server_name the certificate (for scrape.example) does not match 127.0.0.1.
    let plain = target("plain").unwrap();
    assert_eq!(plain.health, crate::Health::Down);
    assert!(plain.last_error.to_lowercase().contains("certificate"), "{}", plain.last_error);
    let seen = seen.lock().clone();
    assert!(!seen.is_empty());
    for (sni, host) in &seen {
        assert_eq!(sni, "scrape.example");
        // The Host header stays the target's address, as Go sends it.
        assert_eq!(host, &addr.to_string());
    }
    mgr.stop().await;
}
