//! Compact official-region storage: sealed columnar chunks plus a small row-encoded tail.
//!
//! Same API and behaviour as [`crate::store::ReferenceStore`], at ~20 bytes per full Binance
//! candle instead of ~400.
//!
//! * Sealed chunks hold 1..=[`CHUNK_MAX`] candles, strictly ascending, disjoint and ordered;
//!   each is one bit stream (see [`codec`]) in an exact-size boxed slice, indexed by its
//!   first/last open time for O(log n) lookups.
//! * The tail holds up to [`TAIL_MAX`] - 1 candles newer than every chunk, as byte-aligned
//!   rows, so appending the newest candle is a few varint writes. When it fills it is sealed
//!   as a chunk of its own, until it and the newest chunks of fewer than [`REOPEN_BELOW`]
//!   candles (earlier flushes) reach `REOPEN_BELOW` together: then they are sealed as one.
//!   Streamed candles (one `put` each: closed klines written one at a time) end in
//!   chunks of `REOPEN_BELOW`, each candle encoded 1.75 times and decoded 0.75 times on
//!   average (4.5 and 3.5 when chunks grew to `CHUNK_MAX` 32 candles at a time, 2.5 and 1.5
//!   when the last chunk was reopened at every flush), for ~2 % more bytes than bulk-loaded
//!   chunks (real 1m candles: 19.76 B instead of 19.37 B per candle).
//! * A streamed store ([`ChunkedStore::set_streamed`]: a derived series', written a few
//!   candles at a time) seals its tail at [`STREAM_TAIL_MAX`] instead, straight into a chunk
//!   of `REOPEN_BELOW`: each candle encoded once and never decoded to be merged.
//! * A bulk append (`put_all`, e.g. a 1000-row REST page) seals all its candles into new
//!   chunks of up to `CHUNK_MAX`, each encoded once, its last few too (the tail's rows would
//!   be written, then read back and encoded at the next write anyway), and reopens the last
//!   sealed chunk only while it holds fewer than `REOPEN_BELOW`: topping up a nearly full
//!   chunk would decode and re-encode it for a few candles. So chunks hold at least
//!   `REOPEN_BELOW` candles, except the newest few.
//! * Writes older than the tail (gap fills, overwrites) decode the one chunk concerned,
//!   edit it and re-encode it, splitting it in two when it outgrows `CHUNK_MAX`.
//!
//! `encode`/`decode` persist the chunks byte for byte; `decode` verifies everything.

mod bits;
mod codec;
mod model;
mod rice;
mod rows;
mod scratch;
mod series;

use crate::candle::Candle;
use crate::error::{CoreError, CoreResult};

/// The error of every malformed chunk or tail row.
fn corrupt(msg: &str) -> CoreError {
    CoreError::corrupt(format!("corrupt candle chunk: {msg}"))
}
pub use codec::CHUNK_MAX;

/// Bits each section of a sealed chunk of `cs` (ascending, at most `CHUNK_MAX`) would take.
#[doc(hidden)]
pub fn section_bits(cs: &[Candle]) -> Vec<(&'static str, usize)> {
    codec::section_bits(cs)
}

/// The tail is sealed when it reaches this many candles.
pub const TAIL_MAX: usize = 32;

/// The tail of a store fed a few candles per write ([`ChunkedStore::set_streamed`], a derived
/// series: ~17 hourly candles per 1000-minute page, one per bucket when its source streams)
/// is sealed at this many instead: straight into a chunk of `REOPEN_BELOW`, each candle
/// encoded once and never decoded to be merged, where 32-candle seals merged four at a time
/// encode it 1.75 times and decode it 0.75 times. The price is up to ~3 KB more tail.
pub const STREAM_TAIL_MAX: usize = REOPEN_BELOW;

/// A bulk append fills the last sealed chunk up only while it holds fewer candles than this.
pub const REOPEN_BELOW: usize = CHUNK_MAX / 2;

/// The store's byte format: 2 when a chunk is format 2 (tagged, see `codec`), else 1 (the
/// oldest that holds it: a store read from a format-1 file writes back the same bytes).
/// Both decode; chunks are kept as they are.
const FORMAT_VERSION: u8 = 2;

/// When the tail buffer has less room than a typical row, it grows by `TAIL_GROW` exactly.
const TAIL_ROOM: usize = 64;
const TAIL_GROW: usize = 256;

#[derive(Clone)]
struct Chunk {
    first: i64,
    last: i64,
    n: u32,
    data: Box<[u8]>,
}

impl Chunk {
    fn seal(cs: &[Candle]) -> Chunk {
        Chunk {
            first: cs.first().map_or(0, |c| c.open_time),
            last: cs.last().map_or(0, |c| c.open_time),
            n: cs.len() as u32,
            data: codec::encode_chunk(cs).into_boxed_slice(),
        }
    }

    /// Internal chunks were made by `seal` or verified by `decode`, so this cannot fail;
    /// should it ever, the chunk reads as empty rather than panicking.
    fn candles(&self) -> Vec<Candle> {
        let r = codec::decode_chunk(&self.data);
        debug_assert!(r.is_ok(), "internal chunk does not decode");
        r.unwrap_or_default()
    }

    /// [`candles`](Self::candles) appended to `out`.
    fn candles_into(&self, out: &mut Vec<Candle>) {
        let r = codec::decode_chunk_into(&self.data, out);
        debug_assert!(r.is_ok(), "internal chunk does not decode");
    }

    /// How many of its candles have `from <= open_time <= to` (times decoded only when the
    /// chunk straddles a bound).
    fn count_in(&self, from: i64, to: i64) -> usize {
        if self.last < from || self.first > to {
            0
        } else if self.first >= from && self.last <= to {
            self.n as usize
        } else {
            self.times()
                .iter()
                .filter(|&&t| t >= from && t <= to)
                .count()
        }
    }

    fn times(&self) -> Vec<i64> {
        let r = codec::decode_times(&self.data);
        debug_assert!(r.is_ok(), "internal chunk does not decode");
        r.unwrap_or_default()
    }
}

#[derive(Clone, Default)]
pub struct ChunkedStore {
    chunks: Vec<Chunk>,
    /// Row-encoded candles newer than every chunk (see `rows::put_row`).
    tail: Vec<u8>,
    tail_len: usize,
    tail_first: i64,
    tail_last: i64,
    len: usize,
    /// Sum of the chunks' data lengths, kept so `mem_usage` is O(1) (it runs twice per write).
    chunk_bytes: usize,
    /// The tail seals at [`STREAM_TAIL_MAX`] rather than [`TAIL_MAX`]: a policy of the
    /// series holding the store, not data (not persisted, not compared).
    streamed: bool,
}

impl std::fmt::Debug for ChunkedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedStore")
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .field("tail_len", &self.tail_len)
            .field("mem_usage", &self.mem_usage())
            .finish()
    }
}

impl PartialEq for ChunkedStore {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl ChunkedStore {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Seals the tail at [`STREAM_TAIL_MAX`] candles (`true`) or [`TAIL_MAX`]. A tail longer
    /// than the new limit is sealed at the next write.
    pub fn set_streamed(&mut self, streamed: bool) {
        self.streamed = streamed;
    }
    /// Candles the tail is sealed at.
    fn tail_max(&self) -> usize {
        if self.streamed {
            STREAM_TAIL_MAX
        } else {
            TAIL_MAX
        }
    }
    pub fn first_time(&self) -> Option<i64> {
        match self.chunks.first() {
            Some(ch) => Some(ch.first),
            None => (self.tail_len > 0).then_some(self.tail_first),
        }
    }
    pub fn last_time(&self) -> Option<i64> {
        if self.tail_len > 0 {
            return Some(self.tail_last);
        }
        self.chunks.last().map(|ch| ch.last)
    }

    fn tail_rows(&self) -> Vec<Candle> {
        let mut out = Vec::with_capacity(self.tail_len.min(self.tail.len() / 8 + 1));
        self.tail_rows_into(&mut out);
        out
    }

    /// The tail's candles appended to `out`; none if the tail does not decode (never: its
    /// bytes are checked when loaded).
    fn tail_rows_into(&self, out: &mut Vec<Candle>) {
        let len = out.len();
        let r = rows::decode_rows_into(&self.tail, self.tail_len, out);
        debug_assert!(r.is_ok(), "tail does not decode");
        if r.is_err() {
            out.truncate(len);
        }
    }

    /// Seals the tail's candles and then `newer` (ascending, newer than the tail), as
    /// [`Self::seal_rows`] does, gathered in a spare vector ([`crate::candle::spare_vec`]):
    /// a fresh one, and its regrowth for `newer`, faulted in ~9 pages each inside Redis.
    fn seal_tail_and(&mut self, newer: &[Candle]) {
        let mut rows = crate::candle::spare_vec(self.tail_len + newer.len());
        self.tail_rows_into(&mut rows);
        rows.extend_from_slice(newer);
        self.seal_rows(&rows);
        crate::candle::recycle(rows);
    }

    fn set_tail(&mut self, rows: &[Candle]) {
        let mut buf = Vec::new();
        rows::encode_rows(rows, &mut buf);
        buf.shrink_to_fit();
        self.tail = buf;
        self.tail_len = rows.len();
        self.tail_first = rows.first().map_or(0, |c| c.open_time);
        self.tail_last = rows.last().map_or(0, |c| c.open_time);
    }

    /// True when `t` belongs to the tail region (newer than every chunk).
    fn in_tail_region(&self, t: i64) -> bool {
        self.chunks.last().is_none_or(|ch| t > ch.last)
    }

    /// Index of the first chunk whose last time is `>= t`.
    fn chunk_at(&self, t: i64) -> usize {
        self.chunks.partition_point(|ch| ch.last < t)
    }

    pub fn get(&self, t: i64) -> Option<Candle> {
        if self.in_tail_region(t) {
            if self.tail_len == 0 || t < self.tail_first || t > self.tail_last {
                return None;
            }
            return self.tail_rows().into_iter().find(|c| c.open_time == t);
        }
        let ch = self.chunks.get(self.chunk_at(t))?;
        if t < ch.first {
            return None;
        }
        let cs = ch.candles();
        let i = cs.binary_search_by_key(&t, |c| c.open_time).ok()?;
        cs.into_iter().nth(i)
    }

    pub fn contains(&self, t: i64) -> bool {
        if self.in_tail_region(t) {
            return self.tail_len > 0
                && t >= self.tail_first
                && t <= self.tail_last
                && self.tail_rows().iter().any(|c| c.open_time == t);
        }
        match self.chunks.get(self.chunk_at(t)) {
            Some(ch) if t >= ch.first => ch.times().binary_search(&t).is_ok(),
            _ => false,
        }
    }

    /// Inserts, or overwrites the candle at the same open time.
    pub fn put(&mut self, c: Candle) {
        if !self.in_tail_region(c.open_time) {
            self.put_in_chunk(c);
            return;
        }
        if self.tail_len == 0 || c.open_time > self.tail_last {
            let prev = if self.tail_len == 0 {
                0
            } else {
                self.tail_last
            };
            // Grow in small exact steps: the tail's capacity is counted by mem_usage.
            if self.tail.capacity() - self.tail.len() < TAIL_ROOM {
                self.tail.reserve_exact(TAIL_GROW);
            }
            rows::put_row(&mut self.tail, &c, prev);
            if self.tail_len == 0 {
                self.tail_first = c.open_time;
            }
            self.tail_last = c.open_time;
            self.tail_len += 1;
            self.len += 1;
        } else {
            let mut rows = self.tail_rows();
            match rows.binary_search_by_key(&c.open_time, |r| r.open_time) {
                Ok(i) => {
                    if let Some(r) = rows.get_mut(i) {
                        *r = c;
                    }
                }
                Err(i) => {
                    rows.insert(i, c);
                    self.len += 1;
                }
            }
            self.set_tail(&rows);
        }
        if self.tail_len >= self.tail_max() {
            self.flush_tail();
        }
    }

    /// Puts every candle, in order: the same candles as calling [`put`](Self::put) for each.
    /// A run of appends (strictly ascending, newer than everything stored, at least
    /// `2 * TAIL_MAX`) takes a fast path that encodes each chunk it fills once: the tail
    /// topped up to `TAIL_MAX`, then the batch in blocks of `TAIL_MAX`, are packed into chunks
    /// of up to `CHUNK_MAX` (one-by-one puts stop merging at half a chunk), its last candles
    /// sealed too, leaving the tail empty. It tops up the last sealed chunk only when that
    /// holds fewer than [`REOPEN_BELOW`] candles; from a fuller one it
    /// starts a new chunk (decoding and re-encoding ~200 candles to add a few costs more than
    /// the slightly shorter chunk saves). The layout depends only on the sequence of calls, so
    /// a replica or an AOF replaying the same effects builds the same bytes.
    pub fn put_all(&mut self, cs: &[Candle]) {
        let appends = crate::candle::strictly_ascending(cs)
            && cs
                .first()
                .is_some_and(|c| self.last_time().is_none_or(|l| c.open_time > l));
        if !appends {
            self.put_scattered(cs);
            return;
        }
        if cs.len() < 2 * TAIL_MAX {
            // One by one, except that the candles that fill the tail go into its flush
            // as they are (rows written to be read straight back otherwise): the same store.
            let mut rest = cs;
            let max = self.tail_max();
            while self.tail_len < max && self.tail_len + rest.len() >= max {
                let (head, after) = rest.split_at(max - self.tail_len);
                self.len += head.len();
                self.seal_tail_and(head);
                rest = after;
            }
            for c in rest {
                self.put(*c);
            }
            return;
        }
        // 1. The candles that fill the tail up to its first flush: the tail's rows and they are
        //    the first block flushed (an empty tail: the first TAIL_MAX candles are).
        let mut i = 0;
        let mut first: Option<Vec<Candle>> = None;
        if self.tail_len >= TAIL_MAX {
            // A streamed store's longer tail (or a store no longer streamed): one by one
            // until a flush has emptied it.
            while let Some(c) = cs.get(i).filter(|_| i == 0 || self.tail_len > 0) {
                self.put(*c);
                i += 1;
            }
        } else if self.tail_len > 0 {
            // cs.len() >= 2 * TAIL_MAX: the batch fills the tail.
            let need = (TAIL_MAX - self.tail_len).min(cs.len());
            let mut rows = self.tail_rows();
            rows.extend_from_slice(cs.get(..need).unwrap_or(&[]));
            self.tail = Vec::new();
            self.tail_len = 0;
            self.len += need;
            first = Some(rows);
            i = need;
        }
        // 2. Blocks of TAIL_MAX (the last one may be shorter): each would fill the empty tail
        //    and flush it at once (the last as if sealed). Merge them as `flush_tail` would,
        //    keeping the chunk being filled decoded.
        if self.tail_len == 0 {
            let start = i;
            i = cs.len();
            self.len += i - start;
            // The chunk being filled: owned candles (the decoded last chunk, the first block)
            // then the batch's `cs[run]`, which is sealed in place, copied only behind owned
            // candles (most chunks are cut from the batch alone). While there is one, whether
            // it is already in `chunks`.
            let mut open: Vec<Candle> = Vec::new();
            let mut run = start..start;
            let mut in_chunks: Option<bool> = None;
            let sizes = first.as_ref().map(|f| (f.len(), None));
            let body = (start..i)
                .step_by(TAIL_MAX)
                .map(|at| ((i - at).min(TAIL_MAX), Some(at)));
            for (len, at) in sizes.into_iter().chain(body) {
                let last_n = match in_chunks {
                    Some(_) => Some(open.len() + run.len()),
                    // A last chunk at least half full stays sealed (see `put_all`).
                    None => self
                        .chunks
                        .last()
                        .map(|ch| ch.n as usize)
                        .filter(|&n| n < REOPEN_BELOW),
                };
                if last_n.is_some_and(|n| n + len <= CHUNK_MAX) {
                    if in_chunks.is_none() {
                        open = self.chunks.last().map(Chunk::candles).unwrap_or_default();
                        in_chunks = Some(true);
                    }
                } else {
                    if let Some(placed) = in_chunks {
                        self.seal_open(&mut open, cs.get(run.clone()).unwrap_or(&[]), placed);
                    }
                    open.clear();
                    let from = at.unwrap_or(start);
                    run = from..from;
                    in_chunks = Some(false);
                }
                match at {
                    // The first block: `run` is still empty, so order is kept.
                    None => open.extend_from_slice(first.as_deref().unwrap_or(&[])),
                    Some(at) => run.end = at + len,
                }
            }
            if let Some(placed) = in_chunks {
                self.seal_open(&mut open, cs.get(run).unwrap_or(&[]), placed);
            }
        }
        // 3. What step 1 left when it used up the batch (nothing after step 2).
        for c in cs.get(i..).unwrap_or(&[]) {
            self.put(*c);
        }
    }

    /// `put_all` for a batch that is not a pure append (gap fills, corrections, re-sent
    /// pages). Candles that land inside sealed chunks are grouped by chunk, so each touched
    /// chunk is decoded and re-encoded once (split evenly when it outgrows `CHUNK_MAX`)
    /// instead of once per candle; the others go to the tail one by one. The result holds
    /// the same candles as one-by-one puts, and is itself deterministic (replicas applying the
    /// same batch build the same chunks). Later candles of the batch win over earlier ones at
    /// the same open time, as with one-by-one puts.
    fn put_scattered(&mut self, cs: &[Candle]) {
        let (mut inner, outer): (Vec<&Candle>, Vec<&Candle>) =
            cs.iter().partition(|c| !self.in_tail_region(c.open_time));
        // Stable: for equal times the later candle stays later, and wins below.
        inner.sort_by_key(|c| c.open_time);
        let mut groups: Vec<(usize, Vec<&Candle>)> = Vec::new();
        for c in inner {
            let idx = self.chunk_at(c.open_time);
            match groups.last_mut() {
                Some((i, g)) if *i == idx => g.push(c),
                _ => groups.push((idx, vec![c])),
            }
        }
        // Back to front, so splitting a chunk does not move the ones still to do.
        for (idx, group) in groups.into_iter().rev() {
            let Some(ch) = self.chunks.get(idx) else {
                continue;
            };
            let mut merged = ch.candles();
            self.chunk_bytes -= ch.data.len();
            for c in group {
                match merged.binary_search_by_key(&c.open_time, |x| x.open_time) {
                    Ok(i) => {
                        if let Some(x) = merged.get_mut(i) {
                            *x = *c;
                        }
                    }
                    Err(i) => {
                        merged.insert(i, *c);
                        self.len += 1;
                    }
                }
            }
            let pieces = merged.len().div_ceil(CHUNK_MAX).max(1);
            let size = merged.len().div_ceil(pieces).max(1);
            let sealed: Vec<Chunk> = merged.chunks(size).map(Chunk::seal).collect();
            self.chunk_bytes += sealed.iter().map(|c| c.data.len()).sum::<usize>();
            self.chunks.splice(idx..=idx, sealed);
        }
        for c in outer {
            self.put(*c);
        }
    }

    /// The stored candles at `times` (ascending for best speed), decoding each chunk the
    /// times touch once, where `get` would decode one chunk per time.
    pub fn get_many(&self, times: &[i64]) -> Vec<Option<Candle>> {
        let mut decoded: Option<(usize, Vec<Candle>)> = None;
        let mut tail: Option<Vec<Candle>> = None;
        times
            .iter()
            .map(|&t| {
                let rows: &[Candle] = if self.in_tail_region(t) {
                    if self.tail_len == 0 || t < self.tail_first || t > self.tail_last {
                        return None;
                    }
                    tail.get_or_insert_with(|| self.tail_rows())
                } else {
                    let idx = self.chunk_at(t);
                    let ch = self.chunks.get(idx)?;
                    if t < ch.first {
                        return None;
                    }
                    if decoded.as_ref().is_none_or(|(i, _)| *i != idx) {
                        decoded = Some((idx, ch.candles()));
                    }
                    decoded.as_ref().map_or(&[][..], |(_, v)| v)
                };
                rows.binary_search_by_key(&t, |c| c.open_time)
                    .ok()
                    .and_then(|i| rows.get(i).cloned())
            })
            .collect()
    }

    /// Seals `open` then `batch` as the last chunk (see [`place_last`](Self::place_last)),
    /// copying `batch` only behind owned candles.
    fn seal_open(&mut self, open: &mut Vec<Candle>, batch: &[Candle], in_chunks: bool) {
        if open.is_empty() {
            self.place_last(batch, in_chunks);
        } else {
            // One allocation of the chunk's size: regrowing would copy the owned candles too.
            open.reserve_exact(batch.len());
            open.extend_from_slice(batch);
            self.place_last(open, in_chunks);
        }
    }

    /// Seals `cs` as the last chunk: replacing it (`in_chunks`) or as a new one.
    fn place_last(&mut self, cs: &[Candle], in_chunks: bool) {
        let ch = Chunk::seal(cs);
        self.chunk_bytes += ch.data.len();
        match self.chunks.last_mut() {
            Some(last) if in_chunks => {
                self.chunk_bytes -= last.data.len();
                *last = ch;
            }
            _ => self.push_chunk(ch),
        }
    }

    /// Appends a chunk, growing the index by an eighth rather than doubling it: the index
    /// is counted by `mem_usage`, and a doubled one of a streamed series (chunks appended
    /// one flush at a time) held up to ~0.3 B per candle of empty slots.
    fn push_chunk(&mut self, ch: Chunk) {
        if self.chunks.len() == self.chunks.capacity() {
            self.chunks.reserve_exact(self.chunks.len() / 8 + 4);
        }
        self.chunks.push(ch);
    }

    /// Seals the tail's rows into the chunks ([`seal_rows`](Self::seal_rows)).
    fn flush_tail(&mut self) {
        if self.tail_len == 0 {
            return;
        }
        self.seal_tail_and(&[]);
    }

    /// Seals `rows` (the tail's candles, then any newer ones, ascending) as a tail flush does,
    /// leaving the tail empty: as a chunk of their own, until they and the newest chunks of
    /// fewer than [`REOPEN_BELOW`] candles (earlier flushes) reach `REOPEN_BELOW` together;
    /// then those chunks are decoded once and all of it sealed as one chunk. Streamed
    /// candles are so encoded 1.75 times on average (32, 32, 32, then 128 at once) and
    /// decoded 0.75 times, where reopening the last chunk at every flush (32, 64, 96, 128)
    /// encoded them 2.5 times and decoded them 1.5 times, for the same chunks of 128.
    fn seal_rows(&mut self, rows: &[Candle]) {
        let (mut k, mut held) = (0, 0);
        for ch in self.chunks.iter().rev() {
            let n = ch.n as usize;
            if n >= REOPEN_BELOW || held + n + rows.len() > CHUNK_MAX {
                break;
            }
            k += 1;
            held += n;
        }
        let from = self.chunks.len() - k;
        if k > 0 && held + rows.len() >= REOPEN_BELOW {
            // Decoded into room for the rows too (no regrowth copying the chunks' candles).
            let mut cs = Vec::with_capacity(held + rows.len());
            for ch in self.chunks.get(from..).unwrap_or(&[]) {
                ch.candles_into(&mut cs);
                self.chunk_bytes -= ch.data.len();
            }
            cs.extend(rows);
            self.chunks.truncate(from);
            let ch = Chunk::seal(&cs);
            self.chunk_bytes += ch.data.len();
            self.push_chunk(ch);
        } else {
            let ch = Chunk::seal(rows);
            self.chunk_bytes += ch.data.len();
            self.push_chunk(ch);
        }
        self.tail = Vec::new();
        self.tail_len = 0;
    }

    fn put_in_chunk(&mut self, c: Candle) {
        let idx = self.chunk_at(c.open_time);
        let Some(ch) = self.chunks.get_mut(idx) else {
            return;
        };
        let mut cs = ch.candles();
        match cs.binary_search_by_key(&c.open_time, |x| x.open_time) {
            Ok(i) => {
                if let Some(x) = cs.get_mut(i) {
                    *x = c;
                }
            }
            Err(i) => {
                cs.insert(i, c);
                self.len += 1;
            }
        }
        self.chunk_bytes -= ch.data.len();
        if cs.len() > CHUNK_MAX {
            let (a, b) = cs.split_at(cs.len() / 2);
            *ch = Chunk::seal(a);
            let second = Chunk::seal(b);
            self.chunk_bytes += ch.data.len() + second.data.len();
            self.chunks.insert(idx + 1, second);
        } else {
            *ch = Chunk::seal(&cs);
            self.chunk_bytes += ch.data.len();
        }
    }

    /// Candles with `from <= open_time <= to`, ascending; only the newest `limit` when given.
    pub fn range(&self, from: i64, to: i64, limit: Option<usize>) -> Vec<Candle> {
        let mut out = Vec::new();
        self.visit_range(from, to, limit, |cs| out.extend_from_slice(cs));
        if let Some(n) = limit {
            // Already exact unless an internal chunk failed to decode.
            if out.len() > n {
                out.drain(..out.len() - n);
            }
        }
        out
    }

    /// [`range`](Self::range) without collecting it: `f` sees the candles in order, a run
    /// of one chunk (or of the tail) at a time, so a long read holds one decoded chunk at
    /// a time rather than the whole range.
    pub fn visit_range(
        &self,
        from: i64,
        to: i64,
        limit: Option<usize>,
        mut f: impl FnMut(&[Candle]),
    ) {
        if from > to || limit == Some(0) || self.len == 0 {
            return;
        }
        let in_range = |c: &Candle| c.open_time >= from && c.open_time <= to;
        let tail_hit = self.tail_len > 0 && self.tail_first <= to && self.tail_last >= from;
        let lo = self.chunk_at(from);
        let hi = self.chunks.partition_point(|ch| ch.first <= to); // chunks[lo..hi] overlap
        let chunks = self.chunks.get(lo..hi).unwrap_or(&[]);
        let mut tail: Vec<Candle> = if tail_hit {
            self.tail_rows()
        } else {
            Vec::new()
        };
        tail.retain(in_range);
        // With a limit, the tail's oldest may be unwanted too.
        if let Some(n) = limit {
            if tail.len() > n {
                tail.drain(..tail.len() - n);
            }
        }
        // The chunks to decode, `chunks[first..]`, and how many of the oldest one's candles
        // in range are not wanted (with a limit: only the newest `n`). Chunks straddling a
        // bound have their times decoded to count them.
        let (mut first, mut skip) = (0, 0);
        if let Some(n) = limit {
            let mut need = n.saturating_sub(tail.len());
            first = chunks.len();
            while need > 0 && first > 0 {
                first -= 1;
                let cnt = chunks.get(first).map_or(0, |ch| ch.count_in(from, to));
                skip = cnt.saturating_sub(need);
                need -= cnt.min(need);
            }
        }
        let mut buf: Vec<Candle> = Vec::new();
        for (i, ch) in chunks.get(first..).unwrap_or(&[]).iter().enumerate() {
            buf.clear();
            ch.candles_into(&mut buf);
            // Ascending times: the candles in range are one run of the chunk.
            let a = buf.partition_point(|c| c.open_time < from);
            let b = buf.partition_point(|c| c.open_time <= to);
            let a = if i == 0 { a + skip } else { a };
            if let Some(run) = buf.get(a..b).filter(|r| !r.is_empty()) {
                f(run);
            }
        }
        if !tail.is_empty() {
            f(&tail);
        }
    }

    /// Open times with `from <= t <= to`, ascending.
    pub fn times(&self, from: i64, to: i64) -> Vec<i64> {
        if from > to {
            return Vec::new();
        }
        let lo = self.chunk_at(from);
        let hi = self.chunks.partition_point(|ch| ch.first <= to);
        let mut out = Vec::new();
        for ch in self.chunks.get(lo..hi).unwrap_or(&[]) {
            out.extend(ch.times().into_iter().filter(|&t| t >= from && t <= to));
        }
        if self.tail_len > 0 && self.tail_first <= to && self.tail_last >= from {
            out.extend(
                self.tail_rows()
                    .iter()
                    .map(|c| c.open_time)
                    .filter(|&t| t >= from && t <= to),
            );
        }
        out
    }

    /// Drops the `n` oldest candles.
    pub fn remove_oldest(&mut self, n: usize) {
        let mut n = n.min(self.len);
        if n == 0 {
            return;
        }
        self.len -= n;
        let mut whole = 0usize;
        for ch in &self.chunks {
            if ch.n as usize > n {
                break;
            }
            n -= ch.n as usize;
            whole += 1;
        }
        self.chunk_bytes -= self
            .chunks
            .drain(..whole)
            .map(|ch| ch.data.len())
            .sum::<usize>();
        if n > 0 {
            if let Some(ch) = self.chunks.first_mut() {
                let cs = ch.candles();
                self.chunk_bytes -= ch.data.len();
                *ch = Chunk::seal(cs.get(n..).unwrap_or(&[]));
                self.chunk_bytes += ch.data.len();
            } else {
                let rows = self.tail_rows();
                self.set_tail(rows.get(n..).unwrap_or(&[]));
                if self.tail_len == 0 {
                    self.tail = Vec::new();
                }
            }
        }
        if self.chunks.capacity() > 2 * self.chunks.len() + 4 {
            self.chunks.shrink_to_fit();
        }
    }

    /// All candles, ascending.
    pub fn iter(&self) -> impl Iterator<Item = Candle> + '_ {
        self.chunks
            .iter()
            .flat_map(|ch| ch.candles())
            .chain(std::iter::once(()).flat_map(move |_| self.tail_rows()))
    }

    /// How many candles each sealed chunk holds, oldest first (for layout tests).
    #[doc(hidden)]
    pub fn chunk_lens(&self) -> Vec<usize> {
        self.chunks.iter().map(|ch| ch.n as usize).collect()
    }

    /// Heap bytes held: the chunk index, every chunk's bytes and the tail buffer.
    pub fn mem_usage(&self) -> usize {
        debug_assert_eq!(
            self.chunk_bytes,
            self.chunks.iter().map(|ch| ch.data.len()).sum::<usize>()
        );
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunk_bytes
            + self.tail.capacity()
    }

    /// The newest candles, from open time `first` on, in this store's own encoding
    /// ([`encode`](Self::encode)), when they are exactly the newest `n` and fill the newest
    /// sealed chunks whole (the tail empty): what a bulk append of them has just sealed. The
    /// chunks' bytes are copied as they are (no encoding); `false` (nothing written) otherwise.
    pub fn encode_newest(&self, first: i64, n: usize, out: &mut Vec<u8>) -> bool {
        if self.tail_len != 0 || n == 0 {
            return false;
        }
        let (mut k, mut held) = (0usize, 0usize);
        for ch in self.chunks.iter().rev() {
            if held >= n {
                break;
            }
            held += ch.n as usize;
            k += 1;
        }
        let newest = self.chunks.get(self.chunks.len() - k..).unwrap_or(&[]);
        if held != n || newest.first().is_none_or(|ch| ch.first != first) {
            return false;
        }
        out.reserve(16 + newest.iter().map(|ch| ch.data.len() + 4).sum::<usize>());
        put_store(out, n, newest, 0, &[]);
        true
    }

    /// Appends `sealed`'s chunks as they are (no encoding) when they all follow this store's
    /// newest candle and neither store has a tail: what a bulk append of their candles left
    /// on the master that sent them ([`encode_newest`](Self::encode_newest) holds only whole
    /// chunks that extended a store with an empty tail, and leaves none), so a replica or an
    /// AOF replay that applies it builds the master's bytes without re-encoding them.
    /// `false` (nothing changed) otherwise: the caller then puts the candles.
    pub fn append_sealed(&mut self, sealed: &ChunkedStore) -> bool {
        let follows = match (self.last_time(), sealed.first_time()) {
            (_, None) => false,
            (Some(last), Some(first)) => first > last,
            (None, Some(_)) => true,
        };
        if !follows || self.tail_len != 0 || sealed.tail_len != 0 {
            return false;
        }
        // One at a time, as the master sealed them: the index grows the same (`mem_usage`
        // counts its capacity, and `MEMORY USAGE` is the same on master and replica).
        for ch in &sealed.chunks {
            self.push_chunk(ch.clone());
        }
        self.len += sealed.len;
        self.chunk_bytes += sealed.chunk_bytes;
        true
    }

    /// Serialises the store (for RDB): sealed chunks are written as they are in memory.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_store(out, self.len, &self.chunks, self.tail_len, &self.tail);
    }

    /// Reads what [`encode`](Self::encode) wrote, verifying every chunk and the ordering.
    pub fn decode(bytes: &[u8]) -> CoreResult<ChunkedStore> {
        Self::decode_with(bytes, false).map(|(s, _)| s)
    }

    /// [`decode`](Self::decode), with every candle it holds, ascending (each chunk is decoded
    /// once: verifying it is decoding it).
    pub fn decode_with_candles(bytes: &[u8]) -> CoreResult<(ChunkedStore, Vec<Candle>)> {
        Self::decode_with(bytes, true)
    }

    /// `decode`, and the candles when `keep` (else each chunk's are dropped after its checks).
    fn decode_with(bytes: &[u8], keep: bool) -> CoreResult<(ChunkedStore, Vec<Candle>)> {
        let mut all = Vec::new();
        let bad = |m: &str| CoreError::corrupt(format!("corrupt candle store: {m}"));
        let mut pos = 0usize;
        match bytes.first() {
            Some(&(1 | FORMAT_VERSION)) => pos += 1,
            Some(v) => return Err(bad(&format!("unknown format version {v}"))),
            None => return Err(bad("empty")),
        }
        let count = |pos: &mut usize| -> CoreResult<usize> {
            usize::try_from(rows::get_varint(bytes, pos)?).map_err(|_| bad("count too large"))
        };
        let total = count(&mut pos)?;
        let nchunks = count(&mut pos)?;
        let remaining = bytes.len().saturating_sub(pos);
        let mut chunks = Vec::with_capacity(nchunks.min(remaining / 2));
        let mut seen = 0usize;
        let mut prev_last: Option<i64> = None;
        for _ in 0..nchunks {
            let blen = count(&mut pos)?;
            let end = pos
                .checked_add(blen)
                .filter(|&e| e <= bytes.len())
                .ok_or_else(|| bad("truncated chunk"))?;
            let data = bytes.get(pos..end).ok_or_else(|| bad("truncated chunk"))?;
            pos = end;
            if !keep {
                all.clear();
            }
            let from = all.len();
            codec::decode_chunk_into(data, &mut all)?;
            let cs = all.get(from..).unwrap_or(&[]);
            let (Some(first), Some(last)) = (cs.first(), cs.last()) else {
                return Err(bad("empty chunk"));
            };
            if prev_last.is_some_and(|p| first.open_time <= p) {
                return Err(bad("chunks out of order"));
            }
            prev_last = Some(last.open_time);
            seen += cs.len();
            chunks.push(Chunk {
                first: first.open_time,
                last: last.open_time,
                n: cs.len() as u32,
                data: data.into(),
            });
        }
        let tail_n = count(&mut pos)?;
        let tail_bytes = count(&mut pos)?;
        if tail_n >= STREAM_TAIL_MAX.max(TAIL_MAX) {
            return Err(bad("tail too long"));
        }
        let end = pos
            .checked_add(tail_bytes)
            .filter(|&e| e == bytes.len())
            .ok_or_else(|| bad("bad tail length"))?;
        let rows = rows::decode_rows(bytes.get(pos..end).unwrap_or(&[]), tail_n)?;
        if let (Some(p), Some(first)) = (prev_last, rows.first()) {
            if first.open_time <= p {
                return Err(bad("tail out of order"));
            }
        }
        seen += rows.len();
        if seen != total {
            return Err(bad("candle count mismatch"));
        }
        if keep {
            all.extend_from_slice(&rows);
        }
        let chunk_bytes = chunks.iter().map(|ch: &Chunk| ch.data.len()).sum();
        let mut s = ChunkedStore {
            chunk_bytes,
            chunks,
            tail: Vec::new(),
            tail_len: 0,
            tail_first: 0,
            tail_last: 0,
            len: total,
            streamed: false,
        };
        if !rows.is_empty() {
            s.set_tail(&rows);
        }
        Ok((s, all))
    }
}

/// The store format ([`ChunkedStore::encode`]): `len` candles, `chunks` as they are in
/// memory, then the tail's `tail_len` rows.
fn put_store(out: &mut Vec<u8>, len: usize, chunks: &[Chunk], tail_len: usize, tail: &[u8]) {
    let v2 = chunks.iter().any(|ch| codec::is_format2(&ch.data));
    out.push(if v2 { FORMAT_VERSION } else { 1 });
    rows::put_varint(out, len as u128);
    rows::put_varint(out, chunks.len() as u128);
    for ch in chunks {
        rows::put_varint(out, ch.data.len() as u128);
        out.extend_from_slice(&ch.data);
    }
    rows::put_varint(out, tail_len as u128);
    rows::put_varint(out, tail.len() as u128);
    out.extend_from_slice(tail);
}

/// The chunks decoded on this thread since the last call, by the address of their bytes,
/// and whether whole (`true`) or only their open times: for tests of what reads touch.
#[cfg(test)]
pub(crate) fn take_decoded() -> Vec<(usize, bool)> {
    codec::DECODED.with(|d| std::mem::take(&mut *d.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::rest_1m_copy;

    const MIN: i64 = 60_000;

    /// The real 1m fixture five times over (shifted by 1000 minutes each time), put as
    /// REST-sized batches, then ten more candles streamed one by one: 5,010 candles, 19 full
    /// chunks, partial ones and a short tail.
    fn store() -> (ChunkedStore, Vec<Candle>) {
        let mut s = ChunkedStore::new();
        let mut all = Vec::new();
        for rep in 0..5 {
            let batch = rest_1m_copy(rep);
            s.put_all(&batch);
            all.extend(batch);
        }
        for c in rest_1m_copy(5).into_iter().take(10) {
            s.put(c);
            all.push(c);
        }
        assert_eq!(s.len(), 5010);
        assert!(s.chunks.len() >= 19 && s.tail_len > 0, "{s:?}");
        (s, all)
    }

    fn bytes(s: &ChunkedStore) -> Vec<u8> {
        let mut out = Vec::new();
        s.encode(&mut out);
        out
    }

    /// A replica appends the chunks a bulk append sealed on the master as they are (the
    /// master's bytes; each chunk decoded once, to verify it and for its candles); chunks
    /// that do not extend the store are refused and change nothing.
    #[test]
    fn sealed_chunks_install_as_they_are() {
        let (mut master, mut replica) = (ChunkedStore::new(), ChunkedStore::new());
        let mut blobs = Vec::new();
        for rep in 0..3 {
            let batch = rest_1m_copy(rep);
            master.put_all(&batch);
            let mut blob = Vec::new();
            assert!(master.encode_newest(batch[0].open_time, batch.len(), &mut blob));
            take_decoded();
            let (sealed, candles) = ChunkedStore::decode_with_candles(&blob).unwrap();
            assert_eq!(take_decoded().len(), sealed.chunks.len());
            assert_eq!(candles, batch);
            assert!(replica.append_sealed(&sealed));
            assert_eq!(bytes(&replica), bytes(&master));
            assert_eq!(replica.mem_usage(), master.mem_usage());
            blobs.push(blob);
        }
        let before = bytes(&replica);
        let (old, _) = ChunkedStore::decode_with_candles(&blobs[1]).unwrap();
        assert!(!replica.append_sealed(&old), "not after the newest");
        assert!(!replica.append_sealed(&ChunkedStore::new()), "empty");
        let mut tailed = ChunkedStore::new();
        tailed.put(rest_1m_copy(9)[0]);
        assert!(!replica.append_sealed(&tailed), "a tail is not sealed");
        assert_eq!(bytes(&replica), before);
        // A store with a tail puts the candles instead (its tail goes first).
        let batch = rest_1m_copy(3);
        let mut streamed = replica.clone();
        streamed.put(batch[0]);
        let mut rest = ChunkedStore::new();
        rest.put_all(&batch[1..]);
        let mut blob = Vec::new();
        assert!(rest.encode_newest(batch[1].open_time, batch.len() - 1, &mut blob));
        let (sealed, _) = ChunkedStore::decode_with_candles(&blob).unwrap();
        assert!(!streamed.append_sealed(&sealed));
        // `decode` and `decode_with_candles` read the same store.
        let s = store().0;
        let b = bytes(&s);
        let (with, candles) = ChunkedStore::decode_with_candles(&b).unwrap();
        assert_eq!(bytes(&with), b);
        assert_eq!(bytes(&ChunkedStore::decode(&b).unwrap()), b);
        assert_eq!(candles, s.iter().collect::<Vec<_>>());
    }

    /// What `f` decodes of `s`: (chunk index, whole) in decoding order.
    fn decodes<T>(s: &ChunkedStore, f: impl FnOnce() -> T) -> (T, Vec<(usize, bool)>) {
        take_decoded();
        let out = f();
        let seen = take_decoded()
            .into_iter()
            .map(|(at, whole)| {
                let i = s
                    .chunks
                    .iter()
                    .position(|ch| ch.data.as_ptr() as usize == at);
                (i.expect("a chunk of this store"), whole)
            })
            .collect();
        (out, seen)
    }

    /// The chunks a read of `[from, to]` (the newest `limit` when given) cannot do without:
    /// those overlapping the range, and with a limit only the newest ones that hold it.
    fn needed(s: &ChunkedStore, from: i64, to: i64, limit: Option<usize>) -> Vec<usize> {
        let overlap: Vec<usize> = (0..s.chunks.len())
            .filter(|&i| s.chunks[i].last >= from && s.chunks[i].first <= to)
            .collect();
        let Some(n) = limit else {
            return overlap;
        };
        let in_tail = s
            .tail_rows()
            .iter()
            .filter(|c| c.open_time >= from && c.open_time <= to)
            .count();
        let mut need = n.saturating_sub(in_tail);
        let mut out = Vec::new();
        for &i in overlap.iter().rev() {
            if need == 0 {
                break;
            }
            let held = s.chunks[i]
                .candles()
                .iter()
                .filter(|c| c.open_time >= from && c.open_time <= to)
                .count();
            need = need.saturating_sub(held);
            out.push(i);
        }
        out.reverse();
        out
    }

    #[test]
    fn reads_decode_only_the_chunks_they_touch() {
        let (s, all) = store();
        let t = |i: usize| all[i].open_time;
        let (first, last) = (t(0), t(all.len() - 1));
        let ch = |i: usize| (s.chunks[i].first, s.chunks[i].last);
        let cases: Vec<(i64, i64, Option<usize>)> = vec![
            (t(300), t(310), None),              // inside one chunk
            (t(250), t(260), None),              // across a chunk boundary
            (ch(3).0, ch(3).1, None),            // exactly one chunk
            (ch(3).0, ch(5).1, Some(300)),       // the newest 300 of three chunks
            (first, last, Some(720)),            // a chart load
            (first, last, Some(1)),              // the newest candle: the tail only
            (first, last, Some(s.tail_len + 1)), // one candle more: the last chunk too
            (ch(7).1, ch(8).0, None),            // the last of one chunk, the first of the next
            (s.tail_first, i64::MAX, None),      // the tail only
            (i64::MIN, first - MIN, None),       // before everything
            (last + MIN, i64::MAX, Some(10)),    // after everything
            (t(1000) + 1, t(1001) - 1, None),    // between two candles
            (first, last, None),                 // everything
        ];
        for (from, to, limit) in cases {
            let (got, seen) = decodes(&s, || s.range(from, to, limit));
            let want: Vec<Candle> = all
                .iter()
                .filter(|c| c.open_time >= from && c.open_time <= to)
                .copied()
                .collect();
            let want = &want[want.len() - limit.unwrap_or(want.len()).min(want.len())..];
            assert_eq!(got, want, "{from}..{to} {limit:?}");
            let need = needed(&s, from, to, limit);
            let whole: Vec<usize> = seen.iter().filter(|d| d.1).map(|d| d.0).collect();
            assert_eq!(whole, need, "{from}..{to} {limit:?}: chunks decoded whole");
            // Only times of a chunk the read needs, to count how much of it is in range.
            for &(i, w) in &seen {
                assert!(
                    w || need.contains(&i),
                    "{from}..{to} {limit:?}: times of chunk {i}"
                );
            }
            assert!(
                seen.len() <= 2 * need.len(),
                "{from}..{to} {limit:?}: {seen:?}"
            );

            // Open times (GAPS): only the times of the chunks in range, once each.
            let (times, seen) = decodes(&s, || s.times(from, to));
            let want_t: Vec<i64> = all
                .iter()
                .map(|c| c.open_time)
                .filter(|&x| x >= from && x <= to)
                .collect();
            assert_eq!(times, want_t);
            let only_times: Vec<(usize, bool)> = needed(&s, from, to, None)
                .into_iter()
                .map(|i| (i, false))
                .collect();
            assert_eq!(seen, only_times, "times {from}..{to}");
        }

        // Point reads: one chunk (its times only for `contains`); none in the tail.
        for i in [0, 255, 256, 2500, 4900, all.len() - 1] {
            let (got, seen) = decodes(&s, || s.get(t(i)));
            assert_eq!(got, Some(all[i]));
            let (has, seen_c) = decodes(&s, || s.contains(t(i)));
            assert!(has);
            let owner = s
                .chunks
                .iter()
                .position(|c| c.first <= t(i) && c.last >= t(i));
            assert_eq!(
                seen,
                owner.map(|k| (k, true)).into_iter().collect::<Vec<_>>()
            );
            assert_eq!(
                seen_c,
                owner.map(|k| (k, false)).into_iter().collect::<Vec<_>>()
            );
        }
        // Many times across two chunks: each decoded once.
        let times = [t(10), t(20), t(300), t(301), t(302)];
        let (got, seen) = decodes(&s, || s.get_many(&times));
        assert!(got.iter().all(Option::is_some));
        assert_eq!(seen, vec![(0, true), (1, true)]);
    }
}
