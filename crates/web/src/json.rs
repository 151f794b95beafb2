//! Hand-written JSON output in exactly Prometheus's shapes: values as strings (`"NaN"`, `"+Inf"`, shortest
//! round-trip decimal without exponent, like Go's `FormatFloat(v, 'f', -1, 64)`), timestamps as seconds with
//! millisecond fraction (`1435781451.781`). Building strings directly avoids a serde tree per sample.

use model::Labels;
use std::fmt::Write;

/// Bytes that end a run of literally copied text in [`push_str`]: control characters, `"`, `\\`, Go's
/// HTML-safe `<`, `>`, `&`, and 0xE2, the first byte of U+2028 and U+2029.
const STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xE2] = true;
    t
};

/// Appends `s` as a JSON string literal, escaped as Go's encoder does. Runs of text that need no escape are
/// copied whole.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if !STOP[b[i] as usize] {
            i += 1;
            continue;
        }
        let esc = match b[i] {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            // Go's encoder escapes these for HTML safety; Prometheus clients accept either, we match Go.
            b'<' => "\\u003c",
            b'>' => "\\u003e",
            b'&' => "\\u0026",
            0xE2 if b.get(i + 1) == Some(&0x80) && b.get(i + 2) == Some(&0xA8) => "\\u2028",
            0xE2 if b.get(i + 1) == Some(&0x80) && b.get(i + 2) == Some(&0xA9) => "\\u2029",
            0xE2 => {
                i += 1;
                continue;
            }
            _ => "",
        };
        // `start..i` ends before an ASCII byte or a 0xE2 lead byte, so it is on a char boundary.
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b[i]);
            i += 1;
        } else {
            i += if b[i] == 0xE2 { 3 } else { 1 };
            out.push_str(esc);
        }
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a millisecond timestamp as Prometheus does: integer seconds, then `.` and three fraction digits if
/// the fraction is non-zero.
pub fn push_ts(out: &mut String, t: i64) {
    let mut t = t as i128;
    if t < 0 {
        out.push('-');
        t = -t;
    }
    let _ = write!(out, "{}", t / 1000);
    let frac = t % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// Formats a float value the way Prometheus's API does.
pub fn fmt_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `"1.5"` including quotes.
pub fn push_value(out: &mut String, v: f64) {
    out.push('"');
    fmt_value(out, v);
    out.push('"');
}

/// `[<ts>,"<value>"]`
pub fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_ts(out, t);
    out.push(',');
    push_value(out, v);
    out.push(']');
}

/// `{"name":"value",...}`
pub fn push_labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, p) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, p.name);
        out.push(':');
        push_str(out, p.value);
    }
    out.push('}');
}

/// `{"k":"v",...}` from string pairs.
pub fn push_str_object<'a>(out: &mut String, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k);
        out.push(':');
        push_str(out, v);
    }
    out.push('}');
}

/// `["a","b"]`
pub fn push_str_array<S: AsRef<str>>(out: &mut String, items: &[S]) {
    push_str_iter(out, items.iter().map(AsRef::as_ref));
}

/// `["a","b",...]`
pub fn push_str_iter<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    out.push('[');
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, s);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_go_formatting() {
        let f = |v: f64| {
            let mut s = String::new();
            fmt_value(&mut s, v);
            s
        };
        assert_eq!(f(1.0), "1");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(-2.5), "-2.5");
        assert_eq!(f(1e21), "1000000000000000000000");
        assert_eq!(f(1e-7), "0.0000001");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn timestamps() {
        let f = |t: i64| {
            let mut s = String::new();
            push_ts(&mut s, t);
            s
        };
        assert_eq!(f(1_435_781_451_781), "1435781451.781");
        assert_eq!(f(1_000), "1");
        assert_eq!(f(1_500), "1.500");
        assert_eq!(f(1_005), "1.005");
        assert_eq!(f(-1_500), "-1.500");
    }

    #[test]
    fn strings_escape() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\n<");
        assert_eq!(s, r#""a\"b\\c\n\u003c""#);
        let mut s = String::new();
        push_str(&mut s, "\u{1}é\u{2028}x\u{2029}\u{2027}&>\u{7f}");
        assert_eq!(s, "\"\\u0001é\\u2028x\\u2029\u{2027}\\u0026\\u003e\u{7f}\"");
    }

    /// Go's escaping one char at a time: the definition `push_str` must match.
    fn reference(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    proptest::proptest! {
        #[test]
        fn push_str_matches_reference(s in "(\\PC|[\\x00-\\x1f\"\\\\<>&\u{2026}-\u{202a}\u{e000}])*") {
            let mut got = String::new();
            push_str(&mut got, &s);
            proptest::prop_assert_eq!(got, reference(&s));
        }
    }
}
