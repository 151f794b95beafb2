//! The database: a data directory with a lock file, the head (+WAL), persisted blocks, and a background
//! thread that cuts blocks from the head, compacts them and enforces retention.

use crate::block::{Block, BlockMeta};
use crate::error::{IoContext, TsdbError};
use crate::head::{Head, HeadQuerier, HeadStats};
use crate::metrics::Metrics;
use crate::query::MergeQuerier;
use crate::wal::{self, Record, WalWriter};
use model::storage::{Appender, Querier, Queryable, Storage};
use model::StorageError;
use parking_lot::{Condvar, Mutex, RwLock};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Storage options; names and defaults follow Prometheus's `--storage.tsdb.*` flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `--storage.tsdb.retention.time`; default 15d; 0 = unlimited.
    pub retention_ms: i64,
    /// `--storage.tsdb.retention.size`; 0 = unlimited.
    pub retention_bytes: u64,
    /// `--storage.tsdb.min-block-duration`; default 2h.
    pub min_block_duration_ms: i64,
    /// `--storage.tsdb.max-block-duration`; default 10% of retention, capped at 31d (0 = use that default).
    pub max_block_duration_ms: i64,
    /// WAL segment size; default 128 MiB.
    pub wal_segment_size: u64,
    /// `--storage.tsdb.wal-compression`: snappy-compress WAL and checkpoint records as Prometheus does
    /// (default on, as in Prometheus ≥ 2.20). Replay reads compressed and plain records either way.
    pub wal_compression: bool,
    /// `--storage.tsdb.no-lockfile`.
    pub no_lockfile: bool,
    /// How often the background thread looks for work (head cut, compaction, retention). Default 1 min.
    pub background_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retention_ms: 15 * DAY_MS,
            retention_bytes: 0,
            min_block_duration_ms: 2 * HOUR_MS,
            max_block_duration_ms: 0,
            wal_segment_size: wal::DEFAULT_SEGMENT_SIZE,
            wal_compression: true,
            no_lockfile: false,
            background_interval: Duration::from_secs(60),
        }
    }
}

impl Options {
    /// The effective max block duration (Prometheus: 10% of retention, at most 31d, at least min).
    pub fn effective_max_block_duration(&self) -> i64 {
        let m = if self.max_block_duration_ms > 0 {
            self.max_block_duration_ms
        } else if self.retention_ms > 0 {
            (self.retention_ms / 10).min(31 * DAY_MS)
        } else {
            31 * DAY_MS
        };
        m.max(self.min_block_duration_ms)
    }

    /// Compaction ranges: min, ×3, ×9 … capped by the max block duration.
    pub fn block_ranges(&self) -> Vec<i64> {
        let max = self.effective_max_block_duration();
        let mut r = Vec::new();
        let mut cur = self.min_block_duration_ms;
        for _ in 0..10 {
            if cur > max {
                break;
            }
            r.push(cur);
            cur = cur.saturating_mul(3);
        }
        r
    }
}

struct Lock {
    _file: File,
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn try_flock(f: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a valid, open descriptor has no memory-safety preconditions.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_flock(_f: &File) -> bool {
    true
}

pub struct Db {
    dir: PathBuf,
    opts: Options,
    head: Arc<Head>,
    blocks: RwLock<Vec<Arc<Block>>>,
    /// Block directories skipped at open because they could not be read, with the reason.
    unreadable: Vec<(PathBuf, String)>,
    metrics: Arc<Metrics>,
    closed: AtomicBool,
    /// Serialises head cuts, compactions and retention (background thread vs explicit calls).
    maintenance: Mutex<()>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    bg: Mutex<Option<std::thread::JoinHandle<()>>>,
    _lock: Option<Lock>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) the data directory and replays the WAL. Starts the background thread.
    pub fn open(dir: &Path, opts: Options) -> Result<Arc<Db>, TsdbError> {
        let db = Self::open_without_background(dir, opts)?;
        let weak = Arc::downgrade(&db);
        let stop = db.stop.clone();
        let interval = db.opts.background_interval;
        let h = std::thread::Builder::new()
            .name("tsdb-background".into())
            .spawn(move || background(weak, stop, interval))
            .ctx(dir)?;
        *db.bg.lock() = Some(h);
        Ok(db)
    }

    /// Like [`Db::open`] but with no background thread: maintenance runs only through explicit calls
    /// ([`Db::maintain`]). For tests and tools.
    pub fn open_without_background(dir: &Path, opts: Options) -> Result<Arc<Db>, TsdbError> {
        if opts.min_block_duration_ms <= 0 {
            return Err(TsdbError::InvalidOptions("min block duration must be positive".into()));
        }
        fs::create_dir_all(dir).ctx(dir)?;
        let lock = if opts.no_lockfile {
            None
        } else {
            let path = dir.join("lock");
            let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).ctx(&path)?;
            if !try_flock(&f) {
                return Err(TsdbError::Locked(dir.display().to_string()));
            }
            Some(Lock { _file: f, path })
        };
        crate::block::remove_tmp_dirs(dir)?;
        let metrics = Arc::new(Metrics::default());
        let (blocks, unreadable) = crate::block::open_blocks(dir, false)?;
        for b in &unreadable {
            tracing::error!(block = %b.dir.display(), error = %b.error,
                "skipping unreadable block (left on disk; its time range is missing from queries)");
        }
        metrics.blocks_unreadable.store(unreadable.len() as u64, Ordering::Relaxed);
        let unreadable = unreadable.into_iter().map(|b| (b.dir, b.error.to_string())).collect();
        let blocks_max = blocks.iter().map(|b| b.meta().max_time).max();

        let wal_dir = dir.join("wal");
        fs::create_dir_all(&wal_dir).ctx(&wal_dir)?;
        // Replay into a head without a WAL writer, then attach a fresh segment.
        let replay_head = Head::new(opts.min_block_duration_ms, None, metrics.clone());
        if let Some(m) = blocks_max {
            replay_head.set_min_valid_time(m);
        }
        let last_seg = replay_wal(&wal_dir, &replay_head, &metrics, true)?;
        let writer = WalWriter::create(&wal_dir, last_seg.map_or(0, |s| s + 1), opts.wal_segment_size)
            .ctx(&wal_dir)?
            .with_compression(opts.wal_compression);
        let head = Arc::try_unwrap(replay_head)
            .map_err(|_| TsdbError::Storage(StorageError::Other("BUG: head shared during replay".into())))?
            .with_wal(writer);

        metrics.blocks_loaded.store(blocks.len() as u64, Ordering::Relaxed);
        let db = Arc::new(Db {
            dir: dir.to_path_buf(),
            opts,
            head,
            blocks: RwLock::new(blocks),
            unreadable,
            metrics,
            closed: AtomicBool::new(false),
            maintenance: Mutex::new(()),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            bg: Mutex::new(None),
            _lock: lock,
        });
        db.update_block_metrics();
        Ok(db)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Flushes and syncs the WAL and stops background work. Appends after this fail.
    pub fn close(&self) -> Result<(), TsdbError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        {
            let (m, c) = &*self.stop;
            *m.lock() = true;
            c.notify_all();
        }
        if let Some(h) = self.bg.lock().take() {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
        let _g = self.maintenance.lock();
        if let Some(w) = self.head.wal() {
            w.lock().close().ctx(self.dir.join("wal"))?;
        }
        Ok(())
    }

    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }

    pub fn head_stats(&self) -> HeadStats {
        self.head.stats()
    }

    /// Metadata of the loaded blocks, oldest first.
    pub fn blocks(&self) -> Vec<BlockMeta> {
        self.blocks.read().iter().map(|b| b.meta().clone()).collect()
    }

    /// Block directories that [`Db::open`] skipped because they could not be read (left on disk), with why.
    pub fn unreadable_blocks(&self) -> &[(PathBuf, String)] {
        &self.unreadable
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn update_block_metrics(&self) {
        let bs = self.blocks.read();
        self.metrics.blocks_loaded.store(bs.len() as u64, Ordering::Relaxed);
        self.metrics.blocks_bytes.store(bs.iter().map(|b| b.size()).sum(), Ordering::Relaxed);
        let lowest = bs.first().map(|b| b.meta().min_time).unwrap_or_else(|| self.head.min_time());
        self.metrics.lowest_timestamp.store(lowest, Ordering::Relaxed);
        self.metrics.head_min_time.store(self.head.min_time(), Ordering::Relaxed);
        self.metrics.head_max_time.store(self.head.max_time(), Ordering::Relaxed);
    }

    /// One round of background work: cut head blocks while the head spans more than 1.5 block ranges,
    /// compact, apply retention. Returns whether anything changed.
    pub fn maintain(&self) -> Result<bool, TsdbError> {
        let _g = self.maintenance.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(TsdbError::Closed);
        }
        let mut changed = false;
        while self.head_needs_cut() {
            self.cut_head_block()?;
            changed = true;
        }
        changed |= crate::compact::compact_all(self)?;
        changed |= self.apply_retention()?;
        self.update_block_metrics();
        Ok(changed)
    }

    fn head_needs_cut(&self) -> bool {
        let (mint, maxt) = (self.head.min_time(), self.head.max_time());
        mint != i64::MAX && maxt.saturating_sub(mint) > self.opts.min_block_duration_ms * 3 / 2
    }

    /// Writes the oldest block range of the head to disk, truncates the head and checkpoints the WAL.
    fn cut_head_block(&self) -> Result<(), TsdbError> {
        let r = self.opts.min_block_duration_ms;
        let mint = self.head.min_time();
        let start = mint.div_euclid(r) * r;
        let end = start + r;
        self.persist_head_range(start, end)?;
        self.truncate_head(end)
    }

    /// Forces everything in the head before `end` (exclusive) into blocks aligned to the block range, then
    /// truncates the head. For tests, and for a clean hand-over (`tsdb snapshot`-style tools).
    pub fn flush_head_before(&self, end: i64) -> Result<(), TsdbError> {
        let _g = self.maintenance.lock();
        let r = self.opts.min_block_duration_ms;
        loop {
            let mint = self.head.min_time();
            if mint == i64::MAX || mint >= end {
                break;
            }
            let start = mint.div_euclid(r) * r;
            let stop = (start + r).min(end.div_euclid(r) * r).max(start + r);
            self.persist_head_range(start, stop)?;
            self.truncate_head(stop)?;
        }
        self.update_block_metrics();
        Ok(())
    }

    fn persist_head_range(&self, start: i64, end: i64) -> Result<(), TsdbError> {
        let series = self.head.series_in_range(start, end - 1);
        if series.is_empty() {
            return Ok(());
        }
        let compaction = crate::block::BlockMetaCompaction { level: 1, ..Default::default() };
        let meta = crate::block::write_block(&self.dir, start, end, compaction, None, series.into_iter().map(Ok))?;
        if let Some(meta) = meta {
            let b = Block::open(&self.dir.join(meta.ulid.to_string()))?;
            let mut bs = self.blocks.write();
            bs.push(Arc::new(b));
            bs.sort_by_key(|b| (b.meta().min_time, b.meta().max_time));
            Metrics::inc(&self.metrics.compactions, 1);
            tracing::info!(ulid = %meta.ulid, mint = start, maxt = end, "wrote block from head");
        }
        Ok(())
    }

    fn truncate_head(&self, mint: i64) -> Result<(), TsdbError> {
        self.head.truncate(mint);
        self.checkpoint_wal(mint)
    }

    /// Cuts a new WAL segment and folds all older ones into `checkpoint.N`: series still in the head and
    /// samples at or after `mint`. Older segments and checkpoints are then deleted.
    fn checkpoint_wal(&self, mint: i64) -> Result<(), TsdbError> {
        let wal_dir = self.dir.join("wal");
        let Some(w) = self.head.wal() else { return Ok(()) };
        let new_seg = w.lock().cut().ctx(&wal_dir)?;
        let last = new_seg - 1;
        let prev = wal::last_checkpoint(&wal_dir).ctx(&wal_dir)?;
        let tmp = wal_dir.join(format!("checkpoint.{last:08}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        let mut cw =
            WalWriter::create(&tmp, 0, self.opts.wal_segment_size).ctx(&tmp)?.with_compression(self.opts.wal_compression);
        let mut buf = Vec::new();
        let mut err: Option<std::io::Error> = None;
        let head = &self.head;
        let mut filter = |rec: &[u8]| -> Result<(), String> {
            buf.clear();
            match wal::decode(rec)? {
                Record::Series(ss) => {
                    for (r, l) in ss.iter().filter(|(r, _)| head.has_series(*r)) {
                        wal::encode_series(&mut buf, *r, l);
                    }
                }
                Record::Samples(ss) => {
                    let keep: Vec<_> = ss.into_iter().filter(|s| s.t >= mint && head.has_series(s.r)).collect();
                    if !keep.is_empty() {
                        wal::encode_samples(&mut buf, keep.iter().copied());
                    }
                }
                Record::Other(_) => {}
            }
            if !buf.is_empty() {
                if let Err(e) = cw.log(&buf) {
                    err = Some(e);
                }
            }
            Ok(())
        };
        if let Some((_, p)) = &prev {
            wal::replay_dir(p, None, &mut filter).ctx(p)?;
        }
        let from = prev.as_ref().map(|(n, _)| n + 1);
        for (n, p) in wal::list_segments(&wal_dir).ctx(&wal_dir)? {
            if n > last || from.is_some_and(|f| n < f) {
                continue;
            }
            let bytes = fs::read(&p).ctx(&p)?;
            if let Err(c) = wal::read_segment(&bytes, n, &mut filter) {
                tracing::warn!(segment = n, reason = %c.reason, "corrupt WAL segment while checkpointing; keeping good part");
            }
        }
        if let Some(e) = err {
            return Err(TsdbError::io(&tmp, e));
        }
        cw.close().ctx(&tmp)?;
        drop(cw);
        let dst = wal_dir.join(format!("checkpoint.{last:08}"));
        let _ = fs::remove_dir_all(&dst);
        fs::rename(&tmp, &dst).ctx(&dst)?;
        wal::sync_dir(&wal_dir).ctx(&wal_dir)?;
        for (n, p) in wal::list_segments(&wal_dir).ctx(&wal_dir)? {
            if n <= last {
                fs::remove_file(&p).ctx(&p)?;
            }
        }
        if let Some((n, p)) = prev {
            if n != last {
                fs::remove_dir_all(&p).ctx(&p)?;
            }
        }
        Metrics::inc(&self.metrics.checkpoint_creations, 1);
        Metrics::inc(&self.metrics.wal_truncations, 1);
        Ok(())
    }

    pub(crate) fn blocks_snapshot(&self) -> Vec<Arc<Block>> {
        self.blocks.read().clone()
    }

    /// Replaces `old` blocks by `new` ones in the loaded set (compaction), then deletes the old directories.
    pub(crate) fn swap_blocks(&self, old: &[Arc<Block>], new: Vec<Arc<Block>>) -> Result<(), TsdbError> {
        {
            let mut bs = self.blocks.write();
            bs.retain(|b| !old.iter().any(|o| o.meta().ulid == b.meta().ulid));
            bs.extend(new);
            bs.sort_by_key(|b| (b.meta().min_time, b.meta().max_time));
        }
        for b in old {
            crate::block::delete_block_dir(b.dir())?;
        }
        Metrics::inc(&self.metrics.reloads, 1);
        Ok(())
    }

    /// Deletes whole blocks, oldest first, beyond the time or size retention.
    fn apply_retention(&self) -> Result<bool, TsdbError> {
        let blocks = self.blocks_snapshot();
        if blocks.is_empty() {
            return Ok(false);
        }
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        if self.opts.retention_ms > 0 {
            // Prometheus: relative to the newest block's end.
            let newest = blocks.iter().map(|b| b.meta().max_time).max().unwrap_or(i64::MIN);
            for b in &blocks {
                if newest - b.meta().max_time >= self.opts.retention_ms {
                    doomed.push(b.clone());
                }
            }
            if !doomed.is_empty() {
                Metrics::inc(&self.metrics.time_retentions, 1);
            }
        }
        if self.opts.retention_bytes > 0 {
            let wal_bytes = wal::dir_size(&self.dir.join("wal"));
            let mut total: u64 = wal_bytes + blocks.iter().map(|b| b.size()).sum::<u64>();
            let mut by_size = false;
            for b in &blocks {
                if total <= self.opts.retention_bytes {
                    break;
                }
                total -= b.size();
                if !doomed.iter().any(|d| d.meta().ulid == b.meta().ulid) {
                    doomed.push(b.clone());
                    by_size = true;
                }
            }
            if by_size {
                Metrics::inc(&self.metrics.size_retentions, 1);
            }
        }
        if doomed.is_empty() {
            return Ok(false);
        }
        for b in &doomed {
            tracing::info!(ulid = %b.meta().ulid, mint = b.meta().min_time, maxt = b.meta().max_time, "deleting block beyond retention");
        }
        self.swap_blocks(&doomed, Vec::new())?;
        Ok(true)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "closing tsdb on drop");
        }
    }
}

fn background(db: std::sync::Weak<Db>, stop: Arc<(Mutex<bool>, Condvar)>, interval: Duration) {
    loop {
        {
            let (m, c) = &*stop;
            let mut stopped = m.lock();
            if !*stopped {
                c.wait_for(&mut stopped, interval);
            }
            if *stopped {
                return;
            }
        }
        let Some(db) = db.upgrade() else { return };
        if let Err(e) = db.maintain() {
            if !matches!(e, TsdbError::Closed) {
                Metrics::inc(&db.metrics.compactions_failed, 1);
                tracing::error!(error = %e, "tsdb background maintenance failed");
            }
        }
    }
}

/// Replays checkpoint + segments into `head`. Returns the number of the last segment seen. With `repair`, a
/// corrupt segment is truncated to its last good record and later segments are removed; without (read-only
/// tools), replay just stops there.
pub(crate) fn replay_wal(wal_dir: &Path, head: &Head, metrics: &Metrics, repair: bool) -> Result<Option<u32>, TsdbError> {
    let mut remap = hashbrown::HashMap::new();
    let mut apply = |rec: &[u8]| -> Result<(), String> {
        match wal::decode(rec)? {
            Record::Series(ss) => {
                for (r, l) in &ss {
                    head.replay_series(*r, l, &mut remap);
                }
            }
            Record::Samples(ss) => {
                head.replay_samples(&ss, &remap);
            }
            Record::Other(_) => {}
        }
        Ok(())
    };
    let cp = wal::last_checkpoint(wal_dir).ctx(wal_dir)?;
    let mut from = None;
    if let Some((n, p)) = &cp {
        let c = wal::replay_dir_with(p, None, repair, &mut apply).ctx(p)?;
        Metrics::inc(&metrics.wal_corruptions, c as u64);
        from = Some(n + 1);
    }
    let c = wal::replay_dir_with(wal_dir, from, repair, &mut apply).ctx(wal_dir)?;
    Metrics::inc(&metrics.wal_corruptions, c as u64);
    let segs = wal::list_segments(wal_dir).ctx(wal_dir)?;
    Ok(segs.last().map(|s| s.0).or(cp.map(|c| c.0)))
}

impl Queryable for Db {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let mut qs: Vec<Box<dyn Querier>> = Vec::new();
        for b in self.blocks.read().iter() {
            if b.overlaps(mint, maxt) {
                qs.push(Box::new(b.querier(mint, maxt)));
            }
        }
        let (hmin, hmax) = (self.head.min_time(), self.head.max_time());
        if hmin <= hmax && hmax >= mint && hmin <= maxt || qs.is_empty() {
            qs.push(Box::new(HeadQuerier { head: self.head.clone(), mint, maxt }));
        }
        Ok(Box::new(MergeQuerier::new(qs)))
    }
}

struct ClosedAppender;

impl Appender for ClosedAppender {
    fn append(&mut self, _: u64, _: &model::Labels, _: i64, _: f64) -> Result<u64, model::AppendError> {
        Err(model::AppendError::Closed)
    }
    fn commit(&mut self) -> Result<(), StorageError> {
        Err(StorageError::Closed)
    }
    fn rollback(&mut self) {}
}

impl Storage for Db {
    fn appender(&self) -> Box<dyn Appender> {
        if self.closed.load(Ordering::Acquire) {
            return Box::new(ClosedAppender);
        }
        Box::new(self.head.appender())
    }
}
