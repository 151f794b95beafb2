//! `alerting`, `remote_write`, `remote_read`, `storage`, `tracing` and `runtime` sections. Other crates act
//! on them; here they are parsed, defaulted and validated with Prometheus's rules and messages.

use crate::http::with_http_client;
use crate::relabel::RelabelConfig;
use crate::scrape::{check_target_address, DnsSdConfig, FileSdConfig, HttpSdConfig, StaticConfig};
use crate::types::{is_false, is_zero_i64, nd, Duration, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}
fn one_minute() -> Duration {
    Duration::from_secs(60)
}
fn http() -> String {
    "http".into()
}
fn v2() -> String {
    "v2".into()
}

with_http_client! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AlertmanagerConfig {
    }
    then {
        #[serde(default = "http")]
        pub scheme: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub path_prefix: String,
        #[serde(default = "ten_seconds")]
        pub timeout: Duration,
        #[serde(default = "v2")]
        pub api_version: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub static_configs: Vec<StaticConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub file_sd_configs: Vec<FileSdConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub http_sd_configs: Vec<HttpSdConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub dns_sd_configs: Vec<DnsSdConfig>,
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
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub relabel_configs: Vec<RelabelConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub alert_relabel_configs: Vec<RelabelConfig>,
    }
}

impl AlertmanagerConfig {
    pub(crate) fn validate(&mut self) -> Result<(), String> {
        self.validate_http_client()?;
        if self.api_version != "v1" && self.api_version != "v2" {
            return Err(format!(
                "expected Alertmanager api version to be one of [v1 v2] but got {}",
                self.api_version
            ));
        }
        if self.relabel_configs.is_empty() {
            for sc in &self.static_configs {
                for t in &sc.targets {
                    check_target_address(t)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub capacity: i64,
    pub max_shards: i64,
    pub min_shards: i64,
    pub max_samples_per_send: i64,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    #[serde(skip_serializing_if = "is_false")]
    pub retry_on_http_429: bool,
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
            sample_age_limit: Duration(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub send: bool,
    pub send_interval: Duration,
    pub max_samples_per_send: i64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        // Prometheus 2.42's DefaultMetadataConfig: 500 metadata entries per request (not the samples' 2000).
        MetadataConfig { send: true, send_interval: Duration::from_secs(60), max_samples_per_send: 500 }
    }
}

/// AWS SigV4 signing (accepted and kept; used by remote write to managed services).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigV4Config {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub access_key: String,
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub secret_key: Secret,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role_arn: String,
}

with_http_client! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RemoteWriteConfig {
        #[serde(default)]
        pub url: String,
        #[serde(default = "thirty_seconds")]
        pub remote_timeout: Duration,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "nd")]
        pub headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub write_relabel_configs: Vec<RelabelConfig>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(default, skip_serializing_if = "is_false")]
        pub send_exemplars: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        pub send_native_histograms: bool,
    }
    then {
        #[serde(default, deserialize_with = "nd")]
        pub queue_config: QueueConfig,
        #[serde(default, deserialize_with = "nd")]
        pub metadata_config: MetadataConfig,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sigv4: Option<SigV4Config>,
    }
}

const RESERVED_HEADERS: [&str; 16] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

fn validate_headers(h: &BTreeMap<String, String>) -> Result<(), String> {
    for k in h.keys() {
        let l = k.to_lowercase();
        if l == "authorization" {
            return Err(
                "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, or azuread parameter"
                    .into(),
            );
        }
        if RESERVED_HEADERS.contains(&l.as_str()) {
            return Err(format!("{k} is a reserved header. It must not be changed"));
        }
    }
    Ok(())
}

fn validate_url(u: &str) -> Result<(), String> {
    match u.split_once("://") {
        Some((s, rest)) if !s.is_empty() && !rest.is_empty() => Ok(()),
        _ => Err(format!("parse {u:?}: invalid URL")),
    }
}

impl RemoteWriteConfig {
    pub(crate) fn validate(&mut self) -> Result<(), String> {
        if self.url.is_empty() {
            return Err("url for remote_write is empty".into());
        }
        validate_url(&self.url)?;
        validate_headers(&self.headers)?;
        self.validate_http_client()?;
        let auth = self.basic_auth.is_some() || self.authorization.is_some() || self.oauth2.is_some();
        if auth && self.sigv4.is_some() {
            return Err("at most one of basic_auth, authorization, oauth2, sigv4, & azuread must be configured".into());
        }
        Ok(())
    }
}

with_http_client! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RemoteReadConfig {
        #[serde(default)]
        pub url: String,
        #[serde(default = "one_minute")]
        pub remote_timeout: Duration,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "nd")]
        pub headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "is_false")]
        pub read_recent: bool,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
    }
    then {
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "nd")]
        pub required_matchers: BTreeMap<String, String>,
        #[serde(default = "crate::types::default_true")]
        pub filter_external_labels: bool,
    }
}

impl RemoteReadConfig {
    pub(crate) fn validate(&mut self) -> Result<(), String> {
        if self.url.is_empty() {
            return Err("url for remote_read is empty".into());
        }
        validate_url(&self.url)?;
        validate_headers(&self.headers)?;
        self.validate_http_client()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub out_of_order_time_window: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    pub max_exemplars: i64,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        ExemplarsConfig { max_exemplars: 100_000 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsdb: Option<TsdbConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exemplars: Option<ExemplarsConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_fraction: Option<f64>,
    #[serde(skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<crate::http::TlsConfig>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "nd")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub compression: String,
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub timeout: Duration,
}

impl TracingConfig {
    pub(crate) fn validate(&mut self) -> Result<(), String> {
        if self.client_type.is_empty() {
            self.client_type = "grpc".into();
        }
        if self.client_type != "grpc" && self.client_type != "http" {
            return Err(format!("expected tracing client type to be to be one of [grpc http], but got {:?}", self.client_type));
        }
        if !self.compression.is_empty() && self.compression != "gzip" {
            return Err(format!("invalid compression type {:?} provided, valid options: gzip", self.compression));
        }
        Ok(())
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.endpoint.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub gogc: i64,
}

impl AlertmanagerConfig {
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
