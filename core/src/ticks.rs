//! Tick books: one per trading session, holding named, capped streams of ticks.
//!
//! A tick is an integer `time` plus field/value pairs. Values keep their exact text and their
//! kind (string, JSON number, boolean, null, nested JSON), so a document pushed as JSON comes
//! back as the same JSON (numbers with their exact text, fields in their original order, the
//! time field at its original position).
//!
//! # Storage layout (per stream)
//! * a field-name dictionary (names kept once; ticks refer to names by id) and a dictionary of
//!   *shapes* (the ordered list of field ids of a tick, plus the time field's name and position),
//!   so a tick of a known shape spends one byte on its field names;
//! * the ticks themselves, in arrival order, as records in chunks of [`CHUNK`] records, one
//!   byte buffer per chunk. Records are delta-coded against the previous record of the same
//!   chunk: time and sequence as zigzag varints of the difference; each value by a one-byte tag
//!   that says "same as this field's previous value", "integer / decimal delta", "text sharing
//!   a prefix with the previous value", or an absolute integer / decimal / text. Decimal text
//!   (`125.5`, `0.10`, `"58001.03000000"`) is stored as mantissa + scale and re-printed
//!   exactly. A chunk is the unit of random access: reading one tick decodes its chunk.
//! * the ordering index: arrival order is the storage order; a tick that arrives with a time
//!   older than the newest time seen so far in the stream is *late* and is also entered in a
//!   small ordered set keyed by (time, arrival). In-order ticks are already sorted by
//!   (time, arrival) in storage order, so every read is a merge of two sorted sequences and a
//!   push costs O(1) (O(log late) for a late tick). Each chunk remembers the running maximum
//!   time before it, which makes the in-order ticks binary-searchable by time.
//!
//! The cap drops the oldest ticks by arrival; a chunk's buffer is freed when all its records are
//! dead (a stream keeps at most `CHUNK - 1` dead records).
//!
//! # Canonical encoding
//! [`TickBook::encode`] writes the *logical* content: live ticks only, re-chunked from the
//! oldest, fresh dictionaries, sequences renumbered by global arrival rank. Two books that
//! answer every read identically encode to the same bytes, so the encoding doubles as the
//! digest input. [`TickBook::decode`] validates everything (never panics, never allocates from
//! an unchecked length) and rebuilds the book by replaying the ticks.

use crate::error::{CoreError, CoreResult};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

mod batch;
pub use batch::TickBatch;
use batch::TickSrc;

/// Records per chunk.
pub const CHUNK: usize = 32;
/// Largest cap (`MAXLEN`) of a stream.
pub const MAX_CAP: usize = 1_000_000;
/// Most fields in one tick (the time field not counted).
pub const MAX_FIELDS: usize = 1024;
/// Longest field name or stream name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most distinct field names one stream may ever see (names are never forgotten).
pub const MAX_NAMES_PER_STREAM: usize = 65_536;
/// Most shapes kept in a stream's dictionary; ticks of further shapes carry them inline.
pub const MAX_SHAPES_PER_STREAM: usize = 4096;
/// Largest JSON document accepted by [`Tick::from_json`].
pub const MAX_DOC_BYTES: usize = 4 * 1024 * 1024;
/// Name of the time field of ticks pushed in field/value form.
pub const DEFAULT_TIME_FIELD: &[u8] = b"time";

const ENCODING_MAGIC: &[u8; 4] = b"TKB\x01";

// ---------------------------------------------------------------------------------------------
// Values and ticks
// ---------------------------------------------------------------------------------------------

/// What a value was when it was pushed; decides how JSON output prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueKind {
    /// A string (any bytes; every value of the field/value push form).
    Str,
    /// A JSON number; `text` is its exact JSON text.
    Num,
    /// `true` / `false`.
    Bool,
    /// `null`.
    Null,
    /// A nested JSON object or array; `text` is its exact JSON text as pushed.
    Json,
}

/// One value: its kind and its exact text (for `Bool`/`Null`: `true`, `false`, `null`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Value {
    pub kind: ValueKind,
    pub text: Vec<u8>,
}

impl Value {
    pub fn str(b: impl Into<Vec<u8>>) -> Value {
        Value {
            kind: ValueKind::Str,
            text: b.into(),
        }
    }
    pub fn num(s: impl Into<Vec<u8>>) -> Value {
        Value {
            kind: ValueKind::Num,
            text: s.into(),
        }
    }
    pub fn bool(b: bool) -> Value {
        Value {
            kind: ValueKind::Bool,
            text: if b {
                b"true".to_vec()
            } else {
                b"false".to_vec()
            },
        }
    }
    pub fn null() -> Value {
        Value {
            kind: ValueKind::Null,
            text: b"null".to_vec(),
        }
    }
    pub fn json(s: impl Into<Vec<u8>>) -> Value {
        Value {
            kind: ValueKind::Json,
            text: s.into(),
        }
    }

    /// Checks that the text fits the kind (used on untrusted input: decode, pushes).
    fn validate(&self) -> CoreResult<()> {
        validate_value(self.kind, &self.text)
    }
}

/// Checks that `text` fits `kind` (untrusted input: decode, pushes).
fn validate_value(kind: ValueKind, text: &[u8]) -> CoreResult<()> {
    if text.len() > MAX_VALUE_BYTES {
        return Err(CoreError::invalid(format!(
            "value longer than {MAX_VALUE_BYTES} bytes"
        )));
    }
    let ok = match kind {
        ValueKind::Str => true,
        ValueKind::Num => is_json_number(text),
        ValueKind::Bool => text == b"true" || text == b"false",
        ValueKind::Null => text == b"null",
        ValueKind::Json => {
            matches!(text.first(), Some(b'{') | Some(b'['))
                && serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid("value text does not match its kind"))
    }
}

/// One tick. `seq` is assigned by the book on push (global arrival order within the book) and
/// ignored on input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tick {
    pub time: i64,
    pub seq: u64,
    /// Name of the time field (`time` for the field/value form, `TIMEFIELD` for documents).
    pub time_field: Vec<u8>,
    /// Position of the time field among the document's fields (0 for the field/value form).
    pub time_pos: usize,
    /// The other fields, in pushed order.
    pub fields: Vec<(Vec<u8>, Value)>,
}

impl Tick {
    /// A tick of the field/value push form: every value is a string.
    pub fn from_pairs(time: i64, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> CoreResult<Tick> {
        let fields = pairs.into_iter().map(|(f, v)| (f, Value::str(v))).collect();
        let t = Tick {
            time,
            seq: 0,
            time_field: DEFAULT_TIME_FIELD.to_vec(),
            time_pos: 0,
            fields,
        };
        t.validate()?;
        Ok(t)
    }

    /// A tick from a JSON object; `time_field` names its integer time field.
    pub fn from_json(doc: &[u8], time_field: &[u8]) -> CoreResult<Tick> {
        if doc.len() > MAX_DOC_BYTES {
            return Err(CoreError::invalid(format!(
                "JSON document larger than {MAX_DOC_BYTES} bytes"
            )));
        }
        let parsed: OrderedDoc = serde_json::from_slice(doc).map_err(|e| {
            if e.classify() == serde_json::error::Category::Data {
                CoreError::invalid(format!("JSON document must be an object ({e})"))
            } else {
                CoreError::invalid(format!("invalid JSON document: {e}"))
            }
        })?;
        let tf = String::from_utf8_lossy(time_field).into_owned();
        let mut time = None;
        let mut time_pos = 0;
        let mut fields = Vec::with_capacity(parsed.0.len());
        for (name, raw) in parsed.0 {
            let text = raw.get().trim();
            if name.as_bytes() == time_field {
                if time.is_some() {
                    return Err(CoreError::invalid(format!(
                        "duplicate field '{name}' in JSON document"
                    )));
                }
                let t = canonical_i64(text.as_bytes()).ok_or_else(|| {
                    CoreError::invalid(format!("time field '{tf}' must be an integer, got {text}"))
                })?;
                time = Some(t);
                time_pos = fields.len();
                continue;
            }
            let value = match text.as_bytes().first() {
                Some(b'"') => {
                    let s: String = serde_json::from_str(text)
                        .map_err(|e| CoreError::invalid(format!("invalid JSON string: {e}")))?;
                    Value::str(s.into_bytes())
                }
                Some(b'{') | Some(b'[') => Value::json(text.as_bytes()),
                Some(b't') => Value::bool(true),
                Some(b'f') => Value::bool(false),
                Some(b'n') => Value::null(),
                _ => Value::num(text.as_bytes()),
            };
            fields.push((name.into_bytes(), value));
        }
        let time = time.ok_or_else(|| {
            CoreError::invalid(format!("JSON document has no integer time field '{tf}'"))
        })?;
        let t = Tick {
            time,
            seq: 0,
            time_field: time_field.to_vec(),
            time_pos,
            fields,
        };
        t.validate()?;
        Ok(t)
    }

    fn validate(&self) -> CoreResult<()> {
        validate_tick(self)
    }

    /// The tick as one JSON object in its original document shape; `stream` adds a `"stream"`
    /// member first (`"_stream"` if the tick has a field named `stream` itself).
    /// Strings that are not UTF-8 are printed lossily.
    pub fn to_json(&self, stream: Option<&[u8]>) -> String {
        let mut out = String::with_capacity(64 + self.fields.len() * 16);
        self.write_json(&mut out, stream);
        out
    }

    pub fn write_json(&self, out: &mut String, stream: Option<&[u8]>) {
        out.push('{');
        let mut first = true;
        if let Some(s) = stream {
            let clash =
                self.time_field == b"stream" || self.fields.iter().any(|(n, _)| n == b"stream");
            out.push_str(if clash { "\"_stream\":" } else { "\"stream\":" });
            push_json_str(out, s);
            first = false;
        }
        for i in 0..=self.fields.len() {
            if i == self.time_pos {
                if !first {
                    out.push(',');
                }
                first = false;
                push_json_str(out, &self.time_field);
                out.push(':');
                out.push_str(&self.time.to_string());
            }
            if let Some((name, v)) = self.fields.get(i) {
                if !first {
                    out.push(',');
                }
                first = false;
                push_json_str(out, name);
                out.push(':');
                match v.kind {
                    ValueKind::Str => push_json_str(out, &v.text),
                    _ => out.push_str(&String::from_utf8_lossy(&v.text)),
                }
            }
        }
        out.push('}');
    }

    /// True when the tick has the field/value push form's shape (all values strings, time
    /// field `time` first): it can be re-pushed exactly in that form.
    pub fn is_pairs_form(&self) -> bool {
        self.time_field == DEFAULT_TIME_FIELD
            && self.time_pos == 0
            && self.fields.iter().all(|(_, v)| v.kind == ValueKind::Str)
    }
}

/// A JSON array of ticks as objects (see [`Tick::to_json`]).
pub fn ticks_to_json<'a>(ticks: impl IntoIterator<Item = (Option<&'a [u8]>, &'a Tick)>) -> String {
    let mut out = String::from("[");
    for (i, (s, t)) in ticks.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        t.write_json(&mut out, s);
    }
    out.push(']');
    out
}

fn push_json_str(out: &mut String, b: &[u8]) {
    let s = String::from_utf8_lossy(b);
    match serde_json::to_string(&*s) {
        Ok(j) => out.push_str(&j),
        Err(_) => out.push_str("\"\""),
    }
}

fn check_name(name: &[u8], what: &str) -> CoreResult<()> {
    if name.is_empty() {
        return Err(CoreError::invalid(format!("empty {what} name")));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(CoreError::invalid(format!(
            "{what} name longer than {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Checks a tick (fields, names, values) from any source; the messages are the push errors.
fn validate_tick<T: TickSrc + ?Sized>(t: &T) -> CoreResult<()> {
    validate_tick_with(t, true)
}

/// [`validate_tick`]; `values: false` skips the value checks, for values whose text the
/// caller's parser already held to their kind's grammar.
fn validate_tick_with<T: TickSrc + ?Sized>(t: &T, values: bool) -> CoreResult<()> {
    let n = t.n_fields();
    if n > MAX_FIELDS {
        return Err(CoreError::invalid(format!(
            "a tick has at most {MAX_FIELDS} fields"
        )));
    }
    if t.time_pos() > n {
        return Err(CoreError::invalid("time field position out of range"));
    }
    let time_field = t.time_field();
    check_name(time_field, "field")?;
    // Duplicates: pairwise for the usual handful of fields (no allocation), a set beyond.
    let mut seen: Option<std::collections::HashSet<&[u8]>> = None;
    for i in 0..n {
        let (name, kind, text) = t.field(i);
        check_name(name, "field")?;
        if name == time_field {
            return Err(CoreError::invalid(format!(
                "field name '{}' is reserved for the tick time",
                String::from_utf8_lossy(name)
            )));
        }
        let dup = if n <= 16 {
            (0..i).any(|j| t.field(j).0 == name)
        } else {
            !seen
                .get_or_insert_with(|| std::collections::HashSet::with_capacity(n))
                .insert(name)
        };
        if dup {
            return Err(CoreError::invalid(format!(
                "duplicate field '{}'",
                String::from_utf8_lossy(name)
            )));
        }
        if values {
            validate_value(kind, text)?;
        }
    }
    Ok(())
}

/// The value checks of [`validate_tick_with`] alone, in the same order: for a tick whose names
/// are known to pass.
fn validate_values<T: TickSrc + ?Sized>(t: &T) -> CoreResult<()> {
    for i in 0..t.n_fields() {
        let (kind, text) = t.value(i);
        validate_value(kind, text)?;
    }
    Ok(())
}

/// A JSON object's members in document order, each value as its raw JSON text.
struct OrderedDoc(Vec<(String, Box<serde_json::value::RawValue>)>);

impl<'de> serde::Deserialize<'de> for OrderedDoc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedDoc;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedDoc, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if v.len() > MAX_FIELDS {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_FIELDS} fields"
                        )));
                    }
                    let raw: Box<serde_json::value::RawValue> = map.next_value()?;
                    v.push((k, raw));
                }
                Ok(OrderedDoc(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Strict canonical i64 text: what `i64::to_string` prints (no sign but `-`, no leading zero,
/// no `-0`, in range). Allocation-free: it runs for every numeric value pushed.
fn canonical_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    match digits {
        [] => return None,
        [b'0'] => return if neg { None } else { Some(0) },
        [b'0', ..] => return None,
        _ if digits.len() > 19 => return None,
        _ => {}
    }
    // At most 19 digits: below 10^19 < 2^64, no overflow.
    let mut v: u64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.wrapping_mul(10).wrapping_add(u64::from(d));
    }
    if neg {
        if v <= 1u64 << 63 {
            Some((v as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// The JSON number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(b: &[u8]) -> bool {
    let mut i = 0;
    let at = |i: usize| b.get(i).copied();
    if at(i) == Some(b'-') {
        i += 1;
    }
    match at(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            while at(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
        }
        _ => return false,
    }
    if at(i) == Some(b'.') {
        i += 1;
        if !at(i).is_some_and(|c| c.is_ascii_digit()) {
            return false;
        }
        while at(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
    }
    if matches!(at(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(at(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        if !at(i).is_some_and(|c| c.is_ascii_digit()) {
            return false;
        }
        while at(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
    }
    i == b.len()
}

// ---------------------------------------------------------------------------------------------
// Low-level codec
// ---------------------------------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

fn corrupt(what: &str) -> CoreError {
    CoreError::corrupt(format!("corrupt tick book encoding: {what}"))
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }
    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }
    fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }
    fn u8(&mut self) -> CoreResult<u8> {
        let v = self
            .b
            .get(self.pos)
            .copied()
            .ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(v)
    }
    fn varint(&mut self) -> CoreResult<u64> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.u8()?;
            if shift == 63 && byte > 1 {
                return Err(corrupt("varint overflow"));
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }
    fn usize(&mut self, max: usize, what: &str) -> CoreResult<usize> {
        let v = self.varint()?;
        if v > max as u64 {
            return Err(corrupt(what));
        }
        Ok(v as usize)
    }
    fn take(&mut self, n: usize) -> CoreResult<&'a [u8]> {
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
    fn bytes(&mut self, max: usize) -> CoreResult<&'a [u8]> {
        let n = self.usize(max.min(self.remaining()), "length out of range")?;
        self.take(n)
    }
}

/// A number-like text as an integer or a decimal (mantissa, scale) that prints back exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Num {
    None,
    Int(i64),
    Dec(i64, u8),
}

const MAX_DEC_SCALE: u8 = 18;

/// One pass over the text (it runs for every string and number pushed): the same answers as
/// `canonical_i64`, then a plain decimal of at most [`MAX_DEC_SCALE`] fraction digits whose
/// digits read as an i64 mantissa (the tests keep the two-pass reference).
fn num_repr(t: &[u8]) -> Num {
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
        m = match m.checked_mul(10).and_then(|m| m.checked_add(u64::from(d))) {
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
        None => {
            // `canonical_i64`: no `-0`, in range.
            return match (neg, m) {
                (true, 0) => Num::None,
                (true, m) if m <= 1u64 << 63 => Num::Int((m as i64).wrapping_neg()),
                (false, m) => i64::try_from(m).map_or(Num::None, Num::Int),
                _ => Num::None,
            };
        }
        Some(b'.') => i += 1,
        Some(_) => return Num::None,
    }
    while let Some(&c) = rest.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Num::None;
        }
        m = match m.checked_mul(10).and_then(|m| m.checked_add(u64::from(d))) {
            Some(v) => v,
            None => return Num::None,
        };
        i += 1;
    }
    let scale = i - int_len - 1;
    // The mantissa only grows digit by digit, so a final value in range was in range all along.
    if scale == 0 || scale > MAX_DEC_SCALE as usize || m > i64::MAX as u64 {
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

fn format_dec(out: &mut Vec<u8>, m: i64, scale: u8) {
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
const OP_REPEAT: u8 = 0;
const OP_INT: u8 = 1;
const OP_INT_DELTA: u8 = 2;
const OP_DEC: u8 = 3;
const OP_DEC_DELTA: u8 = 4;
const OP_TEXT: u8 = 5;
const OP_PREFIX: u8 = 6;
const OP_NULL: u8 = 7;
const OP_FALSE: u8 = 8;
const OP_TRUE: u8 = 9;
const OP_JSON: u8 = 10;
const STR_BIT: u8 = 0x10;

/// Hasher for small integer keys (field ids): one multiply, no SipHash.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<IdHasher>>;

/// The previous value of one field within the current chunk.
#[derive(Clone, Debug)]
struct Prev {
    kind: ValueKind,
    text: Vec<u8>,
    num: Num,
}

/// Delta-coding state of one chunk (the encoder's for the open chunk; a decoder's).
#[derive(Debug, Default)]
struct CodecState {
    n: usize,
    prev_time: i64,
    prev_seq: u64,
    prev: IdMap<Prev>,
    /// Sum of the capacities of the `prev` texts, kept so that `mem` is O(1) (it runs twice
    /// per push).
    text_cap: usize,
}

impl Clone for CodecState {
    fn clone(&self) -> Self {
        // Cloned texts may have other capacities: sum them again.
        let prev = self.prev.clone();
        let text_cap = prev.values().map(|p| p.text.capacity()).sum();
        CodecState {
            n: self.n,
            prev_time: self.prev_time,
            prev_seq: self.prev_seq,
            prev,
            text_cap,
        }
    }
}

/// Sets `p` to the value `kind`/`text`/`num`, keeping `text_cap` in step.
fn set_prev(p: &mut Prev, text_cap: &mut usize, kind: ValueKind, text: &[u8], num: Num) {
    let before = p.text.capacity();
    p.kind = kind;
    p.num = num;
    p.text.clear();
    p.text.extend_from_slice(text);
    *text_cap = *text_cap + p.text.capacity() - before;
}

impl CodecState {
    fn reset(&mut self) {
        self.n = 0;
        self.prev_time = 0;
        self.prev_seq = 0;
        self.prev.clear();
        self.text_cap = 0;
    }
    fn remember(&mut self, fid: u32, kind: ValueKind, text: &[u8], num: Num) {
        let p = self.prev.entry(fid).or_insert_with(|| Prev {
            kind,
            text: Vec::new(),
            num,
        });
        set_prev(p, &mut self.text_cap, kind, text, num);
    }
    fn mem(&self) -> usize {
        self.prev.capacity() * (std::mem::size_of::<u32>() + std::mem::size_of::<Prev>() + 1)
            + self.text_cap
    }
}

/// Byte-slice equality for the short names and values of ticks without a `memcmp` call:
/// two overlapping word loads per side up to 16 bytes.
#[inline]
fn eq_short(a: &[u8], b: &[u8]) -> bool {
    fn word<const N: usize>(s: &[u8], at: usize) -> [u8; N] {
        s.get(at..at + N)
            .and_then(|w| w.try_into().ok())
            .unwrap_or([0; N])
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a.first() == b.first() && a.get(n / 2) == b.get(n / 2) && a.last() == b.last(),
        4..=8 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        9..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        _ => a == b,
    }
}

#[inline(always)]
fn encode_value(out: &mut Vec<u8>, st: &mut CodecState, fid: u32, kind: ValueKind, text: &[u8]) {
    // One lookup: the slot is read for the deltas and then overwritten.
    let slot = st.prev.get_mut(&fid);
    if let Some(p) = slot.as_deref() {
        if p.kind == kind && eq_short(&p.text, text) {
            out.push(OP_REPEAT);
            return;
        }
    }
    let prev = slot.as_deref();
    let num = match kind {
        ValueKind::Str | ValueKind::Num => num_repr(text),
        _ => Num::None,
    };
    let kbit = if kind == ValueKind::Str { STR_BIT } else { 0 };
    match kind {
        ValueKind::Null => out.push(OP_NULL),
        ValueKind::Bool => out.push(if text == b"true" { OP_TRUE } else { OP_FALSE }),
        ValueKind::Json => {
            out.push(OP_JSON);
            put_bytes(out, text);
        }
        ValueKind::Str | ValueKind::Num => match num {
            Num::Int(x) => {
                let delta = match prev.map(|p| p.num) {
                    Some(Num::Int(px)) => x
                        .checked_sub(px)
                        .filter(|d| varint_len(zigzag(*d)) < varint_len(zigzag(x))),
                    _ => None,
                };
                match delta {
                    Some(d) => {
                        out.push(OP_INT_DELTA | kbit);
                        put_varint(out, zigzag(d));
                    }
                    None => {
                        out.push(OP_INT | kbit);
                        put_varint(out, zigzag(x));
                    }
                }
            }
            Num::Dec(m, s) => {
                let delta = match prev.map(|p| p.num) {
                    Some(Num::Dec(pm, ps)) if ps == s => m
                        .checked_sub(pm)
                        .filter(|d| varint_len(zigzag(*d)) <= varint_len(zigzag(m))),
                    _ => None,
                };
                match delta {
                    Some(d) => {
                        out.push(OP_DEC_DELTA | kbit);
                        put_varint(out, zigzag(d));
                    }
                    None => {
                        out.push(OP_DEC | kbit);
                        out.push(s);
                        put_varint(out, zigzag(m));
                    }
                }
            }
            Num::None => {
                let plen = prev
                    .map(|p| {
                        p.text
                            .iter()
                            .zip(text.iter())
                            .take_while(|(a, b)| a == b)
                            .count()
                    })
                    .unwrap_or(0);
                let suffix = text.get(plen..).unwrap_or(&[]);
                let prefix_cost =
                    varint_len(plen as u64) + varint_len(suffix.len() as u64) + suffix.len();
                let text_cost = varint_len(text.len() as u64) + text.len();
                if plen > 0 && prefix_cost < text_cost {
                    out.push(OP_PREFIX | kbit);
                    put_varint(out, plen as u64);
                    put_bytes(out, suffix);
                } else {
                    out.push(OP_TEXT | kbit);
                    put_bytes(out, text);
                }
            }
        },
    }
    match slot {
        Some(p) => set_prev(p, &mut st.text_cap, kind, text, num),
        None => st.remember(fid, kind, text, num),
    }
}

fn decode_value(r: &mut Reader, st: &mut CodecState, fid: u32) -> CoreResult<Value> {
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
    let prev = st.prev.get(&fid);
    let (value, num) = match op {
        OP_REPEAT => {
            let p = prev.ok_or_else(|| corrupt("repeat without a previous value"))?;
            (
                Value {
                    kind: p.kind,
                    text: p.text.clone(),
                },
                p.num,
            )
        }
        OP_NULL => (Value::null(), Num::None),
        OP_FALSE => (Value::bool(false), Num::None),
        OP_TRUE => (Value::bool(true), Num::None),
        OP_JSON => (Value::json(r.bytes(MAX_VALUE_BYTES)?), Num::None),
        OP_INT | OP_INT_DELTA => {
            let z = unzigzag(r.varint()?);
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
                (unzigzag(r.varint()?), s)
            } else {
                let z = unzigzag(r.varint()?);
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
            let plen = r.usize(p.text.len(), "prefix longer than the previous value")?;
            let suffix = r.bytes(MAX_VALUE_BYTES)?;
            let mut text = Vec::with_capacity(plen + suffix.len());
            text.extend_from_slice(p.text.get(..plen).unwrap_or(&[]));
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

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Shape {
    time_name: u32,
    time_pos: u32,
    fields: Box<[u32]>,
}

impl Shape {
    fn mem(&self) -> usize {
        std::mem::size_of::<Shape>() + self.fields.len() * 4
    }
}

#[derive(Clone, Debug)]
struct Chunk {
    bytes: Vec<u8>,
    /// Running maximum time of the stream before this chunk's first record.
    key_lo: i64,
}

/// A decoded record.
#[derive(Clone, Debug)]
struct Raw {
    idx: u64,
    seq: u64,
    time: i64,
    late: bool,
    shape: ShapeRef,
    values: Vec<Value>,
}

/// A record's shape: an entry of the stream's dictionary, or carried inline.
#[derive(Clone, Debug)]
enum ShapeRef {
    Dict(u32),
    Inline(Box<Shape>),
}

#[derive(Clone, Debug)]
struct Stream {
    /// At most [`MAX_CAP`]; `u32` so that it shares a word with `last_shape`.
    cap: u32,
    names: Vec<Box<[u8]>>,
    name_ids: HashMap<Box<[u8]>, u32>,
    /// Bytes of the names: at most [`MAX_NAMES_PER_STREAM`] x [`MAX_NAME_BYTES`] (64 MiB), so
    /// `u32`, sharing a word with `shapes_bytes` (room for the encoder's `text_cap`).
    names_bytes: u32,
    shapes: Vec<Shape>,
    shape_ids: HashMap<Shape, u32>,
    /// Bytes of the dictionary's shapes: at most [`MAX_SHAPES_PER_STREAM`] shapes of at most
    /// [`MAX_FIELDS`] fields (17 MiB).
    shapes_bytes: u32,
    chunks: VecDeque<Chunk>,
    chunk_bytes: usize,
    /// Arrival index of the first record of `chunks[0]`.
    chunk_base: u64,
    /// Arrival index of the oldest live tick.
    head: u64,
    /// Arrival index the next tick gets.
    next_idx: u64,
    /// Newest time ever pushed (i64::MIN before the first push).
    max_time: i64,
    /// Late ticks: arrival index -> time, and (time, arrival index).
    late_by_idx: BTreeMap<u64, (i64, u64)>,
    late_sorted: BTreeSet<(i64, u64)>,
    /// (arrival index, seq) of the newest in-order tick (the one that set `max_time`).
    last_inorder: Option<(u64, u64)>,
    enc: CodecState,
    /// Dictionary id of the last appended tick's shape ([`NO_SHAPE`]: none): a tick of the
    /// same shape (the usual case) is matched by comparing its names, without hashing.
    last_shape: u32,
}

/// `Stream::last_shape` before any tick was appended.
const NO_SHAPE: u32 = u32::MAX;

/// Approximate bytes of one entry of the two late-tick B-trees.
const LATE_ENTRY_BYTES: usize = 48;

impl Stream {
    fn new(cap: usize) -> Stream {
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
        }
    }

    fn len(&self) -> usize {
        (self.next_idx - self.head) as usize
    }

    /// Heap bytes held by the stream (container capacities; O(1)).
    fn mem(&self) -> usize {
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
    }

    /// Number of names a push of `ticks` would add to the dictionary.
    fn new_names<'t, T: TickSrc>(&self, ticks: &'t [T]) -> usize {
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
    fn shape_matches<T: TickSrc + ?Sized>(&self, id: u32, t: &T) -> bool {
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

    fn name_id(&mut self, n: &[u8]) -> u32 {
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

    fn name(&self, id: u32) -> CoreResult<&[u8]> {
        self.names
            .get(id as usize)
            .map(|b| &b[..])
            .ok_or_else(|| corrupt("field id out of range"))
    }

    /// Appends one validated tick (the caller checked dictionary room).
    /// `matched`: the caller saw that `t` has the shape of the last tick.
    fn append<T: TickSrc + ?Sized>(&mut self, t: &T, seq: u64, matched: bool) {
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
            self.last_shape = id;
        }

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
        let shape = match (&inline, shape_code) {
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
            put_varint(out, seq);
            put_varint(out, zigzag(t.time()));
        } else {
            put_varint(out, seq.wrapping_sub(enc.prev_seq));
            put_varint(out, zigzag(t.time().wrapping_sub(enc.prev_time)));
        }
        match (shape_code, &inline) {
            (Some(id), None) => put_varint(out, u64::from(id) + 1),
            _ => {
                put_varint(out, 0);
                put_varint(out, u64::from(shape.time_name));
                put_varint(out, u64::from(shape.time_pos));
                put_varint(out, shape.fields.len() as u64);
                for &f in shape.fields.iter() {
                    put_varint(out, u64::from(f));
                }
            }
        }
        for (i, &fid) in shape.fields.iter().enumerate() {
            let (kind, text) = t.value(i);
            encode_value(out, enc, fid, kind, text);
        }
        enc.n += 1;
        enc.prev_seq = seq;
        enc.prev_time = t.time();
        *chunk_bytes = *chunk_bytes - before + chunk.bytes.capacity();

        let idx = self.next_idx;
        self.next_idx += 1;
        if t.time() < self.max_time {
            self.late_by_idx.insert(idx, (t.time(), seq));
            self.late_sorted.insert((t.time(), idx));
        } else {
            self.max_time = t.time();
            self.last_inorder = Some((idx, seq));
        }
    }

    /// Drops the oldest ticks until the stream holds at most `cap`.
    fn trim(&mut self) {
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
    fn key_hi(&self, k: usize) -> i64 {
        self.chunks
            .get(k + 1)
            .map(|c| c.key_lo)
            .unwrap_or(self.max_time)
    }

    fn decode_chunk(&self, k: usize) -> CoreResult<Vec<Raw>> {
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

    fn shape<'a>(&'a self, r: &'a ShapeRef) -> CoreResult<&'a Shape> {
        match r {
            ShapeRef::Dict(id) => self
                .shapes
                .get(*id as usize)
                .ok_or_else(|| corrupt("shape id out of range")),
            ShapeRef::Inline(s) => Ok(s),
        }
    }

    fn decode_record(
        &self,
        r: &mut Reader,
        st: &mut CodecState,
    ) -> CoreResult<(u64, i64, ShapeRef, Vec<Value>)> {
        let (seq, time) = if st.n == 0 {
            (r.varint()?, unzigzag(r.varint()?))
        } else {
            let ds = r.varint()?;
            if ds == 0 {
                return Err(corrupt("sequence not increasing"));
            }
            let seq = st
                .prev_seq
                .checked_add(ds)
                .ok_or_else(|| corrupt("sequence overflow"))?;
            (seq, st.prev_time.wrapping_add(unzigzag(r.varint()?)))
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

    fn materialize(&self, raw: Raw) -> CoreResult<Tick> {
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
    fn newest_key(&self) -> Option<(i64, u64)> {
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

    fn chunk_of(&self, idx: u64) -> Option<(usize, usize)> {
        let off = idx.checked_sub(self.chunk_base)?;
        Some(((off / CHUNK as u64) as usize, (off % CHUNK as u64) as usize))
    }
}

/// Cache of the last decoded chunk, for fetching late ticks.
struct ChunkCache {
    k: usize,
    raws: Vec<Raw>,
}

fn fetch_late(s: &Stream, cache: &mut Option<ChunkCache>, idx: u64) -> CoreResult<Raw> {
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
struct DescIter<'a> {
    s: &'a Stream,
    /// Next chunk to decode (exclusive upper index), counting down.
    next_chunk: usize,
    buf: Vec<Raw>,
    late: std::iter::Rev<std::collections::btree_set::Iter<'a, (i64, u64)>>,
    late_peek: Option<(i64, u64)>,
    cache: Option<ChunkCache>,
}

impl<'a> DescIter<'a> {
    fn new(s: &'a Stream) -> Self {
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
    fn fill(&mut self) -> CoreResult<()> {
        while self.buf.is_empty() && self.next_chunk > 0 {
            self.next_chunk -= 1;
            let head = self.s.head;
            let mut raws = self.s.decode_chunk(self.next_chunk)?;
            raws.retain(|r| !r.late && r.idx >= head);
            self.buf = raws;
        }
        Ok(())
    }

    fn next(&mut self) -> CoreResult<Option<Raw>> {
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
struct AscIter<'a> {
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
    fn new(s: &'a Stream, from: i64, to: i64) -> Self {
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

    fn fill(&mut self) -> CoreResult<()> {
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

    fn next(&mut self) -> CoreResult<Option<Raw>> {
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

// ---------------------------------------------------------------------------------------------
// The book
// ---------------------------------------------------------------------------------------------

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
fn check_push_args(stream: &[u8], maxlen: Option<usize>, default_cap: usize) -> CoreResult<()> {
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
fn check_room(known: usize, fresh: usize, next_seq: u64, n: usize) -> CoreResult<()> {
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
    streams: BTreeMap<Box<[u8]>, Stream>,
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
        self.push_validated(stream, maxlen, default_cap, ticks)
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
        batch.with_views(|views| self.push_validated(stream, maxlen, default_cap, views))
    }

    fn push_validated<T: TickSrc>(
        &mut self,
        stream: &[u8],
        maxlen: Option<usize>,
        default_cap: usize,
        ticks: &[T],
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
                    && ticks.iter().all(|t| s.shape_matches(s.last_shape, t));
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
        let before_mem = s.mem();
        let before_len = s.len();
        if let Some(m) = maxlen {
            s.cap = u32::try_from(m.min(MAX_CAP)).unwrap_or(MAX_CAP as u32);
        }
        for t in ticks {
            s.append(t, *next_seq, all_last_shape);
            *next_seq += 1;
            s.trim();
        }
        s.trim();
        let len = s.len();
        let cap = s.cap as usize;
        *mem = (*mem + s.mem()).saturating_sub(before_mem);
        *book_ticks = (*book_ticks + len).saturating_sub(before_len);
        Ok(PushOutcome { len, cap, created })
    }

    fn stream(&self, name: &[u8]) -> Option<&Stream> {
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

    fn matching<'a>(
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
        put_varint(&mut out, fresh.next_seq);
        put_varint(&mut out, fresh.streams.len() as u64);
        for (name, s) in &fresh.streams {
            put_bytes(&mut out, name);
            put_varint(&mut out, s.cap as u64);
            put_varint(&mut out, s.names.len() as u64);
            for n in &s.names {
                put_bytes(&mut out, n);
            }
            put_varint(&mut out, s.shapes.len() as u64);
            for sh in &s.shapes {
                put_varint(&mut out, u64::from(sh.time_name));
                put_varint(&mut out, u64::from(sh.time_pos));
                put_varint(&mut out, sh.fields.len() as u64);
                for &f in sh.fields.iter() {
                    put_varint(&mut out, u64::from(f));
                }
            }
            put_varint(&mut out, s.len() as u64);
            put_varint(&mut out, s.chunks.len() as u64);
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

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = r#"{"ft": 1752810305, "token": "26001", "lp": 125.5, "pc": 0.35, "rt": "12:05:05", "ts": 1752810305123, "data_type": "optiontick"}"#;

    fn compact(doc: &str) -> String {
        // Whitespace outside strings removed; the documents used here have none inside strings.
        doc.chars().filter(|c| !c.is_whitespace()).collect()
    }

    use crate::test_rng::Lcg;

    fn pairs(time: i64, kv: &[(&str, &str)]) -> Tick {
        Tick::from_pairs(
            time,
            kv.iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        )
        .unwrap()
    }

    fn val(t: &Tick, f: &str) -> String {
        t.fields
            .iter()
            .find(|(n, _)| n == f.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(&v.text).into_owned())
            .unwrap()
    }

    #[test]
    fn original_shape_round_trips_exactly() {
        let t = Tick::from_json(ORIGINAL.as_bytes(), b"ft").unwrap();
        assert_eq!(t.time, 1752810305);
        assert_eq!(t.time_pos, 0);
        let mut b = TickBook::new();
        assert_eq!(
            b.push(b"optiontick:26001", None, 1000, std::slice::from_ref(&t))
                .unwrap(),
            1
        );
        let got = b.latest(b"optiontick:26001", 10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to_json(None), compact(ORIGINAL));
        // time field in the middle keeps its position; numbers keep their exact text
        let doc = r#"{"a":"x","T":-5,"p":0.10,"q":1e5,"r":-0.0,"s":1752810305,"n":null,"b":true,"c":false,"o":{"x": [1, 2.50]},"e":[]}"#;
        let t = Tick::from_json(doc.as_bytes(), b"T").unwrap();
        assert_eq!(t.time_pos, 1);
        b.push(b"x", None, 10, &[t.clone(), t]).unwrap();
        for got in b.latest(b"x", 10).unwrap() {
            assert_eq!(got.to_json(None), doc);
            assert_eq!(
                got.to_json(Some(b"x")),
                format!("{{\"stream\":\"x\",{}", &doc[1..])
            );
        }
    }

    #[test]
    fn string_values_round_trip_exactly() {
        let texts: Vec<Vec<u8>> = [
            "125.5",
            "0.10",
            "-0.0",
            "007",
            "",
            "0",
            "-0",
            "1e5",
            "58001.03000000",
            "-0.5",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "0.000000000000000001",
            "12:05:05",
            "12:05:06",
            "1.",
            ".5",
            "+1",
            "1.50",
            "1.5",
            "1.55",
            "x\u{e9}",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([vec![0xff, 0x00, 0x80], vec![b'a'; 3000]])
        .collect();
        let mut b = TickBook::new();
        // the same field over and over exercises every delta op against each previous value
        for (i, t) in texts.iter().enumerate() {
            b.push(
                b"s",
                None,
                1000,
                &[Tick::from_pairs(i as i64, vec![(b"v".to_vec(), t.clone())]).unwrap()],
            )
            .unwrap();
        }
        let got = b.range(b"s", i64::MIN, i64::MAX, None).unwrap();
        assert_eq!(got.len(), texts.len());
        for (g, t) in got.iter().zip(&texts) {
            assert_eq!(&g.fields[0].1, &Value::str(t.clone()));
        }
        // number texts from JSON as numbers
        for n in [
            "125.5",
            "0.10",
            "-0.0",
            "0",
            "-0",
            "1e5",
            "1E-7",
            "123456789012345678901234567890",
            "0.35",
            "0.36",
        ] {
            let doc = format!("{{\"time\":1,\"n\":{n}}}");
            let t = Tick::from_json(doc.as_bytes(), b"time").unwrap();
            b.push(b"n", None, 1000, &[t]).unwrap();
            assert_eq!(b.latest(b"n", 1).unwrap()[0].to_json(None), doc);
        }
    }

    /// The two-pass `num_repr` the one-pass one replaced.
    fn num_repr_reference(t: &[u8]) -> Num {
        if t.is_empty() || t.len() > 40 {
            return Num::None;
        }
        if let Some(v) = canonical_i64(t) {
            return Num::Int(v);
        }
        let (neg, rest) = match t.split_first() {
            Some((b'-', r)) => (true, r),
            _ => (false, t),
        };
        let dot = match rest.iter().position(|&c| c == b'.') {
            Some(d) => d,
            None => return Num::None,
        };
        let (int, frac) = (
            rest.get(..dot).unwrap_or(&[]),
            rest.get(dot + 1..).unwrap_or(&[]),
        );
        if int.is_empty() || frac.is_empty() || frac.len() > MAX_DEC_SCALE as usize {
            return Num::None;
        }
        if !int.iter().chain(frac.iter()).all(u8::is_ascii_digit)
            || (int.len() > 1 && int.first() == Some(&b'0'))
        {
            return Num::None;
        }
        let mut m: i128 = 0;
        for &c in int.iter().chain(frac.iter()) {
            m = match m
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(c - b'0')))
            {
                Some(v) => v,
                None => return Num::None,
            };
            if m > i128::from(i64::MAX) {
                return Num::None;
            }
        }
        if neg {
            if m == 0 {
                return Num::None; // "-0.0" would print back as "0.0"
            }
            m = -m;
        }
        match i64::try_from(m) {
            Ok(m) => Num::Dec(m, frac.len() as u8),
            Err(_) => Num::None,
        }
    }

    #[test]
    fn num_repr_matches_the_reference() {
        let mut rng = Lcg(77);
        let mut cases: Vec<Vec<u8>> = [
            "",
            "0",
            "-0",
            "00",
            "01",
            "-01",
            "1",
            "-1",
            "+1",
            "0.0",
            "-0.0",
            "-0.00",
            "0.",
            ".0",
            "-.5",
            "1.",
            "1.2.3",
            "1e5",
            "1.5e3",
            "00.5",
            "0.5",
            "-0.5",
            "10.50",
            "58001.03",
            "58001.03000000",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "922337203685477580.7",
            "922337203685477580.8",
            "-922337203685477580.8",
            "-922337203685477580.9",
            "0.000000000000000001",
            "0.0000000000000000001",
            "1.000000000000000000",
            "12:05:05",
            "optiontick",
            "26001",
            "1617566591314",
            " 1",
            "1 ",
            "-",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        cases.push(vec![b'1'; 41]);
        cases.push(vec![b'1'; 40]);
        let mut forty = vec![b'0', b'.'];
        forty.extend(std::iter::repeat_n(b'1', 38));
        cases.push(forty);
        let alphabet = b"0123456789-.+e :x";
        for _ in 0..200_000 {
            let len = rng.pick(26);
            let digits = rng.pick(2) == 0;
            cases.push(
                (0..len)
                    .map(|_| {
                        if digits && rng.pick(4) != 0 {
                            b'0' + rng.pick(10) as u8
                        } else {
                            alphabet[rng.pick(alphabet.len())]
                        }
                    })
                    .collect(),
            );
        }
        for c in cases {
            assert_eq!(
                num_repr(&c),
                num_repr_reference(&c),
                "{:?}",
                String::from_utf8_lossy(&c)
            );
        }
    }

    #[test]
    fn decimal_repr_prints_back() {
        let mut r = Lcg(7);
        for _ in 0..20000 {
            let len = 1 + r.below(22) as usize;
            let s: String = (0..len)
                .map(|_| b"0123456789.-"[r.below(12) as usize] as char)
                .collect();
            match num_repr(s.as_bytes()) {
                Num::Int(v) => assert_eq!(v.to_string(), s),
                Num::Dec(m, sc) => {
                    let mut o = Vec::new();
                    format_dec(&mut o, m, sc);
                    assert_eq!(String::from_utf8(o).unwrap(), s);
                }
                Num::None => {}
            }
        }
    }

    #[test]
    fn json_errors() {
        let e = |doc: &str, tf: &str| {
            Tick::from_json(doc.as_bytes(), tf.as_bytes())
                .unwrap_err()
                .message()
                .to_string()
        };
        assert!(
            e("{", "time").contains("invalid JSON"),
            "{}",
            e("{", "time")
        );
        assert!(e("[1,2]", "time").contains("must be an object"));
        assert!(e("42", "time").contains("must be an object"));
        assert!(e(r#"{"a":1}"#, "time").contains("no integer time field 'time'"));
        assert!(e(r#"{"time":1.5}"#, "time").contains("must be an integer"));
        assert!(e(r#"{"time":"1"}"#, "time").contains("must be an integer"));
        assert!(e(r#"{"time":1.0}"#, "time").contains("must be an integer"));
        assert!(e(r#"{"time":99999999999999999999}"#, "time").contains("must be an integer"));
        assert!(e(r#"{"time":1,"a":1,"a":2}"#, "time").contains("duplicate field"));
        assert!(e(r#"{"time":1,"time":2}"#, "time").contains("duplicate field"));
        assert!(e(r#"{"time":1} x"#, "time").contains("invalid JSON"));
        assert!(Tick::from_json(br#"{"time":1,"":2}"#, b"time").is_err());
        let e = Tick::from_pairs(1, vec![(b"time".to_vec(), b"1".to_vec())]).unwrap_err();
        assert!(e.message().contains("reserved"));
        assert!(Tick::from_pairs(
            1,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"a".to_vec(), b"2".to_vec())
            ]
        )
        .is_err());
        assert!(
            Tick::from_pairs(1, vec![(vec![b'a'; MAX_NAME_BYTES + 1], b"1".to_vec())]).is_err()
        );
        assert!(Tick::from_pairs(1, vec![(b"a".to_vec(), vec![0; MAX_VALUE_BYTES + 1])]).is_err());
        assert!(Tick::from_pairs(
            1,
            (0..=MAX_FIELDS)
                .map(|i| (format!("f{i}").into_bytes(), vec![]))
                .collect()
        )
        .is_err());
    }

    #[test]
    fn push_errors_change_nothing() {
        let mut b = TickBook::new();
        let t = pairs(1, &[("a", "1")]);
        assert!(b
            .push(b"s", Some(0), 100, std::slice::from_ref(&t))
            .is_err());
        assert!(b
            .push(b"s", Some(MAX_CAP + 1), 100, std::slice::from_ref(&t))
            .is_err());
        assert!(b.push(b"s", None, 0, std::slice::from_ref(&t)).is_err());
        assert!(b.push(b"", None, 10, std::slice::from_ref(&t)).is_err());
        let mut bad = t.clone();
        bad.fields.push((b"a".to_vec(), Value::str("dup")));
        assert!(b.push(b"s", None, 10, &[t.clone(), bad]).is_err());
        assert_eq!(b.stream_count(), 0);
        assert_eq!(b.tick_count(), 0);
        b.push(b"s", None, 10, std::slice::from_ref(&t)).unwrap();
        let mut bad = t.clone();
        bad.fields[0].1 = Value::num("1x");
        assert!(b.push(b"s", None, 10, &[t.clone(), bad]).is_err());
        assert_eq!(b.tick_count(), 1);
        // dictionary limit is checked up front
        let many: Vec<Tick> = (0..MAX_NAMES_PER_STREAM / MAX_FIELDS + 1)
            .map(|i| {
                Tick::from_pairs(
                    1,
                    (0..MAX_FIELDS)
                        .map(|j| (format!("f{i}_{j}").into_bytes(), b"v".to_vec()))
                        .collect(),
                )
                .unwrap()
            })
            .collect();
        let e = b.push(b"s", None, 1000, &many).unwrap_err();
        assert!(e.message().contains("distinct field names"));
        assert_eq!(b.tick_count(), 1);
    }

    /// Reference model: every tick with (time, seq), newest-first / ascending by sorting.
    #[derive(Default)]
    struct Model {
        streams: BTreeMap<Vec<u8>, (usize, VecDeque<Tick>)>,
        seq: u64,
    }
    impl Model {
        fn push(&mut self, s: &[u8], maxlen: Option<usize>, cap: usize, t: &Tick) -> usize {
            let e = self
                .streams
                .entry(s.to_vec())
                .or_insert((maxlen.unwrap_or(cap), VecDeque::new()));
            if let Some(m) = maxlen {
                e.0 = m;
            }
            let mut t = t.clone();
            t.seq = self.seq;
            self.seq += 1;
            e.1.push_back(t);
            while e.1.len() > e.0 {
                e.1.pop_front();
            }
            e.1.len()
        }
        fn sorted(&self, s: &[u8]) -> Vec<Tick> {
            let mut v: Vec<Tick> = self
                .streams
                .get(s)
                .map(|e| e.1.iter().cloned().collect())
                .unwrap_or_default();
            v.sort_by_key(|t| (t.time, t.seq));
            v
        }
    }

    type Fields = Vec<(Vec<u8>, Value)>;

    fn strip(v: Vec<Tick>) -> Vec<(i64, Fields)> {
        v.into_iter().map(|t| (t.time, t.fields)).collect()
    }

    #[test]
    fn out_of_order_latest_and_range() {
        let mut b = TickBook::new();
        for (i, t) in [5, 3, 7, 3, 1, 9, 8, 9].iter().enumerate() {
            b.push(b"s", None, 100, &[pairs(*t, &[("i", &i.to_string())])])
                .unwrap();
        }
        let got: Vec<(i64, String)> = b
            .latest(b"s", 100)
            .unwrap()
            .iter()
            .map(|t| (t.time, val(t, "i")))
            .collect();
        let want: Vec<(i64, String)> = [
            (9, 7),
            (9, 5),
            (8, 6),
            (7, 2),
            (5, 0),
            (3, 3),
            (3, 1),
            (1, 4),
        ]
        .iter()
        .map(|(t, i)| (*t, i.to_string()))
        .collect();
        assert_eq!(got, want);
        let got: Vec<(i64, String)> = b
            .range(b"s", 3, 8, None)
            .unwrap()
            .iter()
            .map(|t| (t.time, val(t, "i")))
            .collect();
        let want: Vec<(i64, String)> = [(3, 1), (3, 3), (5, 0), (7, 2), (8, 6)]
            .iter()
            .map(|(t, i)| (*t, i.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(b.range(b"s", 3, 8, Some(2)).unwrap().len(), 2);
        assert!(b.range(b"s", 8, 3, None).unwrap().is_empty());
        assert!(b.latest(b"nope", 5).unwrap().is_empty());
        assert_eq!(b.latest(b"s", 0).unwrap().len(), 0);
        assert_eq!(b.streams(None).unwrap()[0].newest_time, Some(9));
    }

    #[test]
    fn randomized_against_model() {
        for (seed, cap, jitter) in [
            (1u64, 37usize, 5i64),
            (2, 5, 100),
            (3, 200, 0),
            (4, 1, 3),
            (5, 64, 1000),
        ] {
            let mut r = Lcg(seed);
            let mut b = TickBook::new();
            let mut m = Model::default();
            let names: Vec<Vec<u8>> = (0..4).map(|i| format!("st:{i}").into_bytes()).collect();
            let mut clock = 1_000_000i64;
            for step in 0..3000 {
                clock += r.below(3) as i64;
                let time = clock
                    - if jitter > 0 {
                        r.below(jitter as u64) as i64
                    } else {
                        0
                    };
                let s = &names[r.below(names.len() as u64) as usize];
                let maxlen = if r.below(50) == 0 {
                    Some(1 + r.below(cap as u64 * 2) as usize)
                } else {
                    None
                };
                let mut kv = vec![(
                    "lp".to_string(),
                    format!("{}.{}", 100 + r.below(5), r.below(100)),
                )];
                if r.below(3) == 0 {
                    kv.push(("rt".into(), format!("12:05:{:02}", r.below(60))));
                }
                if r.below(7) == 0 {
                    kv.push((format!("x{}", r.below(9)), r.below(1000).to_string()));
                }
                let t = Tick::from_pairs(
                    time,
                    kv.into_iter()
                        .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
                        .collect(),
                )
                .unwrap();
                let l1 = b.push(s, maxlen, cap, std::slice::from_ref(&t)).unwrap();
                let l2 = m.push(s, maxlen, cap, &t);
                assert_eq!(l1, l2);
                if step % 97 == 0 || step > 2950 {
                    let total: usize = m.streams.values().map(|e| e.1.len()).sum();
                    assert_eq!(b.tick_count(), total);
                    for n in &names {
                        let sorted = m.sorted(n);
                        let mut desc = sorted.clone();
                        desc.reverse();
                        let k = r.below(sorted.len() as u64 + 3) as usize;
                        assert_eq!(
                            strip(b.latest(n, k).unwrap()),
                            strip(desc.iter().take(k).cloned().collect())
                        );
                        let lo = clock - r.below(300) as i64;
                        let hi = lo + r.below(300) as i64;
                        let want: Vec<Tick> = sorted
                            .iter()
                            .filter(|t| t.time >= lo && t.time <= hi)
                            .cloned()
                            .collect();
                        assert_eq!(
                            strip(b.range(n, lo, hi, None).unwrap()),
                            strip(want.clone())
                        );
                        assert_eq!(
                            strip(b.range(n, lo, hi, Some(3)).unwrap()),
                            strip(want.into_iter().take(3).collect())
                        );
                    }
                    // merged = all ticks by (time, seq) descending
                    let mut all: Vec<(Vec<u8>, Tick)> = m
                        .streams
                        .iter()
                        .flat_map(|(n, e)| e.1.iter().map(move |t| (n.clone(), t.clone())))
                        .collect();
                    all.sort_by_key(|(_, t)| std::cmp::Reverse((t.time, t.seq)));
                    let k = r.below(all.len() as u64 + 2) as usize;
                    let got: Vec<(Vec<u8>, i64, Fields)> = b
                        .merged(None, k)
                        .unwrap()
                        .into_iter()
                        .map(|(n, t)| (n, t.time, t.fields))
                        .collect();
                    let want: Vec<(Vec<u8>, i64, Fields)> = all
                        .into_iter()
                        .take(k)
                        .map(|(n, t)| (n, t.time, t.fields))
                        .collect();
                    assert_eq!(got, want);
                    for st in b.streams(None).unwrap() {
                        let newest = m.sorted(&st.name).last().map(|t| t.time);
                        assert_eq!(st.newest_time, newest);
                        assert_eq!(st.len, m.streams[&st.name].1.len());
                    }
                    // canonical encoding round trip
                    let enc = b.encode().unwrap();
                    let d = TickBook::decode(&enc).unwrap();
                    assert_eq!(d.encode().unwrap(), enc);
                    assert_eq!(d.tick_count(), b.tick_count());
                    for n in &names {
                        assert_eq!(
                            strip(d.latest(n, usize::MAX).unwrap()),
                            strip(b.latest(n, usize::MAX).unwrap())
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn merged_many_streams_prefix_and_count() {
        let mut b = TickBook::new();
        for i in 0..60 {
            for j in 0..20 {
                let name = if i % 2 == 0 {
                    format!("optiontick:{i}")
                } else {
                    format!("indextick:{i}")
                };
                b.push(
                    name.as_bytes(),
                    None,
                    1000,
                    &[pairs(j * 100 + i, &[("i", &i.to_string())])],
                )
                .unwrap();
            }
        }
        let all = b.merged(None, 10_000).unwrap();
        assert_eq!(all.len(), 1200);
        assert!(all
            .windows(2)
            .all(|w| (w[0].1.time, w[0].1.seq) > (w[1].1.time, w[1].1.seq)));
        let top = b.merged(Some(b"optiontick:"), 7).unwrap();
        assert_eq!(top.len(), 7);
        assert!(top.iter().all(|(n, _)| n.starts_with(b"optiontick:")));
        assert_eq!(top[0].1.time, 19 * 100 + 58);
        assert_eq!(top[1].1.time, 19 * 100 + 56);
        assert!(b.merged(Some(b"zzz"), 10).unwrap().is_empty());
        assert!(b.merged(None, 0).unwrap().is_empty());
        let st = b.streams(Some(b"indextick:")).unwrap();
        assert_eq!(st.len(), 30);
        assert!(st.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(st[0].name, b"indextick:1");
        assert_eq!((st[0].len, st[0].newest_time), (20, Some(1901)));
        let info = b.info();
        assert_eq!(
            (info.streams, info.ticks, info.cap_min, info.cap_max),
            (60, 1200, 1000, 1000)
        );
    }

    #[test]
    fn same_content_same_encoding() {
        // a book that evicted history and one built from its live ticks encode identically
        let mut a = TickBook::new();
        let mut r = Lcg(9);
        for i in 0..500 {
            let s = if r.below(2) == 0 {
                b"a".as_slice()
            } else {
                b"b".as_slice()
            };
            a.push(
                s,
                None,
                50,
                &[pairs(
                    i + r.below(20) as i64,
                    &[("v", &r.below(10).to_string())],
                )],
            )
            .unwrap();
        }
        let mut b = TickBook::new();
        a.for_each_in_arrival(|n, cap, t| b.push(n, Some(cap), cap, &[t]).map(|_| ()))
            .unwrap();
        assert_eq!(a.encode().unwrap(), b.encode().unwrap());
        assert_eq!(
            TickBook::new().encode().unwrap(),
            TickBook::decode(&TickBook::new().encode().unwrap())
                .unwrap()
                .encode()
                .unwrap()
        );
    }

    #[test]
    fn inline_shapes_beyond_the_dictionary() {
        let mut b = TickBook::new();
        for i in 0..(MAX_SHAPES_PER_STREAM + 100) {
            // each tick has a distinct set of fields (i's binary digits)
            let kv: Vec<(Vec<u8>, Vec<u8>)> = (0..14)
                .filter(|bit| i >> bit & 1 == 1)
                .map(|bit| (format!("b{bit}").into_bytes(), i.to_string().into_bytes()))
                .collect();
            b.push(
                b"s",
                None,
                MAX_CAP,
                &[Tick::from_pairs(i as i64, kv).unwrap()],
            )
            .unwrap();
        }
        let last = b.latest(b"s", 1).unwrap();
        let i = MAX_SHAPES_PER_STREAM + 99;
        assert_eq!(
            last[0].fields.len(),
            (0..14).filter(|bit| i >> bit & 1 == 1).count()
        );
        let enc = b.encode().unwrap();
        assert_eq!(TickBook::decode(&enc).unwrap().encode().unwrap(), enc);
    }

    fn sample_book() -> TickBook {
        let mut b = TickBook::new();
        let mut r = Lcg(3);
        for i in 0..100 {
            let doc = format!(
                r#"{{"ft":{},"token":"26001","lp":{}.{},"n":null,"b":true,"o":{{"k":[1]}},"rt":"12:05:{:02}"}}"#,
                1000 + i - r.below(3) as i64,
                120 + r.below(10),
                r.below(10),
                i % 60
            );
            let s = format!("s{}", i % 3);
            b.push(
                s.as_bytes(),
                None,
                40,
                &[Tick::from_json(doc.as_bytes(), b"ft").unwrap()],
            )
            .unwrap();
        }
        b
    }

    #[test]
    fn corrupt_encodings_are_refused_without_panic() {
        let enc = sample_book().encode().unwrap();
        assert!(TickBook::decode(&enc).is_ok());
        for n in 0..enc.len() {
            assert!(
                matches!(TickBook::decode(&enc[..n]), Err(CoreError::Corrupt(_))),
                "prefix {n}"
            );
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert!(TickBook::decode(&longer).is_err());
        let mut r = Lcg(11);
        for _ in 0..20000 {
            let mut e = enc.clone();
            for _ in 0..1 + r.below(3) {
                let i = r.below(e.len() as u64) as usize;
                e[i] = r.below(256) as u8;
            }
            if let Ok(b) = TickBook::decode(&e) {
                // whatever decodes is internally consistent
                let again = b.encode().unwrap();
                assert_eq!(TickBook::decode(&again).unwrap().encode().unwrap(), again);
                b.merged(None, usize::MAX).unwrap();
            }
        }
        for _ in 0..5000 {
            let len = r.below(64) as usize;
            let mut e: Vec<u8> = ENCODING_MAGIC.to_vec();
            e.extend((0..len).map(|_| r.below(256) as u8));
            let _ = TickBook::decode(&e);
        }
        // hostile huge counts / lengths
        let mut e = ENCODING_MAGIC.to_vec();
        put_varint(&mut e, u64::MAX);
        put_varint(&mut e, u64::MAX);
        assert!(TickBook::decode(&e).is_err());
        let mut e = ENCODING_MAGIC.to_vec();
        put_varint(&mut e, 5);
        put_varint(&mut e, 1);
        put_bytes(&mut e, b"s");
        put_varint(&mut e, 10);
        put_varint(&mut e, 1 << 40);
        assert!(TickBook::decode(&e).is_err());
        assert!(TickBook::decode(b"").is_err());
        assert!(TickBook::decode(b"TKB\x02\x00\x00").is_err());
        let mut bad = vec![0xffu8; 11];
        bad.push(0);
        assert!(Reader::new(&bad).varint().is_err());
    }

    #[test]
    fn eq_short_is_slice_equality() {
        let mut rng = Lcg(3);
        for _ in 0..100_000 {
            let len = rng.pick(40);
            let a: Vec<u8> = (0..len).map(|_| b"ab\x00\xff"[rng.pick(4)]).collect();
            let mut b = a.clone();
            match rng.pick(3) {
                0 if len > 0 => {
                    let i = rng.pick(len);
                    b[i] = b"ab\x00\xff"[rng.pick(4)];
                }
                1 => b.truncate(rng.pick(len + 1)),
                _ => {}
            }
            assert_eq!(eq_short(&a, &b), a == b, "{a:?} {b:?}");
        }
    }

    /// The encoder's running `text_cap` is the sum it replaces, also in clones.
    #[test]
    fn codec_text_cap_is_the_sum_of_capacities() {
        let mut rng = Lcg(11);
        let mut b = TickBook::new();
        let check = |b: &TickBook| {
            for s in b.streams.values() {
                let sum: usize = s.enc.prev.values().map(|p| p.text.capacity()).sum();
                assert_eq!(s.enc.text_cap, sum);
            }
        };
        for i in 0..3000 {
            let v = "x".repeat(rng.pick(40));
            let t = pairs(i, &[("a", &v), ("b", &format!("{}", rng.pick(5)))]);
            let stream: &[u8] = if rng.pick(2) == 0 { b"s1" } else { b"s2" };
            b.push(stream, Some(100), 100, &[t]).unwrap();
            check(&b);
        }
        check(&b.clone());
    }

    #[test]
    fn memory_and_counters() {
        let mut b = TickBook::new();
        let m0 = b.mem_usage();
        for i in 0..5000 {
            b.push(b"s", None, 1000, &[pairs(i, &[("v", "x")])])
                .unwrap();
        }
        assert_eq!(b.tick_count(), 1000);
        assert!(b.mem_usage() > m0);
        b.push(b"s", Some(10), 1000, &[pairs(1, &[("v", "x")])])
            .unwrap();
        assert_eq!(b.tick_count(), 10);
        assert_eq!(b.info().late_ticks, 1);
        assert_eq!(b.latest(b"s", 100).unwrap().len(), 10);
        assert!(b.free_effort() >= 1);
    }

    /// Bytes per tick of the original design's tick shape, realistic variation.
    #[test]
    fn bytes_per_tick_original_shape() {
        let mut b = TickBook::new();
        let mut r = Lcg(5);
        let n = 10_000;
        let mut lp: i64 = 12550;
        let mut json_bytes = 0;
        for i in 0..n {
            let ft = 1752810305 + i / 4;
            lp += r.below(7) as i64 - 3;
            let doc = format!(
                r#"{{"ft": {ft}, "token": "26001", "lp": {}.{:02}, "pc": 0.{:02}, "rt": "{:02}:{:02}:{:02}", "ts": {}, "data_type": "optiontick"}}"#,
                lp / 100,
                lp % 100,
                30 + r.below(10),
                12 + (ft % 86400) / 3600 % 12,
                (ft % 3600) / 60,
                ft % 60,
                ft * 1000 + (i % 4) * 250 + r.below(50) as i64,
            );
            json_bytes += doc.len();
            b.push(
                b"optiontick:26001",
                None,
                n as usize,
                &[Tick::from_json(doc.as_bytes(), b"ft").unwrap()],
            )
            .unwrap();
        }
        let per_tick_mem = b.mem_usage() as f64 / n as f64;
        let per_tick_enc = b.encode().unwrap().len() as f64 / n as f64;
        let per_tick_json = json_bytes as f64 / n as f64;
        println!("original shape: json {per_tick_json:.1} B/tick, memory {per_tick_mem:.1} B/tick, encoding {per_tick_enc:.1} B/tick");
        assert!(
            per_tick_mem < per_tick_json / 4.0,
            "{per_tick_mem} vs {per_tick_json}"
        );
        assert!(ORIGINAL.len() == 128 || ORIGINAL.len() > 100);
    }
}
