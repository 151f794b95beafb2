//! Remote write sender (`remote_write:` in prometheus.yml), remote write 1.0 protocol.
//!
//! One queue per config. Each queue tails ignis's WAL (`wal_reader`), turns series records into encoded,
//! relabeled label sets with the external labels added, and spreads samples over shards by series, so a series'
//! samples are sent in WAL order. Shards batch (`max_samples_per_send`, `batch_send_deadline`), POST, retry with
//! backoff on network errors and 5xx (and 429 with `retry_on_http_429`), drop and count on other statuses.
//! The number of shards follows load between `min_shards` and `max_shards` as in Prometheus.
//!
//! Unlike Prometheus, a queue remembers where it is: the position of the last acknowledged WAL record is kept
//! in `<state_dir>/remote_write/<queue-hash>.pos` and a restart resumes there (see docs/format/remote.md,
//! "Sender"), rather than skipping what was written while ignis was down.

mod encode;
mod http;
pub mod metadata;
pub mod metrics;
pub mod position;
mod queue;
mod wal_reader;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod interop;

pub use metadata::{MetadataSource, MetricMetadata};
pub use metrics::QueueMetrics;
pub use position::Position;

use crate::RemoteError;
use model::{Labels, StorageError};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Timings of the sender that prometheus.yml does not set. Defaults suit a server; tests shorten them.
#[derive(Debug, Clone)]
pub struct SenderOptions {
    /// How often an idle queue looks for new WAL data.
    pub poll_interval: Duration,
    /// How often the shard count is recalculated (Prometheus: 10s).
    pub shard_update_period: Duration,
    /// How long a stop or reshard waits for shards to drain (Prometheus: 1m).
    pub flush_deadline: Duration,
    /// How often the acknowledged position is written to disk.
    pub position_save_interval: Duration,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            poll_interval: Duration::from_millis(200),
            shard_update_period: Duration::from_secs(10),
            flush_deadline: Duration::from_secs(60),
            position_save_interval: Duration::from_secs(1),
        }
    }
}

struct RunningQueue {
    cfg: config::RemoteWriteConfig,
    external_labels: Labels,
    handle: queue::QueueHandle,
}

impl RunningQueue {
    fn stop(mut self) {
        self.handle.stop.stop();
        for t in [self.handle.thread.take(), self.handle.metadata_thread.take()].into_iter().flatten() {
            if t.join().is_err() {
                tracing::error!("BUG: remote write queue thread panicked");
            }
        }
    }
}

/// Runs the remote-write queues of the current configuration.
pub struct RemoteWriteManager {
    wal_dir: PathBuf,
    state_dir: PathBuf,
    opts: SenderOptions,
    external_labels: Mutex<Labels>,
    queues: Mutex<Vec<RunningQueue>>,
    /// Scrape targets' metadata for `metadata_config` (none: metadata is not sent).
    metadata: Mutex<Option<MetadataSource>>,
}

/// Identity of a queue for its position file and default `remote_name`: URL and name, so changing batching or
/// relabeling keeps the position while pointing at another endpoint starts afresh.
pub fn queue_hash(cfg: &config::RemoteWriteConfig) -> String {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    h.update(cfg.url.as_bytes());
    h.update(&[0xff]);
    h.update(cfg.name.as_bytes());
    format!("{:016x}", h.digest())
}

fn remote_name(cfg: &config::RemoteWriteConfig) -> String {
    if cfg.name.is_empty() {
        queue_hash(cfg)[..6].to_string()
    } else {
        cfg.name.clone()
    }
}

fn cfg_err(msg: String) -> RemoteError {
    RemoteError::Storage(StorageError::Other(msg))
}

/// A validated remote-write configuration with the HTTP clients of its new queues built, ready for
/// [`RemoteWriteManager::commit`]. Dropping it changes nothing.
pub struct PreparedRemoteWrite {
    cfgs: Vec<config::RemoteWriteConfig>,
    external_labels: Labels,
    clients: Vec<(config::RemoteWriteConfig, http::WriteClient)>,
}

fn check_duplicates(cfgs: &[config::RemoteWriteConfig]) -> Result<(), RemoteError> {
    let mut seen = std::collections::HashSet::new();
    for c in cfgs {
        if !seen.insert(queue_hash(c)) {
            return Err(cfg_err(format!("duplicate remote write configs are not allowed, found duplicate for URL: {}", c.url)));
        }
    }
    Ok(())
}

fn build_client(c: &config::RemoteWriteConfig) -> Result<http::WriteClient, RemoteError> {
    // reqwest's blocking client owns a runtime; build it off any async runtime thread the caller is on.
    std::thread::scope(|s| s.spawn(|| http::WriteClient::new(c)).join())
        .map_err(|_| cfg_err("BUG: client builder thread panicked".into()))?
        .map_err(|e| cfg_err(format!("remote_write {}: {e}", remote_name(c))))
}

impl RemoteWriteManager {
    /// `wal_dir` is the TSDB's `wal/` directory; position files go under `<state_dir>/remote_write/`.
    pub fn new(wal_dir: PathBuf, state_dir: PathBuf, external_labels: Labels) -> Arc<Self> {
        Self::with_options(wal_dir, state_dir, external_labels, SenderOptions::default())
    }

    pub fn with_options(wal_dir: PathBuf, state_dir: PathBuf, external_labels: Labels, opts: SenderOptions) -> Arc<Self> {
        Arc::new(RemoteWriteManager {
            wal_dir,
            state_dir,
            opts,
            external_labels: Mutex::new(external_labels),
            queues: Mutex::new(Vec::new()),
            metadata: Mutex::new(None),
        })
    }

    /// Where queues whose `metadata_config.send` is true get metric metadata (the server passes the scrape
    /// manager's). Queues started from now on use it.
    pub fn set_metadata_source(&self, source: MetadataSource) {
        *self.metadata.lock() = Some(source);
    }

    /// New external labels (after a config reload); queues pick them up at the next [`Self::apply_config`].
    pub fn set_external_labels(&self, l: Labels) {
        *self.external_labels.lock() = l;
    }

    /// Starts, keeps or stops queues so that exactly `cfgs` run. Unchanged queues keep running; changed ones
    /// are stopped (saving their position) and started again. Queues whose config cannot be used (e.g. oauth2,
    /// unreadable CA file) are not started; the others are, and the first error is returned. This is the lenient
    /// form for startup; a reload uses [`Self::prepare`] and [`Self::commit`] so an error changes nothing.
    pub fn apply_config(&self, cfgs: &[config::RemoteWriteConfig]) -> Result<(), RemoteError> {
        check_duplicates(cfgs)?;
        let ext = self.external_labels.lock().clone();
        let mut first_err = None;
        let mut clients = Vec::new();
        let mut failed = Vec::new();
        for c in self.to_start(cfgs, &ext) {
            match build_client(c) {
                Ok(cl) => clients.push((c.clone(), cl)),
                Err(e) => {
                    tracing::error!(url = %c.url, error = %e, "cannot start remote write queue");
                    failed.push(c.clone());
                    first_err.get_or_insert(e);
                }
            }
        }
        let run: Vec<_> = cfgs.iter().filter(|c| !failed.contains(c)).cloned().collect();
        let res = self.swap(PreparedRemoteWrite { cfgs: run, external_labels: ext, clients });
        first_err.map_or(res, Err)
    }

    /// Checks `cfgs` with `external_labels` and builds everything a change needs (HTTP clients with their TLS
    /// material) without touching the running queues, so a config reload can validate every part of a config
    /// before applying any. Any unusable queue config is an error.
    pub fn prepare(
        &self,
        cfgs: &[config::RemoteWriteConfig],
        external_labels: Labels,
    ) -> Result<PreparedRemoteWrite, RemoteError> {
        check_duplicates(cfgs)?;
        let mut clients = Vec::new();
        for c in self.to_start(cfgs, &external_labels) {
            clients.push((c.clone(), build_client(c)?));
        }
        Ok(PreparedRemoteWrite { cfgs: cfgs.to_vec(), external_labels, clients })
    }

    /// Applies a prepared change: the new external labels, and exactly the prepared queues running. Only
    /// failing to spawn a queue thread can make this fail.
    pub fn commit(&self, p: PreparedRemoteWrite) -> Result<(), RemoteError> {
        *self.external_labels.lock() = p.external_labels.clone();
        self.swap(p)
    }

    /// Configs of `cfgs` that are not running with `ext` now (new or changed queues).
    fn to_start<'c>(&self, cfgs: &'c [config::RemoteWriteConfig], ext: &Labels) -> Vec<&'c config::RemoteWriteConfig> {
        let queues = self.queues.lock();
        cfgs.iter().filter(|c| !queues.iter().any(|q| q.external_labels == *ext && q.cfg == **c)).collect()
    }

    fn swap(&self, p: PreparedRemoteWrite) -> Result<(), RemoteError> {
        let PreparedRemoteWrite { cfgs, external_labels: ext, mut clients } = p;
        let mut queues = self.queues.lock();
        let old = std::mem::take(&mut *queues);
        let (keep, stop): (Vec<_>, Vec<_>) =
            old.into_iter().partition(|q| q.external_labels == ext && cfgs.contains(&q.cfg));
        // Stop first: a restarted queue must find its predecessor's saved position.
        for q in &stop {
            q.handle.stop.stop();
        }
        for q in stop {
            q.stop();
        }
        *queues = keep;
        let mut first_err = None;
        for c in &cfgs {
            if queues.iter().any(|q| q.cfg == *c) {
                continue;
            }
            // Normally prepared; built here only if the running set changed since `prepare`.
            let client = match clients.iter().position(|(k, _)| k == c) {
                Some(i) => Ok(clients.swap_remove(i).1),
                None => build_client(c),
            };
            match client.and_then(|cl| self.start_queue(c, &ext, cl)) {
                Ok(q) => queues.push(q),
                Err(e) => {
                    tracing::error!(url = %c.url, error = %e, "cannot start remote write queue");
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn start_queue(&self, c: &config::RemoteWriteConfig, ext: &Labels, client: http::WriteClient) -> Result<RunningQueue, RemoteError> {
        let name = remote_name(c);
        let metrics = Arc::new(QueueMetrics::new(&name, &c.url));
        let pos_path = self.state_dir.join("remote_write").join(format!("{}.pos", queue_hash(c)));
        let handle = queue::start(queue::StartArgs {
            settings: queue::Settings::from_config(c, ext),
            opts: self.opts.clone(),
            wal_dir: self.wal_dir.clone(),
            pos_path,
            client,
            metrics,
            metadata: match &*self.metadata.lock() {
                Some(src) if c.metadata_config.send => Some((src.clone(), c.metadata_config.clone())),
                _ => None,
            },
        })
        .map_err(|e| RemoteError::Storage(StorageError::Io(e)))?;
        tracing::info!(remote_name = %name, url = %c.url, "started remote write queue");
        Ok(RunningQueue { cfg: c.clone(), external_labels: ext.clone(), handle })
    }

    /// Stops every queue: shards send what they hold (within the flush deadline, giving up on the first
    /// failed attempt), and positions are saved, so the next start resumes after the last acknowledged sample.
    pub fn stop(&self) {
        let qs = std::mem::take(&mut *self.queues.lock());
        // Signal all first so they drain in parallel.
        for q in &qs {
            q.handle.stop.stop();
        }
        for q in qs {
            q.stop();
        }
    }

    /// Metrics of the running queues, in start order.
    pub fn queue_metrics(&self) -> Vec<Arc<QueueMetrics>> {
        self.queues.lock().iter().map(|q| q.handle.metrics.clone()).collect()
    }

    /// Appends the `prometheus_remote_storage_*` families in the text exposition format.
    pub fn write_metrics(&self, out: &mut String) {
        let ms = self.queue_metrics();
        if ms.is_empty() {
            return;
        }
        let refs: Vec<&QueueMetrics> = ms.iter().map(|m| m.as_ref()).collect();
        metrics::write_families(&refs, out);
        let highest = ms.iter().map(|m| m.highest_read_timestamp_ms.load(Ordering::Relaxed)).max().unwrap_or(0);
        metrics::write_highest_timestamp(out, highest);
    }
}

impl Drop for RemoteWriteManager {
    fn drop(&mut self) {
        self.stop();
    }
}
