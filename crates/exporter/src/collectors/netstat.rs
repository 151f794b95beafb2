//! netstat: /proc/net/{netstat,snmp,snmp6} fields matching --collector.netstat.fields, untyped
//! (node_exporter netstat_linux.go).

use std::fmt::Write as _;

use super::prelude::*;

#[derive(Default)]
pub struct Netstat;

/// Calls `f(protocol, field, value)` for each field of the paired header/value line format of
/// /proc/net/netstat and /proc/net/snmp, without allocating.
pub fn parse_paired(text: &str, mut f: impl FnMut(&str, &str, f64)) -> Result<(), String> {
    let mut lines = text.lines();
    while let Some(names) = lines.next() {
        let Some(values) = lines.next() else { break };
        let proto = names.split(' ').next().unwrap_or("");
        let proto = proto.strip_suffix(':').unwrap_or(proto);
        if names.split(' ').count() != values.split(' ').count() {
            return Err(format!("mismatch field count mismatch: {proto}"));
        }
        for (n, v) in names.split(' ').zip(values.split(' ')).skip(1) {
            let v: f64 = v
                .parse()
                .map_err(|_| format!("invalid value {v} in netstats"))?;
            f(proto, n, v);
        }
    }
    Ok(())
}

/// Calls `f(protocol, field, value)` for /proc/net/snmp6 lines ("Ip6InReceives 123"): the protocol
/// is the name up to and including its first '6'.
pub fn parse_snmp6(text: &str, mut f: impl FnMut(&str, &str, f64)) -> Result<(), String> {
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        let Some(six) = k.find('6') else { continue };
        let v: f64 = v
            .parse()
            .map_err(|_| format!("invalid value {v} in netstats"))?;
        f(&k[..=six], &k[six + 1..], v);
    }
    Ok(())
}

impl Collector for Netstat {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        // node_exporter merges the three files into one protocol map before emitting; the kernel never
        // repeats a protocol across them, so emitting while parsing gives the same samples.
        let Scratch {
            buf, name, help, ..
        } = s;
        let mut emit = |proto: &str, field: &str, v: f64| {
            help.clear();
            let _ = write!(help, "{proto}_{field}");
            if !cfg.netstat_fields.is_match(help) {
                return;
            }
            name.clear();
            let _ = write!(name, "node_netstat_{proto}_{field}");
            out.emit_fmt(
                name,
                format_args!("Statistic {proto}{field}."),
                Untyped,
                &[],
                v,
            );
        };
        for f in ["net/netstat", "net/snmp"] {
            let p = cfg.proc(f);
            let text = read_str(&p, buf)?;
            parse_paired(text, &mut emit).map_err(|m| CollectError::parse(&p, m))?;
        }
        let p6 = cfg.proc("net/snmp6");
        match read_str(&p6, buf) {
            Ok(text) => parse_snmp6(text, &mut emit).map_err(|m| CollectError::parse(&p6, m))?,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}
