//! The integer side of the chunk codec: [`Int`], the arithmetic every column is computed
//! in (`i64` the fast path, `i128` the reference, one generic code for both), and the
//! [`Model`]s that predict a decimal column from already-decoded fields (the codec codes the
//! residuals). Kept apart from the bit layout in [`super::codec`] because the predictions
//! must stay bit-identical between encoder and decoder and are tested on their own.

use super::bits::BitWriter;
use super::scratch::Scratch;
use super::series::{put_series, put_series_i64, SeriesScratch};
use crate::candle::Candle;
use crate::decimal::{Dec, POW10, POW10_I64 as POW10_64};

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

/// The checked integer arithmetic the predictions and column values are computed in:
/// `i128` is the reference, `i64` the fast path. An `i64` operation that answers gives the
/// exact result, which the `i128` one gives too on the same operands; so a function written
/// over `Int` that answers in `i64` answers what it does in `i128`. Where the `i64` version
/// gives `None` (an overflow, or a real `None`), callers fall back to the `i128` one.
pub(super) trait Int: Copy + Ord + std::fmt::Debug {
    const ONE: Self;
    const TWO: Self;
    /// `v`, if it fits.
    fn of(v: i128) -> Option<Self>;
    fn pow10(n: u32) -> Option<Self>;
    fn mul(self, o: Self) -> Option<Self>;
    fn add(self, o: Self) -> Option<Self>;
    fn sub(self, o: Self) -> Option<Self>;
    /// Truncating division.
    fn div(self, o: Self) -> Option<Self>;
    /// Bit length of the magnitude.
    fn bits(self) -> u32;
    fn wide(self) -> i128;
    fn wsub(self, o: Self) -> Self;
    /// A column value minus its prediction, as the format has it (wrapping in `i128`);
    /// `None` when that does not fit.
    fn residual(self, p: Self) -> Option<Self>;
    /// Price rows within this bound have differences (as the format wraps them in `i128`)
    /// that fit exactly.
    fn narrow(self) -> bool;
    /// The chunk buffers of this width.
    fn bufs(sc: &mut Scratch) -> Bufs<'_, Self>;
    fn put_series(w: &mut BitWriter, vals: &[Self], sc: &mut SeriesScratch, hints: Option<&[u32]>);
}

/// A [`Scratch`]'s buffers of one integer width, and the series buffers.
pub(super) struct Bufs<'a, I> {
    pub(super) vals: &'a mut Vec<I>,
    pub(super) rows: &'a mut Vec<[I; 4]>,
    pub(super) us: &'a mut SeriesScratch,
    pub(super) hints: &'a mut Vec<u32>,
}

impl Int for i128 {
    const ONE: i128 = 1;
    const TWO: i128 = 2;
    #[inline]
    fn of(v: i128) -> Option<i128> {
        Some(v)
    }
    #[inline]
    fn pow10(n: u32) -> Option<i128> {
        POW10.get(n as usize).copied()
    }
    #[inline]
    fn mul(self, o: i128) -> Option<i128> {
        mul(self, o)
    }
    #[inline]
    fn add(self, o: i128) -> Option<i128> {
        self.checked_add(o)
    }
    #[inline]
    fn sub(self, o: i128) -> Option<i128> {
        self.checked_sub(o)
    }
    #[inline]
    fn div(self, o: i128) -> Option<i128> {
        div(self, o)
    }
    #[inline]
    fn bits(self) -> u32 {
        super::bits::bitlen(self.unsigned_abs())
    }
    #[inline]
    fn wide(self) -> i128 {
        self
    }
    #[inline]
    fn wsub(self, o: i128) -> i128 {
        self.wrapping_sub(o)
    }
    #[inline]
    fn residual(self, p: i128) -> Option<i128> {
        Some(self.wrapping_sub(p))
    }
    #[inline]
    fn narrow(self) -> bool {
        true
    }
    fn bufs(sc: &mut Scratch) -> Bufs<'_, i128> {
        Bufs {
            vals: &mut sc.vals,
            rows: &mut sc.rows,
            us: &mut sc.us,
            hints: &mut sc.hints,
        }
    }
    fn put_series(w: &mut BitWriter, vals: &[i128], sc: &mut SeriesScratch, hints: Option<&[u32]>) {
        put_series(w, vals, sc, hints);
    }
}

impl Int for i64 {
    const ONE: i64 = 1;
    const TWO: i64 = 2;
    #[inline]
    fn of(v: i128) -> Option<i64> {
        i64::try_from(v).ok()
    }
    #[inline]
    fn pow10(n: u32) -> Option<i64> {
        POW10_64.get(n as usize).copied()
    }
    #[inline]
    fn mul(self, o: i64) -> Option<i64> {
        self.checked_mul(o)
    }
    #[inline]
    fn add(self, o: i64) -> Option<i64> {
        self.checked_add(o)
    }
    #[inline]
    fn sub(self, o: i64) -> Option<i64> {
        self.checked_sub(o)
    }
    #[inline]
    fn div(self, o: i64) -> Option<i64> {
        self.checked_div(o)
    }
    #[inline]
    fn bits(self) -> u32 {
        u64::BITS - self.unsigned_abs().leading_zeros()
    }
    #[inline]
    fn wide(self) -> i128 {
        i128::from(self)
    }
    #[inline]
    fn wsub(self, o: i64) -> i64 {
        self.wrapping_sub(o)
    }
    #[inline]
    fn residual(self, p: i64) -> Option<i64> {
        self.checked_sub(p)
    }
    /// Within +-2^62: the difference of two is within +-2^63.
    #[inline]
    fn narrow(self) -> bool {
        (self.wrapping_add(1 << 62) as u64) >> 63 == 0
    }
    fn bufs(sc: &mut Scratch) -> Bufs<'_, i64> {
        Bufs {
            vals: &mut sc.vals64,
            rows: &mut sc.rows64,
            us: &mut sc.us,
            hints: &mut sc.hints,
        }
    }
    fn put_series(w: &mut BitWriter, vals: &[i64], sc: &mut SeriesScratch, hints: Option<&[u32]>) {
        put_series_i64(w, vals, sc, hints);
    }
}

/// `d`'s mantissa at scale `s >= d.scale()`. Always multiplied (by one when the scales are
/// equal): values drop trailing zeros, so a shortcut on equal scales was a branch
/// mispredicted about every other value.
#[inline]
pub(super) fn at_scale<I: Int>(d: Dec, s: u8) -> Option<I> {
    let diff = s.checked_sub(d.scale())?;
    I::of(d.mantissa())?.mul(I::pow10(u32::from(diff))?)
}

/// `num / den`, a value at scale `ns`, expressed at scale `target` (truncated).
#[inline]
pub(super) fn div_at<I: Int>(num: I, den: I, ns: i32, target: i32) -> Option<I> {
    if target >= ns {
        num.mul(I::pow10(u32::try_from(target - ns).ok()?)?)?
            .div(den)
    } else {
        num.div(den.mul(I::pow10(u32::try_from(ns - target).ok()?)?)?)
    }
}

/// `base * (high + low) / 2` at scale `s`.
#[inline]
pub(super) fn mid_price_times<I: Int>(c: &Candle, base: Dec, s: u8) -> Option<I> {
    let sp = c.high.scale().max(c.low.scale());
    let hl = at_scale::<I>(c.high, sp)?.add(at_scale(c.low, sp)?)?;
    let n = I::of(base.mantissa())?.mul(hl)?;
    div_at(
        n,
        I::TWO,
        i32::from(base.scale()) + i32::from(sp),
        i32::from(s),
    )
}

/// `base * (high - low)` at scale `s`: the size of `base * (vwap - mid)`.
#[inline]
pub(super) fn range_times<I: Int>(c: &Candle, base: Dec, s: u8) -> Option<I> {
    let sp = c.high.scale().max(c.low.scale());
    let hl = at_scale::<I>(c.high, sp)?.sub(at_scale(c.low, sp)?)?;
    let n = I::of(base.mantissa())?.mul(hl)?;
    div_at(
        n,
        I::ONE,
        i32::from(base.scale()) + i32::from(sp),
        i32::from(s),
    )
}

/// How a decimal column is modelled: a prediction and (when `HINTED`) a magnitude hint for
/// its residuals, both deterministic functions of already-decoded fields (`None` counts as
/// 0 for a prediction and as bit length 0 for a hint).
pub(super) trait Model {
    const HINTED: bool;
    /// Predicted in 128 bits outright: the 64-bit attempt overflows for a data-dependent
    /// share of candles (a product of two mantissas), a branch mispredicted that often
    /// costs more than the wide arithmetic.
    const WIDE: bool = false;
    fn pred<I: Int>(c: &Candle, s: u8) -> Option<I>;
    fn hint<I: Int>(c: &Candle, s: u8) -> Option<I>;
}

/// No prediction, no hints (volume).
pub(super) struct Plain;
/// quote_volume: volume * mid price.
pub(super) struct Qv;
/// taker_buy_base: half the volume.
pub(super) struct Tbb;
/// taker_buy_quote: taker_buy_base * vwap (quote_volume / volume), else * mid price.
pub(super) struct Tbq;

impl Model for Plain {
    const HINTED: bool = false;
    #[inline]
    fn pred<I: Int>(_: &Candle, _: u8) -> Option<I> {
        I::of(0)
    }
    #[inline]
    fn hint<I: Int>(_: &Candle, _: u8) -> Option<I> {
        None
    }
}

impl Model for Qv {
    const HINTED: bool = true;
    #[inline]
    fn pred<I: Int>(c: &Candle, s: u8) -> Option<I> {
        mid_price_times(c, c.volume, s)
    }
    #[inline]
    fn hint<I: Int>(c: &Candle, s: u8) -> Option<I> {
        range_times(c, c.volume, s)
    }
}

impl Model for Tbb {
    const HINTED: bool = true;
    #[inline]
    fn pred<I: Int>(c: &Candle, s: u8) -> Option<I> {
        let v = c.volume;
        div_at(
            I::of(v.mantissa())?,
            I::TWO,
            i32::from(v.scale()),
            i32::from(s),
        )
    }
    #[inline]
    fn hint<I: Int>(c: &Candle, s: u8) -> Option<I> {
        let v = c.volume;
        div_at(
            I::of(v.mantissa())?,
            I::ONE,
            i32::from(v.scale()),
            i32::from(s),
        )
    }
}

impl Model for Tbq {
    const HINTED: bool = true;
    const WIDE: bool = true;
    #[inline]
    fn pred<I: Int>(c: &Candle, s: u8) -> Option<I> {
        let tb = c.taker_buy_base?;
        match c.quote_volume {
            Some(q) if c.volume.mantissa() != 0 => {
                let n = I::of(tb.mantissa())?.mul(I::of(q.mantissa())?)?;
                let ns = i32::from(tb.scale()) + i32::from(q.scale()) - i32::from(c.volume.scale());
                div_at(n, I::of(c.volume.mantissa())?, ns, i32::from(s))
            }
            _ => mid_price_times(c, tb, s),
        }
    }
    #[inline]
    fn hint<I: Int>(c: &Candle, s: u8) -> Option<I> {
        range_times(c, c.taker_buy_base?, s)
    }
}

/// `M`'s prediction (0 when it has none): in 64 bits when that answers, else in 128.
#[inline(always)]
pub(super) fn predict<M: Model>(c: &Candle, s: u8) -> i128 {
    if M::WIDE {
        return M::pred::<i128>(c, s).unwrap_or(0);
    }
    match M::pred::<i64>(c, s) {
        Some(p) => i128::from(p),
        None => M::pred::<i128>(c, s).unwrap_or(0),
    }
}

/// The bit length of `M`'s hint (0 when it has none): in 64 bits when that answers.
#[inline(always)]
pub(super) fn hint_bits<M: Model>(c: &Candle, s: u8) -> u32 {
    match M::hint::<i64>(c, s) {
        Some(h) => h.bits(),
        None => M::hint::<i128>(c, s).map_or(0, Int::bits),
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
}
