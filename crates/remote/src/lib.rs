//! Prometheus remote write 1.0 and remote read: message types ([`prompb`]), the receiver that applies a write
//! request through an [`Appender`] all-or-nothing, and the read endpoint's logic over a [`Queryable`].
//!
//! Transport (HTTP) lives in the `web` crate; this crate turns bytes into storage calls and back.

pub mod client;
pub mod prompb;
pub mod receive;
pub mod sender;

use model::storage::{Appender, Queryable};
use model::{AppendError, Labels, MatchOp, Matcher, StorageError};
use prost::Message;

/// Largest decompressed body accepted (Prometheus uses the same order of magnitude); protects the server from
/// a snappy bomb.
pub const MAX_DECODED_BYTES: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    #[error("snappy decode: {0}")]
    Snappy(String),
    #[error("decompressed body of {0} bytes exceeds the limit of {MAX_DECODED_BYTES}")]
    TooLarge(usize),
    #[error("protobuf decode: {0}")]
    Proto(#[from] prost::DecodeError),
    /// From the in-place decoder of the receive path ([`receive`]).
    #[error("protobuf decode: {0}")]
    Malformed(String),
    #[error("series {index}: {reason}")]
    InvalidSeries { index: usize, reason: String },
    #[error("{reason} (series {labels}, timestamp {t})")]
    Append { labels: String, t: i64, reason: AppendError },
    #[error("native histograms are not supported by ignis (series {0})")]
    NativeHistogram(String),
    #[error("invalid matcher: {0}")]
    Matcher(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

impl RemoteError {
    /// Whether the sender should not retry (HTTP 400) rather than retry (HTTP 500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, RemoteError::Storage(_))
            && !matches!(self, RemoteError::Append { reason: AppendError::Storage(_) | AppendError::Closed, .. })
    }
}

/// Decodes a raw-snappy block, refusing outputs over [`MAX_DECODED_BYTES`] before allocating them.
pub fn snappy_decode(body: &[u8]) -> Result<Vec<u8>, RemoteError> {
    let n = snap::raw::decompress_len(body).map_err(|e| RemoteError::Snappy(e.to_string()))?;
    if n > MAX_DECODED_BYTES {
        return Err(RemoteError::TooLarge(n));
    }
    snap::raw::Decoder::new().decompress_vec(body).map_err(|e| RemoteError::Snappy(e.to_string()))
}

pub fn snappy_encode(data: &[u8]) -> Vec<u8> {
    // Encoding into a Vec cannot fail except for inputs over 4 GiB, which we never build.
    snap::raw::Encoder::new().compress_vec(data).unwrap_or_default()
}

pub fn decode_write_request(body: &[u8]) -> Result<prompb::WriteRequest, RemoteError> {
    let raw = snappy_decode(body)?;
    Ok(prompb::WriteRequest::decode(raw.as_slice())?)
}

pub fn encode_write_request(req: &prompb::WriteRequest) -> Vec<u8> {
    snappy_encode(&req.encode_to_vec())
}

/// Builds validated labels from protobuf labels: names must be valid, no duplicates, no empty set.
pub fn labels_from_proto(ls: &[prompb::Label]) -> Result<Labels, String> {
    if ls.is_empty() {
        return Err("empty label set".into());
    }
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(ls.len());
    for l in ls {
        if !model::labels::is_valid_label_name(&l.name) {
            return Err(format!("invalid label name {:?}", l.name));
        }
        if l.value.is_empty() {
            continue;
        }
        pairs.push((&l.name, &l.value));
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("duplicate label name {:?}", w[0].0));
    }
    match pairs.iter().find(|p| p.0 == model::METRIC_NAME) {
        Some((_, v)) if !model::labels::is_valid_metric_name(v) => {
            return Err(format!("invalid metric name {v:?}"));
        }
        _ => {}
    }
    Ok(Labels::from_sorted_unchecked(pairs))
}

pub fn labels_to_proto(l: &Labels) -> Vec<prompb::Label> {
    l.iter().map(|p| prompb::Label { name: p.name.to_string(), value: p.value.to_string() }).collect()
}

/// Counts from applying one write request.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct WriteStats {
    pub series: usize,
    pub samples: usize,
    pub exemplars_ignored: usize,
}

/// Applies a write request all-or-nothing: any invalid series or refused sample (out of order, duplicate, too
/// old) rolls the whole request back and is returned, so the sender gets a 400 and nothing is half-stored.
pub fn apply_write(app: &mut dyn Appender, req: &prompb::WriteRequest) -> Result<WriteStats, RemoteError> {
    let mut st = WriteStats::default();
    let res = (|| {
        for (index, ts) in req.timeseries.iter().enumerate() {
            let labels = labels_from_proto(&ts.labels).map_err(|reason| RemoteError::InvalidSeries { index, reason })?;
            if !ts.histograms.is_empty() {
                return Err(RemoteError::NativeHistogram(labels.to_string()));
            }
            let mut r = 0;
            for s in &ts.samples {
                r = app.append(r, &labels, s.timestamp, s.value).map_err(|reason| RemoteError::Append {
                    labels: labels.to_string(),
                    t: s.timestamp,
                    reason,
                })?;
            }
            st.series += 1;
            st.samples += ts.samples.len();
            st.exemplars_ignored += ts.exemplars.len();
        }
        Ok(())
    })();
    match res {
        Ok(()) => {
            app.commit()?;
            Ok(st)
        }
        Err(e) => {
            app.rollback();
            Err(e)
        }
    }
}

pub fn matchers_from_proto(ms: &[prompb::LabelMatcher]) -> Result<Vec<Matcher>, RemoteError> {
    ms.iter()
        .map(|m| {
            let op = match m.r#type {
                0 => MatchOp::Equal,
                1 => MatchOp::NotEqual,
                2 => MatchOp::Regex,
                3 => MatchOp::NotRegex,
                t => return Err(RemoteError::Matcher(format!("unknown matcher type {t}"))),
            };
            Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| RemoteError::Matcher(e.to_string()))
        })
        .collect()
}

pub fn matchers_to_proto(ms: &[Matcher]) -> Vec<prompb::LabelMatcher> {
    ms.iter()
        .map(|m| prompb::LabelMatcher {
            r#type: match m.op {
                MatchOp::Equal => 0,
                MatchOp::NotEqual => 1,
                MatchOp::Regex => 2,
                MatchOp::NotRegex => 3,
            },
            name: m.name.clone(),
            value: m.value.clone(),
        })
        .collect()
}

pub fn decode_read_request(body: &[u8]) -> Result<prompb::ReadRequest, RemoteError> {
    let raw = snappy_decode(body)?;
    Ok(prompb::ReadRequest::decode(raw.as_slice())?)
}

/// Answers a read request in the SAMPLES response type: one result per query, series sorted by labels, with
/// `external_labels` added to each series (series' own labels win) as Prometheus does.
pub fn read_samples(
    q: &dyn Queryable,
    req: &prompb::ReadRequest,
    external_labels: &Labels,
) -> Result<prompb::ReadResponse, RemoteError> {
    let mut resp = prompb::ReadResponse::default();
    for query in &req.queries {
        let matchers = matchers_from_proto(&query.matchers)?;
        let querier = q.querier(query.start_timestamp_ms, query.end_timestamp_ms)?;
        let hints = query.hints.as_ref().map(|h| model::SelectHints {
            start: h.start_ms,
            end: h.end_ms,
            step: h.step_ms,
            range: h.range_ms,
            func: (!h.func.is_empty()).then(|| h.func.clone()),
            grouping: h.grouping.clone(),
            by: h.by,
            // A remote reader asked for raw samples: never only the latest.
            latest_only: false,
        });
        let mut result = prompb::QueryResult::default();
        for s in querier.select(true, hints.as_ref(), &matchers)? {
            let mut s = s?;
            let mut samples = Vec::new();
            while let Some(x) = s.samples.next() {
                samples.push(prompb::Sample { value: x.v, timestamp: x.t });
            }
            if let Some(e) = s.samples.err() {
                return Err(RemoteError::Storage(StorageError::Other(e.to_string())));
            }
            let labels = with_external_labels(&s.labels, external_labels);
            result.timeseries.push(prompb::TimeSeries {
                labels: labels_to_proto(&labels),
                samples,
                ..Default::default()
            });
        }
        resp.results.push(result);
    }
    Ok(resp)
}

/// Adds external labels that the series does not already have.
pub fn with_external_labels(l: &Labels, ext: &Labels) -> Labels {
    if ext.is_empty() {
        return l.clone();
    }
    let mut b = l.builder();
    for e in ext.iter() {
        if !l.has(e.name) {
            b.set(e.name, e.value);
        }
    }
    b.build()
}

/// Largest frame Prometheus's reader accepts by default is 50 MiB; like Prometheus's server we cut frames at
/// about 1 MiB of chunk data so memory stays flat for huge results.
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Answers a read request in the STREAMED_XOR_CHUNKS response type: frames (see [`write_frame`]) of
/// `ChunkedReadResponse`, each series' samples re-encoded into XOR chunks of up to 120 samples.
pub fn read_chunks(
    q: &dyn Queryable,
    req: &prompb::ReadRequest,
    external_labels: &Labels,
) -> Result<Vec<u8>, RemoteError> {
    let mut out = Vec::new();
    for (qi, query) in req.queries.iter().enumerate() {
        let matchers = matchers_from_proto(&query.matchers)?;
        let querier = q.querier(query.start_timestamp_ms, query.end_timestamp_ms)?;
        let mut msg = prompb::ChunkedReadResponse { chunked_series: Vec::new(), query_index: qi as i64 };
        let mut pending_bytes = 0usize;
        for s in querier.select(true, None, &matchers)? {
            let mut s = s?;
            let labels = labels_to_proto(&with_external_labels(&s.labels, external_labels));
            let mut chunks = Vec::new();
            let mut app = tsdb::chunkenc::XorAppender::new();
            let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
            while let Some(x) = s.samples.next() {
                if app.num_samples() >= tsdb::chunkenc::SAMPLES_PER_CHUNK {
                    let full = std::mem::take(&mut app);
                    chunks.push(prompb::Chunk { min_time_ms: mint, max_time_ms: maxt, r#type: prompb::CHUNK_XOR, data: full.into_bytes() });
                    mint = i64::MAX;
                }
                mint = mint.min(x.t);
                maxt = x.t;
                app.append(x.t, x.v);
            }
            if let Some(e) = s.samples.err() {
                return Err(RemoteError::Storage(StorageError::Other(e.to_string())));
            }
            if app.num_samples() > 0 {
                chunks.push(prompb::Chunk { min_time_ms: mint, max_time_ms: maxt, r#type: prompb::CHUNK_XOR, data: app.into_bytes() });
            }
            if chunks.is_empty() {
                continue;
            }
            pending_bytes += chunks.iter().map(|c| c.data.len()).sum::<usize>();
            msg.chunked_series.push(prompb::ChunkedSeries { labels, chunks });
            if pending_bytes >= MAX_FRAME_BYTES {
                write_frame(&mut out, &msg.encode_to_vec());
                msg.chunked_series.clear();
                pending_bytes = 0;
            }
        }
        if !msg.chunked_series.is_empty() {
            write_frame(&mut out, &msg.encode_to_vec());
        }
    }
    Ok(out)
}

/// Frames one message of a streamed (chunked) read response: uvarint length, big-endian CRC32C of the message,
/// then the message.
pub fn write_frame(dst: &mut Vec<u8>, msg: &[u8]) {
    let mut n = msg.len() as u64;
    while n >= 0x80 {
        dst.push((n as u8) | 0x80);
        n >>= 7;
    }
    dst.push(n as u8);
    dst.extend_from_slice(&crc32c::crc32c(msg).to_be_bytes());
    dst.extend_from_slice(msg);
}

/// Reads one frame written by [`write_frame`] from the front of `src`; returns the message and the rest.
pub fn read_frame(src: &[u8]) -> Result<Option<(&[u8], &[u8])>, RemoteError> {
    if src.is_empty() {
        return Ok(None);
    }
    let mut n: u64 = 0;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let b = *src.get(i).ok_or_else(|| RemoteError::Snappy("truncated frame length".into()))?;
        i += 1;
        n |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err(RemoteError::Snappy("frame length overflows".into()));
        }
    }
    let n = n as usize;
    if src.len() < i + 4 || src.len() - i - 4 < n {
        return Err(RemoteError::Snappy("truncated frame".into()));
    }
    let crc = u32::from_be_bytes([src[i], src[i + 1], src[i + 2], src[i + 3]]);
    let msg = &src[i + 4..i + 4 + n];
    if crc32c::crc32c(msg) != crc {
        return Err(RemoteError::Snappy("frame checksum mismatch".into()));
    }
    Ok(Some((msg, &src[i + 4 + n..])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::mem::MemStorage;
    use model::storage::Storage;

    fn series(name: &str, samples: &[(i64, f64)]) -> prompb::TimeSeries {
        prompb::TimeSeries {
            labels: vec![
                prompb::Label { name: "__name__".into(), value: name.into() },
                prompb::Label { name: "job".into(), value: "x".into() },
            ],
            samples: samples.iter().map(|&(t, v)| prompb::Sample { timestamp: t, value: v }).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn write_roundtrip_and_apply() {
        let req = prompb::WriteRequest {
            timeseries: vec![series("a", &[(1, 1.0), (2, 2.0)]), series("b", &[(1, model::STALE_NAN)])],
            metadata: vec![],
        };
        let body = encode_write_request(&req);
        let dec = decode_write_request(&body).unwrap();
        assert_eq!(dec.timeseries.len(), 2);
        let s = MemStorage::new();
        let st = apply_write(s.appender().as_mut(), &dec).unwrap();
        assert_eq!(st.samples, 3);
        let snap = s.snapshot();
        let b = snap.iter().find(|(l, _)| l.metric_name() == Some("b")).unwrap();
        assert!(model::is_stale_nan(b.1[0].v));
    }

    #[test]
    fn out_of_order_rolls_back_whole_request() {
        let s = MemStorage::new();
        let req = prompb::WriteRequest {
            timeseries: vec![series("a", &[(5, 1.0)]), series("b", &[(2, 1.0), (1, 2.0)])],
            metadata: vec![],
        };
        let err = apply_write(s.appender().as_mut(), &req).unwrap_err();
        assert!(err.is_client_error());
        assert!(err.to_string().contains("out of order"), "{err}");
        assert!(s.snapshot().is_empty(), "nothing half-stored");
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert!(decode_write_request(b"not snappy at all").is_err());
        let junk = snappy_encode(&[0xff, 0xff, 0xff, 0x01]);
        assert!(decode_write_request(&junk).is_err());
        let dup = prompb::WriteRequest {
            timeseries: vec![prompb::TimeSeries {
                labels: vec![
                    prompb::Label { name: "a".into(), value: "1".into() },
                    prompb::Label { name: "a".into(), value: "2".into() },
                ],
                samples: vec![prompb::Sample { timestamp: 1, value: 1.0 }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let s = MemStorage::new();
        let e = apply_write(s.appender().as_mut(), &dup).unwrap_err();
        assert!(e.to_string().contains("duplicate label name"), "{e}");
    }

    #[test]
    fn read_samples_adds_external_labels() {
        let s = MemStorage::new();
        let mut a = s.appender();
        a.append(0, &model::labels! {"__name__" => "up", "job" => "x"}, 10, 1.0).unwrap();
        a.commit().unwrap();
        let req = prompb::ReadRequest {
            queries: vec![prompb::Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: 100,
                matchers: matchers_to_proto(&[Matcher::equal("__name__", "up")]),
                hints: None,
            }],
            accepted_response_types: vec![prompb::RESPONSE_SAMPLES],
        };
        let ext = model::labels! {"replica" => "a", "job" => "ignored"};
        let resp = read_samples(&s, &req, &ext).unwrap();
        let ts = &resp.results[0].timeseries[0];
        let names: Vec<(&str, &str)> = ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        assert_eq!(names, vec![("__name__", "up"), ("job", "x"), ("replica", "a")]);
        assert_eq!(ts.samples, vec![prompb::Sample { value: 1.0, timestamp: 10 }]);
    }

    #[test]
    fn read_chunks_roundtrip() {
        let s = MemStorage::new();
        let mut a = s.appender();
        let l = model::labels! {"__name__" => "up", "job" => "x"};
        for i in 0..300 {
            a.append(0, &l, i * 15_000, i as f64).unwrap();
        }
        a.commit().unwrap();
        let req = prompb::ReadRequest {
            queries: vec![prompb::Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: 10_000_000,
                matchers: matchers_to_proto(&[Matcher::equal("job", "x")]),
                hints: None,
            }],
            accepted_response_types: vec![prompb::RESPONSE_STREAMED_XOR_CHUNKS],
        };
        let body = read_chunks(&s, &req, &Labels::empty()).unwrap();
        let (msg, rest) = read_frame(&body).unwrap().unwrap();
        assert!(rest.is_empty());
        let resp = prompb::ChunkedReadResponse::decode(msg).unwrap();
        let cs = &resp.chunked_series[0];
        assert_eq!(cs.chunks.len(), 3);
        let mut got = Vec::new();
        for c in &cs.chunks {
            got.extend(tsdb::chunkenc::XorIter::collect_all(&c.data).unwrap());
        }
        assert_eq!(got.len(), 300);
        assert_eq!(got[299], (299 * 15_000, 299.0));
        assert_eq!(cs.chunks[1].min_time_ms, 120 * 15_000);
    }

    #[test]
    fn frames_roundtrip_and_detect_corruption() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello");
        write_frame(&mut buf, &[7u8; 300]);
        let (m1, rest) = read_frame(&buf).unwrap().unwrap();
        assert_eq!(m1, b"hello");
        let (m2, rest) = read_frame(rest).unwrap().unwrap();
        assert_eq!(m2.len(), 300);
        assert!(read_frame(rest).unwrap().is_none());
        let mut bad = buf.clone();
        bad[6] ^= 1;
        assert!(read_frame(&bad).is_err());
        assert!(read_frame(&buf[..3]).is_err());
    }
}
