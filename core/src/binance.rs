//! Binance market-data payloads, as received: REST klines bodies, WebSocket kline events
//! (plain or combined-stream wrapped), aggTrade and trade events.
//!
//! Numbers keep their exact text (serde_json's `arbitrary_precision`), so decimals are exact
//! whether Binance sends them as strings (it does) or a client sends JSON numbers.

use crate::candle::Candle;
use crate::candle::Incoming;
use crate::decimal::Dec;
use crate::error::{CoreError, CoreResult};
use crate::interval::Interval;
use serde_json::{Map, Value};

/// Largest JSON payload accepted by the parsers (a 1000-row REST body is ~170 KB).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// A kline from any Binance shape, with what the shape says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Kline {
    pub candle: Candle,
    /// `x` of a WebSocket kline: false while the candle is forming. None for REST rows.
    pub closed: Option<bool>,
    /// `i` of a WebSocket kline.
    pub interval: Option<Interval>,
    /// `s` of a WebSocket kline.
    pub symbol: Option<String>,
}

/// A parsed combined-stream (or plain) WebSocket frame, for routing.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // short-lived, one per frame; boxing would only add an allocation
pub enum StreamEvent {
    Kline(Kline),
    /// `@aggTrade` or `@trade`: one trade.
    Trade(Trade),
    /// Anything else (bookTicker, depth, subscription replies): not ours to store.
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Trade {
    pub symbol: String,
    pub price: Dec,
    pub qty: Dec,
    /// Trade time `T` (ms).
    pub time: i64,
    /// `a` (aggTrade id) or `t` (trade id).
    pub id: Option<u64>,
    pub buyer_is_maker: Option<bool>,
    /// The event object (`data` of a combined frame), for storing as a tick document.
    pub raw: Value,
}

fn parse_json(payload: &[u8]) -> CoreResult<Value> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(CoreError::invalid(format!(
            "JSON payload larger than {MAX_PAYLOAD_BYTES} bytes"
        )));
    }
    serde_json::from_slice(payload).map_err(|e| CoreError::invalid(format!("invalid JSON: {e}")))
}

/// Parses every kline shape Binance sends: a REST klines body (array of rows), one row, a
/// WebSocket kline event (plain or `{"stream":…,"data":…}`), or its `k` object.
pub fn parse_klines(payload: &[u8]) -> CoreResult<Vec<Kline>> {
    if payload.len() <= MAX_PAYLOAD_BYTES {
        if let Some(klines) = fast::rest_klines(payload) {
            return Ok(klines);
        }
    }
    klines_not_rest(payload)
}

/// What a write (`Series::add_official`) takes from a payload: [`parse_klines`]'s candles
/// and `closed` flags, with the interval each kline names, or no intervals at all when no
/// kline names one (REST rows never do).
pub type IncomingBatch = (Vec<Incoming>, Vec<Option<Interval>>);

/// [`parse_klines`] for a write: the same klines (and errors), read straight into the
/// [`Incoming`] the series takes, so a REST body's rows are not copied once more.
pub fn parse_incoming(payload: &[u8]) -> CoreResult<IncomingBatch> {
    if payload.len() <= MAX_PAYLOAD_BYTES {
        if let Some(rows) = fast::rest_klines(payload) {
            return Ok((rows, Vec::new()));
        }
    }
    let klines = klines_not_rest(payload)?;
    let intervals = if klines.iter().any(|k| k.interval.is_some()) {
        klines.iter().map(|k| k.interval).collect()
    } else {
        Vec::new()
    };
    let incoming = klines.into_iter().map(Incoming::from).collect();
    Ok((incoming, intervals))
}

/// `parse_klines` where the REST body reader did not answer: a WebSocket kline read
/// without a tree, else the Value path.
fn klines_not_rest(payload: &[u8]) -> CoreResult<Vec<Kline>> {
    if payload.len() <= MAX_PAYLOAD_BYTES {
        if let Some(kline) = fast::ws_kline(payload) {
            return Ok(vec![kline]);
        }
    }
    let v = parse_json(payload)?;
    klines_of(&v)
}

impl From<Kline> for Incoming {
    fn from(k: Kline) -> Incoming {
        Incoming {
            candle: k.candle,
            closed: k.closed,
        }
    }
}

/// The one kline of a payload that is a single REST row or a WebSocket kline (frame, event
/// or `k` object), read without a JSON tree: `LIVE_UPDATE ... JSON` takes exactly one. `None`
/// when the payload is not plainly one of those shapes; [`parse_klines`] then decides (and
/// gives the same kline wherever this one answers).
pub fn parse_one_kline(payload: &[u8]) -> Option<Kline> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return None;
    }
    fast::rest_row(payload).or_else(|| fast::ws_kline(payload))
}

/// A one-pass reader for the exact shape of a REST klines body: a non-empty array of rows,
/// each an array of 6 to 12 fields, integers where the row has integers (open time, close
/// time, trades) and plain strings (no escapes) for the decimals. No tree, no allocation
/// besides the result. Anything else — another shape, a JSON number as a decimal, an
/// escape, a value the Value path would refuse — gives `None`, and the caller parses the
/// payload the general way, so results and errors are the Value path's.
mod fast {
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
    fn compact_row_with<const INLINE: bool>(
        b: &[u8],
        at: &mut usize,
        c: &mut Candle,
    ) -> Option<()> {
        type Read<T> = fn(&[u8], &mut usize) -> Option<T>;
        let (compact_dec, compact_uint, compact_sep_uint): (Read<Dec>, Read<u64>, Read<u64>) =
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
        c.open = compact_dec(b, &mut p)?;
        c.high = compact_dec(b, &mut p)?;
        c.low = compact_dec(b, &mut p)?;
        c.close = compact_dec(b, &mut p)?;
        c.volume = compact_dec(b, &mut p)?;
        c.close_time = Some(i64::try_from(compact_sep_uint(b, &mut p)?).ok()?);
        c.quote_volume = Some(compact_dec(b, &mut p)?);
        c.trades = Some(compact_sep_uint(b, &mut p)?);
        c.taker_buy_base = Some(compact_dec(b, &mut p)?);
        c.taker_buy_quote = Some(compact_dec(b, &mut p)?);
        if b.get(p..p + 5) != Some(b",\"0\"]") {
            return None;
        }
        *at = p + 5;
        Some(())
    }

    /// `,"<decimal>"` at `p` (the SWAR shape only).
    #[inline(always)]
    fn compact_dec(b: &[u8], p: &mut usize) -> Option<Dec> {
        match fixed8_dec(b, *p) {
            Some((d, n)) => {
                *p += n + 3;
                Some(d)
            }
            None => compact_dec_other(b, p),
        }
    }

    /// `,"<decimal>"` at `p` in Binance's own shape (8 fractional digits), where the text
    /// is long enough for the fixed-size reader: the decimal and the length of its text.
    #[inline(always)]
    fn fixed8_dec(b: &[u8], p: usize) -> Option<(Dec, usize)> {
        let (sep, text) = b.get(p..)?.first_chunk::<20>()?.split_first_chunk::<2>()?;
        if sep != b",\"" {
            return None;
        }
        Dec::parse_fixed8(text.first_chunk::<18>()?)
    }

    /// The out-of-line readers of [`compact_row_with`]`::<false>`.
    #[inline(never)]
    fn compact_dec_outlined(b: &[u8], p: &mut usize) -> Option<Dec> {
        compact_dec(b, p)
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
}

fn klines_of(v: &Value) -> CoreResult<Vec<Kline>> {
    match v {
        Value::Array(rows) => match rows.first() {
            None => Ok(Vec::new()),
            Some(Value::Array(_)) => rows
                .iter()
                .enumerate()
                .map(|(i, r)| match r {
                    Value::Array(f) => {
                        kline_of_row(f).map_err(|e| CoreError::invalid(format!("row {i}: {e}")))
                    }
                    _ => Err(CoreError::invalid(format!(
                        "row {i}: a klines row is a JSON array"
                    ))),
                })
                .collect(),
            Some(_) => Ok(vec![kline_of_row(rows)?]),
        },
        Value::Object(o) => {
            if let Some(data) = o.get("data") {
                return klines_of(data);
            }
            if let Some(k) = o.get("k") {
                if let Some(e) = o.get("e").and_then(Value::as_str) {
                    if e != "kline" {
                        return Err(CoreError::invalid(format!("event '{e}' is not a kline")));
                    }
                }
                return match k {
                    Value::Object(k) => Ok(vec![kline_of_k(k)?]),
                    _ => Err(CoreError::invalid("'k' of a kline event is a JSON object")),
                };
            }
            Ok(vec![kline_of_k(o)?])
        }
        _ => Err(CoreError::invalid(
            "expected a klines array, a kline row or a kline event object",
        )),
    }
}

/// `[openTime, "o", "h", "l", "c", "v", closeTime, "q", trades, "V", "Q", "ignore"]`
fn kline_of_row(f: &[Value]) -> CoreResult<Kline> {
    if f.len() < 6 || f.len() > 12 {
        return Err(CoreError::invalid(format!(
            "a klines row has 6 to 12 fields, got {}",
            f.len()
        )));
    }
    let opt_dec = |i: usize, name: &str| f.get(i).map(|v| dec_of(v, name)).transpose();
    let candle = Candle {
        open_time: int_of(&f[0], "open time")?,
        open: dec_of(&f[1], "open")?,
        high: dec_of(&f[2], "high")?,
        low: dec_of(&f[3], "low")?,
        close: dec_of(&f[4], "close")?,
        volume: dec_of(&f[5], "volume")?,
        close_time: f.get(6).map(|v| int_of(v, "close time")).transpose()?,
        quote_volume: opt_dec(7, "quote volume")?,
        trades: f.get(8).map(|v| uint_of(v, "trades")).transpose()?,
        taker_buy_base: opt_dec(9, "taker buy base volume")?,
        taker_buy_quote: opt_dec(10, "taker buy quote volume")?,
    };
    Ok(Kline {
        candle,
        closed: None,
        interval: None,
        symbol: None,
    })
}

/// The `k` object of a WebSocket kline event.
fn kline_of_k(k: &Map<String, Value>) -> CoreResult<Kline> {
    let req = |name: &str| {
        k.get(name)
            .ok_or_else(|| CoreError::invalid(format!("kline object lacks '{name}'")))
    };
    let opt_dec = |name: &str| k.get(name).map(|v| dec_of(v, name)).transpose();
    let candle = Candle {
        open_time: int_of(req("t")?, "t")?,
        open: dec_of(req("o")?, "o")?,
        high: dec_of(req("h")?, "h")?,
        low: dec_of(req("l")?, "l")?,
        close: dec_of(req("c")?, "c")?,
        volume: dec_of(req("v")?, "v")?,
        close_time: k.get("T").map(|v| int_of(v, "T")).transpose()?,
        quote_volume: opt_dec("q")?,
        trades: k.get("n").map(|v| uint_of(v, "n")).transpose()?,
        taker_buy_base: opt_dec("V")?,
        taker_buy_quote: opt_dec("Q")?,
    };
    let closed = match k.get("x") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(CoreError::invalid("'x' of a kline is true or false")),
    };
    let interval = match k.get("i") {
        None => None,
        Some(Value::String(s)) => Some(Interval::parse(s)?),
        Some(_) => return Err(CoreError::invalid("'i' of a kline is a string")),
    };
    let symbol = k.get("s").and_then(Value::as_str).map(str::to_owned);
    Ok(Kline {
        candle,
        closed,
        interval,
        symbol,
    })
}

/// Parses one WebSocket frame (combined `{"stream","data"}` or plain) for routing.
pub fn parse_stream_frame(frame: &[u8]) -> CoreResult<StreamEvent> {
    let v = parse_json(frame)?;
    let data = match v.get("data") {
        Some(d) if v.get("stream").is_some() => d,
        _ => &v,
    };
    let Some(obj) = data.as_object() else {
        return Ok(StreamEvent::Other);
    };
    match obj.get("e").and_then(Value::as_str) {
        Some("kline") => {
            let mut ks = klines_of(data)?;
            ks.pop()
                .map(StreamEvent::Kline)
                .ok_or_else(|| CoreError::invalid("empty kline event"))
        }
        Some(e @ ("aggTrade" | "trade")) => {
            let req = |name: &str| {
                obj.get(name)
                    .ok_or_else(|| CoreError::invalid(format!("{e} event lacks '{name}'")))
            };
            let id_field = if e == "aggTrade" { "a" } else { "t" };
            Ok(StreamEvent::Trade(Trade {
                symbol: req("s")?.as_str().unwrap_or_default().to_owned(),
                price: dec_of(req("p")?, "p")?,
                qty: dec_of(req("q")?, "q")?,
                time: int_of(req("T")?, "T")?,
                id: obj
                    .get(id_field)
                    .map(|v| uint_of(v, id_field))
                    .transpose()?,
                buyer_is_maker: obj.get("m").and_then(Value::as_bool),
                raw: data.clone(),
            }))
        }
        _ => Ok(StreamEvent::Other),
    }
}

/// A decimal given as a JSON string (Binance) or number (exact text kept).
pub fn dec_of(v: &Value, name: &str) -> CoreResult<Dec> {
    match v {
        Value::String(s) => Dec::parse(s),
        Value::Number(n) => Dec::parse(&n.to_string()),
        _ => Err(CoreError::invalid(format!(
            "{name} must be a decimal string or number"
        ))),
    }
    .map_err(|e| CoreError::invalid(format!("{name}: {e}")))
}

pub fn int_of(v: &Value, name: &str) -> CoreResult<i64> {
    v.as_i64()
        .ok_or_else(|| CoreError::invalid(format!("{name} must be an integer")))
}

fn uint_of(v: &Value, name: &str) -> CoreResult<u64> {
    v.as_u64()
        .ok_or_else(|| CoreError::invalid(format!("{name} must be a non-negative integer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = r#"[1725416820000,"56714.00000000","56714.01000000","56634.00000000","56642.00000000","11.02444000",1725416879999,"624782.95032640",1425,"2.24261000","127055.79808400","0"]"#;

    #[test]
    fn rest_row_keeps_every_field() {
        let k = parse_klines(ROW.as_bytes()).unwrap();
        assert_eq!(k.len(), 1);
        let c = &k[0].candle;
        assert_eq!(c.open_time, 1_725_416_820_000);
        assert_eq!(c.open.to_string(), "56714");
        assert_eq!(c.high.to_string(), "56714.01");
        assert_eq!(c.close_time, Some(1_725_416_879_999));
        assert_eq!(c.quote_volume.unwrap().to_string(), "624782.9503264");
        assert_eq!(c.trades, Some(1425));
        assert_eq!(c.taker_buy_quote.unwrap().to_string(), "127055.798084");
        assert_eq!(k[0].closed, None);
    }

    #[test]
    fn rest_body_and_short_rows() {
        let body = format!("[{ROW},{ROW}]");
        assert_eq!(parse_klines(body.as_bytes()).unwrap().len(), 2);
        assert!(parse_klines(b"[]").unwrap().is_empty());
        let k = parse_klines(br#"[60000, 1, 2, 0.5, "1.5", 0.1]"#).unwrap();
        assert_eq!(k[0].candle.volume.to_string(), "0.1");
        assert_eq!(k[0].candle.close_time, None);
    }

    #[test]
    fn ws_event_plain_wrapped_and_k() {
        // Real frame from the 2021-04-04 capture.
        let k = r#"{"t":1617566580000,"T":1617566639999,"s":"BTCUSDT","i":"1m","f":745522651,"L":745522892,"o":"57994.60000000","c":"58001.03000000","h":"58008.75000000","l":"57994.59000000","v":"6.45389500","n":242,"x":false,"q":"374344.56589795","V":"1.89113100","Q":"109689.77187181","B":"0"}"#;
        let ev = format!(r#"{{"e":"kline","E":1617566592358,"s":"BTCUSDT","k":{k}}}"#);
        let wrapped = format!(r#"{{"stream":"btcusdt@kline_1m","data":{ev}}}"#);
        for p in [k.to_string(), ev, wrapped] {
            let v = parse_klines(p.as_bytes()).unwrap();
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].closed, Some(false));
            assert_eq!(v[0].interval, Some(Interval::M1));
            assert_eq!(v[0].symbol.as_deref(), Some("BTCUSDT"));
            assert_eq!(v[0].candle.trades, Some(242));
            assert_eq!(v[0].candle.open.to_string(), "57994.6");
        }
    }

    #[test]
    fn bad_payloads_are_errors() {
        for p in [
            "",
            "{",
            "null",
            "1",
            "\"x\"",
            "[1,2]",
            "[[1,2,3]]",
            r#"[60000,"a","1","1","1","1"]"#,
            r#"{"e":"trade","k":{}}"#,
            r#"{"t":60000}"#,
            r#"[60000.5,"1","1","1","1","1"]"#,
            r#"[[60000,"1","1","1","1","1"], 5]"#,
            r#"{"k":{"t":60000,"o":"1","h":"1","l":"1","c":"1","v":"1","x":"no"}}"#,
        ] {
            assert!(parse_klines(p.as_bytes()).is_err(), "{p}");
        }
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse_klines(deep.as_bytes()).is_err());
    }

    /// The Value path alone, as `parse_klines` was before the fast path.
    fn value_path(p: &[u8]) -> Result<Vec<Kline>, String> {
        parse_json(p)
            .and_then(|v| klines_of(&v))
            .map_err(|e| e.to_string())
    }

    fn same_as_value_path(p: &[u8]) -> bool {
        agrees_with_value_path(p, fast::rest_klines(p))
    }

    /// `fast`, a fast path's answer on `p`, is the Value path's wherever it answers, and
    /// `parse_klines` always is; whether the fast path answered.
    fn agrees_with_value_path(p: &[u8], fast: Option<Vec<Kline>>) -> bool {
        if let Some(k) = &fast {
            assert_eq!(
                Ok(k.clone()),
                value_path(p),
                "{}",
                String::from_utf8_lossy(p)
            );
        }
        assert_eq!(
            parse_klines(p).map_err(|e| e.to_string()),
            value_path(p),
            "{}",
            String::from_utf8_lossy(p)
        );
        assert_eq!(
            incoming_view(parse_incoming(p)),
            value_path(p).map(incoming_of_klines),
            "{}",
            String::from_utf8_lossy(p)
        );
        fast.is_some()
    }

    type IncomingView = (Vec<(Candle, Option<bool>)>, Vec<Option<Interval>>);

    /// `parse_incoming`'s answer in comparable form (`Incoming` has no `PartialEq`).
    fn incoming_view(r: CoreResult<IncomingBatch>) -> Result<IncomingView, String> {
        r.map(|(inc, intervals)| {
            (
                inc.into_iter().map(|i| (i.candle, i.closed)).collect(),
                intervals,
            )
        })
        .map_err(|e| e.to_string())
    }

    /// What `parse_incoming` must give for these klines: their candles and flags, and
    /// their intervals when any kline names one.
    fn incoming_of_klines(k: Vec<Kline>) -> IncomingView {
        let intervals = if k.iter().any(|k| k.interval.is_some()) {
            k.iter().map(|k| k.interval).collect()
        } else {
            Vec::new()
        };
        (
            k.into_iter().map(|k| (k.candle, k.closed)).collect(),
            intervals,
        )
    }

    #[test]
    fn parse_incoming_matches_value_path() {
        let frames = fixture("ws_kline_1m_combined.jsonl");
        let mut cases: Vec<Vec<u8>> = frames
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        let k = r#"{"t":60000,"o":"1","h":"2","l":"0.5","c":"1.5","v":"1","i":"1m","x":true}"#;
        let no_i = r#"{"t":120000,"o":"1","h":"2","l":"0.5","c":"1.5","v":"1","x":false}"#;
        for p in [
            k.to_string(),
            no_i.to_string(),
            format!("[{k},{no_i}]"),
            format!("[{no_i},{k}]"),
            format!("[{no_i},{no_i}]"),
            format!(r#"{{"e":"kline","k":{k}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"kline","k":{no_i}}}}}"#),
            format!("[{ROW},{ROW}]"),
            format!("[{ROW},[60000, 1, 2, 0.5, \"1.5\", 0.1]]"),
            ROW.to_string(),
            "[]".to_string(),
            r#"{"k":{"t":60000,"o":"1","h":"1","l":"1","c":"1","v":"1","i":"7q"}}"#.into(),
            r#"[60000,"a","1","1","1","1"]"#.into(),
            "{".into(),
        ] {
            cases.push(p.into_bytes());
        }
        cases.push(fixture("rest_klines_BTCUSDT_1m_limit1000.json"));
        for p in &cases {
            agrees_with_value_path(p, None);
        }
        // The intervals are there exactly when a kline names one.
        let (inc, intervals) = parse_incoming(k.as_bytes()).unwrap();
        assert_eq!((inc.len(), intervals), (1, vec![Some(Interval::M1)]));
        let (inc, intervals) = parse_incoming(no_i.as_bytes()).unwrap();
        assert_eq!((inc.len(), intervals.len()), (1, 0));
        let (inc, intervals) = parse_incoming(format!("[{ROW},{ROW}]").as_bytes()).unwrap();
        assert_eq!((inc.len(), intervals.len()), (2, 0));
    }

    use candles_testkit::fixtures::bytes as fixture;

    #[test]
    fn fast_path_matches_value_path_on_fixtures() {
        for name in [
            "rest_klines_BTCUSDT_1m_limit1000.json",
            "rest_klines_BTCUSDT_5m_limit1000.json",
            "rest_klines_BTCUSDT_15m_limit1000.json",
            "rest_klines_BTCUSDT_1m_10rows_nautilus.json",
        ] {
            let body = fixture(name);
            assert!(same_as_value_path(&body), "{name}: fast path not taken");
            let Value::Array(rows) = serde_json::from_slice::<Value>(&body).unwrap() else {
                panic!("{name}");
            };
            for r in &rows {
                // Each row alone (one-row shape: Value path) and as a one-row body (fast).
                let one = serde_json::to_vec(r).unwrap();
                same_as_value_path(&one);
                let mut wrapped = b"[".to_vec();
                wrapped.extend_from_slice(&one);
                wrapped.push(b']');
                assert!(same_as_value_path(&wrapped), "{name}");
            }
            // Pretty-printed bodies keep the fast path (whitespace between tokens).
            let pretty = serde_json::to_vec_pretty(&rows).unwrap();
            assert!(same_as_value_path(&pretty), "{name}: pretty");
        }
        let ws = fixture("ws_kline_1m_combined.jsonl");
        for line in ws.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert!(!same_as_value_path(line));
        }
    }

    /// The single-row reader (and `parse_one_kline`) agree with the Value path.
    fn one_row_agrees(p: &[u8]) -> bool {
        let fast = fast::rest_row(p);
        assert_eq!(
            parse_one_kline(p).is_some(),
            fast.is_some() || fast::ws_kline(p).is_some()
        );
        agrees_with_value_path(p, fast.map(|k| vec![k]))
    }

    #[test]
    fn single_row_fast_path_matches_value_path() {
        for name in [
            "rest_klines_BTCUSDT_1m_limit1000.json",
            "rest_klines_BTCUSDT_5m_limit1000.json",
            "rest_klines_BTCUSDT_1m_10rows_nautilus.json",
        ] {
            let Value::Array(rows) = serde_json::from_slice::<Value>(&fixture(name)).unwrap()
            else {
                panic!("{name}");
            };
            for r in &rows {
                let one = serde_json::to_vec(r).unwrap();
                assert!(one_row_agrees(&one), "{name}: fast path not taken");
                assert_eq!(
                    parse_one_kline(&one).map(|k| vec![k]),
                    Some(value_path(&one).unwrap())
                );
                let pretty = serde_json::to_vec_pretty(r).unwrap();
                assert!(one_row_agrees(&pretty), "{name}: pretty");
                let mut spaced = b" \n".to_vec();
                spaced.extend_from_slice(&one);
                spaced.extend_from_slice(b"\r\t ");
                assert!(one_row_agrees(&spaced), "{name}: spaced");
            }
        }
        // Short rows, and every malformed shape of the body test without its outer brackets.
        for c in [
            r#"[60000,"1","1","1","1","1"]"#,
            r#"[60000,"1","1","1","1","1",119999]"#,
            r#"[60000,"1","1","1","1","1",119999,"1",5,"1","1"]"#,
            r#"[60000,"1","1","1","1","1",119999,"1",5,"1","1","0",1]"#,
            r#"[60000,"1","1","1","1","1",119999,"1",5,"1","1",null]"#,
            r#"[60000,"1","1","1","1","1",119999,"1",5,"1","1",7]"#,
            r#"[60000,"1","1","1","1","1",119999,"1",-1]"#,
            r#"[60000,"1","1","1","1","1"]]"#,
            r#"[60000,"1","1","1","1","1"],"#,
            r#"[60000,"1","1","1","1"]"#,
            r#"[60000,1,"1","1","1","1"]"#,
            r#"[060000,"1","1","1","1","1"]"#,
            r#"[-0,"1","1","1","1","1"]"#,
            r#"[6e4,"1","1","1","1","1"]"#,
            r#"[9223372036854775808,"1","1","1","1","1"]"#,
            r#"[60000,"1\u0030","1","1","1","1"]"#,
            r#"[60000,"x","1","1","1","1"]"#,
            "[60000,\"1\t\",\"1\",\"1\",\"1\",\"1\"]",
            "[]",
            "[",
            "",
        ] {
            one_row_agrees(c.as_bytes());
        }
        // Every single-byte deletion and a set of substitutions of a full row.
        let b = ROW.as_bytes();
        assert!(one_row_agrees(b));
        for i in 0..b.len() {
            let mut d = b.to_vec();
            d.remove(i);
            one_row_agrees(&d);
            for sub in [
                b'0', b'9', b'-', b'"', b',', b'[', b']', b' ', b'.', b'e', b'\\', b'x',
            ] {
                let mut d = b.to_vec();
                d[i] = sub;
                one_row_agrees(&d);
            }
        }
    }

    #[test]
    fn fast_path_matches_value_path_on_malformed_input() {
        let row = ROW;
        let cases: Vec<String> = vec![
            String::new(),
            "[".into(),
            "[[".into(),
            "[]".into(),
            "[[]]".into(),
            " [ [60000,\"1\",\"1\",\"1\",\"1\",\"1\"] ] ".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",]]".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\"],]".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\"]] x".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\"]]]".into(),
            "[[060000,\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[-0,\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[60000.0,\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[6e4,\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[\"60000\",\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[60000,1,\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[60000,\"1\\u0030\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[60000,\"x\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[60000,\"-1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",119999,\"1\",-1]]".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",119999,\"1\",18446744073709551616]]".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",119999,\"1\",5,\"1\",\"1\",\"0\",1]]".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",119999,\"1\",5,\"1\",\"1\",null]]".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",119999,\"1\",5,\"1\",\"1\",7]]".into(),
            "[[9223372036854775808,\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\"],[1]]".into(),
            "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\"],5]".into(),
            "[[60000,\"1\u{e9}\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            "[[60000,\"1\t\",\"1\",\"1\",\"1\",\"1\"]]".into(),
            format!("[{row},{row}]"),
            format!("[{row} , {row}]\n"),
            format!("[{row}{row}]"),
        ];
        for c in &cases {
            same_as_value_path(c.as_bytes());
        }
        // Every single-byte deletion and a set of substitutions of a two-row body.
        let body = format!("[{row},{row}]");
        let b = body.as_bytes();
        for i in 0..b.len() {
            let mut d = b.to_vec();
            d.remove(i);
            same_as_value_path(&d);
            for sub in [
                b'0', b'-', b'"', b',', b'[', b']', b' ', b'.', b'e', b'\\', b'x',
            ] {
                let mut d = b.to_vec();
                d[i] = sub;
                same_as_value_path(&d);
            }
        }
    }

    /// Rows whose numbers have random digit counts and shapes, around the fast readers'
    /// limits (16-digit integers, 15.8-digit decimals, leading zeros, signs, exponents).
    #[test]
    fn fast_path_matches_value_path_on_random_numbers() {
        let mut rng = crate::test_rng::XorShift(0x0123_4567_89ab_cdef);
        let mut next = move || rng.next();
        let mut digits = |n: u64, r: u64| -> String {
            (0..n)
                .map(|i| char::from(b'0' + ((r >> (i % 16 * 4)) % 10) as u8))
                .collect()
        };
        let mut fast = 0;
        for _ in 0..20_000 {
            let r = next();
            let r2 = next();
            let int = |r: u64, d: &mut dyn FnMut(u64, u64) -> String| -> String {
                let mut s = String::new();
                if r.is_multiple_of(17) {
                    s.push('-');
                }
                let n = if r.is_multiple_of(5) {
                    r % 21
                } else {
                    1 + r % 17
                };
                s += &d(n, r >> 8);
                if r.is_multiple_of(23) {
                    s.push_str(".0");
                }
                s
            };
            let dec = |r: u64, d: &mut dyn FnMut(u64, u64) -> String| -> String {
                let mut s = String::from("\"");
                if r.is_multiple_of(19) {
                    s.push('-');
                }
                s += &d(r % 17, r >> 5);
                if !r.is_multiple_of(4) {
                    s.push('.');
                    s += &d((r >> 3) % 11, r >> 9);
                }
                if r.is_multiple_of(29) {
                    s.push_str("e1");
                }
                s.push('"');
                s
            };
            let row = format!(
                "[{},{},{},{},{},{},{},{},{},{},{},\"0\"]",
                int(r, &mut digits),
                dec(r2, &mut digits),
                dec(r2.rotate_left(7), &mut digits),
                dec(r2.rotate_left(14), &mut digits),
                dec(r2.rotate_left(21), &mut digits),
                dec(r2.rotate_left(28), &mut digits),
                int(r.rotate_left(9), &mut digits),
                dec(r2.rotate_left(35), &mut digits),
                int(r.rotate_left(19), &mut digits),
                dec(r2.rotate_left(42), &mut digits),
                dec(r2.rotate_left(49), &mut digits),
            );
            fast += usize::from(same_as_value_path(format!("[{row}]").as_bytes()));
        }
        assert!(fast > 100, "{fast}");
    }

    /// Wherever the compact row reader answers, the general one reads the same candle and
    /// stops at the same place: fixture rows, then rows with random numbers and random edits.
    #[test]
    fn compact_row_matches_general_row() {
        use crate::test_rng::XorShift;
        let mut rows: Vec<Vec<u8>> = Vec::new();
        for name in [
            "rest_klines_BTCUSDT_1m_limit1000.json",
            "rest_klines_BTCUSDT_5m_limit1000.json",
            "rest_klines_BTCUSDT_15m_limit1000.json",
            "rest_klines_BTCUSDT_1m_10rows_nautilus.json",
        ] {
            let Value::Array(all) = serde_json::from_slice::<Value>(&fixture(name)).unwrap() else {
                panic!("{name}");
            };
            rows.extend(all.iter().map(|r| serde_json::to_vec(r).unwrap()));
        }
        let mut r = XorShift(0xc0ff_ee00_1234_5678);
        // Mostly the compact shape, now and then a number it must refuse (a sign, a leading
        // zero, too many digits, an exponent, a fraction in an integer field).
        let num = |r: &mut XorShift, int: bool| -> String {
            let mut s = String::new();
            if r.below(40) == 0 {
                s.push('-');
            }
            let n = if r.below(10) == 0 {
                r.below(20)
            } else {
                1 + r.below(9)
            };
            for i in 0..n {
                let d = if i == 0 && r.below(20) > 0 {
                    1 + r.below(9)
                } else {
                    r.below(10)
                };
                s.push(char::from(b'0' + d as u8));
            }
            if (!int && r.below(4) > 0) || r.below(40) == 0 {
                s.push('.');
                for _ in 0..r.below(11) {
                    s.push(char::from(b'0' + r.below(10) as u8));
                }
            }
            if r.below(60) == 0 {
                s.push_str("e2");
            }
            s
        };
        for _ in 0..30_000 {
            let f: Vec<String> = (0..12)
                .map(|i| num(&mut r, [0, 6, 8].contains(&i)))
                .collect();
            let q = |i: usize| format!("\"{}\"", f[i]);
            let row = format!(
                "[{},{},{},{},{},{},{},{},{},{},{},{}]",
                f[0],
                q(1),
                q(2),
                q(3),
                q(4),
                q(5),
                f[6],
                q(7),
                f[8],
                q(9),
                q(10),
                if r.below(10) == 0 {
                    q(11)
                } else {
                    "\"0\"".into()
                }
            );
            rows.push(row.into_bytes());
        }
        let edits: Vec<Vec<u8>> = rows
            .iter()
            .take(3000)
            .map(|row| {
                let mut e = row.clone();
                let i = r.below(e.len() as u64) as usize;
                match r.below(3) {
                    0 => {
                        e.remove(i);
                    }
                    1 => e[i] = b"0-\",[]. e\\x9"[r.below(12) as usize],
                    _ => e.insert(i, b' '),
                }
                e.extend_from_slice(b",[");
                e
            })
            .collect();
        rows.extend(edits);
        let mut compact = 0;
        for row in &rows {
            let [c, g] = fast::both_rows(row);
            if let Some(c) = c {
                compact += 1;
                assert_eq!(Some(c), g, "{}", String::from_utf8_lossy(row));
            }
        }
        assert!(compact > 5_000, "{compact}");
    }

    /// Rows in Binance's decimal shape (8 fractional digits, what the compact reader's
    /// fixed-size decimal reader takes) around its limits: 1..=9 integer digits, 7 to 9
    /// fractional ones, zero fractions, bodies ending right after a short decimal, and random
    /// byte edits. The fast path answers as the Value path does, and the compact row reader
    /// as the general one.
    #[test]
    fn fixed8_rows_match_value_path() {
        use crate::test_rng::XorShift;
        let mut r = XorShift(0x8a5c_3e1f_d240_9b77);
        let dec = |r: &mut XorShift| -> String {
            let mut s = String::new();
            for i in 0..1 + r.below(9) {
                let d = if i == 0 { 1 + r.below(9) } else { r.below(10) };
                s.push(char::from(b'0' + d as u8));
            }
            s.push('.');
            let n = match r.below(20) {
                0 => 7,
                1 => 9,
                _ => 8,
            };
            let zeros = r.below(10);
            for i in 0..n {
                let d = if i >= zeros { 0 } else { r.below(10) };
                s.push(char::from(b'0' + d as u8));
            }
            format!("\"{s}\"")
        };
        let mut fast = 0;
        for i in 0..20_000 {
            let rows: Vec<String> = (0..1 + r.below(3))
                .map(|_| {
                    let t = 1_725_416_820_000 + 60_000 * r.below(1000);
                    let d: Vec<String> = (0..8).map(|_| dec(&mut r)).collect();
                    format!(
                        "[{t},{},{},{},{},{},{},{},{},{},{},\"0\"]",
                        d[0],
                        d[1],
                        d[2],
                        d[3],
                        d[4],
                        t + 59_999,
                        d[5],
                        r.below(100_000),
                        d[6],
                        d[7],
                    )
                })
                .collect();
            let mut body = format!("[{}]", rows.join(",")).into_bytes();
            if i % 2 == 1 {
                let at = r.below(body.len() as u64) as usize;
                body[at] = b"0123456789.-\",[] e"[r.below(17) as usize];
            }
            fast += usize::from(same_as_value_path(&body));
            if let Some(row) = body.get(1..) {
                let [c, g] = fast::both_rows(row);
                if c.is_some() {
                    assert_eq!(c, g, "{}", String::from_utf8_lossy(row));
                }
            }
        }
        assert!(fast > 5_000, "{fast}");
    }

    #[test]
    fn routes_stream_frames() {
        let agg = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1617566591315,"s":"BTCUSDT","a":665076760,"p":"58001.03000000","q":"0.08620500","f":745522877,"l":745522877,"T":1617566591314,"m":true,"M":true}}"#;
        match parse_stream_frame(agg.as_bytes()).unwrap() {
            StreamEvent::Trade(t) => {
                assert_eq!(t.price.to_string(), "58001.03");
                assert_eq!(t.qty.to_string(), "0.086205");
                assert_eq!(t.id, Some(665076760));
                assert_eq!(t.time, 1617566591314);
            }
            other => panic!("{other:?}"),
        }
        let book = r#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"1","A":"1"}}"#;
        assert_eq!(
            parse_stream_frame(book.as_bytes()).unwrap(),
            StreamEvent::Other
        );
    }

    /// `fast::ws_kline` answers only as the Value path does: every kline frame of the
    /// captures in its three shapes (frame, event, `k` object), then edited ones (bytes
    /// changed, members repeated, reordered, retyped, nested, spaced).
    #[test]
    fn ws_kline_fast_path_matches_value_path() {
        use crate::test_rng::XorShift;
        let check = |p: &[u8]| agrees_with_value_path(p, fast::ws_kline(p).map(|k| vec![k]));
        let mut docs: Vec<Vec<u8>> = Vec::new();
        for name in [
            "ws_kline_1m_combined.jsonl",
            "ws_capture_spot_2021-04-04_BTCUSDT_ETHUSDT_DOTUSDT.jsonl",
            "ws_capture_spot_2021-10-12_4symbols.jsonl",
        ] {
            for line in fixture(name).split(|b| *b == b'\n') {
                let kline = b"\"e\":\"kline\"";
                if !line.windows(kline.len()).any(|w| w == kline) {
                    continue;
                }
                let mut v: Value = serde_json::from_slice(line).unwrap();
                if let Some(frame) = v.get("frame") {
                    // The capture files wrap each frame with its receive time.
                    v = frame.clone();
                    docs.push(serde_json::to_vec(&v).unwrap());
                } else {
                    docs.push(line.to_vec());
                }
                docs.push(serde_json::to_vec(&v["data"]).unwrap());
                docs.push(serde_json::to_vec(&v["data"]["k"]).unwrap());
                docs.push(serde_json::to_vec_pretty(&v).unwrap());
            }
        }
        let mut fast_hits = 0;
        for d in &docs {
            fast_hits += usize::from(check(d));
        }
        assert!(docs.len() > 1000, "{} kline documents", docs.len());
        assert_eq!(
            fast_hits,
            docs.len(),
            "every real kline shape takes the fast path"
        );

        let edits: [(&[u8], &[u8]); 18] = [
            (b"\"x\":false", b"\"x\":null"),
            (b"\"x\":false", b"\"x\":0"),
            (b"\"x\":false", b"\"x\" : true"),
            (b"\"t\":", b"\"t\":\"1\",\"t\":"),
            (b"\"o\":", b"\"z\":{},\"o\":"),
            (b"\"o\":", b"\"z\":1.5,\"o\":"),
            (b"\"o\":", b"\"z\":\"\\u0041\",\"o\":"),
            (b"\"o\":\"", b"\"o\":1"),
            (b"\"i\":\"1m\"", b"\"i\":\"7m\""),
            (b"\"i\":\"1m\"", b"\"i\":1"),
            (b"\"s\":", b"\"s\":7,\"y\":"),
            (b"\"e\":\"kline\"", b"\"e\":\"trade\""),
            (b"\"e\":\"kline\"", b"\"e\":5"),
            (b"\"n\":", b"\"n\":-"),
            (b"\"data\":", b"\"data\":[],\"x\":"),
            (b"\"k\":", b"\"k\":\"no\",\"j\":"),
            (b"\"T\":", b"\"T\":1e3,\"U\":"),
            (b"}", b",}"),
        ];
        let base: Vec<Vec<u8>> = docs.iter().step_by(7).cloned().collect();
        for d in &base {
            for (from, to) in edits {
                if let Some(at) = d.windows(from.len()).position(|w| w == from) {
                    check(&[&d[..at], to, &d[at + from.len()..]].concat());
                }
            }
        }
        let mut rng = XorShift(0x005e_ed0f_ca7e);
        let alphabet = b"{}[]\",:0123456789.-etrufalsnxkdi \\";
        for _ in 0..20_000 {
            let d = &base[rng.below(base.len() as u64) as usize];
            let mut e = d.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(e.len() as u64) as usize;
                match rng.below(3) {
                    _ if at >= e.len() => e.push(b'}'),
                    0 => e[at] = alphabet[rng.below(alphabet.len() as u64) as usize],
                    1 => {
                        e.remove(at);
                    }
                    _ => e.insert(at, alphabet[rng.below(alphabet.len() as u64) as usize]),
                }
            }
            check(&e);
        }
    }
}
