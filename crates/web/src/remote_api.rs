//! `POST /api/v1/write` (remote write receiver, behind `--web.enable-remote-write-receiver`) and
//! `POST /api/v1/read` (remote read endpoint).

use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;
use std::sync::atomic::Ordering;
use model::storage::Storage;
use parking_lot::Mutex;
use remote::receive::SeriesCache;
use std::sync::{Arc, Weak};
use tracing::warn;

thread_local! {
    /// Snappy output of the request being applied, reused by each blocking-pool thread.
    static DECODE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

type CacheEntry = (Weak<dyn Storage>, Arc<SeriesCache>);

/// The receive path's series-ref cache of a storage. Refs are only meaningful to the storage that issued them,
/// so caches are kept per storage; the `Weak` both identifies it (its allocation cannot be reused while the
/// `Weak` lives) and lets caches of dropped storages (tests start many servers) be pruned.
fn series_cache(storage: &Arc<dyn Storage>) -> Arc<SeriesCache> {
    static CACHES: Mutex<Vec<CacheEntry>> = Mutex::new(Vec::new());
    let mut cs = CACHES.lock();
    cs.retain(|(w, _)| w.strong_count() > 0);
    if let Some((_, c)) = cs.iter().find(|(w, _)| std::ptr::addr_eq(w.as_ptr(), Arc::as_ptr(storage))) {
        return c.clone();
    }
    let c = Arc::new(SeriesCache::new());
    cs.push((Arc::downgrade(storage), c.clone()));
    c
}

pub async fn write(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    if !st.enable_remote_write_receiver {
        return (StatusCode::NOT_FOUND, "remote write receiver needs to be enabled with --web.enable-remote-write-receiver")
            .into_response();
    }
    let Some(storage) = st.storage.clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no local storage").into_response();
    };
    let st2 = st.clone();
    let cache = series_cache(&storage);
    let res = tokio::task::spawn_blocking(move || {
        DECODE_BUF.with_borrow_mut(|buf| {
            let mut app = storage.appender();
            let r = remote::receive::apply_write_body(app.as_mut(), &body, &cache, buf);
            // Keep the buffer for the next request unless one huge body left it oversized.
            if buf.capacity() > 16 << 20 {
                *buf = Vec::new();
            }
            r
        })
    })
    .await;
    match res {
        Ok(Ok(stats)) => {
            st2.metrics.remote_write_samples_received.fetch_add(stats.samples as u64, Ordering::Relaxed);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Err(e)) => {
            let status = if e.is_client_error() { StatusCode::BAD_REQUEST } else { StatusCode::INTERNAL_SERVER_ERROR };
            if matches!(e, remote::RemoteError::Append { reason: model::AppendError::OutOfOrder, .. }) {
                st2.metrics.remote_write_out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            warn!(error = %e, "remote write request refused");
            (status, e.to_string()).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

pub async fn read(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let st2 = st.clone();
    let res = tokio::task::spawn_blocking(move || {
        let req = remote::decode_read_request(&body)?;
        let external = crate::state::external_labels(&st2.config.read());
        let streamed = req.accepted_response_types.contains(&remote::prompb::RESPONSE_STREAMED_XOR_CHUNKS);
        if streamed {
            let frames = remote::read_chunks(st2.queryable().as_ref(), &req, &external)?;
            Ok::<_, remote::RemoteError>((
                "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse",
                None,
                frames,
            ))
        } else {
            let resp = remote::read_samples(st2.queryable().as_ref(), &req, &external)?;
            Ok(("application/x-protobuf", Some("snappy"), remote::snappy_encode(&resp.encode_to_vec())))
        }
    })
    .await;
    match res {
        Ok(Ok((ct, enc, body))) => {
            let mut r = ([(header::CONTENT_TYPE, ct)], body).into_response();
            if let Some(enc) = enc {
                r.headers_mut().insert(header::CONTENT_ENCODING, axum::http::HeaderValue::from_static(enc));
            }
            r
        }
        Ok(Err(e)) => {
            let status = if e.is_client_error() { StatusCode::BAD_REQUEST } else { StatusCode::INTERNAL_SERVER_ERROR };
            (status, e.to_string()).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
