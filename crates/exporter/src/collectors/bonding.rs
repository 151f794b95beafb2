//! bonding: slaves per bonding master from /sys/class/net (node_exporter bonding_linux.go).

use super::prelude::*;

pub struct Bonding;

impl Collector for Bonding {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let root = cfg.sys("class/net");
        let masters_path = root.join("bonding_masters");
        let masters = read_attr(&masters_path)
            .ok_or_else(|| CollectError::io(&masters_path, std::io::ErrorKind::NotFound.into()))?;
        for master in masters.split_ascii_whitespace() {
            let sp = root.join(master).join("bonding/slaves");
            let slaves =
                read_attr(&sp).ok_or_else(|| CollectError::parse(&sp, "cannot read slaves"))?;
            let (mut total, mut active) = (0.0, 0.0);
            for slave in slaves.split_ascii_whitespace() {
                let a = root
                    .join(master)
                    .join(format!("lower_{slave}"))
                    .join("bonding_slave/mii_status");
                let b = root
                    .join(master)
                    .join(format!("slave_{slave}"))
                    .join("bonding_slave/mii_status");
                let state = read_attr(&a)
                    .or_else(|| read_attr(&b))
                    .ok_or_else(|| CollectError::parse(&b, "no mii_status"))?;
                total += 1.0;
                if state.trim() == "up" {
                    active += 1.0;
                }
            }
            let l = [("master", master)];
            out.emit(
                "node_bonding_slaves",
                "Number of configured slaves per bonding interface.",
                Gauge,
                &l,
                total,
            );
            out.emit(
                "node_bonding_active",
                "Number of active slaves per bonding interface.",
                Gauge,
                &l,
                active,
            );
        }
        Ok(())
    }
}
