//! Counter-based randomness: every random draw is a pure function of a key (seed, target, group, generation,
//! tick, stream). That makes the live generator and the dataset generator produce the same values for the same
//! absolute tick without sharing state, and lets any series be simulated independently of the others.

/// SplitMix64 finaliser: a good 64-bit mixer (passes BigCrush as a generator).
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of an ordered list of words.
#[inline]
pub fn key(parts: &[u64]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3u64;
    for &p in parts {
        h = mix(h ^ p);
    }
    h
}

/// Uniform in [0, 1).
#[inline]
pub fn unit(k: u64) -> f64 {
    (mix(k) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in [lo, hi).
#[inline]
pub fn range(k: u64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit(k)
}

/// Approximately standard normal (Irwin–Hall of four uniforms, rescaled): cheap, bounded, good enough for walks.
#[inline]
pub fn normalish(k: u64) -> f64 {
    let s = unit(k) + unit(k ^ 0x1111) + unit(k ^ 0x2222) + unit(k ^ 0x3333);
    (s - 2.0) * 1.732_050_807_568_877_2 // sqrt(12/4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_in_range_and_spread() {
        let mut lo = 0;
        for i in 0..10_000u64 {
            let u = unit(i);
            assert!((0.0..1.0).contains(&u));
            if u < 0.5 {
                lo += 1;
            }
        }
        assert!((4_700..5_300).contains(&lo), "{lo}");
    }

    #[test]
    fn key_depends_on_order() {
        assert_ne!(key(&[1, 2]), key(&[2, 1]));
        assert_eq!(key(&[1, 2]), key(&[1, 2]));
    }
}
