//! The book: [`TickBook`], the named streams of one trading session, with the push
//! commands' checks, the reads (latest, range, merged across streams), and the canonical
//! encoding (RDB payload and digest input) with its validating decoder.

use super::batch::TickBatch;
use super::codec::{corrupt, encode_value, CodecState, Reader};
use super::stream::{AscIter, DescIter, Raw, Shape, Stream, NO_SHAPE};
use super::value::TickSrc;
use super::value::{check_name, Tick};
use super::{
    CHUNK, MAX_CAP, MAX_FIELDS, MAX_NAMES_PER_STREAM, MAX_NAME_BYTES, MAX_SHAPES_PER_STREAM,
};
use crate::error::{CoreError, CoreResult};
use crate::varint::{put_bytes, put_u64};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::ops::Deref;

/// Header of the canonical encoding: magic and version.
pub(super) const ENCODING_MAGIC: &[u8; 4] = b"TKB\x01";

/// One stream's summary for `TICKS.STREAMS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    pub name: Vec<u8>,
    pub len: usize,
    pub cap: usize,
    pub newest_time: Option<i64>,
}

/// `TICKS.INFO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookInfo {
    pub streams: usize,
    pub ticks: usize,
    pub late_ticks: usize,
    pub cap_min: usize,
    pub cap_max: usize,
    pub memory: usize,
}

/// What a push did to its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushOutcome {
    /// The stream's length after the push.
    pub len: usize,
    /// The stream's cap after the push.
    pub cap: usize,
    /// True when the push created the stream.
    pub created: bool,
}

/// The checks of a push that do not depend on its ticks.
pub(super) fn check_push_args(
    stream: &[u8],
    maxlen: Option<usize>,
    default_cap: usize,
) -> CoreResult<()> {
    check_name(stream, "stream")?;
    let check_cap = |c: usize, what: &str| {
        if c == 0 || c > MAX_CAP {
            Err(CoreError::invalid(format!(
                "{what} must be between 1 and {MAX_CAP}"
            )))
        } else {
            Ok(())
        }
    };
    if let Some(m) = maxlen {
        check_cap(m, "MAXLEN")?;
    }
    check_cap(default_cap, "tick cap")
}

/// The checks of a push against its stream's dictionary (`known` names, `fresh` new ones)
/// and the book's sequence.
pub(super) fn check_room(known: usize, fresh: usize, next_seq: u64, n: usize) -> CoreResult<()> {
    if known + fresh > MAX_NAMES_PER_STREAM {
        return Err(CoreError::invalid(format!(
            "stream would have more than {MAX_NAMES_PER_STREAM} distinct field names"
        )));
    }
    if next_seq.checked_add(n as u64).is_none() {
        return Err(CoreError::invalid("tick book sequence exhausted"));
    }
    Ok(())
}

/// A tick book: named streams of ticks.
#[derive(Clone, Debug, Default)]
pub struct TickBook {
    pub(super) streams: BTreeMap<Box<[u8]>, Stream>,
    next_seq: u64,
    ticks: usize,
    mem: usize,
}

impl TickBook {
    pub fn new() -> Self {
        TickBook::default()
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    pub fn tick_count(&self) -> usize {
        self.ticks
    }

    pub fn is_empty(&self) -> bool {
        self.ticks == 0
    }

    /// Heap bytes held by the book (O(1)).
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<TickBook>() + self.mem
    }

    /// Units of work to free the book (for lazy free): chunks plus streams.
    pub fn free_effort(&self) -> usize {
        self.ticks / CHUNK + self.streams.len() + 1
    }

    /// Appends `ticks` (in order) to `stream`, creating it with cap `maxlen` or `default_cap`.
    /// With `maxlen`, the stream's cap becomes `maxlen`. Everything is validated first: on
    /// error nothing changes. Returns the stream's length.
    pub fn push(
        &mut self,
        stream: &[u8],
        maxlen: Option<usize>,
        default_cap: usize,
        ticks: &[Tick],
    ) -> CoreResult<usize> {
        check_push_args(stream, maxlen, default_cap)?;
        for t in ticks {
            t.validate()?;
        }
        self.push_validated(stream, maxlen, default_cap, ticks, None)
            .map(|o| o.len)
    }

    /// [`TickBook::push`] of a [`TickBatch`] (whose ticks were validated as they were added):
    /// the allocation-free path of the push commands.
    pub fn push_batch(
        &mut self,
        stream: &[u8],
        maxlen: Option<usize>,
        default_cap: usize,
        batch: &TickBatch,
    ) -> CoreResult<PushOutcome> {
        check_push_args(stream, maxlen, default_cap)?;
        let key = batch.uniform_key();
        batch.with_views(|views| self.push_validated(stream, maxlen, default_cap, views, key))
    }

    /// The lane of a JSON push (`TICKS.PUSH .. JSON doc [doc ..]`) that feeds take: every
    /// document is `batch`'s template document with other values (see
    /// [`TickBatch::push_json`]), for a stream whose last tick had the template's names.
    /// Each tick is encoded straight from its document as read (no tick is staged in the
    /// batch), after all documents were read: nothing is written unless every one is such a
    /// document. `None`, with the book unchanged, when the lane does not apply (a new stream,
    /// other names, a document of another layout or a bad one, bad arguments): the caller
    /// then pushes through [`TickBatch::push_json`] and [`TickBook::push_batch`], which decide
    /// and word any error. Same ticks, same stored bytes as that way.
    pub fn push_json_lane<D: Deref<Target = [u8]>>(
        &mut self,
        stream: &[u8],
        maxlen: Option<usize>,
        default_cap: usize,
        tf: &[u8],
        docs: &[D],
        batch: &mut TickBatch,
    ) -> Option<PushOutcome> {
        check_push_args(stream, maxlen, default_cap).ok()?;
        let TickBook {
            streams,
            next_seq,
            ticks: book_ticks,
            mem,
        } = self;
        let s = streams.get_mut(stream)?;
        let id = s.last_shape;
        if id == NO_SHAPE || docs.is_empty() || batch.template_key(tf)? != &s.last_key[..] {
            return None;
        }
        check_room(s.names.len(), 0, *next_seq, docs.len()).ok()?;
        let per_doc = batch.read_lane(docs, tf)?;
        if s.shapes.get(id as usize)?.fields.len() != per_doc {
            return None;
        }
        let counters = (next_seq, book_ticks, mem);
        Some(append_all(s, maxlen, counters, false, |s, seq| {
            for (k, d) in docs.iter().enumerate() {
                let doc: &[u8] = d;
                // Always there: `read_lane` read every document.
                let Some((time, vals)) = batch.lane_tick(k, per_doc) else {
                    continue;
                };
                s.append_record(Some(id), None, time, *seq, |out, enc, fids| {
                    for (pos, (v, &fid)) in vals.iter().zip(fids).enumerate() {
                        encode_value(out, enc, fid, pos, v.kind, v.text(doc), v.num);
                    }
                });
                *seq += 1;
            }
        }))
    }

    /// `key`: the shape key ([`super::batch::write_shape_key`]) every one of `ticks` has,
    /// when the caller knows it.
    pub(super) fn push_validated<T: TickSrc>(
        &mut self,
        stream: &[u8],
        maxlen: Option<usize>,
        default_cap: usize,
        ticks: &[T],
        key: Option<&[u8]>,
    ) -> CoreResult<PushOutcome> {
        let TickBook {
            streams,
            next_seq,
            ticks: book_ticks,
            mem,
        } = self;
        // One lookup for an existing stream (the usual push).
        let (s, created, all_last_shape) = match streams.get_mut(stream) {
            Some(s) => {
                let all_last_shape = s.last_shape != NO_SHAPE
                    && match key {
                        // Equal keys, equal names in the same places: one comparison for all.
                        Some(k) if !s.last_key.is_empty() => s.last_key[..] == *k,
                        _ => ticks.iter().all(|t| s.shape_matches(s.last_shape, t)),
                    };
                let fresh = if all_last_shape {
                    0
                } else {
                    s.new_names(ticks)
                };
                check_room(s.names.len(), fresh, *next_seq, ticks.len())?;
                (s, false, all_last_shape)
            }
            None => {
                check_room(0, Stream::new(1).new_names(ticks), *next_seq, ticks.len())?;
                let s = Stream::new(maxlen.unwrap_or(default_cap));
                *mem += s.mem() + stream.len() + 32;
                match streams.entry(stream.into()) {
                    std::collections::btree_map::Entry::Vacant(e) => (e.insert(s), true, false),
                    std::collections::btree_map::Entry::Occupied(_) => {
                        return Err(CoreError::invalid("stream vanished"));
                    }
                }
            }
        };
        let counters = (next_seq, book_ticks, mem);
        Ok(append_all(s, maxlen, counters, created, |s, seq| {
            for t in ticks {
                s.append(t, *seq, all_last_shape);
                *seq += 1;
            }
        }))
    }

    pub(super) fn stream(&self, name: &[u8]) -> Option<&Stream> {
        self.streams.get(name)
    }

    /// The cap of `stream`, if it exists.
    pub fn stream_cap(&self, stream: &[u8]) -> Option<usize> {
        self.streams.get(stream).map(|s| s.cap as usize)
    }

    /// The length of `stream` (0 when it does not exist).
    pub fn stream_len(&self, stream: &[u8]) -> usize {
        self.streams.get(stream).map_or(0, |s| s.len())
    }

    /// Up to `count` ticks of `stream`, newest first by time (ties: latest arrival first).
    pub fn latest(&self, stream: &[u8], count: usize) -> CoreResult<Vec<Tick>> {
        let Some(s) = self.stream(stream) else {
            return Ok(Vec::new());
        };
        let mut it = DescIter::new(s);
        let mut out = Vec::with_capacity(count.min(s.len()));
        while out.len() < count {
            match it.next()? {
                Some(r) => out.push(s.materialize(r)?),
                None => break,
            }
        }
        Ok(out)
    }

    /// Ticks of `stream` with `from <= time <= to`, ascending (ties: arrival order); the first
    /// `count` when given.
    pub fn range(
        &self,
        stream: &[u8],
        from: i64,
        to: i64,
        count: Option<usize>,
    ) -> CoreResult<Vec<Tick>> {
        let Some(s) = self.stream(stream) else {
            return Ok(Vec::new());
        };
        if from > to {
            return Ok(Vec::new());
        }
        let limit = count.unwrap_or(usize::MAX);
        let mut it = AscIter::new(s, from, to);
        let mut out = Vec::new();
        while out.len() < limit {
            match it.next()? {
                Some(r) => out.push(s.materialize(r)?),
                None => break,
            }
        }
        Ok(out)
    }

    pub(super) fn matching<'a>(
        &'a self,
        prefix: Option<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a Box<[u8]>, &'a Stream)> + 'a {
        let p: &[u8] = prefix.unwrap_or(b"");
        self.streams
            .range::<[u8], _>((std::ops::Bound::Included(p), std::ops::Bound::Unbounded))
            .take_while(move |(n, _)| n.starts_with(p))
    }

    /// Up to `count` ticks across all streams (or those whose name starts with `prefix`),
    /// newest first by time (ties: latest arrival first), each with its stream's name.
    /// A k-way merge: decodes only what it returns (plus one chunk per stream).
    pub fn merged(&self, prefix: Option<&[u8]>, count: usize) -> CoreResult<Vec<(Vec<u8>, Tick)>> {
        // Streams are seeded by their newest key without decoding; a stream's chunks are
        // decoded only once the merge reaches it.
        struct Src<'a> {
            name: &'a [u8],
            s: &'a Stream,
            it: Option<DescIter<'a>>,
            pending: Option<Raw>,
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut srcs: Vec<Src> = Vec::new();
        let mut heap: BinaryHeap<(i64, u64, usize)> = BinaryHeap::new();
        for (name, s) in self.matching(prefix) {
            if let Some((t, seq)) = s.newest_key() {
                heap.push((t, seq, srcs.len()));
            }
            srcs.push(Src {
                name,
                s,
                it: None,
                pending: None,
            });
        }
        let mut out = Vec::with_capacity(count.min(self.ticks));
        while out.len() < count {
            let Some((_, _, i)) = heap.pop() else { break };
            let Some(src) = srcs.get_mut(i) else { break };
            let it = src.it.get_or_insert_with(|| DescIter::new(src.s));
            let raw = match src.pending.take() {
                Some(r) => r,
                None => match it.next()? {
                    Some(r) => r,
                    None => continue,
                },
            };
            out.push((src.name.to_vec(), src.s.materialize(raw)?));
            if let Some(r) = it.next()? {
                heap.push((r.time, r.seq, i));
                src.pending = Some(r);
            }
        }
        Ok(out)
    }

    /// `[(name, length, cap, newest time)]` of all streams (or those starting with `prefix`),
    /// sorted by name.
    pub fn streams(&self, prefix: Option<&[u8]>) -> CoreResult<Vec<StreamSummary>> {
        let mut out = Vec::new();
        for (name, s) in self.matching(prefix) {
            out.push(StreamSummary {
                name: name.to_vec(),
                len: s.len(),
                cap: s.cap as usize,
                newest_time: s.newest_key().map(|k| k.0),
            });
        }
        Ok(out)
    }

    pub fn info(&self) -> BookInfo {
        BookInfo {
            streams: self.streams.len(),
            ticks: self.ticks,
            late_ticks: self.streams.values().map(|s| s.late_by_idx.len()).sum(),
            cap_min: self
                .streams
                .values()
                .map(|s| s.cap as usize)
                .min()
                .unwrap_or(0),
            cap_max: self
                .streams
                .values()
                .map(|s| s.cap as usize)
                .max()
                .unwrap_or(0),
            memory: self.mem_usage(),
        }
    }

    /// Every live tick in global arrival order, with its stream's name and cap (for AOF
    /// rewrite and the canonical encoding). Streams are decoded one chunk at a time.
    pub fn for_each_in_arrival(
        &self,
        mut f: impl FnMut(&[u8], usize, Tick) -> CoreResult<()>,
    ) -> CoreResult<()> {
        struct Cursor<'a> {
            name: &'a [u8],
            s: &'a Stream,
            k: usize,
            buf: VecDeque<Raw>,
        }
        let mut cursors: Vec<Cursor> = self
            .streams
            .iter()
            .map(|(n, s)| Cursor {
                name: n,
                s,
                k: 0,
                buf: VecDeque::new(),
            })
            .collect();
        let refill = |c: &mut Cursor| -> CoreResult<()> {
            while c.buf.is_empty() && c.k < c.s.chunks.len() {
                let head = c.s.head;
                c.buf =
                    c.s.decode_chunk(c.k)?
                        .into_iter()
                        .filter(|r| r.idx >= head)
                        .collect();
                c.k += 1;
            }
            Ok(())
        };
        let mut heap: BinaryHeap<std::cmp::Reverse<(u64, usize)>> = BinaryHeap::new();
        for (i, c) in cursors.iter_mut().enumerate() {
            refill(c)?;
            if let Some(r) = c.buf.front() {
                heap.push(std::cmp::Reverse((r.seq, i)));
            }
        }
        while let Some(std::cmp::Reverse((_, i))) = heap.pop() {
            let Some(c) = cursors.get_mut(i) else { break };
            let Some(r) = c.buf.pop_front() else { continue };
            let tick = c.s.materialize(r)?;
            f(c.name, c.s.cap as usize, tick)?;
            refill(c)?;
            if let Some(r) = c.buf.front() {
                heap.push(std::cmp::Reverse((r.seq, i)));
            }
        }
        Ok(())
    }

    /// The canonical, versioned encoding (RDB payload and digest input).
    pub fn encode(&self) -> CoreResult<Vec<u8>> {
        // Rebuild: live ticks only, replayed in arrival order with sequences renumbered.
        let mut fresh = TickBook::new();
        let mut batch: Vec<Tick> = Vec::with_capacity(1);
        self.for_each_in_arrival(|name, cap, tick| {
            batch.clear();
            batch.push(tick);
            fresh.push(name, Some(cap), cap, &batch).map(|_| ())
        })?;
        // Streams without a live tick cannot exist (a cap is at least 1).
        let mut out = Vec::with_capacity(64 + fresh.mem);
        out.extend_from_slice(ENCODING_MAGIC);
        put_u64(&mut out, fresh.next_seq);
        put_u64(&mut out, fresh.streams.len() as u64);
        for (name, s) in &fresh.streams {
            put_bytes(&mut out, name);
            put_u64(&mut out, s.cap as u64);
            put_u64(&mut out, s.names.len() as u64);
            for n in &s.names {
                put_bytes(&mut out, n);
            }
            put_u64(&mut out, s.shapes.len() as u64);
            for sh in &s.shapes {
                put_u64(&mut out, u64::from(sh.time_name));
                put_u64(&mut out, u64::from(sh.time_pos));
                put_u64(&mut out, sh.fields.len() as u64);
                for &f in sh.fields.iter() {
                    put_u64(&mut out, u64::from(f));
                }
            }
            put_u64(&mut out, s.len() as u64);
            put_u64(&mut out, s.chunks.len() as u64);
            for c in &s.chunks {
                put_bytes(&mut out, &c.bytes);
            }
        }
        Ok(out)
    }

    /// Decodes [`TickBook::encode`]'s bytes, validating everything.
    pub fn decode(bytes: &[u8]) -> CoreResult<TickBook> {
        let mut r = Reader::new(bytes);
        if r.take(ENCODING_MAGIC.len())
            .map_err(|_| corrupt("missing header"))?
            != ENCODING_MAGIC
        {
            return Err(corrupt("unknown header or version"));
        }
        let next_seq = r.varint()?;
        let nstreams = r.usize(r.remaining(), "stream count out of range")?;
        let mut book = TickBook::new();
        let mut prev_name: Option<Vec<u8>> = None;
        for _ in 0..nstreams {
            let name = r.bytes(MAX_NAME_BYTES)?.to_vec();
            if name.is_empty()
                || prev_name
                    .as_ref()
                    .is_some_and(|p| p.as_slice() >= name.as_slice())
            {
                return Err(corrupt("stream names not strictly sorted"));
            }
            let cap = r.usize(MAX_CAP, "cap out of range")?;
            if cap == 0 {
                return Err(corrupt("cap out of range"));
            }
            // The source stream's dictionaries, for decoding its records.
            let mut src = Stream::new(cap);
            let nnames = r.usize(
                MAX_NAMES_PER_STREAM.min(r.remaining()),
                "name count out of range",
            )?;
            for _ in 0..nnames {
                let n = r.bytes(MAX_NAME_BYTES)?;
                if n.is_empty() || src.name_ids.contains_key(n) {
                    return Err(corrupt("empty or duplicate field name"));
                }
                src.name_id(n);
            }
            let nshapes = r.usize(
                MAX_SHAPES_PER_STREAM.min(r.remaining()),
                "shape count out of range",
            )?;
            let max_id = nnames.saturating_sub(1);
            for _ in 0..nshapes {
                if nnames == 0 {
                    return Err(corrupt("shape without names"));
                }
                let time_name = r.usize(max_id, "field id out of range")? as u32;
                let time_pos = r.usize(MAX_FIELDS, "time position out of range")? as u32;
                let n = r.usize(MAX_FIELDS.min(r.remaining()), "field count out of range")?;
                let mut fields = Vec::with_capacity(n);
                for _ in 0..n {
                    fields.push(r.usize(max_id, "field id out of range")? as u32);
                }
                if time_pos as usize > n {
                    return Err(corrupt("time position out of range"));
                }
                src.shapes.push(Shape {
                    time_name,
                    time_pos,
                    fields: fields.into_boxed_slice(),
                });
            }
            let nticks = r.usize(cap, "tick count above the cap")?;
            if nticks == 0 {
                return Err(corrupt("empty stream"));
            }
            let nchunks = r.usize(r.remaining(), "chunk count out of range")?;
            if nchunks != nticks.div_ceil(CHUNK) {
                return Err(corrupt("chunk count does not match tick count"));
            }
            let mut ticks = Vec::with_capacity(nticks.min(r.remaining()));
            for c in 0..nchunks {
                let body = r.bytes(usize::MAX)?;
                let mut cr = Reader::new(body);
                let mut st = CodecState::default();
                while !cr.at_end() {
                    if st.n >= CHUNK || ticks.len() >= nticks {
                        return Err(corrupt("too many records"));
                    }
                    let (seq, time, shape, values) = src.decode_record(&mut cr, &mut st)?;
                    if let Some(Tick { seq: p, .. }) = ticks.last() {
                        if seq <= *p {
                            return Err(corrupt("sequence not increasing"));
                        }
                    }
                    if seq >= next_seq {
                        return Err(corrupt("sequence beyond the book's counter"));
                    }
                    for v in &values {
                        v.validate()
                            .map_err(|_| corrupt("value text does not match its kind"))?;
                    }
                    let raw = Raw {
                        idx: 0,
                        seq,
                        time,
                        late: false,
                        shape,
                        values,
                    };
                    let tick = src.materialize(raw)?;
                    tick.validate().map_err(|e| corrupt(e.message()))?;
                    ticks.push(tick);
                }
                if st.n == 0 || (c + 1 < nchunks && st.n != CHUNK) {
                    return Err(corrupt("short chunk"));
                }
            }
            if ticks.len() != nticks {
                return Err(corrupt("tick count mismatch"));
            }
            // Replay with the stored sequences.
            let mut s = Stream::new(cap);
            for t in &ticks {
                s.append(t, t.seq, false);
                s.trim();
            }
            book.ticks += s.len();
            book.mem += s.mem() + name.len() + 32;
            book.streams.insert(name.clone().into_boxed_slice(), s);
            prev_name = Some(name);
        }
        if !r.at_end() {
            return Err(corrupt("trailing bytes"));
        }
        book.next_seq = next_seq;
        Ok(book)
    }
}

/// The end of every push into stream `s`: its cap from `maxlen`, the ticks `append` writes
/// (handed the book's next sequence number to use and advance), one trim (the same ticks go
/// as with a trim after each append), and the book's counters (`next_seq`, ticks, memory)
/// brought up to date.
fn append_all(
    s: &mut Stream,
    maxlen: Option<usize>,
    (next_seq, book_ticks, mem): (&mut u64, &mut usize, &mut usize),
    created: bool,
    append: impl FnOnce(&mut Stream, &mut u64),
) -> PushOutcome {
    let before_mem = s.mem();
    let before_len = s.len();
    if let Some(m) = maxlen {
        s.cap = u32::try_from(m.min(MAX_CAP)).unwrap_or(MAX_CAP as u32);
    }
    append(s, next_seq);
    s.trim();
    let len = s.len();
    *mem = (*mem + s.mem()).saturating_sub(before_mem);
    *book_ticks = (*book_ticks + len).saturating_sub(before_len);
    PushOutcome {
        len,
        cap: s.cap as usize,
        created,
    }
}
