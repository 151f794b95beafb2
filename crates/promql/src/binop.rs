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
