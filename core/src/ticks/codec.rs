//! The low-level codec of tick records: the byte [`Reader`], the number-like text forms
//! (integer, decimal) that are stored as numbers and printed back exactly, the value tags,
//! and the per-chunk delta state with the value encoder and decoder. The bytes written here
//! are the RDB payload: they must never change for an existing encoding version.

use super::value::{Value, ValueKind};
use super::{eq_short, MAX_NAMES_PER_STREAM, MAX_VALUE_BYTES};
use crate::error::{CoreError, CoreResult};
use crate::varint::{self, VarintError};
use std::borrow::Cow;

pub(super) struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

pub(super) fn corrupt(what: &str) -> CoreError {
    CoreError::corrupt(format!("corrupt tick book encoding: {what}"))
}

impl<'a> Reader<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }
    pub(super) fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }
    pub(super) fn u8(&mut self) -> CoreResult<u8> {
        let v = self
            .b
            .get(self.pos)
            .copied()
            .ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(v)
    }
    pub(super) fn varint(&mut self) -> CoreResult<u64> {
        varint::get_u64(self.b, &mut self.pos).map_err(|e| match e {
            VarintError::Truncated => corrupt("truncated"),
            VarintError::Overflow => corrupt("varint overflow"),
        })
    }
    /// A zig-zag varint.
    pub(super) fn varint_i64(&mut self) -> CoreResult<i64> {
        self.varint().map(varint::unzigzag)
    }
    pub(super) fn usize(&mut self, max: usize, what: &str) -> CoreResult<usize> {
        let v = self.varint()?;
        if v > max as u64 {
            return Err(corrupt(what));
        }
        Ok(v as usize)
    }
    pub(super) fn take(&mut self, n: usize) -> CoreResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| corrupt("length overflow"))?;
        let s = self
            .b
            .get(self.pos..end)
            .ok_or_else(|| corrupt("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    pub(super) fn bytes(&mut self, max: usize) -> CoreResult<&'a [u8]> {
        let n = self.usize(max.min(self.remaining()), "length out of range")?;
        self.take(n)
    }
}

/// A number-like text as an integer or a decimal (mantissa, scale) that prints back exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Num {
    None,
    Int(i64),
    Dec(i64, u8),
}

pub(super) const MAX_DEC_SCALE: u8 = 18;

/// One pass over the text (it runs for every string and number pushed): the same answers as
/// `canonical_i64`, then a plain decimal of at most [`MAX_DEC_SCALE`] fraction digits whose
/// digits read as an i64 mantissa (the tests keep the two-pass reference).
#[inline]
pub(super) fn num_repr(t: &[u8]) -> Num {
    // At most 19 bytes: below 10^19 < 2^64, the mantissa cannot overflow a u64, so the
    // digits need no overflow checks (prices, sizes, millisecond times); longer texts take
    // the checked pass.
    if t.is_empty() || t.len() > 19 {
        num_repr_with::<true>(t)
    } else {
        num_repr_with::<false>(t)
    }
}

/// `m * 10 + d`, checked (None on overflow) or, where the length rules overflow out, not.
#[inline(always)]
fn push_digit<const CHECKED: bool>(m: u64, d: u8) -> Option<u64> {
    if CHECKED {
        m.checked_mul(10)?.checked_add(u64::from(d))
    } else {
        Some(m.wrapping_mul(10).wrapping_add(u64::from(d)))
    }
}

/// [`num_repr`]'s one pass; `CHECKED` for texts long enough to overflow the mantissa.
#[inline(always)]
fn num_repr_with<const CHECKED: bool>(t: &[u8]) -> Num {
    if t.is_empty() || t.len() > 40 {
        return Num::None;
    }
    let (neg, rest) = match t.split_first() {
        Some((b'-', r)) => (true, r),
        _ => (false, t),
    };
    // Digits accumulate as u64: an overflow is out of range for both forms.
    let mut m: u64 = 0;
    let mut i = 0;
    while let Some(&c) = rest.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        m = match push_digit::<CHECKED>(m, d) {
            Some(v) => v,
            None => return Num::None,
        };
        i += 1;
    }
    // No digit, or a leading zero of a longer integer part.
    if i == 0 || (i > 1 && rest.first() == Some(&b'0')) {
        return Num::None;
    }
    let int_len = i;
    match rest.get(i) {
        None => return num_of(neg, m, 0),
        Some(b'.') => i += 1,
        Some(_) => return Num::None,
    }
    while let Some(&c) = rest.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Num::None;
        }
        m = match push_digit::<CHECKED>(m, d) {
            Some(v) => v,
            None => return Num::None,
        };
        i += 1;
    }
    let scale = i - int_len - 1;
    if scale == 0 {
        return Num::None;
    }
    // The mantissa only grows digit by digit, so a final value in range was in range all along.
    num_of(neg, m, scale)
}

/// The [`Num`] of a number-like text read as a sign, the digits as a mantissa `m` (no
/// overflow) and `scale` fraction digits (0: none, an integer; its text has no leading zero,
/// as `num_repr` requires): `num_repr`'s answer, shared with the JSON number scanner.
#[inline(always)]
pub(super) fn num_of(neg: bool, m: u64, scale: usize) -> Num {
    if scale == 0 {
        // `canonical_i64`: no `-0`, in range.
        return match (neg, m) {
            (true, 0) => Num::None,
            (true, m) if m <= 1u64 << 63 => Num::Int((m as i64).wrapping_neg()),
            (false, m) => i64::try_from(m).map_or(Num::None, Num::Int),
            _ => Num::None,
        };
    }
    if scale > MAX_DEC_SCALE as usize || m > i64::MAX as u64 {
        return Num::None;
    }
    if neg {
        if m == 0 {
            return Num::None; // "-0.0" would print back as "0.0"
        }
        return Num::Dec(-(m as i64), scale as u8);
    }
    Num::Dec(m as i64, scale as u8)
}

pub(super) fn format_dec(out: &mut Vec<u8>, m: i64, scale: u8) {
    let digits = m.unsigned_abs().to_string();
    let scale = scale as usize;
    if m < 0 {
        out.push(b'-');
    }
    let d = digits.as_bytes();
    if d.len() <= scale {
        out.push(b'0');
        out.push(b'.');
        out.extend(std::iter::repeat_n(b'0', scale - d.len()));
        out.extend_from_slice(d);
    } else {
        let (i, f) = d.split_at(d.len() - scale);
        out.extend_from_slice(i);
        out.push(b'.');
        out.extend_from_slice(f);
    }
}

// Value tags: low 4 bits = op, 0x10 = kind Str (for ops INT..PREFIX; Num otherwise).
pub(super) const OP_REPEAT: u8 = 0;
pub(super) const OP_INT: u8 = 1;
pub(super) const OP_INT_DELTA: u8 = 2;
pub(super) const OP_DEC: u8 = 3;
pub(super) const OP_DEC_DELTA: u8 = 4;
pub(super) const OP_TEXT: u8 = 5;
pub(super) const OP_PREFIX: u8 = 6;
pub(super) const OP_NULL: u8 = 7;
pub(super) const OP_FALSE: u8 = 8;
pub(super) const OP_TRUE: u8 = 9;
pub(super) const OP_JSON: u8 = 10;
pub(super) const STR_BIT: u8 = 0x10;

/// The previous value of one field within the current chunk.
#[derive(Clone, Debug)]
pub(super) struct Prev {
    /// The field this slot holds (see [`CodecState::slot`]).
    fid: u32,
    kind: ValueKind,
    /// The value's text, except for a JSON number that `num` holds: that one prints back
    /// exactly from `num` ([`Prev::text`]), so it is neither copied nor compared by text.
    text: Vec<u8>,
    num: Num,
}

impl Prev {
    /// Whether the value is held by `num` alone (`text` is stale).
    #[inline(always)]
    fn by_num(&self) -> bool {
        self.kind == ValueKind::Num && self.num != Num::None
    }

    /// The value's text.
    fn text(&self) -> Cow<'_, [u8]> {
        match (self.by_num(), self.num) {
            (true, Num::Int(x)) => Cow::Owned(x.to_string().into_bytes()),
            (true, Num::Dec(m, s)) => {
                let mut t = Vec::with_capacity(24);
                format_dec(&mut t, m, s);
                Cow::Owned(t)
            }
            _ => Cow::Borrowed(&self.text),
        }
    }
}

/// Field ids up to this one are found through the dense `slot_of` index; larger ones (not
/// reachable: a stream has at most this many names) by a scan of the chunk's slots.
const DENSE_FIDS: usize = MAX_NAMES_PER_STREAM;

/// Delta-coding state of one chunk (the encoder's for the open chunk; a decoder's).
///
/// The previous values live in `slots`, one per field seen in the chunk, in the order the
/// fields first appeared; `slot_of[fid]` is the slot of field `fid` *if* that slot is live
/// (below `live`) and holds `fid` — a stale entry fails that check, so a chunk reset is
/// `live = 0` and the slots keep their text buffers for the next chunk (no hashing, no
/// allocation per chunk).
#[derive(Debug, Default)]
pub(super) struct CodecState {
    pub(super) n: usize,
    pub(super) prev_time: i64,
    pub(super) prev_seq: u64,
    slots: Vec<Prev>,
    live: usize,
    slot_of: Vec<u32>,
    /// Sum of the capacities of the slots' texts, kept so that `mem` is O(1) (it runs twice
    /// per push).
    pub(super) text_cap: usize,
}

impl Clone for CodecState {
    fn clone(&self) -> Self {
        // Cloned texts may have other capacities: sum them again.
        let slots = self.slots.clone();
        let text_cap = slots.iter().map(|p| p.text.capacity()).sum();
        CodecState {
            n: self.n,
            prev_time: self.prev_time,
            prev_seq: self.prev_seq,
            slots,
            live: self.live,
            slot_of: self.slot_of.clone(),
            text_cap,
        }
    }
}

/// Sets `p` to the value `kind`/`text`/`num`, keeping `text_cap` in step.
#[inline(always)]
fn set_prev(p: &mut Prev, text_cap: &mut usize, kind: ValueKind, text: &[u8], num: Num) {
    p.kind = kind;
    p.num = num;
    if p.by_num() {
        return;
    }
    let before = p.text.capacity();
    p.text.clear();
    p.text.extend_from_slice(text);
    *text_cap = *text_cap + p.text.capacity() - before;
}

/// Slot texts above this capacity are given back when their chunk closes.
const KEEP_TEXT: usize = 256;

impl CodecState {
    pub(super) fn reset(&mut self) {
        self.n = 0;
        self.prev_time = 0;
        self.prev_seq = 0;
        // A long value's buffer is not kept past its chunk.
        for p in self.slots.iter_mut().take(self.live) {
            if p.text.capacity() > KEEP_TEXT {
                self.text_cap -= p.text.capacity();
                p.text = Vec::new();
            }
        }
        self.live = 0;
    }

    /// The live slot of `fid`, if the chunk has seen it.
    #[inline(always)]
    fn slot(&self, fid: u32) -> Option<usize> {
        let live = self.slots.get(..self.live).unwrap_or(&[]);
        if (fid as usize) < DENSE_FIDS {
            let i = *self.slot_of.get(fid as usize)? as usize;
            live.get(i).filter(|p| p.fid == fid).map(|_| i)
        } else {
            live.iter().position(|p| p.fid == fid)
        }
    }

    /// A live slot for `fid`, which the chunk has not seen: the next slot, reused if an
    /// earlier chunk left one.
    fn new_slot(&mut self, fid: u32, kind: ValueKind, num: Num) -> usize {
        let i = self.live;
        match self.slots.get_mut(i) {
            Some(p) => {
                p.fid = fid;
                p.kind = kind;
                p.num = num;
            }
            None => self.slots.push(Prev {
                fid,
                kind,
                text: Vec::new(),
                num,
            }),
        }
        self.live += 1;
        let f = fid as usize;
        if f < DENSE_FIDS {
            if self.slot_of.len() <= f {
                self.slot_of.resize(f + 1, u32::MAX);
            }
            if let Some(s) = self.slot_of.get_mut(f) {
                *s = i as u32;
            }
        }
        i
    }

    pub(super) fn remember(&mut self, fid: u32, kind: ValueKind, text: &[u8], num: Num) {
        let i = match self.slot(fid) {
            Some(i) => i,
            None => self.new_slot(fid, kind, num),
        };
        if let Some(p) = self.slots.get_mut(i) {
            set_prev(p, &mut self.text_cap, kind, text, num);
        }
    }

    /// The texts of every slot, live or kept (their capacities make up `text_cap`).
    #[cfg(test)]
    pub(super) fn slot_texts(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.slots.iter().map(|p| &p.text)
    }

    pub(super) fn mem(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Prev>()
            + self.slot_of.capacity() * std::mem::size_of::<u32>()
            + self.text_cap
    }
}

/// Whether `a` takes fewer varint bytes than `b` (zig-zag coded); most deltas take one byte,
/// which settles it without counting.
#[inline(always)]
fn shorter(a: i64, b: i64) -> bool {
    let (za, zb) = (varint::zigzag(a), varint::zigzag(b));
    if za < 0x80 {
        return zb >= 0x80;
    }
    zb >= 0x80 && varint::len_u64(za) < varint::len_u64(zb)
}

/// Appends the value `kind`/`text` of field `fid`, the `pos`-th value of its tick. `num`: its
/// [`num_repr`], when the caller read it already (the JSON number scanner does); otherwise
/// it is read here, after the repeat check.
#[inline(always)]
pub(super) fn encode_value(
    out: &mut Vec<u8>,
    st: &mut CodecState,
    fid: u32,
    pos: usize,
    kind: ValueKind,
    text: &[u8],
    num: Option<Num>,
) {
    // One lookup: the slot is read for the deltas and then overwritten. When the chunk's
    // ticks have one shape (the usual case), a value's slot is its position: tried first.
    let at = match st.slots.get(pos) {
        Some(p) if pos < st.live && p.fid == fid => Some(pos),
        _ => st.slot(fid),
    };
    let slot = match at {
        Some(i) => st.slots.get_mut(i),
        None => None,
    };
    // A JSON number is compared by its Num (see `Prev`); a string by its text, its Num read
    // only when it is not a repeat (feeds repeat strings often).
    let num = match kind {
        ValueKind::Num => Some(num.unwrap_or_else(|| num_repr(text))),
        _ => num,
    };
    if let Some(p) = slot.as_deref() {
        let same = p.kind == kind
            && match num {
                Some(n) if kind == ValueKind::Num && n != Num::None => p.num == n,
                _ => !p.by_num() && eq_short(&p.text, text),
            };
        if same {
            out.push(OP_REPEAT);
            return;
        }
    }
    let prev = slot.as_deref();
    let num = match kind {
        ValueKind::Str | ValueKind::Num => num.unwrap_or_else(|| num_repr(text)),
        _ => Num::None,
    };
    let kbit = if kind == ValueKind::Str { STR_BIT } else { 0 };
    match kind {
        ValueKind::Null => out.push(OP_NULL),
        ValueKind::Bool => out.push(if text == b"true" { OP_TRUE } else { OP_FALSE }),
        ValueKind::Json => {
            out.push(OP_JSON);
            varint::put_bytes(out, text);
        }
        ValueKind::Str | ValueKind::Num => match num {
            Num::Int(x) => {
                let delta = match prev.map(|p| p.num) {
                    Some(Num::Int(px)) => x.checked_sub(px).filter(|&d| shorter(d, x)),
                    _ => None,
                };
                match delta {
                    Some(d) => {
                        out.push(OP_INT_DELTA | kbit);
                        varint::put_i64(out, d);
                    }
                    None => {
                        out.push(OP_INT | kbit);
                        varint::put_i64(out, x);
                    }
                }
            }
            Num::Dec(m, s) => {
                let delta = match prev.map(|p| p.num) {
                    Some(Num::Dec(pm, ps)) if ps == s => {
                        m.checked_sub(pm).filter(|&d| !shorter(m, d))
                    }
                    _ => None,
                };
                match delta {
                    Some(d) => {
                        out.push(OP_DEC_DELTA | kbit);
                        varint::put_i64(out, d);
                    }
                    None => {
                        out.push(OP_DEC | kbit);
                        out.push(s);
                        varint::put_i64(out, m);
                    }
                }
            }
            Num::None => {
                let plen = prev
                    .map(|p| {
                        p.text()
                            .iter()
                            .zip(text.iter())
                            .take_while(|(a, b)| a == b)
                            .count()
                    })
                    .unwrap_or(0);
                let suffix = text.get(plen..).unwrap_or(&[]);
                let prefix_cost = varint::len_u64(plen as u64)
                    + varint::len_u64(suffix.len() as u64)
                    + suffix.len();
                let text_cost = varint::len_u64(text.len() as u64) + text.len();
                if plen > 0 && prefix_cost < text_cost {
                    out.push(OP_PREFIX | kbit);
                    varint::put_u64(out, plen as u64);
                    varint::put_bytes(out, suffix);
                } else {
                    out.push(OP_TEXT | kbit);
                    varint::put_bytes(out, text);
                }
            }
        },
    }
    match slot {
        Some(p) => set_prev(p, &mut st.text_cap, kind, text, num),
        None => {
            let i = st.new_slot(fid, kind, num);
            if let Some(p) = st.slots.get_mut(i) {
                set_prev(p, &mut st.text_cap, kind, text, num);
            }
        }
    }
}

pub(super) fn decode_value(r: &mut Reader, st: &mut CodecState, fid: u32) -> CoreResult<Value> {
    let tag = r.u8()?;
    let op = tag & 0x0f;
    if tag & !(0x0f | STR_BIT) != 0 {
        return Err(corrupt("bad value tag"));
    }
    let kind = if tag & STR_BIT != 0 {
        ValueKind::Str
    } else {
        ValueKind::Num
    };
    if tag & STR_BIT != 0 && !(OP_INT..=OP_PREFIX).contains(&op) {
        return Err(corrupt("bad value tag"));
    }
    let prev = st.slot(fid).and_then(|i| st.slots.get(i));
    let (value, num) = match op {
        OP_REPEAT => {
            let p = prev.ok_or_else(|| corrupt("repeat without a previous value"))?;
            (
                Value {
                    kind: p.kind,
                    text: p.text().into_owned(),
                },
                p.num,
            )
        }
        OP_NULL => (Value::null(), Num::None),
        OP_FALSE => (Value::bool(false), Num::None),
        OP_TRUE => (Value::bool(true), Num::None),
        OP_JSON => (Value::json(r.bytes(MAX_VALUE_BYTES)?), Num::None),
        OP_INT | OP_INT_DELTA => {
            let z = r.varint_i64()?;
            let x = if op == OP_INT {
                z
            } else {
                match prev.map(|p| p.num) {
                    Some(Num::Int(px)) => px
                        .checked_add(z)
                        .ok_or_else(|| corrupt("integer delta overflow"))?,
                    _ => return Err(corrupt("integer delta without a previous integer")),
                }
            };
            (
                Value {
                    kind,
                    text: x.to_string().into_bytes(),
                },
                Num::Int(x),
            )
        }
        OP_DEC | OP_DEC_DELTA => {
            let (m, s) = if op == OP_DEC {
                let s = r.u8()?;
                (r.varint_i64()?, s)
            } else {
                let z = r.varint_i64()?;
                match prev.map(|p| p.num) {
                    Some(Num::Dec(pm, ps)) => (
                        pm.checked_add(z)
                            .ok_or_else(|| corrupt("decimal delta overflow"))?,
                        ps,
                    ),
                    _ => return Err(corrupt("decimal delta without a previous decimal")),
                }
            };
            if s == 0 || s > MAX_DEC_SCALE {
                return Err(corrupt("decimal scale out of range"));
            }
            let mut text = Vec::with_capacity(24);
            format_dec(&mut text, m, s);
            (Value { kind, text }, Num::Dec(m, s))
        }
        OP_TEXT => {
            let t = r.bytes(MAX_VALUE_BYTES)?;
            (
                Value {
                    kind,
                    text: t.to_vec(),
                },
                num_repr(t),
            )
        }
        OP_PREFIX => {
            let p = prev.ok_or_else(|| corrupt("prefix without a previous value"))?;
            let ptext = p.text();
            let plen = r.usize(ptext.len(), "prefix longer than the previous value")?;
            let suffix = r.bytes(MAX_VALUE_BYTES)?;
            let mut text = Vec::with_capacity(plen + suffix.len());
            text.extend_from_slice(ptext.get(..plen).unwrap_or(&[]));
            text.extend_from_slice(suffix);
            let num = num_repr(&text);
            (Value { kind, text }, num)
        }
        _ => return Err(corrupt("bad value op")),
    };
    if value.text.len() > MAX_VALUE_BYTES {
        return Err(corrupt("value too long"));
    }
    // The encoder always picks the numeric ops for numeric text; keep decoding canonical.
    st.remember(fid, value.kind, &value.text, num);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Lcg;

    #[test]
    fn shorter_counts_varint_bytes() {
        let len = |v: i64| varint::len_u64(varint::zigzag(v));
        let mut rng = Lcg(0x5407);
        let edges = [0, 1, -1, 63, -64, 64, -65, 8191, 8192, i64::MAX, i64::MIN];
        for _ in 0..200_000 {
            let pick = |rng: &mut Lcg| match rng.pick(3) {
                0 => edges[rng.pick(edges.len())],
                1 => rng.pick(20_000) as i64 - 10_000,
                _ => (rng.next() as i64) >> rng.pick(64),
            };
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            assert_eq!(shorter(a, b), len(a) < len(b), "{a} {b}");
        }
    }
}
