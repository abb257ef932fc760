//! The allocation-free input side of pushes: a reusable [`TickBatch`] holding the ticks of one
//! push as spans of one text buffer, and a fast parser for flat JSON tick documents.
//!
//! A batch only ever holds validated ticks (every way in validates), so the book appends them
//! without checking again. The fast JSON parser accepts a subset of JSON (one flat object whose
//! names and strings have no escapes) and yields exactly what the serde path yields for it;
//! anything else, errors included, goes through [`Tick::from_json`], which stays the reference.

use super::codec::Num;
use super::json::Parser;
use super::value::{
    validate_tick_with, validate_value_lens, validate_values, Tick, TickSrc, ValueKind,
};
use super::{
    eq_short, DEFAULT_TIME_FIELD, MAX_DOC_BYTES, MAX_FIELDS, MAX_NAME_BYTES, MAX_VALUE_BYTES,
};
use crate::error::CoreResult;
use std::ops::Deref;

/// `start..end` in the batch's text.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: usize,
    end: usize,
}

#[derive(Clone, Copy, Debug)]
struct FieldRec {
    name: Span,
    value: Span,
    kind: ValueKind,
    /// The value's [`Num`] when the parser read it (JSON numbers), for the encoder.
    num: Option<Num>,
}

#[derive(Clone, Copy, Debug)]
struct TickRec {
    time: i64,
    time_field: Span,
    time_pos: usize,
    /// `fields[first..end]` of the batch.
    first: usize,
    end: usize,
}

/// The validated ticks of one push. Reusable: [`TickBatch::clear`] keeps the buffers, so a
/// caller that keeps one batch allocates nothing per push once it is warm.
#[derive(Clone, Debug, Default)]
pub struct TickBatch {
    text: Vec<u8>,
    fields: Vec<FieldRec>,
    ticks: Vec<TickRec>,
    /// The names of the last tick that passed the name checks, as a [`ShapeKey`]. Those
    /// checks depend on the names alone, so a tick with the same key passes them too: pushes
    /// of one shape check their names once. Kept by [`TickBatch::clear`].
    valid_names: Vec<u8>,
    /// Kept by [`TickBatch::clear`] too.
    template: Template,
    /// Some tick of the batch may have other names than `valid_names` (set when a tick with
    /// other names joins a non-empty batch; reset by [`TickBatch::clear`]).
    mixed: bool,
    /// `valid_names` holds the names of the template document (kept by [`TickBatch::clear`]).
    template_names: bool,
    /// The values and times of the documents [`TickBatch::read_lane`] read (not ticks of the
    /// batch: the book encodes them from the documents themselves).
    lane_vals: Vec<LaneVal>,
    lane_times: Vec<i64>,
}

/// A value of a document read by [`TickBatch::read_lane`]: where it is in the document, its
/// kind and, for a number, its [`Num`].
#[derive(Clone, Copy, Debug)]
pub(super) struct LaneVal {
    start: u32,
    end: u32,
    pub(super) kind: ValueKind,
    pub(super) num: Option<Num>,
}

impl LaneVal {
    /// The value's text in its document.
    #[inline(always)]
    pub(super) fn text<'d>(&self, doc: &'d [u8]) -> &'d [u8] {
        doc.get(self.start as usize..self.end as usize)
            .unwrap_or(&[])
    }
}

/// A view paired with its batch: the [`TickSrc`] the book appends.
#[derive(Clone, Copy)]
pub(super) struct BatchTick<'a> {
    b: &'a TickBatch,
    rec: TickRec,
}

impl BatchTick<'_> {
    fn text(&self, s: Span) -> &[u8] {
        self.b.text.get(s.start..s.end).unwrap_or(&[])
    }
}

impl TickSrc for BatchTick<'_> {
    fn time(&self) -> i64 {
        self.rec.time
    }
    fn time_field(&self) -> &[u8] {
        self.text(self.rec.time_field)
    }
    fn time_pos(&self) -> usize {
        self.rec.time_pos
    }
    fn n_fields(&self) -> usize {
        self.rec.end - self.rec.first
    }
    fn field(&self, i: usize) -> (&[u8], ValueKind, &[u8]) {
        match self.b.fields.get(self.rec.first + i) {
            Some(f) if self.rec.first + i < self.rec.end => {
                (self.text(f.name), f.kind, self.text(f.value))
            }
            _ => (&[], ValueKind::Str, &[]),
        }
    }
    fn name(&self, i: usize) -> &[u8] {
        match self.b.fields.get(self.rec.first + i) {
            Some(f) if self.rec.first + i < self.rec.end => self.text(f.name),
            _ => &[],
        }
    }
    fn value(&self, i: usize) -> (ValueKind, &[u8]) {
        match self.b.fields.get(self.rec.first + i) {
            Some(f) if self.rec.first + i < self.rec.end => (f.kind, self.text(f.value)),
            _ => (ValueKind::Str, &[]),
        }
    }
    #[inline(always)]
    fn each_value(&self, mut f: impl FnMut(ValueKind, &[u8], Option<Num>)) {
        let recs = self
            .b
            .fields
            .get(self.rec.first..self.rec.end)
            .unwrap_or(&[]);
        for r in recs {
            f(r.kind, self.text(r.value), r.num);
        }
    }
}

/// What [`TickBatch::commit`] checks of the values of a tick whose names passed the checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Everything (values not read by the parser).
    Values,
    /// Their lengths (the parser held their grammar).
    Lens,
    /// Nothing: the parser held their grammar and each is a part of a document no longer
    /// than a value may be.
    Nothing,
}

/// Above this many bytes of buffers, [`TickBatch::clear`] gives the memory back.
const KEEP_BYTES: usize = 64 * 1024;

impl TickBatch {
    pub fn new() -> Self {
        TickBatch::default()
    }

    /// Empties the batch, keeping its buffers unless they grew large.
    pub fn clear(&mut self) {
        if self.text.capacity() > KEEP_BYTES
            || self.fields.capacity() * std::mem::size_of::<FieldRec>() > KEEP_BYTES
            || self.ticks.capacity() * std::mem::size_of::<TickRec>() > KEEP_BYTES
            || self.valid_names.capacity() > KEEP_BYTES
            || self.lane_vals.capacity() * std::mem::size_of::<LaneVal>() > KEEP_BYTES
            || self.lane_times.capacity() * std::mem::size_of::<i64>() > KEEP_BYTES
        {
            *self = TickBatch::default();
        } else {
            self.text.clear();
            self.fields.clear();
            self.ticks.clear();
            self.mixed = false;
            self.lane_vals.clear();
            self.lane_times.clear();
        }
    }

    /// The names every tick of the batch has, as a shape key (see [`write_shape_key`]), when
    /// they all have the same: a stream whose last shape has this key takes the batch without
    /// comparing names tick by tick.
    pub(super) fn uniform_key(&self) -> Option<&[u8]> {
        (!self.mixed && !self.ticks.is_empty() && !self.valid_names.is_empty())
            .then_some(&self.valid_names[..])
    }

    pub fn len(&self) -> usize {
        self.ticks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty()
    }

    /// Tick `i` as an owned [`Tick`] (`seq` 0).
    pub fn tick(&self, i: usize) -> Option<Tick> {
        let rec = *self.ticks.get(i)?;
        let t = BatchTick { b: self, rec };
        Some(Tick {
            time: t.time(),
            seq: 0,
            time_field: t.time_field().to_vec(),
            time_pos: t.time_pos(),
            fields: (0..t.n_fields())
                .map(|i| {
                    let (n, kind, text) = t.field(i);
                    (
                        n.to_vec(),
                        super::Value {
                            kind,
                            text: text.to_vec(),
                        },
                    )
                })
                .collect(),
        })
    }

    pub(super) fn with_views<R>(&self, f: impl FnOnce(&[BatchTick<'_>]) -> R) -> R {
        // The usual push: one tick.
        if let [rec] = self.ticks[..] {
            return f(std::slice::from_ref(&BatchTick { b: self, rec }));
        }
        // Up to 8 ticks on the stack; a larger batch collects its views once.
        let mut stack = [BatchTick {
            b: self,
            rec: TickRec {
                time: 0,
                time_field: Span::default(),
                time_pos: 0,
                first: 0,
                end: 0,
            },
        }; 8];
        if self.ticks.len() <= stack.len() {
            for (slot, rec) in stack.iter_mut().zip(self.ticks.iter()) {
                slot.rec = *rec;
            }
            f(stack.get(..self.ticks.len()).unwrap_or(&[]))
        } else {
            let all: Vec<BatchTick> = self
                .ticks
                .iter()
                .map(|&rec| BatchTick { b: self, rec })
                .collect();
            f(&all)
        }
    }

    /// The names of the template document as a shape key (see [`write_shape_key`]), when
    /// the template was read with time field `tf` and those names passed the checks.
    pub(super) fn template_key(&self, tf: &[u8]) -> Option<&[u8]> {
        (self.template_names && !self.template.doc.is_empty() && eq_short(&self.template.tf, tf))
            .then_some(&self.valid_names[..])
    }

    /// Reads `docs` for the book's lane (see `TickBook::push_json_lane`) when every one is
    /// the template document with other values and no longer than a value may be (so that
    /// nothing is left to check: the same documents [`TickBatch::push_json`] keeps without
    /// `commit`, read to the same ticks). Their values and times are left for
    /// [`TickBatch::lane_tick`]; returns the number of values per document. `None` when some
    /// document is not such a one (nothing is kept then).
    pub(super) fn read_lane<D: Deref<Target = [u8]>>(
        &mut self,
        docs: &[D],
        tf: &[u8],
    ) -> Option<usize> {
        self.lane_vals.clear();
        self.lane_times.clear();
        let per_doc = self.template.members.len().checked_sub(1)?;
        self.template_key(tf)?;
        let TickBatch {
            template,
            lane_vals,
            lane_times,
            ..
        } = self;
        lane_vals.reserve(per_doc.saturating_mul(docs.len()));
        lane_times.reserve(docs.len());
        for d in docs {
            let doc: &[u8] = d;
            if doc.len() > MAX_VALUE_BYTES {
                break;
            }
            let read = template.read(doc, tf, |_, kind, (start, end), num| {
                // Offsets in a document of at most MAX_VALUE_BYTES.
                lane_vals.push(LaneVal {
                    start: start as u32,
                    end: end as u32,
                    kind,
                    num,
                });
            });
            match read {
                Some((time, _, _)) => lane_times.push(time),
                None => break,
            }
        }
        if lane_times.len() != docs.len() || lane_vals.len() != per_doc * docs.len() {
            self.lane_vals.clear();
            self.lane_times.clear();
            return None;
        }
        Some(per_doc)
    }

    /// The time and values of document `k` of the last [`TickBatch::read_lane`].
    #[inline(always)]
    pub(super) fn lane_tick(&self, k: usize, per_doc: usize) -> Option<(i64, &[LaneVal])> {
        let time = *self.lane_times.get(k)?;
        let at = k.checked_mul(per_doc)?;
        Some((time, self.lane_vals.get(at..at.checked_add(per_doc)?)?))
    }

    fn span(&mut self, b: &[u8]) -> Span {
        let start = self.text.len();
        self.text.extend_from_slice(b);
        Span {
            start,
            end: self.text.len(),
        }
    }

    /// Validates the tick just staged (fields from `first`, text from `text_at`) and keeps it,
    /// or drops it and reports why. `known`: its names passed the name checks before (they are
    /// those of `valid_names`, or of the template); `same_key`: they are those of
    /// `valid_names`.
    fn commit(
        &mut self,
        rec: TickRec,
        text_at: usize,
        values: Check,
        known: bool,
        same_key: bool,
    ) -> CoreResult<()> {
        let t = BatchTick { b: self, rec };
        let r = if known {
            // The name checks passed for these very names: only the values are left, and
            // `validate_tick_with` reports the first bad value in field order, as here.
            match values {
                Check::Values => validate_values(&t),
                Check::Lens => validate_value_lens(&t),
                Check::Nothing => Ok(()),
            }
        } else {
            validate_tick_with(&t, values == Check::Values)
        };
        match r {
            Ok(()) => {
                if !(known && same_key) {
                    let mut key = ShapeKey::new(std::mem::take(&mut self.valid_names));
                    key.write(&BatchTick { b: self, rec });
                    self.valid_names = key.into_bytes();
                    self.template_names = false;
                    // The ticks before this one (if any) may have had other names.
                    self.mixed |= !self.ticks.is_empty();
                }
                self.ticks.push(rec);
                Ok(())
            }
            Err(e) => {
                self.rollback(rec.first, text_at);
                Err(e)
            }
        }
    }

    fn rollback(&mut self, first: usize, text_at: usize) {
        self.fields.truncate(first);
        self.text.truncate(text_at);
    }

    /// Adds a tick of the field/value push form (every value a string, time field `time`).
    pub fn push_pairs<'a>(
        &mut self,
        time: i64,
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> CoreResult<()> {
        let text_at = self.text.len();
        let first = self.fields.len();
        let time_field = self.span(DEFAULT_TIME_FIELD);
        let mut memo = KeyCursor::default();
        memo.step(&self.valid_names, DEFAULT_TIME_FIELD, true);
        for (n, v) in pairs {
            memo.step(&self.valid_names, n, false);
            let name = self.span(n);
            let value = self.span(v);
            self.fields.push(FieldRec {
                name,
                value,
                kind: ValueKind::Str,
                num: None,
            });
        }
        let rec = TickRec {
            time,
            time_field,
            time_pos: 0,
            first,
            end: self.fields.len(),
        };
        let known = memo.hit(&self.valid_names);
        self.commit(rec, text_at, Check::Values, known, known)
    }

    /// Adds an owned tick (validated here).
    pub fn push_tick(&mut self, t: &Tick) -> CoreResult<()> {
        let text_at = self.text.len();
        let first = self.fields.len();
        let time_field = self.span(&t.time_field);
        for (n, v) in &t.fields {
            let name = self.span(n);
            let value = self.span(&v.text);
            self.fields.push(FieldRec {
                name,
                value,
                kind: v.kind,
                num: None,
            });
        }
        let rec = TickRec {
            time: t.time,
            time_field,
            time_pos: t.time_pos,
            first,
            end: self.fields.len(),
        };
        self.commit(rec, text_at, Check::Values, false, false)
    }

    /// Adds a tick from a JSON document, exactly as [`Tick::from_json`] reads it (same tick,
    /// same errors): flat documents take the fast path, the rest the serde path.
    pub fn push_json(&mut self, doc: &[u8], time_field: &[u8]) -> CoreResult<()> {
        if self.push_flat_json(doc, time_field) {
            return Ok(());
        }
        let t = Tick::from_json(doc, time_field)?;
        self.push_tick(&t)
    }

    /// The fast path: true when `doc` was a flat object it read and the tick is valid (and
    /// added); false (nothing added) when the serde path must decide.
    pub(super) fn push_flat_json(&mut self, doc: &[u8], tf: &[u8]) -> bool {
        let text_at = self.text.len();
        let first = self.fields.len();
        let ok = doc.len() <= MAX_DOC_BYTES && self.stage_flat(doc, tf, text_at, first).is_some();
        if !ok {
            self.rollback(first, text_at);
        }
        ok
    }

    /// Reads a flat document into the batch: the document is copied once and its names and
    /// values are spans of the copy (plain strings need no unescaping).
    fn stage_flat(&mut self, doc: &[u8], tf: &[u8], base: usize, first: usize) -> Option<()> {
        self.text.extend_from_slice(doc);
        if let Some(rec) = self.stage_like_template(doc, tf, base, first) {
            // The template's names, which passed the checks.
            let same_key = self.template_names;
            if same_key && lens_check(doc) == Check::Nothing {
                // What `commit` does for known names with nothing to check: keep the tick.
                self.ticks.push(rec);
                return Some(());
            }
            self.commit(rec, base, lens_check(doc), true, same_key)
                .ok()?;
            // `valid_names` now holds this document's names, the template's.
            self.template_names = true;
            return Some(());
        }
        self.fields.truncate(first);
        // Rebuilt below if this document is accepted.
        self.template.clear();
        self.template_names = false;
        let span = |(start, end): (usize, usize)| Span {
            start: base + start,
            end: base + end,
        };
        let mut p = Parser { b: doc, i: 0 };
        let mut memo = KeyCursor::default();
        p.ws();
        p.eat(b'{')?;
        p.ws();
        let mut time = None;
        let mut time_pos = 0;
        let mut time_field = Span::default();
        if p.peek() == Some(b'}') {
            return None; // no time field: the serde path words the error
        }
        // End of the previous value (the template's members are read from there).
        let mut prev_end = 0;
        loop {
            p.eat(b'"')?;
            let name = p.plain_string()?;
            p.ws();
            p.eat(b':')?;
            p.ws();
            let value_at = p.i;
            let (kind, value, num) = p.value()?;
            let name_text = doc.get(name.0..name.1)?;
            // Longer names fail the checks: serde words the error.
            if name_text.len() > MAX_NAME_BYTES {
                return None;
            }
            let is_time = eq_short(name_text, tf);
            memo.step(&self.valid_names, name_text, is_time);
            let n = self.fields.len() - first;
            if is_time {
                if time.is_some() || kind != ValueKind::Num {
                    return None;
                }
                time = Some(time_of(num)?);
                time_pos = n;
                time_field = span(name);
            } else {
                if n >= MAX_FIELDS {
                    return None;
                }
                self.fields.push(FieldRec {
                    name: span(name),
                    value: span(value),
                    kind,
                    num,
                });
            }
            self.template.members.push(Member {
                lead: (prev_end, value_at),
                name: (name.0 - prev_end, name.1 - prev_end),
                is_time,
            });
            prev_end = p.i;
            p.ws();
            match p.peek()? {
                b',' => {
                    p.i += 1;
                    p.ws();
                }
                b'}' => {
                    p.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        p.ws();
        if p.i != doc.len() {
            return None;
        }
        let rec = TickRec {
            time: time?,
            time_field,
            time_pos,
            first,
            end: self.fields.len(),
        };
        let known = memo.hit(&self.valid_names);
        // Invalid (duplicate names, empty name, ...): serde decides and words the error.
        self.commit(rec, base, lens_check(doc), known, known).ok()?;
        if doc.len() <= TEMPLATE_MAX_BYTES {
            // `valid_names` holds this document's names (matched, or rebuilt by `commit`).
            self.template_names = true;
            self.template.tail = prev_end;
            self.template.doc.extend_from_slice(doc);
            self.template.tf.extend_from_slice(tf);
        }
        Some(())
    }

    /// Stages `doc` (already copied to `base`) when it is the template document with other
    /// values (see [`Template::read`]). `None` (fields possibly staged) when it is not.
    fn stage_like_template(
        &mut self,
        doc: &[u8],
        tf: &[u8],
        base: usize,
        first: usize,
    ) -> Option<TickRec> {
        let TickBatch {
            template, fields, ..
        } = self;
        let span = |(start, end): (usize, usize)| Span {
            start: base + start,
            end: base + end,
        };
        let (time, time_pos, tname) = template.read(doc, tf, |name, kind, value, num| {
            fields.push(FieldRec {
                name: span(name),
                value: span(value),
                kind,
                num,
            });
        })?;
        Some(TickRec {
            time,
            time_field: span(tname),
            time_pos,
            first,
            end: fields.len(),
        })
    }
}

/// The value checks a tick read from `doc` by the fast parser needs: none when no part of the
/// document can be longer than a value may be.
fn lens_check(doc: &[u8]) -> Check {
    if doc.len() <= MAX_VALUE_BYTES {
        Check::Nothing
    } else {
        Check::Lens
    }
}

/// The time of a tick from its time field's JSON number: an integer as `canonical_i64` reads
/// it (exactly the texts `num_repr` reads as an integer).
#[inline(always)]
fn time_of(num: Option<Num>) -> Option<i64> {
    match num {
        Some(Num::Int(t)) => Some(t),
        _ => None,
    }
}

/// Documents up to this size leave their layout as the batch's [`Template`].
const TEMPLATE_MAX_BYTES: usize = 4096;

/// The layout of the last document the fast path accepted (empty `doc`: none). Feeds send
/// documents of one layout, differing in their values only; such a document is read by
/// comparing the bytes between values, and its names need no checks.
#[derive(Clone, Debug, Default)]
struct Template {
    doc: Vec<u8>,
    /// The time field the document was read with.
    tf: Vec<u8>,
    members: Vec<Member>,
    /// Where the bytes after the last value start.
    tail: usize,
}

impl Template {
    /// Reads `doc` when it is the template document with other values: the same bytes
    /// around each value (names, quotes, spacing), so the parser would read the same names,
    /// and the same time field `tf`. Calls `value(name, kind, value, num)` for each member but
    /// the time field, in order (name and value as offsets in `doc`); returns the time, its
    /// position among the fields and its name's offsets. `None` (after any number of calls)
    /// when `doc` is not like the template, or when the parser would decline it.
    #[inline(always)]
    fn read(
        &self,
        doc: &[u8],
        tf: &[u8],
        mut value: impl FnMut((usize, usize), ValueKind, (usize, usize), Option<Num>),
    ) -> Option<(i64, usize, (usize, usize))> {
        if self.doc.is_empty() || !eq_short(&self.tf, tf) {
            return None;
        }
        let mut p = Parser { b: doc, i: 0 };
        let mut time = None;
        let mut time_pos = 0;
        let mut time_name = (0, 0);
        let mut n = 0;
        for m in &self.members {
            let lead = self.doc.get(m.lead.0..m.lead.1)?;
            let at = p.i;
            let end = at.checked_add(lead.len())?;
            if !doc.get(at..end).is_some_and(|d| eq_short(d, lead)) {
                return None;
            }
            p.i = end;
            // Within the lead, so within `doc`.
            let name = (at + m.name.0, at + m.name.1);
            let (kind, span, num) = p.value()?;
            if m.is_time {
                if kind != ValueKind::Num {
                    return None;
                }
                time = Some(time_of(num)?);
                time_pos = n;
                time_name = name;
            } else {
                value(name, kind, span, num);
                n += 1;
            }
        }
        if !eq_short(doc.get(p.i..)?, self.doc.get(self.tail..)?) {
            return None;
        }
        Some((time?, time_pos, time_name))
    }

    fn clear(&mut self) {
        if self.doc.capacity() > TEMPLATE_MAX_BYTES * 2 {
            *self = Template::default();
        }
        self.doc.clear();
        self.tf.clear();
        self.members.clear();
        self.tail = 0;
    }
}

/// A member of the template document: the bytes from the end of the previous value (or the
/// start) to this value's JSON token, as offsets in the document, and its name (the string's
/// body) as offsets from the start of those bytes.
#[derive(Clone, Copy, Debug)]
struct Member {
    lead: (usize, usize),
    name: (usize, usize),
    is_time: bool,
}

/// The names of a tick (the time field's included, at its place) as one byte string: per
/// name a little-endian `u16` of its length (`TIME_FLAG` set for the time field), then its
/// bytes. Only for names of at most [`MAX_NAME_BYTES`], so the length never reaches the flag
/// and equal keys mean equal names, equal time field, equal time position.
struct ShapeKey(Vec<u8>);

const TIME_FLAG: u16 = 0x8000;

impl ShapeKey {
    fn new(mut buf: Vec<u8>) -> Self {
        buf.clear();
        ShapeKey(buf)
    }

    /// The key of `t` (whose names passed the checks, so are short enough).
    fn write<T: TickSrc + ?Sized>(&mut self, t: &T) {
        for i in 0..=t.n_fields() {
            if i == t.time_pos() {
                self.item(t.time_field(), true);
            }
            if i < t.n_fields() {
                self.item(t.name(i), false);
            }
        }
    }

    fn item(&mut self, name: &[u8], time: bool) {
        let len = u16::try_from(name.len()).unwrap_or(u16::MAX) & !TIME_FLAG;
        let head = if time { len | TIME_FLAG } else { len };
        self.0.extend_from_slice(&head.to_le_bytes());
        self.0.extend_from_slice(name);
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Sets `out` to the shape key of `t` (a validated tick): equal keys, equal names in the same
/// places (the time field's included).
pub(super) fn write_shape_key<T: TickSrc + ?Sized>(out: &mut Vec<u8>, t: &T) {
    let mut key = ShapeKey::new(std::mem::take(out));
    key.write(t);
    *out = key.into_bytes();
}

/// Compares a tick's names, as they are read, with a [`ShapeKey`] without building the key.
#[derive(Default)]
struct KeyCursor {
    at: usize,
    differs: bool,
}

impl KeyCursor {
    #[inline]
    fn step(&mut self, key: &[u8], name: &[u8], time: bool) {
        if self.differs {
            return;
        }
        // A name too long for a key never matches one.
        let Some(len) = u16::try_from(name.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_NAME_BYTES)
        else {
            self.differs = true;
            return;
        };
        let head = if time { len | TIME_FLAG } else { len };
        let end = self.at + 2 + name.len();
        let same = key.get(self.at..self.at + 2) == Some(&head.to_le_bytes()[..])
            && key.get(self.at + 2..end).is_some_and(|k| eq_short(k, name));
        if same {
            self.at = end;
        } else {
            self.differs = true;
        }
    }

    /// True when every name matched and the key has no more.
    #[inline]
    fn hit(&self, key: &[u8]) -> bool {
        !self.differs && self.at == key.len() && !key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::num_repr;
    use super::super::json::string_stops;
    use super::super::value::canonical_i64;
    use super::super::{TickBook, Value, MAX_NAME_BYTES};
    use super::*;
    use crate::decimal::swar;

    use crate::test_rng::Lcg;

    /// The fast path never disagrees with serde: when it accepts, serde yields the same tick;
    /// `push_json` (fast path + fallback) is exactly `Tick::from_json`. Returns whether the
    /// fast path accepted.
    fn check(doc: &[u8], tf: &[u8]) -> bool {
        let reference = Tick::from_json(doc, tf);
        let mut b = TickBatch::new();
        let fast = b.push_flat_json(doc, tf);
        if fast {
            assert_eq!(b.len(), 1);
            let t = b.tick(0).unwrap();
            assert_eq!(
                reference.as_ref().ok(),
                Some(&t),
                "fast path differs on {:?}",
                String::from_utf8_lossy(doc)
            );
        } else {
            assert!(b.is_empty() && b.text.is_empty() && b.fields.is_empty());
        }
        let mut b = TickBatch::new();
        // A tick already in the batch must survive a failed push.
        b.push_pairs(7, [(&b"x"[..], &b"y"[..])].into_iter())
            .unwrap();
        match (b.push_json(doc, tf), &reference) {
            (Ok(()), Ok(t)) => assert_eq!(b.tick(1).as_ref(), Some(t)),
            (Err(e), Err(r)) => assert_eq!(e.message(), r.message()),
            (got, want) => panic!(
                "push_json {:?} vs from_json {:?} on {:?}",
                got.is_ok(),
                want.is_ok(),
                String::from_utf8_lossy(doc)
            ),
        }
        assert_eq!(
            b.tick(0),
            Some(Tick::from_pairs(7, vec![(b"x".to_vec(), b"y".to_vec())]).unwrap())
        );
        assert_eq!(b.len(), 1 + usize::from(reference.is_ok()));
        // Once more: the batch now remembers this document's names if they passed.
        let n = b.len();
        match (b.push_json(doc, tf), &reference) {
            (Ok(()), Ok(t)) => assert_eq!(b.tick(n).as_ref(), Some(t)),
            (Err(e), Err(r)) => assert_eq!(e.message(), r.message()),
            (got, _) => panic!("second push {:?}", got.is_ok()),
        }
        fast
    }

    use candles_testkit::fixtures::lines as fixture_lines;

    #[test]
    fn fast_path_matches_serde_on_fixture_captures() {
        let files: Vec<String> = candles_testkit::fixtures::names()
            .into_iter()
            .filter(|n| n.ends_with(".jsonl"))
            .collect();
        assert!(files.iter().any(|f| f == "ws_aggTrade_combined.jsonl"));
        assert!(
            files
                .iter()
                .filter(|f| f.starts_with("ws_capture_spot_"))
                .count()
                >= 3
        );
        let (mut docs, mut fast) = (0, 0);
        for f in &files {
            for line in fixture_lines(f) {
                check(line.as_bytes(), b"stream");
                type Obj = std::collections::HashMap<String, Box<serde_json::value::RawValue>>;
                let Ok(mut o) = serde_json::from_str::<Obj>(&line) else {
                    continue;
                };
                if let Some(frame) = o.get("frame") {
                    let Ok(f) = serde_json::from_str::<Obj>(frame.get()) else {
                        continue;
                    };
                    o = f;
                }
                let Some(data) = o.get("data").map(|d| d.get().to_string()) else {
                    continue;
                };
                // the payload exactly as received, and re-spaced
                for tf in [&b"E"[..], b"u", b"T", b"ft", b"s"] {
                    docs += 1;
                    let accepted = check(data.as_bytes(), tf);
                    fast += usize::from(accepted);
                    if f.contains("aggTrade") && data.contains("\"aggTrade\"") && tf == b"E" {
                        assert!(accepted, "{data}");
                    }
                }
                let v: serde_json::Value = serde_json::from_str(&data).unwrap();
                check(serde_json::to_string_pretty(&v).unwrap().as_bytes(), b"E");
                // the original design's tick shape, built from trades
                if let (Some(t), Some(p), Some(q)) = (v.get("T"), v.get("p"), v.get("q")) {
                    let doc = format!(
                        r#"{{"ft":{t},"lp":{},"v":{},"tk":"BTCUSDT"}}"#,
                        p.as_str().unwrap_or("1"),
                        q.as_str().unwrap_or("1")
                    );
                    assert!(check(doc.as_bytes(), b"ft"), "{doc}");
                }
            }
        }
        assert!(docs > 1000, "{docs}");
        // the flat trade / bookTicker payloads take the fast path
        assert!(fast * 6 > docs, "{fast} of {docs}");
    }

    #[test]
    fn fast_path_edge_cases() {
        let accepted = [
            r#"{"time":1}"#,
            r#" { "time" : -5 , "a" : "x" } "#,
            "{\"a\":1e5,\t\"time\":0,\n\"b\":-0.0E-7,\r\"c\":true,\"d\":false,\"e\":null}",
            r#"{"a":"","time":9223372036854775807}"#,
            r#"{"time":-9223372036854775808,"é":"ü"}"#,
            r#"{"a":"58001.03000000","time":1,"b":0.10}"#,
        ];
        for d in accepted {
            assert!(check(d.as_bytes(), b"time"), "{d}");
        }
        let declined = [
            "",
            "{",
            "}",
            "[]",
            "null",
            "{}",
            r#"{"a":1}"#,
            r#"{"time":1.0}"#,
            r#"{"time":-0}"#,
            r#"{"time":01}"#,
            r#"{"time":"1"}"#,
            r#"{"time":9223372036854775808}"#,
            r#"{"time":-9223372036854775809}"#,
            r#"{"time":1,"time":2}"#,
            r#"{"time":1,"a":1,"a":2}"#,
            r#"{"time":1,"":2}"#,
            r#"{"time":1,"a":"x\"y"}"#,
            r#"{"time":1,"a\n":1}"#,
            r#"{"time":1,"a":{"b":1}}"#,
            r#"{"time":1,"a":[1]}"#,
            r#"{"time":1,}"#,
            r#"{"time":1 "a":1}"#,
            r#"{"time":1} x"#,
            r#"{"time":1}}"#,
            r#"{"time":+1}"#,
            r#"{"time":1,"a":.5}"#,
            r#"{"time":1,"a":1.}"#,
            r#"{"time":1,"a":1e}"#,
            r#"{"time":1,"a":tru}"#,
            r#"{"time":1,"a":nul}"#,
            r#"{"time":1,"a":-}"#,
            r#"{"time":1,"a":NaN}"#,
            "{\"time\":1,\"a\":\"\x01\"}",
            "\u{feff}{\"time\":1}",
            r#"{"time":1,"a":"\u0041"}"#,
            r#"{time:1}"#,
            r#"{"time":1,"a":1}  ,"#,
        ];
        for d in declined {
            assert!(!check(d.as_bytes(), b"time"), "{d}");
        }
        // invalid UTF-8 in a name or a string
        assert!(!check(b"{\"time\":1,\"a\":\"\xff\"}", b"time"));
        assert!(!check(b"{\"time\":1,\"\xc3\":1}", b"time"));
        // limits are left to serde's wording
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        assert!(!check(
            format!(r#"{{"time":1,"{long}":1}}"#).as_bytes(),
            b"time"
        ));
        let many: Vec<String> = (0..=MAX_FIELDS).map(|i| format!(r#""f{i}":1"#)).collect();
        let doc = format!(r#"{{"time":1,{}}}"#, many.join(","));
        assert!(!check(doc.as_bytes(), b"time"));
        let doc = format!(r#"{{"time":1,{}}}"#, many[1..].join(","));
        assert!(check(doc.as_bytes(), b"time"));
        // a time field name that no plain key can spell
        assert!(!check(br#"{"a\"b":1}"#, b"a\"b"));
        assert!(!check(br#"{"time":1}"#, b""));
    }

    #[test]
    fn fast_path_matches_serde_on_random_and_mutated_documents() {
        let mut rng = Lcg(0x5eed);
        let atoms: [&[u8]; 24] = [
            b"\"",
            b"\\",
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b" ",
            b"\n",
            b"0",
            b"-",
            b".",
            b"e",
            b"E",
            b"+",
            b"1",
            b"9",
            b"true",
            b"null",
            b"\"time\"",
            b"\xff",
            b"\x00",
            b"\xc3\xa9",
        ];
        let names = ["time", "ft", "a", "b", "lp", "", "a\\n", "é", "tk"];
        let values = [
            "1",
            "-1",
            "0",
            "-0",
            "01",
            "1.5",
            "1.50",
            "-0.0",
            "1e3",
            "1E+3",
            "2.5e-3",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "123456789012345678901234567890",
            "\"x\"",
            "\"\"",
            "\"58001.03000000\"",
            "\"a\\\"b\"",
            "\"\\u00e9\"",
            "true",
            "false",
            "null",
            "{}",
            "[1,2]",
            "{\"k\":[{}]}",
        ];
        let mut fast = 0;
        let mut shared = TickBatch::new();
        for round in 0..20_000 {
            let n = rng.pick(5);
            let mut doc = String::from("{");
            for i in 0..n {
                if i > 0 {
                    doc.push_str([",", " , ", ",\n"][rng.pick(3)]);
                }
                doc.push('"');
                doc.push_str(names[rng.pick(names.len())]);
                doc.push_str("\":");
                doc.push_str(values[rng.pick(values.len())]);
            }
            doc.push('}');
            let mut bytes = doc.into_bytes();
            let unmutated = bytes.clone();
            if round % 2 == 1 {
                for _ in 0..1 + rng.pick(3) {
                    let at = rng.pick(bytes.len() + 1);
                    match rng.pick(3) {
                        0 => {
                            let a = atoms[rng.pick(atoms.len())];
                            bytes.splice(at..at, a.iter().copied());
                        }
                        1 if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ => bytes.truncate(at),
                    }
                }
            }
            for tf in [&b"time"[..], b"ft"] {
                fast += usize::from(check(&bytes, tf));
            }
            // The mutated document right after its original, which (if accepted) left its
            // layout as the batch's template.
            let tf: &[u8] = if round % 4 < 2 { b"time" } else { b"ft" };
            for d in [&unmutated, &bytes] {
                let n = shared.len();
                match (shared.push_json(d, tf), Tick::from_json(d, tf)) {
                    (Ok(()), Ok(t)) => assert_eq!(shared.tick(n), Some(t)),
                    (Err(e), Err(r)) => assert_eq!(e.message(), r.message()),
                    (g, _) => panic!("{:?}: {:?}", String::from_utf8_lossy(d), g.is_ok()),
                }
            }
            if shared.len() > 100 {
                shared.clear();
            }
        }
        assert!(fast > 100, "{fast}");
    }

    /// Documents next to the template's layout: only other values read like the template.
    #[test]
    fn template_neighbours_match_serde() {
        let template = br#"{"ft": 1, "a": "x", "b": 2, "c": true}"#;
        let mut warm = TickBatch::new();
        warm.push_json(template, b"ft").unwrap();
        assert!(!warm.template.doc.is_empty());
        let like: [&[u8]; 5] = [
            br#"{"ft": -12, "a": "", "b": 2.5e-3, "c": null}"#,
            b"{\"ft\": 1, \"a\": \"\xc3\xa9\", \"b\": -0, \"c\": false}",
            br#"{"ft": 1, "a": "x", "b": 2, "c": 1}"#,
            br#"{"ft": 1, "a": 5, "b": "s", "c": true}"#,
            br#"{"ft": 9223372036854775807, "a": "x y", "b": 0, "c": true}"#,
        ];
        let unlike: [&[u8]; 16] = [
            br#"{"ft": 1, "a": "x\"", "b": 2, "c": true}"#,
            br#"{"ft": 1, "a": "x", "b": 2 , "c": true}"#,
            br#"{"ft": 1, "a": "x", "b": 2, "c": true} "#,
            br#"{"ft": 1, "a": "x", "b": 2, "c": true}x"#,
            br#"{"ft": 1, "a": "x", "b": 2, "c": true, "d": 1}"#,
            br#"{"ft": 1, "a": "x", "b": 2, "c": true"#,
            br#"{"ft": 1, "a": "x", "b": 2, "d": true}"#,
            br#"{"ft": 1, "a": {"k": 1}, "b": 2, "c": true}"#,
            br#"{"ft": 1.5, "a": "x", "b": 2, "c": true}"#,
            br#"{"ft": "1", "a": "x", "b": 2, "c": true}"#,
            br#"{"ft": 01, "a": "x", "b": 2, "c": true}"#,
            br#"{"ft": 1, "a": "x", "b": 2., "c": true}"#,
            br#"{"ft": 1, "a": "x", "b": 2, "c": tru}"#,
            b"{\"ft\": 1, \"a\": \"\xff\", \"b\": 2, \"c\": true}",
            br#"{"ft":  1, "a": "x", "b": 2, "c": true}"#,
            b"",
        ];
        for (doc, hit) in like
            .iter()
            .map(|d| (d, true))
            .chain(unlike.iter().map(|d| (d, false)))
        {
            for tf in [&b"ft"[..], b"a", b"c"] {
                let mut b = warm.clone();
                let staged = b.stage_like_template(doc, tf, 0, 0).is_some();
                assert_eq!(
                    staged,
                    hit && tf == b"ft",
                    "{}",
                    String::from_utf8_lossy(doc)
                );
                let mut b = warm.clone();
                match (b.push_json(doc, tf), Tick::from_json(doc, tf)) {
                    (Ok(()), Ok(t)) => assert_eq!(b.tick(1), Some(t)),
                    (Err(e), Err(r)) => assert_eq!(e.message(), r.message()),
                    (g, _) => panic!("{}: {:?}", String::from_utf8_lossy(doc), g.is_ok()),
                }
            }
        }
    }

    /// One batch reused for a long mix of documents and pairs (as the module reuses its
    /// batch): the remembered names (`valid_names`) never change an outcome. Shapes repeat
    /// often, with duplicate, empty, reserved, too long and non-UTF-8 names among them, and
    /// the time field changes between pushes.
    #[test]
    fn reused_batch_matches_the_references() {
        let mut rng = Lcg(0xba7c);
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        let longest = "m".repeat(MAX_NAME_BYTES);
        let names: Vec<&[u8]> = vec![
            b"token",
            b"lp",
            b"pc",
            b"ft",
            b"time",
            b"a",
            b"",
            b"\xc3\xa9",
            long.as_bytes(),
            longest.as_bytes(),
            b"x\"y",
            b"\xff",
            b"\\",
        ];
        let shapes: Vec<Vec<usize>> = (0..12)
            .map(|_| (0..rng.pick(6)).map(|_| rng.pick(names.len())).collect())
            .chain([vec![0, 1, 2], vec![0, 1, 2], vec![1, 0, 2], vec![0, 1]])
            .collect();
        let tfs: [&[u8]; 4] = [b"ft", b"ft", b"time", b"a"];
        let mut b = TickBatch::new();
        let (mut hits, mut json_hits, mut fast) = (0, 0, 0);
        // Pushes mostly repeat the previous one's form and shape, as real feeds do.
        let (mut pairs_form, mut shape, mut tf, mut at) = (false, &shapes[0], tfs[0], 0);
        for round in 0..20_000 {
            if rng.pick(8) == 0 {
                b.clear();
            }
            let before = b.len();
            if rng.pick(4) == 0 {
                pairs_form = rng.pick(3) == 0;
                shape = &shapes[rng.pick(shapes.len())];
                tf = tfs[rng.pick(tfs.len())];
                at = rng.pick(shape.len() + 1);
            }
            let time = rng.pick(2000) as i64 - 1000;
            if pairs_form {
                let kv: Vec<(Vec<u8>, Vec<u8>)> = shape
                    .iter()
                    .map(|&n| (names[n].to_vec(), format!("v{}", rng.pick(9)).into_bytes()))
                    .collect();
                let known = memo_covers(&b, DEFAULT_TIME_FIELD, 0, shape.iter().map(|&n| names[n]));
                let got = b.push_pairs(time, kv.iter().map(|(f, v)| (&f[..], &v[..])));
                match (got, Tick::from_pairs(time, kv)) {
                    (Ok(()), Ok(t)) => {
                        hits += usize::from(known);
                        assert_eq!(b.tick(before), Some(t));
                    }
                    (Err(e), Err(r)) => {
                        assert!(!known, "round {round}");
                        assert_eq!(e.message(), r.message());
                    }
                    (g, r) => panic!("round {round}: {:?} vs {:?}", g.is_ok(), r.is_ok()),
                }
            } else {
                let mut doc = String::from("{");
                for (i, &n) in shape.iter().enumerate() {
                    if i == at {
                        doc.push_str(&format!("\"{}\": {time}, ", String::from_utf8_lossy(tf)));
                    }
                    let v = match rng.pick(3) {
                        0 => format!("{}.{:02}", rng.pick(100), rng.pick(100)),
                        1 => format!("\"s{}\"", rng.pick(3)),
                        _ => "true".into(),
                    };
                    let name = String::from_utf8_lossy(names[n]).replace('\\', "\\\\");
                    doc.push_str(&format!("\"{}\": {v}, ", name.replace('"', "\\\"")));
                }
                if at == shape.len() {
                    doc.push_str(&format!("\"{}\": {time}", String::from_utf8_lossy(tf)));
                } else {
                    doc.truncate(doc.len() - 2);
                }
                doc.push('}');
                let accepted = b.clone().push_flat_json(doc.as_bytes(), tf);
                fast += usize::from(accepted);
                let names = shape.iter().map(|&n| names[n]);
                json_hits += usize::from(accepted && memo_covers(&b, tf, at, names));
                match (
                    b.push_json(doc.as_bytes(), tf),
                    Tick::from_json(doc.as_bytes(), tf),
                ) {
                    (Ok(()), Ok(t)) => assert_eq!(b.tick(before), Some(t)),
                    (Err(e), Err(r)) => assert_eq!(e.message(), r.message()),
                    (g, r) => panic!("{doc}: {:?} vs {:?}", g.is_ok(), r.is_ok()),
                }
            }
            assert_eq!(b.ticks.len(), b.len());
        }
        assert!(
            hits > 100 && json_hits > 1000 && fast > 3000,
            "{hits} {json_hits} {fast}"
        );
    }

    /// Whether `b` remembers exactly these names (time field `tf` at `pos`) as checked.
    fn memo_covers<'a>(
        b: &TickBatch,
        tf: &[u8],
        pos: usize,
        names: impl Iterator<Item = &'a [u8]>,
    ) -> bool {
        let mut c = KeyCursor::default();
        for (i, n) in names.enumerate() {
            if i == pos {
                c.step(&b.valid_names, tf, true);
            }
            c.step(&b.valid_names, n, false);
        }
        c.hit(&b.valid_names)
    }

    #[test]
    fn word_scans_find_the_first_stop() {
        let mut rng = Lcg(0x5ca9);
        let interesting = [
            b'"', b'\\', 0, 0x1f, 0x20, b'0', b'9', b'/', b':', 0x7f, 0x80, 0xff,
        ];
        for _ in 0..200_000 {
            let bytes: [u8; 8] = std::array::from_fn(|_| match rng.pick(3) {
                0 => interesting[rng.pick(interesting.len())],
                1 => b'a' + rng.pick(26) as u8,
                _ => rng.next() as u8,
            });
            let w = u64::from_le_bytes(bytes);
            let first = |m: u64| (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
            let string_stop = bytes
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c));
            assert_eq!(first(string_stops(w)), string_stop, "{bytes:?}");
            let non_digit = bytes.iter().position(|c| !c.is_ascii_digit());
            // The digit scan is decimal::swar's: the first non-digit, 8 when there is none.
            assert_eq!(swar::digit_run(w), non_digit.unwrap_or(8), "{bytes:?}");
        }
    }

    /// The number scanner's [`Num`] is `num_repr`'s for the same text (left to `num_repr`
    /// only past 19 digits), and a time is read as `canonical_i64` reads it.
    #[test]
    fn scanned_numbers_read_like_num_repr() {
        let mut rng = Lcg(0x9e3);
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "0.10",
            "-0.5",
            "1",
            "-1",
            "125.44",
            "1e5",
            "-1.5E-3",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "9999999999999999999",
            "99999999999999999999",
            "922337203685477580.7",
            "0.000000000000000001",
            "0.0000000000000000001",
            "12345678.12345678",
            "1234567812345678.1",
            "1752810305250",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..100_000 {
            let mut t = String::new();
            if rng.pick(3) == 0 {
                t.push('-');
            }
            let int_len = 1 + rng.pick(21);
            if rng.pick(5) == 0 {
                t.push('0');
            } else {
                t.push(char::from(b'1' + rng.pick(9) as u8));
                for _ in 1..int_len {
                    t.push(char::from(b'0' + rng.pick(10) as u8));
                }
            }
            if rng.pick(2) == 0 {
                t.push('.');
                for _ in 0..1 + rng.pick(21) {
                    t.push(char::from(b'0' + rng.pick(10) as u8));
                }
            }
            if rng.pick(20) == 0 {
                t.push_str(["e5", "E-2", "e+10"][rng.pick(3)]);
            }
            cases.push(t);
        }
        for c in cases {
            let b = c.as_bytes();
            let mut p = Parser { b, i: 0 };
            let (span, num) = p.number().expect("a JSON number");
            assert_eq!(span, (0, b.len()), "{c}");
            let digits = b.iter().take_while(|&&x| x != b'e' && x != b'E');
            match num {
                Some(n) => assert_eq!(n, num_repr(b), "{c}"),
                None => assert!(digits.filter(|x| x.is_ascii_digit()).count() > 19, "{c}"),
            }
            assert_eq!(time_of(num), canonical_i64(b), "{c}");
        }
    }

    #[test]
    fn canonical_i64_matches_the_reference() {
        fn reference(b: &[u8]) -> Option<i64> {
            let s = std::str::from_utf8(b).ok()?;
            let v: i64 = s.parse().ok()?;
            (v.to_string() == s).then_some(v)
        }
        let mut rng = Lcg(42);
        let alphabet = b"0123456789-+ .e";
        let mut cases: Vec<Vec<u8>> = [
            "0",
            "-0",
            "00",
            "01",
            "-01",
            "+1",
            "1",
            "-1",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "18446744073709551616",
            "",
            "-",
            " 1",
            "1 ",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        for _ in 0..50_000 {
            let len = rng.pick(22);
            cases.push(
                (0..len)
                    .map(|_| alphabet[rng.pick(alphabet.len())])
                    .collect(),
            );
            cases.push(
                (rng.next() as i64)
                    .wrapping_mul(rng.next() as i64)
                    .to_string()
                    .into_bytes(),
            );
        }
        for c in cases {
            assert_eq!(
                canonical_i64(&c),
                reference(&c),
                "{:?}",
                String::from_utf8_lossy(&c)
            );
        }
    }

    #[test]
    fn pairs_match_tick_from_pairs() {
        let cases: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![
            vec![],
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"x y".to_vec()),
            ],
            vec![(b"time".to_vec(), b"1".to_vec())],
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"a".to_vec(), b"2".to_vec()),
            ],
            vec![(b"".to_vec(), b"1".to_vec())],
            vec![(vec![b'a'; MAX_NAME_BYTES + 1], b"1".to_vec())],
            (0..40)
                .map(|i| (format!("f{i}").into_bytes(), vec![i as u8]))
                .collect(),
            (0..40)
                .map(|i| (format!("f{}", i % 39).into_bytes(), vec![]))
                .collect(),
            (0..=MAX_FIELDS)
                .map(|i| (format!("f{i}").into_bytes(), vec![]))
                .collect(),
        ];
        for kv in cases {
            let reference = Tick::from_pairs(-3, kv.clone());
            let mut b = TickBatch::new();
            let got = b.push_pairs(-3, kv.iter().map(|(f, v)| (&f[..], &v[..])));
            match (got, reference) {
                (Ok(()), Ok(t)) => assert_eq!(b.tick(0), Some(t)),
                (Err(e), Err(r)) => {
                    assert_eq!(e.message(), r.message());
                    assert!(b.is_empty() && b.text.is_empty());
                }
                (g, r) => panic!("{:?} vs {:?}", g.is_ok(), r.is_ok()),
            }
        }
    }

    /// `uniform_key` is the key of every tick's names, whichever way each tick came in (the
    /// template path reports names that passed the checks, not necessarily `valid_names`).
    #[test]
    fn uniform_key_is_the_names_of_every_tick() {
        let key_of = |t: &Tick| {
            let mut k = Vec::new();
            write_shape_key(&mut k, t);
            k
        };
        let (a1, a2): (&[u8], &[u8]) = (
            br#"{"ft":1,"lp":1.5,"v":2}"#,
            br#"{"ft":3,"lp":2.5,"v":30}"#,
        );
        let ka = key_of(&Tick::from_json(a1, b"ft").unwrap());
        let pair = [(&b"x"[..], &b"1"[..])];
        let kb = key_of(&Tick::from_pairs(2, vec![(b"x".to_vec(), b"1".to_vec())]).unwrap());
        let mut b = TickBatch::new();
        assert_eq!(b.uniform_key(), None);
        b.push_json(a1, b"ft").unwrap();
        assert_eq!(b.uniform_key(), Some(&ka[..]));
        b.clear();
        b.push_pairs(2, pair.into_iter()).unwrap();
        assert_eq!(b.uniform_key(), Some(&kb[..]));
        b.clear();
        // The template's layout, read while `valid_names` held the pairs' names.
        b.push_json(a2, b"ft").unwrap();
        assert_eq!(b.uniform_key(), Some(&ka[..]));
        b.push_json(a1, b"ft").unwrap();
        assert_eq!(b.uniform_key(), Some(&ka[..]));
        b.push_pairs(4, pair.into_iter()).unwrap();
        assert_eq!(b.uniform_key(), None);
        b.clear();
        b.push_pairs(5, pair.into_iter()).unwrap();
        b.push_json(a2, b"ft").unwrap();
        assert_eq!(b.uniform_key(), None);
        // A failed push leaves the batch's answer as it was.
        b.clear();
        b.push_json(a1, b"ft").unwrap();
        assert!(b.push_json(br#"{"ft":1,"lp":1.5,"lp":2}"#, b"ft").is_err());
        assert_eq!(b.uniform_key(), Some(&ka[..]));
    }

    #[test]
    fn batch_pushes_encode_like_tick_pushes() {
        let mut rng = Lcg(9);
        let (mut by_batch, mut by_ticks) = (TickBook::new(), TickBook::new());
        let mut batch = TickBatch::new();
        let shapes: [&[&str]; 3] = [&["lp", "v", "tk"], &["lp", "v"], &["x", "lp", "v", "tk"]];
        for i in 0..3000 {
            batch.clear();
            let mut ticks = Vec::new();
            for _ in 0..1 + rng.pick(3) {
                let shape = shapes[rng.pick(shapes.len())];
                let time = 1_000 + i as i64 - rng.pick(5) as i64;
                let mut doc = format!(r#"{{"ft":{time}"#);
                for f in shape {
                    let v = match rng.pick(4) {
                        0 => format!("{}.{:02}", 58000 + rng.pick(50), rng.pick(100)),
                        1 => format!("\"S{}\"", rng.pick(3)),
                        2 => format!("{}", rng.pick(1000)),
                        _ => "true".into(),
                    };
                    doc.push_str(&format!(r#","{f}":{v}"#));
                }
                doc.push('}');
                batch.push_json(doc.as_bytes(), b"ft").unwrap();
                ticks.push(Tick::from_json(doc.as_bytes(), b"ft").unwrap());
            }
            if rng.pick(4) == 0 {
                let kv = [(&b"a"[..], &b"1"[..]), (b"b", b"two")];
                batch.push_pairs(i as i64, kv.into_iter()).unwrap();
                ticks.push(
                    Tick::from_pairs(
                        i as i64,
                        kv.iter().map(|(a, b)| (a.to_vec(), b.to_vec())).collect(),
                    )
                    .unwrap(),
                );
            }
            let stream: &[u8] = if rng.pick(3) == 0 { b"s2" } else { b"s1" };
            let maxlen = (rng.pick(50) == 0).then_some(100 + rng.pick(200));
            let o = by_batch.push_batch(stream, maxlen, 500, &batch).unwrap();
            let len = by_ticks.push(stream, maxlen, 500, &ticks).unwrap();
            assert_eq!(o.len, len);
            assert_eq!(Some(o.cap), by_ticks.stream_cap(stream));
        }
        assert_eq!(by_batch.encode().unwrap(), by_ticks.encode().unwrap());
        assert_eq!(by_batch.mem_usage(), by_ticks.mem_usage());
        assert_eq!(
            by_batch.latest(b"s1", 1000).unwrap(),
            by_ticks.latest(b"s1", 1000).unwrap()
        );
        // the outcome reports creation
        let mut b = TickBook::new();
        batch.clear();
        batch.push_pairs(1, std::iter::empty()).unwrap();
        assert!(b.push_batch(b"n", None, 7, &batch).unwrap().created);
        let o = b.push_batch(b"n", None, 9, &batch).unwrap();
        assert_eq!((o.len, o.cap, o.created), (2, 7, false));
        let _ = Value::null();
    }
}
