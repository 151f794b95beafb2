//! The evaluator. Every node evaluates to a [`Matrix`] holding, for each output series, one point per step at
//! which it has a value (scalars are one unlabelled series with a point at every step), exactly like
//! Prometheus's `evaluator.eval`. Range-vector selectors and subqueries are only evaluated as function
//! arguments (or as the whole of an instant query), through per-series sliding windows.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use model::storage::{Querier, Queryable, SampleIter, SelectHints};
use model::{is_stale_nan, Labels, Sample, METRIC_NAME};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::plan::{Func, Node, Selector, ValueType};
use crate::{QueryError, RangeSeries, Value, VectorSample};

pub(crate) type Result<T> = std::result::Result<T, QueryError>;

#[cfg(test)]
thread_local! {
    /// Disables the series-by-series fast paths so tests can compare them with the step-by-step evaluation.
    pub(crate) static FORCE_STEP_MAJOR: Cell<bool> = const { Cell::new(false) };
}

/// Whether the series-by-series fast paths may be used (always, outside tests).
#[inline]
pub(crate) fn fast_paths() -> bool {
    #[cfg(test)]
    {
        !FORCE_STEP_MAJOR.with(|f| f.get())
    }
    #[cfg(not(test))]
    {
        true
    }
}

/// One output series: points at step timestamps (or raw samples for range vectors).
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub labels: Labels,
    pub points: Vec<Sample>,
}

pub(crate) type Matrix = Vec<Series>;

pub(crate) enum Val {
    M(Matrix),
    S(String),
}

/// The steps of one evaluation: `start, start+interval, …, end` (an instant query is one step).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub start: i64,
    pub end: i64,
    pub interval: i64,
}

impl Range {
    pub fn steps(&self) -> usize {
        ((self.end - self.start) / self.interval + 1) as usize
    }
    pub fn iter(&self) -> impl Iterator<Item = i64> {
        let r = *self;
        (0..r.steps()).map(move |i| r.start + i as i64 * r.interval)
    }
}

/// Query-wide limits and counters. The evaluator runs on one thread, so plain cells suffice.
pub(crate) struct Limits {
    max_samples: usize,
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
    current: Cell<usize>,
    peak: Cell<usize>,
    total: Cell<u64>,
    ticks: Cell<u32>,
}

/// How often (in loop iterations) the deadline and cancel flag are looked at; reading the clock on every
/// iteration would cost more than many of the iterations themselves.
const CHECK_EVERY: u32 = 256;

impl Limits {
    pub fn new(max_samples: usize, deadline: Option<Instant>, cancel: Option<Arc<AtomicBool>>) -> Limits {
        Limits {
            max_samples,
            deadline,
            cancel,
            current: Cell::new(0),
            peak: Cell::new(0),
            total: Cell::new(0),
            ticks: Cell::new(0),
        }
    }

    pub fn total_samples(&self) -> u64 {
        self.total.get()
    }

    pub fn peak_samples(&self) -> usize {
        self.peak.get()
    }

    /// Cheap periodic check for timeout and cancellation.
    #[inline]
    pub fn tick(&self) -> Result<()> {
        let t = self.ticks.get().wrapping_add(1);
        self.ticks.set(t);
        // (`is_multiple_of` would need Rust 1.87; the workspace supports 1.85.)
        #[allow(clippy::manual_is_multiple_of)]
        let due = t % CHECK_EVERY == 0;
        if due {
            self.check_now()?;
        }
        Ok(())
    }

    pub fn check_now(&self) -> Result<()> {
        if self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(QueryError::Canceled);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    /// Accounts for `n` more samples held in memory.
    #[inline]
    pub fn add(&self, n: usize) -> Result<()> {
        let c = self.current.get() + n;
        self.current.set(c);
        self.total.set(self.total.get() + n as u64);
        if c > self.peak.get() {
            self.peak.set(c);
        }
        if c > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    /// Checks that `n` samples held briefly (a window, one step's vectors) fit beside the current ones.
    #[inline]
    pub fn transient(&self, n: usize) -> Result<()> {
        let c = self.current.get() + n;
        if c > self.peak.get() {
            self.peak.set(c);
        }
        if c > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    pub fn current(&self) -> usize {
        self.current.get()
    }

    /// The limits as worker threads see them: deadline, cancel flag and the sample budget left now.
    pub fn shared(&self) -> SharedLimits<'_> {
        SharedLimits {
            deadline: self.deadline,
            cancel: self.cancel.as_deref(),
            budget: self.max_samples.saturating_sub(self.current.get()),
            used: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
        }
    }

    pub fn set_current(&self, n: usize) {
        self.current.set(n);
    }
}

/// [`Limits`] for the worker threads of [`par_map`]: samples are counted in one shared atomic against the
/// budget left when the parallel part started, and the first failure stops the other workers.
pub(crate) struct SharedLimits<'a> {
    deadline: Option<Instant>,
    cancel: Option<&'a AtomicBool>,
    budget: usize,
    used: AtomicUsize,
    failed: AtomicBool,
}

impl SharedLimits<'_> {
    pub fn check(&self) -> Result<()> {
        if self.failed.load(Ordering::Relaxed) {
            // Another worker failed; its error is the one reported.
            return Err(QueryError::Canceled);
        }
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(QueryError::Canceled);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    /// Accounts for `n` more samples held until the parallel part ends.
    #[inline]
    pub fn add(&self, n: usize) -> Result<()> {
        let u = self.used.fetch_add(n, Ordering::Relaxed) + n;
        if u > self.budget {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    /// Checks that `n` samples held briefly fit beside the ones counted so far.
    #[inline]
    pub fn transient(&self, n: usize) -> Result<()> {
        if self.used.load(Ordering::Relaxed) + n > self.budget {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }
}

/// Fewest items for which [`par_map`] uses more than one thread: below this, spawning costs more than it saves.
const PAR_MIN_ITEMS: usize = 512;
/// Items a worker takes at a time: small enough to balance uneven series, large enough to keep the shared
/// counter and the per-block locks out of the profile.
const PAR_BLOCK: usize = 128;

fn parallelism() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8))
}

/// Maps `items` to results in order, on up to [`parallelism`] threads (the caller's included) when there are
/// enough of them. This is how per-series work (chunk decoding, range functions) uses more than one core:
/// Prometheus evaluates a query on one goroutine, and on small machines that single core is the bottleneck.
/// `S` is per-thread scratch space. Items are handed out in blocks so uneven series balance.
pub(crate) fn par_map<I, T, S, F>(lim: &Limits, steps: usize, items: Vec<I>, f: F) -> Result<Vec<T>>
where
    I: Send,
    T: Send,
    S: Default,
    F: Fn(&SharedLimits, &mut S, I) -> Result<T> + Sync,
{
    let sl = lim.shared();
    let n = items.len();
    // One step (instant queries) stays on the calling thread: measured on the 100k harness data, the second
    // thread made instant `rate` 30% slower (254 -> 333 ms) while 24 h range queries gained 1.3-1.5x.
    let threads = if n >= PAR_MIN_ITEMS && steps > 1 && fast_paths() {
        parallelism().min(n / (PAR_MIN_ITEMS / 2))
    } else {
        1
    };
    let res = if threads <= 1 {
        let mut scratch = S::default();
        let mut out = Vec::with_capacity(n);
        for (i, x) in items.into_iter().enumerate() {
            if i % 64 == 0 {
                sl.check()?;
            }
            out.push(f(&sl, &mut scratch, x)?);
        }
        out
    } else {
        let mut blocks: Vec<Mutex<Option<Vec<I>>>> = Vec::with_capacity(n.div_ceil(PAR_BLOCK));
        let mut it = items.into_iter();
        loop {
            let b: Vec<I> = it.by_ref().take(PAR_BLOCK).collect();
            if b.is_empty() {
                break;
            }
            blocks.push(Mutex::new(Some(b)));
        }
        let results: Vec<Mutex<Option<Vec<T>>>> = (0..blocks.len()).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let first_err: Mutex<Option<QueryError>> = Mutex::new(None);
        let work = || {
            let mut scratch = S::default();
            loop {
                let bi = next.fetch_add(1, Ordering::Relaxed);
                let Some(block) = blocks.get(bi) else { return };
                let Some(items) = block.lock().ok().and_then(|mut g| g.take()) else { return };
                let r: Result<Vec<T>> = sl.check().and_then(|_| items.into_iter().map(|x| f(&sl, &mut scratch, x)).collect());
                match r {
                    Ok(v) => {
                        if let Ok(mut g) = results[bi].lock() {
                            *g = Some(v);
                        }
                    }
                    Err(e) => {
                        let failed_before = sl.failed.swap(true, Ordering::Relaxed);
                        if let Ok(mut g) = first_err.lock() {
                            // The worker that failed first reports; the others only saw its flag.
                            if !failed_before || g.is_none() {
                                g.get_or_insert(e);
                            }
                        }
                        return;
                    }
                }
            }
        };
        std::thread::scope(|sc| {
            for _ in 1..threads {
                sc.spawn(work);
            }
            work();
        });
        if let Some(e) = first_err.into_inner().ok().flatten() {
            return Err(e);
        }
        let mut out = Vec::with_capacity(n);
        for r in results {
            match r.into_inner().ok().flatten() {
                Some(v) => out.extend(v),
                None => return Err(QueryError::Execution("BUG: a parallel block produced no result".into())),
            }
        }
        out
    };
    Ok(res)
}

pub(crate) fn total_points(m: &Matrix) -> usize {
    m.iter().map(|s| s.points.len()).sum()
}

pub(crate) struct Ev<'a> {
    pub querier: &'a dyn Querier,
    pub r: Range,
    pub lookback: i64,
    pub no_step: i64,
    pub lim: &'a Limits,
    pub warnings: &'a RefCell<Vec<String>>,
}

/// Earliest and latest sample time any selector of `node` reads when evaluated over `[start, end]`.
fn bounds(node: &Node, start: i64, end: i64, lookback: i64, acc: &mut (i64, i64)) {
    let mut sel = |s: &Selector, range: Option<i64>| {
        let (lo, hi) = match s.at {
            Some(t) => (t - s.offset, t - s.offset),
            None => (start - s.offset, end - s.offset),
        };
        acc.0 = acc.0.min(lo - range.unwrap_or(lookback));
        acc.1 = acc.1.max(hi);
    };
    match node {
        Node::Number(_) | Node::Str(_) => {}
        Node::VectorSel(s) => sel(s, None),
        Node::MatrixSel { sel: s, range } => sel(s, Some(*range)),
        Node::Subquery { expr, range, offset, at, .. } => {
            let (lo, hi) = match at {
                Some(t) => (t - offset - range, t - offset),
                None => (start - offset - range, end - offset),
            };
            bounds(expr, lo, hi, lookback, acc);
        }
        Node::Neg(e) => bounds(e, start, end, lookback, acc),
        Node::Binary(b) => {
            bounds(&b.lhs, start, end, lookback, acc);
            bounds(&b.rhs, start, end, lookback, acc);
        }
        Node::Aggregate(a) => {
            bounds(&a.expr, start, end, lookback, acc);
            if let Some(p) = &a.param {
                bounds(p, start, end, lookback, acc);
            }
        }
        Node::Call { args, .. } => {
            for a in args {
                bounds(a, start, end, lookback, acc);
            }
        }
    }
}

/// Runs a lowered query and shapes the result as the API expects.
pub(crate) fn execute(
    q: &dyn Queryable,
    node: &Node,
    r: Range,
    is_range: bool,
    lookback: i64,
    no_step: i64,
    lim: &Limits,
) -> Result<(Value, Vec<String>)> {
    let mut acc = (i64::MAX, i64::MIN);
    bounds(node, r.start, r.end, lookback, &mut acc);
    if acc.1 == i64::MIN {
        acc = (0, 0);
    }
    let querier = q.querier(acc.0, acc.1).map_err(|e| QueryError::Storage(e.to_string()))?;
    let warnings = RefCell::new(Vec::new());
    let ev = Ev { querier: querier.as_ref(), r, lookback, no_step, lim, warnings: &warnings };
    let val = ev.eval(node)?;
    lim.check_now()?;
    let mut warnings = warnings.into_inner();
    warnings.dedup();
    let value = match val {
        Val::S(s) => {
            if is_range {
                return Err(QueryError::Parse(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                ));
            }
            Value::String { t: r.start, v: s }
        }
        Val::M(mut m) => {
            if !is_range && node.value_type() == ValueType::Vector {
                Value::Vector(
                    m.into_iter()
                        .filter_map(|s| s.points.first().map(|p| VectorSample { labels: s.labels, t: r.start, v: p.v }))
                        .collect(),
                )
            } else if !is_range && node.value_type() == ValueType::Scalar {
                let v = m.first().and_then(|s| s.points.first()).map(|p| p.v).unwrap_or(f64::NAN);
                Value::Scalar { t: r.start, v }
            } else {
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(m.into_iter().map(|s| RangeSeries { labels: s.labels, samples: s.points }).collect())
            }
        }
    };
    Ok((value, warnings))
}

/// Streams one series for an instant vector selector: the latest sample at or before each reference time.
pub(crate) struct Cursor {
    it: Box<dyn SampleIter>,
    prev: Option<Sample>,
    next: Option<Sample>,
}

impl Cursor {
    pub fn new(mut it: Box<dyn SampleIter>, from: i64) -> Cursor {
        let next = it.seek(from);
        Cursor { it, prev: None, next }
    }

    /// The sample a selector sees at `rf` (latest at or before it, within `lookback`, not stale).
    /// `rf` must not decrease between calls.
    pub fn at(&mut self, rf: i64, lookback: i64) -> Option<Sample> {
        while let Some(n) = self.next {
            if n.t > rf {
                break;
            }
            self.prev = Some(n);
            self.next = self.it.next();
        }
        let p = self.prev?;
        if p.t < rf - lookback || is_stale_nan(p.v) {
            return None;
        }
        Some(p)
    }

    pub fn err(&self) -> Option<QueryError> {
        self.it.err().map(|e| QueryError::Storage(e.to_string()))
    }
}

/// Sliding window over one series for range-vector functions: the non-stale samples in `[mint, maxt]`.
/// Windows only move forward, so each sample is read from storage once however many steps overlap.
pub(crate) struct Window {
    it: Box<dyn SampleIter>,
    buf: Vec<Sample>,
    head: usize,
    next: Option<Sample>,
    started: bool,
}

impl Window {
    pub fn new(it: Box<dyn SampleIter>, buf: Vec<Sample>) -> Window {
        Window { it, buf, head: 0, next: None, started: false }
    }

    pub fn fill(&mut self, mint: i64, maxt: i64) -> &[Sample] {
        if !self.started {
            self.started = true;
            self.next = self.it.seek(mint);
        }
        if let Some(n) = self.next.filter(|n| n.t <= maxt) {
            // Everything up to maxt in one call; stale markers (rare) are taken out after, samples before
            // mint (between windows when the step exceeds the range) by the prefix skip below.
            let from = self.buf.len();
            self.buf.push(n);
            self.next = self.it.next_until(maxt, &mut self.buf);
            if self.buf[from..].iter().any(|s| is_stale_nan(s.v)) {
                let mut w = from;
                for r in from..self.buf.len() {
                    if !is_stale_nan(self.buf[r].v) {
                        self.buf[w] = self.buf[r];
                        w += 1;
                    }
                }
                self.buf.truncate(w);
            }
        }
        while self.head < self.buf.len() && self.buf[self.head].t < mint {
            self.head += 1;
        }
        // Compact once the dead prefix dominates, keeping the buffer bounded by the window size.
        if self.head > 64 && self.head * 2 > self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        &self.buf[self.head..]
    }

    pub fn err(&self) -> Option<QueryError> {
        self.it.err().map(|e| QueryError::Storage(e.to_string()))
    }

    /// After a [`Window::fill`]: `Some(t)` of the first sample after the window, `None` when the series has
    /// no more samples (the window never grows again).
    pub fn next_t(&self) -> Option<i64> {
        self.next.map(|n| n.t)
    }

    pub fn into_buf(mut self) -> Vec<Sample> {
        self.buf.clear();
        self.buf
    }
}

/// Hasher for keys that are already well-mixed hashes or small ids: hashing them again would be wasted work.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);
impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Spread small ids (series indexes) over the table; a no-op for real hashes in effect.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
pub(crate) type IdBuild = std::hash::BuildHasherDefault<IdHasher>;

/// Output of one step of [`Ev::range_eval`].
pub(crate) type StepOut = Vec<(Labels, f64)>;

pub(crate) const DUP_LABELSET: &str = "vector cannot contain metrics with the same labelset";

/// Whether two series of a matrix would share a label set once their metric names are dropped, without
/// building the name-less sets: hashes first, label-by-label comparison only for equal hashes. The series'
/// full label sets must be distinct (a selection's or a checked result's are), so when they all carry the
/// same metric name (the common `rate(name[5m])`), dropping it cannot make two equal.
pub(crate) fn has_duplicate_labels_without_name(m: &Matrix) -> bool {
    if m.len() < 2 {
        return false;
    }
    let first = m[0].labels.metric_name();
    if m.iter().all(|s| s.labels.metric_name() == first) {
        return false;
    }
    let mut scratch = Vec::new();
    let mut by_hash: HashMap<u64, usize, IdBuild> = HashMap::with_capacity_and_hasher(m.len(), IdBuild::default());
    let no_names: [&str; 0] = [];
    for (i, s) in m.iter().enumerate() {
        let h = s.labels.hash_without_labels(&no_names, &mut scratch);
        match by_hash.entry(h) {
            Entry::Vacant(e) => {
                e.insert(i);
            }
            Entry::Occupied(e) => {
                if eq_without_name(&m[*e.get()].labels, &s.labels) {
                    return true;
                }
                // A true hash collision: compare against every earlier series with this hash.
                if m[..i].iter().any(|o| {
                    o.labels.hash_without_labels(&no_names, &mut Vec::new()) == h && eq_without_name(&o.labels, &s.labels)
                }) {
                    return true;
                }
            }
        }
    }
    false
}

fn eq_without_name(a: &Labels, b: &Labels) -> bool {
    a.iter().filter(|x| x.name != METRIC_NAME).eq(b.iter().filter(|x| x.name != METRIC_NAME))
}

/// Whether two series of a matrix share a label set (Prometheus's `ContainsSameLabelset`).
pub(crate) fn has_duplicate_labels(m: &Matrix) -> bool {
    match m.len() {
        0 | 1 => false,
        2 => m[0].labels == m[1].labels,
        _ => {
            let mut seen = std::collections::HashSet::with_capacity_and_hasher(m.len(), Xxh3DefaultBuilder::new());
            m.iter().any(|s| !seen.insert(&s.labels))
        }
    }
}

impl<'a> Ev<'a> {
    fn sub(&self, r: Range) -> Ev<'a> {
        Ev { querier: self.querier, r, lookback: self.lookback, no_step: self.no_step, lim: self.lim, warnings: self.warnings }
    }

    pub fn warn(&self, w: String) {
        self.warnings.borrow_mut().push(w);
    }

    pub fn is_instant(&self) -> bool {
        self.r.start == self.r.end
    }

    /// Evaluates a node that must produce a matrix (everything but string literals).
    pub fn eval_m(&self, node: &Node) -> Result<Matrix> {
        match self.eval(node)? {
            Val::M(m) => Ok(m),
            Val::S(_) => Err(QueryError::Execution("BUG: string where a vector or scalar was expected".into())),
        }
    }

    /// Evaluates `node`. Afterwards the samples accounted as held are those held before plus the result's:
    /// whatever the node's inputs held has been released (Prometheus does the same bookkeeping).
    pub fn eval(&self, node: &Node) -> Result<Val> {
        self.lim.check_now()?;
        let before = self.lim.current();
        let v = self.eval_inner(node)?;
        if let Val::M(m) = &v {
            self.account(before, m)?;
        }
        Ok(v)
    }

    /// Like [`Ev::eval_m`], for a node evaluated by `f` instead of [`Ev::eval_inner`] (same bookkeeping).
    pub fn eval_m_by(&self, f: impl FnOnce() -> Result<Matrix>) -> Result<Matrix> {
        self.lim.check_now()?;
        let before = self.lim.current();
        let m = f()?;
        self.account(before, &m)?;
        Ok(m)
    }

    fn account(&self, before: usize, m: &Matrix) -> Result<()> {
        self.lim.set_current(before);
        self.lim.transient(total_points(m))?;
        self.lim.set_current(before + total_points(m));
        Ok(())
    }

    fn eval_inner(&self, node: &Node) -> Result<Val> {
        match node {
            Node::Number(v) => {
                // Check before allocating: a literal over a very fine range could be huge on its own.
                self.lim.transient(self.r.steps())?;
                let v = *v;
                let points: Vec<Sample> = self.r.iter().map(|t| Sample::new(t, v)).collect();
                self.lim.add(points.len())?;
                Ok(Val::M(vec![Series { labels: Labels::empty(), points }]))
            }
            Node::Str(s) => Ok(Val::S(s.clone())),
            Node::VectorSel(sel) => self.vector_selector(sel, None, false).map(Val::M),
            Node::MatrixSel { sel, range } => {
                if !self.is_instant() {
                    return Err(QueryError::Execution("BUG: range evaluation of a matrix selector".into()));
                }
                self.matrix_selector(sel, *range).map(Val::M)
            }
            Node::Subquery { expr, range, step, offset, at } => {
                self.subquery(expr, *range, *step, *offset, *at).map(Val::M)
            }
            Node::Neg(e) => {
                let mut m = self.eval_m(e)?;
                for s in &mut m {
                    if s.labels.has(METRIC_NAME) {
                        s.labels = s.labels.without_metric_name();
                    }
                    for p in &mut s.points {
                        p.v = -p.v;
                    }
                }
                if has_duplicate_labels(&m) {
                    return Err(QueryError::Execution(DUP_LABELSET.into()));
                }
                Ok(Val::M(m))
            }
            Node::Binary(b) => crate::binop::eval_binary(self, b).map(Val::M),
            Node::Aggregate(a) => crate::aggr::eval_aggregate(self, a).map(Val::M),
            Node::Call { func, args, .. } => crate::functions::eval_call(self, *func, args).map(Val::M),
        }
    }

    /// Reference-time range `[lo, hi]` a selector with this offset/`@` reads over the evaluation's steps.
    fn ref_range(&self, offset: i64, at: Option<i64>) -> (i64, i64) {
        match at {
            Some(t) => (t - offset, t - offset),
            None => (self.r.start - offset, self.r.end - offset),
        }
    }

    pub fn select(&self, sel: &Selector, mint: i64, maxt: i64, range: i64, func: Option<Func>) -> Result<Vec<model::Series>> {
        let hints = SelectHints {
            start: mint,
            end: maxt,
            step: if self.is_instant() { 0 } else { self.r.interval },
            range,
            func: func.map(|f| f.name().to_string()),
            grouping: Vec::new(),
            by: false,
            // One evaluation time and no range: vector_selector uses only the latest sample at or before it.
            latest_only: range == 0 && self.is_instant(),
        };
        let storage_err = |e: model::StorageError| match e {
            model::StorageError::Canceled => QueryError::Canceled,
            e => QueryError::Storage(e.to_string()),
        };
        if sel.or_matchers.is_empty() {
            let set = self.querier.select(false, Some(&hints), &sel.matchers).map_err(storage_err)?;
            let mut out = Vec::new();
            for s in set {
                self.lim.tick()?;
                out.push(s.map_err(storage_err)?);
            }
            return Ok(out);
        }
        // Union of the alternatives, each series once.
        let mut seen = std::collections::HashSet::with_hasher(Xxh3DefaultBuilder::new());
        let mut out = Vec::new();
        for group in &sel.or_matchers {
            for s in self.querier.select(false, Some(&hints), group).map_err(storage_err)? {
                self.lim.tick()?;
                let s = s.map_err(storage_err)?;
                if seen.insert(s.labels.clone()) {
                    out.push(s);
                }
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Instant vector selector over all steps. With `want_ts`, values are the samples' timestamps in seconds
    /// (for `timestamp()`, which must see the sample time, not the step time).
    pub fn vector_selector(&self, sel: &Selector, func: Option<Func>, want_ts: bool) -> Result<Matrix> {
        let (lo, hi) = self.ref_range(sel.offset, sel.at);
        let series = self.select(sel, lo - self.lookback, hi, 0, func)?;
        let (r, lookback, at, offset) = (self.r, self.lookback, sel.at, sel.offset);
        let out = par_map(self.lim, self.r.steps(), series, |sl, _: &mut (), s| {
            let mut cur = Cursor::new(s.samples, lo - lookback);
            let mut points = Vec::new();
            for (k, ts) in r.iter().enumerate() {
                let rf = at.unwrap_or(ts) - offset;
                if let Some(p) = cur.at(rf, lookback) {
                    if points.is_empty() {
                        // As in range functions: one allocation for the remaining steps, trimmed below.
                        points.reserve_exact(r.steps() - k);
                    }
                    points.push(Sample::new(ts, if want_ts { p.t as f64 / 1000.0 } else { p.v }));
                }
            }
            if let Some(e) = cur.err() {
                return Err(e);
            }
            if points.capacity() > 2 * points.len() + 16 {
                points.shrink_to_fit();
            }
            sl.add(points.len())?;
            Ok((!points.is_empty()).then_some(Series { labels: s.labels, points }))
        })?;
        let out: Matrix = out.into_iter().flatten().collect();
        self.lim.add(total_points(&out))?;
        Ok(out)
    }

    /// Range vector selector as the whole of an instant query: the raw samples of each series.
    fn matrix_selector(&self, sel: &Selector, range: i64) -> Result<Matrix> {
        let rf = sel.at.unwrap_or(self.r.start) - sel.offset;
        let series = self.select(sel, rf - range, rf, range, None)?;
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            self.lim.tick()?;
            let mut w = Window::new(s.samples, Vec::new());
            let points = w.fill(rf - range, rf).to_vec();
            if let Some(e) = w.err() {
                return Err(e);
            }
            if !points.is_empty() {
                self.lim.add(points.len())?;
                out.push(Series { labels: s.labels, points });
            }
        }
        Ok(out)
    }

    /// Evaluates a subquery's inner expression over its own aligned steps.
    pub fn subquery(&self, expr: &Node, range: i64, step: i64, offset: i64, at: Option<i64>) -> Result<Matrix> {
        let interval = if step > 0 { step } else { self.no_step };
        if interval <= 0 {
            return Err(QueryError::Execution("subquery step must be positive".into()));
        }
        let (base, end) = match at {
            Some(t) => (t - offset - range, t - offset),
            None => (self.r.start - offset - range, self.r.end - offset),
        };
        // First multiple of the interval at or after the window start (division truncates toward zero, as in
        // Go, so this also holds for negative times).
        let mut start = interval * (base / interval);
        if start < base {
            start += interval;
        }
        if start > end {
            return Ok(Vec::new());
        }
        let sub = self.sub(Range { start, end, interval });
        sub.eval_m(expr)
    }

    /// Prometheus's `rangeEval`: evaluates `args`, then calls `f` once per step with, for each argument, the
    /// (series index, value) pairs present at that step. `f` appends its output; outputs are assembled into
    /// series by label set. An instant evaluation keeps `f`'s output order (sort(), topk() rely on it).
    pub fn range_eval<F>(&self, args: &[&Matrix], mut f: F) -> Result<Matrix>
    where
        F: FnMut(i64, usize, &[Vec<(usize, f64)>], &mut StepOut) -> Result<()>,
    {
        let mut cursors: Vec<Vec<usize>> = args.iter().map(|m| vec![0usize; m.len()]).collect();
        let mut vecs: Vec<Vec<(usize, f64)>> = args.iter().map(|m| Vec::with_capacity(m.len())).collect();
        let mut out: StepOut = Vec::new();
        let mut result: Matrix = Vec::new();
        let mut index: HashMap<Labels, (usize, i64), Xxh3DefaultBuilder> = HashMap::default();
        let instant = self.is_instant();
        for (step, ts) in self.r.iter().enumerate() {
            self.lim.check_now()?;
            let mut in_step = 0;
            for (i, m) in args.iter().enumerate() {
                let v = &mut vecs[i];
                v.clear();
                for (si, s) in m.iter().enumerate() {
                    let c = &mut cursors[i][si];
                    if let Some(p) = s.points.get(*c) {
                        if p.t == ts {
                            v.push((si, p.v));
                            *c += 1;
                        }
                    }
                }
                in_step += v.len();
            }
            self.lim.transient(in_step)?;
            out.clear();
            f(ts, step, &vecs, &mut out)?;
            self.lim.add(out.len())?;
            if instant {
                if out.len() > 1 {
                    let mut seen = std::collections::HashSet::with_capacity_and_hasher(out.len(), Xxh3DefaultBuilder::new());
                    if out.iter().any(|(l, _)| !seen.insert(l)) {
                        return Err(QueryError::Execution(DUP_LABELSET.into()));
                    }
                }
                return Ok(out.drain(..).map(|(labels, v)| Series { labels, points: vec![Sample::new(ts, v)] }).collect());
            }
            for (labels, v) in out.drain(..) {
                match index.entry(labels) {
                    Entry::Occupied(mut e) => {
                        let (idx, last) = e.get_mut();
                        if *last == ts {
                            return Err(QueryError::Execution(DUP_LABELSET.into()));
                        }
                        *last = ts;
                        result[*idx].points.push(Sample::new(ts, v));
                    }
                    Entry::Vacant(e) => {
                        let idx = result.len();
                        result.push(Series { labels: e.key().clone(), points: Vec::with_capacity(self.r.steps().min(64)) });
                        result[idx].points.push(Sample::new(ts, v));
                        e.insert((idx, ts));
                    }
                }
            }
        }
        Ok(result)
    }

    /// Like [`Ev::range_eval`], but `f` names each output by a `u64` key (an input series index, a pair of
    /// them) and `label_of` turns a key into labels the first time it is seen. Steps then cost a hash lookup of
    /// an integer instead of hashing and cloning label sets — the hot path of binary operators and functions
    /// over many series. Outputs with different keys but equal labels still merge into one series, and two at
    /// the same step are an error (`dup_msg`), as in Prometheus.
    pub fn range_eval_keyed<F, L>(&self, args: &[&Matrix], mut f: F, mut label_of: L, dup_msg: &str) -> Result<Matrix>
    where
        F: FnMut(i64, usize, &[Vec<(usize, f64)>], &mut Vec<(u64, f64)>) -> Result<()>,
        L: FnMut(u64) -> Labels,
    {
        let mut cursors: Vec<Vec<usize>> = args.iter().map(|m| vec![0usize; m.len()]).collect();
        let mut vecs: Vec<Vec<(usize, f64)>> = args.iter().map(|m| Vec::with_capacity(m.len())).collect();
        let mut out: Vec<(u64, f64)> = Vec::new();
        let mut result: Matrix = Vec::new();
        let mut last_ts: Vec<i64> = Vec::new();
        let mut by_key: HashMap<u64, usize, IdBuild> = HashMap::default();
        let mut by_labels: HashMap<Labels, usize, Xxh3DefaultBuilder> = HashMap::default();
        // Small initial capacity: a large one per series would dwarf the data for sparse results.
        let cap = self.r.steps().min(64);
        for (step, ts) in self.r.iter().enumerate() {
            self.lim.check_now()?;
            let mut in_step = 0;
            for (i, m) in args.iter().enumerate() {
                let v = &mut vecs[i];
                v.clear();
                for (si, s) in m.iter().enumerate() {
                    let c = &mut cursors[i][si];
                    if let Some(p) = s.points.get(*c) {
                        if p.t == ts {
                            v.push((si, p.v));
                            *c += 1;
                        }
                    }
                }
                in_step += v.len();
            }
            self.lim.transient(in_step)?;
            out.clear();
            f(ts, step, &vecs, &mut out)?;
            self.lim.add(out.len())?;
            for &(key, v) in &out {
                let idx = match by_key.get(&key) {
                    Some(&i) => i,
                    None => {
                        let labels = label_of(key);
                        let i = match by_labels.get(&labels) {
                            Some(&i) => i,
                            None => {
                                let n = result.len();
                                by_labels.insert(labels.clone(), n);
                                result.push(Series { labels, points: Vec::with_capacity(cap) });
                                last_ts.push(i64::MIN);
                                n
                            }
                        };
                        by_key.insert(key, i);
                        i
                    }
                };
                if last_ts[idx] == ts {
                    return Err(QueryError::Execution(dup_msg.to_string()));
                }
                last_ts[idx] = ts;
                result[idx].points.push(Sample::new(ts, v));
            }
        }
        Ok(result)
    }

    /// Maps every point of every series of `m` independently (`f(step index, value)`, `None` drops the point),
    /// series by series. This is what [`Ev::range_eval_keyed`] computes for element-wise operations when no
    /// two output label sets collide, without the per-step gathering; when they do collide it defers to
    /// `range_eval_keyed` so merging and duplicate errors stay exactly Prometheus's.
    pub fn map_series<L, F>(&self, m: &Matrix, mut label_of: L, mut f: F) -> Result<Matrix>
    where
        L: FnMut(usize) -> Labels,
        F: FnMut(usize, f64) -> Option<f64>,
    {
        let labels: Vec<Labels> = (0..m.len()).map(&mut label_of).collect();
        let mut seen = std::collections::HashSet::with_capacity_and_hasher(labels.len(), Xxh3DefaultBuilder::new());
        if !fast_paths() || !labels.iter().all(|l| seen.insert(l)) {
            return self.range_eval_keyed(
                &[m],
                |_, step, v, out| {
                    out.extend(v[0].iter().filter_map(|&(i, x)| f(step, x).map(|y| (i as u64, y))));
                    Ok(())
                },
                |k| labels[k as usize].clone(),
                DUP_LABELSET,
            );
        }
        drop(seen);
        let mut out = Vec::with_capacity(m.len());
        let mut added = 0;
        for (s, labels) in m.iter().zip(labels) {
            self.lim.tick()?;
            let points: Vec<Sample> = s
                .points
                .iter()
                .filter_map(|p| {
                    let step = ((p.t - self.r.start) / self.r.interval) as usize;
                    f(step, p.v).map(|v| Sample::new(p.t, v))
                })
                .collect();
            if !points.is_empty() {
                added += points.len();
                out.push(Series { labels, points });
            }
        }
        self.lim.add(added)?;
        Ok(out)
    }

    /// The value of a scalar-typed argument at each step (NaN where it has none, which cannot happen for a
    /// well-formed scalar).
    pub fn scalar_steps(&self, node: &Node) -> Result<Vec<f64>> {
        let m = self.eval_m(node)?;
        let mut out = vec![f64::NAN; self.r.steps()];
        if let Some(s) = m.first() {
            for p in &s.points {
                let i = ((p.t - self.r.start) / self.r.interval) as usize;
                if let Some(slot) = out.get_mut(i) {
                    *slot = p.v;
                }
            }
        }
        Ok(out)
    }
}
