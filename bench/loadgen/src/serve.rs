//! Live exposition server: N targets on one port as `/metrics/<i>` (one listener scales to thousands of
//! targets without thousands of ports; scrapers tell targets apart by `__metrics_path__` and a per-target
//! `instance` label set in the scrape config).
//!
//! Once per interval (aligned to the wall clock) a renderer advances every group by one tick and renders each
//! target's whole body into a reusable buffer, then swaps it in behind an `Arc`. Scrapes only copy bytes out,
//! so any number of scrapers during a tick see the identical body and the serving path does no formatting.
//! The buffer a scrape is still writing stays alive through its `Arc`; the renderer reuses the previous
//! buffer when no one holds it any more.
//!
//! Endpoints: `GET /metrics/<i>[?sys=<name>]` (the `sys` parameter only labels the served-sample counters),
//! `GET /stats` (JSON), `GET /-/healthy`.

use crate::sim::{write_value, Group, Workload, FAMILIES, GROUP_SERIES};
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct ServeArgs {
    pub listen: String,
    pub gzip: bool,
    pub render_threads: usize,
}

#[derive(Default)]
struct Body {
    plain: Vec<u8>,
    gz: Vec<u8>,
}

#[derive(Default, Clone)]
struct SysStats {
    scrapes: u64,
    samples: u64,
    bytes: u64,
}

struct Shared {
    w: Workload,
    gzip: bool,
    bodies: Vec<RwLock<Arc<Body>>>,
    served: Mutex<HashMap<String, SysStats>>,
    tick: AtomicU64,
    ticks_rendered: AtomicU64,
    last_render_us: AtomicU64,
    max_render_us: AtomicU64,
    series_created: AtomicU64,
    body_bytes: AtomicU64,
    start_unix: u64,
    label_value_bytes: AtomicU64,
    label_count: AtomicU64,
}

struct TargetSim {
    t: usize,
    groups: Vec<Group>,
    epoch: u64,
    spare: Body,
}

fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Live series prefixes carry no job/instance: the scraper attaches them.
const NO_TARGET_LABELS: [(&str, &str); 0] = [];

impl TargetSim {
    fn new(w: &Workload, t: usize, tick: u64) -> TargetSim {
        let epoch = w.churn_epoch(tick);
        let groups =
            (0..w.groups_per_target).map(|g| Group::birth(w, t, g, w.generation(t, g, epoch), &NO_TARGET_LABELS)).collect();
        TargetSim { t, groups, epoch, spare: Body::default() }
    }

    /// Advances to `tick` (applying churn events in between) and renders the body into `self.spare`.
    /// Returns the number of series created by churn.
    fn advance_and_render(&mut self, w: &Workload, tick: u64, gzip: bool) -> u64 {
        let mut created = 0;
        let e = w.churn_epoch(tick);
        if e != self.epoch {
            for (g, grp) in self.groups.iter_mut().enumerate() {
                if let Some(gen) = (self.epoch + 1..=e).rev().find(|&x| w.churns_at(self.t, g, x)) {
                    *grp = Group::birth(w, self.t, g, gen, &NO_TARGET_LABELS);
                    created += GROUP_SERIES as u64;
                }
            }
            self.epoch = e;
        }
        let dt = w.interval_s as f64;
        for grp in &mut self.groups {
            grp.step(tick, dt);
        }
        let buf = &mut self.spare.plain;
        buf.clear();
        for fam in FAMILIES.iter() {
            let tn = fam.text_name();
            buf.extend_from_slice(b"# HELP ");
            buf.extend_from_slice(tn.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(fam.help.as_bytes());
            buf.extend_from_slice(b"\n# TYPE ");
            buf.extend_from_slice(tn.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(fam.kind.as_str().as_bytes());
            buf.push(b'\n');
            for grp in &self.groups {
                for s in fam.first..fam.first + fam.len {
                    buf.extend_from_slice(grp.series_prefix(s));
                    write_value(buf, grp.values[s]);
                    buf.push(b'\n');
                }
            }
        }
        self.spare.gz.clear();
        if gzip {
            let mut enc = flate2::write::GzEncoder::new(std::mem::take(&mut self.spare.gz), flate2::Compression::fast());
            // Writing into a Vec cannot fail.
            let _ = enc.write_all(&self.spare.plain);
            self.spare.gz = enc.finish().unwrap_or_default();
        }
        created
    }
}

pub fn serve(w: Workload, a: ServeArgs) -> io::Result<()> {
    let listener = TcpListener::bind(&a.listen)?;
    serve_on(listener, w, a)
}

/// Serves on an already bound listener; never returns unless accepting fails at start.
pub fn serve_on(listener: TcpListener, w: Workload, a: ServeArgs) -> io::Result<()> {
    let interval = w.interval_s.max(1);
    let tick0 = (now_unix() as u64) / interval;
    let sims: Vec<TargetSim> = (0..w.targets).map(|t| TargetSim::new(&w, t, tick0)).collect();
    let (lvb, lc) = sims
        .iter()
        .flat_map(|s| s.groups.iter())
        .fold((0u64, 0u64), |(b, c), g| (b + g.label_value_bytes as u64, c + g.label_count as u64));
    let shared = Arc::new(Shared {
        gzip: a.gzip,
        bodies: (0..w.targets).map(|_| RwLock::new(Arc::new(Body::default()))).collect(),
        served: Mutex::new(HashMap::new()),
        tick: AtomicU64::new(0),
        ticks_rendered: AtomicU64::new(0),
        last_render_us: AtomicU64::new(0),
        max_render_us: AtomicU64::new(0),
        series_created: AtomicU64::new(w.total_series() as u64),
        body_bytes: AtomicU64::new(0),
        start_unix: now_unix() as u64,
        label_value_bytes: AtomicU64::new(lvb),
        label_count: AtomicU64::new(lc),
        w,
    });
    // Render the first tick before accepting connections, so no scrape ever sees an empty body.
    let mut sims = sims;
    render_all(&shared, &mut sims, tick0, a.render_threads);
    eprintln!(
        "loadgen: serving {} targets x {} series = {} series on http://{}/metrics/<0..{}>",
        shared.w.targets,
        shared.w.series_per_target(),
        shared.w.total_series(),
        a.listen,
        shared.w.targets
    );
    {
        let shared = Arc::clone(&shared);
        let threads = a.render_threads;
        std::thread::Builder::new().name("render".into()).spawn(move || {
            let mut last = tick0;
            loop {
                let next = (last + 1) * interval;
                let now = now_unix();
                if (next as f64) > now {
                    std::thread::sleep(Duration::from_secs_f64(next as f64 - now));
                }
                let tick = (now_unix() as u64) / interval;
                if tick == last {
                    continue;
                }
                render_all(&shared, &mut sims, tick, threads);
                last = tick;
            }
        })?;
    }
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let shared = Arc::clone(&shared);
        // Small stacks: one thread per scraper connection, possibly thousands of them.
        let _ = std::thread::Builder::new().stack_size(128 * 1024).spawn(move || {
            let _ = handle(stream, &shared);
        });
    }
    Ok(())
}

fn render_all(shared: &Shared, sims: &mut [TargetSim], tick: u64, threads: usize) {
    let started = Instant::now();
    let threads = threads.clamp(1, sims.len().max(1));
    let chunk = sims.len().div_ceil(threads).max(1);
    let created = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    std::thread::scope(|s| {
        for part in sims.chunks_mut(chunk) {
            let created = &created;
            let bytes = &bytes;
            s.spawn(move || {
                for sim in part {
                    created.fetch_add(sim.advance_and_render(&shared.w, tick, shared.gzip), Ordering::Relaxed);
                    bytes.fetch_add(sim.spare.plain.len() as u64, Ordering::Relaxed);
                    let fresh = Arc::new(std::mem::take(&mut sim.spare));
                    let old = {
                        let mut slot = shared.bodies[sim.t].write().unwrap_or_else(|e| e.into_inner());
                        std::mem::replace(&mut *slot, fresh)
                    };
                    // Reuse the old buffers unless a scrape is still sending them.
                    sim.spare = Arc::try_unwrap(old).unwrap_or_default();
                }
            });
        }
    });
    let us = started.elapsed().as_micros() as u64;
    shared.series_created.fetch_add(created.into_inner(), Ordering::Relaxed);
    shared.body_bytes.store(bytes.into_inner(), Ordering::Relaxed);
    shared.tick.store(tick, Ordering::Relaxed);
    shared.ticks_rendered.fetch_add(1, Ordering::Relaxed);
    shared.last_render_us.store(us, Ordering::Relaxed);
    shared.max_render_us.fetch_max(us, Ordering::Relaxed);
}

fn handle(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut out = stream.try_clone()?;
    let mut rd = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if rd.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut gzip_ok = false;
        let mut close = false;
        loop {
            line.clear();
            if rd.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                let n = n.trim().to_ascii_lowercase();
                let v = v.trim().to_ascii_lowercase();
                if n == "accept-encoding" && v.contains("gzip") {
                    gzip_ok = true;
                } else if n == "connection" && v == "close" {
                    close = true;
                }
            }
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if method != "GET" && method != "HEAD" {
            respond(&mut out, "405 Method Not Allowed", "text/plain", None, b"method not allowed\n", false)?;
        } else if let Some(idx) = path.strip_prefix("/metrics/") {
            match idx.parse::<usize>().ok().and_then(|i| shared.bodies.get(i)) {
                Some(slot) => {
                    let body = Arc::clone(&slot.read().unwrap_or_else(|e| e.into_inner()));
                    let gz = gzip_ok && shared.gzip && !body.gz.is_empty();
                    let bytes: &[u8] = if gz { &body.gz } else { &body.plain };
                    respond(
                        &mut out,
                        "200 OK",
                        "text/plain; version=0.0.4; charset=utf-8",
                        gz.then_some("gzip"),
                        bytes,
                        method == "HEAD",
                    )?;
                    let sys = query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("sys="))
                        .unwrap_or("unknown")
                        .to_string();
                    let mut served = shared.served.lock().unwrap_or_else(|e| e.into_inner());
                    let st = served.entry(sys).or_default();
                    st.scrapes += 1;
                    st.samples += shared.w.series_per_target() as u64;
                    st.bytes += bytes.len() as u64;
                }
                None => respond(&mut out, "404 Not Found", "text/plain", None, b"no such target\n", false)?,
            }
        } else if path == "/stats" {
            let body = stats_json(shared);
            respond(&mut out, "200 OK", "application/json", None, body.as_bytes(), false)?;
        } else if path == "/-/healthy" {
            respond(&mut out, "200 OK", "text/plain", None, b"ok\n", false)?;
        } else {
            respond(&mut out, "404 Not Found", "text/plain", None, b"not found\n", false)?;
        }
        if close {
            return Ok(());
        }
    }
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    ctype: &str,
    encoding: Option<&str>,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut h = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n", body.len());
    if let Some(e) = encoding {
        h.push_str("Content-Encoding: ");
        h.push_str(e);
        h.push_str("\r\n");
    }
    h.push_str("\r\n");
    out.write_all(h.as_bytes())?;
    if !head_only {
        out.write_all(body)?;
    }
    Ok(())
}

fn stats_json(s: &Shared) -> String {
    let served = s.served.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut sys: Vec<_> = served.into_iter().collect();
    sys.sort_by(|a, b| a.0.cmp(&b.0));
    let sys_json: Vec<String> = sys
        .iter()
        .map(|(k, v)| {
            format!(
                "\"{}\":{{\"scrapes\":{},\"samples\":{},\"bytes\":{}}}",
                k.replace(['"', '\\'], "_"),
                v.scrapes,
                v.samples,
                v.bytes
            )
        })
        .collect();
    let total = s.w.total_series() as f64;
    // Scrapers add job="bench" and instance="loadgen-<i>" (about 5 + 10 value bytes, 2 labels).
    format!(
        concat!(
            "{{\"targets\":{},\"series_per_target\":{},\"active_series\":{},\"series_created_total\":{},",
            "\"interval_seconds\":{},\"tick\":{},\"ticks_rendered\":{},\"last_render_seconds\":{:.6},",
            "\"max_render_seconds\":{:.6},\"body_bytes_per_tick\":{},\"start_unix\":{},",
            "\"avg_label_value_bytes\":{:.1},\"avg_labels\":{:.2},\"served\":{{{}}}}}\n"
        ),
        s.w.targets,
        s.w.series_per_target(),
        s.w.total_series(),
        s.series_created.load(Ordering::Relaxed),
        s.w.interval_s,
        s.tick.load(Ordering::Relaxed),
        s.ticks_rendered.load(Ordering::Relaxed),
        s.last_render_us.load(Ordering::Relaxed) as f64 / 1e6,
        s.max_render_us.load(Ordering::Relaxed) as f64 / 1e6,
        s.body_bytes.load(Ordering::Relaxed),
        s.start_unix,
        s.label_value_bytes.load(Ordering::Relaxed) as f64 / total + 15.0,
        s.label_count.load(Ordering::Relaxed) as f64 / total + 3.0, // + job, instance, __name__
        sys_json.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(conn: &mut TcpStream, path: &str) -> (String, Vec<u8>) {
        write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n").unwrap();
        let mut rd = BufReader::new(conn.try_clone().unwrap());
        let mut head = String::new();
        let mut len = 0;
        loop {
            let mut l = String::new();
            rd.read_line(&mut l).unwrap();
            if l == "\r\n" {
                break;
            }
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            head.push_str(&l);
        }
        let mut body = vec![0; len];
        rd.read_exact(&mut body).unwrap();
        (head, body)
    }

    #[test]
    fn serves_targets_over_keep_alive_and_counts_per_system() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let w = Workload { seed: 9, targets: 3, groups_per_target: 2, interval_s: 15, churn_every_s: 0, churn_fraction: 0.0 };
        std::thread::spawn(move || serve_on(listener, w, ServeArgs { listen: String::new(), gzip: false, render_threads: 2 }));
        let mut conn = loop {
            if let Ok(c) = TcpStream::connect(addr) {
                break c;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (head, body) = get(&mut conn, "/metrics/2?sys=prom");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("version=0.0.4"));
        let text = String::from_utf8(body).unwrap();
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, 64);
        assert!(text.contains("# TYPE bench_http_requests_total counter"));
        assert!(text.contains("bench_http_request_duration_seconds_bucket{"));
        // Same connection, second request; then an unknown target.
        let (_, again) = get(&mut conn, "/metrics/2?sys=prom");
        assert_eq!(again.len(), text.len());
        let (head, _) = get(&mut conn, "/metrics/3");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        let (_, stats) = get(&mut conn, "/stats");
        let stats = String::from_utf8(stats).unwrap();
        assert!(stats.contains("\"prom\":{\"scrapes\":2,\"samples\":128,"), "{stats}");
        assert!(stats.contains("\"active_series\":192"), "{stats}");
    }
}
