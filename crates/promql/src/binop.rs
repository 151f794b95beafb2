//! Binary operators: scalar/scalar, vector/scalar and vector/vector with on/ignoring, group_left/right and the
//! set operators, following Prometheus's `VectorBinop`, `VectorAnd/Or/Unless` and `VectorscalarBinop`.

use std::collections::{HashMap, HashSet};

use model::{Labels, LabelsBuilder, METRIC_NAME};

use crate::eval::{Ev, IdBuild, Matrix, Result, DUP_LABELSET};
use crate::plan::{BinOp, Binary, Card, Matching, ValueType};
use crate::QueryError;

pub(crate) fn scalar_binop(op: BinOp, l: f64, r: f64) -> f64 {
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div => l / r,
        BinOp::Pow => l.powf(r),
        BinOp::Mod => l % r,
        BinOp::Atan2 => l.atan2(r),
        BinOp::Eq => b(l == r),
        BinOp::Ne => b(l != r),
        BinOp::Gt => b(l > r),
        BinOp::Lt => b(l < r),
        BinOp::Ge => b(l >= r),
        BinOp::Le => b(l <= r),
        // Rejected by the parser for scalars.
        BinOp::And | BinOp::Or | BinOp::Unless => f64::NAN,
    }
}

/// Value and whether to keep the element (comparisons filter).
fn elem_binop(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        _ => (scalar_binop(op, l, r), true),
    }
}

fn drop_name(l: &Labels) -> Labels {
    if l.has(METRIC_NAME) {
        l.without_metric_name()
    } else {
        l.clone()
    }
}

pub(crate) fn eval_binary(ev: &Ev, b: &Binary) -> Result<Matrix> {
    let (lt, rt) = (b.lhs.value_type(), b.rhs.value_type());
    let lhs = ev.eval_m(&b.lhs)?;
    let rhs = ev.eval_m(&b.rhs)?;
    let op = b.op;
    match (lt, rt) {
        (ValueType::Scalar, ValueType::Scalar) => ev.range_eval(&[&lhs, &rhs], |_, _, v, out| {
            if let (Some(l), Some(r)) = (v[0].first(), v[1].first()) {
                out.push((Labels::empty(), scalar_binop(op, l.1, r.1)));
            }
            Ok(())
        }),
        (ValueType::Vector, ValueType::Scalar) => vector_scalar(ev, op, &lhs, &rhs, false, b.return_bool),
        (ValueType::Scalar, ValueType::Vector) => vector_scalar(ev, op, &rhs, &lhs, true, b.return_bool),
        _ => vector_vector(ev, b, &lhs, &rhs),
    }
}

fn vector_scalar(ev: &Ev, op: BinOp, vec: &Matrix, sc: &Matrix, swap: bool, return_bool: bool) -> Result<Matrix> {
    let drop = op.drops_metric_name() || return_bool;
    // The scalar's value per step (a scalar has a point at every step).
    let scalar: Vec<f64> = sc.first().map(|s| s.points.iter().map(|p| p.v).collect()).unwrap_or_default();
    ev.map_series(
        vec,
        |i| if drop { drop_name(&vec[i].labels) } else { vec[i].labels.clone() },
        |step, x| {
            let s = *scalar.get(step)?;
            let (lf, rf) = if swap { (s, x) } else { (x, s) };
            let (mut val, mut keep) = elem_binop(op, lf, rf);
            // A comparison keeps the vector element's value even when the scalar is on the left.
            if op.is_comparison() && swap {
                val = rf;
            }
            if return_bool {
                val = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            keep.then_some(val)
        },
    )
}

fn signatures(m: &Matrix, matching: &Matching) -> Vec<u64> {
    let mut scratch = Vec::new();
    m.iter()
        .map(|s| {
            if matching.on {
                s.labels.hash_for_labels(&matching.labels, &mut scratch)
            } else {
                s.labels.hash_without_labels(&matching.labels, &mut scratch)
            }
        })
        .collect()
}

/// The labels `on`/`ignoring` match on, for error messages.
fn match_labels(l: &Labels, matching: &Matching) -> Labels {
    let mut b = LabelsBuilder::from(l);
    if matching.on {
        b.retain(|n, _| matching.labels.iter().any(|x| x == n));
    } else {
        b.retain(|n, _| n != METRIC_NAME && !matching.labels.iter().any(|x| x == n));
    }
    b.build()
}

fn result_metric(l: &Labels, r: &Labels, op: BinOp, m: &Matching, return_bool: bool) -> Labels {
    let mut b = LabelsBuilder::from(l);
    if op.drops_metric_name() || return_bool {
        b.del(METRIC_NAME);
    }
    if m.card == Card::OneToOne {
        if m.on {
            b.retain(|n, _| m.labels.iter().any(|x| x == n));
        } else {
            b.retain(|n, _| !m.labels.iter().any(|x| x == n));
        }
    }
    for ln in &m.include {
        match r.get(ln) {
            Some(v) => {
                b.set(ln, v);
            }
            None => {
                b.del(ln);
            }
        }
    }
    b.build()
}

fn vector_vector(ev: &Ev, b: &Binary, lhs: &Matrix, rhs: &Matrix) -> Result<Matrix> {
    let m = &b.matching;
    let lsig = signatures(lhs, m);
    let rsig = signatures(rhs, m);
    let mut set: HashSet<u64, IdBuild> = HashSet::default();
    // Output keys: lhs series index, or RHS_KEY | rhs series index.
    const RHS_KEY: u64 = 1 << 63;
    let label_of = |k: u64| if k & RHS_KEY != 0 { rhs[(k & !RHS_KEY) as usize].labels.clone() } else { lhs[k as usize].labels.clone() };
    match b.op {
        BinOp::And => ev.range_eval_keyed(
            &[lhs, rhs],
            |_, _, v, out| {
                if v[0].is_empty() || v[1].is_empty() {
                    return Ok(());
                }
                set.clear();
                set.extend(v[1].iter().map(|&(i, _)| rsig[i]));
                for &(i, x) in &v[0] {
                    if set.contains(&lsig[i]) {
                        out.push((i as u64, x));
                    }
                }
                Ok(())
            },
            label_of,
            DUP_LABELSET,
        ),
        BinOp::Or => ev.range_eval_keyed(
            &[lhs, rhs],
            |_, _, v, out| {
                set.clear();
                for &(i, x) in &v[0] {
                    set.insert(lsig[i]);
                    out.push((i as u64, x));
                }
                for &(i, x) in &v[1] {
                    if !set.contains(&rsig[i]) {
                        out.push((RHS_KEY | i as u64, x));
                    }
                }
                Ok(())
            },
            label_of,
            DUP_LABELSET,
        ),
        BinOp::Unless => ev.range_eval_keyed(
            &[lhs, rhs],
            |_, _, v, out| {
                set.clear();
                set.extend(v[1].iter().map(|&(i, _)| rsig[i]));
                for &(i, x) in &v[0] {
                    if !set.contains(&lsig[i]) {
                        out.push((i as u64, x));
                    }
                }
                Ok(())
            },
            label_of,
            DUP_LABELSET,
        ),
        op => arith(ev, b, op, lhs, rhs, &lsig, &rsig),
    }
}

fn arith(ev: &Ev, b: &Binary, op: BinOp, lhs: &Matrix, rhs: &Matrix, lsig: &[u64], rsig: &[u64]) -> Result<Matrix> {
    let m = &b.matching;
    if m.card == Card::ManyToMany {
        return Err(QueryError::Execution("many-to-many only allowed for set operators".into()));
    }
    let swap = m.card == Card::OneToMany;
    // After the swap, "l" is the many side (or either side for one-to-one) and "r" the one side.
    let (lm, rm, ls, rs, li, ri) = if swap { (rhs, lhs, rsig, lsig, 1, 0) } else { (lhs, rhs, lsig, rsig, 0, 1) };
    if let Some(m) = join_series_major(ev, b, op, lm, rm, ls, rs, swap)? {
        return Ok(m);
    }
    let mut right: HashMap<u64, (usize, f64), IdBuild> = HashMap::default();
    // One-to-one: match signatures used this step. Many-to-one: (signature, result-labels hash) pairs.
    let mut matched: HashSet<u64, IdBuild> = HashSet::default();
    let mut matched_pairs: HashSet<(u64, u64), IdBuild> = HashSet::default();
    // Hash of the result labels per (many index, one index) pair, for the many-to-one uniqueness check.
    let mut pair_hash: HashMap<u64, u64, IdBuild> = HashMap::default();
    let key = |i: usize, j: usize| ((i as u64) << 32) | j as u64;
    ev.range_eval_keyed(
        &[lhs, rhs],
        |_, _, v, out| {
            let (lv, rv) = (&v[li], &v[ri]);
            if lv.is_empty() || rv.is_empty() {
                return Ok(());
            }
            right.clear();
            for &(i, x) in rv.iter() {
                if let Some(&(dup, _)) = right.get(&rs[i]) {
                    let side = if swap { "left" } else { "right" };
                    return Err(QueryError::Execution(format!(
                        "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        match_labels(&rm[i].labels, m),
                        side,
                        rm[i].labels,
                        rm[dup].labels
                    )));
                }
                right.insert(rs[i], (i, x));
            }
            matched.clear();
            matched_pairs.clear();
            for &(i, x) in lv.iter() {
                let sig = ls[i];
                let Some(&(j, y)) = right.get(&sig) else { continue };
                let (fl, fr) = if swap { (y, x) } else { (x, y) };
                let (mut val, keep) = elem_binop(op, fl, fr);
                if b.return_bool {
                    val = if keep { 1.0 } else { 0.0 };
                } else if !keep {
                    continue;
                }
                if m.card == Card::OneToOne {
                    if !matched.insert(sig) {
                        return Err(QueryError::Execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                                .into(),
                        ));
                    }
                } else {
                    let h = *pair_hash
                        .entry(key(i, j))
                        .or_insert_with(|| result_metric(&lm[i].labels, &rm[j].labels, op, m, b.return_bool).stable_hash());
                    if !matched_pairs.insert((sig, h)) {
                        return Err(QueryError::Execution(
                            "multiple matches for labels: grouping labels must ensure unique matches".into(),
                        ));
                    }
                }
                out.push((key(i, j), val));
            }
            Ok(())
        },
        |k| result_metric(&lm[(k >> 32) as usize].labels, &rm[(k & 0xffff_ffff) as usize].labels, op, m, b.return_bool),
        DUP_LABELSET,
    )
}

/// Vector matching series by series, for the common case where the pairing cannot change from step to step:
/// the "one" side's signatures are unique (and, for one-to-one, the other side's too), and every matched pair
/// yields distinct result labels. Then no step can raise a matching error and each many-side series joins
/// one fixed series, so a merge-join of the two point lists gives exactly the step-by-step result. Returns
/// `None` when the preconditions fail, leaving the general path to produce results or Prometheus's errors.
#[allow(clippy::too_many_arguments)]
fn join_series_major(
    ev: &Ev,
    b: &Binary,
    op: BinOp,
    lm: &Matrix,
    rm: &Matrix,
    ls: &[u64],
    rs: &[u64],
    swap: bool,
) -> Result<Option<Matrix>> {
    let m = &b.matching;
    if !crate::eval::fast_paths() {
        return Ok(None);
    }
    let mut right_of: HashMap<u64, usize, IdBuild> = HashMap::with_capacity_and_hasher(rm.len(), IdBuild::default());
    for (j, &sig) in rs.iter().enumerate() {
        if right_of.insert(sig, j).is_some() {
            return Ok(None);
        }
    }
    if m.card == Card::OneToOne {
        let mut seen: HashSet<u64, IdBuild> = HashSet::with_capacity_and_hasher(lm.len(), IdBuild::default());
        if !ls.iter().all(|s| seen.insert(*s)) {
            return Ok(None);
        }
    }
    let mut pairs: Vec<(usize, usize, Labels)> = Vec::new();
    let mut seen_labels = HashSet::with_hasher(xxhash_rust::xxh3::Xxh3DefaultBuilder::new());
    for (i, sig) in ls.iter().enumerate() {
        if let Some(&j) = right_of.get(sig) {
            let l = result_metric(&lm[i].labels, &rm[j].labels, op, m, b.return_bool);
            if !seen_labels.insert(l.clone()) {
                return Ok(None);
            }
            pairs.push((i, j, l));
        }
    }
    drop(seen_labels);
    let mut out = Vec::with_capacity(pairs.len());
    let mut added = 0;
    for (i, j, labels) in pairs {
        ev.lim.tick()?;
        let (a, c) = (&lm[i].points, &rm[j].points);
        let (mut x, mut y) = (0, 0);
        let mut points = Vec::new();
        while x < a.len() && y < c.len() {
            match a[x].t.cmp(&c[y].t) {
                std::cmp::Ordering::Less => x += 1,
                std::cmp::Ordering::Greater => y += 1,
                std::cmp::Ordering::Equal => {
                    let (fl, fr) = if swap { (c[y].v, a[x].v) } else { (a[x].v, c[y].v) };
                    let (mut val, keep) = elem_binop(op, fl, fr);
                    if b.return_bool {
                        val = if keep { 1.0 } else { 0.0 };
                    }
                    if keep || b.return_bool {
                        points.push(model::Sample::new(a[x].t, val));
                    }
                    x += 1;
                    y += 1;
                }
            }
        }
        if !points.is_empty() {
            added += points.len();
            out.push(crate::eval::Series { labels, points });
        }
    }
    ev.lim.add(added)?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use crate::eval::FORCE_STEP_MAJOR;
    use crate::{Engine, EngineOptions, QueryOpts, Value};
    use model::mem::MemStorage;
    use model::storage::Storage;
    use model::Labels;
    use proptest::prelude::*;

    fn run(st: &MemStorage, q: &str, slow: bool) -> Result<Value, crate::QueryError> {
        FORCE_STEP_MAJOR.with(|f| f.set(slow));
        let r = Engine::new(EngineOptions::default()).range_query(st, q, 0, 600_000, 30_000, &QueryOpts::default());
        FORCE_STEP_MAJOR.with(|f| f.set(false));
        r.map(|r| r.value)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The series-by-series fast paths (element-wise maps, vector joins, sum-like aggregations) give
        /// bit-identical results, and the same errors, as Prometheus's step-by-step evaluation.
        #[test]
        fn fast_paths_match_step_major(
            data in prop::collection::vec(prop::collection::vec(prop::option::weighted(0.7, -5i32..5), 1..25), 1..6),
        ) {
            let st = MemStorage::new();
            let mut app = st.appender();
            for (i, vals) in data.iter().enumerate() {
                let name = if i % 3 == 0 { "a" } else { "b" };
                let l = Labels::from_pairs(&[("__name__", name.to_string()), ("i", (i / 2).to_string()), ("g", (i % 2).to_string())]);
                for (k, v) in vals.iter().enumerate() {
                    if let Some(v) = v {
                        app.append(0, &l, k as i64 * 30_000, f64::from(*v)).unwrap();
                    }
                }
            }
            app.commit().unwrap();
            for q in [
                "a + on(i) b", "a / ignoring(__name__) b", "b * on(i) group_left(g) a", "a > bool on(i) b",
                "a - on(g) group_right b", "abs(b)", "b > 0", "2 ^ a", "-b", "sum by (g) (b)", "avg(b)",
                "stddev without (i) ({__name__=~\"a|b\"})", "max by (i) (b)", "count(b)", "ceil({__name__=~\"a|b\"})",
            ] {
                let fast = run(&st, q, false);
                let slow = run(&st, q, true);
                match (fast, slow) {
                    (Ok(Value::Matrix(x)), Ok(Value::Matrix(y))) => {
                        prop_assert_eq!(x.len(), y.len(), "{}", q);
                        for (s, t) in x.iter().zip(&y) {
                            prop_assert_eq!(&s.labels, &t.labels, "{}", q);
                            let sb: Vec<(i64, u64)> = s.samples.iter().map(|p| (p.t, p.v.to_bits())).collect();
                            let tb: Vec<(i64, u64)> = t.samples.iter().map(|p| (p.t, p.v.to_bits())).collect();
                            prop_assert_eq!(sb, tb, "{}", q);
                        }
                    }
                    (Err(e), Err(f)) => prop_assert_eq!(e.error_type(), f.error_type(), "{}", q),
                    (x, y) => prop_assert!(false, "{}: fast {:?} vs step-major {:?}", q, x, y),
                }
            }
        }
    }
}
