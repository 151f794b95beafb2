//! A small OpenMetrics text reader for backfilling (`create-blocks-from openmetrics`), following the grammar
//! of Prometheus 2.42's `textparse.OpenMetricsParser` (its lexer `openmetricslex.l`):
//!
//! * every line ends with `\n`; the input must end with `# EOF` (optionally followed by one `\n`), and
//!   nothing may follow it;
//! * `# HELP name text`, `# TYPE name type`, `# UNIT name unit` are checked and skipped; any other `#` line,
//!   and empty lines, are errors (OpenMetrics has no free comments);
//! * a sample is `name[{l="v",…}] SP value [SP timestamp] [SP # SP {exemplar labels} SP value [SP ts]]`, with
//!   exactly one space between fields; timestamps are seconds (float) and become `int64(ts * 1000)` ms, as
//!   Prometheus converts them (truncation toward zero); exemplars are validated and dropped.
//!
//! This is not the scrape hot path (tsdb must not depend on the scrape crate): the reader favours being
//! obviously correct, but it borrows from the input and allocates only the label pairs it returns.

use std::fmt;

/// A parse error with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for ParseError {}

/// One sample line. `series` is the raw text before the value (metric name and label block), usable as a
/// cheap identity key: equal raw text means equal labels (the converse needs [`Entry::labels`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleLine<'a> {
    pub line: usize,
    pub series: &'a [u8],
    pub value: f64,
    /// Milliseconds, if the line has a timestamp.
    pub timestamp: Option<i64>,
}

impl SampleLine<'_> {
    /// The label pairs (`__name__` first, then in input order, unescaped). Not sorted, duplicates kept.
    pub fn label_pairs(&self) -> Vec<(String, String)> {
        // `series` was validated by the reader, so this re-scan cannot fail; it is kept separate so callers
        // that key on the raw text only pay for unescaping once per distinct series.
        let s = self.series;
        let name_end = s.iter().position(|&c| c == b'{').unwrap_or(s.len());
        let mut out = vec![("__name__".to_string(), lossless(&s[..name_end]))];
        if name_end == s.len() {
            return out;
        }
        let mut i = name_end + 1;
        while i < s.len() && s[i] != b'}' {
            if s[i] == b',' {
                i += 1;
            }
            let ns = i;
            while i < s.len() && s[i] != b'=' {
                i += 1;
            }
            let name = lossless(&s[ns..i]);
            i += 2; // `="`
            let vs = i;
            while i < s.len() && s[i] != b'"' {
                if s[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            let value = unescape(&s[vs..i.min(s.len())]);
            i += 1; // closing quote
            out.push((name, value));
        }
        out
    }
}

fn lossless(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Label value unescaping as Prometheus's `lvalReplacer`: `\"`, `\\`, `\n`; any other backslash is kept.
fn unescape(b: &[u8]) -> String {
    if !b.contains(&b'\\') {
        return lossless(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'"' => {
                    out.push(b'"');
                    i += 2;
                    continue;
                }
                b'\\' => {
                    out.push(b'\\');
                    i += 2;
                    continue;
                }
                b'n' => {
                    out.push(b'\n');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a line was.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    Sample(SampleLine<'a>),
    /// HELP, TYPE or UNIT (already validated).
    Meta,
}

/// Iterates the entries of an OpenMetrics text. After the first error, iteration ends.
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    line: usize,
    done: bool,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0, line: 0, done: false }
    }

    fn err(&mut self, msg: impl Into<String>) -> Option<Result<Entry<'a>, ParseError>> {
        self.done = true;
        Some(Err(ParseError { line: self.line, msg: msg.into() }))
    }
}

#[inline]
fn is_name_start(c: u8, colon: bool) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || (colon && c == b':')
}

#[inline]
fn is_name_char(c: u8, colon: bool) -> bool {
    is_name_start(c, colon) || c.is_ascii_digit()
}

/// Length of a metric (`colon`) or label name at the start of `b`.
fn name_len(b: &[u8], colon: bool) -> usize {
    match b.first() {
        Some(&c) if is_name_start(c, colon) => 1 + b[1..].iter().take_while(|&&c| is_name_char(c, colon)).count(),
        _ => 0,
    }
}

/// Go's `strconv.ParseFloat` as Prometheus's `parseFloat` restricts it (no `p`, `P` or `_`): decimal
/// notation, `Inf`/`Infinity` with optional sign, unsigned `NaN`, case-insensitive; out of range is an error.
pub fn parse_go_float(s: &str) -> Result<f64, String> {
    let bad = || format!("strconv.ParseFloat: parsing {s:?}: invalid syntax");
    if s.is_empty() || s.contains(['p', 'P', '_']) {
        return Err(bad());
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Ok(if s.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if lower == "nan" {
        return if unsigned.len() == s.len() { Ok(f64::NAN) } else { Err(bad()) };
    }
    // Decimal syntax: digits [. digits] [e [sign] digits], at least one mantissa digit.
    let b = unsigned.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return Err(bad());
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return Err(bad());
        }
        i += exp_digits;
    }
    if i != b.len() {
        return Err(bad());
    }
    let v: f64 = s.parse().map_err(|_| bad())?;
    if v.is_infinite() {
        return Err(format!("strconv.ParseFloat: parsing {s:?}: value out of range"));
    }
    Ok(v)
}

const METRIC_TYPES: [&str; 8] = ["counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"];

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.pos >= self.b.len() {
            self.line += 1;
            return self.err("data does not end with # EOF");
        }
        self.line += 1;
        let rest = &self.b[self.pos..];
        let Some(nl) = rest.iter().position(|&c| c == b'\n') else {
            // The last line has no newline: only `# EOF` may be unterminated.
            if rest == b"# EOF" {
                self.done = true;
                self.pos = self.b.len();
                return None;
            }
            return self.err("data does not end with # EOF");
        };
        let line = &rest[..nl];
        self.pos += nl + 1;
        if let Some(c) = line.strip_prefix(b"# ") {
            return self.meta(c);
        }
        if line.first() == Some(&b'#') {
            return self.err("\"#\" is not a valid start token (comments must be \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\")");
        }
        match self.sample(line) {
            Ok(s) => Some(Ok(Entry::Sample(s))),
            Err(m) => self.err(m),
        }
    }
}

impl<'a> Reader<'a> {
    fn meta(&mut self, c: &'a [u8]) -> Option<Result<Entry<'a>, ParseError>> {
        if c == b"EOF" {
            if self.pos < self.b.len() {
                self.line += 1;
                return self.err("unexpected data after # EOF");
            }
            self.done = true;
            return None;
        }
        let (kind, body) = if let Some(b) = c.strip_prefix(b"HELP ") {
            ("HELP", b)
        } else if let Some(b) = c.strip_prefix(b"TYPE ") {
            ("TYPE", b)
        } else if let Some(b) = c.strip_prefix(b"UNIT ") {
            ("UNIT", b)
        } else {
            return self.err("comments must be \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\"");
        };
        let n = name_len(body, true);
        if n == 0 {
            return self.err(format!("expected metric name after {kind}"));
        }
        let name = &body[..n];
        let Some(text) = body[n..].strip_prefix(b" ") else {
            return self.err(format!("expected text in {kind}"));
        };
        match kind {
            "TYPE" => {
                let t = String::from_utf8_lossy(text);
                if !METRIC_TYPES.contains(&&*t) {
                    return self.err(format!("invalid metric type {t:?}"));
                }
            }
            "HELP" => {
                if std::str::from_utf8(text).is_err() {
                    return self.err("help text is not a valid utf8 string");
                }
            }
            _ => {
                let suffix_ok =
                    name.len() > text.len() && name.ends_with(text) && name[name.len() - text.len() - 1] == b'_';
                if !text.is_empty() && !suffix_ok {
                    return self.err(format!("unit not a suffix of metric {:?}", String::from_utf8_lossy(name)));
                }
            }
        }
        Some(Ok(Entry::Meta))
    }

    fn sample(&self, line: &'a [u8]) -> Result<SampleLine<'a>, String> {
        let n = name_len(line, true);
        if n == 0 {
            let tok = String::from_utf8_lossy(&line[..line.len().min(16)]).into_owned();
            return Err(format!("{tok:?} is not a valid start token"));
        }
        let name = &line[..n];
        let mut i = n;
        if line.get(i) == Some(&b'{') {
            i = parse_label_block(line, i)?;
        }
        let series = &line[..i];
        let (value, i) = field(line, i, "metric")?;
        let value = parse_go_float(value)?;
        let mut timestamp = None;
        if i < line.len() {
            if line[i..].starts_with(b" # {") {
                exemplar(name, line, i)?;
            } else {
                let (ts, j) = field(line, i, "value").map_err(|_| "expected timestamp or # symbol".to_string())?;
                let ts = parse_go_float(ts)?;
                if !ts.is_finite() {
                    return Err("invalid timestamp".into());
                }
                // Prometheus: int64(ts * 1000), i.e. float multiplication then truncation.
                timestamp = Some((ts * 1000.0) as i64);
                if j < line.len() {
                    if !line[j..].starts_with(b" # {") {
                        return Err("expected next entry after timestamp".into());
                    }
                    exemplar(name, line, j)?;
                }
            }
        }
        Ok(SampleLine { line: self.line, series, value, timestamp })
    }
}

/// A ` value` field starting at `i` (one space, then non-space bytes): (text, end).
fn field<'a>(line: &'a [u8], i: usize, after: &str) -> Result<(&'a str, usize), String> {
    if line.get(i) != Some(&b' ') {
        return Err(format!("expected value after {after}"));
    }
    let start = i + 1;
    let len = line[start..].iter().take_while(|&&c| c != b' ').count();
    if len == 0 {
        return Err(format!("expected value after {after}"));
    }
    let s = std::str::from_utf8(&line[start..start + len]).map_err(|_| format!("invalid value after {after}"))?;
    Ok((s, start + len))
}

/// Validates `{name="value",…}` starting at `line[i] == '{'`; returns the index after `}`.
fn parse_label_block(line: &[u8], mut i: usize) -> Result<usize, String> {
    i += 1;
    let mut first = true;
    loop {
        match line.get(i) {
            Some(b'}') => return Ok(i + 1),
            Some(b',') if !first => {
                i += 1;
                if name_len(&line[i..], false) == 0 {
                    return Err("expected label name".into());
                }
            }
            Some(b',') => return Err("expected label name or left brace, got \",\"".into()),
            Some(_) if !first => return Err("expected comma or right brace".into()),
            _ => {}
        }
        let n = name_len(&line[i..], false);
        if n == 0 {
            return Err(if first { "expected label name or left brace" } else { "expected label name" }.into());
        }
        first = false;
        i += n;
        if line.get(i) != Some(&b'=') {
            return Err("expected equal".into());
        }
        i += 1;
        if line.get(i) != Some(&b'"') {
            return Err("expected label value".into());
        }
        i += 1;
        let vs = i;
        loop {
            match line.get(i) {
                None => return Err("unterminated label value".into()),
                Some(b'"') => break,
                Some(b'\\') => {
                    if i + 1 >= line.len() {
                        return Err("unterminated label value".into());
                    }
                    i += 2;
                }
                Some(_) => i += 1,
            }
        }
        if std::str::from_utf8(&line[vs..i]).is_err() {
            return Err("invalid UTF-8 label value".into());
        }
        i += 1;
    }
}

/// Validates an exemplar ` # {labels} value [ts]` at `i` (to the end of the line).
fn exemplar(name: &[u8], line: &[u8], i: usize) -> Result<(), String> {
    if !(name.ends_with(b"_total") || name.ends_with(b"_bucket")) {
        return Err(format!("metric name {} does not support exemplars", String::from_utf8_lossy(name)));
    }
    let j = parse_label_block(line, i + 3)?;
    let (v, j) = field(line, j, "exemplar labels")?;
    parse_go_float(v)?;
    if j < line.len() {
        let (ts, k) = field(line, j, "exemplar value").map_err(|_| "expected timestamp or comment".to_string())?;
        let ts = parse_go_float(ts)?;
        if !ts.is_finite() {
            return Err("invalid exemplar timestamp".into());
        }
        if k != line.len() {
            return Err("expected next entry after exemplar timestamp".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (Vec<(String, String)>, u64, Option<i64>);

    fn samples(input: &str) -> Result<Vec<Parsed>, ParseError> {
        let mut out = Vec::new();
        for e in Reader::new(input.as_bytes()) {
            if let Entry::Sample(s) = e? {
                out.push((s.label_pairs(), s.value.to_bits(), s.timestamp));
            }
        }
        Ok(out)
    }

    fn err(input: &str) -> ParseError {
        samples(input).unwrap_err()
    }

    #[test]
    fn accepts_valid_input() {
        let got = samples(
            "# HELP foo some \\n help\n# TYPE foo counter\n# UNIT foo_seconds seconds\n\
             foo_total{a=\"x\",b=\"q\\\"z\\\\n\\t\"} 1.5 1700000000.123\nbar 2\n\
             foo_total 3 10 # {trace=\"a\"} 1 10.5\nfoo_bucket{} -Inf # {} 1\n# EOF\n",
        )
        .unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[0].0,
            vec![
                ("__name__".to_string(), "foo_total".to_string()),
                ("a".into(), "x".into()),
                ("b".into(), "q\"z\\n\\t".into())
            ]
        );
        // Float arithmetic as Prometheus: 1700000000.123 * 1000 truncates to ...122 or ...123 exactly as Go.
        assert_eq!(got[0].2, Some((1700000000.123f64 * 1000.0) as i64));
        assert_eq!(got[1].2, None);
        assert_eq!(got[2].2, Some(10_000));
        assert_eq!(got[3].1, f64::NEG_INFINITY.to_bits());
        assert!(samples("a 1 1\n# EOF").is_ok(), "unterminated # EOF is fine");
    }

    #[test]
    fn rejects_with_line_numbers() {
        let cases: &[(&str, usize, &str)] = &[
            ("a 1 1\n", 2, "does not end with # EOF"),
            ("a 1 1\n# EOF\nb 1 1\n", 3, "after # EOF"),
            ("a 1\n\n# EOF\n", 2, "valid start token"),
            ("# random comment\n# EOF\n", 1, "comments must be"),
            ("#HELP a b\n# EOF\n", 1, "valid start token"),
            ("# TYPE a bogus\n# EOF\n", 1, "invalid metric type"),
            ("# UNIT a_bytes seconds\n# EOF\n", 1, "unit not a suffix"),
            ("a  1\n# EOF\n", 1, "expected value"),
            ("a{b=\"c\",} 1\n# EOF\n", 1, "expected label name"),
            ("a{b=\"c\" d=\"e\"} 1\n# EOF\n", 1, "expected comma"),
            ("a{b=c} 1\n# EOF\n", 1, "expected label value"),
            ("a{b=\"c} 1\n# EOF\n", 1, "unterminated"),
            ("a 0x10\n# EOF\n", 1, "invalid syntax"),
            ("a 1_000\n# EOF\n", 1, "invalid syntax"),
            ("a 1e999\n# EOF\n", 1, "out of range"),
            ("a 1 NaN\n# EOF\n", 1, "invalid timestamp"),
            ("a 1 2 3\n# EOF\n", 1, "expected next entry after timestamp"),
            ("ok 1 1\nfoo 1 # {a=\"b\"} 1\n# EOF\n", 2, "does not support exemplars"),
            ("9a 1\n# EOF\n", 1, "valid start token"),
        ];
        for (input, line, msg) in cases {
            let e = err(input);
            assert_eq!(e.line, *line, "{input:?}: {e}");
            assert!(e.msg.contains(msg), "{input:?}: {e}");
        }
    }

    #[test]
    fn go_float_syntax() {
        for (s, want) in [("1", 1.0), ("-1.5e3", -1500.0), (".5", 0.5), ("5.", 5.0), ("+Inf", f64::INFINITY), ("-infinity", f64::NEG_INFINITY), ("1E-2", 0.01)] {
            assert_eq!(parse_go_float(s).unwrap(), want, "{s}");
        }
        assert!(parse_go_float("NaN").unwrap().is_nan());
        assert!(parse_go_float("nan").unwrap().is_nan());
        for s in ["", "+nan", "1e", "e1", ".", "1.2.3", "1p3", "--1", "0x1p3", "1 "] {
            assert!(parse_go_float(s).is_err(), "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            for e in Reader::new(&b) {
                if let Ok(Entry::Sample(s)) = e {
                    let _ = s.label_pairs();
                }
            }
        }
    }
}
