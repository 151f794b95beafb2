//! Scraping into `model::storage::Storage`, as Prometheus 2.53 does it: exposition parsing (text 0.0.4 and
//! OpenMetrics 1.0), service discovery (static, file, http, dns SRV/A/AAAA/MX/NS), target relabeling, one scrape loop
//! per target with the scrape cache, synthetic series, staleness markers and limits.
//!
//! Architecture invariant: this crate writes only through `model::storage::Appender` and never reads
//! storage; it knows nothing of the TSDB.

mod discovery;
mod dns;
mod http;
mod manager;
mod metrics;
pub mod parse;
mod scrape_loop;
mod target;

pub use manager::{accept_header, ManagerOptions, ScrapeError, ScrapeManager};
pub use metrics::ScrapeMetrics;
pub use parse::{Entry, Format, MetricType, ParseError, Parser, SeriesEntry};
pub use target::{Health, TargetGroup, TargetInfo, TargetMetadata};

#[doc(hidden)]
pub mod bench_support;

#[cfg(test)]
mod tests;
