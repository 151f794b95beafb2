//! Postings (sorted series-id lists) and the matcher → postings planner shared by the head and blocks.
//!
//! Lists are sorted, duplicate-free `Vec<u32>`. The planner follows Prometheus's `PostingsForMatchers`:
//! matchers that accept the empty string (`a=""`, `a!="x"`, `a!~"x.*"`) also select series *without* the
//! label, so they are applied by subtracting the postings of the values they reject; the others are
//! intersected. With no "positive" matcher the start set is all postings.

use model::{MatchOp, Matcher, StorageError};

/// Intersection of two sorted lists (galloping when sizes differ a lot).
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.is_empty() {
        return out;
    }
    if large.len() / small.len() >= 16 {
        let mut lo = 0;
        for &x in small {
            lo += large[lo..].partition_point(|&y| y < x);
            if lo >= large.len() {
                break;
            }
            if large[lo] == x {
                out.push(x);
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Whether two sorted lists share an element: a linear merge for lists of similar size, binary searches
/// through the longer one when sizes differ a lot.
pub fn have_common(a: &[u32], b: &[u32]) -> bool {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if small.is_empty() {
        return false;
    }
    if large.len() / small.len() < 16 {
        let (mut i, mut j) = (0, 0);
        while i < small.len() && j < large.len() {
            match small[i].cmp(&large[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => return true,
            }
        }
        return false;
    }
    let mut lo = 0;
    for &x in small {
        lo += large[lo..].partition_point(|&y| y < x);
        match large.get(lo) {
            None => return false,
            Some(&y) if y == x => return true,
            Some(_) => {}
        }
    }
    false
}

/// Elements of `a` not in `b`.
pub fn difference(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

/// Union of many sorted lists.
pub fn union_many(mut lists: Vec<Vec<u32>>) -> Vec<u32> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists.pop().unwrap_or_default(),
        _ => {
            // Concatenate and sort: simpler than a heap merge and fast for the sizes seen per label.
            let total: usize = lists.iter().map(Vec::len).sum();
            let mut out = Vec::with_capacity(total);
            for l in &lists {
                out.extend_from_slice(l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// A set of series ids the planner can combine: sorted vectors for block indexes, roaring bitmaps for the
/// head (whose postings are bitmaps already; intersecting them container by container instead of expanding
/// every list to a vector first made head selects with large lists several times cheaper).
pub trait PostingsList: Sized {
    fn is_empty(&self) -> bool;
    /// `self ∩ other`.
    fn intersect(self, other: &Self) -> Self;
    /// `self \ other`.
    fn subtract(self, other: &Self) -> Self;
}

impl PostingsList for Vec<u32> {
    fn is_empty(&self) -> bool {
        <[u32]>::is_empty(self)
    }
    fn intersect(self, other: &Self) -> Self {
        intersect(&self, other)
    }
    fn subtract(self, other: &Self) -> Self {
        difference(&self, other)
    }
}

impl PostingsList for roaring::RoaringBitmap {
    fn is_empty(&self) -> bool {
        roaring::RoaringBitmap::is_empty(self)
    }
    fn intersect(mut self, other: &Self) -> Self {
        self &= other;
        self
    }
    fn subtract(mut self, other: &Self) -> Self {
        self -= other;
        self
    }
}

/// What an index must answer for the planner.
pub trait PostingsIndex {
    type List: PostingsList;
    /// Every series id.
    fn all_postings(&self) -> Result<Self::List, StorageError>;
    /// Union of the postings of `name`'s values `v` with `pred(v)`. `values_hint`, when given, lists the only
    /// values that can match (exact lookups instead of a scan); `prefix` narrows a scan to values with it.
    fn postings_for_values(
        &self,
        name: &str,
        values_hint: Option<&[String]>,
        prefix: Option<&str>,
        pred: &dyn Fn(&str) -> bool,
    ) -> Result<Self::List, StorageError>;

    /// `acc ∩` [`Self::postings_for_values`] (`acc` `None`: no restriction yet). An index whose lists are
    /// in memory intersects `acc` with them in place instead of copying them out first.
    fn intersect_values(
        &self,
        acc: Option<Self::List>,
        name: &str,
        values_hint: Option<&[String]>,
        prefix: Option<&str>,
        pred: &dyn Fn(&str) -> bool,
    ) -> Result<Self::List, StorageError> {
        let p = self.postings_for_values(name, values_hint, prefix, pred)?;
        Ok(match acc {
            None => p,
            Some(a) => a.intersect(&p),
        })
    }
}

/// `acc ∩` the postings of `m`'s accepted values.
fn intersect_matching<I: PostingsIndex + ?Sized>(
    ix: &I,
    acc: Option<I::List>,
    m: &Matcher,
) -> Result<I::List, StorageError> {
    if let Some(set) = m.set_matches() {
        return ix.intersect_values(acc, &m.name, Some(set), None, &|v| m.matches(v));
    }
    ix.intersect_values(acc, &m.name, None, m.prefix(), &|v| m.matches(v))
}

/// Postings of `m`'s accepted values (not counting series without the label).
fn postings_matching<I: PostingsIndex + ?Sized>(ix: &I, m: &Matcher) -> Result<I::List, StorageError> {
    intersect_matching(ix, None, m)
}

/// Postings of the values `m` rejects (for matchers that accept "").
fn postings_rejected<I: PostingsIndex + ?Sized>(ix: &I, m: &Matcher) -> Result<I::List, StorageError> {
    match m.op {
        // a!="x" rejects exactly x; a="" rejects every non-empty value.
        MatchOp::NotEqual => ix.postings_for_values(&m.name, Some(std::slice::from_ref(&m.value)), None, &|_| true),
        MatchOp::NotRegex => {
            // a!~"x|y" rejects exactly the set the regex accepts.
            let inner = Matcher::new(MatchOp::Regex, m.name.clone(), m.value.clone())
                .map_err(|e| StorageError::Other(e.to_string()))?;
            postings_matching(ix, &inner)
        }
        _ => ix.postings_for_values(&m.name, None, None, &|v| !m.matches(v)),
    }
}

/// Series ids matching all matchers.
pub fn postings_for_matchers<I: PostingsIndex + ?Sized>(ix: &I, ms: &[Matcher]) -> Result<I::List, StorageError> {
    let mut result: Option<I::List> = None;
    let mut subtract: Vec<&Matcher> = Vec::new();
    // Matchers that match everything (`a=~".*"`) restrict nothing.
    let ms: Vec<&Matcher> = ms.iter().filter(|m| !m.matches_everything()).collect();
    for m in &ms {
        if m.matches("") {
            subtract.push(m);
            continue;
        }
        let r = intersect_matching(ix, result.take(), m)?;
        if r.is_empty() {
            return Ok(r);
        }
        result = Some(r);
    }
    let mut r = match result {
        Some(r) => r,
        None => ix.all_postings()?,
    };
    for m in subtract {
        if r.is_empty() {
            break;
        }
        let rej = postings_rejected(ix, m)?;
        r = r.subtract(&rej);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn naive_intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
        let s: BTreeSet<u32> = b.iter().copied().collect();
        a.iter().copied().filter(|x| s.contains(x)).collect()
    }

    /// A toy index: series id → labels.
    struct Toy(BTreeMap<u32, BTreeMap<String, String>>);

    impl PostingsIndex for Toy {
        type List = Vec<u32>;
        fn all_postings(&self) -> Result<Vec<u32>, StorageError> {
            Ok(self.0.keys().copied().collect())
        }
        fn postings_for_values(
            &self,
            name: &str,
            hint: Option<&[String]>,
            prefix: Option<&str>,
            pred: &dyn Fn(&str) -> bool,
        ) -> Result<Vec<u32>, StorageError> {
            Ok(self
                .0
                .iter()
                .filter(|(_, l)| {
                    l.get(name).is_some_and(|v| {
                        hint.is_none_or(|h| h.iter().any(|x| x == v))
                            && prefix.is_none_or(|p| v.starts_with(p))
                            && pred(v)
                    })
                })
                .map(|(id, _)| *id)
                .collect())
        }
    }

    /// The toy index answering with bitmaps, as the head does.
    struct ToyBitmap<'a>(&'a Toy);

    impl PostingsIndex for ToyBitmap<'_> {
        type List = roaring::RoaringBitmap;
        fn all_postings(&self) -> Result<roaring::RoaringBitmap, StorageError> {
            Ok(self.0.all_postings()?.into_iter().collect())
        }
        fn postings_for_values(
            &self,
            name: &str,
            hint: Option<&[String]>,
            prefix: Option<&str>,
            pred: &dyn Fn(&str) -> bool,
        ) -> Result<roaring::RoaringBitmap, StorageError> {
            Ok(self.0.postings_for_values(name, hint, prefix, pred)?.into_iter().collect())
        }
    }

    proptest! {
        #[test]
        fn set_ops_match_naive(a in proptest::collection::btree_set(0u32..2000, 0..300),
                               b in proptest::collection::btree_set(0u32..2000, 0..30)) {
            let a: Vec<u32> = a.into_iter().collect();
            let b: Vec<u32> = b.into_iter().collect();
            prop_assert_eq!(intersect(&a, &b), naive_intersect(&a, &b));
            prop_assert_eq!(intersect(&b, &a), naive_intersect(&b, &a));
            prop_assert_eq!(have_common(&a, &b), !naive_intersect(&a, &b).is_empty());
            prop_assert_eq!(have_common(&b, &a), !naive_intersect(&a, &b).is_empty());
            let d: Vec<u32> = a.iter().copied().filter(|x| !b.contains(x)).collect();
            prop_assert_eq!(difference(&a, &b), d);
            let mut u: Vec<u32> = a.iter().chain(b.iter()).copied().collect::<BTreeSet<_>>().into_iter().collect();
            prop_assert_eq!(union_many(vec![a.clone(), b.clone()]), std::mem::take(&mut u));
        }

        #[test]
        fn planner_matches_naive_filter(
            series in proptest::collection::vec(proptest::collection::btree_map("[ab]", "[xyz]{0,2}", 0..3), 1..40),
            ms in proptest::collection::vec((0usize..4, "[ab]", "[xyz]{0,2}|[xyz]\\.\\*|\\.\\*|[xy]\\|z"), 1..3)) {
            let toy = Toy(series.into_iter().enumerate().map(|(i, l)| (i as u32 * 3, l)).collect());
            let ops = [MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex];
            let matchers: Vec<Matcher> = ms.iter().map(|(op, n, v)| Matcher::new(ops[*op], n.clone(), v.clone()).unwrap()).collect();
            let got = postings_for_matchers(&toy, &matchers).unwrap();
            let want: Vec<u32> = toy.0.iter()
                .filter(|(_, l)| matchers.iter().all(|m| m.matches(l.get(&m.name).map(String::as_str).unwrap_or(""))))
                .map(|(id, _)| *id).collect();
            let got_bitmap: Vec<u32> = postings_for_matchers(&ToyBitmap(&toy), &matchers).unwrap().iter().collect();
            prop_assert_eq!(&got, &want, "matchers {:?}", matchers);
            prop_assert_eq!(got_bitmap, want, "matchers {:?} (bitmaps)", matchers);
        }
    }
}
