//! Prometheus's common `HTTPClientConfig`, which YAML inlines into scrape, alertmanager, remote write/read
//! and http_sd sections. serde cannot combine `flatten` with `deny_unknown_fields`, so the fields are spliced
//! into each of those structs by [`with_http_client!`] and read back as one value by `http_client()`.

use crate::types::{nd, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username_file: String,
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub password: Secret,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password_file: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub credentials: Secret,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credentials_file: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert: String,
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub key: Secret,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    pub insecure_skip_verify: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub min_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub max_version: String,
}

impl TlsConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.ca.is_empty() && !self.ca_file.is_empty() {
            return Err("at most one of ca and ca_file must be configured".into());
        }
        if !self.cert.is_empty() && !self.cert_file.is_empty() {
            return Err("at most one of cert and cert_file must be configured".into());
        }
        if !self.key.is_empty() && !self.key_file.is_empty() {
            return Err("at most one of key and key_file must be configured".into());
        }
        let has_cert = !self.cert.is_empty() || !self.cert_file.is_empty();
        let has_key = !self.key.is_empty() || !self.key_file.is_empty();
        if has_cert && !has_key {
            return Err("exactly one of key or key_file must be configured when a client certificate is configured".into());
        }
        if has_key && !has_cert {
            return Err("exactly one of cert or cert_file must be configured when a client key is configured".into());
        }
        for v in [&self.min_version, &self.max_version] {
            if !v.is_empty() && !matches!(v.as_str(), "TLS10" | "TLS11" | "TLS12" | "TLS13") {
                return Err(format!("unknown TLS version: {v}"));
            }
        }
        Ok(())
    }

    fn set_directory(&mut self, dir: &Path) {
        for f in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file] {
            *f = crate::types::join_dir(dir, f);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuth2 {
    pub client_id: String,
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub client_secret: Secret,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_secret_file: String,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
    pub scopes: Vec<String>,
    pub token_url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "nd")]
    pub endpoint_params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_url: String,
}

/// The HTTP client settings of one section, gathered from its inlined fields.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    /// Bearer tokens are folded in here at load time (`bearer_token` becomes `authorization.credentials`).
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2>,
    pub tls_config: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    pub proxy_url: String,
    pub no_proxy: String,
    pub proxy_from_environment: bool,
    pub http_headers: BTreeMap<String, serde_headers::Header>,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy_url: String::new(),
            no_proxy: String::new(),
            proxy_from_environment: false,
            http_headers: BTreeMap::new(),
        }
    }
}

pub mod serde_headers {
    use super::*;
    /// One entry of `http_headers`: literal values, secrets, or files to read them from.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Header {
        #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub values: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub secrets: Vec<Secret>,
        #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nd")]
        pub files: Vec<String>,
    }
}

/// Defines a config struct with the HTTP client fields spliced in between its own leading and trailing fields
/// (the order Prometheus prints them in), plus `http_client()` and `validate_http_client()`.
macro_rules! with_http_client {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* pub $f:ident : $t:ty, )*
        }
        then {
            $( $(#[$am:meta])* pub $af:ident : $at:ty, )*
        }
    ) => {
        $(#[$m])*
        pub struct $name {
            $( $(#[$fm])* pub $f: $t, )*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub basic_auth: Option<$crate::http::BasicAuth>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub authorization: Option<$crate::http::Authorization>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub oauth2: Option<$crate::http::OAuth2>,
            #[serde(default, skip_serializing_if = "crate::types::Secret::is_empty")]
            pub bearer_token: $crate::types::Secret,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub bearer_token_file: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub tls_config: Option<$crate::http::TlsConfig>,
            #[serde(default = "crate::types::default_true")]
            pub follow_redirects: bool,
            #[serde(default = "crate::types::default_true")]
            pub enable_http2: bool,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub proxy_url: String,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub no_proxy: String,
            #[serde(default, skip_serializing_if = "crate::types::is_false")]
            pub proxy_from_environment: bool,
            #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty", deserialize_with = "crate::types::nd")]
            pub proxy_connect_header: std::collections::BTreeMap<String, Vec<$crate::types::Secret>>,
            #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty", deserialize_with = "crate::types::nd")]
            pub http_headers: std::collections::BTreeMap<String, $crate::http::serde_headers::Header>,
            $( $(#[$am])* pub $af: $at, )*
        }

        impl $name {
            /// The HTTP client settings of this section.
            pub fn http_client(&self) -> $crate::http::HttpClientConfig {
                $crate::http::HttpClientConfig {
                    basic_auth: self.basic_auth.clone(),
                    authorization: self.authorization.clone(),
                    oauth2: self.oauth2.clone(),
                    tls_config: self.tls_config.clone().unwrap_or_default(),
                    follow_redirects: self.follow_redirects,
                    enable_http2: self.enable_http2,
                    proxy_url: self.proxy_url.clone(),
                    no_proxy: self.no_proxy.clone(),
                    proxy_from_environment: self.proxy_from_environment,
                    http_headers: self.http_headers.clone(),
                }
            }

            /// Prometheus's `HTTPClientConfig.Validate`, which also folds `bearer_token(_file)` into
            /// `authorization` as Prometheus does.
            pub(crate) fn validate_http_client(&mut self) -> Result<(), String> {
                $crate::http::validate_parts(
                    &mut self.basic_auth,
                    &mut self.authorization,
                    &self.oauth2,
                    &mut self.bearer_token,
                    &mut self.bearer_token_file,
                    &self.tls_config,
                    &self.proxy_url,
                    &self.no_proxy,
                    self.proxy_from_environment,
                )
            }

            pub(crate) fn set_http_directory(&mut self, dir: &std::path::Path) {
                $crate::http::set_directory_parts(dir, &mut self.basic_auth, &mut self.authorization, &mut self.tls_config, &mut self.bearer_token_file);
            }
        }
    };
}
pub(crate) use with_http_client;

#[allow(clippy::too_many_arguments)]
pub(crate) fn validate_parts(
    basic_auth: &mut Option<BasicAuth>,
    authorization: &mut Option<Authorization>,
    oauth2: &Option<OAuth2>,
    bearer_token: &mut Secret,
    bearer_token_file: &mut String,
    tls: &Option<TlsConfig>,
    proxy_url: &str,
    no_proxy: &str,
    proxy_from_env: bool,
) -> Result<(), String> {
    let has_bearer = !bearer_token.is_empty() || !bearer_token_file.is_empty();
    if !bearer_token.is_empty() && !bearer_token_file.is_empty() {
        return Err("at most one of bearer_token & bearer_token_file must be configured".into());
    }
    if (basic_auth.is_some() || oauth2.is_some()) && has_bearer {
        return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
    }
    if let Some(b) = basic_auth {
        if !b.username.is_empty() && !b.username_file.is_empty() {
            return Err("at most one of basic_auth username & username_file must be configured".into());
        }
        if !b.password.is_empty() && !b.password_file.is_empty() {
            return Err("at most one of basic_auth password & password_file must be configured".into());
        }
    }
    if let Some(a) = authorization.as_mut() {
        if has_bearer {
            return Err("authorization is not compatible with bearer_token & bearer_token_file".into());
        }
        if !a.credentials.is_empty() && !a.credentials_file.is_empty() {
            return Err("at most one of authorization credentials & credentials_file must be configured".into());
        }
        a.kind = a.kind.trim().to_string();
        if a.kind.is_empty() {
            a.kind = "Bearer".into();
        }
        if a.kind.eq_ignore_ascii_case("basic") {
            return Err(r#"authorization type cannot be set to "basic", use "basic_auth" instead"#.into());
        }
        if basic_auth.is_some() || oauth2.is_some() {
            return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
        }
    } else if has_bearer {
        // Prometheus rewrites the deprecated fields into an Authorization block.
        *authorization = Some(Authorization {
            kind: "Bearer".into(),
            credentials: std::mem::take(bearer_token),
            credentials_file: std::mem::take(bearer_token_file),
        });
    }
    if let Some(o) = oauth2 {
        if basic_auth.is_some() {
            return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
        }
        if o.client_id.is_empty() {
            return Err("oauth2 client_id must be configured".into());
        }
        if o.token_url.is_empty() {
            return Err("oauth2 token_url must be configured".into());
        }
        if !o.client_secret.is_empty() && !o.client_secret_file.is_empty() {
            return Err("at most one of oauth2 client_secret & client_secret_file must be configured".into());
        }
    }
    if let Some(t) = tls {
        t.validate()?;
    }
    if !proxy_url.is_empty() && proxy_from_env {
        return Err("if proxy_from_environment is configured, proxy_url must not be configured".into());
    }
    if !no_proxy.is_empty() && proxy_url.is_empty() {
        return Err("if no_proxy is configured, proxy_url must also be configured".into());
    }
    Ok(())
}

pub(crate) fn set_directory_parts(
    dir: &Path,
    basic_auth: &mut Option<BasicAuth>,
    authorization: &mut Option<Authorization>,
    tls: &mut Option<TlsConfig>,
    bearer_token_file: &mut String,
) {
    use crate::types::join_dir;
    if let Some(b) = basic_auth {
        b.password_file = join_dir(dir, &b.password_file);
        b.username_file = join_dir(dir, &b.username_file);
    }
    if let Some(a) = authorization {
        a.credentials_file = join_dir(dir, &a.credentials_file);
    }
    if let Some(t) = tls {
        t.set_directory(dir);
    }
    *bearer_token_file = join_dir(dir, bearer_token_file);
}

