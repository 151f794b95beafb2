//! HTTP: `/` landing page and the telemetry path, with Accept-based format choice and gzip.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;

use crate::expo::Format;
use crate::scrape::Scraper;
use crate::{Args, ExporterError};

struct Shared {
    scraper: Mutex<Scraper>,
    limit: Option<Semaphore>,
}

pub fn router(args: &Args) -> Result<Router, ExporterError> {
    let scraper = Scraper::new(args)?;
    tracing::info!(collectors = ?scraper.enabled().collect::<Vec<_>>(), "enabled collectors");
    let shared = Arc::new(Shared {
        scraper: Mutex::new(scraper),
        limit: (args.max_requests > 0).then(|| Semaphore::new(args.max_requests)),
    });
    let path = if args.telemetry_path.starts_with('/') {
        args.telemetry_path.clone()
    } else {
        format!("/{}", args.telemetry_path)
    };
    let landing = format!(
        "<html>\n\t\t\t<head><title>Node Exporter</title></head>\n\t\t\t<body>\n\t\t\t<h1>Node Exporter</h1>\n\t\t\t<p><a href=\"{path}\">Metrics</a></p>\n\t\t\t</body>\n\t\t\t</html>"
    );
    let mut r = Router::new().route(&path, get(metrics)).with_state(shared);
    if path != "/" {
        r = r.route("/", get(move || async move { Html(landing) }));
    }
    Ok(r)
}

/// Values of `collect[]` query parameters (node_exporter's per-request collector filter).
fn collect_params(q: Option<&str>) -> Vec<String> {
    let mut v = Vec::new();
    let Some(q) = q else { return v };
    for pair in q.split('&') {
        let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(k) == "collect[]" {
            v.push(percent_decode(val));
        }
    }
    v
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn metrics(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let _permit = match &sh.limit {
        Some(sem) => match sem.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Limit of concurrent requests reached, try again later.\n",
                )
                    .into_response()
            }
        },
        None => None,
    };
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|p| p.split(';').next().unwrap_or("").trim() == "gzip")
        });
    let only = collect_params(q.as_deref());
    let sh2 = sh.clone();
    let res = tokio::task::spawn_blocking(move || {
        let mut s = match sh2.scraper.lock() {
            Ok(g) => g,
            // A panic in a collector is a bug; the registry is still structurally valid, keep serving.
            Err(p) => p.into_inner(),
        };
        if !only.is_empty() {
            let enabled: Vec<&str> = s.enabled().collect();
            if let Some(bad) = only.iter().find(|o| !enabled.contains(&o.as_str())) {
                return Err(format!(
                    "Couldn't create filtered metrics handler: missing collector: {bad}"
                ));
            }
        }
        s.scrape(&only, format);
        if gzip {
            let Scraper { out, gz, .. } = &mut *s;
            gz.clear();
            let mut enc =
                flate2::write::GzEncoder::new(std::mem::take(gz), flate2::Compression::fast());
            let body = enc.write_all(out).and_then(|_| enc.finish());
            match body {
                Ok(buf) => {
                    let bytes = bytes_copy(&buf);
                    *gz = buf;
                    Ok(bytes)
                }
                Err(e) => Err(format!("gzip: {e}")),
            }
        } else {
            Ok(bytes_copy(&s.out))
        }
    })
    .await;
    match res {
        Ok(Ok(body)) => {
            let mut resp = Response::new(Body::from(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            if gzip {
                resp.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            resp
        }
        Ok(Err(msg)) => (StatusCode::BAD_REQUEST, msg).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("scrape failed: {e}"),
        )
            .into_response(),
    }
}

fn bytes_copy(b: &[u8]) -> Vec<u8> {
    b.to_vec()
}

/// Go's ":9100" means every interface; map it to the IPv6 wildcard (dual-stack on Linux) with an IPv4
/// fallback when IPv6 is unavailable.
fn listen_candidates(addr: &str) -> Vec<String> {
    if let Some(port) = addr.strip_prefix(':') {
        vec![format!("[::]:{port}"), format!("0.0.0.0:{port}")]
    } else {
        vec![addr.to_string()]
    }
}

pub async fn run(args: Args) -> Result<(), ExporterError> {
    let app = router(&args)?;
    let mut last_err = None;
    let mut listener = None;
    for a in listen_candidates(&args.listen_address) {
        match tokio::net::TcpListener::bind(&a).await {
            Ok(l) => {
                listener = Some(l);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some(listener) = listener else {
        return Err(ExporterError::Bind {
            addr: args.listen_address.clone(),
            source: last_err.unwrap_or_else(|| std::io::Error::other("no address")),
        });
    };
    tracing::info!(address = %args.listen_address, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ExporterError::Serve)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_query_params() {
        assert_eq!(
            collect_params(Some("collect%5B%5D=cpu&collect[]=meminfo&x=1")),
            vec!["cpu", "meminfo"]
        );
        assert!(collect_params(None).is_empty());
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
