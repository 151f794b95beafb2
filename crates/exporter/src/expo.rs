//! Exposition encoder: collectors emit samples into a [`Registry`] that lives across scrapes, and the
//! registry writes Prometheus text 0.0.4 or OpenMetrics 1.0 into a caller-owned buffer.
//!
//! Why a registry and not direct writes: the text format requires every family's samples to be contiguous,
//! but collectors naturally loop device-major (netdev: for each device, for each counter). Samples are
//! therefore appended to a per-family byte buffer and the families written out sorted by name at the end,
//! the order client_golang produces. All buffers (family table, label bytes, help strings) keep their
//! capacity between scrapes, so a steady-state scrape allocates only for families never seen before.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

/// Metric type as written on the `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Untyped,
    /// Only from the textfile collector; samples carry [`Suffix`]es.
    Summary,
    Histogram,
}

impl MetricType {
    fn text(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Untyped => "untyped",
            MetricType::Summary => "summary",
            MetricType::Histogram => "histogram",
        }
    }
    fn openmetrics(self) -> &'static str {
        match self {
            MetricType::Untyped => "unknown",
            t => t.text(),
        }
    }
    fn composite(self) -> bool {
        matches!(self, MetricType::Summary | MetricType::Histogram)
    }
}

/// Name suffix of a sample inside a summary or histogram family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suffix {
    None,
    Bucket,
    Sum,
    Count,
}

impl Suffix {
    fn as_str(self) -> &'static str {
        match self {
            Suffix::None => "",
            Suffix::Bucket => "_bucket",
            Suffix::Sum => "_sum",
            Suffix::Count => "_count",
        }
    }
}

/// Wire format selected from the Accept header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Mirrors expfmt.Negotiate with OpenMetrics enabled: OpenMetrics only when explicitly accepted,
    /// otherwise text (we do not speak the protobuf format; text is what clients fall back to).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        for part in accept.split(',') {
            let media = part.split(';').next().unwrap_or("").trim();
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                return Format::OpenMetrics;
            }
        }
        Format::Text
    }
}

#[derive(Debug)]
struct SampleRef {
    /// Range of the label part (`{a="b"}` or empty) inside `Family::labels`.
    start: u32,
    end: u32,
    suffix: Suffix,
    value: f64,
}

#[derive(Debug)]
struct Family {
    name: Box<str>,
    help: String,
    typ: MetricType,
    /// Scrape generation in which this family was last touched; older families are skipped on output.
    gen: u64,
    labels: Vec<u8>,
    samples: Vec<SampleRef>,
}

/// Per-exporter sample registry, reused across scrapes.
#[derive(Debug, Default)]
pub struct Registry {
    families: Vec<Family>,
    index: HashMap<Box<str>, usize>,
    gen: u64,
    order: Vec<usize>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new scrape: previously emitted samples are forgotten, buffers kept.
    pub fn begin(&mut self) {
        self.gen += 1;
    }

    fn family_index(&mut self, name: &str, help: fmt::Arguments<'_>, typ: MetricType) -> usize {
        let idx = match self.index.get(name) {
            Some(&i) => i,
            None => {
                let i = self.families.len();
                self.families.push(Family {
                    name: name.into(),
                    help: String::new(),
                    typ,
                    gen: 0,
                    labels: Vec::new(),
                    samples: Vec::new(),
                });
                self.index.insert(name.into(), i);
                i
            }
        };
        let fam = &mut self.families[idx];
        if fam.gen != self.gen {
            fam.gen = self.gen;
            fam.typ = typ;
            fam.help.clear();
            // Writing into a String cannot fail.
            let _ = fam.help.write_fmt(help);
            fam.labels.clear();
            fam.samples.clear();
        }
        idx
    }

    /// Adds one sample. The first emission of a family in a scrape fixes its HELP and TYPE.
    pub fn emit(
        &mut self,
        name: &str,
        help: &str,
        typ: MetricType,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.emit_fmt(name, format_args!("{help}"), typ, labels, value);
    }

    /// Like [`Registry::emit`] with a formatted HELP (formatted only when the family is first touched).
    pub fn emit_fmt(
        &mut self,
        name: &str,
        help: fmt::Arguments<'_>,
        typ: MetricType,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.push(name, help, typ, Suffix::None, labels, value);
    }

    /// Adds one sample of a summary/histogram family (`name` is the family name, `suffix` the part
    /// appended on output). Labels are written in the order given.
    pub fn emit_suffixed(
        &mut self,
        name: &str,
        help: &str,
        typ: MetricType,
        suffix: Suffix,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.push(name, format_args!("{help}"), typ, suffix, labels, value);
    }

    fn push(
        &mut self,
        name: &str,
        help: fmt::Arguments<'_>,
        typ: MetricType,
        suffix: Suffix,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        // client_golang sorts label pairs by name; do the same (collectors pass ≤ 12 labels, so a
        // stack copy and insertion sort is enough, and skipped when already sorted).
        let mut sorted: [(&str, &str); 16] = [("", ""); 16];
        let labels: &[(&str, &str)] = if typ.composite()
            || labels.len() > sorted.len()
            || labels.windows(2).all(|w| w[0].0 <= w[1].0)
        {
            labels
        } else {
            let n = labels.len();
            sorted[..n].copy_from_slice(labels);
            sorted[..n].sort_unstable_by(|a, b| a.0.cmp(b.0));
            &sorted[..n]
        };
        let idx = self.family_index(name, help, typ);
        let fam = &mut self.families[idx];
        let start = fam.labels.len();
        if !labels.is_empty() {
            fam.labels.push(b'{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    fam.labels.push(b',');
                }
                fam.labels.extend_from_slice(k.as_bytes());
                fam.labels.extend_from_slice(b"=\"");
                escape_label_value(&mut fam.labels, v);
                fam.labels.push(b'"');
            }
            fam.labels.push(b'}');
        }
        let end = fam.labels.len();
        fam.samples.push(SampleRef {
            start: start as u32,
            end: end as u32,
            suffix,
            value,
        });
    }

    /// Writes the current scrape's samples in `format` to `out` (appending). Families sorted by name,
    /// samples by label text, as client_golang's gatherer does.
    pub fn write(&mut self, format: Format, out: &mut Vec<u8>) {
        self.order.clear();
        for (i, f) in self.families.iter().enumerate() {
            if f.gen == self.gen && !f.samples.is_empty() {
                self.order.push(i);
            }
        }
        let fams = &mut self.families;
        self.order
            .sort_unstable_by(|&a, &b| fams[a].name.cmp(&fams[b].name));
        for &i in &self.order {
            let fam = &mut fams[i];
            let labels = &fam.labels;
            // Histogram/summary lines keep emission order (buckets ascending, then _sum, _count).
            if !fam.typ.composite() {
                fam.samples.sort_by(|a, b| {
                    labels[a.start as usize..a.end as usize]
                        .cmp(&labels[b.start as usize..b.end as usize])
                });
            }
            write_family(fam, format, out);
        }
        if format == Format::OpenMetrics {
            out.extend_from_slice(b"# EOF\n");
        }
        // Keep the table from growing without bound when family names churn (textfile collector).
        let active = self.order.len();
        if self.families.len() > 2 * active + 256 {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let gen = self.gen;
        self.families.retain(|f| f.gen == gen);
        self.index.clear();
        for (i, f) in self.families.iter().enumerate() {
            self.index.insert(f.name.clone(), i);
        }
    }

    #[cfg(test)]
    pub(crate) fn family_count(&self) -> usize {
        self.families.len()
    }
}

fn write_family(fam: &Family, format: Format, out: &mut Vec<u8>) {
    let name: &str = &fam.name;
    match format {
        Format::Text => {
            out.extend_from_slice(b"# HELP ");
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            escape_help(out, &fam.help, false);
            out.extend_from_slice(b"\n# TYPE ");
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            out.extend_from_slice(fam.typ.text().as_bytes());
            out.push(b'\n');
            for s in &fam.samples {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(s.suffix.as_str().as_bytes());
                out.extend_from_slice(&fam.labels[s.start as usize..s.end as usize]);
                out.push(b' ');
                write_go_float(out, s.value);
                out.push(b'\n');
            }
        }
        Format::OpenMetrics => {
            // OpenMetrics names the counter family without `_total` and requires the suffix on samples.
            let (family_name, suffix) = if fam.typ == MetricType::Counter {
                (name.strip_suffix("_total").unwrap_or(name), "_total")
            } else {
                (name, "")
            };
            out.extend_from_slice(b"# HELP ");
            out.extend_from_slice(family_name.as_bytes());
            out.push(b' ');
            escape_help(out, &fam.help, true);
            out.extend_from_slice(b"\n# TYPE ");
            out.extend_from_slice(family_name.as_bytes());
            out.push(b' ');
            out.extend_from_slice(fam.typ.openmetrics().as_bytes());
            out.push(b'\n');
            for s in &fam.samples {
                out.extend_from_slice(family_name.as_bytes());
                out.extend_from_slice(suffix.as_bytes());
                out.extend_from_slice(s.suffix.as_str().as_bytes());
                out.extend_from_slice(&fam.labels[s.start as usize..s.end as usize]);
                out.push(b' ');
                write_openmetrics_float(out, s.value);
                out.push(b'\n');
            }
        }
    }
}

fn escape_label_value(out: &mut Vec<u8>, v: &str) {
    for &b in v.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

fn escape_help(out: &mut Vec<u8>, v: &str, quote: bool) {
    for &b in v.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quote => out.extend_from_slice(b"\\\""),
            _ => out.push(b),
        }
    }
}

/// Formats like Go's `strconv.FormatFloat(v, 'g', -1, 64)` with expfmt's special cases, so values are
/// byte-identical to node_exporter's (`2.5276526592e+10`, `1e-05`, `123456`).
pub fn write_go_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    if v == 0.0 {
        // Go prints -0 as "-0"; expfmt passes it through FormatFloat as well.
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits; re-layout them the way Go's %g does.
    let mut tmp = StackBuf::new();
    let _ = write!(tmp, "{v:e}");
    let s = tmp.as_bytes();
    let (neg, s) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    let epos = s.iter().position(|&b| b == b'e').unwrap_or(s.len());
    let mant = &s[..epos];
    let exp: i32 = std::str::from_utf8(s.get(epos + 1..).unwrap_or(b"0"))
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let mut digits = [0u8; 32];
    let mut nd = 0;
    for &b in mant {
        if b.is_ascii_digit() && nd < digits.len() {
            digits[nd] = b;
            nd += 1;
        }
    }
    let digits = &digits[..nd];
    if neg {
        out.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push(b'0');
        }
        let mut nb = itoa_buf();
        out.extend_from_slice(fmt_u64(&mut nb, a as u64).as_bytes());
    } else if exp < 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            out.push(b'0');
        }
        out.extend_from_slice(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.extend_from_slice(digits);
            for _ in digits.len()..int_len {
                out.push(b'0');
            }
        } else {
            out.extend_from_slice(&digits[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[int_len..]);
        }
    }
}

/// OpenMetrics float: as Go's, but integral values carry ".0" (expfmt's writeOpenMetricsFloat).
fn write_openmetrics_float(out: &mut Vec<u8>, v: f64) {
    let start = out.len();
    write_go_float(out, v);
    let written = &out[start..];
    if v.is_finite() && !written.iter().any(|&b| b == b'.' || b == b'e') {
        out.extend_from_slice(b".0");
    }
}

/// Small fixed buffer for number formatting without heap allocation.
pub struct StackBuf {
    buf: [u8; 64],
    len: usize,
}

impl StackBuf {
    pub fn new() -> Self {
        StackBuf {
            buf: [0; 64],
            len: 0,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for StackBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let b = s.as_bytes();
        if self.len + b.len() > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
        Ok(())
    }
}

pub fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// Formats an integer into `buf` and returns it as text, without allocating.
pub fn fmt_u64(buf: &mut [u8; 20], mut n: u64) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(v: f64) -> String {
        let mut out = Vec::new();
        write_go_float(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn go_float_formatting_matches_strconv_g() {
        // Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) returns.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (123456.0, "123456"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1230000.0, "1.23e+06"),
            (25276526592.0, "2.5276526592e+10"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (12345.678, "12345.678"),
            (0.5, "0.5"),
            (1e21, "1e+21"),
            (1.5e-300, "1.5e-300"),
            (-2.5e10, "-2.5e+10"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (3.25, "3.25"),
            (999999.0, "999999"),
            (18446744073709551615.0, "1.8446744073709552e+19"),
        ];
        for (v, want) in cases {
            assert_eq!(g(*v), *want, "value {v}");
        }
    }

    #[test]
    fn openmetrics_float_has_fraction() {
        let mut out = Vec::new();
        write_openmetrics_float(&mut out, 3.0);
        out.push(b' ');
        write_openmetrics_float(&mut out, 1e6);
        out.push(b' ');
        write_openmetrics_float(&mut out, 0.5);
        assert_eq!(String::from_utf8(out).unwrap(), "3.0 1e+06 0.5");
    }

    #[test]
    fn families_sorted_grouped_and_escaped() {
        let mut r = Registry::new();
        r.begin();
        r.emit(
            "node_b_total",
            "B help",
            MetricType::Counter,
            &[("device", "y")],
            2.0,
        );
        r.emit("node_a", "A \\ help\nx", MetricType::Gauge, &[], 1.0);
        r.emit(
            "node_b_total",
            "ignored",
            MetricType::Counter,
            &[("device", "x\"\n\\")],
            1.0,
        );
        let mut out = Vec::new();
        r.write(Format::Text, &mut out);
        let want = "# HELP node_a A \\\\ help\\nx\n# TYPE node_a gauge\nnode_a 1\n\
                    # HELP node_b_total B help\n# TYPE node_b_total counter\n\
                    node_b_total{device=\"x\\\"\\n\\\\\"} 1\nnode_b_total{device=\"y\"} 2\n";
        assert_eq!(String::from_utf8(out).unwrap(), want);

        let mut out = Vec::new();
        r.write(Format::OpenMetrics, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("# TYPE node_b counter\nnode_b_total{device=\"x\\\"\\n\\\\\"} 1.0\n"),
            "{s}"
        );
        assert!(s.ends_with("# EOF\n"));
    }

    #[test]
    fn stale_families_are_dropped_on_next_scrape() {
        let mut r = Registry::new();
        r.begin();
        r.emit("node_x", "x", MetricType::Gauge, &[], 1.0);
        r.begin();
        r.emit("node_y", "y", MetricType::Gauge, &[], 1.0);
        let mut out = Vec::new();
        r.write(Format::Text, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(!s.contains("node_x"));
        assert!(s.contains("node_y 1"));
    }

    #[test]
    fn churned_families_are_compacted() {
        let mut r = Registry::new();
        for i in 0..1000 {
            r.begin();
            r.emit(&format!("m_{i}"), "h", MetricType::Gauge, &[], 1.0);
            let mut out = Vec::new();
            r.write(Format::Text, &mut out);
        }
        assert!(r.family_count() < 300, "{}", r.family_count());
    }

    #[test]
    fn negotiate() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
    }

    proptest::proptest! {
        #[test]
        fn go_float_round_trips(v in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL) {
            let mut out = Vec::new();
            write_go_float(&mut out, v);
            let s = String::from_utf8(out).unwrap();
            let back: f64 = s.parse().unwrap();
            proptest::prop_assert_eq!(back.to_bits(), v.to_bits(), "{}", s);
        }
    }
}
