//! The flat JSON scanner of `TICKS.PUSH ... JSON`: a cursor over one document that reads
//! the values of a flat object (strings, numbers with their mantissa and scale, literals) and
//! gives up (`None`) on anything else, which the serde path then handles.

use super::codec::{num_of, Num};
use super::value::ValueKind;
use crate::decimal::swar;

/// A cursor over a JSON document for the flat fast path. Every method returns `None` for
/// anything it does not handle.
pub(super) struct Parser<'a> {
    pub(super) b: &'a [u8],
    pub(super) i: usize,
}

/// Bytes of a JSON string body by what the fast path does with them.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
/// Escapes and control characters: the serde path's.
const OTHER: u8 = 2;
/// Not ASCII: the body must be valid UTF-8.
const HIGH: u8 = 3;

static STRING_CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = if c == b'"' as usize {
            QUOTE
        } else if c == b'\\' as usize || c < 0x20 {
            OTHER
        } else if c >= 0x80 {
            HIGH
        } else {
            PLAIN
        };
        c += 1;
    }
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// A word with the high bit set in its lowest byte that is `"`, `\`, a control character or
/// not ASCII (zero if none). Bytes above the lowest may be flagged falsely (borrows), which
/// only the lowest set bit is read for.
#[inline]
pub(super) fn string_stops(w: u64) -> u64 {
    let q = w ^ (LO * u64::from(b'"'));
    let bs = w ^ (LO * u64::from(b'\\'));
    let zero = |x: u64| x.wrapping_sub(LO) & !x;
    (zero(q) | zero(bs) | (w.wrapping_sub(LO * 0x20) & !w) | w) & HI
}

impl Parser<'_> {
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// JSON whitespace: space, tab, newline, carriage return.
    #[inline]
    pub(super) fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// A value of a flat document: its kind, text (a string's body) and, for a number, its
    /// [`Num`] when the scan could tell it.
    #[inline(always)]
    pub(super) fn value(&mut self) -> Option<(ValueKind, (usize, usize), Option<Num>)> {
        Some(match self.peek()? {
            b'"' => {
                self.i += 1;
                (ValueKind::Str, self.plain_string()?, None)
            }
            b'-' | b'0'..=b'9' => {
                let (span, num) = self.number()?;
                (ValueKind::Num, span, num)
            }
            b't' => (ValueKind::Bool, self.word(b"true")?, None),
            b'f' => (ValueKind::Bool, self.word(b"false")?, None),
            b'n' => (ValueKind::Null, self.word(b"null")?, None),
            _ => return None, // nested values, garbage: serde
        })
    }

    /// The body of a string after its opening quote, up to the closing quote (consumed):
    /// only strings without escapes or control characters, valid UTF-8.
    #[inline]
    pub(super) fn plain_string(&mut self) -> Option<(usize, usize)> {
        let start = self.i;
        let mut i = start;
        let mut high = false;
        loop {
            // Eight bytes at a time up to the first byte that is not plain ASCII (the zero
            // padding past the end is a control character: a stop, then the end).
            let stops = string_stops(swar::load8(self.b, i));
            if stops == 0 {
                i += 8;
                continue;
            }
            i += (stops.trailing_zeros() / 8) as usize;
            match STRING_CLASS.get(usize::from(*self.b.get(i)?)).copied() {
                Some(PLAIN) => {}
                Some(QUOTE) => break,
                Some(HIGH) => high = true,
                _ => return None,
            }
            i += 1;
        }
        if high && std::str::from_utf8(self.b.get(start..i)?).is_err() {
            return None;
        }
        self.i = i + 1;
        Some((start, i))
    }

    /// A number by the JSON grammar `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, and
    /// its [`Num`] (what `num_repr` answers for its text), read from the same digits; `None`
    /// past 19 digits, where the mantissa may overflow (the encoder then runs `num_repr`).
    #[inline(always)]
    pub(super) fn number(&mut self) -> Option<((usize, usize), Option<Num>)> {
        let start = self.i;
        let neg = self.peek() == Some(b'-');
        if neg {
            self.i += 1;
        }
        let int_at = self.i;
        let mut m = 0;
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => m = self.digits(0),
            _ => return None,
        }
        let mut n_digits = self.i - int_at;
        let mut scale = 0;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            let frac_at = self.i;
            m = self.digits(m);
            scale = self.i - frac_at;
            n_digits += scale;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits(0);
            // An exponent is not a number-like text for the codec.
            return Some(((start, self.i), Some(Num::None)));
        }
        let num = (n_digits <= 19).then(|| num_of(neg, m, scale));
        Some(((start, self.i), num))
    }

    /// Past a run of ASCII digits, eight bytes at a time (the zero padding past the end is
    /// not a digit): `m` followed by those digits (wrapping: exact up to 19 digits in all).
    #[inline(always)]
    pub(super) fn digits(&mut self, mut m: u64) -> u64 {
        loop {
            let t = swar::load8(self.b, self.i) ^ swar::ZEROS;
            let k = swar::digit_run_t(t);
            let scale = swar::POW10_U64.get(k).copied().unwrap_or(0);
            m = m.wrapping_mul(scale).wrapping_add(swar::value(t, k));
            self.i += k;
            if k < 8 {
                return m;
            }
        }
    }

    pub(super) fn word(&mut self, w: &[u8]) -> Option<(usize, usize)> {
        let start = self.i;
        if self.b.get(start..start + w.len())? == w {
            self.i = start + w.len();
            Some((start, self.i))
        } else {
            None
        }
    }
}
