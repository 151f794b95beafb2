//! softnet: /proc/net/softnet_stat, one hex row per CPU (node_exporter softnet_linux.go).

use super::prelude::*;

pub struct Softnet;

impl Collector for Softnet {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let p = cfg.proc("net/softnet_stat");
        let text = read_str(&p, &mut s.buf)?;
        let mut nb = itoa_buf();
        for (i, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            if f.len() < 3 {
                return Err(CollectError::parse(
                    &p,
                    format!("could not get softnet statistics: {line}"),
                ));
            }
            let h = |v: &str| {
                u64::from_str_radix(v, 16)
                    .map(|x| x as f64)
                    .map_err(|_| CollectError::parse(&p, format!("invalid hex {v}")))
            };
            let l = [("cpu", fmt_u64(&mut nb, i as u64))];
            out.emit(
                "node_softnet_processed_total",
                "Number of processed packets",
                Counter,
                &l,
                h(f[0])?,
            );
            out.emit(
                "node_softnet_dropped_total",
                "Number of dropped packets",
                Counter,
                &l,
                h(f[1])?,
            );
            out.emit(
                "node_softnet_times_squeezed_total",
                "Number of times processing packets ran out of quota",
                Counter,
                &l,
                h(f[2])?,
            );
        }
        Ok(())
    }
}
