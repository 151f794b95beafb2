//! The engine's public API: result shapes, error kinds, and the protections (timeout, cancellation, sample
//! limit, lookback override).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use model::mem::MemStorage;
use model::storage::Storage;
use model::{labels, Labels, STALE_NAN};
use promql::{Engine, EngineOptions, QueryError, QueryOpts, Value};
use proptest::prelude::*;

fn storage(series: &[(Labels, Vec<(i64, f64)>)]) -> MemStorage {
    let st = MemStorage::new();
    let mut app = st.appender();
    for (l, samples) in series {
        for &(t, v) in samples {
            app.append(0, l, t, v).unwrap();
        }
    }
    app.commit().unwrap();
    st
}

fn demo() -> MemStorage {
    storage(&[
        (labels! {"__name__" => "up", "job" => "a", "instance" => "1"}, (0..=10).map(|i| (i * 60_000, 1.0)).collect()),
        (labels! {"__name__" => "up", "job" => "b", "instance" => "2"}, (0..=10).map(|i| (i * 60_000, 0.0)).collect()),
        (
            labels! {"__name__" => "reqs_total", "job" => "a"},
            (0..=10).map(|i| (i * 60_000, (i * 60) as f64)).collect(),
        ),
    ])
}

fn eng() -> Engine {
    Engine::new(EngineOptions::default())
}

#[test]
fn instant_vector_scalar_string_and_matrix_shapes() {
    let st = demo();
    let e = eng();
    let o = QueryOpts::default();
    match e.instant_query(&st, "up", 300_000, &o).unwrap().value {
        Value::Vector(v) => {
            assert_eq!(v.len(), 2);
            assert!(v.iter().all(|s| s.t == 300_000));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.instant_query(&st, "1 + 2", 5_000, &o).unwrap().value, Value::Scalar { t: 5_000, v: 3.0 });
    assert_eq!(e.instant_query(&st, "\"hi\"", 5_000, &o).unwrap().value, Value::String { t: 5_000, v: "hi".into() });
    match e.instant_query(&st, "up[2m]", 600_000, &o).unwrap().value {
        Value::Matrix(m) => {
            assert_eq!(m.len(), 2);
            assert!(m[0].labels < m[1].labels, "matrix sorted by labels");
            assert_eq!(m[0].samples.len(), 3, "closed range [t-2m, t] in 2.53");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn range_query_steps_and_rate() {
    let st = demo();
    let e = eng();
    let r = e.range_query(&st, "rate(reqs_total[5m])", 300_000, 600_000, 60_000, &QueryOpts::default()).unwrap();
    let Value::Matrix(m) = r.value else { panic!() };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].labels, labels! {"job" => "a"}, "rate drops the metric name");
    assert_eq!(m[0].samples.len(), 6);
    for s in &m[0].samples {
        assert!((s.v - 1.0).abs() < 1e-9, "{s:?}");
    }
    // A scalar range query is one unlabelled series.
    let r = e.range_query(&st, "time()", 0, 120_000, 60_000, &QueryOpts::default()).unwrap();
    let Value::Matrix(m) = r.value else { panic!() };
    assert_eq!(m[0].samples.iter().map(|s| s.v).collect::<Vec<_>>(), vec![0.0, 60.0, 120.0]);
}

#[test]
fn errors_have_prometheus_types() {
    let st = demo();
    let e = eng();
    let o = QueryOpts::default();
    let err = e.instant_query(&st, "sum(", 0, &o).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    let err = e.range_query(&st, "up[5m]", 0, 60_000, 15_000, &o).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    assert!(err.to_string().contains("invalid expression type \"matrix\" for range query"), "{err}");
    let err = e.range_query(&st, "up", 0, 60_000, 0, &o).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    let err = e.instant_query(&st, "histogram_count(up)", 0, &o).unwrap_err();
    assert!(matches!(err, QueryError::NotSupported(_)), "{err:?}");
    let err = e.instant_query(&st, "holt_winters(up[5m], 2, 0.5)", 600_000, &o).unwrap_err();
    assert_eq!(err.error_type(), "execution");
}

#[test]
fn sample_limit_is_enforced_with_prometheus_text() {
    let st = demo();
    let e = Engine::new(EngineOptions { max_samples: 10, ..Default::default() });
    let err = e.range_query(&st, "up", 0, 600_000, 60_000, &QueryOpts::default()).unwrap_err();
    assert_eq!(err, QueryError::TooManySamples);
    assert_eq!(err.to_string(), "query processing would load too many samples into memory in query execution");
    // A literal over a very fine range is refused before anything is allocated.
    let err = e.range_query(&st, "1", 0, 86_400_000, 1, &QueryOpts::default()).unwrap_err();
    assert_eq!(err, QueryError::TooManySamples);
    // Small enough queries still work under the same limit.
    assert!(e.instant_query(&st, "up", 600_000, &QueryOpts::default()).is_ok());
}

#[test]
fn timeout_and_cancellation() {
    let st = demo();
    let e = eng();
    let o = QueryOpts { timeout: Some(Duration::ZERO), ..Default::default() };
    assert_eq!(e.instant_query(&st, "up", 0, &o).unwrap_err(), QueryError::Timeout);
    let flag = Arc::new(AtomicBool::new(true));
    let o = QueryOpts { cancel: Some(flag), ..Default::default() };
    let err = e.instant_query(&st, "up", 0, &o).unwrap_err();
    assert_eq!(err, QueryError::Canceled);
    assert_eq!(err.error_type(), "canceled");
}

#[test]
fn lookback_and_staleness() {
    let l = labels! {"__name__" => "m"};
    let st = storage(&[(l.clone(), vec![(0, 1.0), (60_000, 2.0), (120_000, STALE_NAN), (180_000, 3.0)])]);
    let e = eng();
    let o = QueryOpts::default();
    let n = |t| match e.instant_query(&st, "m", t, &o).unwrap().value {
        Value::Vector(v) => v.len(),
        _ => panic!(),
    };
    assert_eq!(n(60_000), 1);
    assert_eq!(n(150_000), 0, "a stale marker ends the series");
    assert_eq!(n(180_000), 1);
    assert_eq!(n(180_000 + 300_000), 1, "lookback is inclusive at 5m");
    assert_eq!(n(180_000 + 300_001), 0);
    let o = QueryOpts { lookback_delta_ms: Some(10_000), ..Default::default() };
    let Value::Vector(v) = e.instant_query(&st, "m", 195_000, &o).unwrap().value else { panic!() };
    assert!(v.is_empty(), "per-query lookback override");
}

#[test]
fn helpers_for_the_api() {
    let ms = promql::parse_matchers(r#"up{job=~"a|b"}"#).unwrap();
    assert_eq!(ms.len(), 2);
    assert!(ms.iter().any(|m| m.name == "__name__" && m.value == "up"));
    assert!(promql::parse_matchers("sum(up)").is_err());
    assert_eq!(promql::format_expr("sum(rate(x[5m]))by(job)").unwrap(), "sum by (job) (rate(x[5m]))");
    assert!(promql::parse_expr("holt_winters(x[5m], 0.5, 0.5)").is_ok());
}

fn arb_series() -> impl Strategy<Value = Vec<Vec<Option<f64>>>> {
    prop::collection::vec(prop::collection::vec(prop::option::weighted(0.8, -100.0f64..100.0), 1..30), 1..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Instant and range evaluation share one evaluator; an instant query at T must equal the range query's
    /// point at T for every expression shape.
    #[test]
    fn instant_equals_range_point(data in arb_series(), t_step in 0i64..40) {
        let series: Vec<(Labels, Vec<(i64, f64)>)> = data
            .iter()
            .enumerate()
            .map(|(i, vals)| {
                let l = Labels::from_pairs(&[("__name__", "m".to_string()), ("i", i.to_string()), ("g", (i % 2).to_string())]);
                (l, vals.iter().enumerate().filter_map(|(k, v)| v.map(|v| (k as i64 * 30_000, v))).collect())
            })
            .collect();
        let st = storage(&series);
        let e = eng();
        let o = QueryOpts::default();
        let t = t_step * 30_000;
        for q in [
            "m", "rate(m[2m])", "sum by (g) (m)", "m * on(i) group_left m", "max_over_time(m[3m])",
            "m > 0", "avg_over_time(m[5m:1m])", "topk(2, m)", "-m + 1", "count_values(\"v\", round(m))",
            "quantile(0.3, m)", "m offset 1m", "deriv(m[4m])", "stddev by (g) (m)", "m unless m > 10",
        ] {
            let inst = e.instant_query(&st, q, t, &o).unwrap().value;
            let Value::Matrix(m) = e.range_query(&st, q, t - 60_000, t + 60_000, 30_000, &o).unwrap().value else {
                panic!()
            };
            let Value::Vector(mut v) = inst else { panic!() };
            let mut at_t: Vec<(Labels, f64)> = m
                .iter()
                .filter_map(|s| s.samples.iter().find(|p| p.t == t).map(|p| (s.labels.clone(), p.v)))
                .collect();
            v.sort_by(|a, b| a.labels.cmp(&b.labels));
            at_t.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(v.len(), at_t.len(), "{}", q);
            for (a, b) in v.iter().zip(&at_t) {
                prop_assert_eq!(&a.labels, &b.0);
                prop_assert!(a.v.to_bits() == b.1.to_bits() || (a.v.is_nan() && b.1.is_nan()), "{}: {} vs {}", q, a.v, b.1);
            }
        }
    }
}
