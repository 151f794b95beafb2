//! Samples and the Prometheus staleness marker.

/// Bit pattern of Prometheus's staleness marker: a signalling-free NaN that no arithmetic produces.
/// It must survive every codec bit-exactly (compare with `to_bits`, never with `==`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float. `STALE_NAN != STALE_NAN`; use [`is_stale_nan`].
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// True only for the exact staleness-marker bit pattern (not for any other NaN).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

impl Sample {
    pub const fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// Equality on the float's bits, so NaNs (and stale markers) compare as stored.
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_nan_is_distinct_from_other_nans() {
        assert!(is_stale_nan(STALE_NAN));
        assert!(!is_stale_nan(f64::NAN));
        assert!(STALE_NAN.is_nan());
    }
}
