//! btrfs: /sys/fs/btrfs/<uuid> allocation statistics (node_exporter btrfs_linux.go, sysfs part).
//!
//! Not reproduced: node_exporter additionally queries per-device stats with btrfs ioctls
//! (device_unused_bytes, device_errors_total, btrfs_dev_uuid label). Without them node_exporter itself
//! falls back to exactly what we emit: device_size_bytes{uuid,device} from sysfs.

use super::prelude::*;

pub struct Btrfs;

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
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("fs/btrfs");
        let Ok(names) = sorted_dir(&base) else {
            return Ok(());
        };
        for n in names.iter().filter(|n| n.contains('-')) {
            let dir = base.join(n);
            let uuid = read_attr(&dir.join("metadata_uuid")).unwrap_or_default();
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
