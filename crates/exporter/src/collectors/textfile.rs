//! textfile: `*.prom` files in --collector.textfile.directory, re-exposed with node_exporter's rules
//! (node_exporter textfile.go): missing labels filled with "", HELP defaulted to "Metric read from <files>",
//! files with client-side timestamps skipped, `node_textfile_mtime_seconds` per file read, and
//! `node_textfile_scrape_error` set when any directory or file failed.

use std::collections::BTreeMap;
use std::path::Path;

use super::prelude::*;
use crate::expo::Suffix;

#[derive(Default)]
pub struct Textfile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TfType {
    Counter,
    Gauge,
    Untyped,
    Summary,
    Histogram,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TfSample {
    pub suffix: Suffix,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TfFamily {
    pub help: Option<String>,
    pub typ: TfType,
    pub samples: Vec<TfSample>,
}

fn unescape(s: &str, label: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some('"') if label => out.push('"'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn valid_name(s: &str, metric: bool) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let ok_first = first.is_ascii_alphabetic() || first == '_' || (metric && first == ':');
    ok_first && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':'))
}

/// Parses `{a="b",c="d"}` starting at `s` (which begins with '{'); returns labels and the rest.
type LabelPairs = Vec<(String, String)>;

fn parse_labels(s: &str) -> Result<(LabelPairs, &str), String> {
    let mut labels = Vec::new();
    let mut rest = &s[1..];
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("expected '=' in label set")?;
        let name = rest[..eq].trim();
        if !valid_name(name, false) {
            return Err(format!("invalid label name {name:?}"));
        }
        rest = rest[eq + 1..].trim_start();
        let r = rest
            .strip_prefix('"')
            .ok_or("expected '\"' for label value")?;
        let b = r.as_bytes();
        let mut i = 0;
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        if i >= b.len() {
            return Err("unterminated label value".into());
        }
        if labels.iter().any(|(n, _): &(String, String)| n == name) {
            return Err(format!("duplicate label name {name}"));
        }
        labels.push((name.to_string(), unescape(&r[..i], true)));
        rest = r[i + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after label value".into());
        }
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("invalid value {s:?}")),
    }
}

/// Parses the Prometheus text format into families keyed by name. Returns whether any sample carried
/// a timestamp (node_exporter rejects such files).
pub fn parse_text(text: &str) -> Result<(BTreeMap<String, TfFamily>, bool), String> {
    let mut fams: BTreeMap<String, TfFamily> = BTreeMap::new();
    let mut has_ts = false;
    for (ln, line) in text.split('\n').enumerate() {
        let line = line.trim_start();
        if line.is_empty() {
            continue;
        }
        let err = |m: String| format!("text format parsing error in line {}: {m}", ln + 1);
        if let Some(c) = line.strip_prefix('#') {
            let c = c.trim_start_matches([' ', '\t']);
            let (kw, rest) = c.split_once([' ', '\t']).unwrap_or((c, ""));
            if kw != "HELP" && kw != "TYPE" {
                continue;
            }
            // Like the Go parser: blanks are spaces and tabs; HELP text keeps everything after them.
            let rest = rest.trim_start_matches([' ', '\t']);
            let (name, arg) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            let arg = arg.trim_start_matches([' ', '\t']);
            if !valid_name(name, true) {
                return Err(err(format!("invalid metric name in comment: {name:?}")));
            }
            let fam = fams.entry(name.to_string()).or_insert(TfFamily {
                help: None,
                typ: TfType::Untyped,
                samples: vec![],
            });
            if kw == "HELP" {
                if fam.help.is_some() {
                    return Err(err(format!("second HELP line for metric name {name:?}")));
                }
                fam.help = Some(unescape(arg, false));
            } else {
                if !fam.samples.is_empty() {
                    return Err(err(format!("TYPE line for {name} after samples")));
                }
                fam.typ = match arg.trim() {
                    "counter" => TfType::Counter,
                    "gauge" => TfType::Gauge,
                    "untyped" => TfType::Untyped,
                    "summary" => TfType::Summary,
                    "histogram" => TfType::Histogram,
                    t => return Err(err(format!("unknown metric type {t:?}"))),
                };
            }
            continue;
        }
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if !valid_name(name, true) {
            return Err(err(format!("invalid metric name {name:?}")));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if rest.starts_with('{') {
            let (l, r) = parse_labels(rest).map_err(err)?;
            labels = l;
            rest = r;
        }
        let mut parts = rest.split_ascii_whitespace();
        let value =
            parse_value(parts.next().ok_or_else(|| err("missing value".into()))?).map_err(err)?;
        if let Some(ts) = parts.next() {
            ts.parse::<i64>()
                .map_err(|_| err(format!("invalid timestamp {ts:?}")))?;
            has_ts = true;
        }
        if parts.next().is_some() {
            return Err(err("unexpected trailing content".into()));
        }
        // Attach _sum/_count/_bucket lines to a declared summary/histogram family.
        let mut target = (name.to_string(), Suffix::None);
        for (suf, sx) in [
            ("_bucket", Suffix::Bucket),
            ("_sum", Suffix::Sum),
            ("_count", Suffix::Count),
        ] {
            if let Some(base) = name.strip_suffix(suf) {
                if let Some(f) = fams.get(base) {
                    let ok = match f.typ {
                        TfType::Histogram => true,
                        TfType::Summary => sx != Suffix::Bucket,
                        _ => false,
                    };
                    if ok {
                        target = (base.to_string(), sx);
                    }
                }
            }
        }
        let fam = fams.entry(target.0).or_insert(TfFamily {
            help: None,
            typ: TfType::Untyped,
            samples: vec![],
        });
        match (fam.typ, target.1) {
            (TfType::Summary, Suffix::None) if !labels.iter().any(|(n, _)| n == "quantile") => {
                return Err(err("summary sample without quantile label".into()))
            }
            (TfType::Histogram, Suffix::None) => {
                return Err(err("histogram sample without _bucket/_sum/_count".into()))
            }
            (TfType::Histogram, Suffix::Bucket) if !labels.iter().any(|(n, _)| n == "le") => {
                return Err(err("histogram bucket without le label".into()))
            }
            _ => {}
        }
        fam.samples.push(TfSample {
            suffix: target.1,
            labels,
            value,
        });
    }
    Ok((fams, has_ts))
}

fn mtime_secs(p: &Path) -> Option<f64> {
    let md = std::fs::metadata(p).ok()?;
    let d = md
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(d.as_secs() as f64)
}

impl Collector for Textfile {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let mut errored = false;
        let mut parsed: Vec<(String, TfFamily)> = Vec::new();
        let mut files_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut mtimes: Vec<(String, f64)> = Vec::new();
        if let Some(pattern) = &cfg.textfile_directory {
            // node_exporter 1.5 globs the flag value (filepath.Glob); no match or a malformed pattern
            // means "one directory, named literally".
            let pattern = pattern.to_string_lossy();
            let dirs = match crate::glob::glob(&pattern) {
                Ok(v) if !v.is_empty() => v,
                _ => vec![pattern.into_owned()],
            };
            for dir in &dirs {
                let dir = Path::new(dir);
                match sorted_dir(dir) {
                    Err(e) => {
                        errored = true;
                        tracing::warn!(path = %dir.display(), error = %e, "failed to read textfile collector directory");
                    }
                    Ok(names) => {
                        for n in names.iter().filter(|n| n.ends_with(".prom")) {
                            let p = dir.join(n);
                            let pstr = crate::glob::clean(&p.to_string_lossy());
                            let text = match read_str(&p, &mut s.buf) {
                                Ok(t) => t,
                                Err(e) => {
                                    errored = true;
                                    tracing::warn!(file = %n, error = %e, "failed to collect textfile data");
                                    continue;
                                }
                            };
                            match parse_text(text) {
                                Ok((_, true)) => {
                                    errored = true;
                                    tracing::warn!(file = %pstr, "textfile contains unsupported client-side timestamps, skipping entire file");
                                }
                                Ok((fams, false)) => {
                                    for (name, f) in fams {
                                        if f.samples.is_empty() {
                                            continue;
                                        }
                                        files_of
                                            .entry(name.clone())
                                            .or_default()
                                            .push(pstr.clone());
                                        parsed.push((name, f));
                                    }
                                    match mtime_secs(&p) {
                                        Some(t) => mtimes.push((pstr, t)),
                                        None => errored = true,
                                    }
                                }
                                Err(e) => {
                                    errored = true;
                                    tracing::warn!(file = %pstr, error = %e, "failed to parse textfile data");
                                }
                            }
                        }
                    }
                }
            }
        }
        for (name, f) in &parsed {
            let help = match &f.help {
                Some(h) => h.clone(),
                None => format!(
                    "Metric read from {}",
                    files_of.get(name).map(|v| v.join(", ")).unwrap_or_default()
                ),
            };
            // Every sample gets the union of the family's label names, missing ones as "".
            let mut all: Vec<&str> = Vec::new();
            for smp in &f.samples {
                for (k, _) in &smp.labels {
                    if k != "le" && k != "quantile" && !all.contains(&k.as_str()) {
                        all.push(k);
                    }
                }
            }
            all.sort_unstable();
            let typ = match f.typ {
                TfType::Counter => MetricType::Counter,
                TfType::Gauge => MetricType::Gauge,
                TfType::Untyped => MetricType::Untyped,
                TfType::Summary => MetricType::Summary,
                TfType::Histogram => MetricType::Histogram,
            };
            let mut labels: Vec<(&str, &str)> = Vec::new();
            for smp in &f.samples {
                labels.clear();
                for k in &all {
                    let v = smp
                        .labels
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.as_str())
                        .unwrap_or("");
                    labels.push((k, v));
                }
                for (k, v) in &smp.labels {
                    if k == "le" || k == "quantile" {
                        labels.push((k, v));
                    }
                }
                out.emit_suffixed(name, &help, typ, smp.suffix, &labels, smp.value);
            }
        }
        mtimes.sort_by(|a, b| a.0.cmp(&b.0));
        for (p, t) in &mtimes {
            out.emit(
                "node_textfile_mtime_seconds",
                "Unixtime mtime of textfiles successfully read.",
                Gauge,
                &[("file", p)],
                *t,
            );
        }
        out.emit(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            Gauge,
            &[],
            if errored { 1.0 } else { 0.0 },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_format() {
        let (f, ts) = parse_text(
            "# HELP a_total An \\\\ help\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\"} 3\n\
             # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\nplain 1\n",
        )
        .unwrap();
        assert!(!ts);
        assert_eq!(f["a_total"].help.as_deref(), Some("An \\ help"));
        assert_eq!(f["a_total"].typ, TfType::Counter);
        assert_eq!(
            f["a_total"].samples[0].labels[1],
            ("y".to_string(), "q\"".to_string())
        );
        assert_eq!(f["h"].samples.len(), 4);
        assert_eq!(f["h"].samples[2].suffix, Suffix::Sum);
        assert_eq!(f["plain"].typ, TfType::Untyped);
    }

    #[test]
    fn directory_flag_is_a_glob() {
        let d = tempfile::tempdir().expect("tempdir");
        for (sub, body) in [
            ("jobs1", "a_total 1\n"),
            ("jobs2", "b_total 2\n"),
            ("other", "c_total 3\n"),
        ] {
            std::fs::create_dir(d.path().join(sub)).expect("mkdir");
            std::fs::write(d.path().join(sub).join("m.prom"), body).expect("write");
        }
        let mut args = crate::Args::default();
        args.textfile_directory = format!("{}/jobs*", d.path().display());
        let cfg = Config::from_args(&args).expect("config");
        let mut r = Registry::new();
        r.begin();
        Textfile
            .update(&cfg, &mut Scratch::default(), &mut r)
            .expect("update");
        let mut out = Vec::new();
        r.write(crate::expo::Format::Text, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("a_total 1") && text.contains("b_total 2"),
            "{text}"
        );
        assert!(!text.contains("c_total"), "{text}");
        assert!(
            text.contains(&format!("file=\"{}/jobs2/m.prom\"", d.path().display())),
            "{text}"
        );
        assert!(text.contains("node_textfile_scrape_error 0"), "{text}");
        // A pattern matching nothing is one literal (missing) directory: scrape error 1.
        args.textfile_directory = format!("{}/none*", d.path().display());
        let cfg = Config::from_args(&args).expect("config");
        r.begin();
        Textfile
            .update(&cfg, &mut Scratch::default(), &mut r)
            .expect("update");
        let mut out = Vec::new();
        r.write(crate::expo::Format::Text, &mut out);
        assert!(String::from_utf8_lossy(&out).contains("node_textfile_scrape_error 1"));
    }

    proptest::proptest! {
        /// Whatever a label value holds, the encoder's escaping and this parser's unescaping agree.
        #[test]
        fn label_values_round_trip(v in "\\PC*", help in "[^\n]*") {
            let mut r = crate::expo::Registry::new();
            r.begin();
            r.emit("m_total", &help, MetricType::Counter, &[("k", &v)], 1.5);
            let mut out = Vec::new();
            r.write(crate::expo::Format::Text, &mut out);
            let (f, _) = parse_text(std::str::from_utf8(&out).unwrap()).unwrap();
            proptest::prop_assert_eq!(&f["m_total"].samples[0].labels[0].1, &v);
            proptest::prop_assert_eq!(f["m_total"].samples[0].value, 1.5);
            proptest::prop_assert_eq!(f["m_total"].help.as_deref(), Some(help.trim_start_matches([' ', '\t'])));
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse_text("a{b=\"c} 1\n").is_err());
        assert!(parse_text("1a 1\n").is_err());
        assert!(parse_text("a x\n").is_err());
        assert!(parse_text("# TYPE a foo\n").is_err());
        assert!(parse_text("a 1\n# TYPE a gauge\n").is_err());
        assert!(parse_text("a 1 123\n").unwrap().1);
    }
}
