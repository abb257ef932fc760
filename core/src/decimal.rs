//! Exact decimals: a signed 128-bit mantissa and a base-10 scale.
//!
//! Exchange prices and volumes are decimal strings ("58194.01000000"); floats would turn
//! "0.1" into 0.1000000000000000055. A `Dec` keeps the digits exactly, normalised so that
//! trailing fractional zeros are dropped ("58194.01000000" == "58194.01").

use crate::error::{CoreError, CoreResult};
use std::cmp::Ordering;
use std::fmt;

/// Most fractional digits accepted (Binance uses 8).
pub const MAX_SCALE: u8 = 24;
/// Most significant digits accepted; keeps every aligned sum inside i128.
pub const MAX_DIGITS: usize = 36;

/// Packed to 8-byte alignment: an `i128` alone would align the decimal to 16 bytes and pad
/// it to 32 (48 as an `Option`), and a candle, which holds eight, to 352 bytes; at 24 (32)
/// it is 256, and every pass over a batch of candles (parse, validation, the effect, the
/// chunk encoder's columns, the cascade) moves a quarter less memory. Fields are read by
/// value (a packed field cannot be borrowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(C, packed(8))]
pub struct Dec {
    mant: i128,
    scale: u8,
}

/// `10^0..=10^38`, every power of ten an i128 holds.
pub(crate) const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `10^0..=10^18`, every power of ten an i64 holds.
pub(crate) const POW10_I64: [i64; 19] = {
    let mut t = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

fn pow10(n: u32) -> Option<i128> {
    POW10.get(n as usize).copied()
}

/// `m * 10^k`, or None on overflow. Mantissas and powers that fit in 64 bits (nearly every
/// market value) take one widening multiply instead of a checked 128-bit one.
#[inline]
fn scale_up(m: i128, k: u8) -> Option<i128> {
    let p = pow10(u32::from(k))?;
    match (i64::try_from(m), i64::try_from(p)) {
        (Ok(m), Ok(p)) => Some(i128::from(m) * i128::from(p)),
        _ => m.checked_mul(p),
    }
}

/// An exact running sum of decimals: like repeated [`Dec::checked_add`], normalised once at
/// the end instead of after every addition (sums of thousands of volumes, R8). Packed as
/// [`Dec`] is (a derived bucket's aggregate holds four).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed(8))]
pub struct DecSum {
    mant: i128,
    scale: u8,
}

impl DecSum {
    /// Adds `d`; false (the sum left unusable) when it leaves the decimal range, exactly when
    /// `Dec::checked_add` would.
    #[must_use]
    #[inline]
    pub fn add(&mut self, d: Dec) -> bool {
        // Inline, the common case of a bucket's sums: `d` has no more fractional digits than
        // the running sum and everything fits i64 (`add_at_max_scale`'s first case).
        if let Some(p) = self
            .scale
            .checked_sub(d.scale)
            .and_then(|shift| POW10_I64.get(usize::from(shift)))
        {
            if let (Ok(a), Ok(b)) = (i64::try_from(self.mant), i64::try_from(d.mant)) {
                if let Some(m) = b.checked_mul(*p).and_then(|b| a.checked_add(b)) {
                    self.mant = i128::from(m);
                    return true;
                }
            }
        }
        self.add_out_of_line(d)
    }

    #[inline(never)]
    fn add_out_of_line(&mut self, d: Dec) -> bool {
        if self.add_at_max_scale(d) {
            return true;
        }
        // The running scale may exceed the normalised sum's: retry from that.
        let n = self.finish();
        (self.mant, self.scale) = (n.mant, n.scale);
        self.add_at_max_scale(d)
    }

    fn add_at_max_scale(&mut self, d: Dec) -> bool {
        // Both mantissas and the aligned sum within i64 (sums of prices and volumes): the
        // exact sum, as below, without 128-bit arithmetic (and far inside the range).
        if let (Ok(a), Ok(b)) = (i64::try_from(self.mant), i64::try_from(d.mant)) {
            let aligned = match d.scale.cmp(&self.scale) {
                std::cmp::Ordering::Equal => Some((a, b, self.scale)),
                std::cmp::Ordering::Less => POW10_I64
                    .get(usize::from(self.scale - d.scale))
                    .and_then(|p| b.checked_mul(*p))
                    .map(|b| (a, b, self.scale)),
                std::cmp::Ordering::Greater => POW10_I64
                    .get(usize::from(d.scale - self.scale))
                    .and_then(|p| a.checked_mul(*p))
                    .map(|a| (a, b, d.scale)),
            };
            if let Some((m, scale)) = aligned.and_then(|(a, b, s)| Some((a.checked_add(b)?, s))) {
                self.mant = i128::from(m);
                self.scale = scale;
                return true;
            }
        }
        let (a, b, scale) = match d.scale.cmp(&self.scale) {
            std::cmp::Ordering::Equal => (Some(self.mant), Some(d.mant), self.scale),
            std::cmp::Ordering::Less => (
                Some(self.mant),
                scale_up(d.mant, self.scale - d.scale),
                self.scale,
            ),
            std::cmp::Ordering::Greater => (
                scale_up(self.mant, d.scale - self.scale),
                Some(d.mant),
                d.scale,
            ),
        };
        match (a, b) {
            (Some(a), Some(b)) => match a.checked_add(b) {
                Some(m) if m.unsigned_abs() < POW10[MAX_DIGITS + 1] as u128 => {
                    self.mant = m;
                    self.scale = scale;
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    pub fn finish(self) -> Dec {
        Dec {
            mant: self.mant,
            scale: self.scale,
        }
        .normalized()
    }
}

impl Dec {
    pub const ZERO: Dec = Dec { mant: 0, scale: 0 };

    /// Builds a normalised decimal `mant * 10^-scale`.
    pub fn new(mant: i128, scale: u8) -> CoreResult<Dec> {
        if scale > MAX_SCALE {
            return Err(CoreError::invalid("decimal has too many fractional digits"));
        }
        Ok(Dec { mant, scale }.normalized())
    }

    pub fn from_int(v: i64) -> Dec {
        Dec {
            mant: v as i128,
            scale: 0,
        }
    }

    pub fn mantissa(&self) -> i128 {
        self.mant
    }
    pub fn scale(&self) -> u8 {
        self.scale
    }
    pub fn is_negative(&self) -> bool {
        self.mant < 0
    }

    fn normalized(mut self) -> Dec {
        // In i64 when the mantissa fits (nearly always): a division by ten there is a
        // multiplication, where i128's is a library call. The same digits come off.
        if let Ok(mut m) = i64::try_from(self.mant) {
            while self.scale > 0 && m % 10 == 0 {
                m /= 10;
                self.scale -= 1;
            }
            self.mant = i128::from(m);
        } else {
            while self.scale > 0 && self.mant % 10 == 0 {
                self.mant /= 10;
                self.scale -= 1;
            }
        }
        if self.mant == 0 {
            self.scale = 0;
        }
        self
    }

    /// Parses `[-]digits[.digits][e[+-]digits]` exactly. No whitespace, no `+` sign, no NaN/inf.
    pub fn parse(s: &str) -> CoreResult<Dec> {
        Self::parse_bytes(s.as_bytes())
    }

    pub fn parse_bytes(b: &[u8]) -> CoreResult<Dec> {
        // Exchange-shaped text (`56714.01000000`, what LIVE_UPDATE and positional OFFICIAL_ADD
        // arguments carry) takes the 8-digits-at-a-time path, which must use up all of `b`.
        match Self::parse_swar::<false>(b) {
            Some((d, _)) => Ok(d),
            None => Self::parse_other(b),
        }
    }

    /// What the SWAR path leaves (exponents, long mantissas, errors), out of line so the
    /// common path stays small.
    #[cold]
    #[inline(never)]
    fn parse_other(b: &[u8]) -> CoreResult<Dec> {
        Self::parse_reference(b)
    }

    /// The reference for `parse_bytes` (no SWAR): a per-byte loop for short plain decimals,
    /// else the general parser (exponents, long mantissas, every error).
    pub(crate) fn parse_reference(b: &[u8]) -> CoreResult<Dec> {
        match Self::parse_simple(b) {
            Some(d) => Ok(d),
            None => Self::parse_general(b),
        }
    }

    /// A decimal string's contents at the start of `b`, up to the closing `"` (not included),
    /// for the exact shape exchanges send: `[-]I[.F]`, 1..=15 integer digits, 1..=8
    /// fractional ones. `None` for anything else (the caller then takes the general path);
    /// where it answers, the value is [`Self::parse_reference`]'s of the same contents.
    /// Returns the decimal and its length.
    #[inline]
    pub fn parse_quoted(b: &[u8]) -> Option<(Dec, usize)> {
        Self::parse_swar::<true>(b)
    }

    /// Binance's decimal text, `I.FFFFFFFF"` (1..=8 integer digits, exactly 8 fractional
    /// ones, then the closing quote) at the start of `s`: the decimal and the length of its
    /// text. Knowing the fraction's length saves the general path's scan for its end. `None`
    /// for anything else (a sign, another fraction length), which [`Self::parse_quoted`]
    /// decides; where it answers, the value is [`Self::parse_reference`]'s of the same text.
    #[cfg(test)]
    pub(crate) fn parse_fixed8(s: &[u8; 18]) -> Option<(Dec, usize)> {
        let (mut d, mut n) = (Dec::ZERO, 0);
        Self::parse_fixed8_into(s, &mut d, &mut n)?;
        Some((d, n))
    }

    /// [`Self::parse_fixed8`] writing the decimal into `dst` and adding its text's length to
    /// `len`. The parser of REST bodies fills each candle's fields in place this way: a
    /// decimal returned by value went through the stack as two 8-byte stores read back as one
    /// 16-byte load, which the processor cannot forward from its store buffer, so every field
    /// waited for the earlier stores (the candles being filled, often not in cache) to drain.
    #[inline(always)]
    pub(crate) fn parse_fixed8_into(s: &[u8; 18], dst: &mut Dec, len: &mut usize) -> Option<()> {
        let t = s.first_chunk::<8>().map_or(0, |a| u64::from_le_bytes(*a)) ^ swar::ZEROS;
        let k = swar::digit_run_t(t);
        if k == 0 || s.get(k) != Some(&b'.') {
            return None;
        }
        let f = s.get(k + 1..)?.first_chunk::<8>()?;
        let f = u64::from_le_bytes(*f) ^ swar::ZEROS;
        if !swar::all_digits_t(f) || s.get(k + 9) != Some(&b'"') {
            return None;
        }
        if f == 0 {
            dst.mant = i128::from(swar::value(t, k));
            dst.scale = 0;
            *len += k + 9;
            return Some(());
        }
        // The fractional digits up to the last non-zero one (the highest non-zero byte).
        let keep = 8 - f.leading_zeros() as usize / 8;
        let m = if k + keep <= 8 {
            // All kept digits fit one word: the integer digits, then the fractional ones.
            swar::value((t & ((1 << (8 * k)) - 1)) | (f << (8 * k)), k + keep)
        } else {
            // At most 8 + 8 digits: inside u64.
            let p = swar::POW10_U64.get(keep).copied().unwrap_or(1);
            swar::value(t, k) * p + swar::value(f, keep)
        };
        // Non-negative and below 10^16.
        dst.mant = i128::from(m);
        dst.scale = keep as u8;
        *len += k + 9;
        Some(())
    }

    /// `[-]I[.F]` (1..=15 integer digits, 1..=8 fractional ones) at the start of `b`, eight
    /// digits at a time (SWAR), no loop per character: the decimal and the length of its
    /// text. `QUOTED`: the text must be followed by `"`; else it must be all of `b`. `None`
    /// for anything else ("1.", ".5", "-", 16 integer digits, an exponent, a second '.'),
    /// which the general parser decides.
    #[inline(always)]
    fn parse_swar<const QUOTED: bool>(b: &[u8]) -> Option<(Dec, usize)> {
        let (neg, s) = match b.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, b),
        };
        let at = usize::from(neg);
        // Where the number ends (`end` bytes of `s`), the byte that follows must be the
        // terminator.
        let ends_at = |end: usize| {
            if QUOTED {
                s.get(end) == Some(&b'"')
            } else {
                end == s.len()
            }
        };
        let w = swar::load8(s, 0) ^ swar::ZEROS; // digits become 0..=9
        let (k, run) = swar::digit_run_mask(w);
        if k == 0 {
            return None;
        }
        if k == 8 {
            let (d, end) = Self::parse_swar_long(s, w, neg)?;
            return ends_at(end).then_some((d, at + end));
        }
        // The byte after the integer digits (0 past the end of `s`).
        if ((w >> (8 * k)) as u8) ^ b'0' != b'.' {
            return ends_at(k).then(|| (Self::from_parts(swar::value(w, k), 0, neg), at + k));
        }
        let f = swar::load8(s, k + 1) ^ swar::ZEROS;
        let (kf, frun) = swar::digit_run_mask(f);
        let end = k + 1 + kf;
        if kf == 0 || !ends_at(end) {
            return None;
        }
        // Keep the fractional digits up to the last non-zero one (digit values are below
        // 0x80, so the highest set bit is in the last non-zero digit's byte).
        let nz = f & frun;
        if nz == 0 {
            return Some((Self::from_parts(swar::value(w, k), 0, neg), at + end));
        }
        let keep = (63 - nz.leading_zeros() as usize) / 8 + 1;
        if k + keep <= 8 {
            // All kept digits fit one word: the integer digits, then the fractional ones.
            let m = swar::value((w & run) | (f << (8 * k)), k + keep);
            return Some((Self::from_parts(m, keep as u8, neg), at + end));
        }
        Some((Self::join_wide(swar::value(w, k), f, keep, neg), at + end))
    }

    /// `int` followed by the first `keep` (1..=8) fractional digits of `f` (digit values).
    #[inline(always)]
    fn join_wide(int: u64, f: u64, keep: usize, neg: bool) -> Dec {
        let p = swar::POW10_U64.get(keep).copied().unwrap_or(1);
        let m = u128::from(int) * u128::from(p) + u128::from(swar::value(f, keep));
        Self::from_parts_wide(m, keep as u8, neg)
    }

    /// `parse_swar` of a sign-less `s` whose first 8 bytes (`w`, as digit values) are all
    /// digits: 9..=15 integer digits. The decimal and its length, the terminator unchecked.
    #[inline(never)]
    fn parse_swar_long(s: &[u8], w: u64, neg: bool) -> Option<(Dec, usize)> {
        let w2 = swar::load8(s, 8) ^ swar::ZEROS;
        let k2 = swar::digit_run_t(w2);
        if k2 == 8 {
            return None;
        }
        let int = swar::value(w, 8) * swar::POW10_U64.get(k2).copied()? + swar::value(w2, k2);
        let end = 8 + k2;
        if ((w2 >> (8 * k2)) as u8) ^ b'0' != b'.' {
            return Some((Self::from_parts(int, 0, neg), end));
        }
        let f = swar::load8(s, end + 1) ^ swar::ZEROS;
        let (kf, frun) = swar::digit_run_mask(f);
        if kf == 0 {
            return None;
        }
        let nz = f & frun;
        let end = end + 1 + kf;
        if nz == 0 {
            return Some((Self::from_parts(int, 0, neg), end));
        }
        let keep = (63 - nz.leading_zeros() as usize) / 8 + 1;
        Some((Self::join_wide(int, f, keep, neg), end))
    }

    /// The decimal of a parsed magnitude and its sign.
    #[inline(always)]
    fn from_parts(mant: u64, scale: u8, neg: bool) -> Dec {
        // At most 16 digits: far inside i64. A zero comes with scale 0 (a non-zero scale
        // means a kept non-zero digit), so -0 is `Dec::ZERO`.
        let m = mant as i64;
        Dec {
            mant: i128::from(if neg { -m } else { m }),
            scale,
        }
    }

    /// The decimal of a parsed magnitude below 10^23 (far inside i128) and its sign.
    #[inline(always)]
    fn from_parts_wide(mant: u128, scale: u8, neg: bool) -> Dec {
        if mant == 0 {
            return Dec::ZERO;
        }
        let m = mant as i128;
        Dec {
            mant: if neg { -m } else { m },
            scale,
        }
    }

    /// The common exchange form `[-]digits[.digits]` with at most 19 digits in all, in one
    /// pass and u64 arithmetic. `None` for anything else (including every invalid input),
    /// which [`Self::parse_general`] then decides; where both accept, they give the same value.
    fn parse_simple(b: &[u8]) -> Option<Dec> {
        let (neg, body) = match b.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, b),
        };
        // At most 19 digits (every such value fits in u64) plus one '.'.
        if body.is_empty() || body.len() > 20 {
            return None;
        }
        let mut mant: u64 = 0;
        let mut digits = 0usize;
        let mut int_len: Option<usize> = None; // set at the '.'
        let mut int_val = 0u64;
        // Value and fractional length up to the last non-zero fractional digit.
        let mut kept: Option<(u64, usize)> = None;
        for &c in body {
            if c == b'.' {
                if int_len.is_some() || digits == 0 {
                    return None;
                }
                int_len = Some(digits);
                int_val = mant;
                continue;
            }
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            digits += 1;
            if digits > 19 {
                return None;
            }
            mant = mant * 10 + u64::from(d);
            if let Some(il) = int_len {
                if d != 0 {
                    kept = Some((mant, digits - il));
                }
            }
        }
        let (m, scale) = match int_len {
            // "1." is refused by the general path.
            Some(il) if il == digits => return None,
            Some(_) => kept.unwrap_or((int_val, 0)),
            None => (mant, 0),
        };
        if m == 0 {
            return Some(Dec::ZERO);
        }
        let m = i128::from(m);
        Some(Dec {
            mant: if neg { -m } else { m },
            scale: scale as u8,
        })
    }

    fn parse_general(b: &[u8]) -> CoreResult<Dec> {
        let bad =
            || CoreError::invalid(format!("invalid decimal '{}'", String::from_utf8_lossy(b)));
        let (neg, rest) = match b.first() {
            Some(b'-') => (true, &b[1..]),
            Some(_) => (false, b),
            None => return Err(bad()),
        };
        let (num, exp) = match rest.iter().position(|&c| c == b'e' || c == b'E') {
            Some(p) => (&rest[..p], Some(&rest[p + 1..])),
            None => (rest, None),
        };
        let (int_part, frac_part) = match num.iter().position(|&c| c == b'.') {
            Some(p) => (&num[..p], &num[p + 1..]),
            None => (num, &num[num.len()..]),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        if num.contains(&b'.') && (int_part.is_empty() || frac_part.is_empty()) {
            // "1." and ".5" are not how exchanges write numbers; refuse rather than guess.
            return Err(bad());
        }
        // Trailing fractional zeros are checked and counted like every digit, but not
        // accumulated: the value is the same and the i128 strip loop below has less to do.
        let frac_keep =
            frac_part.len() - frac_part.iter().rev().take_while(|&&c| c == b'0').count();
        let keep = int_part.len() + frac_keep;
        let mut digits = 0usize;
        for &c in int_part.iter().chain(frac_part.iter()) {
            if !c.is_ascii_digit() {
                return Err(bad());
            }
            if digits > 0 || c != b'0' {
                digits += 1;
            }
            if digits > MAX_DIGITS {
                return Err(CoreError::invalid(format!(
                    "decimal '{}' has more than {MAX_DIGITS} significant digits",
                    String::from_utf8_lossy(b)
                )));
            }
        }
        // All digits checked; accumulate the kept ones (in u64 while 19 digits cannot overflow).
        let kept = int_part.iter().chain(frac_part.iter()).take(keep);
        let mut mant: i128 = if keep <= 19 {
            i128::from(kept.fold(0u64, |m, &c| m * 10 + u64::from(c - b'0')))
        } else {
            kept.fold(0i128, |m, &c| m * 10 + i128::from(c - b'0'))
        };
        let mut scale = frac_keep as i64;
        if let Some(e) = exp {
            let (eneg, edigits) = match e.first() {
                Some(b'-') => (true, &e[1..]),
                Some(b'+') => (false, &e[1..]),
                _ => (false, e),
            };
            if edigits.is_empty() || edigits.len() > 3 || !edigits.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            let ev: i64 = edigits
                .iter()
                .fold(0i64, |a, &c| a * 10 + i64::from(c - b'0'));
            scale += if eneg { ev } else { -ev };
        }
        // Strip trailing zeros before range checks so "1.000000000000000000000000000" is fine.
        while scale > 0 && mant != 0 && mant % 10 == 0 {
            mant /= 10;
            scale -= 1;
        }
        if mant == 0 {
            return Ok(Dec::ZERO);
        }
        if scale < 0 {
            let m = pow10((-scale) as u32)
                .and_then(|p| mant.checked_mul(p))
                .filter(|m| m.unsigned_abs() < POW10[MAX_DIGITS] as u128)
                .ok_or_else(|| CoreError::invalid("decimal out of range"))?;
            mant = m;
            scale = 0;
        }
        if scale > i64::from(MAX_SCALE) {
            return Err(CoreError::invalid(format!(
                "decimal '{}' has more than {MAX_SCALE} fractional digits",
                String::from_utf8_lossy(b)
            )));
        }
        Ok(Dec {
            mant: if neg { -mant } else { mant },
            scale: scale as u8,
        })
    }

    /// Exact sum; an error instead of overflow.
    pub fn checked_add(self, other: Dec) -> CoreResult<Dec> {
        // The one exact addition: a running sum of two terms (self is normalised, so no
        // retry at a smaller scale is needed).
        let mut sum = self.sum();
        if sum.add_at_max_scale(other) {
            Ok(sum.finish())
        } else {
            Err(CoreError::invalid("decimal sum out of range"))
        }
    }

    /// A running exact sum starting at this value (see [`DecSum`]).
    pub fn sum(self) -> DecSum {
        DecSum {
            mant: self.mant,
            scale: self.scale,
        }
    }

    fn rescaled(self, scale: u8) -> Option<i128> {
        pow10(u32::from(scale - self.scale)).and_then(|p| self.mant.checked_mul(p))
    }

    /// The larger of the two (`self` when equal). Selected without a branch: which one wins
    /// is data (a bucket's running high against each new candle's), so a branch on it is
    /// mispredicted often (see [`Dec::select`]).
    #[inline(always)]
    pub fn max(self, other: Dec) -> Dec {
        Dec::select(other > self, other, self)
    }

    /// The smaller of the two (`self` when equal), as [`Dec::max`].
    #[inline(always)]
    pub fn min(self, other: Dec) -> Dec {
        Dec::select(other < self, other, self)
    }

    /// `a` if `pick`, else `b`: the address chosen by a conditional move and the decimal copied
    /// whole. Chosen field by field, the 1-byte scale was stored on its own and then read back
    /// inside the next whole copy (a bucket's running high, one candle later), a load the
    /// processor cannot forward from a narrower store: the fold waited for it every candle.
    #[inline(always)]
    fn select(pick: bool, a: Dec, b: Dec) -> Dec {
        let both = [b, a];
        both[usize::from(pick)]
    }
}

impl Ord for Dec {
    /// Inlined where candles are checked (four comparisons per candle on every write) and
    /// where buckets fold highs and lows: the common case, both mantissas within i64 and
    /// aligned to the larger scale without overflow, has no data-dependent branch. Prices
    /// drop trailing zeros, so whether two scales are equal is a coin toss per candle, and a
    /// branch on it was mispredicted about every other time (a third of the derive cascade's
    /// mispredictions). The wide case is out of line.
    #[inline(always)]
    fn cmp(&self, other: &Dec) -> Ordering {
        match aligned_i64(*self, *other) {
            Some((a, b)) => a.cmp(&b),
            None => self.cmp_wide(other),
        }
    }
}

/// Both mantissas at the larger of the two scales, when everything fits i64: the shorter
/// side is multiplied by its power of ten and the other by one, so no branch depends on
/// which side that is.
#[inline(always)]
fn aligned_i64(x: Dec, y: Dec) -> Option<(i64, i64)> {
    let (a, b) = (i64::try_from(x.mant).ok()?, i64::try_from(y.mant).ok()?);
    let s = x.scale.max(y.scale);
    let pa = *POW10_I64.get(usize::from(s - x.scale))?;
    let pb = *POW10_I64.get(usize::from(s - y.scale))?;
    Some((a.checked_mul(pa)?, b.checked_mul(pb)?))
}

impl Dec {
    /// `cmp` on wide mantissas or shifts beyond 18 digits: both aligned in i128.
    #[cold]
    #[inline(never)]
    fn cmp_wide(&self, other: &Dec) -> Ordering {
        let scale = self.scale.max(other.scale);
        match (self.rescaled(scale), other.rescaled(scale)) {
            (Some(a), Some(b)) => a.cmp(&b),
            // Overflow while aligning means that side's magnitude exceeds the other's.
            (None, _) => {
                if self.mant < 0 {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (_, None) => {
                if other.mant < 0 {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
        }
    }
}

impl PartialOrd for Dec {
    fn partial_cmp(&self, other: &Dec) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Digits into a stack buffer (no allocation; u64 arithmetic when the mantissa fits).
        let mut buf = [0u8; 40];
        let mut at = buf.len();
        let abs = self.mant.unsigned_abs();
        if let Ok(mut m) = u64::try_from(abs) {
            loop {
                at -= 1;
                buf[at] = b'0' + (m % 10) as u8;
                m /= 10;
                if m == 0 {
                    break;
                }
            }
        } else {
            let mut m = abs;
            while m > 0 {
                at -= 1;
                buf[at] = b'0' + (m % 10) as u8;
                m /= 10;
            }
        }
        let digits = std::str::from_utf8(&buf[at..]).map_err(|_| fmt::Error)?;
        if self.mant < 0 {
            f.write_str("-")?;
        }
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(digits);
        }
        if digits.len() > scale {
            let (i, fr) = digits.split_at(digits.len() - scale);
            f.write_str(i)?;
            f.write_str(".")?;
            f.write_str(fr)
        } else {
            f.write_str("0.")?;
            for _ in digits.len()..scale {
                f.write_str("0")?;
            }
            f.write_str(digits)
        }
    }
}

/// Eight ASCII bytes at a time (little-endian words: byte 0 is the first character).
pub(crate) mod swar {
    /// `'0'` in every byte.
    pub const ZEROS: u64 = 0x3030_3030_3030_3030;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;

    pub const POW10_U64: [u64; 9] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
    ];

    /// The 8 bytes of `b` from `at`, zero-padded past its end.
    #[inline(always)]
    pub fn load8(b: &[u8], at: usize) -> u64 {
        let s = b.get(at..).unwrap_or(&[]);
        match s.first_chunk::<8>() {
            Some(a) => u64::from_le_bytes(*a),
            None => load_short(s),
        }
    }

    /// The fewer than 8 bytes of `s`, zero-padded: two overlapping loads (the bytes they
    /// share are the same, so or-ing them is exact) instead of a loop per byte.
    #[inline]
    fn load_short(s: &[u8]) -> u64 {
        let n = s.len();
        if let (Some(lo), Some(hi)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
            u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << (8 * (n - 4))
        } else if let (Some(lo), Some(hi)) = (s.first_chunk::<2>(), s.last_chunk::<2>()) {
            u64::from(u16::from_le_bytes(*lo)) | u64::from(u16::from_le_bytes(*hi)) << (8 * (n - 2))
        } else {
            s.first().map_or(0, |&x| u64::from(x))
        }
    }

    /// [`digit_run_t`] and the mask of those leading digit bytes.
    #[inline]
    pub fn digit_run_mask(t: u64) -> (usize, u64) {
        let non_digit = (((t & LOW7) + 0x7676_7676_7676_7676) | t) & HIGH;
        // The lowest flag is bit 7 of the first non-digit byte: the bytes below it are digits
        // (no flag at all: 1 << 64 wraps to 0, and the mask is all ones).
        let first = non_digit & non_digit.wrapping_neg();
        (
            (non_digit.trailing_zeros() / 8) as usize,
            (first >> 7).wrapping_sub(1),
        )
    }

    /// How many of the leading bytes of `w` are ASCII digits (0..=8).
    #[inline]
    pub fn digit_run(w: u64) -> usize {
        digit_run_t(w ^ ZEROS)
    }

    /// Whether all 8 bytes of `t = w ^ ZEROS` are digits (below 10).
    #[inline]
    pub fn all_digits_t(t: u64) -> bool {
        (((t & LOW7) + 0x7676_7676_7676_7676) | t) & HIGH == 0
    }

    /// [`digit_run`] of `t = w ^ ZEROS` (digits as 0..=9): the leading bytes below 10.
    #[inline]
    pub fn digit_run_t(t: u64) -> usize {
        let non_digit = (((t & LOW7) + 0x7676_7676_7676_7676) | t) & HIGH;
        (non_digit.trailing_zeros() / 8) as usize
    }

    /// The number written by the first `k <= 8` bytes of `t`, each a digit value 0..=9.
    #[inline]
    pub fn value(t: u64, k: usize) -> u64 {
        if k == 0 {
            return 0;
        }
        // The k digits to the top of the word: the bytes below become leading zeros.
        let x = t << (8 * (8 - k.min(8)));
        let x = x.wrapping_mul(10).wrapping_add(x >> 8);
        let x = ((x & 0x0000_00ff_0000_00ff).wrapping_mul(100 + (1_000_000 << 32)))
            .wrapping_add(((x >> 16) & 0x0000_00ff_0000_00ff).wrapping_mul(1 + (10_000 << 32)));
        x >> 32
    }

    /// The value of the run of up to 8 ASCII digits of `b` at `at`, and its length.
    #[inline]
    pub fn digits(b: &[u8], at: usize) -> (u64, usize) {
        let w = load8(b, at);
        let k = digit_run(w);
        (value(w ^ ZEROS, k), k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn round_trips_exactly_modulo_trailing_zeros() {
        for (i, o) in [
            ("0.1", "0.1"),
            ("58194.01000000", "58194.01"),
            ("0.00000000", "0"),
            ("100", "100"),
            ("100.0", "100"),
            ("0.00001234", "0.00001234"),
            ("-1.50", "-1.5"),
            ("1e3", "1000"),
            ("1.5E-3", "0.0015"),
            ("123456789012345678.12345678", "123456789012345678.12345678"),
        ] {
            assert_eq!(d(i).to_string(), o, "{i}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "", "-", "abc", "1.2.3", "NaN", "inf", "-inf", "1,5", " 1", "1 ", "+1", ".5", "1.",
            "1e", "1e1000", "0x10", "1e-99",
        ] {
            assert!(Dec::parse(s).is_err(), "{s:?} should fail");
        }
        assert!(Dec::parse(&"9".repeat(40)).is_err());
    }

    /// Every input the one-pass path accepts, the general path accepts with the same value;
    /// every input it passes on gets the general path's answer (value or error).
    #[test]
    fn simple_path_matches_general_path() {
        let mut inputs: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.000",
            "00.10",
            "1",
            "1.0",
            "1.",
            ".5",
            "-.5",
            "-",
            "",
            ".",
            "1..2",
            "1.2.3",
            "58194.01000000",
            "0.00000001",
            "9999999999999999999",
            "99999999999999999999",
            "999999999.9999999999",
            "1234567890.123456789",
            "-1234567890.123456789",
            "0000000000000000001",
            "00000000000000000000001",
            "1e3",
            "+1",
            " 1",
            "1 ",
            "1a",
            "--1",
            "18446744073709551615",
            "9223372036854775808",
            "0.1000000000000000000",
            "123456789012345678.12345678",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Deterministic pseudo-random strings over the characters that matter.
        let alphabet = b"0123456789.-e0";
        let mut rng = crate::test_rng::XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..200_000 {
            let x = rng.next();
            let len = (x % 23) as usize;
            let mut s = String::new();
            let mut y = x;
            for _ in 0..len {
                y = y
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[((y >> 33) % alphabet.len() as u64) as usize] as char);
            }
            inputs.push(s);
        }
        let mut simple = 0;
        for s in &inputs {
            let general = Dec::parse_general(s.as_bytes()).map_err(|e| e.to_string());
            if let Some(v) = Dec::parse_simple(s.as_bytes()) {
                simple += 1;
                assert_eq!(Ok(v), general, "{s:?}");
            }
            assert_eq!(
                Dec::parse_bytes(s.as_bytes()).map_err(|e| e.to_string()),
                general,
                "{s:?}"
            );
        }
        assert!(simple > 1000, "{simple}");
    }

    #[test]
    fn swar_value_matches_digit_loop() {
        let mut rng = crate::test_rng::XorShift(0x2545_F491_4F6C_DD1D);
        for _ in 0..100_000 {
            let x = rng.next();
            let digits: Vec<u8> = (0..8).map(|i| b'0' + ((x >> (i * 7)) % 10) as u8).collect();
            for k in 0..=8 {
                let want = digits[..k]
                    .iter()
                    .fold(0u64, |a, &c| a * 10 + u64::from(c - b'0'));
                let w = swar::load8(&digits, 0);
                assert_eq!(swar::value(w ^ swar::ZEROS, k), want, "{digits:?} {k}");
                let (v, n) = swar::digits(&digits[..k], 0);
                assert_eq!((v, n), (want, k));
            }
        }
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b'1', b'2', b, b'3', 0, 0, 0, 0]);
            let want = if b.is_ascii_digit() { 4 } else { 2 };
            assert_eq!(swar::digit_run(w), want, "{b}");
        }
    }

    /// Wherever the quoted fast path answers, the contents up to the quote parse to the same
    /// value the general way; it answers for the exchange shape.
    #[test]
    fn quoted_fast_path_matches_parse_bytes() {
        let mut inputs: Vec<String> = [
            "56714.00000000\"",
            "56714.01000000\"",
            "0.00000000\"",
            "-0.00000000\"",
            "-0\"",
            "0\"",
            "00.10\"",
            "0.00000001\"",
            "12345678.12345678\"",
            "123456789012345.12345678\"",
            "1234567890123456.1\"",
            "999999999999999.99999999\"",
            "-999999999999999.99999999\"",
            "1.123456789\"",
            "1.\"",
            ".5\"",
            "1e5\"",
            "1.5e5\"",
            "12345678\"",
            "123456789\"",
            "1\"x",
            "1",
            "1.5",
            "\"",
            "-\"",
            "--1\"",
            "1..2\"",
            "1.2.3\"",
            "1.2x\"",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let alphabet = b"0123456789.-e\"000";
        let mut rng = crate::test_rng::XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..300_000 {
            let x = rng.next();
            let mut y = x;
            let mut s = String::new();
            if x.is_multiple_of(3) {
                // The exchange shape with random digit counts.
                let digits = |n: u64, y: &mut u64| -> String {
                    (0..n)
                        .map(|_| {
                            *y = y.wrapping_mul(6364136223846793005).wrapping_add(1);
                            char::from(b'0' + ((*y >> 33) % 10) as u8)
                        })
                        .collect()
                };
                if x & 8 != 0 {
                    s.push('-');
                }
                s += &digits(x % 18, &mut y);
                if x & 16 != 0 {
                    s.push('.');
                    s += &digits((x >> 8) % 11, &mut y);
                }
                s.push('"');
            } else {
                for _ in 0..(x % 27) {
                    y = y
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    s.push(alphabet[((y >> 33) % alphabet.len() as u64) as usize] as char);
                }
            }
            inputs.push(s);
        }
        let mut fast = 0;
        for s in &inputs {
            let b = s.as_bytes();
            if let Some((d, len)) = Dec::parse_quoted(b) {
                fast += 1;
                assert_eq!(b.get(len), Some(&b'"'), "{s:?}");
                assert_eq!(Dec::parse_reference(&b[..len]).ok(), Some(d), "{s:?}");
                assert_eq!(
                    Dec::new(d.mant, d.scale).unwrap(),
                    d,
                    "{s:?} not normalised"
                );
            }
        }
        assert!(fast > 50_000, "{fast}");
        // parse_bytes (which tries the SWAR path first) agrees with the reference on every
        // input, quote-terminated or not, valid or not.
        for s in &inputs {
            for b in [s.as_bytes(), s.trim_end_matches('"').as_bytes()] {
                assert_eq!(
                    Dec::parse_bytes(b).ok(),
                    Dec::parse_reference(b).ok(),
                    "{s:?}"
                );
                assert_eq!(
                    Dec::parse_bytes(b).is_err(),
                    Dec::parse_reference(b).is_err()
                );
            }
        }
        for s in [
            "56714.00000000\"",
            "11.02444000\"",
            "0.00000001\"",
            "123456789012345.12345678\"",
            "-7\"",
        ] {
            assert!(Dec::parse_quoted(s.as_bytes()).is_some(), "{s}");
        }
    }

    /// `parse_fixed8` answers only for Binance's shape, and then as `parse_reference` does:
    /// that shape with every integer length, then random edits of it (signs, digits,
    /// separators, exponents, fraction lengths) padded to the reader's window.
    #[test]
    fn fixed8_path_matches_reference() {
        use crate::test_rng::XorShift;
        let mut rng = XorShift(0x0f1e_2d3c_4b5a_6978);
        let alphabet = b"0123456789.-e\"x ";
        let mut fast = 0;
        for i in 0..200_000 {
            let mut s = Vec::new();
            for _ in 0..1 + rng.below(8) {
                s.push(b'0' + rng.below(10) as u8);
            }
            s.push(b'.');
            for _ in 0..8 {
                // Mostly zeros at the end, as prices and volumes have.
                s.push(if rng.below(3) == 0 {
                    b'0'
                } else {
                    b'0' + rng.below(10) as u8
                });
            }
            s.push(b'"');
            if i % 2 == 1 {
                for _ in 0..1 + rng.below(2) {
                    let at = rng.below(s.len() as u64) as usize;
                    let c = alphabet[rng.below(alphabet.len() as u64) as usize];
                    match rng.below(3) {
                        0 => s[at] = c,
                        1 => s.insert(at, c),
                        _ => {
                            s.remove(at);
                        }
                    }
                }
            }
            s.resize(18, b',');
            let w: &[u8; 18] = s.first_chunk().unwrap();
            if let Some((d, len)) = Dec::parse_fixed8(w) {
                fast += 1;
                assert_eq!(w[len], b'"', "{:?}", String::from_utf8_lossy(w));
                assert_eq!(len, w.iter().position(|&c| c == b'.').unwrap() + 9);
                assert_eq!(Dec::parse_reference(&w[..len]).ok(), Some(d));
                assert_eq!(Dec::new(d.mant, d.scale).unwrap(), d, "not normalised");
                assert_eq!(Dec::parse_quoted(w), Some((d, len)));
            }
        }
        assert!(fast > 100_000, "{fast}");
        let w = b"0.00000000\".......";
        assert_eq!(Dec::parse_fixed8(w), Some((Dec::ZERO, 10)));
        let w = b"99999999.99999999\"";
        assert_eq!(
            Dec::parse_fixed8(w).map(|(d, _)| d.to_string()).as_deref(),
            Some("99999999.99999999")
        );
        let w = b"999999999.9999999\"";
        assert_eq!(Dec::parse_fixed8(w), None);
    }

    /// `parse_bytes` (SWAR path first) against `parse_reference` on every kind of input:
    /// the same value or the same error text. Exchange shapes with every digit count around
    /// the SWAR limits (8 and 16 integer digits, 8 fractional ones), and random bytes over
    /// the characters that matter (NUL included: the SWAR loads pad short input with NULs).
    #[test]
    fn parse_bytes_matches_reference() {
        use crate::test_rng::XorShift;
        let mut inputs: Vec<Vec<u8>> = [
            "",
            "-",
            "0",
            "-0",
            "00",
            "0.0",
            "-0.0",
            "1.",
            ".5",
            "1..2",
            "1.2.3",
            "1e5",
            "1.5e5",
            "42000.01",
            "41950",
            "12.345",
            "56714.01000000",
            "0.00123000",
            "11.02444000",
            "1725416820000",
            "624782.95032640",
            "-3.5",
            "123456789012345",
            "1234567890123456",
            "123456789012345.12345678",
            "123456789012345.123456789",
            "1.123456789",
            "12345678",
            "123456789",
            "12345678.",
            "12345678.9",
            "0.00000000",
            "1\0",
            "1.5\0",
        ]
        .iter()
        .map(|s| s.replace("\\0", "\0").into_bytes())
        .collect();
        let mut r = XorShift(0x5eed_dec1_0a55_0001);
        let digits = |n: u64, r: &mut XorShift| -> Vec<u8> {
            (0..n).map(|_| b'0' + r.below(10) as u8).collect()
        };
        for _ in 0..200_000 {
            let mut s = Vec::new();
            match r.below(3) {
                0 => {
                    if r.below(5) == 0 {
                        s.push(b'-');
                    }
                    s.extend(digits(r.below(19), &mut r));
                    if r.below(4) > 0 {
                        s.push(b'.');
                        // Trailing zeros often, as exchanges pad to 8 places.
                        let f = r.below(11);
                        s.extend(digits(f, &mut r));
                        if r.below(2) == 0 {
                            s.extend(std::iter::repeat_n(b'0', r.below(4) as usize));
                        }
                    }
                    if r.below(10) == 0 {
                        s.push(b"e\"\0x.-"[r.below(6) as usize]);
                    }
                }
                _ => {
                    let alphabet = b"0123456789.-e+ \"\0\xff0000";
                    for _ in 0..r.below(27) {
                        s.push(alphabet[r.below(alphabet.len() as u64) as usize]);
                    }
                }
            }
            inputs.push(s);
        }
        let mut fast = 0;
        for b in &inputs {
            let want = Dec::parse_reference(b).map_err(|e| e.to_string());
            assert_eq!(
                Dec::parse_bytes(b).map_err(|e| e.to_string()),
                want,
                "{:?}",
                String::from_utf8_lossy(b)
            );
            if let Some((d, n)) = Dec::parse_swar::<false>(b) {
                assert_eq!(n, b.len());
                fast += 1;
                assert_eq!(Dec::new(d.mant, d.scale).ok(), Some(d), "not normalised");
            }
        }
        assert!(fast > 30_000, "{fast}");
    }

    #[test]
    fn load8_pads_with_zeros() {
        let b: Vec<u8> = (1..=20).collect();
        for at in 0..=22 {
            for len in 0..=b.len() {
                let s = &b[..len];
                let mut want = [0u8; 8];
                for (i, w) in want.iter_mut().enumerate() {
                    *w = s.get(at + i).copied().unwrap_or(0);
                }
                assert_eq!(swar::load8(s, at), u64::from_le_bytes(want), "{at} {len}");
            }
        }
    }

    #[test]
    fn compare_fast_path_matches_aligned_compare() {
        let vals: Vec<Dec> = [
            "0",
            "1",
            "-1",
            "0.5",
            "0.50000001",
            "57785.5",
            "57771.01",
            "-57771.01",
            "9223372036854775807",
            "-9223372036854775808",
            "0.000000000000000001",
            "0.000000000000000000000001",
            "123456789012345678.12345678",
            "999999999999999999999999999999999999",
        ]
        .iter()
        .map(|s| d(s))
        .collect();
        for a in &vals {
            for b in &vals {
                let scale = a.scale.max(b.scale);
                let want = match (a.rescaled(scale), b.rescaled(scale)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (None, _) => {
                        if a.mant < 0 {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        }
                    }
                    (_, None) => {
                        if b.mant < 0 {
                            Ordering::Greater
                        } else {
                            Ordering::Less
                        }
                    }
                };
                assert_eq!(a.cmp(b), want, "{a} vs {b}");
            }
        }
    }

    /// The i64 alignment, overflow included, against aligning in i128 (exact for these).
    #[test]
    fn compare_i64_alignment_matches_i128() {
        let mut rng = crate::test_rng::XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..200_000 {
            let (x, y) = (rng.next(), rng.next());
            // Mantissas of every size up to i64's, both signs; scales 0..=18.
            let m = |r: u64| {
                let bits = (r >> 58) as u32 + 1;
                let v = (r >> (64 - bits.min(63))) as i64;
                if r & 1 == 1 {
                    -v
                } else {
                    v
                }
            };
            let a = Dec {
                mant: i128::from(m(x)),
                scale: (x >> 1) as u8 % 19,
            };
            let b = Dec {
                mant: i128::from(m(y)),
                scale: (y >> 1) as u8 % 19,
            };
            let scale = a.scale.max(b.scale);
            let want = a.rescaled(scale).unwrap().cmp(&b.rescaled(scale).unwrap());
            assert_eq!(a.cmp(&b), want, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn compares_across_scales() {
        assert!(d("0.1") < d("0.11"));
        assert!(d("2") > d("1.99999999"));
        assert_eq!(d("1.0"), d("1"));
        assert!(d("-1") < d("0.0001"));
        let big = Dec::new(10i128.pow(35), 0).unwrap();
        let tiny = Dec::new(1, 24).unwrap();
        assert!(big > tiny);
        assert_eq!(tiny.cmp(&big), Ordering::Less);
    }

    /// The branch-free `max`/`min` pick by value, field by field, across scales and widths.
    #[test]
    fn max_and_min_pick_by_value() {
        let vals = [
            "0",
            "-1",
            "0.5",
            "57771.01",
            "57771.1",
            "1e-24",
            "999999999999999999999999999999999999",
        ];
        let vals: Vec<Dec> = vals
            .iter()
            .map(|s| {
                if *s == "1e-24" {
                    Dec::new(1, 24).unwrap()
                } else {
                    d(s)
                }
            })
            .collect();
        for &a in &vals {
            for &b in &vals {
                let (hi, lo) = (a.max(b), a.min(b));
                assert_eq!(hi, if b > a { b } else { a }, "max {a} {b}");
                assert_eq!(lo, if b < a { b } else { a }, "min {a} {b}");
                assert!(hi >= lo);
            }
        }
    }

    #[test]
    fn sums_are_exact() {
        let mut v = Dec::ZERO;
        for _ in 0..10 {
            v = v.checked_add(d("0.1")).unwrap();
        }
        assert_eq!(v.to_string(), "1");
        assert_eq!(
            d("0.00012").checked_add(d("3.5")).unwrap().to_string(),
            "3.50012"
        );
        assert!(Dec::new(10i128.pow(36), 0)
            .unwrap()
            .checked_add(Dec::new(9 * 10i128.pow(36), 0).unwrap())
            .is_err());
    }

    /// Normalisation and the running sum's addition (64-bit fast paths, 128-bit otherwise)
    /// against plain i128 arithmetic, with mantissas on both sides of the i64 boundary.
    #[test]
    fn sums_and_normalisation_match_i128_arithmetic() {
        fn norm_ref(mut m: i128, mut s: u8) -> (i128, u8) {
            while s > 0 && m % 10 == 0 {
                m /= 10;
                s -= 1;
            }
            (m, if m == 0 { 0 } else { s })
        }
        let mut rng = crate::test_rng::XorShift(0xdec5_0e11);
        let mant = |rng: &mut crate::test_rng::XorShift| -> i128 {
            let m = match rng.below(4) {
                0 => i128::from(rng.next() >> rng.below(64)),
                1 => i128::from(i64::MAX) - i128::from(rng.below(1000)),
                2 => (i128::from(rng.next()) << rng.below(8)) * 10i128.pow(rng.below(4) as u32),
                _ => i128::from(rng.below(100)) * 10i128.pow(rng.below(19) as u32),
            };
            if rng.below(3) == 0 {
                -m
            } else {
                m
            }
        };
        for _ in 0..20_000 {
            let (ma, sa) = (mant(&mut rng), rng.below(19) as u8);
            let (mb, sb) = (mant(&mut rng), rng.below(19) as u8);
            let a = Dec::new(ma, sa).unwrap();
            let b = Dec::new(mb, sb).unwrap();
            assert_eq!((a.mant, a.scale), norm_ref(ma, sa), "{ma} {sa}");
            // Exact in i128 (cases where i128 itself overflows are left out).
            let s = a.scale.max(b.scale);
            let aligned = |d: Dec| d.mant.checked_mul(10i128.pow(u32::from(s - d.scale)));
            let Some(exact) = aligned(a)
                .zip(aligned(b))
                .and_then(|(x, y)| x.checked_add(y))
            else {
                continue;
            };
            let want =
                (exact.unsigned_abs() < POW10[MAX_DIGITS + 1] as u128).then(|| norm_ref(exact, s));
            let got = a.checked_add(b).ok().map(|d| (d.mant, d.scale));
            assert_eq!(got, want, "{a:?} + {b:?}");
            let mut sum = a.sum();
            if sum.add(b) {
                let f = sum.finish();
                assert_eq!(Some((f.mant, f.scale)), want, "{a:?} + {b:?}");
            }
        }
    }

    /// Adds `vals` into a `DecSum` and by repeated `checked_add`: each addition refused by
    /// one exactly when by the other, and the same value at the end.
    fn check_sum_like_checked_add(vals: &[Dec]) {
        let mut sum = vals[0].sum();
        let mut want = Ok(vals[0]);
        for v in &vals[1..] {
            let ok = sum.add(*v);
            want = want.and_then(|w| w.checked_add(*v));
            assert_eq!(ok, want.is_ok(), "{vals:?}");
            if !ok {
                return;
            }
        }
        assert!(Ok(sum.finish()) == want, "{vals:?}");
    }

    #[test]
    fn dec_sum_equals_repeated_checked_add() {
        let mut rng = crate::test_rng::XorShift(7);
        for _ in 0..2000 {
            let n = 1 + rng.below(20);
            let vals: Vec<Dec> = (0..n)
                .map(|_| {
                    let scale = rng.below(12) as u8;
                    let mant = (rng.next() >> rng.below(64)) as i128;
                    Dec::new(mant, scale).unwrap()
                })
                .collect();
            check_sum_like_checked_add(&vals);
        }
        // Wide mantissas: sums across 2^63 and up to the range's 10^37, extreme decoded
        // values (up to i128::MAX) included.
        for _ in 0..4000 {
            let n = 1 + rng.below(8);
            let vals: Vec<Dec> = (0..n)
                .map(|_| {
                    let scale = rng.below(20) as u8;
                    let wide =
                        (i128::from(rng.next()) << 64 | i128::from(rng.next())) >> rng.below(127);
                    let mant = match rng.below(4) {
                        0 => i128::from(rng.next() as i64),
                        1 => wide,
                        2 => -wide,
                        _ => [i128::MAX, i128::MIN + 1, 10i128.pow(36) - 1, 1 << 119]
                            [rng.below(4) as usize],
                    };
                    Dec::new(mant, scale).unwrap()
                })
                .collect();
            check_sum_like_checked_add(&vals);
        }
        // Near the top of the range.
        let big = Dec::new(10i128.pow(35), 0).unwrap();
        let mut s = big.sum();
        assert!(
            s.add(Dec::new(1, 20).unwrap()) == big.checked_add(Dec::new(1, 20).unwrap()).is_ok()
        );
    }
}
