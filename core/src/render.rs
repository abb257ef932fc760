//! Candles as reply text: decimals and integers straight into a byte buffer (no `fmt`), the
//! JSON object of `RANGE_MERGED ... FORMAT JSON`, and the window of that text for a series'
//! newest official candles that the chart cache (`chart_cache.rs`) keeps for chart loads.

use crate::bytes::eq_short;
use crate::candle::Candle;
use crate::candle::CandleKind;
use crate::decimal::{swar, Dec};

const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Stores `src` at `buf[at..]`. Every caller's digits fit (a u128 has at most 39), so the
/// check never fails; it only keeps a panic off the reply path.
#[inline(always)]
fn put(buf: &mut [u8; 40], at: usize, src: &[u8]) {
    if let Some(d) = buf.get_mut(at..at + src.len()) {
        d.copy_from_slice(src);
    }
}

/// Two digits `r / 2` (`r` even, `< 200`) of `DIGITS2`.
#[inline(always)]
fn pair(r: usize) -> &'static [u8] {
    DIGITS2.get(r..r + 2).unwrap_or(b"00")
}

/// Decimal digits of `v` at the end of `buf`; returns where they start.
fn digits_u64(mut v: u64, buf: &mut [u8; 40]) -> usize {
    let mut at = buf.len();
    while v >= 100 {
        let r = (v % 100) as usize * 2;
        v /= 100;
        at -= 2;
        put(buf, at, pair(r));
    }
    if v >= 10 {
        let r = v as usize * 2;
        at -= 2;
        put(buf, at, pair(r));
    } else {
        at -= 1;
        put(buf, at, &[b'0' + v as u8]);
    }
    at
}

/// Decimal digits of `v` (any u128; at most 39 digits) at the end of `buf`.
fn digits_u128(v: u128, buf: &mut [u8; 40]) -> usize {
    match u64::try_from(v) {
        Ok(small) => digits_u64(small, buf),
        Err(_) => {
            let mut v = v;
            let mut at = buf.len();
            while v > 0 {
                at -= 1;
                put(buf, at, &[b'0' + (v % 10) as u8]);
                v /= 10;
            }
            at
        }
    }
}

pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 40];
    let at = digits_u64(v, &mut buf);
    out.extend_from_slice(buf.get(at..).unwrap_or_default());
}

pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

/// The same text as `Dec`'s `Display`.
pub fn write_dec(out: &mut Vec<u8>, d: Dec) {
    let mut buf = [0u8; 40];
    let at = digits_u128(d.mantissa().unsigned_abs(), &mut buf);
    let digits = buf.get(at..).unwrap_or_default();
    if d.mantissa() < 0 {
        out.push(b'-');
    }
    let scale = d.scale() as usize;
    if scale == 0 {
        out.extend_from_slice(digits);
    } else if digits.len() > scale {
        let (i, fr) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(i);
        out.push(b'.');
        out.extend_from_slice(fr);
    } else {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (scale - digits.len()), b'0');
        out.extend_from_slice(digits);
    }
}

fn opt_int(out: &mut Vec<u8>, name: &[u8], v: Option<i64>) {
    out.extend_from_slice(name);
    match v {
        Some(v) => write_i64(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_dec(out: &mut Vec<u8>, name: &[u8], v: Option<Dec>) {
    out.extend_from_slice(name);
    match v {
        Some(v) => {
            out.push(b'"');
            write_dec(out, v);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// One candle as a JSON object; decimals as strings so no client parses them as floats.
pub fn candle_json(out: &mut Vec<u8>, c: &Candle, kind: CandleKind, full: bool) {
    out.extend_from_slice(b"{\"open_time\":");
    write_i64(out, c.open_time);
    for (name, d) in [
        (&b",\"open\":\""[..], c.open),
        (b"\",\"high\":\"", c.high),
        (b"\",\"low\":\"", c.low),
        (b"\",\"close\":\"", c.close),
        (b"\",\"volume\":\"", c.volume),
    ] {
        out.extend_from_slice(name);
        write_dec(out, d);
    }
    out.extend_from_slice(match kind {
        CandleKind::Official => b"\",\"status\":\"official\"",
        CandleKind::Live => b"\",\"status\":\"live\"",
    });
    if full {
        opt_int(out, b",\"close_time\":", c.close_time);
        opt_dec(out, b",\"quote_volume\":", c.quote_volume);
        out.extend_from_slice(b",\"trades\":");
        match c.trades {
            Some(n) => write_u64(out, n),
            None => out.extend_from_slice(b"null"),
        }
        opt_dec(out, b",\"taker_buy_base\":", c.taker_buy_base);
        opt_dec(out, b",\"taker_buy_quote\":", c.taker_buy_quote);
    }
    out.push(b'}');
}

/// A JSON array of candle objects.
pub fn candles_json<'a>(
    rows: impl IntoIterator<Item = (&'a Candle, CandleKind)>,
    full: bool,
) -> Vec<u8> {
    candles_json_with(full, |push| rows.into_iter().for_each(|(c, k)| push(c, k)))
}

/// [`candles_json`] of the candles `fill` hands, in order, to the function it is given (for
/// sources that visit their candles rather than iterate them).
pub fn candles_json_with(
    full: bool,
    fill: impl FnOnce(&mut dyn FnMut(&Candle, CandleKind)),
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'[');
    fill(&mut |c, kind| {
        if out.len() > 1 {
            out.push(b',');
        }
        candle_json(&mut out, c, kind, full);
    });
    out.push(b']');
    out
}

/// The newest `times.len()` official candles of a series as of `gen`, rendered with `full`,
/// each object followed by a comma (held by a [`ChartCache`](crate::chart_cache::ChartCache)).
pub(crate) struct Window {
    pub gen: u64,
    pub full: bool,
    pub times: Vec<i64>,
    /// `ends[i]`: where candle `i`'s text (with its comma) ends; it starts at `ends[i - 1]`.
    pub ends: Vec<u32>,
    pub text: Vec<u8>,
}

impl Window {
    pub fn new(gen: u64, full: bool) -> Window {
        Window {
            gen,
            full,
            times: Vec::new(),
            ends: Vec::new(),
            text: Vec::new(),
        }
    }

    pub fn start_of(&self, i: usize) -> usize {
        match i.checked_sub(1) {
            Some(p) => self.ends.get(p).map_or(0, |&e| e as usize),
            None => 0,
        }
    }

    /// Appends a candle newer than every cached one. False (nothing added) when the text
    /// would outgrow its u32 offsets.
    pub fn push(&mut self, c: &Candle) -> bool {
        let before = self.text.len();
        candle_json(&mut self.text, c, CandleKind::Official, self.full);
        self.text.push(b',');
        match u32::try_from(self.text.len()) {
            Ok(end) => {
                self.times.push(c.open_time);
                self.ends.push(end);
                true
            }
            Err(_) => {
                self.text.truncate(before);
                false
            }
        }
    }

    /// Keeps only the newest `keep` candles.
    pub fn keep_newest(&mut self, keep: usize) {
        let drop = self.times.len().saturating_sub(keep);
        if drop == 0 {
            return;
        }
        let cut = self.start_of(drop);
        self.text.drain(..cut);
        self.times.drain(..drop);
        self.ends.drain(..drop);
        let cut = cut as u32;
        for e in &mut self.ends {
            *e -= cut;
        }
    }

    /// Returns the buffers' spare capacity when it exceeds an eighth of their length.
    pub fn shrink(&mut self) {
        if self.text.capacity() > self.text.len() + self.text.len() / 8 {
            self.text.shrink_to_fit();
            self.times.shrink_to_fit();
            self.ends.shrink_to_fit();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.times.capacity() * 8 + self.ends.capacity() * 4
    }
}

/// A field of a cached candle: a decimal's text, an integer, or absent (`null`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    Text(&'a [u8]),
    Int(i64),
    Null,
}

/// The fields of one official candle read back from the text [`candle_json`] wrote for the
/// chart cache, in reply order: open time, open, high, low, close, volume, then with `FULL`
/// close time, quote volume, trades, taker buy base, taker buy quote. Reading our own text
/// back costs a scan of ~130 bytes, where decoding a candle from its chunk and formatting
/// its decimals costs several times that (RESP chart loads).
pub struct CachedCandle<'a> {
    rest: &'a [u8],
    field: usize,
}

/// The index of the first `"` in `s`, eight bytes at a time (the strings are decimals of
/// 1-40 bytes).
#[inline]
fn find_quote(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(word) = s.get(at..at + 8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(word);
        // Bytes equal to '"' become zero; the lowest zero byte is the first quote (the
        // borrow in the subtraction only runs upwards, so lower bytes are exact).
        let x = u64::from_le_bytes(b) ^ (ONES * u64::from(b'"'));
        let z = x.wrapping_sub(ONES) & !x & HIGHS;
        if z != 0 {
            return Some(at + (z.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    s.get(at..)?.iter().position(|&b| b == b'"').map(|i| at + i)
}

/// What precedes each field's value in [`candle_json`]'s text, in order.
const NAMES: [&[u8]; 12] = [
    b"{\"open_time\":",
    b",\"open\":",
    b",\"high\":",
    b",\"low\":",
    b",\"close\":",
    b",\"volume\":",
    b",\"status\":",
    b",\"close_time\":",
    b",\"quote_volume\":",
    b",\"trades\":",
    b",\"taker_buy_base\":",
    b",\"taker_buy_quote\":",
];

impl<'a> CachedCandle<'a> {
    pub fn new(text: &'a [u8]) -> CachedCandle<'a> {
        CachedCandle {
            rest: text,
            field: 0,
        }
    }

    /// Past the next field's name (a compare with the known text, no scan; word loads, not a
    /// `memcmp` call, for these 7-19 bytes).
    fn skip_name(&mut self) -> Option<()> {
        let name = NAMES.get(self.field)?;
        if !eq_short(self.rest.get(..name.len())?, name) {
            return None;
        }
        self.rest = self.rest.get(name.len()..)?;
        self.field += 1;
        Some(())
    }

    /// The next field; None when the text ends (or is not what `candle_json` writes).
    pub fn next_field(&mut self) -> Option<Field<'a>> {
        self.skip_name()?;
        match *self.rest.first()? {
            b'"' => {
                let body = self.rest.get(1..)?;
                let q = find_quote(body)?;
                self.rest = body.get(q + 1..)?;
                Some(Field::Text(body.get(..q)?))
            }
            b'n' => {
                self.rest = self.rest.get(4..)?;
                Some(Field::Null)
            }
            _ => {
                let (neg, digits) = match self.rest.split_first()? {
                    (b'-', d) => (true, d),
                    _ => (false, self.rest),
                };
                // Eight digits at a time (a time has 13); beyond u64 (21 digits or more,
                // or a 20-digit value above u64::MAX) is not our text.
                let (mut v, mut n) = swar::digits(digits, 0);
                while n % 8 == 0 && n > 0 {
                    let (d, k) = swar::digits(digits, n);
                    if k == 0 {
                        break;
                    }
                    let p = swar::POW10_U64.get(k).copied()?;
                    v = v.checked_mul(p)?.checked_add(d)?;
                    n += k;
                }
                self.rest = digits.get(n..)?;
                // Times are i64; a trade count (u64) above i64::MAX wraps as the decoded
                // candle's reply does (`n as i64`).
                Some(Field::Int(if neg {
                    0i64.checked_sub_unsigned(v)?
                } else {
                    v as i64
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_display() {
        let mut vals: Vec<Dec> = [
            "0",
            "0.1",
            "-0.1",
            "1",
            "-1",
            "10",
            "99",
            "100",
            "0.00000001",
            "56714.01000000",
            "12345678901234567890",
            "-98765.4321",
            "0.000",
            "1000000.5",
            "123456789012345678901234567.12345678",
        ]
        .iter()
        .map(|s| Dec::parse(s).unwrap())
        .collect();
        let mut rng = crate::test_rng::XorShift(0x9e37_79b9_7f4a_7c15);
        for i in 0..5000u32 {
            let x = rng.next();
            let m = (x >> (i % 60)) as i128 * if i % 3 == 0 { -1 } else { 1 };
            let m = if i % 7 == 0 {
                m * 1_000_000_000_000_000
            } else {
                m
            };
            if let Ok(d) = Dec::new(m, (i % 19) as u8) {
                vals.push(d);
            }
        }
        for d in vals {
            let mut out = Vec::new();
            write_dec(&mut out, d);
            assert_eq!(String::from_utf8(out).unwrap(), d.to_string(), "{d:?}");
        }
        for v in [
            0i64,
            1,
            -1,
            9,
            10,
            99,
            100,
            101,
            i64::MAX,
            i64::MIN,
            1725416820000,
        ] {
            let mut out = Vec::new();
            write_i64(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
    }

    #[test]
    fn window_keeps_newest() {
        let c = |t: i64| {
            let d = Dec::parse("1.5").unwrap();
            Candle::ohlcv(t, d, d, d, d, d)
        };
        let mut w = Window::new(0, false);
        for t in 0..10 {
            assert!(w.push(&c(t * 60_000)));
        }
        w.keep_newest(4);
        assert_eq!(w.times, vec![360_000, 420_000, 480_000, 540_000]);
        let mut expect = Vec::new();
        for t in &w.times {
            candle_json(&mut expect, &c(*t), CandleKind::Official, false);
            expect.push(b',');
            assert_eq!(
                w.ends[w.times.iter().position(|x| x == t).unwrap()] as usize,
                expect.len()
            );
        }
        assert_eq!(w.text, expect);
        let text = String::from_utf8(w.text[w.start_of(3)..].to_vec()).unwrap();
        assert!(text.starts_with("{\"open_time\":540000,"), "{text}");
        assert!(text.ends_with("},"));
    }

    #[test]
    fn find_quote_finds_the_first() {
        for len in 0..40 {
            for q in 0..=len {
                let mut s = vec![b'7'; len];
                if q < len {
                    s[q] = b'"';
                    if q + 3 < len {
                        s[q + 3] = b'"';
                    }
                }
                assert_eq!(find_quote(&s), (q < len).then_some(q), "{len} {q}");
            }
        }
        assert_eq!(find_quote(b"\xa2\x22"), Some(1));
    }

    #[test]
    fn cached_text_reads_back() {
        let mut rng = crate::test_rng::XorShift(0x5eed);
        let dec = |rng: &mut crate::test_rng::XorShift| {
            let x = rng.next();
            Dec::new((x >> (x % 60)) as i128 - (1 << 20), (x % 12) as u8).unwrap()
        };
        for i in 0..2000 {
            let mut c = Candle::ohlcv(
                (rng.next() >> 20) as i64 - if i % 5 == 0 { 1 << 40 } else { 0 },
                dec(&mut rng),
                dec(&mut rng),
                dec(&mut rng),
                dec(&mut rng),
                dec(&mut rng),
            );
            if i % 3 != 0 {
                c.close_time = Some(c.open_time + 59_999);
                c.quote_volume = Some(dec(&mut rng));
                c.trades = Some(if i % 97 == 0 {
                    u64::MAX
                } else {
                    rng.next() >> (i % 64)
                });
                c.taker_buy_base = (i % 4 != 1).then(|| dec(&mut rng));
                c.taker_buy_quote = Some(dec(&mut rng));
            }
            for full in [false, true] {
                let mut text = Vec::new();
                candle_json(&mut text, &c, CandleKind::Official, full);
                let mut r = CachedCandle::new(&text);
                let mut got = Vec::new();
                while let Some(f) = r.next_field() {
                    got.push(f);
                }
                let d = |d: Dec| d.to_string().into_bytes();
                let mut want: Vec<Vec<u8>> = vec![c.open_time.to_string().into_bytes()];
                want.extend([c.open, c.high, c.low, c.close, c.volume].map(d));
                want.push(b"official".to_vec());
                if full {
                    let od = |v: Option<Dec>| v.map_or(b"null".to_vec(), d);
                    let oi = |v: Option<i128>| {
                        v.map_or(b"null".to_vec(), |v| v.to_string().into_bytes())
                    };
                    want.push(oi(c.close_time.map(i128::from)));
                    want.push(od(c.quote_volume));
                    want.push(oi(c.trades.map(|n| i128::from(n as i64))));
                    want.push(od(c.taker_buy_base));
                    want.push(od(c.taker_buy_quote));
                }
                let got: Vec<Vec<u8>> = got
                    .iter()
                    .map(|f| match f {
                        Field::Text(t) => t.to_vec(),
                        Field::Int(v) => v.to_string().into_bytes(),
                        Field::Null => b"null".to_vec(),
                    })
                    .collect();
                assert_eq!(got, want, "{}", String::from_utf8_lossy(&text));
            }
        }
    }
}
