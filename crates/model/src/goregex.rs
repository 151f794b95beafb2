//! Go RE2 semantics on top of Rust's `regex`: in Go, `\d`, `\s`, `\w` and `\b` are ASCII-only
//! (`\s` is `[\t\n\f\r ]`, no `\v`), in Rust they are Unicode-aware. Prometheus users' matchers and relabel
//! regexes are written against Go, so `\d` must not match `٣` and `\w` must not match `é`.
//!
//! [`translate`] rewrites a pattern's Perl classes and word-boundary assertions into explicit ASCII
//! equivalents, using regex-syntax's AST spans so escapes, classes and comments are understood, not guessed.
//! Everything else is left byte for byte as written.
//!
//! This file is shared by `model` (label matchers) and `config` (relabel regexes) through a `#[path]`
//! module include, so the translation lives in one place without widening `model`'s public API.

use regex_syntax::ast::{self, Ast, ClassPerlKind, ClassSet, ClassSetItem};

/// The pattern with Go's ASCII meaning of `\d \D \s \S \w \W \b \B`. A pattern that does not parse is
/// returned unchanged so the regex compiler reports the error against the user's text.
pub(crate) fn translate(pattern: &str) -> std::borrow::Cow<'_, str> {
    // Fast exit: no backslash, nothing to translate (the common case: literals, alternations, `.*`).
    if !pattern.contains('\\') {
        return std::borrow::Cow::Borrowed(pattern);
    }
    let Ok(ast) = ast::parse::Parser::new().parse(pattern) else {
        return std::borrow::Cow::Borrowed(pattern);
    };
    let mut edits: Vec<(usize, usize, &'static str)> = Vec::new();
    walk(&ast, &mut edits);
    if edits.is_empty() {
        return std::borrow::Cow::Borrowed(pattern);
    }
    edits.sort_unstable_by_key(|e| e.0);
    let mut out = String::with_capacity(pattern.len() + edits.len() * 12);
    let mut at = 0;
    for (start, end, rep) in edits {
        out.push_str(&pattern[at..start]);
        out.push_str(rep);
        at = end;
    }
    out.push_str(&pattern[at..]);
    std::borrow::Cow::Owned(out)
}

/// Replacement text for a Perl class. The bracketed form also works nested inside another class
/// (`[\w.]` becomes `[[0-9A-Za-z_].]`), which Rust's syntax allows.
fn perl(kind: &ClassPerlKind, negated: bool) -> &'static str {
    match (kind, negated) {
        (ClassPerlKind::Digit, false) => "[0-9]",
        (ClassPerlKind::Digit, true) => "[^0-9]",
        (ClassPerlKind::Space, false) => r"[\t\n\f\r ]",
        (ClassPerlKind::Space, true) => r"[^\t\n\f\r ]",
        (ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
        (ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
    }
}

fn walk(a: &Ast, edits: &mut Vec<(usize, usize, &'static str)>) {
    match a {
        Ast::ClassPerl(c) => edits.push((c.span.start.offset, c.span.end.offset, perl(&c.kind, c.negated))),
        Ast::Assertion(x) => {
            let rep = match x.kind {
                ast::AssertionKind::WordBoundary => r"(?-u:\b)",
                ast::AssertionKind::NotWordBoundary => r"(?-u:\B)",
                _ => return,
            };
            edits.push((x.span.start.offset, x.span.end.offset, rep));
        }
        Ast::ClassBracketed(b) => walk_set(&b.kind, edits),
        Ast::Repetition(r) => walk(&r.ast, edits),
        Ast::Group(g) => walk(&g.ast, edits),
        Ast::Alternation(x) => x.asts.iter().for_each(|a| walk(a, edits)),
        Ast::Concat(x) => x.asts.iter().for_each(|a| walk(a, edits)),
        _ => {}
    }
}

fn walk_set(s: &ClassSet, edits: &mut Vec<(usize, usize, &'static str)>) {
    match s {
        ClassSet::Item(i) => walk_item(i, edits),
        ClassSet::BinaryOp(op) => {
            walk_set(&op.lhs, edits);
            walk_set(&op.rhs, edits);
        }
    }
}

fn walk_item(i: &ClassSetItem, edits: &mut Vec<(usize, usize, &'static str)>) {
    match i {
        ClassSetItem::Perl(c) => edits.push((c.span.start.offset, c.span.end.offset, perl(&c.kind, c.negated))),
        ClassSetItem::Bracketed(b) => walk_set(&b.kind, edits),
        ClassSetItem::Union(u) => u.items.iter().for_each(|i| walk_item(i, edits)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    fn full(p: &str) -> regex::Regex {
        regex::Regex::new(&format!("^(?:{})$", translate(p))).unwrap()
    }

    /// Cases where Go and Rust differ, with Go's answers (checked against Go's regexp semantics:
    /// perl classes and \b are ASCII in RE2).
    #[test]
    fn ascii_perl_classes_and_boundaries() {
        for (pat, s, go) in [
            (r"\d+", "123", true),
            (r"\d+", "١٢٣", false),
            (r"\D", "١", true),
            (r"\w+", "abc_1", true),
            (r"\w+", "café", false),
            (r"\W", "é", true),
            (r"\s", " ", true),
            (r"\s", "\u{a0}", false),
            (r"\s", "\u{b}", false), // Go's \s has no \v
            (r"\S", "\u{a0}", true),
            (r"[\w.-]+", "a.b-c", true),
            (r"[\w.-]+", "é", false),
            (r"[^\d]+", "abc١", true),
            (r"[^\w]", "é", true),
            (r"[[:alpha:]\d]+", "a1", true),
            (r".*\bfoo\b.*", "a foo b", true),
            (r".*\bfoo\b.*", "éfooé", true), // é is not a word char in Go: boundaries on both sides
            (r".*\Bfoo.*", "afoo", true),
            (r".*\Bfoo.*", "éfoo", false),
            (r"\\d", r"\d", true), // escaped backslash, not a class
            (r"(\d)\1?", "1", true),
        ] {
            if pat.contains(r"\1") {
                // Backreferences are invalid in both engines; translation must leave the error intact.
                assert!(regex::Regex::new(&translate(pat)).is_err());
                continue;
            }
            assert_eq!(full(pat).is_match(s), go, "{pat} on {s:?} (translated {})", translate(pat));
        }
    }

    #[test]
    fn untouched_when_nothing_to_do() {
        for p in ["foo|bar", "a.*", r"\.", r"\pL+", r"[a-z]\+", "(?i)x"] {
            assert!(matches!(translate(p), std::borrow::Cow::Borrowed(_)), "{p}");
        }
        assert_eq!(translate("a("), "a(");
    }

    proptest::proptest! {
        /// On ASCII input the translation never changes what a pattern matches (only non-ASCII differs).
        #[test]
        fn same_on_ascii(pat in r"(\\[dDsSwWb]|[a-c]|\.|\*|\[\\[dws]a\]|\(|\)|\|){0,6}", s in "[ a-c0-9_\\-\t]{0,6}") {
            if let (Ok(a), Ok(b)) = (regex::Regex::new(&format!("^(?:{pat})$")), regex::Regex::new(&format!("^(?:{})$", translate(&pat)))) {
                proptest::prop_assert_eq!(a.is_match(&s), b.is_match(&s), "{} vs {}", pat, translate(&pat));
            }
        }
    }
}
