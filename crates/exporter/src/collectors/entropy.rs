//! entropy: /proc/sys/kernel/random (node_exporter entropy_linux.go).

use super::prelude::*;

pub struct Entropy;

impl Collector for Entropy {
    fn update(
        &mut self,
        cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let avail = read_u64(&cfg.proc("sys/kernel/random/entropy_avail"))?;
        out.emit(
            "node_entropy_available_bits",
            "Bits of available entropy.",
            Gauge,
            &[],
            avail as f64,
        );
        let pool = read_u64(&cfg.proc("sys/kernel/random/poolsize"))?;
        out.emit(
            "node_entropy_pool_size_bits",
            "Bits of entropy pool.",
            Gauge,
            &[],
            pool as f64,
        );
        Ok(())
    }
}
