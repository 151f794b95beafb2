//! The remote-write receive path without copies: the snappy-decoded `WriteRequest` is walked in place (labels
//! as `&str` slices of the request), and a cache of series refs across requests, keyed by a 128-bit hash of a
//! series' raw label bytes, lets a series seen before skip label decoding, validation, sorting and the storage's
//! label lookup. Senders encode a series' labels identically in every request (Prometheus and ignis encode them
//! once per series), so the raw bytes are a stable key.
//!
//! Why: a profile of the prost path (bench/rw_receive.py, 100k series) showed most receive time in building
//! owned `String`s per label, `Labels` per series and the head's hash lookup per sample.
//!
//! Semantics equal [`crate::apply_write`]: all-or-nothing per request, same validation and error texts.

use crate::{RemoteError, WriteStats};
use model::storage::Appender;
use model::Labels;
use parking_lot::Mutex;
use std::collections::HashMap;

/// Cached series per shard and generation before the generation rolls over (two generations are kept, so at
/// most `2 * SHARDS * GEN_CAP` entries, ~1M series; each entry costs ~64 bytes plus its label set).
const GEN_CAP: usize = 1 << 15;
const SHARDS: usize = 16;

#[derive(Default)]
struct Gen {
    cur: HashMap<u128, (u64, Labels)>,
    prev: HashMap<u128, (u64, Labels)>,
}

/// Series refs of label sets seen in earlier requests, for one storage. Refs are only hints to the
/// [`Appender`] (a stale one falls back to the labels kept beside it), so the cache never makes a sample go to
/// the wrong series.
pub struct SeriesCache {
    shards: Box<[Mutex<Gen>]>,
}

impl Default for SeriesCache {
    fn default() -> Self {
        SeriesCache { shards: (0..SHARDS).map(|_| Mutex::new(Gen::default())).collect() }
    }
}

impl SeriesCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, key: u128) -> Option<(u64, Labels)> {
        let mut g = self.shards[key as usize % SHARDS].lock();
        if let Some(e) = g.cur.get(&key) {
            return Some(e.clone());
        }
        let e = g.prev.remove(&key)?;
        Self::put(&mut g, key, e.clone());
        Some(e)
    }

    fn insert(&self, key: u128, r: u64, labels: Labels) {
        Self::put(&mut self.shards[key as usize % SHARDS].lock(), key, (r, labels));
    }

    fn put(g: &mut Gen, key: u128, e: (u64, Labels)) {
        if g.cur.len() >= GEN_CAP && !g.cur.contains_key(&key) {
            g.prev = std::mem::take(&mut g.cur);
        }
        g.cur.insert(key, e);
    }

    /// Number of cached series.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| { let g = s.lock(); g.cur.len() + g.prev.len() }).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A bounds-checked protobuf cursor.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

fn malformed(what: &str) -> RemoteError {
    RemoteError::Malformed(what.to_string())
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cur { b, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn varint(&mut self) -> Result<u64, RemoteError> {
        let mut x = 0u64;
        for i in 0..10 {
            let Some(&c) = self.b.get(self.pos) else { return Err(malformed("truncated varint")) };
            self.pos += 1;
            x |= u64::from(c & 0x7f) << (7 * i);
            if c < 0x80 {
                return Ok(x);
            }
        }
        Err(malformed("varint overflow"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], RemoteError> {
        let n = self.varint()?;
        let end = usize::try_from(n).ok().and_then(|n| self.pos.checked_add(n)).filter(|&e| e <= self.b.len());
        let Some(end) = end else { return Err(malformed("length-delimited field beyond the message")) };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn fixed64(&mut self) -> Result<u64, RemoteError> {
        let Some(s) = self.b.get(self.pos..self.pos + 8) else { return Err(malformed("truncated fixed64")) };
        self.pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a tag: (field number, wire type).
    fn tag(&mut self) -> Result<(u64, u8), RemoteError> {
        let t = self.varint()?;
        if t >> 3 == 0 {
            return Err(malformed("field number 0"));
        }
        Ok((t >> 3, (t & 7) as u8))
    }

    fn skip(&mut self, wire: u8) -> Result<(), RemoteError> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.fixed64().map(|_| ()),
            2 => self.bytes().map(|_| ()),
            5 => {
                if self.pos + 4 > self.b.len() {
                    return Err(malformed("truncated fixed32"));
                }
                self.pos += 4;
                Ok(())
            }
            w => Err(malformed(&format!("unsupported wire type {w}"))),
        }
    }
}

fn utf8<'a>(b: &'a [u8], what: &str) -> Result<&'a str, RemoteError> {
    std::str::from_utf8(b).map_err(|_| malformed(&format!("invalid UTF-8 in {what}")))
}

/// One `TimeSeries` seen in place: its raw `Label` and `Sample` messages (in request order) and counts of what
/// is not stored. The vectors are reused across series.
struct SeriesView<'a> {
    labels: Vec<&'a [u8]>,
    samples: Vec<&'a [u8]>,
    exemplars: usize,
    histograms: usize,
}

fn view_series<'a>(msg: &'a [u8], v: &mut SeriesView<'a>) -> Result<(), RemoteError> {
    v.labels.clear();
    v.samples.clear();
    v.exemplars = 0;
    v.histograms = 0;
    let mut c = Cur::new(msg);
    while !c.done() {
        match c.tag()? {
            (1, 2) => v.labels.push(c.bytes()?),
            (2, 2) => v.samples.push(c.bytes()?),
            (3, 2) => {
                c.bytes()?;
                v.exemplars += 1;
            }
            (4, 2) => {
                c.bytes()?;
                v.histograms += 1;
            }
            (_, w) => c.skip(w)?,
        }
    }
    Ok(())
}

fn label_pair(msg: &[u8]) -> Result<(&str, &str), RemoteError> {
    let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
    let mut c = Cur::new(msg);
    while !c.done() {
        match c.tag()? {
            (1, 2) => name = c.bytes()?,
            (2, 2) => value = c.bytes()?,
            (_, w) => c.skip(w)?,
        }
    }
    Ok((utf8(name, "label name")?, utf8(value, "label value")?))
}

fn sample(msg: &[u8]) -> Result<(i64, f64), RemoteError> {
    let (mut t, mut v) = (0i64, 0f64);
    let mut c = Cur::new(msg);
    while !c.done() {
        match c.tag()? {
            (1, 1) => v = f64::from_bits(c.fixed64()?),
            (2, 0) => t = c.varint()? as i64,
            (_, w) => c.skip(w)?,
        }
    }
    Ok((t, v))
}

/// Validated labels from borrowed pairs (the rules of [`crate::labels_from_proto`]).
fn build_labels<'a>(raw: &[&'a [u8]], pairs: &mut Vec<(&'a str, &'a str)>) -> Result<Labels, String> {
    pairs.clear();
    if raw.is_empty() {
        return Err("empty label set".into());
    }
    for m in raw {
        let (n, v) = label_pair(m).map_err(|e| e.to_string())?;
        if !model::labels::is_valid_label_name(n) {
            return Err(format!("invalid label name {n:?}"));
        }
        if v.is_empty() {
            continue;
        }
        pairs.push((n, v));
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("duplicate label name {:?}", w[0].0));
    }
    if let Some((_, v)) = pairs.iter().find(|p| p.0 == model::METRIC_NAME) {
        if !model::labels::is_valid_metric_name(v) {
            return Err(format!("invalid metric name {v:?}"));
        }
    }
    Ok(Labels::from_sorted_unchecked(pairs.iter().copied()))
}

/// Cache key of a series: 128-bit hash of its raw label messages in request order (collisions are
/// astronomically unlikely; a colliding series would still keep its own labels through the stale-ref
/// fallback only if its ref were stale, so the width is chosen to make the question moot).
fn key(raw: &[&[u8]]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for m in raw {
        h.update(&(m.len() as u32).to_le_bytes());
        h.update(m);
    }
    h.digest128()
}

/// Decodes a snappy-decoded `WriteRequest` in place and appends it all-or-nothing, using and filling `cache`.
pub fn apply_write_raw(app: &mut dyn Appender, raw: &[u8], cache: &SeriesCache) -> Result<WriteStats, RemoteError> {
    let mut st = WriteStats::default();
    let mut fresh: Vec<(u128, u64, Labels)> = Vec::new();
    let res = (|| {
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(16);
        let mut v = SeriesView { labels: Vec::with_capacity(16), samples: Vec::with_capacity(4), exemplars: 0, histograms: 0 };
        let mut c = Cur::new(raw);
        let mut index = 0usize;
        while !c.done() {
            let (field, wire) = c.tag()?;
            if (field, wire) != (1, 2) {
                c.skip(wire)?; // metadata (3) and unknown fields
                continue;
            }
            view_series(c.bytes()?, &mut v)?;
            let k = key(&v.labels);
            let (mut r, labels, cached) = match cache.get(k) {
                Some((r, l)) => (r, l, true),
                None => {
                    let l = build_labels(&v.labels, &mut pairs)
                        .map_err(|reason| RemoteError::InvalidSeries { index, reason })?;
                    (0, l, false)
                }
            };
            if v.histograms > 0 {
                return Err(RemoteError::NativeHistogram(labels.to_string()));
            }
            let r0 = r;
            for s in &v.samples {
                let (t, val) = sample(s)?;
                r = app
                    .append(r, &labels, t, val)
                    .map_err(|reason| RemoteError::Append { labels: labels.to_string(), t, reason })?;
            }
            if (!cached || r != r0) && r != 0 {
                fresh.push((k, r, labels));
            }
            st.series += 1;
            st.samples += v.samples.len();
            st.exemplars_ignored += v.exemplars;
            index += 1;
        }
        Ok(())
    })();
    match res {
        Ok(()) => {
            app.commit()?;
            // Only after the commit: a rolled-back request teaches the cache nothing.
            for (k, r, l) in fresh {
                cache.insert(k, r, l);
            }
            Ok(st)
        }
        Err(e) => {
            app.rollback();
            Err(e)
        }
    }
}

/// Snappy-decodes a remote-write body (size-capped like [`crate::snappy_decode`]) and applies it with
/// [`apply_write_raw`]. `scratch` is the decode buffer, reused across calls by the caller.
pub fn apply_write_body(
    app: &mut dyn Appender,
    body: &[u8],
    cache: &SeriesCache,
    scratch: &mut Vec<u8>,
) -> Result<WriteStats, RemoteError> {
    let n = snap::raw::decompress_len(body).map_err(|e| RemoteError::Snappy(e.to_string()))?;
    if n > crate::MAX_DECODED_BYTES {
        return Err(RemoteError::TooLarge(n));
    }
    scratch.clear();
    scratch.resize(n, 0);
    let got = snap::raw::Decoder::new().decompress(body, scratch).map_err(|e| RemoteError::Snappy(e.to_string()))?;
    scratch.truncate(got);
    apply_write_raw(app, scratch, cache)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompb;
    use model::storage::{Queryable, Storage};
    use prost::Message;
    use proptest::prelude::*;

    fn label() -> impl Strategy<Value = prompb::Label> {
        // Small alphabets so duplicates, empty values, invalid names and repeated series all occur.
        (prop::sample::select(vec!["__name__", "job", "a", "b", "1bad", ""]), prop::sample::select(vec!["up", "x", "", "é", "9z"]))
            .prop_map(|(n, v)| prompb::Label { name: n.into(), value: v.into() })
    }

    fn series() -> impl Strategy<Value = prompb::TimeSeries> {
        (
            prop::collection::vec(label(), 0..4),
            prop::collection::vec((0i64..6, prop::sample::select(vec![0.0, 1.5, f64::NAN])), 0..4),
            0..8u8,
        )
            .prop_map(|(labels, samples, extra)| prompb::TimeSeries {
                labels,
                samples: samples.into_iter().map(|(t, v)| prompb::Sample { value: v, timestamp: t * 1000 }).collect(),
                exemplars: if extra == 1 { vec![prompb::Exemplar::default()] } else { vec![] },
                histograms: if extra == 2 { vec![prompb::Histogram::default()] } else { vec![] },
            })
    }

    fn outcome(r: Result<WriteStats, RemoteError>) -> Result<WriteStats, String> {
        r.map_err(|e| e.to_string())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Oracle: the prost path. Same outcome per request (stats or error text) and the same stored data,
        /// over a sequence of requests sharing one cache.
        #[test]
        fn equals_prost_path(reqs in prop::collection::vec(prop::collection::vec(series(), 0..5), 1..6)) {
            let (a, b) = (model::mem::MemStorage::new(), model::mem::MemStorage::new());
            let cache = SeriesCache::new();
            for ts in reqs {
                let req = prompb::WriteRequest { timeseries: ts, metadata: vec![] };
                let raw = req.encode_to_vec();
                let want = outcome(crate::apply_write(a.appender().as_mut(), &req));
                let got = outcome(apply_write_raw(b.appender().as_mut(), &raw, &cache));
                prop_assert_eq!(&got, &want);
                let (sa, sb) = (a.snapshot(), b.snapshot());
                prop_assert_eq!(sa.len(), sb.len());
                for ((la, va), (lb, vb)) in sa.iter().zip(sb.iter()) {
                    prop_assert_eq!(la, lb);
                    let bits = |v: &Vec<model::Sample>| v.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>();
                    prop_assert_eq!(bits(va), bits(vb));
                }
            }
        }

        /// Any bytes: an error or a result, never a panic.
        #[test]
        fn garbage_never_panics(raw in prop::collection::vec(any::<u8>(), 0..200)) {
            let s = model::mem::MemStorage::new();
            let _ = apply_write_raw(s.appender().as_mut(), &raw, &SeriesCache::new());
        }
    }

    #[test]
    fn malformed_and_truncated_bodies_are_errors() {
        let req = prompb::WriteRequest {
            timeseries: vec![prompb::TimeSeries {
                labels: vec![prompb::Label { name: "__name__".into(), value: "up".into() }],
                samples: vec![prompb::Sample { value: 1.0, timestamp: 5 }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let raw = req.encode_to_vec();
        let s = model::mem::MemStorage::new();
        for cut in 1..raw.len() {
            assert!(apply_write_raw(s.appender().as_mut(), &raw[..cut], &SeriesCache::new()).is_err(), "cut at {cut}");
        }
        assert!(s.snapshot().is_empty(), "nothing half-stored");
        let mut bad = raw.clone();
        let i = bad.iter().position(|&c| c == b'u').unwrap();
        bad[i] = 0xff; // invalid UTF-8 in the metric name
        let e = apply_write_raw(s.appender().as_mut(), &bad, &SeriesCache::new()).unwrap_err();
        assert!(e.is_client_error() && e.to_string().contains("UTF-8"), "{e}");
    }

    /// A cached ref that went stale (series removed from the head by a block cut) still stores into the right
    /// series, and the cache learns the new ref.
    #[test]
    fn stale_cached_refs_fall_back_to_labels() {
        const H: i64 = 3_600_000;
        let td = tempfile::tempdir().unwrap();
        let db = tsdb::Db::open_without_background(td.path(), Default::default()).unwrap();
        let cache = SeriesCache::new();
        let req = |name: &str, t: i64| {
            prompb::WriteRequest {
                timeseries: vec![prompb::TimeSeries {
                    labels: vec![prompb::Label { name: "__name__".into(), value: name.into() }],
                    samples: vec![prompb::Sample { value: t as f64, timestamp: t }],
                    ..Default::default()
                }],
                metadata: vec![],
            }
            .encode_to_vec()
        };
        apply_write_raw(db.appender().as_mut(), &req("a", 0), &cache).unwrap();
        apply_write_raw(db.appender().as_mut(), &req("a", H), &cache).unwrap();
        assert_eq!(cache.len(), 1);
        let before = cache.shards.iter().find_map(|s| s.lock().cur.values().next().map(|e| e.0)).unwrap();
        apply_write_raw(db.appender().as_mut(), &req("b", 3 * H), &cache).unwrap();
        db.flush_head_before(3 * H).unwrap(); // "a" has nothing left in the head: removed
        apply_write_raw(db.appender().as_mut(), &req("a", 4 * H), &cache).unwrap();
        let q = db.querier(0, 5 * H).unwrap();
        let m = model::Matcher::new(model::MatchOp::Equal, "__name__", "a").unwrap();
        let mut set = q.select(true, None, &[m]).unwrap();
        let s = set.next().unwrap().unwrap();
        let mut it = s.samples;
        let mut ts = Vec::new();
        while let Some(x) = it.next() {
            ts.push(x.t);
        }
        assert_eq!(ts, vec![0, H, 4 * H]);
        assert!(set.next().is_none());
        let after: Vec<u64> = cache.shards.iter().flat_map(|s| s.lock().cur.values().map(|e| e.0).collect::<Vec<_>>()).collect();
        println!("cached refs before {before}, after {after:?}");
    }
}
