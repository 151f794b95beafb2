//! The PromQL engine of ignis: Prometheus 2.53 semantics for float samples, evaluated over any
//! [`model::storage::Queryable`].
//!
//! Architecture invariants:
//! * The engine sees storage only through `Queryable`/`Querier`; it never knows about the TSDB.
//! * Instant and range queries share one evaluator: an instant query is a range query with one step. Every
//!   node evaluates to a matrix over the steps (one point per step and series), as Prometheus's engine does,
//!   and each selected series is read once for the whole range, never once per step.
//! * Parsing is done by the `promql-parser` crate; [`plan`] lowers its AST into the engine's own tree (resolved
//!   matchers, millisecond offsets, absolute `@` times) so evaluation never touches parser types.
//!
//! Protection from queries of death: a timeout, a cancellation flag (checked every few hundred iterations), a
//! cap on samples held in memory (Prometheus's `--query.max-samples`) and a concurrency gate.

mod aggr;
mod binop;
mod eval;
mod functions;
mod gate;
mod plan;
mod selector;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

pub use plan::ValueType;

/// Engine-wide settings (Prometheus's `--query.*` flags).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant vector selector looks for the latest sample (`--query.lookback-delta`).
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold in memory at once (`--query.max-samples`).
    pub max_samples: usize,
    /// Default timeout of one query (`--query.timeout`).
    pub timeout: Duration,
    /// Queries evaluated at the same time; more wait (`--query.max-concurrency`).
    pub max_concurrency: usize,
    /// Step of subqueries written without one (`[5m:]`): the global evaluation interval.
    pub no_step_subquery_interval_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_concurrency: 20,
            no_step_subquery_interval_ms: 60_000,
        }
    }
}

/// Per-query overrides.
#[derive(Debug, Default, Clone)]
pub struct QueryOpts {
    /// Timeout of this query; the engine's timeout still applies, so the smaller of the two wins (as with
    /// Prometheus's `timeout` parameter, which wraps the engine's own deadline).
    pub timeout: Option<Duration>,
    /// Set to true from another thread to stop the query; it then fails with [`QueryError::Canceled`].
    pub cancel: Option<Arc<AtomicBool>>,
    /// Overrides the engine's lookback delta when positive.
    pub lookback_delta_ms: Option<i64>,
}

/// A query result.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    Vector(Vec<VectorSample>),
    Matrix(Vec<RangeSeries>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    pub labels: model::Labels,
    pub t: i64,
    pub v: f64,
}

/// One series of a range vector (matrix), samples in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: model::Labels,
    pub samples: Vec<model::Sample>,
}

/// What a query cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryStats {
    /// Samples read from storage or produced by the evaluation, summed over every step (Prometheus's
    /// `totalQueryableSamples` in spirit).
    pub total_samples: u64,
    /// Most samples held in memory at one time.
    pub peak_samples: usize,
    /// Time waiting for a concurrency slot.
    pub queue_time: Duration,
    /// Time parsing and planning.
    pub prepare_time: Duration,
    /// Time evaluating.
    pub eval_time: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    /// Warnings and infos (Prometheus annotations), as the API returns them.
    pub warnings: Vec<String>,
    pub stats: QueryStats,
}

/// Why a query failed. [`QueryError::error_type`] gives the Prometheus API `errorType`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Execution(String),
    #[error("query timed out in expression evaluation")]
    Timeout,
    #[error("query was canceled in expression evaluation")]
    Canceled,
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    #[error("{0}")]
    Storage(String),
    #[error("not supported: {0}")]
    NotSupported(String),
}

impl QueryError {
    /// The `errorType` of Prometheus's HTTP API for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples | QueryError::NotSupported(_) => "execution",
            QueryError::Timeout => "timeout",
            QueryError::Canceled => "canceled",
            QueryError::Storage(_) => "internal",
        }
    }
}

static REGISTER: Once = Once::new();

/// `holt_winters` was renamed `double_exponential_smoothing` in Prometheus 3; promql-parser follows 3.x, so the
/// 2.53 name is registered as an extra function (same signature).
fn register_functions() {
    REGISTER.call_once(|| {
        use promql_parser::parser::function::{register_extra_functions, Function};
        use promql_parser::parser::value::ValueType as T;
        let r = register_extra_functions(vec![Function::new(
            "holt_winters",
            vec![T::Matrix, T::Scalar, T::Scalar],
            0,
            T::Vector,
            false,
        )]);
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not register holt_winters with the PromQL parser");
        }
    });
}

/// Parses a PromQL expression (with `holt_winters` known).
pub fn parse_expr(expr: &str) -> Result<promql_parser::parser::Expr, QueryError> {
    register_functions();
    promql_parser::parser::parse(expr).map_err(QueryError::Parse)
}

/// Parses and pretty-prints an expression (for `/api/v1/format_query`).
pub fn format_expr(expr: &str) -> Result<String, QueryError> {
    Ok(parse_expr(expr)?.prettify())
}

/// Parses a series selector such as `up{job="x"}` (for `match[]` parameters) into matchers, the metric name as
/// a `__name__` matcher. Selectors with `or` alternatives are refused.
pub fn parse_matchers(selector: &str) -> Result<Vec<model::Matcher>, QueryError> {
    match parse_expr(selector)? {
        promql_parser::parser::Expr::VectorSelector(vs) => {
            let sel = plan::lower_selector(&vs, 0, 0).map_err(QueryError::Parse)?;
            if !sel.or_matchers.is_empty() {
                return Err(QueryError::Parse("'or' in series selectors is not supported here".into()));
            }
            Ok(sel.matchers)
        }
        _ => Err(QueryError::Parse(format!("invalid series selector: {selector:?}"))),
    }
}

/// Parses a `match[]` selector as Prometheus's `/federate` does: like [`parse_matchers`], but selectors whose
/// matchers all match the empty string (`{job=~".*"}`) are accepted.
pub fn parse_metric_selector(selector: &str) -> Result<Vec<model::Matcher>, QueryError> {
    match parse_matchers(selector) {
        Ok(m) => Ok(m),
        Err(QueryError::Parse(e)) if e.contains("at least one non-empty matcher") => {
            selector::parse_metric_selector(selector).map_err(QueryError::Parse)
        }
        Err(e) => Err(e),
    }
}

/// The PromQL engine. Cheap to share (`Arc<Engine>`); queries run on the caller's thread.
pub struct Engine {
    opts: EngineOptions,
    gate: gate::Gate,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Engine {
        let gate = gate::Gate::new(opts.max_concurrency.max(1));
        Engine { opts, gate }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Instant query at `time_ms`.
    pub fn instant_query(
        &self,
        q: &dyn model::storage::Queryable,
        expr: &str,
        time_ms: i64,
        opts: &QueryOpts,
    ) -> Result<QueryResult, QueryError> {
        self.run(q, expr, time_ms, time_ms, 0, opts)
    }

    /// Range query; `step_ms > 0`.
    pub fn range_query(
        &self,
        q: &dyn model::storage::Queryable,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        opts: &QueryOpts,
    ) -> Result<QueryResult, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::Parse(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::Parse("end timestamp must not be before start time".into()));
        }
        self.run(q, expr, start_ms, end_ms, step_ms, opts)
    }

    fn run(
        &self,
        q: &dyn model::storage::Queryable,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOpts,
    ) -> Result<QueryResult, QueryError> {
        let began = Instant::now();
        let timeout = opts.timeout.map_or(self.opts.timeout, |t| t.min(self.opts.timeout));
        let deadline = began.checked_add(timeout);
        let parsed = parse_expr(expr)?;
        let node = plan::lower(&parsed, start, end)?;
        let is_range = step > 0;
        if is_range && !matches!(node.value_type(), ValueType::Vector | ValueType::Scalar) {
            return Err(QueryError::Parse(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                node.value_type().name()
            )));
        }
        let prepared = Instant::now();
        let _slot = self.gate.acquire(deadline, opts.cancel.as_deref())?;
        let queued = Instant::now();
        let lookback = match opts.lookback_delta_ms {
            Some(l) if l > 0 => l,
            _ => self.opts.lookback_delta_ms,
        };
        let limits = eval::Limits::new(self.opts.max_samples, deadline, opts.cancel.clone());
        let (value, warnings) = eval::execute(
            q,
            &node,
            eval::Range { start, end, interval: if is_range { step } else { 1 } },
            is_range,
            lookback,
            self.opts.no_step_subquery_interval_ms,
            &limits,
        )?;
        let finished = Instant::now();
        let stats = QueryStats {
            total_samples: limits.total_samples(),
            peak_samples: limits.peak_samples(),
            queue_time: queued - prepared,
            prepare_time: prepared - began,
            eval_time: finished - queued,
        };
        Ok(QueryResult { value, warnings, stats })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn engine_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::Engine>();
        assert_send_sync::<super::QueryResult>();
    }
}
