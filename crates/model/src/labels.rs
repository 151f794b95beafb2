//! Label sets as one compact, cheaply cloned value.
//!
//! A [`Labels`] holds its sorted `(name, value)` pairs in a single shared allocation: each string is stored as a
//! LEB128 length followed by its UTF-8 bytes, names and values alternating, pairs sorted by name with no
//! duplicate names. Cloning is a reference-count increment. Because the encoding is canonical, equality and
//! hashing work on the bytes; ordering follows Prometheus (pairwise by name, then value, then length).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// A borrowed label pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// An immutable, sorted label set in one allocation. See the module docs for the encoding.
#[derive(Clone)]
pub struct Labels {
    buf: Arc<[u8]>,
}

fn empty_buf() -> Arc<[u8]> {
    static EMPTY: std::sync::OnceLock<Arc<[u8]>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::from(&[][..])).clone()
}

#[inline]
fn put_str(dst: &mut Vec<u8>, s: &str) {
    let mut n = s.len() as u64;
    while n >= 0x80 {
        dst.push((n as u8) | 0x80);
        n >>= 7;
    }
    dst.push(n as u8);
    dst.extend_from_slice(s.as_bytes());
}

/// Reads one length-prefixed string at `*pos`. The buffer was built by this module from `&str`s, so the bytes
/// are valid UTF-8 and the lengths in range.
#[inline]
fn get_str<'a>(buf: &'a [u8], pos: &mut usize) -> &'a str {
    let mut n: usize = 0;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    let s = &buf[*pos..*pos + n];
    *pos += n;
    debug_assert!(std::str::from_utf8(s).is_ok(), "BUG: Labels buffer holds invalid UTF-8");
    // SAFETY: `buf` is private to `Labels` and only ever filled by `put_str` from `&str`s, and `n` is the
    // length `put_str` wrote, so `s` is exactly one of those strings. A profile of /federate over 100k series
    // showed validating it here (`from_utf8`) costing 30% of the request.
    unsafe { std::str::from_utf8_unchecked(s) }
}

/// Iterator over the pairs of a [`Labels`].
#[derive(Clone)]
pub struct Iter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Label<'a>;
    #[inline]
    fn next(&mut self) -> Option<Label<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let name = get_str(self.buf, &mut self.pos);
        let value = get_str(self.buf, &mut self.pos);
        Some(Label { name, value })
    }
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Labels {
        Labels { buf: empty_buf() }
    }

    /// Builds from unsorted pairs. If a name repeats, the last value wins. Empty values are kept here; use a
    /// [`LabelsBuilder`] to get Prometheus's "empty value means absent" rule.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Labels {
        let mut v: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref())).collect();
        // Stable sort keeps input order among equal names so "last wins" below is well defined.
        v.sort_by(|a, b| a.0.cmp(b.0));
        let mut out: Vec<(&str, &str)> = Vec::with_capacity(v.len());
        for p in v {
            match out.last_mut() {
                Some(last) if last.0 == p.0 => *last = p,
                _ => out.push(p),
            }
        }
        Self::from_sorted_unchecked(out.iter().copied())
    }

    /// Builds from pairs already sorted by name with unique names. Debug builds check the order.
    pub fn from_sorted_unchecked<'a, I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Labels {
        // One scratch allocation big enough for typical label sets (the result is copied into the Arc anyway);
        // growing from empty cost ~7 reallocations per set in query profiles.
        let mut buf = Vec::with_capacity(256);
        let mut prev: Option<&str> = None;
        for (n, v) in pairs {
            debug_assert!(prev.is_none_or(|p| p < n), "BUG: labels not sorted/unique: {prev:?} then {n:?}");
            prev = Some(n);
            put_str(&mut buf, n);
            put_str(&mut buf, v);
        }
        if buf.is_empty() {
            return Labels::empty();
        }
        Labels { buf: Arc::from(buf) }
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: &self.buf, pos: 0 }
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        for l in self.iter() {
            match l.name.cmp(name) {
                Ordering::Equal => return Some(l.value),
                Ordering::Greater => return None,
                Ordering::Less => {}
            }
        }
        None
    }

    /// The value of `name`, or "" when absent (Prometheus's `Labels.Get`).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Bytes used by the encoded pairs (not counting the shared header).
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// A stable 64-bit hash of the whole set (xxh3 over the canonical encoding). Stable across processes and
    /// versions of ignis that keep this encoding; used for sharding and scrape offsets.
    pub fn stable_hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&self.buf)
    }

    /// Hash of only the named labels (`on(...)`/`by(...)`); `names` must be sorted. Uses `scratch` to avoid
    /// allocating per call.
    pub fn hash_for_labels(&self, names: &[impl AsRef<str>], scratch: &mut Vec<u8>) -> u64 {
        scratch.clear();
        let mut i = 0;
        for l in self.iter() {
            while i < names.len() && names[i].as_ref() < l.name {
                i += 1;
            }
            if i == names.len() {
                break;
            }
            if names[i].as_ref() == l.name {
                put_str(scratch, l.name);
                put_str(scratch, l.value);
            }
        }
        xxhash_rust::xxh3::xxh3_64(scratch)
    }

    /// Hash of all labels except the named ones and `__name__` (`ignoring(...)`/`without(...)`); `names` sorted.
    pub fn hash_without_labels(&self, names: &[impl AsRef<str>], scratch: &mut Vec<u8>) -> u64 {
        scratch.clear();
        let mut i = 0;
        for l in self.iter() {
            while i < names.len() && names[i].as_ref() < l.name {
                i += 1;
            }
            if l.name == METRIC_NAME || (i < names.len() && names[i].as_ref() == l.name) {
                continue;
            }
            put_str(scratch, l.name);
            put_str(scratch, l.value);
        }
        xxhash_rust::xxh3::xxh3_64(scratch)
    }

    /// A copy without `__name__`.
    pub fn without_metric_name(&self) -> Labels {
        if !self.has(METRIC_NAME) {
            return self.clone();
        }
        Labels::from_sorted_unchecked(self.iter().filter(|l| l.name != METRIC_NAME).map(|l| (l.name, l.value)))
    }

    /// A builder seeded with this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder::from(self)
    }

    /// Pairs as owned strings (for tests and non-hot paths).
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect()
    }
}

impl Default for Labels {
    fn default() -> Self {
        Labels::empty()
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf) || self.buf[..] == other.buf[..]
    }
}
impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.buf[..].hash(state)
    }
}

impl Ord for Labels {
    /// Prometheus's `labels.Compare`: pairwise by name, then by value; a prefix sorts first.
    fn cmp(&self, other: &Self) -> Ordering {
        let mut a = self.iter();
        let mut b = other.iter();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => {
                    let c = x.name.cmp(y.name).then_with(|| x.value.cmp(y.value));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
            }
        }
    }
}
impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Labels {
    /// Prometheus's `Labels.String()`: `{a="1", b="2"}` with Go-style escaping of values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}=\"", l.name)?;
            write_escaped(f, l.value)?;
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Writes `s` with `\\`, `\"` and `\n` escaped, as Prometheus quotes label values.
pub fn write_escaped(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            '\n' => f.write_str("\\n")?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

impl<'a> IntoIterator for &'a Labels {
    type Item = Label<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Mutable label set for relabeling and evaluation. Setting an empty value deletes the label, as in
/// Prometheus's `labels.Builder`.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    pairs: Vec<(String, String)>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reset(&mut self, base: &Labels) {
        self.pairs.clear();
        self.pairs.extend(base.iter().map(|l| (l.name.to_string(), l.value.to_string())));
    }

    /// Replaces the contents with `pairs`, which must be sorted by name with unique names (debug builds
    /// check). Unlike [`LabelsBuilder::reset`] it takes plain string pairs (e.g. freshly parsed ones) and
    /// reuses the builder's existing string buffers, so a builder kept across calls allocates only when a
    /// label outgrows its slot. Empty values are kept, as with `reset`.
    pub fn reset_sorted<'a, I: IntoIterator<Item = (&'a str, &'a str)>>(&mut self, pairs: I) {
        let mut n = 0;
        for (name, value) in pairs {
            debug_assert!(
                n == 0 || self.pairs[n - 1].0.as_str() < name,
                "BUG: reset_sorted pairs not sorted/unique at {name:?}"
            );
            if let Some(slot) = self.pairs.get_mut(n) {
                slot.0.clear();
                slot.0.push_str(name);
                slot.1.clear();
                slot.1.push_str(value);
            } else {
                self.pairs.push((name.to_string(), value.to_string()));
            }
            n += 1;
        }
        self.pairs.truncate(n);
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.binary_search_by(|p| p.0.as_str().cmp(name)).ok().map(|i| self.pairs[i].1.as_str())
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        match self.pairs.binary_search_by(|p| p.0.as_str().cmp(name)) {
            Ok(i) => {
                if value.is_empty() {
                    self.pairs.remove(i);
                } else {
                    self.pairs[i].1.clear();
                    self.pairs[i].1.push_str(value);
                }
            }
            Err(i) => {
                if !value.is_empty() {
                    self.pairs.insert(i, (name.to_string(), value.to_string()));
                }
            }
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        if let Ok(i) = self.pairs.binary_search_by(|p| p.0.as_str().cmp(name)) {
            self.pairs.remove(i);
        }
        self
    }

    /// Keeps only labels for which `f(name, value)` is true.
    pub fn retain(&mut self, mut f: impl FnMut(&str, &str) -> bool) -> &mut Self {
        self.pairs.retain(|(n, v)| f(n, v));
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn build(&self) -> Labels {
        Labels::from_sorted_unchecked(self.iter())
    }
}

impl From<&Labels> for LabelsBuilder {
    fn from(l: &Labels) -> Self {
        let mut b = LabelsBuilder::new();
        b.reset(l);
        b
    }
}

/// Legacy (pre-UTF-8) label name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Metric name rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// `labels!{"a" => "1", "b" => "2"}` builds a [`Labels`] (for tests).
#[macro_export]
macro_rules! labels {
    ($($n:expr => $v:expr),* $(,)?) => {
        $crate::Labels::from_pairs(&[$(($n, $v)),*])
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reset_sorted_reuses_and_matches_reset() {
        let mut b = LabelsBuilder::new();
        b.reset_sorted([("__name__", "up"), ("a", ""), ("job", "x")]);
        assert_eq!(b.build(), Labels::from_sorted_unchecked([("__name__", "up"), ("a", ""), ("job", "x")]));
        // Shorter second set: old slots beyond it are gone; result equals `reset` from the same labels.
        b.set("zz", "1");
        b.reset_sorted([("b", "2")]);
        assert_eq!(b.build(), labels! {"b" => "2"});
        let mut r = LabelsBuilder::new();
        r.reset(&labels! {"b" => "2"});
        assert_eq!(b.build(), r.build());
        b.reset_sorted(std::iter::empty());
        assert!(b.is_empty());
    }

    #[test]
    fn sorted_and_last_wins() {
        let l = Labels::from_pairs(&[("b", "2"), ("a", "1"), ("b", "3")]);
        assert_eq!(l.to_string(), r#"{a="1", b="3"}"#);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn ordering_matches_prometheus() {
        let a = labels! {"a" => "1"};
        let ab = labels! {"a" => "1", "b" => "1"};
        let a2 = labels! {"a" => "2"};
        assert!(a < ab);
        assert!(ab < a2);
        assert!(Labels::empty() < a);
    }

    #[test]
    fn builder_empty_value_deletes() {
        let l = labels! {"a" => "1", "b" => "2"};
        let mut b = l.builder();
        b.set("a", "").set("c", "3");
        assert_eq!(b.build(), labels! {"b" => "2", "c" => "3"});
    }

    #[test]
    fn long_strings_roundtrip() {
        let v = "x".repeat(300);
        let l = labels! {"__name__" => "m", "k" => v.as_str()};
        assert_eq!(l.get("k"), Some(v.as_str()));
        assert_eq!(l.metric_name(), Some("m"));
    }

    #[test]
    fn hashes_on_subsets() {
        let mut s = Vec::new();
        let a = labels! {"__name__" => "x", "a" => "1", "b" => "2"};
        let b = labels! {"__name__" => "y", "a" => "1", "b" => "3"};
        assert_eq!(a.hash_for_labels(&["a"], &mut s), b.hash_for_labels(&["a"], &mut s));
        assert_ne!(a.hash_for_labels(&["a", "b"], &mut s), b.hash_for_labels(&["a", "b"], &mut s));
        assert_eq!(a.hash_without_labels(&["b"], &mut s), b.hash_without_labels(&["b"], &mut s));
    }

    proptest! {
        #[test]
        fn roundtrip_and_order(pairs in proptest::collection::btree_map("[a-z_]{1,8}", ".{0,20}", 0..8),
                               other in proptest::collection::btree_map("[a-z_]{1,8}", ".{0,20}", 0..8)) {
            let p: Vec<(String, String)> = pairs.clone().into_iter().collect();
            let l = Labels::from_pairs(&p);
            prop_assert_eq!(l.to_pairs(), p.clone());
            let q: Vec<(String, String)> = other.into_iter().collect();
            let m = Labels::from_pairs(&q);
            prop_assert_eq!(l.cmp(&m), p.cmp(&q));
            prop_assert_eq!(l == m, p == q);
        }
    }
}
