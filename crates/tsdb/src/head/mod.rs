//! The head: recent data in memory.
//!
//! Layout, chosen for a small footprint per series and for appends scaling over cores (where the bytes of
//! a series go is printed by examples/head_mem from [`Head::heap_breakdown`]):
//! * label strings are interned once in a refcounted [`Symbols`] table; a series' labels are symbol ids
//!   packed as varints (~3 bytes per label pair instead of 8) in its shard's [`LabelArena`];
//! * series live inline (64 bytes each, [`MemSeries`]) in [`SHARDS`] mutex-protected paged slabs indexed by
//!   `ref / SHARDS` (shard = `ref % SHARDS`; [`SeriesSlab`]); a second sharded table maps label hashes to
//!   refs for appends without a cached ref;
//! * each series has one open XOR chunk whose buffer is reused from chunk to chunk; closed chunks are written
//!   back to back into 16 KiB pages of a per-shard [`ChunkArena`] (shared with queries without copying; a
//!   page is freed when all its chunks are dropped), each behind a 10-byte header linking to the series'
//!   previous chunk, so the series keeps only the newest chunk's location and a count. Chunks hold at most
//!   120 samples and never straddle a multiple of the block range, so cutting a block takes whole chunks;
//! * postings: a value with one series is an 8-byte entry, larger lists are small sorted vectors that turn
//!   into roaring bitmaps when they grow ([`ValueMap`]).
//!
//! Read isolation (a query never sees part of a committed batch), as Prometheus's `isolation.go` but with
//! no per-series state: each commit gets an id from [`Isolation`] and publishes its (already WAL-logged)
//! batch there before applying it. A reader registers its low watermark (lowest commit still applying),
//! copies what it needs, then collects the batches of every commit at or above the watermark and hides
//! exactly those (series, timestamp) samples, through the same interval filter as tombstones. So a reader
//! sees precisely the commits below its watermark. A batch is kept only while some reader may need it; in
//! the common case (no query overlapping the commit) the appender gets its buffer back right away.
//!
//! Lock order (never acquire leftwards while holding rightwards): lookup shard < series shard < index <
//! symbols < WAL; the isolation mutex is never held with any other lock. Queries compute postings under index+symbols read locks, release them, then visit series
//! one shard lock at a time, so appends are never blocked for longer than one series copy.

use crate::chunkenc::{first_t, ChunkBytes, XorAppender, SAMPLES_PER_CHUNK};
use crate::metrics::Metrics;
use crate::postings::{postings_for_matchers, PostingsIndex, PostingsList};
use crate::query::{ChunkRef, ChunksIter};
use crate::wal::{encode_samples, encode_series, RefSample, WalWriter};
use hashbrown::{HashMap, HashTable};
use model::storage::{Appender, SampleIter};
use model::{AppendError, Labels, Matcher, SeriesRef, StorageError};
use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

mod querier;
pub use querier::HeadQuerier;

/// Number of series shards. A power of two well above the core count keeps contention negligible.
pub const SHARDS: usize = 64;

#[repr(align(128))]
struct Padded<T>(T);

/// Commit ids, published batches and read watermarks (see the module docs).
#[derive(Default)]
struct IsoState {
    /// Commits being applied.
    applying: BTreeSet<u64>,
    /// Watermarks of reads taking their snapshot, with counts.
    reads: BTreeMap<u64, u32>,
    /// Batches of commits that a registered read may still have to hide.
    batches: BTreeMap<u64, Arc<Vec<RefSample>>>,
    /// The last commit id handed out (ids start at 1).
    last_id: u64,
}

#[derive(Default)]
pub(crate) struct Isolation {
    state: Mutex<IsoState>,
}

impl IsoState {
    /// The lowest commit id still applying, or the next id to be handed out.
    fn low_watermark(&self) -> u64 {
        self.applying.first().copied().unwrap_or(self.last_id + 1)
    }

    /// Drops batches no registered or future read can need: future reads start at the current watermark.
    fn prune(&mut self) {
        let keep_from = self.reads.first_key_value().map_or(u64::MAX, |(&r, _)| r).min(self.low_watermark());
        while self.batches.first_key_value().is_some_and(|(&id, _)| id < keep_from) {
            self.batches.pop_first();
        }
    }
}

impl Isolation {
    /// Starts applying `batch`: returns its commit id.
    fn begin_commit(&self, batch: Arc<Vec<RefSample>>) -> u64 {
        let mut st = self.state.lock();
        st.last_id += 1;
        let id = st.last_id;
        st.applying.insert(id);
        st.batches.insert(id, batch);
        id
    }

    fn end_commit(&self, id: u64) {
        let mut st = self.state.lock();
        st.applying.remove(&id);
        st.prune();
    }

    /// Starts a read: commits with id below the returned watermark are visible, the rest hidden.
    fn begin_read(&self) -> u64 {
        let mut st = self.state.lock();
        let lwm = st.low_watermark();
        *st.reads.entry(lwm).or_default() += 1;
        lwm
    }

    /// Ends a read's snapshot: the batches it must hide (commits at or above its watermark so far).
    fn end_read(&self, lwm: u64) -> Vec<Arc<Vec<RefSample>>> {
        let mut st = self.state.lock();
        let hide = st.batches.range(lwm..).map(|(_, b)| b.clone()).collect();
        if let Some(n) = st.reads.get_mut(&lwm) {
            *n -= 1;
            if *n == 0 {
                st.reads.remove(&lwm);
            }
        }
        st.prune();
        hide
    }
}

/// A registered read; `finish` (or drop, on early return) unregisters it.
struct ReadGuard<'a> {
    iso: &'a Isolation,
    lwm: u64,
    done: bool,
}

impl ReadGuard<'_> {
    /// Per series ref, the timestamps this read must not see.
    fn finish(mut self) -> HashMap<u32, Vec<(i64, i64)>> {
        self.done = true;
        let mut out: HashMap<u32, Vec<(i64, i64)>> = HashMap::new();
        for b in self.iso.end_read(self.lwm) {
            for x in b.iter() {
                out.entry(x.r as u32).or_default().push((x.t, x.t));
            }
        }
        out
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.iso.end_read(self.lwm);
        }
    }
}

/// Refcounted string interner.
/// Refcounted string interner. Strings live back to back in one arena (8 bytes of span per string instead
/// of a 16-byte `Box<str>` plus its own allocation: ~40 bytes saved per distinct label value); released
/// strings leave garbage that is compacted away once it is half the arena.
#[derive(Default)]
pub(crate) struct Symbols {
    arena: Vec<u8>,
    /// (offset, length) in `arena` per id.
    spans: Vec<(u32, u32)>,
    refs: Vec<u32>,
    table: HashTable<u32>,
    free: Vec<u32>,
    /// Bytes of `arena` no live string uses.
    garbage: usize,
    hasher: hashbrown::DefaultHashBuilder,
}

/// The string of a span (free function so callers can borrow the arena and the table separately).
#[inline]
fn span_str(arena: &[u8], (off, len): (u32, u32)) -> &str {
    let b = &arena[off as usize..(off + len) as usize];
    debug_assert!(std::str::from_utf8(b).is_ok(), "BUG: symbol arena holds invalid UTF-8");
    // SAFETY: the arena is only ever extended with whole `&str`s (`Symbols::intern`) and compaction copies
    // whole spans, so every span is valid UTF-8. Validating on each read was ~10% of a head select.
    unsafe { std::str::from_utf8_unchecked(b) }
}

impl Symbols {
    #[inline]
    pub(crate) fn get(&self, id: u32) -> &str {
        span_str(&self.arena, self.spans[id as usize])
    }

    fn lookup(&self, s: &str) -> Option<u32> {
        let h = self.hasher.hash_one(s);
        self.table.find(h, |&id| self.get(id) == s).copied()
    }

    fn intern(&mut self, s: &str) -> u32 {
        let h = self.hasher.hash_one(s);
        if let Some(&id) = self.table.find(h, |&id| self.get(id) == s) {
            self.refs[id as usize] += 1;
            return id;
        }
        // Callers make room first ([`Symbols::make_room`]), so offsets fit in 32 bits.
        let span = (self.arena.len() as u32, s.len() as u32);
        self.arena.extend_from_slice(s.as_bytes());
        let id = match self.free.pop() {
            Some(id) => {
                self.spans[id as usize] = span;
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.spans.push(span);
                self.refs.push(1);
                (self.spans.len() - 1) as u32
            }
        };
        let Symbols { arena, spans, table, hasher, .. } = self;
        table.insert_unique(h, id, |&i| hasher.hash_one(span_str(arena, spans[i as usize])));
        id
    }

    fn release(&mut self, id: u32) {
        let r = &mut self.refs[id as usize];
        *r = r.saturating_sub(1);
        if *r == 0 {
            let h = self.hasher.hash_one(self.get(id));
            if let Ok(e) = self.table.find_entry(h, |&i| i == id) {
                e.remove();
            }
            self.garbage += self.spans[id as usize].1 as usize;
            self.spans[id as usize] = (0, 0);
            self.free.push(id);
            if self.garbage > 1 << 20 && self.garbage * 2 > self.arena.len() {
                self.compact();
            }
        }
    }

    /// Whether `n` more bytes fit in the arena's 32-bit offsets (compacting if that helps).
    fn make_room(&mut self, n: usize) -> bool {
        if self.arena.len() + n <= u32::MAX as usize {
            return true;
        }
        self.compact();
        self.arena.len() + n <= u32::MAX as usize
    }

    /// Rewrites the arena with live strings only (ids, and so every series' labels, stay the same).
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.arena.len() - self.garbage);
        for (i, span) in self.spans.iter_mut().enumerate() {
            if self.refs[i] == 0 {
                continue;
            }
            let (off, len) = *span;
            *span = (arena.len() as u32, len);
            arena.extend_from_slice(&self.arena[off as usize..(off + len) as usize]);
        }
        self.arena = arena;
        self.garbage = 0;
    }

    fn len(&self) -> usize {
        self.spans.len() - self.free.len()
    }

    fn heap_size(&self) -> usize {
        malloc_cost(self.arena.capacity())
            + malloc_cost(self.spans.capacity() * 8)
            + malloc_cost(self.refs.capacity() * 4)
            + malloc_cost(self.free.capacity() * 4)
            + table_cost(self.table.capacity(), 4)
    }
}

/// Postings of one label pair: one id inline (label values unique to a series, like `instance` on a
/// single-series target, are common and a vector for them cost ~40 bytes), a sorted vector while small, a
/// roaring bitmap when large. Lists are boxed so a `PList` is 16 bytes instead of 32: the map entry of a
/// unique label value (the common case per series) shrinks from 40 to 24 bytes.
enum PList {
    Empty,
    One(u32),
    Small(Box<Vec<u32>>),
    Big(Box<RoaringBitmap>),
}

const SMALL_MAX: usize = 48;

impl PList {
    fn insert(&mut self, id: u32) {
        match self {
            PList::Empty => *self = PList::One(id),
            PList::One(x) if *x == id => {}
            PList::One(x) => {
                let x = *x;
                *self = PList::Small(Box::new(if x < id { vec![x, id] } else { vec![id, x] }));
            }
            PList::Small(v) => {
                if let Err(i) = v.binary_search(&id) {
                    v.insert(i, id);
                }
                if v.len() > SMALL_MAX {
                    *self = PList::Big(Box::new(v.iter().copied().collect()));
                }
            }
            PList::Big(b) => {
                b.insert(id);
            }
        }
    }

    fn remove(&mut self, id: u32) {
        match self {
            PList::Empty => {}
            PList::One(x) => {
                if *x == id {
                    *self = PList::Empty;
                }
            }
            PList::Small(v) => {
                if let Ok(i) = v.binary_search(&id) {
                    v.remove(i);
                }
                if v.is_empty() {
                    *self = PList::Empty;
                }
            }
            PList::Big(b) => {
                b.remove(id);
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            PList::Empty => true,
            PList::One(_) => false,
            PList::Small(v) => v.is_empty(),
            PList::Big(b) => b.is_empty(),
        }
    }

    /// `out ∪= self`.
    fn union_into(&self, out: &mut RoaringBitmap) {
        match self {
            PList::Empty => {}
            PList::One(x) => {
                out.insert(*x);
            }
            PList::Small(v) => {
                // Sorted runs append without a search when they lie past the current maximum.
                if v.first().is_some_and(|&f| out.max().is_none_or(|m| m < f)) {
                    let _ = out.append(v.iter().copied());
                } else {
                    out.extend(v.iter().copied());
                }
            }
            PList::Big(b) => {
                if out.is_empty() {
                    out.clone_from(&**b);
                } else {
                    *out |= &**b;
                }
            }
        }
    }

    fn heap_size(&self) -> usize {
        match self {
            PList::Empty | PList::One(_) => 0,
            PList::Small(v) => malloc_cost(24) + malloc_cost(v.capacity() * 4),
            PList::Big(b) => malloc_cost(32) + b.serialized_size(),
        }
    }
}

/// A [`PList`] or the single series of a value held directly in a [`ValueMap`].
#[derive(Clone, Copy)]
enum PostingsRef<'a> {
    One(u32),
    List(&'a PList),
}

impl PostingsRef<'_> {
    /// Whether any member is in `set`.
    fn intersects(self, set: &RoaringBitmap) -> bool {
        match self {
            PostingsRef::One(x) | PostingsRef::List(&PList::One(x)) => set.contains(x),
            PostingsRef::List(PList::Empty) => false,
            PostingsRef::List(PList::Small(v)) => v.iter().any(|&x| set.contains(x)),
            PostingsRef::List(PList::Big(b)) => !b.is_disjoint(set),
        }
    }

    fn union_into(self, out: &mut RoaringBitmap) {
        match self {
            PostingsRef::One(x) => {
                out.insert(x);
            }
            PostingsRef::List(l) => l.union_into(out),
        }
    }
}

/// Postings of the values of one label name. A value with a single series (every value of a label unique
/// per series, like `instance` on single-series targets) is an 8-byte (value, series) entry of `ones`; a
/// value with more series has a [`PList`] in `many`. A `HashMap<u32, PList>` slot for every value cost 24
/// bytes plus control byte at 44–88% load: ~52 bytes per series for a unique label at 1M series, ~19 now
/// (examples/head_mem).
#[derive(Default)]
struct ValueMap {
    ones: HashTable<(u32, u32)>,
    many: HashMap<u32, PList>,
    /// Value ids in string order, built by the first label-values call after a value came or went (sorting
    /// was half of `/api/v1/label/<name>/values` for a label with thousands of values).
    sorted: std::sync::OnceLock<Box<[u32]>>,
}

impl ValueMap {
    fn insert(&mut self, v: u32, id: u32) {
        if let Some(l) = self.many.get_mut(&v) {
            l.insert(id);
            return;
        }
        match self.ones.find_entry(lookup_hash(v), |e| e.0 == v) {
            Ok(e) => {
                let x = e.get().1;
                if x != id {
                    e.remove();
                    let mut l = PList::One(x);
                    l.insert(id);
                    self.many.insert(v, l);
                }
            }
            Err(_) => {
                self.ones.insert_unique(lookup_hash(v), (v, id), |e| lookup_hash(e.0));
                self.sorted.take();
            }
        }
    }

    fn remove(&mut self, v: u32, id: u32) {
        if let Ok(e) = self.ones.find_entry(lookup_hash(v), |e| e.0 == v) {
            if e.get().1 == id {
                e.remove();
                self.sorted.take();
            }
            return;
        }
        if let Some(l) = self.many.get_mut(&v) {
            l.remove(id);
            if l.is_empty() {
                self.many.remove(&v);
                self.sorted.take();
            }
        }
    }

    /// Value ids sorted by their strings (cached until a value is added or removed).
    fn sorted_ids(&self, syms: &Symbols) -> &[u32] {
        self.sorted.get_or_init(|| {
            let mut v: Vec<u32> = self.keys().copied().collect();
            v.sort_unstable_by(|a, b| syms.get(*a).cmp(syms.get(*b)));
            v.into_boxed_slice()
        })
    }

    fn is_empty(&self) -> bool {
        self.ones.is_empty() && self.many.is_empty()
    }

    fn get(&self, v: &u32) -> Option<PostingsRef<'_>> {
        match self.ones.find(lookup_hash(*v), |e| e.0 == *v) {
            Some(&(_, id)) => Some(PostingsRef::One(id)),
            None => self.many.get(v).map(PostingsRef::List),
        }
    }

    /// Value ids (in no particular order).
    fn keys(&self) -> impl Iterator<Item = &u32> + '_ {
        self.ones.iter().map(|e| &e.0).chain(self.many.keys())
    }

    fn iter(&self) -> impl Iterator<Item = (u32, PostingsRef<'_>)> + '_ {
        self.ones.iter().map(|&(v, id)| (v, PostingsRef::One(id))).chain(self.many.iter().map(|(&v, l)| (v, PostingsRef::List(l))))
    }

    fn len(&self) -> usize {
        self.ones.len() + self.many.len()
    }

    fn heap_size(&self) -> (usize, usize) {
        let maps = table_cost(self.ones.capacity(), 8)
            + table_cost(self.many.capacity(), std::mem::size_of::<(u32, PList)>())
            + self.sorted.get().map_or(0, |s| malloc_cost(s.len() * 4));
        (maps, self.many.values().map(PList::heap_size).sum())
    }
}

/// Inverted index: label name symbol → value symbol → postings.
#[derive(Default)]
struct MemIndex {
    postings: HashMap<u32, ValueMap>,
    /// Every series ref (kept here, not computed from the shards, so postings never need a shard lock).
    all: RoaringBitmap,
}

impl MemIndex {
    fn add(&mut self, labels: &[u32], id: u32) {
        self.all.insert(id);
        for p in labels.chunks_exact(2) {
            self.postings.entry(p[0]).or_default().insert(p[1], id);
        }
    }

    fn remove(&mut self, labels: &[u32], id: u32) {
        self.all.remove(id);
        for p in labels.chunks_exact(2) {
            if let Some(vals) = self.postings.get_mut(&p[0]) {
                vals.remove(p[1], id);
                if vals.is_empty() {
                    self.postings.remove(&p[0]);
                }
            }
        }
    }
}

/// Bytes per chunk-arena page. Only the page being filled is partly empty, so 64 shards waste at most
/// ~1 MiB; a smaller page would cost more per-page bookkeeping, a larger one more slack at 100k series.
const PAGE_BITS: u32 = 14;
const ARENA_PAGE: usize = 1 << PAGE_BITS;
/// Pages per shard addressable by a 32-bit chunk location (4 GiB of closed chunks per shard).
const MAX_PAGES: usize = 1 << (32 - PAGE_BITS);

/// Header of a closed chunk in the arena: `len <u16 LE> maxt-mint <u32 LE> prev <u32 LE>`, then the chunk.
/// `prev` is the location of the series' previous closed chunk, so a series keeps only its newest chunk's
/// location and a count: 10 bytes per chunk instead of a 24-byte meta in a per-series boxed slice (~50
/// bytes per series less with 3 closed chunks, and one fewer allocation per series; measured with
/// examples/head_mem). The chunk's mint is its first timestamp, read from the chunk itself.
const REC_HDR: usize = 10;

/// One closed chunk as stored in the arena.
#[derive(Clone, Copy)]
struct ChunkRec {
    mint: i64,
    maxt: i64,
    prev: u32,
}

struct ArenaPage {
    data: Arc<[u8]>,
    /// Chunks stored in the page and not yet dropped; the page is freed when this reaches 0.
    live: u32,
}

/// The closed chunks of one series shard, back to back in shared pages, each with a [`REC_HDR`] header.
/// One `Arc<[u8]>` per series (grown by copying at every cut) cost its allocation header, malloc rounding
/// and freed-block fragmentation per series (measured with examples/head_mem).
///
/// A chunk's location is `page << PAGE_BITS | offset`. Readers clone a full page's `Arc` (no copy). The page
/// being filled is never shared: readers copy chunks out of it, so the arena can still write into it
/// through `Arc::get_mut`.
#[derive(Default)]
struct ChunkArena {
    pages: Vec<Option<ArenaPage>>,
    free_ids: Vec<u32>,
    /// Page being filled and bytes used in it.
    cur: Option<(u32, usize)>,
}

impl ChunkArena {
    fn new_page(&mut self) -> Option<u32> {
        let page = ArenaPage { data: std::iter::repeat_n(0u8, ARENA_PAGE).collect(), live: 0 };
        match self.free_ids.pop() {
            Some(id) => {
                self.pages[id as usize] = Some(page);
                Some(id)
            }
            None if self.pages.len() < MAX_PAGES => {
                self.pages.push(Some(page));
                Some((self.pages.len() - 1) as u32)
            }
            None => None,
        }
    }

    /// Stores a closed chunk of `bytes` (at most 120 samples, so a few KiB at worst) spanning `[mint, maxt]`
    /// after the series' previous chunk at `prev`; returns its location, or None if the arena is full.
    fn add(&mut self, bytes: &[u8], mint: i64, maxt: i64, prev: u32) -> Option<u32> {
        let need = REC_HDR + bytes.len();
        let (Ok(len), Ok(span)) = (u16::try_from(bytes.len()), u32::try_from(maxt - mint)) else {
            unreachable!("BUG: head chunk of {} bytes spanning {} ms", bytes.len(), maxt - mint)
        };
        if need > ARENA_PAGE {
            unreachable!("BUG: head chunk of {} bytes exceeds an arena page", bytes.len());
        }
        let (pid, used) = match self.cur {
            Some((p, u)) if u + need <= ARENA_PAGE => (p, u),
            old => {
                // The old page becomes shareable; free it right away if all its chunks are gone.
                self.cur = None;
                if let Some((p, _)) = old {
                    self.free_if_dead(p);
                }
                (self.new_page()?, 0)
            }
        };
        let Some(page) = self.pages[pid as usize].as_mut() else { unreachable!("BUG: current arena page missing") };
        let Some(data) = Arc::get_mut(&mut page.data) else {
            unreachable!("BUG: the arena page being filled is shared")
        };
        let rec = &mut data[used..used + need];
        rec[0..2].copy_from_slice(&len.to_le_bytes());
        rec[2..6].copy_from_slice(&span.to_le_bytes());
        rec[6..10].copy_from_slice(&prev.to_le_bytes());
        rec[REC_HDR..].copy_from_slice(bytes);
        page.live += 1;
        self.cur = Some((pid, used + need));
        Some(pid << PAGE_BITS | used as u32)
    }

    fn free_if_dead(&mut self, pid: u32) {
        if self.cur.is_some_and(|(p, _)| p == pid) {
            return;
        }
        if self.pages[pid as usize].as_ref().is_some_and(|p| p.live == 0) {
            self.pages[pid as usize] = None;
            self.free_ids.push(pid);
        }
    }

    fn release(&mut self, loc: u32) {
        let pid = loc >> PAGE_BITS;
        if let Some(p) = self.pages[pid as usize].as_mut() {
            p.live = p.live.saturating_sub(1);
        }
        self.free_if_dead(pid);
    }

    /// The page of `loc`, the chunk's byte range in it, and its header.
    fn locate(&self, loc: u32) -> (&Arc<[u8]>, std::ops::Range<usize>, ChunkRec) {
        let (pid, off) = ((loc >> PAGE_BITS) as usize, (loc as usize) & (ARENA_PAGE - 1));
        let Some(p) = &self.pages[pid] else { unreachable!("BUG: chunk in a freed arena page") };
        let h = &p.data[off..off + REC_HDR];
        let len = u16::from_le_bytes([h[0], h[1]]) as usize;
        let span = u32::from_le_bytes([h[2], h[3], h[4], h[5]]);
        let prev = u32::from_le_bytes([h[6], h[7], h[8], h[9]]);
        let range = off + REC_HDR..off + REC_HDR + len;
        let Some(mint) = first_t(&p.data[range.clone()]) else { unreachable!("BUG: empty chunk in the arena") };
        (&p.data, range, ChunkRec { mint, maxt: mint + i64::from(span), prev })
    }

    fn rec(&self, loc: u32) -> ChunkRec {
        self.locate(loc).2
    }

    fn slice(&self, loc: u32) -> &[u8] {
        let (data, range, _) = self.locate(loc);
        &data[range]
    }

    /// The chunk's bytes for a reader: shared if its page is full, copied if it is still being filled.
    fn chunk_bytes(&self, loc: u32) -> ChunkBytes {
        let (data, range, _) = self.locate(loc);
        if self.cur.is_some_and(|(p, _)| p == loc >> PAGE_BITS) {
            return ChunkBytes::Heap(Arc::from(&data[range]));
        }
        ChunkBytes::HeapRange(data.clone(), range.start, range.end)
    }

    fn heap_size(&self) -> usize {
        self.pages.iter().flatten().map(|p| malloc_cost(p.data.len() + 16)).sum::<usize>()
            + malloc_cost(self.pages.capacity() * std::mem::size_of::<Option<ArenaPage>>())
    }
}

/// A series' labels as symbol ids packed into bytes: `uvarint(name id) uvarint(value id)` per pair, sorted by
/// name. Most ids are small (label names and common values are interned first), so 10 pairs take ~25–35
/// bytes instead of 80 as `u32`s (measured ~60 bytes/series less with examples/head_mem).
fn pack_label_ids(ids: impl Iterator<Item = (u32, u32)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for (n, v) in ids {
        push_uvarint32(&mut out, n);
        push_uvarint32(&mut out, v);
    }
    out
}

/// The packed labels of a shard's series, back to back as `uvarint(len) bytes`; a series keeps a `u32`
/// offset. A `Box<[u8]>` per series cost a 16-byte pointer plus a malloc chunk of at least 32 bytes for
/// ~20–30 bytes of ids (examples/head_mem). Removed series leave garbage, compacted (rewriting the offsets
/// of the shard's series) once it is half the arena.
#[derive(Default)]
struct LabelArena {
    data: Vec<u8>,
    garbage: usize,
}

impl LabelArena {
    /// Stores packed labels: their offset, or None past 4 GiB per shard.
    fn add(&mut self, packed: &[u8]) -> Option<u32> {
        let off = u32::try_from(self.data.len()).ok()?;
        if self.data.len() + packed.len() + 5 > u32::MAX as usize {
            return None;
        }
        push_uvarint32(&mut self.data, packed.len() as u32);
        self.data.extend_from_slice(packed);
        Some(off)
    }

    /// The packed labels at `off` (only offsets returned by [`LabelArena::add`] are ever passed).
    #[inline]
    fn get(&self, off: u32) -> &[u8] {
        let mut ids = LabelIds(&self.data[off as usize..]);
        let len = ids.uvarint() as usize;
        &ids.0[..len]
    }

    fn release(&mut self, off: u32) {
        let rest = &self.data[off as usize..];
        let mut ids = LabelIds(rest);
        let len = ids.uvarint() as usize;
        self.garbage += rest.len() - ids.0.len() + len;
    }

    fn wants_compaction(&self) -> bool {
        self.garbage > 64 * 1024 && self.garbage * 2 > self.data.len()
    }
}

#[inline]
fn push_uvarint32(out: &mut Vec<u8>, mut x: u32) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// The (name id, value id) pairs of packed labels. The bytes are only ever written by [`pack_label_ids`].
#[derive(Clone)]
struct LabelIds<'a>(&'a [u8]);

impl Iterator for LabelIds<'_> {
    type Item = (u32, u32);

    #[inline]
    fn next(&mut self) -> Option<(u32, u32)> {
        if self.0.is_empty() {
            return None;
        }
        let n = self.uvarint();
        let v = self.uvarint();
        Some((n, v))
    }
}

impl LabelIds<'_> {
    #[inline]
    fn uvarint(&mut self) -> u32 {
        let mut x = 0u32;
        let mut shift = 0;
        while let Some((&b, rest)) = self.0.split_first() {
            self.0 = rest;
            x |= u32::from(b & 0x7f) << shift;
            if b < 0x80 {
                return x;
            }
            shift += 7;
        }
        unreachable!("BUG: packed label ids end inside a varint")
    }
}

/// One series. 64 bytes, kept inline in its shard's [`SeriesSlab`]: the open chunk's appender (48 bytes),
/// and the location of the newest closed chunk in the shard's [`ChunkArena`], whose headers chain to the
/// older ones.
struct MemSeries {
    /// The open chunk; no samples (and no allocation) when the series has none.
    app: XorAppender,
    /// Offset of the packed (name, value) symbol ids in the shard's [`LabelArena`].
    labels: u32,
    /// Location of the newest closed chunk (meaningless when `num_closed` is 0).
    last_closed: u32,
    /// Closed chunks in the chain from `last_closed` that belong to the series (older links are stale).
    num_closed: u32,
    /// Samples staged by appenders but not yet committed or rolled back; GC keeps such series.
    pending: u32,
}

/// What appending one sample to a series did.
enum Added {
    /// The sample was stored; `true` if it started a new chunk.
    Stored(bool),
    /// Same timestamp and value as the last sample: accepted, nothing stored.
    Noop,
}

/// Closed chunks of a series, newest first.
struct ClosedIter<'a> {
    arena: &'a ChunkArena,
    loc: u32,
    left: u32,
}

impl Iterator for ClosedIter<'_> {
    type Item = (u32, ChunkRec);

    fn next(&mut self) -> Option<(u32, ChunkRec)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let loc = self.loc;
        let rec = self.arena.rec(loc);
        self.loc = rec.prev;
        Some((loc, rec))
    }
}

impl MemSeries {
    fn new(labels: u32) -> MemSeries {
        MemSeries { app: XorAppender::empty(), labels, last_closed: 0, num_closed: 0, pending: 0 }
    }

    #[inline]
    fn last(&self) -> Option<(i64, u64)> {
        self.app.last()
    }

    fn check(last: Option<(i64, u64)>, t: i64, v: f64) -> Result<bool, AppendError> {
        if let Some((lt, lv)) = last {
            if t < lt {
                return Err(AppendError::OutOfOrder);
            }
            if t == lt {
                return if lv == v.to_bits() { Ok(false) } else { Err(AppendError::DuplicateSample) };
            }
        }
        Ok(true)
    }

    fn closed<'a>(&self, arena: &'a ChunkArena) -> ClosedIter<'a> {
        ClosedIter { arena, loc: self.last_closed, left: self.num_closed }
    }

    fn append(&mut self, t: i64, v: f64, chunk_range: i64, arena: &mut ChunkArena) -> Result<Added, AppendError> {
        if !Self::check(self.last(), t, v)? {
            return Ok(Added::Noop);
        }
        // The open chunk never straddles a multiple of the range, so its range ends where its last sample's
        // does: no need to read its first timestamp (a cache miss on the buffer) on every append.
        let cut = match self.app.last() {
            None => true,
            Some((lt, _)) => {
                self.app.num_samples() >= SAMPLES_PER_CHUNK
                    || t >= range_end(lt, chunk_range)
                    // Chunk spans stay below 2^32 ms so the arena header can hold them.
                    || (chunk_range > i64::from(u32::MAX)
                        && self.app.first_t().is_some_and(|m| t.saturating_sub(m) > i64::from(u32::MAX)))
            }
        };
        if cut {
            if let (Some(mint), Some((maxt, _))) = (self.app.first_t(), self.app.last()) {
                let Some(loc) = arena.add(self.app.bytes(), mint, maxt, self.last_closed) else {
                    return Err(AppendError::Storage("head chunk arena full (4 GiB per shard)".into()));
                };
                self.last_closed = loc;
                self.num_closed += 1;
            }
            // The buffer is reused for the next chunk: it is about the size that chunk will need.
            self.app.reset();
        }
        self.app.append(t, v);
        Ok(Added::Stored(cut))
    }

    fn num_chunks(&self) -> usize {
        self.num_closed as usize + usize::from(self.app.num_samples() > 0)
    }

    /// The open chunk's (mint, maxt), if it has samples.
    #[inline]
    fn open_span(&self) -> Option<(i64, i64)> {
        Some((self.app.first_t()?, self.app.last()?.0))
    }

    /// Chunks overlapping `[mint, maxt]` in time order, the open one copied.
    fn chunks_in(&self, mint: i64, maxt: i64, arena: &ChunkArena, out: &mut Vec<ChunkRef>) {
        self.closed_chunks_in(mint, maxt, arena, out);
        if let Some((om, lt, bytes)) = self.open_chunk_in(mint, maxt) {
            out.push(ChunkRef { mint: om, maxt: lt, data: ChunkBytes::Heap(Arc::from(bytes)) });
        }
    }

    /// The open chunk's span and bytes if it overlaps `[mint, maxt]`.
    fn open_chunk_in(&self, mint: i64, maxt: i64) -> Option<(i64, i64, &[u8])> {
        self.open_span().filter(|&(om, lt)| lt >= mint && om <= maxt).map(|(om, lt)| (om, lt, self.app.bytes()))
    }

    /// Closed chunks overlapping `[mint, maxt]`, oldest first.
    fn closed_chunks_in(&self, mint: i64, maxt: i64, arena: &ChunkArena, out: &mut Vec<ChunkRef>) {
        let start = out.len();
        for (loc, c) in self.closed(arena) {
            if c.maxt < mint {
                break;
            }
            if c.mint <= maxt {
                out.push(ChunkRef { mint: c.mint, maxt: c.maxt, data: arena.chunk_bytes(loc) });
            }
        }
        out[start..].reverse();
    }

    fn has_data_in(&self, mint: i64, maxt: i64, arena: &ChunkArena) -> bool {
        // The last sample, kept in the series, answers most calls (ranges ending at or after it) without
        // reading the open chunk's first time from its bytes: that read was a cache miss per series, ~10% of a
        // 4,000-series `/api/v1/series` call at 1M head series.
        if self.app.last().is_some_and(|(lt, _)| (mint..=maxt).contains(&lt)) {
            return true;
        }
        self.open_span().is_some_and(|(om, lt)| lt >= mint && om <= maxt)
            || self.closed(arena).take_while(|(_, c)| c.maxt >= mint).any(|(_, c)| c.mint <= maxt)
    }

    /// Removes closed chunks ending before `mint`: (chunks, samples) removed.
    fn drop_closed_before(&mut self, arena: &mut ChunkArena, mint: i64) -> (u64, u64) {
        let keep = self.closed(arena).take_while(|(_, c)| c.maxt >= mint).count() as u32;
        if keep == self.num_closed {
            return (0, 0);
        }
        let mut samples = 0u64;
        let old: Vec<u32> = self.closed(arena).skip(keep as usize).map(|(loc, _)| loc).collect();
        for loc in old {
            let b = arena.slice(loc);
            samples += u64::from(u16::from_be_bytes([b[0], b[1]]));
            arena.release(loc);
        }
        let dropped = self.num_closed - keep;
        self.num_closed = keep;
        (u64::from(dropped), samples)
    }

    /// The first sample's time, if any.
    fn min_time(&self, arena: &ChunkArena) -> Option<i64> {
        self.closed(arena).last().map(|(_, c)| c.mint).or_else(|| self.app.first_t())
    }
}

/// Keys per [`SeriesSlab`] page.
const SLAB_PAGE: u32 = 256;

/// Up to [`SLAB_PAGE`] consecutive keys: an occupancy bitmap and the present series in key order.
struct SlabPage {
    occ: [u64; (SLAB_PAGE / 64) as usize],
    items: Vec<MemSeries>,
}

impl SlabPage {
    /// Index in `items` of slot `b`, if occupied.
    #[inline]
    fn index(&self, b: u32) -> Result<usize, usize> {
        let (w, bit) = ((b / 64) as usize, b % 64);
        let below: u32 = self.occ[..w].iter().map(|x| x.count_ones()).sum::<u32>()
            + (self.occ[w] & ((1u64 << bit) - 1)).count_ones();
        if self.occ[w] >> bit & 1 == 1 {
            Ok(below as usize)
        } else {
            Err(below as usize)
        }
    }

    /// Keys (slot numbers) of the present series, ascending.
    fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.occ.iter().enumerate().flat_map(|(w, &x)| {
            let mut x = x;
            std::iter::from_fn(move || {
                if x == 0 {
                    return None;
                }
                let b = x.trailing_zeros();
                x &= x - 1;
                Some(w as u32 * 64 + b)
            })
        })
    }
}

/// The series of one shard, by key (`ref / SHARDS`), stored inline in pages of [`SLAB_PAGE`] keys. Keys are
/// handed out in increasing order and never reused, so a page fills up, then empties as its series are
/// truncated away, and is freed. A page holds only its present series (rank by popcount over the bitmap),
/// so a page whose series mostly died costs what is left, not 256 slots.
///
/// Replaces `HashMap<u32, Box<MemSeries>>`: the table (16-byte slots at 44–88% load, ~34 bytes per series)
/// and the box's malloc header and rounding (~8 bytes) are gone, and a lookup is an index plus a popcount
/// instead of a hash probe and a pointer chase (measured with examples/head_mem).
#[derive(Default)]
struct SeriesSlab {
    /// Page number of `pages[0]`; leading empty pages are dropped.
    first: u32,
    pages: Vec<Option<Box<SlabPage>>>,
    len: usize,
}

impl SeriesSlab {
    #[inline]
    fn page(&self, k: u32) -> Option<&SlabPage> {
        let p = (k / SLAB_PAGE).checked_sub(self.first)?;
        self.pages.get(p as usize)?.as_deref()
    }

    #[inline]
    fn get(&self, k: &u32) -> Option<&MemSeries> {
        let page = self.page(*k)?;
        page.index(k % SLAB_PAGE).ok().map(|i| &page.items[i])
    }

    #[inline]
    fn get_mut(&mut self, k: &u32) -> Option<&mut MemSeries> {
        let p = (k / SLAB_PAGE).checked_sub(self.first)?;
        let page = self.pages.get_mut(p as usize)?.as_deref_mut()?;
        page.index(k % SLAB_PAGE).ok().map(|i| &mut page.items[i])
    }

    fn contains_key(&self, k: &u32) -> bool {
        self.get(k).is_some()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    /// Adds a series under a key that has none.
    fn insert(&mut self, k: u32, s: MemSeries) {
        let pn = k / SLAB_PAGE;
        if self.pages.is_empty() {
            self.first = pn;
        } else if pn < self.first {
            // Only WAL replay creates keys out of order.
            let add = (self.first - pn) as usize;
            self.pages.splice(0..0, std::iter::repeat_with(|| None).take(add));
            self.first = pn;
        }
        let p = (pn - self.first) as usize;
        if p >= self.pages.len() {
            self.pages.resize_with(p + 1, || None);
        }
        let page = self.pages[p].get_or_insert_with(|| Box::new(SlabPage { occ: [0; 4], items: Vec::new() }));
        let b = k % SLAB_PAGE;
        match page.index(b) {
            Ok(i) => page.items[i] = s,
            Err(i) => {
                page.items.insert(i, s);
                page.occ[(b / 64) as usize] |= 1 << (b % 64);
                self.len += 1;
            }
        }
    }

    fn values(&self) -> impl Iterator<Item = &MemSeries> + '_ {
        self.pages.iter().flatten().flat_map(|p| p.items.iter())
    }

    fn for_each_mut(&mut self, mut f: impl FnMut(&mut MemSeries)) {
        for p in self.pages.iter_mut().flatten() {
            p.items.iter_mut().for_each(&mut f);
        }
    }

    /// Keeps the series for which `f(key, series)` is true; frees emptied pages and trims slack.
    fn retain(&mut self, mut f: impl FnMut(u32, &mut MemSeries) -> bool) {
        let mut removed = 0;
        for (p, slot) in self.pages.iter_mut().enumerate() {
            let Some(page) = slot else { continue };
            let base = (self.first + p as u32) * SLAB_PAGE;
            let keys: Vec<u32> = page.slots().collect();
            let SlabPage { occ, items } = &mut **page;
            let mut i = 0;
            items.retain_mut(|s| {
                let b = keys[i];
                i += 1;
                let keep = f(base + b, s);
                if !keep {
                    occ[(b / 64) as usize] &= !(1 << (b % 64));
                    removed += 1;
                }
                keep
            });
            if items.is_empty() {
                *slot = None;
            } else if items.capacity() > items.len() + items.len() / 4 {
                items.shrink_to_fit();
            }
        }
        self.len -= removed;
        let lead = self.pages.iter().take_while(|p| p.is_none()).count();
        self.pages.drain(..lead);
        self.first += lead as u32;
        while self.pages.last().is_some_and(|p| p.is_none()) {
            self.pages.pop();
        }
        if self.pages.is_empty() {
            self.first = 0;
        }
        self.pages.shrink_to_fit();
    }

    /// Heap bytes (pages and their series), as malloc takes them.
    fn heap_size(&self) -> usize {
        malloc_cost(self.pages.capacity() * 8)
            + self
                .pages
                .iter()
                .flatten()
                .map(|p| {
                    malloc_cost(std::mem::size_of::<SlabPage>())
                        + malloc_cost(p.items.capacity() * std::mem::size_of::<MemSeries>())
                })
                .sum::<usize>()
    }
}

/// Whether any sample of `chunks` in `[mint, maxt]` survives `hidden` (decodes up to the first one that
/// does; samples are discrete, so time ranges alone cannot tell).
fn any_visible(chunks: &[ChunkRef], mint: i64, maxt: i64, hidden: &[(i64, i64)]) -> bool {
    let mut it = ChunksIter::new(chunks.to_vec(), mint, maxt, Arc::from(hidden), Arc::from("head"));
    it.next().is_some()
}

/// End (exclusive) of the block range containing `t`.
pub fn range_end(t: i64, range: i64) -> i64 {
    (t.div_euclid(range) + 1).saturating_mul(range)
}

#[derive(Default)]
struct SeriesShard {
    /// Keyed by `ref / SHARDS`.
    series: SeriesSlab,
    /// Packed labels of `series`.
    labels: LabelArena,
    /// Bytes of the closed chunks of this shard's series.
    arena: ChunkArena,
}

impl SeriesShard {
    /// The packed labels of `s` (a series of this shard).
    #[inline]
    fn labels_of(&self, s: &MemSeries) -> &[u8] {
        self.labels.get(s.labels)
    }

    /// Rewrites the label arena without garbage, updating every series' offset.
    fn compact_labels(&mut self) {
        let SeriesShard { series, labels, .. } = self;
        let mut fresh = LabelArena { data: Vec::with_capacity(labels.data.len() - labels.garbage), garbage: 0 };
        series.for_each_mut(|s| {
            // The compacted arena is smaller than the old one, so offsets still fit.
            if let Some(off) = fresh.add(labels.get(s.labels)) {
                s.labels = off;
            }
        });
        *labels = fresh;
    }
}

/// Label hash → refs (refs may live in any series shard). Entries are (folded hash, ref): 8 bytes instead
/// of 16 per series; the table is always hashed with [`lookup_hash`] of the folded value so rehashing
/// places entries where lookups look for them.
#[derive(Default)]
struct LookupShard {
    table: HashTable<(u32, u32)>,
}

#[inline]
fn fold_hash(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

/// Spreads a folded hash over 64 bits (hashbrown takes its control bits from the top).
#[inline]
fn lookup_hash(folded: u32) -> u64 {
    (folded as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Bytes glibc malloc takes for an `n`-byte request (0 for none): the request plus an 8-byte header in
/// 16-byte granules, at least 32.
pub(crate) fn malloc_cost(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).div_ceil(16).max(2) * 16
    }
}

/// Bytes of a hashbrown table with room for `capacity` entries of `slot` bytes (buckets are a power of two
/// at most 7/8 full; one control byte per bucket plus a 16-byte group).
pub(crate) fn table_cost(capacity: usize, slot: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 { (capacity + 1).next_power_of_two() } else { (capacity * 8 / 7).next_power_of_two() };
    malloc_cost(buckets * (slot + 1) + 16)
}

/// Summary of the head for status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadStats {
    pub num_series: u64,
    pub num_samples: u64,
    pub num_chunks: u64,
    /// i64::MAX / i64::MIN when the head is empty.
    pub min_time: i64,
    pub max_time: i64,
}

pub struct Head {
    series: Box<[Padded<Mutex<SeriesShard>>]>,
    lookup: Box<[Padded<Mutex<LookupShard>>]>,
    symbols: RwLock<Symbols>,
    index: RwLock<MemIndex>,
    wal: Option<Mutex<WalWriter>>,
    /// Next key per series shard; a series' ref is `key * SHARDS + shard`.
    next_key: Box<[AtomicU32]>,
    /// Round-robin home shards for new appenders.
    next_home: AtomicU32,
    min_t: AtomicI64,
    max_t: AtomicI64,
    /// Samples older than this are refused (OutOfBounds): they belong to a block already written.
    min_valid_t: AtomicI64,
    num_samples: AtomicU64,
    chunk_range: i64,
    metrics: Arc<Metrics>,
    iso: Isolation,
}

#[inline]
fn shard_of(r: u32) -> usize {
    r as usize % SHARDS
}

#[inline]
fn key_of(r: u32) -> u32 {
    r / SHARDS as u32
}

fn validate(labels: &Labels) -> Result<(), AppendError> {
    if labels.is_empty() {
        return Err(AppendError::InvalidLabels("empty label set".into()));
    }
    let mut prev: Option<&str> = None;
    for l in labels.iter() {
        if prev == Some(l.name) {
            return Err(AppendError::InvalidLabels(format!("duplicate label name {:?}", l.name)));
        }
        if l.name.is_empty() {
            return Err(AppendError::InvalidLabels("empty label name".into()));
        }
        prev = Some(l.name);
    }
    Ok(())
}

impl Head {
    /// A head cutting chunks at multiples of `chunk_range` ms, logging to `wal` if given.
    pub fn new(chunk_range: i64, wal: Option<WalWriter>, metrics: Arc<Metrics>) -> Arc<Head> {
        Arc::new(Head {
            series: (0..SHARDS).map(|_| Padded(Mutex::new(SeriesShard::default()))).collect(),
            lookup: (0..SHARDS).map(|_| Padded(Mutex::new(LookupShard::default()))).collect(),
            symbols: RwLock::new(Symbols::default()),
            index: RwLock::new(MemIndex::default()),
            wal: wal.map(Mutex::new),
            // Key 0 is never used, so no series gets ref 0 ("unknown").
            next_key: (0..SHARDS).map(|_| AtomicU32::new(1)).collect(),
            next_home: AtomicU32::new(0),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            min_valid_t: AtomicI64::new(i64::MIN),
            num_samples: AtomicU64::new(0),
            chunk_range: chunk_range.max(1),
            metrics,
            iso: Isolation::default(),
        })
    }

    /// Attaches the WAL writer after replay (replay itself must not log).
    pub(crate) fn with_wal(mut self, w: WalWriter) -> Arc<Head> {
        self.wal = Some(Mutex::new(w));
        Arc::new(self)
    }

    /// A querier over the head alone (`Db`'s querier merges it with the blocks).
    pub fn querier(self: &Arc<Self>, mint: i64, maxt: i64) -> HeadQuerier {
        HeadQuerier { head: self.clone(), mint, maxt }
    }

    pub fn appender(self: &Arc<Self>) -> HeadAppender {
        let home = self.next_home.fetch_add(1, Ordering::Relaxed) as usize % SHARDS;
        HeadAppender {
            head: self.clone(),
            staged: Vec::new(),
            batch_last: HashMap::new(),
            batch_last_complete: false,
            buf: Vec::new(),
            home,
            created_in_home: 0,
        }
    }

    pub fn min_time(&self) -> i64 {
        self.min_t.load(Ordering::Acquire)
    }

    pub fn max_time(&self) -> i64 {
        self.max_t.load(Ordering::Acquire)
    }

    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_t.load(Ordering::Acquire)
    }

    pub(crate) fn set_min_valid_time(&self, t: i64) {
        self.min_valid_t.fetch_max(t, Ordering::AcqRel);
    }

    pub fn chunk_range(&self) -> i64 {
        self.chunk_range
    }

    pub(crate) fn wal(&self) -> Option<&Mutex<WalWriter>> {
        self.wal.as_ref()
    }

    pub fn stats(&self) -> HeadStats {
        HeadStats {
            num_series: self.metrics.head_series.load(Ordering::Relaxed),
            num_samples: self.num_samples.load(Ordering::Relaxed),
            num_chunks: self.metrics.head_chunks.load(Ordering::Relaxed),
            min_time: self.min_time(),
            max_time: self.max_time(),
        }
    }

    /// Approximate heap bytes held by the head's data structures (series, chunks, postings, symbols).
    pub fn heap_size(&self) -> usize {
        self.heap_breakdown().iter().map(|(_, n)| n).sum()
    }

    /// [`Head::heap_size`] per structure, each allocation counted as glibc malloc does (8-byte header,
    /// 16-byte granules, 32-byte minimum), so the total can be compared with RSS.
    pub fn heap_breakdown(&self) -> Vec<(&'static str, usize)> {
        let (mut structs, mut labels, mut open, mut arena) = (0, 0, 0, 0);
        for s in self.series.iter() {
            let g = s.0.lock();
            structs += g.series.heap_size();
            labels += malloc_cost(g.labels.data.capacity());
            for ser in g.series.values() {
                open += malloc_cost(ser.app.heap_size());
            }
            arena += g.arena.heap_size();
        }
        let lookup: usize = self.lookup.iter().map(|s| table_cost(s.0.lock().table.capacity(), 8)).sum();
        let ix = self.index.read();
        let (mut pmaps, mut plists) = (table_cost(ix.postings.capacity(), std::mem::size_of::<(u32, ValueMap)>()), 0);
        for vals in ix.postings.values() {
            let (m, l) = vals.heap_size();
            pmaps += m;
            plists += l;
        }
        let all = ix.all.serialized_size();
        drop(ix);
        vec![
            ("series slabs", structs),
            ("packed labels", labels),
            ("open chunks", open),
            ("closed chunk arena", arena),
            ("lookup table", lookup),
            ("postings maps", pmaps),
            ("postings lists", plists + all),
            ("symbols", self.symbols.read().heap_size()),
        ]
    }

    /// Bytes of chunk data (closed and open chunks) in the head.
    pub fn chunk_bytes(&self) -> usize {
        let mut n = 0;
        for s in self.series.iter() {
            let g = s.0.lock();
            for ser in g.series.values() {
                n += ser.closed(&g.arena).map(|(loc, _)| g.arena.slice(loc).len()).sum::<usize>();
                n += ser.app.bytes().len();
            }
        }
        n
    }

    fn labels_eq(&self, packed: &[u8], labels: &Labels) -> bool {
        let syms = self.symbols.read();
        let mut it = LabelIds(packed);
        for l in labels.iter() {
            match it.next() {
                Some((n, v)) if syms.get(n) == l.name && syms.get(v) == l.value => {}
                _ => return false,
            }
        }
        it.next().is_none()
    }

    fn materialize(&self, packed: &[u8]) -> Labels {
        let syms = self.symbols.read();
        Labels::from_sorted_unchecked(LabelIds(packed).map(|(n, v)| (syms.get(n), syms.get(v))))
    }

    /// Ref of the series with `labels`, if it exists.
    fn lookup_ref(&self, labels: &Labels, hash: u64, lk: &LookupShard) -> Option<u32> {
        let f = fold_hash(hash);
        for &(h, r) in lk.table.iter_hash(lookup_hash(f)) {
            if h != f {
                continue;
            }
            let g = self.series[shard_of(r)].0.lock();
            if let Some(s) = g.series.get(&key_of(r)) {
                if self.labels_eq(g.labels_of(s), labels) {
                    return Some(r);
                }
            }
        }
        None
    }

    /// Finds or creates the series. New series are logged to the WAL before their ref is returned, so every
    /// samples record that mentions the ref comes after its series record.
    /// A new series goes to shard `home` (the appender's), so the series one appender (a scrape loop)
    /// creates share a shard and its mutex cache line stays on one core: with refs spread round-robin
    /// over all shards, two threads appending to disjoint series were slower together than one alone
    /// (examples/append_scaling: 5.4 vs 6.7 M samples/s, every shard lock bouncing between cores).
    fn get_or_create(&self, labels: &Labels, forced_ref: Option<u32>, home: usize) -> Result<(u32, bool), AppendError> {
        let hash = labels.stable_hash();
        let mut lk = self.lookup[hash as usize % SHARDS].0.lock();
        if let Some(r) = self.lookup_ref(labels, hash, &lk) {
            return Ok((r, false));
        }
        validate(labels)?;
        let r = match forced_ref {
            Some(r) => {
                self.next_key[shard_of(r)].fetch_max(key_of(r).saturating_add(1), Ordering::AcqRel);
                r
            }
            None => self.new_ref(home)?,
        };
        let ids: Vec<u32> = {
            let mut syms = self.symbols.write();
            if !syms.make_room(labels.encoded_len()) {
                return Err(AppendError::Storage("head symbol table exceeds 4 GiB".into()));
            }
            labels.iter().flat_map(|l| [syms.intern(l.name), syms.intern(l.value)]).collect()
        };
        {
            let packed = pack_label_ids(ids.chunks_exact(2).map(|p| (p[0], p[1])));
            let mut g = self.series[shard_of(r)].0.lock();
            let Some(off) = g.labels.add(&packed) else {
                return Err(AppendError::Storage("head label arena exceeds 4 GiB in a shard".into()));
            };
            g.series.insert(key_of(r), MemSeries::new(off));
        }
        self.index.write().add(&ids, r);
        if forced_ref.is_none() {
            if let Some(w) = &self.wal {
                let mut buf = Vec::with_capacity(64 + labels.encoded_len());
                encode_series(&mut buf, r as u64, labels);
                let mut w = w.lock();
                if let Err(e) = w.log(&buf) {
                    Metrics::inc(&self.metrics.wal_writes_failed, 1);
                    return Err(AppendError::Storage(format!("WAL write: {e}")));
                }
            }
        }
        let f = fold_hash(hash);
        lk.table.insert_unique(lookup_hash(f), (f, r), |e| lookup_hash(e.0));
        Metrics::inc(&self.metrics.head_series, 1);
        Metrics::inc(&self.metrics.head_series_created, 1);
        Ok((r, true))
    }

    /// A fresh ref in shard `home`, or in the next shard with keys left.
    fn new_ref(&self, home: usize) -> Result<u32, AppendError> {
        const MAX_KEY: u32 = u32::MAX / SHARDS as u32;
        for i in 0..SHARDS {
            let sh = (home + i) % SHARDS;
            let k = self.next_key[sh].fetch_add(1, Ordering::AcqRel);
            if k < MAX_KEY {
                return Ok(k * SHARDS as u32 + sh as u32);
            }
            self.next_key[sh].store(MAX_KEY, Ordering::Release);
        }
        Err(AppendError::Storage("head series id space exhausted".into()))
    }

    fn note_times(&self, mint: i64, maxt: i64) {
        if mint <= maxt {
            self.min_t.fetch_min(mint, Ordering::AcqRel);
            self.max_t.fetch_max(maxt, Ordering::AcqRel);
        }
    }

    /// Adds a run of committed samples of series `r` in one critical section. Returns (stored, mint, maxt)
    /// of what was stored. Errors are counted, not returned.
    fn apply_run(&self, r: u32, run: &[RefSample]) -> (u64, i64, i64) {
        let (mut n, mut mint, mut maxt, mut new_chunks) = (0u64, i64::MAX, i64::MIN, 0u64);
        let (mut ooo, mut dup) = (0u64, 0u64);
        {
            let mut g = self.series[shard_of(r)].0.lock();
            let SeriesShard { series, arena, .. } = &mut *g;
            let Some(s) = series.get_mut(&key_of(r)) else { return (0, mint, maxt) };
            s.pending = s.pending.saturating_sub(run.len() as u32);
            for x in run {
                match s.append(x.t, x.v, self.chunk_range, arena) {
                    Ok(Added::Stored(c)) => {
                        n += 1;
                        new_chunks += u64::from(c);
                        mint = mint.min(x.t);
                        maxt = maxt.max(x.t);
                    }
                    Ok(Added::Noop) => {}
                    Err(AppendError::OutOfOrder) => ooo += 1,
                    Err(_) => dup += 1,
                }
            }
        }
        if new_chunks > 0 {
            Metrics::inc(&self.metrics.head_chunks, new_chunks);
            Metrics::inc(&self.metrics.head_chunks_created, new_chunks);
        }
        if ooo > 0 {
            Metrics::inc(&self.metrics.out_of_order_samples, ooo);
        }
        if dup > 0 {
            Metrics::inc(&self.metrics.duplicate_samples, dup);
        }
        (n, mint, maxt)
    }

    /// Adds a committed sample to series `r` (WAL replay). Errors are counted, not returned.
    fn apply(&self, r: u32, t: i64, v: f64) -> bool {
        let mut g = self.series[shard_of(r)].0.lock();
        let SeriesShard { series, arena, .. } = &mut *g;
        let Some(s) = series.get_mut(&key_of(r)) else { return false };
        match s.append(t, v, self.chunk_range, arena) {
            Ok(Added::Stored(new_chunk)) => {
                drop(g);
                if new_chunk {
                    Metrics::inc(&self.metrics.head_chunks, 1);
                    Metrics::inc(&self.metrics.head_chunks_created, 1);
                }
                true
            }
            Ok(Added::Noop) => false,
            Err(AppendError::OutOfOrder) => {
                Metrics::inc(&self.metrics.out_of_order_samples, 1);
                false
            }
            Err(_) => {
                Metrics::inc(&self.metrics.duplicate_samples, 1);
                false
            }
        }
    }

    /// WAL replay: a series record.
    pub(crate) fn replay_series(&self, wal_ref: u64, labels: &Labels, remap: &mut HashMap<u64, u32>) {
        let forced = u32::try_from(wal_ref).ok().filter(|&r| r != 0);
        // A ref already used by other labels (should not happen) gets a fresh one.
        let forced = forced.filter(|&r| !self.series[shard_of(r)].0.lock().series.contains_key(&key_of(r)));
        match self.get_or_create(labels, forced, 0) {
            Ok((r, _)) => {
                if Some(r) != forced || forced.is_none() {
                    remap.insert(wal_ref, r);
                }
            }
            Err(e) => tracing::warn!(%labels, error = %e, "dropping invalid series from WAL"),
        }
    }

    /// WAL replay: samples. Samples before `min_valid_t` (already in blocks) are skipped.
    pub(crate) fn replay_samples(&self, samples: &[RefSample], remap: &HashMap<u64, u32>) -> u64 {
        let min_valid = self.min_valid_time();
        let (mut mint, mut maxt, mut n) = (i64::MAX, i64::MIN, 0u64);
        for s in samples {
            if s.t < min_valid {
                continue;
            }
            let r = match remap.get(&s.r) {
                Some(&r) => r,
                None => match u32::try_from(s.r) {
                    Ok(r) => r,
                    Err(_) => continue,
                },
            };
            if self.apply(r, s.t, s.v) {
                n += 1;
                mint = mint.min(s.t);
                maxt = maxt.max(s.t);
            }
        }
        self.note_times(mint, maxt);
        self.num_samples.fetch_add(n, Ordering::Relaxed);
        n
    }

    /// Whether series `r` is still in the head (for WAL checkpoints).
    pub(crate) fn has_series(&self, r: u64) -> bool {
        u32::try_from(r).is_ok_and(|r| self.series[shard_of(r)].0.lock().series.contains_key(&key_of(r)))
    }

    /// Sorted series with their chunks overlapping `[mint, maxt]`, for writing a block.
    pub(crate) fn series_in_range(&self, mint: i64, maxt: i64) -> Vec<(Labels, Vec<ChunkRef>)> {
        let mut out = Vec::new();
        for sh in self.series.iter() {
            let g = sh.0.lock();
            for s in g.series.values() {
                let mut chunks = Vec::new();
                s.chunks_in(mint, maxt, &g.arena, &mut chunks);
                if !chunks.is_empty() {
                    out.push((self.materialize(g.labels_of(s)), chunks));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Drops data before `mint` and series left without data; refuses older samples from now on.
    pub(crate) fn truncate(&self, mint: i64) {
        let start = std::time::Instant::now();
        self.set_min_valid_time(mint);
        let mut removed_samples = 0u64;
        let mut removed_chunks = 0u64;
        let mut gone: Vec<(u32, u64, Vec<u32>)> = Vec::new();
        let mut new_min = i64::MAX;
        for (si, sh) in self.series.iter().enumerate() {
            let mut g = sh.0.lock();
            let SeriesShard { series, arena, labels } = &mut *g;
            series.retain(|k, s| {
                let (c, n) = s.drop_closed_before(arena, mint);
                removed_chunks += c;
                removed_samples += n;
                if s.app.last().is_some_and(|(lt, _)| lt < mint) {
                    removed_samples += u64::from(s.app.num_samples());
                    removed_chunks += 1;
                    s.app = XorAppender::empty();
                }
                if s.num_chunks() == 0 && s.pending == 0 {
                    let r = k * SHARDS as u32 + si as u32;
                    gone.push((r, 0, LabelIds(labels.get(s.labels)).flat_map(|(n, v)| [n, v]).collect()));
                    labels.release(s.labels);
                    return false;
                }
                if let Some(m) = s.min_time(arena) {
                    new_min = new_min.min(m);
                }
                true
            });
            if g.labels.wants_compaction() {
                g.compact_labels();
            }
        }
        if !gone.is_empty() {
            // Series no longer keep their label hash (8 bytes each); recompute it for the few removed.
            for (_, h, ids) in gone.iter_mut() {
                let syms = self.symbols.read();
                *h = Labels::from_sorted_unchecked(ids.chunks_exact(2).map(|p| (syms.get(p[0]), syms.get(p[1]))))
                    .stable_hash();
            }
            let mut ix = self.index.write();
            for (r, _, ids) in &gone {
                ix.remove(ids, *r);
            }
            drop(ix);
            let mut syms = self.symbols.write();
            for (_, _, ids) in &gone {
                for &id in ids.iter() {
                    syms.release(id);
                }
            }
            drop(syms);
            for (r, hash, _) in &gone {
                let mut lk = self.lookup[*hash as usize % SHARDS].0.lock();
                if let Ok(e) = lk.table.find_entry(lookup_hash(fold_hash(*hash)), |e| e.1 == *r) {
                    e.remove();
                }
            }
        }
        self.metrics.head_series.fetch_sub(gone.len() as u64, Ordering::Relaxed);
        Metrics::inc(&self.metrics.head_series_removed, gone.len() as u64);
        self.metrics.head_chunks.fetch_sub(removed_chunks, Ordering::Relaxed);
        Metrics::inc(&self.metrics.head_chunks_removed, removed_chunks);
        self.num_samples.fetch_sub(removed_samples.min(self.num_samples.load(Ordering::Relaxed)), Ordering::Relaxed);
        if new_min == i64::MAX {
            self.min_t.store(i64::MAX, Ordering::Release);
            self.max_t.store(i64::MIN, Ordering::Release);
        } else {
            self.min_t.store(new_min.max(mint), Ordering::Release);
        }
        Metrics::inc(&self.metrics.head_truncations, 1);
        self.metrics.head_gc_last_ms.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Distinct interned strings (label names and values).
    pub fn num_symbols(&self) -> usize {
        self.symbols.read().len()
    }

    /// Refs of the series matching `ms`, ascending.
    fn postings(&self, ms: &[Matcher]) -> Result<Vec<u32>, StorageError> {
        let b = self.postings_bitmap(ms)?;
        let mut out = Vec::with_capacity(b.len() as usize);
        out.extend(b.iter());
        Ok(out)
    }

    /// Refs of the series matching `ms`, as the planner leaves them.
    fn postings_bitmap(&self, ms: &[Matcher]) -> Result<RoaringBitmap, StorageError> {
        let ix = self.index.read();
        let syms = self.symbols.read();
        postings_for_matchers(&IndexView { ix: &ix, syms: &syms }, ms)
    }
}

struct IndexView<'a> {
    ix: &'a MemIndex,
    syms: &'a Symbols,
}

impl PostingsIndex for IndexView<'_> {
    type List = RoaringBitmap;

    /// A single value (an equality matcher) is intersected straight from the index's list: copying a large
    /// bitmap out first was a third of a label values call with two equality matchers at 200k series.
    fn intersect_values(
        &self,
        acc: Option<RoaringBitmap>,
        name: &str,
        values_hint: Option<&[String]>,
        prefix: Option<&str>,
        pred: &dyn Fn(&str) -> bool,
    ) -> Result<RoaringBitmap, StorageError> {
        let (mut acc, v) = match (acc, values_hint) {
            (Some(acc), Some([v])) => (acc, v),
            (acc, _) => {
                let p = self.postings_for_values(name, values_hint, prefix, pred)?;
                return Ok(match acc {
                    None => p,
                    Some(a) => a.intersect(&p),
                });
            }
        };
        let list = self.syms.lookup(name).and_then(|n| self.ix.postings.get(&n)).and_then(|vals| {
            self.syms.lookup(v).and_then(|id| vals.get(&id)).filter(|_| pred(v))
        });
        match list {
            None => Ok(RoaringBitmap::new()),
            Some(PostingsRef::List(PList::Big(b))) => {
                acc &= &**b;
                Ok(acc)
            }
            Some(PostingsRef::List(PList::Empty)) => Ok(RoaringBitmap::new()),
            Some(PostingsRef::One(x) | PostingsRef::List(&PList::One(x))) => {
                Ok(if acc.contains(x) { std::iter::once(x).collect() } else { RoaringBitmap::new() })
            }
            Some(PostingsRef::List(PList::Small(ids))) => Ok(ids.iter().copied().filter(|&x| acc.contains(x)).collect()),
        }
    }

    fn all_postings(&self) -> Result<RoaringBitmap, StorageError> {
        Ok(self.ix.all.clone())
    }

    fn postings_for_values(
        &self,
        name: &str,
        values_hint: Option<&[String]>,
        prefix: Option<&str>,
        pred: &dyn Fn(&str) -> bool,
    ) -> Result<RoaringBitmap, StorageError> {
        let mut out = RoaringBitmap::new();
        let Some(vals) = self.syms.lookup(name).and_then(|n| self.ix.postings.get(&n)) else { return Ok(out) };
        match values_hint {
            Some(hint) => {
                for v in hint {
                    if let Some(l) = self.syms.lookup(v).and_then(|id| vals.get(&id)) {
                        if pred(v) {
                            l.union_into(&mut out);
                        }
                    }
                }
            }
            None => {
                for (vid, l) in vals.iter() {
                    let v = self.syms.get(vid);
                    if prefix.is_none_or(|p| v.starts_with(p)) && pred(v) {
                        l.union_into(&mut out);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Appender over the head. Staged samples are invisible until `commit`, which logs them to the WAL first.
pub struct HeadAppender {
    head: Arc<Head>,
    staged: Vec<RefSample>,
    /// Last staged (t, value bits) per series, to check order within the batch. Only needed for a series
    /// that already has pending samples (`MemSeries::pending > 0`), so it is filled lazily: short batches are
    /// scanned, a longer one indexes every staged sample once (`batch_last_complete`) and keeps it up to date.
    batch_last: HashMap<u32, (i64, u64)>,
    batch_last_complete: bool,
    buf: Vec<u8>,
    /// Shard for the series this appender creates (see [`Head::get_or_create`]); it moves on after
    /// [`HOME_RUN`] series so one big target still spreads over all shards (a shard lock is held for a
    /// whole pass during truncation).
    home: usize,
    created_in_home: u32,
}

/// Series an appender creates in one shard before moving to the next.
const HOME_RUN: u32 = 1024;

/// The last sample of series `r` staged in this batch, if any (see `HeadAppender::batch_last`).
fn staged_last(staged: &[RefSample], map: &mut HashMap<u32, (i64, u64)>, complete: &mut bool, r: u32) -> Option<(i64, u64)> {
    const SCAN: usize = 32;
    if !*complete {
        if staged.len() <= SCAN {
            return staged.iter().rev().find(|s| s.r == r as u64).map(|s| (s.t, s.v.to_bits()));
        }
        // Index the batch once; from here on every staged sample is recorded (O(n) per batch in total).
        for s in staged {
            map.insert(s.r as u32, (s.t, s.v.to_bits()));
        }
        *complete = true;
    }
    map.get(&r).copied()
}

impl HeadAppender {
    fn stage(&mut self, r: u32, t: i64, v: f64) -> Result<Option<()>, AppendError> {
        let head = &*self.head;
        let mut g = head.series[shard_of(r)].0.lock();
        let Some(s) = g.series.get_mut(&key_of(r)) else { return Ok(None) };
        // A series nobody has staged samples for cannot be in this batch: no lookup in the common case.
        let last = if s.pending > 0 {
            staged_last(&self.staged, &mut self.batch_last, &mut self.batch_last_complete, r).or_else(|| s.last())
        } else {
            s.last()
        };
        match MemSeries::check(last, t, v) {
            Ok(true) => {}
            Ok(false) => return Ok(Some(())),
            Err(e) => {
                drop(g);
                let c = match e {
                    AppendError::OutOfOrder => &head.metrics.out_of_order_samples,
                    _ => &head.metrics.duplicate_samples,
                };
                Metrics::inc(c, 1);
                return Err(e);
            }
        }
        s.pending += 1;
        drop(g);
        if self.batch_last_complete {
            self.batch_last.insert(r, (t, v.to_bits()));
        }
        self.staged.push(RefSample { r: r as u64, t, v });
        Ok(Some(()))
    }

    fn clear_batch(&mut self) {
        self.staged.clear();
        self.batch_last.clear();
        self.batch_last_complete = false;
    }

    fn release_pending(&mut self) {
        for s in &self.staged {
            let r = s.r as u32;
            let mut g = self.head.series[shard_of(r)].0.lock();
            if let Some(s) = g.series.get_mut(&key_of(r)) {
                s.pending = s.pending.saturating_sub(1);
            }
        }
    }
}

impl Appender for HeadAppender {
    fn append(&mut self, hint: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        if t < self.head.min_valid_time() {
            Metrics::inc(&self.head.metrics.out_of_bound_samples, 1);
            return Err(AppendError::OutOfBounds);
        }
        // The scrape cache's ref is trusted, as in Prometheus; a ref of a series since removed falls back to
        // the label lookup.
        if let Ok(r) = u32::try_from(hint) {
            if r != 0 && self.stage(r, t, v)?.is_some() {
                return Ok(hint);
            }
        }
        loop {
            let (r, created) = self.head.get_or_create(labels, None, self.home)?;
            if created {
                self.created_in_home += 1;
                if self.created_in_home >= HOME_RUN {
                    self.home = self.head.next_home.fetch_add(1, Ordering::Relaxed) as usize % SHARDS;
                    self.created_in_home = 0;
                }
            }
            if self.stage(r, t, v)?.is_some() {
                return Ok(r as SeriesRef);
            }
            // Removed by a concurrent truncation between lookup and staging: look up again.
        }
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        if self.staged.is_empty() {
            self.clear_batch();
            return Ok(());
        }
        if let Some(w) = &self.head.wal {
            self.buf.clear();
            encode_samples(&mut self.buf, self.staged.iter().copied());
            let mut w = w.lock();
            let res = w.log(&self.buf).and_then(|_| w.flush());
            drop(w);
            if let Err(e) = res {
                Metrics::inc(&self.head.metrics.wal_writes_failed, 1);
                self.rollback();
                return Err(StorageError::Io(e));
            }
        }
        // Publish the batch before applying it, so reads overlapping the commit can hide it; runs of one
        // series are applied under one lock.
        let batch = Arc::new(std::mem::take(&mut self.staged));
        let id = self.head.iso.begin_commit(batch.clone());
        let (mut mint, mut maxt, mut n) = (i64::MAX, i64::MIN, 0u64);
        let mut i = 0;
        while i < batch.len() {
            let r = batch[i].r;
            let j = i + batch[i..].iter().take_while(|s| s.r == r).count();
            let (k, a, z) = self.head.apply_run(r as u32, &batch[i..j]);
            n += k;
            mint = mint.min(a);
            maxt = maxt.max(z);
            i = j;
        }
        self.head.iso.end_commit(id);
        // Usually no read held on to the batch: take the buffer back instead of allocating a new one.
        if let Ok(mut v) = Arc::try_unwrap(batch) {
            v.clear();
            self.staged = v;
        }
        self.head.note_times(mint, maxt);
        self.head.num_samples.fetch_add(n, Ordering::Relaxed);
        Metrics::inc(&self.head.metrics.head_samples_appended, n);
        self.clear_batch();
        Ok(())
    }

    fn rollback(&mut self) {
        self.release_pending();
        self.clear_batch();
    }
}

impl Drop for HeadAppender {
    fn drop(&mut self) {
        if !self.staged.is_empty() {
            self.release_pending();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::storage::Querier;
    use model::{labels, MatchOp, Sample, STALE_NAN_BITS, STALE_NAN};

    fn head() -> Arc<Head> {
        Head::new(7_200_000, None, Arc::new(Metrics::default()))
    }

    fn select(h: &Arc<Head>, mint: i64, maxt: i64, ms: &[Matcher]) -> Vec<(Labels, Vec<Sample>)> {
        let q = HeadQuerier { head: h.clone(), mint, maxt };
        q.select(true, None, ms)
            .unwrap()
            .map(|s| {
                let mut s = s.unwrap();
                (s.labels, std::iter::from_fn(|| s.samples.next()).collect())
            })
            .collect()
    }

    #[test]
    fn append_commit_rollback_and_errors() {
        let h = head();
        let mut a = h.appender();
        let l = labels! {"__name__" => "up", "job" => "a"};
        let r = a.append(0, &l, 10, 1.0).unwrap();
        assert_eq!(a.append(r, &l, 20, 2.0).unwrap(), r);
        assert_eq!(a.append(r, &l, 15, 0.0), Err(AppendError::OutOfOrder));
        assert_eq!(a.append(r, &l, 20, 3.0), Err(AppendError::DuplicateSample));
        assert_eq!(a.append(r, &l, 20, 2.0), Ok(r));
        assert!(select(&h, 0, 100, &[]).is_empty(), "invisible before commit");
        a.commit().unwrap();
        a.append(r, &l, 30, STALE_NAN).unwrap();
        a.commit().unwrap();
        a.append(r, &l, 40, 4.0).unwrap();
        a.rollback();
        let got = select(&h, 0, 100, &[Matcher::equal("job", "a")]);
        assert_eq!(got.len(), 1);
        let ts: Vec<i64> = got[0].1.iter().map(|s| s.t).collect();
        assert_eq!(ts, vec![10, 20, 30]);
        assert_eq!(got[0].1[2].v.to_bits(), STALE_NAN_BITS);
        assert_eq!(a.append(0, &Labels::empty(), 1, 1.0), Err(AppendError::InvalidLabels("empty label set".into())));
        assert_eq!(h.stats().num_samples, 3);
        assert_eq!((h.stats().min_time, h.stats().max_time), (10, 30));
    }

    #[test]
    fn order_within_a_batch_is_checked_in_short_and_long_batches() {
        let h = head();
        let ls: Vec<Labels> = (0..100).map(|i| labels! {"__name__" => "m", "i" => &i.to_string()}).collect();
        // Round 1: one sample per series (no in-batch lookups), then interleaved repeats that make the batch
        // long enough to be indexed.
        let mut a = h.appender();
        let refs: Vec<SeriesRef> = ls.iter().map(|l| a.append(0, l, 100, 1.0).unwrap()).collect();
        for (l, &r) in ls.iter().zip(&refs) {
            assert_eq!(a.append(r, l, 200, 2.0), Ok(r));
        }
        for (l, &r) in ls.iter().zip(&refs) {
            assert_eq!(a.append(r, l, 150, 0.0), Err(AppendError::OutOfOrder), "{l}");
            assert_eq!(a.append(r, l, 200, 3.0), Err(AppendError::DuplicateSample));
            assert_eq!(a.append(r, l, 200, 2.0), Ok(r), "same sample again is a no-op");
        }
        // A second appender sees the first one's pending samples only after commit; its own short batch
        // is checked by scanning.
        let mut b = h.appender();
        assert_eq!(b.append(refs[0], &ls[0], 300, 1.0), Ok(refs[0]));
        assert_eq!(b.append(refs[0], &ls[0], 250, 1.0), Err(AppendError::OutOfOrder));
        a.commit().unwrap();
        b.commit().unwrap();
        let got = select(&h, 0, 1000, &[Matcher::equal("i", "0")]);
        assert_eq!(got[0].1.iter().map(|s| s.t).collect::<Vec<_>>(), vec![100, 200, 300]);
        assert_eq!(h.stats().num_samples, 201);
        // After commit the batch state is reset: the committed samples are the reference now.
        let mut c = h.appender();
        assert_eq!(c.append(refs[5], &ls[5], 200, 9.0), Err(AppendError::DuplicateSample));
        assert_eq!(c.append(refs[5], &ls[5], 400, 9.0), Ok(refs[5]));
        c.rollback();
        assert_eq!(c.append(refs[5], &ls[5], 350, 9.0), Ok(refs[5]), "rolled back samples are forgotten");
    }

    #[test]
    fn chunks_cut_at_120_and_at_range_boundaries() {
        let h = head();
        let mut a = h.appender();
        let l = labels! {"a" => "b"};
        for i in 0..500 {
            a.append(0, &l, i * 15_000, i as f64).unwrap();
        }
        a.commit().unwrap();
        // 500 samples at 15s span 2h05m: four full chunks up to the 2h boundary, then one with 20 samples.
        let g = h.series.iter().map(|s| s.0.lock().series.values().map(|s| s.num_chunks()).sum::<usize>()).sum::<usize>();
        assert_eq!(g, 5);
        let got = select(&h, 7_100_000, 7_300_000, &[]);
        assert_eq!(got[0].1.first().map(|s| s.t), Some(7_110_000));
        assert_eq!(got[0].1.last().map(|s| s.t), Some(7_290_000));
    }

    #[test]
    fn matchers_and_label_queries() {
        let h = head();
        let mut a = h.appender();
        for (job, inst) in [("a", "1"), ("a", "2"), ("b", "1")] {
            a.append(0, &labels! {"__name__" => "up", "job" => job, "instance" => inst}, 1, 1.0).unwrap();
        }
        a.append(0, &labels! {"__name__" => "other"}, 1, 1.0).unwrap();
        a.commit().unwrap();
        let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
        assert_eq!(select(&h, 0, 10, &[m(MatchOp::Equal, "job", "a")]).len(), 2);
        assert_eq!(select(&h, 0, 10, &[m(MatchOp::NotEqual, "job", "a")]).len(), 2);
        assert_eq!(select(&h, 0, 10, &[m(MatchOp::Regex, "job", "a|b"), m(MatchOp::Equal, "instance", "1")]).len(), 2);
        assert_eq!(select(&h, 0, 10, &[m(MatchOp::Equal, "job", "")]).len(), 1);
        assert_eq!(select(&h, 2, 10, &[]).len(), 0);
        let q = HeadQuerier { head: h.clone(), mint: 0, maxt: 10 };
        assert_eq!(q.label_values("job", &[]).unwrap(), vec!["a", "b"]);
        assert_eq!(q.label_names(&[m(MatchOp::Equal, "__name__", "other")]).unwrap(), vec!["__name__"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Postings for equality matchers (intersected straight from one-id, small-vector and bitmap lists,
        /// values missing from the index too) equal filtering the series by their labels.
        #[test]
        fn equality_postings_match_naive_filter(
            series in proptest::collection::vec((0u8..3, 0u8..40), 1..400),
            ms in proptest::collection::vec((0usize..3, 0u8..42), 1..4),
        ) {
            let h = head();
            let mut a = h.appender();
            let mut want_sets = Vec::new();
            for (i, (x, y)) in series.iter().enumerate() {
                let l = Labels::from_pairs(&[("a", format!("{x}")), ("b", format!("{y}")), ("u", format!("{i}"))]);
                a.append(0, &l, 1, 1.0).unwrap();
                want_sets.push(l);
            }
            a.commit().unwrap();
            let names = ["a", "b", "u"];
            let ms: Vec<Matcher> = ms.iter().map(|&(n, v)| Matcher::equal(names[n], &format!("{v}"))).collect();
            let mut got: Vec<Labels> = h.postings(&ms).unwrap().into_iter().map(|r| {
                let g = h.series[shard_of(r)].0.lock();
                h.materialize(g.labels_of(g.series.get(&key_of(r)).unwrap()))
            }).collect();
            got.sort();
            let mut want: Vec<Labels> = want_sets.into_iter().filter(|l| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or("")))).collect();
            want.sort();
            proptest::prop_assert_eq!(got, want);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        /// Label names/values with matchers (from per-value postings or packed ids) equal the reference
        /// storage's answers (which build every matching label set) over random series and matchers: for the
        /// whole head once the range overlaps the head's, as Prometheus's head index answers, else nothing.
        #[test]
        fn label_queries_with_matchers_match_reference(
            series in proptest::collection::vec((0u8..4, 0u8..5, proptest::option::of(0u8..3), 0i64..100), 1..60),
            (mint, maxt) in proptest::strategy::Strategy::prop_map((0i64..100, 0i64..100), |(a, b)| (a.min(b), a.max(b))),
            mv in 0u8..5,
        ) {
            use model::storage::{Queryable, Storage};
            let h = head();
            let reference = model::mem::MemStorage::new();
            let mut a = h.appender();
            let mut ra = reference.appender();
            let mut seen = std::collections::HashSet::new();
            for (job, inst, zone, t) in &series {
                if !seen.insert((job, inst, zone)) {
                    continue;
                }
                let mut pairs = vec![("job".to_string(), format!("j{job}")), ("instance".to_string(), format!("i{inst}"))];
                if let Some(z) = zone {
                    pairs.push(("zone".to_string(), format!("z{z}")));
                }
                let l = Labels::from_pairs(&pairs);
                a.append(0, &l, *t, 1.0).unwrap();
                ra.append(0, &l, *t, 1.0).unwrap();
                a.commit().unwrap();
                ra.commit().unwrap();
            }
            let q = h.querier(mint, maxt);
            let overlaps = mint <= h.max_time() && maxt >= h.min_time();
            let rq = if overlaps { reference.querier(i64::MIN, i64::MAX) } else { reference.querier(1, 0) }.unwrap();
            let matchers = [
                vec![Matcher::equal("job", &format!("j{}", mv % 4))],
                vec![Matcher::new(MatchOp::Regex, "instance", &format!("i[0-{}]", mv)).unwrap()],
                vec![Matcher::new(MatchOp::NotEqual, "zone", "z1").unwrap(), Matcher::equal("job", "j1")],
                vec![Matcher::new(MatchOp::Regex, "zone", ".+").unwrap()],
            ];
            for ms in &matchers {
                for name in ["job", "instance", "zone", "nope"] {
                    proptest::prop_assert_eq!(q.label_values(name, ms).unwrap(), rq.label_values(name, ms).unwrap(), "{} {:?}", name, ms);
                }
                proptest::prop_assert_eq!(q.label_names(ms).unwrap(), rq.label_names(ms).unwrap(), "{:?}", ms);
            }
        }
    }

    #[test]
    fn truncate_drops_old_data_and_series() {
        let h = head();
        let mut a = h.appender();
        let old = labels! {"s" => "old"};
        let new = labels! {"s" => "new"};
        a.append(0, &old, 1000, 1.0).unwrap();
        a.append(0, &new, 1000, 1.0).unwrap();
        a.append(0, &new, 7_200_000, 2.0).unwrap();
        a.commit().unwrap();
        assert_eq!(h.stats().num_series, 2);
        h.truncate(7_200_000);
        assert_eq!(h.stats().num_series, 1);
        assert_eq!(h.stats().num_samples, 1);
        assert_eq!(h.num_symbols(), 2);
        assert_eq!(a.append(0, &new, 5, 1.0), Err(AppendError::OutOfBounds));
        let got = select(&h, i64::MIN, i64::MAX, &[]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, vec![Sample::new(7_200_000, 2.0)]);
        // The removed series can come back with a fresh ref.
        a.append(0, &old, 7_300_000, 1.0).unwrap();
        a.commit().unwrap();
        assert_eq!(select(&h, 0, i64::MAX, &[Matcher::equal("s", "old")]).len(), 1);
    }

    #[test]
    fn packed_label_ids_roundtrip() {
        let pairs = [(0u32, 1u32), (127, 128), (16_383, 16_384), (u32::MAX, 2_097_151), (5, 0)];
        let packed = pack_label_ids(pairs.iter().copied());
        assert_eq!(LabelIds(&packed).collect::<Vec<_>>(), pairs);
        assert_eq!(LabelIds(&pack_label_ids(std::iter::empty())).count(), 0);
        assert_eq!(std::mem::size_of::<PList>(), 16);
    }

    /// Closed chunks of many series share arena pages; readers keep pages alive; truncation frees pages
    /// whose chunks are all gone and queries still return every remaining sample.
    #[test]
    fn chunk_arena_pages_are_shared_and_freed() {
        let h = head();
        let mut a = h.appender();
        let n = 300;
        let ls: Vec<Labels> = (0..n).map(|i| labels! {"s" => format!("{i}")}).collect();
        // 0..4h at 15s: chunks cut every 120 samples and at the 2h boundary.
        for step in 0..960i64 {
            for (i, l) in ls.iter().enumerate() {
                a.append(0, l, step * 15_000, (step * 31 + i as i64) as f64 * 0.5).unwrap();
            }
            a.commit().unwrap();
        }
        let pages = |h: &Head| -> usize {
            h.series.iter().map(|s| s.0.lock().arena.pages.iter().flatten().count()).sum()
        };
        let before = pages(&h);
        assert!(before > 0);
        // A query started before truncation still reads its (old) chunks afterwards.
        let q = HeadQuerier { head: h.clone(), mint: 0, maxt: 7_199_999 };
        let set = q.select(true, None, &[Matcher::equal("s", "7")]).unwrap();
        h.truncate(7_200_000);
        let after = pages(&h);
        assert!(after < before, "{after} pages after truncation, {before} before");
        let old: Vec<Sample> = set
            .flat_map(|s| {
                let mut s = s.unwrap();
                std::iter::from_fn(move || s.samples.next()).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(old.len(), 480);
        assert_eq!(old[479], Sample::new(479 * 15_000, (479 * 31 + 7) as f64 * 0.5));
        let got = select(&h, i64::MIN, i64::MAX, &[]);
        assert_eq!(got.len(), n);
        for (l, samples) in &got {
            let i: i64 = l.get("s").unwrap().parse().unwrap();
            assert_eq!(samples.len(), 480, "{l}");
            for (k, smp) in samples.iter().enumerate() {
                let step = 480 + k as i64;
                assert_eq!(*smp, Sample::new(step * 15_000, (step * 31 + i) as f64 * 0.5));
            }
        }
    }

    /// The slab agrees with a map oracle through out-of-order inserts, removals and page freeing.
    #[test]
    fn series_slab_matches_map() {
        let mut slab = SeriesSlab::default();
        let mut oracle = std::collections::BTreeMap::new();
        let mk = MemSeries::new;
        // Pages 3..8, then keys below the first page (as WAL replay may create).
        for k in (900..2100).step_by(3).chain([5, 700, 255, 256]) {
            slab.insert(k, mk(k));
            oracle.insert(k, ());
        }
        let check = |slab: &SeriesSlab, oracle: &std::collections::BTreeMap<u32, ()>| {
            assert_eq!(slab.len(), oracle.len());
            for k in 0..2200 {
                let got = slab.get(&k).map(|s| s.labels);
                assert_eq!(got, oracle.contains_key(&k).then_some(k), "key {k}");
            }
            assert_eq!(slab.values().count(), oracle.len());
        };
        check(&slab, &oracle);
        slab.get_mut(&903).unwrap().pending = 7;
        // Drop everything below 1500 and every other key above: leading pages are freed.
        let mut seen = Vec::new();
        slab.retain(|k, s| {
            seen.push(k);
            k >= 1500 && (k % 2 == 0 || s.pending == 7)
        });
        assert_eq!(seen, oracle.keys().copied().collect::<Vec<_>>(), "retain visits keys in order");
        oracle.retain(|&k, _| k >= 1500 && k % 2 == 0);
        check(&slab, &oracle);
        assert_eq!(slab.first, 1500 / SLAB_PAGE);
        slab.insert(3, mk(3));
        oracle.insert(3, ());
        check(&slab, &oracle);
        slab.retain(|_, _| false);
        assert!(slab.pages.is_empty() && slab.len() == 0);
    }

    #[test]
    fn label_arena_compacts_and_offsets_follow() {
        let mut sh = SeriesShard::default();
        for k in 1..=20_000u32 {
            let off = sh.labels.add(&pack_label_ids([(k, k * 3), (7, k)].into_iter())).unwrap();
            sh.series.insert(k, MemSeries::new(off));
        }
        let SeriesShard { series, labels, .. } = &mut sh;
        series.retain(|k, s| {
            if k % 4 != 0 {
                labels.release(s.labels);
            }
            k % 4 == 0
        });
        assert!(sh.labels.wants_compaction());
        let before = sh.labels.data.len();
        sh.compact_labels();
        assert!(sh.labels.data.len() * 3 < before, "{} of {before} bytes left", sh.labels.data.len());
        assert!(!sh.labels.wants_compaction());
        for k in 1..=20_000u32 {
            let got = sh.series.get(&k).map(|s| LabelIds(sh.labels_of(s)).collect::<Vec<_>>());
            assert_eq!(got, (k % 4 == 0).then(|| vec![(k, k * 3), (7, k)]));
        }
    }

    #[test]
    fn symbol_arena_compacts_without_changing_ids() {
        let mut s = Symbols::default();
        let ids: Vec<u32> = (0..40_000).map(|i| s.intern(&format!("value-{i:06}-{}", "x".repeat(i % 50)))).collect();
        for (i, &id) in ids.iter().enumerate() {
            if i % 10 != 0 {
                s.release(id);
            }
        }
        assert!(s.garbage < s.arena.len(), "compacted at least once");
        for (i, &id) in ids.iter().enumerate().step_by(10) {
            let want = format!("value-{i:06}-{}", "x".repeat(i % 50));
            assert_eq!(s.get(id), want);
            assert_eq!(s.lookup(&want), Some(id));
        }
        assert_eq!(s.len(), 4000);
        assert_eq!(s.lookup("value-000001-x"), None);
        // Freed ids are reused and strings stay distinct.
        let a = s.intern("fresh");
        assert_eq!(s.get(a), "fresh");
        assert_eq!(s.intern("fresh"), a);
    }

    #[test]
    fn isolation_hides_overlapping_commits_and_releases_batches() {
        let iso = Isolation::default();
        let batch = |t| Arc::new(vec![RefSample { r: 7, t, v: 1.0 }]);
        // A read that started before a commit hides it, even after the commit ended.
        let r1 = iso.begin_read();
        let c1 = iso.begin_commit(batch(10));
        let r2 = iso.begin_read(); // during the commit: hides it too
        iso.end_commit(c1);
        let r3 = iso.begin_read(); // after: sees it
        assert_eq!(iso.end_read(r1).len(), 1);
        assert_eq!(iso.end_read(r2).len(), 1);
        assert!(iso.end_read(r3).is_empty());
        // With no read registered the batch is dropped at once, so the appender gets its buffer back.
        let b = batch(20);
        let c2 = iso.begin_commit(b.clone());
        iso.end_commit(c2);
        assert!(Arc::try_unwrap(b).is_ok());
        assert!(iso.state.lock().batches.is_empty());
    }

    #[test]
    fn concurrent_appenders() {
        let h = head();
        std::thread::scope(|sc| {
            for th in 0..4 {
                let h = h.clone();
                sc.spawn(move || {
                    let mut a = h.appender();
                    let ls: Vec<Labels> =
                        (0..200).map(|i| labels! {"th" => th.to_string(), "i" => i.to_string()}).collect();
                    let mut refs = vec![0; ls.len()];
                    for t in 0..50 {
                        for (i, l) in ls.iter().enumerate() {
                            refs[i] = a.append(refs[i], l, t * 1000, t as f64).unwrap();
                        }
                        a.commit().unwrap();
                    }
                });
            }
        });
        assert_eq!(h.stats().num_series, 800);
        assert_eq!(h.stats().num_samples, 800 * 50);
    }
}
