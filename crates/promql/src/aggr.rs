//! Aggregation operators, following Prometheus 2.53's `rangeEvalAgg`, `aggregation`, `aggregationK` and
//! `aggregationCountValues`: input series are mapped to groups once, then every step folds the series present
//! at that step into their group.

use std::collections::HashMap;

use model::{Labels, LabelsBuilder, Sample, METRIC_NAME};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::eval::{Ev, Matrix, Result, Series};
use crate::functions::{format_go_float, quantile};
use crate::plan::{AggOp, Aggregate, Node};
use crate::QueryError;

fn grouping_key(l: &Labels, a: &Aggregate, scratch: &mut Vec<u8>) -> u64 {
    if a.without {
        l.hash_without_labels(&a.grouping, scratch)
    } else if a.grouping.is_empty() {
        0
    } else {
        l.hash_for_labels(&a.grouping, scratch)
    }
}

fn grouping_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        let mut b = LabelsBuilder::from(l);
        b.retain(|n, _| n != METRIC_NAME && !grouping.iter().any(|g| g == n));
        b.build()
    } else if grouping.is_empty() {
        Labels::empty()
    } else {
        Labels::from_sorted_unchecked(
            l.iter().filter(|x| grouping.iter().any(|g| g == x.name)).map(|x| (x.name, x.value)),
        )
    }
}

/// Go's `Less` for the topk heap (vectorByValueHeap): NaN counts as smallest.
fn less_asc(a: f64, b: f64) -> bool {
    a.is_nan() || a < b
}

/// Go's `Less` for the bottomk heap (vectorByReverseValueHeap): NaN counts as largest.
fn less_desc(a: f64, b: f64) -> bool {
    a.is_nan() || a > b
}

/// Go's container/heap `up` and `down`, so ties and NaNs pick the same elements as Prometheus.
fn heap_up(h: &mut [(usize, f64)], mut j: usize, less: fn(f64, f64) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(h[j].1, h[i].1) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [(usize, f64)], i0: usize, less: fn(f64, f64) -> bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(h[j2].1, h[j1].1) {
            j = j2;
        }
        if !less(h[j].1, h[i].1) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

/// Sorts like Go's `sort.Sort(sort.Reverse(x))` for the small slices these are in practice: Go uses insertion
/// sort below 13 elements, which this reproduces exactly (also for NaN ties); larger slices get a stable sort
/// with NaNs last.
pub(crate) fn go_sort_reverse<T>(v: &mut [T], val: impl Fn(&T) -> f64, less: fn(f64, f64) -> bool) {
    // Reverse(less)(i, j) == less(j, i)
    let rless = |a: &T, b: &T| less(val(b), val(a));
    if v.len() <= 12 {
        for i in 1..v.len() {
            let mut j = i;
            while j > 0 && rless(&v[j], &v[j - 1]) {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
        return;
    }
    v.sort_by(|a, b| {
        let (x, y) = (val(a), val(b));
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => {
                if rless(a, b) {
                    std::cmp::Ordering::Less
                } else if rless(b, a) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            }
        }
    });
}

#[derive(Clone, Default)]
struct Group {
    seen: bool,
    value: f64,
    mean: f64,
    count: usize,
    heap: Vec<(usize, f64)>,
    values: Vec<f64>,
}

/// Most (group, step) accumulators the series-major path may allocate (24 bytes each).
const SERIES_MAJOR_MAX_CELLS: usize = 1 << 20;

#[derive(Clone, Copy, Default)]
struct Acc {
    value: f64,
    mean: f64,
    count: u64,
}

impl Acc {
    /// Folds one value in, exactly as Prometheus's `aggregation` does for one group at one step.
    #[inline]
    fn fold(&mut self, op: AggOp, f: f64) {
        if self.count == 0 {
            self.count = 1;
            self.mean = f;
            self.value = match op {
                AggOp::Stddev | AggOp::Stdvar => 0.0,
                AggOp::Group => 1.0,
                _ => f,
            };
            return;
        }
        match op {
            AggOp::Sum => self.value += f,
            AggOp::Avg => {
                self.count += 1;
                if self.mean.is_infinite() {
                    if f.is_infinite() && (self.mean > 0.0) == (f > 0.0) {
                        return;
                    }
                    if !f.is_infinite() && !f.is_nan() {
                        return;
                    }
                }
                let n = self.count as f64;
                self.mean += f / n - self.mean / n;
            }
            AggOp::Max if self.value < f || self.value.is_nan() => self.value = f,
            AggOp::Min if self.value > f || self.value.is_nan() => self.value = f,
            AggOp::Count => self.count += 1,
            AggOp::Stddev | AggOp::Stdvar => {
                self.count += 1;
                let delta = f - self.mean;
                self.mean += delta / self.count as f64;
                self.value += delta * (f - self.mean);
            }
            _ => {}
        }
    }

    fn finish(&self, op: AggOp) -> f64 {
        match op {
            AggOp::Avg => self.mean,
            AggOp::Count => self.count as f64,
            AggOp::Stdvar => self.value / self.count as f64,
            AggOp::Stddev => (self.value / self.count as f64).sqrt(),
            _ => self.value,
        }
    }
}

/// Sum-like aggregations series by series: each input series' points are folded into a (group × step) table.
/// Every (group, step) cell still sees its inputs in series order, so results equal the step-by-step
/// evaluation bit for bit, but memory is read sequentially instead of hopping across all series each step.
fn series_major(ev: &Ev, op: AggOp, input: &Matrix, series_group: &[usize], mut result: Matrix) -> Result<Matrix> {
    let steps = ev.r.steps();
    let mut acc = vec![Acc::default(); result.len() * steps];
    for (si, s) in input.iter().enumerate() {
        ev.lim.tick()?;
        let g = series_group[si];
        let row = &mut acc[g * steps..(g + 1) * steps];
        for p in &s.points {
            let k = ((p.t - ev.r.start) / ev.r.interval) as usize;
            if let Some(cell) = row.get_mut(k) {
                cell.fold(op, p.v);
            }
        }
    }
    let mut added = 0;
    for (g, series) in result.iter_mut().enumerate() {
        let row = &acc[g * steps..(g + 1) * steps];
        for (k, cell) in row.iter().enumerate() {
            if cell.count > 0 {
                series.points.push(Sample::new(ev.r.start + k as i64 * ev.r.interval, cell.finish(op)));
                added += 1;
            }
        }
    }
    ev.lim.add(added)?;
    result.retain(|s| !s.points.is_empty());
    Ok(result)
}

/// Whether the result cannot depend on the input series' metric names: the output holds only grouping labels
/// (never `__name__`: `without` always drops it, `by` here does not name it) and values.
fn ignores_names(a: &Aggregate) -> bool {
    matches!(
        a.op,
        AggOp::Sum
            | AggOp::Avg
            | AggOp::Count
            | AggOp::Min
            | AggOp::Max
            | AggOp::Group
            | AggOp::Stddev
            | AggOp::Stdvar
            | AggOp::Quantile
    ) && (a.without || !a.grouping.iter().any(|g| g == METRIC_NAME))
}

fn param_value(ev: &Ev, p: &Option<Node>) -> Result<f64> {
    match p {
        Some(p) => {
            let m = ev.eval_m(p)?;
            Ok(m.first().and_then(|s| s.points.first()).map(|x| x.v).unwrap_or(f64::NAN))
        }
        None => Ok(0.0),
    }
}

pub(crate) fn eval_aggregate(ev: &Ev, a: &Aggregate) -> Result<Matrix> {
    if a.op == AggOp::CountValues {
        return count_values(ev, a);
    }
    // Prometheus evaluates the parameter over all steps but uses its first value.
    let param = param_value(ev, &a.param)?;
    let input = if ignores_names(a) { crate::functions::eval_ignoring_names(ev, &a.expr)? } else { ev.eval_m(&a.expr)? };

    let mut scratch = Vec::new();
    let mut group_of: HashMap<u64, usize> = HashMap::new();
    let mut series_group = Vec::with_capacity(input.len());
    let mut result: Matrix = Vec::new();
    let topk = matches!(a.op, AggOp::Topk | AggOp::Bottomk);
    for s in &input {
        let key = grouping_key(&s.labels, a, &mut scratch);
        let n = group_of.len();
        let g = *group_of.entry(key).or_insert_with(|| {
            if !topk {
                result.push(Series { labels: grouping_labels(&s.labels, &a.grouping, a.without), points: Vec::new() });
            }
            n
        });
        series_group.push(g);
    }
    let mut groups = vec![Group::default(); group_of.len()];

    let mut k = 0usize;
    if topk {
        if !(param >= i64::MIN as f64 && param <= i64::MAX as f64) {
            return Err(QueryError::Execution(format!("Scalar value {} overflows int64", format_go_float(param))));
        }
        let kk = param as i64;
        if kk < 1 {
            return Ok(Vec::new());
        }
        k = (kk as usize).min(input.len());
        if k == 0 {
            return Ok(Vec::new());
        }
    }
    if a.op == AggOp::Quantile && (param.is_nan() || !(0.0..=1.0).contains(&param)) {
        ev.warn(format!("PromQL warning: quantile value should be between 0 and 1, got {}", format_go_float(param)));
    }

    if matches!(
        a.op,
        AggOp::Sum | AggOp::Avg | AggOp::Count | AggOp::Min | AggOp::Max | AggOp::Group | AggOp::Stddev | AggOp::Stdvar
    ) && groups.len().saturating_mul(ev.r.steps()) <= SERIES_MAJOR_MAX_CELLS
        && crate::eval::fast_paths()
    {
        return series_major(ev, a.op, &input, &series_group, result);
    }

    let mut cursors = vec![0usize; input.len()];
    let instant = ev.is_instant();
    // topk/bottomk output series by label set (range queries).
    let mut topk_out: HashMap<Labels, usize, Xxh3DefaultBuilder> = HashMap::default();
    let mut topk_res: Matrix = Vec::new();

    for ts in ev.r.iter() {
        ev.lim.check_now()?;
        for g in groups.iter_mut() {
            g.seen = false;
        }
        for (si, s) in input.iter().enumerate() {
            ev.lim.tick()?;
            let c = &mut cursors[si];
            let Some(p) = s.points.get(*c) else { continue };
            if p.t != ts {
                continue;
            }
            *c += 1;
            let f = p.v;
            let g = &mut groups[series_group[si]];
            if !g.seen {
                g.seen = true;
                g.value = f;
                g.mean = f;
                g.count = 1;
                match a.op {
                    AggOp::Stddev | AggOp::Stdvar => g.value = 0.0,
                    AggOp::Quantile => {
                        g.values.clear();
                        g.values.push(f);
                    }
                    AggOp::Group => g.value = 1.0,
                    AggOp::Topk | AggOp::Bottomk => {
                        g.heap.clear();
                        g.heap.push((si, f));
                    }
                    _ => {}
                }
                continue;
            }
            match a.op {
                AggOp::Sum => g.value += f,
                AggOp::Avg => {
                    g.count += 1;
                    if g.mean.is_infinite() {
                        if f.is_infinite() && (g.mean > 0.0) == (f > 0.0) {
                            continue;
                        }
                        if !f.is_infinite() && !f.is_nan() {
                            continue;
                        }
                    }
                    let n = g.count as f64;
                    g.mean += f / n - g.mean / n;
                }
                AggOp::Group => {}
                AggOp::Max => {
                    if g.value < f || g.value.is_nan() {
                        g.value = f;
                    }
                }
                AggOp::Min => {
                    if g.value > f || g.value.is_nan() {
                        g.value = f;
                    }
                }
                AggOp::Count => g.count += 1,
                AggOp::Stddev | AggOp::Stdvar => {
                    g.count += 1;
                    let delta = f - g.mean;
                    g.mean += delta / g.count as f64;
                    g.value += delta * (f - g.mean);
                }
                AggOp::Quantile => g.values.push(f),
                AggOp::Topk => {
                    if g.heap.len() < k {
                        g.heap.push((si, f));
                        let j = g.heap.len() - 1;
                        heap_up(&mut g.heap, j, less_asc);
                    } else if g.heap[0].1 < f || (g.heap[0].1.is_nan() && !f.is_nan()) {
                        g.heap[0] = (si, f);
                        if k > 1 && !heap_down(&mut g.heap, 0, less_asc) {
                            heap_up(&mut g.heap, 0, less_asc);
                        }
                    }
                }
                AggOp::Bottomk => {
                    if g.heap.len() < k {
                        g.heap.push((si, f));
                        let j = g.heap.len() - 1;
                        heap_up(&mut g.heap, j, less_desc);
                    } else if g.heap[0].1 > f || (g.heap[0].1.is_nan() && !f.is_nan()) {
                        g.heap[0] = (si, f);
                        if k > 1 && !heap_down(&mut g.heap, 0, less_desc) {
                            heap_up(&mut g.heap, 0, less_desc);
                        }
                    }
                }
                AggOp::CountValues => {}
            }
        }

        if topk {
            let mut step_out: Matrix = Vec::new();
            for g in groups.iter_mut() {
                if !g.seen {
                    continue;
                }
                if a.op == AggOp::Topk {
                    go_sort_reverse(&mut g.heap, |x| x.1, less_asc);
                } else {
                    go_sort_reverse(&mut g.heap, |x| x.1, less_desc);
                }
                for &(si, f) in &g.heap {
                    let labels = &input[si].labels;
                    if instant {
                        step_out.push(Series { labels: labels.clone(), points: vec![Sample::new(ts, f)] });
                    } else {
                        let n = topk_res.len();
                        let idx = *topk_out.entry(labels.clone()).or_insert(n);
                        if idx == n {
                            topk_res.push(Series { labels: labels.clone(), points: Vec::new() });
                        }
                        topk_res[idx].points.push(Sample::new(ts, f));
                    }
                }
            }
            ev.lim.add(step_out.len())?;
            if instant {
                return Ok(step_out);
            }
            continue;
        }

        let mut added = 0;
        for (gi, g) in groups.iter_mut().enumerate() {
            if !g.seen {
                continue;
            }
            let v = match a.op {
                AggOp::Avg => g.mean,
                AggOp::Count => g.count as f64,
                AggOp::Stdvar => g.value / g.count as f64,
                AggOp::Stddev => (g.value / g.count as f64).sqrt(),
                AggOp::Quantile => quantile(param, &mut g.values),
                _ => g.value,
            };
            result[gi].points.push(Sample::new(ts, v));
            added += 1;
        }
        ev.lim.add(added)?;
    }
    if topk {
        return Ok(topk_res);
    }
    result.retain(|s| !s.points.is_empty());
    Ok(result)
}

fn count_values(ev: &Ev, a: &Aggregate) -> Result<Matrix> {
    let label = match &a.param {
        Some(Node::Str(s)) => s.clone(),
        _ => return Err(QueryError::Execution("count_values needs a string parameter".into())),
    };
    if !model::labels::is_valid_label_name(&label) {
        return Err(QueryError::Execution(format!("invalid label name {label:?}")));
    }
    let mut grouping = a.grouping.clone();
    if !a.without {
        grouping.push(label.clone());
        grouping.sort();
    }
    let input = ev.eval_m(&a.expr)?;
    let mut scratch = Vec::new();
    let mut counts: HashMap<u64, (Labels, usize)> = HashMap::new();
    let mut order: Vec<u64> = Vec::new();
    let mut b = LabelsBuilder::new();
    let without = a.without;
    ev.range_eval(&[&input], |_, _, v, out| {
        counts.clear();
        order.clear();
        for &(i, f) in &v[0] {
            b.reset(&input[i].labels);
            b.set(&label, &format_go_float(f));
            let metric = b.build();
            let key = if without {
                metric.hash_without_labels(&grouping, &mut scratch)
            } else {
                metric.hash_for_labels(&grouping, &mut scratch)
            };
            match counts.get_mut(&key) {
                Some(c) => c.1 += 1,
                None => {
                    counts.insert(key, (grouping_labels(&metric, &grouping, without), 1));
                    order.push(key);
                }
            }
        }
        for k in &order {
            if let Some((l, c)) = counts.remove(k) {
                out.push((l, c as f64));
            }
        }
        Ok(())
    })
}
