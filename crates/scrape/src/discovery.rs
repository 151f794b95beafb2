//! Service discovery: static_configs, file_sd_configs (JSON/YAML, re-read every refresh_interval and when a
//! file changes), http_sd_configs, and dns_sd_configs (SRV, A, AAAA, MX, NS via [`crate::dns`]).
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
    Dns(DnsSdConfig, DnsServers),
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

/// Where dns_sd_configs get their resolver settings.
#[derive(Debug, Clone, Default)]
pub(crate) enum DnsServers {
    /// /etc/resolv.conf, re-read on every lookup as Prometheus does.
    #[default]
    System,
    /// Fixed servers (tests, or a caller that knows better); no search list.
    Fixed(Vec<std::net::SocketAddr>),
}

impl DnsServers {
    fn conf(&self) -> Result<crate::dns::ResolvConf, String> {
        match self {
            DnsServers::System => std::fs::read_to_string("/etc/resolv.conf")
                .map(|t| crate::dns::ResolvConf::parse(&t))
                .map_err(|e| format!("could not load resolv.conf: {e}")),
            DnsServers::Fixed(s) => Ok(crate::dns::ResolvConf { servers: s.clone(), search: Vec::new(), ndots: 1 }),
        }
    }
}

async fn run_dns(
    idx: usize,
    cfg: DnsSdConfig,
    servers: DnsServers,
    tx: mpsc::Sender<Update>,
    m: Arc<ScrapeMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let refresh = cfg.refresh_interval.as_std().max(Duration::from_millis(100));
    let mut last: Option<Vec<TargetGroup>> = None;
    // A name whose lookup fails keeps its previous group: Prometheus's discovery manager only replaces a
    // source's group when the provider sends one, and a failed refreshOne sends none.
    let mut by_name: BTreeMap<String, TargetGroup> = BTreeMap::new();
    loop {
        for name in &cfg.names {
            m.sd_dns_lookups_total.fetch_add(1, Relaxed);
            match dns_lookup(&cfg, &servers, name).await {
                Ok(g) => {
                    by_name.insert(name.clone(), g);
                }
                Err(e) => {
                    m.sd_dns_lookup_failures_total.fetch_add(1, Relaxed);
                    tracing::error!(name = %name, err = %e, "Error refreshing DNS targets");
                }
            }
        }
        let groups: Vec<TargetGroup> = cfg.names.iter().filter_map(|n| by_name.get(n).cloned()).collect();
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

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One name's group, with the labels Prometheus's `refreshOne` sets. SRV targets use the record's port,
/// every other type the configured port; rooted names lose their final dot in `__address__` only.
async fn dns_lookup(cfg: &DnsSdConfig, servers: &DnsServers, name: &str) -> Result<TargetGroup, String> {
    use crate::dns::{self, Record};
    let qtype = match cfg.kind.as_str() {
        "A" => dns::TYPE_A,
        "AAAA" => dns::TYPE_AAAA,
        "MX" => dns::TYPE_MX,
        "NS" => dns::TYPE_NS,
        // Config validation upper-cases and rejects anything else; SRV is the default.
        _ => dns::TYPE_SRV,
    };
    let conf = servers.conf()?;
    let records = dns::lookup(&conf, name, qtype).await?;
    let mut targets = Vec::with_capacity(records.len());
    for r in records {
        let (mut srv_target, mut srv_port, mut mx, mut ns) = (String::new(), String::new(), String::new(), String::new());
        let address = match r {
            Record::A(ip) => join_host_port(&ip.to_string(), cfg.port),
            Record::Aaaa(ip) => join_host_port(&ip.to_string(), cfg.port),
            Record::Srv { target, port } => {
                let a = join_host_port(target.trim_end_matches('.'), port);
                srv_target = target;
                srv_port = port.to_string();
                a
            }
            Record::Mx(t) => {
                let a = join_host_port(t.trim_end_matches('.'), cfg.port);
                mx = t;
                a
            }
            Record::Ns(t) => {
                let a = join_host_port(t.trim_end_matches('.'), cfg.port);
                ns = t;
                a
            }
            // CNAMEs come along with the records they point to.
            Record::Cname => continue,
            Record::Other(ty) => {
                tracing::warn!(name, record_type = ty, "Invalid record");
                continue;
            }
        };
        targets.push(BTreeMap::from([
            (ADDRESS_LABEL.to_string(), address),
            ("__meta_dns_name".to_string(), name.to_string()),
            ("__meta_dns_srv_record_target".to_string(), srv_target),
            ("__meta_dns_srv_record_port".to_string(), srv_port),
            ("__meta_dns_mx_record_target".to_string(), mx),
            ("__meta_dns_ns_record_target".to_string(), ns),
        ]));
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
        Provider::Dns(c, s) => tokio::spawn(run_dns(idx, c, s, tx, m, stop)),
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

    /// A tiny authoritative DNS server on 127.0.0.1 (UDP and TCP on one port), writing answers without
    /// name compression so it shares no code with the resolver's decoder.
    mod fake_dns {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        fn name(out: &mut Vec<u8>, n: &str) {
            for l in n.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
                out.push(l.len() as u8);
                out.extend_from_slice(l.as_bytes());
            }
            out.push(0);
        }

        fn rr(out: &mut Vec<u8>, owner: &str, ty: u16, rdata: &[u8]) {
            name(out, owner);
            out.extend_from_slice(&ty.to_be_bytes());
            out.extend_from_slice(&[0, 1, 0, 0, 0, 30]);
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(rdata);
        }

        fn named(prefix: &[u8], n: &str) -> Vec<u8> {
            let mut v = prefix.to_vec();
            name(&mut v, n);
            v
        }

        /// Answers for (qname, qtype): (rcode, truncated-over-UDP, records).
        fn answer(q: &[u8], tcp: bool, fail: bool) -> Vec<u8> {
            let id = [q[0], q[1]];
            let mut p = 12;
            let mut labels = Vec::new();
            while q[p] != 0 {
                let l = q[p] as usize;
                labels.push(String::from_utf8_lossy(&q[p + 1..p + 1 + l]).into_owned());
                p += 1 + l;
            }
            let qname = labels.join(".") + ".";
            let qtype = u16::from_be_bytes([q[p + 1], q[p + 2]]);
            let question = &q[12..p + 5];
            let mut ans = Vec::new();
            let mut n = 0u16;
            let mut rcode = 0u8;
            let mut tc = false;
            match (qname.as_str(), qtype) {
                ("_prom._tcp.ex.test.", 33) => {
                    rr(&mut ans, &qname, 33, &named(&[0, 1, 0, 1, 0x23, 0x8C], "node1.ex.test."));
                    rr(&mut ans, &qname, 33, &named(&[0, 1, 0, 1, 0x23, 0x8D], "node2.ex.test."));
                    n = 2;
                }
                ("mx.ex.test.", 15) => {
                    rr(&mut ans, &qname, 15, &named(&[0, 10], "mail.ex.test."));
                    n = 1;
                }
                ("ns.ex.test.", 2) => {
                    rr(&mut ans, &qname, 2, &named(&[], "ns1.ex.test."));
                    n = 1;
                }
                ("alias.ex.test.", 1) => {
                    rr(&mut ans, &qname, 5, &named(&[], "real.ex.test."));
                    rr(&mut ans, "real.ex.test.", 1, &[10, 0, 0, 7]);
                    n = 2;
                }
                ("v6.ex.test.", 28) => {
                    rr(&mut ans, &qname, 28, &std::net::Ipv6Addr::LOCALHOST.octets());
                    n = 1;
                }
                ("big.ex.test.", 33) if !tcp => tc = true,
                ("big.ex.test.", 33) => {
                    rr(&mut ans, &qname, 33, &named(&[0, 1, 0, 1, 0, 80], "tcp-only.ex.test."));
                    n = 1;
                }
                ("_prom._tcp.ex.test.", _) if fail => rcode = 2,
                _ => rcode = 3,
            }
            if fail && qname == "_prom._tcp.ex.test." {
                rcode = 2;
                ans.clear();
                n = 0;
            }
            let mut out = id.to_vec();
            out.push(0x84 | if tc { 0x02 } else { 0 } | 0x01);
            out.push(0x80 | rcode);
            out.extend_from_slice(&[0, 1]);
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.extend_from_slice(question);
            out.extend_from_slice(&ans);
            out
        }

        /// Starts the server; returns its address and a switch that makes `_prom._tcp` answer SERVFAIL.
        pub async fn start() -> (std::net::SocketAddr, Arc<AtomicBool>) {
            // The TCP listener needs the UDP socket's port number, which another process may hold for TCP:
            // take a new UDP port until both are free (a fixed pair made the test fail now and then in CI).
            let mut tries = 0;
            let (udp, addr, tcp) = loop {
                let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let addr = udp.local_addr().unwrap();
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(tcp) => break (udp, addr, tcp),
                    Err(_) if tries < 50 => tries += 1,
                    Err(e) => panic!("no port free for both UDP and TCP after 50 tries: {e}"),
                }
            };
            let fail = Arc::new(AtomicBool::new(false));
            let f = fail.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                    let _ = udp.send_to(&answer(&buf[..n], false, f.load(Ordering::SeqCst)), peer).await;
                }
            });
            let f = fail.clone();
            tokio::spawn(async move {
                while let Ok((mut s, _)) = tcp.accept().await {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).await.is_err() {
                        continue;
                    }
                    let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                    if s.read_exact(&mut q).await.is_err() {
                        continue;
                    }
                    let a = answer(&q, true, f.load(Ordering::SeqCst));
                    let _ = s.write_all(&(a.len() as u16).to_be_bytes()).await;
                    let _ = s.write_all(&a).await;
                }
            });
            (addr, fail)
        }
    }

    fn dns_cfg(kind: &str, port: u16, names: &[&str]) -> DnsSdConfig {
        DnsSdConfig {
            names: names.iter().map(|n| n.to_string()).collect(),
            kind: kind.into(),
            port,
            refresh_interval: config::Duration::from_millis(100),
        }
    }

    fn meta(t: &BTreeMap<String, String>) -> [&str; 6] {
        [
            &t[ADDRESS_LABEL],
            &t["__meta_dns_name"],
            &t["__meta_dns_srv_record_target"],
            &t["__meta_dns_srv_record_port"],
            &t["__meta_dns_mx_record_target"],
            &t["__meta_dns_ns_record_target"],
        ]
    }

    #[tokio::test]
    async fn dns_sd_record_types_against_local_server() {
        let (addr, _) = fake_dns::start().await;
        let srv = DnsServers::Fixed(vec![addr]);
        let g = dns_lookup(&dns_cfg("SRV", 0, &[]), &srv, "_prom._tcp.ex.test").await.unwrap();
        assert_eq!(g.source, "_prom._tcp.ex.test");
        let got: Vec<[&str; 6]> = g.targets.iter().map(meta).collect();
        assert_eq!(
            got,
            vec![
                ["node1.ex.test:9100", "_prom._tcp.ex.test", "node1.ex.test.", "9100", "", ""],
                ["node2.ex.test:9101", "_prom._tcp.ex.test", "node2.ex.test.", "9101", "", ""],
            ]
        );
        let g = dns_lookup(&dns_cfg("MX", 25, &[]), &srv, "mx.ex.test").await.unwrap();
        assert_eq!(meta(&g.targets[0]), ["mail.ex.test:25", "mx.ex.test", "", "", "mail.ex.test.", ""]);
        let g = dns_lookup(&dns_cfg("NS", 53, &[]), &srv, "ns.ex.test.").await.unwrap();
        assert_eq!(meta(&g.targets[0]), ["ns1.ex.test:53", "ns.ex.test.", "", "", "", "ns1.ex.test."]);
        // CNAME in an A answer is skipped; the A record behind it counts.
        let g = dns_lookup(&dns_cfg("A", 9100, &[]), &srv, "alias.ex.test").await.unwrap();
        assert_eq!(g.targets.len(), 1);
        assert_eq!(g.targets[0][ADDRESS_LABEL], "10.0.0.7:9100");
        let g = dns_lookup(&dns_cfg("AAAA", 9100, &[]), &srv, "v6.ex.test").await.unwrap();
        assert_eq!(g.targets[0][ADDRESS_LABEL], "[::1]:9100");
        // Truncated over UDP: asked again over TCP.
        let g = dns_lookup(&dns_cfg("SRV", 0, &[]), &srv, "big.ex.test").await.unwrap();
        assert_eq!(g.targets[0][ADDRESS_LABEL], "tcp-only.ex.test:80");
        // NXDOMAIN is an empty group, not an error.
        let g = dns_lookup(&dns_cfg("SRV", 0, &[]), &srv, "nope.ex.test").await.unwrap();
        assert!(g.targets.is_empty());
    }

    #[tokio::test]
    async fn dns_sd_failed_lookup_keeps_previous_targets() {
        let (addr, fail) = fake_dns::start().await;
        let (tx, mut rx) = mpsc::channel(4);
        let (_stop_tx, stop) = watch::channel(false);
        let m = Arc::new(ScrapeMetrics::default());
        let cfg = dns_cfg("SRV", 0, &["_prom._tcp.ex.test", "nope.ex.test"]);
        let h = spawn(1, Provider::Dns(cfg, DnsServers::Fixed(vec![addr])), tx, m.clone(), stop);
        let (i, g) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        assert_eq!(i, 1);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].targets.len(), 2);
        assert!(g[1].targets.is_empty());
        fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let before = m.sd_dns_lookup_failures_total.load(Relaxed);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(m.sd_dns_lookup_failures_total.load(Relaxed) > before);
        assert!(rx.try_recv().is_err(), "a failing name must keep its last targets");
        h.abort();
    }

    #[tokio::test]
    async fn dns_unreachable_server_is_an_error() {
        // Nothing listens on this port: the exchange fails, so the lookup fails (not an empty group).
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        drop(sock);
        let r = dns_lookup(&dns_cfg("SRV", 0, &[]), &DnsServers::Fixed(vec![addr]), "x.test").await;
        assert!(r.is_err(), "{r:?}");
    }
}
