#![no_main]
//! Any bytes as a block index: opening and reading every series and postings list must not panic.
use libfuzzer_sys::fuzz_target;
use tsdb::index::IndexReader;
use tsdb::postings::{postings_for_matchers, PostingsIndex};

fuzz_target!(|data: &[u8]| {
    let Ok(r) = IndexReader::from_bytes(data, "fuzz") else { return };
    let _ = r.symbols();
    let _ = r.postings_stats();
    let mut chunks = Vec::new();
    if let Ok(ids) = r.all_postings() {
        for id in ids.into_iter().take(10_000) {
            let _ = r.series(id, &mut chunks);
        }
    }
    for name in r.label_names() {
        let _ = r.label_values(&name);
        let m = model::Matcher::new(model::MatchOp::Regex, &name, ".+").expect("valid regex");
        let _ = postings_for_matchers(&r, &[m]);
    }
});
