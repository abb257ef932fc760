//! Binary encoding primitives (LEB128 varints, zig-zag) and the candle record codec, shared by
//! RDB persistence, replication effects and AOF rewrite. Decoding never panics and never
//! trusts a length it has not checked against the remaining input.

use crate::candle::Candle;
use crate::decimal::{Dec, MAX_SCALE};
use crate::error::{CoreError, CoreResult};

use crate::varint::{self, zigzag, zigzag128};
pub use crate::varint::{put_bytes, put_i128, put_i64, put_u128, put_u64};

pub fn put_dec(out: &mut Vec<u8>, d: Dec) {
    out.push(d.scale());
    put_i128(out, d.mantissa());
}

/// Most bytes `put_candle` writes: flags, 3 varints of up to 10 bytes, 8 decimals of up to
/// 1 + 19 bytes.
const MAX_CANDLE_BYTES: usize = 1 + 3 * 10 + 8 * 20;

/// Varints written whole: a value below 2^56 is at most 8 bytes, built in a register (its
/// 7-bit groups spread to bytes, continuation bits set) and appended as one 8-byte store,
/// then cut to its length. No loop or branch per byte.
mod word {
    /// The bytes of the varint of `v` (`v < 2^56`) as a little-endian word: its 7-bit groups
    /// one per byte, continuation bits not yet set.
    #[inline(always)]
    fn spread(v: u64) -> u64 {
        // 28-bit halves to 32-bit lanes, then 14-bit quarters to 16-bit lanes, then 7-bit
        // groups to bytes.
        let x = (v & 0x0fff_ffff) | ((v << 4) & 0x0fff_ffff_0000_0000);
        let x = (x & 0x0000_3fff_0000_3fff) | ((x << 2) & 0x3fff_0000_3fff_0000);
        (x & 0x007f_007f_007f_007f) | ((x << 1) & 0x7f00_7f00_7f00_7f00)
    }

    /// By leading zero count of a value below 2^56 (`8..=63`; the table covers every count):
    /// its varint length and the continuation bits of that length (0x80 in every byte but
    /// the last).
    const LEN: [(u8, u64); 65] = {
        let mut t = [(0u8, 0u64); 65];
        let mut lz = 0usize;
        while lz < 65 {
            let n = (64 - lz).div_ceil(7);
            let cont = if n == 0 || n > 8 {
                0
            } else {
                0x8080_8080_8080_8080 & ((1u64 << (8 * (n - 1))) - 1)
            };
            t[lz] = (n as u8, cont);
            lz += 1;
        }
        t
    };

    /// The varint of `v < 2^56` as a word and its length (1..=8).
    #[inline(always)]
    pub(super) fn varint(v: u64) -> (u64, usize) {
        // `v | 1` has at most 63 leading zeros: always an entry.
        let (n, cont) = LEN
            .get((v | 1).leading_zeros() as usize)
            .copied()
            .unwrap_or((1, 0));
        let x = if v < 1 << 28 {
            // Four groups at most: two steps, on 32-bit constants.
            let x = (v & 0x3fff) | ((v << 2) & 0x3fff_0000);
            (x & 0x007f_007f) | ((x << 1) & 0x7f00_7f00)
        } else {
            spread(v)
        };
        (x | cont, n as usize)
    }
}

/// Records gathered on the stack before they are appended to the output at once: one
/// copy per batch of ~20 candles instead of one call per record.
const RECORDS_BYTES: usize = 2048;

/// The most a batching [`CandleBuf`] holds: a record started below [`RECORDS_BYTES`], whole.
const BUF_LIMIT: usize = RECORDS_BYTES + MAX_CANDLE_BYTES;

/// Candle records built on the stack, a word at a time, then appended at once: `LIMIT`
/// bytes of records at most ([`MAX_CANDLE_BYTES`] for one record, [`BUF_LIMIT`] for a batch).
struct CandleBuf<const LIMIT: usize, const SIZE: usize> {
    /// Records up to `LIMIT` bytes, plus room for a word stored at their end (`SIZE` is
    /// `LIMIT + 8`).
    buf: [u8; SIZE],
    at: usize,
}

/// The buffer of one record.
type OneRecord = CandleBuf<MAX_CANDLE_BYTES, { MAX_CANDLE_BYTES + 8 }>;
/// The buffer of a batch of records.
type Records = CandleBuf<BUF_LIMIT, { BUF_LIMIT + 8 }>;

impl<const LIMIT: usize, const SIZE: usize> CandleBuf<LIMIT, SIZE> {
    fn new() -> Self {
        CandleBuf {
            buf: [0; SIZE],
            at: 0,
        }
    }

    /// Appends the first `n <= 8` bytes of `w` (little-endian).
    #[inline(always)]
    fn word(&mut self, w: u64, n: usize) {
        // `at` never exceeds LIMIT (a batch's records start below RECORDS_BYTES): the `min`
        // changes nothing but proves the store in bounds.
        let at = self.at.min(LIMIT);
        if let Some(d) = self.buf.get_mut(at..at + 8) {
            d.copy_from_slice(&w.to_le_bytes());
        }
        self.at = at + n;
    }

    /// `put_u64` of `v` after the byte `first`.
    #[inline(always)]
    fn byte_u64(&mut self, first: u8, v: u64) {
        if v < 1 << 49 {
            // The byte and a varint of at most 7 bytes: one word.
            let (w, n) = word::varint(v);
            self.word(u64::from(first) | w << 8, n + 1);
        } else {
            self.word(u64::from(first), 1);
            self.u64(v);
        }
    }

    /// `put_u64`.
    #[inline(always)]
    fn u64(&mut self, v: u64) {
        if v < 1 << 56 {
            let (w, n) = word::varint(v);
            self.word(w, n);
        } else {
            self.u128(u128::from(v));
        }
    }

    /// `put_u128` (for values of 57 bits and more: rare).
    #[cold]
    #[inline(never)]
    fn u128(&mut self, mut v: u128) {
        // Eight groups at a time (all continued: more follow), then the last word.
        while v >= 1 << 56 {
            let (w, _) = word::varint(v as u64 & ((1 << 56) - 1));
            self.word(w | 0x8080_8080_8080_8080, 8);
            v >>= 56;
        }
        let (w, n) = word::varint(v as u64);
        self.word(w, n);
    }

    /// A candle's record (see `put_candle`).
    #[inline(always)]
    fn candle(&mut self, c: &Candle) {
        self.byte_u64(presence_flags(c), zigzag(c.open_time));
        for d in [&c.open, &c.high, &c.low, &c.close, &c.volume] {
            self.dec(*d);
        }
        if let Some(ct) = c.close_time {
            self.u64(zigzag(ct - c.open_time));
        }
        if let Some(d) = c.quote_volume {
            self.dec(d);
        }
        if let Some(n) = c.trades {
            self.u64(n);
        }
        if let Some(d) = c.taker_buy_base {
            self.dec(d);
        }
        if let Some(d) = c.taker_buy_quote {
            self.dec(d);
        }
        debug_assert!(self.at <= LIMIT);
    }

    /// `put_dec`: the scale, then the zig-zag varint of the mantissa (computed in 64 bits
    /// when the mantissa fits: the same value, so the same bytes).
    #[inline(always)]
    fn dec(&mut self, d: Dec) {
        match i64::try_from(d.mantissa()) {
            Ok(m) => self.byte_u64(d.scale(), zigzag(m)),
            Err(_) => {
                self.word(u64::from(d.scale()), 1);
                self.u128(zigzag128(d.mantissa()));
            }
        }
    }
}

/// A cursor over untrusted bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn varint_err(e: varint::VarintError) -> CoreError {
    match e {
        varint::VarintError::Truncated => truncated(),
        varint::VarintError::Overflow => CoreError::corrupt("varint too long"),
    }
}

fn truncated() -> CoreError {
    CoreError::corrupt("truncated encoding")
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn u8(&mut self) -> CoreResult<u8> {
        let b = *self.buf.get(self.pos).ok_or_else(truncated)?;
        self.pos += 1;
        Ok(b)
    }
    pub fn u64(&mut self) -> CoreResult<u64> {
        varint::get_u64(self.buf, &mut self.pos).map_err(varint_err)
    }
    pub fn i64(&mut self) -> CoreResult<i64> {
        varint::get_i64(self.buf, &mut self.pos).map_err(varint_err)
    }
    pub fn u128(&mut self) -> CoreResult<u128> {
        varint::get_u128(self.buf, &mut self.pos).map_err(varint_err)
    }
    pub fn i128(&mut self) -> CoreResult<i128> {
        varint::get_i128(self.buf, &mut self.pos).map_err(varint_err)
    }
    pub fn dec(&mut self) -> CoreResult<Dec> {
        let scale = self.u8()?;
        if scale > MAX_SCALE {
            return Err(CoreError::corrupt("decimal scale out of range"));
        }
        let m = self.i128()?;
        Dec::new(m, scale).map_err(|_| CoreError::corrupt("bad decimal"))
    }
    /// A count of items each at least `min_item_bytes` long: refuses counts the input can't hold.
    pub fn count(&mut self, min_item_bytes: usize) -> CoreResult<usize> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| CoreError::corrupt("count too large"))?;
        if n.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(CoreError::corrupt("count exceeds payload"));
        }
        Ok(n)
    }
    pub fn bytes(&mut self) -> CoreResult<&'a [u8]> {
        let n = self.count(1)?;
        let s = self.buf.get(self.pos..self.pos + n).ok_or_else(truncated)?;
        self.pos += n;
        Ok(s)
    }
}

const HAS_CLOSE_TIME: u8 = 1;
const HAS_QUOTE_VOLUME: u8 = 2;
const HAS_TRADES: u8 = 4;
const HAS_TAKER_BASE: u8 = 8;
const HAS_TAKER_QUOTE: u8 = 16;
/// Smallest encoded candle: flags + time + five 2-byte decimals.
pub const MIN_CANDLE_BYTES: usize = 12;

/// Which optional kline fields a candle carries.
fn presence_flags(c: &Candle) -> u8 {
    let mut flags = 0;
    for (bit, present) in [
        (HAS_CLOSE_TIME, c.close_time.is_some()),
        (HAS_QUOTE_VOLUME, c.quote_volume.is_some()),
        (HAS_TRADES, c.trades.is_some()),
        (HAS_TAKER_BASE, c.taker_buy_base.is_some()),
        (HAS_TAKER_QUOTE, c.taker_buy_quote.is_some()),
    ] {
        if present {
            flags |= bit;
        }
    }
    flags
}

pub fn put_candle(out: &mut Vec<u8>, c: &Candle) {
    let mut b = OneRecord::new();
    b.candle(c);
    out.extend_from_slice(b.buf.get(..b.at).unwrap_or(&b.buf));
}

/// `put_candle` of each candle in turn, through one record buffer, zeroed once (a record is
/// read back only as far as it was written), appended to `out` every ~2 KB of records. A
/// few candles (a stream's write, a derived level's bucket) are written one record at a
/// time: zeroing the batch buffer would cost more than they do.
pub fn put_candles<'a>(out: &mut Vec<u8>, candles: impl IntoIterator<Item = &'a Candle>) {
    let candles = candles.into_iter();
    if candles.size_hint().1.is_some_and(|n| n <= 4) {
        for c in candles {
            put_candle(out, c);
        }
        return;
    }
    let mut b = Records::new();
    for c in candles {
        b.candle(c);
        if b.at >= RECORDS_BYTES {
            out.extend_from_slice(b.buf.get(..b.at).unwrap_or(&b.buf));
            b.at = 0;
        }
    }
    out.extend_from_slice(b.buf.get(..b.at).unwrap_or(&b.buf));
}

/// `put_candle` field by field with the `put_*` functions (the reference for tests).
#[cfg(test)]
fn put_candle_ref(out: &mut Vec<u8>, c: &Candle) {
    let flags = presence_flags(c);
    out.push(flags);
    put_i64(out, c.open_time);
    for d in [c.open, c.high, c.low, c.close, c.volume] {
        put_dec(out, d);
    }
    if let Some(ct) = c.close_time {
        put_i64(out, ct - c.open_time);
    }
    if let Some(d) = c.quote_volume {
        put_dec(out, d);
    }
    if let Some(n) = c.trades {
        put_u64(out, n);
    }
    if let Some(d) = c.taker_buy_base {
        put_dec(out, d);
    }
    if let Some(d) = c.taker_buy_quote {
        put_dec(out, d);
    }
}

pub fn get_candle(r: &mut Reader<'_>) -> CoreResult<Candle> {
    let flags = r.u8()?;
    if flags & !0x1f != 0 {
        return Err(CoreError::corrupt("unknown candle flags"));
    }
    let open_time = r.i64()?;
    let (open, high, low, close, volume) = (r.dec()?, r.dec()?, r.dec()?, r.dec()?, r.dec()?);
    let close_time = if flags & HAS_CLOSE_TIME != 0 {
        Some(
            open_time
                .checked_add(r.i64()?)
                .ok_or_else(|| CoreError::corrupt("close time overflow"))?,
        )
    } else {
        None
    };
    let quote_volume = if flags & HAS_QUOTE_VOLUME != 0 {
        Some(r.dec()?)
    } else {
        None
    };
    let trades = if flags & HAS_TRADES != 0 {
        Some(r.u64()?)
    } else {
        None
    };
    let taker_buy_base = if flags & HAS_TAKER_BASE != 0 {
        Some(r.dec()?)
    } else {
        None
    };
    let taker_buy_quote = if flags & HAS_TAKER_QUOTE != 0 {
        Some(r.dec()?)
    } else {
        None
    };
    Ok(Candle {
        open_time,
        open,
        high,
        low,
        close,
        volume,
        close_time,
        quote_volume,
        trades,
        taker_buy_base,
        taker_buy_quote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut out = Vec::new();
        let vals = [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN];
        for v in vals {
            put_i64(&mut out, v);
        }
        put_i128(&mut out, i128::MAX);
        put_i128(&mut out, i128::MIN);
        let mut r = Reader::new(&out);
        for v in vals {
            assert_eq!(r.i64().unwrap(), v);
        }
        assert_eq!(r.i128().unwrap(), i128::MAX);
        assert_eq!(r.i128().unwrap(), i128::MIN);
        assert!(r.is_empty());
        assert!(Reader::new(&[0xff; 20]).u64().is_err());
        assert!(Reader::new(&[0xff]).u64().is_err());
    }

    /// The stack-built record is the field-by-field one, for every mantissa size (the
    /// largest record included).
    #[test]
    fn candle_record_is_the_field_by_field_encoding() {
        let mut rng = crate::test_rng::XorShift(0x1357_9bdf_2468_ace0);
        let mut mants: Vec<i128> = vec![
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            i64::MAX.into(),
            i64::MIN.into(),
            i128::from(i64::MAX) + 1,
            i128::from(i64::MIN) - 1,
            i128::MAX,
            i128::MIN,
        ];
        for _ in 0..5_000 {
            let x = rng.next();
            let v = ((x as i128) << (x % 70)) >> (x % 13);
            mants.push(if x & 1 == 0 { v } else { -v });
        }
        let times = [0, 1, -1, i64::MAX, i64::MIN, 1_725_416_820_000];
        for (i, &m) in mants.iter().enumerate() {
            let d = |k: usize| {
                Dec::new(mants[(i + k) % mants.len()], (i % 25) as u8).unwrap_or(Dec::ZERO)
            };
            let t = times[i % times.len()];
            let mut c = Candle::ohlcv(t, Dec::new(m, 24).unwrap(), d(1), d(2), d(3), d(4));
            if i % 3 > 0 {
                c.close_time = Some(t.wrapping_add(i as i64) / 2);
                c.quote_volume = Some(d(5));
                c.trades = Some(rng.0.wrapping_mul(i as u64) >> (i % 64));
                c.taker_buy_base = Some(d(6));
                c.taker_buy_quote = Some(d(7));
            }
            if c.close_time.is_some_and(|ct| ct.checked_sub(t).is_none()) {
                c.close_time = Some(t);
            }
            let (mut fast, mut slow) = (vec![9u8], vec![9u8]);
            put_candle(&mut fast, &c);
            put_candle_ref(&mut slow, &c);
            assert_eq!(fast, slow, "{c:?}");
        }
        let max = Dec::new(i128::MIN, 24).unwrap();
        let mut c = Candle::ohlcv(i64::MIN, max, max, max, max, max);
        c.close_time = Some(i64::MAX);
        c.close_time = Some(i64::MIN + 1);
        c.quote_volume = Some(max);
        c.trades = Some(u64::MAX);
        c.taker_buy_base = Some(max);
        c.taker_buy_quote = Some(max);
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        put_candle(&mut fast, &c);
        put_candle_ref(&mut slow, &c);
        assert_eq!(fast, slow);
        assert!(fast.len() <= MAX_CANDLE_BYTES);
    }

    /// `put_candles` writes the records `put_candle` writes, one after the other, whether it
    /// takes them one at a time (a few) or through the batch buffer (more, across flushes).
    #[test]
    fn put_candles_is_put_candle_of_each() {
        let rows = crate::binance::parse_klines(&candles_testkit::fixtures::bytes(
            "rest_klines_BTCUSDT_1m_limit1000.json",
        ))
        .unwrap();
        let cs: Vec<Candle> = rows.into_iter().map(|k| k.candle).collect();
        for n in [0, 1, 2, 4, 5, 6, 60, 1000] {
            let (mut batch, mut each) = (vec![7u8], vec![7u8]);
            put_candles(&mut batch, &cs[..n]);
            for c in &cs[..n] {
                put_candle(&mut each, c);
            }
            assert_eq!(batch, each, "{n} candles");
        }
    }

    /// The word-at-a-time varints are `put_u64`'s, at every length.
    #[test]
    fn word_varints_are_put_u64() {
        let mut rng = crate::test_rng::XorShift(0x2468_ace0_1357_9bdf);
        for bits in 0..=64u32 {
            for _ in 0..200 {
                let v = rng.next().checked_shr(64 - bits).unwrap_or(0);
                let first = rng.next() as u8;
                let mut b = OneRecord::new();
                b.u64(v);
                b.byte_u64(first, v);
                let mut r = Vec::new();
                put_u64(&mut r, v);
                r.push(first);
                put_u64(&mut r, v);
                assert_eq!(&b.buf[..b.at], &r[..], "{v}");
            }
        }
    }

    #[test]
    fn candles_round_trip_and_truncation_fails_cleanly() {
        let k = crate::binance::parse_klines(br#"[1725416820000,"56714.00000000","56714.01000000","56634.00000000","56642.00000000","11.02444000",1725416879999,"624782.95032640",1425,"2.24261000","127055.79808400","0"]"#).unwrap();
        let c = &k[0].candle;
        let mut out = Vec::new();
        put_candle(&mut out, c);
        assert_eq!(&get_candle(&mut Reader::new(&out)).unwrap(), c);
        for n in 0..out.len() {
            assert!(get_candle(&mut Reader::new(&out[..n])).is_err());
        }
    }
}
