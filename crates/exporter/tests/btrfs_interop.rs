//! btrfs per-device statistics (ioctls) against Debian's node_exporter 1.5 on a real, loop-mounted btrfs.
//!
//! Needs root, mkfs.btrfs (apt btrfs-progs), loop devices and /usr/bin/prometheus-node-exporter. Without
//! them the test prints a notice and passes; with IGNIS_REQUIRE_INTEROP=1 a missing tool still skips
//! (the environment cannot run it), but once the tools are present every failure fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser;
use common::*;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

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

/// Unmounts (which also frees the auto-allocated loop device) when dropped.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .map(|d| d.join(bin))
            .find(|f| f.is_file())
    })
}

fn missing_tools() -> Vec<&'static str> {
    let mut m = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        m.push("root");
    }
    if which("mkfs.btrfs").is_none() {
        m.push("mkfs.btrfs (apt-get install btrfs-progs)");
    }
    if !Path::new("/dev/loop-control").exists() {
        m.push("/dev/loop-control");
    }
    if !Path::new(NODE_EXPORTER).exists() {
        m.push(NODE_EXPORTER);
    }
    m
}

fn btrfs_lines(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| l.contains("node_btrfs_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn btrfs_device_stats_match_node_exporter_on_a_loop_mount() {
    let missing = missing_tools();
    if !missing.is_empty() {
        println!(
            "SKIP: btrfs interop needs {}; not run{}",
            missing.join(", "),
            if std::env::var("IGNIS_REQUIRE_INTEROP").as_deref() == Ok("1") {
                " (IGNIS_REQUIRE_INTEROP=1, but the environment lacks the tools)"
            } else {
                ""
            }
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(160 << 20))
        .expect("image");
    let st = Command::new(which("mkfs.btrfs").expect("mkfs.btrfs"))
        .args(["-q", "-L", "ignis-interop"])
        .arg(&img)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run mkfs.btrfs");
    assert!(st.success(), "mkfs.btrfs failed");
    let st = Command::new("mount")
        .args(["-o", "loop"])
        .arg(&img)
        .arg(&mnt)
        .status()
        .expect("run mount");
    assert!(st.success(), "mount -o loop failed");
    let _m = Mounted(mnt.clone());
    // Some data so used/unused are not trivial.
    std::fs::write(mnt.join("data"), vec![7u8; 3 << 20]).expect("write data");
    let _ = Command::new("sync").status();

    let flags = ["--collector.disable-defaults", "--collector.btrfs"];
    let ne_port = free_port();
    let _ne = Killed(
        Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
            .args(flags)
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
    let cli = Cli::parse_from(std::iter::once("ignis").chain(flags));
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

    // Background commits can move allocation numbers between the two scrapes; retry a few times.
    let mut last = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let ne = btrfs_lines(&http_get(ne_port, "/metrics", "").expect("ne").2);
        let ig = btrfs_lines(&http_get(ig_port, "/metrics", "").expect("ig").2);
        if ne == ig {
            assert!(
                ig.iter()
                    .any(|l| l.starts_with("node_btrfs_device_errors_total{")),
                "node_exporter's ioctl path did not run either:\n{}",
                ig.join("\n")
            );
            let per_dev = ig.iter().filter(|l| l.contains("btrfs_dev_uuid=")).count();
            println!(
                "btrfs: {} identical lines, {per_dev} of them per-device ioctl stats",
                ig.len()
            );
            return;
        }
        last = (ne, ig);
        std::thread::sleep(Duration::from_millis(300));
    }
    let (ne, ig) = last;
    let missing: Vec<&String> = ne.iter().filter(|l| !ig.contains(l)).collect();
    let extra: Vec<&String> = ig.iter().filter(|l| !ne.contains(l)).collect();
    panic!("btrfs output differs\nonly node_exporter: {missing:#?}\nonly ignis: {extra:#?}");
}
