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
//!
//! # Files
//! This file holds the limits and the small helpers every part shares; `value` the values,
//! ticks and their JSON; `codec` the record codec (value tags, delta state); `stream` one
//! stream with its late-tick index; `book` the [`TickBook`] and its canonical encoding;
//! `batch` the allocation-free input side of pushes (and the JSON lane of a template's
//! layout); `json` the flat JSON scanner both read documents with.

mod batch;
mod book;
mod codec;
mod json;
mod stream;
#[cfg(test)]
mod tests;
mod value;

pub use batch::TickBatch;
pub use book::{BookInfo, PushOutcome, StreamSummary, TickBook};
pub use value::{ticks_to_json, Tick, Value, ValueKind};

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

use crate::bytes::eq_short;
