//! What PromQL reads: the local TSDB merged with every `remote_read` source of the config.

use model::merge::MergeQueryable;
use model::storage::Queryable;
use std::sync::Arc;

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn read_secret(inline: &str, file: &str) -> Result<String, String> {
    if !file.is_empty() {
        return std::fs::read_to_string(file).map(|s| s.trim().to_string()).map_err(|e| format!("reading {file}: {e}"));
    }
    Ok(inline.to_string())
}

/// The `Authorization` header value an HTTP client config asks for, if any.
pub fn authorization_header(h: &config::HttpClientConfig) -> Result<Option<String>, String> {
    if let Some(b) = &h.basic_auth {
        let user = read_secret(&b.username, &b.username_file)?;
        let pass = read_secret(b.password.expose(), &b.password_file)?;
        return Ok(Some(format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()))));
    }
    if let Some(a) = &h.authorization {
        let kind = if a.kind.is_empty() { "Bearer" } else { a.kind.as_str() };
        let cred = read_secret(a.credentials.expose(), &a.credentials_file)?;
        return Ok(Some(format!("{kind} {cred}")));
    }
    Ok(None)
}

/// Builds the queryable for a config: the local storage alone, or merged with remote-read clients.
pub fn build(local: Arc<dyn Queryable>, cfg: &config::Config, local_start: Arc<dyn Fn() -> i64 + Send + Sync>)
    -> Result<Arc<dyn Queryable>, String> {
    if cfg.remote_read.is_empty() {
        return Ok(local);
    }
    let external = crate::state::external_labels(cfg);
    let mut sources: Vec<Arc<dyn Queryable>> = vec![local];
    for rr in &cfg.remote_read {
        let http = rr.http_client();
        let c = remote::client::ReadClientConfig {
            name: rr.name.clone(),
            url: rr.url.clone(),
            timeout: rr.remote_timeout.as_std(),
            headers: rr.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            authorization: authorization_header(&http).map_err(|e| format!("remote_read {}: {e}", rr.url))?,
            required_matchers: rr.required_matchers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            read_recent: rr.read_recent,
            external_labels: external.clone(),
            filter_external_labels: rr.filter_external_labels,
        };
        sources.push(Arc::new(remote::client::RemoteReadClient::new(c, Some(local_start.clone()))));
    }
    Ok(Arc::new(MergeQueryable::new(sources)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("user:pass", "dXNlcjpwYXNz")] {
            assert_eq!(super::base64(i.as_bytes()), o);
        }
    }
}
