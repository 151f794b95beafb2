//! Byte-level codecs shared by every on-disk format: Go-compatible varints, big-endian integers, and a
//! bounds-checked read cursor.
//!
//! Encoders append to the caller's buffer; the [`Decbuf`] cursor never panics: every read checks bounds and
//! returns a [`DecodeError`] carrying the absolute offset, which callers turn into
//! `StorageError::Corrupt { location: "<file>", .. }`.

/// Why decoding stopped, and where (absolute offset in the file or record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub reason: &'static str,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.reason, self.offset)
    }
}

impl DecodeError {
    /// The error as a `StorageError::Corrupt` for `location` (usually a file path).
    pub fn corrupt(&self, location: impl std::fmt::Display) -> model::StorageError {
        model::StorageError::Corrupt { location: location.to_string(), reason: self.to_string() }
    }
}

#[inline]
pub fn put_uvarint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Go's `binary.PutVarint`: zig-zag, then uvarint.
#[inline]
pub fn put_varint(dst: &mut Vec<u8>, v: i64) {
    put_uvarint(dst, ((v << 1) ^ (v >> 63)) as u64);
}

#[inline]
pub fn put_be32(dst: &mut Vec<u8>, v: u32) {
    dst.extend_from_slice(&v.to_be_bytes());
}

#[inline]
pub fn put_be64(dst: &mut Vec<u8>, v: u64) {
    dst.extend_from_slice(&v.to_be_bytes());
}

#[inline]
pub fn put_uvarint_str(dst: &mut Vec<u8>, s: &str) {
    put_uvarint(dst, s.len() as u64);
    dst.extend_from_slice(s.as_bytes());
}

/// Bytes a uvarint of `v` takes.
pub fn uvarint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Decodes a uvarint at the start of `b`: (value, bytes used), or None if truncated or over 64 bits.
#[inline]
pub fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x: u64 = 0;
    let mut s = 0u32;
    for (i, &c) in b.iter().enumerate() {
        if i == 10 {
            return None;
        }
        if c < 0x80 {
            if i == 9 && c > 1 {
                return None;
            }
            return Some((x | (c as u64) << s, i + 1));
        }
        x |= ((c & 0x7f) as u64) << s;
        s += 7;
    }
    None
}

#[inline]
pub fn varint(b: &[u8]) -> Option<(i64, usize)> {
    let (ux, n) = uvarint(b)?;
    let x = (ux >> 1) as i64;
    Some((if ux & 1 != 0 { !x } else { x }, n))
}

/// CRC32 with the Castagnoli polynomial, as every Prometheus format uses.
#[inline]
pub fn crc32c(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}

/// Bounds-checked cursor over a byte slice. `base` is the absolute offset of `buf[0]`, for error messages.
#[derive(Clone)]
pub struct Decbuf<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

pub type DResult<T> = Result<T, DecodeError>;

impl<'a> Decbuf<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Decbuf { buf, pos: 0, base }
    }

    pub fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError { offset: self.base + self.pos, reason }
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn skip(&mut self, n: usize) -> DResult<()> {
        if n > self.remaining() {
            return Err(self.err("unexpected end of data"));
        }
        self.pos += n;
        Ok(())
    }

    pub fn bytes(&mut self, n: usize) -> DResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err("unexpected end of data"));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    pub fn byte(&mut self) -> DResult<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn be32(&mut self) -> DResult<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn be64(&mut self) -> DResult<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub fn uvarint(&mut self) -> DResult<u64> {
        match uvarint(self.rest()) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(self.err("invalid uvarint")),
        }
    }

    pub fn uvarint32(&mut self) -> DResult<u32> {
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| self.err("uvarint overflows 32 bits"))
    }

    pub fn varint(&mut self) -> DResult<i64> {
        match varint(self.rest()) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(self.err("invalid varint")),
        }
    }

    pub fn uvarint_bytes(&mut self) -> DResult<&'a [u8]> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| self.err("length overflow"))?;
        self.bytes(n)
    }

    pub fn uvarint_str(&mut self) -> DResult<&'a str> {
        let at = self.pos;
        let b = self.uvarint_bytes()?;
        std::str::from_utf8(b).map_err(|_| DecodeError { offset: self.base + at, reason: "invalid UTF-8 string" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varints_match_go() {
        // Values from Go's binary.PutVarint.
        let mut b = Vec::new();
        put_varint(&mut b, -1);
        assert_eq!(b, [1]);
        b.clear();
        put_varint(&mut b, 64);
        assert_eq!(b, [0x80, 1]);
        b.clear();
        put_uvarint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
    }

    #[test]
    fn decbuf_never_panics_on_truncation() {
        let mut d = Decbuf::new(&[0x80, 0x80], 10);
        let e = d.uvarint().unwrap_err();
        assert_eq!(e.offset, 10);
        let mut d = Decbuf::new(&[5, b'a'], 0);
        assert!(d.uvarint_bytes().is_err());
        assert!(Decbuf::new(&[0xff; 11], 0).uvarint().is_err());
    }

    proptest! {
        #[test]
        fn varint_roundtrip(u in any::<u64>(), i in any::<i64>()) {
            let mut b = Vec::new();
            put_uvarint(&mut b, u);
            put_varint(&mut b, i);
            let mut d = Decbuf::new(&b, 0);
            prop_assert_eq!(d.uvarint().unwrap(), u);
            prop_assert_eq!(d.varint().unwrap(), i);
            prop_assert!(d.is_empty());
            prop_assert_eq!(uvarint_len(u), { let mut c = Vec::new(); put_uvarint(&mut c, u); c.len() });
        }
    }
}
