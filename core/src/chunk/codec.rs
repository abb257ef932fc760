//! Columnar encoding of one sealed chunk (1..=CHUNK_MAX candles, strictly ascending times),
//! as a single LSB-first bit stream:
//!
//! ```text
//! num n
//! num zigzag(t0), series(t[i] - t[i-1])                       -- open times (1 bit if regular)
//! 5 x presence (2 bits: none / all / bitmap)                  -- close_time qv trades tbb tbq
//! prices: bit raw?                                            -- common scale S for o h l c:
//!   scaled: 8 bits S, num zigzag(o0), series(o[i] - c[i-1]), series(c - o),
//!           series(h - max(o, c)), series(min(o, c) - l)
//!   raw:    4 x raw column (series of scales, series of mantissas)
//! volume:   dec column                                        -- bit raw?, 8 bits S, series(m)
//! close_time: series(ct - t)                                  -- constant for fixed intervals
//! quote_volume: dec column of m - volume * (high + low) / 2
//! trades:   series
//! taker_buy_base: dec column
//! taker_buy_quote: dec column of m - taker_buy_base * quote_volume / volume
//! ```
//!
//! Predictions are deterministic integer functions of already-decoded fields (any overflow
//! makes them 0), and all differences wrap, so every `Dec` (up to i128 mantissas) round-trips.

use super::bits::{
    corrupt, get_series, put_series, unzigzag, zigzag, BitReader, BitWriter, SeriesScratch,
};
use crate::candle::Candle;
use crate::decimal::Dec;
use crate::error::CoreResult;

/// Most candles in one sealed chunk.
pub const CHUNK_MAX: usize = 256;

const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

#[inline]
fn pow10(n: u32) -> Option<i128> {
    POW10.get(n as usize).copied()
}

/// `a * b`, or `None` on overflow: one widening multiply when both fit in 64 bits (the
/// product of two i64 always fits in i128), else `checked_mul` (a slow library call).
#[inline]
fn mul(a: i128, b: i128) -> Option<i128> {
    if let (Ok(x), Ok(y)) = (i64::try_from(a), i64::try_from(b)) {
        return Some(i128::from(x) * i128::from(y));
    }
    a.checked_mul(b)
}

/// Truncating `a / b`, in 64 bits when both fit (i128 division is a slow library call).
#[inline]
fn div(a: i128, b: i128) -> Option<i128> {
    if b == 1 {
        return Some(a);
    }
    if let (Ok(x), Ok(y)) = (i64::try_from(a), i64::try_from(b)) {
        if let Some(q) = x.checked_div(y) {
            return Some(i128::from(q));
        }
    }
    a.checked_div(b)
}

/// `d`'s mantissa at scale `s >= d.scale()`.
#[inline]
fn at_scale(d: Dec, s: u8) -> Option<i128> {
    let diff = s.checked_sub(d.scale())?;
    if diff == 0 {
        return Some(d.mantissa());
    }
    mul(d.mantissa(), pow10(u32::from(diff))?)
}

/// `num / den`, a value at scale `ns`, expressed at scale `target` (truncated).
fn div_at(num: i128, den: i128, ns: i32, target: i32) -> Option<i128> {
    if target >= ns {
        div(mul(num, pow10(u32::try_from(target - ns).ok()?)?)?, den)
    } else {
        div(num, mul(den, pow10(u32::try_from(ns - target).ok()?)?)?)
    }
}

/// `base * (high + low) / 2` at scale `s`.
fn mid_price_times(c: &Candle, base: Dec, s: u8) -> Option<i128> {
    let sp = c.high.scale().max(c.low.scale());
    let hl = at_scale(c.high, sp)?.checked_add(at_scale(c.low, sp)?)?;
    let n = mul(base.mantissa(), hl)?;
    div_at(n, 2, i32::from(base.scale()) + i32::from(sp), i32::from(s))
}

fn predict_qv(c: &Candle, s: u8) -> Option<i128> {
    mid_price_times(c, c.volume, s)
}

fn predict_tbq(c: &Candle, s: u8) -> Option<i128> {
    let tb = c.taker_buy_base?;
    match c.quote_volume {
        Some(q) if c.volume.mantissa() != 0 => {
            let n = mul(tb.mantissa(), q.mantissa())?;
            let ns = i32::from(tb.scale()) + i32::from(q.scale()) - i32::from(c.volume.scale());
            div_at(n, c.volume.mantissa(), ns, i32::from(s))
        }
        _ => mid_price_times(c, tb, s),
    }
}

/// `base * (high - low)` at scale `s`: the size of `base * (vwap - mid)`.
fn range_times(c: &Candle, base: Dec, s: u8) -> Option<i128> {
    let sp = c.high.scale().max(c.low.scale());
    let hl = at_scale(c.high, sp)?.checked_sub(at_scale(c.low, sp)?)?;
    let n = mul(base.mantissa(), hl)?;
    div_at(n, 1, i32::from(base.scale()) + i32::from(sp), i32::from(s))
}

fn hint_qv(c: &Candle, s: u8) -> Option<i128> {
    range_times(c, c.volume, s)
}

fn hint_tbq(c: &Candle, s: u8) -> Option<i128> {
    range_times(c, c.taker_buy_base?, s)
}

fn predict_tbb(c: &Candle, s: u8) -> Option<i128> {
    div_at(
        c.volume.mantissa(),
        2,
        i32::from(c.volume.scale()),
        i32::from(s),
    )
}

fn hint_tbb(c: &Candle, s: u8) -> Option<i128> {
    div_at(
        c.volume.mantissa(),
        1,
        i32::from(c.volume.scale()),
        i32::from(s),
    )
}

fn hint_bits(h: Option<i128>) -> u32 {
    h.map_or(0, |h| super::bits::bitlen(h.unsigned_abs()))
}

struct Scratch {
    vals: Vec<i128>,
    us: SeriesScratch,
    aux: Vec<i128>,
    hints: Vec<u32>,
    /// Price rows.
    rows: Vec<[i128; 4]>,
    /// Decoding only: presence flags.
    has: [Vec<bool>; 5],
    all: Vec<bool>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch {
            vals: Vec::with_capacity(n),
            us: SeriesScratch::default(),
            aux: Vec::with_capacity(n),
            hints: Vec::with_capacity(n),
            rows: Vec::new(),
            has: Default::default(),
            all: Vec::new(),
        }
    }
}

type Pred = fn(&Candle, u8) -> Option<i128>;

const PLAIN: Model = Model {
    pred: None,
    hint: None,
};
const QV: Model = Model {
    pred: Some(predict_qv),
    hint: Some(hint_qv),
};
const TBB: Model = Model {
    pred: Some(predict_tbb),
    hint: Some(hint_tbb),
};
const TBQ: Model = Model {
    pred: Some(predict_tbq),
    hint: Some(hint_tbq),
};

/// How a decimal column is modelled: a prediction and a magnitude hint for its residuals.
#[derive(Clone, Copy, Default)]
struct Model {
    pred: Option<Pred>,
    hint: Option<Pred>,
}

fn put_presence(w: &mut BitWriter, cs: &[Candle], has: impl Fn(&Candle) -> bool) {
    let cnt = cs.iter().filter(|c| has(c)).count();
    if cnt == 0 {
        w.bits(0, 2);
    } else if cnt == cs.len() {
        w.bits(1, 2);
    } else {
        w.bits(2, 2);
        for c in cs {
            w.bit(has(c));
        }
    }
}

fn get_presence(r: &mut BitReader, n: usize, out: &mut Vec<bool>) -> CoreResult<()> {
    out.clear();
    match r.bits(2)? {
        0 => out.resize(n, false),
        1 => out.resize(n, true),
        2 => {
            for _ in 0..n {
                out.push(r.bit()?);
            }
        }
        _ => return Err(corrupt("bad presence mode")),
    }
    Ok(())
}

/// A decimal column over the candles where `get` is Some.
fn put_dec_col(
    w: &mut BitWriter,
    cs: &[Candle],
    get: fn(&Candle) -> Option<Dec>,
    model: Model,
    sc: &mut Scratch,
) {
    let s = cs
        .iter()
        .filter_map(get)
        .map(|d| d.scale())
        .max()
        .unwrap_or(0);
    sc.vals.clear();
    sc.hints.clear();
    let mut ok = true;
    for c in cs {
        if let Some(d) = get(c) {
            match at_scale(d, s) {
                Some(m) => {
                    let p = model.pred.and_then(|f| f(c, s)).unwrap_or(0);
                    sc.vals.push(m.wrapping_sub(p));
                    if let Some(h) = model.hint {
                        sc.hints.push(hint_bits(h(c, s)));
                    }
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
    }
    w.bit(!ok);
    if ok {
        w.bits(u64::from(s), 8);
        let hints = model.hint.map(|_| sc.hints.as_slice());
        put_series(w, &sc.vals, &mut sc.us, hints);
    } else {
        put_raw_col(w, cs.iter().filter_map(get), sc);
    }
}

fn put_raw_col(w: &mut BitWriter, ds: impl Iterator<Item = Dec> + Clone, sc: &mut Scratch) {
    sc.vals.clear();
    sc.vals.extend(ds.clone().map(|d| i128::from(d.scale())));
    put_series(w, &sc.vals, &mut sc.us, None);
    sc.vals.clear();
    sc.vals.extend(ds.map(|d| d.mantissa()));
    put_series(w, &sc.vals, &mut sc.us, None);
}

fn get_raw_col(
    r: &mut BitReader,
    m: usize,
    sc: &mut Scratch,
    out: &mut Vec<Dec>,
) -> CoreResult<()> {
    get_series(r, m, &mut sc.aux, None)?;
    get_series(r, m, &mut sc.vals, None)?;
    out.clear();
    for (s, mant) in sc.aux.iter().zip(sc.vals.iter()) {
        out.push(make_dec(
            *mant,
            u8::try_from(*s).map_err(|_| corrupt("bad scale"))?,
        )?);
    }
    Ok(())
}

#[inline]
fn make_dec(m: i128, s: u8) -> CoreResult<Dec> {
    // Strip trailing zeros cheaply in u64 when possible; Dec::new then does one check.
    let (mut m, mut s) = (m, s);
    if s > 0 && m != 0 {
        if let Ok(mut u) = i64::try_from(m) {
            while s > 0 && u % 10 == 0 {
                u /= 10;
                s -= 1;
            }
            m = i128::from(u);
        }
    }
    Dec::new(m, s).map_err(|_| corrupt("bad decimal scale"))
}

/// Decodes a decimal column into the candles where `has` is true, via `set`.
fn get_dec_col(
    r: &mut BitReader,
    cs: &mut [Candle],
    has: &[bool],
    set: fn(&mut Candle, Dec),
    model: Model,
    sc: &mut Scratch,
) -> CoreResult<()> {
    let m = has.iter().filter(|&&h| h).count();
    let raw = r.bit()?;
    if raw {
        let mut ds = Vec::with_capacity(m);
        get_raw_col(r, m, sc, &mut ds)?;
        let mut it = ds.into_iter();
        for (c, _) in cs.iter_mut().zip(has).filter(|(_, &h)| h) {
            set(c, it.next().ok_or_else(|| corrupt("column too short"))?);
        }
        return Ok(());
    }
    let s = u8::try_from(r.bits(8)?).map_err(|_| corrupt("bad scale"))?;
    sc.hints.clear();
    if let Some(h) = model.hint {
        for (c, _) in cs.iter().zip(has).filter(|(_, &h)| h) {
            sc.hints.push(hint_bits(h(c, s)));
        }
    }
    let hints = model.hint.map(|_| sc.hints.as_slice());
    get_series(r, m, &mut sc.vals, hints)?;
    let mut it = sc.vals.iter();
    for (c, _) in cs.iter_mut().zip(has).filter(|(_, &h)| h) {
        let res = *it.next().ok_or_else(|| corrupt("column too short"))?;
        let p = model.pred.and_then(|f| f(c, s)).unwrap_or(0);
        set(c, make_dec(res.wrapping_add(p), s)?);
    }
    Ok(())
}

fn put_prices(w: &mut BitWriter, cs: &[Candle], sc: &mut Scratch) {
    let s = cs
        .iter()
        .map(|c| {
            c.open
                .scale()
                .max(c.high.scale())
                .max(c.low.scale())
                .max(c.close.scale())
        })
        .max()
        .unwrap_or(0);
    // The reused row buffer is taken out while `sc` lends its other buffers, and given back
    // whichever way `put_price_rows` returns.
    let mut rows = std::mem::take(&mut sc.rows);
    rows.clear();
    put_price_rows(w, cs, s, &mut rows, sc);
    sc.rows = rows;
}

fn put_price_rows(
    w: &mut BitWriter,
    cs: &[Candle],
    s: u8,
    rows: &mut Vec<[i128; 4]>,
    sc: &mut Scratch,
) {
    for c in cs {
        match (
            at_scale(c.open, s),
            at_scale(c.high, s),
            at_scale(c.low, s),
            at_scale(c.close, s),
        ) {
            (Some(o), Some(h), Some(l), Some(cl)) => rows.push([o, h, l, cl]),
            _ => {
                w.bit(true);
                put_raw_col(w, cs.iter().map(|c| c.open), sc);
                put_raw_col(w, cs.iter().map(|c| c.high), sc);
                put_raw_col(w, cs.iter().map(|c| c.low), sc);
                put_raw_col(w, cs.iter().map(|c| c.close), sc);
                return;
            }
        }
    }
    w.bit(false);
    w.bits(u64::from(s), 8);
    let Some(&[o0, ..]) = rows.first() else {
        return;
    };
    w.num(zigzag(o0));
    sc.vals.clear();
    sc.vals.extend(
        rows.iter()
            .zip(rows.iter().skip(1))
            .map(|(p, q)| q[0].wrapping_sub(p[3])),
    );
    put_series(w, &sc.vals, &mut sc.us, None);
    sc.vals.clear();
    sc.vals
        .extend(rows.iter().map(|&[o, _, _, c]| c.wrapping_sub(o)));
    put_series(w, &sc.vals, &mut sc.us, None);
    sc.vals.clear();
    sc.vals
        .extend(rows.iter().map(|&[o, h, _, c]| h.wrapping_sub(o.max(c))));
    put_series(w, &sc.vals, &mut sc.us, None);
    sc.vals.clear();
    sc.vals
        .extend(rows.iter().map(|&[o, _, l, c]| o.min(c).wrapping_sub(l)));
    put_series(w, &sc.vals, &mut sc.us, None);
}

fn get_prices(r: &mut BitReader, cs: &mut [Candle], sc: &mut Scratch) -> CoreResult<()> {
    let n = cs.len();
    if r.bit()? {
        let mut ds = Vec::with_capacity(n);
        let setters: [fn(&mut Candle, Dec); 4] = [
            |c, d| c.open = d,
            |c, d| c.high = d,
            |c, d| c.low = d,
            |c, d| c.close = d,
        ];
        for set in setters {
            get_raw_col(r, n, sc, &mut ds)?;
            for (c, d) in cs.iter_mut().zip(ds.iter()) {
                set(c, *d);
            }
        }
        return Ok(());
    }
    let s = u8::try_from(r.bits(8)?).map_err(|_| corrupt("bad scale"))?;
    let o0 = unzigzag(r.num()?);
    let mut rows = std::mem::take(&mut sc.rows);
    rows.clear();
    rows.resize(n, [0; 4]);
    let res = get_price_rows(r, cs, o0, s, &mut rows, sc);
    sc.rows = rows;
    res
}

fn get_price_rows(
    r: &mut BitReader,
    cs: &mut [Candle],
    o0: i128,
    s: u8,
    rows: &mut [[i128; 4]],
    sc: &mut Scratch,
) -> CoreResult<()> {
    let n = cs.len();
    // open vs previous close needs close, so read the four series first.
    get_series(r, n - 1, &mut sc.aux, None)?;
    get_series(r, n, &mut sc.vals, None)?;
    let mut prev_close = 0i128;
    let mut opens = std::iter::once(o0).chain(sc.aux.iter().copied());
    for (i, (row, &dc)) in rows.iter_mut().zip(sc.vals.iter()).enumerate() {
        let d = opens
            .next()
            .ok_or_else(|| corrupt("price column too short"))?;
        let o = if i == 0 {
            d
        } else {
            d.wrapping_add(prev_close)
        };
        let c = dc.wrapping_add(o);
        *row = [o, 0, 0, c];
        prev_close = c;
    }
    get_series(r, n, &mut sc.vals, None)?;
    for (row, &dh) in rows.iter_mut().zip(sc.vals.iter()) {
        row[1] = dh.wrapping_add(row[0].max(row[3]));
    }
    get_series(r, n, &mut sc.vals, None)?;
    for (row, &dl) in rows.iter_mut().zip(sc.vals.iter()) {
        row[2] = row[0].min(row[3]).wrapping_sub(dl);
    }
    // `make_dec` depends on the mantissa alone (one scale): a price equal to one already
    // made (open = previous close, high or low at the body, a flat candle) reuses it.
    let mut prev: Option<(i128, Dec)> = None;
    for (c, &[o, h, l, cl]) in cs.iter_mut().zip(rows.iter()) {
        let od = match prev {
            Some((m, d)) if m == o => d,
            _ => make_dec(o, s)?,
        };
        let cd = if cl == o { od } else { make_dec(cl, s)? };
        let same = |m: i128| {
            if m == o {
                Some(od)
            } else if m == cl {
                Some(cd)
            } else {
                None
            }
        };
        c.high = match same(h) {
            Some(d) => d,
            None => make_dec(h, s)?,
        };
        c.low = match same(l) {
            Some(d) => d,
            None => make_dec(l, s)?,
        };
        c.open = od;
        c.close = cd;
        prev = Some((cl, cd));
    }
    Ok(())
}

/// Encodes a non-empty, strictly ascending slice of at most [`CHUNK_MAX`] candles.
pub fn encode_chunk(cs: &[Candle]) -> Vec<u8> {
    encode_chunk_with(cs, &mut |_, _| {})
}

/// Bits spent on each section of the chunk encoding of `cs` (for measurements).
pub fn section_bits(cs: &[Candle]) -> Vec<(&'static str, usize)> {
    let mut v = Vec::new();
    let mut last = 0usize;
    encode_chunk_with(cs, &mut |name, bits| {
        v.push((name, bits - last));
        last = bits;
    });
    v
}

/// Encodes with the column buffers reused from one call to the next on the same thread.
fn encode_chunk_with(cs: &[Candle], mark: &mut dyn FnMut(&'static str, usize)) -> Vec<u8> {
    with_scratch(|sc| encode_chunk_sc(cs, mark, sc))
}

thread_local! {
    /// Column buffers of the encoder and decoder, reused by the calls on one thread.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::new(CHUNK_MAX));
}

/// `f` with this thread's [`Scratch`], or a fresh one when it is in use (re-entered) or
/// gone (thread teardown).
fn with_scratch<T: Default>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    let mut f = Some(f);
    let mut run = |sc: &mut Scratch| f.take().map(|f| f(sc));
    let res = SCRATCH.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut sc) => run(&mut sc),
        Err(_) => run(&mut Scratch::new(CHUNK_MAX)),
    });
    // `run` yields `None` only once `f` has run, so the default is never used.
    res.ok()
        .flatten()
        .or_else(|| run(&mut Scratch::new(CHUNK_MAX)))
        .unwrap_or_default()
}

fn encode_chunk_sc(
    cs: &[Candle],
    mark: &mut dyn FnMut(&'static str, usize),
    sc: &mut Scratch,
) -> Vec<u8> {
    debug_assert!(!cs.is_empty() && cs.len() <= CHUNK_MAX);
    let mut w = BitWriter::with_capacity(cs.len() * 24 + 64);
    w.num(cs.len() as u128);
    let t0 = cs.first().map_or(0, |c| c.open_time);
    w.num(zigzag(i128::from(t0)));
    sc.vals.clear();
    sc.vals.extend(
        cs.iter()
            .zip(cs.iter().skip(1))
            .map(|(a, b)| i128::from(b.open_time) - i128::from(a.open_time)),
    );
    put_series(&mut w, &sc.vals, &mut sc.us, None);
    mark("open_time", w.bit_len());

    put_presence(&mut w, cs, |c| c.close_time.is_some());
    put_presence(&mut w, cs, |c| c.quote_volume.is_some());
    put_presence(&mut w, cs, |c| c.trades.is_some());
    put_presence(&mut w, cs, |c| c.taker_buy_base.is_some());
    put_presence(&mut w, cs, |c| c.taker_buy_quote.is_some());

    mark("presence", w.bit_len());
    put_prices(&mut w, cs, sc);
    mark("prices", w.bit_len());
    put_dec_col(&mut w, cs, |c| Some(c.volume), PLAIN, sc);
    mark("volume", w.bit_len());
    sc.vals.clear();
    sc.vals.extend(cs.iter().filter_map(|c| {
        c.close_time
            .map(|ct| i128::from(ct) - i128::from(c.open_time))
    }));
    put_series(&mut w, &sc.vals, &mut sc.us, None);
    mark("close_time", w.bit_len());
    put_dec_col(&mut w, cs, |c| c.quote_volume, QV, sc);
    mark("quote_volume", w.bit_len());
    sc.vals.clear();
    sc.vals
        .extend(cs.iter().filter_map(|c| c.trades.map(i128::from)));
    put_series(&mut w, &sc.vals, &mut sc.us, None);
    mark("trades", w.bit_len());
    put_dec_col(&mut w, cs, |c| c.taker_buy_base, TBB, sc);
    mark("taker_buy_base", w.bit_len());
    put_dec_col(&mut w, cs, |c| c.taker_buy_quote, TBQ, sc);
    mark("taker_buy_quote", w.bit_len());
    w.finish()
}

fn read_times(r: &mut BitReader, sc: &mut Scratch) -> CoreResult<Vec<i64>> {
    let n = usize::try_from(r.num()?).map_err(|_| corrupt("bad count"))?;
    if n == 0 || n > CHUNK_MAX {
        return Err(corrupt("bad chunk length"));
    }
    let t0 = i64::try_from(unzigzag(r.num()?)).map_err(|_| corrupt("bad first time"))?;
    get_series(r, n - 1, &mut sc.vals, None)?;
    let mut ts = Vec::with_capacity(n);
    ts.push(t0);
    let mut t = t0;
    for &d in &sc.vals {
        if d <= 0 {
            return Err(corrupt("times not ascending"));
        }
        // A gap may exceed i64 (i64::MIN .. i64::MAX); the time itself may not.
        t = i128::from(t)
            .checked_add(d)
            .and_then(|x| i64::try_from(x).ok())
            .ok_or_else(|| corrupt("time overflow"))?;
        ts.push(t);
    }
    Ok(ts)
}

/// Only the open times of a chunk (they come first).
pub fn decode_times(data: &[u8]) -> CoreResult<Vec<i64>> {
    let mut sc = Scratch::new(0);
    read_times(&mut BitReader::new(data), &mut sc)
}

/// Decodes a whole chunk; every bit must be accounted for.
///
/// The column buffers are reused from one call to the next on the same thread.
pub fn decode_chunk(data: &[u8]) -> CoreResult<Vec<Candle>> {
    let mut out = Vec::new();
    decode_chunk_into(data, &mut out)?;
    Ok(out)
}

/// [`decode_chunk`] appending to `out` (left as it was on error).
pub fn decode_chunk_into(data: &[u8], out: &mut Vec<Candle>) -> CoreResult<()> {
    let start = out.len();
    let res = match SCRATCH.try_with(|sc| match sc.try_borrow_mut() {
        Ok(mut sc) => Some(decode_chunk_with(BitReader::new(data), data, &mut sc, out)),
        Err(_) => None,
    }) {
        Ok(Some(res)) => res,
        _ => decode_chunk_with(
            BitReader::new(data),
            data,
            &mut Scratch::new(CHUNK_MAX),
            out,
        ),
    };
    if res.is_err() {
        out.truncate(start);
    }
    res
}

/// Decodes with the buffers of `sc` (the presence flags are taken out while decoding: an
/// error drops them, and the next call allocates new ones).
fn decode_chunk_with(
    mut r: BitReader,
    data: &[u8],
    sc: &mut Scratch,
    out: &mut Vec<Candle>,
) -> CoreResult<()> {
    let mut has = std::mem::take(&mut sc.has);
    let mut all = std::mem::take(&mut sc.all);
    let ts = read_times(&mut r, sc)?;
    let n = ts.len();
    let start = out.len();
    out.reserve(n);
    out.extend(
        ts.iter()
            .map(|&t| Candle::ohlcv(t, Dec::ZERO, Dec::ZERO, Dec::ZERO, Dec::ZERO, Dec::ZERO)),
    );
    let cs = out.get_mut(start..).unwrap_or(&mut []);
    for h in has.iter_mut() {
        get_presence(&mut r, n, h)?;
    }
    let [has_ct, has_qv, has_tr, has_tbb, has_tbq] = &has;
    get_prices(&mut r, cs, sc)?;
    all.clear();
    all.resize(n, true);
    get_dec_col(&mut r, cs, &all, |c, d| c.volume = d, PLAIN, sc)?;

    get_series(
        &mut r,
        has_ct.iter().filter(|&&h| h).count(),
        &mut sc.vals,
        None,
    )?;
    let mut it = sc.vals.iter();
    for (c, _) in cs.iter_mut().zip(has_ct).filter(|(_, &h)| h) {
        let d = *it.next().ok_or_else(|| corrupt("column too short"))?;
        let ct =
            i64::try_from(i128::from(c.open_time) + d).map_err(|_| corrupt("bad close time"))?;
        c.close_time = Some(ct);
    }
    get_dec_col(&mut r, cs, has_qv, |c, d| c.quote_volume = Some(d), QV, sc)?;
    get_series(
        &mut r,
        has_tr.iter().filter(|&&h| h).count(),
        &mut sc.vals,
        None,
    )?;
    let mut it = sc.vals.iter();
    for (c, _) in cs.iter_mut().zip(has_tr).filter(|(_, &h)| h) {
        let v = *it.next().ok_or_else(|| corrupt("column too short"))?;
        c.trades = Some(u64::try_from(v).map_err(|_| corrupt("bad trade count"))?);
    }
    get_dec_col(
        &mut r,
        cs,
        has_tbb,
        |c, d| c.taker_buy_base = Some(d),
        TBB,
        sc,
    )?;
    get_dec_col(
        &mut r,
        cs,
        has_tbq,
        |c, d| c.taker_buy_quote = Some(d),
        TBQ,
        sc,
    )?;
    if r.bytes_used() != data.len() {
        return Err(corrupt("trailing bytes"));
    }
    sc.has = has;
    sc.all = all;
    Ok(())
}

// ---- tail rows: byte-aligned LEB128, cheap to append ----

pub fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn get_varint(b: &[u8], pos: &mut usize) -> CoreResult<u128> {
    let mut v = 0u128;
    let mut shift = 0u32;
    loop {
        let byte = *b.get(*pos).ok_or_else(|| corrupt("truncated varint"))?;
        *pos += 1;
        let low = u128::from(byte & 0x7f);
        if shift >= 128 || (shift > 121 && (low >> (128 - shift)) != 0) {
            return Err(corrupt("varint overflows"));
        }
        v |= low << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
}

fn put_row_dec(out: &mut Vec<u8>, d: Dec) {
    out.push(d.scale());
    put_varint(out, zigzag(d.mantissa()));
}

fn get_row_dec(b: &[u8], pos: &mut usize) -> CoreResult<Dec> {
    get_row_dec_rel(b, pos, Dec::ZERO)
}

/// `d` as a difference from `base` at their common scale when that fits, else absolute.
fn put_row_dec_rel(out: &mut Vec<u8>, d: Dec, base: Dec) {
    let s = d.scale().max(base.scale());
    match (at_scale(d, s), at_scale(base, s)) {
        (Some(m), Some(bm)) => {
            out.push(0x80 | s);
            put_varint(out, zigzag(m.wrapping_sub(bm)));
        }
        _ => put_row_dec(out, d),
    }
}

fn get_row_dec_rel(b: &[u8], pos: &mut usize, base: Dec) -> CoreResult<Dec> {
    let tag = *b.get(*pos).ok_or_else(|| corrupt("truncated row"))?;
    *pos += 1;
    let v = unzigzag(get_varint(b, pos)?);
    if tag & 0x80 == 0 {
        return make_dec(v, tag);
    }
    let s = tag & 0x7f;
    let bm = at_scale(base, s).ok_or_else(|| corrupt("bad relative decimal"))?;
    make_dec(bm.wrapping_add(v), s)
}

/// Appends one row; `prev` is the previous row's open time (0 for the first).
pub fn put_row(out: &mut Vec<u8>, c: &Candle, prev: i64) {
    put_varint(out, zigzag(i128::from(c.open_time) - i128::from(prev)));
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
        put_varint(out, zigzag(i128::from(ct) - i128::from(c.open_time)));
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
    let t = i64::try_from(i128::from(prev) + unzigzag(get_varint(b, pos)?))
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
        let d = unzigzag(get_varint(b, pos)?);
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
    Ok(out)
}

pub fn encode_rows(cs: &[Candle], out: &mut Vec<u8>) {
    let mut prev = 0i64;
    for c in cs {
        put_row(out, c, prev);
        prev = c.open_time;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_is_checked_mul() {
        let mut rng = crate::test_rng::XorShift(0x0f1e_2d3c_4b5a_6978);
        let mut vals: Vec<i128> = vec![
            0,
            1,
            -1,
            i64::MAX.into(),
            i64::MIN.into(),
            i128::from(i64::MAX) + 1,
            i128::from(i64::MIN) - 1,
            i128::MAX,
            i128::MIN,
            1 << 64,
            -(1 << 64),
        ];
        for _ in 0..3_000 {
            let x = rng.next();
            let v = ((x as i128) << (x % 66)) >> (x % 7);
            vals.push(if x & 1 == 0 { v } else { -v });
        }
        for &a in &vals {
            for &b in vals.iter().step_by(7) {
                assert_eq!(mul(a, b), a.checked_mul(b), "{a} * {b}");
            }
        }
    }

    use crate::test_rng::XorShift as Rng;

    /// The chunk as the general 128-bit series path alone writes it.
    fn encode_chunk_wide(cs: &[Candle]) -> Vec<u8> {
        let mut sc = Scratch::new(cs.len());
        sc.us.wide_only = true;
        encode_chunk_sc(cs, &mut |_, _| {}, &mut sc)
    }

    fn fixture(name: &str) -> Vec<Candle> {
        let path = format!(
            "{}/../../shared/fixtures/binance/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        crate::binance::parse_klines(&std::fs::read(path).unwrap())
            .unwrap()
            .into_iter()
            .map(|k| k.candle)
            .collect()
    }

    fn dec(r: &mut Rng, base: i128) -> Dec {
        let scale = match r.below(8) {
            0 => r.below(25) as u8,
            1..=3 => 8,
            _ => 2,
        };
        let mant = match r.below(30) {
            0 => 0,
            1 => i128::MAX - r.below(3) as i128,
            2 => i128::MIN + r.below(3) as i128,
            3 => 10i128.pow(36) - 1 - r.below(1000) as i128,
            4 => (1i128 << 62) - r.below(3) as i128,
            5 => (r.next() >> r.below(64)) as i128,
            _ => base + r.below(10_000) as i128 - 5_000,
        };
        Dec::new(mant, scale).unwrap()
    }

    fn candles(r: &mut Rng, n: usize, wild: bool) -> Vec<Candle> {
        let mut t = 1_600_000_000_000i64;
        let mut price = 5_000_000i128;
        (0..n)
            .map(|_| {
                t += 60_000 * (1 + i64::from(r.below(10) == 0));
                let mut c = if wild {
                    let mut c = Candle::ohlcv(
                        t,
                        dec(r, price),
                        dec(r, price),
                        dec(r, price),
                        dec(r, price),
                        dec(r, price * 100),
                    );
                    if r.below(4) > 0 {
                        c.quote_volume = Some(dec(r, price * 1000));
                        c.taker_buy_base = Some(dec(r, price * 50));
                    }
                    if r.below(4) > 0 {
                        c.taker_buy_quote = Some(dec(r, price * 500));
                        c.trades = Some(r.next() >> r.below(64));
                    }
                    c
                } else {
                    let d = |m: i128, s: u8| Dec::new(m, s).unwrap();
                    let o = price;
                    let cl = o + r.below(2001) as i128 - 1000;
                    price = cl;
                    let (h, l) = (o.max(cl) + r.below(500) as i128, o.min(cl) - 7);
                    let v = r.below(50_000_000) as i128;
                    let mut c = Candle::ohlcv(t, d(o, 2), d(h, 2), d(l, 2), d(cl, 2), d(v, 5));
                    c.quote_volume = Some(d(v * (h + l) / 2 + r.below(1000) as i128, 7));
                    c.trades = Some(r.below(5000));
                    c.taker_buy_base = Some(d(v / 2, 5));
                    c.taker_buy_quote = Some(d(v / 2 * o, 7));
                    c
                };
                if r.below(3) > 0 {
                    c.close_time = Some(t + 59_999);
                }
                c
            })
            .collect()
    }

    /// The chunk decoded with the reference Rice decoder.
    fn decode_chunk_ref(data: &[u8]) -> CoreResult<Vec<Candle>> {
        let mut r = BitReader::new(data);
        r.reference = true;
        let mut out = Vec::new();
        decode_chunk_with(r, data, &mut Scratch::new(CHUNK_MAX), &mut out)?;
        Ok(out)
    }

    /// Chunks to test codecs on: each real fixture in full chunks and in `small.1` chunks of
    /// `small.0` candles, then `random` chunks of random and extreme candles (every other
    /// one with mantissas up to i128).
    fn chunk_sets(r: &mut Rng, small: (usize, usize), random: usize) -> Vec<Vec<Candle>> {
        let mut sets: Vec<Vec<Candle>> = Vec::new();
        for f in [
            "rest_klines_BTCUSDT_1m_limit1000.json",
            "rest_klines_BTCUSDT_5m_limit1000.json",
            "rest_klines_BTCUSDT_15m_limit1000.json",
        ] {
            let cs = fixture(f);
            sets.extend(cs.chunks(CHUNK_MAX).map(<[Candle]>::to_vec));
            sets.extend(cs.chunks(small.0).take(small.1).map(<[Candle]>::to_vec));
        }
        for i in 0..random {
            let n = 1 + r.below(CHUNK_MAX as u64) as usize;
            sets.push(candles(r, n, i % 2 == 0));
        }
        sets
    }

    /// Fixture chunks, random and extreme candles (mantissas up to i128, so the 128-bit
    /// paths), then the same bytes truncated and corrupted: the decoder gives what the
    /// reference decoder gives (the same candles, or an error for both), and never panics.
    #[test]
    fn decoder_matches_reference() {
        let mut r = Rng(0xdec0_de00_0c0f_fee5);
        let sets = chunk_sets(&mut r, (5, 10), 200);
        for cs in &sets {
            let bytes = encode_chunk(cs);
            assert_eq!(decode_chunk(&bytes).as_ref().ok(), Some(cs));
            assert_eq!(decode_chunk_ref(&bytes).as_ref().ok(), Some(cs));
            for _ in 0..20 {
                let mut b = bytes.clone();
                match r.below(4) {
                    0 => b.truncate(r.below(b.len() as u64) as usize),
                    1 => {
                        let i = r.below(b.len() as u64) as usize;
                        b[i] ^= 1 << r.below(8);
                    }
                    2 => {
                        let i = r.below(b.len() as u64) as usize;
                        b[i] = r.next() as u8;
                        b.truncate(i + 1 + r.below(8) as usize);
                    }
                    _ => b.push(r.next() as u8),
                }
                let (x, y) = (decode_chunk(&b), decode_chunk_ref(&b));
                assert_eq!(x.is_ok(), y.is_ok());
                // Appending: after what is there, which an error leaves alone.
                let mut into = cs[..1].to_vec();
                let z = decode_chunk_into(&b, &mut into);
                assert_eq!(z.is_ok(), x.is_ok());
                assert_eq!(into[..1], cs[..1]);
                assert_eq!(
                    into.get(1..).map(<[Candle]>::to_vec),
                    x.as_ref().ok().cloned().or(Some(vec![]))
                );
                assert_eq!(x.ok(), y.ok());
            }
        }
    }

    #[test]
    fn fast_paths_encode_the_bytes_of_the_general_path() {
        let mut r = Rng(0x5eed_0fc0_ffee);
        let sets = chunk_sets(&mut r, (7, 20), 300);
        for cs in &sets {
            let bytes = encode_chunk(cs);
            assert_eq!(bytes, encode_chunk_wide(cs));
            assert_eq!(&decode_chunk(&bytes).unwrap(), cs);
        }
    }
}
