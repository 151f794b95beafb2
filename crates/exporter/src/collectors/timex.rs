//! timex: adjtimex(2) kernel clock discipline state (node_exporter timex.go).

use super::prelude::*;

pub struct Timex;

const TIME_ERROR: i32 = 5;
const STA_NANO: i32 = 0x2000;

impl Collector for Timex {
    fn update(
        &mut self,
        _cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        // SAFETY: timex is plain old data; modes = 0 makes adjtimex read-only.
        let mut t: libc::timex = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a timex struct.
        let status = unsafe { libc::adjtimex(&mut t) };
        if status < 0 {
            return Err(CollectError::Other(format!(
                "failed to retrieve adjtimex stats: {}",
                std::io::Error::last_os_error()
            )));
        }
        let sync = if status == TIME_ERROR { 0.0 } else { 1.0 };
        let divisor = if t.status & STA_NANO != 0 { 1e9 } else { 1e6 };
        const PPM16FRAC: f64 = 1_000_000.0 * 65536.0;
        let g = |out: &mut Registry, name: &str, help: &str, v: f64| {
            out.emit(name, help, Gauge, &[], v)
        };
        let c = |out: &mut Registry, name: &str, help: &str, v: f64| {
            out.emit(name, help, Counter, &[], v)
        };
        g(
            out,
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            sync,
        );
        g(
            out,
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            t.offset as f64 / divisor,
        );
        g(
            out,
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + t.freq as f64 / PPM16FRAC,
        );
        g(
            out,
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            t.maxerror as f64 / 1e6,
        );
        g(
            out,
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            t.esterror as f64 / 1e6,
        );
        g(
            out,
            "node_timex_status",
            "Value of the status array bits.",
            t.status as f64,
        );
        g(
            out,
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            t.constant as f64,
        );
        g(
            out,
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            t.tick as f64 / 1e6,
        );
        g(
            out,
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            t.ppsfreq as f64 / PPM16FRAC,
        );
        g(
            out,
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            t.jitter as f64 / divisor,
        );
        g(
            out,
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            t.shift as f64,
        );
        g(
            out,
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            t.stabil as f64 / PPM16FRAC,
        );
        c(
            out,
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            t.jitcnt as f64,
        );
        c(
            out,
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            t.calcnt as f64,
        );
        c(
            out,
            "node_timex_pps_error_total",
            "Pulse per second count of calibration errors.",
            t.errcnt as f64,
        );
        c(
            out,
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            t.stbcnt as f64,
        );
        g(
            out,
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            t.tai as f64,
        );
        Ok(())
    }
}
