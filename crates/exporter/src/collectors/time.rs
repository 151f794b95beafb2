//! time: wall clock, zone offset and clocksources (node_exporter time.go, time_linux.go).

use std::ffi::CStr;

use super::prelude::*;

pub struct Time;

/// Local zone abbreviation and offset east of UTC, from the C library (which reads TZ and /etc/localtime
/// as Go's time package does).
fn local_zone(secs: i64) -> (String, i64) {
    // SAFETY: tm is plain old data; localtime_r fills it and returns null on failure.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: valid pointers to a time_t and a tm.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok || tm.tm_zone.is_null() {
        return ("UTC".to_string(), 0);
    }
    // SAFETY: tm_zone points to a NUL-terminated static string owned by libc.
    let name = unsafe { CStr::from_ptr(tm.tm_zone) }
        .to_string_lossy()
        .into_owned();
    (name, tm.tm_gmtoff as i64)
}

impl Collector for Time {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| CollectError::Other(format!("clock before epoch: {e}")))?;
        out.emit(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            Gauge,
            &[],
            now.as_nanos() as f64 / 1e9,
        );
        let (zone, off) = local_zone(now.as_secs() as i64);
        out.emit(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            Gauge,
            &[("time_zone", &zone)],
            off as f64,
        );
        let base = cfg.sys("devices/system/clocksource");
        // node_exporter globs clocksource[0-9]*: no directory means no clocksources, not an error.
        let names = sorted_dir(&base).unwrap_or_default();
        let mut nb = itoa_buf();
        let sources = names.iter().filter(|n| {
            n.strip_prefix("clocksource")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        });
        for (i, n) in sources.enumerate() {
            let dir = base.join(n);
            let dev = fmt_u64(&mut nb, i as u64);
            let avail = read_attr(&dir.join("available_clocksource"))
                .ok_or_else(|| CollectError::parse(&dir, "missing available_clocksource"))?;
            for cs in avail.split_ascii_whitespace() {
                out.emit(
                    "node_time_clocksource_available_info",
                    "Available clocksources read from '/sys/devices/system/clocksource'.",
                    Gauge,
                    &[("device", dev), ("clocksource", cs)],
                    1.0,
                );
            }
            let cur = read_attr(&dir.join("current_clocksource"))
                .ok_or_else(|| CollectError::parse(&dir, "missing current_clocksource"))?;
            out.emit(
                "node_time_clocksource_current_info",
                "Current clocksource read from '/sys/devices/system/clocksource'.",
                Gauge,
                &[("device", dev), ("clocksource", &cur)],
                1.0,
            );
        }
        Ok(())
    }
}
