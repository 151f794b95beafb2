//! Parsing of API parameters exactly as Prometheus's `web/api/v1` does (`parseTime`, `parseDuration`).

use chrono::DateTime;

/// Prometheus's minimum and maximum representable times (ms), used as defaults for open ranges and accepted in
/// their RFC3339 spelling.
pub const MIN_TIME: i64 = -9_223_309_901_257_974_000;
pub const MAX_TIME: i64 = 9_223_309_901_257_974_999;
const MIN_TIME_STR: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_STR: &str = "292277025-08-18T07:12:54.999999999Z";

/// Parses a unix timestamp in (fractional) seconds or an RFC3339 time into ms.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            let secs = f.trunc();
            let ms = ((f - secs) * 1000.0).round();
            let total = secs * 1000.0 + ms;
            if total >= MIN_TIME as f64 && total <= MAX_TIME as f64 {
                return Ok(total as i64);
            }
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    match s {
        MIN_TIME_STR => Ok(MIN_TIME),
        MAX_TIME_STR => Ok(MAX_TIME),
        _ => Err(format!("cannot parse {s:?} to a valid timestamp")),
    }
}

/// Parses float seconds or a Prometheus duration (`5m`) into ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse {s:?} to a valid duration");
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms.abs() >= (i64::MAX / 1_000_000) as f64 {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        return Ok(ms.round() as i64);
    }
    model::duration::parse_duration(s).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("-1.5"), Ok(-1_500));
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("2015-07-01T22:10:51.781+02:00"), Ok(1_435_781_451_781));
        assert_eq!(parse_time(MIN_TIME_STR), Ok(MIN_TIME));
        assert!(parse_time("yesterday").unwrap_err().contains("yesterday"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert!(parse_duration("1x").is_err());
    }
}
