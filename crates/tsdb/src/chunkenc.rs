//! Prometheus's XOR ("Gorilla") float chunk encoding, bit-compatible with `tsdb/chunkenc/xor.go`.
//!
//! Layout (see docs/format/chunks.md): `num_samples <u16 BE>`, then `t0 <varint>`, `v0 <64 bits>`,
//! `t1-t0 <uvarint>`, `v1 <xor>`, then per sample a delta-of-delta timestamp (1/16/20/23/68 bits) and an XOR
//! value (1, 2+sig or 13+sig bits). Bits are written most-significant first. Floats are carried by their bits,
//! so NaNs and the staleness marker survive exactly.
//!
//! The decoder never panics: truncated or inconsistent input ends iteration with a [`DecodeError`].

use crate::encoding::{uvarint, DecodeError};
use std::sync::Arc;

/// Encoding byte of XOR chunks in chunk files.
pub const ENC_XOR: u8 = 1;

/// Samples per chunk before a new one is cut (Prometheus's target).
pub const SAMPLES_PER_CHUNK: u16 = 120;

/// Appends samples to one XOR chunk. The state is exactly what a decoder would have after reading the chunk,
/// so an appender can also be rebuilt from bytes ([`XorAppender::from_bytes`]).
///
/// 48 bytes: the head keeps one per series inline, so the buffer is a boxed slice plus a `u32` bit count
/// (not a 24-byte `Vec` and a free-bits byte). The sample count is kept here as well as in the chunk
/// header, which is only written: reading it from the buffer on every append made the header's cache line
/// a load miss per sample (90% of `MemSeries::append` in a WAL replay profile). The buffer grows by ~12%
/// to sizes glibc malloc serves without rounding, and [`XorAppender::reset`] reuses it for the next chunk
/// when it fits the finished one within 24 bytes (chunks of a series are about the same size; doubling a
/// `Vec` left ~35 bytes of slack per series in the head; measured with examples/head_mem).
#[derive(Clone, Debug)]
pub struct XorAppender {
    buf: Box<[u8]>,
    /// Bits of `buf` in use, header included (0 only for [`XorAppender::empty`]).
    bits: u32,
    num: u16,
    leading: u8,
    trailing: u8,
    t: i64,
    v: u64,
    t_delta: u64,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn bit_range(x: i64, nbits: u8) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
}

/// The smallest size >= `n` that glibc malloc serves exactly (request + 8-byte header in 16-byte granules).
fn malloc_fit(n: usize) -> usize {
    (n + 8).div_ceil(16).max(2) * 16 - 8
}

impl XorAppender {
    pub fn new() -> Self {
        Self::with_capacity(128)
    }

    /// An appender without a buffer (no allocation): no samples and no bytes, not even the header, until the
    /// first [`XorAppender::append`].
    pub fn empty() -> Self {
        XorAppender { buf: Box::default(), bits: 0, num: 0, leading: 0xff, trailing: 0, t: 0, v: 0, t_delta: 0 }
    }

    pub fn with_capacity(cap: usize) -> Self {
        let mut a = Self::empty();
        a.buf = vec![0u8; malloc_fit(cap.max(2))].into_boxed_slice();
        a.bits = 16;
        a
    }

    /// Starts a new chunk in the same buffer, keeping its capacity unless it is far larger than the chunk
    /// just finished.
    pub fn reset(&mut self) {
        let used = self.len();
        let want = malloc_fit(used.max(64) + 8);
        if self.buf.len() < 2 || self.buf.len() > want + 16 {
            self.buf = vec![0u8; want].into_boxed_slice();
        }
        self.buf[..2].fill(0);
        self.bits = 16;
        self.num = 0;
        self.leading = 0xff;
        self.trailing = 0;
        self.t = 0;
        self.v = 0;
        self.t_delta = 0;
    }

    /// Continues an existing chunk (e.g. a head chunk read back): decodes it to recover the state.
    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        let mut it = XorIter::new(b)?;
        while it.next_sample()?.is_some() {}
        let mut buf = vec![0u8; malloc_fit(b.len() + 32)].into_boxed_slice();
        buf[..b.len()].copy_from_slice(b);
        let d = &it.dec;
        let total = (b.len() - 2) * 8;
        if d.r.pos > total || total - d.r.pos >= 8 {
            return Err(DecodeError { offset: 2 + d.r.pos / 8, reason: "XOR chunk length does not match its samples" });
        }
        let Ok(bits) = u32::try_from(16 + d.r.pos) else {
            return Err(DecodeError { offset: 0, reason: "XOR chunk longer than 512 MiB" });
        };
        Ok(XorAppender {
            buf,
            bits,
            num: d.num_total,
            t: d.t,
            v: d.v,
            t_delta: d.t_delta,
            leading: if d.num_total <= 1 { 0xff } else { d.leading },
            trailing: d.trailing,
        })
    }

    #[inline]
    pub fn num_samples(&self) -> u16 {
        self.num
    }

    #[inline]
    fn len(&self) -> usize {
        self.bits.div_ceil(8) as usize
    }

    /// The chunk bytes so far (valid to decode at any time; empty for [`XorAppender::empty`]).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len()]
    }

    /// Time and value bits of the last appended sample.
    #[inline]
    pub fn last(&self) -> Option<(i64, u64)> {
        (self.num > 0).then_some((self.t, self.v))
    }

    /// Time of the first sample (decoded from the chunk: the head does not keep it twice).
    #[inline]
    pub fn first_t(&self) -> Option<i64> {
        if self.num == 0 {
            return None;
        }
        first_t(self.bytes())
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.buf.len()
    }

    /// The chunk bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        let len = self.len();
        let mut v = self.buf.into_vec();
        v.truncate(len);
        v
    }

    /// Makes byte `idx` (the next one) exist and be zero, growing the buffer by ~12% when full.
    #[inline]
    fn start_byte(&mut self, idx: usize) {
        if idx >= self.buf.len() {
            self.grow(idx);
        }
        self.buf[idx] = 0;
    }

    #[cold]
    fn grow(&mut self, len: usize) {
        let mut b = vec![0u8; malloc_fit(len + len / 8 + 16)].into_boxed_slice();
        b[..len].copy_from_slice(&self.buf[..len]);
        self.buf = b;
    }

    #[inline]
    fn write_bit(&mut self, bit: bool) {
        let idx = (self.bits / 8) as usize;
        let used = self.bits % 8;
        if used == 0 {
            self.start_byte(idx);
        }
        if bit {
            self.buf[idx] |= 0x80 >> used;
        }
        self.bits += 1;
    }

    /// Writes the low `n` bits of `v`, most significant first.
    #[inline]
    fn write_bits(&mut self, v: u64, mut n: u8) {
        while n > 0 {
            let idx = (self.bits / 8) as usize;
            let used = (self.bits % 8) as u8;
            if used == 0 {
                self.start_byte(idx);
            }
            let room = 8 - used;
            let take = n.min(room);
            let shift = n - take;
            let bits = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            self.buf[idx] |= bits << (room - take);
            self.bits += u32::from(take);
            n -= take;
        }
    }

    #[inline]
    fn write_bytes_aligned(&mut self, b: &[u8]) {
        // Bytes written after the first sample header are not byte aligned in general; go bit by bit.
        for &x in b {
            self.write_bits(x as u64, 8);
        }
    }

    /// Appends one sample. The caller guarantees `t` is after the previous sample (the head checks order).
    /// Panics only if the chunk already holds `u16::MAX` samples (a caller bug).
    pub fn append(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        let mut tmp = [0u8; 10];
        if self.bits == 0 {
            // An empty() appender: write the header first.
            self.start_byte(0);
            self.start_byte(1);
            self.bits = 16;
        }
        let num = self.num;
        match num {
            0 => {
                let n = varint_to(&mut tmp, t);
                self.write_bytes_aligned(&tmp[..n]);
                self.write_bits(vb, 64);
            }
            1 => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let n = uvarint_to(&mut tmp, t_delta);
                self.write_bytes_aligned(&tmp[..n]);
                self.write_vdelta(vb);
                self.t_delta = t_delta;
            }
            u16::MAX => panic!("BUG: XOR chunk full"),
            _ => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.write_bit(false);
                } else if bit_range(dod, 14) {
                    self.write_bits(0b10, 2);
                    self.write_bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    self.write_bits(0b110, 3);
                    self.write_bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    self.write_bits(0b1110, 4);
                    self.write_bits(dod as u64, 20);
                } else {
                    self.write_bits(0b1111, 4);
                    self.write_bits(dod as u64, 64);
                }
                self.write_vdelta(vb);
                self.t_delta = t_delta;
            }
        }
        self.t = t;
        self.v = vb;
        self.num = num + 1;
        self.buf[..2].copy_from_slice(&self.num.to_be_bytes());
    }

    fn write_vdelta(&mut self, vb: u64) {
        let delta = vb ^ self.v;
        if delta == 0 {
            self.write_bit(false);
            return;
        }
        self.write_bit(true);
        let mut lead = delta.leading_zeros() as u8;
        let trail = delta.trailing_zeros() as u8;
        // The leading count has 5 bits on the wire.
        if lead >= 32 {
            lead = 31;
        }
        if self.leading != 0xff && lead >= self.leading && trail >= self.trailing {
            self.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.write_bits(delta >> self.trailing, sig);
            return;
        }
        self.leading = lead;
        self.trailing = trail;
        self.write_bit(true);
        self.write_bits(lead as u64, 5);
        let sig = 64 - lead - trail;
        // 64 significant bits do not fit in 6 bits; 0 stands for 64 (0 never occurs otherwise).
        self.write_bits((sig & 63) as u64, 6);
        self.write_bits(delta >> trail, sig);
    }
}

/// Time of the first sample of a non-empty XOR chunk (the zigzag varint after the 2-byte count).
pub fn first_t(chunk: &[u8]) -> Option<i64> {
    let (u, _) = uvarint(chunk.get(2..)?)?;
    let x = (u >> 1) as i64;
    Some(if u & 1 != 0 { !x } else { x })
}

fn uvarint_to(buf: &mut [u8; 10], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    i + 1
}

fn varint_to(buf: &mut [u8; 10], v: i64) -> usize {
    uvarint_to(buf, ((v << 1) ^ (v >> 63)) as u64)
}

/// Bit reader over a byte slice, most significant bit first.
#[derive(Clone, Debug)]
struct BitReader {
    /// Bit position from the start of the sample data.
    pos: usize,
}

impl BitReader {
    #[inline]
    fn read_bits(&mut self, data: &[u8], n: u8) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        let end = self.pos + n as usize;
        if end > data.len() * 8 {
            return None;
        }
        let byte = self.pos / 8;
        let off = (self.pos % 8) as u32;
        let acc: u128 = if byte + 16 <= data.len() {
            let mut a = [0u8; 16];
            a.copy_from_slice(&data[byte..byte + 16]);
            u128::from_be_bytes(a)
        } else {
            let mut a = [0u8; 16];
            let avail = data.len() - byte;
            a[..avail].copy_from_slice(&data[byte..]);
            u128::from_be_bytes(a)
        };
        self.pos = end;
        Some(((acc << off) >> (128 - n as u32)) as u64)
    }

    #[inline]
    fn read_bit(&mut self, data: &[u8]) -> Option<bool> {
        let byte = self.pos / 8;
        let b = *data.get(byte)?;
        let bit = (b >> (7 - (self.pos % 8))) & 1 == 1;
        self.pos += 1;
        Some(bit)
    }

    /// Reads a byte-encoded varint starting at a possibly unaligned bit position.
    fn read_uvarint(&mut self, data: &[u8]) -> Option<u64> {
        let mut tmp = [0u8; 10];
        let mut i = 0;
        loop {
            if i == 10 {
                return None;
            }
            let b = self.read_bits(data, 8)? as u8;
            tmp[i] = b;
            i += 1;
            if b < 0x80 {
                break;
            }
        }
        uvarint(&tmp[..i]).map(|(v, _)| v)
    }

    fn read_varint(&mut self, data: &[u8]) -> Option<i64> {
        let u = self.read_uvarint(data)?;
        let x = (u >> 1) as i64;
        Some(if u & 1 != 0 { !x } else { x })
    }
}

/// Decoding state of one XOR chunk; the bytes are passed to every call so the state can live next to an
/// owner of the bytes (mmap or `Arc<[u8]>`) without self-references.
#[derive(Clone, Debug)]
pub struct XorDecoder {
    r: BitReader,
    num_total: u16,
    num_read: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl XorDecoder {
    /// Reads the header of `chunk` (the 2-byte sample count).
    pub fn new(chunk: &[u8]) -> Result<Self, DecodeError> {
        if chunk.len() < 2 {
            return Err(DecodeError { offset: 0, reason: "XOR chunk shorter than its header" });
        }
        Ok(XorDecoder {
            r: BitReader { pos: 0 },
            num_total: u16::from_be_bytes([chunk[0], chunk[1]]),
            num_read: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
        })
    }

    pub fn num_samples(&self) -> u16 {
        self.num_total
    }

    fn fail(&self, reason: &'static str) -> DecodeError {
        DecodeError { offset: 2 + self.r.pos / 8, reason }
    }

    /// The next sample as (t, value bits), `Ok(None)` at the end.
    #[inline]
    pub fn next(&mut self, chunk: &[u8]) -> Result<Option<(i64, u64)>, DecodeError> {
        if self.num_read >= self.num_total {
            return Ok(None);
        }
        let data = chunk.get(2..).unwrap_or(&[]);
        let trunc = "truncated XOR chunk";
        match self.num_read {
            0 => {
                self.t = self.r.read_varint(data).ok_or_else(|| self.fail(trunc))?;
                self.v = self.r.read_bits(data, 64).ok_or_else(|| self.fail(trunc))?;
            }
            1 => {
                self.t_delta = self.r.read_uvarint(data).ok_or_else(|| self.fail(trunc))?;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value(data)?;
            }
            _ => {
                let mut d = 0u8;
                for _ in 0..4 {
                    d <<= 1;
                    let bit = self.r.read_bit(data).ok_or_else(|| self.fail(trunc))?;
                    if !bit {
                        break;
                    }
                    d |= 1;
                }
                let sz: u8 = match d {
                    0b0 => 0,
                    0b10 => 14,
                    0b110 => 17,
                    0b1110 => 20,
                    _ => 64,
                };
                let dod = if sz == 0 {
                    0
                } else if sz == 64 {
                    self.r.read_bits(data, 64).ok_or_else(|| self.fail(trunc))? as i64
                } else {
                    let mut bits = self.r.read_bits(data, sz).ok_or_else(|| self.fail(trunc))?;
                    // Negative values come back as large unsigned ones.
                    if bits > (1u64 << (sz - 1)) {
                        bits = bits.wrapping_sub(1u64 << sz);
                    }
                    bits as i64
                };
                self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value(data)?;
            }
        }
        self.num_read += 1;
        Ok(Some((self.t, self.v)))
    }

    #[inline]
    fn read_value(&mut self, data: &[u8]) -> Result<(), DecodeError> {
        let trunc = "truncated XOR chunk";
        if !self.r.read_bit(data).ok_or_else(|| self.fail(trunc))? {
            return Ok(());
        }
        let (lead, trail, mbits);
        if !self.r.read_bit(data).ok_or_else(|| self.fail(trunc))? {
            lead = self.leading;
            trail = self.trailing;
            let used = lead as u32 + trail as u32;
            if used >= 64 {
                return Err(self.fail("XOR value reuses an invalid window"));
            }
            mbits = 64 - used as u8;
        } else {
            lead = self.r.read_bits(data, 5).ok_or_else(|| self.fail(trunc))? as u8;
            let mut m = self.r.read_bits(data, 6).ok_or_else(|| self.fail(trunc))? as u8;
            if m == 0 {
                m = 64;
            }
            if lead as u32 + m as u32 > 64 {
                return Err(self.fail("XOR value window exceeds 64 bits"));
            }
            mbits = m;
            trail = 64 - lead - m;
            self.leading = lead;
            self.trailing = trail;
        }
        let bits = self.r.read_bits(data, mbits).ok_or_else(|| self.fail(trunc))?;
        self.v ^= bits << trail;
        Ok(())
    }
}

/// Convenience iterator over a borrowed chunk (tests, compaction).
pub struct XorIter<'a> {
    chunk: &'a [u8],
    dec: XorDecoder,
}

impl<'a> XorIter<'a> {
    pub fn new(chunk: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(XorIter { chunk, dec: XorDecoder::new(chunk)? })
    }

    pub fn next_sample(&mut self) -> Result<Option<(i64, f64)>, DecodeError> {
        Ok(self.dec.next(self.chunk)?.map(|(t, v)| (t, f64::from_bits(v))))
    }

    /// Decodes everything (for tests and re-encoding).
    pub fn collect_all(chunk: &[u8]) -> Result<Vec<(i64, f64)>, DecodeError> {
        let mut it = XorIter::new(chunk)?;
        let mut out = Vec::with_capacity(it.dec.num_total as usize);
        while let Some(s) = it.next_sample()? {
            out.push(s);
        }
        Ok(out)
    }
}

/// Immutable chunk bytes, either on the heap (head) or inside a memory-mapped segment file (blocks).
#[derive(Clone, Debug)]
pub enum ChunkBytes {
    Heap(Arc<[u8]>),
    /// `[start, end)` of a shared heap buffer (the head keeps a series' closed chunks in one allocation).
    HeapRange(Arc<[u8]>, usize, usize),
    Mapped(Arc<memmap2::Mmap>, usize, usize),
}

impl ChunkBytes {
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self {
            ChunkBytes::Heap(b) => b,
            ChunkBytes::HeapRange(b, s, e) => &b[*s..*e],
            ChunkBytes::Mapped(m, s, e) => &m[*s..*e],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::STALE_NAN;
    use proptest::prelude::*;

    fn roundtrip(samples: &[(i64, f64)]) {
        let mut a = XorAppender::new();
        for &(t, v) in samples {
            a.append(t, v);
        }
        let got = XorIter::collect_all(a.bytes()).unwrap();
        assert_eq!(got.len(), samples.len());
        for (g, w) in got.iter().zip(samples) {
            assert_eq!(g.0, w.0);
            assert_eq!(g.1.to_bits(), w.1.to_bits());
        }
        let b = XorAppender::from_bytes(a.bytes()).unwrap();
        assert_eq!(b.bytes(), a.bytes());
        assert_eq!(b.last(), a.last());
        assert_eq!(a.first_t(), samples.first().map(|s| s.0));
        // An unallocated appender, and one reset after holding another chunk, write the same bytes.
        let mut e = XorAppender::empty();
        assert_eq!((e.bytes(), e.num_samples(), e.first_t(), e.heap_size()), (&[][..], 0, None, 0));
        let mut r = XorAppender::with_capacity(2);
        for i in 0..300 {
            r.append(i * 7, i as f64 * 0.1);
        }
        r.reset();
        for &(t, v) in samples {
            e.append(t, v);
            r.append(t, v);
        }
        if !samples.is_empty() {
            assert_eq!(e.bytes(), a.bytes());
        }
        assert_eq!(r.bytes(), a.bytes());
        assert_eq!(r.last(), a.last());
        assert_eq!(a.clone().into_bytes(), a.bytes());
    }

    #[test]
    fn known_bytes_from_prometheus() {
        // Prometheus (chunkenc.NewXORChunk) for samples (1000,1.0), (2000,2.0), (3000,2.0):
        // header 0003, varint(1000)=d0 0f, float64 1.0, uvarint(1000)=e8 07, then bits.
        let mut a = XorAppender::new();
        a.append(1000, 1.0);
        a.append(2000, 2.0);
        a.append(3000, 2.0);
        let b = a.bytes();
        assert_eq!(&b[..4], &[0, 3, 0xd0, 0x0f]);
        assert_eq!(&b[4..12], &1.0f64.to_bits().to_be_bytes());
        assert_eq!(&b[12..14], &[0xe8, 0x07]);
        // 1.0 ^ 2.0 = 0x7ff0000000000000: lead 1, trail 52, sig 11 -> 1,1,00001,001011,11111111111 then dod 0, v 0.
        assert_eq!(&b[14..], &[0xc2, 0x5f, 0xff, 0]);
        roundtrip(&[(1000, 1.0), (2000, 2.0), (3000, 2.0)]);
    }

    #[test]
    fn stale_and_extremes() {
        roundtrip(&[
            (i64::MIN / 4, 0.0),
            (0, STALE_NAN),
            (1, f64::NAN),
            (100_000_000, f64::INFINITY),
            (100_000_001, -0.0),
            (100_000_002, f64::MIN_POSITIVE),
            (i64::MAX / 4, STALE_NAN),
        ]);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut a = XorAppender::new();
        for i in 0..50 {
            a.append(i * 15000, i as f64 * 1.5);
        }
        let b = a.bytes().to_vec();
        for cut in 0..b.len() {
            let _ = XorIter::collect_all(&b[..cut]);
        }
        let mut bad = b.clone();
        for i in 2..bad.len() {
            bad[i] ^= 0x5a;
            let _ = XorIter::collect_all(&bad);
        }
        assert!(XorIter::collect_all(&[0xff, 0xff, 1]).is_err());
    }

    proptest! {
        #[test]
        fn xor_roundtrip_bits(start in -1_000_000_000_000i64..1_000_000_000_000,
                              steps in proptest::collection::vec((0i64..100_000_000, any::<u64>(), 0u8..4), 1..300)) {
            let mut t = start;
            let mut samples = Vec::new();
            let mut prev = 0.0f64;
            for (dt, bits, kind) in steps {
                t += dt;
                let v = match kind {
                    0 => f64::from_bits(bits),
                    1 => STALE_NAN,
                    2 => prev,
                    _ => (bits % 1000) as f64,
                };
                prev = v;
                samples.push((t, v));
            }
            roundtrip(&samples);
        }

        #[test]
        fn decoder_survives_garbage(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = XorIter::collect_all(&b);
        }
    }
}
