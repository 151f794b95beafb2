//! The HTTP side of remote write 1.0: one POST per batch, and Prometheus's rule for what is worth retrying
//! (`storage/remote/client.go`): network errors and 5xx are recoverable, 429 only with `retry_on_http_429`
//! (honouring `Retry-After`), everything else is final.

use config::HttpClientConfig;
use std::time::Duration;

pub(crate) const USER_AGENT: &str = concat!("ignis/", env!("CARGO_PKG_VERSION"));
/// Longest part of an error body kept for the log line.
const MAX_ERR_MSG_LEN: u64 = 1024;

#[derive(Debug)]
pub(crate) enum SendError {
    /// Worth retrying; `retry_after` from a 429's `Retry-After`.
    Recoverable { msg: String, retry_after: Option<Duration> },
    /// The batch is dropped and counted as failed.
    Unrecoverable(String),
}

/// Cheap to clone: reqwest's client is a handle to one shared connection pool.
#[derive(Clone)]
pub(crate) struct WriteClient {
    client: reqwest::blocking::Client,
    url: String,
    http: HttpClientConfig,
    headers: Vec<(String, String)>,
    retry_on_http_429: bool,
}

fn read_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| format!("unable to read {path}: {e}"))
}

impl WriteClient {
    /// Builds the client. Must not run on an async runtime thread (reqwest's blocking client owns one).
    pub(crate) fn new(cfg: &config::RemoteWriteConfig) -> Result<WriteClient, String> {
        if cfg.oauth2.is_some() {
            return Err("oauth2 is not supported by ignis's remote write sender yet".into());
        }
        if cfg.sigv4.is_some() {
            return Err("sigv4 is not supported by ignis's remote write sender yet".into());
        }
        let http = cfg.http_client();
        let mut b = reqwest::blocking::Client::builder().timeout(cfg.remote_timeout.as_std()).no_gzip();
        if !http.follow_redirects {
            b = b.redirect(reqwest::redirect::Policy::none());
        }
        let tls = &http.tls_config;
        if tls.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        let ca = if !tls.ca_file.is_empty() {
            Some(read_file(&tls.ca_file)?)
        } else {
            (!tls.ca.is_empty()).then(|| tls.ca.clone())
        };
        if let Some(pem) = ca {
            for c in reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| format!("invalid CA: {e}"))? {
                b = b.add_root_certificate(c);
            }
        }
        let cert = if !tls.cert_file.is_empty() {
            Some(read_file(&tls.cert_file)?)
        } else {
            (!tls.cert.is_empty()).then(|| tls.cert.clone())
        };
        let key = if !tls.key_file.is_empty() {
            Some(read_file(&tls.key_file)?)
        } else {
            (!tls.key.is_empty()).then(|| tls.key.expose().to_string())
        };
        if let (Some(c), Some(k)) = (cert, key) {
            let pem = format!("{c}\n{k}\n");
            let id = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| format!("invalid client certificate: {e}"))?;
            b = b.identity(id);
        }
        if !http.proxy_url.is_empty() {
            let mut p = reqwest::Proxy::all(&http.proxy_url).map_err(|e| format!("invalid proxy_url: {e}"))?;
            if !http.no_proxy.is_empty() {
                p = p.no_proxy(reqwest::NoProxy::from_string(&http.no_proxy));
            }
            b = b.proxy(p);
        } else if !http.proxy_from_environment {
            b = b.no_proxy();
        }
        let client = b.build().map_err(|e| format!("building HTTP client: {e}"))?;
        Ok(WriteClient {
            client,
            url: cfg.url.clone(),
            http,
            headers: cfg.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            retry_on_http_429: cfg.queue_config.retry_on_http_429,
        })
    }

    /// POSTs one snappy-compressed `WriteRequest`.
    pub(crate) fn store(&self, body: &[u8]) -> Result<(), SendError> {
        let mut req = self
            .client
            .post(&self.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("User-Agent", USER_AGENT)
            .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        // Credentials files are re-read per request, as Prometheus does, so rotated secrets take effect.
        let file = |p: &str| read_file(p).map_err(SendError::Unrecoverable);
        if let Some(b) = &self.http.basic_auth {
            let user = if b.username_file.is_empty() { b.username.clone() } else { file(&b.username_file)? };
            let pass = if b.password_file.is_empty() { b.password.expose().to_string() } else { file(&b.password_file)? };
            req = req.basic_auth(user, Some(pass));
        }
        if let Some(a) = &self.http.authorization {
            let cred = if a.credentials_file.is_empty() { a.credentials.expose().to_string() } else { file(&a.credentials_file)? };
            let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
            req = req.header("Authorization", format!("{kind} {cred}"));
        }
        for (name, h) in &self.http.http_headers {
            for v in &h.values {
                req = req.header(name.as_str(), v.as_str());
            }
            for v in &h.secrets {
                req = req.header(name.as_str(), v.expose());
            }
            for f in &h.files {
                req = req.header(name.as_str(), file(f)?);
            }
        }
        let resp = match req.body(body.to_vec()).send() {
            Ok(r) => r,
            Err(e) => return Err(SendError::Recoverable { msg: error_chain(&e), retry_after: None }),
        };
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            // Drain the body so the connection goes back to the pool.
            let _ = std::io::copy(&mut std::io::Read::take(resp, 1 << 16), &mut std::io::sink());
            return Ok(());
        }
        let retry_after = resp.headers().get("Retry-After").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::Read::take(resp, MAX_ERR_MSG_LEN), &mut text);
        let msg = format!("server returned HTTP status {status}: {}", text.trim());
        if status / 100 == 5 {
            Err(SendError::Recoverable { msg, retry_after: None })
        } else if status == 429 && self.retry_on_http_429 {
            Err(SendError::Recoverable { msg, retry_after })
        } else {
            Err(SendError::Unrecoverable(msg))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// `Retry-After` as delay-seconds or an HTTP date; `None` (use normal backoff) when absent, unparsable or past.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return (s > 0).then(|| Duration::from_secs(s));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    at.duration_since(std::time::SystemTime::now()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None, "past dates fall back to backoff");
        let future = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&future).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120), "{d:?}");
    }
}
