//! Engine throughput on synthetic series that are generated on the fly (so storage costs nothing and the
//! numbers are the engine's). Ignored by default; run with
//! `cargo test -p promql --release --test perf -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use model::storage::{Querier, Queryable, SampleIter, SelectHints, Series, SeriesSet};
use model::{Labels, Matcher, Sample, StorageError};
use promql::{Engine, EngineOptions, QueryOpts, Value};

const SCRAPE_MS: i64 = 15_000;

/// `n` counter series `x{job="j<i%10>", instance="i<i>"}` with a sample every 15s over `[0, span_ms]`.
struct Synth {
    series: Arc<Vec<Labels>>,
    span_ms: i64,
}

struct Gen {
    t: i64,
    end: i64,
    slope: f64,
}

impl SampleIter for Gen {
    fn next(&mut self) -> Option<Sample> {
        if self.t > self.end {
            return None;
        }
        let s = Sample::new(self.t, self.t as f64 / 1000.0 * self.slope);
        self.t += SCRAPE_MS;
        Some(s)
    }
    fn seek(&mut self, t: i64) -> Option<Sample> {
        if self.t < t {
            self.t = (t + SCRAPE_MS - 1) / SCRAPE_MS * SCRAPE_MS;
        }
        self.next()
    }
}

struct SynthQuerier {
    s: Arc<Vec<Labels>>,
    span_ms: i64,
    mint: i64,
    maxt: i64,
}

impl Queryable for Synth {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(SynthQuerier { s: self.series.clone(), span_ms: self.span_ms, mint, maxt }))
    }
}

impl Querier for SynthQuerier {
    fn select(&self, _sorted: bool, _h: Option<&SelectHints>, ms: &[Matcher]) -> Result<SeriesSet, StorageError> {
        let mint = self.mint.max(0);
        let maxt = self.maxt.min(self.span_ms);
        let out: Vec<Result<Series, StorageError>> = self
            .s
            .iter()
            .enumerate()
            .filter(|(_, l)| ms.iter().all(|m| m.matches(l.get_or_empty(&m.name))))
            .map(|(i, l)| {
                Ok(Series {
                    labels: l.clone(),
                    samples: Box::new(Gen { t: mint, end: maxt, slope: 1.0 + (i % 7) as f64 }) as Box<dyn SampleIter>,
                })
            })
            .collect();
        Ok(Box::new(out.into_iter()))
    }
    fn label_values(&self, _: &str, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
    fn label_names(&self, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
}

fn synth(n: usize, span_ms: i64) -> Synth {
    let series = (0..n)
        .map(|i| Labels::from_pairs(&[("__name__", "x".to_string()), ("job", format!("j{}", i % 10)), ("instance", format!("i{i}"))]))
        .collect();
    Synth { series: Arc::new(series), span_ms }
}

/// CPU time of this thread (user + system) in ms, from /proc (10ms resolution): wall time is meaningless on
/// a shared, loaded machine.
fn thread_cpu_ms() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    // Fields after the command name start at field 3 (state); utime is field 14, stime 15.
    (ticks(11) + ticks(12)) * 10
}

fn time(label: &str, f: impl FnOnce() -> Value) {
    let t = Instant::now();
    let c = thread_cpu_ms();
    let v = f();
    let cpu = thread_cpu_ms() - c;
    let n = match &v {
        Value::Vector(v) => v.len(),
        Value::Matrix(m) => m.len(),
        _ => 1,
    };
    println!("{label}: {:?} wall, {cpu} ms cpu ({n} result series)", t.elapsed());
}

#[test]
#[ignore]
fn sum_rate_100k_series() {
    let synth = synth(100_000, 3_600_000);
    let s = &synth;
    let e = Engine::new(EngineOptions::default());
    let o = QueryOpts::default();
    let q = "sum(rate(x[5m])) by (job)";
    time("instant sum(rate(x[5m])) by (job), 100k series", || e.instant_query(s, q, 3_600_000, &o).unwrap().value);
    time("range 1h step 60s sum(rate(x[5m])) by (job), 100k series", || {
        e.range_query(s, q, 0, 3_600_000, 60_000, &o).unwrap().value
    });
    time("range 1h step 60s rate(x[5m]) / on(instance) group_left x, 100k series", || {
        e.range_query(s, "rate(x[5m]) / on(instance) group_left x", 0, 3_600_000, 60_000, &o).unwrap().value
    });
    time("range 1h step 60s x > 100, 100k series", || e.range_query(s, "x > 100", 0, 3_600_000, 60_000, &o).unwrap().value);
}
