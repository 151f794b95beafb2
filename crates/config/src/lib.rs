//! prometheus.yml: the full Prometheus 2.53 schema parsed strictly (an unknown field is an error naming the
//! field, the Go type Prometheus would name, and the line), defaults and inheritance from `global` exactly as
//! Prometheus applies them, validation with Prometheus's messages, serialization for
//! `/api/v1/status/config` (secrets shown as `<secret>`), `promtool check config` behaviour, and relabeling
//! ([`relabel`]).
//!
//! Architecture invariant: this crate only describes configuration. It never opens sockets or starts tasks;
//! the scrape, rules, remote and web crates act on what it returns.

// One implementation of Go's ASCII \d \s \w \b for model's matchers and our relabel regexes, shared as a
// source file so model's public API stays as it is.
#[path = "../../model/src/goregex.rs"]
mod goregex;
mod http;
pub mod relabel;
mod remote;
mod scrape;
mod types;
mod unsupported_sd;

pub use http::{serde_headers::Header, Authorization, BasicAuth, HttpClientConfig, OAuth2, TlsConfig};
pub use relabel::{relabel, Action, RelabelConfig};
pub use remote::{
    AlertingConfig, AlertmanagerConfig, ExemplarsConfig, MetadataConfig, QueueConfig, RemoteReadConfig,
    RemoteWriteConfig, RuntimeConfig, SigV4Config, StorageConfig, TracingConfig, TsdbConfig,
};
pub use scrape::{
    check_target_address, default_scrape_protocols, DnsSdConfig, FileSdConfig, GlobalConfig, HttpSdConfig,
    ScrapeConfig, StaticConfig, SCRAPE_PROTOCOLS,
};
pub use types::{ByteSize, Duration, Secret};
pub use unsupported_sd::{unsupported_sd_warning, Opaque, UNSUPPORTED_SD_KEYS};

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use types::nd;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The YAML did not parse, had an unknown field, or failed validation. `line` is set when the problem is
    /// tied to a place in the file.
    #[error("{}{}", file.as_ref().map(|f| format!("parsing YAML file {f}: ")).unwrap_or_default(), render_msg(*line, msg))]
    Parse { file: Option<String>, line: Option<u64>, msg: String },
}

fn render_msg(line: Option<u64>, msg: &str) -> String {
    match line {
        // Prometheus (yaml.v2) words unknown fields this way; keep it so users' grep/muscle memory works.
        Some(l) if msg.starts_with("field ") => format!("yaml: unmarshal errors:\n  line {l}: {msg}"),
        Some(l) => format!("line {l}: {msg}"),
        None => msg.to_string(),
    }
}

impl ConfigError {
    fn invalid(msg: impl Into<String>) -> ConfigError {
        ConfigError::Parse { file: None, line: None, msg: msg.into() }
    }

    fn with_file(self, file: &Path) -> ConfigError {
        match self {
            ConfigError::Parse { line, msg, .. } => {
                ConfigError::Parse { file: Some(file.display().to_string()), line, msg }
            }
            e => e,
        }
    }

    /// The 1-based line the error points at, if known.
    pub fn line(&self) -> Option<u64> {
        match self {
            ConfigError::Parse { line, .. } => *line,
            _ => None,
        }
    }
}

/// The whole of prometheus.yml, with defaults filled in and relative paths resolved against the directory of
/// the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    #[serde(deserialize_with = "nd")]
    pub global: GlobalConfig,
    #[serde(skip_serializing_if = "is_default_runtime", deserialize_with = "nd")]
    pub runtime: RuntimeConfig,
    #[serde(skip_serializing_if = "is_default_alerting", deserialize_with = "nd")]
    pub alerting: AlertingConfig,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
    pub rule_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
    pub scrape_config_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(skip_serializing_if = "is_default_storage", deserialize_with = "nd")]
    pub storage: StorageConfig,
    #[serde(skip_serializing_if = "TracingConfig::is_zero", deserialize_with = "nd")]
    pub tracing: TracingConfig,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
    pub remote_write: Vec<RemoteWriteConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
    pub remote_read: Vec<RemoteReadConfig>,
}

fn is_default_runtime(r: &RuntimeConfig) -> bool {
    *r == RuntimeConfig::default()
}
fn is_default_alerting(a: &AlertingConfig) -> bool {
    *a == AlertingConfig::default()
}
fn is_default_storage(s: &StorageConfig) -> bool {
    *s == StorageConfig::default()
}

impl Default for Config {
    /// The raw empty config; [`Config::from_yaml_str`] of an empty document gives the filled-in one.
    fn default() -> Self {
        Config {
            global: GlobalConfig::default(),
            runtime: RuntimeConfig::default(),
            alerting: AlertingConfig::default(),
            rule_files: Vec::new(),
            scrape_config_files: Vec::new(),
            scrape_configs: Vec::new(),
            storage: StorageConfig::default(),
            tracing: TracingConfig::default(),
            remote_write: Vec::new(),
            remote_read: Vec::new(),
        }
    }
}

/// Reads and validates a prometheus.yml.
pub fn load_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Io { path: path.display().to_string(), source })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Config::from_yaml_str(&text, &dir).map_err(|e| e.with_file(path))
}

/// `^[^*]*(\*[^/]*)?$`: at most one `*`, and only in the last path element.
fn valid_rule_path(p: &str) -> bool {
    match p.find('*') {
        None => true,
        Some(i) => !p[i + 1..].contains('*') && !p[i..].contains('/'),
    }
}

/// True when the document holds nothing but comments, blank lines and document markers (Go treats that as an
/// empty config; the YAML parser would report a missing mapping).
fn is_blank_document(s: &str) -> bool {
    s.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

impl Config {
    /// Parses and validates YAML text. Relative paths (rule files, file_sd files, credential files) are
    /// resolved against `base_dir`.
    pub fn from_yaml_str(s: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = if is_blank_document(s) { Config::default() } else { parse_yaml(s)? };
        cfg.validate().map_err(ConfigError::invalid)?;
        cfg.set_directory(base_dir);
        Ok(cfg)
    }

    /// Prometheus's `Config.UnmarshalYAML` checks, with defaults and `global` inheritance applied.
    fn validate(&mut self) -> Result<(), String> {
        self.global.fill_defaults()?;
        for rf in &self.rule_files {
            if !valid_rule_path(rf) {
                return Err(format!("invalid rule file path {rf:?}"));
            }
        }
        for sf in &self.scrape_config_files {
            if !valid_rule_path(sf) {
                return Err(format!("invalid scrape config file path {sf:?}"));
            }
        }
        let mut jobs = HashSet::new();
        for sc in &mut self.scrape_configs {
            sc.validate_local()?;
            sc.inherit(&self.global)?;
            if !jobs.insert(sc.job_name.clone()) {
                return Err(format!("found multiple scrape configs with job name {:?}", sc.job_name));
            }
        }
        for am in &mut self.alerting.alertmanagers {
            am.validate()?;
        }
        let mut names = HashSet::new();
        for rw in &mut self.remote_write {
            rw.validate()?;
            if !rw.name.is_empty() && !names.insert(rw.name.clone()) {
                return Err(format!("found multiple remote write configs with job name {:?}", rw.name));
            }
        }
        let mut names = HashSet::new();
        for rr in &mut self.remote_read {
            rr.validate()?;
            if !rr.name.is_empty() && !names.insert(rr.name.clone()) {
                return Err(format!("found multiple remote read configs with job name {:?}", rr.name));
            }
        }
        if !self.tracing.is_zero() {
            self.tracing.validate()?;
        }
        Ok(())
    }

    fn set_directory(&mut self, dir: &Path) {
        use types::join_dir;
        self.global.query_log_file = join_dir(dir, &self.global.query_log_file);
        for f in self.rule_files.iter_mut().chain(self.scrape_config_files.iter_mut()) {
            *f = join_dir(dir, f);
        }
        for sc in &mut self.scrape_configs {
            sc.set_directory(dir);
        }
        for am in &mut self.alerting.alertmanagers {
            am.set_http_directory(dir);
            for f in &mut am.file_sd_configs {
                for p in &mut f.files {
                    *p = join_dir(dir, p);
                }
            }
        }
        for rw in &mut self.remote_write {
            rw.set_http_directory(dir);
        }
        for rr in &mut self.remote_read {
            rr.set_http_directory(dir);
        }
    }

    /// The built-in config used when no config file is given: scrape ourselves every 15s as job
    /// "prometheus". A wildcard listen host (`0.0.0.0`, `[::]`, empty) is scraped via `localhost`.
    pub fn default_self_scrape(listen_addr: &str) -> Config {
        let target = match listen_addr.rsplit_once(':') {
            Some((host, port)) if host.is_empty() || host == "0.0.0.0" || host == "[::]" || host == "::" => {
                format!("localhost:{port}")
            }
            Some(_) => listen_addr.to_string(),
            None => "localhost:9090".to_string(),
        };
        let mut global = GlobalConfig { scrape_interval: Duration::from_secs(15), ..GlobalConfig::default() };
        global.evaluation_interval = Duration::from_secs(15);
        // Fixed valid values: cannot fail.
        let _ = global.fill_defaults();
        let sc = ScrapeConfig::with_static_targets("prometheus", &[&target], &global);
        Config { global, scrape_configs: vec![sc], ..Config::default() }
    }

    /// The scrape configs of this file plus those of `scrape_config_files` (Prometheus's
    /// `GetScrapeConfigs`), validated and inheriting from `global`.
    pub fn get_scrape_configs(&self) -> Result<Vec<ScrapeConfig>, ConfigError> {
        let mut out = self.scrape_configs.clone();
        let mut jobs: HashSet<String> = out.iter().map(|s| s.job_name.clone()).collect();
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ScrapeConfigs {
            #[serde(default, deserialize_with = "nd")]
            scrape_configs: Vec<ScrapeConfig>,
        }
        for pat in &self.scrape_config_files {
            let paths = glob::glob(pat)
                .map_err(|e| ConfigError::invalid(format!("error retrieving scrape config files for {pat:?}: {e}")))?;
            for p in paths.flatten() {
                let text = std::fs::read_to_string(&p)
                    .map_err(|source| ConfigError::Io { path: p.display().to_string(), source })?;
                let file_err = |msg: String| ConfigError::invalid(format!("{:?}: {msg}", p.display().to_string()));
                let parsed: ScrapeConfigs = if is_blank_document(&text) {
                    ScrapeConfigs { scrape_configs: Vec::new() }
                } else {
                    parse_yaml(&text).map_err(|e| file_err(e.to_string()))?
                };
                let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                for mut sc in parsed.scrape_configs {
                    sc.validate_local().map_err(&file_err)?;
                    sc.inherit(&self.global).map_err(&file_err)?;
                    if !jobs.insert(sc.job_name.clone()) {
                        return Err(file_err(format!(
                            "found multiple scrape configs with job name {:?}",
                            sc.job_name
                        )));
                    }
                    sc.set_directory(&dir);
                    out.push(sc);
                }
            }
        }
        Ok(out)
    }

    /// One warning per job (or Alertmanager config) and unsupported service-discovery mechanism it uses,
    /// e.g. `scrape job "k8s": kubernetes service discovery (kubernetes_sd_configs) is not supported by
    /// ignis; no targets from it`. Scrape configs of `scrape_config_files` are not included (`check config`
    /// includes them).
    pub fn unsupported_sd_warnings(&self) -> Vec<String> {
        self.sd_warnings(&self.scrape_configs)
    }

    fn sd_warnings(&self, scrape_configs: &[ScrapeConfig]) -> Vec<String> {
        let mut out = Vec::new();
        for sc in scrape_configs {
            for (key, _) in sc.unsupported_sd() {
                out.push(unsupported_sd_warning(&format!("scrape job {:?}", sc.job_name), key));
            }
        }
        for (i, am) in self.alerting.alertmanagers.iter().enumerate() {
            for (key, _) in am.unsupported_sd() {
                out.push(unsupported_sd_warning(&format!("alertmanager config {i}"), key));
            }
        }
        out
    }

    /// The config as YAML, as `/api/v1/status/config` returns it (defaults filled, secrets `<secret>`).
    pub fn to_yaml(&self) -> String {
        match serde_saphyr::to_string(self) {
            Ok(s) => s,
            // Every field is a plain string/number/map; serialization has no failure mode for them.
            Err(e) => format!("<error creating config string: {e}>"),
        }
    }
}

/// Parses YAML into `T`, turning serde-saphyr's error into a [`ConfigError`] with Prometheus's wording for
/// unknown fields.
fn parse_yaml<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, ConfigError> {
    serde_saphyr::from_str::<T>(s).map_err(|e| {
        let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
        let rendered = e.to_string();
        let first = rendered.lines().next().unwrap_or_default();
        let msg = strip_location_prefix(first);
        ConfigError::Parse { file: None, line, msg: prometheus_wording(msg) }
    })
}

/// serde-saphyr renders `error: line L column C: message`; keep only the message.
fn strip_location_prefix(s: &str) -> &str {
    let s = s.strip_prefix("error: ").unwrap_or(s);
    if let Some(rest) = s.strip_prefix("line ") {
        if let Some((_, msg)) = rest.split_once(": ") {
            return msg;
        }
    }
    s
}

/// `unknown field `foo`, expected one of a, b` → `field foo not found in type config.ScrapeConfig`.
fn prometheus_wording(msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("unknown field `") else { return msg.to_string() };
    let Some((field, tail)) = rest.split_once('`') else { return msg.to_string() };
    let expected: HashSet<&str> = tail
        .split([' ', ',', '`'])
        .filter(|w| !w.is_empty() && !matches!(*w, "expected" | "one" | "of" | "or" | "there" | "are" | "no" | "fields"))
        .collect();
    let ty = struct_registry()
        .iter()
        .find(|(_, fields)| fields.len() == expected.len() && fields.iter().all(|f| expected.contains(f)))
        .map(|(name, _)| types::go_type_name(name))
        .unwrap_or("config");
    format!("field {field} not found in type {ty}")
}

/// (Rust struct name, serde field names) of every strictly parsed config struct.
fn struct_registry() -> &'static [(&'static str, &'static [&'static str])] {
    static R: std::sync::OnceLock<Vec<(&'static str, &'static [&'static str])>> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        use types::struct_fields as f;
        [
            f::<Config>(),
            f::<GlobalConfig>(),
            f::<RuntimeConfig>(),
            f::<ScrapeConfig>(),
            f::<RelabelConfig>(),
            f::<StaticConfig>(),
            f::<FileSdConfig>(),
            f::<HttpSdConfig>(),
            f::<DnsSdConfig>(),
            f::<TlsConfig>(),
            f::<BasicAuth>(),
            f::<Authorization>(),
            f::<OAuth2>(),
            f::<AlertingConfig>(),
            f::<AlertmanagerConfig>(),
            f::<RemoteWriteConfig>(),
            f::<QueueConfig>(),
            f::<MetadataConfig>(),
            f::<RemoteReadConfig>(),
            f::<StorageConfig>(),
            f::<TsdbConfig>(),
            f::<ExemplarsConfig>(),
            f::<TracingConfig>(),
        ]
        .into_iter()
        .flatten()
        .collect()
    })
}

/// Outcome of checking one config file the way `promtool check config` does. The CLI prints `stdout` and
/// `stderr` and exits with `exit_code`.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub stdout: String,
    pub stderr: String,
    /// 0 on success, 1 on failure (promtool's codes).
    pub exit_code: i32,
    /// Rule files the config names (globs expanded), for the rules checker to check next.
    pub rule_files: Vec<PathBuf>,
    /// The loaded config, when it loaded.
    pub config: Option<Config>,
    /// Things that load but will not work as in Prometheus (unsupported service discovery); also printed in
    /// `stdout` as `  WARNING: …` lines. They do not change the exit code.
    pub warnings: Vec<String>,
}

/// Checks a config file like `promtool check config FILE`: loads and validates it, checks that the rule
/// files it names exist, and that file_sd files parse.
pub fn check_config(path: impl AsRef<Path>) -> CheckReport {
    let path = path.as_ref();
    let name = path.display().to_string();
    let mut r = CheckReport { stdout: format!("Checking {name}\n"), ..CheckReport::default() };
    match check_inner(path) {
        Ok((cfg, rule_files, warnings)) => {
            r.warnings = warnings;
            for w in &r.warnings {
                r.stdout.push_str(&format!("  WARNING: {w}\n"));
            }
            if !rule_files.is_empty() {
                r.stdout.push_str(&format!("  SUCCESS: {} rule files found\n", rule_files.len()));
            }
            r.stdout.push_str(&format!(" SUCCESS: {name} is valid prometheus config file syntax\n"));
            r.rule_files = rule_files;
            r.config = Some(cfg);
        }
        Err(e) => {
            r.stderr.push_str(&format!("  FAILED: {e}\n"));
            r.exit_code = 1;
        }
    }
    r.stdout.push('\n');
    r
}

fn check_inner(path: &Path) -> Result<(Config, Vec<PathBuf>, Vec<String>), String> {
    let cfg = load_file(path).map_err(|e| e.to_string())?;
    let mut rule_files = Vec::new();
    for rf in &cfg.rule_files {
        let found: Vec<PathBuf> = glob::glob(rf).map_err(|e| e.to_string())?.flatten().collect();
        if !rf.contains('*') && found.is_empty() {
            return Err(format!("{rf:?} does not point to an existing file"));
        }
        rule_files.extend(found);
    }
    let scfgs = cfg.get_scrape_configs().map_err(|e| format!("error loading scrape configs: {e}"))?;
    for sc in &scfgs {
        if let Some(a) = &sc.authorization {
            if !a.credentials_file.is_empty() {
                std::fs::metadata(&a.credentials_file).map_err(|e| {
                    format!(
                        "error checking authorization credentials or bearer token file {:?}: {e}",
                        a.credentials_file
                    )
                })?;
            }
        }
        if let Some(t) = &sc.tls_config {
            for f in [&t.ca_file, &t.cert_file, &t.key_file] {
                if !f.is_empty() {
                    std::fs::metadata(f).map_err(|e| format!("error checking TLS file {f:?}: {e}"))?;
                }
            }
        }
    }
    let warnings = cfg.sd_warnings(&scfgs);
    Ok((cfg, rule_files, warnings))
}

#[cfg(test)]
mod tests;
