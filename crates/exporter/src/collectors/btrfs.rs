//! btrfs: /sys/fs/btrfs/<uuid> allocation statistics plus per-device statistics through ioctls
//! (node_exporter btrfs_linux.go).
//!
//! Per-device data: every btrfs mount in <procfs>/1/mounts is opened (under --path.rootfs) and asked
//! BTRFS_IOC_FS_INFO / DEV_INFO / GET_DEV_STATS; the result is matched to the sysfs entry by filesystem
//! UUID without dashes. Where that fails (not root, not mounted, ioctl refused) node_exporter falls back
//! to `device_size_bytes{uuid,device}` from sysfs alone, and so do we — failures are logged at debug and
//! never fail the collector.

use std::collections::HashMap;

use super::btrfs_ioctl::{BtrfsFs, DevStats};
use super::filesystem::parse_mounts;
use super::prelude::*;

pub struct Btrfs;

/// Error counter names in the order of [`DevStats::errors`].
const ERROR_TYPES: [&str; 5] = ["write", "read", "flush", "corruption", "generation"];

/// Per-device ioctl statistics by filesystem id (hex, no dashes), as node_exporter's getIoctlStats.
fn ioctl_stats(
    cfg: &Config,
    buf: &mut Vec<u8>,
) -> Result<HashMap<String, Vec<DevStats>>, CollectError> {
    let p1 = cfg.proc("1/mounts");
    let text = match read_str(&p1, buf) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => read_str(&cfg.proc("mounts"), buf)?,
        Err(e) => return Err(e),
    };
    let mounts = parse_mounts(text).map_err(|m| CollectError::parse(&p1, m))?;
    let root_is_slash = cfg.rootfs.as_os_str() == "/";
    let root_str = cfg.rootfs.to_string_lossy();
    let mut devices_done: Vec<&str> = Vec::new();
    let mut by_fsid: HashMap<String, Vec<DevStats>> = HashMap::new();
    for m in mounts.iter().filter(|m| m.fs_type == "btrfs") {
        if devices_done.contains(&m.device) {
            continue;
        }
        // rootfsStripPrefix then rootfsFilePath, as node_exporter.
        let mp = if root_is_slash {
            m.mount_point.as_str()
        } else {
            match m.mount_point.strip_prefix(root_str.as_ref()) {
                Some("") => "/",
                Some(rest) => rest,
                None => m.mount_point.as_str(),
            }
        };
        let path = crate::util::under(&cfg.rootfs, mp);
        let fs = match BtrfsFs::open(&path) {
            Ok(fs) => fs,
            Err(e) => {
                tracing::debug!(mount_point = %path.display(), err = %e, "error inspecting btrfs mountpoint");
                continue;
            }
        };
        let info = match fs.info() {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(mount_point = %path.display(), err = %e, "error querying btrfs filesystem");
                continue;
            }
        };
        if by_fsid.contains_key(&info.fsid) {
            continue;
        }
        match fs.all_devices(&info) {
            Ok(devs) => {
                devices_done.push(m.device);
                by_fsid.insert(info.fsid, devs);
            }
            Err(e) => {
                tracing::debug!(mount_point = %path.display(), err = %e, "error querying btrfs device stats");
            }
        }
    }
    Ok(by_fsid)
}

fn emit_ioctl_devices(out: &mut Registry, uuid: &str, devs: &[DevStats]) {
    for d in devs {
        // path.Split: the part after the last '/', e.g. /dev/sda -> sda.
        let device = d.path.rsplit('/').next().unwrap_or(&d.path);
        let l = [
            ("uuid", uuid),
            ("device", device),
            ("btrfs_dev_uuid", d.uuid.as_str()),
        ];
        out.emit(
            "node_btrfs_device_size_bytes",
            "Size of a device that is part of the filesystem.",
            Gauge,
            &l,
            d.total_bytes as f64,
        );
        out.emit(
            "node_btrfs_device_unused_bytes",
            "Unused bytes unused on a device that is part of the filesystem.",
            Gauge,
            &l,
            // Go's uint64 subtraction wraps; the kernel never reports used > total, so saturate.
            d.total_bytes.saturating_sub(d.bytes_used) as f64,
        );
        for (t, v) in ERROR_TYPES.iter().zip(d.errors) {
            out.emit(
                "node_btrfs_device_errors_total",
                "Errors reported for the device",
                Counter,
                &[
                    ("type", t),
                    ("uuid", uuid),
                    ("device", device),
                    ("btrfs_dev_uuid", d.uuid.as_str()),
                ],
                v as f64,
            );
        }
    }
}

fn val(p: &std::path::Path) -> u64 {
    read_u64(p).unwrap_or(0)
}

fn ratio(layout: &str, devs: usize) -> f64 {
    let d = devs as f64;
    match layout {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid5" => d / (d - 1.0),
        "raid6" => d / (d - 2.0),
        _ => 0.0,
    }
}

impl Collector for Btrfs {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("fs/btrfs");
        let Ok(names) = sorted_dir(&base) else {
            return Ok(());
        };
        let mut ioctl = None;
        for n in names.iter().filter(|n| n.contains('-')) {
            let ioctl = ioctl.get_or_insert_with(|| {
                ioctl_stats(cfg, &mut s.buf).unwrap_or_else(|e| {
                    tracing::debug!(err = %e, "error querying btrfs device stats with ioctl");
                    HashMap::new()
                })
            });
            let dir = base.join(n);
            // procfs falls back to the directory name when metadata_uuid is absent or empty.
            let uuid = read_attr(&dir.join("metadata_uuid"))
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| n.clone());
            let label = read_attr(&dir.join("label")).unwrap_or_default();
            let devs = sorted_dir(&dir.join("devices")).unwrap_or_default();
            out.emit(
                "node_btrfs_info",
                "Filesystem information",
                Gauge,
                &[("uuid", &uuid), ("label", &label)],
                1.0,
            );
            out.emit(
                "node_btrfs_global_rsv_size_bytes",
                "Size of global reserve.",
                Gauge,
                &[("uuid", &uuid)],
                val(&dir.join("allocation/global_rsv_size")) as f64,
            );
            for bg in ["data", "metadata", "system"] {
                let ad = dir.join("allocation").join(bg);
                out.emit(
                    "node_btrfs_reserved_bytes",
                    "Amount of space reserved for a data type",
                    Gauge,
                    &[("uuid", &uuid), ("block_group_type", bg)],
                    val(&ad.join("bytes_reserved")) as f64,
                );
                for layout in sorted_dir(&ad).unwrap_or_default() {
                    let ld = ad.join(&layout);
                    if !ld.is_dir() {
                        continue;
                    }
                    let l = [
                        ("uuid", uuid.as_str()),
                        ("block_group_type", bg),
                        ("mode", layout.as_str()),
                    ];
                    out.emit(
                        "node_btrfs_used_bytes",
                        "Amount of used space by a layout/data type",
                        Gauge,
                        &l,
                        val(&ld.join("used_bytes")) as f64,
                    );
                    out.emit(
                        "node_btrfs_size_bytes",
                        "Amount of space allocated for a layout/data type",
                        Gauge,
                        &l,
                        val(&ld.join("total_bytes")) as f64,
                    );
                    out.emit(
                        "node_btrfs_allocation_ratio",
                        "Data allocation ratio for a layout/data type",
                        Gauge,
                        &l,
                        ratio(&layout, devs.len()),
                    );
                }
            }
            if let Some(devs) = ioctl.get(&uuid.replace('-', "")) {
                emit_ioctl_devices(out, &uuid, devs);
                continue;
            }
            for d in &devs {
                let size = 512 * val(&dir.join("devices").join(d).join("size"));
                out.emit(
                    "node_btrfs_device_size_bytes",
                    "Size of a device that is part of the filesystem.",
                    Gauge,
                    &[("uuid", &uuid), ("device", d)],
                    size as f64,
                );
            }
        }
        Ok(())
    }
}
