//! Sends remote-write 1.0 requests (protobuf + raw snappy) as fast as a receiver takes them.
//!
//! `rwflood --url URL --series N --per-request 1000 --rounds R --concurrency C [--start-ms T] [--step-ms S]`
//!
//! Every round writes one sample for each of N series (timestamps `start + round*step`), split into requests of
//! `per-request` series with one sample each — the shape Prometheus's shards send. Requests are encoded before
//! the clock starts, so the generator's own cost is not in the measurement. Prints one JSON line with
//! samples sent, wall seconds and HTTP errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn varint(dst: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        dst.push((n as u8) | 0x80);
        n >>= 7;
    }
    dst.push(n as u8);
}

fn field_bytes(dst: &mut Vec<u8>, tag: u32, b: &[u8]) {
    varint(dst, ((tag << 3) | 2) as u64);
    varint(dst, b.len() as u64);
    dst.extend_from_slice(b);
}

fn label(name: &str, value: &str) -> Vec<u8> {
    let mut l = Vec::with_capacity(name.len() + value.len() + 4);
    field_bytes(&mut l, 1, name.as_bytes());
    field_bytes(&mut l, 2, value.as_bytes());
    l
}

/// One TimeSeries with realistic labels (~10 labels) and one sample.
fn series(dst: &mut Vec<u8>, i: usize, t: i64, v: f64) {
    let mut ts = Vec::with_capacity(256);
    let labels = [
        ("__name__", format!("flood_metric_{}", i % 50)),
        ("cluster", "eu-west-1".to_string()),
        ("env", "prod".to_string()),
        ("instance", format!("10.1.{}.{}:9100", (i / 250) % 256, i % 250)),
        ("job", format!("service-{}", i % 20)),
        ("namespace", format!("team-{}", i % 8)),
        ("pod", format!("pod-{:06}", i / 50)),
        ("region", "eu".to_string()),
        ("series", i.to_string()),
    ];
    for (n, val) in &labels {
        field_bytes(&mut ts, 1, &label(n, val));
    }
    let mut s = Vec::with_capacity(20);
    s.push(0x09); // field 1, double
    s.extend_from_slice(&v.to_le_bytes());
    s.push(0x10); // field 2, varint
    varint(&mut s, t as u64);
    field_bytes(&mut ts, 2, &s);
    field_bytes(dst, 1, &ts);
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn post(stream: &mut BufReader<TcpStream>, host: &str, path: &str, body: &[u8]) -> std::io::Result<u16> {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nUser-Agent: rwflood\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let s = stream.get_mut();
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut line = String::new();
    stream.read_line(&mut line)?;
    let code: u16 = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut len = 0usize;
    let mut chunked = false;
    loop {
        line.clear();
        stream.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    if chunked {
        loop {
            line.clear();
            stream.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            let mut buf = vec![0u8; n + 2];
            stream.read_exact(&mut buf)?;
            if n == 0 {
                break;
            }
        }
    } else {
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf)?;
    }
    Ok(code)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url", "http://127.0.0.1:9090/api/v1/write");
    let n: usize = arg(&args, "--series", "100000").parse().expect("--series");
    let per: usize = arg(&args, "--per-request", "1000").parse().expect("--per-request");
    let rounds: usize = arg(&args, "--rounds", "10").parse().expect("--rounds");
    let conc: usize = arg(&args, "--concurrency", "4").parse().expect("--concurrency");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let start: i64 = arg(&args, "--start-ms", &(now_ms - 3_600_000).to_string()).parse().expect("--start-ms");
    let step: i64 = arg(&args, "--step-ms", "15000").parse().expect("--step-ms");
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (host, path) = rest.split_once('/').map(|(h, p)| (h.to_string(), format!("/{p}"))).expect("URL path");

    // Pre-encode every request.
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut enc = snap::raw::Encoder::new();
    for r in 0..rounds {
        let t = start + r as i64 * step;
        for chunk in (0..n).collect::<Vec<_>>().chunks(per) {
            let mut wr = Vec::with_capacity(per * 260);
            for &i in chunk {
                series(&mut wr, i, t, (i as f64) * 0.5 + r as f64);
            }
            bodies.push(enc.compress_vec(&wr).expect("snappy"));
        }
    }
    // Requests of one round must land before the next round's (same series, later timestamps): send round by
    // round, each round in parallel.
    let per_round = n.div_ceil(per);
    let bodies = Arc::new(bodies);
    let errors = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    for r in 0..rounds {
        let next = Arc::new(AtomicUsize::new(r * per_round));
        let end = (r + 1) * per_round;
        let mut hs = Vec::new();
        for _ in 0..conc {
            let (bodies, next, errors, host, path) = (bodies.clone(), next.clone(), errors.clone(), host.clone(), path.clone());
            hs.push(std::thread::spawn(move || {
                let mut s = BufReader::new(TcpStream::connect(&host).expect("connect"));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        break;
                    }
                    match post(&mut s, &host, &path, &bodies[i]) {
                        Ok(c) if (200..300).contains(&c) => {}
                        Ok(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            s = BufReader::new(TcpStream::connect(&host).expect("reconnect"));
                        }
                    }
                }
            }));
        }
        for h in hs {
            h.join().expect("sender thread");
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{{\"samples\":{},\"requests\":{},\"seconds\":{secs:.3},\"errors\":{}}}",
        n * rounds,
        bodies.len(),
        errors.load(Ordering::Relaxed)
    );
}
