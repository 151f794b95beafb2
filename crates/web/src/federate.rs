//! `GET /federate`: the latest sample of every series matching the `match[]` selectors, within the lookback
//! window, with the server's external labels attached, as Prometheus's `web/federate.go` does.

use crate::api::Params;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use model::{is_stale_nan, Labels, Matcher, Sample};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Format {
    Text004,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the client lists it in Accept (ignoring q=0), else text 0.0.4.
    pub fn negotiate(headers: &HeaderMap) -> Format {
        let accept = headers.get(header::ACCEPT).and_then(|h| h.to_str().ok()).unwrap_or("");
        for part in accept.split(',') {
            let mut it = part.split(';').map(str::trim);
            if it.next() == Some("application/openmetrics-text") && !it.any(|p| p == "q=0") {
                return Format::OpenMetrics;
            }
        }
        Format::Text004
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Collects the latest non-stale sample at or before `maxt` (and after `maxt - lookback`) per series.
pub fn collect(
    q: &dyn model::storage::Queryable,
    sets: &[Vec<Matcher>],
    maxt: i64,
    lookback: i64,
) -> Result<Vec<(Labels, Sample)>, model::StorageError> {
    let mint = maxt - lookback;
    let querier = q.querier(mint, maxt)?;
    let hints = model::SelectHints { start: mint, end: maxt, func: Some("federate".into()), ..Default::default() };
    // One selector (the usual case) yields sorted, unique series: keep them in a Vec. Several may overlap: merge
    // through a map.
    let mut out: Vec<(Labels, Sample)> = Vec::new();
    let mut merged: BTreeMap<Labels, Sample> = BTreeMap::new();
    for ms in sets {
        for s in querier.select(true, Some(&hints), ms)? {
            let mut s = s?;
            let mut last: Option<Sample> = None;
            while let Some(x) = s.samples.next() {
                if x.t > maxt {
                    break;
                }
                last = Some(x);
            }
            if let Some(e) = s.samples.err() {
                return Err(model::StorageError::Other(e.to_string()));
            }
            match last {
                Some(x) if !is_stale_nan(x.v) => {
                    if sets.len() == 1 {
                        out.push((s.labels, x));
                    } else {
                        merged.insert(s.labels, x);
                    }
                }
                _ => {}
            }
        }
    }
    if sets.len() > 1 {
        out = merged.into_iter().collect();
    }
    Ok(out)
}

/// Renders series grouped into families (one `# TYPE <name> untyped|unknown` per metric name).
pub fn render(series: &[(Labels, Sample)], external: &Labels, fmt: Format) -> String {
    let mut by_name: Vec<(&str, &Labels, &Sample)> =
        series.iter().map(|(l, s)| (l.metric_name().unwrap_or(""), l, s)).collect();
    // Label order already groups by name unless a label name sorts before `__name__` (upper case): sort only then.
    if !by_name.is_sorted_by(|a, b| a.0 <= b.0) {
        by_name.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(b.1)));
    }
    let mut out = String::with_capacity(by_name.len() * 96);
    let mut cur: Option<&str> = None;
    for (name, labels, s) in by_name {
        if name.is_empty() {
            continue;
        }
        if cur != Some(name) {
            let typ = if fmt == Format::OpenMetrics { "unknown" } else { "untyped" };
            let _ = writeln!(out, "# TYPE {name} {typ}");
            cur = Some(name);
        }
        out.push_str(name);
        let mut first = true;
        let mut push = |out: &mut String, n: &str, v: &str| {
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push_str(n);
            out.push_str("=\"");
            let _ = model::labels::write_escaped(out, v);
            out.push('"');
        };
        for l in labels.iter() {
            if l.name != model::METRIC_NAME {
                push(&mut out, l.name, l.value);
            }
        }
        for e in external.iter() {
            if !labels.has(e.name) {
                push(&mut out, e.name, e.value);
            }
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
        crate::metrics::push_float(&mut out, s.v);
        out.push(' ');
        match fmt {
            Format::Text004 => {
                let _ = write!(out, "{}", s.t);
            }
            Format::OpenMetrics => {
                let _ = write!(out, "{}.{:03}", s.t.div_euclid(1000), s.t.rem_euclid(1000));
            }
        }
        out.push('\n');
    }
    if fmt == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

pub async fn handler(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match Params::from_request(&method, &uri, &headers, &body) {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let mut sets = Vec::new();
    for s in p.all("match[]") {
        match promql::parse_metric_selector(s) {
            Ok(ms) => sets.push(ms),
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        }
    }
    if sets.is_empty() {
        return (StatusCode::BAD_REQUEST, "no match[] parameter provided").into_response();
    }
    let fmt = Format::negotiate(&headers);
    let st2 = st.clone();
    let res = tokio::task::spawn_blocking(move || {
        let external = crate::state::external_labels(&st2.config.read());
        let series = collect(st2.queryable().as_ref(), &sets, now_ms(), st2.engine.options().lookback_delta_ms)?;
        Ok::<_, model::StorageError>(render(&series, &external, fmt))
    })
    .await;
    match res {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, fmt.content_type())], text).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::labels;
    use model::mem::MemStorage;
    use model::storage::Storage;

    #[test]
    fn latest_sample_external_labels_and_staleness() {
        let s = MemStorage::new();
        let mut a = s.appender();
        let up = labels! {"__name__" => "up", "job" => "a", "instance" => "i"};
        let gone = labels! {"__name__" => "up", "job" => "b", "instance" => "i"};
        let other = labels! {"__name__" => "x", "replica" => "own"};
        a.append(0, &up, 1_000, 0.0).unwrap();
        a.append(0, &up, 2_000, 1.0).unwrap();
        a.append(0, &gone, 1_000, 1.0).unwrap();
        a.append(0, &gone, 2_000, model::STALE_NAN).unwrap();
        a.append(0, &other, 1_500, 2.5).unwrap();
        a.append(0, &other, 500_000, 9.0).unwrap(); // after maxt: not federated
        a.commit().unwrap();
        let sets = vec![vec![Matcher::new(model::MatchOp::Regex, "__name__", ".+").unwrap()]];
        let got = collect(&s, &sets, 3_000, 300_000).unwrap();
        assert_eq!(got.len(), 2);
        let ext = labels! {"replica" => "r1", "dc" => "eu"};
        let text = render(&got, &ext, Format::Text004);
        assert_eq!(
            text,
            "# TYPE up untyped\nup{instance=\"i\",job=\"a\",dc=\"eu\",replica=\"r1\"} 1 2000\n\
             # TYPE x untyped\nx{replica=\"own\",dc=\"eu\"} 2.5 1500\n"
        );
        let om = render(&got, &Labels::empty(), Format::OpenMetrics);
        assert!(om.ends_with("x{replica=\"own\"} 2.5 1.500\n# EOF\n"), "{om}");
    }

    #[test]
    fn negotiation() {
        let mut h = HeaderMap::new();
        assert_eq!(Format::negotiate(&h), Format::Text004);
        h.insert(header::ACCEPT, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5".parse().unwrap());
        assert_eq!(Format::negotiate(&h), Format::OpenMetrics);
    }
}
