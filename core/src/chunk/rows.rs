//! The tail rows of a chunked store: candles newer than every sealed chunk, kept as
//! byte-aligned rows of LEB128 varints ([`crate::varint`]) so appending the newest candle is
//! a few byte writes, not a chunk re-encode.

use super::codec::make_dec;
use super::corrupt;
use super::model::at_scale;
use crate::candle::Candle;
use crate::decimal::Dec;
use crate::error::CoreResult;
use crate::varint::{self, unzigzag128, zigzag128};

/// A varint of up to 128 bits (the row fields and the store's counts).
pub fn put_varint(out: &mut Vec<u8>, v: u128) {
    varint::put_u128(out, v);
}

/// Reads a [`put_varint`], its errors reported as a corrupt chunk.
pub fn get_varint(b: &[u8], pos: &mut usize) -> CoreResult<u128> {
    varint::get_u128(b, pos).map_err(|e| corrupt(e.as_str()))
}

fn put_row_dec(out: &mut Vec<u8>, d: Dec) {
    out.push(d.scale());
    put_varint(out, zigzag128(d.mantissa()));
}

fn get_row_dec(b: &[u8], pos: &mut usize) -> CoreResult<Dec> {
    get_row_dec_rel(b, pos, Dec::ZERO)
}

/// `d` as a difference from `base` at their common scale when that fits, else absolute.
fn put_row_dec_rel(out: &mut Vec<u8>, d: Dec, base: Dec) {
    let s = d.scale().max(base.scale());
    match (at_scale::<i128>(d, s), at_scale::<i128>(base, s)) {
        (Some(m), Some(bm)) => {
            out.push(0x80 | s);
            put_varint(out, zigzag128(m.wrapping_sub(bm)));
        }
        _ => put_row_dec(out, d),
    }
}

fn get_row_dec_rel(b: &[u8], pos: &mut usize, base: Dec) -> CoreResult<Dec> {
    let tag = *b.get(*pos).ok_or_else(|| corrupt("truncated row"))?;
    *pos += 1;
    let v = unzigzag128(get_varint(b, pos)?);
    if tag & 0x80 == 0 {
        return make_dec(v, tag);
    }
    let s = tag & 0x7f;
    let bm = at_scale::<i128>(base, s).ok_or_else(|| corrupt("bad relative decimal"))?;
    make_dec(bm.wrapping_add(v), s)
}

/// Appends one row; `prev` is the previous row's open time (0 for the first).
pub fn put_row(out: &mut Vec<u8>, c: &Candle, prev: i64) {
    put_varint(out, zigzag128(i128::from(c.open_time) - i128::from(prev)));
    let flags = u8::from(c.close_time.is_some())
        | u8::from(c.quote_volume.is_some()) << 1
        | u8::from(c.trades.is_some()) << 2
        | u8::from(c.taker_buy_base.is_some()) << 3
        | u8::from(c.taker_buy_quote.is_some()) << 4;
    out.push(flags);
    put_row_dec(out, c.open);
    for d in [c.high, c.low, c.close] {
        put_row_dec_rel(out, d, c.open);
    }
    put_row_dec(out, c.volume);
    if let Some(ct) = c.close_time {
        put_varint(out, zigzag128(i128::from(ct) - i128::from(c.open_time)));
    }
    if let Some(q) = c.quote_volume {
        put_row_dec(out, q);
    }
    if let Some(t) = c.trades {
        put_varint(out, u128::from(t));
    }
    if let Some(d) = c.taker_buy_base {
        put_row_dec(out, d);
    }
    if let Some(d) = c.taker_buy_quote {
        put_row_dec(out, d);
    }
}

pub fn get_row(b: &[u8], pos: &mut usize, prev: i64) -> CoreResult<Candle> {
    let t = i64::try_from(i128::from(prev) + unzigzag128(get_varint(b, pos)?))
        .map_err(|_| corrupt("bad row time"))?;
    let flags = *b.get(*pos).ok_or_else(|| corrupt("truncated row"))?;
    *pos += 1;
    if flags >> 5 != 0 {
        return Err(corrupt("bad row flags"));
    }
    let o = get_row_dec(b, pos)?;
    let h = get_row_dec_rel(b, pos, o)?;
    let l = get_row_dec_rel(b, pos, o)?;
    let cl = get_row_dec_rel(b, pos, o)?;
    let mut c = Candle::ohlcv(t, o, h, l, cl, get_row_dec(b, pos)?);
    if flags & 1 != 0 {
        let d = unzigzag128(get_varint(b, pos)?);
        c.close_time =
            Some(i64::try_from(i128::from(t) + d).map_err(|_| corrupt("bad close time"))?);
    }
    if flags & 2 != 0 {
        c.quote_volume = Some(get_row_dec(b, pos)?);
    }
    if flags & 4 != 0 {
        c.trades =
            Some(u64::try_from(get_varint(b, pos)?).map_err(|_| corrupt("bad trade count"))?);
    }
    if flags & 8 != 0 {
        c.taker_buy_base = Some(get_row_dec(b, pos)?);
    }
    if flags & 16 != 0 {
        c.taker_buy_quote = Some(get_row_dec(b, pos)?);
    }
    Ok(c)
}

/// Decodes `n` rows that must use up `b` exactly and be strictly ascending.
pub fn decode_rows(b: &[u8], n: usize) -> CoreResult<Vec<Candle>> {
    let mut out = Vec::with_capacity(n.min(b.len() / 8 + 1));
    decode_rows_into(b, n, &mut out)?;
    Ok(out)
}

/// [`decode_rows`] appending to `out` (a buffer kept between calls).
pub fn decode_rows_into(b: &[u8], n: usize, out: &mut Vec<Candle>) -> CoreResult<()> {
    let mut pos = 0usize;
    let mut prev: Option<i64> = None;
    for _ in 0..n {
        let c = get_row(b, &mut pos, prev.unwrap_or(0))?;
        if prev.is_some_and(|p| c.open_time <= p) {
            return Err(corrupt("tail rows not ascending"));
        }
        prev = Some(c.open_time);
        out.push(c);
    }
    if pos != b.len() {
        return Err(corrupt("trailing tail bytes"));
    }
    Ok(())
}

pub fn encode_rows(cs: &[Candle], out: &mut Vec<u8>) {
    let mut prev = 0i64;
    for c in cs {
        put_row(out, c, prev);
        prev = c.open_time;
    }
}
