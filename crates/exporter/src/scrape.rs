//! One scrape: run each enabled collector, time it, record success, and encode everything.
//!
//! Collectors run sequentially on one blocking thread. node_exporter runs them in parallel goroutines,
//! but ours spend microseconds each reading /proc, so the fan-out would cost more than it saves on a
//! 2-core host; concurrent HTTP scrapes are serialised by the mutex around the [`Scraper`].

use std::time::Instant;

use crate::collectors::{Collector, Config, Scratch, COLLECTORS};
use crate::expo::{Format, MetricType, Registry};
use crate::{Args, ExporterError};

pub struct Scraper {
    cfg: Config,
    collectors: Vec<(&'static str, Box<dyn Collector>)>,
    process: Option<crate::collectors::process::Process>,
    reg: Registry,
    scratch: Scratch,
    /// Uncompressed exposition, reused across scrapes.
    pub out: Vec<u8>,
    /// Gzip output, reused across scrapes.
    pub gz: Vec<u8>,
}

impl Scraper {
    pub fn new(args: &Args) -> Result<Self, ExporterError> {
        let cfg = Config::from_args(args)?;
        let collectors = COLLECTORS
            .iter()
            .filter(|c| {
                args.collectors
                    .enabled(c.name, c.default_enabled, args.disable_defaults)
            })
            .map(|c| (c.name, c.instantiate()))
            .collect();
        Ok(Scraper {
            cfg,
            collectors,
            process: (!args.disable_exporter_metrics)
                .then(crate::collectors::process::Process::new),
            reg: Registry::new(),
            scratch: Scratch::default(),
            out: Vec::with_capacity(64 * 1024),
            gz: Vec::new(),
        })
    }

    /// Names of the enabled collectors.
    pub fn enabled(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.collectors.iter().map(|(n, _)| *n)
    }

    /// Runs the collectors (all, or those named in `only`, as node_exporter's `collect[]`) and writes the
    /// exposition into `self.out`.
    pub fn scrape(&mut self, only: &[String], format: Format) {
        self.reg.begin();
        for (name, c) in self.collectors.iter_mut() {
            if !only.is_empty() && !only.iter().any(|o| o == name) {
                continue;
            }
            let start = Instant::now();
            let res = c.update(&self.cfg, &mut self.scratch, &mut self.reg);
            let dur = start.elapsed().as_secs_f64();
            let ok = match res {
                Ok(()) => 1.0,
                Err(e) => {
                    if e.is_not_found() {
                        tracing::debug!(collector = *name, error = %e, "collector source absent");
                    } else {
                        tracing::warn!(collector = *name, error = %e, "collector failed");
                    }
                    0.0
                }
            };
            self.reg.emit(
                "node_scrape_collector_duration_seconds",
                "node_exporter: Duration of a collector scrape.",
                MetricType::Gauge,
                &[("collector", name)],
                dur,
            );
            self.reg.emit(
                "node_scrape_collector_success",
                "node_exporter: Whether a collector succeeded.",
                MetricType::Gauge,
                &[("collector", name)],
                ok,
            );
        }
        if let Some(p) = &mut self.process {
            p.update(&self.cfg, &mut self.scratch, &mut self.reg);
        }
        self.out.clear();
        self.reg.write(format, &mut self.out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn collector_flags_enable_and_disable() {
        let cli = Cli::parse_from([
            "x",
            "--collector.disable-defaults",
            "--collector.cpu",
            "--no-collector.loadavg",
            "--collector.loadavg",
            "--collector.meminfo",
            "--no-collector.meminfo",
        ]);
        let s = Scraper::new(&cli.args).unwrap();
        let names: Vec<_> = s.enabled().collect();
        assert_eq!(names, vec!["cpu", "loadavg"]);

        let cli = Cli::parse_from(["x", "--no-collector.cpu"]);
        let s = Scraper::new(&cli.args).unwrap();
        assert!(!s.enabled().any(|n| n == "cpu"));
        assert_eq!(s.enabled().count(), COLLECTORS.len() - 1);
    }

    #[test]
    fn bad_regex_is_a_typed_error() {
        let cli = Cli::parse_from(["x", "--collector.netstat.fields", "("]);
        assert!(matches!(
            Scraper::new(&cli.args),
            Err(ExporterError::Regex { .. })
        ));
        let cli = Cli::parse_from([
            "x",
            "--collector.netdev.device-exclude",
            "a",
            "--collector.netdev.device-include",
            "b",
        ]);
        assert!(matches!(
            Scraper::new(&cli.args),
            Err(ExporterError::Flags(_))
        ));
    }
}
