//! Targets: from discovered label sets to scrape targets (Prometheus's `PopulateLabels` and
//! `TargetsFromGroup`), the per-target state the API shows, and per-target metadata.

use crate::parse::MetricType;
use config::{relabel::relabel_builder, ScrapeConfig};
use model::{Labels, LabelsBuilder};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const RESERVED_LABEL_PREFIX: &str = "__";
pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";

/// A group of targets from one source of one discovery mechanism (Prometheus's `targetgroup.Group`). This is
/// also the JSON/YAML shape of file_sd and http_sd files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    /// Each target's own labels; always holds `__address__`.
    #[serde(skip)]
    pub targets: Vec<BTreeMap<String, String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Identifies the group within its provider (e.g. `file.json:0`).
    #[serde(skip)]
    pub source: String,
}

impl TargetGroup {
    /// A group from plain `host:port` strings.
    pub fn from_addresses(source: String, addrs: &[String], labels: BTreeMap<String, String>) -> TargetGroup {
        let targets = addrs.iter().map(|a| BTreeMap::from([(ADDRESS_LABEL.to_string(), a.clone())])).collect();
        TargetGroup { targets, labels, source }
    }
}

/// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    Some((host, port))
}

/// Prometheus's `PopulateLabels`: adds job/interval/timeout/path/scheme/params defaults, applies target
/// relabeling, adds the default port, checks the address, drops `__meta_*` labels and defaults `instance`.
/// Returns `(labels, discovered_labels)`; empty `labels` with non-empty discovered labels means dropped.
pub fn populate_labels(mut lb: LabelsBuilder, cfg: &ScrapeConfig) -> Result<(Labels, Labels), String> {
    let defaults = [
        (JOB_LABEL, cfg.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, cfg.scrape_interval.to_string()),
        (SCRAPE_TIMEOUT_LABEL, cfg.scrape_timeout.to_string()),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (SCHEME_LABEL, cfg.scheme.clone()),
    ];
    for (n, v) in &defaults {
        if lb.get(n).unwrap_or("").is_empty() {
            lb.set(n, v);
        }
    }
    for (k, v) in &cfg.params {
        if let Some(first) = v.first() {
            lb.set(&format!("{PARAM_LABEL_PREFIX}{k}"), first);
        }
    }
    let pre = lb.build();
    if !relabel_builder(&mut lb, &cfg.relabel_configs) {
        return Ok((Labels::empty(), pre));
    }
    let Some(addr) = lb.get(ADDRESS_LABEL).map(str::to_string) else {
        return Err("no address".into());
    };
    let scheme = lb.get(SCHEME_LABEL).unwrap_or("").to_string();
    let mut addr = addr;
    if split_host_port(&addr).is_none() && split_host_port(&format!("{addr}:1234")).is_some() {
        match scheme.as_str() {
            "http" | "" => addr.push_str(":80"),
            "https" => addr.push_str(":443"),
            _ => return Err(format!("invalid scheme: {:?}", cfg.scheme)),
        }
        lb.set(ADDRESS_LABEL, &addr);
    }
    config::check_target_address(&addr)?;
    let interval = lb.get(SCRAPE_INTERVAL_LABEL).unwrap_or("").to_string();
    let iv = model::duration::parse_duration(&interval).map_err(|e| format!("error parsing scrape interval: {e}"))?;
    if iv == 0 {
        return Err("scrape interval cannot be 0".into());
    }
    let timeout = lb.get(SCRAPE_TIMEOUT_LABEL).unwrap_or("").to_string();
    let tv = model::duration::parse_duration(&timeout).map_err(|e| format!("error parsing scrape timeout: {e}"))?;
    if tv == 0 {
        return Err("scrape timeout cannot be 0".into());
    }
    if tv > iv {
        return Err(format!("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})"));
    }
    lb.retain(|n, _| !n.starts_with(META_LABEL_PREFIX));
    if lb.get(INSTANCE_LABEL).unwrap_or("").is_empty() {
        lb.set(INSTANCE_LABEL, &addr);
    }
    Ok((lb.build(), pre))
}

/// Health as the targets API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Unknown,
    Up,
    Down,
}

#[derive(Debug, Clone)]
pub(crate) struct TargetState {
    pub health: Health,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_duration: f64,
}

/// Per-metric metadata from HELP/TYPE/UNIT lines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
    /// Scrape iteration the metric was last seen in (metadata is kept 10 scrapes after it disappears).
    pub(crate) last_iter: u64,
}

/// One scrape target.
#[derive(Debug)]
pub struct Target {
    pub(crate) labels: Labels,
    pub(crate) discovered: Labels,
    pub(crate) url: String,
    pub(crate) hash: u64,
    pub(crate) pool: String,
    /// Labels not starting with `__`: attached to every sample.
    pub(crate) public_labels: Vec<(String, String)>,
    pub(crate) interval_ms: i64,
    pub(crate) timeout_ms: i64,
    pub(crate) state: Mutex<TargetState>,
    pub(crate) metadata: Mutex<HashMap<String, Metadata>>,
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// Escapes a URL path as Go's `url.URL.EscapedPath` does when there is no raw path: everything but letters,
/// digits, `-_.~` and `$&+,/:;=@` is percent-encoded (so `!'()*` and `?` are too); a path of just `*` is left
/// alone.
fn path_escape(s: &str, out: &mut String) {
    if s == "*" {
        out.push('*');
        return;
    }
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b'/'
            | b':'
            | b';'
            | b'='
            | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// Escapes a URL host (with port) as Go's `url.URL.String` does: letters, digits, `-_.~`, the sub-delimiters,
/// `:`, brackets, `<>` and `"` stay; everything else is percent-encoded.
fn host_escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'['
            | b']'
            | b'<'
            | b'>'
            | b'"' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

impl Target {
    pub(crate) fn new(labels: Labels, discovered: Labels, cfg: &ScrapeConfig) -> Target {
        // Query parameters: the config's, with __param_<name> labels overriding the first value.
        let mut params: BTreeMap<String, Vec<String>> = cfg.params.clone();
        for l in labels.iter() {
            if let Some(k) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
                let e = params.entry(k.to_string()).or_default();
                if e.is_empty() {
                    e.push(l.value.to_string());
                } else {
                    e[0] = l.value.to_string();
                }
            }
        }
        // Go's url.URL{Scheme, Host, Path}.String(): a path not starting with `/` gets one after the host.
        // An empty scheme (relabeled away) leaves `//host/path`, as Go writes it.
        let scheme = labels.get_or_empty(SCHEME_LABEL);
        let mut url = if scheme.is_empty() { "//".to_string() } else { format!("{scheme}://") };
        host_escape(labels.get_or_empty(ADDRESS_LABEL), &mut url);
        let path = labels.get_or_empty(METRICS_PATH_LABEL);
        if !path.is_empty() && !path.starts_with('/') {
            url.push('/');
        }
        path_escape(path, &mut url);
        let mut first = true;
        for (k, vs) in &params {
            for v in vs {
                url.push(if first { '?' } else { '&' });
                first = false;
                query_escape(k, &mut url);
                url.push('=');
                query_escape(v, &mut url);
            }
        }
        let mut h = labels.stable_hash().to_le_bytes().to_vec();
        h.extend_from_slice(url.as_bytes());
        let hash = xxhash_rust::xxh3::xxh3_64(&h);
        let public_labels = labels
            .iter()
            .filter(|l| !l.name.starts_with(RESERVED_LABEL_PREFIX))
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        let dur = |n: &str, d: i64| model::duration::parse_duration(labels.get_or_empty(n)).unwrap_or(d);
        Target {
            interval_ms: dur(SCRAPE_INTERVAL_LABEL, cfg.scrape_interval.as_millis()),
            timeout_ms: dur(SCRAPE_TIMEOUT_LABEL, cfg.scrape_timeout.as_millis()),
            labels,
            discovered,
            url,
            hash,
            pool: cfg.job_name.clone(),
            public_labels,
            state: Mutex::new(TargetState {
                health: Health::Unknown,
                last_error: String::new(),
                last_scrape: None,
                last_duration: 0.0,
            }),
            metadata: Mutex::new(HashMap::new()),
        }
    }

    /// A dropped target: only its discovered labels are known.
    pub(crate) fn dropped(discovered: Labels, cfg: &ScrapeConfig) -> Target {
        let mut t = Target::new(Labels::empty(), discovered, cfg);
        t.url.clear();
        t
    }


    /// Offset of this target's scrapes within the interval: stable across restarts because it only depends on
    /// the target's labels and URL (Prometheus's `Target.offset`).
    pub(crate) fn offset_ms(&self, interval_ms: i64, seed: u64, now_ms: i64) -> i64 {
        if interval_ms <= 0 {
            return 0;
        }
        let base = interval_ms - now_ms.rem_euclid(interval_ms);
        let off = ((self.hash ^ seed) % interval_ms as u64) as i64;
        let mut next = base + off;
        if next > interval_ms {
            next -= interval_ms;
        }
        next
    }

    pub(crate) fn info(&self, global_url: &str) -> TargetInfo {
        let st = self.state.lock().clone();
        let map = |l: &Labels| l.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect();
        TargetInfo {
            discovered_labels: map(&self.discovered),
            labels: self
                .labels
                .iter()
                .filter(|l| !l.name.starts_with(RESERVED_LABEL_PREFIX))
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect(),
            scrape_pool: self.pool.clone(),
            scrape_url: self.url.clone(),
            global_url: if global_url.is_empty() { self.url.clone() } else { global_url.to_string() },
            last_error: st.last_error,
            last_scrape: rfc3339(st.last_scrape),
            last_scrape_duration: st.last_duration,
            health: st.health,
            scrape_interval: self.labels.get_or_empty(SCRAPE_INTERVAL_LABEL).to_string(),
            scrape_timeout: self.labels.get_or_empty(SCRAPE_TIMEOUT_LABEL).to_string(),
        }
    }
}

fn rfc3339(t: Option<SystemTime>) -> String {
    match t {
        // Go's zero time, as Prometheus reports never-scraped targets.
        None => "0001-01-01T00:00:00Z".to_string(),
        Some(t) => chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    }
}

/// A target as `/api/v1/targets` shows it (field names are the API's).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetInfo {
    pub discovered_labels: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub scrape_pool: String,
    pub scrape_url: String,
    pub global_url: String,
    pub last_error: String,
    /// RFC 3339 with sub-second precision; `0001-01-01T00:00:00Z` before the first scrape.
    pub last_scrape: String,
    /// Seconds.
    pub last_scrape_duration: f64,
    pub health: Health,
    pub scrape_interval: String,
    pub scrape_timeout: String,
}

/// One metric's metadata from one target (`/api/v1/targets/metadata`; `/api/v1/metadata` aggregates these).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetMetadata {
    /// The target's public labels (job, instance, …).
    pub target: BTreeMap<String, String>,
    pub metric: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::labels;

    fn cfg(y: &str) -> ScrapeConfig {
        let c = config::Config::from_yaml_str(y, std::path::Path::new("/")).unwrap();
        c.scrape_configs[0].clone()
    }

    fn pop(c: &ScrapeConfig, l: Labels) -> Result<(Labels, Labels), String> {
        populate_labels(l.builder(), c)
    }

    #[test]
    fn populate_defaults_and_port() {
        let c = cfg("scrape_configs:\n- job_name: j\n  scrape_interval: 15s\n");
        let (l, d) = pop(&c, labels! {"__address__" => "host", "__meta_x" => "1", "custom" => "v"}).unwrap();
        assert_eq!(
            l,
            labels! {"__address__" => "host:80", "__metrics_path__" => "/metrics", "__scheme__" => "http",
            "__scrape_interval__" => "15s", "__scrape_timeout__" => "10s", "custom" => "v", "instance" => "host:80", "job" => "j"}
        );
        assert_eq!(d.get("__meta_x"), Some("1"));
        assert_eq!(d.get("__address__"), Some("host"));
        let (l, _) = pop(&c, labels! {"__address__" => "[::1]:9090"}).unwrap();
        assert_eq!(l.get("instance"), Some("[::1]:9090"));
        let (l, _) = pop(&c, labels! {"__address__" => "::1"}).unwrap();
        assert_eq!(l.get("__address__"), Some("::1"), "not a valid host, no port added");
        let c2 = cfg("scrape_configs:\n- job_name: j\n  scheme: https\n");
        let (l, _) = pop(&c2, labels! {"__address__" => "h"}).unwrap();
        assert_eq!(l.get("__address__"), Some("h:443"));
        assert!(pop(&c, labels! {"x" => "y"}).unwrap_err().contains("no address"));
    }

    #[test]
    fn relabel_drop_and_params() {
        let c = cfg(
            "scrape_configs:\n- job_name: j\n  params: {module: [http_2xx], 'match[]': ['{a=\"b\"}']}\n  relabel_configs:\n  - source_labels: [__address__]\n    regex: drop.*\n    action: drop\n  - source_labels: [__address__]\n    target_label: __param_target\n",
        );
        let (l, d) = pop(&c, labels! {"__address__" => "drop:1"}).unwrap();
        assert!(l.is_empty());
        assert_eq!(d.get("__address__"), Some("drop:1"));
        let (l, _) = pop(&c, labels! {"__address__" => "ok:1"}).unwrap();
        let t = Target::new(l, Labels::empty(), &c);
        assert_eq!(t.url.as_str(), "http://ok:1/metrics?match%5B%5D=%7Ba%3D%22b%22%7D&module=http_2xx&target=ok%3A1");
    }

    /// Go's `url.URL.String()`: path and host escaping, `/` before a relative path (matches Prometheus 2.42 in
    /// the interop_targets test).
    #[test]
    fn scrape_url_like_go() {
        let c = cfg("scrape_configs:\n- job_name: j\n  metrics_path: metrics\n");
        let url = |addr: &str, path: Option<&str>| {
            let mut lb = labels! {"__address__" => addr}.builder();
            if let Some(p) = path {
                lb.set("__metrics_path__", p);
            }
            let (l, _) = populate_labels(lb, &c).unwrap();
            Target::new(l, Labels::empty(), &c).url
        };
        assert_eq!(url("h:1", None), "http://h:1/metrics");
        assert_eq!(url("h:1", Some("/a b!(x)*'?y;z$&+,:=@~")), "http://h:1/a%20b%21%28x%29%2A%27%3Fy;z$&+,:=@~");
        assert_eq!(url("spa ce:1", Some("*")), "http://spa%20ce:1/*");
        assert_eq!(url("[::1]:1", Some("/ä")), "http://[::1]:1/%C3%A4");
    }

    #[test]
    fn offsets_are_stable_and_in_range() {
        let c = cfg("scrape_configs:\n- job_name: j\n");
        let (l, _) = pop(&c, labels! {"__address__" => "a:1"}).unwrap();
        let t = Target::new(l.clone(), Labels::empty(), &c);
        let t2 = Target::new(l, Labels::empty(), &c);
        for now in [0, 1, 59_999, 123_456_789] {
            let o = t.offset_ms(60_000, 0, now);
            assert!((0..=60_000).contains(&o));
            assert_eq!(o, t2.offset_ms(60_000, 0, now));
            // The scrape lands on the same phase of the interval whatever "now" is.
            assert_eq!((now + o) % 60_000, (t.hash % 60_000) as i64);
        }
    }
}
