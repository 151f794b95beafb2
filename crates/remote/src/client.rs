//! Remote-read client: a [`Queryable`] backed by another server's `/api/v1/read` (a Prometheus, an ignis, or
//! later an ignis sidecar/store), asking for STREAMED_XOR_CHUNKS and falling back to SAMPLES when the server
//! answers with those.

use crate::{prompb, read_frame, snappy_decode, snappy_encode, RemoteError};
use model::storage::{Querier, Queryable, SelectHints, Series, SeriesSet, VecSampleIter};
use model::{Labels, MatchOp, Matcher, Sample, StorageError};
use prost::Message;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ReadClientConfig {
    pub name: String,
    pub url: String,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    /// `Authorization` header value (bearer or basic), already formatted.
    pub authorization: Option<String>,
    /// Equality matchers a selector must contain for this source to be asked at all.
    pub required_matchers: Vec<(String, String)>,
    /// When false, the source is skipped for queries whose range starts after `local_start_ms()`.
    pub read_recent: bool,
    /// External labels of the local server; with `filter_external_labels`, added as equality matchers to
    /// remote queries and stripped from the answers.
    pub external_labels: Labels,
    pub filter_external_labels: bool,
}

/// Cheap to clone; queriers share the connection pool.
#[derive(Clone)]
pub struct RemoteReadClient {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    cfg: ReadClientConfig,
    agent: ureq::Agent,
    /// Start of the local storage's data, for `read_recent: false`.
    local_start: Option<std::sync::Arc<dyn Fn() -> i64 + Send + Sync>>,
}

impl RemoteReadClient {
    /// `local_start` gives the start of the local storage's data, for `read_recent: false`.
    pub fn new(cfg: ReadClientConfig, local_start: Option<std::sync::Arc<dyn Fn() -> i64 + Send + Sync>>) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(cfg.timeout).build();
        RemoteReadClient { inner: std::sync::Arc::new(Inner { cfg, agent, local_start }) }
    }

    /// Sends one query and returns its series, sorted by labels.
    pub fn read(&self, query: prompb::Query) -> Result<Vec<(Labels, Vec<Sample>)>, RemoteError> {
        self.inner.read(query)
    }
}

impl Inner {
    fn read(&self, query: prompb::Query) -> Result<Vec<(Labels, Vec<Sample>)>, RemoteError> {
        let req = prompb::ReadRequest {
            queries: vec![query],
            accepted_response_types: vec![prompb::RESPONSE_STREAMED_XOR_CHUNKS, prompb::RESPONSE_SAMPLES],
        };
        let body = snappy_encode(&req.encode_to_vec());
        let mut r = self
            .agent
            .post(&self.cfg.url)
            .set("Content-Type", "application/x-protobuf")
            .set("Content-Encoding", "snappy")
            .set("Accept-Encoding", "snappy")
            .set("X-Prometheus-Remote-Read-Version", "0.1.0")
            .set("User-Agent", concat!("ignis/", env!("CARGO_PKG_VERSION")));
        for (k, v) in &self.cfg.headers {
            r = r.set(k, v);
        }
        if let Some(a) = &self.cfg.authorization {
            r = r.set("Authorization", a);
        }
        let resp = r.send_bytes(&body).map_err(|e| match e {
            ureq::Error::Status(code, resp) => {
                let text = resp.into_string().unwrap_or_default();
                RemoteError::Storage(StorageError::Other(format!(
                    "remote read {}: server returned HTTP {code}: {}",
                    self.cfg.url,
                    text.trim()
                )))
            }
            e => RemoteError::Storage(StorageError::Other(format!("remote read {}: {e}", self.cfg.url))),
        })?;
        let ct = resp.content_type().to_string();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(resp.into_reader(), crate::MAX_DECODED_BYTES as u64), &mut raw)
            .map_err(|e| RemoteError::Storage(StorageError::Io(e)))?;
        let mut out: Vec<(Labels, Vec<Sample>)> = Vec::new();
        if ct.starts_with("application/x-streamed-protobuf") {
            let mut rest = raw.as_slice();
            while let Some((msg, tail)) = read_frame(rest)? {
                rest = tail;
                let m = prompb::ChunkedReadResponse::decode(msg)?;
                for cs in m.chunked_series {
                    let labels = crate::labels_from_proto(&cs.labels)
                        .map_err(|reason| RemoteError::InvalidSeries { index: out.len(), reason })?;
                    let mut samples = Vec::new();
                    for c in &cs.chunks {
                        if c.r#type != prompb::CHUNK_XOR {
                            return Err(RemoteError::NativeHistogram(labels.to_string()));
                        }
                        let s = tsdb::chunkenc::XorIter::collect_all(&c.data).map_err(|e| {
                            RemoteError::Storage(StorageError::Corrupt {
                                location: format!("remote read chunk from {}", self.cfg.url),
                                reason: e.to_string(),
                            })
                        })?;
                        samples.extend(s.into_iter().map(|(t, v)| Sample::new(t, v)));
                    }
                    // A series may span several frames; join them.
                    match out.last_mut() {
                        Some((l, v)) if *l == labels => v.extend(samples),
                        _ => out.push((labels, samples)),
                    }
                }
            }
        } else {
            let resp = prompb::ReadResponse::decode(snappy_decode(&raw)?.as_slice())?;
            for r in resp.results {
                for ts in r.timeseries {
                    let labels = crate::labels_from_proto(&ts.labels)
                        .map_err(|reason| RemoteError::InvalidSeries { index: out.len(), reason })?;
                    out.push((labels, ts.samples.iter().map(|s| Sample::new(s.timestamp, s.value)).collect()));
                }
            }
        }
        if self.cfg.filter_external_labels && !self.cfg.external_labels.is_empty() {
            for (l, _) in &mut out {
                let mut b = l.builder();
                for e in self.cfg.external_labels.iter() {
                    b.del(e.name);
                }
                *l = b.build();
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

impl Queryable for RemoteReadClient {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        let i = &self.inner;
        let skip = !i.cfg.read_recent && i.local_start.as_ref().is_some_and(|f| mint > f());
        Ok(Box::new(RemoteQuerier { client: self.inner.clone(), mint, maxt, skip }))
    }
}

struct RemoteQuerier {
    client: std::sync::Arc<Inner>,
    mint: i64,
    maxt: i64,
    skip: bool,
}

impl Inner {
    fn has_required(&self, ms: &[Matcher]) -> bool {
        self.cfg.required_matchers.iter().all(|(n, v)| {
            ms.iter().any(|m| m.op == MatchOp::Equal && &m.name == n && &m.value == v)
        })
    }

    fn select_inner(&self, mint: i64, maxt: i64, hints: Option<&SelectHints>, ms: &[Matcher])
        -> Result<Vec<(Labels, Vec<Sample>)>, StorageError> {
        if !self.has_required(ms) {
            return Ok(Vec::new());
        }
        let mut ms: Vec<Matcher> = ms.to_vec();
        if self.cfg.filter_external_labels {
            for e in self.cfg.external_labels.iter() {
                if !ms.iter().any(|m| m.name == e.name) {
                    ms.push(Matcher::equal(e.name, e.value));
                }
            }
        }
        let query = prompb::Query {
            start_timestamp_ms: mint,
            end_timestamp_ms: maxt,
            matchers: crate::matchers_to_proto(&ms),
            hints: hints.map(|h| prompb::ReadHints {
                step_ms: h.step,
                func: h.func.clone().unwrap_or_default(),
                start_ms: h.start,
                end_ms: h.end,
                grouping: h.grouping.clone(),
                by: h.by,
                range_ms: h.range,
            }),
        };
        self.read(query).map_err(|e| match e {
            RemoteError::Storage(s) => s,
            e => StorageError::Other(format!("remote read {}: {e}", self.cfg.url)),
        })
    }
}

impl Querier for RemoteQuerier {
    fn select(&self, _sorted: bool, hints: Option<&SelectHints>, ms: &[Matcher]) -> Result<SeriesSet, StorageError> {
        if self.skip {
            return Ok(Box::new(std::iter::empty()));
        }
        let v = self.client.select_inner(self.mint, self.maxt, hints, ms)?;
        Ok(Box::new(v.into_iter().map(|(labels, s)| Ok(Series { labels, samples: Box::new(VecSampleIter::new(s)) }))))
    }

    fn label_values(&self, name: &str, ms: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if self.skip {
            return Ok(Vec::new());
        }
        let ms = if ms.is_empty() { vec![Matcher::new(MatchOp::Regex, name, ".+").map_err(|e| StorageError::Other(e.to_string()))?] } else { ms.to_vec() };
        let v = self.client.select_inner(self.mint, self.maxt, None, &ms)?;
        let mut out: Vec<String> = v.iter().filter_map(|(l, _)| l.get(name).map(str::to_string)).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn label_names(&self, ms: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if self.skip || ms.is_empty() {
            // Remote read has no label-names call; without matchers we would have to fetch everything.
            return Ok(Vec::new());
        }
        let v = self.client.select_inner(self.mint, self.maxt, None, ms)?;
        let mut out: Vec<String> = v.iter().flat_map(|(l, _)| l.iter().map(|p| p.name.to_string())).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}
