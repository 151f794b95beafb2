//! Label matchers (`=`, `!=`, `=~`, `!~`) with Prometheus's fully anchored RE2 semantics.
//!
//! A regex `r` matches as `^(?s:r)$` (dot matches newline, as Prometheus since 2.x). Common shapes are matched
//! without running the regex engine: literal alternations (`a|b|c`), `prefix.*`, `.*`, `.+`, and plain literals.
//! A property test checks every fast path against the regex itself.

use regex_syntax::hir::{Class, Hir, HirKind, Literal};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    #[error("invalid regular expression {pattern:?}: {source}")]
    BadRegex {
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
}

/// How a regex is evaluated; chosen once at construction.
#[derive(Clone)]
enum Fast {
    /// `.*`
    Any,
    /// `.+`
    NonEmpty,
    /// Alternation of literals (a single literal is a set of one); sorted for binary search when large.
    Set(Vec<String>),
    /// `lit.*`
    Prefix(String),
    /// Everything else.
    Re(regex::Regex),
}

#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub op: MatchOp,
    fast: Option<Fast>,
}

impl Matcher {
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Matcher, MatcherError> {
        let name = name.into();
        let value = value.into();
        let fast = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(compile(&value)?),
            _ => None,
        };
        Ok(Matcher { name, value, op, fast })
    }

    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher { name: name.into(), value: value.into(), op: MatchOp::Equal, fast: None }
    }

    /// Whether `v` (the label's value, "" when absent) satisfies the matcher.
    #[inline]
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.re_matches(v),
            MatchOp::NotRegex => !self.re_matches(v),
        }
    }

    fn re_matches(&self, v: &str) -> bool {
        match &self.fast {
            Some(Fast::Any) => true,
            Some(Fast::NonEmpty) => !v.is_empty(),
            Some(Fast::Set(s)) => {
                if s.len() <= 8 {
                    s.iter().any(|x| x == v)
                } else {
                    s.binary_search_by(|x| x.as_str().cmp(v)).is_ok()
                }
            }
            Some(Fast::Prefix(p)) => v.starts_with(p.as_str()),
            Some(Fast::Re(r)) => r.is_match(v),
            None => unreachable!("BUG: regex matcher without compiled form"),
        }
    }

    /// If the matcher accepts exactly a finite set of values, that set (for postings lookups). `=` gives one
    /// value; `=~"a|b"` gives two.
    pub fn set_matches(&self) -> Option<&[String]> {
        match (&self.op, &self.fast) {
            (MatchOp::Equal, _) => Some(std::slice::from_ref(&self.value)),
            (MatchOp::Regex, Some(Fast::Set(s))) => Some(s),
            _ => None,
        }
    }

    /// The literal prefix every matching value has, if the regex is `prefix.*` (for postings lookups).
    pub fn prefix(&self) -> Option<&str> {
        match (&self.op, &self.fast) {
            (MatchOp::Regex, Some(Fast::Prefix(p))) => Some(p),
            _ => None,
        }
    }

    /// True for `=~".*"` / `!~""`-like matchers that accept every value including absence.
    pub fn matches_everything(&self) -> bool {
        matches!((&self.op, &self.fast), (MatchOp::Regex, Some(Fast::Any)))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        crate::labels::write_escaped(f, &self.value)?;
        f.write_str("\"")
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value && self.op == other.op
    }
}

fn compile(pattern: &str) -> Result<Fast, MatcherError> {
    // Go's RE2 classes (\d \s \w \b) are ASCII; see goregex.
    let go = crate::goregex::translate(pattern);
    let anchored = format!("^(?s:{go})$");
    let re = regex::Regex::new(&anchored)
        .map_err(|e| MatcherError::BadRegex { pattern: pattern.to_string(), source: Box::new(e) })?;
    let hir = regex_syntax::ParserBuilder::new().dot_matches_new_line(true).build().parse(&go);
    Ok(match hir {
        Ok(h) => analyse(&h).unwrap_or(Fast::Re(re)),
        Err(_) => Fast::Re(re),
    })
}

fn literal_str(lit: &Literal) -> Option<String> {
    std::str::from_utf8(&lit.0).ok().map(str::to_string)
}

/// `.` with dot-matches-newline: a class covering every scalar value.
fn is_any_char(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Class(Class::Unicode(c)) => {
            let r = c.ranges();
            r.len() == 2 && r[0].start() == '\0' && r[0].end() == '\u{D7FF}' && r[1].start() == '\u{E000}'
                && r[1].end() == '\u{10FFFF}'
                || r.len() == 1 && r[0].start() == '\0' && r[0].end() == '\u{10FFFF}'
        }
        _ => false,
    }
}

fn is_star(h: &Hir, min: u32) -> bool {
    match h.kind() {
        HirKind::Repetition(r) => r.min == min && r.max.is_none() && is_any_char(&r.sub),
        HirKind::Capture(c) => is_star(&c.sub, min),
        _ => false,
    }
}

fn as_literal(h: &Hir) -> Option<String> {
    match h.kind() {
        HirKind::Literal(l) => literal_str(l),
        HirKind::Empty => Some(String::new()),
        HirKind::Capture(c) => as_literal(&c.sub),
        _ => None,
    }
}

/// A small character class (`[abc]`, or `a|b|c` which the parser turns into one) as a set of strings.
fn small_class(h: &Hir) -> Option<Vec<String>> {
    match h.kind() {
        HirKind::Class(Class::Unicode(c)) => {
            let n: u32 = c.ranges().iter().map(|r| r.end() as u32 - r.start() as u32 + 1).sum();
            if n > 16 {
                return None;
            }
            Some(c.ranges().iter().flat_map(|r| (r.start()..=r.end()).map(|ch| ch.to_string())).collect())
        }
        HirKind::Capture(c) => small_class(&c.sub),
        _ => None,
    }
}

fn analyse(h: &Hir) -> Option<Fast> {
    if let Some(set) = small_class(h) {
        return Some(Fast::Set(set));
    }
    if is_star(h, 0) {
        return Some(Fast::Any);
    }
    if is_star(h, 1) {
        return Some(Fast::NonEmpty);
    }
    if let Some(l) = as_literal(h) {
        return Some(Fast::Set(vec![l]));
    }
    match h.kind() {
        HirKind::Capture(c) => analyse(&c.sub),
        HirKind::Alternation(alts) => {
            let mut set = Vec::with_capacity(alts.len());
            for a in alts {
                match as_literal(a) {
                    Some(l) => set.push(l),
                    None => set.extend(small_class(a)?),
                }
            }
            set.sort();
            set.dedup();
            Some(Fast::Set(set))
        }
        HirKind::Concat(parts) if parts.len() == 2 && is_star(&parts[1], 0) => {
            as_literal(&parts[0]).map(Fast::Prefix)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "x", v).unwrap()
    }

    #[test]
    fn anchored_semantics() {
        let re = m(MatchOp::Regex, "foo");
        assert!(re.matches("foo"));
        assert!(!re.matches("foobar"));
        assert!(!re.matches("afoo"));
        let alt = m(MatchOp::Regex, "a|b");
        assert!(alt.matches("a") && alt.matches("b") && !alt.matches("ab"));
        assert!(m(MatchOp::Regex, ".*").matches("any\nthing"));
        assert!(m(MatchOp::Regex, "a.b").matches("a\nb"));
        assert!(!m(MatchOp::Regex, ".+").matches(""));
        assert!(m(MatchOp::NotRegex, "a.*").matches("ba"));
        assert!(!m(MatchOp::NotRegex, "a.*").matches("ab"));
        assert_eq!(m(MatchOp::Regex, "b|a|c").set_matches().unwrap(), ["a", "b", "c"]);
        assert_eq!(m(MatchOp::Regex, "pre.*").prefix(), Some("pre"));
        assert!(m(MatchOp::Regex, "(?i)FOO").matches("foo"));
        // Go's RE2: perl classes are ASCII.
        assert!(m(MatchOp::Regex, r"\d+").matches("42") && !m(MatchOp::Regex, r"\d+").matches("٤٢"));
        assert!(!m(MatchOp::Regex, r"\w+").matches("café"));
        assert!(m(MatchOp::NotRegex, r"[\w.]+").matches("é"));
    }

    #[test]
    fn bad_regex_is_an_error() {
        let e = Matcher::new(MatchOp::Regex, "x", "a(").unwrap_err();
        assert!(e.to_string().contains("a("), "{e}");
    }

    proptest! {
        #[test]
        fn fast_paths_agree_with_regex(pat in prop_oneof![
                Just(".*".to_string()), Just(".+".to_string()), "[a-c]{0,3}", "[a-c]{1,2}\\|[a-c]{0,2}",
                "[a-c]{1,2}\\.\\*", "\\(\\?:[a-c]\\|[a-c]{2}\\)", "[a-c]{1,2}\\.\\+"],
            v in "[a-c\n]{0,4}") {
            let fast = m(MatchOp::Regex, &pat);
            let re = regex::Regex::new(&format!("^(?s:{pat})$")).unwrap();
            prop_assert_eq!(fast.matches(&v), re.is_match(&v), "pattern {:?} value {:?}", pat, v);
        }
    }
}
