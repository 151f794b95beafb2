//! `/api/v1/admin/tsdb/*`, behind `--web.enable-admin-api` as in Prometheus: when the flag is off every
//! endpoint answers 503 `unavailable` "admin APIs disabled" (Prometheus's answer, not a 403).
//!
//! The switch is read from the server's flag map (`web.enable-admin-api`, which /api/v1/status/flags reports
//! anyway), so enabling it needs no state beyond the flag itself.

use super::Params;
use crate::error::{success, ApiError};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use model::storage::Queryable;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tsdb::chunkenc::{ChunkBytes, XorAppender};
use tsdb::query::ChunkRef;

/// Samples per chunk in the head block of a snapshot, as Prometheus's compactor writes.
const SAMPLES_PER_CHUNK: usize = 120;

fn admin_enabled(st: &AppState) -> Result<&Arc<tsdb::Db>, ApiError> {
    if st.flags.get("web.enable-admin-api").map(String::as_str) != Some("true") {
        return Err(ApiError::Unavailable("admin APIs disabled".into()));
    }
    st.db.as_ref().ok_or_else(|| ApiError::Unavailable("TSDB not ready".into()))
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot[?skip_head=<bool>]` → `{"name":"<dir under snapshots/>"}`.
pub async fn snapshot(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let db = admin_enabled(&st)?.clone();
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let skip_head = match p.get("skip_head").filter(|s| !s.is_empty()) {
        None => false,
        Some(s) => parse_go_bool(s)
            .ok_or_else(|| ApiError::bad_param("skip_head", format!("unable to parse boolean: strconv.ParseBool: parsing {s:?}: invalid syntax")))?,
    };
    let name = snapshot_name(chrono::Utc::now());
    let name2 = name.clone();
    super::run_blocking(move || {
        let dir = db.dir().join("snapshots").join(&name2);
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::Internal(format!("create snapshot directory: {e}")))?;
        snapshot_db(&db, &dir, !skip_head).map_err(|e| ApiError::Internal(format!("create snapshot: {e}")))
    })
    .await??;
    let mut out = String::from(r#"{"name":"#);
    crate::json::push_str(&mut out, &name);
    out.push('}');
    Ok(success(out, &[]))
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones` → 204.
pub async fn clean_tombstones(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let db = admin_enabled(&st)?;
    // Rewriting blocks without their deleted data needs the TSDB to swap blocks under its own lock; until it
    // offers that, the endpoint does the part that is exact: nothing to do when no block has tombstones.
    let with_tombstones: Vec<String> =
        db.blocks().iter().filter(|m| m.stats.num_tombstones > 0).map(|m| m.ulid.to_string()).collect();
    if !with_tombstones.is_empty() {
        return Err(ApiError::Internal(format!(
            "cleaning tombstones is not supported yet (blocks with tombstones: {})",
            with_tombstones.join(", ")
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series`: parameters validated as Prometheus does; deleting needs a
/// TSDB delete API that does not exist yet, so a valid request fails with an internal error saying so.
pub async fn delete_series(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin_enabled(&st)?;
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let selectors = p.all("match[]");
    if selectors.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    p.time_or("start", crate::params::MIN_TIME)?;
    p.time_or("end", crate::params::MAX_TIME)?;
    for s in selectors {
        promql::parse_metric_selector(s).map_err(|e| ApiError::bad_param("match[]", e))?;
    }
    Err(ApiError::Internal("deleting series is not supported yet by the ignis TSDB".into()))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `20060102T150405Z0700` in UTC (so `…Z`), then 16 random hex digits, as Prometheus names snapshots.
fn snapshot_name(now: chrono::DateTime<chrono::Utc>) -> String {
    // Randomness without a new dependency: the std hasher is randomly keyed per process, mixed with the clock.
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now.timestamp_nanos_opt().unwrap_or_default());
    let r = h.finish() >> 1; // rand.Int63: 63 bits
    format!("{}-{r:016x}", now.format("%Y%m%dT%H%M%SZ"))
}

/// Hard-links every loaded block into `dir` and, with `with_head`, writes the head as one more block.
///
/// Blocks can be compacted away while we link them (the TSDB does not expose its maintenance lock): when a
/// source file vanishes mid-way, the partial snapshot is cleared and taken again from a fresh block list.
pub fn snapshot_db(db: &tsdb::Db, dir: &Path, with_head: bool) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match link_blocks(db, dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 5 => {
                tracing::debug!(error = %e, "block went away during snapshot; retrying");
                clear_dir(dir).map_err(|e| format!("clearing partial snapshot {}: {e}", dir.display()))?;
            }
            Err(e) => return Err(format!("error snapshotting block: {e}")),
        }
    }
    if with_head {
        snapshot_head(db, dir).map_err(|e| format!("snapshot head block: {e}"))?;
    }
    Ok(())
}

fn clear_dir(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        std::fs::remove_dir_all(e?.path())?;
    }
    Ok(())
}

fn link_blocks(db: &tsdb::Db, dir: &Path) -> std::io::Result<()> {
    for meta in db.blocks() {
        let ulid = meta.ulid.to_string();
        let src = db.dir().join(&ulid);
        let dst = dir.join(&ulid);
        std::fs::create_dir_all(dst.join("chunks"))?;
        for f in ["meta.json", "index", "tombstones"] {
            let from = src.join(f);
            if f == "tombstones" && !from.exists() {
                continue; // optional in blocks written by other tools
            }
            link(&from, &dst.join(f))?;
        }
        for e in std::fs::read_dir(src.join("chunks"))? {
            let e = e?;
            link(&e.path(), &dst.join("chunks").join(e.file_name()))?;
        }
    }
    Ok(())
}

fn link(from: &Path, to: &PathBuf) -> std::io::Result<()> {
    std::fs::hard_link(from, to).map_err(|e| std::io::Error::new(e.kind(), format!("link {} → {}: {e}", from.display(), to.display())))
}

/// Writes the head's samples `[min_time, max_time]` as a level-1 block (half-open maxt+1, as Prometheus).
///
/// The data is read through the database's own Queryable over the head's time range; blocks overlapping the
/// head (only after a backfill into the live range) would contribute their samples there too, which readers
/// merge away as duplicates.
fn snapshot_head(db: &tsdb::Db, dir: &Path) -> Result<(), String> {
    let (mint, maxt) = (db.head().min_time(), db.head().max_time());
    if mint > maxt {
        return Ok(()); // empty head
    }
    let q = db.querier(mint, maxt).map_err(|e| e.to_string())?;
    let all = [model::Matcher::new(model::MatchOp::Regex, model::METRIC_NAME, ".+").map_err(|e| e.to_string())?];
    let hints = model::SelectHints { start: mint, end: maxt, ..Default::default() };
    let set = q.select(true, Some(&hints), &all).map_err(|e| e.to_string())?;
    let series = set.map(|s| {
        let s = s?;
        let mut it = s.samples;
        let mut chunks = Vec::new();
        let mut app = XorAppender::new();
        let (mut cmin, mut cmax) = (0, 0);
        while let Some(smp) = it.next() {
            if app.num_samples() == 0 {
                cmin = smp.t;
            }
            app.append(smp.t, smp.v);
            cmax = smp.t;
            if app.num_samples() as usize == SAMPLES_PER_CHUNK {
                let full = std::mem::take(&mut app);
                chunks.push(ChunkRef { mint: cmin, maxt: cmax, data: ChunkBytes::Heap(Arc::from(full.into_bytes())) });
            }
        }
        if let Some(e) = it.err() {
            return Err(model::StorageError::Other(e.to_string()));
        }
        if app.num_samples() > 0 {
            chunks.push(ChunkRef { mint: cmin, maxt: cmax, data: ChunkBytes::Heap(Arc::from(app.into_bytes())) });
        }
        Ok((s.labels, chunks))
    });
    let compaction = tsdb::block::BlockMetaCompaction { level: 1, ..Default::default() };
    tsdb::block::write_block(dir, mint, maxt + 1, compaction, None, series).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use model::storage::Storage;
    use tower::ServiceExt;

    #[test]
    fn names_and_bools_like_prometheus() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let n = snapshot_name(t);
        assert!(n.starts_with("20231114T221320Z-"), "{n}");
        assert_eq!(n.len(), "20231114T221320Z-".len() + 16);
        assert_eq!(parse_go_bool("True"), Some(true));
        assert_eq!(parse_go_bool("0"), Some(false));
        assert_eq!(parse_go_bool("yes"), None);
    }

    /// A server state over `db` with the given flags, for handler tests.
    pub(crate) fn state(db: Arc<tsdb::Db>, flags: &[(&str, &str)]) -> Arc<AppState> {
        Arc::new(AppState {
            engine: Arc::new(promql::Engine::new(promql::EngineOptions::default())),
            queryable: parking_lot::RwLock::new(db.clone()),
            db: Some(db.clone()),
            storage: Some(db),
            enable_remote_write_receiver: false,
            scrape: None,
            remote_write: None,
            config: parking_lot::RwLock::new(Arc::new(config::Config::default())),
            flags: flags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            enable_lifecycle: false,
            reload_tx: None,
            quit_tx: None,
            ready: true.into(),
            start_time_ms: 0,
            last_reload_success: true.into(),
            last_reload_time_ms: 0.into(),
            retention_desc: String::new(),
            metrics: Default::default(),
            engine_metrics: Default::default(),
        })
    }

    fn router(st: Arc<AppState>) -> axum::Router {
        use axum::routing::post;
        axum::Router::new()
            .route("/snapshot", post(snapshot).put(snapshot))
            .route("/clean_tombstones", post(clean_tombstones).put(clean_tombstones))
            .route("/delete_series", post(delete_series).put(delete_series))
            .with_state(st)
    }

    async fn call(r: &axum::Router, method: &str, uri: &str) -> (u16, String) {
        let req = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
        let resp = r.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    const HOUR: i64 = 3_600_000;

    /// 20 series x 3 h at 15 s: older samples flushed to blocks, the last hour in the head.
    fn filled_db(dir: &Path) -> Arc<tsdb::Db> {
        let db = tsdb::Db::open_without_background(dir, tsdb::Options::default()).unwrap();
        let mut app = db.appender();
        for i in 0..20 {
            let is = i.to_string();
            let l = model::labels!("__name__" => "m", "i" => is.as_str());
            for t in (0..3 * HOUR).step_by(15_000) {
                app.append(0, &l, t, (t / 1000 + i) as f64).unwrap();
            }
        }
        app.commit().unwrap();
        db.flush_head_before(2 * HOUR).unwrap();
        assert!(!db.blocks().is_empty());
        db
    }

    fn count_samples(q: &dyn Queryable) -> usize {
        let m = [model::Matcher::equal("__name__", "m")];
        let q = q.querier(i64::MIN, i64::MAX).unwrap();
        q.select(false, None, &m).unwrap().map(|s| {
            let mut it = s.unwrap().samples;
            let mut n = 0;
            while it.next().is_some() {
                n += 1;
            }
            n
        }).sum()
    }

    #[tokio::test]
    async fn disabled_unless_flag() {
        let dir = tempfile::tempdir().unwrap();
        let db = filled_db(dir.path());
        for flags in [&[][..], &[("web.enable-admin-api", "false")][..]] {
            let r = router(state(db.clone(), flags));
            for ep in ["/snapshot", "/clean_tombstones", "/delete_series?match[]=m"] {
                let (status, body) = call(&r, "POST", ep).await;
                assert_eq!(status, 503, "{ep}");
                assert_eq!(body, r#"{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}"#);
            }
        }
        assert!(!dir.path().join("snapshots").exists());
    }

    #[tokio::test]
    async fn snapshot_holds_blocks_and_head() {
        let dir = tempfile::tempdir().unwrap();
        let db = filled_db(dir.path());
        let total = count_samples(db.as_ref());
        assert_eq!(total, 20 * 720);
        let r = router(state(db.clone(), &[("web.enable-admin-api", "true")]));

        let (status, body) = call(&r, "POST", "/snapshot").await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success");
        let name = v["data"]["name"].as_str().unwrap().to_string();
        let snap = dir.path().join("snapshots").join(&name);
        // Blocks are hard links of the originals.
        for m in db.blocks() {
            use std::os::unix::fs::MetadataExt;
            let a = std::fs::metadata(dir.path().join(m.ulid.to_string()).join("index")).unwrap();
            let b = std::fs::metadata(snap.join(m.ulid.to_string()).join("index")).unwrap();
            assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "index is a hard link");
        }
        // The snapshot opened as a database holds every sample: blocks + the head written as a block.
        let copy = tsdb::Db::open_without_background(&snap, tsdb::Options::default()).unwrap();
        assert_eq!(copy.blocks().len(), db.blocks().len() + 1);
        assert_eq!(count_samples(copy.as_ref()), total);
        copy.close().unwrap();

        // skip_head: blocks only.
        let (status, body) = call(&r, "PUT", "/snapshot?skip_head=true").await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let snap2 = dir.path().join("snapshots").join(v["data"]["name"].as_str().unwrap());
        assert_ne!(snap2, snap);
        let copy = tsdb::Db::open_without_background(&snap2, tsdb::Options::default()).unwrap();
        assert_eq!(copy.blocks().len(), db.blocks().len());
        assert_eq!(count_samples(copy.as_ref()), 20 * 480);
        copy.close().unwrap();

        let (status, body) = call(&r, "POST", "/snapshot?skip_head=maybe").await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(r#"invalid parameter \"skip_head\": unable to parse boolean"#), "{body}");
    }

    #[tokio::test]
    async fn clean_tombstones_and_delete_series_validation() {
        let dir = tempfile::tempdir().unwrap();
        let db = filled_db(dir.path());
        let r = router(state(db, &[("web.enable-admin-api", "true")]));
        let (status, body) = call(&r, "POST", "/clean_tombstones").await;
        assert_eq!((status, body.as_str()), (204, ""));
        let (status, body) = call(&r, "POST", "/delete_series").await;
        assert_eq!(status, 400);
        assert!(body.contains("no match[] parameter provided"), "{body}");
        let (status, body) = call(&r, "POST", "/delete_series?match[]=%7B").await;
        assert_eq!(status, 400);
        assert!(body.contains(r#"invalid parameter \"match[]\""#), "{body}");
    }
}
