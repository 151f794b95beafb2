//! One target's scrape loop: fetch, parse, label, append, report, and staleness — Prometheus's `scrapeLoop`.
//!
//! The scrape cache maps the raw series text of the exposition (`name{labels}` bytes) to the final label set
//! and the storage's series ref. A series seen before therefore costs one hash lookup plus the append; only
//! new series text is fully parsed, relabeled and validated.

use crate::metrics::ScrapeMetrics;
use crate::parse::{Entry, Format, LabelPair, Parser};
use crate::target::{Health, Metadata, Target};
use config::RelabelConfig;
use model::{AppendError, Appender, Labels, LabelsBuilder, SeriesRef, Storage, STALE_NAN};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

type Xxh = BuildHasherDefault<xxhash_rust::xxh3::Xxh3Default>;

/// Samples more than this far in the future are refused as out of bounds (Prometheus's `maxAheadTime`).
const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[derive(Debug)]
struct CacheEntry {
    r: SeriesRef,
    lset: Labels,
    last_iter: u64,
    /// Whether the series takes part in staleness (no explicit timestamp, or track_timestamps_staleness).
    track: bool,
}

/// Per-target scrape cache; survives config reloads that don't change how samples are labelled.
#[derive(Debug, Default)]
pub(crate) struct ScrapeCache {
    series: HashMap<Box<[u8]>, CacheEntry, Xxh>,
    dropped: HashMap<Box<[u8]>, u64, Xxh>,
    iter: u64,
    successful_count: usize,
    report_refs: [SeriesRef; 5],
    /// Scratch for labelling new series, kept so a first scrape does not allocate a builder per series.
    lb: LabelsBuilder,
}

impl ScrapeCache {
    /// Ends an iteration. After a non-empty scrape, entries not seen in it are removed.
    fn iter_done(&mut self, flush: bool, metrics: &ScrapeMetrics) {
        let count = self.series.len() + self.dropped.len();
        let mut flush = flush;
        if flush {
            self.successful_count = count;
        } else if count > self.successful_count * 2 + 1000 {
            // Caches of targets whose scrapes keep failing midway would grow forever.
            flush = true;
            metrics.target_scrapes_cache_flush_forced_total.fetch_add(1, Relaxed);
        }
        if flush {
            let it = self.iter;
            self.series.retain(|_, e| e.last_iter == it);
            self.dropped.retain(|_, i| *i == it);
        }
        self.iter += 1;
    }
}

/// Settings of a loop, derived from the scrape config.
#[derive(Debug, Clone)]
pub(crate) struct LoopOptions {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub sample_limit: usize,
    pub label_limit: usize,
    pub label_name_length_limit: usize,
    pub label_value_length_limit: usize,
    pub body_size_limit: u64,
    pub metric_relabel: Arc<Vec<RelabelConfig>>,
    pub accept: String,
    pub enable_compression: bool,
    pub offset_seed: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppendStats {
    pub total: usize,
    pub added: usize,
    pub series_added: usize,
}

/// How a loop is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Running,
    /// The target went away or its pool was removed: stale markers after ~2 intervals, as Prometheus.
    EndOfRun,
    /// Replaced by a new loop (config reload) that inherits the cache: no stale markers.
    Reload,
    /// The manager is stopping (server shutdown): no stale markers, as Prometheus, which presumes the server
    /// restarts where it was; a series' last sample keeps answering within the lookback delta after a restart.
    Shutdown,
}

/// The scrape-and-append machinery of one target, independent of HTTP so it can be driven from tests and
/// benchmarks.
pub(crate) struct Appending {
    pub target: Arc<Target>,
    pub opts: LoopOptions,
    pub cache: Arc<Mutex<ScrapeCache>>,
    pub metrics: Arc<ScrapeMetrics>,
    report_labels: [Labels; 5],
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Prometheus's `mutateSampleLabels`: attach target labels (honouring or exporting conflicts), then metric
/// relabeling. `None` when dropped. `parsed` is the sorted output of [`Parser::series_pairs`]; `target` is
/// sorted with unique names (it comes from a `Labels`); `lb` is scratch kept across calls so that a new
/// series costs no allocation before relabeling.
pub(crate) fn mutate_sample_labels(
    parsed: &[LabelPair<'_>],
    target: &[(String, String)],
    honor: bool,
    rc: &[RelabelConfig],
    lb: &mut LabelsBuilder,
) -> Option<Labels> {
    debug_assert!(target.windows(2).all(|w| w[0].0 < w[1].0), "BUG: target labels not sorted/unique");
    let find = |n: &str| parsed.binary_search_by(|p| (*p.0).cmp(n)).ok().map(|i| &*parsed[i].1);
    // Exported conflicts need renaming; they are rare, so only they take the general path below.
    let conflict = !honor && target.iter().any(|(n, _)| find(n).is_some_and(|v| !v.is_empty()));
    if !conflict {
        // One sorted merge gives exactly what setting each target label on the parsed set would.
        lb.reset_sorted(MergeTarget { parsed, target, honor });
    } else {
        lb.reset_sorted(parsed.iter().map(|(n, v)| (&**n, &**v)));
        let mut conflicts: Vec<(&str, &str)> = Vec::new();
        for (n, v) in target {
            if let Some(ev) = find(n) {
                if !ev.is_empty() {
                    conflicts.push((n, ev));
                }
            }
            lb.set(n, v);
        }
        conflicts.sort_by_key(|(n, _)| n.len());
        for (n, v) in conflicts {
            let mut name = n.to_string();
            loop {
                name = format!("exported_{name}");
                if lb.get(&name).unwrap_or("").is_empty() {
                    lb.set(&name, v);
                    break;
                }
            }
        }
    }
    if !config::relabel::relabel_builder(lb, rc) {
        return None;
    }
    let res = lb.build();
    (!res.is_empty()).then_some(res)
}

/// Sorted merge of parsed labels and target labels with `LabelsBuilder::set` semantics and no conflicts to
/// export: with `honor`, a parsed label (even an empty one) wins; without it the target label wins (the parsed
/// one is then empty). A target label with an empty value adds nothing and, without `honor`, removes the
/// parsed label of that name.
struct MergeTarget<'p, 's, 't> {
    parsed: &'p [LabelPair<'s>],
    target: &'t [(String, String)],
    honor: bool,
}

impl<'p> Iterator for MergeTarget<'p, '_, 'p> {
    type Item = (&'p str, &'p str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match (self.parsed.first(), self.target.first()) {
                (None, None) => return None,
                (Some((n, v)), None) => {
                    self.parsed = &self.parsed[1..];
                    return Some((n, v));
                }
                (pa, Some((tn, tv))) => {
                    let ord = pa.map_or(std::cmp::Ordering::Greater, |(n, _)| (**n).cmp(tn.as_str()));
                    match ord {
                        std::cmp::Ordering::Less => {
                            let (n, v) = &self.parsed[0];
                            self.parsed = &self.parsed[1..];
                            return Some((n, v));
                        }
                        std::cmp::Ordering::Equal => {
                            let (n, v) = &self.parsed[0];
                            self.parsed = &self.parsed[1..];
                            self.target = &self.target[1..];
                            if self.honor {
                                return Some((n, v));
                            }
                            if !tv.is_empty() {
                                return Some((tn, tv));
                            }
                        }
                        std::cmp::Ordering::Greater => {
                            self.target = &self.target[1..];
                            if !tv.is_empty() {
                                return Some((tn, tv));
                            }
                        }
                    }
                }
            }
        }
    }
}

fn valid_labels(l: &Labels) -> bool {
    l.iter().all(|l| {
        if l.name == model::METRIC_NAME {
            model::labels::is_valid_metric_name(l.value)
        } else {
            model::labels::is_valid_label_name(l.name)
        }
    })
}

fn trunc(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Appending {
    pub fn new(target: Arc<Target>, opts: LoopOptions, cache: Arc<Mutex<ScrapeCache>>, metrics: Arc<ScrapeMetrics>) -> Self {
        let report_labels = REPORT_NAMES.map(|n| {
            let mut lb = LabelsBuilder::new();
            lb.set(model::METRIC_NAME, n);
            for (k, v) in &target.public_labels {
                lb.set(k, v);
            }
            lb.build()
        });
        Appending { target, opts, cache, metrics, report_labels }
    }

    fn check_limits(&self, l: &Labels) -> Result<(), String> {
        let met = l.get_or_empty(model::METRIC_NAME);
        let o = &self.opts;
        if o.label_limit > 0 {
            let n = l.len();
            if n > o.label_limit {
                return Err(format!(
                    "label_limit exceeded (metric: {}, number of labels: {n}, limit: {})",
                    trunc(met, 50),
                    o.label_limit
                ));
            }
        }
        for x in l.iter() {
            if o.label_name_length_limit > 0 && x.name.len() > o.label_name_length_limit {
                return Err(format!(
                    "label_name_length_limit exceeded (metric: {}, label name: {}, length: {}, limit: {})",
                    trunc(met, 50),
                    trunc(x.name, 50),
                    x.name.len(),
                    o.label_name_length_limit
                ));
            }
            if o.label_value_length_limit > 0 && x.value.len() > o.label_value_length_limit {
                return Err(format!(
                    "label_value_length_limit exceeded (metric: {}, label name: {}, value: {:?}, length: {}, limit: {})",
                    trunc(met, 50),
                    trunc(x.name, 50),
                    trunc(x.value, 50),
                    x.value.len(),
                    o.label_value_length_limit
                ));
            }
        }
        Ok(())
    }

    fn set_meta(&self, name: &str, iter: u64, f: impl FnOnce(&mut Metadata)) {
        let mut m = self.target.metadata.lock();
        let e = m.entry(name.to_string()).or_default();
        e.last_iter = iter;
        f(e);
    }

    /// Parses `body` and appends its samples at `ts` (ms), Prometheus's `scrapeLoop.append`. On success, stale
    /// markers are appended for series that were in the previous scrape but not this one. An empty body is
    /// how a failed scrape is recorded. The caller commits or rolls back `app`.
    pub fn append(
        &self,
        app: &mut dyn Appender,
        body: &[u8],
        format: Format,
        ts: i64,
    ) -> Result<AppendStats, String> {
        let mut cache = self.cache.lock();
        let cache = &mut *cache;
        let iter = cache.iter;
        let mut st = AppendStats::default();
        let mut p = Parser::new(body, format);
        // Parsed labels of a new series, borrowing from `body`; reused across series.
        let mut pairs: Vec<LabelPair<'_>> = Vec::new();
        let mut err: Option<String> = None;
        let mut appended_non_stale = 0usize;
        let mut sample_limit_hit = false;
        let max_t = now_ms() + MAX_AHEAD_MS;
        let (mut ooo, mut dup, mut oob) = (0u64, 0u64, 0u64);
        let honor_ts = self.opts.honor_timestamps;
        let track_ts = self.opts.track_timestamps_staleness;
        loop {
            let e = match p.next() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => {
                    err = Some(e.to_string());
                    break;
                }
            };
            let se = match e {
                Entry::Series(se) => se,
                Entry::Type { name, kind } => {
                    self.set_meta(name, iter, |m| m.kind = kind);
                    continue;
                }
                Entry::Help { name, help } => {
                    self.set_meta(name, iter, |m| {
                        if m.help != help {
                            m.help = help.into_owned();
                        }
                    });
                    continue;
                }
                Entry::Unit { name, unit } => {
                    self.set_meta(name, iter, |m| {
                        if m.unit != unit {
                            m.unit = unit.to_string();
                        }
                    });
                    continue;
                }
                Entry::Comment => continue,
            };
            st.total += 1;
            let explicit = if honor_ts { se.timestamp } else { None };
            let t = explicit.unwrap_or(ts);
            if let Some(i) = cache.dropped.get_mut(se.series) {
                *i = iter;
                continue;
            }
            // Fast path: the series text was seen before.
            let entry = match cache.series.get_mut(se.series) {
                Some(e) => {
                    if e.last_iter == iter && explicit.is_none() {
                        // The same series twice in one scrape.
                        dup += 1;
                        st.added += 1;
                        continue;
                    }
                    e.last_iter = iter;
                    e
                }
                None => {
                    if let Err(e) = p.series_pairs(se.series, &mut pairs) {
                        err = Some(e.to_string());
                        break;
                    }
                    let Some(lset) = mutate_sample_labels(
                        &pairs,
                        &self.target.public_labels,
                        self.opts.honor_labels,
                        &self.opts.metric_relabel,
                        &mut cache.lb,
                    ) else {
                        cache.dropped.insert(se.series.into(), iter);
                        continue;
                    };
                    if !lset.has(model::METRIC_NAME) {
                        err = Some("missing metric name (__name__ label)".into());
                        break;
                    }
                    if !valid_labels(&lset) {
                        err = Some(format!("invalid metric name or label names: {lset}"));
                        break;
                    }
                    if let Err(e) = self.check_limits(&lset) {
                        self.metrics.target_scrape_pool_exceeded_label_limits_total.fetch_add(1, Relaxed);
                        err = Some(e);
                        break;
                    }
                    st.series_added += 1;
                    cache.series.entry(se.series.into()).or_insert(CacheEntry { r: 0, lset, last_iter: iter, track: true })
                }
            };
            entry.track = explicit.is_none() || track_ts;
            st.added += 1;
            if t > max_t {
                oob += 1;
                continue;
            }
            if self.opts.sample_limit > 0 && !model::is_stale_nan(se.value) {
                appended_non_stale += 1;
                if appended_non_stale > self.opts.sample_limit {
                    // Keep parsing so scrape_samples_scraped is right; the scrape fails below.
                    sample_limit_hit = true;
                    continue;
                }
            }
            match app.append(entry.r, &entry.lset, t, se.value) {
                Ok(r) => entry.r = r,
                Err(AppendError::OutOfOrder) => ooo += 1,
                Err(AppendError::DuplicateSample) => dup += 1,
                Err(AppendError::OutOfBounds) => oob += 1,
                Err(e) => {
                    err = Some(e.to_string());
                    break;
                }
            }
        }
        let m = &self.metrics;
        m.target_scrapes_sample_out_of_order_total.fetch_add(ooo, Relaxed);
        m.target_scrapes_sample_duplicate_timestamp_total.fetch_add(dup, Relaxed);
        m.target_scrapes_sample_out_of_bounds_total.fetch_add(oob, Relaxed);
        if (ooo, dup, oob) != (0, 0, 0) {
            tracing::warn!(target = %self.target.url, out_of_order = ooo, duplicates = dup, out_of_bounds = oob, "some samples were not ingested");
        }
        if sample_limit_hit && err.is_none() {
            m.target_scrapes_exceeded_sample_limit_total.fetch_add(1, Relaxed);
            err = Some("sample limit exceeded".into());
        }
        if let Some(e) = err {
            // Prometheus does not end the iteration on failure; the caller appends an empty scrape next.
            return Err(e);
        }
        // Series present in the previous iteration but not this one get a staleness marker.
        let prev = iter.wrapping_sub(1);
        for e in cache.series.values() {
            if e.track && e.last_iter == prev && iter > 0 {
                match app.append(0, &e.lset, ts, STALE_NAN) {
                    Ok(_) | Err(AppendError::OutOfOrder) | Err(AppendError::DuplicateSample) => {}
                    Err(AppendError::OutOfBounds) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        cache.iter_done(!body.is_empty(), &self.metrics);
        // Metadata of metrics gone for more than 10 scrapes is forgotten.
        self.target.metadata.lock().retain(|_, m| iter.saturating_sub(m.last_iter) <= 10);
        Ok(st)
    }

    /// Appends the synthetic series (`up`, `scrape_duration_seconds`, …) at `ts`.
    pub fn report(&self, app: &mut dyn Appender, ts: i64, duration: Duration, st: AppendStats, up: bool) -> Result<(), String> {
        let vals = [
            if up { 1.0 } else { 0.0 },
            duration.as_secs_f64(),
            st.total as f64,
            st.added as f64,
            st.series_added as f64,
        ];
        self.append_report(app, ts, vals)
    }

    pub fn report_stale(&self, app: &mut dyn Appender, ts: i64) -> Result<(), String> {
        self.append_report(app, ts, [STALE_NAN; 5])
    }

    fn append_report(&self, app: &mut dyn Appender, ts: i64, vals: [f64; 5]) -> Result<(), String> {
        let mut cache = self.cache.lock();
        for (i, v) in vals.into_iter().enumerate() {
            match app.append(cache.report_refs[i], &self.report_labels[i], ts, v) {
                Ok(r) => cache.report_refs[i] = r,
                Err(AppendError::OutOfOrder) | Err(AppendError::DuplicateSample) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    /// One full scrape cycle's storage side, given the fetch result (Prometheus's `scrapeAndReport` after the
    /// HTTP request). Returns the scrape error, if any.
    pub fn append_and_report(
        &self,
        storage: &dyn Storage,
        fetched: Result<(Vec<u8>, Format), String>,
        ts: i64,
        started: Instant,
    ) -> Option<String> {
        let mut app = storage.appender();
        let (body, format, mut scrape_err) = match fetched {
            Ok((b, f)) => (b, f, None),
            Err(e) => (Vec::new(), Format::PromText, Some(e)),
        };
        let st = match self.append(app.as_mut(), &body, format, ts) {
            Ok(st) => st,
            Err(e) => {
                app.rollback();
                // A failed append is recorded as an empty scrape so the previous series go stale.
                if let Err(e2) = self.append(app.as_mut(), &[], format, ts) {
                    app.rollback();
                    tracing::warn!(target = %self.target.url, err = %e2, "append of empty scrape failed");
                }
                let total = Parser::count_samples(&body, format);
                if scrape_err.is_none() {
                    scrape_err = Some(e);
                }
                AppendStats { total, ..AppendStats::default() }
            }
        };
        let dur = started.elapsed();
        if let Err(e) = self.report(app.as_mut(), ts, dur, st, scrape_err.is_none()) {
            tracing::warn!(target = %self.target.url, err = %e, "appending scrape report failed");
            app.rollback();
        } else if let Err(e) = app.commit() {
            tracing::error!(target = %self.target.url, err = %e, "scrape commit failed");
        }
        let mut s = self.target.state.lock();
        s.health = if scrape_err.is_none() { Health::Up } else { Health::Down };
        s.last_error = scrape_err.clone().unwrap_or_default();
        s.last_scrape = Some(UNIX_EPOCH + Duration::from_millis(ts.max(0) as u64));
        s.last_duration = dur.as_secs_f64();
        scrape_err
    }

    /// Stale markers for everything this target exposed (end of run).
    pub fn write_stale_markers(&self, storage: &dyn Storage, ts: i64) {
        let mut app = storage.appender();
        if let Err(e) = self.append(app.as_mut(), &[], Format::PromText, ts) {
            tracing::warn!(target = %self.target.url, err = %e, "stale append failed");
            app.rollback();
        }
        if let Err(e) = self.report_stale(app.as_mut(), ts) {
            tracing::warn!(target = %self.target.url, err = %e, "stale report failed");
        }
        if let Err(e) = app.commit() {
            tracing::warn!(target = %self.target.url, err = %e, "stale commit failed");
        }
    }
}

impl Parser<'_> {
    /// Number of sample lines in a body up to its first error (for `scrape_samples_scraped` of failed
    /// scrapes).
    fn count_samples(body: &[u8], format: Format) -> usize {
        let mut p = Parser::new(body, format);
        let mut n = 0;
        while let Ok(Some(e)) = p.next() {
            if matches!(e, Entry::Series(_)) {
                n += 1;
            }
        }
        n
    }
}

/// Everything a running loop needs besides [`Appending`].
pub(crate) struct LoopEnv {
    pub storage: Arc<dyn Storage>,
    pub client: reqwest::Client,
    pub http: config::HttpClientConfig,
    pub forced_error: Arc<Mutex<Option<String>>>,
}

/// Fetches the target once: status, size limit, timeout, content type.
pub(crate) async fn fetch(
    a: &Appending,
    env: &LoopEnv,
    sni: Option<&crate::http::ServerNameClient>,
) -> Result<(Vec<u8>, Format), String> {
    let timeout = Duration::from_millis(a.target.timeout_ms.max(1) as u64);
    let mut req = match sni {
        None => env.client.get(&a.target.url),
        Some(s) => s.client.get(&s.url).header(reqwest::header::HOST, &s.host_header),
    };
    req = req
        .header(reqwest::header::ACCEPT, &a.opts.accept)
        .header(reqwest::header::USER_AGENT, concat!("ignis/", env!("CARGO_PKG_VERSION")))
        .header("X-Prometheus-Scrape-Timeout-Seconds", format_secs(timeout));
    if !a.opts.enable_compression {
        req = req.header(reqwest::header::ACCEPT_ENCODING, "identity");
    }
    req = crate::http::apply_auth(req, &env.http)?;
    let limit = a.opts.body_size_limit;
    let url = a.target.url.clone();
    let fut = async move {
        let mut resp = req.send().await.map_err(|e| format!("Get {url:?}: {}", error_chain(&e)))?;
        if resp.status() != reqwest::StatusCode::OK {
            let s = resp.status();
            return Err(format!(
                "server returned HTTP status {} {}",
                s.as_u16(),
                s.canonical_reason().unwrap_or("")
            ));
        }
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(64 << 20) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
            // The limit applies to the decompressed body (reqwest decompresses gzip transparently).
            if limit > 0 && (body.len() + chunk.len()) as u64 > limit {
                return Err("body size limit exceeded".to_string());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, Format::from_content_type(&ct)))
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => {
            if matches!(&r, Err(e) if e == "body size limit exceeded") {
                a.metrics.target_scrapes_exceeded_body_size_limit_total.fetch_add(1, Relaxed);
            }
            r
        }
        Err(_) => Err(format!("Get {:?}: context deadline exceeded", a.target.url)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Seconds the way Go's `strconv.FormatFloat(s, 'f', -1, 64)` prints them ("10", "0.5").
fn format_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as i64)
    } else {
        format!("{s}")
    }
}

/// The loop task: offset, then one scrape per interval until stopped; then staleness per the stop mode.
pub(crate) async fn run(a: Arc<Appending>, env: Arc<LoopEnv>, mut stop: watch::Receiver<Stop>) {
    let interval = a.target.interval_ms.max(1);
    let offset = a.target.offset_ms(interval, a.opts.offset_seed, now_ms());
    let start = tokio::time::Instant::now() + Duration::from_millis(offset as u64);
    let period = Duration::from_millis(interval as u64);
    let mut next = start;
    let mut last_ts: Option<i64> = None;
    let mut mode = Stop::Running;
    // tls_config.server_name needs a client of this target's own (see http::server_name_client).
    let sni = crate::http::server_name_client(&env.http, a.opts.enable_compression, &a.target.url);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            r = stop.changed() => {
                mode = if r.is_ok() { *stop.borrow() } else { Stop::Shutdown };
                if mode != Stop::Running { break; }
                continue;
            }
        }
        let ts = now_ms();
        let started = Instant::now();
        let forced = a.target_forced_error(&env).or_else(|| sni.as_ref().err().cloned());
        let fetched = match forced {
            Some(e) => Err(e),
            None => {
                tokio::select! {
                    r = fetch(&a, &env, sni.as_ref().ok().and_then(Option::as_ref)) => r,
                    r = stop.changed() => {
                        // Any stop abandons the in-flight scrape without recording it; staleness follows
                        // the stop mode below.
                        mode = if r.is_ok() { *stop.borrow() } else { Stop::Shutdown };
                        if mode != Stop::Running { break; }
                        continue;
                    }
                }
            }
        };
        if let Some(e) = a.append_and_report(env.storage.as_ref(), fetched, ts, started) {
            tracing::debug!(target = %a.target.url, err = %e, "scrape failed");
        }
        last_ts = Some(ts);
        if mode != Stop::Running {
            break;
        }
        // Like Go's ticker: missed ticks are dropped, the phase is kept.
        next += period;
        let now = tokio::time::Instant::now();
        while next <= now {
            next += period;
        }
    }
    let Some(last_ts) = last_ts else {
        return; // never scraped: nothing to mark stale
    };
    // A marker in the same millisecond as the last scrape would be refused as a duplicate sample.
    let after_last = |t: i64| t.max(last_ts + 1);
    match mode {
        Stop::EndOfRun => {
            // The target may come back (e.g. a flapping discovery); wait two intervals plus 10% as Prometheus
            // does, so a recreated loop's samples win. A shutdown meanwhile drops the markers, as Prometheus.
            let mut stale_ts = None;
            let deadline = tokio::time::Instant::now() + period * 2 + period / 10;
            let first_tick = tokio::time::Instant::now() + period;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(first_tick), if stale_ts.is_none() => { stale_ts = Some(now_ms()); }
                    _ = tokio::time::sleep_until(deadline) => break,
                    r = stop.changed() => {
                        if r.is_err() || *stop.borrow() == Stop::Shutdown { return; }
                    }
                }
            }
            a.write_stale_markers(env.storage.as_ref(), after_last(stale_ts.unwrap_or_else(now_ms)));
        }
        Stop::Shutdown | Stop::Reload | Stop::Running => {}
    }
}

impl Appending {
    fn target_forced_error(&self, env: &LoopEnv) -> Option<String> {
        env.forced_error.lock().clone()
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;
    use proptest::prelude::*;
    use std::borrow::Cow;

    /// The labelling as it was before the single-pass merge: builder from the parsed `Labels`, then one
    /// `set` per target label. The fast path must agree with it exactly.
    fn reference(parsed: &Labels, target: &[(String, String)], honor: bool) -> Labels {
        let mut lb = LabelsBuilder::from(parsed);
        if honor {
            for (n, v) in target {
                if !parsed.has(n) {
                    lb.set(n, v);
                }
            }
        } else {
            let mut conflicts: Vec<(&str, &str)> = Vec::new();
            for (n, v) in target {
                if let Some(ev) = parsed.get(n) {
                    if !ev.is_empty() {
                        conflicts.push((n, ev));
                    }
                }
                lb.set(n, v);
            }
            conflicts.sort_by_key(|(n, _)| n.len());
            for (n, v) in conflicts {
                let mut name = n.to_string();
                loop {
                    name = format!("exported_{name}");
                    if lb.get(&name).unwrap_or("").is_empty() {
                        lb.set(&name, v);
                        break;
                    }
                }
            }
        }
        lb.build()
    }

    fn label_map() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
        // Few names and values (empty included) so overlaps, empties and exported_ clashes are common.
        prop::collection::btree_map(
            prop::sample::select(vec!["__name__", "a", "instance", "job", "exported_job", "z"]).prop_map(String::from),
            prop::sample::select(vec!["", "x", "y"]).prop_map(String::from),
            0..6,
        )
    }

    proptest! {
        #[test]
        fn merge_matches_setting_each_target_label(parsed in label_map(), target in label_map(), honor: bool) {
            let target: Vec<(String, String)> = target.into_iter().collect();
            let pairs: Vec<LabelPair<'_>> =
                parsed.iter().map(|(n, v)| (Cow::Borrowed(n.as_str()), Cow::Borrowed(v.as_str()))).collect();
            let parsed_l = Labels::from_sorted_unchecked(parsed.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let want = reference(&parsed_l, &target, honor);
            // A builder reused from a previous, longer label set must not leak old labels.
            let mut lb = LabelsBuilder::new();
            lb.reset_sorted([("0", "stale"), ("1", "stale"), ("2", "s"), ("3", "s"), ("4", "s"), ("5", "s"), ("6", "s")]);
            let got = mutate_sample_labels(&pairs, &target, honor, &[], &mut lb);
            prop_assert_eq!(got.unwrap_or_default(), want);
        }
    }
}
