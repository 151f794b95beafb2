//! Helpers shared by the integration tests: a tiny HTTP/1.1 client (std only, bounded by timeouts) and
//! an exposition parser that keeps what the comparisons need.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// GET `path` from 127.0.0.1:`port`; returns (status, headers lowercased, body). Handles chunked bodies.
pub fn http_get(
    port: u16,
    path: &str,
    extra_headers: &str,
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra_headers}\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((status, head, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size_str = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out
}

#[derive(Debug, Default, Clone)]
pub struct Family {
    pub typ: String,
    pub help: String,
    pub label_names: BTreeSet<String>,
    /// (labels, value) per sample.
    pub samples: Vec<(BTreeMap<String, String>, f64)>,
}

/// Parses text 0.0.4 into families keyed by family name.
pub fn parse(text: &str) -> BTreeMap<String, Family> {
    let mut fams: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (n, t) = rest.split_once(' ').unwrap_or((rest, ""));
            fams.entry(n.to_string()).or_default().typ = t.to_string();
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (n, h) = rest.split_once(' ').unwrap_or((rest, ""));
            fams.entry(n.to_string()).or_default().help = h.to_string();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if rest.starts_with('{') {
            let b = rest.as_bytes();
            let mut i = 1;
            loop {
                while i < b.len() && (b[i] == b',' || b[i] == b' ') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    i += 1;
                    break;
                }
                let eq = i + rest[i..].find('=').unwrap_or(0);
                let key = rest[i..eq].to_string();
                i = eq + 2; // skip ="
                let mut val = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                        val.push(match b[i] {
                            b'n' => '\n',
                            c => c as char,
                        });
                    } else {
                        val.push(b[i] as char);
                    }
                    i += 1;
                }
                i += 1;
                labels.insert(key, val);
            }
            rest = &rest[i.min(rest.len())..];
        }
        let value: f64 = match rest.split_whitespace().next().unwrap_or("") {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or(f64::NAN),
        };
        let mut fam_name = name.to_string();
        if !fams.contains_key(name) {
            for suf in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suf) {
                    if fams.contains_key(base) {
                        fam_name = base.to_string();
                    }
                }
            }
        }
        let f = fams.entry(fam_name).or_default();
        for k in labels.keys() {
            if k != "le" && k != "quantile" {
                f.label_names.insert(k.clone());
            }
        }
        f.samples.push((labels, value));
    }
    fams
}

/// Families that are about the exporter itself, not host metrics.
pub fn is_meta(name: &str) -> bool {
    name.starts_with("go_")
        || name.starts_with("process_")
        || name.starts_with("promhttp_")
        || name.starts_with("node_scrape_collector_")
        || name == "node_exporter_build_info"
}

/// Finds a free loopback port (bind :0, read, release).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Waits until `port` answers `/` or the deadline passes.
pub fn wait_ready(port: u16, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if matches!(http_get(port, "/", ""), Ok((200, _, _))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Resident set size of a process in bytes from /proc/<pid>/status.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
