//! One remote-write queue: a thread that tails the WAL and hands samples to shards, and the shard threads that
//! batch, send and retry. Modelled on Prometheus's `QueueManager`, with one addition: acknowledgements.
//!
//! Every WAL record read in the sending region gets a sequence number and a pending count of its samples.
//! Shards acknowledge samples once sent (or finally dropped); the contiguous acknowledged prefix of records is
//! the queue's [`Position`], saved to the position file. So after a restart the queue resumes after the last
//! acknowledged record: a clean stop sends nothing twice, a crash resends at most the unacknowledged records.

use super::encode::{encode_labels, BatchEncoder, Item};
use super::http::{SendError, WriteClient};
use super::metadata::{self, MetadataArgs, MetadataSource};
use super::metrics::QueueMetrics;
use super::position::{self, Position};
use super::wal_reader::{self, Poll, SegmentHolder, WalReader, ABORT};
use super::SenderOptions;
use config::relabel::RelabelConfig;
use model::Labels;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tsdb::wal::{self, Record};

/// Settings of one queue, resolved from its `RemoteWriteConfig`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub capacity: usize,
    pub max_shards: usize,
    pub min_shards: usize,
    pub max_samples_per_send: usize,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub sample_age_limit_ms: i64,
    pub relabel: Vec<RelabelConfig>,
    pub external_labels: Labels,
}

impl Settings {
    pub(crate) fn from_config(cfg: &config::RemoteWriteConfig, external_labels: &Labels) -> Settings {
        let q = &cfg.queue_config;
        let max_shards = q.max_shards.max(1) as usize;
        Settings {
            capacity: q.capacity.max(1) as usize,
            max_shards,
            min_shards: (q.min_shards.max(1) as usize).min(max_shards),
            max_samples_per_send: q.max_samples_per_send.max(1) as usize,
            batch_send_deadline: q.batch_send_deadline.as_std().max(Duration::from_millis(1)),
            min_backoff: q.min_backoff.as_std(),
            max_backoff: q.max_backoff.as_std().max(q.min_backoff.as_std()),
            sample_age_limit_ms: q.sample_age_limit.as_millis(),
            relabel: cfg.write_relabel_configs.clone(),
            external_labels: external_labels.clone(),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
pub(crate) fn tests_now_ms() -> i64 {
    now_ms()
}

/// A stop signal that sleepers can wait on.
#[derive(Default)]
pub(crate) struct StopSignal {
    flag: AtomicBool,
    m: Mutex<()>,
    cv: Condvar,
}

impl StopSignal {
    pub(crate) fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        let _g = self.m.lock();
        self.cv.notify_all();
    }
    pub(crate) fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
    /// Sleeps up to `d`; returns true if stopped.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let mut g = self.m.lock();
        if !self.is_stopped() {
            self.cv.wait_for(&mut g, d);
        }
        self.is_stopped()
    }
}

// ---------------------------------------------------------------------------------------------------------
// Acknowledgements

struct PendingRecord {
    remaining: u64,
    pos: Position,
}

struct AckState {
    /// Sequence number of `pending[0]`.
    base: u64,
    pending: VecDeque<PendingRecord>,
    acked: Position,
}

pub(crate) struct Acks {
    st: Mutex<AckState>,
}

impl Acks {
    fn new(start: Position) -> Self {
        Acks { st: Mutex::new(AckState { base: 0, pending: VecDeque::new(), acked: start }) }
    }

    /// Sequence number the next [`Acks::register`] returns (only the reader thread registers).
    fn next_seq(&self) -> u64 {
        let st = self.st.lock();
        st.base + st.pending.len() as u64
    }

    /// Registers a record of `n` samples ending at `pos`; a record with none is acknowledged at once.
    fn register(&self, n: u64, pos: Position) -> u64 {
        let mut st = self.st.lock();
        let seq = st.base + st.pending.len() as u64;
        st.pending.push_back(PendingRecord { remaining: n, pos });
        Self::advance(&mut st);
        seq
    }

    /// Acknowledges `n` samples of record `seq` for each `(seq, n)`.
    fn ack(&self, runs: &[(u64, u64)]) {
        let mut st = self.st.lock();
        for &(seq, n) in runs {
            let i = seq.wrapping_sub(st.base) as usize;
            match st.pending.get_mut(i) {
                Some(p) => p.remaining = p.remaining.saturating_sub(n),
                None => tracing::error!(seq, "BUG: acknowledgement for an unknown WAL record"),
            }
        }
        Self::advance(&mut st);
    }

    fn advance(st: &mut AckState) {
        while st.pending.front().is_some_and(|p| p.remaining == 0) {
            if let Some(p) = st.pending.pop_front() {
                st.acked = Position { acked_max_t: st.acked.acked_max_t.max(p.pos.acked_max_t), ..p.pos };
                st.base += 1;
            }
        }
    }

    pub(crate) fn position(&self) -> Position {
        self.st.lock().acked
    }
}

// ---------------------------------------------------------------------------------------------------------
// Shards

#[derive(Default)]
struct ShardState {
    items: VecDeque<Item>,
    /// No more input: send what is queued, then exit.
    closing: bool,
    /// Exit now, returning what is unsent.
    hard_stop: bool,
    /// While closing for shutdown: give up on the first failed attempt instead of retrying (the WAL and the
    /// position file keep the samples for the next start).
    abandon_on_failure: bool,
}

struct Shard {
    st: Mutex<ShardState>,
    cv: Condvar,
}

impl Shard {
    fn set(&self, f: impl FnOnce(&mut ShardState)) {
        f(&mut self.st.lock());
        self.cv.notify_all();
    }
}

/// What shards share.
pub(crate) struct SendCtx {
    client: WriteClient,
    metrics: Arc<QueueMetrics>,
    acks: Arc<Acks>,
    max_samples_per_send: usize,
    batch_send_deadline: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    /// Unix seconds of the last successful send.
    last_send_ok: AtomicI64,
    data_out: AtomicU64,
    data_out_ns: AtomicU64,
    /// Set once a retry has been logged at warn level, so an outage logs one warning, not thousands.
    warned: AtomicBool,
}

enum Outcome {
    Done,
    Abandoned,
}

fn run_shard(sh: Arc<Shard>, ctx: Arc<SendCtx>) -> Vec<Item> {
    let max = ctx.max_samples_per_send;
    let mut batch: Vec<Item> = Vec::with_capacity(max);
    let mut enc = BatchEncoder::default();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    loop {
        {
            let mut st = sh.st.lock();
            let mut deadline: Option<Instant> = None;
            loop {
                if st.hard_stop {
                    return batch.into_iter().chain(std::mem::take(&mut st.items)).collect();
                }
                if st.items.len() >= max || st.closing {
                    break;
                }
                if st.items.is_empty() {
                    deadline = None;
                    sh.cv.wait(&mut st);
                } else {
                    let d = *deadline.get_or_insert_with(|| Instant::now() + ctx.batch_send_deadline);
                    if Instant::now() >= d {
                        break;
                    }
                    sh.cv.wait_until(&mut st, d);
                }
            }
            let n = st.items.len().min(max);
            batch.extend(st.items.drain(..n));
            if batch.is_empty() {
                return Vec::new(); // closing and drained
            }
        }
        sh.cv.notify_all(); // room for the reader
        match send_batch(&sh, &ctx, &batch, &mut enc) {
            Outcome::Done => {
                runs.clear();
                for it in &batch {
                    match runs.last_mut() {
                        Some((s, n)) if *s == it.seq => *n += 1,
                        _ => runs.push((it.seq, 1)),
                    }
                }
                ctx.acks.ack(&runs);
                ctx.metrics.samples_pending.fetch_sub(batch.len() as i64, Ordering::Relaxed);
                batch.clear();
            }
            Outcome::Abandoned => {
                let mut st = sh.st.lock();
                return batch.into_iter().chain(std::mem::take(&mut st.items)).collect();
            }
        }
    }
}

fn send_batch(sh: &Shard, ctx: &SendCtx, batch: &[Item], enc: &mut BatchEncoder) -> Outcome {
    let n = batch.len() as u64;
    let m = &ctx.metrics;
    let (body, max_t) = enc.encode(batch);
    let mut backoff = ctx.min_backoff;
    loop {
        m.samples_total.fetch_add(n, Ordering::Relaxed);
        let t0 = Instant::now();
        let res = ctx.client.store(body);
        let el = t0.elapsed();
        m.sent_batch_duration.observe(el.as_secs_f64());
        ctx.data_out_ns.fetch_add(el.as_nanos() as u64, Ordering::Relaxed);
        match res {
            Ok(()) => {
                m.bytes_total.fetch_add(body.len() as u64, Ordering::Relaxed);
                QueueMetrics::set_max_i64(&m.highest_sent_timestamp_ms, max_t);
                ctx.last_send_ok.store(now_ms() / 1000, Ordering::Relaxed);
                ctx.data_out.fetch_add(n, Ordering::Relaxed);
                if ctx.warned.swap(false, Ordering::Relaxed) {
                    tracing::info!(remote_name = %m.remote_name, url = %m.url, "remote write succeeded again");
                }
                return Outcome::Done;
            }
            Err(SendError::Unrecoverable(msg)) => {
                m.samples_failed_total.fetch_add(n, Ordering::Relaxed);
                ctx.data_out.fetch_add(n, Ordering::Relaxed);
                tracing::error!(remote_name = %m.remote_name, url = %m.url, samples = n, error = %msg,
                    "non-recoverable error sending samples; dropping them");
                return Outcome::Done;
            }
            Err(SendError::Recoverable { msg, retry_after }) => {
                if sh.st.lock().abandon_on_failure {
                    return Outcome::Abandoned;
                }
                let sleep = retry_after.unwrap_or(backoff);
                if ctx.warned.swap(true, Ordering::Relaxed) {
                    tracing::debug!(remote_name = %m.remote_name, error = %msg, ?sleep, "failed to send batch, retrying");
                } else {
                    tracing::warn!(remote_name = %m.remote_name, url = %m.url, error = %msg, ?sleep, "failed to send batch, retrying");
                }
                {
                    let mut st = sh.st.lock();
                    if !st.hard_stop && !st.abandon_on_failure {
                        sh.cv.wait_for(&mut st, sleep);
                    }
                    if st.hard_stop || st.abandon_on_failure {
                        return Outcome::Abandoned;
                    }
                }
                m.samples_retried_total.fetch_add(n, Ordering::Relaxed);
                backoff = (sleep * 2).min(ctx.max_backoff);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Shard-count calculation (Prometheus's `calculateDesiredShards`)

const EWMA_WEIGHT: f64 = 0.2;
const SHARD_TOLERANCE: f64 = 0.3;

#[derive(Default)]
struct Ewma {
    rate: f64,
    init: bool,
}

impl Ewma {
    fn tick(&mut self, count: f64, secs: f64) {
        let instant = count / secs;
        if self.init {
            self.rate += EWMA_WEIGHT * (instant - self.rate);
        } else {
            self.init = true;
            self.rate = instant;
        }
    }
}

#[derive(Default)]
struct Rates {
    data_in: Ewma,
    data_out: Ewma,
    dropped: Ewma,
    out_duration: Ewma,
    in_count: u64,
    dropped_count: u64,
}

// ---------------------------------------------------------------------------------------------------------
// The reader side

struct SeriesEntry {
    /// Encoded labels after external labels and relabeling; `None` if relabeling dropped the series.
    enc: Option<Arc<[u8]>>,
    /// Segment of the series record (checkpoint number for checkpoint records), for garbage collection.
    seg: u32,
}

pub(crate) struct QueueHandle {
    pub(crate) metrics: Arc<QueueMetrics>,
    pub(crate) stop: Arc<StopSignal>,
    pub(crate) thread: Option<JoinHandle<()>>,
    /// The metadata sender (`metadata_config.send` with a metadata source).
    pub(crate) metadata_thread: Option<JoinHandle<()>>,
}

struct Sink {
    s: Settings,
    opts: SenderOptions,
    wal_dir: PathBuf,
    pos_path: PathBuf,
    ctx: Arc<SendCtx>,
    stop: Arc<StopSignal>,
    series: HashMap<u64, SeriesEntry>,
    /// Records ending after this position have their samples sent; earlier ones only define series.
    region: (u32, u64),
    shards: Vec<(Arc<Shard>, JoinHandle<Vec<Item>>)>,
    staging: Vec<Vec<Item>>,
    rates: Rates,
    next_shard_update: Instant,
    next_pos_save: Instant,
    saved: Option<Position>,
    gc_checkpoint: Option<u32>,
    unknown_ref_warned: bool,
    /// Kept listing while blocked on full shards, so segments written and checkpointed meanwhile stay readable.
    holder: Arc<SegmentHolder>,
}

impl Sink {
    fn define(&mut self, r: u64, l: &Labels, seg: u32) {
        // External labels first, then relabeling (Prometheus's `StoreSeries` order).
        let l = crate::with_external_labels(l, &self.s.external_labels);
        let out = if self.s.relabel.is_empty() { Some(l) } else { config::relabel::relabel(&l, &self.s.relabel) };
        let enc = out.filter(|l| !l.is_empty()).map(|l| encode_labels(&l));
        self.series.insert(r, SeriesEntry { enc, seg });
    }

    fn shard_of(r: u64, n: usize) -> usize {
        // Multiplicative hash: refs are dense small integers; spread them over the shards.
        ((r.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % n as u64) as usize
    }

    /// Stages the samples of one record, registers it, and pushes to the shards (blocking while full).
    /// Samples at or before `min_t` are skipped (checkpoint recovery).
    fn enqueue(&mut self, samples: &[wal::RefSample], pos: Position, min_t: Option<i64>) -> Result<(), String> {
        let n = self.shards.len();
        let seq = self.ctx.acks.next_seq();
        let age_cutoff = (self.s.sample_age_limit_ms > 0).then(|| now_ms() - self.s.sample_age_limit_ms);
        let mut kept = 0u64;
        let mut max_t = i64::MIN;
        let mut dropped = 0u64;
        for s in samples {
            if min_t.is_some_and(|m| s.t <= m) {
                continue;
            }
            self.rates.in_count += 1;
            QueueMetrics::set_max_i64(&self.ctx.metrics.highest_read_timestamp_ms, s.t);
            let Some(e) = self.series.get(&s.r) else {
                dropped += 1;
                if !self.unknown_ref_warned {
                    self.unknown_ref_warned = true;
                    tracing::warn!(remote_name = %self.ctx.metrics.remote_name, r = s.r, "sample for a series ref not in the WAL; dropped");
                }
                continue;
            };
            let Some(enc) = &e.enc else {
                dropped += 1;
                continue;
            };
            if age_cutoff.is_some_and(|c| s.t < c) {
                dropped += 1;
                continue;
            }
            self.staging[Self::shard_of(s.r, n)].push(Item { labels: enc.clone(), r: s.r, t: s.t, v: s.v, seq });
            kept += 1;
            max_t = max_t.max(s.t);
        }
        self.rates.dropped_count += dropped;
        self.ctx.metrics.samples_dropped_total.fetch_add(dropped, Ordering::Relaxed);
        let got = self.ctx.acks.register(kept, Position { acked_max_t: max_t, ..pos });
        debug_assert_eq!(got, seq);
        self.ctx.metrics.samples_pending.fetch_add(kept as i64, Ordering::Relaxed);
        for i in 0..n {
            if self.staging[i].is_empty() {
                continue;
            }
            let sh = self.shards[i].0.clone();
            let mut st = sh.st.lock();
            let mut waited = false;
            let mut stopped = false;
            for it in self.staging[i].drain(..) {
                while st.items.len() >= self.s.capacity && !stopped {
                    if !waited {
                        waited = true;
                        self.ctx.metrics.enqueue_retries_total.fetch_add(1, Ordering::Relaxed);
                    }
                    sh.cv.notify_all();
                    sh.cv.wait_for(&mut st, Duration::from_millis(50));
                    stopped = self.stop.is_stopped();
                    if let Err(e) = self.holder.refresh() {
                        tracing::debug!(error = %e, "listing the WAL while waiting for shards");
                    }
                }
                if stopped {
                    break; // the drain drops the rest; the record stays unacknowledged
                }
                st.items.push_back(it);
            }
            drop(st);
            if stopped {
                self.staging.iter_mut().for_each(Vec::clear);
                return Err(ABORT.into());
            }
            sh.cv.notify_all();
        }
        Ok(())
    }

    fn on_record(&mut self, rec: &[u8], seg: u32, end: u64) -> Result<(), String> {
        if self.stop.is_stopped() {
            return Err(ABORT.into());
        }
        let in_region = (seg, end) > self.region;
        let pos = Position { segment: seg, offset: end, acked_max_t: i64::MIN };
        match wal::decode(rec) {
            Ok(Record::Series(ss)) => {
                for (r, l) in &ss {
                    self.define(*r, l, seg);
                }
                if in_region {
                    self.ctx.acks.register(0, pos);
                }
            }
            Ok(Record::Samples(ss)) if in_region => self.enqueue(&ss, pos, None)?,
            Ok(_) => {
                if in_region {
                    self.ctx.acks.register(0, pos);
                }
            }
            Err(e) => {
                tracing::warn!(segment = seg, offset = end, error = %e, "undecodable WAL record skipped");
                if in_region {
                    self.ctx.acks.register(0, pos);
                }
            }
        }
        self.housekeeping(false);
        Ok(())
    }

    fn start_shards(&mut self, n: usize) {
        for _ in 0..n {
            let sh = Arc::new(Shard { st: Mutex::new(ShardState::default()), cv: Condvar::new() });
            let (sh2, ctx) = (sh.clone(), self.ctx.clone());
            let h = std::thread::Builder::new()
                .name("remote-write-shard".into())
                .spawn(move || run_shard(sh2, ctx))
                .unwrap_or_else(|e| panic!("BUG: cannot spawn remote write shard thread: {e}"));
            self.shards.push((sh, h));
        }
        self.staging.resize_with(n, Vec::new);
        self.staging.truncate(n);
        self.ctx.metrics.shards.store(n as i64, Ordering::Relaxed);
    }

    /// Closes the shards and waits for them to drain, up to `deadline`; then stops them hard. Returns the
    /// unsent samples, each shard's in order.
    fn stop_shards(&mut self, shutdown: bool, deadline: Duration) -> Vec<Item> {
        for (sh, _) in &self.shards {
            sh.set(|st| {
                st.closing = true;
                st.abandon_on_failure |= shutdown;
            });
        }
        let until = Instant::now() + deadline;
        while Instant::now() < until && !self.shards.iter().all(|(_, h)| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(5));
        }
        for (sh, _) in &self.shards {
            sh.set(|st| st.hard_stop = true);
        }
        let mut unsent = Vec::new();
        for (_, h) in self.shards.drain(..) {
            match h.join() {
                Ok(v) => unsent.extend(v),
                Err(_) => tracing::error!("BUG: remote write shard panicked"),
            }
        }
        unsent
    }

    fn reshard(&mut self, n: usize) {
        tracing::info!(remote_name = %self.ctx.metrics.remote_name, from = self.shards.len(), to = n, "remote write resharding");
        let unsent = self.stop_shards(false, self.opts.flush_deadline);
        self.start_shards(n);
        // Requeue in order: a series' unsent samples all come from its old shard, oldest first.
        for it in unsent {
            let i = Self::shard_of(it.r, n);
            self.shards[i].0.st.lock().items.push_back(it);
        }
        for (sh, _) in &self.shards {
            sh.cv.notify_all();
        }
    }

    fn desired_shards(&mut self, secs: f64) -> usize {
        let out = self.ctx.data_out.swap(0, Ordering::Relaxed) as f64;
        let out_ns = self.ctx.data_out_ns.swap(0, Ordering::Relaxed) as f64;
        let r = &mut self.rates;
        r.data_in.tick(std::mem::take(&mut r.in_count) as f64, secs);
        r.dropped.tick(std::mem::take(&mut r.dropped_count) as f64, secs);
        r.data_out.tick(out, secs);
        r.out_duration.tick(out_ns, secs);
        let num = self.shards.len();
        let (in_rate, out_rate) = (r.data_in.rate, r.data_out.rate);
        if out_rate <= 0.0 {
            return num;
        }
        let kept_ratio = out_rate / (r.dropped.rate + out_rate);
        let out_duration = r.out_duration.rate / 1e9;
        let m = &self.ctx.metrics;
        let highest_sent = (m.highest_sent_timestamp_ms.load(Ordering::Relaxed) / 1000) as f64;
        let highest_recv = (m.highest_read_timestamp_ms.load(Ordering::Relaxed) / 1000) as f64;
        let delay = highest_recv - highest_sent;
        let pending = delay * in_rate * kept_ratio;
        let backlog_catchup = 0.05 * pending;
        let time_per_sample = out_duration / out_rate;
        let desired = time_per_sample * (in_rate * kept_ratio + backlog_catchup);
        m.shards_desired.set(desired);
        let (lo, hi) = (num as f64 * (1.0 - SHARD_TOLERANCE), num as f64 * (1.0 + SHARD_TOLERANCE));
        let desired = desired.ceil();
        if lo <= desired && desired <= hi {
            return num;
        }
        let want = desired as usize;
        if want < num && delay > 10.0 {
            return num; // do not scale down while far behind
        }
        want.clamp(self.s.min_shards, self.s.max_shards)
    }

    fn housekeeping(&mut self, force_save: bool) {
        let now = Instant::now();
        if force_save || now >= self.next_pos_save {
            self.next_pos_save = now + self.opts.position_save_interval;
            let p = self.ctx.acks.position();
            if self.saved != Some(p) {
                match position::store(&self.pos_path, &p) {
                    Ok(()) => self.saved = Some(p),
                    Err(e) => tracing::warn!(path = %self.pos_path.display(), error = %e, "cannot save remote write position"),
                }
            }
        }
        if now >= self.next_shard_update {
            let secs = self.opts.shard_update_period.as_secs_f64();
            self.next_shard_update = now + self.opts.shard_update_period;
            let want = self.desired_shards(secs);
            // Do not reshard while the endpoint is failing (Prometheus's `shouldReshard`).
            let recent = now_ms() / 1000 - (2 * self.s.batch_send_deadline.as_secs() as i64).max(1);
            if want != self.shards.len() && self.ctx.last_send_ok.load(Ordering::Relaxed) >= recent {
                self.reshard(want);
            }
        }
    }

    /// Forgets series that a checkpoint no longer carries once the reader is past it (Prometheus's
    /// `SeriesReset`), so the map follows the head instead of growing forever.
    fn maybe_gc(&mut self, reader_seg: u32, checkpoint: Option<u32>) {
        let Some(c) = checkpoint else { return };
        if self.gc_checkpoint.is_some_and(|g| g >= c) || reader_seg <= c {
            return;
        }
        let dir = self.wal_dir.join(format!("checkpoint.{c:08}"));
        let mut keep = HashSet::new();
        let res = wal_reader::read_dir_records(&dir, &mut |rec| {
            if rec.first() == Some(&wal::RECORD_SERIES) {
                if let Ok(Record::Series(ss)) = wal::decode(rec) {
                    keep.extend(ss.into_iter().map(|(r, _)| r));
                }
            }
            Ok(())
        });
        if res.is_err() {
            return; // replaced by a newer checkpoint meanwhile; try that one next time
        }
        self.series.retain(|r, e| e.seg > c || keep.contains(r));
        self.gc_checkpoint = Some(c);
    }
}

pub(crate) struct StartArgs {
    pub settings: Settings,
    pub opts: SenderOptions,
    pub wal_dir: PathBuf,
    pub pos_path: PathBuf,
    pub client: WriteClient,
    pub metrics: Arc<QueueMetrics>,
    /// Metadata source and `metadata_config`, when metadata is to be sent.
    pub metadata: Option<(MetadataSource, config::MetadataConfig)>,
}

pub(crate) fn start(mut a: StartArgs) -> std::io::Result<QueueHandle> {
    let stop = Arc::new(StopSignal::default());
    let md = a.metadata.take().map(|(source, mc)| MetadataArgs {
        source,
        client: a.client.clone(),
        metrics: a.metrics.clone(),
        interval: mc.send_interval.as_std(),
        max_per_send: mc.max_samples_per_send.max(1) as usize,
        min_backoff: a.settings.min_backoff,
        max_backoff: a.settings.max_backoff,
    });
    let (metrics, stop2) = (a.metrics.clone(), stop.clone());
    let thread = std::thread::Builder::new().name("remote-write".into()).spawn(move || run(a, stop2))?;
    let mut h = QueueHandle { metrics, stop: stop.clone(), thread: Some(thread), metadata_thread: None };
    if let Some(md) = md {
        match std::thread::Builder::new().name("remote-write-md".into()).spawn(move || metadata::run(md, stop)) {
            Ok(t) => h.metadata_thread = Some(t),
            Err(e) => {
                // Stop the sample thread too, so a failed start leaves nothing running.
                h.stop.stop();
                if let Some(t) = h.thread.take() {
                    let _ = t.join();
                }
                return Err(e);
            }
        }
    }
    Ok(h)
}

fn run(a: StartArgs, stop: Arc<StopSignal>) {
    let s = a.settings;
    let m = a.metrics.clone();
    m.shards_max.store(s.max_shards as i64, Ordering::Relaxed);
    m.shards_min.store(s.min_shards as i64, Ordering::Relaxed);
    m.shard_capacity.store(s.capacity as i64, Ordering::Relaxed);
    m.max_samples_per_send.store(s.max_samples_per_send as i64, Ordering::Relaxed);
    m.shards_desired.set(s.min_shards as f64);

    let saved = position::load(&a.pos_path).unwrap_or_else(|e| {
        tracing::warn!(path = %a.pos_path.display(), error = %e, "cannot read remote write position; starting at the end of the WAL");
        None
    });
    let segs = wal::list_segments(&a.wal_dir).unwrap_or_default();
    let cp = wal::last_checkpoint(&a.wal_dir).ok().flatten();
    let first = segs.first().map(|s| s.0);
    // Where sending starts, and whether samples must be recovered from the checkpoint.
    let mut recover: Option<i64> = None;
    let (region, start) = match saved {
        None => match segs.last() {
            Some((n, p)) => {
                let end = wal_reader::segment_end(p, *n).unwrap_or(0);
                ((*n, end), Position { segment: *n, offset: end, acked_max_t: i64::MIN })
            }
            None => ((0, 0), Position { segment: 0, offset: 0, acked_max_t: i64::MIN }),
        },
        Some(p) if segs.iter().any(|s| s.0 == p.segment) => ((p.segment, p.offset), p),
        Some(p) => {
            if let Some(&(next, _)) = segs.iter().find(|s| s.0 > p.segment) {
                if cp.as_ref().is_some_and(|(c, _)| *c >= p.segment) {
                    tracing::info!(remote_name = %m.remote_name, segment = p.segment,
                        "position's WAL segment was checkpointed; resending checkpoint samples newer than the last acknowledged one");
                    recover = Some(p.acked_max_t);
                } else {
                    tracing::warn!(remote_name = %m.remote_name, segment = p.segment, next,
                        "WAL segments after the saved position are gone; their samples are not sent");
                }
                ((next, 0), p)
            } else {
                tracing::warn!(remote_name = %m.remote_name, segment = p.segment,
                    "saved position is beyond the WAL (WAL was reset?); sending from the oldest segment");
                let f = first.unwrap_or(0);
                ((f, 0), Position { segment: f, offset: 0, acked_max_t: i64::MIN })
            }
        }
    };
    let acks = Arc::new(Acks::new(start));
    let ctx = Arc::new(SendCtx {
        client: a.client,
        metrics: m.clone(),
        acks,
        max_samples_per_send: s.max_samples_per_send,
        batch_send_deadline: s.batch_send_deadline,
        min_backoff: s.min_backoff,
        max_backoff: s.max_backoff,
        last_send_ok: AtomicI64::new(now_ms() / 1000),
        data_out: AtomicU64::new(0),
        data_out_ns: AtomicU64::new(0),
        warned: AtomicBool::new(false),
    });
    let now = Instant::now();
    let min_shards = s.min_shards;
    let mut sink = Sink {
        opts: a.opts.clone(),
        wal_dir: a.wal_dir.clone(),
        pos_path: a.pos_path,
        ctx,
        stop: stop.clone(),
        series: HashMap::new(),
        region,
        shards: Vec::new(),
        staging: Vec::new(),
        rates: Rates::default(),
        next_shard_update: now + a.opts.shard_update_period,
        next_pos_save: now + a.opts.position_save_interval,
        saved,
        gc_checkpoint: cp.as_ref().map(|c| c.0),
        unknown_ref_warned: false,
        holder: SegmentHolder::new(&a.wal_dir, first.unwrap_or(0)),
        s,
    };
    sink.start_shards(min_shards);

    // The checkpoint defines the series of older segments; its samples are sent only to recover a gap.
    if let Some((c, dir)) = &cp {
        let _ = wal_reader::read_dir_records(dir, &mut |rec| match wal::decode(rec) {
            Ok(Record::Series(ss)) => {
                for (r, l) in &ss {
                    sink.define(*r, l, *c);
                }
                Ok(())
            }
            // Registered at the saved position, which stays put until these are acknowledged; only
            // `acked_max_t` moves.
            Ok(Record::Samples(ss)) if recover.is_some() => sink.enqueue(&ss, start, recover),
            _ => Ok(()),
        });
    }

    let mut reader = WalReader::new(sink.holder.clone(), first.unwrap_or(0), 0);
    let mut io_warned = false;
    while !stop.is_stopped() {
        let r = reader.poll(&mut |rec, seg, end| sink.on_record(rec, seg, end));
        match r {
            Ok(Poll::Progress) => io_warned = false,
            Ok(Poll::Idle) => {
                sink.housekeeping(false);
                stop.sleep(a.opts.poll_interval);
            }
            Ok(Poll::Aborted) => break,
            Err(e) => {
                if !io_warned {
                    io_warned = true;
                    tracing::warn!(dir = %a.wal_dir.display(), error = %e, "reading the WAL for remote write");
                }
                stop.sleep(Duration::from_secs(1));
            }
        }
        sink.maybe_gc(reader.seg, reader.checkpoint());
    }
    let unsent = sink.stop_shards(true, a.opts.flush_deadline);
    if !unsent.is_empty() {
        tracing::info!(remote_name = %m.remote_name, samples = unsent.len(),
            "remote write stopped with unsent samples; they are sent after the next start");
    }
    sink.housekeeping(true);
    m.samples_pending.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_advance_over_the_contiguous_prefix_only() {
        let p = |s, o, t| Position { segment: s, offset: o, acked_max_t: t };
        let a = Acks::new(p(1, 0, i64::MIN));
        let s0 = a.register(2, p(1, 100, 10));
        let s1 = a.register(0, p(1, 150, i64::MIN));
        let s2 = a.register(1, p(2, 50, 30));
        assert_eq!(a.position(), p(1, 0, i64::MIN));
        a.ack(&[(s2, 1)]);
        assert_eq!(a.position(), p(1, 0, i64::MIN), "later record acked first: no move");
        a.ack(&[(s0, 1)]);
        assert_eq!(a.position(), p(1, 0, i64::MIN));
        a.ack(&[(s0, 1)]);
        assert_eq!(a.position(), p(2, 50, 30));
        assert_eq!((s0, s1, s2), (0, 1, 2));
        assert_eq!(a.next_seq(), 3);
    }

    #[test]
    fn ewma_follows_prometheus() {
        let mut e = Ewma::default();
        e.tick(100.0, 10.0);
        assert_eq!(e.rate, 10.0);
        e.tick(200.0, 10.0);
        assert!((e.rate - 12.0).abs() < 1e-9);
    }
}
