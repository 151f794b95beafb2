#![no_main]
//! Any bytes as a WAL segment: framing, snappy and record decoding must not panic.
use libfuzzer_sys::fuzz_target;
use tsdb::wal;

fuzz_target!(|data: &[u8]| {
    let _ = wal::read_segment(data, 0, &mut |rec| {
        let _ = wal::decode(rec);
        Ok(())
    });
    let _ = wal::decode(data);
});
