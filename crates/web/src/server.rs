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
    put("web.enable-remote-write-receiver", a.enable_remote_write_receiver.to_string());
    put("web.external-url", a.external_url.clone());
    put("storage.tsdb.path", a.tsdb_path.display().to_string());
    put("storage.tsdb.retention.time", retention.to_string());
    put("storage.tsdb.retention.size", a.retention_size.clone());
    put("storage.tsdb.min-block-duration", a.min_block_duration.clone());
    put("storage.tsdb.max-block-duration", a.max_block_duration.clone().unwrap_or_default());
    put("storage.tsdb.no-lockfile", a.no_lockfile.to_string());
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
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
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
    let res = async {
        let cfg = load_config(args).map_err(|e| e.to_string())?;
        let queryable = match &state.db {
            Some(db) => Some(crate::sources::build(db.clone(), &cfg, local_start.clone())?),
            None => None,
        };
        if let Some(s) = &state.scrape {
            s.apply_config(&cfg).await.map_err(|e| e.to_string())?;
        }
        if let Some(rw) = &state.remote_write {
            rw.set_external_labels(crate::state::external_labels(&cfg));
            rw.apply_config(&cfg.remote_write).map_err(|e| format!("remote_write: {e}"))?;
        }

        if let Some(q) = queryable {
            state.set_queryable(q);
        }
        *state.config.write() = Arc::new(cfg);
        Ok(())
    }
    .await;
    state.last_reload_success.store(res.is_ok(), Ordering::Relaxed);
    state.metrics.config_reloaded(res.is_ok());
    if res.is_ok() {
        state.last_reload_time_ms.store(now_ms() as u64, Ordering::Relaxed);
    }
    res
}
