//! Service discovery: static_configs, file_sd_configs (JSON/YAML, re-read every refresh_interval and when a
//! file changes), http_sd_configs, and dns_sd_configs for A/AAAA records (via the system resolver).
//!
//! Each provider runs as a task and sends its complete current list of target groups whenever it changes;
//! the pool replaces that provider's groups and re-syncs its targets.

use crate::metrics::ScrapeMetrics;
use crate::target::{TargetGroup, ADDRESS_LABEL};
use config::{DnsSdConfig, FileSdConfig, HttpSdConfig, StaticConfig};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};

/// `(provider index, all groups of that provider)`.
pub(crate) type Update = (usize, Vec<TargetGroup>);

#[allow(clippy::large_enum_variant)] // built once per provider
pub(crate) enum Provider {
    File(FileSdConfig),
    Http(HttpSdConfig),
    Dns(DnsSdConfig),
}

/// Target groups of static_configs (sources `0`, `1`, … as Prometheus numbers them).
pub(crate) fn static_groups(cfgs: &[StaticConfig]) -> Vec<TargetGroup> {
    cfgs.iter()
        .enumerate()
        .map(|(i, sc)| TargetGroup::from_addresses(i.to_string(), &sc.targets, sc.labels.clone()))
        .collect()
}

/// The file_sd/http_sd group shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), String> {
    for n in labels.keys() {
        if !model::labels::is_valid_label_name(n) {
            return Err(format!("{n:?} is not a valid label name"));
        }
    }
    Ok(())
}

/// Parses a file_sd file (JSON when the name ends in .json, YAML otherwise).
pub(crate) fn parse_sd_file(path: &str, text: &str) -> Result<Vec<TargetGroup>, String> {
    let raw: Vec<RawGroup> = if path.to_ascii_lowercase().ends_with(".json") {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_saphyr::from_str(text).map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())?
    };
    let mut out = Vec::with_capacity(raw.len());
    for (i, g) in raw.into_iter().enumerate() {
        let mut labels = g.labels.unwrap_or_default();
        validate_labels(&labels)?;
        labels.insert("__meta_filepath".into(), path.to_string());
        out.push(TargetGroup::from_addresses(format!("{path}:{i}"), &g.targets, labels));
    }
    Ok(out)
}

fn expand(patterns: &[String]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = patterns.iter().filter_map(|p| glob::glob(p).ok()).flat_map(|g| g.flatten()).collect();
    v.sort();
    v.dedup();
    v
}

fn mtimes(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths.iter().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
}

/// How often file_sd checks its files for changes between full refreshes.
const FILE_POLL: Duration = Duration::from_secs(1);

async fn run_file(idx: usize, cfg: FileSdConfig, tx: mpsc::Sender<Update>, m: Arc<ScrapeMetrics>, mut stop: watch::Receiver<bool>) {
    let refresh = cfg.refresh_interval.as_std().max(Duration::from_millis(100));
    let mut last_good: HashMap<PathBuf, Vec<TargetGroup>> = HashMap::new();
    let mut last_sent: Option<Vec<TargetGroup>> = None;
    let mut last_refresh = tokio::time::Instant::now();
    let mut seen: (Vec<PathBuf>, Vec<Option<SystemTime>>) = (Vec::new(), Vec::new());
    let mut first = true;
    loop {
        let paths = expand(&cfg.files);
        let times = mtimes(&paths);
        let due = first || last_refresh.elapsed() >= refresh || (paths.clone(), times.clone()) != seen;
        if due {
            first = false;
            last_refresh = tokio::time::Instant::now();
            m.sd_file_scan_total.fetch_add(1, Relaxed);
            last_good.retain(|p, _| paths.contains(p));
            for p in &paths {
                let ps = p.to_string_lossy().into_owned();
                match std::fs::read_to_string(p).map_err(|e| e.to_string()).and_then(|t| parse_sd_file(&ps, &t)) {
                    Ok(g) => {
                        last_good.insert(p.clone(), g);
                    }
                    Err(e) => {
                        // Keep the file's previous targets, as Prometheus does.
                        m.sd_file_read_errors_total.fetch_add(1, Relaxed);
                        tracing::error!(file = %ps, err = %e, "error reading file_sd file");
                    }
                }
            }
            let mut all: Vec<TargetGroup> = Vec::new();
            for p in &paths {
                if let Some(g) = last_good.get(p) {
                    all.extend(g.iter().cloned());
                }
            }
            if last_sent.as_ref() != Some(&all) {
                if tx.send((idx, all.clone())).await.is_err() {
                    return;
                }
                last_sent = Some(all);
            }
            seen = (paths, times);
        }
        tokio::select! {
            _ = tokio::time::sleep(FILE_POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn run_http(idx: usize, cfg: HttpSdConfig, tx: mpsc::Sender<Update>, m: Arc<ScrapeMetrics>, mut stop: watch::Receiver<bool>) {
    let http = cfg.http_client();
    let client = match crate::http::build_client(&http, true) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(url = %cfg.url, err = %e, "http_sd client");
            return;
        }
    };
    let refresh = cfg.refresh_interval.as_std().max(Duration::from_millis(100));
    let mut last: Option<Vec<TargetGroup>> = None;
    loop {
        match http_refresh(&client, &http, &cfg, refresh).await {
            Ok(groups) => {
                if last.as_ref() != Some(&groups) {
                    if tx.send((idx, groups.clone())).await.is_err() {
                        return;
                    }
                    last = Some(groups);
                }
            }
            Err(e) => {
                m.sd_http_failures_total.fetch_add(1, Relaxed);
                tracing::error!(url = %cfg.url, err = %e, "http_sd refresh failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(refresh) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn http_refresh(
    client: &reqwest::Client,
    http: &config::HttpClientConfig,
    cfg: &HttpSdConfig,
    refresh: Duration,
) -> Result<Vec<TargetGroup>, String> {
    let req = client
        .get(&cfg.url)
        .header(reqwest::header::ACCEPT, "application/json")
        .header("X-Prometheus-Refresh-Interval-Seconds", refresh.as_secs().to_string());
    let req = crate::http::apply_auth(req, http)?;
    let resp = tokio::time::timeout(refresh.max(Duration::from_secs(1)), req.send())
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let ct = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if !ct.starts_with("application/json") {
        return Err(format!("unsupported content type {ct:?}"));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    let raw: Vec<RawGroup> = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (i, g) in raw.into_iter().enumerate() {
        let mut labels = g.labels.unwrap_or_default();
        validate_labels(&labels)?;
        labels.insert("__meta_url".into(), cfg.url.clone());
        out.push(TargetGroup::from_addresses(format!("{}:{i}", cfg.url), &g.targets, labels));
    }
    Ok(out)
}

async fn run_dns(idx: usize, cfg: DnsSdConfig, tx: mpsc::Sender<Update>, m: Arc<ScrapeMetrics>, mut stop: watch::Receiver<bool>) {
    let refresh = cfg.refresh_interval.as_std().max(Duration::from_millis(100));
    let mut last: Option<Vec<TargetGroup>> = None;
    loop {
        let mut groups = Vec::new();
        for name in &cfg.names {
            m.sd_dns_lookups_total.fetch_add(1, Relaxed);
            match dns_lookup(&cfg, name).await {
                Ok(g) => groups.push(g),
                Err(e) => {
                    m.sd_dns_lookup_failures_total.fetch_add(1, Relaxed);
                    tracing::error!(name = %name, err = %e, "DNS resolution failed");
                }
            }
        }
        if last.as_ref() != Some(&groups) {
            if tx.send((idx, groups.clone())).await.is_err() {
                return;
            }
            last = Some(groups);
        }
        tokio::select! {
            _ = tokio::time::sleep(refresh) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn dns_lookup(cfg: &DnsSdConfig, name: &str) -> Result<TargetGroup, String> {
    let want_v6 = match cfg.kind.as_str() {
        "A" => false,
        "AAAA" => true,
        other => return Err(format!("{other} records are not supported yet (only A and AAAA)")),
    };
    let addrs = tokio::net::lookup_host((name, cfg.port)).await.map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for a in addrs {
        if a.is_ipv6() != want_v6 || !seen.insert(a) {
            continue;
        }
        let mut t = BTreeMap::new();
        // SocketAddr's Display brackets IPv6 addresses, as Prometheus's net.JoinHostPort.
        t.insert(ADDRESS_LABEL.to_string(), a.to_string());
        t.insert("__meta_dns_name".to_string(), name.to_string());
        t.insert("__meta_dns_srv_record_target".to_string(), String::new());
        t.insert("__meta_dns_srv_record_port".to_string(), String::new());
        t.insert("__meta_dns_mx_record_target".to_string(), String::new());
        t.insert("__meta_dns_ns_record_target".to_string(), String::new());
        targets.push(t);
    }
    Ok(TargetGroup { targets, labels: BTreeMap::new(), source: name.to_string() })
}

/// Starts a provider's task.
pub(crate) fn spawn(
    idx: usize,
    p: Provider,
    tx: mpsc::Sender<Update>,
    m: Arc<ScrapeMetrics>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    match p {
        Provider::File(c) => tokio::spawn(run_file(idx, c, tx, m, stop)),
        Provider::Http(c) => tokio::spawn(run_http(idx, c, tx, m, stop)),
        Provider::Dns(c) => tokio::spawn(run_dns(idx, c, tx, m, stop)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_formats() {
        let j = parse_sd_file("/x/t.json", r#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": ["c:3"]}]"#)
            .unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(j[0].targets.len(), 2);
        assert_eq!(j[0].labels["env"], "prod");
        assert_eq!(j[0].labels["__meta_filepath"], "/x/t.json");
        assert_eq!(j[1].source, "/x/t.json:1");
        let y = parse_sd_file("/x/t.yml", "- targets: ['a:1']\n  labels:\n    env: dev\n").unwrap();
        assert_eq!(y[0].targets[0][ADDRESS_LABEL], "a:1");
        assert!(parse_sd_file("/x/t.yml", "- targets: ['a:1']\n  bogus: 1\n").is_err());
        assert!(parse_sd_file("/x/t.json", r#"[{"targets": ["a:1"], "labels": {"0bad": "x"}}]"#).is_err());
        assert!(parse_sd_file("/x/t.yml", "").unwrap().is_empty());
    }

    #[tokio::test]
    async fn file_sd_rereads_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.json");
        std::fs::write(&f, r#"[{"targets": ["a:1"]}]"#).unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let (_stop_tx, stop) = watch::channel(false);
        let cfg = FileSdConfig { files: vec![dir.path().join("*.json").display().to_string()], ..FileSdConfig::default() };
        let h = spawn(0, Provider::File(cfg), tx, Arc::new(ScrapeMetrics::default()), stop);
        let (_, g) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        assert_eq!(g[0].targets[0][ADDRESS_LABEL], "a:1");
        // A different size guarantees a visible change even on coarse mtime filesystems.
        std::fs::write(&f, r#"[{"targets": ["bb:22", "c:3"]}]"#).unwrap();
        let filetime = SystemTime::now() + Duration::from_secs(5);
        let _ = std::fs::File::options().write(true).open(&f).and_then(|fh| fh.set_modified(filetime));
        let (_, g) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        assert_eq!(g[0].targets.len(), 2);
        h.abort();
    }

    #[tokio::test]
    async fn dns_a_records_from_system_resolver() {
        let cfg = DnsSdConfig { names: vec!["localhost".into()], kind: "A".into(), port: 9100, ..DnsSdConfig::default() };
        let g = dns_lookup(&cfg, "localhost").await.unwrap();
        assert!(g.targets.iter().any(|t| t[ADDRESS_LABEL] == "127.0.0.1:9100"), "{g:?}");
        assert_eq!(g.targets[0]["__meta_dns_name"], "localhost");
    }
}
