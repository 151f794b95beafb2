//! `/api/v1/*` handlers: query, query_range, series, labels, label values, metadata, status, targets.

use crate::error::{success, ApiError};
use crate::json::{self, push_labels, push_point, push_str, push_str_array, push_ts, push_value};
use crate::params::{parse_duration, parse_time, MAX_TIME, MIN_TIME};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, Extensions, HeaderMap, Method, Uri};
use axum::response::Response;
use model::Matcher;
use promql::{QueryOpts, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub mod admin;
mod querylog;
pub use querylog::QueryLog;

/// Request parameters from the query string and, for form-encoded POSTs, the body (as Prometheus's
/// `r.FormValue`/`r.Form`: body values first, then URL values).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_request(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Result<Params, ApiError> {
        let mut v: Vec<(String, String)> = Vec::new();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if (method == Method::POST || method == Method::PUT) && is_form {
            v = serde_urlencoded::from_bytes(body)
                .map_err(|e| ApiError::BadData(format!("error parsing form body: {e}")))?;
        }
        if let Some(q) = uri.query() {
            let url: Vec<(String, String)> = serde_urlencoded::from_str(q)
                .map_err(|e| ApiError::BadData(format!("error parsing query string: {e}")))?;
            v.extend(url);
        }
        Ok(Params(v))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    fn time_or(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(s) => parse_time(s).map_err(|e| ApiError::bad_param(name, e)),
        }
    }

    fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None | Some("") => Ok(0),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(n as usize),
                _ => Err(ApiError::BadData("limit must be a positive number".into())),
            },
        }
    }
}

/// Sets the cancel flag when the handler's future is dropped (the client went away).
struct CancelOnDrop(Arc<AtomicBool>);
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn query_opts(p: &Params, cancel: &Arc<AtomicBool>) -> Result<QueryOpts, ApiError> {
    let mut o = QueryOpts { cancel: Some(cancel.clone()), ..Default::default() };
    if let Some(t) = p.get("timeout").filter(|s| !s.is_empty()) {
        let ms = parse_duration(t).map_err(|e| ApiError::bad_param("timeout", e))?;
        o.timeout = Some(std::time::Duration::from_millis(ms.max(0) as u64));
    }
    if let Some(d) = p.get("lookback_delta").filter(|s| !s.is_empty()) {
        let ms = parse_duration(d).map_err(|e| ApiError::bad_param("lookback_delta", e))?;
        o.lookback_delta_ms = Some(ms);
    }
    Ok(o)
}

fn render_value(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    match v {
        Value::Scalar { t, v } => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            push_point(&mut out, *t, *v);
        }
        Value::String { t, v } => {
            out.push_str(r#"{"resultType":"string","result":["#);
            push_ts(&mut out, *t);
            out.push(',');
            push_str(&mut out, v);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                push_labels(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                push_point(&mut out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                push_labels(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, p) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_point(&mut out, p.t, p.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("query task failed: {e}")))
}

/// Runs storage work that cannot be cancelled (metadata calls) on the handler's own thread, letting the runtime
/// move its other tasks to another worker meanwhile. Saves the two thread hand-offs of `run_blocking`, which are
/// most of the latency of a small `/api/v1/labels` answer. Falls back to `run_blocking` outside a multi-thread
/// runtime.
async fn run_inline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => Ok(tokio::task::block_in_place(f)),
        _ => run_blocking(f).await,
    }
}

/// Set while a worker thread answers a label names/values call in place (see [`run_index_call`]).
static INDEX_CALL_IN_PLACE: AtomicBool = AtomicBool::new(false);

/// Runs a label names/values call, answered from the local indexes, right on the worker thread when no other
/// worker is doing so and the runtime has more than one worker, so at most one worker is ever held and the
/// others steal its queued tasks meanwhile; otherwise as [`run_inline`]. block_in_place hands the worker's
/// duties to another thread on every call: at 200k head series that hand-off was ~50 µs of a ~0.13 ms label
/// values call with `match[]` (fastest tenth of calls, 0.13 -> 0.08 ms). Remote read sources answer over the
/// network, so calls with them always hand off.
async fn run_index_call<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let in_place = !st.has_remote_read()
        && tokio::runtime::Handle::try_current().is_ok_and(|h| {
            h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread && h.metrics().num_workers() > 1
        })
        && INDEX_CALL_IN_PLACE.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok();
    if !in_place {
        return run_inline(f).await;
    }
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            INDEX_CALL_IN_PLACE.store(false, Ordering::Release);
        }
    }
    let _done = Done;
    Ok(f())
}

/// Who asked, for the query log's `httpRequest` (Prometheus's `ContextFromRequest`).
struct Origin {
    client_ip: String,
    method: String,
    path: String,
}

impl Origin {
    fn new(method: &Method, uri: &Uri, ext: &Extensions) -> Origin {
        // Present when the server is served with connect info; Prometheus logs "" when it has no address.
        let client_ip = ext
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();
        Origin { client_ip, method: method.as_str().to_string(), path: uri.path().to_string() }
    }
}

/// One query as the engine sees it: instant when `step == 0`.
struct QuerySpec {
    expr: String,
    start: i64,
    end: i64,
    step: i64,
}

/// Runs a query on a blocking thread, cancelled when the client goes away; counts it in
/// `prometheus_engine_*` and writes it to the query log.
async fn run_query(
    st: &Arc<AppState>,
    p: &Params,
    spec: QuerySpec,
    origin: Origin,
) -> Result<Response, ApiError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let opts = query_opts(p, &cancel)?;
    let st2 = st.clone();
    let res = run_blocking(move || {
        let q = st2.queryable();
        let res = counted(&st2, || {
            if spec.step == 0 {
                st2.engine.instant_query(q.as_ref(), &spec.expr, spec.start, &opts)
            } else {
                st2.engine.range_query(q.as_ref(), &spec.expr, spec.start, spec.end, spec.step, &opts)
            }
        });
        log_query(&st2, &spec, &origin, &res);
        res
    })
    .await?;
    let res = res.map_err(map_query_error)?;
    Ok(success(with_stats(render_value(&res.value), &res, p), &res.warnings))
}

/// Writes the query log line. As Prometheus, queries refused before execution (parse and parameter errors,
/// `bad_data`) are not logged; executed ones are, failed ones with their `error`.
fn log_query(
    st: &AppState,
    spec: &QuerySpec,
    origin: &Origin,
    res: &Result<promql::QueryResult, promql::QueryError>,
) {
    let cfg = st.config.read().clone();
    let err_text;
    let no_stats = promql::QueryStats::default();
    let (stats, error) = match res {
        Ok(r) => (&r.stats, None),
        Err(e) if e.error_type() == "bad_data" => return,
        Err(e) => {
            err_text = e.to_string();
            (&no_stats, Some(err_text.as_str()))
        }
    };
    st.engine_metrics.query_log.log(
        &cfg,
        &querylog::Entry {
            query: &spec.expr,
            start_ms: spec.start,
            end_ms: spec.end,
            step_ms: spec.step,
            error,
            stats,
            origin: Some(querylog::HttpOrigin {
                client_ip: &origin.client_ip,
                method: &origin.method,
                path: &origin.path,
            }),
        },
    );
}

pub async fn query(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ext: Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let expr = p.get("query").unwrap_or("").to_string();
    let t = p.time_or("time", now_ms())?;
    let origin = Origin::new(&method, &uri, &ext);
    run_query(&st, &p, QuerySpec { expr, start: t, end: t, step: 0 }, origin).await
}

/// Prometheus's `stats` JSON object (timings in seconds, then samples).
pub(crate) fn push_stats(out: &mut String, st: &promql::QueryStats) {
    let secs = |d: std::time::Duration| d.as_secs_f64();
    out.push_str(r#"{"timings":{"evalTotalTime":"#);
    push_json_f64(out, secs(st.prepare_time + st.eval_time));
    out.push_str(r#","resultSortTime":0,"queryPreparationTime":"#);
    push_json_f64(out, secs(st.prepare_time));
    out.push_str(r#","innerEvalTime":"#);
    push_json_f64(out, secs(st.eval_time));
    out.push_str(r#","execQueueTime":"#);
    push_json_f64(out, secs(st.queue_time));
    out.push_str(r#","execTotalTime":"#);
    push_json_f64(out, secs(st.queue_time + st.prepare_time + st.eval_time));
    out.push_str(&format!(
        r#"}},"samples":{{"totalQueryableSamples":{},"peakSamples":{}}}}}"#,
        st.total_samples, st.peak_samples
    ));
}

/// A JSON number as Go's encoding/json writes a float64: plain decimal, exponent form below 1e-6.
fn push_json_f64(out: &mut String, v: f64) {
    use std::fmt::Write;
    if v != 0.0 && v.abs() < 1e-6 {
        let _ = write!(out, "{v:e}");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Adds `"stats"` to the data object when the request has a non-empty `stats` parameter, as Prometheus does.
fn with_stats(mut data: String, res: &promql::QueryResult, p: &Params) -> String {
    if p.get("stats").is_none_or(|s| s.is_empty()) {
        return data;
    }
    data.pop(); // the closing '}' of the data object
    data.push_str(r#","stats":"#);
    push_stats(&mut data, &res.stats);
    data.push('}');
    data
}

/// Runs a query while counting it in `prometheus_engine_queries` and its timings.
fn counted(
    st: &AppState,
    f: impl FnOnce() -> Result<promql::QueryResult, promql::QueryError>,
) -> Result<promql::QueryResult, promql::QueryError> {
    let m = &st.engine_metrics;
    m.queries_in_flight.fetch_add(1, Ordering::Relaxed);
    let res = f();
    m.queries_in_flight.fetch_sub(1, Ordering::Relaxed);
    m.queries_total.fetch_add(1, Ordering::Relaxed);
    if let Ok(r) = &res {
        m.observe(&r.stats);
    }
    res
}

/// Parse errors are reported as `invalid parameter "query": …` like Prometheus.
fn map_query_error(e: promql::QueryError) -> ApiError {
    match ApiError::from(e) {
        ApiError::BadData(m) => ApiError::bad_param("query", m),
        other => other,
    }
}

pub async fn query_range(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ext: Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let start = parse_time(p.get("start").unwrap_or("")).map_err(|e| ApiError::bad_param("start", e))?;
    let end = parse_time(p.get("end").unwrap_or("")).map_err(|e| ApiError::bad_param("end", e))?;
    if end < start {
        return Err(ApiError::bad_param("end", "end timestamp must not be before start time"));
    }
    let step = parse_duration(p.get("step").unwrap_or("")).map_err(|e| ApiError::bad_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::bad_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // For safety, limit the number of returned points per timeseries.
    if (end - start) / step > 11_000 {
        return Err(ApiError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                .into(),
        ));
    }
    let expr = p.get("query").unwrap_or("").to_string();
    let origin = Origin::new(&method, &uri, &ext);
    run_query(&st, &p, QuerySpec { expr, start, end, step }, origin).await
}

/// Parses each `match[]` selector into matchers.
fn parse_match_params(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let sets = p
        .all("match[]")
        .into_iter()
        .map(|s| promql::parse_metric_selector(s).map_err(|e| ApiError::BadData(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    // As Prometheus's API: every selector needs a matcher that does not match the empty string.
    if sets.iter().any(|ms| ms.iter().all(|m| m.matches(""))) {
        return Err(ApiError::BadData("match[] must contain at least one non-empty matcher".into()));
    }
    Ok(sets)
}

fn range_params(p: &Params) -> Result<(i64, i64), ApiError> {
    let start = p.time_or("start", MIN_TIME)?;
    let end = p.time_or("end", MAX_TIME)?;
    Ok((start, end))
}

pub async fn series(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let sets = parse_match_params(&p)?;
    if sets.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let (start, end) = range_params(&p)?;
    let limit = p.limit()?;
    let st2 = st.clone();
    let (data, warnings) = run_inline(move || -> Result<(String, Vec<String>), ApiError> {
        let q = st2.queryable().querier(start, end)?;
        let hints = model::SelectHints { start, end, func: Some("series".into()), ..Default::default() };
        let mut all: Vec<model::Labels> = Vec::new();
        for ms in &sets {
            for s in q.select(true, Some(&hints), ms)? {
                all.push(s?.labels);
            }
        }
        // One selector's sorted select is sorted and unique already; several are merged here.
        if !all.windows(2).all(|w| w[0] < w[1]) {
            all.sort();
            all.dedup();
        }
        let mut warnings = Vec::new();
        if limit > 0 && all.len() > limit {
            all.truncate(limit);
            warnings.push("results truncated due to limit".to_string());
        }
        let mut out = String::from("[");
        for (i, l) in all.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_labels(&mut out, l);
        }
        out.push(']');
        Ok((out, warnings))
    })
    .await??;
    Ok(success(data, &warnings))
}

/// Union of per-selector results, sorted and unique, truncated to `limit` (0 = none) with a warning.
fn merge_strings(
    sets: &[Vec<Matcher>],
    limit: usize,
    mut f: impl FnMut(&[Matcher]) -> Result<Vec<String>, ApiError>,
) -> Result<(String, Vec<String>), ApiError> {
    let mut all: Vec<String> = if sets.is_empty() {
        f(&[])?
    } else {
        model::merge::merge_sorted_strings(sets.iter().map(|ms| f(ms)).collect::<Result<_, _>>()?)
    };
    let mut warnings = Vec::new();
    if limit > 0 && all.len() > limit {
        all.truncate(limit);
        warnings.push("results truncated due to limit".to_string());
    }
    let mut out = String::new();
    push_str_array(&mut out, &all);
    Ok((out, warnings))
}

pub async fn labels(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let sets = parse_match_params(&p)?;
    let (start, end) = range_params(&p)?;
    let limit = p.limit()?;
    let st2 = st.clone();
    let cheap = sets.is_empty() && !st.has_remote_read();
    let work = move || {
        let q = st2.queryable().querier(start, end)?;
        merge_strings(&sets, limit, |ms| Ok(q.label_names(ms)?))
    };
    // Without matchers the answer comes from the indexes' name tables (tens of names, microseconds): computed
    // right here, whatever other calls are doing.
    let (data, warnings) = if cheap { work()? } else { run_index_call(&st, work).await?? };
    Ok(success(data, &warnings))
}

pub async fn label_values(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    if !model::labels::is_valid_label_name(&name) {
        return Err(ApiError::BadData(format!("invalid label name: {name:?}")));
    }
    let sets = parse_match_params(&p)?;
    let (start, end) = range_params(&p)?;
    let limit = p.limit()?;
    let st2 = st.clone();
    let (data, warnings) = run_index_call(&st, move || -> Result<(String, Vec<String>), ApiError> {
        let q = st2.queryable().querier(start, end)?;
        let mut all = if sets.is_empty() {
            q.label_values_list(&name, &[])?
        } else {
            model::StrList::merge_sorted(sets.iter().map(|ms| q.label_values_list(&name, ms)).collect::<Result<_, _>>()?)
        };
        let mut warnings = Vec::new();
        if limit > 0 && all.len() > limit {
            all.truncate(limit);
            warnings.push("results truncated due to limit".to_string());
        }
        let mut out = String::with_capacity(all.iter().map(|s| s.len() + 3).sum::<usize>() + 2);
        json::push_str_iter(&mut out, all.iter());
        Ok((out, warnings))
    })
    .await??;
    Ok(success(data, &warnings))
}

/// Exemplars are not stored yet; the endpoint validates its parameters and answers with no exemplars, which is
/// also what Prometheus answers when exemplar storage is disabled.
pub async fn query_exemplars(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let q = p.get("query").unwrap_or("");
    promql::parse_expr(q).map_err(map_query_error)?;
    p.time_or("start", MIN_TIME)?;
    p.time_or("end", MAX_TIME)?;
    Ok(success("[]".into(), &[]))
}

pub async fn format_query(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let q = p.get("query").unwrap_or("");
    let pretty = promql::format_expr(q).map_err(map_query_error)?;
    let mut out = String::new();
    json::push_str(&mut out, &pretty);
    Ok(success(out, &[]))
}

pub async fn buildinfo() -> Response {
    let mut out = String::new();
    let fields = [
        ("version", crate::PROMETHEUS_COMPAT_VERSION),
        ("revision", env!("CARGO_PKG_VERSION")),
        ("branch", "main"),
        ("buildUser", "ignis"),
        ("buildDate", ""),
        ("goVersion", "rust"),
        ("application", "ignis"),
    ];
    json::push_str_object(&mut out, fields);
    success(out, &[])
}

pub async fn status_config(State(st): State<Arc<AppState>>) -> Response {
    let yaml = st.config_yaml();
    let mut out = String::from(r#"{"yaml":"#);
    push_str(&mut out, &yaml);
    out.push('}');
    success(out, &[])
}

pub async fn status_flags(State(st): State<Arc<AppState>>) -> Response {
    let mut out = String::new();
    json::push_str_object(&mut out, st.flags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    success(out, &[])
}

pub async fn status_runtimeinfo(State(st): State<Arc<AppState>>) -> Response {
    let rt = st.runtime_info();
    let mut out = String::from("{");
    out.push_str(r#""startTime":"#);
    push_str(&mut out, &rt.start_time_rfc3339);
    out.push_str(r#","CWD":"#);
    push_str(&mut out, &rt.cwd);
    out.push_str(&format!(
        r#","reloadConfigSuccess":{},"lastConfigTime":"#,
        rt.reload_config_success
    ));
    push_str(&mut out, &rt.last_config_time_rfc3339);
    out.push_str(&format!(
        r#","corruptionCount":{},"goroutineCount":{},"GOMAXPROCS":{},"GOMEMLIMIT":{},"GOGC":"","GODEBUG":"","storageRetention":"#,
        rt.corruption_count, rt.threads, rt.cpus, i64::MAX
    ));
    push_str(&mut out, &rt.storage_retention);
    out.push('}');
    success(out, &[])
}

pub async fn status_tsdb(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let st2 = st.clone();
    let data = run_blocking(move || st2.tsdb_status()).await??;
    Ok(success(data, &[]))
}

pub async fn targets(State(st): State<Arc<AppState>>, uri: Uri) -> Result<Response, ApiError> {
    let p = Params::from_request(&Method::GET, &uri, &HeaderMap::new(), &Bytes::new())?;
    let state = p.get("state").unwrap_or("any").to_ascii_lowercase();
    Ok(success(st.targets_json(&state), &[]))
}

pub async fn metadata(State(st): State<Arc<AppState>>, uri: Uri) -> Result<Response, ApiError> {
    let p = Params::from_request(&Method::GET, &uri, &HeaderMap::new(), &Bytes::new())?;
    let limit: i64 = p.get("limit").and_then(|s| s.parse().ok()).unwrap_or(-1);
    let metric = p.get("metric").unwrap_or("");
    Ok(success(st.metadata_json(metric, limit), &[]))
}

/// Small helpers shared with other modules' JSON rendering.
pub fn push_kv_str(out: &mut String, k: &str, v: &str) {
    push_str(out, k);
    out.push(':');
    push_str(out, v);
}

pub fn push_kv_value(out: &mut String, k: &str, v: f64) {
    push_str(out, k);
    out.push(':');
    push_value(out, v);
}

#[allow(unused)]
pub(crate) fn ts_string(t: i64) -> String {
    let mut s = String::new();
    json::push_ts(&mut s, t);
    s
}

pub async fn targets_metadata(State(st): State<Arc<AppState>>, uri: Uri) -> Result<Response, ApiError> {
    let p = Params::from_request(&Method::GET, &uri, &HeaderMap::new(), &Bytes::new())?;
    let limit: i64 = p.get("limit").and_then(|s| s.parse().ok()).unwrap_or(-1);
    let metric = p.get("metric").unwrap_or("");
    let matchers = match p.get("match_target").filter(|s| !s.is_empty()) {
        Some(sel) => promql::parse_matchers(sel).map_err(|e| ApiError::bad_param("match_target", e))?,
        None => Vec::new(),
    };
    let data = match &st.scrape {
        Some(m) => crate::targets::targets_metadata_json(m, metric, &matchers, limit),
        None => "[]".into(),
    };
    Ok(success(data, &[]))
}
