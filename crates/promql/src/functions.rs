//! PromQL functions (Prometheus 2.53's `FunctionCalls` for float samples).
//!
//! Functions with a range-vector argument run series by series over a sliding [`Window`], so each sample is
//! read once per query; the others run step by step through [`Ev::range_eval`].

use std::collections::HashMap;

use model::{Labels, LabelsBuilder, Sample, METRIC_NAME};

use crate::aggr::go_sort_reverse;
use crate::eval::{has_duplicate_labels, par_map, Ev, Matrix, Result, Series, Window, DUP_LABELSET};
use crate::plan::{Func, Node, ValueType};
use crate::QueryError;

/// Formats like Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// Parses like Go's `strconv.ParseFloat(s, 64)` for the forms that matter here (`+Inf`, `inf`, `NaN`,
/// decimals with exponents).
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            if body.is_empty() || !body.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

/// Neumaier-compensated summation step, as Prometheus's `kahanSumInc`.
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() { c + ((sum - t) + inc) } else { c + ((inc - t) + sum) };
    (t, c)
}

/// φ-quantile of `values` (sorted in place), as Prometheus's `quantile`.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaNs sort first, as Go's vectorByValueHeap orders them.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

fn linear_regression(samples: &[Sample], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut cx, mut sum_y, mut cy, mut sum_xy, mut cxy, mut sum_x2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].v;
    let mut const_y = true;
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sum_x, cx) = kahan_inc(x, sum_x, cx);
        (sum_y, cy) = kahan_inc(s.v, sum_y, cy);
        (sum_xy, cxy) = kahan_inc(x * s.v, sum_xy, cxy);
        (sum_x2, cx2) = kahan_inc(x * x, sum_x2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += cx;
    sum_y += cy;
    sum_xy += cxy;
    sum_x2 += cx2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// What a range function sees besides its window.
pub(crate) struct RangeArgs {
    /// Evaluation time of the step.
    pub ts: i64,
    /// The window `[start, end]` (ms) the samples were taken from.
    pub start: i64,
    pub end: i64,
    /// The selector's range in ms.
    pub range: i64,
    /// Values of the scalar arguments at this step, in argument order (excluding the range vector).
    pub scalars: [f64; 2],
}

fn extrapolated_rate(s: &[Sample], a: &RangeArgs, is_counter: bool, is_rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let first = s[0];
    let last = s[s.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = first.v;
        for p in &s[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut duration_to_start = (first.t - a.start) as f64 / 1000.0;
    let mut duration_to_end = (a.end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled_interval / (s.len() - 1) as f64;
    let threshold = avg * 1.1;
    let mut extrapolate_to = sampled_interval;
    if duration_to_start >= threshold {
        duration_to_start = avg / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        // A counter cannot go below zero: do not extrapolate past the point where it would have been zero.
        let duration_to_zero = sampled_interval * (first.v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    extrapolate_to += duration_to_start;
    if duration_to_end >= threshold {
        duration_to_end = avg / 2.0;
    }
    extrapolate_to += duration_to_end;
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= a.range as f64 / 1000.0;
    }
    Some(result * factor)
}

fn instant_value(s: &[Sample], is_rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let last = s[s.len() - 1];
    let prev = s[s.len() - 2];
    let mut v = if is_rate && last.v < prev.v { last.v } else { last.v - prev.v };
    let dt = last.t - prev.t;
    if dt == 0 {
        return None;
    }
    if is_rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

fn holt_winters(s: &[Sample], sf: f64, tf: f64) -> Result<Option<f64>> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(QueryError::Execution(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}")));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(QueryError::Execution(format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}")));
    }
    if s.len() < 2 {
        return Ok(None);
    }
    let trend = |i: usize, s0: f64, s1: f64, b: f64| if i == 0 { b } else { tf * (s1 - s0) + (1.0 - tf) * b };
    let mut s0 = 0.0;
    let mut s1 = s[0].v;
    let mut b = s[1].v - s[0].v;
    for (i, p) in s.iter().enumerate().skip(1) {
        let x = sf * p.v;
        b = trend(i - 1, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

/// Per-thread scratch of [`range_function`].
#[derive(Default)]
struct RangeScratch {
    buf: Vec<Sample>,
    values: Vec<f64>,
}

/// Evaluates a range-vector function on one non-empty window.
fn call_range(f: Func, s: &[Sample], a: &RangeArgs, scratch: &mut Vec<f64>) -> Result<Option<f64>> {
    Ok(match f {
        Func::Rate => extrapolated_rate(s, a, true, true),
        Func::Increase => extrapolated_rate(s, a, true, false),
        Func::Delta => extrapolated_rate(s, a, false, false),
        Func::Irate => instant_value(s, true),
        Func::Idelta => instant_value(s, false),
        Func::Deriv => {
            if s.len() < 2 {
                None
            } else {
                Some(linear_regression(s, s[0].t).0)
            }
        }
        Func::PredictLinear => {
            if s.len() < 2 {
                None
            } else {
                let (slope, intercept) = linear_regression(s, a.ts);
                Some(slope * a.scalars[0] + intercept)
            }
        }
        Func::HoltWinters | Func::DoubleExponentialSmoothing => holt_winters(s, a.scalars[0], a.scalars[1])?,
        Func::Resets => {
            let mut n = 0;
            for w in s.windows(2) {
                if w[1].v < w[0].v {
                    n += 1;
                }
            }
            Some(n as f64)
        }
        Func::Changes => {
            let mut n = 0;
            for w in s.windows(2) {
                let (p, c) = (w[0].v, w[1].v);
                if c != p && !(c.is_nan() && p.is_nan()) {
                    n += 1;
                }
            }
            Some(n as f64)
        }
        Func::AvgOverTime => {
            let (mut mean, mut count, mut c) = (0.0f64, 0.0, 0.0);
            for p in s {
                count += 1.0;
                if mean.is_infinite() {
                    if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                        continue;
                    }
                    if !p.v.is_infinite() && !p.v.is_nan() {
                        continue;
                    }
                }
                (mean, c) = kahan_inc(p.v / count - mean / count, mean, c);
            }
            Some(if mean.is_infinite() { mean } else { mean + c })
        }
        Func::SumOverTime => {
            let (mut sum, mut c) = (0.0f64, 0.0);
            for p in s {
                (sum, c) = kahan_inc(p.v, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }
        Func::CountOverTime => Some(s.len() as f64),
        Func::LastOverTime => Some(s[s.len() - 1].v),
        Func::PresentOverTime | Func::AbsentOverTime => Some(1.0),
        Func::MaxOverTime => {
            let mut m = s[0].v;
            for p in s {
                if p.v > m || m.is_nan() {
                    m = p.v;
                }
            }
            Some(m)
        }
        Func::MinOverTime => {
            let mut m = s[0].v;
            for p in s {
                if p.v < m || m.is_nan() {
                    m = p.v;
                }
            }
            Some(m)
        }
        Func::QuantileOverTime => {
            scratch.clear();
            scratch.extend(s.iter().map(|p| p.v));
            Some(quantile(a.scalars[0], scratch))
        }
        Func::MadOverTime => {
            scratch.clear();
            scratch.extend(s.iter().map(|p| p.v));
            let median = quantile(0.5, scratch);
            scratch.clear();
            scratch.extend(s.iter().map(|p| (p.v - median).abs()));
            Some(quantile(0.5, scratch))
        }
        Func::StddevOverTime | Func::StdvarOverTime => {
            let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for p in s {
                count += 1.0;
                let delta = p.v - (mean + cmean);
                (mean, cmean) = kahan_inc(delta / count, mean, cmean);
                (aux, caux) = kahan_inc(delta * (p.v - (mean + cmean)), aux, caux);
            }
            let var = (aux + caux) / count;
            Some(if f == Func::StddevOverTime { var.sqrt() } else { var })
        }
        other => return Err(QueryError::Execution(format!("BUG: {} is not a range-vector function", other.name()))),
    })
}

pub(crate) fn eval_call(ev: &Ev, func: Func, args: &[Node]) -> Result<Matrix> {
    if func == Func::Timestamp {
        if let Some(Node::VectorSel(sel)) = args.first() {
            let m = ev.vector_selector(sel, Some(func), true)?;
            return simple(ev, &m, |v| v);
        }
    }
    if let Some(mi) = args.iter().position(|a| a.value_type() == ValueType::Matrix) {
        return range_function(ev, func, args, mi, false);
    }
    match func {
        Func::LabelReplace => return label_replace(ev, args),
        Func::LabelJoin => return label_join(ev, args),
        _ => {}
    }
    instant_function(ev, func, args)
}

/// Applies `f` to every value, dropping metric names (Prometheus's `simpleFunc`).
fn simple(ev: &Ev, m: &Matrix, f: impl Fn(f64) -> f64) -> Result<Matrix> {
    ev.map_series(m, |i| drop_name(&m[i].labels), |_, x| Some(f(x)))
}

/// Like [`simple`], with access to the step's other arguments.
fn per_element(
    ev: &Ev,
    args: &[&Matrix],
    mut f: impl FnMut(i64, &[Vec<(usize, f64)>], &mut Vec<(u64, f64)>),
) -> Result<Matrix> {
    let m = args[0];
    ev.range_eval_keyed(
        args,
        |ts, _, v, out| {
            f(ts, v, out);
            Ok(())
        },
        |k| drop_name(&m[k as usize].labels),
        DUP_LABELSET,
    )
}

fn drop_name(l: &Labels) -> Labels {
    if l.has(METRIC_NAME) {
        l.without_metric_name()
    } else {
        l.clone()
    }
}

/// Evaluates `node` for an aggregation whose result does not depend on its input series' metric names. A
/// range-vector function call then keeps each series' labels as selected instead of building a copy without
/// the name for every series (that copy was ~14% of an instant `histogram_quantile(0.99, sum by (le, namespace)
/// (rate(...)))` over 35k series); the duplicate-labelset check still compares the sets without names, so
/// errors are Prometheus's. Other nodes evaluate as usual.
pub(crate) fn eval_ignoring_names(ev: &Ev, node: &Node) -> Result<Matrix> {
    if let Node::Call { func, args, .. } = node {
        let drops_name = !matches!(func, Func::LastOverTime | Func::AbsentOverTime | Func::Timestamp);
        if drops_name && crate::eval::fast_paths() {
            if let Some(mi) = args.iter().position(|a| a.value_type() == ValueType::Matrix) {
                return ev.eval_m_by(|| range_function(ev, *func, args, mi, true));
            }
        }
    }
    ev.eval_m(node)
}

/// A range-vector function over argument `mi`. With `keep_names`, output series keep their metric names (see
/// [`eval_ignoring_names`]).
fn range_function(ev: &Ev, func: Func, args: &[Node], mi: usize, keep_names: bool) -> Result<Matrix> {
    // Scalar arguments, per step.
    let mut scalar_args: Vec<Vec<f64>> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != mi {
            scalar_args.push(ev.scalar_steps(a)?);
        }
    }
    if func == Func::QuantileOverTime {
        if let Some(q) = scalar_args.first().and_then(|v| v.first()) {
            if q.is_nan() || !(0.0..=1.0).contains(q) {
                ev.warn(format!("PromQL warning: quantile value should be between 0 and 1, got {}", format_go_float(*q)));
            }
        }
    }
    // The source series with their iterators, plus the window geometry.
    let (sources, range, offset, at, absent_labels): (Vec<model::Series>, i64, i64, Option<i64>, Labels) =
        match &args[mi] {
            Node::MatrixSel { sel, range } => {
                let (lo, hi) = match sel.at {
                    Some(t) => (t - sel.offset, t - sel.offset),
                    None => (ev.r.start - sel.offset, ev.r.end - sel.offset),
                };
                let series = ev.select(sel, lo - range, hi, *range, Some(func))?;
                (series, *range, sel.offset, sel.at, sel.absent_labels.clone())
            }
            Node::Subquery { expr, range, step, offset, at } => {
                let m = ev.subquery(expr, *range, *step, *offset, *at)?;
                let series = m
                    .into_iter()
                    .map(|s| model::Series {
                        labels: s.labels,
                        samples: Box::new(model::VecSampleIter::new(s.points)),
                    })
                    .collect();
                (series, *range, *offset, *at, Labels::empty())
            }
            _ => return Err(QueryError::Execution("BUG: range-vector argument is neither selector nor subquery".into())),
        };
    // Series by series (in parallel when there are many): each series' samples are decoded once and slid
    // over by the steps' windows.
    let r = ev.r;
    let steps = r.steps();
    let is_rate = matches!(func, Func::Rate | Func::Increase);
    let fast = crate::eval::fast_paths();
    let per_series = par_map(ev.lim, steps, sources, |sl, scratch: &mut RangeScratch, s| {
        sl.check()?;
        let labels_for_warning = is_rate.then(|| s.labels.clone());
        let labels = if func == Func::LastOverTime || keep_names { s.labels } else { drop_name(&s.labels) };
        let mut w = Window::new(s.samples, std::mem::take(&mut scratch.buf));
        let mut points = Vec::new();
        let mut saw_samples = false;
        let mut step = 0usize;
        while step < steps {
            let ts = r.start + step as i64 * r.interval;
            let end = at.unwrap_or(ts) - offset;
            let start = end - range;
            let window = w.fill(start, end);
            if window.is_empty() {
                if !fast {
                    step += 1;
                    continue;
                }
                if at.is_some() {
                    break;
                }
                // Nothing before the next sample: jump to the first step whose window reaches it (range queries
                // over series that exist only part of the time, e.g. 24 h over an hour of data).
                match w.next_t() {
                    None => break,
                    Some(tn) => {
                        let k = (tn + offset - r.start).div_euclid(r.interval);
                        let k = if r.start + k * r.interval - offset < tn { k + 1 } else { k };
                        step = if k > step as i64 { k as usize } else { step + 1 };
                        continue;
                    }
                }
            }
            if !saw_samples {
                // Room for every remaining step at once (growing by doubling reallocated ~11 times per series
                // over a day at 60 s, ~20% of a 24 h range query); trimmed below if the series ends early.
                points.reserve_exact(steps - step);
            }
            saw_samples = true;
            sl.transient(window.len())?;
            let a = RangeArgs {
                ts,
                start,
                end,
                range,
                scalars: [
                    scalar_args.first().map_or(f64::NAN, |v| v[step]),
                    scalar_args.get(1).map_or(f64::NAN, |v| v[step]),
                ],
            };
            if let Some(v) = call_range(func, window, &a, &mut scratch.values)? {
                points.push(Sample::new(ts, v));
            }
            step += 1;
        }
        if let Some(e) = w.err() {
            return Err(e);
        }
        scratch.buf = w.into_buf();
        if points.capacity() > 2 * points.len() + 16 {
            points.shrink_to_fit();
        }
        sl.add(points.len())?;
        let warn_name = match labels_for_warning {
            Some(l) if saw_samples => l
                .metric_name()
                .filter(|name| !["_total", "_sum", "_count", "_bucket"].iter().any(|suf| name.ends_with(suf)))
                .map(str::to_string),
            _ => None,
        };
        Ok(((!points.is_empty()).then_some(Series { labels, points }), warn_name))
    })?;
    let mut out: Matrix = Vec::with_capacity(per_series.len());
    let mut warned: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (series, warn_name) in per_series {
        if let Some(name) = warn_name {
            if warned.insert(name.clone()) {
                ev.warn(format!(
                    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}"
                ));
            }
        }
        out.extend(series);
    }
    ev.lim.add(crate::eval::total_points(&out))?;
    if func == Func::AbsentOverTime {
        let steps = ev.r.steps();
        if out.iter().any(|s| s.points.len() == steps) {
            return Ok(Vec::new());
        }
        let mut found = vec![false; steps];
        for s in &out {
            for p in &s.points {
                found[((p.t - ev.r.start) / ev.r.interval) as usize] = true;
            }
        }
        let points: Vec<Sample> =
            ev.r.iter().enumerate().filter(|(i, _)| !found[*i]).map(|(_, t)| Sample::new(t, 1.0)).collect();
        if points.is_empty() {
            return Ok(Vec::new());
        }
        return Ok(vec![Series { labels: absent_labels, points }]);
    }
    let dup = if keep_names { crate::eval::has_duplicate_labels_without_name(&out) } else { has_duplicate_labels(&out) };
    if dup {
        return Err(QueryError::Execution(DUP_LABELSET.into()));
    }
    Ok(out)
}

fn string_arg(args: &[Node], i: usize) -> Result<&str> {
    match args.get(i) {
        Some(Node::Str(s)) => Ok(s),
        _ => Err(QueryError::Execution(format!("BUG: argument {i} is not a string literal"))),
    }
}

fn label_replace(ev: &Ev, args: &[Node]) -> Result<Matrix> {
    let dst = string_arg(args, 1)?;
    let repl = string_arg(args, 2)?;
    let src = string_arg(args, 3)?;
    let re_str = string_arg(args, 4)?;
    // Unlike selector matchers, label_replace does not set the `s` flag: `.` does not match a newline.
    let re = regex::Regex::new(&format!("^(?:{re_str})$"))
        .map_err(|_| QueryError::Execution(format!("invalid regular expression in label_replace(): {re_str}")))?;
    if !model::labels::is_valid_label_name(dst) {
        return Err(QueryError::Execution(format!("invalid destination label name in label_replace(): {dst}")));
    }
    let mut m = ev.eval_m(&args[0])?;
    let mut b = LabelsBuilder::new();
    let mut res = String::new();
    for s in &mut m {
        let v = s.labels.get_or_empty(src);
        if let Some(caps) = re.captures(v) {
            res.clear();
            caps.expand(repl, &mut res);
            b.reset(&s.labels);
            b.set(dst, &res);
            s.labels = b.build();
        }
    }
    if has_duplicate_labels(&m) {
        return Err(QueryError::Execution(DUP_LABELSET.into()));
    }
    Ok(m)
}

fn label_join(ev: &Ev, args: &[Node]) -> Result<Matrix> {
    let dst = string_arg(args, 1)?;
    let sep = string_arg(args, 2)?;
    let mut srcs = Vec::new();
    for i in 3..args.len() {
        let s = string_arg(args, i)?;
        if !model::labels::is_valid_label_name(s) {
            return Err(QueryError::Execution(format!("invalid source label name in label_join(): {s}")));
        }
        srcs.push(s);
    }
    if !model::labels::is_valid_label_name(dst) {
        return Err(QueryError::Execution(format!("invalid destination label name in label_join(): {dst}")));
    }
    let mut m = ev.eval_m(&args[0])?;
    let mut b = LabelsBuilder::new();
    let mut val = String::new();
    for s in &mut m {
        val.clear();
        for (i, src) in srcs.iter().enumerate() {
            if i > 0 {
                val.push_str(sep);
            }
            val.push_str(s.labels.get_or_empty(src));
        }
        b.reset(&s.labels);
        b.set(dst, &val);
        s.labels = b.build();
    }
    Ok(m)
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm): (year, month 1-12, day 1-31).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn date_part(func: Func, secs: f64) -> f64 {
    // Go: time.Unix(int64(f), 0). Out-of-range conversions saturate here; Go's are undefined.
    let secs = if secs.is_nan() { i64::MIN } else { secs as i64 };
    let secs = secs.clamp(-(1i64 << 52), 1i64 << 52);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match func {
        Func::Year => y as f64,
        Func::Month => m as f64,
        Func::DayOfMonth => d as f64,
        Func::DayOfWeek => (days + 4).rem_euclid(7) as f64,
        Func::DayOfYear => {
            const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
            let leap = u32::from(is_leap(y) && m > 2);
            (CUM[(m - 1) as usize] + d + leap) as f64
        }
        Func::DaysInMonth => match m {
            2 => {
                if is_leap(y) {
                    29.0
                } else {
                    28.0
                }
            }
            4 | 6 | 9 | 11 => 30.0,
            _ => 31.0,
        },
        Func::Hour => (sod / 3600) as f64,
        Func::Minute => ((sod % 3600) / 60) as f64,
        _ => f64::NAN,
    }
}

/// Natural-order "less" as github.com/facette/natsort's `Compare`: digit runs compare as integers.
fn natsort_less(a: &str, b: &str) -> bool {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let digit = bytes[i].is_ascii_digit();
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() == digit {
                i += 1;
            }
            out.push(&s[start..i]);
        }
        out
    }
    let ca = chunks(a);
    let cb = chunks(b);
    for (i, x) in ca.iter().enumerate() {
        let Some(y) = cb.get(i) else { return false };
        let last_a = i == ca.len() - 1;
        let last_b = i == cb.len() - 1;
        if let (Ok(xi), Ok(yi)) = (x.parse::<i64>(), y.parse::<i64>()) {
            if xi == yi {
                if last_a {
                    return true;
                } else if last_b {
                    return false;
                }
                continue;
            }
            return xi < yi;
        }
        if x == y {
            if last_a {
                return true;
            } else if last_b {
                return false;
            }
            continue;
        }
        return x < y;
    }
    false
}

fn instant_function(ev: &Ev, func: Func, args: &[Node]) -> Result<Matrix> {
    // Evaluate non-string arguments; string arguments are read from the tree.
    let mut vals: Vec<Matrix> = Vec::with_capacity(args.len());
    for a in args {
        vals.push(if a.value_type() == ValueType::String { Vec::new() } else { ev.eval_m(a)? });
    }
    let refs: Vec<&Matrix> = vals.iter().collect();
    let empty = Labels::empty;
    let math = |f: fn(f64) -> f64| simple(ev, &vals[0], f);
    match func {
        Func::Abs => math(f64::abs),
        Func::Ceil => math(f64::ceil),
        Func::Floor => math(f64::floor),
        Func::Exp => math(f64::exp),
        Func::Sqrt => math(f64::sqrt),
        Func::Ln => math(f64::ln),
        Func::Log2 => math(f64::log2),
        Func::Log10 => math(f64::log10),
        Func::Sin => math(f64::sin),
        Func::Cos => math(f64::cos),
        Func::Tan => math(f64::tan),
        Func::Asin => math(f64::asin),
        Func::Acos => math(f64::acos),
        Func::Atan => math(f64::atan),
        Func::Sinh => math(f64::sinh),
        Func::Cosh => math(f64::cosh),
        Func::Tanh => math(f64::tanh),
        Func::Asinh => math(f64::asinh),
        Func::Acosh => math(f64::acosh),
        Func::Atanh => math(f64::atanh),
        Func::Rad => math(|v| v * std::f64::consts::PI / 180.0),
        Func::Deg => math(|v| v * 180.0 / std::f64::consts::PI),
        Func::Sgn => math(|v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        Func::Timestamp => per_element(ev, &refs, |ts, v, out| {
            out.extend(v[0].iter().map(|&(i, _)| (i as u64, ts as f64 / 1000.0)));
        }),
        Func::Time => ev.range_eval(&[], |ts, _, _, out| {
            out.push((empty(), ts as f64 / 1000.0));
            Ok(())
        }),
        Func::Pi => ev.range_eval(&[], |_, _, _, out| {
            out.push((empty(), std::f64::consts::PI));
            Ok(())
        }),
        Func::Vector => ev.range_eval(&refs, |_, _, v, out| {
            if let Some(&(_, x)) = v[0].first() {
                out.push((empty(), x));
            }
            Ok(())
        }),
        Func::Scalar => ev.range_eval(&refs, |_, _, v, out| {
            out.push((empty(), if v[0].len() == 1 { v[0][0].1 } else { f64::NAN }));
            Ok(())
        }),
        Func::Clamp | Func::ClampMax | Func::ClampMin => per_element(ev, &refs, |_, v, out| {
            let s1 = v.get(1).and_then(|x| x.first()).map_or(f64::NAN, |x| x.1);
            let s2 = v.get(2).and_then(|x| x.first()).map_or(f64::NAN, |x| x.1);
            let (lo, hi) = match func {
                Func::Clamp => (s1, s2),
                Func::ClampMax => (f64::NEG_INFINITY, s1),
                _ => (s1, f64::INFINITY),
            };
            if func == Func::Clamp && hi < lo {
                return;
            }
            for &(i, x) in &v[0] {
                // Go's math.Max/Min propagate NaN; Rust's f64::max/min would drop it.
                let y = match func {
                    Func::Clamp => go_max(lo, go_min(hi, x)),
                    Func::ClampMax => go_min(hi, x),
                    _ => go_max(lo, x),
                };
                out.push((i as u64, y));
            }
        }),
        Func::Round => per_element(ev, &refs, |_, v, out| {
            let to_nearest = v.get(1).and_then(|x| x.first()).map_or(1.0, |x| x.1);
            let inv = 1.0 / to_nearest;
            out.extend(v[0].iter().map(|&(i, x)| (i as u64, (x * inv + 0.5).floor() / inv)));
        }),
        Func::Absent => {
            let labels = match &args[0] {
                Node::VectorSel(sel) => sel.absent_labels.clone(),
                Node::MatrixSel { sel, .. } => sel.absent_labels.clone(),
                _ => Labels::empty(),
            };
            ev.range_eval(&refs, |_, _, v, out| {
                if v[0].is_empty() {
                    out.push((labels.clone(), 1.0));
                }
                Ok(())
            })
        }
        Func::Year
        | Func::Month
        | Func::DayOfMonth
        | Func::DayOfWeek
        | Func::DayOfYear
        | Func::DaysInMonth
        | Func::Hour
        | Func::Minute => {
            if args.is_empty() {
                return ev.range_eval(&[], |ts, _, _, out| {
                    out.push((empty(), date_part(func, (ts.div_euclid(1000)) as f64)));
                    Ok(())
                });
            }
            per_element(ev, &refs, |_, v, out| {
                out.extend(v[0].iter().map(|&(i, x)| (i as u64, date_part(func, x))));
            })
        }
        Func::Sort | Func::SortDesc | Func::SortByLabel | Func::SortByLabelDesc => {
            let sort_labels: Vec<String> =
                (1..args.len()).map(|i| string_arg(args, i).map(str::to_string)).collect::<Result<_>>()?;
            let m = &vals[0];
            ev.range_eval(&refs, |_, _, v, out| {
                let mut items: Vec<(usize, f64)> = v[0].clone();
                // sort(): ascending, NaN last; sort_desc(): descending, NaN last.
                let less: fn(f64, f64) -> bool = if matches!(func, Func::SortDesc | Func::SortByLabelDesc) {
                    |a, b| a.is_nan() || a < b
                } else {
                    |a, b| a.is_nan() || a > b
                };
                go_sort_reverse(&mut items, |x| x.1, less);
                if matches!(func, Func::SortByLabel | Func::SortByLabelDesc) {
                    let desc = func == Func::SortByLabelDesc;
                    items.sort_by(|a, b| {
                        for l in &sort_labels {
                            let x = m[a.0].labels.get_or_empty(l);
                            let y = m[b.0].labels.get_or_empty(l);
                            if x == y {
                                continue;
                            }
                            let lt = natsort_less(x, y);
                            return if lt != desc { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater };
                        }
                        std::cmp::Ordering::Equal
                    });
                }
                for (i, x) in items {
                    out.push((m[i].labels.clone(), x));
                }
                Ok(())
            })
        }
        Func::HistogramQuantile => histogram_quantile(ev, &vals),
        other => Err(QueryError::NotSupported(format!("function {}()", other.name()))),
    }
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Classic-bucket quantile (Prometheus's `bucketQuantile`). `buckets` are (upper bound, cumulative count).
fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return (f64::NAN, false);
    }
    // Merge buckets with the same upper bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    *buckets = merged;
    // Ignore float noise between neighbours, then force monotonicity.
    let mut forced = false;
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    if buckets.len() < 2 {
        return (f64::NAN, false);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, false);
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|x| x.1 < rank);
    if b == n {
        return (buckets[n - 1].0, forced);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, forced);
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// util/almost.Equal.
pub(crate) fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
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
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn histogram_quantile(ev: &Ev, vals: &[Matrix]) -> Result<Matrix> {
    let q_m = &vals[0];
    let m = &vals[1];
    // Per input series: its `le` bound (None if unparsable), group signature and output labels, computed once.
    let mut bound: Vec<Option<f64>> = Vec::with_capacity(m.len());
    let mut sig: Vec<u64> = Vec::with_capacity(m.len());
    let mut out_labels: HashMap<u64, Labels> = HashMap::new();
    for s in m {
        let b = s.labels.get("le").and_then(parse_go_float);
        bound.push(b);
        // Signature over all labels but `le` (the metric name included, as Prometheus does).
        let mut bld = LabelsBuilder::from(&s.labels);
        bld.del("le");
        let without_le = bld.build();
        let h = without_le.stable_hash();
        sig.push(h);
        out_labels.entry(h).or_insert_with(|| without_le.without_metric_name());
    }
    let mut warned_q = false;
    let mut groups: HashMap<u64, Vec<(f64, f64)>> = HashMap::new();
    let mut order: Vec<u64> = Vec::new();
    ev.range_eval(&[q_m, m], |_, _, v, out| {
        let q = v[0].first().map_or(f64::NAN, |x| x.1);
        if !warned_q && (q.is_nan() || !(0.0..=1.0).contains(&q)) {
            warned_q = true;
            ev.warn(format!("PromQL warning: quantile value should be between 0 and 1, got {}", format_go_float(q)));
        }
        for g in groups.values_mut() {
            g.clear();
        }
        order.clear();
        for &(i, x) in &v[1] {
            let Some(ub) = bound[i] else {
                ev.warn(format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                    m[i].labels.get_or_empty("le"),
                    m[i].labels.get_or_empty(METRIC_NAME)
                ));
                continue;
            };
            let g = groups.entry(sig[i]).or_default();
            if g.is_empty() {
                order.push(sig[i]);
            }
            g.push((ub, x));
        }
        for k in &order {
            if let Some(b) = groups.get_mut(k) {
                let (v, forced) = bucket_quantile(q, b);
                let labels = out_labels.get(k).cloned().unwrap_or_default();
                if forced {
                    ev.warn(format!(
                        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                        labels.get_or_empty(METRIC_NAME)
                    ));
                }
                out.push((labels, v));
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11016), (2000, 2, 29));
        assert_eq!(date_part(Func::DayOfWeek, 0.0), 4.0); // Thursday
        assert_eq!(date_part(Func::DayOfYear, 951_782_400.0), 60.0); // 2000-02-29
        assert_eq!(date_part(Func::DaysInMonth, 951_782_400.0), 29.0);
    }

    #[test]
    fn natsort_orders_numbers_numerically() {
        assert!(natsort_less("a2", "a10"));
        assert!(!natsort_less("a10", "a2"));
        assert!(natsort_less("abc", "abd"));
    }

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile(0.5, &mut [1.0, 3.0, 2.0, 4.0]), 2.5);
        assert_eq!(quantile(2.0, &mut [1.0]), f64::INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn bucket_quantile_basic() {
        let mut b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.5, &mut b).0, 1.0);
        let mut b = vec![(1.0, 10.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.99, &mut b).0, 1.0);
    }

    #[test]
    fn go_float_format() {
        assert_eq!(format_go_float(1.0), "1");
        assert_eq!(format_go_float(0.1), "0.1");
        assert_eq!(format_go_float(f64::INFINITY), "+Inf");
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("0.5"), Some(0.5));
        assert_eq!(parse_go_float("x"), None);
    }
}

#[cfg(test)]
mod par_tests {
    use crate::eval::FORCE_STEP_MAJOR;
    use crate::{Engine, EngineOptions, QueryOpts, Value};
    use model::mem::MemStorage;
    use model::storage::Storage;
    use model::Labels;

    fn run(st: &MemStorage, q: &str, range: bool, slow: bool) -> (Value, Vec<String>) {
        FORCE_STEP_MAJOR.with(|f| f.set(slow));
        let e = Engine::new(EngineOptions::default());
        let r = if range {
            e.range_query(st, q, 0, 3_600_000, 60_000, &QueryOpts::default())
        } else {
            e.instant_query(st, q, 1_800_000, &QueryOpts::default())
        };
        FORCE_STEP_MAJOR.with(|f| f.set(false));
        let r = r.unwrap_or_else(|e| panic!("{q}: {e}"));
        (r.value, r.warnings)
    }

    fn bits(v: &Value) -> Vec<(String, Vec<(i64, u64)>)> {
        match v {
            Value::Matrix(m) => {
                m.iter().map(|s| (s.labels.to_string(), s.samples.iter().map(|p| (p.t, p.v.to_bits())).collect())).collect()
            }
            Value::Vector(v) => v.iter().map(|s| (s.labels.to_string(), vec![(s.t, s.v.to_bits())])).collect(),
            other => vec![(format!("{other:?}"), Vec::new())],
        }
    }

    /// Enough series for the parallel path, living for different parts of the hour (so steps are skipped),
    /// with counter resets, gaps and stale markers: results and warnings equal the one-thread, every-step
    /// evaluation bit for bit.
    #[test]
    fn parallel_and_step_skipping_match_sequential() {
        let st = MemStorage::new();
        let mut app = st.appender();
        for i in 0..1500u64 {
            let name = if i % 5 == 0 { "gauge" } else { "req_total" };
            let l = Labels::from_pairs(&[("__name__", name.to_string()), ("i", i.to_string()), ("g", (i % 7).to_string())]);
            let from = (i * 7919 % 240) as i64;
            let len = 1 + (i * 104_729 % 240) as i64;
            let mut v = 0.0;
            for k in from..(from + len).min(240) {
                if (k + i as i64) % 13 == 0 {
                    continue; // gap
                }
                v += ((k * 31 + i as i64) % 17) as f64;
                if (k + i as i64) % 97 == 0 {
                    v = 0.0; // counter reset
                }
                let val = if (k + 2 * i as i64) % 89 == 0 { model::STALE_NAN } else { v };
                app.append(0, &l, k * 15_000, val).unwrap();
            }
        }
        app.commit().unwrap();
        for (q, range) in [
            ("sum by (g) (rate(req_total[1m]))", true),
            ("rate(req_total[2m])", true),
            ("max_over_time(gauge[5m])", true),
            ("changes(gauge[90s] offset 1m)", true),
            ("count_over_time({g=\"3\"}[1m] @ 1200)", true),
            ("rate(gauge[1m])", true),
            ("rate(req_total[1m])", false),
            ("req_total", false),
            ("gauge offset 5m", true),
            ("timestamp(gauge)", true),
            ("sum(req_total)", true),
        ] {
            let (fv, fw) = run(&st, q, range, false);
            let (sv, sw) = run(&st, q, range, true);
            assert_eq!(bits(&fv), bits(&sv), "{q}");
            assert_eq!(fw, sw, "{q}");
        }
    }
}
