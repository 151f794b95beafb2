//! tapestats: /sys/class/scsi_tape/st*/stats (node_exporter tapestats_linux.go).

use super::prelude::*;

pub struct Tapestats;

/// (stats file, metric, help, type, scale)
const STATS: [(&str, &str, &str, MetricType, f64); 10] = [
    ("in_flight", "node_tape_io_now", "The number of I/Os currently outstanding to this device.", Gauge, 1.0),
    ("io_ns", "node_tape_io_time_seconds_total", "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.", Counter, 1e-9),
    ("other_cnt", "node_tape_io_others_total", "The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total", Counter, 1.0),
    ("read_byte_cnt", "node_tape_read_bytes_total", "The number of bytes read from the tape drive.", Counter, 1.0),
    ("read_cnt", "node_tape_reads_completed_total", "The number of read requests issued to the tape drive.", Counter, 1.0),
    ("read_ns", "node_tape_read_time_seconds_total", "The amount of time spent waiting for read requests to complete.", Counter, 1e-9),
    ("resid_cnt", "node_tape_residual_total", "The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.", Counter, 1.0),
    ("write_byte_cnt", "node_tape_written_bytes_total", "The number of bytes written to the tape drive.", Counter, 1.0),
    ("write_cnt", "node_tape_writes_completed_total", "The number of write requests issued to the tape drive.", Counter, 1.0),
    ("write_ns", "node_tape_write_time_seconds_total", "The amount of time spent waiting for write requests to complete.", Counter, 1e-9),
];

impl Collector for Tapestats {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("class/scsi_tape");
        for dev in sorted_dir(&base)? {
            let valid = dev
                .strip_prefix("st")
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
            if !valid || cfg.tapestats_ignored.is_match(&dev) {
                continue;
            }
            let sd = base.join(&dev).join("stats");
            for (file, name, help, typ, scale) in STATS {
                let v = read_u64(&sd.join(file)).unwrap_or(0);
                out.emit(name, help, typ, &[("device", &dev)], v as f64 * scale);
            }
        }
        Ok(())
    }
}
