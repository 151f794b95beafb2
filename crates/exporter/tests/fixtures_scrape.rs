//! Scrapes the exporter (in-process, 127.0.0.1) over the fixture trees in tests/fixtures (proc, sys, root,
//! udev, textfile) and compares the exposition byte for byte with `expected.prom`.
//!
//! `expected.prom` is what Debian's node_exporter 1.5.0 printed for the same trees, run as
//!   prometheus-node-exporter --path.procfs=F/proc --path.sysfs=F/sys --path.rootfs=F/root
//!     --path.udev.data=F/udev --collector.textfile.directory=F/textfile
//!     --no-collector.netdev.netlink '--collector.netdev.device-exclude=^$' --no-collector.systemd
//! with host-dependent families (filesystem sizes, uname, time, timex, selinux, go/process) removed —
//! the same filter `host_dependent` applies to our output. `compare_node_exporter.rs` re-runs that
//! comparison live whenever node_exporter is installed.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use common::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: exporter::Args,
}

/// Empty directories of the fixture trees, which git cannot store; created before use.
pub const EMPTY_FIXTURE_DIRS: &[&str] =
    &["sys/fs/btrfs/0abb23a9-579b-43e6-ad30-227ef47fcb9d/features"];

pub fn fixture_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for e in EMPTY_FIXTURE_DIRS {
        std::fs::create_dir_all(d.join(e)).expect("create empty fixture dir");
    }
    d
}

pub fn fixture_flags() -> Vec<String> {
    let f = fixture_dir();
    let f = f.display();
    vec![
        format!("--path.procfs={f}/proc"),
        format!("--path.sysfs={f}/sys"),
        format!("--path.rootfs={f}/root"),
        format!("--path.udev.data={f}/udev"),
        format!("--collector.textfile.directory={f}/textfile"),
        "--no-collector.netdev.netlink".to_string(),
    ]
}

/// Families whose values depend on the machine or the moment, not on the fixture trees.
fn host_dependent(line: &str) -> bool {
    let name = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
        .unwrap_or(line);
    [
        "go_",
        "promhttp_",
        "process_",
        "node_exporter_build",
        "node_scrape_collector_duration",
        "node_time_seconds",
        "node_time_zone",
        "node_timex",
        "node_textfile_mtime",
        "node_filesystem",
        "node_uname",
        "node_selinux",
        // node_exporter reads this one over rtnetlink; with /proc/net/dev (as in the golden run) it has none.
        "node_network_receive_nohandler",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

fn start(rt: &tokio::runtime::Runtime, extra: &[&str]) -> u16 {
    let argv = std::iter::once("ignis".to_string())
        .chain(fixture_flags())
        .chain(extra.iter().map(|s| s.to_string()));
    let cli = Cli::parse_from(argv);
    let app = exporter::router(&cli.args).expect("router");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    assert!(
        wait_ready(port, Duration::from_secs(5)),
        "exporter did not start"
    );
    port
}

#[test]
fn fixture_output_matches_node_exporter_golden_file() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let port = start(&rt, &[]);
    let (status, head, body) = http_get(port, "/metrics", "").expect("scrape");
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    let ours = String::from_utf8(body).expect("utf8");
    let ours: Vec<&str> = ours.lines().filter(|l| !host_dependent(l)).collect();
    // The golden file names the fixture root as @FIXTURES@ (node_exporter prints absolute paths in labels).
    let golden = std::fs::read_to_string(fixture_dir().join("expected.prom"))
        .expect("expected.prom")
        .replace("@FIXTURES@", &fixture_dir().display().to_string());
    let golden: Vec<&str> = golden.lines().collect();
    let missing: Vec<&&str> = golden.iter().filter(|l| !ours.contains(l)).collect();
    let extra: Vec<&&str> = ours.iter().filter(|l| !golden.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "differences from node_exporter's output:\nmissing ({}):\n{}\nextra ({}):\n{}",
        missing.len(),
        missing
            .iter()
            .take(40)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        extra.len(),
        extra
            .iter()
            .take(40)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    // Same lines in the same order: families sorted, samples sorted, as client_golang writes them.
    assert_eq!(ours, golden);
}

#[test]
fn every_collector_succeeds_on_fixtures() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let port = start(&rt, &[]);
    let body = http_get(port, "/metrics", "").expect("scrape").2;
    let fams = parse(&String::from_utf8_lossy(&body));
    let ok = &fams["node_scrape_collector_success"];
    assert_eq!(ok.samples.len(), exporter::COLLECTORS.len());
    for (labels, v) in &ok.samples {
        assert_eq!(
            *v,
            1.0,
            "collector {:?} failed on fixtures",
            labels.get("collector")
        );
    }
}

#[test]
fn absent_sources_fail_only_their_collector() {
    // Point procfs and sysfs at an empty directory: collectors report success 0, the scrape still works.
    let empty = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let p = format!("--path.procfs={}", empty.path().display());
    let s = format!("--path.sysfs={}", empty.path().display());
    let port = start(&rt, &[&p, &s]);
    let (status, _, body) = http_get(port, "/metrics", "").expect("scrape");
    assert_eq!(status, 200);
    let fams = parse(&String::from_utf8_lossy(&body));
    let ok: std::collections::BTreeMap<String, f64> = fams["node_scrape_collector_success"]
        .samples
        .iter()
        .map(|(l, v)| (l["collector"].clone(), *v))
        .collect();
    for c in [
        "cpu",
        "meminfo",
        "loadavg",
        "diskstats",
        "netdev",
        "stat",
        "hwmon",
        "mdadm",
        "nfs",
    ] {
        assert_eq!(ok[c], 0.0, "{c} should fail without its source");
    }
    // Collectors with no /proc or /sys source keep working.
    for c in ["uname", "time", "timex", "textfile", "os"] {
        assert_eq!(ok[c], 1.0, "{c} should still succeed");
    }
    assert!(fams.contains_key("node_uname_info"));
}

#[test]
fn openmetrics_gzip_filters_and_landing_page() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let port = start(&rt, &[]);

    let (st, head, body) = http_get(
        port,
        "/metrics?collect[]=loadavg&collect[]=stat",
        "Accept: application/openmetrics-text; version=1.0.0\r\n",
    )
    .expect("scrape");
    assert_eq!(st, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    let text = String::from_utf8(body).expect("utf8");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE node_forks counter\nnode_forks_total 26442.0\n"),
        "{text}"
    );
    assert!(text.contains("node_load1 0.21\n"), "{text}");
    assert!(
        !text.contains("node_memory_"),
        "collect[] must restrict collectors"
    );
    assert!(text.contains("node_scrape_collector_success{collector=\"stat\"} 1.0"));

    let (st, head, body) =
        http_get(port, "/metrics", "Accept-Encoding: gzip\r\n").expect("scrape gz");
    assert_eq!(st, 200);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
        .expect("gunzip");
    assert!(
        plain.contains("node_cpu_seconds_total{cpu=\"1\",mode=\"user\"} 478.69"),
        "{plain}"
    );

    let (st, _, body) = http_get(port, "/metrics?collect[]=nosuch", "").expect("scrape bad filter");
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));

    let (st, _, body) = http_get(port, "/", "").expect("landing");
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("<a href=\"/metrics\">Metrics</a>"));
}
