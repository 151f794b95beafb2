//! HTTP face of `ignis server`: the Prometheus HTTP API (`/api/v1/*`), `/metrics`, lifecycle endpoints
//! (`/-/healthy`, `/-/ready`, `/-/reload`, `/-/quit`), and the `server` module that wires every part together.
//!
//! Architecture invariant: handlers reach data only through `model::storage::Queryable` and the PromQL engine;
//! JSON shapes and error types are Prometheus's, mapped in exactly one place (`error.rs`).

pub mod api;
pub mod error;
pub mod federate;
pub mod json;
pub mod metrics;
mod metrics_ext;
pub mod params;
mod remote_api;
pub mod server;
pub mod sources;
pub mod state;
pub mod targets;


use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use state::AppState;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The Prometheus version whose API ignis implements, reported in buildinfo so clients such as Grafana enable
/// the matching features. ignis's own version is in `revision`.
pub const PROMETHEUS_COMPAT_VERSION: &str = "2.53.0";

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/query", get(api::query).post(api::query))
        .route("/api/v1/query_range", get(api::query_range).post(api::query_range))
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route("/api/v1/query_exemplars", get(api::query_exemplars).post(api::query_exemplars))
        .route("/api/v1/format_query", get(api::format_query).post(api::format_query))
        .route("/api/v1/status/buildinfo", get(api::buildinfo))
        .route("/api/v1/status/config", get(api::status_config))
        .route("/api/v1/status/flags", get(api::status_flags))
        .route("/api/v1/status/runtimeinfo", get(api::status_runtimeinfo))
        .route("/api/v1/status/tsdb", get(api::status_tsdb))
        .route("/api/v1/targets", get(api::targets))
        .route("/api/v1/metadata", get(api::metadata))
        .route("/api/v1/targets/metadata", get(api::targets_metadata))
        .route("/api/v1/admin/tsdb/snapshot", post(api::admin::snapshot).put(api::admin::snapshot))
        .route("/api/v1/admin/tsdb/clean_tombstones", post(api::admin::clean_tombstones).put(api::admin::clean_tombstones))
        .route("/api/v1/admin/tsdb/delete_series", post(api::admin::delete_series).put(api::admin::delete_series))
        .route("/api/v1/write", post(remote_api::write))
        .route("/api/v1/read", post(remote_api::read))
        .route("/federate", get(federate::handler).post(federate::handler))
        .route("/metrics", get(metrics_handler))
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/-/quit", post(quit).put(quit))
        .route("/", get(root))
        .with_state(state)
}

async fn metrics_handler(axum::extract::State(st): axum::extract::State<Arc<AppState>>) -> Response {
    let body = tokio::task::spawn_blocking(move || metrics::render(&st)).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

async fn healthy() -> &'static str {
    "Prometheus Server is Healthy.\n"
}

async fn ready(axum::extract::State(st): axum::extract::State<Arc<AppState>>) -> Response {
    if st.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "Prometheus Server is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
    }
}

async fn reload(axum::extract::State(st): axum::extract::State<Arc<AppState>>) -> Response {
    if !st.enable_lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.").into_response();
    }
    let Some(tx) = &st.reload_tx else {
        return (StatusCode::SERVICE_UNAVAILABLE, "reload not available").into_response();
    };
    let (otx, orx) = tokio::sync::oneshot::channel();
    if tx.send(otx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "reload not available").into_response();
    }
    match orx.await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "reload not available").into_response(),
    }
}

async fn quit(axum::extract::State(st): axum::extract::State<Arc<AppState>>) -> Response {
    if !st.enable_lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.").into_response();
    }
    if let Some(tx) = &st.quit_tx {
        let _ = tx.try_send(());
    }
    (StatusCode::OK, "Requesting termination... Goodbye!").into_response()
}

async fn root() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><title>ignis</title><h1>ignis</h1><ul>\
         <li><a href=\"/metrics\">/metrics</a></li>\
         <li><a href=\"/api/v1/targets\">/api/v1/targets</a></li>\
         <li><a href=\"/api/v1/status/buildinfo\">/api/v1/status/buildinfo</a></li></ul>",
    )
        .into_response()
}
