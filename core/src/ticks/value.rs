//! Values and ticks: the value kinds, [`Tick`] with its JSON parsing and printing, and the
//! checks every way in applies (names, fields, values), so that pushes and decoding hold
//! ticks to one set of rules.

use super::codec::Num;
use super::{DEFAULT_TIME_FIELD, MAX_DOC_BYTES, MAX_FIELDS, MAX_NAME_BYTES, MAX_VALUE_BYTES};
use crate::error::{CoreError, CoreResult};

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
    pub(super) fn validate(&self) -> CoreResult<()> {
        validate_value(self.kind, &self.text)
    }
}

/// Checks that `text` fits `kind` (untrusted input: decode, pushes).
pub(super) fn validate_value(kind: ValueKind, text: &[u8]) -> CoreResult<()> {
    check_value_len(text)?;
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

/// The length limit of a value, [`MAX_VALUE_BYTES`]: held by every way in, including values
/// whose grammar a parser already checked.
pub(super) fn check_value_len(text: &[u8]) -> CoreResult<()> {
    if text.len() > MAX_VALUE_BYTES {
        return Err(CoreError::invalid(format!(
            "value longer than {MAX_VALUE_BYTES} bytes"
        )));
    }
    Ok(())
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

    pub(super) fn validate(&self) -> CoreResult<()> {
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

pub(super) fn push_json_str(out: &mut String, b: &[u8]) {
    let s = String::from_utf8_lossy(b);
    match serde_json::to_string(&*s) {
        Ok(j) => out.push_str(&j),
        Err(_) => out.push_str("\"\""),
    }
}

pub(super) fn check_name(name: &[u8], what: &str) -> CoreResult<()> {
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
pub(super) fn validate_tick<T: TickSrc + ?Sized>(t: &T) -> CoreResult<()> {
    validate_tick_with(t, true)
}

/// [`validate_tick`]; `values: false` skips the grammar checks of the values, for values whose
/// text the caller's parser already held to their kind's grammar (their length is checked
/// either way).
pub(super) fn validate_tick_with<T: TickSrc + ?Sized>(t: &T, values: bool) -> CoreResult<()> {
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
        } else {
            check_value_len(text)?;
        }
    }
    Ok(())
}

/// The value checks of [`validate_tick_with`] alone, in the same order: for a tick whose names
/// are known to pass.
pub(super) fn validate_values<T: TickSrc + ?Sized>(t: &T) -> CoreResult<()> {
    for i in 0..t.n_fields() {
        let (kind, text) = t.value(i);
        validate_value(kind, text)?;
    }
    Ok(())
}

/// The length checks of the values alone: for a tick whose names are known to pass and whose
/// values' grammar was held by the parser.
pub(super) fn validate_value_lens<T: TickSrc + ?Sized>(t: &T) -> CoreResult<()> {
    for i in 0..t.n_fields() {
        check_value_len(t.value(i).1)?;
    }
    Ok(())
}

/// A JSON object's members in document order, each value as its raw JSON text.
pub(super) struct OrderedDoc(Vec<(String, Box<serde_json::value::RawValue>)>);

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
pub(super) fn canonical_i64(b: &[u8]) -> Option<i64> {
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
pub(super) fn is_json_number(b: &[u8]) -> bool {
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

/// A tick as the book's encoder reads it: time, time field and position, fields by index.
pub(super) trait TickSrc {
    fn time(&self) -> i64;
    fn time_field(&self) -> &[u8];
    fn time_pos(&self) -> usize;
    fn n_fields(&self) -> usize;
    /// Field `i` (`i < n_fields()`): name, kind, exact text. Out of range: empty.
    fn field(&self, i: usize) -> (&[u8], ValueKind, &[u8]);
    /// The name of field `i` (as `field`).
    fn name(&self, i: usize) -> &[u8] {
        self.field(i).0
    }
    /// The kind and text of field `i` (as `field`).
    fn value(&self, i: usize) -> (ValueKind, &[u8]) {
        let (_, kind, text) = self.field(i);
        (kind, text)
    }
    /// `f` on the kind, text and (when the source read it) [`Num`] of each field, in order
    /// (as `value` for every `i`).
    #[inline(always)]
    fn each_value(&self, mut f: impl FnMut(ValueKind, &[u8], Option<Num>)) {
        for i in 0..self.n_fields() {
            let (kind, text) = self.value(i);
            f(kind, text, None);
        }
    }
}

impl TickSrc for Tick {
    fn time(&self) -> i64 {
        self.time
    }
    fn time_field(&self) -> &[u8] {
        &self.time_field
    }
    fn time_pos(&self) -> usize {
        self.time_pos
    }
    fn n_fields(&self) -> usize {
        self.fields.len()
    }
    fn field(&self, i: usize) -> (&[u8], ValueKind, &[u8]) {
        match self.fields.get(i) {
            Some((n, v)) => (n, v.kind, &v.text),
            None => (&[], ValueKind::Str, &[]),
        }
    }
}
