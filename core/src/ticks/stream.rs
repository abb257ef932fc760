//! Streams: one named, capped stream of a book, with its name and shape dictionaries, its
//! chunks of delta-coded records, and the late-tick index that keeps every read a merge of
//! two sorted sequences (see the module documentation of [`super`]).

use super::batch::write_shape_key;
use super::codec::{corrupt, decode_value, encode_value, CodecState, Reader};
use super::value::TickSrc;
use super::value::{Tick, Value};
use super::{eq_short, CHUNK, MAX_CAP, MAX_FIELDS, MAX_SHAPES_PER_STREAM};
use crate::error::CoreResult;
use crate::varint;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Shape {
    pub(super) time_name: u32,
    pub(super) time_pos: u32,
    pub(super) fields: Box<[u32]>,
}

impl Shape {
    pub(super) fn mem(&self) -> usize {
        std::mem::size_of::<Shape>() + self.fields.len() * 4
    }
}

#[derive(Clone, Debug)]
pub(super) struct Chunk {
    pub(super) bytes: Vec<u8>,
    /// Running maximum time of the stream before this chunk's first record.
    pub(super) key_lo: i64,
}

/// A decoded record.
#[derive(Clone, Debug)]
pub(super) struct Raw {
    pub(super) idx: u64,
    pub(super) seq: u64,
    pub(super) time: i64,
    pub(super) late: bool,
    pub(super) shape: ShapeRef,
    pub(super) values: Vec<Value>,
}

/// A record's shape: an entry of the stream's dictionary, or carried inline.
#[derive(Clone, Debug)]
pub(super) enum ShapeRef {
    Dict(u32),
    Inline(Box<Shape>),
}

#[derive(Clone, Debug)]
pub(super) struct Stream {
    /// At most [`MAX_CAP`]; `u32` so that it shares a word with `last_shape`.
    pub(super) cap: u32,
    pub(super) names: Vec<Box<[u8]>>,
    pub(super) name_ids: HashMap<Box<[u8]>, u32>,
    /// Bytes of the names: at most [`MAX_NAMES_PER_STREAM`] x [`MAX_NAME_BYTES`] (64 MiB), so
    /// `u32`, sharing a word with `shapes_bytes` (room for the encoder's `text_cap`).
    pub(super) names_bytes: u32,
    pub(super) shapes: Vec<Shape>,
    pub(super) shape_ids: HashMap<Shape, u32>,
    /// Bytes of the dictionary's shapes: at most [`MAX_SHAPES_PER_STREAM`] shapes of at most
    /// [`MAX_FIELDS`] fields (17 MiB).
    pub(super) shapes_bytes: u32,
    pub(super) chunks: VecDeque<Chunk>,
    pub(super) chunk_bytes: usize,
    /// Arrival index of the first record of `chunks[0]`.
    pub(super) chunk_base: u64,
    /// Arrival index of the oldest live tick.
    pub(super) head: u64,
    /// Arrival index the next tick gets.
    pub(super) next_idx: u64,
    /// Newest time ever pushed (i64::MIN before the first push).
    pub(super) max_time: i64,
    /// Late ticks: arrival index -> time, and (time, arrival index).
    pub(super) late_by_idx: BTreeMap<u64, (i64, u64)>,
    pub(super) late_sorted: BTreeSet<(i64, u64)>,
    /// (arrival index, seq) of the newest in-order tick (the one that set `max_time`).
    pub(super) last_inorder: Option<(u64, u64)>,
    pub(super) enc: CodecState,
    /// Dictionary id of the last appended tick's shape ([`NO_SHAPE`]: none): a tick of the
    /// same shape (the usual case) is matched by comparing its names, without hashing.
    pub(super) last_shape: u32,
    /// The shape key ([`write_shape_key`]) of `last_shape` (empty: none), so that a batch of
    /// ticks that all have one shape is matched against it with one comparison.
    pub(super) last_key: Vec<u8>,
}

/// `Stream::last_shape` before any tick was appended.
pub(super) const NO_SHAPE: u32 = u32::MAX;

/// Approximate bytes of one entry of the two late-tick B-trees.
pub(super) const LATE_ENTRY_BYTES: usize = 48;

impl Stream {
    pub(super) fn new(cap: usize) -> Stream {
        Stream {
            cap: u32::try_from(cap.min(MAX_CAP)).unwrap_or(MAX_CAP as u32),
            names: Vec::new(),
            name_ids: HashMap::new(),
            names_bytes: 0,
            shapes: Vec::new(),
            shape_ids: HashMap::new(),
            shapes_bytes: 0,
            chunks: VecDeque::new(),
            chunk_bytes: 0,
            chunk_base: 0,
            head: 0,
            next_idx: 0,
            max_time: i64::MIN,
            late_by_idx: BTreeMap::new(),
            late_sorted: BTreeSet::new(),
            last_inorder: None,
            enc: CodecState::default(),
            last_shape: NO_SHAPE,
            last_key: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        (self.next_idx - self.head) as usize
    }

    /// Heap bytes held by the stream (container capacities; O(1)).
    pub(super) fn mem(&self) -> usize {
        std::mem::size_of::<Stream>()
            + self.names.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.names_bytes as usize * 2
            + self.name_ids.capacity() * (std::mem::size_of::<(Box<[u8]>, u32)>() + 1)
            + self.shapes.capacity() * std::mem::size_of::<Shape>()
            + self.shapes_bytes as usize * 2
            + self.shape_ids.capacity() * (std::mem::size_of::<(Shape, u32)>() + 1)
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunk_bytes
            + self.late_by_idx.len() * LATE_ENTRY_BYTES
            + self.enc.mem()
            + self.last_key.capacity()
    }

    /// Number of names a push of `ticks` would add to the dictionary.
    pub(super) fn new_names<'t, T: TickSrc>(&self, ticks: &'t [T]) -> usize {
        let mut hint = Some(self.last_shape).filter(|&id| id != NO_SHAPE);
        let mut fresh: Option<std::collections::HashSet<&'t [u8]>> = None;
        for t in ticks {
            if let Some(id) = hint.filter(|&id| self.shape_matches(id, t)) {
                hint = Some(id);
                continue;
            }
            for i in 0..=t.n_fields() {
                let n = if i == t.n_fields() {
                    t.time_field()
                } else {
                    t.field(i).0
                };
                if !self.name_ids.contains_key(n) {
                    fresh.get_or_insert_with(Default::default).insert(n);
                }
            }
        }
        fresh.map_or(0, |f| f.len())
    }

    /// True when dictionary shape `id` is the shape of `t` (same names, same places).
    pub(super) fn shape_matches<T: TickSrc + ?Sized>(&self, id: u32, t: &T) -> bool {
        let Some(sh) = self.shapes.get(id as usize) else {
            return false;
        };
        let name_is =
            |fid: u32, n: &[u8]| self.names.get(fid as usize).is_some_and(|b| eq_short(b, n));
        sh.time_pos as usize == t.time_pos()
            && sh.fields.len() == t.n_fields()
            && name_is(sh.time_name, t.time_field())
            && sh
                .fields
                .iter()
                .enumerate()
                .all(|(i, &fid)| name_is(fid, t.name(i)))
    }

    pub(super) fn name_id(&mut self, n: &[u8]) -> u32 {
        if let Some(&id) = self.name_ids.get(n) {
            return id;
        }
        let id = self.names.len() as u32;
        let b: Box<[u8]> = n.into();
        self.names_bytes = self
            .names_bytes
            .saturating_add(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.names.push(b.clone());
        self.name_ids.insert(b, id);
        id
    }

    pub(super) fn name(&self, id: u32) -> CoreResult<&[u8]> {
        self.names
            .get(id as usize)
            .map(|b| &b[..])
            .ok_or_else(|| corrupt("field id out of range"))
    }

    /// Appends one validated tick (the caller checked dictionary room).
    /// `matched`: the caller saw that `t` has the shape of the last tick.
    pub(super) fn append<T: TickSrc + ?Sized>(&mut self, t: &T, seq: u64, matched: bool) {
        let known = Some(self.last_shape)
            .filter(|&id| id != NO_SHAPE && (matched || self.shape_matches(id, t)));
        let (shape_code, inline) = match known {
            Some(id) => (Some(id), None),
            None => {
                let time_name = self.name_id(t.time_field());
                let fids: Vec<u32> = (0..t.n_fields())
                    .map(|i| self.name_id(t.field(i).0))
                    .collect();
                let shape = Shape {
                    time_name,
                    time_pos: t.time_pos() as u32,
                    fields: fids.into_boxed_slice(),
                };
                match self.shape_ids.get(&shape) {
                    Some(&id) => (Some(id), None),
                    None if self.shapes.len() < MAX_SHAPES_PER_STREAM => {
                        let id = self.shapes.len() as u32;
                        self.shapes_bytes = self
                            .shapes_bytes
                            .saturating_add(u32::try_from(shape.mem()).unwrap_or(u32::MAX));
                        self.shapes.push(shape.clone());
                        self.shape_ids.insert(shape, id);
                        (Some(id), None)
                    }
                    None => (None, Some(shape)),
                }
            }
        };
        if let Some(id) = shape_code {
            if known.is_none() {
                write_shape_key(&mut self.last_key, t);
            }
            self.last_shape = id;
        }
        self.append_record(
            shape_code,
            inline.as_ref(),
            t.time(),
            seq,
            |out, enc, fids| {
                // The shape is the tick's: one value per field id.
                let mut fids = fids.iter().enumerate();
                t.each_value(|kind, text, num| {
                    if let Some((pos, &fid)) = fids.next() {
                        encode_value(out, enc, fid, pos, kind, text, num);
                    }
                });
            },
        );
    }

    /// Appends a record of time `time` and sequence `seq` whose shape is dictionary shape
    /// `code` or, without one, `inline`: the header here, the values by `values(out, enc,
    /// field ids)`, which must encode one value per field id.
    #[inline(always)]
    pub(super) fn append_record(
        &mut self,
        code: Option<u32>,
        inline: Option<&Shape>,
        time: i64,
        seq: u64,
        values: impl FnOnce(&mut Vec<u8>, &mut CodecState, &[u32]),
    ) {
        if self.enc.n >= CHUNK || self.chunks.is_empty() {
            if let Some(last) = self.chunks.back_mut() {
                let before = last.bytes.capacity();
                last.bytes.shrink_to_fit();
                self.chunk_bytes = self.chunk_bytes - before + last.bytes.capacity();
            }
            if self.chunks.is_empty() {
                self.chunk_base = self.next_idx;
            }
            self.chunks.push_back(Chunk {
                bytes: Vec::with_capacity(256),
                key_lo: self.max_time,
            });
            self.chunk_bytes += 256;
            self.enc.reset();
        }
        let Stream {
            enc,
            chunks,
            shapes,
            chunk_bytes,
            ..
        } = self;
        let Some(chunk) = chunks.back_mut() else {
            return;
        };
        let shape = match (inline, code) {
            (Some(sh), _) => Some(sh),
            (None, Some(id)) => shapes.get(id as usize),
            (None, None) => None,
        };
        let Some(shape) = shape else {
            return;
        };
        let before = chunk.bytes.capacity();
        let out = &mut chunk.bytes;
        if enc.n == 0 {
            varint::put_u64(out, seq);
            varint::put_i64(out, time);
        } else {
            varint::put_u64(out, seq.wrapping_sub(enc.prev_seq));
            varint::put_i64(out, time.wrapping_sub(enc.prev_time));
        }
        match (code, inline) {
            (Some(id), None) => varint::put_u64(out, u64::from(id) + 1),
            _ => {
                varint::put_u64(out, 0);
                varint::put_u64(out, u64::from(shape.time_name));
                varint::put_u64(out, u64::from(shape.time_pos));
                varint::put_u64(out, shape.fields.len() as u64);
                for &f in shape.fields.iter() {
                    varint::put_u64(out, u64::from(f));
                }
            }
        }
        values(out, enc, &shape.fields);
        enc.n += 1;
        enc.prev_seq = seq;
        enc.prev_time = time;
        *chunk_bytes = *chunk_bytes - before + chunk.bytes.capacity();

        let idx = self.next_idx;
        self.next_idx += 1;
        if time < self.max_time {
            self.late_by_idx.insert(idx, (time, seq));
            self.late_sorted.insert((time, idx));
        } else {
            self.max_time = time;
            self.last_inorder = Some((idx, seq));
        }
    }

    /// Drops the oldest ticks until the stream holds at most `cap`.
    #[inline]
    pub(super) fn trim(&mut self) {
        while self.len() > self.cap as usize {
            let old = self.head;
            self.head += 1;
            if let Some((&i, &(t, _))) = self.late_by_idx.first_key_value() {
                if i == old {
                    self.late_by_idx.remove(&i);
                    self.late_sorted.remove(&(t, i));
                }
            }
            if self.head - self.chunk_base >= CHUNK as u64 && self.chunks.len() > 1 {
                if let Some(c) = self.chunks.pop_front() {
                    self.chunk_bytes -= c.bytes.capacity();
                }
                self.chunk_base += CHUNK as u64;
            }
        }
    }

    /// Upper bound of in-order times in chunk `k` (running max after it).
    pub(super) fn key_hi(&self, k: usize) -> i64 {
        self.chunks
            .get(k + 1)
            .map(|c| c.key_lo)
            .unwrap_or(self.max_time)
    }

    pub(super) fn decode_chunk(&self, k: usize) -> CoreResult<Vec<Raw>> {
        let chunk = self
            .chunks
            .get(k)
            .ok_or_else(|| corrupt("chunk index out of range"))?;
        let full = k + 1 < self.chunks.len();
        let first_idx = self.chunk_base + (k as u64) * CHUNK as u64;
        let mut st = CodecState::default();
        let mut r = Reader::new(&chunk.bytes);
        let mut out = Vec::with_capacity(CHUNK);
        let mut running = chunk.key_lo;
        while !r.at_end() {
            if out.len() >= CHUNK {
                return Err(corrupt("too many records in a chunk"));
            }
            let (seq, time, shape, values) = self.decode_record(&mut r, &mut st)?;
            let late = time < running;
            running = running.max(time);
            out.push(Raw {
                idx: first_idx + out.len() as u64,
                seq,
                time,
                late,
                shape,
                values,
            });
        }
        if full && out.len() != CHUNK {
            return Err(corrupt("short chunk"));
        }
        Ok(out)
    }

    pub(super) fn shape<'a>(&'a self, r: &'a ShapeRef) -> CoreResult<&'a Shape> {
        match r {
            ShapeRef::Dict(id) => self
                .shapes
                .get(*id as usize)
                .ok_or_else(|| corrupt("shape id out of range")),
            ShapeRef::Inline(s) => Ok(s),
        }
    }

    pub(super) fn decode_record(
        &self,
        r: &mut Reader,
        st: &mut CodecState,
    ) -> CoreResult<(u64, i64, ShapeRef, Vec<Value>)> {
        let (seq, time) = if st.n == 0 {
            (r.varint()?, r.varint_i64()?)
        } else {
            let ds = r.varint()?;
            if ds == 0 {
                return Err(corrupt("sequence not increasing"));
            }
            let seq = st
                .prev_seq
                .checked_add(ds)
                .ok_or_else(|| corrupt("sequence overflow"))?;
            (seq, st.prev_time.wrapping_add(r.varint_i64()?))
        };
        let code = r.varint()?;
        let shape = if code == 0 {
            let time_name =
                r.usize(self.names.len().saturating_sub(1), "field id out of range")? as u32;
            let time_pos = r.usize(MAX_FIELDS, "time position out of range")? as u32;
            let n = r.usize(MAX_FIELDS.min(r.remaining()), "field count out of range")?;
            let mut fields = Vec::with_capacity(n);
            for _ in 0..n {
                fields.push(
                    r.usize(self.names.len().saturating_sub(1), "field id out of range")? as u32,
                );
            }
            if self.names.is_empty() || time_pos as usize > n {
                return Err(corrupt("bad inline shape"));
            }
            ShapeRef::Inline(Box::new(Shape {
                time_name,
                time_pos,
                fields: fields.into_boxed_slice(),
            }))
        } else {
            ShapeRef::Dict(u32::try_from(code - 1).map_err(|_| corrupt("shape id out of range"))?)
        };
        let fids = &self.shape(&shape)?.fields;
        let mut values = Vec::with_capacity(fids.len());
        for &fid in fids.iter() {
            values.push(decode_value(r, st, fid)?);
        }
        st.n += 1;
        st.prev_seq = seq;
        st.prev_time = time;
        Ok((seq, time, shape, values))
    }

    pub(super) fn materialize(&self, raw: Raw) -> CoreResult<Tick> {
        let shape = self.shape(&raw.shape)?;
        let mut fields = Vec::with_capacity(raw.values.len());
        for (&fid, v) in shape.fields.iter().zip(raw.values) {
            fields.push((self.name(fid)?.to_vec(), v));
        }
        Ok(Tick {
            time: raw.time,
            seq: raw.seq,
            time_field: self.name(shape.time_name)?.to_vec(),
            time_pos: shape.time_pos as usize,
            fields,
        })
    }

    /// (time, seq) of the newest live tick, without decoding anything.
    pub(super) fn newest_key(&self) -> Option<(i64, u64)> {
        // The newest in-order tick set `max_time`; it is live unless the cap dropped it.
        let inorder = self
            .last_inorder
            .filter(|(idx, _)| *idx >= self.head)
            .map(|(_, seq)| (self.max_time, seq));
        let late = self
            .late_sorted
            .last()
            .and_then(|&(t, idx)| self.late_by_idx.get(&idx).map(|&(_, seq)| (t, seq)));
        inorder.max(late)
    }

    pub(super) fn chunk_of(&self, idx: u64) -> Option<(usize, usize)> {
        let off = idx.checked_sub(self.chunk_base)?;
        Some(((off / CHUNK as u64) as usize, (off % CHUNK as u64) as usize))
    }
}

/// Cache of the last decoded chunk, for fetching late ticks.
pub(super) struct ChunkCache {
    k: usize,
    raws: Vec<Raw>,
}

pub(super) fn fetch_late(s: &Stream, cache: &mut Option<ChunkCache>, idx: u64) -> CoreResult<Raw> {
    let (k, j) = s
        .chunk_of(idx)
        .ok_or_else(|| corrupt("late tick before the first chunk"))?;
    if cache.as_ref().map(|c| c.k) != Some(k) {
        *cache = Some(ChunkCache {
            k,
            raws: s.decode_chunk(k)?,
        });
    }
    cache
        .as_ref()
        .and_then(|c| c.raws.get(j))
        .cloned()
        .ok_or_else(|| corrupt("late tick not in its chunk"))
}

/// Newest-first iterator over a stream by (time, arrival).
pub(super) struct DescIter<'a> {
    s: &'a Stream,
    /// Next chunk to decode (exclusive upper index), counting down.
    next_chunk: usize,
    buf: Vec<Raw>,
    late: std::iter::Rev<std::collections::btree_set::Iter<'a, (i64, u64)>>,
    late_peek: Option<(i64, u64)>,
    cache: Option<ChunkCache>,
}

impl<'a> DescIter<'a> {
    pub(super) fn new(s: &'a Stream) -> Self {
        let mut late = s.late_sorted.iter().rev();
        let late_peek = late.next().copied();
        DescIter {
            s,
            next_chunk: s.chunks.len(),
            buf: Vec::new(),
            late,
            late_peek,
            cache: None,
        }
    }

    /// The newest in-order live tick not yet returned (left at the end of `buf`).
    pub(super) fn fill(&mut self) -> CoreResult<()> {
        while self.buf.is_empty() && self.next_chunk > 0 {
            self.next_chunk -= 1;
            let head = self.s.head;
            let mut raws = self.s.decode_chunk(self.next_chunk)?;
            raws.retain(|r| !r.late && r.idx >= head);
            self.buf = raws;
        }
        Ok(())
    }

    pub(super) fn next(&mut self) -> CoreResult<Option<Raw>> {
        self.fill()?;
        let inorder = self.buf.last().map(|r| (r.time, r.idx));
        match (inorder, self.late_peek) {
            (None, None) => Ok(None),
            (Some(_), None) => Ok(self.buf.pop()),
            (Some(a), Some(b)) if a > b => Ok(self.buf.pop()),
            (_, Some((_, idx))) => {
                self.late_peek = self.late.next().copied();
                fetch_late(self.s, &mut self.cache, idx).map(Some)
            }
        }
    }
}

/// Ascending iterator over a stream within [from, to].
pub(super) struct AscIter<'a> {
    s: &'a Stream,
    from: i64,
    to: i64,
    next_chunk: usize,
    buf: VecDeque<Raw>,
    done: bool,
    late: std::collections::btree_set::Range<'a, (i64, u64)>,
    late_peek: Option<(i64, u64)>,
    cache: Option<ChunkCache>,
}

impl<'a> AscIter<'a> {
    pub(super) fn new(s: &'a Stream, from: i64, to: i64) -> Self {
        // First chunk whose in-order ticks can reach `from` (key_hi is non-decreasing).
        let (mut lo, mut hi) = (0, s.chunks.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if s.key_hi(mid) < from {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let first = lo;
        let mut late = s.late_sorted.range((from, 0)..=(to, u64::MAX));
        let late_peek = late.next().copied();
        AscIter {
            s,
            from,
            to,
            next_chunk: first,
            buf: VecDeque::new(),
            done: false,
            late,
            late_peek,
            cache: None,
        }
    }

    pub(super) fn fill(&mut self) -> CoreResult<()> {
        while self.buf.is_empty() && !self.done && self.next_chunk < self.s.chunks.len() {
            let raws = self.s.decode_chunk(self.next_chunk)?;
            self.next_chunk += 1;
            for r in raws {
                if r.late || r.idx < self.s.head || r.time < self.from {
                    continue;
                }
                if r.time > self.to {
                    self.done = true;
                    break;
                }
                self.buf.push_back(r);
            }
        }
        Ok(())
    }

    pub(super) fn next(&mut self) -> CoreResult<Option<Raw>> {
        self.fill()?;
        let inorder = self.buf.front().map(|r| (r.time, r.idx));
        match (inorder, self.late_peek) {
            (None, None) => Ok(None),
            (Some(_), None) => Ok(self.buf.pop_front()),
            (Some(a), Some(b)) if a < b => Ok(self.buf.pop_front()),
            (_, Some((_, idx))) => {
                self.late_peek = self.late.next().copied();
                fetch_late(self.s, &mut self.cache, idx).map(Some)
            }
        }
    }
}
