//! thermal_zone: /sys/class/thermal zones and cooling devices (node_exporter thermal_zone_linux.go).

use super::prelude::*;

pub struct ThermalZone;

impl Collector for ThermalZone {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("class/thermal");
        // node_exporter globs thermal_zone* and cooling_device*: an absent class is just empty.
        let names = sorted_dir(&base).unwrap_or_default();
        for n in &names {
            let Some(zone) = n.strip_prefix("thermal_zone") else {
                continue;
            };
            let dir = base.join(n);
            let typ = read_attr(&dir.join("type"))
                .ok_or_else(|| CollectError::parse(&dir, "missing type"))?;
            // Zones whose sensor is not ready return ENODATA/EAGAIN; node_exporter skips them.
            let Ok(temp) = read_i64_attr(&dir.join("temp")) else {
                continue;
            };
            out.emit(
                "node_thermal_zone_temp",
                "Zone temperature in Celsius",
                Gauge,
                &[("zone", zone), ("type", &typ)],
                temp as f64 / 1000.0,
            );
        }
        for n in &names {
            let Some(num) = n.strip_prefix("cooling_device") else {
                continue;
            };
            let dir = base.join(n);
            let typ = read_attr(&dir.join("type"))
                .ok_or_else(|| CollectError::parse(&dir, "missing type"))?;
            let cur = read_i64_attr(&dir.join("cur_state"))?;
            let max = read_i64_attr(&dir.join("max_state"))?;
            let l = [("name", num), ("type", typ.as_str())];
            out.emit(
                "node_cooling_device_cur_state",
                "Current throttle state of the cooling device",
                Gauge,
                &l,
                cur as f64,
            );
            out.emit(
                "node_cooling_device_max_state",
                "Maximum throttle state of the cooling device",
                Gauge,
                &l,
                max as f64,
            );
        }
        Ok(())
    }
}

fn read_i64_attr(p: &std::path::Path) -> Result<i64, CollectError> {
    read_i64(p)
}
