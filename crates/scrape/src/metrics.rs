//! The scrape subsystem's own metrics, named as Prometheus names them, for ignis's /metrics.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! metrics {
    ($( $field:ident : $kind:literal, $help:literal; )*) => {
        /// Counters and gauges of scraping and discovery (plain atomics, read by the web crate).
        #[derive(Debug, Default)]
        pub struct ScrapeMetrics {
            $( #[doc = $help] pub $field: AtomicU64, )*
        }

        impl ScrapeMetrics {
            /// `(name, type, help, value)` of every metric; names get the `prometheus_` prefix.
            pub fn snapshot(&self) -> Vec<(String, &'static str, &'static str, u64)> {
                vec![$( (format!("prometheus_{}", stringify!($field)), $kind, $help, self.$field.load(Relaxed)), )*]
            }

            /// The metrics in the Prometheus text format.
            pub fn write_text(&self, out: &mut String) {
                for (name, kind, help, v) in self.snapshot() {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
                }
            }
        }
    };
}

metrics! {
    target_scrape_pools_total: "counter", "Total number of scrape pool creation attempts.";
    target_scrape_pools_failed_total: "counter", "Total number of scrape pool creations that failed.";
    target_scrape_pool_reloads_total: "counter", "Total number of scrape pool reloads.";
    target_scrape_pool_reloads_failed_total: "counter", "Total number of failed scrape pool reloads.";
    target_scrape_pool_targets: "gauge", "Current number of targets in all scrape pools.";
    target_scrape_pool_exceeded_target_limit_total: "counter", "Total number of times scrape pools hit the target limit, during sync or config reload.";
    target_scrape_pool_exceeded_label_limits_total: "counter", "Total number of times scrape pools hit the label limits, during sync or config reload.";
    target_scrapes_exceeded_sample_limit_total: "counter", "Total number of scrapes that hit the sample limit and were rejected.";
    target_scrapes_exceeded_body_size_limit_total: "counter", "Total number of scrapes that hit the body size limit";
    target_scrapes_sample_duplicate_timestamp_total: "counter", "Total number of samples rejected due to duplicate timestamps but different values.";
    target_scrapes_sample_out_of_order_total: "counter", "Total number of samples rejected due to not being out of the expected order.";
    target_scrapes_sample_out_of_bounds_total: "counter", "Total number of samples rejected due to timestamp falling outside of the time bounds.";
    target_scrapes_cache_flush_forced_total: "counter", "How many times a scrape cache was flushed due to getting big while scrapes are failing.";
    sd_discovered_targets: "gauge", "Current number of discovered targets.";
    sd_file_read_errors_total: "counter", "The number of File-SD read errors.";
    sd_file_scan_total: "counter", "The number of File-SD scans.";
    sd_http_failures_total: "counter", "Number of HTTP service discovery refresh failures.";
    sd_dns_lookups_total: "counter", "The number of DNS-SD lookups.";
    sd_dns_lookup_failures_total: "counter", "The number of DNS-SD lookup failures.";
}
