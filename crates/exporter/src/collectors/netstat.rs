//! netstat: /proc/net/{netstat,snmp,snmp6} fields matching --collector.netstat.fields, untyped
//! (node_exporter netstat_linux.go).

use std::fmt::Write as _;

use super::prelude::*;

#[derive(Default)]
pub struct Netstat {
    /// (protocol, field, value) of the current scrape; reused.
    rows: Vec<(String, String, f64)>,
}

/// Parses the paired header/value line format of /proc/net/netstat and /proc/net/snmp.
pub fn parse_paired(text: &str, rows: &mut Vec<(String, String, f64)>) -> Result<(), String> {
    let mut lines = text.lines();
    while let Some(names) = lines.next() {
        let Some(values) = lines.next() else { break };
        let names: Vec<&str> = names.split(' ').collect();
        let values: Vec<&str> = values.split(' ').collect();
        let proto = names[0].strip_suffix(':').unwrap_or(names[0]);
        if names.len() != values.len() {
            return Err(format!("mismatch field count mismatch: {proto}"));
        }
        // A protocol appearing twice replaces its earlier fields, as node_exporter's map does.
        rows.retain(|(p, _, _)| p != proto);
        for (n, v) in names[1..].iter().zip(&values[1..]) {
            let v: f64 = v.parse().map_err(|_| format!("invalid value {v} in netstats"))?;
            rows.push((proto.to_string(), n.to_string(), v));
        }
    }
    Ok(())
}

/// Parses /proc/net/snmp6 ("Ip6InReceives 123"): the protocol is the name up to its first '6'.
pub fn parse_snmp6(text: &str, rows: &mut Vec<(String, String, f64)>) -> Result<(), String> {
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else { continue };
        let Some(six) = k.find('6') else { continue };
        let v: f64 = v.parse().map_err(|_| format!("invalid value {v} in netstats"))?;
        rows.push((k[..=six].to_string(), k[six + 1..].to_string(), v));
    }
    Ok(())
}

impl Collector for Netstat {
    fn update(&mut self, cfg: &Config, s: &mut Scratch, out: &mut Registry) -> Result<(), CollectError> {
        self.rows.clear();
        for f in ["net/netstat", "net/snmp"] {
            let p = cfg.proc(f);
            let text = read_str(&p, &mut s.buf)?;
            parse_paired(text, &mut self.rows).map_err(|m| CollectError::parse(&p, m))?;
        }
        let p6 = cfg.proc("net/snmp6");
        match read_str(&p6, &mut s.buf) {
            Ok(text) => parse_snmp6(text, &mut self.rows).map_err(|m| CollectError::parse(&p6, m))?,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        for (proto, field, v) in &self.rows {
            s.help.clear();
            let _ = write!(s.help, "{proto}_{field}");
            if !cfg.netstat_fields.is_match(&s.help) {
                continue;
            }
            s.name.clear();
            let _ = write!(s.name, "node_netstat_{proto}_{field}");
            out.emit_fmt(&s.name, format_args!("Statistic {proto}{field}."), Untyped, &[], *v);
        }
        Ok(())
    }
}
