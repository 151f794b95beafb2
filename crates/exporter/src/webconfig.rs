//! `--web.config.file`: the Prometheus exporter-toolkit web configuration (v0.8, as in node_exporter 1.5).
//!
//! ```yaml
//! tls_server_config:   {cert_file, key_file, client_auth_type, client_ca_file, cipher_suites,
//!                       curve_preferences, min_version, max_version, prefer_server_cipher_suites}
//! http_server_config:  {http2, headers}
//! basic_auth_users:    {<user>: <bcrypt hash>}
//! ```
//! Unknown fields are errors (yaml.UnmarshalStrict); relative file paths are relative to the config
//! file's directory. As exporter-toolkit does, the file is read again for every request (users, headers)
//! and for every TLS handshake (certificates), so rotating a certificate or a password needs no restart;
//! everything is validated once at startup so a broken file fails fast.
//!
//! Differences, all refused or stated rather than silently ignored: TLS 1.0/1.1 do not exist in rustls
//! (min_version TLS10/TLS11 behave as TLS12); `client_auth_type` RequestClientCert/RequireAnyClientCert
//! (accept any client certificate without verification) are refused; cipher_suites name TLS 1.2 suites
//! rustls implements (Go also applies the list to TLS 1.2 only); CurveP521 is refused (not in rustls'
//! ring provider); HTTP/2 is not offered (`http2` is accepted, ALPN stays http/1.1).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rustls::crypto::ring as provider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// Errors of the web configuration file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error("failed to load X509KeyPair: {0}")]
    KeyPair(String),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// TLS versions by exporter-toolkit name; rustls knows only 1.2 and 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TlsVersion {
    V10,
    V11,
    V12,
    V13,
}

fn tls_version(s: &str) -> Result<TlsVersion, WebConfigError> {
    Ok(match s {
        "TLS10" => TlsVersion::V10,
        "TLS11" => TlsVersion::V11,
        "TLS12" => TlsVersion::V12,
        "TLS13" => TlsVersion::V13,
        _ => return Err(WebConfigError::Invalid(format!("unknown TLS version: {s}"))),
    })
}

/// A parsed, validated web configuration.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    pub cert_file: String,
    pub key_file: String,
    pub client_auth_type: String,
    pub client_ca_file: String,
    pub cipher_suites: Vec<String>,
    pub curve_preferences: Vec<String>,
    min_version: Option<TlsVersion>,
    max_version: Option<TlsVersion>,
    pub headers: BTreeMap<String, String>,
    /// user → bcrypt hash.
    pub users: BTreeMap<String, String>,
}

/// Headers exporter-toolkit lets users set, with their allowed values (empty: any value).
const EXTRA_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// config_util.JoinDir: relative, non-empty paths are taken relative to the config file's directory.
fn join_dir(dir: &Path, p: String) -> String {
    if p.is_empty() || Path::new(&p).is_absolute() {
        p
    } else {
        dir.join(p).to_string_lossy().into_owned()
    }
}

/// Whether a YAML document has any content besides comments and blank lines (an empty file is the
/// all-defaults config in Go's yaml.v2).
fn yaml_is_empty(s: &str) -> bool {
    s.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    })
}

impl WebConfig {
    /// Reads and validates the file (exporter-toolkit's getConfig plus header validation).
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text` as if read from `path` (relative file names resolve against its directory).
    pub fn parse(text: &str, path: &Path) -> Result<WebConfig, WebConfigError> {
        let raw: RawConfig = if yaml_is_empty(text) {
            RawConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| WebConfigError::Parse {
                path: path.to_path_buf(),
                msg: e.to_string(),
            })?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = raw.tls_server_config.unwrap_or_default();
        let http = raw.http_server_config.unwrap_or_default();
        let headers = http.headers.unwrap_or_default();
        for (k, v) in &headers {
            let Some((_, allowed)) = EXTRA_HEADERS.iter().find(|(h, _)| h == k) else {
                return Err(WebConfigError::Invalid(format!(
                    "HTTP header {k:?} can not be configured"
                )));
            };
            if !allowed.is_empty() && !allowed.contains(&v.as_str()) {
                return Err(WebConfigError::Invalid(format!(
                    "invalid value for {k}. Expected one of: {allowed:?}, but got: {v:?}"
                )));
            }
        }
        let _ = (http.http2, tls.prefer_server_cipher_suites);
        Ok(WebConfig {
            cert_file: join_dir(dir, tls.cert_file.unwrap_or_default()),
            key_file: join_dir(dir, tls.key_file.unwrap_or_default()),
            client_auth_type: tls.client_auth_type.unwrap_or_default(),
            client_ca_file: join_dir(dir, tls.client_ca_file.unwrap_or_default()),
            cipher_suites: tls.cipher_suites.unwrap_or_default(),
            curve_preferences: tls.curve_preferences.unwrap_or_default(),
            min_version: tls.min_version.as_deref().map(tls_version).transpose()?,
            max_version: tls.max_version.as_deref().map(tls_version).transpose()?,
            headers,
            users: raw.basic_auth_users.unwrap_or_default(),
        })
    }

    /// exporter-toolkit's validateUsers: every password must be a bcrypt hash with a valid cost.
    pub fn validate_users(&self) -> Result<(), WebConfigError> {
        for (user, hash) in &self.users {
            bcrypt_cost(hash)
                .map_err(|m| WebConfigError::Invalid(format!("basic_auth_users: {user}: {m}")))?;
        }
        Ok(())
    }

    /// Whether the config asks for TLS at all (exporter-toolkit's errNoTLSConfig otherwise).
    pub fn tls_enabled(&self) -> bool {
        !(self.cert_file.is_empty()
            && self.key_file.is_empty()
            && self.client_auth_type.is_empty()
            && self.client_ca_file.is_empty())
    }

    /// Builds the rustls server configuration (ConfigToTLSConfig); `Ok(None)` when TLS is not configured.
    pub fn server_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, WebConfigError> {
        if !self.tls_enabled() {
            return Ok(None);
        }
        if self.cert_file.is_empty() {
            return Err(WebConfigError::Invalid("missing cert_file".into()));
        }
        if self.key_file.is_empty() {
            return Err(WebConfigError::Invalid("missing key_file".into()));
        }
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| WebConfigError::KeyPair(format!("{}: {e}", self.cert_file)))?;
        if certs.is_empty() {
            return Err(WebConfigError::KeyPair(format!(
                "{}: no certificate",
                self.cert_file
            )));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| WebConfigError::KeyPair(format!("{}: {e}", self.key_file)))?;

        let mut prov = provider::default_provider();
        if !self.cipher_suites.is_empty() {
            let mut chosen = Vec::new();
            for name in &self.cipher_suites {
                let Some(cs) = provider::ALL_CIPHER_SUITES.iter().find(|cs| {
                    cs.version() == &rustls::version::TLS12
                        && cs.suite().as_str() == Some(name.as_str())
                }) else {
                    return Err(WebConfigError::Invalid(format!("unknown cipher: {name}")));
                };
                chosen.push(*cs);
            }
            // Go applies the list to TLS 1.2 only; TLS 1.3 suites stay as they are.
            chosen.extend(
                provider::ALL_CIPHER_SUITES
                    .iter()
                    .filter(|cs| cs.version() == &rustls::version::TLS13)
                    .copied(),
            );
            prov.cipher_suites = chosen;
        }
        if !self.curve_preferences.is_empty() {
            let mut groups = Vec::new();
            for c in &self.curve_preferences {
                let g = match c.as_str() {
                    "CurveP256" => provider::kx_group::SECP256R1,
                    "CurveP384" => provider::kx_group::SECP384R1,
                    "X25519" => provider::kx_group::X25519,
                    "CurveP521" => {
                        return Err(WebConfigError::Invalid(
                            "curve CurveP521 is not supported by ignis (rustls)".into(),
                        ))
                    }
                    _ => return Err(WebConfigError::Invalid(format!("unknown curve: {c}"))),
                };
                groups.push(g);
            }
            prov.kx_groups = groups;
        }
        let min = self.min_version.unwrap_or(TlsVersion::V12);
        let max = self.max_version.unwrap_or(TlsVersion::V13);
        let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
        if min <= TlsVersion::V12 && max >= TlsVersion::V12 {
            versions.push(&rustls::version::TLS12);
        }
        if max >= TlsVersion::V13 {
            versions.push(&rustls::version::TLS13);
        }
        if versions.is_empty() {
            return Err(WebConfigError::Invalid(format!(
                "no TLS version between min_version {min:?} and max_version {max:?} is supported"
            )));
        }
        let builder = rustls::ServerConfig::builder_with_provider(Arc::new(prov))
            .with_protocol_versions(&versions)?;

        let roots = || -> Result<Arc<rustls::RootCertStore>, WebConfigError> {
            let mut store = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(&self.client_ca_file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| WebConfigError::Invalid(format!("{}: {e}", self.client_ca_file)))?;
            store.add_parsable_certificates(certs);
            Ok(Arc::new(store))
        };
        let builder = match self.client_auth_type.as_str() {
            "" | "NoClientCert" => {
                if !self.client_ca_file.is_empty() {
                    return Err(WebConfigError::Invalid(
                        "Client CA's have been configured without a Client Auth Policy".into(),
                    ));
                }
                builder.with_no_client_auth()
            }
            "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
                if self.client_ca_file.is_empty() {
                    return Err(WebConfigError::Invalid(format!(
                        "client_auth_type {} needs client_ca_file",
                        self.client_auth_type
                    )));
                }
                let v = WebPkiClientVerifier::builder(roots()?);
                let v = if self.client_auth_type == "VerifyClientCertIfGiven" {
                    v.allow_unauthenticated()
                } else {
                    v
                };
                let v = v
                    .build()
                    .map_err(|e| WebConfigError::Invalid(format!("client_ca_file: {e}")))?;
                builder.with_client_cert_verifier(v)
            }
            "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert" => {
                return Err(WebConfigError::Invalid(format!(
                    "client_auth_type {} (client certificates without verification) is not supported by ignis",
                    self.client_auth_type
                )))
            }
            other => {
                return Err(WebConfigError::Invalid(format!(
                    "Invalid ClientAuth: {other}"
                )))
            }
        };
        let mut cfg = builder
            .with_single_cert(certs, key)
            .map_err(|e| WebConfigError::KeyPair(e.to_string()))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Arc::new(cfg)))
    }
}

/// Go's bcrypt.Cost: checks the hash's shape and returns its cost.
pub fn bcrypt_cost(hash: &str) -> Result<u32, String> {
    let b = hash.as_bytes();
    // $2a$10$ + 53 characters of salt and hash.
    if b.len() < 59 {
        return Err("crypto/bcrypt: hashedSecret too short to be a bcrypted password".into());
    }
    if b[0] != b'$' || b[1] > b'2' {
        return Err(format!(
            "crypto/bcrypt: bcrypt algorithm version '{}' requested is newer than current version '2'",
            b[1] as char
        ));
    }
    let rest = if b[2] != b'$' { &b[4..] } else { &b[3..] };
    if rest.len() < 3 || rest[2] != b'$' {
        return Err("crypto/bcrypt: malformed cost".into());
    }
    let cost: u32 = std::str::from_utf8(&rest[..2])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("crypto/bcrypt: malformed cost")?;
    if !(4..=31).contains(&cost) {
        return Err(format!(
            "crypto/bcrypt: cost {cost} is outside allowed range (4,31)"
        ));
    }
    Ok(cost)
}

/// A bcrypt hash of "fakepassword", compared for unknown users so timing does not reveal which
/// users exist (exporter-toolkit does the same).
const FAKE_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// Remembers bcrypt outcomes per (user, hash, password) so repeated scrapes do not pay ~50 ms of
/// bcrypt each; one comparison runs at a time (bcrypt is deliberately CPU-heavy).
#[derive(Default)]
pub struct AuthCache {
    seen: Mutex<HashMap<(String, String, String), bool>>,
    bcrypt: Mutex<()>,
}

const AUTH_CACHE_MAX: usize = 100;

/// Decodes `Authorization: Basic …` into (user, password).
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

impl AuthCache {
    /// Whether `authorization` (the header value, if any) names a configured user with the right
    /// password. Blocking (bcrypt): call from a blocking context.
    pub fn check(&self, users: &BTreeMap<String, String>, authorization: Option<&str>) -> bool {
        let Some((user, pass)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let (hash, valid_user) = match users.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (FAKE_HASH, false),
        };
        let key = (user, hash.to_string(), pass);
        if let Some(&ok) = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return ok && valid_user;
        }
        let ok = {
            let _one = self.bcrypt.lock().unwrap_or_else(|p| p.into_inner());
            bcrypt::verify(&key.2, hash).unwrap_or(false)
        } && valid_user;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= AUTH_CACHE_MAX {
            seen.clear();
        }
        seen.insert(key, ok);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_strict_and_relative_paths() {
        let p = Path::new("/etc/ne/web.yml");
        let c = WebConfig::parse(
            "tls_server_config:\n  cert_file: a.crt\n  key_file: /abs/a.key\nbasic_auth_users:\n  alice: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n",
            p,
        )
        .expect("valid");
        assert_eq!(c.cert_file, "/etc/ne/a.crt");
        assert_eq!(c.key_file, "/abs/a.key");
        assert!(c.tls_enabled());
        assert_eq!(c.users.len(), 1);
        c.validate_users().expect("bcrypt hash");
        assert!(WebConfig::parse("tls_server_config:\n  cert: x\n", p).is_err());
        assert!(WebConfig::parse("nope: 1\n", p).is_err());
        let empty = WebConfig::parse("# nothing\n", p).expect("empty");
        assert!(!empty.tls_enabled());
        assert!(WebConfig::parse("tls_server_config:\n  min_version: TLS99\n", p).is_err());
    }

    #[test]
    fn headers_validated() {
        let p = Path::new("w.yml");
        WebConfig::parse(
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
            p,
        )
        .expect("allowed");
        assert!(WebConfig::parse(
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            p
        )
        .is_err());
        assert!(WebConfig::parse("http_server_config:\n  headers:\n    Server: x\n", p).is_err());
    }

    #[test]
    fn bcrypt_costs() {
        assert_eq!(bcrypt_cost(FAKE_HASH), Ok(10));
        assert!(bcrypt_cost("plaintext").is_err());
        assert!(
            bcrypt_cost("$2y$99$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi").is_err()
        );
    }

    #[test]
    fn basic_auth_checks_bcrypt_and_caches() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let users = BTreeMap::from([("bob".to_string(), hash)]);
        let c = AuthCache::default();
        let hdr = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert!(c.check(&users, Some(&hdr("bob", "s3cret"))));
        assert!(c.check(&users, Some(&hdr("bob", "s3cret"))), "cached");
        assert!(!c.check(&users, Some(&hdr("bob", "wrong"))));
        assert!(!c.check(&users, Some(&hdr("eve", "fakepassword"))));
        assert!(!c.check(&users, None));
        assert!(!c.check(&users, Some("Bearer x")));
    }
}
