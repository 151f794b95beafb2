//! The scrape manager: one pool per scrape config (job), each with its discovery providers and one loop per
//! target. Reloads keep pools whose config is unchanged, and keep the loops of targets that survive a sync.

use crate::discovery::{self, Provider, Update};
use crate::metrics::ScrapeMetrics;
use crate::scrape_loop::{self, Appending, LoopEnv, LoopOptions, ScrapeCache, Stop};
use crate::target::{populate_labels, Target, TargetGroup, TargetInfo, TargetMetadata};
use config::{Config, ScrapeConfig, SCRAPE_PROTOCOLS};
use model::{LabelsBuilder, Storage};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Errors of the scrape manager.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeError {
    #[error("loading scrape configs: {0}")]
    Config(#[from] config::ConfigError),
    #[error("creating scrape pool for job {job:?}: {msg}")]
    Pool { job: String, msg: String },
}

/// Manager settings.
#[derive(Debug, Clone, Default)]
pub struct ManagerOptions {
    /// Mixed into each target's scrape offset, so HA pairs scraping the same targets don't hit them at the
    /// same instant (Prometheus seeds it from external labels and hostname).
    pub offset_seed: u64,
    /// Base URL of this server (for `globalUrl` in the targets API); empty to use the scrape URL.
    pub external_url: String,
    /// DNS servers for dns_sd_configs instead of those of /etc/resolv.conf (tests; an empty list means
    /// resolv.conf, as Prometheus).
    pub dns_servers: Vec<std::net::SocketAddr>,
}

/// The Accept header for a list of scrape protocols, weighted as Prometheus 2.53 does.
pub fn accept_header(protocols: &[String]) -> String {
    let mut out = Vec::new();
    let mut weight = SCRAPE_PROTOCOLS.len() + 1;
    for p in protocols {
        if let Some((_, h)) = SCRAPE_PROTOCOLS.iter().find(|(n, _)| n == p) {
            out.push(format!("{h};q=0.{weight}"));
            weight = weight.saturating_sub(1);
        }
    }
    out.push(format!("*/*;q=0.{weight}"));
    out.join(",")
}

struct LoopHandle {
    appending: Arc<Appending>,
    stop: watch::Sender<Stop>,
    join: JoinHandle<()>,
}

/// A stopped loop still waiting to write its end-of-run stale markers. Its sender is kept so a shutdown can
/// tell it to write them at once (a dropped sender would be read as a shutdown too early).
struct Retiring {
    stop: watch::Sender<Stop>,
    join: JoinHandle<()>,
}

#[derive(Default)]
struct PoolState {
    /// Target hash → running loop.
    loops: HashMap<u64, LoopHandle>,
    dropped: Vec<Arc<Target>>,
    /// Provider index → its groups.
    groups: BTreeMap<usize, Vec<TargetGroup>>,
    /// Loops stopped by syncs, waiting to write end-of-run stale markers.
    retiring: Vec<Retiring>,
}

struct Pool {
    cfg: Arc<ScrapeConfig>,
    env: Arc<LoopEnv>,
    opts: LoopOptions,
    metrics: Arc<ScrapeMetrics>,
    state: Mutex<PoolState>,
    sd_stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    dns: discovery::DnsServers,
}

fn loop_options(cfg: &ScrapeConfig, seed: u64) -> LoopOptions {
    LoopOptions {
        honor_labels: cfg.honor_labels,
        honor_timestamps: cfg.honor_timestamps,
        track_timestamps_staleness: cfg.track_timestamps_staleness,
        sample_limit: cfg.sample_limit as usize,
        label_limit: cfg.label_limit as usize,
        label_name_length_limit: cfg.label_name_length_limit as usize,
        label_value_length_limit: cfg.label_value_length_limit as usize,
        body_size_limit: cfg.body_size_limit.0,
        metric_relabel: Arc::new(cfg.metric_relabel_configs.clone()),
        accept: accept_header(&cfg.scrape_protocols),
        enable_compression: cfg.enable_compression,
        offset_seed: seed,
    }
}

/// Whether a loop's cache stays valid under a new config: only settings that change how samples are
/// labelled or timestamped invalidate it (Prometheus's `reusableCache`).
fn reusable_cache(a: &ScrapeConfig, b: &ScrapeConfig) -> bool {
    a.honor_labels == b.honor_labels
        && a.honor_timestamps == b.honor_timestamps
        && a.track_timestamps_staleness == b.track_timestamps_staleness
        && a.metric_relabel_configs == b.metric_relabel_configs
        && a.label_limit == b.label_limit
        && a.label_name_length_limit == b.label_name_length_limit
        && a.label_value_length_limit == b.label_value_length_limit
}

impl Pool {
    fn new(
        cfg: ScrapeConfig,
        storage: Arc<dyn Storage>,
        metrics: Arc<ScrapeMetrics>,
        mo: &ManagerOptions,
    ) -> Result<Arc<Pool>, String> {
        let seed = mo.offset_seed;
        let http = cfg.http_client();
        let client = crate::http::build_client(&http, cfg.enable_compression)?;
        let env = Arc::new(LoopEnv { storage, client, http, forced_error: Arc::new(Mutex::new(None)) });
        let (sd_stop, _) = watch::channel(false);
        Ok(Arc::new(Pool {
            opts: loop_options(&cfg, seed),
            cfg: Arc::new(cfg),
            env,
            metrics,
            state: Mutex::new(PoolState::default()),
            sd_stop,
            tasks: Mutex::new(Vec::new()),
            dns: if mo.dns_servers.is_empty() {
                discovery::DnsServers::System
            } else {
                discovery::DnsServers::Fixed(mo.dns_servers.clone())
            },
        }))
    }

    /// Starts discovery. Static targets are synced before this returns, so their loops exist right away.
    fn start(self: &Arc<Self>, inherited: HashMap<u64, Arc<Mutex<ScrapeCache>>>) {
        let (tx, mut rx) = mpsc::channel::<Update>(16);
        {
            let mut st = self.state.lock();
            st.groups.insert(0, discovery::static_groups(&self.cfg.static_configs));
        }
        self.sync(&inherited);
        let mut tasks = self.tasks.lock();
        let providers = self
            .cfg
            .file_sd_configs
            .iter()
            .cloned()
            .map(Provider::File)
            .chain(self.cfg.http_sd_configs.iter().cloned().map(Provider::Http))
            .chain(self.cfg.dns_sd_configs.iter().cloned().map(|c| Provider::Dns(c, self.dns.clone())));
        // Provider 0 is static_configs.
        for (idx, p) in (1..).zip(providers) {
            tasks.push(discovery::spawn(idx, p, tx.clone(), self.metrics.clone(), self.sd_stop.subscribe()));
        }
        drop(tx);
        let me = Arc::downgrade(self);
        tasks.push(tokio::spawn(async move {
            let mut inherited = inherited;
            while let Some((i, groups)) = rx.recv().await {
                let Some(pool) = me.upgrade() else { return };
                pool.state.lock().groups.insert(i, groups);
                pool.sync(&inherited);
                // Inherited caches are only for the first sync after a reload.
                inherited.clear();
            }
        }));
    }

    /// Recomputes the targets from all groups and starts/stops loops (Prometheus's `scrapePool.Sync`).
    fn sync(&self, inherited: &HashMap<u64, Arc<Mutex<ScrapeCache>>>) {
        let mut st = self.state.lock();
        let mut active: Vec<Target> = Vec::new();
        let mut dropped: Vec<Arc<Target>> = Vec::new();
        let mut discovered_n = 0;
        for groups in st.groups.values() {
            for g in groups {
                for (i, t) in g.targets.iter().enumerate() {
                    discovered_n += 1;
                    let mut lb = LabelsBuilder::new();
                    for (k, v) in t {
                        lb.set(k, v);
                    }
                    for (k, v) in &g.labels {
                        if !t.contains_key(k) {
                            lb.set(k, v);
                        }
                    }
                    match populate_labels(lb, &self.cfg) {
                        Ok((l, d)) if l.is_empty() => {
                            let keep = self.cfg.keep_dropped_targets;
                            if keep == 0 || (dropped.len() as u64) < keep {
                                dropped.push(Arc::new(Target::dropped(d, &self.cfg)));
                            }
                        }
                        Ok((l, d)) => active.push(Target::new(l, d, &self.cfg)),
                        Err(e) => tracing::warn!(job = %self.cfg.job_name, group = %g.source, instance = i, err = %e, "creating target failed"),
                    }
                }
            }
        }
        self.metrics.sd_discovered_targets.store(discovered_n, Relaxed);
        st.dropped = dropped;
        let mut seen = std::collections::HashSet::new();
        let mut new_count = 0usize;
        for t in active {
            if !seen.insert(t.hash) {
                continue; // duplicate target
            }
            new_count += 1;
            if st.loops.contains_key(&t.hash) {
                continue;
            }
            let cache = inherited.get(&t.hash).cloned().unwrap_or_default();
            let h = self.spawn_loop(Arc::new(t), cache);
            st.loops.insert(h.appending.target.hash, h);
        }
        let gone: Vec<u64> = st.loops.keys().filter(|h| !seen.contains(h)).copied().collect();
        for h in gone {
            if let Some(l) = st.loops.remove(&h) {
                let _ = l.stop.send(Stop::EndOfRun);
                st.retiring.push(Retiring { stop: l.stop, join: l.join });
            }
        }
        st.retiring.retain(|r| !r.join.is_finished());
        // target_limit: every scrape of the pool fails while it is exceeded.
        let limit = self.cfg.target_limit as usize;
        *self.env.forced_error.lock() = if limit > 0 && new_count > limit {
            self.metrics.target_scrape_pool_exceeded_target_limit_total.fetch_add(1, Relaxed);
            Some(format!("target_limit exceeded (number of targets: {new_count}, limit: {limit})"))
        } else {
            None
        };
    }

    fn spawn_loop(&self, target: Arc<Target>, cache: Arc<Mutex<ScrapeCache>>) -> LoopHandle {
        let appending = Arc::new(Appending::new(target, self.opts.clone(), cache, self.metrics.clone()));
        let (stop, rx) = watch::channel(Stop::Running);
        let join = tokio::spawn(scrape_loop::run(appending.clone(), self.env.clone(), rx));
        LoopHandle { appending, stop, join }
    }

    /// Stops discovery and every loop with `mode`. Returns the loops' caches by target hash, and (for
    /// `EndOfRun`) the loops still waiting to write stale markers; other modes wait for the loops to finish.
    async fn stop(&self, mode: Stop) -> (HashMap<u64, Arc<Mutex<ScrapeCache>>>, Vec<Retiring>) {
        let _ = self.sd_stop.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        for t in &tasks {
            t.abort();
        }
        let (loops, mut retiring) = {
            let mut st = self.state.lock();
            (std::mem::take(&mut st.loops), std::mem::take(&mut st.retiring))
        };
        let mut caches = HashMap::new();
        for (h, l) in loops {
            let _ = l.stop.send(mode);
            caches.insert(h, l.appending.cache.clone());
            retiring.push(Retiring { stop: l.stop, join: l.join });
        }
        if mode == Stop::EndOfRun {
            return (caches, retiring);
        }
        for r in retiring {
            if mode == Stop::Shutdown {
                let _ = r.stop.send(Stop::Shutdown);
            }
            let _ = r.join.await;
        }
        (caches, Vec::new())
    }
}

/// Scrapes every target of the loaded config into a [`Storage`].
pub struct ScrapeManager {
    storage: Arc<dyn Storage>,
    opts: ManagerOptions,
    metrics: Arc<ScrapeMetrics>,
    pools: Mutex<BTreeMap<String, Arc<Pool>>>,
    /// Loops of removed pools waiting to write end-of-run stale markers.
    retiring: Mutex<Vec<Retiring>>,
    apply_lock: tokio::sync::Mutex<()>,
    /// (job, SD key) pairs already warned about, so reloads don't repeat the warning.
    pub(crate) warned_sd: Mutex<std::collections::HashSet<(String, &'static str)>>,
}

impl ScrapeManager {
    pub fn new(storage: Arc<dyn Storage>, opts: ManagerOptions) -> Arc<ScrapeManager> {
        Arc::new(ScrapeManager {
            storage,
            opts,
            metrics: Arc::new(ScrapeMetrics::default()),
            pools: Mutex::new(BTreeMap::new()),
            retiring: Mutex::new(Vec::new()),
            apply_lock: tokio::sync::Mutex::new(()),
            warned_sd: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// Applies a (re)loaded config: starts new pools, stops removed ones (their series get stale markers),
    /// reloads changed ones (loops restart with the new settings, keeping their caches when the labelling is
    /// unchanged), and leaves unchanged pools and their targets' loops running. Must run inside a tokio
    /// runtime.
    pub async fn apply_config(&self, cfg: &Config) -> Result<(), ScrapeError> {
        let _guard = self.apply_lock.lock().await;
        let scfgs = cfg.get_scrape_configs()?;
        let current: BTreeMap<String, Arc<Pool>> = self.pools.lock().clone();
        let mut next: BTreeMap<String, Arc<Pool>> = BTreeMap::new();
        let mut first_err = None;
        for sc in scfgs {
            let job = sc.job_name.clone();
            for (key, _) in sc.unsupported_sd() {
                if self.warned_sd.lock().insert((job.clone(), key)) {
                    tracing::warn!("{}", config::unsupported_sd_warning(&format!("scrape job {job:?}"), key));
                }
            }
            match current.get(&job) {
                Some(p) if *p.cfg == sc => {
                    next.insert(job, p.clone());
                }
                Some(old) => {
                    self.metrics.target_scrape_pool_reloads_total.fetch_add(1, Relaxed);
                    let reusable = reusable_cache(&old.cfg, &sc);
                    match Pool::new(sc, self.storage.clone(), self.metrics.clone(), &self.opts) {
                        Ok(p) => {
                            let (caches, _) = old.stop(Stop::Reload).await;
                            p.start(if reusable { caches } else { HashMap::new() });
                            next.insert(job, p);
                        }
                        Err(msg) => {
                            self.metrics.target_scrape_pool_reloads_failed_total.fetch_add(1, Relaxed);
                            first_err.get_or_insert(ScrapeError::Pool { job: job.clone(), msg });
                            next.insert(job, old.clone());
                        }
                    }
                }
                None => {
                    self.metrics.target_scrape_pools_total.fetch_add(1, Relaxed);
                    match Pool::new(sc, self.storage.clone(), self.metrics.clone(), &self.opts) {
                        Ok(p) => {
                            p.start(HashMap::new());
                            next.insert(job, p);
                        }
                        Err(msg) => {
                            self.metrics.target_scrape_pools_failed_total.fetch_add(1, Relaxed);
                            first_err.get_or_insert(ScrapeError::Pool { job, msg });
                        }
                    }
                }
            }
        }
        for (job, p) in &current {
            if !next.contains_key(job) {
                let (_, r) = p.stop(Stop::EndOfRun).await;
                let mut ret = self.retiring.lock();
                ret.retain(|r| !r.join.is_finished());
                ret.extend(r);
            }
        }
        *self.pools.lock() = next;
        self.update_gauges();
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn update_gauges(&self) {
        let pools = self.pools.lock();
        let n: usize = pools.values().map(|p| p.state.lock().loops.len()).sum();
        self.metrics.target_scrape_pool_targets.store(n as u64, Relaxed);
        self.metrics.sd_discovered_targets.store(
            pools.values().map(|p| { let s = p.state.lock(); (s.loops.len() + s.dropped.len()) as u64 }).sum(),
            Relaxed,
        );
    }

    /// Stops every loop for a server shutdown. No stale markers are written, not even by loops still waiting to
    /// mark a removed target's series (Prometheus's scrape loops skip them once the server's context is done):
    /// after a restart each series' last sample answers instant queries within the lookback delta, as before.
    pub async fn stop(&self) {
        let _guard = self.apply_lock.lock().await;
        let pools: Vec<Arc<Pool>> = std::mem::take(&mut *self.pools.lock()).into_values().collect();
        for p in pools {
            p.stop(Stop::Shutdown).await;
        }
        let retiring: Vec<Retiring> = std::mem::take(&mut *self.retiring.lock());
        for r in retiring {
            let _ = r.stop.send(Stop::Shutdown);
            let _ = r.join.await;
        }
    }

    /// Active targets, by pool then URL.
    pub fn active_targets(&self) -> Vec<TargetInfo> {
        self.update_gauges();
        let mut out = Vec::new();
        for p in self.pools.lock().values() {
            let st = p.state.lock();
            let mut v: Vec<TargetInfo> = st.loops.values().map(|l| l.appending.target.info(&self.opts.external_url)).collect();
            v.sort_by(|a, b| a.scrape_url.cmp(&b.scrape_url));
            out.extend(v);
        }
        out
    }

    /// Targets dropped by relabeling (only `discoveredLabels` and `scrapePool` are meaningful).
    pub fn dropped_targets(&self) -> Vec<TargetInfo> {
        let mut out = Vec::new();
        for p in self.pools.lock().values() {
            out.extend(p.state.lock().dropped.iter().map(|t| t.info("")));
        }
        out
    }

    /// HELP/TYPE/UNIT of every metric of every active target.
    pub fn metadata(&self) -> Vec<TargetMetadata> {
        let mut out = Vec::new();
        for p in self.pools.lock().values() {
            for l in p.state.lock().loops.values() {
                let t = &l.appending.target;
                let target: BTreeMap<String, String> = t.public_labels.iter().cloned().collect();
                let mut md: Vec<TargetMetadata> = t
                    .metadata
                    .lock()
                    .iter()
                    .map(|(name, m)| TargetMetadata {
                        target: target.clone(),
                        metric: name.clone(),
                        kind: m.kind.as_str().to_string(),
                        help: m.help.clone(),
                        unit: m.unit.clone(),
                    })
                    .collect();
                md.sort_by(|a, b| a.metric.cmp(&b.metric));
                out.extend(md);
            }
        }
        out
    }

    pub fn metrics(&self) -> &ScrapeMetrics {
        &self.metrics
    }
}
