//! nvme: /sys/class/nvme device info (node_exporter nvme_linux.go).

use super::prelude::*;

pub struct Nvme;

impl Collector for Nvme {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let base = cfg.sys("class/nvme");
        for dev in sorted_dir(&base)? {
            let d = base.join(&dev);
            let a = |f: &str| {
                read_attr(&d.join(f)).ok_or_else(|| CollectError::parse(&d.join(f), "unreadable"))
            };
            let (fw, model, serial, state) =
                (a("firmware_rev")?, a("model")?, a("serial")?, a("state")?);
            out.emit(
                "node_nvme_info",
                "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
                Gauge,
                &[
                    ("device", &dev),
                    ("firmware_revision", &fw),
                    ("model", &model),
                    ("serial", &serial),
                    ("state", &state),
                ],
                1.0,
            );
        }
        Ok(())
    }
}
