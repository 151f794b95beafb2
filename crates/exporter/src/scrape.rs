//! One scrape: run each enabled collector, time it, record success, and encode everything.
//!
//! Collectors run sequentially on one blocking thread. node_exporter runs them in parallel goroutines,
//! but ours spend microseconds each reading /proc, so the fan-out would cost more than it saves on a
//! 2-core host; concurrent HTTP scrapes are serialised by the mutex around the [`Scraper`].

use std::time::Instant;

use crate::collectors::{Collector, Config, Scratch, COLLECTORS};
use crate::expo::{Format, MetricType, Registry};
use crate::{Args, ExporterError};

/// Go's name for this architecture, for `node_exporter_build_info{goarch}`.
const GOARCH: &str = match std::env::consts::ARCH.as_bytes() {
    b"x86_64" => "amd64",
    b"aarch64" => "arm64",
    b"x86" => "386",
    b"powerpc64" => "ppc64",
    b"s390x" => "s390x",
    b"riscv64" => "riscv64",
    _ => std::env::consts::ARCH,
};

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
        // node_exporter registers its version collector unconditionally.
        self.reg.emit(
            "node_exporter_build_info",
            "A metric with a constant '1' value labeled by version, revision, branch, goversion from which node_exporter was built, and the goos and goarch for the build.",
            MetricType::Gauge,
            &[
                ("branch", ""),
                ("goarch", GOARCH),
                ("goos", std::env::consts::OS),
                ("goversion", ""),
                ("revision", ""),
                ("version", env!("CARGO_PKG_VERSION")),
            ],
            1.0,
        );
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

    /// Counts heap allocations made by the current thread (other test threads do not disturb it).
    struct CountingAlloc;
    thread_local! {
        static ALLOCS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
    }
    // SAFETY: forwards to the system allocator; the thread-local is const-initialised and never allocates.
    unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
            let _ = ALLOCS.try_with(|c| {
                let (n, b) = c.get();
                c.set((n + 1, b + l.size() as u64));
            });
            // SAFETY: same contract as the caller's.
            unsafe { std::alloc::System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { std::alloc::System.dealloc(p, l) }
        }
    }
    #[global_allocator]
    static GLOBAL: CountingAlloc = CountingAlloc;

    #[test]
    fn steady_state_scrape_allocations_are_bounded() {
        let f = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let cli = Cli::parse_from([
            "x".to_string(),
            format!("--path.procfs={f}/proc"),
            format!("--path.sysfs={f}/sys"),
            format!("--path.rootfs={f}/root"),
            format!("--path.udev.data={f}/udev"),
            format!("--collector.textfile.directory={f}/textfile"),
        ]);
        let mut s = Scraper::new(&cli.args).unwrap();
        s.scrape(&[], Format::Text);
        s.scrape(&[], Format::Text);
        let before = ALLOCS.with(|c| c.get());
        s.scrape(&[], Format::Text);
        let after = ALLOCS.with(|c| c.get());
        let (n, bytes) = (after.0 - before.0, after.1 - before.1);
        let series = s.out.iter().filter(|&&b| b == b'\n').count();
        println!("steady-state scrape over fixtures: {n} allocations, {bytes} bytes, {} output bytes, {series} lines", s.out.len());
        if std::env::var_os("EXPORTER_ALLOC_DETAIL").is_some() {
            let names: Vec<&str> = s.enabled().collect();
            for c in names {
                let only = [c.to_string()];
                s.scrape(&only, Format::Text);
                let b = ALLOCS.with(|x| x.get());
                s.scrape(&only, Format::Text);
                let a = ALLOCS.with(|x| x.get());
                println!("  {c:<17} {} allocations", a.0 - b.0);
            }
        }
        // The same on this host's real /proc and /sys, for the record (not asserted: hosts differ).
        let mut h = Scraper::new(&Cli::parse_from(["x"]).args).unwrap();
        h.scrape(&[], Format::Text);
        let b = ALLOCS.with(|x| x.get());
        h.scrape(&[], Format::Text);
        let a = ALLOCS.with(|x| x.get());
        println!(
            "steady-state scrape of this host: {} allocations, {} bytes, {} output bytes",
            a.0 - b.0,
            a.1 - b.1,
            h.out.len()
        );
        // Mostly path joins and directory listings (sysfs walks), not per-sample work.
        assert!(n < 3000, "{n} allocations in one scrape");
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
