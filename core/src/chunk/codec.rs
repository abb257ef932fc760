//! Columnar encoding of one sealed chunk (1..=CHUNK_MAX candles, strictly ascending times),
//! as a single LSB-first bit stream:
//!
//! ```text
//! 8 bits 0xF2                                                 -- format 2 (absent: format 1)
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
//! Every series ends in runs of Rice-coded values ([`super::rice`]); in format 2 a run may
//! carry zero flags (one bit per value, only the non-zero values coded), the one difference
//! from format 1, which still decodes.
//!
//! Predictions are deterministic integer functions of already-decoded fields (any overflow
//! makes them 0), and all differences wrap, so every `Dec` (up to i128 mantissas) round-trips.

//!
//! This file holds the layout (columns, presence, prices, encode/decode); the integer
//! arithmetic and the column predictions live in [`super::model`], the series coding in
//! [`super::series`].

use super::bits::{BitReader, BitWriter};
use super::corrupt;
use super::model::{at_scale, hint_bits, predict, Int, Model, Plain, Qv, Tbb, Tbq};
use super::scratch::Scratch;
use super::series::{get_series, put_series, put_series_i64, SeriesScratch};
use crate::candle::Candle;
use crate::decimal::Dec;
use crate::error::CoreResult;
use crate::varint::{unzigzag128, zigzag128};

/// Most candles in one sealed chunk.
pub const CHUNK_MAX: usize = 256;

/// The first byte of a format-2 chunk. A format-1 chunk starts with the 8-bit length of
/// `num n`, 1..=9 for 1 <= n <= CHUNK_MAX, so the two never meet. Format 2 differs from 1
/// only in its runs of values: each carries a zero-flags bit ([`super::rice`]).
const FORMAT2_TAG: u8 = 0xF2;

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
fn put_dec_col<M: Model>(
    w: &mut BitWriter,
    cs: &[Candle],
    get: fn(&Candle) -> Option<Dec>,
    sc: &mut Scratch,
) {
    let s = cs
        .iter()
        .filter_map(get)
        .map(|d| d.scale())
        .max()
        .unwrap_or(0);
    // Nearly always every value fits the 64-bit path; else the reference decides.
    if sc.fast() && put_scaled_col::<i64, M>(w, cs, get, s, sc) {
        return;
    }
    if !put_scaled_col::<i128, M>(w, cs, get, s, sc) {
        w.bit(true);
        put_raw_col(w, cs.iter().filter_map(get), sc);
    }
}

/// The column of the values where `get` is Some, at scale `s`, minus `M`'s prediction: a
/// flag, the scale and the residuals. Writes nothing and returns false when a value or
/// residual does not fit `I` (in `i128`: a value at scale `s` overflows, the raw column).
#[inline]
fn put_scaled_col<I: Int, M: Model>(
    w: &mut BitWriter,
    cs: &[Candle],
    get: fn(&Candle) -> Option<Dec>,
    s: u8,
    sc: &mut Scratch,
) -> bool {
    let b = I::bufs(sc);
    b.vals.clear();
    b.hints.clear();
    for c in cs {
        if let Some(d) = get(c) {
            let Some(r) = at_scale::<I>(d, s).and_then(|m| m.residual(I::of(predict::<M>(c, s))?))
            else {
                return false;
            };
            b.vals.push(r);
            if M::HINTED {
                b.hints.push(hint_bits::<M>(c, s));
            }
        }
    }
    w.bit(false);
    w.bits(u64::from(s), 8);
    let hints = M::HINTED.then_some(b.hints.as_slice());
    I::put_series(w, b.vals, b.us, hints);
    true
}

/// An integer column (time gaps, trade counts): from the 64-bit buffer when every value fits
/// `i64` (nearly always; [`put_series_i64`] writes the bits of [`put_series`]), sparing the
/// 128-bit copy and its narrowing.
fn put_int_col(w: &mut BitWriter, vals: impl Iterator<Item = i128> + Clone, sc: &mut Scratch) {
    if sc.fast() {
        let mut fits = true;
        sc.vals64.clear();
        sc.vals64.extend(vals.clone().map(|v| {
            i64::try_from(v).unwrap_or_else(|_| {
                fits = false;
                0
            })
        }));
        if fits {
            put_series_i64(w, &sc.vals64, &mut sc.us, None);
            return;
        }
    }
    sc.vals.clear();
    sc.vals.extend(vals);
    put_series(w, &sc.vals, &mut sc.us, None);
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
pub(super) fn make_dec(m: i128, s: u8) -> CoreResult<Dec> {
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
fn get_dec_col<M: Model>(
    r: &mut BitReader,
    cs: &mut [Candle],
    has: &[bool],
    set: fn(&mut Candle, Dec),
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
    if M::HINTED {
        for (c, _) in cs.iter().zip(has).filter(|(_, &h)| h) {
            sc.hints.push(hint_bits::<M>(c, s));
        }
    }
    let hints = M::HINTED.then_some(sc.hints.as_slice());
    get_series(r, m, &mut sc.vals, hints)?;
    let mut it = sc.vals.iter();
    for (c, _) in cs.iter_mut().zip(has).filter(|(_, &h)| h) {
        let res = *it.next().ok_or_else(|| corrupt("column too short"))?;
        set(c, make_dec(res.wrapping_add(predict::<M>(c, s)), s)?);
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
    if sc.fast() && put_price_rows::<i64>(w, cs, s, sc) {
        return;
    }
    if !put_price_rows::<i128>(w, cs, s, sc) {
        w.bit(true);
        put_raw_col(w, cs.iter().map(|c| c.open), sc);
        put_raw_col(w, cs.iter().map(|c| c.high), sc);
        put_raw_col(w, cs.iter().map(|c| c.low), sc);
        put_raw_col(w, cs.iter().map(|c| c.close), sc);
    }
}

/// The prices at the common scale `s`: a flag, the scale, the first open and four series.
/// Writes nothing and returns false when a price at `s` does not fit `I` or, in `i64`, is
/// not [`narrow`](Int::narrow) (in `i128`: the raw columns).
fn put_price_rows<I: Int>(w: &mut BitWriter, cs: &[Candle], s: u8, sc: &mut Scratch) -> bool {
    let b = I::bufs(sc);
    b.rows.clear();
    for c in cs {
        match (
            at_scale::<I>(c.open, s),
            at_scale::<I>(c.high, s),
            at_scale::<I>(c.low, s),
            at_scale::<I>(c.close, s),
        ) {
            (Some(o), Some(h), Some(l), Some(cl))
                if o.narrow() && h.narrow() && l.narrow() && cl.narrow() =>
            {
                b.rows.push([o, h, l, cl])
            }
            _ => return false,
        }
    }
    w.bit(false);
    w.bits(u64::from(s), 8);
    let Some(&[o0, ..]) = b.rows.first() else {
        return true;
    };
    w.num(zigzag128(o0.wide()));
    // The differences, wrapping in i128 as the format has them, are exact in narrow i64.
    let rows = &*b.rows;
    put_diffs(w, rows, 1, b.vals, b.us, |p, q| q[0].wsub(p[3]));
    put_diffs(w, rows, 0, b.vals, b.us, |_, &[o, _, _, c]| c.wsub(o));
    put_diffs(w, rows, 0, b.vals, b.us, |_, &[o, h, _, c]| {
        h.wsub(o.max(c))
    });
    put_diffs(w, rows, 0, b.vals, b.us, |_, &[o, _, l, c]| {
        o.min(c).wsub(l)
    });
    true
}

/// The series of `f(rows[i], rows[i + skip])`.
#[inline(always)]
fn put_diffs<I: Int>(
    w: &mut BitWriter,
    rows: &[[I; 4]],
    skip: usize,
    vals: &mut Vec<I>,
    us: &mut SeriesScratch,
    f: impl Fn(&[I; 4], &[I; 4]) -> I,
) {
    vals.clear();
    vals.extend(
        rows.iter()
            .zip(rows.iter().skip(skip))
            .map(|(p, q)| f(p, q)),
    );
    I::put_series(w, vals, us, None);
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
    let o0 = unzigzag128(r.num()?);
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
    w.bits(u64::from(FORMAT2_TAG), 8);
    w.num(cs.len() as u128);
    let t0 = cs.first().map_or(0, |c| c.open_time);
    w.num(zigzag128(i128::from(t0)));
    put_int_col(
        &mut w,
        cs.iter()
            .zip(cs.iter().skip(1))
            .map(|(a, b)| i128::from(b.open_time) - i128::from(a.open_time)),
        sc,
    );
    mark("open_time", w.bit_len());

    put_presence(&mut w, cs, |c| c.close_time.is_some());
    put_presence(&mut w, cs, |c| c.quote_volume.is_some());
    put_presence(&mut w, cs, |c| c.trades.is_some());
    put_presence(&mut w, cs, |c| c.taker_buy_base.is_some());
    put_presence(&mut w, cs, |c| c.taker_buy_quote.is_some());

    mark("presence", w.bit_len());
    put_prices(&mut w, cs, sc);
    mark("prices", w.bit_len());
    put_dec_col::<Plain>(&mut w, cs, |c| Some(c.volume), sc);
    mark("volume", w.bit_len());
    put_int_col(
        &mut w,
        cs.iter().filter_map(|c| {
            c.close_time
                .map(|ct| i128::from(ct) - i128::from(c.open_time))
        }),
        sc,
    );
    mark("close_time", w.bit_len());
    put_dec_col::<Qv>(&mut w, cs, |c| c.quote_volume, sc);
    mark("quote_volume", w.bit_len());
    put_int_col(
        &mut w,
        cs.iter().filter_map(|c| c.trades.map(i128::from)),
        sc,
    );
    mark("trades", w.bit_len());
    put_dec_col::<Tbb>(&mut w, cs, |c| c.taker_buy_base, sc);
    mark("taker_buy_base", w.bit_len());
    put_dec_col::<Tbq>(&mut w, cs, |c| c.taker_buy_quote, sc);
    mark("taker_buy_quote", w.bit_len());
    w.finish()
}

/// Whether `data` is a format-2 chunk (else format 1).
pub(super) fn is_format2(data: &[u8]) -> bool {
    data.first() == Some(&FORMAT2_TAG)
}

/// The open times, after the format tag (none: format 1, which `r` is set to read).
fn read_times(r: &mut BitReader, data: &[u8], sc: &mut Scratch) -> CoreResult<Vec<i64>> {
    if is_format2(data) {
        r.bits(8)?;
    } else {
        r.v1 = true;
    }
    let n = usize::try_from(r.num()?).map_err(|_| corrupt("bad count"))?;
    if n == 0 || n > CHUNK_MAX {
        return Err(corrupt("bad chunk length"));
    }
    let t0 = i64::try_from(unzigzag128(r.num()?)).map_err(|_| corrupt("bad first time"))?;
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

#[cfg(test)]
thread_local! {
    /// Test probe: the chunks decoded on this thread, by the address of their bytes, and
    /// whether whole (`true`) or only their open times.
    pub(super) static DECODED: std::cell::RefCell<Vec<(usize, bool)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Records a decode for the tests' probe (nothing outside tests).
#[inline(always)]
fn probe(data: &[u8], whole: bool) {
    #[cfg(test)]
    DECODED.with(|d| d.borrow_mut().push((data.as_ptr() as usize, whole)));
    #[cfg(not(test))]
    let _ = (data, whole);
}

/// Only the open times of a chunk (they come first).
pub fn decode_times(data: &[u8]) -> CoreResult<Vec<i64>> {
    probe(data, false);
    let mut sc = Scratch::new(0);
    read_times(&mut BitReader::new(data), data, &mut sc)
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
    probe(data, true);
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
    let ts = read_times(&mut r, data, sc)?;
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
    get_dec_col::<Plain>(&mut r, cs, &all, |c, d| c.volume = d, sc)?;

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
    get_dec_col::<Qv>(&mut r, cs, has_qv, |c, d| c.quote_volume = Some(d), sc)?;
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
    get_dec_col::<Tbb>(&mut r, cs, has_tbb, |c, d| c.taker_buy_base = Some(d), sc)?;
    get_dec_col::<Tbq>(&mut r, cs, has_tbq, |c, d| c.taker_buy_quote = Some(d), sc)?;
    if r.bytes_used() != data.len() {
        return Err(corrupt("trailing bytes"));
    }
    sc.has = has;
    sc.all = all;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_rng::XorShift as Rng;

    /// The chunk as the general 128-bit series path alone writes it.
    fn encode_chunk_wide(cs: &[Candle]) -> Vec<u8> {
        let mut sc = Scratch::new(cs.len());
        sc.us.wide_only = true;
        encode_chunk_sc(cs, &mut |_, _| {}, &mut sc)
    }

    fn fixture(name: &str) -> Vec<Candle> {
        crate::binance::parse_klines(&candles_testkit::fixtures::bytes(name))
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

    /// `M`'s predictions and hints (64 bits first, 128 when that does not answer) against
    /// the 128-bit reference, at the column's scale and around it; returns how often the
    /// 64-bit versions answered.
    fn check_model<M: Model>(cs: &[Candle], get: fn(&Candle) -> Option<Dec>) -> usize {
        let col = cs
            .iter()
            .filter_map(get)
            .map(|d| d.scale())
            .max()
            .unwrap_or(0);
        let mut answered = 0;
        for c in cs {
            for s in [col, col.saturating_sub(3), col + 1, col + 9, 0, 24, 30] {
                let want = M::pred::<i128>(c, s);
                if let Some(p) = M::pred::<i64>(c, s) {
                    assert_eq!(want, Some(i128::from(p)), "{c:?} s={s}");
                    answered += 1;
                }
                assert_eq!(predict::<M>(c, s), want.unwrap_or(0), "{c:?} s={s}");
                let want = M::hint::<i128>(c, s);
                if let Some(h) = M::hint::<i64>(c, s) {
                    assert_eq!(want, Some(i128::from(h)), "{c:?} s={s}");
                }
                assert_eq!(
                    hint_bits::<M>(c, s),
                    want.map_or(0, Int::bits),
                    "{c:?} s={s}"
                );
            }
        }
        answered
    }

    #[test]
    fn predictions_match_reference() {
        let mut r = Rng(0x9e3d_1c7a_64b1_7ea5);
        let sets = chunk_sets(&mut r, (CHUNK_MAX, 0), 400);
        let mut answered = [0; 4];
        for cs in &sets {
            answered[0] += check_model::<Qv>(cs, |c| c.quote_volume);
            answered[1] += check_model::<Tbb>(cs, |c| c.taker_buy_base);
            answered[2] += check_model::<Tbq>(cs, |c| c.taker_buy_quote);
            answered[3] += check_model::<Plain>(cs, |c| Some(c.volume));
        }
        // Both paths were exercised (Plain's prediction is 0 in any width; Tbq's product
        // of two volumes mostly overflows i64 on exchange data).
        let total = sets.iter().map(Vec::len).sum::<usize>() * 7;
        assert!(
            answered[..3].iter().all(|&a| a > total / 50 && a < total),
            "{answered:?} of {total}"
        );
        assert!(
            answered[..2].iter().all(|&a| a > total / 4),
            "{answered:?} of {total}"
        );
    }

    /// The chunk as the 128-bit reference paths alone write it (column values, predictions
    /// where the 64-bit versions do not answer, series).
    fn encode_chunk_reference(cs: &[Candle]) -> Vec<u8> {
        let mut sc = Scratch::new(cs.len());
        sc.us.wide_only = true;
        sc.reference = true;
        encode_chunk_sc(cs, &mut |_, _| {}, &mut sc)
    }

    #[test]
    fn narrow_columns_encode_the_bytes_of_the_reference() {
        let mut r = Rng(0x64b1_75c0_1d00_0001);
        let mut sets = chunk_sets(&mut r, (11, 20), 400);
        // Mantissas at the edges of the 64-bit paths (+-2^62, +-2^63), alone or with
        // predictions, in random fields of random candles.
        for _ in 0..300 {
            let n = 1 + r.below(40) as usize;
            let wild = r.below(2) == 0;
            let mut cs = candles(&mut r, n, wild);
            for c in &mut cs {
                for _ in 0..r.below(6) {
                    let edge = [1i128 << 62, (1 << 63) - 1, 1 << 61][r.below(3) as usize];
                    let m = (edge - r.below(3) as i128) * [1, -1][r.below(2) as usize];
                    // Mostly the scale of the non-wild prices, so the chunk's scale stays.
                    let d = Dec::new(m, [0, 2, 2, 2][r.below(4) as usize]).unwrap();
                    match r.below(7) {
                        0 => c.open = d,
                        1 => c.high = d,
                        2 => c.low = d,
                        3 => c.close = d,
                        4 => c.volume = d,
                        5 => c.quote_volume = Some(d),
                        _ => c.taker_buy_base = Some(d),
                    }
                }
            }
            sets.push(cs);
        }
        for cs in &sets {
            assert_eq!(encode_chunk(cs), encode_chunk_reference(cs), "{cs:?}");
        }
    }

    /// Time gaps, close-time offsets and trade counts at the edges of the 64-bit column path
    /// (gaps beyond i64, +-2^62, counts beyond i64::MAX) against the 128-bit reference.
    #[test]
    fn int_columns_encode_the_bytes_of_the_reference() {
        let mut r = Rng(0x1a7c_0175_0000_0005);
        let mut fast = 0;
        for round in 0..600 {
            let n = 1 + r.below(40) as usize;
            let mut cs = candles(&mut r, n, round % 2 == 0);
            // Ascending times from anywhere in i64, with gaps large or small.
            let mut t = match r.below(3) {
                0 => i64::MIN + r.below(1000) as i64,
                1 => -(1 << 62) - r.below(3) as i64,
                _ => 1_600_000_000_000,
            };
            let span = (n as u64).max(1);
            for c in &mut cs {
                c.open_time = t;
                // The room left up to i64::MAX, computed in i128 (it may exceed i64::MAX;
                // it always fits in u64).
                let room = (i128::from(i64::MAX) - i128::from(t)) as u64 / span;
                let gap = match r.below(4) {
                    0 => room.max(1),
                    1 => (1u64 << 62).min(room).max(1),
                    _ => 60_000,
                };
                // Possibly beyond i64::MAX (a gap the 64-bit path cannot hold).
                t = t.saturating_add_unsigned(gap);
                if c.close_time.is_some() {
                    c.close_time = Some(match r.below(4) {
                        0 => i64::MAX - r.below(3) as i64,
                        1 => i64::MIN + r.below(3) as i64,
                        2 => c.open_time.saturating_add(1 << 62),
                        _ => c.open_time + 59_999,
                    });
                }
                if r.below(2) == 0 {
                    c.trades = Some(match r.below(40) {
                        0 => u64::MAX - r.below(3),
                        1 => (1 << 63) - r.below(3),
                        2 => (1 << 62) - r.below(3),
                        _ => r.below(5000),
                    });
                }
            }
            cs.dedup_by_key(|c| c.open_time);
            // Trade counts all in i64: that column takes the 64-bit path.
            fast += usize::from(cs.iter().all(|c| c.trades.is_none_or(|x| x < 1 << 63)));
            assert_eq!(encode_chunk(&cs), encode_chunk_reference(&cs), "{cs:?}");
        }
        assert!(fast > 100, "{fast}");
    }

    /// The chunks of `testdata/v1_chunks.bin`: the real fixtures in full chunks and in chunks
    /// of 7, then random and extreme candles (mantissas up to i128) in small chunks.
    fn v1_corpus_sets() -> Vec<Vec<Candle>> {
        let mut r = Rng(0x0001_c0de_c0ff_ee01);
        let mut sets = chunk_sets(&mut r, (7, 10), 0);
        for i in 0..60 {
            let n = 1 + r.below(40) as usize;
            sets.push(candles(&mut r, n, i % 2 == 0));
        }
        sets
    }

    const V1_CORPUS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/chunk/testdata/v1_chunks.bin"
    );

    /// Writes the corpus with the format-1 encoder (done once, before format 2; never
    /// regenerate it with a newer encoder).
    #[test]
    #[ignore = "writes src/chunk/testdata/v1_chunks.bin; only the format-1 encoder may"]
    fn generate_v1_corpus() {
        let mut out = Vec::new();
        for cs in v1_corpus_sets() {
            let b = encode_chunk(&cs);
            crate::varint::put_u64(&mut out, b.len() as u64);
            out.extend_from_slice(&b);
        }
        std::fs::write(V1_CORPUS, out).unwrap();
    }

    /// Chunks written by format 1 (before the format-2 tag) still decode to their candles.
    #[test]
    fn v1_chunks_still_decode() {
        let bytes = std::fs::read(V1_CORPUS).unwrap();
        let sets = v1_corpus_sets();
        let mut pos = 0;
        for cs in &sets {
            let len = crate::varint::get_u64(&bytes, &mut pos).unwrap() as usize;
            let b = &bytes[pos..pos + len];
            pos += len;
            assert_eq!(decode_chunk(b).as_ref().ok(), Some(cs));
            assert_eq!(decode_chunk_ref(b).as_ref().ok(), Some(cs));
            let times: Vec<i64> = cs.iter().map(|c| c.open_time).collect();
            assert_eq!(decode_times(b).unwrap(), times);
        }
        assert_eq!(pos, bytes.len());

        // A format-1 store of the 1m fixture's chunks (the corpus' first four): it decodes,
        // keeps its chunks' bytes, and writes the same bytes back (still format 1).
        let fixture_1m = fixture("rest_klines_BTCUSDT_1m_limit1000.json");
        let mut pos = 0;
        let mut store = vec![1u8];
        crate::varint::put_u64(&mut store, fixture_1m.len() as u64);
        crate::varint::put_u64(&mut store, 4);
        let mut chunks = Vec::new();
        for _ in 0..4 {
            let len = crate::varint::get_u64(&bytes, &mut pos).unwrap() as usize;
            crate::varint::put_u64(&mut store, len as u64);
            store.extend_from_slice(&bytes[pos..pos + len]);
            chunks.push(&bytes[pos..pos + len]);
            pos += len;
        }
        store.extend_from_slice(&[0, 0]);
        let s = crate::chunk::ChunkedStore::decode(&store).unwrap();
        assert!(s.iter().eq(fixture_1m.iter().copied()));
        let mut again = Vec::new();
        s.encode(&mut again);
        assert_eq!(again, store);
        assert!(chunks.iter().all(|c| c[0] != FORMAT2_TAG));
        // Rewriting a candle re-encodes its chunk in format 2.
        let mut s = s;
        let mut c = fixture_1m[3];
        c.volume = Dec::new(123, 2).unwrap();
        s.put(c);
        let mut want = fixture_1m.clone();
        want[3] = c;
        assert!(s.iter().eq(want.iter().copied()));
        again.clear();
        s.encode(&mut again);
        assert_eq!(again[0], 2);
        let s2 = crate::chunk::ChunkedStore::decode(&again).unwrap();
        assert!(s2.iter().eq(want.iter().copied()));
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
