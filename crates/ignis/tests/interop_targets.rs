//! Target labels from service discovery and relabeling, compared with a real Prometheus (Debian's 2.42) given
//! the same prometheus.yml (issue #3): `/api/v1/targets` activeTargets (labels, discoveredLabels, scrapePool,
//! scrapeUrl, scrapeInterval, scrapeTimeout) and droppedTargets (discoveredLabels) must be equal, sorted.
//!
//! Covered: static_configs, file_sd_configs (JSON and YAML, through a glob), http_sd_configs (served by a tiny
//! in-test HTTP server), every relabel action, `$1`/`${name}` expansion in replacement and target_label,
//! `__param_*`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`/`__scrape_timeout__` overrides, `__tmp_*`,
//! targets dropped by relabeling, targets refused by PopulateLabels (bad scheme, timeout > interval, `/` in the
//! address: in neither list), duplicate targets, default ports, job-level interval/timeout/path/scheme/params.
//! honor_labels only shows in scraped series, so one pair of jobs scrapes the in-test server and the series
//! labels are compared too.
//!
//! Not covered: dns_sd_configs. Both servers read /etc/resolv.conf and there is no DNS server we could point
//! them at from a test on 127.0.0.1 (ignis's resolver has its own unit tests against an in-process server).
//!
//! Known, deliberate difference from 2.42 kept out of the config: a `replace` whose target_label contains `$`
//! and whose replacement expands to "" deletes the *unexpanded* target_label in 2.42 (a no-op, since no label
//! can be named `$1`); Prometheus 2.43+ deletes the expanded label, and ignis follows the later behaviour.
//! Non-targets targets are pointed at closed ports: their labels don't depend on health, and their interval is
//! an hour so neither server tries to scrape them during the test.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// The http_sd answer: two groups, one target dropped by the job's relabeling.
const HTTP_SD: &str = r#"[
  {"targets": ["127.0.0.1:19201", "127.0.0.1:19202"],
   "labels": {"__meta_dc": "eu-1", "__meta_rack": "R7", "keepme": "yes", "notkept": "gone", "__scrape_interval__": "30m"}},
  {"targets": ["127.0.0.1:19203"], "labels": {"__meta_dc": "us-2", "__meta_skip": "true"}}
]"#;

/// What the in-test server answers on /metrics: job/instance clashes for honor_labels, an `exported_` chain,
/// a label only the target has, and one that clears a target label.
const METRICS: &str = "# TYPE interop_a gauge\n\
interop_a{job=\"from-target\",instance=\"inst-x\",zone=\"z1\"} 1\n\
interop_a{job=\"from-target\",exported_job=\"ej\",zone=\"z2\"} 2\n\
interop_b{team=\"\",other=\"o\"} 3\n\
interop_c 4\n";

/// Serves HTTP_SD on /sd and METRICS on /metrics until the test process exits.
fn serve() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req).lines().next().unwrap_or_default().to_string();
                let (ct, body) = if line.starts_with("GET /sd ") {
                    ("application/json", HTTP_SD)
                } else if line.starts_with("GET /metrics") {
                    ("text/plain; version=0.0.4", METRICS)
                } else {
                    let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    return;
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body.as_bytes());
            });
        }
    });
    port
}

const SD_JSON: &str = r#"[
  {"targets": ["127.0.0.1:19001", "127.0.0.1:19002"],
   "labels": {"team": "a", "__scrape_interval__": "2h", "__scrape_timeout__": "1m", "cmp": "x", "cmp2": "x"}},
  {"targets": ["127.0.0.1:19003"], "labels": {"team": "drop-me"}},
  {"targets": ["127.0.0.1:19004"],
   "labels": {"__scheme__": "https", "__metrics_path__": "/custom path", "__param_foo": "bar", "cmp": "x", "cmp2": "y"}},
  {"targets": ["127.0.0.1:19005"], "labels": {"__scrape_timeout__": "3h"}},
  {"targets": ["127.0.0.1"], "labels": {"__scheme__": "ftp"}},
  {"targets": ["127.0.0.1:19006/path"]},
  {"targets": ["127.0.0.1:19007"], "labels": {"__scrape_interval__": "0s"}},
  {"targets": ["127.0.0.1:19008"], "labels": {"__scrape_interval__": "soon"}},
  {"targets": ["10.0.0.1:19009"], "labels": {"team": "a"}},
  {"targets": [], "labels": {"team": "nobody"}}
]"#;

const SD_YAML: &str = "- targets: ['127.0.0.1:19101', 'localhost']
  labels:
    team: b
    __scrape_interval__: 90s
    Mixed: 'ÄbC ΣΑΣ İx ßŉ ǅ'
- targets: ['127.0.0.1:19102']
  labels:
    team: c
    __tmp_secret: s3
    empty: ''
- targets: ['127.0.0.1:19103']
- targets: ['127.0.0.1:19104']
  labels:
    __metrics_path__: '*'
";

fn prometheus_yml(dir: &str, sd: u16) -> String {
    format!(
        r#"global:
  scrape_interval: 1h
  scrape_timeout: 10s
  external_labels:
    site: interop
scrape_configs:
  - job_name: static-replace
    scrape_timeout: 30s
    params:
      module: [http_2xx, second]
      'match[]': ['{{a="b"}}']
    static_configs:
      - targets: ['127.0.0.1:9', 'localhost', '[::1]:9', '127.0.0.1:9', 'Node-B.invalid:19', '[::1]', '::1']
        labels: {{env: Prod, group_team: a, group_tier: web}}
      - targets: ['127.0.0.2:9']
        labels: {{env: dev, group_team: b, group_x: '9bad'}}
    relabel_configs:
      - source_labels: [__address__]
        regex: '(.*):(\d+)'
        target_label: port
        replacement: 'p$2'
      - source_labels: [__address__]
        regex: '(?P<host>[^:\[\]]+)(:.*)?'
        target_label: host
        replacement: '${{host}}-h'
      - source_labels: [env]
        regex: '(.+)'
        target_label: 'env_is_${{1}}'
        replacement: 'true'
      - source_labels: [group_x]
        regex: '(.+)'
        target_label: '$1'
        replacement: invalid-target-name-ignored
      - source_labels: [env]
        target_label: env_lower
        action: lowercase
      - source_labels: [env, group_team]
        separator: '/'
        target_label: ENV_TEAM
        action: uppercase
      - source_labels: [__address__]
        target_label: shard
        modulus: 4
        action: hashmod
      - source_labels: [__address__, env]
        target_label: shard1000
        modulus: 1000
        action: hashmod
      - regex: 'group_(.+)'
        replacement: 'g_$1'
        action: labelmap
      - regex: 'group_.*'
        action: labeldrop
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [env]
        regex: 'Prod'
        target_label: __scheme__
        replacement: https
      - source_labels: [env]
        regex: dev
        target_label: __metrics_path__
        replacement: "/probe/dev metrics!(x)*'?y;z"
      - target_label: __tmp_const
        replacement: constant
      - source_labels: [__tmp_const]
        target_label: from_tmp
      - source_labels: [env]
        regex: 'nomatch'
        target_label: env
        replacement: never
      - source_labels: [does_not_exist]
        target_label: env_lower_copy

  - job_name: static-drop-all
    static_configs:
      - targets: ['127.0.0.1:9', '127.0.0.1:9', 'a.invalid']
        labels: {{why: dropped}}
    relabel_configs:
      - source_labels: [why]
        regex: drop.*
        action: drop

  - job_name: path-scheme
    scrape_interval: 90s
    metrics_path: metrics
    scheme: https
    params:
      'q w': ['a b', 'c&d']
    static_configs:
      - targets: ['127.0.0.1', '[::1]', 'Host.Example.invalid:8443', 'spa ce.invalid:1']

  - job_name: file-sd
    scrape_interval: 1h
    scrape_timeout: 1m
    file_sd_configs:
      - files: ['{dir}/sd/*.json', '{dir}/sd/*.yml']
        refresh_interval: 1h
    relabel_configs:
      - source_labels: [team]
        regex: drop-.*
        action: drop
      - source_labels: [cmp]
        target_label: cmp2
        action: dropequal
      - source_labels: [__address__]
        regex: '127\.0\.0\.1(:.*)?|localhost'
        action: keep
      - source_labels: [__meta_filepath]
        regex: '.*/(.*)'
        target_label: __tmp_file
      - source_labels: [__tmp_file]
        target_label: file
      - source_labels: [__tmp_secret]
        target_label: secret_len
        regex: '(.)(.)'
        replacement: '$2$1'
      - source_labels: [Mixed]
        target_label: mixed_lower
        action: lowercase
      - source_labels: [Mixed]
        target_label: mixed_upper
        action: uppercase

  - job_name: file-sd-keepequal
    file_sd_configs:
      - files: ['{dir}/sd/*.json']
    relabel_configs:
      - source_labels: [cmp]
        target_label: cmp2
        action: keepequal

  - job_name: http-sd
    honor_labels: true
    http_sd_configs:
      - url: 'http://127.0.0.1:{sd}/sd'
        refresh_interval: 1h
    relabel_configs:
      - source_labels: [__meta_skip]
        regex: 'true'
        action: drop
      - regex: '__meta_(.+)'
        replacement: 'm_$1'
        action: labelmap
      - regex: '__.*|job|instance|m_.*|keepme'
        action: labelkeep
      - source_labels: [m_dc, m_rack]
        regex: '(?i)(EU)-(\d+);r(\d)'
        target_label: zone
        replacement: '${{1}}/${{2}}x$3'

  - job_name: honor-true
    honor_labels: true
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['127.0.0.1:{sd}']
        labels: {{team: t1, zone: target-zone}}
    relabel_configs:
      - target_label: __tmp_x
        replacement: hidden

  - job_name: honor-false
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['127.0.0.1:{sd}']
        labels: {{team: t1, zone: target-zone}}
"#
    )
}

/// The compared fields of `/api/v1/targets`, each list sorted.
fn targets(base: &str) -> (Vec<Value>, Vec<Value>) {
    let (status, v) = get_json(&format!("{base}/api/v1/targets"));
    assert_eq!(status, 200, "{v}");
    let mut active: Vec<Value> = v["data"]["activeTargets"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|t| {
            // Not discoveredLabels of active targets: 2.42 returns them aliased with the relabeled set (seen
            // here: `__tmp_file`, `m_dc` added, `job` or `notkept` missing), a bug later releases fixed by
            // copying the pre-relabel labels. Dropped targets' discoveredLabels are compared below.
            json!({
                "scrapePool": t["scrapePool"], "labels": t["labels"],
                "scrapeUrl": t["scrapeUrl"], "scrapeInterval": t["scrapeInterval"], "scrapeTimeout": t["scrapeTimeout"],
            })
        })
        .collect();
    let mut dropped: Vec<Value> = v["data"]["droppedTargets"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|t| json!({"discoveredLabels": t["discoveredLabels"]}))
        .collect();
    active.sort_by_key(|v| v.to_string());
    dropped.sort_by_key(|v| v.to_string());
    (active, dropped)
}

/// Series of the honor jobs, without values. Empty-valued labels are left out: with honor_labels, 2.42 stores
/// an exposed `team=""` as a label with an empty value (`interop_b{team=""}` in its API answer) where ignis,
/// like later Prometheus, treats an empty label as absent; PromQL cannot tell the two apart.
fn series(base: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut v: Vec<_> = query_vector(base, "{__name__=~\"interop_.*\"}")
        .into_iter()
        .map(|(mut l, _)| {
            l.retain(|_, v| !v.is_empty());
            l
        })
        .collect();
    v.sort();
    v
}

/// Lines of `want` and `got` that differ, for a readable failure.
fn diff(what: &str, want: &[Value], got: &[Value]) -> String {
    let mut s = format!("{what}: Prometheus has {} entries, ignis {}\n", want.len(), got.len());
    for w in want.iter().filter(|w| !got.contains(w)) {
        s.push_str(&format!("  only in Prometheus: {w}\n"));
    }
    for g in got.iter().filter(|g| !want.contains(g)) {
        s.push_str(&format!("  only in ignis:      {g}\n"));
    }
    s
}

#[test]
fn targets_match_prometheus() {
    if !have_peer("prometheus") {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let sd_port = serve();
    std::fs::create_dir(dir.path().join("sd")).unwrap();
    write_file(&dir.path().join("sd"), "a.json", SD_JSON);
    write_file(&dir.path().join("sd"), "b.yml", SD_YAML);
    let cfg = write_file(dir.path(), "prometheus.yml", &prometheus_yml(&dir.path().display().to_string(), sd_port));
    let (ip, pp) = (free_port(), free_port());
    let _prom = start_prometheus(pp, dir.path(), &cfg, &[]);
    let _ignis = start_server(ip, dir.path(), &cfg, &[]);
    let (pbase, ibase) = (format!("http://127.0.0.1:{pp}"), format!("http://127.0.0.1:{ip}"));

    // Prometheus's discovery manager hands out updates every 5 s: wait until every pool has its targets, then
    // until both agree (or 40 s have passed).
    let pools = ["static-replace", "path-scheme", "file-sd", "file-sd-keepequal", "http-sd", "honor-true", "honor-false"];
    wait_until(Duration::from_secs(30), "all scrape pools in Prometheus", || {
        let (a, d) = targets(&pbase);
        pools.iter().all(|p| a.iter().any(|t| t["scrapePool"] == *p))
            && d.iter().any(|t| t["discoveredLabels"]["job"] == "static-drop-all")
            && d.iter().any(|t| t["discoveredLabels"]["job"] == "http-sd")
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut want, mut got) = (targets(&pbase), targets(&ibase));
    while want != got && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        (want, got) = (targets(&pbase), targets(&ibase));
    }
    assert!(
        want == got,
        "{}{}",
        diff("activeTargets", &want.0, &got.0),
        diff("droppedTargets", &want.1, &got.1)
    );
    // Sanity: the config exercised what it claims to.
    let (active, dropped) = want;
    assert!(active.len() >= 20, "{active:?}");
    assert!(dropped.len() >= 6, "{dropped:?}");

    // honor_labels: the scraped series carry the same labels in both.
    wait_until(Duration::from_secs(20), "honor jobs scraped by both", || {
        series(&pbase).len() == 8 && series(&ibase).len() == 8
    });
    assert_eq!(series(&ibase), series(&pbase));
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}
