//! HTTP: `/` landing page and the telemetry path, with Accept-based format choice and gzip.

use std::io::Write as _;
use std::path::PathBuf;
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
use crate::webconfig::{AuthCache, WebConfig};
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

async fn bind(addr: &str) -> Result<tokio::net::TcpListener, ExporterError> {
    let mut last_err = None;
    for a in listen_candidates(addr) {
        match tokio::net::TcpListener::bind(&a).await {
            Ok(l) => return Ok(l),
            Err(e) => last_err = Some(e),
        }
    }
    Err(ExporterError::Bind {
        addr: addr.to_string(),
        source: last_err.unwrap_or_else(|| std::io::Error::other("no address")),
    })
}

/// systemd socket activation (sd_listen_fds): fds 3.. when LISTEN_PID is us. The variables are removed
/// afterwards, as go-systemd's activation.Listeners does, so children do not inherit them.
fn systemd_listeners() -> Result<Vec<tokio::net::TcpListener>, ExporterError> {
    use std::os::unix::io::FromRawFd as _;
    let err = |m: &str| ExporterError::Flags(format!("--web.systemd-socket: {m}"));
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    if !pid_ok || n < 1 {
        return Err(err("no socket activation file descriptors found"));
    }
    let mut v = Vec::new();
    for fd in 3..3 + n {
        // SAFETY: systemd passed these descriptors to this process (LISTEN_PID checked above); each is
        // wrapped exactly once and owned by the listener from here on.
        let std_l = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        std_l
            .set_nonblocking(true)
            .map_err(|e| err(&format!("fd {fd}: {e}")))?;
        v.push(
            tokio::net::TcpListener::from_std(std_l).map_err(|e| err(&format!("fd {fd}: {e}")))?,
        );
    }
    Ok(v)
}

pub async fn run(args: Args) -> Result<(), ExporterError> {
    let web_config =
        (!args.web_config_file.is_empty()).then(|| PathBuf::from(&args.web_config_file));
    // Validate the web config before serving (exporter-toolkit fails at startup on a bad file).
    let tls = match &web_config {
        Some(p) => {
            let c = WebConfig::load(p)?;
            c.validate_users()?;
            c.server_config()?.is_some()
        }
        None => false,
    };
    let mut app = router(&args)?;
    if let Some(p) = &web_config {
        app = with_web_config(app, p.clone());
    }
    let listeners = if args.web_systemd_socket {
        tracing::info!("Listening on systemd activated listeners instead of port listeners.");
        systemd_listeners()?
    } else {
        let mut v = Vec::new();
        for a in &args.listen_address {
            v.push(bind(a).await?);
        }
        v
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(address = %addr, tls, "listening");
        let app = app.clone();
        let mut stop = stop_rx.clone();
        match (&web_config, tls) {
            (Some(p), true) => {
                tasks.spawn(serve_tls(l, app, p.clone(), stop));
            }
            _ => {
                tasks.spawn(async move {
                    axum::serve(l, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await
                });
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ExporterError::Serve(e)),
            Err(e) => return Err(ExporterError::Serve(std::io::Error::other(e.to_string()))),
        }
    }
    Ok(())
}

/// HTTPS: every connection re-reads the web config and builds its TLS configuration (exporter-toolkit's
/// GetConfigForClient), so renewed certificates apply without a restart. A handshake or config error
/// drops that connection only.
async fn serve_tls(
    l: tokio::net::TcpListener,
    app: Router,
    path: PathBuf,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    loop {
        let (tcp, peer) = tokio::select! {
            r = l.accept() => r?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let app = app.clone();
        let path = path.clone();
        tokio::spawn(async move {
            let cfg = match WebConfig::load(&path).and_then(|c| c.server_config()) {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(err = %e, "TLS configuration invalid, connection refused");
                    return;
                }
            };
            let tls = match tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, err = %e, "TLS handshake failed");
                    return;
                }
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
        });
    }
}

/// Basic auth and extra headers from the web config, re-read per request like exporter-toolkit's
/// webHandler. An unreadable file answers 500; a missing or wrong password 401 with
/// `WWW-Authenticate: Basic`.
fn with_web_config(app: Router, path: PathBuf) -> Router {
    let state = Arc::new((path, AuthCache::default()));
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let state = state.clone();
            async move {
                let cfg = match WebConfig::load(&state.0) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(err = %e, "Unable to parse configuration");
                        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
                            .into_response();
                    }
                };
                let allowed = cfg.users.is_empty() || {
                    let auth = req
                        .headers()
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let st = state.clone();
                    let users = cfg.users.clone();
                    tokio::task::spawn_blocking(move || st.1.check(&users, auth.as_deref()))
                        .await
                        .unwrap_or(false)
                };
                let mut resp = if allowed {
                    next.run(req).await
                } else {
                    let mut r = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                    r
                };
                for (k, v) in &cfg.headers {
                    if let (Ok(k), Ok(v)) = (
                        header::HeaderName::from_bytes(k.as_bytes()),
                        HeaderValue::from_str(v),
                    ) {
                        resp.headers_mut().insert(k, v);
                    }
                }
                resp
            }
        },
    ))
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
