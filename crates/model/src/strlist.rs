//! [`StrList`]: a sorted list of strings in one buffer, for label values. A label with thousands of values
//! (pods, instances) cost an allocation and a free per value per source when answered as `Vec<String>`; those
//! were about half of an `/api/v1/label/<name>/values` call.

/// Strings back to back in one buffer, with their end offsets.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct StrList {
    buf: String,
    ends: Vec<usize>,
}

impl std::fmt::Debug for StrList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl StrList {
    pub fn with_capacity(items: usize, bytes: usize) -> Self {
        StrList { buf: String::with_capacity(bytes), ends: Vec::with_capacity(items) }
    }

    pub fn push(&mut self, s: &str) {
        self.buf.push_str(s);
        self.ends.push(self.buf.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.buf[start..end])
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.ends.len()).map(move |i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.buf[start..self.ends[i]]
        })
    }

    /// Keeps the first `n` strings.
    pub fn truncate(&mut self, n: usize) {
        if n < self.ends.len() {
            self.buf.truncate(if n == 0 { 0 } else { self.ends[n - 1] });
            self.ends.truncate(n);
        }
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }

    fn is_sorted_unique(&self) -> bool {
        let mut prev: Option<&str> = None;
        self.iter().all(|s| {
            let ok = prev.is_none_or(|p| p < s);
            prev = Some(s);
            ok
        })
    }

    fn sorted_unique(self) -> StrList {
        if self.is_sorted_unique() {
            return self;
        }
        let mut v: Vec<&str> = self.iter().collect();
        v.sort_unstable();
        v.dedup();
        v.into_iter().collect()
    }

    /// Sorted union of sorted lists (one that is not sorted, e.g. from a remote source, is sorted first),
    /// merged in pairs, smallest first.
    pub fn merge_sorted(lists: Vec<StrList>) -> StrList {
        let mut lists: Vec<StrList> = lists.into_iter().filter(|l| !l.is_empty()).map(StrList::sorted_unique).collect();
        while lists.len() > 1 {
            lists.sort_unstable_by_key(|l| std::cmp::Reverse(l.len()));
            let (Some(a), Some(b)) = (lists.pop(), lists.pop()) else { break };
            lists.push(merge_two(&a, &b));
        }
        lists.pop().unwrap_or_default()
    }
}

fn merge_two(a: &StrList, b: &StrList) -> StrList {
    let mut out = StrList::with_capacity(a.len().max(b.len()), a.buf.len().max(b.buf.len()));
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.cmp(y) {
                std::cmp::Ordering::Less => out.push(a.next().unwrap_or_default()),
                std::cmp::Ordering::Greater => out.push(b.next().unwrap_or_default()),
                std::cmp::Ordering::Equal => {
                    out.push(a.next().unwrap_or_default());
                    b.next();
                }
            },
            (Some(_), None) => a.by_ref().for_each(|s| out.push(s)),
            (None, Some(_)) => b.by_ref().for_each(|s| out.push(s)),
            (None, None) => return out,
        }
    }
}

impl<'a> FromIterator<&'a str> for StrList {
    fn from_iter<I: IntoIterator<Item = &'a str>>(it: I) -> Self {
        let mut l = StrList::default();
        for s in it {
            l.push(s);
        }
        l
    }
}

impl From<Vec<String>> for StrList {
    fn from(v: Vec<String>) -> Self {
        let mut l = StrList::with_capacity(v.len(), v.iter().map(String::len).sum());
        for s in &v {
            l.push(s);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_get_truncate() {
        let mut l: StrList = ["", "a", "bc"].into_iter().collect();
        assert_eq!(l.len(), 3);
        assert_eq!(l.get(0), Some(""));
        assert_eq!(l.get(2), Some("bc"));
        assert_eq!(l.get(3), None);
        l.truncate(2);
        assert_eq!(l.to_vec(), vec!["", "a"]);
        l.push("z");
        assert_eq!(l.to_vec(), vec!["", "a", "z"]);
        l.truncate(0);
        assert!(l.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn merge_sorted_is_sorted_union(lists in proptest::collection::vec(
            proptest::collection::vec("[a-d]{0,3}", 0..20), 0..6)) {
            let mut want: Vec<String> = lists.iter().flatten().cloned().collect();
            want.sort();
            want.dedup();
            let inputs: Vec<StrList> = lists.into_iter().enumerate().map(|(i, mut l)| {
                if i % 3 != 2 {
                    l.sort();
                    l.dedup();
                }
                StrList::from(l)
            }).collect();
            proptest::prop_assert_eq!(StrList::merge_sorted(inputs).to_vec(), want);
        }
    }
}
