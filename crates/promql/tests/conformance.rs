//! Runs Prometheus's promqltest scripts (v2.53.5 `promql/promqltest/testdata/*.test`, copied under
//! `shared/conformance/promql/`) against the engine over `model::mem::MemStorage`.
//!
//! The script format and engine settings are described in that folder's README.md. Besides the plain
//! evaluation, every passing `eval instant` (not `eval_ordered`, not `eval_fail`) is re-run as a range query
//! from T-1m to T+1m step 1m and the points at T must give the same result (the runner's range-mode
//! consistency check).
//!
//! The test fails when a case fails that `conformance-known-failures.txt` does not list, and when a listed
//! case passes (so the list can only shrink). Native-histogram cases are counted as skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use model::duration::parse_duration;
use model::mem::MemStorage;
use model::storage::Storage;
use model::{Labels, STALE_NAN};
use promql::{Engine, EngineOptions, QueryOpts, Value};

fn engine() -> Engine {
    Engine::new(EngineOptions {
        lookback_delta_ms: 5 * 60 * 1000,
        max_samples: 10_000,
        timeout: Duration::from_secs(100),
        max_concurrency: 4,
        no_step_subquery_interval_ms: 60_000,
    })
}

// ---------------------------------------------------------------------------------------------------------
// Numbers, strings and series descriptions.

/// Go's `strconv.ParseInt(s, 0, 64)` (base prefixes, leading 0 = octal).
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let body = body.replace('_', "");
    let (digits, radix) = if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        (r.to_string(), 16)
    } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        (r.to_string(), 2)
    } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        (r.to_string(), 8)
    } else if body.len() > 1 && body.starts_with('0') {
        (body[1..].to_string(), 8)
    } else {
        (body.clone(), 10)
    };
    if digits.is_empty() {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// `parseNumber` of test.go: ParseInt with base detection, else ParseFloat.
fn parse_number(s: &str) -> Option<f64> {
    if let Some(i) = parse_go_int(s) {
        return Some(i as f64);
    }
    // Rust's float grammar accepts inf/infinity/nan case-insensitively with a sign, like Go's ParseFloat.
    if s.bytes().any(|c| c.is_ascii_whitespace()) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Go's `strconv.Unquote` for the three PromQL quote styles.
fn unquote(s: &str) -> Result<String, String> {
    let q = s.chars().next().ok_or("empty string literal")?;
    if s.len() < 2 || !s.ends_with(q) {
        return Err(format!("unterminated string {s}"));
    }
    let inner = &s[1..s.len() - 1];
    if q == '`' {
        return Ok(inner.to_string());
    }
    let mut out = String::new();
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = it.next().ok_or("trailing backslash")?;
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| it.next()).collect();
                let v = u32::from_str_radix(&hex, 16).map_err(|_| format!("bad escape \\{e}{hex}"))?;
                out.push(char::from_u32(v).ok_or("bad code point")?);
            }
            '0'..='7' => {
                let mut oct = String::from(e);
                for _ in 0..2 {
                    if let Some(c) = it.next() {
                        oct.push(c);
                    }
                }
                let v = u32::from_str_radix(&oct, 8).map_err(|_| format!("bad escape \\{oct}"))?;
                out.push(char::from_u32(v).ok_or("bad code point")?);
            }
            other => return Err(format!("unknown escape \\{other}")),
        }
    }
    Ok(out)
}

/// A value slot of a series description: `None` for `_`.
type Values = Vec<Option<f64>>;

fn parse_value(s: &str) -> Result<f64, String> {
    if s == "stale" {
        return Ok(STALE_NAN);
    }
    parse_number(s).ok_or_else(|| format!("bad value {s:?}"))
}

/// One item of the values grammar (see the README's EBNF).
fn parse_item(s: &str, out: &mut Values) -> Result<(), String> {
    if s == "_" {
        out.push(None);
        return Ok(());
    }
    if let Some(n) = s.strip_prefix("_x") {
        let n: u64 = n.parse().map_err(|_| format!("bad repetition {s:?}"))?;
        out.extend((0..n).map(|_| None));
        return Ok(());
    }
    if s.contains("{{") {
        return Err("native histograms are not supported".into());
    }
    let (head, times) = match s.rfind('x') {
        Some(i) if i + 1 < s.len() && s[i + 1..].bytes().all(|c| c.is_ascii_digit()) => {
            (&s[..i], Some(s[i + 1..].parse::<u64>().map_err(|e| e.to_string())?))
        }
        _ => (s, None),
    };
    let b = head.as_bytes();
    let split = (1..b.len()).find(|&j| (b[j] == b'+' || b[j] == b'-') && !matches!(b[j - 1], b'e' | b'E'));
    match (split, times) {
        (None, None) => out.push(Some(parse_value(head)?)),
        (None, Some(n)) => {
            let v = parse_value(head)?;
            out.extend((0..=n).map(|_| Some(v)));
        }
        (Some(_), None) => return Err(format!("expansion without repetition count: {s:?}")),
        (Some(j), Some(n)) => {
            let mut cur = parse_value(&head[..j])?;
            let step = parse_value(&head[j..])?;
            out.push(Some(cur));
            for _ in 0..n {
                cur += step;
                out.push(Some(cur));
            }
        }
    }
    Ok(())
}

/// Parses `metric{labels} values...` into labels and values.
fn parse_series(line: &str) -> Result<(Labels, Values), String> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
        i += 1;
    }
    let name = &line[..i];
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push(("__name__".into(), name.into()));
    }
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= b.len() {
                return Err("unterminated label set".into());
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let ns = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let lname = line[ns..i].to_string();
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= b.len() || b[i] != b'=' {
                return Err(format!("expected '=' after label {lname:?}"));
            }
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let q = *b.get(i).ok_or("missing label value")?;
            if !matches!(q, b'"' | b'\'' | b'`') {
                return Err("label value must be quoted".into());
            }
            let vs = i;
            i += 1;
            while i < b.len() && b[i] != q {
                if b[i] == b'\\' && q != b'`' {
                    i += 1;
                }
                i += 1;
            }
            if i >= b.len() {
                return Err("unterminated label value".into());
            }
            i += 1;
            pairs.push((lname, unquote(&line[vs..i])?));
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && b[i] == b',' {
                i += 1;
            }
        }
    }
    if name.is_empty() && pairs.is_empty() && !line.starts_with('{') {
        return Err(format!("bad series description {line:?}"));
    }
    let mut values = Vec::new();
    for item in line[i..].split_whitespace() {
        parse_item(item, &mut values)?;
    }
    Ok((Labels::from_pairs(&pairs), values))
}

// ---------------------------------------------------------------------------------------------------------
// Commands.

enum Expect {
    /// No expected lines: the result must be empty.
    Empty,
    Scalar(f64),
    Series(Vec<(Labels, Values)>),
}

struct Eval {
    line: usize,
    expr: String,
    fail: bool,
    ordered: bool,
    /// `None` for instant.
    range: Option<(i64, i64, i64)>,
    at: i64,
    expect: Expect,
    skip: bool,
}

fn almost_equal(a: f64, b: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < 1e-6 * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < 1e-6
}

/// Compares an instant result (vector or scalar) with the expectation.
fn compare_instant(e: &Eval, v: &Value) -> Result<(), String> {
    match (v, &e.expect) {
        (Value::Scalar { v, .. }, Expect::Scalar(x)) => {
            if almost_equal(*x, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {x} but got {v}"))
            }
        }
        (Value::Scalar { .. }, _) => Err("expected vector result, but got scalar".into()),
        (Value::Vector(_), Expect::Scalar(_)) => Err("expected scalar result, but got vector".into()),
        (Value::Vector(vec), Expect::Empty) => {
            if vec.is_empty() {
                Ok(())
            } else {
                Err(format!("expected empty result, got {} samples, first {} {}", vec.len(), vec[0].labels, vec[0].v))
            }
        }
        (Value::Vector(vec), Expect::Series(exp)) => {
            let mut by_labels: HashMap<&Labels, (usize, f64)> = HashMap::new();
            for (pos, (l, vals)) in exp.iter().enumerate() {
                let x = match vals.as_slice() {
                    [Some(x)] => *x,
                    _ => return Err(format!("expected series {l} must have exactly one value")),
                };
                by_labels.insert(l, (pos, x));
            }
            for (pos, s) in vec.iter().enumerate() {
                let Some(&(epos, x)) = by_labels.get(&s.labels) else {
                    return Err(format!("unexpected metric {} in result, has value {}", s.labels, s.v));
                };
                if e.ordered && epos != pos {
                    return Err(format!("expected metric {} with {} at position {} but was at {}", s.labels, x, epos + 1, pos + 1));
                }
                if !almost_equal(x, s.v) {
                    return Err(format!("expected {} for {} but got {}", x, s.labels, s.v));
                }
            }
            if vec.len() != by_labels.len() {
                let got: BTreeSet<&Labels> = vec.iter().map(|s| &s.labels).collect();
                let missing: Vec<String> =
                    by_labels.keys().filter(|l| !got.contains(*l)).map(|l| l.to_string()).collect();
                return Err(format!("expected {} series, got {}; missing {:?}", by_labels.len(), vec.len(), missing));
            }
            Ok(())
        }
        (other, _) => Err(format!("unexpected result type {other:?}")),
    }
}

fn compare_range(e: &Eval, v: &Value, start: i64, step: i64, end: i64) -> Result<(), String> {
    let Value::Matrix(m) = v else { return Err(format!("expected matrix result, got {v:?}")) };
    for w in m.windows(2) {
        if w[0].labels >= w[1].labels {
            return Err(format!("matrix not sorted by labels: {} before {}", w[0].labels, w[1].labels));
        }
    }
    let exp: Vec<(Labels, Values)> = match &e.expect {
        Expect::Empty => Vec::new(),
        Expect::Scalar(_) => return Err("expected scalar for a range query".into()),
        Expect::Series(s) => s.clone(),
    };
    let steps = ((end - start) / step + 1) as usize;
    let exp_map: BTreeMap<&Labels, &Values> = exp.iter().map(|(l, v)| (l, v)).collect();
    for s in m {
        if !exp_map.contains_key(&s.labels) {
            return Err(format!("unexpected series {} in result", s.labels));
        }
    }
    for (l, vals) in &exp_map {
        if vals.len() > steps {
            return Err(format!("expected series {l} has {} values but the range has {steps} steps", vals.len()));
        }
        let Some(got) = m.iter().find(|s| &s.labels == *l) else {
            return Err(format!("expected series {l} missing from result"));
        };
        let want: Vec<(i64, f64)> =
            vals.iter().enumerate().filter_map(|(i, v)| v.map(|x| (start + i as i64 * step, x))).collect();
        if want.len() != got.samples.len() {
            return Err(format!(
                "series {l}: expected {} points {:?}, got {} {:?}",
                want.len(),
                want,
                got.samples.len(),
                got.samples.iter().map(|s| (s.t, s.v)).collect::<Vec<_>>()
            ));
        }
        for ((t, x), s) in want.iter().zip(&got.samples) {
            if *t != s.t || !almost_equal(*x, s.v) {
                return Err(format!("series {l}: expected {x}@{t}, got {}@{}", s.v, s.t));
            }
        }
    }
    Ok(())
}

fn run_eval(engine: &Engine, st: &MemStorage, e: &Eval) -> Result<(), String> {
    promql::parse_expr(&e.expr).map_err(|err| format!("parse error: {err}"))?;
    let opts = QueryOpts::default();
    if let Some((start, end, step)) = e.range {
        let res = engine.range_query(st, &e.expr, start, end, step, &opts);
        return match (res, e.fail) {
            (Err(_), true) => Ok(()),
            (Ok(_), true) => Err("expected error, got none".into()),
            (Err(err), false) => Err(format!("error: {err}")),
            (Ok(r), false) => compare_range(e, &r.value, start, step, end),
        };
    }
    let mut queries = vec![(e.expr.clone(), e.at)];
    queries.extend(at_modifier_cases(&e.expr, e.at));
    for (expr, t) in &queries {
        let what = if expr == &e.expr { String::new() } else { format!(" [@-invariance: {expr} at {t}]") };
        let res = engine.instant_query(st, expr, *t, &opts);
        match (res, e.fail) {
            (Err(_), true) => continue,
            (Ok(r), true) => return Err(format!("expected error, got {:?}{what}", r.value)),
            (Err(err), false) => return Err(format!("error: {err}{what}")),
            (Ok(r), false) => compare_instant(e, &r.value).map_err(|m| format!("{m}{what}"))?,
        }
        // Range-mode consistency: the same expression as a range query around T must agree at T.
        let r = engine
            .range_query(st, expr, t - 60_000, t + 60_000, 60_000, &opts)
            .map_err(|err| format!("range-mode check: error: {err}{what}"))?;
        if e.ordered {
            continue;
        }
        let Value::Matrix(m) = r.value else { return Err("range-mode check: not a matrix".into()) };
        for w in m.windows(2) {
            if w[0].labels >= w[1].labels {
                return Err("range-mode check: matrix not sorted".into());
            }
        }
        let at_t: Vec<promql::VectorSample> = m
            .iter()
            .filter_map(|s| {
                s.samples.iter().find(|p| p.t == *t).map(|p| promql::VectorSample { labels: s.labels.clone(), t: *t, v: p.v })
            })
            .collect();
        let v = match e.expect {
            Expect::Scalar(_) => match at_t.first() {
                Some(s) => Value::Scalar { t: *t, v: s.v },
                None => return Err(format!("range-mode check: no scalar point at T{what}")),
            },
            _ => Value::Vector(at_t),
        };
        compare_instant(e, &v).map_err(|m| format!("range-mode check: {m}{what}"))?;
    }
    Ok(())
}

/// Functions whose result depends on the evaluation time even over `@`-pinned arguments
/// (Prometheus's `AtModifierUnsafeFunctions`).
const AT_UNSAFE: &[&str] = &[
    "days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute", "month", "year",
    "predict_linear", "time", "timestamp",
];

/// The runner's `@`-modifier invariance cases: every selector and subquery without `@` (outside subqueries)
/// gets `@ <eval time>`, and the rewritten expression must give the same result at other evaluation times.
fn at_modifier_cases(expr: &str, t: i64) -> Vec<(String, i64)> {
    use promql_parser::parser::{AtModifier, Expr};
    let Ok(mut e) = promql::parse_expr(expr) else { return Vec::new() };
    let at = if t >= 0 {
        std::time::UNIX_EPOCH + Duration::from_millis(t as u64)
    } else {
        std::time::UNIX_EPOCH - Duration::from_millis(t.unsigned_abs())
    };
    fn walk(e: &mut Expr, at: std::time::SystemTime, unsafe_found: &mut bool) {
        match e {
            Expr::VectorSelector(vs) if vs.at.is_none() => vs.at = Some(AtModifier::At(at)),
            Expr::MatrixSelector(ms) if ms.vs.at.is_none() => ms.vs.at = Some(AtModifier::At(at)),
            // Children of a subquery (which now always has an `@`) are left alone.
            Expr::Subquery(sq) if sq.at.is_none() => sq.at = Some(AtModifier::At(at)),
            Expr::Call(c) => {
                if AT_UNSAFE.contains(&c.func.name) {
                    *unsafe_found = true;
                }
                for a in c.args.args.iter_mut() {
                    walk(a, at, unsafe_found);
                }
            }
            Expr::Aggregate(a) => {
                walk(&mut a.expr, at, unsafe_found);
                if let Some(p) = a.param.as_mut() {
                    walk(p, at, unsafe_found);
                }
            }
            Expr::Binary(b) => {
                walk(&mut b.lhs, at, unsafe_found);
                walk(&mut b.rhs, at, unsafe_found);
            }
            Expr::Paren(p) => walk(&mut p.expr, at, unsafe_found),
            Expr::Unary(u) => walk(&mut u.expr, at, unsafe_found),
            _ => {}
        }
    }
    let mut unsafe_found = false;
    walk(&mut e, at, &mut unsafe_found);
    if unsafe_found {
        return Vec::new();
    }
    let printed = e.to_string();
    let times = if t == 0 { vec![-1000, 0, 1000] } else { vec![-10 * t, 0, t / 5, t, 10 * t] };
    times.into_iter().map(|et| (printed.clone(), et)).collect()
}

#[derive(Default)]
struct FileResult {
    passed: usize,
    failed: Vec<(usize, String)>,
    skipped: usize,
}

fn run_file(engine: &Engine, path: &Path) -> FileResult {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let native_file = path.file_name().is_some_and(|n| n == "native_histograms.test");
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let instant_re =
        regex::Regex::new(r"^eval(?:_(fail|ordered))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$").expect("static regex");
    let range_re =
        regex::Regex::new(r"^eval(?:_(fail))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$").expect("static regex");
    let st = MemStorage::new();
    let mut res = FileResult::default();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        if line.is_empty() {
            i += 1;
            continue;
        }
        let lineno = i + 1;
        let word = line.split_whitespace().next().unwrap_or("").to_lowercase();
        if word == "clear" {
            st.clear();
            i += 1;
            continue;
        }
        if word == "load" {
            let interval = line[4..].trim();
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                body.push((i + 1, lines[i].clone()));
                i += 1;
            }
            if native_file || body.iter().any(|(_, l)| l.contains("{{")) {
                continue;
            }
            let interval = match parse_duration(interval) {
                Ok(d) => d,
                Err(e) => {
                    res.failed.push((lineno, format!("bad load interval: {e}")));
                    continue;
                }
            };
            let mut series: BTreeMap<Labels, Values> = BTreeMap::new();
            for (n, l) in &body {
                match parse_series(l) {
                    Ok((labels, vals)) => {
                        series.insert(labels, vals);
                    }
                    Err(e) => res.failed.push((*n, format!("bad series line: {e}"))),
                }
            }
            let mut app = st.appender();
            for (labels, vals) in &series {
                for (k, v) in vals.iter().enumerate() {
                    if let Some(v) = v {
                        if let Err(e) = app.append(0, labels, k as i64 * interval, *v) {
                            res.failed.push((lineno, format!("load append {labels}: {e}")));
                        }
                    }
                }
            }
            if let Err(e) = app.commit() {
                res.failed.push((lineno, format!("load commit: {e}")));
            }
            continue;
        }
        if !word.starts_with("eval") {
            res.failed.push((lineno, format!("invalid command {word:?}")));
            i += 1;
            continue;
        }
        // Header.
        let mut ev = Eval {
            line: lineno,
            expr: String::new(),
            fail: false,
            ordered: false,
            range: None,
            at: 0,
            expect: Expect::Empty,
            skip: native_file,
        };
        let mut header_err = None;
        if let Some(c) = instant_re.captures(line) {
            let kind = c.get(1).map(|m| m.as_str());
            ev.fail = kind == Some("fail");
            ev.ordered = kind == Some("ordered");
            ev.expr = c[3].to_string();
            match c.get(2).map(|m| parse_duration(m.as_str())) {
                Some(Ok(t)) => ev.at = t,
                _ => header_err = Some("bad or missing eval time".to_string()),
            }
        } else if let Some(c) = range_re.captures(line) {
            ev.fail = c.get(1).is_some();
            ev.expr = c[5].to_string();
            match (parse_duration(&c[2]), parse_duration(&c[3]), parse_duration(&c[4])) {
                (Ok(s), Ok(e), Ok(st)) if e >= s && st > 0 => ev.range = Some((s, e, st)),
                _ => header_err = Some("bad range".to_string()),
            }
        } else {
            header_err = Some(format!("invalid eval command {line:?}"));
        }
        // Body.
        let mut exp: Vec<(Labels, Values)> = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].is_empty() {
            let l = &lines[i];
            i += 1;
            if l.contains("{{") {
                ev.skip = true;
                continue;
            }
            if let Some(x) = parse_number(l) {
                ev.expect = Expect::Scalar(x);
                break;
            }
            match parse_series(l) {
                Ok(s) => exp.push(s),
                Err(e) => header_err = Some(format!("bad expectation line {}: {e}", i)),
            }
        }
        if !exp.is_empty() {
            ev.expect = Expect::Series(exp);
        }
        if ev.expr.contains("{{") {
            ev.skip = true;
        }
        if ev.skip {
            res.skipped += 1;
            continue;
        }
        if let Some(e) = header_err {
            res.failed.push((ev.line, e));
            continue;
        }
        match run_eval(engine, &st, &ev) {
            Ok(()) => res.passed += 1,
            Err(e) => res.failed.push((ev.line, format!("{}: {e}", ev.expr))),
        }
    }
    res
}

fn known_failures(path: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else { return BTreeMap::new() };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((k, r)) => (k.to_string(), r.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[test]
fn promql_conformance() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("../../../shared/conformance/promql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!("conformance scripts not found at {}: {e} (expected shared/ beside the workspace)", dir.display())
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .test files in {}", dir.display());
    let known = known_failures(&manifest.join("conformance-known-failures.txt"));

    let engine = engine();
    let mut unexpected = Vec::new();
    let mut failed_keys = BTreeSet::new();
    let (mut tp, mut tf, mut ts) = (0, 0, 0);
    for f in &files {
        let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let r = run_file(&engine, f);
        println!("{name}: {} passed, {} failed, {} skipped", r.passed, r.failed.len(), r.skipped);
        tp += r.passed;
        tf += r.failed.len();
        ts += r.skipped;
        for (line, msg) in &r.failed {
            let key = format!("{name}:{line}");
            if !known.contains_key(&key) {
                unexpected.push(format!("{key}  {msg}"));
            }
            failed_keys.insert(key);
        }
    }
    println!("total: {tp} passed, {tf} failed, {ts} skipped");
    let fixed: Vec<&String> = known.keys().filter(|k| !failed_keys.contains(*k)).collect();
    for u in &unexpected {
        println!("UNEXPECTED FAILURE {u}");
    }
    for k in &fixed {
        println!("NOW PASSES (remove from conformance-known-failures.txt): {k}");
    }
    assert!(unexpected.is_empty() && fixed.is_empty(), "{} unexpected failures, {} known failures now pass", unexpected.len(), fixed.len());
}

#[test]
fn series_notation() {
    let (l, v) = parse_series(r#"http_requests{job="api", instance="0"} 0+10x2 _ stale -2+4x1 _x2 1x1"#).unwrap();
    assert_eq!(l.get("job"), Some("api"));
    assert_eq!(l.metric_name(), Some("http_requests"));
    assert_eq!(&v[..3], &[Some(0.0), Some(10.0), Some(20.0)]);
    assert_eq!(v[3], None);
    assert!(v[4].is_some_and(model::is_stale_nan));
    assert_eq!(&v[5..], &[Some(-2.0), Some(2.0), None, None, Some(1.0), Some(1.0)]);
    assert_eq!(parse_number("010"), Some(8.0));
    assert_eq!(parse_number("-Inf"), Some(f64::NEG_INFINITY));
    assert_eq!(parse_number("{}"), None);
    assert!(parse_series("1-2").is_err() || parse_series("x 1-2").is_err());
}
