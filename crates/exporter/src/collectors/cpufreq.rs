//! cpufreq: /sys/devices/system/cpu/cpu*/cpufreq (node_exporter cpufreq_linux.go).

use super::prelude::*;

pub struct Cpufreq;

const FILES: [(&str, &str, &str); 6] = [
    (
        "cpuinfo_cur_freq",
        "node_cpu_frequency_hertz",
        "Current cpu thread frequency in hertz.",
    ),
    (
        "cpuinfo_min_freq",
        "node_cpu_frequency_min_hertz",
        "Minimum cpu thread frequency in hertz.",
    ),
    (
        "cpuinfo_max_freq",
        "node_cpu_frequency_max_hertz",
        "Maximum cpu thread frequency in hertz.",
    ),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
];

impl Collector for Cpufreq {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("devices/system/cpu");
        // A glob in node_exporter: nothing to match is not an error.
        for n in sorted_dir(&base).unwrap_or_default() {
            let Some(num) = n
                .strip_prefix("cpu")
                .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let dir = base.join(&n).join("cpufreq");
            if !dir.exists() {
                continue;
            }
            for (file, name, help) in FILES {
                if let Ok(v) = read_u64(&dir.join(file)) {
                    out.emit(name, help, Gauge, &[("cpu", num)], v as f64 * 1000.0);
                }
            }
        }
        Ok(())
    }
}
