//! Side-by-side numbers against Debian's node_exporter 1.5 on this machine: median latency of one full
//! /metrics scrape (plain and gzip, as Prometheus asks) and resident memory after the scrapes. Both run as
//! separate processes on 127.0.0.1; requests alternate between them so machine noise hits both alike.
//! Bounded: 3 warm-up + 31 measured scrapes per side and format. Skips when node_exporter is absent.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const ROUNDS: usize = 31;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn spawn(bin: &str, port: u16) -> Killed {
    Killed(
        Command::new(bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Same filesystem and netdev filters on both sides (Debian patches its defaults).
            .arg("--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")
            .arg("--collector.netdev.device-exclude=^$")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin}: {e}")),
    )
}

#[test]
fn scrape_latency_and_rss_vs_node_exporter() {
    if !Path::new(NODE_EXPORTER).exists() {
        println!("SKIP: {NODE_EXPORTER} not installed; side-by-side numbers not measured");
        return;
    }
    let ours_bin = env!("CARGO_BIN_EXE_ignis-node-exporter");
    let (ne_port, ig_port) = (free_port(), free_port());
    let ne = spawn(NODE_EXPORTER, ne_port);
    let ig = spawn(ours_bin, ig_port);
    assert!(
        wait_ready(ne_port, Duration::from_secs(15)),
        "node_exporter did not start"
    );
    assert!(
        wait_ready(ig_port, Duration::from_secs(15)),
        "ignis-node-exporter did not start"
    );

    let scrape = |port: u16, gzip: bool| -> (Duration, usize) {
        let hdr = if gzip {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        };
        let t = Instant::now();
        let (st, _, body) = http_get(port, "/metrics", hdr).expect("scrape");
        let d = t.elapsed();
        assert_eq!(st, 200);
        (d, body.len())
    };
    for _ in 0..3 {
        scrape(ne_port, false);
        scrape(ig_port, false);
    }
    let mut results = Vec::new();
    for gzip in [false, true] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut sa, mut sb) = (0, 0);
        for i in 0..ROUNDS {
            // Alternate who goes first so neither always scrapes a warmer page cache.
            if i % 2 == 0 {
                let (d, n) = scrape(ne_port, gzip);
                a.push(d);
                sa = n;
                let (d, n) = scrape(ig_port, gzip);
                b.push(d);
                sb = n;
            } else {
                let (d, n) = scrape(ig_port, gzip);
                b.push(d);
                sb = n;
                let (d, n) = scrape(ne_port, gzip);
                a.push(d);
                sa = n;
            }
        }
        results.push((gzip, median(a), median(b), sa, sb));
    }
    let rss_ne = rss_bytes(ne.0.id()).expect("node_exporter rss");
    let rss_ig = rss_bytes(ig.0.id()).expect("ignis rss");

    println!("side by side on this machine ({ROUNDS} scrapes each, medians):");
    for (gzip, a, b, sa, sb) in &results {
        println!(
            "  /metrics{}: node_exporter {:.2} ms ({} B), ignis {:.2} ms ({} B)",
            if *gzip { " gzip" } else { "" },
            a.as_secs_f64() * 1e3,
            sa,
            b.as_secs_f64() * 1e3,
            sb
        );
    }
    println!(
        "  RSS after scrapes: node_exporter {:.1} MiB, ignis {:.1} MiB ({:.2}x)",
        rss_ne as f64 / 1048576.0,
        rss_ig as f64 / 1048576.0,
        rss_ig as f64 / rss_ne as f64
    );
    // The bar is about the shipped (release) binary, which CI measures (`nextest --release`).
    // Most of our RSS is file-backed .text pulled in by the kernel's 64 KiB fault-around, so a debug
    // build (opt-level 1, ~1.3x the code) sits right at the bar without saying anything about the
    // product; there the number is printed, not asserted.
    if cfg!(debug_assertions) {
        println!(
            "  (debug build: RSS ratio printed only; the 0.5x bar is asserted in release builds)"
        );
    } else {
        assert!(
            rss_ig * 2 <= rss_ne,
            "RSS {rss_ig} must be at most half of node_exporter's {rss_ne}"
        );
    }
    for (gzip, a, b, _, _) in &results {
        // The target is "≤ node_exporter's"; the slack absorbs scheduling noise on a shared 2-core box.
        assert!(
            b.as_secs_f64() <= a.as_secs_f64() * 1.25,
            "median scrape (gzip={gzip}) {b:?} slower than node_exporter's {a:?}"
        );
    }
}
