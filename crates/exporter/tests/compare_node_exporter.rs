//! Side-by-side check against Debian's node_exporter 1.5 on this machine: for every collector both
//! enable, the metric family names, their TYPE and label names must match, and static values (uname
//! labels, os labels, mount points, disk devices, CPU count) must be equal. Prints the coverage table.
//! Skips with a notice when /usr/bin/prometheus-node-exporter is absent.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser;
use common::*;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
/// Upstream's default; Debian patches its own default to also exclude /run, /mnt and /media, so both
/// sides get it explicitly.
const MOUNT_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: exporter::Args,
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn collector_of(
    fams: &BTreeMap<String, Family>,
) -> (BTreeMap<String, f64>, BTreeMap<String, Family>) {
    let mut success = BTreeMap::new();
    if let Some(f) = fams.get("node_scrape_collector_success") {
        for (l, v) in &f.samples {
            success.insert(l.get("collector").cloned().unwrap_or_default(), *v);
        }
    }
    let host = fams
        .iter()
        .filter(|(n, _)| !is_meta(n))
        .map(|(n, f)| (n.clone(), f.clone()))
        .collect();
    (success, host)
}

fn label_values(f: Option<&Family>, label: &str) -> BTreeSet<String> {
    f.map(|f| {
        f.samples
            .iter()
            .filter_map(|(l, _)| l.get(label).cloned())
            .collect()
    })
    .unwrap_or_default()
}

#[test]
fn families_labels_and_static_values_match_node_exporter() {
    if !Path::new(NODE_EXPORTER).exists() {
        println!("SKIP: {NODE_EXPORTER} not installed (apt-get install prometheus-node-exporter); comparison not run");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("test.prom"),
        "# HELP tf_jobs_total Jobs run.\n# TYPE tf_jobs_total counter\ntf_jobs_total{job=\"a\"} 3\ntf_jobs_total{job=\"b\",x=\"y\"} 1\n\
         tf_untyped 7\n# TYPE tf_latency histogram\ntf_latency_bucket{le=\"1\"} 1\ntf_latency_bucket{le=\"+Inf\"} 2\n\
         tf_latency_sum 3\ntf_latency_count 2\n",
    )
    .expect("write prom");
    let tf = dir.path().to_string_lossy().into_owned();
    // Debian also patches --collector.netdev.device-exclude to "^lo$"; upstream has none.
    let flags = [
        format!("--collector.filesystem.mount-points-exclude={MOUNT_EXCLUDE}"),
        format!("--collector.textfile.directory={tf}"),
        "--collector.netdev.device-exclude=^$".to_string(),
    ];

    let ne_port = free_port();
    let ne = Killed(
        Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
            .args(&flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node_exporter"),
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let cli = Cli::parse_from(std::iter::once("ignis".to_string()).chain(flags.iter().cloned()));
    let app = exporter::router(&cli.args).expect("router");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let ig_port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    assert!(
        wait_ready(ne_port, Duration::from_secs(15)),
        "node_exporter did not start"
    );
    assert!(
        wait_ready(ig_port, Duration::from_secs(5)),
        "ignis exporter did not start"
    );

    let mut failures: Vec<String> = Vec::new();
    let mut table = Vec::new();
    let (mut tot_ne, mut tot_both) = (0, 0);
    for c in exporter::COLLECTORS {
        let q = format!("/metrics?collect[]={}", c.name);
        let (st, _, ne_body) = http_get(ne_port, &q, "").expect("scrape node_exporter");
        if st != 200 {
            table.push(format!("{:<17} node_exporter does not enable it", c.name));
            continue;
        }
        let (st2, _, ig_body) = http_get(ig_port, &q, "").expect("scrape ignis");
        assert_eq!(st2, 200, "ignis scrape of {}", c.name);
        let (ne_ok, ne_f) = collector_of(&parse(&String::from_utf8_lossy(&ne_body)));
        let (ig_ok, ig_f) = collector_of(&parse(&String::from_utf8_lossy(&ig_body)));
        let (ne_s, ig_s) = (
            ne_ok.get(c.name).copied().unwrap_or(-1.0),
            ig_ok.get(c.name).copied().unwrap_or(-1.0),
        );
        let ne_names: BTreeSet<&String> = ne_f.keys().collect();
        let ig_names: BTreeSet<&String> = ig_f.keys().collect();
        let both = ne_names.intersection(&ig_names).count();
        tot_ne += ne_names.len();
        tot_both += both;
        table.push(format!(
            "{:<17} success ne={} ignis={}  families ignis/ne = {}/{}{}",
            c.name,
            ne_s,
            ig_s,
            both,
            ne_names.len(),
            if ig_names.len() > both {
                format!(" (+{} only in ignis)", ig_names.len() - both)
            } else {
                String::new()
            }
        ));
        if ne_s == 1.0 && ig_s != 1.0 {
            failures.push(format!(
                "{}: node_exporter succeeds, ignis does not",
                c.name
            ));
        }
        if ne_s != 1.0 || ig_s != 1.0 {
            continue;
        }
        for n in ne_names.difference(&ig_names) {
            failures.push(format!("{}: family {n} missing in ignis", c.name));
        }
        for n in ig_names.difference(&ne_names) {
            failures.push(format!("{}: family {n} only in ignis", c.name));
        }
        for n in ne_names.intersection(&ig_names) {
            let (a, b) = (&ne_f[*n], &ig_f[*n]);
            if a.typ != b.typ {
                failures.push(format!("{n}: TYPE {} vs {}", a.typ, b.typ));
            }
            if a.label_names != b.label_names {
                failures.push(format!(
                    "{n}: labels {:?} vs {:?}",
                    a.label_names, b.label_names
                ));
            }
            if a.help != b.help {
                failures.push(format!("{n}: HELP {:?} vs {:?}", a.help, b.help));
            }
        }
    }

    // Static values on full scrapes.
    let ne_all = parse(&String::from_utf8_lossy(
        &http_get(ne_port, "/metrics", "").expect("ne").2,
    ));
    let ig_all = parse(&String::from_utf8_lossy(
        &http_get(ig_port, "/metrics", "").expect("ig").2,
    ));
    for (fam, label) in [
        ("node_uname_info", "release"),
        ("node_uname_info", "nodename"),
        ("node_uname_info", "machine"),
        ("node_uname_info", "version"),
        ("node_os_info", "pretty_name"),
        ("node_os_info", "version_id"),
        ("node_filesystem_size_bytes", "mountpoint"),
        ("node_filesystem_size_bytes", "device"),
        ("node_disk_info", "device"),
        ("node_cpu_seconds_total", "cpu"),
        ("node_cpu_seconds_total", "mode"),
        ("node_time_zone_offset_seconds", "time_zone"),
        ("node_time_clocksource_current_info", "clocksource"),
        ("node_network_info", "address"),
        ("node_network_up", "device"),
        ("tf_jobs_total", "x"),
    ] {
        let (a, b) = (
            label_values(ne_all.get(fam), label),
            label_values(ig_all.get(fam), label),
        );
        if a != b {
            failures.push(format!(
                "static values of {fam}{{{label}}}: node_exporter {a:?} vs ignis {b:?}"
            ));
        }
    }
    let (a, b) = (
        label_values(ne_all.get("node_network_receive_bytes_total"), "device"),
        label_values(ig_all.get("node_network_receive_bytes_total"), "device"),
    );
    if a != b {
        failures.push(format!(
            "netdev devices: node_exporter {a:?} vs ignis {b:?}"
        ));
    }
    for f in [
        "node_memory_MemTotal_bytes",
        "node_filefd_maximum",
        "node_entropy_pool_size_bits",
        "node_boot_time_seconds",
    ] {
        let (a, b) = (
            ne_all.get(f).and_then(|f| f.samples.first()).map(|s| s.1),
            ig_all.get(f).and_then(|f| f.samples.first()).map(|s| s.1),
        );
        if a != b {
            failures.push(format!(
                "static value {f}: node_exporter {a:?} vs ignis {b:?}"
            ));
        }
    }

    let bi = |f: &BTreeMap<String, Family>| {
        f.get("node_exporter_build_info")
            .map(|f| (f.typ.clone(), f.label_names.clone()))
    };
    if bi(&ne_all) != bi(&ig_all) {
        failures.push(format!(
            "node_exporter_build_info: {:?} vs {:?}",
            bi(&ne_all),
            bi(&ig_all)
        ));
    }

    println!("coverage per collector (families ignis has / families node_exporter has):");
    for l in &table {
        println!("  {l}");
    }
    println!("total: {tot_both}/{tot_ne} node_exporter families present in ignis");
    drop(ne);
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs node_exporter and ours over the fixture trees and compares the full text output (minus
/// host-dependent families): names, HELP, TYPE, labels, values and order.
#[test]
fn fixture_output_matches_live_node_exporter() {
    if !Path::new(NODE_EXPORTER).exists() {
        println!("SKIP: {NODE_EXPORTER} not installed; live fixture comparison not run");
        return;
    }
    let f = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // Empty directories git cannot store (kept in step with fixtures_scrape.rs).
    std::fs::create_dir_all(f.join("sys/fs/btrfs/0abb23a9-579b-43e6-ad30-227ef47fcb9d/features"))
        .expect("mkdir");
    let f = f.display();
    let flags = vec![
        format!("--path.procfs={f}/proc"),
        format!("--path.sysfs={f}/sys"),
        format!("--path.rootfs={f}/root"),
        format!("--path.udev.data={f}/udev"),
        format!("--collector.textfile.directory={f}/textfile"),
        "--collector.netdev.device-exclude=^$".to_string(),
        // netlink reads the live host whatever --path.procfs says; both sides read the fixture instead.
        "--no-collector.netdev.netlink".to_string(),
        "--no-collector.systemd".to_string(),
    ];
    let ne_port = free_port();
    let _ne = Killed(
        Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
            .args(&flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node_exporter"),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let cli = Cli::parse_from(std::iter::once("ignis".to_string()).chain(flags.iter().cloned()));
    let app = exporter::router(&cli.args).expect("router");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let ig_port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    assert!(
        wait_ready(ne_port, Duration::from_secs(15)),
        "node_exporter did not start"
    );
    assert!(
        wait_ready(ig_port, Duration::from_secs(5)),
        "ignis exporter did not start"
    );
    let keep = |l: &&str| {
        let n = l
            .strip_prefix("# HELP ")
            .or_else(|| l.strip_prefix("# TYPE "))
            .unwrap_or(l);
        ![
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
            "node_network_receive_nohandler",
        ]
        .iter()
        .any(|p| n.starts_with(p))
    };
    let ne =
        String::from_utf8_lossy(&http_get(ne_port, "/metrics", "").expect("ne").2).into_owned();
    let ig =
        String::from_utf8_lossy(&http_get(ig_port, "/metrics", "").expect("ig").2).into_owned();
    let ne: Vec<&str> = ne.lines().filter(keep).collect();
    let ig: Vec<&str> = ig.lines().filter(keep).collect();
    let missing: Vec<&&str> = ne.iter().filter(|l| !ig.contains(l)).collect();
    let extra: Vec<&&str> = ig.iter().filter(|l| !ne.contains(l)).collect();
    println!(
        "fixture comparison: {} node_exporter lines, {} missing in ignis, {} extra",
        ne.len(),
        missing.len(),
        extra.len()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing: {missing:#?}\nextra: {extra:#?}"
    );
    assert_eq!(ne, ig, "same lines, different order");
}
