//! HTTP client construction from a section's `HttpClientConfig`, and per-request authentication.

use config::HttpClientConfig;

fn read_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| format!("unable to read {path}: {e}"))
}

/// Builds a client honouring tls_config (CA, client cert, insecure_skip_verify; server_name needs a client
/// per target, see [`server_name_client`]), follow_redirects, proxy
/// settings and compression. Credentials are applied per request by [`apply_auth`] so credential files are
/// re-read like Prometheus does.
pub(crate) fn build_client(cfg: &HttpClientConfig, enable_compression: bool) -> Result<reqwest::Client, String> {
    client_builder(cfg, enable_compression)?.build().map_err(|e| format!("building HTTP client: {e}"))
}

fn client_builder(cfg: &HttpClientConfig, enable_compression: bool) -> Result<reqwest::ClientBuilder, String> {
    let mut b = reqwest::Client::builder();
    if !cfg.follow_redirects {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    if !enable_compression {
        b = b.no_gzip();
    }
    let tls = &cfg.tls_config;
    if tls.insecure_skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    let ca = if !tls.ca_file.is_empty() { Some(read_file(&tls.ca_file)?) } else { (!tls.ca.is_empty()).then(|| tls.ca.clone()) };
    if let Some(pem) = ca {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| format!("invalid CA: {e}"))? {
            b = b.add_root_certificate(cert);
        }
    }
    let cert = if !tls.cert_file.is_empty() { Some(read_file(&tls.cert_file)?) } else { (!tls.cert.is_empty()).then(|| tls.cert.clone()) };
    let key = if !tls.key_file.is_empty() { Some(read_file(&tls.key_file)?) } else { (!tls.key.is_empty()).then(|| tls.key.expose().to_string()) };
    if let (Some(c), Some(k)) = (cert, key) {
        let pem = format!("{c}\n{k}\n");
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| format!("invalid client certificate: {e}"))?);
    }
    if !cfg.proxy_url.is_empty() {
        let mut p = reqwest::Proxy::all(&cfg.proxy_url).map_err(|e| format!("invalid proxy_url: {e}"))?;
        if !cfg.no_proxy.is_empty() {
            p = p.no_proxy(reqwest::NoProxy::from_string(&cfg.no_proxy));
        }
        b = b.proxy(p);
    } else if !cfg.proxy_from_environment {
        // Prometheus ignores HTTP(S)_PROXY unless proxy_from_environment is set.
        b = b.no_proxy();
    }
    Ok(b)
}

/// Connects every lookup of one host name to another host: the scrape of `https://10.0.0.5:443/metrics` with
/// `tls_config.server_name: api.internal` is sent to `https://api.internal:443/metrics` (so rustls uses
/// `api.internal` both as SNI and as the name the certificate must carry, which is what Go's
/// `tls.Config.ServerName` does) while this resolver makes `api.internal` resolve to `10.0.0.5`.
struct PinnedHost {
    server_name: String,
    real_host: String,
}

impl reqwest::dns::Resolve for PinnedHost {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = if name.as_str().eq_ignore_ascii_case(&self.server_name) {
            self.real_host.clone()
        } else {
            name.as_str().to_string()
        };
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A client for one target whose tls_config names a `server_name`, with the URL to request and the Host
/// header to send (the target's own `host:port`, as Go keeps `req.Host` while `ServerName` changes TLS only).
pub(crate) struct ServerNameClient {
    pub client: reqwest::Client,
    pub url: String,
    pub host_header: String,
}

/// `None` unless the target is https and tls_config.server_name is set (then plain [`build_client`] is used).
pub(crate) fn server_name_client(
    cfg: &HttpClientConfig,
    enable_compression: bool,
    target_url: &str,
) -> Result<Option<ServerNameClient>, String> {
    let server_name = cfg.tls_config.server_name.as_str();
    if server_name.is_empty() {
        return Ok(None);
    }
    let mut url = reqwest::Url::parse(target_url).map_err(|e| format!("invalid target URL {target_url:?}: {e}"))?;
    if url.scheme() != "https" {
        return Ok(None);
    }
    let Some(host) = url.host_str() else { return Ok(None) };
    // host_str brackets IPv6 literals; the resolver wants the bare address.
    let real_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let host_header = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    url.set_host(Some(server_name)).map_err(|e| format!("invalid tls_config.server_name {server_name:?}: {e}"))?;
    let resolver = PinnedHost { server_name: url.host_str().unwrap_or(server_name).to_string(), real_host };
    let client = client_builder(cfg, enable_compression)?
        .dns_resolver(std::sync::Arc::new(resolver))
        .build()
        .map_err(|e| format!("building HTTP client: {e}"))?;
    Ok(Some(ServerNameClient { client, url: url.to_string(), host_header }))
}

/// Adds basic auth / Authorization / custom headers to a request.
pub(crate) fn apply_auth(mut req: reqwest::RequestBuilder, cfg: &HttpClientConfig) -> Result<reqwest::RequestBuilder, String> {
    if let Some(b) = &cfg.basic_auth {
        let user = if b.username_file.is_empty() { b.username.clone() } else { read_file(&b.username_file)? };
        let pass = if b.password_file.is_empty() { b.password.expose().to_string() } else { read_file(&b.password_file)? };
        req = req.basic_auth(user, Some(pass));
    }
    if let Some(a) = &cfg.authorization {
        let cred = if a.credentials_file.is_empty() { a.credentials.expose().to_string() } else { read_file(&a.credentials_file)? };
        let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
        req = req.header(reqwest::header::AUTHORIZATION, format!("{kind} {cred}"));
    }
    for (name, h) in &cfg.http_headers {
        for v in &h.values {
            req = req.header(name.as_str(), v.as_str());
        }
        for v in &h.secrets {
            req = req.header(name.as_str(), v.expose());
        }
        for f in &h.files {
            req = req.header(name.as_str(), read_file(f)?);
        }
    }
    Ok(req)
}
