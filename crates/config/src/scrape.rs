//! `global` and `scrape_configs` sections, and the service-discovery configs a scrape config can hold.

use crate::http::with_http_client;
use crate::relabel::RelabelConfig;
use crate::types::{default_true, is_false, is_zero_u64, nd, ByteSize, Duration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Accept-header protocols Prometheus 2.53 can negotiate (`scrape_protocols`).
pub const SCRAPE_PROTOCOLS: [(&str, &str); 4] = [
    ("PrometheusProto", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"),
    ("PrometheusText0.0.4", "text/plain;version=0.0.4"),
    ("OpenMetricsText0.0.1", "application/openmetrics-text;version=0.0.1"),
    ("OpenMetricsText1.0.0", "application/openmetrics-text;version=1.0.0"),
];

pub fn default_scrape_protocols() -> Vec<String> {
    vec!["OpenMetricsText1.0.0".into(), "OpenMetricsText0.0.1".into(), "PrometheusText0.0.4".into()]
}

pub(crate) fn validate_scrape_protocols(sps: &[String]) -> Result<(), String> {
    if sps.is_empty() {
        return Err("scrape_protocols cannot be empty".into());
    }
    let mut seen = std::collections::HashSet::new();
    for sp in sps {
        if !seen.insert(sp.to_lowercase()) {
            return Err(format!("duplicated protocol in scrape_protocols, got [{}]", sps.join(" ")));
        }
        if !SCRAPE_PROTOCOLS.iter().any(|(n, _)| n == sp) {
            let mut names: Vec<&str> = SCRAPE_PROTOCOLS.iter().map(|(n, _)| *n).collect();
            names.sort();
            return Err(format!("scrape_protocols: unknown scrape protocol {sp}, supported: [{}]", names.join(" ")));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub scrape_interval: Duration,
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub scrape_timeout: Duration,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
    pub scrape_protocols: Vec<String>,
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub evaluation_interval: Duration,
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub rule_query_offset: Duration,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub query_log_file: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "nd")]
    pub external_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "ByteSize::is_zero")]
    pub body_size_limit: ByteSize,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub sample_limit: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub target_limit: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub label_limit: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub label_name_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub label_value_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub keep_dropped_targets: u64,
}

impl Default for GlobalConfig {
    /// The raw (unfilled) value; [`GlobalConfig::fill_defaults`] applies Prometheus's defaults.
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration(0),
            scrape_timeout: Duration(0),
            scrape_protocols: Vec::new(),
            evaluation_interval: Duration(0),
            rule_query_offset: Duration(0),
            query_log_file: String::new(),
            external_labels: BTreeMap::new(),
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
        }
    }
}

impl GlobalConfig {
    /// Prometheus's defaults: scrape every 1m with a 10s timeout, evaluate every 1m.
    pub fn prometheus_default() -> GlobalConfig {
        let mut g = GlobalConfig::default();
        // Cannot fail on the default value.
        let _ = g.fill_defaults();
        g
    }

    /// Fills defaults and validates, as `GlobalConfig.UnmarshalYAML` does.
    pub(crate) fn fill_defaults(&mut self) -> Result<(), String> {
        for (n, v) in &self.external_labels {
            if !model::labels::is_valid_label_name(n) {
                return Err(format!("{n:?} is not a valid label name"));
            }
            let _ = v; // any UTF-8 string is a valid value
        }
        if self.scrape_interval.is_zero() {
            self.scrape_interval = Duration::from_secs(60);
        }
        if self.scrape_timeout > self.scrape_interval {
            return Err("global scrape timeout greater than scrape interval".into());
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = Duration::from_secs(10).min(self.scrape_interval);
        }
        if self.evaluation_interval.is_zero() {
            self.evaluation_interval = Duration::from_secs(60);
        }
        if self.scrape_protocols.is_empty() {
            self.scrape_protocols = default_scrape_protocols();
        }
        validate_scrape_protocols(&self.scrape_protocols).map_err(|e| format!("{e} for global config"))
    }
}

/// One static target group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    #[serde(deserialize_with = "nd")]
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "nd")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    #[serde(deserialize_with = "nd")]
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig { files: Vec::new(), refresh_interval: Duration::from_secs(300) }
    }
}

impl FileSdConfig {
    fn validate(&self) -> Result<(), String> {
        if self.files.is_empty() {
            return Err("file service discovery config must contain at least one path name".into());
        }
        static PAT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let pat = PAT.get_or_init(|| match regex::Regex::new(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$") {
            Ok(r) => r,
            Err(e) => panic!("BUG: file_sd pattern: {e}"),
        });
        for f in &self.files {
            if !pat.is_match(f) {
                return Err(format!("path name {f:?} is not valid for file discovery"));
            }
        }
        Ok(())
    }
}

with_http_client! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct HttpSdConfig {
    }
    then {
        #[serde(default)]
        pub url: String,
        #[serde(default = "sixty_seconds")]
        pub refresh_interval: Duration,
    }
}

impl Default for HttpSdConfig {
    fn default() -> Self {
        empty_http_struct()
    }
}

/// Builds a struct with every field at its serde default (the HTTP client defaults included) by
/// deserializing an empty mapping.
fn empty_http_struct<T: serde::de::DeserializeOwned>() -> T {
    match serde_saphyr::from_str::<T>("{}") {
        Ok(v) => v,
        Err(e) => panic!("BUG: empty mapping does not deserialize: {e}"),
    }
}

impl HttpSdConfig {
    fn validate(&mut self) -> Result<(), String> {
        if self.url.is_empty() {
            return Err("URL is missing".into());
        }
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return Err("URL scheme must be 'http' or 'https'".into());
        };
        if scheme != "http" && scheme != "https" {
            return Err("URL scheme must be 'http' or 'https'".into());
        }
        if rest.is_empty() || rest.starts_with('/') {
            return Err("host is missing in URL".into());
        }
        self.validate_http_client()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSdConfig {
    #[serde(deserialize_with = "nd")]
    pub names: Vec<String>,
    pub refresh_interval: Duration,
    #[serde(rename = "type")]
    pub kind: String,
    pub port: u16,
}

impl Default for DnsSdConfig {
    fn default() -> Self {
        DnsSdConfig { names: Vec::new(), refresh_interval: Duration::from_secs(30), kind: "SRV".into(), port: 0 }
    }
}

impl DnsSdConfig {
    fn validate(&mut self) -> Result<(), String> {
        if self.names.is_empty() {
            return Err("DNS-SD config must contain at least one SRV record name".into());
        }
        self.kind = self.kind.to_uppercase();
        match self.kind.as_str() {
            "SRV" => {}
            "A" | "AAAA" | "MX" | "NS" => {
                if self.port == 0 {
                    return Err("a port is required in DNS-SD configs for all record types except SRV".into());
                }
            }
            other => return Err(format!("invalid DNS-SD records type {other}")),
        }
        Ok(())
    }
}

with_http_client! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ScrapeConfig {
        #[serde(default)]
        pub job_name: String,
        #[serde(default, skip_serializing_if = "is_false")]
        pub honor_labels: bool,
        #[serde(default = "default_true")]
        pub honor_timestamps: bool,
        #[serde(default)]
        pub track_timestamps_staleness: bool,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "nd")]
        pub params: BTreeMap<String, Vec<String>>,
        #[serde(default, skip_serializing_if = "Duration::is_zero")]
        pub scrape_interval: Duration,
        #[serde(default, skip_serializing_if = "Duration::is_zero")]
        pub scrape_timeout: Duration,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub scrape_protocols: Vec<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        pub scrape_classic_histograms: bool,
        #[serde(default = "default_metrics_path")]
        pub metrics_path: String,
        #[serde(default = "default_scheme")]
        pub scheme: String,
        #[serde(default = "default_true")]
        pub enable_compression: bool,
        #[serde(default, skip_serializing_if = "ByteSize::is_zero")]
        pub body_size_limit: ByteSize,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub sample_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub target_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub label_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub label_name_length_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub label_value_length_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub native_histogram_bucket_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_f64")]
        pub native_histogram_min_bucket_factor: f64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub keep_dropped_targets: u64,
    }
    then {
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub static_configs: Vec<StaticConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub file_sd_configs: Vec<FileSdConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub http_sd_configs: Vec<HttpSdConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub dns_sd_configs: Vec<DnsSdConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub relabel_configs: Vec<RelabelConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub metric_relabel_configs: Vec<RelabelConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub azure_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub consul_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub digitalocean_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub docker_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub dockerswarm_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub ec2_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub eureka_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub gce_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub hetzner_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub ionos_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub kubernetes_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub kuma_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub lightsail_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub linode_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub marathon_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub nerve_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub nomad_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub openstack_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub ovhcloud_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub puppetdb_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub scaleway_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub serverset_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub triton_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub uyuni_sd_configs: Vec<crate::unsupported_sd::Opaque>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub vultr_sd_configs: Vec<crate::unsupported_sd::Opaque>,
    }
}

fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

fn default_scheme() -> String {
    "http".into()
}

fn is_zero_f64(f: &f64) -> bool {
    *f == 0.0
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        empty_http_struct()
    }
}

impl ScrapeConfig {
    /// A scrape config with Prometheus's defaults for `job_name` and the given static targets, with
    /// interval/timeout inherited from `global`.
    pub fn with_static_targets(job_name: &str, targets: &[&str], global: &GlobalConfig) -> ScrapeConfig {
        let mut c = ScrapeConfig {
            job_name: job_name.into(),
            static_configs: vec![StaticConfig {
                targets: targets.iter().map(|t| t.to_string()).collect(),
                labels: BTreeMap::new(),
            }],
            ..ScrapeConfig::default()
        };
        // Static defaults above are valid, so inheritance cannot fail.
        let _ = c.inherit(global);
        c
    }

    /// Section-local validation (`ScrapeConfig.UnmarshalYAML`).
    pub(crate) fn validate_local(&mut self) -> Result<(), String> {
        if self.job_name.is_empty() {
            return Err("job_name is empty".into());
        }
        self.validate_http_client()?;
        if self.relabel_configs.is_empty() {
            for sc in &self.static_configs {
                for t in &sc.targets {
                    check_target_address(t)?;
                }
            }
        }
        for f in &self.file_sd_configs {
            f.validate()?;
        }
        for h in &mut self.http_sd_configs {
            h.validate()?;
        }
        for d in &mut self.dns_sd_configs {
            d.validate()?;
        }
        if self.scheme != "http" && self.scheme != "https" {
            return Err(format!("invalid scheme: {:?}", self.scheme));
        }
        Ok(())
    }

    /// Inherits from `global` and validates the result (`ScrapeConfig.Validate`).
    pub(crate) fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        if self.scrape_interval.is_zero() {
            self.scrape_interval = g.scrape_interval;
        }
        if self.scrape_timeout > self.scrape_interval {
            return Err(format!(
                "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                self.job_name
            ));
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = g.scrape_timeout.min(self.scrape_interval);
        }
        if self.body_size_limit.is_zero() {
            self.body_size_limit = g.body_size_limit;
        }
        macro_rules! inherit {
            ($($f:ident),*) => { $( if self.$f == 0 { self.$f = g.$f; } )* };
        }
        inherit!(sample_limit, target_limit, label_limit, label_name_length_limit, label_value_length_limit, keep_dropped_targets);
        if self.scrape_protocols.is_empty() {
            self.scrape_protocols = g.scrape_protocols.clone();
        }
        validate_scrape_protocols(&self.scrape_protocols)
            .map_err(|e| format!("{e} for scrape config with job name {:?}", self.job_name))
    }

    pub(crate) fn set_directory(&mut self, dir: &std::path::Path) {
        self.set_http_directory(dir);
        for f in &mut self.file_sd_configs {
            for p in &mut f.files {
                *p = crate::types::join_dir(dir, p);
            }
        }
        for h in &mut self.http_sd_configs {
            h.set_http_directory(dir);
        }
    }
}

/// Rejects URLs where a `host:port` is expected (`config.CheckTargetAddress`).
pub fn check_target_address(addr: &str) -> Result<(), String> {
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    Ok(())
}

impl ScrapeConfig {
    /// `(key, number of configs)` of every unsupported service-discovery mechanism this section uses.
    pub fn unsupported_sd(&self) -> Vec<(&'static str, usize)> {
        [
            ("azure_sd_configs", self.azure_sd_configs.len()),
            ("consul_sd_configs", self.consul_sd_configs.len()),
            ("digitalocean_sd_configs", self.digitalocean_sd_configs.len()),
            ("docker_sd_configs", self.docker_sd_configs.len()),
            ("dockerswarm_sd_configs", self.dockerswarm_sd_configs.len()),
            ("ec2_sd_configs", self.ec2_sd_configs.len()),
            ("eureka_sd_configs", self.eureka_sd_configs.len()),
            ("gce_sd_configs", self.gce_sd_configs.len()),
            ("hetzner_sd_configs", self.hetzner_sd_configs.len()),
            ("ionos_sd_configs", self.ionos_sd_configs.len()),
            ("kubernetes_sd_configs", self.kubernetes_sd_configs.len()),
            ("kuma_sd_configs", self.kuma_sd_configs.len()),
            ("lightsail_sd_configs", self.lightsail_sd_configs.len()),
            ("linode_sd_configs", self.linode_sd_configs.len()),
            ("marathon_sd_configs", self.marathon_sd_configs.len()),
            ("nerve_sd_configs", self.nerve_sd_configs.len()),
            ("nomad_sd_configs", self.nomad_sd_configs.len()),
            ("openstack_sd_configs", self.openstack_sd_configs.len()),
            ("ovhcloud_sd_configs", self.ovhcloud_sd_configs.len()),
            ("puppetdb_sd_configs", self.puppetdb_sd_configs.len()),
            ("scaleway_sd_configs", self.scaleway_sd_configs.len()),
            ("serverset_sd_configs", self.serverset_sd_configs.len()),
            ("triton_sd_configs", self.triton_sd_configs.len()),
            ("uyuni_sd_configs", self.uyuni_sd_configs.len()),
            ("vultr_sd_configs", self.vultr_sd_configs.len()),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}
