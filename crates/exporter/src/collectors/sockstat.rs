//! sockstat: /proc/net/sockstat{,6} (node_exporter sockstat_linux.go).

use std::fmt::Write as _;

use super::prelude::*;

pub struct Sockstat;

fn page_size() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as f64
    } else {
        4096.0
    }
}

fn emit_file(text: &str, v6: bool, s_name: &mut String, out: &mut Registry) {
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let Some(proto) = it.next().and_then(|p| p.strip_suffix(':')) else {
            continue;
        };
        let rest: Vec<&str> = it.collect();
        if proto == "sockets" {
            if !v6 {
                if let Some(v) = rest
                    .chunks(2)
                    .find(|c| c[0] == "used")
                    .and_then(|c| c.get(1)?.parse::<f64>().ok())
                {
                    out.emit(
                        "node_sockstat_sockets_used",
                        "Number of IPv4 sockets in use.",
                        Gauge,
                        &[],
                        v,
                    );
                }
            }
            continue;
        }
        for kv in rest.chunks(2) {
            let (k, Some(v)) = (kv[0], kv.get(1).and_then(|v| v.parse::<f64>().ok())) else {
                continue;
            };
            if !matches!(k, "inuse" | "orphan" | "tw" | "alloc" | "mem" | "memory") {
                continue;
            }
            s_name.clear();
            let _ = write!(s_name, "node_sockstat_{proto}_{k}");
            out.emit_fmt(
                s_name,
                format_args!("Number of {proto} sockets in state {k}."),
                Gauge,
                &[],
                v,
            );
            if k == "mem" {
                s_name.clear();
                let _ = write!(s_name, "node_sockstat_{proto}_mem_bytes");
                out.emit_fmt(
                    s_name,
                    format_args!("Number of {proto} sockets in state mem_bytes."),
                    Gauge,
                    &[],
                    v * page_size(),
                );
            }
        }
    }
}

impl Collector for Sockstat {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        for (f, v6) in [("net/sockstat", false), ("net/sockstat6", true)] {
            match read_str(&cfg.proc(f), &mut s.buf) {
                Ok(text) => emit_file(text, v6, &mut s.name, out),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
