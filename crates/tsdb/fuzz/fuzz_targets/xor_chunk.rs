#![no_main]
//! Any bytes as an XOR chunk: decoding ends with samples or an error, never a panic; what decodes must
//! re-encode to the same samples.
use libfuzzer_sys::fuzz_target;
use tsdb::chunkenc::{XorAppender, XorIter};

fuzz_target!(|data: &[u8]| {
    let Ok(samples) = XorIter::collect_all(data) else { return };
    if samples.windows(2).any(|w| w[1].0 <= w[0].0) {
        return; // the appender requires increasing timestamps
    }
    let mut a = XorAppender::new();
    for &(t, v) in &samples {
        a.append(t, v);
    }
    let again = XorIter::collect_all(a.bytes()).expect("our own chunk decodes");
    assert_eq!(samples.len(), again.len());
    for (x, y) in samples.iter().zip(&again) {
        assert_eq!((x.0, x.1.to_bits()), (y.0, y.1.to_bits()));
    }
});
