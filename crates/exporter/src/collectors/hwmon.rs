//! hwmon: /sys/class/hwmon sensors (node_exporter hwmon_linux.go), including its naming rules:
//! chip = cleaned "<parent dir>_<device>" of the `device` symlink, sensor = "<type><num>".

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;

use super::prelude::*;

pub struct Hwmon;

const SENSOR_TYPES: [&str; 13] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

fn filename_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // Same pattern as node_exporter; a literal, so compiling cannot fail.
    RE.get_or_init(|| {
        Regex::new(r"^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$")
            .expect("BUG: hwmon regex")
    })
}

/// Splits `temp1_input` into ("temp", 1, "input").
pub fn explode(name: &str) -> Option<(String, u64, String)> {
    let c = filename_re().captures(name)?;
    let typ = c.name("type").map(|m| m.as_str()).unwrap_or("").to_string();
    let id = match c.name("id").map(|m| m.as_str()).filter(|s| !s.is_empty()) {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    let prop = c
        .name("property")
        .map(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    Some((typ, id, prop))
}

/// Lowercase, every char outside [a-z0-9:_] to '_', trim '_' (cleanMetricName).
pub fn clean(name: &str) -> String {
    let s: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_string()
}

type SensorData = BTreeMap<String, BTreeMap<String, String>>;

fn collect_sensor_data(dir: &Path, data: &mut SensorData) -> Result<(), CollectError> {
    for f in sorted_dir(dir)? {
        let Some((typ, num, prop)) = explode(&f) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&typ.as_str()) {
            continue;
        }
        let mut b = [0u8; 128];
        let Ok(v) = crate::util::read_small(&dir.join(&f), &mut b) else {
            continue;
        };
        data.entry(format!("{typ}{num}"))
            .or_default()
            .insert(prop, v.trim_matches('\n').to_string());
    }
    Ok(())
}

fn hwmon_name(dir: &Path) -> Result<String, CollectError> {
    if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
        let dev_name = dev
            .file_name()
            .map(|s| clean(&s.to_string_lossy()))
            .unwrap_or_default();
        let dev_type = dev
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| clean(&s.to_string_lossy()))
            .unwrap_or_default();
        if !dev_type.is_empty() && !dev_name.is_empty() {
            return Ok(format!("{dev_type}_{dev_name}"));
        }
        if !dev_name.is_empty() {
            return Ok(dev_name);
        }
    }
    if let Some(n) = read_attr(&dir.join("name"))
        .map(|n| clean(&n))
        .filter(|n| !n.is_empty())
    {
        return Ok(n);
    }
    let real = std::fs::canonicalize(dir).map_err(|e| CollectError::io(dir, e))?;
    let n = real
        .file_name()
        .map(|s| clean(&s.to_string_lossy()))
        .unwrap_or_default();
    if n.is_empty() {
        return Err(CollectError::parse(
            dir,
            "could not derive a monitoring name",
        ));
    }
    Ok(n)
}

fn update_chip(dir: &Path, out: &mut Registry) -> Result<(), CollectError> {
    let chip = hwmon_name(dir)?;
    let mut data = SensorData::new();
    collect_sensor_data(dir, &mut data)?;
    if dir.join("device").exists() {
        collect_sensor_data(&dir.join("device"), &mut data)?;
    }
    if let Some(n) = read_attr(&dir.join("name"))
        .map(|n| clean(&n))
        .filter(|n| !n.is_empty())
    {
        out.emit(
            "node_hwmon_chip_names",
            "Annotation metric for human-readable chip names",
            Gauge,
            &[("chip", &chip), ("chip_name", &n)],
            1.0,
        );
    }
    let mut name = String::new();
    for (sensor, props) in &data {
        let Some((typ, _, _)) = explode(sensor) else {
            continue;
        };
        let l = [("chip", chip.as_str()), ("sensor", sensor.as_str())];
        if let Some(label) = props.get("label") {
            out.emit(
                "node_hwmon_sensor_label",
                "Label for given chip and sensor",
                Gauge,
                &[("chip", &chip), ("sensor", sensor), ("label", label)],
                1.0,
            );
        }
        let plain = props.get("").map(String::as_str).unwrap_or("");
        match typ.as_str() {
            "beep_enable" => {
                out.emit(
                    "node_hwmon_beep_enabled",
                    "Hardware beep enabled",
                    Gauge,
                    &l,
                    if plain == "1" { 1.0 } else { 0.0 },
                );
                continue;
            }
            "vrm" => {
                if let Ok(v) = plain.parse::<f64>() {
                    out.emit(
                        "node_hwmon_voltage_regulator_version",
                        "Hardware voltage regulator",
                        Gauge,
                        &l,
                        v,
                    );
                }
                continue;
            }
            "update_interval" => {
                if let Ok(v) = plain.parse::<f64>() {
                    out.emit(
                        "node_hwmon_update_interval_seconds",
                        "Hardware monitor update interval",
                        Gauge,
                        &l,
                        v * 0.001,
                    );
                }
                continue;
            }
            _ => {}
        }
        for (element, value) in props {
            if element == "label" {
                continue;
            }
            name.clear();
            name.push_str("node_hwmon_");
            name.push_str(&typ);
            if element == "input" {
                if props.contains_key("") {
                    name.push_str("_input");
                }
            } else if !element.is_empty() {
                name.push('_');
                name.push_str(&clean(element));
            }
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            let e = element.as_str();
            let t = typ.as_str();
            let g = |out: &mut Registry,
                     suffix: &str,
                     help: std::fmt::Arguments<'_>,
                     typ: MetricType,
                     v: f64| {
                let full = format!("{name}{suffix}");
                out.emit_fmt(&full, help, typ, &l, v);
            };
            if e == "fault" || e == "alarm" {
                g(
                    out,
                    "",
                    format_args!("Hardware sensor {e} status ({t})"),
                    Gauge,
                    v,
                );
            } else if e == "beep" {
                g(
                    out,
                    "_enabled",
                    format_args!("Hardware monitor sensor has beeping enabled"),
                    Gauge,
                    v,
                );
            } else if t == "in" || t == "cpu" {
                g(
                    out,
                    "_volts",
                    format_args!("Hardware monitor for voltage ({e})"),
                    Gauge,
                    v * 0.001,
                );
            } else if t == "temp" && e != "type" {
                let e = if e.is_empty() { "input" } else { e };
                g(
                    out,
                    "_celsius",
                    format_args!("Hardware monitor for temperature ({e})"),
                    Gauge,
                    v * 0.001,
                );
            } else if t == "curr" {
                g(
                    out,
                    "_amps",
                    format_args!("Hardware monitor for current ({e})"),
                    Gauge,
                    v * 0.001,
                );
            } else if t == "energy" {
                g(
                    out,
                    "_joule_total",
                    format_args!("Hardware monitor for joules used so far ({e})"),
                    Counter,
                    v / 1e6,
                );
            } else if t == "power" && e == "accuracy" {
                g(
                    out,
                    "",
                    format_args!("Hardware monitor power meter accuracy, as a ratio"),
                    Gauge,
                    v / 1e6,
                );
            } else if t == "power"
                && matches!(
                    e,
                    "average_interval" | "average_interval_min" | "average_interval_max"
                )
            {
                g(
                    out,
                    "_seconds",
                    format_args!("Hardware monitor power usage update interval ({e})"),
                    Gauge,
                    v * 0.001,
                );
            } else if t == "power" {
                g(
                    out,
                    "_watt",
                    format_args!("Hardware monitor for power usage in watts ({e})"),
                    Gauge,
                    v / 1e6,
                );
            } else if t == "humidity" {
                g(
                    out,
                    "",
                    format_args!("Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({e})"),
                    Gauge,
                    v / 1e6,
                );
            } else if t == "fan" && matches!(e, "input" | "min" | "max" | "target") {
                g(
                    out,
                    "_rpm",
                    format_args!("Hardware monitor for fan revolutions per minute ({e})"),
                    Gauge,
                    v,
                );
            } else {
                g(
                    out,
                    "",
                    format_args!("Hardware monitor {t} element {e}"),
                    Gauge,
                    v,
                );
            }
        }
    }
    Ok(())
}

impl Collector for Hwmon {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("class/hwmon");
        let mut last = Ok(());
        for n in sorted_dir(&base)? {
            let dir = base.join(&n);
            if !dir.is_dir() {
                continue;
            }
            if let Err(e) = update_chip(&dir, out) {
                last = Err(e);
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filename_explosion_and_cleaning() {
        assert_eq!(
            explode("temp1_input"),
            Some(("temp".into(), 1, "input".into()))
        );
        assert_eq!(
            explode("temp1_crit_alarm"),
            Some(("temp".into(), 1, "crit_alarm".into()))
        );
        assert_eq!(
            explode("beep_enable"),
            Some(("beep_enable".into(), 0, "".into()))
        );
        assert_eq!(explode("pwm1"), Some(("pwm".into(), 1, "".into())));
        assert_eq!(clean("Platform.Coretemp-0_"), "platform_coretemp_0");
    }
}
