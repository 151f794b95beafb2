//! Byte-level parsers for the Prometheus text format 0.0.4 and OpenMetrics 1.0 text format.
//!
//! The parser is split in two on purpose (this is what makes scraping cheap, see docs/format/exposition.md):
//! * [`Parser::next`] walks one line, finds the end of the series text (`name{labels}`) by a quote-aware
//!   scan, and parses the value and timestamp. It allocates nothing and does not look inside the labels.
//! * [`Parser::series_labels`] fully parses and validates the series text into [`Labels`]. The scrape loop
//!   calls it only for series text it has not seen before; a series seen in an earlier scrape is found in the
//!   scrape cache by its raw bytes, so a repeated series costs one hash lookup.
//!
//! Grammar and error behaviour follow Prometheus 2.53's `promlex.l`/`openmetricslex.l` and their parsers.

use model::Labels;
use std::borrow::Cow;
use std::fmt;

/// Prometheus's canonical NaN (`value.NormalNaN`); every parsed NaN is stored with these bits so it can never be
/// mistaken for a staleness marker.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Which text format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4` (also the fallback for unknown content types).
    PromText,
    /// `application/openmetrics-text; version=1.0.0` (or 0.0.1).
    OpenMetrics,
}

impl Format {
    /// Picks the parser from a response's Content-Type as Prometheus 2.53 does (`textparse.New`): OpenMetrics
    /// for `application/openmetrics-text`, the Prometheus text parser for everything else.
    pub fn from_content_type(ct: &str) -> Format {
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::PromText
        }
    }
}

/// Metric type from `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    Stateset,
    #[default]
    Unknown,
}

impl MetricType {
    /// The name the metadata API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::Stateset => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn parse(s: &[u8], format: Format) -> Option<MetricType> {
        Some(match (s, format) {
            (b"counter", _) => MetricType::Counter,
            (b"gauge", _) => MetricType::Gauge,
            (b"histogram", _) => MetricType::Histogram,
            (b"summary", _) => MetricType::Summary,
            (b"untyped", Format::PromText) => MetricType::Unknown,
            (b"gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            (b"info", Format::OpenMetrics) => MetricType::Info,
            (b"stateset", Format::OpenMetrics) => MetricType::Stateset,
            (b"unknown", Format::OpenMetrics) => MetricType::Unknown,
            _ => return None,
        })
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A malformed exposition, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// One sample line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesEntry<'a> {
    /// The raw series text, `name{labels}` exactly as exposed: the scrape cache key.
    pub series: &'a [u8],
    pub value: f64,
    /// Explicit timestamp in ms, if the line had one.
    pub timestamp: Option<i64>,
}

/// One parsed entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    Series(SeriesEntry<'a>),
    Help { name: &'a str, help: Cow<'a, str> },
    Type { name: &'a str, kind: MetricType },
    Unit { name: &'a str, unit: &'a str },
    Comment,
}

/// A streaming parser over one scrape body. See the module docs.
pub struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    line: usize,
    format: Format,
    /// Line of the entry last returned (for errors from [`Parser::series_labels`]).
    entry_line: usize,
    eof_seen: bool,
}

#[inline]
fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}
#[inline]
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}
#[inline]
fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}
#[inline]
fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Go's `strconv.ParseFloat` restricted to pre-Go-1.13 syntax, as Prometheus's `parseFloat`: no hex floats
/// and no underscores. NaN is canonicalised to [`NORMAL_NAN_BITS`].
#[inline]
pub fn parse_float(b: &[u8]) -> Option<f64> {
    // Fast path for plain non-negative integers, the most common value shape (counters).
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        let mut n: u64 = 0;
        for &d in b {
            n = n * 10 + u64::from(d - b'0');
        }
        return Some(n as f64);
    }
    if b.iter().any(|&c| matches!(c, b'p' | b'P' | b'_' | b'x' | b'X')) {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    let v: f64 = s.parse().ok()?;
    Some(if v.is_nan() { f64::from_bits(NORMAL_NAN_BITS) } else { v })
}

fn show(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

impl<'a> Parser<'a> {
    pub fn new(buf: &'a [u8], format: Format) -> Parser<'a> {
        Parser { buf, pos: 0, line: 1, format, entry_line: 1, eof_seen: false }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// 1-based line of the entry last returned.
    pub fn entry_line(&self) -> usize {
        self.entry_line
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError { line: self.entry_line, msg: msg.into() }
    }

    /// The rest of the current line from `from`, for error messages.
    fn line_text(&self, from: usize) -> String {
        let end = self.buf[from.min(self.buf.len())..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.buf.len(), |i| from + i);
        show(&self.buf[from.min(end)..end])
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes a `\n`. Returns false at end of input or on another byte.
    #[inline]
    fn eat_newline(&mut self) -> bool {
        if self.peek() == Some(b'\n') {
            self.pos += 1;
            self.line += 1;
            true
        } else {
            false
        }
    }

    /// End of a Prometheus-text line: a newline, or the end of the body (Prometheus appends a `\n` to every
    /// body before parsing, so a missing final newline is accepted).
    #[inline]
    fn eat_eol_prom(&mut self) -> bool {
        self.pos >= self.buf.len() || self.eat_newline()
    }

    /// The next entry, `Ok(None)` at the end of the body. (Not an `Iterator`: entries borrow the body and
    /// errors end parsing.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        match self.format {
            Format::PromText => self.next_prom(),
            Format::OpenMetrics => self.next_om(),
        }
    }

    fn next_prom(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        loop {
            self.skip_ws();
            self.entry_line = self.line;
            match self.peek() {
                None => return Ok(None),
                Some(b'\n') => {
                    self.eat_newline();
                }
                Some(b'#') => return self.prom_comment().map(Some),
                Some(_) => return self.series().map(|s| Some(Entry::Series(s))),
            }
        }
    }

    fn next_om(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        self.entry_line = self.line;
        if self.eof_seen {
            return Ok(None);
        }
        match self.peek() {
            None => Err(self.err("data does not end with # EOF")),
            Some(b'#') => self.om_comment(),
            Some(_) => self.series().map(|s| Some(Entry::Series(s))),
        }
    }

    /// Reads a metric name after HELP/TYPE/UNIT: plain or quoted.
    fn meta_name(&mut self, what: &str) -> Result<&'a str, ParseError> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => {
                let end = scan_quoted(self.buf, self.pos, true).ok_or_else(|| {
                    self.err(format!("expected metric name after {what}, got {}", self.line_text(start)))
                })?;
                self.pos = end;
                let raw = &self.buf[start + 1..end - 1];
                std::str::from_utf8(raw).map_err(|_| self.err("invalid UTF-8 in metric name"))
            }
            Some(b) if is_name_start(b) => {
                while self.peek().is_some_and(is_name_char) {
                    self.pos += 1;
                }
                // ASCII by construction.
                Ok(std::str::from_utf8(&self.buf[start..self.pos]).unwrap_or_default())
            }
            _ => Err(self.err(format!("expected metric name after {what}, got {}", self.line_text(start)))),
        }
    }

    fn rest_of_line(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(|b| b != b'\n') {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    fn prom_comment(&mut self) -> Result<Entry<'a>, ParseError> {
        self.pos += 1; // '#'
        if !matches!(self.peek(), Some(b' ' | b'\t')) {
            return self.prom_plain_comment();
        }
        self.skip_ws();
        let rest = &self.buf[self.pos..];
        let kind = if rest.starts_with(b"HELP") {
            "HELP"
        } else if rest.starts_with(b"TYPE") {
            "TYPE"
        } else {
            return self.prom_plain_comment();
        };
        if !matches!(rest.get(4), Some(b' ' | b'\t')) {
            return self.prom_plain_comment();
        }
        self.pos += 4;
        self.skip_ws();
        let name = self.meta_name(kind)?;
        let text = self.rest_of_line();
        // The lexer's text token starts with the separator; Prometheus drops exactly one character.
        let text = if text.len() > 1 { &text[1..] } else { &[][..] };
        if !self.eat_eol_prom() {
            return Err(self.err(format!("linebreak expected after metadata while parsing {}", show(text))));
        }
        if kind == "TYPE" {
            let kind = MetricType::parse(text, Format::PromText)
                .ok_or_else(|| self.err(format!("invalid metric type {}", show(text))))?;
            Ok(Entry::Type { name, kind })
        } else {
            let help = std::str::from_utf8(text)
                .map_err(|_| self.err(format!("help text {} is not a valid utf8 string", show(text))))?;
            Ok(Entry::Help { name, help: unescape(help, false) })
        }
    }

    fn prom_plain_comment(&mut self) -> Result<Entry<'a>, ParseError> {
        self.rest_of_line();
        // A comment on the last line without a newline just ends the body, as in Prometheus.
        self.eat_newline();
        Ok(Entry::Comment)
    }

    fn om_comment(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let start = self.pos;
        let rest = &self.buf[self.pos..];
        if rest.starts_with(b"# EOF") && matches!(rest.get(5), None | Some(b'\n')) {
            self.pos += 5;
            self.eat_newline();
            if self.pos != self.buf.len() {
                return Err(self.err("unexpected data after # EOF"));
            }
            self.eof_seen = true;
            return Ok(None);
        }
        let kind = if rest.starts_with(b"# HELP ") {
            "HELP"
        } else if rest.starts_with(b"# TYPE ") {
            "TYPE"
        } else if rest.starts_with(b"# UNIT ") {
            "UNIT"
        } else {
            return Err(self.err(format!("expected a valid start token, got {}", self.line_text(start))));
        };
        self.pos += 7;
        let name = self.meta_name(kind)?;
        if self.peek() != Some(b' ') {
            return Err(self.err(format!("expected text in {kind}")));
        }
        self.pos += 1;
        let text = self.rest_of_line();
        if !self.eat_newline() {
            return Err(self.err(format!("expected text in {kind}")));
        }
        match kind {
            "TYPE" => {
                let kind = MetricType::parse(text, Format::OpenMetrics)
                    .ok_or_else(|| self.err(format!("invalid metric type {}", show(text))))?;
                Ok(Some(Entry::Type { name, kind }))
            }
            "HELP" => {
                let help = std::str::from_utf8(text)
                    .map_err(|_| self.err(format!("help text {} is not a valid utf8 string", show(text))))?;
                Ok(Some(Entry::Help { name, help: unescape(help, true) }))
            }
            _ => {
                let unit = std::str::from_utf8(text).map_err(|_| self.err("unit is not valid UTF-8"))?;
                if !unit.is_empty() {
                    let ok = name.len() > unit.len()
                        && name.ends_with(unit)
                        && name.as_bytes()[name.len() - unit.len() - 1] == b'_';
                    if !ok {
                        return Err(self.err(format!("unit {unit:?} not a suffix of metric {name:?}")));
                    }
                }
                Ok(Some(Entry::Unit { name, unit }))
            }
        }
    }

    /// Parses a sample line up to and including its newline. Hot path: no allocation, labels not decoded.
    fn series(&mut self) -> Result<SeriesEntry<'a>, ParseError> {
        let start = self.pos;
        let buf = self.buf;
        if buf[self.pos] != b'{' {
            if !is_name_start(buf[self.pos]) {
                return Err(self.err(format!("expected a valid start token, got {}", self.line_text(start))));
            }
            self.pos += 1;
            while self.pos < buf.len() && is_name_char(buf[self.pos]) {
                self.pos += 1;
            }
            if self.format == Format::PromText {
                // Prometheus text allows blanks between the name and `{`; they stay part of the series text.
                let mut p = self.pos;
                while p < buf.len() && (buf[p] == b' ' || buf[p] == b'\t') {
                    p += 1;
                }
                if p < buf.len() && buf[p] == b'{' {
                    self.pos = p;
                }
            }
        }
        if self.peek() == Some(b'{') {
            self.pos = scan_braces(buf, self.pos, self.format == Format::OpenMetrics).ok_or_else(|| {
                self.err(format!("unterminated label set while parsing: {}", self.line_text(start)))
            })?;
        }
        let series = &buf[start..self.pos];
        match self.format {
            Format::PromText => self.prom_value(series, start),
            Format::OpenMetrics => self.om_value(series, start),
        }
    }

    fn value_token(&mut self, stop_brace: bool) -> &'a [u8] {
        let vstart = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' || b == b'\n' || (stop_brace && (b == b'\t' || b == b'{')) {
                break;
            }
            self.pos += 1;
        }
        &self.buf[vstart..self.pos]
    }

    fn prom_value(&mut self, series: &'a [u8], start: usize) -> Result<SeriesEntry<'a>, ParseError> {
        self.skip_ws();
        let v = self.value_token(true);
        if v.is_empty() {
            return Err(self.err(format!("expected value after metric, got {}", self.line_text(start))));
        }
        let value = parse_float(v)
            .ok_or_else(|| self.err(format!("bad value {} while parsing: {}", show(v), self.line_text(start))))?;
        self.skip_ws();
        let mut timestamp = None;
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            let tstart = self.pos;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
            let t = &self.buf[tstart..self.pos];
            // Digits only, so the only failure is overflow.
            let ts = std::str::from_utf8(t).ok().and_then(|s| s.parse::<i64>().ok()).ok_or_else(|| {
                self.err(format!("timestamp {} out of range while parsing: {}", show(t), self.line_text(start)))
            })?;
            timestamp = Some(ts);
            self.skip_ws();
            if !self.eat_eol_prom() {
                return Err(self.err(format!("expected next entry after timestamp, got {}", self.line_text(start))));
            }
        } else if !self.eat_eol_prom() {
            return Err(self.err(format!("expected timestamp or new record, got {}", self.line_text(start))));
        }
        Ok(SeriesEntry { series, value, timestamp })
    }

    fn om_value(&mut self, series: &'a [u8], start: usize) -> Result<SeriesEntry<'a>, ParseError> {
        if self.peek() != Some(b' ') {
            return Err(self.err(format!("expected value after metric, got {}", self.line_text(start))));
        }
        self.pos += 1;
        let v = self.value_token(false);
        let value = parse_float(v)
            .ok_or_else(|| self.err(format!("bad value {} while parsing: {}", show(v), self.line_text(start))))?;
        let mut timestamp = None;
        loop {
            match self.peek() {
                Some(b'\n') => {
                    self.eat_newline();
                    break;
                }
                None => return Err(self.err("data does not end with # EOF")),
                Some(b' ') if self.buf[self.pos..].starts_with(b" # {") => {
                    self.pos += 3;
                    self.om_exemplar(start)?;
                    break;
                }
                Some(b' ') if timestamp.is_none() => {
                    self.pos += 1;
                    let t = self.value_token(false);
                    timestamp = Some(self.om_timestamp(t, start)?);
                }
                _ => {
                    return Err(self.err(format!(
                        "expected next entry after timestamp, got {}",
                        self.line_text(start)
                    )))
                }
            }
        }
        Ok(SeriesEntry { series, value, timestamp })
    }

    fn om_timestamp(&self, t: &[u8], start: usize) -> Result<i64, ParseError> {
        let ts = parse_float(t)
            .ok_or_else(|| self.err(format!("bad timestamp {} while parsing: {}", show(t), self.line_text(start))))?;
        if !ts.is_finite() {
            return Err(self.err(format!("invalid timestamp {ts}")));
        }
        // Seconds to ms, truncating like Go's int64(float64).
        Ok((ts * 1000.0) as i64)
    }

    /// Validates (and discards) an OpenMetrics exemplar `{labels} value [timestamp]` up to the newline.
    fn om_exemplar(&mut self, start: usize) -> Result<(), ParseError> {
        let lstart = self.pos;
        let end = scan_braces(self.buf, self.pos, true)
            .ok_or_else(|| self.err(format!("invalid exemplar labels while parsing: {}", self.line_text(start))))?;
        let mut pairs = Vec::new();
        parse_label_block(&self.buf[lstart..end], Format::OpenMetrics, true, &mut None, &mut pairs)
            .map_err(|m| self.err(format!("{m} in exemplar")))?;
        let len: usize = pairs.iter().map(|(n, v)| n.chars().count() + v.chars().count()).sum();
        if len > 128 {
            return Err(self.err(format!("exemplar labels have {len} runes, exceeding the limit of 128")));
        }
        self.pos = end;
        if self.peek() != Some(b' ') {
            return Err(self.err(format!("expected value after exemplar labels, got {}", self.line_text(start))));
        }
        self.pos += 1;
        let v = self.value_token(false);
        parse_float(v).ok_or_else(|| self.err(format!("bad exemplar value {}", show(v))))?;
        if self.peek() == Some(b' ') {
            self.pos += 1;
            let t = self.value_token(false);
            self.om_timestamp(t, start)?;
        }
        match self.peek() {
            Some(b'\n') => {
                self.eat_newline();
                Ok(())
            }
            None => Err(self.err("data does not end with # EOF")),
            _ => Err(self.err(format!("expected next entry after exemplar, got {}", self.line_text(start)))),
        }
    }

    /// Fully parses series text returned by [`Parser::next`] into labels (`__name__` included). This is the
    /// slow path, taken once per new series text; errors carry the line of the entry last returned.
    pub fn series_labels(&self, series: &[u8]) -> Result<Labels, ParseError> {
        let mut pairs = Vec::new();
        self.series_pairs(series, &mut pairs)?;
        Ok(Labels::from_sorted_unchecked(pairs.iter().map(|(n, v)| (&**n, &**v))))
    }

    /// [`Parser::series_labels`] without building [`Labels`]: fills `pairs` (cleared first) with the sorted,
    /// unique `(name, value)` pairs, borrowing from `series` unless unescaping changed a string. The scrape
    /// loop keeps `pairs` across series so a new series costs no allocation here.
    pub(crate) fn series_pairs<'s>(&self, series: &'s [u8], pairs: &mut Vec<LabelPair<'s>>) -> Result<(), ParseError> {
        parse_series_text(series, self.format, pairs).map_err(|m| self.err(m))
    }
}

/// Position just after the closing quote of the string opening at `pos`, honouring `\` escapes. When
/// `allow_newline` is false (OpenMetrics label values) a raw newline ends the scan unsuccessfully.
#[inline]
fn scan_quoted(buf: &[u8], pos: usize, allow_newline: bool) -> Option<usize> {
    let mut i = pos + 1;
    while i < buf.len() {
        match buf[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'\n' if !allow_newline => return None,
            _ => i += 1,
        }
    }
    None
}

/// Position just after the `}` closing the label block opening at `pos`, skipping over quoted strings. Only
/// finds the extent; [`parse_series_text`] validates the contents.
#[inline]
fn scan_braces(buf: &[u8], pos: usize, om: bool) -> Option<usize> {
    let mut i = pos + 1;
    while i < buf.len() {
        match buf[i] {
            b'"' => i = scan_quoted(buf, i, !om)?,
            b'}' => return Some(i + 1),
            b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Undoes label-value escaping: `\\`, `\"` (when `quote`), `\n`. Other backslashes stay as they are, as with
/// Go's `strings.Replacer` in Prometheus.
fn unescape(s: &str, quote: bool) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.peek() {
                Some('\\') => {
                    out.push('\\');
                    it.next();
                }
                Some('n') => {
                    out.push('\n');
                    it.next();
                }
                Some('"') if quote => {
                    out.push('"');
                    it.next();
                }
                _ => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A parsed label, borrowed from the exposition unless unescaping changed it.
pub(crate) type LabelPair<'s> = (Cow<'s, str>, Cow<'s, str>);

/// Parses `name{labels}` / `{"name", labels}` into sorted `(name, value)` pairs with `__name__`.
pub(crate) fn parse_series_text<'s>(
    series: &'s [u8],
    format: Format,
    pairs: &mut Vec<LabelPair<'s>>,
) -> Result<(), String> {
    pairs.clear();
    let mut name: Option<Cow<'s, str>> = None;
    let mut pos = 0;
    if series.first().is_some_and(|&b| b != b'{') {
        while pos < series.len() && is_name_char(series[pos]) {
            pos += 1;
        }
        // Name characters are ASCII, so this borrows.
        name = Some(String::from_utf8_lossy(&series[..pos]));
        if format == Format::PromText {
            while pos < series.len() && (series[pos] == b' ' || series[pos] == b'\t') {
                pos += 1;
            }
        }
    }
    if pos < series.len() {
        parse_label_block(&series[pos..], format, false, &mut name, pairs)?;
    }
    let Some(name) = name else {
        return Err(format!("metric name not set while parsing: {}", show(series)));
    };
    pairs.push((Cow::Borrowed(model::METRIC_NAME), name));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    for w in pairs.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(format!("label name {:?} is not unique", w[0].0));
        }
    }
    Ok(())
}

/// Parses one `{...}` block (the whole of `b`). A quoted string followed by `,` or `}` sets the metric name
/// (UTF-8 names), unless `exemplar`.
fn parse_label_block<'s>(
    b: &'s [u8],
    format: Format,
    exemplar: bool,
    name: &mut Option<Cow<'s, str>>,
    pairs: &mut Vec<LabelPair<'s>>,
) -> Result<(), String> {
    let prom = format == Format::PromText;
    let ws = |pos: &mut usize| {
        if prom {
            while *pos < b.len() && (b[*pos] == b' ' || b[*pos] == b'\t') {
                *pos += 1;
            }
        }
    };
    if b.first() != Some(&b'{') {
        return Err(format!("expected label set while parsing: {}", show(b)));
    }
    let mut pos = 1;
    loop {
        ws(&mut pos);
        if pos >= b.len() {
            return Err(format!("unterminated label set: {}", show(b)));
        }
        if b[pos] == b'}' {
            pos += 1;
            break;
        }
        // Label name: plain or quoted.
        let (lname, quoted) = if b[pos] == b'"' && !exemplar {
            let end = scan_quoted(b, pos, true).ok_or_else(|| format!("unterminated string in {}", show(b)))?;
            let raw = std::str::from_utf8(&b[pos + 1..end - 1]).map_err(|_| "invalid UTF-8 label name".to_string())?;
            pos = end;
            (unescape(raw, true), true)
        } else if is_label_start(b[pos]) {
            let s = pos;
            while pos < b.len() && is_label_char(b[pos]) {
                pos += 1;
            }
            (String::from_utf8_lossy(&b[s..pos]), false)
        } else {
            return Err(format!("expected label name, got {} while parsing: {}", show(&b[pos..pos + 1]), show(b)));
        };
        ws(&mut pos);
        if quoted && pos < b.len() && (b[pos] == b',' || b[pos] == b'}') {
            if name.is_some() {
                return Err(format!("metric name already set while parsing: {}", show(b)));
            }
            *name = Some(lname);
            if b[pos] == b',' {
                pos += 1;
            }
            continue;
        }
        if pos >= b.len() || b[pos] != b'=' {
            return Err(format!("expected equal, got {} while parsing: {}", show(&b[pos.min(b.len())..]), show(b)));
        }
        pos += 1;
        ws(&mut pos);
        if pos >= b.len() || b[pos] != b'"' {
            return Err(format!("expected label value while parsing: {}", show(b)));
        }
        let end = scan_quoted(b, pos, prom).ok_or_else(|| format!("expected label value while parsing: {}", show(b)))?;
        let raw = std::str::from_utf8(&b[pos + 1..end - 1])
            .map_err(|_| format!("invalid UTF-8 label value: {}", show(&b[pos..end])))?;
        pos = end;
        pairs.push((lname, unescape(raw, true)));
        ws(&mut pos);
        if pos < b.len() && b[pos] == b',' {
            pos += 1;
        } else if !prom && (pos >= b.len() || b[pos] != b'}') {
            return Err(format!("expected comma or brace close while parsing: {}", show(b)));
        }
    }
    if pos != b.len() {
        return Err(format!("unexpected data after label set: {}", show(&b[pos..])));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
