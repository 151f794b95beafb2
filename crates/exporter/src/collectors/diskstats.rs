//! diskstats: /proc/diskstats plus udev properties (node_exporter diskstats_linux.go).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::prelude::*;

#[derive(Default)]
pub struct Diskstats {
    udev: HashMap<String, String>,
}

const SECONDS_PER_TICK: f64 = 1.0 / 1000.0;
const SECTOR: f64 = 512.0;

/// (name, help, type, scale) of the positional /proc/diskstats fields after the device name.
const FIELDS: [(&str, &str, MetricType, f64); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        Counter,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        Counter,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        Counter,
        SECTOR,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        Counter,
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        Counter,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        Counter,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        Counter,
        SECTOR,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        Counter,
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        Gauge,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        Counter,
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        Counter,
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        Counter,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        Counter,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        Counter,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        Counter,
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        Counter,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        Counter,
        SECONDS_PER_TICK,
    ),
];

impl Diskstats {
    /// Loads `E:KEY=value` lines of <udev>/b<major>:<minor>; empty when absent.
    fn load_udev(&mut self, cfg: &Config, major: &str, minor: &str, s: &mut Scratch) {
        self.udev.clear();
        s.help.clear();
        let _ = write!(s.help, "b{major}:{minor}");
        let Ok(text) = read_str(&cfg.udev_data.join(&s.help), &mut s.buf2) else {
            return;
        };
        for line in text.lines() {
            if let Some((k, v)) = line.strip_prefix("E:").and_then(|l| l.split_once('=')) {
                self.udev.insert(k.to_string(), v.to_string());
            }
        }
    }
    fn u(&self, k: &str) -> &str {
        self.udev.get(k).map(String::as_str).unwrap_or("")
    }
}

impl Collector for Diskstats {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let path = cfg.proc("diskstats");
        let mut text = std::mem::take(&mut s.buf);
        let res = (|| {
            crate::util::read_into(&path, &mut text).map_err(|e| CollectError::io(&path, e))?;
            let text =
                std::str::from_utf8(&text).map_err(|_| CollectError::parse(&path, "not UTF-8"))?;
            for line in text.lines() {
                let f: Vec<&str> = line.split_ascii_whitespace().collect();
                if f.len() < 4 {
                    return Err(CollectError::parse(&path, format!("invalid line: {line}")));
                }
                let (major, minor, dev) = (f[0], f[1], f[2]);
                if cfg.diskstats_filter.ignored(dev) {
                    continue;
                }
                self.load_udev(cfg, major, minor, s);
                out.emit(
                    "node_disk_info",
                    "Info of /sys/block/<block_device>.",
                    Gauge,
                    &[
                        ("device", dev),
                        ("major", major),
                        ("minor", minor),
                        ("path", self.u("ID_PATH")),
                        ("wwn", self.u("ID_WWN")),
                        ("model", self.u("ID_MODEL")),
                        ("serial", self.u("ID_SERIAL_SHORT")),
                        ("revision", self.u("ID_REVISION")),
                    ],
                    1.0,
                );
                for ((name, help, typ, scale), v) in FIELDS.iter().zip(&f[3..]) {
                    let v: f64 = v
                        .parse()
                        .map_err(|_| CollectError::parse(&path, format!("invalid value {v}")))?;
                    out.emit(name, help, *typ, &[("device", dev)], v * scale);
                }
                let fs_type = self.u("ID_FS_TYPE");
                if !fs_type.is_empty() {
                    out.emit(
                        "node_disk_filesystem_info",
                        "Info about disk filesystem.",
                        Gauge,
                        &[
                            ("device", dev),
                            ("type", fs_type),
                            ("usage", self.u("ID_FS_USAGE")),
                            ("uuid", self.u("ID_FS_UUID")),
                            ("version", self.u("ID_FS_VERSION")),
                        ],
                        1.0,
                    );
                }
                let dm = self.u("DM_NAME");
                if !dm.is_empty() {
                    out.emit(
                        "node_disk_device_mapper_info",
                        "Info about disk device mapper.",
                        Gauge,
                        &[
                            ("device", dev),
                            ("name", dm),
                            ("uuid", self.u("DM_UUID")),
                            ("vg_name", self.u("DM_VG_NAME")),
                            ("lv_name", self.u("DM_LV_NAME")),
                            ("lv_layer", self.u("DM_LV_LAYER")),
                        ],
                        1.0,
                    );
                }
                if !self.u("ID_ATA").is_empty() {
                    for (key, name, help) in [
                        (
                            "ID_ATA_WRITE_CACHE",
                            "node_disk_ata_write_cache",
                            "ATA disk has a write cache.",
                        ),
                        (
                            "ID_ATA_WRITE_CACHE_ENABLED",
                            "node_disk_ata_write_cache_enabled",
                            "ATA disk has its write cache enabled.",
                        ),
                        (
                            "ID_ATA_ROTATION_RATE_RPM",
                            "node_disk_ata_rotation_rate_rpm",
                            "ATA disk rotation rate in RPMs (0 for SSDs).",
                        ),
                    ] {
                        if let Some(v) = self.udev.get(key).and_then(|v| v.parse::<f64>().ok()) {
                            out.emit(name, help, Gauge, &[("device", dev)], v);
                        }
                    }
                }
            }
            Ok(())
        })();
        s.buf = text;
        res
    }
}
