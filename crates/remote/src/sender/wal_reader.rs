//! Tails ignis's WAL directory (Prometheus's `tsdb/wlog/watcher.go`, reshaped): reads segments in order from
//! a (segment, offset) position, follows the newest segment while it is written, moves on when a newer
//! segment appears, and notices checkpoints.
//!
//! Segment files are opened as soon as they are listed and kept open until read to the end. The TSDB deletes
//! segments when it checkpoints; an open descriptor keeps a deleted file readable, so a sender that lags
//! (receiver outage) still reads every record of every segment it has seen listed. The price is disk space held
//! by deleted segments until the sender catches up — the space Prometheus's agent mode keeps on purpose.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tsdb::wal;

/// Largest read per poll before records are handed out; grows for records bigger than this.
const READ_CHUNK: usize = 4 << 20;

/// The segment files a queue holds open: every listed segment from the reader's current one on. Shared so the
/// queue can keep listing (and so keep deleted segments readable) while the reader is blocked on full shards.
pub(crate) struct SegmentHolder {
    dir: PathBuf,
    st: Mutex<HolderState>,
}

struct HolderState {
    files: BTreeMap<u32, Arc<File>>,
    /// Segments below this are finished and not opened again.
    floor: u32,
    checkpoint: Option<u32>,
}

impl SegmentHolder {
    pub(crate) fn new(dir: &Path, floor: u32) -> Arc<Self> {
        Arc::new(SegmentHolder {
            dir: dir.to_path_buf(),
            st: Mutex::new(HolderState { files: BTreeMap::new(), floor, checkpoint: None }),
        })
    }

    /// Lists the directory, opens segments at or above the floor that are not open yet, and notes the newest
    /// checkpoint.
    pub(crate) fn refresh(&self) -> io::Result<()> {
        let segs = wal::list_segments(&self.dir)?;
        let cp = wal::last_checkpoint(&self.dir)?.map(|(n, _)| n);
        let mut st = self.st.lock();
        for (n, path) in segs {
            if n < st.floor || st.files.contains_key(&n) {
                continue;
            }
            match File::open(&path) {
                Ok(f) => {
                    st.files.insert(n, Arc::new(f));
                }
                // Deleted between listing and opening (a checkpoint ran): nothing to hold on to.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        st.checkpoint = cp.max(st.checkpoint);
        Ok(())
    }

    fn get(&self, n: u32) -> Option<Arc<File>> {
        self.st.lock().files.get(&n).cloned()
    }

    fn next_after(&self, n: u32) -> Option<u32> {
        self.st.lock().files.range(n + 1..).next().map(|(k, _)| *k)
    }

    /// Closes segments below `n`.
    fn release_below(&self, n: u32) {
        let mut st = self.st.lock();
        st.floor = st.floor.max(n);
        st.files = st.files.split_off(&n);
    }

    pub(crate) fn checkpoint(&self) -> Option<u32> {
        self.st.lock().checkpoint
    }
}

pub(crate) struct WalReader {
    holder: Arc<SegmentHolder>,
    pub(crate) seg: u32,
    pub(crate) off: u64,
    buf: Vec<u8>,
    chunk: usize,
}

/// Outcome of one poll.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Poll {
    /// Records were read or the position moved.
    Progress,
    /// Nothing new.
    Idle,
    /// The record callback asked to stop (shutdown); the position is at the end of the last record it accepted.
    Aborted,
}

/// Record callback: record bytes, segment, file offset just past the record.
pub(crate) type RecordFn<'a> = dyn FnMut(&[u8], u32, u64) -> Result<(), String> + 'a;

/// Returned by a record callback to stop reading.
pub(crate) const ABORT: &str = "\0abort";

impl WalReader {
    pub(crate) fn new(holder: Arc<SegmentHolder>, seg: u32, off: u64) -> Self {
        WalReader { holder, seg, off, buf: Vec::new(), chunk: READ_CHUNK }
    }

    pub(crate) fn checkpoint(&self) -> Option<u32> {
        self.holder.checkpoint()
    }

    /// Reads what is new and hands each complete record to `f` with its segment and end offset.
    pub(crate) fn poll(&mut self, f: &mut RecordFn<'_>) -> io::Result<Poll> {
        // Whether a newer segment exists must be known *before* reading: the writer finishes a segment before
        // it creates the next, so only then is a torn tail real damage rather than a write in progress.
        self.holder.refresh()?;
        let seg = self.seg;
        let newer = self.holder.next_after(seg).is_some();
        let Some(file) = self.holder.get(seg) else {
            if let Some(next) = self.holder.next_after(seg) {
                if self.off > 0 {
                    tracing::warn!(dir = %self.holder.dir.display(), missing = seg, next,
                        "WAL segment vanished before it was read to the end; the rest of it is not sent");
                }
                self.seg = next;
                self.off = 0;
                return Ok(Poll::Progress);
            }
            return Ok(Poll::Idle);
        };
        let len = file.metadata()?.len();
        if self.off > len {
            // Only a repair (torn-tail truncation at TSDB start) shrinks a segment; what was cut is gone.
            tracing::warn!(segment = seg, offset = self.off, len, "WAL segment shrank below the read position");
            self.off = len;
        }
        if self.off < len {
            let n = ((len - self.off) as usize).min(self.chunk);
            self.buf.resize(n, 0);
            file.read_exact_at(&mut self.buf, self.off)?;
            let mut aborted = false;
            let res = wal::read_segment_from(&self.buf, self.off, seg, &mut |rec, end| {
                let r = f(rec, seg, end);
                if matches!(&r, Err(e) if e == ABORT) {
                    aborted = true;
                }
                r
            });
            match res {
                Ok(()) => {
                    self.off += n as u64;
                    self.chunk = READ_CHUNK;
                    return Ok(Poll::Progress);
                }
                Err(c) => {
                    let moved = c.good_until > self.off;
                    self.off = c.good_until;
                    if aborted {
                        return Ok(Poll::Aborted);
                    }
                    if moved {
                        self.chunk = READ_CHUNK;
                        return Ok(Poll::Progress);
                    }
                    if (n as u64) < len - self.off {
                        // One record is larger than the read size: read more at once.
                        self.chunk = self.chunk.saturating_mul(2);
                        return Ok(Poll::Progress);
                    }
                    if !newer {
                        return Ok(Poll::Idle); // a record still being written
                    }
                    tracing::warn!(segment = seg, offset = self.off, reason = %c.reason, "corrupt WAL segment; skipping its rest");
                }
            }
        } else if !newer {
            return Ok(Poll::Idle);
        }
        // The segment is complete and read: move to the next one.
        if let Some(next) = self.holder.next_after(seg) {
            self.seg = next;
            self.off = 0;
            self.holder.release_below(next);
        }
        Ok(Poll::Progress)
    }
}

/// Reads every record of a finished directory of segments (a checkpoint) without modifying it.
pub(crate) fn read_dir_records(dir: &Path, f: &mut dyn FnMut(&[u8]) -> Result<(), String>) -> io::Result<()> {
    for (n, path) in wal::list_segments(dir)? {
        let bytes = std::fs::read(&path)?;
        if let Err(c) = wal::read_segment(&bytes, n, f) {
            tracing::warn!(dir = %dir.display(), segment = n, reason = %c.reason, "corrupt checkpoint segment; using its good part");
        }
    }
    Ok(())
}

/// End offset of the last complete record of a segment (where a reader starting "now" begins).
pub(crate) fn segment_end(path: &Path, n: u32) -> io::Result<u64> {
    let bytes = std::fs::read(path)?;
    Ok(match wal::read_segment_from(&bytes, 0, n, &mut |_, _| Ok(())) {
        Ok(()) => bytes.len() as u64,
        Err(c) => c.good_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsdb::wal::WalWriter;

    fn drain(r: &mut WalReader) -> Vec<(Vec<u8>, u32)> {
        let mut out = Vec::new();
        while r
            .poll(&mut |rec, seg, _| {
                out.push((rec.to_vec(), seg));
                Ok(())
            })
            .unwrap()
            != Poll::Idle
        {}
        out
    }

    /// Record `i`: pseudo-random bytes, so the payload stays its size whether or not the WAL writer compresses
    /// records (the tests must not depend on how well a record compresses).
    fn rec(i: u32) -> Vec<u8> {
        let len = 1000 + (i as usize * 37) % 5000;
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(i).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (0..len)
            .map(|_| {
                // xorshift64*: cheap and incompressible enough for snappy.
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn tails_across_rollovers() {
        let td = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(td.path(), 3, 64 * 1024).unwrap();
        let mut r = WalReader::new(SegmentHolder::new(td.path(), 3), 3, 0);
        assert!(drain(&mut r).is_empty());
        let mut got = Vec::new();
        for i in 0..100 {
            w.log(&rec(i)).unwrap();
            w.flush().unwrap();
            if i % 7 == 0 {
                got.extend(drain(&mut r));
            }
        }
        got.extend(drain(&mut r));
        assert_eq!(got.len(), 100);
        for (i, (b, _)) in got.iter().enumerate() {
            assert_eq!(b, &rec(i as u32), "record {i}");
        }
        // Count the segments the writer produced rather than predicting them from record sizes.
        let last = w.current_segment();
        assert!(last >= 3 + 2, "the test needs several rollovers, the writer made segments 3..={last}");
        assert_eq!(got.last().unwrap().1, last, "the reader followed into the newest segment");
        let mut seen: Vec<u32> = got.iter().map(|g| g.1).collect();
        seen.dedup();
        assert_eq!(seen, (3..=last).collect::<Vec<_>>(), "every segment was read, in order");
    }

    #[test]
    fn keeps_reading_listed_segments_after_deletion() {
        let td = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(td.path(), 0, 64 * 1024).unwrap();
        for i in 0..120 {
            w.log(&rec(i)).unwrap();
        }
        w.flush().unwrap();
        assert!(w.current_segment() >= 2, "the deletion below must remove segments the reader has not read");
        let mut r = WalReader::new(SegmentHolder::new(td.path(), 0), 0, 0);
        let mut count = 0;
        assert_eq!(r.poll(&mut |_, _, _| { count += 1; Ok(()) }).unwrap(), Poll::Progress);
        // A checkpoint deletes every segment before the current one.
        for (n, p) in wal::list_segments(td.path()).unwrap() {
            if n < w.current_segment() {
                std::fs::remove_file(p).unwrap();
            }
        }
        count += drain(&mut r).len();
        assert_eq!(count, 120);
    }

    #[test]
    fn abort_keeps_position_at_last_accepted_record() {
        let td = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(td.path(), 0, wal::DEFAULT_SEGMENT_SIZE).unwrap();
        for i in 0..5u8 {
            w.log(&[i + 1; 100]).unwrap();
        }
        w.flush().unwrap();
        let mut r = WalReader::new(SegmentHolder::new(td.path(), 0), 0, 0);
        let mut seen = 0;
        let mut ends = Vec::new();
        let p = r
            .poll(&mut |_, _, end| {
                seen += 1;
                if seen == 3 {
                    Err(ABORT.into())
                } else {
                    ends.push(end);
                    Ok(())
                }
            })
            .unwrap();
        assert_eq!(p, Poll::Aborted);
        // The end offset the reader itself reported for the second record, whatever its framed size.
        assert_eq!(ends.len(), 2);
        assert!(ends[0] > 0 && ends[1] > ends[0]);
        assert_eq!(r.off, ends[1]);
        let rest = drain(&mut r);
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[0].0, vec![3u8; 100]);
    }
}
