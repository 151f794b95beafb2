//! Entry points for benchmarks and external tests: drive one target's parse → relabel → append path without
//! HTTP. Not a stable API.

use crate::metrics::ScrapeMetrics;
use crate::parse::Format;
use crate::scrape_loop::{Appending, AppendStats, LoopOptions};
use crate::target::{populate_labels, Target};
use config::ScrapeConfig;
use model::{Appender, LabelsBuilder};
use std::sync::Arc;

/// One target's append path.
pub struct BenchTarget {
    a: Appending,
}

impl BenchTarget {
    /// A target `addr` of scrape config `cfg`.
    pub fn new(cfg: &ScrapeConfig, addr: &str) -> Result<BenchTarget, String> {
        let mut lb = LabelsBuilder::new();
        lb.set(crate::target::ADDRESS_LABEL, addr);
        let (l, d) = populate_labels(lb, cfg)?;
        let t = Arc::new(Target::new(l, d, cfg));
        let opts = LoopOptions {
            honor_labels: cfg.honor_labels,
            honor_timestamps: cfg.honor_timestamps,
            track_timestamps_staleness: cfg.track_timestamps_staleness,
            sample_limit: cfg.sample_limit as usize,
            label_limit: cfg.label_limit as usize,
            label_name_length_limit: cfg.label_name_length_limit as usize,
            label_value_length_limit: cfg.label_value_length_limit as usize,
            body_size_limit: cfg.body_size_limit.0,
            metric_relabel: Arc::new(cfg.metric_relabel_configs.clone()),
            accept: String::new(),
            enable_compression: true,
            offset_seed: 0,
        };
        Ok(BenchTarget { a: Appending::new(t, opts, Default::default(), Arc::new(ScrapeMetrics::default())) })
    }

    /// Parses `body` and appends it at `ts`; returns (samples scraped, samples after relabeling, new series).
    pub fn append(&self, app: &mut dyn Appender, body: &[u8], format: Format, ts: i64) -> Result<(usize, usize, usize), String> {
        self.a.append(app, body, format, ts).map(|AppendStats { total, added, series_added }| (total, added, series_added))
    }
}
