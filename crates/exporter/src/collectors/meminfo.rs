//! meminfo: every /proc/meminfo field as `node_memory_<Key>[_bytes]` (node_exporter meminfo_linux.go).

use std::fmt::Write as _;

use super::prelude::*;

pub struct Meminfo;

/// Turns a meminfo key into node_exporter's metric suffix: `Active(anon)` → `Active_anon`.
pub fn meminfo_key(raw: &str, out: &mut String) {
    out.clear();
    // node_exporter applies the regex `\((.*)\)` → `_$1` (greedy, first '(' to last ')').
    match (raw.find('('), raw.rfind(')')) {
        (Some(a), Some(b)) if b > a => {
            out.push_str(&raw[..a]);
            out.push('_');
            out.push_str(&raw[a + 1..b]);
            out.push_str(&raw[b + 1..]);
        }
        _ => out.push_str(raw),
    }
}

impl Collector for Meminfo {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let path = cfg.proc("meminfo");
        let text = read_str(&path, &mut s.buf)?;
        let mut key = String::new();
        for line in text.lines() {
            let mut parts = line.split_ascii_whitespace();
            let Some(k) = parts.next() else { continue };
            let Some(v) = parts.next() else {
                return Err(CollectError::parse(
                    &path,
                    format!("invalid line in meminfo: {line}"),
                ));
            };
            let mut fv: f64 = v.parse().map_err(|_| {
                CollectError::parse(&path, format!("invalid value in meminfo: {v}"))
            })?;
            meminfo_key(k.strip_suffix(':').unwrap_or(k), &mut key);
            match (parts.next(), parts.next()) {
                (None, _) => {}
                (Some(_unit), None) => {
                    fv *= 1024.0;
                    key.push_str("_bytes");
                }
                _ => {
                    return Err(CollectError::parse(
                        &path,
                        format!("invalid line in meminfo: {line}"),
                    ))
                }
            }
            s.name.clear();
            let _ = write!(s.name, "node_memory_{key}");
            let typ = if key.ends_with("_total") {
                Counter
            } else {
                Gauge
            };
            out.emit_fmt(
                &s.name,
                format_args!("Memory information field {key}."),
                typ,
                &[],
                fv,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_mapping() {
        let mut s = String::new();
        super::meminfo_key("Active(anon)", &mut s);
        assert_eq!(s, "Active_anon");
        super::meminfo_key("MemTotal", &mut s);
        assert_eq!(s, "MemTotal");
    }
}
