//! Hand-rolled protobuf encoding of `WriteRequest` for the send path. Each series' labels are encoded once
//! (when its WAL series record is read) and shared by every sample, so building a request allocates nothing per
//! sample; prost would need owned `Label` strings for each `TimeSeries`. Field numbers as in `prompb`.

use model::Labels;
use std::sync::Arc;

/// One sample on its way to a shard.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    /// Encoded `repeated Label labels = 1` of the series (see [`encode_labels`]).
    pub labels: Arc<[u8]>,
    /// WAL series ref: picks the shard, so one series always goes through one shard in order.
    pub r: u64,
    pub t: i64,
    pub v: f64,
    /// The WAL record the sample came from, for acknowledgement.
    pub seq: u64,
}

pub(crate) fn put_uvarint(dst: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        dst.push((x as u8) | 0x80);
        x >>= 7;
    }
    dst.push(x as u8);
}

fn uvarint_len(x: u64) -> usize {
    (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
}

/// `TimeSeries.labels` (field 1, each a `Label { name = 1; value = 2 }` message), in label order.
pub(crate) fn encode_labels(l: &Labels) -> Arc<[u8]> {
    let mut out = Vec::with_capacity(l.encoded_len() + 6 * l.len());
    for p in l.iter() {
        let msg = 1 + uvarint_len(p.name.len() as u64) + p.name.len() + 1 + uvarint_len(p.value.len() as u64) + p.value.len();
        out.push(0x0a);
        put_uvarint(&mut out, msg as u64);
        out.push(0x0a);
        put_uvarint(&mut out, p.name.len() as u64);
        out.extend_from_slice(p.name.as_bytes());
        out.push(0x12);
        put_uvarint(&mut out, p.value.len() as u64);
        out.extend_from_slice(p.value.as_bytes());
    }
    out.into()
}

fn sample_len(t: i64) -> usize {
    // value: tag + 8 bytes; timestamp: tag + varint (int64 negative values take 10 bytes, as in protobuf).
    1 + 8 + 1 + uvarint_len(t as u64)
}

/// Builds snappy-compressed request bodies into reused buffers.
pub(crate) struct BatchEncoder {
    raw: Vec<u8>,
    out: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl Default for BatchEncoder {
    fn default() -> Self {
        BatchEncoder { raw: Vec::new(), out: Vec::new(), snappy: snap::raw::Encoder::new() }
    }
}

impl BatchEncoder {
    /// Encodes `batch` as one `WriteRequest`; runs of consecutive samples of one series share a `TimeSeries`.
    /// Returns the compressed body and the highest timestamp in the batch.
    pub(crate) fn encode(&mut self, batch: &[Item]) -> (&[u8], i64) {
        self.raw.clear();
        let mut max_t = i64::MIN;
        let mut i = 0;
        while i < batch.len() {
            let first = &batch[i];
            let mut j = i + 1;
            while j < batch.len() && batch[j].r == first.r && Arc::ptr_eq(&batch[j].labels, &first.labels) {
                j += 1;
            }
            let samples: usize = batch[i..j]
                .iter()
                .map(|s| {
                    let l = sample_len(s.t);
                    1 + uvarint_len(l as u64) + l
                })
                .sum();
            self.raw.push(0x0a);
            put_uvarint(&mut self.raw, (first.labels.len() + samples) as u64);
            self.raw.extend_from_slice(&first.labels);
            for s in &batch[i..j] {
                self.raw.push(0x12);
                put_uvarint(&mut self.raw, sample_len(s.t) as u64);
                self.raw.push(0x09);
                self.raw.extend_from_slice(&s.v.to_bits().to_le_bytes());
                self.raw.push(0x10);
                put_uvarint(&mut self.raw, s.t as u64);
                max_t = max_t.max(s.t);
            }
            i = j;
        }
        self.out.resize(snap::raw::max_compress_len(self.raw.len()), 0);
        match self.snappy.compress(&self.raw, &mut self.out) {
            Ok(n) => self.out.truncate(n),
            // Only inputs over ~4 GiB fail; a batch is bounded by max_samples_per_send.
            Err(e) => panic!("BUG: snappy compress of {} bytes failed: {e}", self.raw.len()),
        }
        (&self.out, max_t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompb;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_prost(
            series in proptest::collection::vec(
                (proptest::collection::btree_map("[a-z_]{1,12}", ".{0,40}", 1..6),
                 proptest::collection::vec((any::<i64>(), any::<u64>()), 1..5)), 1..8),
        ) {
            let mut batch = Vec::new();
            let mut want = Vec::new();
            for (r, (ls, samples)) in series.iter().enumerate() {
                let pairs: Vec<(&str, &str)> = ls.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let labels = Labels::from_pairs(&pairs);
                let enc = encode_labels(&labels);
                for &(t, bits) in samples {
                    batch.push(Item { labels: enc.clone(), r: r as u64, t, v: f64::from_bits(bits), seq: 0 });
                }
                want.push(prompb::TimeSeries {
                    labels: crate::labels_to_proto(&labels),
                    samples: samples.iter().map(|&(t, bits)| prompb::Sample { timestamp: t, value: f64::from_bits(bits) }).collect(),
                    ..Default::default()
                });
            }
            let mut e = BatchEncoder::default();
            let (body, max_t) = e.encode(&batch);
            let got = crate::decode_write_request(body).unwrap();
            prop_assert_eq!(max_t, batch.iter().map(|s| s.t).max().unwrap());
            prop_assert_eq!(got.timeseries.len(), want.len());
            for (g, w) in got.timeseries.iter().zip(&want) {
                prop_assert_eq!(&g.labels, &w.labels);
                prop_assert_eq!(g.samples.len(), w.samples.len());
                for (a, b) in g.samples.iter().zip(&w.samples) {
                    prop_assert_eq!(a.timestamp, b.timestamp);
                    prop_assert_eq!(a.value.to_bits(), b.value.to_bits());
                }
            }
        }
    }

    #[test]
    fn varint_lengths() {
        for x in [0u64, 1, 127, 128, 16383, 16384, u64::MAX, (-1i64) as u64] {
            let mut v = Vec::new();
            put_uvarint(&mut v, x);
            assert_eq!(v.len(), uvarint_len(x), "{x}");
        }
    }
}
