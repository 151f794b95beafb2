//! A lenient series-selector parser for `match[]` parameters of `/federate` (Prometheus's
//! `parser.ParseMetricSelector`), which, unlike a PromQL query, accepts selectors whose matchers all match the
//! empty string, such as the seed's federation config `{job=~".*"}`.

use model::{MatchOp, Matcher};

struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] as char).is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn err(&self, msg: &str) -> String {
        format!("1:{}: parse error: {msg}", self.i + 1)
    }

    fn ident(&mut self, allow_colon: bool) -> Option<String> {
        let start = self.i;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            let ok = c.is_ascii_alphabetic()
                || c == b'_'
                || (allow_colon && c == b':')
                || (self.i > start && c.is_ascii_digit());
            if !ok {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn string(&mut self) -> Result<String, String> {
        let q = *self.s.get(self.i).ok_or_else(|| self.err("unexpected end of input, expected string"))?;
        if q != b'"' && q != b'\'' && q != b'`' {
            return Err(self.err("expected string"));
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or_else(|| self.err("unterminated quoted string"))?;
            self.i += 1;
            if c == q {
                break;
            }
            if c == b'\\' && q != b'`' {
                let e = *self.s.get(self.i).ok_or_else(|| self.err("unterminated escape"))?;
                self.i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'v' => out.push(11),
                    b'\\' | b'"' | b'\'' => out.push(e),
                    b'x' | b'u' | b'U' => {
                        let n = match e {
                            b'x' => 2,
                            b'u' => 4,
                            _ => 8,
                        };
                        let hex = self.s.get(self.i..self.i + n).ok_or_else(|| self.err("bad escape"))?;
                        let v = u32::from_str_radix(std::str::from_utf8(hex).map_err(|_| self.err("bad escape"))?, 16)
                            .map_err(|_| self.err("bad escape"))?;
                        self.i += n;
                        if e == b'x' {
                            out.push(v as u8);
                        } else {
                            let ch = char::from_u32(v).ok_or_else(|| self.err("bad unicode escape"))?;
                            let mut b = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                        }
                    }
                    b'0'..=b'7' => {
                        let oct = self.s.get(self.i - 1..self.i + 2).ok_or_else(|| self.err("bad escape"))?;
                        let v = u32::from_str_radix(std::str::from_utf8(oct).map_err(|_| self.err("bad escape"))?, 8)
                            .map_err(|_| self.err("bad escape"))?;
                        if v > 255 {
                            return Err(self.err("bad octal escape"));
                        }
                        self.i += 2;
                        out.push(v as u8);
                    }
                    _ => return Err(self.err("unknown escape sequence")),
                }
            } else {
                out.push(c);
            }
        }
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8 in string"))
    }
}

/// Parses `name{l="v",…}`, `name` or `{…}` into matchers (the name as a `__name__` equality matcher).
pub fn parse_metric_selector(input: &str) -> Result<Vec<Matcher>, String> {
    let mut c = Cur { s: input.as_bytes(), i: 0 };
    let mut out = Vec::new();
    c.ws();
    if let Some(name) = c.ident(true) {
        out.push(Matcher::equal(model::METRIC_NAME, name));
    }
    c.ws();
    if c.s.get(c.i) == Some(&b'{') {
        c.i += 1;
        loop {
            c.ws();
            if c.s.get(c.i) == Some(&b'}') {
                c.i += 1;
                break;
            }
            let name = c.ident(false).ok_or_else(|| c.err("expected label name"))?;
            c.ws();
            let op = match (c.s.get(c.i), c.s.get(c.i + 1)) {
                (Some(b'='), Some(b'~')) => MatchOp::Regex,
                (Some(b'!'), Some(b'~')) => MatchOp::NotRegex,
                (Some(b'!'), Some(b'=')) => MatchOp::NotEqual,
                (Some(b'='), _) => MatchOp::Equal,
                _ => return Err(c.err("expected label matching operator")),
            };
            c.i += if op == MatchOp::Equal { 1 } else { 2 };
            c.ws();
            let value = c.string()?;
            out.push(Matcher::new(op, name, value).map_err(|e| c.err(&e.to_string()))?);
            c.ws();
            match c.s.get(c.i) {
                Some(b',') => c.i += 1,
                Some(b'}') => {}
                _ => return Err(c.err("expected comma or closing brace")),
            }
        }
    }
    c.ws();
    if c.i != c.s.len() {
        return Err(c.err("unexpected characters after selector"));
    }
    if out.is_empty() {
        return Err(c.err("vector selector must contain label matchers or metric name"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let m = parse_metric_selector(r#"{job=~".*"}"#).unwrap();
        assert_eq!(m, vec![Matcher::new(MatchOp::Regex, "job", ".*").unwrap()]);
        let m = parse_metric_selector(r#"up{a="x\"y",b!='z', c!~`\d+`,}"#).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0], Matcher::equal("__name__", "up"));
        assert_eq!(m[1].value, "x\"y");
        assert_eq!(m[3].value, r"\d+");
        assert!(parse_metric_selector("up{").is_err());
        assert!(parse_metric_selector("{}").is_err());
        assert!(parse_metric_selector("up + 1").is_err());
        assert!(parse_metric_selector(r#"{a=~"("}"#).is_err());
    }
}
