//! Prometheus's duration grammar (`1h30m`, `15s`, `2d`, `1w2d`, `500ms`, `0`) and byte sizes (`512MB`, `5GB`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid duration string: {0:?}")]
pub struct DurationError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid size: {0:?} (want e.g. 512MB, 5GB)")]
pub struct SizeError(pub String);

const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a Prometheus duration into milliseconds. Units must appear at most once each, largest first.
pub fn parse_duration(s: &str) -> Result<i64, DurationError> {
    let err = || DurationError(s.to_string());
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(err());
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0; // index into UNITS that the next unit must be at or after
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(err());
        }
        let n: i64 = s[start..i].parse().map_err(|_| err())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let idx = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(err)?;
        if idx < next_unit {
            return Err(err());
        }
        next_unit = idx + 1;
        total = n.checked_mul(UNITS[idx].1).and_then(|x| total.checked_add(x)).ok_or_else(err)?;
    }
    Ok(total)
}

/// Formats milliseconds the way Prometheus prints durations (`1h30m`, `15d`, `0s`).
pub fn format_duration(ms: i64) -> String {
    struct D(i64);
    impl fmt::Display for D {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let mut ms = self.0;
            if ms == 0 {
                return f.write_str("0s");
            }
            if ms < 0 {
                f.write_str("-")?;
                ms = -ms;
            }
            for (u, size) in UNITS {
                // Prometheus only prints weeks/years when they divide exactly.
                if (u == "w" || u == "y") && ms % size != 0 {
                    continue;
                }
                if ms >= size {
                    write!(f, "{}{}", ms / size, u)?;
                    ms %= size;
                }
            }
            Ok(())
        }
    }
    D(ms).to_string()
}

/// Parses a base-2 byte size as Prometheus's `--storage.tsdb.retention.size` does: `B`, `KB`, `MB`, `GB`, `TB`,
/// `PB`, `EB` (powers of 1024; `KiB`-style spellings too).
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let err = || SizeError(s.to_string());
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(err());
    }
    let mult: u64 = match unit {
        "B" | "" => 1,
        "KB" | "KiB" | "K" => 1 << 10,
        "MB" | "MiB" | "M" => 1 << 20,
        "GB" | "GiB" | "G" => 1 << 30,
        "TB" | "TiB" | "T" => 1 << 40,
        "PB" | "PiB" | "P" => 1 << 50,
        "EB" | "EiB" | "E" => 1 << 60,
        _ => return Err(err()),
    };
    if unit.is_empty() && num != "0" {
        return Err(err());
    }
    let n: f64 = num.parse().map_err(|_| err())?;
    let v = n * mult as f64;
    if !v.is_finite() || v > u64::MAX as f64 {
        return Err(err());
    }
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s: &str, ms: i64| assert_eq!(parse_duration(s), Ok(ms), "{s}");
        ok("0", 0);
        ok("15s", 15_000);
        ok("1h30m", 5_400_000);
        ok("1w2d", 9 * 86_400_000);
        ok("500ms", 500);
        ok("2d", 172_800_000);
        ok("1y", 365 * 86_400_000);
        for bad in ["", "1", "1x", "30m1h", "1h1h", "-1s", "1.5h", "h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_roundtrip() {
        for (ms, s) in [(0, "0s"), (15_000, "15s"), (5_400_000, "1h30m"), (1_209_600_000, "2w"), (1_296_000_000, "15d")]
        {
            assert_eq!(format_duration(ms), s);
            assert_eq!(parse_duration(s).unwrap(), ms);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("5GB"), Ok(5 << 30));
        assert_eq!(parse_size("512MB"), Ok(512 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("5").is_err());
        assert!(parse_size("GB").is_err());
        assert!(parse_size("5XB").is_err());
    }
}
