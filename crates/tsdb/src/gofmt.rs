//! Go's text formatting, reproduced where promtool-compatible output depends on it: `%g` floats,
//! `strconv.Quote`, `time.Duration.String`, `time.Time.String` in UTC, `units.Base2Bytes.String` and
//! `text/tabwriter` with promtool's settings. Each function names the Go function it mirrors.

use std::fmt::Write as _;

/// `fmt.Sprintf("%g", v)`: shortest round-trip digits; exponent form when the decimal exponent is below -4
/// or at least 6 (Go's fixed threshold for the shortest precision), exponent with sign and at least two
/// digits; `NaN`, `+Inf`, `-Inf`.
pub fn fmt_g(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Go's strconv (both pick the closest of the
    // shortest candidates); only the layout differs.
    let mut e = String::with_capacity(32);
    let _ = write!(e, "{v:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.unsigned_abs());
        return;
    }
    let dp = exp + 1; // digits before the decimal point
    let nd = digits.len() as i32;
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..-dp {
            out.push('0');
        }
        out.push_str(&digits);
    } else if nd <= dp {
        out.push_str(&digits);
        for _ in 0..dp - nd {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
}

/// Whether Go's `unicode.IsPrint` holds, approximated without Unicode tables: controls, separators other
/// than the ASCII space, format characters and private-use characters are not printable. Unassigned code
/// points (which Go also escapes) are treated as printable.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD
        | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F);
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    !(format || private)
}

/// `strconv.Quote(s)`.
pub fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if go_is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// Prometheus's `labels.Labels.String()`: `{a="x", b="y"}` with Go-quoted values.
pub fn labels(out: &mut String, l: &model::Labels) {
    out.push('{');
    for (i, p) in l.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(p.name);
        out.push('=');
        quote(out, p.value);
    }
    out.push('}');
}

/// `time.Duration(ms * 1e6).String()`: `0s`, `1ms`, `1.5s`, `2h0m0s`, `-30.001s`.
pub fn duration_ms(ms: i64) -> String {
    let mut out = String::new();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 0 {
        out.push('-');
    }
    let u = ms.unsigned_abs();
    if u < 1000 {
        let _ = write!(out, "{u}ms");
        return out;
    }
    let (secs, frac) = (u / 1000, u % 1000);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}");
    if frac > 0 {
        let f = format!("{frac:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// `time.Unix(ms/1000, 0).UTC().String()`: `2023-11-14 22:13:20 +0000 UTC` (Go's integer division).
pub fn utc_time(ms: i64) -> String {
    let secs = ms / 1000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant's algorithm), valid for the whole i64 range we can meet here.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC", sod / 3600, sod / 60 % 60, sod % 60)
}

/// `units.Base2Bytes(n).String()` (alecthomas/units): every non-zero 1024-power part, largest first, e.g.
/// `1MiB440KiB992B`; `0B` for zero.
pub fn base2_bytes(n: i64) -> String {
    const UNITS: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
    let mut parts: Vec<String> = Vec::new();
    let mut n = n;
    for (i, u) in UNITS.iter().enumerate() {
        if n % 1024 != 0 || (i == 0 && n == 0) {
            parts.push(format!("{}{u}{}", n % 1024, if i == 0 { "B" } else { "iB" }));
        }
        n /= 1024;
        if n == 0 {
            break;
        }
    }
    parts.reverse();
    parts.concat()
}

/// `text/tabwriter` as promtool configures it (`minwidth 13, tabwidth 0, padding 2, padchar ' '`): every
/// cell but the last of a row is left-aligned and padded to its column's width (the widest cell + 2, at
/// least 13); the last cell is written as is.
pub fn tabwrite(rows: &[Vec<String>]) -> String {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![13usize; ncols];
    for r in rows {
        for (j, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            widths[j] = widths[j].max(c.chars().count() + 2);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (j, c) in r.iter().enumerate() {
            out.push_str(c);
            if j + 1 < r.len() {
                for _ in c.chars().count()..widths[j] {
                    out.push(' ');
                }
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(v: f64) -> String {
        let mut s = String::new();
        fmt_g(&mut s, v);
        s
    }

    #[test]
    fn g_matches_go() {
        // Expected strings are Go's fmt.Sprintf("%g", v).
        let cases = [
            (1.0, "1"),
            (2.5e10, "2.5e+10"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456789.0, "1.23456789e+08"),
            (1e6, "1e+06"),
            (100000.0, "100000"),
            (123456.5, "123456.5"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-1.5, "-1.5"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(g(v), want, "{v:e}");
        }
    }

    #[test]
    fn quote_matches_go() {
        let mut s = String::new();
        quote(&mut s, "a\"b\\c\nd\te\u{1}f\u{7f}ü日本\u{a0}\u{200b}\u{1F600}\u{E000}");
        assert_eq!(s, r#""a\"b\\c\nd\te\x01f\x7fü日本\u00a0\u200b😀\ue000""#);
    }

    #[test]
    fn durations_times_sizes() {
        assert_eq!(duration_ms(0), "0s");
        assert_eq!(duration_ms(1), "1ms");
        assert_eq!(duration_ms(30_001), "30.001s");
        assert_eq!(duration_ms(7_200_000), "2h0m0s");
        assert_eq!(duration_ms(60_000), "1m0s");
        assert_eq!(duration_ms(7_199_990), "1h59m59.99s");
        assert_eq!(duration_ms(-1500), "-1.5s");
        assert_eq!(utc_time(1_700_000_000_000), "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(utc_time(-1), "1970-01-01 00:00:00 +0000 UTC", "Go truncates ms/1000 toward zero");
        assert_eq!(utc_time(-86_400_000), "1969-12-31 00:00:00 +0000 UTC");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00 +0000 UTC");
        assert_eq!(base2_bytes(0), "0B");
        assert_eq!(base2_bytes(923), "923B");
        assert_eq!(base2_bytes(1024), "1KiB");
        assert_eq!(base2_bytes(1_500_000), "1MiB440KiB864B");
    }

    #[test]
    fn tabwriter_layout() {
        let rows = vec![
            vec!["BLOCK ULID".to_string(), "N".into(), "SIZE".into()],
            vec!["01M89HV82EZ1TEZZ0K5S0R2D2C".to_string(), "123456789012345".into(), "923".into()],
        ];
        assert_eq!(
            tabwrite(&rows),
            "BLOCK ULID                  N                SIZE\n01M89HV82EZ1TEZZ0K5S0R2D2C  123456789012345  923\n"
        );
    }
}
