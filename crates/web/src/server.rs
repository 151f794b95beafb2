//! `ignis server`: wires config, TSDB, scrape manager, PromQL engine and the HTTP server together, and runs
//! until SIGTERM/SIGINT or `/-/quit`. Reloads on SIGHUP and `/-/reload`.

use crate::state::{AppState, ReloadRequest};
use model::duration::{format_duration, parse_duration, parse_size};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Flags of `ignis server`, named as Prometheus's.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Prometheus configuration file path. Without it, ./prometheus.yml is used if present, else a built-in
    /// config that scrapes this server.
    #[arg(long = "config.file")]
    pub config_file: Option<PathBuf>,
    /// Address to listen on for UI, API, and telemetry.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen_address: String,
    /// Enable shutdown and reload via HTTP request (/-/quit, /-/reload).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// Enable the remote write receiver at /api/v1/write.
    #[arg(long = "web.enable-remote-write-receiver")]
    pub enable_remote_write_receiver: bool,
    /// Enable API endpoints for admin control actions (/api/v1/admin/tsdb/*).
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,
    /// The URL under which the server is reachable externally.
    #[arg(long = "web.external-url", default_value = "")]
    pub external_url: String,
    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub tsdb_path: PathBuf,
    /// How long to retain samples in storage (e.g. 15d). 0 with no size limit means the 15d default.
    #[arg(long = "storage.tsdb.retention.time")]
    pub retention_time: Option<String>,
    /// Maximum number of bytes that can be stored for blocks (e.g. 512MB, 5GB); 0 disables.
    #[arg(long = "storage.tsdb.retention.size", default_value = "0")]
    pub retention_size: String,
    /// Minimum duration of a data block before being persisted.
    #[arg(long = "storage.tsdb.min-block-duration", default_value = "2h")]
    pub min_block_duration: String,
    /// Maximum duration compacted blocks may span (default: 10% of retention, at most 31d).
    #[arg(long = "storage.tsdb.max-block-duration")]
    pub max_block_duration: Option<String>,
    /// Do not create a lockfile in the data directory.
    #[arg(long = "storage.tsdb.no-lockfile")]
    pub no_lockfile: bool,
    /// Compress the tsdb WAL (snappy, as Prometheus; default on). `--no-storage.tsdb.wal-compression` turns it
    /// off; the later of the two flags wins, as kingpin's boolean flags.
    #[arg(long = "storage.tsdb.wal-compression", overrides_with = "no_wal_compression")]
    pub wal_compression: bool,
    #[arg(long = "no-storage.tsdb.wal-compression", overrides_with = "wal_compression", hide = true)]
    pub no_wal_compression: bool,
    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    pub query_timeout: String,
    /// Maximum number of queries executed concurrently.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    pub query_max_concurrency: usize,
    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: usize,
    /// How far back to look for data points in instant vector selectors.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    pub query_lookback_delta: String,
    /// Only log messages with the given severity or above: debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info")]
    pub log_level: String,
    /// Output format of log messages: logfmt or json.
    #[arg(long = "log.format", default_value = "logfmt")]
    pub log_format: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("invalid flag --{flag}: {reason}")]
    Flag { flag: &'static str, reason: String },
    #[error("loading config {path:?}: {source}")]
    Config { path: PathBuf, source: config::ConfigError },
    #[error("opening storage at {path:?}: {source}")]
    Storage { path: PathBuf, source: tsdb::TsdbError },
    #[error("listening on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("starting scrape manager: {0}")]
    Scrape(String),
    #[error("http server: {0}")]
    Http(std::io::Error),
}

fn flag_duration(flag: &'static str, v: &str) -> Result<i64, ServerError> {
    parse_duration(v).map_err(|e| ServerError::Flag { flag, reason: e.to_string() })
}

/// Loads the configuration the flags point at (see `--config.file`).
pub fn load_config(args: &ServerArgs) -> Result<config::Config, ServerError> {
    let path = match &args.config_file {
        Some(p) => p.clone(),
        None => {
            let p = PathBuf::from("prometheus.yml");
            if !p.exists() {
                info!("no --config.file and no ./prometheus.yml: using the built-in self-scrape config");
                return Ok(config::Config::default_self_scrape(&args.listen_address));
            }
            p
        }
    };
    config::load_file(&path).map_err(|source| ServerError::Config { path, source })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Every flag with its effective value, for /api/v1/status/flags.
fn flag_map(a: &ServerArgs, retention: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("config.file", a.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or("prometheus.yml".into()));
    put("web.listen-address", a.listen_address.clone());
    put("web.enable-lifecycle", a.enable_lifecycle.to_string());
    put("web.enable-admin-api", a.enable_admin_api.to_string());
    put("web.enable-remote-write-receiver", a.enable_remote_write_receiver.to_string());
    put("web.external-url", a.external_url.clone());
    put("storage.tsdb.path", a.tsdb_path.display().to_string());
    put("storage.tsdb.retention.time", retention.to_string());
    put("storage.tsdb.retention.size", a.retention_size.clone());
    put("storage.tsdb.min-block-duration", a.min_block_duration.clone());
    put("storage.tsdb.max-block-duration", a.max_block_duration.clone().unwrap_or_default());
    put("storage.tsdb.no-lockfile", a.no_lockfile.to_string());
    put("storage.tsdb.wal-compression", (!a.no_wal_compression).to_string());
    put("query.timeout", a.query_timeout.clone());
    put("query.max-concurrency", a.query_max_concurrency.to_string());
    put("query.max-samples", a.query_max_samples.to_string());
    put("query.lookback-delta", a.query_lookback_delta.clone());
    put("log.level", a.log_level.clone());
    put("log.format", a.log_format.clone());
    m
}

/// Storage options from the flags, with Prometheus's defaults and rules.
pub fn tsdb_options(args: &ServerArgs) -> Result<(tsdb::Options, String), ServerError> {
    let size = parse_size(&args.retention_size)
        .map_err(|e| ServerError::Flag { flag: "storage.tsdb.retention.size", reason: e.to_string() })?;
    let mut retention = match &args.retention_time {
        Some(t) => flag_duration("storage.tsdb.retention.time", t)?,
        None => 0,
    };
    // As Prometheus: with neither limit set, time retention defaults to 15d.
    if retention == 0 && size == 0 {
        retention = 15 * 24 * 3600 * 1000;
    }
    let min_block = flag_duration("storage.tsdb.min-block-duration", &args.min_block_duration)?;
    let max_block = match &args.max_block_duration {
        Some(v) => flag_duration("storage.tsdb.max-block-duration", v)?,
        None => {
            let ten_pct = if retention > 0 { retention / 10 } else { 31 * 24 * 3600 * 1000 };
            ten_pct.clamp(min_block, 31 * 24 * 3600 * 1000)
        }
    };
    let opts = tsdb::Options {
        retention_ms: retention,
        retention_bytes: size,
        min_block_duration_ms: min_block,
        max_block_duration_ms: max_block,
        no_lockfile: args.no_lockfile,
        wal_compression: !args.no_wal_compression,
        ..Default::default()
    };
    let desc = match (retention, size) {
        (r, 0) => format_duration(r),
        (0, _) => args.retention_size.trim().to_string(),
        (r, _) => format!("{} or {}", format_duration(r), args.retention_size.trim()),
    };
    Ok((opts, desc))
}

/// Runs the server until a shutdown signal.
pub async fn run(args: ServerArgs) -> Result<(), ServerError> {
    let cfg = load_config(&args)?;
    let (opts, retention_desc) = tsdb_options(&args)?;
    let engine_opts = promql::EngineOptions {
        lookback_delta_ms: flag_duration("query.lookback-delta", &args.query_lookback_delta)?,
        max_samples: args.query_max_samples,
        timeout: std::time::Duration::from_millis(flag_duration("query.timeout", &args.query_timeout)?.max(0) as u64),
        max_concurrency: args.query_max_concurrency.max(1),
        no_step_subquery_interval_ms: cfg.global.evaluation_interval.as_millis().max(1),
    };

    let path = args.tsdb_path.clone();
    let db = tokio::task::spawn_blocking(move || tsdb::Db::open(&path, opts))
        .await
        .map_err(|e| ServerError::Scrape(e.to_string()))?
        .map_err(|source| ServerError::Storage { path: args.tsdb_path.clone(), source })?;
    info!(path = %args.tsdb_path.display(), "storage opened");

    let storage: Arc<dyn model::storage::Storage> = db.clone();
    let local_start: Arc<dyn Fn() -> i64 + Send + Sync> = {
        let db = db.clone();
        Arc::new(move || db.metrics().lowest_timestamp.load(Ordering::Relaxed))
    };
    let queryable = crate::sources::build(db.clone(), &cfg, local_start.clone())
        .map_err(|reason| ServerError::Flag { flag: "config.file", reason })?;
    let scrape = scrape::ScrapeManager::new(storage, scrape::ManagerOptions::default());
    scrape.apply_config(&cfg).await.map_err(|e| ServerError::Scrape(e.to_string()))?;

    // Remote write: queues tail the TSDB's WAL, so an outage or a restart loses nothing the WAL still holds.
    let remote_write = remote::sender::RemoteWriteManager::new(
        args.tsdb_path.join("wal"),
        args.tsdb_path.join("remote_write"),
        crate::state::external_labels(&cfg),
    );
    // metadata_config: queues send the scrape targets' metadata (what /api/v1/metadata serves).
    {
        let sm = scrape.clone();
        remote_write.set_metadata_source(Arc::new(move || {
            sm.metadata()
                .into_iter()
                .map(|m| remote::sender::MetricMetadata { metric: m.metric, kind: m.kind, help: m.help, unit: m.unit })
                .collect()
        }));
    }
    remote_write.apply_config(&cfg.remote_write).map_err(|e| ServerError::Scrape(format!("remote_write: {e}")))?;

    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let (quit_tx, mut quit_rx) = mpsc::channel::<()>(1);
    let metrics = Arc::new(crate::metrics::ServerMetrics::new());
    let state = Arc::new(AppState {
        engine: Arc::new(promql::Engine::new(engine_opts)),
        queryable: RwLock::new(queryable),
        db: Some(db.clone()),
        storage: Some(db.clone()),
        enable_remote_write_receiver: args.enable_remote_write_receiver,
        scrape: Some(scrape.clone()),
        remote_write: Some(remote_write.clone()),
        config: RwLock::new(Arc::new(cfg)),
        flags: flag_map(&args, &retention_desc),
        enable_lifecycle: args.enable_lifecycle,
        reload_tx: Some(reload_tx.clone()),
        quit_tx: Some(quit_tx),
        ready: AtomicBool::new(true),
        start_time_ms: now_ms(),
        last_reload_success: AtomicBool::new(true),
        last_reload_time_ms: AtomicU64::new(now_ms() as u64),
        retention_desc,
        metrics,
        engine_metrics: Default::default(),
    });
    state.metrics.config_reloaded(true);

    // Go's net.Listen accepts ":9090" for all interfaces; so do we.
    let bind_addr = match args.listen_address.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => args.listen_address.clone(),
    };
    let listener = tokio::net::TcpListener::bind(&bind_addr)
        .await
        .map_err(|source| ServerError::Listen { addr: args.listen_address.clone(), source })?;
    info!(address = %args.listen_address, "listening");
    // As Go's net/http (TCP_NODELAY on every connection): without it a response written in two parts waits for
    // the client's ACK of the first, ~0.1 ms on loopback, more than a small API answer takes to compute.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
    });

    // SIGHUP → reload.
    #[cfg(unix)]
    {
        let tx = reload_tx.clone();
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                let (otx, _orx) = tokio::sync::oneshot::channel();
                if tx.send(otx).await.is_err() {
                    break;
                }
            }
        });
    }

    // Reload worker: the one place configs are swapped.
    {
        let state = state.clone();
        let args = args.clone();
        tokio::spawn(async move {
            while let Some(answer) = reload_rx.recv().await {
                let res = reload(&state, &args, &local_start).await;
                if let Err(e) = &res {
                    error!(error = %e, "error reloading config; keeping the old one");
                } else {
                    info!("configuration reloaded");
                }
                let _ = answer.send(res);
            }
        });
    }

    let app = crate::router(state.clone());
    let shutdown = async move {
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
            _ = tokio::signal::ctrl_c() => info!("received SIGINT, shutting down"),
            _ = term => info!("received SIGTERM, shutting down"),
            _ = quit_rx.recv() => info!("received /-/quit, shutting down"),
        }
    };
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).with_graceful_shutdown(shutdown).await;
    state.ready.store(false, Ordering::Relaxed);
    scrape.stop().await;
    let rw = remote_write.clone();
    let _ = tokio::task::spawn_blocking(move || rw.stop()).await;
    if let Err(e) = tokio::task::spawn_blocking(move || db.close()).await.map(|r| r.map_err(|e| e.to_string())) {
        warn!(error = %e, "closing storage");
    }
    served.map_err(ServerError::Http)
}

async fn reload(
    state: &AppState,
    args: &ServerArgs,
    local_start: &Arc<dyn Fn() -> i64 + Send + Sync>,
) -> Result<(), String> {
    let res = match load_config(args) {
        Ok(cfg) => apply_reload(state, cfg, local_start).await,
        Err(e) => Err(e.to_string()),
    };
    state.last_reload_success.store(res.is_ok(), Ordering::Relaxed);
    state.metrics.config_reloaded(res.is_ok());
    if res.is_ok() {
        state.last_reload_time_ms.store(now_ms() as u64, Ordering::Relaxed);
    }
    res
}

/// Applies a loaded config to the running parts, all or nothing. Everything that can be built and checked
/// without touching what runs is done first (remote_read sources; remote_write queues with their HTTP/TLS
/// clients). Scrape is applied next; the scrape manager has no dry run, so if it fails it is given the old
/// config back. Remote write is committed last, which cannot fail on configuration. So an error anywhere
/// leaves the old config running in full (Prometheus itself applies what it can and reports the rest).
pub(crate) async fn apply_reload(
    state: &AppState,
    cfg: config::Config,
    local_start: &Arc<dyn Fn() -> i64 + Send + Sync>,
) -> Result<(), String> {
    let old = state.config.read().clone();
    let queryable = match &state.db {
        Some(db) => Some(crate::sources::build(db.clone(), &cfg, local_start.clone())?),
        None => None,
    };
    let prepared = match &state.remote_write {
        Some(rw) => {
            let (rw, cfgs, ext) = (rw.clone(), cfg.remote_write.clone(), crate::state::external_labels(&cfg));
            let p = tokio::task::spawn_blocking(move || rw.prepare(&cfgs, ext))
                .await
                .map_err(|e| format!("BUG: remote_write prepare task: {e}"))?
                .map_err(|e| format!("remote_write: {e}"))?;
            Some(p)
        }
        None => None,
    };
    if let Some(s) = &state.scrape {
        if let Err(e) = s.apply_config(&cfg).await {
            if let Err(back) = s.apply_config(&old).await {
                error!(error = %back, "restoring the previous scrape config after a failed reload");
            }
            return Err(e.to_string());
        }
    }
    if let (Some(rw), Some(p)) = (&state.remote_write, prepared) {
        // Stopping changed queues waits for their shards to drain: off the async runtime.
        let rw = rw.clone();
        let res = tokio::task::spawn_blocking(move || rw.commit(p)).await;
        let err = match res {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("remote_write: {e}")),
            Err(e) => Some(format!("BUG: remote_write commit task: {e}")),
        };
        if let Some(e) = err {
            // Only a failed thread spawn gets here; put scrape back so the two parts stay consistent.
            if let Some(s) = &state.scrape {
                if let Err(back) = s.apply_config(&old).await {
                    error!(error = %back, "restoring the previous scrape config after a failed reload");
                }
            }
            return Err(e);
        }
    }
    if let Some(q) = queryable {
        state.set_queryable(q);
    }
    *state.config.write() = Arc::new(cfg);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn state(dir: &std::path::Path, cfg: &config::Config) -> (Arc<AppState>, Arc<scrape::ScrapeManager>, Arc<remote::sender::RemoteWriteManager>) {
        let storage: Arc<dyn model::storage::Storage> = Arc::new(model::mem::MemStorage::new());
        let scrape = scrape::ScrapeManager::new(storage.clone(), scrape::ManagerOptions::default());
        let rw = remote::sender::RemoteWriteManager::new(dir.join("wal"), dir.to_path_buf(), crate::state::external_labels(cfg));
        let st = Arc::new(AppState {
            engine: Arc::new(promql::Engine::new(promql::EngineOptions::default())),
            queryable: RwLock::new(storage.clone()),
            db: None,
            storage: Some(storage),
            enable_remote_write_receiver: false,
            scrape: Some(scrape.clone()),
            remote_write: Some(rw.clone()),
            config: RwLock::new(Arc::new(cfg.clone())),
            flags: BTreeMap::new(),
            enable_lifecycle: false,
            reload_tx: None,
            quit_tx: None,
            ready: AtomicBool::new(true),
            start_time_ms: 0,
            last_reload_success: AtomicBool::new(true),
            last_reload_time_ms: AtomicU64::new(0),
            retention_desc: String::new(),
            metrics: Arc::new(crate::metrics::ServerMetrics::new()),
            engine_metrics: Default::default(),
        });
        (st, scrape, rw)
    }

    fn cfg(jobs: &[(&str, &str)], rw_urls: &[(&str, &str)], replica: &str) -> config::Config {
        let mut y = format!("global:\n  external_labels: {{replica: {replica}}}\nscrape_configs:\n");
        for (job, extra) in jobs {
            y += &format!("  - job_name: {job}\n    scrape_interval: 1h\n    static_configs: [{{targets: ['127.0.0.1:1']}}]\n{extra}");
        }
        if !rw_urls.is_empty() {
            y += "remote_write:\n";
            for (url, extra) in rw_urls {
                y += &format!("  - url: {url}\n{extra}");
            }
        }
        config::Config::from_yaml_str(&y, std::path::Path::new("/")).unwrap()
    }

    /// (scrape pools with their targets' scrape interval, remote write URLs, replica label of the config).
    fn running(st: &AppState, s: &scrape::ScrapeManager, rw: &remote::sender::RemoteWriteManager) -> (Vec<String>, Vec<String>, String) {
        let mut pools: Vec<String> = s.active_targets().iter().map(|t| format!("{}/{}", t.scrape_pool, t.scrape_interval)).collect();
        pools.sort();
        pools.dedup();
        let urls = rw.queue_metrics().iter().map(|q| q.url.clone()).collect();
        let replica = st.config.read().global.external_labels.get("replica").cloned().unwrap_or_default();
        (pools, urls, replica)
    }

    async fn settled(st: &AppState, s: &scrape::ScrapeManager, rw: &remote::sender::RemoteWriteManager, want: &(Vec<String>, Vec<String>, String)) {
        // Targets of a new pool appear once its discovery has run; give it a moment, then compare.
        for _ in 0..200 {
            if running(st, s, rw) == *want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(running(st, s, rw), *want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reload_is_all_or_nothing() {
        // A scratch dir without the tempfile crate (not a dependency of web).
        let dir = std::env::temp_dir().join(format!("ignis-reload-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad_tls = "    tls_config: {ca_file: /nonexistent/ca.pem}\n";
        let old = cfg(&[("a", "")], &[("http://127.0.0.1:1/one", "")], "r1");
        let (st, s, rw) = state(&dir, &old);
        s.apply_config(&old).await.unwrap();
        rw.apply_config(&old.remote_write).unwrap();
        let ls: Arc<dyn Fn() -> i64 + Send + Sync> = Arc::new(|| 0);
        let old_state = (vec!["a/1h".to_string()], vec!["http://127.0.0.1:1/one".to_string()], "r1".to_string());
        settled(&st, &s, &rw, &old_state).await;

        // A good scrape change (job a changed, job b added) with an unusable remote_write: nothing applied.
        let next = cfg(&[("a", "    scrape_timeout: 5s\n"), ("b", "")], &[("http://127.0.0.1:1/two", bad_tls)], "r2");
        let e = apply_reload(&st, next, &ls).await.unwrap_err();
        assert!(e.contains("remote_write") && e.contains("/nonexistent/ca.pem"), "{e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        settled(&st, &s, &rw, &old_state).await;
        assert!(s.active_targets().iter().all(|t| t.scrape_timeout == "10s"), "job a kept its old settings");

        // A good remote_write change with a failing scrape pool: scrape is put back, remote write untouched.
        let next = cfg(&[("a", "    scrape_timeout: 5s\n"), ("c", bad_tls)], &[("http://127.0.0.1:1/two", "")], "r2");
        let e = apply_reload(&st, next, &ls).await.unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        settled(&st, &s, &rw, &old_state).await;
        assert!(s.active_targets().iter().all(|t| t.scrape_timeout == "10s"), "job a kept its old settings");

        // A fully good config is applied in full.
        let next = cfg(&[("a", "    scrape_timeout: 5s\n"), ("b", "")], &[("http://127.0.0.1:1/two", "")], "r2");
        apply_reload(&st, next, &ls).await.unwrap();
        let new_state = (vec!["a/1h".to_string(), "b/1h".to_string()], vec!["http://127.0.0.1:1/two".to_string()], "r2".to_string());
        settled(&st, &s, &rw, &new_state).await;
        assert!(s.active_targets().iter().any(|t| t.scrape_pool == "a" && t.scrape_timeout == "5s"));
        s.stop().await;
        tokio::task::spawn_blocking(move || rw.stop()).await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
