//! The byte-cursor path: kline payloads read straight from their bytes, no JSON tree.
//! Kept apart from the `serde_json::Value` path (`value.rs`): it is the hot path, and it
//! answers only where it gives exactly the Value path's result (else `None`: fall back).
//!
//! A one-pass reader for the exact shape of a REST klines body: a non-empty array of rows,
//! each an array of 6 to 12 fields, integers where the row has integers (open time, close
//! time, trades) and plain strings (no escapes) for the decimals. No tree, no allocation
//! besides the result. Anything else — another shape, a JSON number as a decimal, an
//! escape, a value the Value path would refuse — gives `None`, and the caller parses the
//! payload the general way, so results and errors are the Value path's.

use super::{Incoming, Kline};
use crate::candle::{parse_i64, Candle};
use crate::decimal::{swar, Dec};

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.at) {
            self.at += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.at).copied()
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.at += 1;
            Some(())
        } else {
            None
        }
    }
    /// An integer literal as JSON writes it (`-?(0|[1-9][0-9]*)`, no fraction or exponent).
    fn int_text(&mut self) -> Option<&'a [u8]> {
        self.ws();
        let start = self.at;
        if self.b.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let digits = self.at;
        while self.b.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let n = self.at - digits;
        if n == 0 || (n > 1 && self.b.get(digits) == Some(&b'0')) {
            return None;
        }
        // A fraction or exponent makes it another kind of number.
        if let Some(b'.' | b'e' | b'E') = self.b.get(self.at) {
            return None;
        }
        self.b.get(start..self.at)
    }
    /// A string of printable ASCII without escapes; its contents.
    fn plain_str(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        self.str_body()
    }
    /// `plain_str` after the opening quote.
    fn str_body(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        loop {
            match *self.b.get(self.at)? {
                b'"' => break,
                0x20..=0x7e if self.b.get(self.at) != Some(&b'\\') => self.at += 1,
                _ => return None,
            }
        }
        let s = self.b.get(start..self.at)?;
        self.at += 1;
        Some(s)
    }
    /// A non-negative integer of 1..=16 digits without leading zero, read 8 digits at a
    /// time; `None` when the text is anything else (then `int_text` decides).
    fn small_uint(&mut self) -> Option<u64> {
        self.ws();
        let rest = self.b.get(self.at..)?;
        let (mut v, k) = swar::digits(rest, 0);
        if k == 0 || (k > 1 && rest.first() == Some(&b'0')) {
            return None;
        }
        let mut n = k;
        if k == 8 {
            let (more, k2) = swar::digits(rest, 8);
            if k2 == 8 {
                return None;
            }
            v = v * swar::POW10_U64.get(k2).copied()? + more;
            n += k2;
        }
        // As `int_text`: no fraction or exponent may follow.
        if let Some(b'.' | b'e' | b'E') = rest.get(n) {
            return None;
        }
        self.at += n;
        Some(v)
    }
    fn i64_field(&mut self) -> Option<i64> {
        if let Some(v) = self.small_uint() {
            return i64::try_from(v).ok();
        }
        parse_i64(self.int_text()?)
    }
    fn u64_field(&mut self) -> Option<u64> {
        if let Some(v) = self.small_uint() {
            return Some(v);
        }
        let t = self.int_text()?;
        if t.first() == Some(&b'-') {
            return None;
        }
        std::str::from_utf8(t).ok()?.parse().ok()
    }
    fn dec_field(&mut self) -> Option<Dec> {
        self.eat(b'"')?;
        if let Some((d, len)) = self.b.get(self.at..).and_then(Dec::parse_quoted) {
            // The contents are digits, '-' and '.': what `str_body` would have taken.
            self.at += len + 1;
            return Some(d);
        }
        Dec::parse_bytes(self.str_body()?).ok()
    }
}

/// A row as Binance writes it, read with fixed separators: no whitespace, all 12 fields,
/// `"0"` as the ignored one: `[t,"o","h","l","c","v",T,"q",n,"V","Q","0"]`. `None`
/// when the row is not exactly that (then [`row`] reads it from the same place); where
/// it answers, the candle is [`row`]'s. On success `at` is just past the row.
fn compact_row(b: &[u8], at: &mut usize, c: &mut Candle) -> Option<()> {
    compact_row_with::<true>(b, at, c)
}

/// [`compact_row`] with each field read inline (`INLINE`, for bodies of many rows:
/// fastest in a loop) or through out-of-line readers shared by the fields (for a single
/// row read per command, where the code's size costs more than the calls: it shares the
/// instruction cache with the rest of the server's command path).
#[inline(always)]
fn compact_row_with<const INLINE: bool>(b: &[u8], at: &mut usize, c: &mut Candle) -> Option<()> {
    type Read<T> = fn(&[u8], &mut usize) -> Option<T>;
    type ReadInto<T> = fn(&[u8], &mut usize, &mut T) -> Option<()>;
    let (compact_dec, compact_uint, compact_sep_uint): (ReadInto<Dec>, Read<u64>, Read<u64>) =
        if INLINE {
            (compact_dec, compact_uint, compact_sep_uint)
        } else {
            (
                compact_dec_outlined,
                compact_uint_outlined,
                compact_sep_uint_outlined,
            )
        };
    // Each field is stored as soon as it is read (few values live at once, little
    // spilling); on `None` the caller discards `c`.
    let mut p = *at;
    if b.get(p) != Some(&b'[') {
        return None;
    }
    p += 1;
    c.open_time = i64::try_from(compact_uint(b, &mut p)?).ok()?;
    compact_dec(b, &mut p, &mut c.open)?;
    compact_dec(b, &mut p, &mut c.high)?;
    compact_dec(b, &mut p, &mut c.low)?;
    compact_dec(b, &mut p, &mut c.close)?;
    compact_dec(b, &mut p, &mut c.volume)?;
    c.close_time = Some(i64::try_from(compact_sep_uint(b, &mut p)?).ok()?);
    compact_dec(b, &mut p, c.quote_volume.insert(Dec::ZERO))?;
    c.trades = Some(compact_sep_uint(b, &mut p)?);
    compact_dec(b, &mut p, c.taker_buy_base.insert(Dec::ZERO))?;
    compact_dec(b, &mut p, c.taker_buy_quote.insert(Dec::ZERO))?;
    if b.get(p..p + 5) != Some(b",\"0\"]") {
        return None;
    }
    *at = p + 5;
    Some(())
}

/// `,"<decimal>"` at `p` into `dst` (written in place: see [`Dec::parse_fixed8_into`]).
#[inline(always)]
fn compact_dec(b: &[u8], p: &mut usize, dst: &mut Dec) -> Option<()> {
    if fixed8_dec(b, p, dst).is_none() {
        *dst = compact_dec_other(b, p)?;
    }
    Some(())
}

/// `,"<decimal>"` at `p` in Binance's own shape (8 fractional digits), where the text
/// is long enough for the fixed-size reader: the decimal into `dst`, `p` past it.
#[inline(always)]
fn fixed8_dec(b: &[u8], p: &mut usize, dst: &mut Dec) -> Option<()> {
    let (sep, text) = b.get(*p..)?.first_chunk::<20>()?.split_first_chunk::<2>()?;
    if sep != b",\"" {
        return None;
    }
    let mut n = *p + 3;
    Dec::parse_fixed8_into(text.first_chunk::<18>()?, dst, &mut n)?;
    *p = n;
    Some(())
}

/// The out-of-line readers of [`compact_row_with`]`::<false>`.
#[inline(never)]
fn compact_dec_outlined(b: &[u8], p: &mut usize, dst: &mut Dec) -> Option<()> {
    compact_dec(b, p, dst)
}

#[inline(never)]
fn compact_uint_outlined(b: &[u8], p: &mut usize) -> Option<u64> {
    compact_uint(b, p)
}

#[inline(never)]
fn compact_sep_uint_outlined(b: &[u8], p: &mut usize) -> Option<u64> {
    if b.get(*p) != Some(&b',') {
        return None;
    }
    *p += 1;
    compact_uint_outlined(b, p)
}

/// `compact_dec` for what its fixed-size reader leaves, out of line so the common path
/// stays small.
#[cold]
#[inline(never)]
fn compact_dec_other(b: &[u8], p: &mut usize) -> Option<Dec> {
    let rest = b.get(*p..)?;
    if rest.get(..2) != Some(b",\"") {
        return None;
    }
    let (d, n) = Dec::parse_quoted(rest.get(2..)?)?;
    *p += n + 3;
    Some(d)
}

/// `,<integer>` at `p`.
#[inline(always)]
fn compact_sep_uint(b: &[u8], p: &mut usize) -> Option<u64> {
    if b.get(*p) != Some(&b',') {
        return None;
    }
    *p += 1;
    compact_uint(b, p)
}

/// A non-negative integer of 1..=15 digits without leading zero at `p`, as
/// `Cursor::small_uint` reads it (what follows is checked by the caller: a separator,
/// so never a fraction or an exponent).
#[inline(always)]
fn compact_uint(b: &[u8], p: &mut usize) -> Option<u64> {
    let rest = b.get(*p..)?;
    let w = swar::load8(rest, 0) ^ swar::ZEROS;
    let k = swar::digit_run_t(w);
    // A leading zero: the first digit's value is 0.
    if k == 0 || (k > 1 && w & 0xff == 0) {
        return None;
    }
    let (v, n) = if k < 8 {
        (swar::value(w, k), k)
    } else {
        let w2 = swar::load8(rest, 8) ^ swar::ZEROS;
        let k2 = swar::digit_run_t(w2);
        if k2 == 8 {
            return None;
        }
        let v = swar::value(w, 8) * swar::POW10_U64.get(k2).copied()? + swar::value(w2, k2);
        (v, 8 + k2)
    };
    *p += n;
    Some(v)
}

/// One row: `[t, "o", "h", "l", "c", "v"(, T, "q", n, "V", "Q", ignore)]`. Out of line:
/// in a REST body it reads only what the compact reader leaves.
#[cold]
#[inline(never)]
fn row(c: &mut Cursor<'_>) -> Option<Kline> {
    c.eat(b'[')?;
    let open_time = c.i64_field()?;
    let mut dec = || {
        c.eat(b',')?;
        c.dec_field()
    };
    let (open, high, low, close, volume) = (dec()?, dec()?, dec()?, dec()?, dec()?);
    let mut candle = Candle::ohlcv(open_time, open, high, low, close, volume);
    // Optional fields in order, until the row closes.
    for i in 6..12 {
        if c.peek()? == b']' {
            break;
        }
        c.eat(b',')?;
        match i {
            6 => candle.close_time = Some(c.i64_field()?),
            7 => candle.quote_volume = Some(c.dec_field()?),
            8 => candle.trades = Some(c.u64_field()?),
            9 => candle.taker_buy_base = Some(c.dec_field()?),
            10 => candle.taker_buy_quote = Some(c.dec_field()?),
            // "ignore": any string or integer (the Value path does not read it).
            _ => {
                if c.peek()? == b'"' {
                    c.plain_str()?;
                } else {
                    c.int_text()?;
                }
            }
        }
    }
    c.eat(b']')?;
    Some(Kline {
        candle,
        closed: None,
        interval: None,
        symbol: None,
    })
}

/// The compact reader and the general one on the row at the start of `b`: each one's
/// candle and end.
#[cfg(test)]
pub(super) fn both_rows(b: &[u8]) -> [Option<(Candle, usize)>; 2] {
    let mut at = 0;
    let mut c = Candle::ohlcv(0, Dec::ZERO, Dec::ZERO, Dec::ZERO, Dec::ZERO, Dec::ZERO);
    let compact = compact_row(b, &mut at, &mut c).map(|()| (c, at));
    let mut cur = Cursor { b, at: 0 };
    let general = row(&mut cur).map(|k| (k.candle, cur.at));
    [compact, general]
}

/// What a REST body is read into: a [`Kline`], or the [`Incoming`] a write takes (a
/// REST row says nothing else).
pub(super) trait RestRow: From<Kline> + Clone {
    fn candle_mut(&mut self) -> &mut Candle;
}

impl RestRow for Kline {
    fn candle_mut(&mut self) -> &mut Candle {
        &mut self.candle
    }
}

impl RestRow for Incoming {
    fn candle_mut(&mut self) -> &mut Candle {
        &mut self.candle
    }
}

/// The klines of a REST body, or `None` when it is not exactly that shape.
pub(super) fn rest_klines<T: RestRow>(payload: &[u8]) -> Option<Vec<T>> {
    let mut c = Cursor { b: payload, at: 0 };
    c.eat(b'[')?;
    if c.peek()? != b'[' {
        return None;
    }
    // A REST row is about 170 bytes of text.
    let mut out = Vec::with_capacity(payload.len() / 160 + 1);
    let blank = T::from(Kline {
        candle: Candle::ohlcv(0, Dec::ZERO, Dec::ZERO, Dec::ZERO, Dec::ZERO, Dec::ZERO),
        closed: None,
        interval: None,
        symbol: None,
    });
    loop {
        // Read in place: the compact reader fills a pushed blank (no copy of the kline).
        out.push(blank.clone());
        let slot = out.last_mut()?;
        if compact_row(payload, &mut c.at, slot.candle_mut()).is_none() {
            *slot = T::from(row(&mut c)?);
        }
        match c.peek()? {
            b',' => c.at += 1,
            b']' => break,
            _ => return None,
        }
    }
    c.at += 1;
    c.ws();
    (c.at == payload.len()).then_some(out)
}

/// One REST row on its own (`[t,"o",…]`, what a client stores with `SET`), or `None`
/// when it is not exactly that shape.
pub(super) fn rest_row(payload: &[u8]) -> Option<Kline> {
    let mut c = Cursor { b: payload, at: 0 };
    c.ws();
    let mut k = Kline {
        candle: Candle::ohlcv(0, Dec::ZERO, Dec::ZERO, Dec::ZERO, Dec::ZERO, Dec::ZERO),
        closed: None,
        interval: None,
        symbol: None,
    };
    if compact_row_with::<false>(payload, &mut c.at, &mut k.candle).is_none() {
        k = row(&mut c)?;
    }
    c.ws();
    (c.at == payload.len()).then_some(k)
}

/// A WebSocket kline as Binance sends it, for the feeder's hot path (`LIVE_UPDATE` and
/// `OFFICIAL_ADD ... JSON <frame>` per kline event): the combined-stream frame
/// `{"stream":…,"data":{…}}`, the event `{"e":"kline",…,"k":{…}}` or its `k` object, read
/// the way `klines_of` reads the Value. Members other than those it reads may be plain
/// strings, integers, `true`, `false` or `null`. `None` for anything else, and wherever
/// the Value path could answer differently or refuse (escapes, a repeated member name, a
/// decimal given as a JSON number, a bad field): the caller then takes that path.
pub(super) fn ws_kline(payload: &[u8]) -> Option<Kline> {
    let mut c = Cursor { b: payload, at: 0 };
    let k = event(&mut c, 0)?;
    c.ws();
    (c.at == payload.len()).then_some(k)
}

/// The kline fields of one object, as read so far.
#[derive(Default)]
struct Fields<'a> {
    t: Option<i64>,
    ohlcv: [Option<Dec>; 5],
    close_time: Option<i64>,
    q: Option<Dec>,
    n: Option<u64>,
    v_base: Option<Dec>,
    q_quote: Option<Dec>,
    x: Option<bool>,
    i: Option<&'a [u8]>,
    s: Option<&'a [u8]>,
    e: Option<&'a [u8]>,
    /// `k` (an object, read as kline fields) or `data` (read as an event).
    k: Option<Kline>,
    data: Option<Kline>,
}

/// An object at `c` read as `klines_of` reads a `Value::Object`: `data` if present, else
/// `k` (with `e`, if a string, naming a kline), else its own fields.
fn event(c: &mut Cursor<'_>, depth: u8) -> Option<Kline> {
    let f = object(c, depth)?;
    if f.data.is_some() {
        return f.data;
    }
    if f.k.is_some() {
        if f.e.is_some_and(|e| e != b"kline") {
            return None;
        }
        return f.k;
    }
    kline_of_fields(f)
}

/// Stores a member's value; a repeated member gives `None` (the Value keeps the last).
fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

/// `kline_of_k` on the fields read: `None` where it would fail.
fn kline_of_fields(f: Fields<'_>) -> Option<Kline> {
    let [o, h, l, cl, v] = f.ohlcv;
    let mut candle = Candle::ohlcv(f.t?, o?, h?, l?, cl?, v?);
    candle.close_time = f.close_time;
    candle.quote_volume = f.q;
    candle.trades = f.n;
    candle.taker_buy_base = f.v_base;
    candle.taker_buy_quote = f.q_quote;
    let interval = match f.i {
        None => None,
        Some(i) => Some(crate::interval::Interval::parse(std::str::from_utf8(i).ok()?).ok()?),
    };
    Some(Kline {
        candle,
        closed: f.x,
        interval,
        // Plain strings are printable ASCII.
        symbol: f.s.map(|s| String::from_utf8_lossy(s).into_owned()),
    })
}

/// One object's members. `data` is read as an event and `k` as kline fields (each one
/// level deeper, at most two); other members must be flat.
fn object<'a>(c: &mut Cursor<'a>, depth: u8) -> Option<Fields<'a>> {
    c.eat(b'{')?;
    let mut f = Fields::default();
    if c.peek()? == b'}' {
        c.at += 1;
        return Some(f);
    }
    loop {
        let name = c.plain_str()?;
        c.eat(b':')?;
        match name {
            b"t" => set(&mut f.t, c.i64_field()?)?,
            b"T" => set(&mut f.close_time, c.i64_field()?)?,
            b"n" => set(&mut f.n, c.u64_field()?)?,
            b"o" => set(&mut f.ohlcv[0], c.dec_field()?)?,
            b"h" => set(&mut f.ohlcv[1], c.dec_field()?)?,
            b"l" => set(&mut f.ohlcv[2], c.dec_field()?)?,
            b"c" => set(&mut f.ohlcv[3], c.dec_field()?)?,
            b"v" => set(&mut f.ohlcv[4], c.dec_field()?)?,
            b"q" => set(&mut f.q, c.dec_field()?)?,
            b"V" => set(&mut f.v_base, c.dec_field()?)?,
            b"Q" => set(&mut f.q_quote, c.dec_field()?)?,
            b"x" => set(&mut f.x, bool_lit(c)?)?,
            b"i" => set(&mut f.i, c.plain_str()?)?,
            b"s" => set(&mut f.s, c.plain_str()?)?,
            b"e" => set(&mut f.e, c.plain_str()?)?,
            b"k" if depth < 2 => set(&mut f.k, kline_of_fields(object(c, depth + 1)?)?)?,
            b"data" if depth < 2 => set(&mut f.data, event(c, depth + 1)?)?,
            _ => skip_flat(c)?,
        }
        match c.peek()? {
            b',' => c.at += 1,
            b'}' => {
                c.at += 1;
                return Some(f);
            }
            _ => return None,
        }
    }
}

fn bool_lit(c: &mut Cursor<'_>) -> Option<bool> {
    c.ws();
    let rest = c.b.get(c.at..)?;
    let (v, n) = if rest.starts_with(b"true") {
        (true, 4)
    } else if rest.starts_with(b"false") {
        (false, 5)
    } else {
        return None;
    };
    c.at += n;
    Some(v)
}

/// A member the kline does not read: a plain string, an integer, `true`, `false` or
/// `null`.
fn skip_flat(c: &mut Cursor<'_>) -> Option<()> {
    match c.peek()? {
        b'"' => c.plain_str().map(|_| ()),
        b't' | b'f' => bool_lit(c).map(|_| ()),
        b'n' => c.b.get(c.at..)?.starts_with(b"null").then(|| c.at += 4),
        _ => c.int_text().map(|_| ()),
    }
}
