#![no_main]
//! Any bytes as backfill input: the OpenMetrics reader must not panic.
use libfuzzer_sys::fuzz_target;
use tsdb::openmetrics::{Entry, Reader};

fuzz_target!(|data: &[u8]| {
    for e in Reader::new(data) {
        if let Ok(Entry::Sample(s)) = e {
            let _ = s.label_pairs();
        }
    }
});
