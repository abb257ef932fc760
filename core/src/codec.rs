//! Binary encoding primitives (LEB128 varints, zig-zag) and the candle record codec, shared by
//! RDB persistence, replication effects and AOF rewrite. Decoding never panics and never
//! trusts a length it has not checked against the remaining input.

use crate::candle::Candle;
use crate::decimal::{Dec, MAX_SCALE};
use crate::error::{CoreError, CoreResult};

pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub fn put_u128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_i128(out: &mut Vec<u8>, v: i128) {
    put_u128(out, ((v << 1) ^ (v >> 127)) as u128);
}

pub fn put_dec(out: &mut Vec<u8>, d: Dec) {
    out.push(d.scale());
    put_i128(out, d.mantissa());
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A cursor over untrusted bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
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
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CoreError::corrupt("varint too long"))
    }
    pub fn i64(&mut self) -> CoreResult<i64> {
        let u = self.u64()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    pub fn u128(&mut self) -> CoreResult<u128> {
        let mut v: u128 = 0;
        for shift in (0..128).step_by(7) {
            let b = self.u8()?;
            v |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CoreError::corrupt("varint too long"))
    }
    pub fn i128(&mut self) -> CoreResult<i128> {
        let u = self.u128()?;
        Ok(((u >> 1) as i128) ^ -((u & 1) as i128))
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

pub fn put_candle(out: &mut Vec<u8>, c: &Candle) {
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
