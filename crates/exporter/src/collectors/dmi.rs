//! dmi: /sys/class/dmi/id as `node_dmi_info` labels (node_exporter dmi.go). Read once, like
//! node_exporter (DMI data does not change while the host runs).

use super::prelude::*;

pub struct Dmi;

const FIELDS: [&str; 20] = [
    "bios_date",
    "bios_release",
    "bios_vendor",
    "bios_version",
    "board_asset_tag",
    "board_name",
    "board_serial",
    "board_vendor",
    "board_version",
    "chassis_asset_tag",
    "chassis_serial",
    "chassis_vendor",
    "chassis_version",
    "product_family",
    "product_name",
    "product_serial",
    "product_sku",
    "product_uuid",
    "product_version",
    "sys_vendor",
];

impl Collector for Dmi {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let dir = cfg.sys("class/dmi/id");
        if !dir.is_dir() {
            return Err(CollectError::io(&dir, std::io::ErrorKind::NotFound.into()));
        }
        // The kernel file is `sys_vendor`; node_exporter labels it `system_vendor`.
        let vals: Vec<(&str, String)> = FIELDS
            .iter()
            .filter_map(|f| {
                read_attr(&dir.join(f)).map(|v| {
                    (
                        if *f == "sys_vendor" {
                            "system_vendor"
                        } else {
                            *f
                        },
                        v,
                    )
                })
            })
            .collect();
        if vals.is_empty() {
            return Err(CollectError::parse(&dir, "no DMI attributes readable"));
        }
        let labels: Vec<(&str, &str)> = vals.iter().map(|(k, v)| (*k, v.as_str())).collect();
        out.emit(
            "node_dmi_info",
            "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, product_sku, product_uuid, product_version, system_vendor if provided by DMI.",
            Gauge,
            &labels,
            1.0,
        );
        Ok(())
    }
}
