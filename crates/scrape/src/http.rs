//! HTTP client construction from a section's `HttpClientConfig`, and per-request authentication.

use config::HttpClientConfig;

fn read_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| format!("unable to read {path}: {e}"))
}

/// Builds a client honouring tls_config (CA, client cert, insecure_skip_verify), follow_redirects, proxy
/// settings and compression. Credentials are applied per request by [`apply_auth`] so credential files are
/// re-read like Prometheus does.
pub(crate) fn build_client(cfg: &HttpClientConfig, enable_compression: bool) -> Result<reqwest::Client, String> {
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
    b.build().map_err(|e| format!("building HTTP client: {e}"))
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
