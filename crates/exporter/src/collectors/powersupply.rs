//! powersupplyclass: /sys/class/power_supply (node_exporter powersupplyclass_linux.go).

use std::fmt::Write as _;

use super::prelude::*;

pub struct PowerSupply;

/// (sysfs file, metric suffix, divisor)
const NUMERIC: [(&str, &str, f64); 49] = [
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("cycle_count", "cyclecount", 1.0),
    ("online", "online", 1.0),
    ("present", "present", 1.0),
    ("time_to_empty_now", "time_to_empty_seconds", 1.0),
    ("time_to_full_now", "time_to_full_seconds", 1.0),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("current_now", "current_ampere", 1e6),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_now", "energy_watthour", 1e6),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_now", "voltage_volt", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_now", "charge_ampere", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    (
        "constant_charge_current_max",
        "constant_charge_current_max",
        1e6,
    ),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    (
        "constant_charge_voltage_max",
        "constant_charge_voltage_max",
        1e6,
    ),
    ("precharge_current", "precharge_current", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("power_now", "power_watt", 1e6),
    ("temp", "temp_celsius", 10.0),
    ("temp_alert_max", "temp_alert_max_celsius", 10.0),
    ("temp_alert_min", "temp_alert_min_celsius", 10.0),
    ("temp_ambient", "temp_ambient_celsius", 10.0),
    ("temp_ambient_max", "temp_ambient_max_celsius", 10.0),
    ("temp_ambient_min", "temp_ambient_min_celsius", 10.0),
    ("temp_max", "temp_max_celsius", 10.0),
    ("temp_min", "temp_min_celsius", 10.0),
];

const INFO: [(&str, &str); 11] = [
    ("capacity_level", "capacity_level"),
    ("charge_type", "charge_type"),
    ("health", "health"),
    ("manufacturer", "manufacturer"),
    ("model_name", "model_name"),
    ("serial_number", "serial_number"),
    ("status", "status"),
    ("technology", "technology"),
    ("type", "type"),
    ("usb_type", "usb_type"),
    ("scope", "scope"),
];

impl Collector for PowerSupply {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("class/power_supply");
        for ps in sorted_dir(&base)? {
            if cfg.powersupply_ignored.is_match(&ps) {
                continue;
            }
            let dir = base.join(&ps);
            for (file, suffix, div) in NUMERIC {
                let Some(v) = read_attr(&dir.join(file)).and_then(|v| v.parse::<i64>().ok()) else {
                    continue;
                };
                s.name.clear();
                let _ = write!(s.name, "node_power_supply_{suffix}");
                out.emit_fmt(
                    &s.name,
                    format_args!("{suffix} value of /sys/class/power_supply/<power_supply>."),
                    Gauge,
                    &[("power_supply", &ps)],
                    v as f64 / div,
                );
            }
            let vals: Vec<(&str, String)> = INFO
                .iter()
                .filter_map(|(f, l)| {
                    read_attr(&dir.join(f))
                        .filter(|v| !v.is_empty())
                        .map(|v| (*l, v))
                })
                .collect();
            let mut labels: Vec<(&str, &str)> = vec![("power_supply", ps.as_str())];
            labels.extend(vals.iter().map(|(k, v)| (*k, v.as_str())));
            out.emit(
                "node_power_supply_info",
                "info of /sys/class/power_supply/<power_supply>.",
                Gauge,
                &labels,
                1.0,
            );
        }
        Ok(())
    }
}
