//! Bit-level I/O and the integer codes of sealed chunks.
//!
//! Bits are packed LSB-first. Three codes:
//! * `num`: an 8-bit length then the value's bits below its leading one (headers).
//! * `gamma`: Elias gamma, for escapes.
//! * `rice(k)`: `q = v >> k` in unary (q < [`ESC`]) or `ESC` ones plus `gamma(q - ESC + 1)`,
//!   then the `k` low bits. Robust to outliers, near-optimal for geometric-ish residuals.
//!
//! A *series* of `i128` is coded with the cheapest of {as is, first differences} x
//! {zig-zag, frame of reference (minus the minimum)} and the best Rice parameter.

use crate::error::{CoreError, CoreResult};

/// Unary length at which the Rice code escapes to gamma.
pub const ESC: u32 = 8;

pub fn corrupt(msg: &str) -> CoreError {
    CoreError::corrupt(format!("corrupt candle chunk: {msg}"))
}

#[inline]
fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

#[inline]
pub fn bitlen(v: u128) -> u32 {
    128 - v.leading_zeros()
}

#[inline]
pub fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

#[inline]
pub fn unzigzag(u: u128) -> i128 {
    ((u >> 1) as i128) ^ -((u & 1) as i128)
}

#[derive(Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    /// Pending bits, LSB first; `nacc < 64` between calls.
    acc: u64,
    nacc: u32,
}

impl BitWriter {
    pub fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            buf: Vec::with_capacity(bytes),
            acc: 0,
            nacc: 0,
        }
    }

    /// Writes the `n <= 56` low bits of `v`.
    #[inline]
    pub fn bits(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 56);
        self.put_exact(v & mask(n), n);
    }

    /// Writes the `n <= 128` low bits of `v`.
    #[inline]
    pub fn bits128(&mut self, v: u128, n: u32) {
        if n <= 56 {
            self.bits(v as u64, n);
            return;
        }
        let mut v = v;
        let mut n = n;
        while n > 0 {
            let take = n.min(32);
            self.bits(v as u64, take);
            v >>= take;
            n -= take;
        }
    }

    /// Writes the `n <= 128` low bits of `v` zero-extended (so `n > 64` adds zeros).
    #[inline]
    fn bits_wide64(&mut self, v: u64, n: u32) {
        if n <= 56 {
            self.bits(v, n);
        } else {
            self.bits128(u128::from(v), n);
        }
    }

    #[inline]
    pub fn bit(&mut self, b: bool) {
        self.bits(u64::from(b), 1);
    }

    pub fn num(&mut self, v: u128) {
        let l = bitlen(v);
        self.bits(u64::from(l), 8);
        if l >= 2 {
            self.bits128(v, l - 1);
        }
    }

    pub fn gamma(&mut self, x: u128) {
        debug_assert!(x >= 1);
        let z = bitlen(x).saturating_sub(1);
        let mut left = z;
        while left > 0 {
            let t = left.min(32);
            self.bits(0, t);
            left -= t;
        }
        self.bit(true);
        self.bits128(x, z);
    }

    #[inline]
    pub fn rice(&mut self, v: u128, k: u32) {
        let q = v >> k;
        if q < u128::from(ESC) {
            let q = q as u32;
            // q ones then a zero
            self.bits(mask(q), q + 1);
        } else {
            self.bits(mask(ESC), ESC);
            self.gamma(q - u128::from(ESC) + 1);
        }
        self.bits128(v, k);
    }

    /// Writes the `n` bits of `v < 2^n`, `n <= 56` (no masking).
    #[inline(always)]
    fn put_exact(&mut self, v: u64, n: u32) {
        push_exact(&mut self.buf, &mut self.acc, &mut self.nacc, v, n);
    }

    /// [`rice`](Self::rice) of a value that fits in 64 bits: the same bits (one code of a
    /// [`RiceRun`], for the tests).
    #[cfg(test)]
    pub fn rice64(&mut self, v: u64, k: u32) {
        RiceRun::new(self).put(v, k);
    }

    #[cold]
    #[inline(never)]
    fn rice64_slow(&mut self, v: u64, k: u32) {
        let q = shr64(v, k);
        if q < u64::from(ESC) {
            self.bits(mask(q as u32), q as u32 + 1);
        } else {
            self.bits(mask(ESC), ESC);
            self.gamma(u128::from(q - u64::from(ESC) + 1));
        }
        self.bits_wide64(v, k);
    }

    pub fn bit_len(&self) -> usize {
        self.buf.len() * 8 + self.nacc as usize
    }

    pub fn finish(mut self) -> Vec<u8> {
        let bytes = self.nacc.div_ceil(8) as usize;
        self.buf
            .extend_from_slice(self.acc.to_le_bytes().get(..bytes).unwrap_or(&[]));
        self.buf
    }
}

/// Appends the `n` bits of `v < 2^n`, `n <= 56`, to the pending bits `acc` (`nacc < 64` of
/// them), a full word going out to `buf`.
#[inline(always)]
fn push_exact(buf: &mut Vec<u8>, acc: &mut u64, nacc: &mut u32, v: u64, n: u32) {
    debug_assert!(n <= 56 && *nacc < 64 && v >> n == 0);
    *acc |= v << *nacc;
    let free = 64 - *nacc;
    if n < free {
        *nacc += n;
    } else {
        // The word is full: out with it, keep the bits that did not fit (free <= n <= 56).
        buf.extend_from_slice(&acc.to_le_bytes());
        *acc = v >> free;
        *nacc = n - free;
    }
}

/// A run of [`BitWriter::rice64`] codes. The pending bits live here (in registers) for the
/// run rather than in the writer, which the compiler would reload and store around every
/// code (the buffer's growth call may see the writer). Handed back on drop.
pub struct RiceRun<'a> {
    w: &'a mut BitWriter,
    acc: u64,
    nacc: u32,
}

impl<'a> RiceRun<'a> {
    #[inline(always)]
    pub fn new(w: &'a mut BitWriter) -> Self {
        let (acc, nacc) = (w.acc, w.nacc);
        RiceRun { w, acc, nacc }
    }

    /// [`BitWriter::rice64`].
    #[inline(always)]
    pub fn put(&mut self, v: u64, k: u32) {
        if k <= 48 {
            let q = v >> k;
            if q < u64::from(ESC) {
                // q ones, a zero, then the k low bits (at most 7 + 1 + 48 bits, one write):
                // `low << (q + 1) | (2^q - 1)` is `(2 low + 1) << q` minus one.
                let low = v & ((1u64 << k) - 1);
                let code = (((low << 1) | 1) << q) - 1;
                push_exact(
                    &mut self.w.buf,
                    &mut self.acc,
                    &mut self.nacc,
                    code,
                    q as u32 + 1 + k,
                );
                return;
            }
        }
        self.w.acc = self.acc;
        self.w.nacc = self.nacc;
        self.w.rice64_slow(v, k);
        self.acc = self.w.acc;
        self.nacc = self.w.nacc;
    }
}

impl Drop for RiceRun<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.w.acc = self.acc;
        self.w.nacc = self.nacc;
    }
}

/// `v >> k`, 0 when `k >= 64`.
#[inline]
fn shr64(v: u64, k: u32) -> u64 {
    v.checked_shr(k).unwrap_or(0)
}

pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
    /// Decode every Rice code with [`BitReader::rice_ref`] (differential tests).
    #[cfg(test)]
    pub reference: bool,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            end: data.len().saturating_mul(8),
            #[cfg(test)]
            reference: false,
        }
    }

    /// At least 57 bits from the current position, zero-padded past the end.
    #[inline]
    fn peek(&self) -> u64 {
        let byte = self.pos / 8;
        let sh = (self.pos % 8) as u32;
        let w = match self
            .data
            .get(byte..byte.saturating_add(8))
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
        {
            Some(a) => u64::from_le_bytes(a),
            None => {
                let mut a = [0u8; 8];
                for (d, s) in a.iter_mut().zip(self.data.get(byte..).unwrap_or(&[])) {
                    *d = *s;
                }
                u64::from_le_bytes(a)
            }
        };
        w >> sh
    }

    #[inline]
    fn consume(&mut self, n: u32) -> CoreResult<()> {
        let p = self.pos + n as usize;
        if p > self.end {
            return Err(corrupt("truncated bit stream"));
        }
        self.pos = p;
        Ok(())
    }

    #[inline]
    pub fn bits(&mut self, n: u32) -> CoreResult<u64> {
        debug_assert!(n <= 56);
        let v = self.peek() & mask(n);
        self.consume(n)?;
        Ok(v)
    }

    pub fn bits128(&mut self, n: u32) -> CoreResult<u128> {
        if n <= 56 {
            return self.bits(n).map(u128::from);
        }
        if n > 128 {
            return Err(corrupt("bit field too wide"));
        }
        let mut v = 0u128;
        let mut got = 0u32;
        while got < n {
            let take = (n - got).min(32);
            v |= u128::from(self.bits(take)?) << got;
            got += take;
        }
        Ok(v)
    }

    #[inline]
    pub fn bit(&mut self) -> CoreResult<bool> {
        Ok(self.bits(1)? == 1)
    }

    pub fn num(&mut self) -> CoreResult<u128> {
        let l = self.bits(8)? as u32;
        match l {
            0 => Ok(0),
            1 => Ok(1),
            2..=128 => Ok((1u128 << (l - 1)) | self.bits128(l - 1)?),
            _ => Err(corrupt("number longer than 128 bits")),
        }
    }

    pub fn gamma(&mut self) -> CoreResult<u128> {
        let mut z = 0u32;
        loop {
            let p = self.peek() & mask(56);
            if p != 0 {
                let tz = p.trailing_zeros();
                z += tz;
                self.consume(tz + 1)?;
                break;
            }
            z += 56;
            self.consume(56)?;
            if z > 127 {
                return Err(corrupt("gamma code too long"));
            }
        }
        if z > 127 {
            return Err(corrupt("gamma code too long"));
        }
        Ok((1u128 << z) | self.bits128(z)?)
    }

    /// Reads a [`BitWriter::rice`] code. The common case (quotient below [`ESC`], `k <= 48`:
    /// at most 56 bits) is one peek, two bit counts and one bounds check.
    #[inline(always)]
    pub fn rice(&mut self, k: u32) -> CoreResult<u128> {
        #[cfg(test)]
        if self.reference {
            return self.rice_ref(k);
        }
        let w = self.peek();
        let q = w.trailing_ones();
        if q < ESC && k <= 48 {
            let p = self.pos + (q + 1 + k) as usize;
            if p > self.end {
                return Err(corrupt("truncated bit stream"));
            }
            self.pos = p;
            let low = (w >> (q + 1)) & ((1u64 << k) - 1);
            return Ok(u128::from((u64::from(q) << k) | low));
        }
        self.rice_slow(k)
    }

    #[cold]
    #[inline(never)]
    fn rice_slow(&mut self, k: u32) -> CoreResult<u128> {
        self.rice_ref(k)
    }

    /// The general Rice decoder, bit field by bit field (the reference for [`rice`]).
    ///
    /// [`rice`]: Self::rice
    pub fn rice_ref(&mut self, k: u32) -> CoreResult<u128> {
        let ones = self.peek().trailing_ones().min(ESC);
        let q = if ones < ESC {
            self.consume(ones + 1)?;
            u128::from(ones)
        } else {
            self.consume(ESC)?;
            let g = self.gamma()?;
            (g - 1)
                .checked_add(u128::from(ESC))
                .ok_or_else(|| corrupt("rice quotient overflows"))?
        };
        if k > 0 && (k >= 128 || (q >> (128 - k)) != 0) {
            return Err(corrupt("rice value overflows"));
        }
        let low = self.bits128(k)?;
        Ok((q << k) | low)
    }

    /// Bytes touched so far (the last one possibly partially).
    pub fn bytes_used(&self) -> usize {
        self.pos.div_ceil(8)
    }
}

#[inline]
fn gamma_cost(x: u128) -> u64 {
    u64::from(2 * bitlen(x).saturating_sub(1) + 1)
}

#[inline]
fn rice_cost(v: u128, k: u32) -> u64 {
    let q = v >> k;
    let head = if q < u128::from(ESC) {
        q as u64 + 1
    } else {
        u64::from(ESC) + gamma_cost(q - u128::from(ESC) + 1)
    };
    head + u64::from(k)
}

/// Cheap size estimate of a transformed body, for choosing between transforms.
fn estimate(us: impl Iterator<Item = u128>) -> u64 {
    us.map(|u| u64::from(bitlen(u)) + 2).sum()
}

/// How the Rice parameter of each value is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
enum KMode {
    /// One `k` for the whole series.
    Fixed(u32),
    /// `k` follows a running mean of the values (JPEG-LS style), starting at `k0`.
    Adaptive { k0: u32, off: i32 },
    /// `k = hint + off`, the hint coming from already-decoded fields.
    Hinted { off: i32 },
}

/// Halve the running mean's counters at this count (adaptation speed).
const ADAPT_N: u32 = 16;

struct Adapt {
    a: u128,
    n: u32,
}

impl Adapt {
    fn new(k0: u32) -> Adapt {
        Adapt {
            a: 1u128 << k0.min(127),
            n: 1,
        }
    }
    /// `k` before the offset.
    #[inline]
    fn base(&self) -> i32 {
        bitlen(self.a) as i32 - bitlen(u128::from(self.n)) as i32
    }
    #[inline]
    fn k(&self, off: i32) -> u32 {
        adapt_k(self.base(), off)
    }
    #[inline]
    fn update(&mut self, u: u128) {
        self.a = self.a.saturating_add(u);
        self.n += 1;
        if self.n >= ADAPT_N {
            self.a >>= 1;
            self.n >>= 1;
        }
    }
}

/// [`Adapt`] in 64 bits, for `k0 <= 62` and values below 2^58 ([`Adapt64::fits`]). At most
/// 15 values are added between two halvings, so the running sum stays below
/// `max(2^k0, 15 * 2^58) + 15 * 2^58 < 2^63`: `Adapt`'s saturating u128 sum never saturates
/// there, and both give the same parameters.
struct Adapt64;

impl Adapt64 {
    #[inline]
    fn fits(k0: u32, max: u64) -> bool {
        k0 <= 62 && max < 1 << 58
    }

    /// Calls `f(u, base)` for every value, `base` being [`Adapt::base`] before `u` is added.
    /// The count runs 1..=15, then 8..=15 over and over (halved at 16), so the loop goes
    /// by those blocks: within one no halving is due, and after the first the count's bit
    /// length is 4.
    #[inline(always)]
    fn walk(us: &[u64], k0: u32, mut f: impl FnMut(u64, i32)) {
        let mut a: u64 = 1 << k0;
        let (head, rest) = us.split_at(us.len().min(ADAPT_N as usize - 1));
        for (n, &u) in (1u32..).zip(head) {
            f(
                u,
                bitlen64(a) as i32 - (u32::BITS - n.leading_zeros()) as i32,
            );
            a += u;
        }
        a >>= 1;
        for block in rest.chunks(ADAPT_N as usize / 2) {
            for &u in block {
                f(u, bitlen64(a) as i32 - 4);
                a += u;
            }
            a >>= 1;
        }
    }
}

#[inline]
fn adapt_k(base: i32, off: i32) -> u32 {
    (base + off).clamp(0, 127) as u32
}

#[inline]
fn hinted_k(h: u32, off: i32) -> u32 {
    (h as i32 + off).clamp(0, 127) as u32
}

/// Calls `f(u, k)` for every value under `mode`.
fn walk(us: &[u128], hints: &[u32], mode: KMode, mut f: impl FnMut(u128, u32)) {
    match mode {
        KMode::Fixed(k) => us.iter().for_each(|&u| f(u, k)),
        KMode::Adaptive { k0, off } => {
            let mut ad = Adapt::new(k0);
            for &u in us {
                f(u, ad.k(off));
                ad.update(u);
            }
        }
        KMode::Hinted { off } => {
            for (&u, &h) in us.iter().zip(hints.iter().chain(std::iter::repeat(&0))) {
                f(u, hinted_k(h, off));
            }
        }
    }
}

fn mode_cost(us: &[u128], hints: &[u32], mode: KMode) -> u64 {
    let mut c = 0u64;
    walk(us, hints, mode, |u, k| c += rice_cost(u, k));
    c
}

/// Reusable buffers of [`put_series`].
#[derive(Default)]
pub struct SeriesScratch {
    wide: Vec<u128>,
    narrow: Vec<i64>,
    /// [`put_series_i64`]'s values widened for the general path.
    vals128: Vec<i128>,
    us: Vec<u64>,
    /// Always take the general 128-bit path (for differential tests).
    pub wide_only: bool,
}

/// Writes `vals` (the decoder knows how many). With `hints` (one per value, known to the
/// decoder) the values are zig-zagged as they are and may use hinted parameters.
///
/// Values within +-2^62 (nearly always) take a 64-bit path that writes the same bits as the
/// general 128-bit one.
pub fn put_series(w: &mut BitWriter, vals: &[i128], sc: &mut SeriesScratch, hints: Option<&[u32]>) {
    if !sc.wide_only {
        const LIM: i128 = 1 << 62;
        // Copy and check in one branch-free pass: `v + 2^62` is below 2^63 (as unsigned)
        // exactly when `v` is within +-2^62.
        let mut out = 0u128;
        sc.narrow.clear();
        sc.narrow.extend(vals.iter().map(|&v| {
            out |= v.wrapping_add(LIM) as u128 >> 63;
            v as i64
        }));
        if out == 0 {
            put_series64(w, &sc.narrow, &mut sc.us, hints);
            return;
        }
    }
    put_series_wide(w, vals, &mut sc.wide, hints);
}

/// [`put_series`] of values given in 64 bits: the same bits.
pub fn put_series_i64(
    w: &mut BitWriter,
    vals: &[i64],
    sc: &mut SeriesScratch,
    hints: Option<&[u32]>,
) {
    // Outside +-2^62 (never for exchange data) or for tests: the general path.
    let out = vals
        .iter()
        .fold(0u64, |o, &v| o | (v.wrapping_add(1 << 62) as u64 >> 63));
    if out == 0 && !sc.wide_only {
        put_series64(w, vals, &mut sc.us, hints);
        return;
    }
    let mut wide = std::mem::take(&mut sc.vals128);
    wide.clear();
    wide.extend(vals.iter().map(|&v| i128::from(v)));
    put_series_wide(w, &wide, &mut sc.wide, hints);
    sc.vals128 = wide;
}

fn put_series_wide(
    w: &mut BitWriter,
    vals: &[i128],
    scratch: &mut Vec<u128>,
    hints: Option<&[u32]>,
) {
    let Some(&first) = vals.first() else {
        return;
    };
    scratch.clear();
    if let Some(h) = hints {
        scratch.extend(vals.iter().map(|&v| zigzag(v)));
        put_unsigned(w, scratch, Some(h));
        return;
    }
    let deltas = || {
        vals.iter()
            .zip(vals.iter().skip(1))
            .map(|(a, b)| b.wrapping_sub(*a))
    };
    let min_plain = vals.iter().copied().min().unwrap_or(0);
    let min_delta = deltas().min().unwrap_or(0);
    let hdr = |v: i128| u64::from(bitlen(zigzag(v))) + 8;
    let cands = [
        (false, false, estimate(vals.iter().map(|&v| zigzag(v)))),
        (
            false,
            true,
            hdr(min_plain) + estimate(vals.iter().map(|&v| v.wrapping_sub(min_plain) as u128)),
        ),
        (true, false, hdr(first) + estimate(deltas().map(zigzag))),
        (
            true,
            true,
            hdr(first)
                + hdr(min_delta)
                + estimate(deltas().map(|d| d.wrapping_sub(min_delta) as u128)),
        ),
    ];
    let (delta, fore) = cands
        .iter()
        .filter(|c| !c.0 || vals.len() > 1)
        .min_by_key(|c| c.2)
        .map(|c| (c.0, c.1))
        .unwrap_or((false, false));
    w.bit(delta);
    if delta {
        w.num(zigzag(first));
        w.bit(fore);
        if fore {
            w.num(zigzag(min_delta));
            scratch.extend(deltas().map(|d| d.wrapping_sub(min_delta) as u128));
        } else {
            scratch.extend(deltas().map(zigzag));
        }
    } else {
        w.bit(fore);
        if fore {
            w.num(zigzag(min_plain));
            scratch.extend(vals.iter().map(|&v| v.wrapping_sub(min_plain) as u128));
        } else {
            scratch.extend(vals.iter().map(|&v| zigzag(v)));
        }
    }
    put_unsigned(w, scratch, None);
}

/// All-zero flag, else the parameter mode and the values.
fn put_unsigned(w: &mut BitWriter, us: &[u128], hints: Option<&[u32]>) {
    if us.is_empty() {
        return;
    }
    let total: u64 = us.iter().map(|&u| u64::from(bitlen(u))).sum();
    if total == 0 {
        w.bit(true);
        return;
    }
    w.bit(false);
    let m = us.len() as u64;
    let avg = total.div_ceil(m).min(127) as u32;
    let mut best = (u64::MAX, KMode::Fixed(0));
    let consider = |mode: KMode, best: &mut (u64, KMode)| {
        let c = mode_cost(us, hints.unwrap_or(&[]), mode);
        if c < best.0 {
            *best = (c, mode);
        }
    };
    for k in avg.saturating_sub(2)..=avg {
        consider(KMode::Fixed(k), &mut best);
    }
    let k0 = match best.1 {
        KMode::Fixed(k) => k,
        _ => avg,
    };
    if us.len() >= 8 {
        for off in -1..=0 {
            consider(KMode::Adaptive { k0, off }, &mut best);
        }
    }
    if let Some(h) = hints {
        let hsum: i64 = h.iter().take(us.len()).map(|&x| i64::from(x)).sum();
        let center = ((total as i64 - hsum) / m as i64).clamp(-40, 40) as i32;
        for off in center - 2..=center {
            consider(KMode::Hinted { off }, &mut best);
        }
    }
    put_mode(w, best.1);
    walk(us, hints.unwrap_or(&[]), best.1, |u, k| w.rice(u, k));
}

#[inline]
fn bitlen64(v: u64) -> u32 {
    64 - v.leading_zeros()
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// [`rice_cost`] of a value that fits in 64 bits.
#[inline(always)]
fn rice_cost64(v: u64, k: u32) -> u64 {
    let q = shr64(v, k);
    if q < u64::from(ESC) {
        q + 1 + u64::from(k)
    } else {
        escape_cost64(q) + u64::from(k)
    }
}

/// The head of a Rice code whose quotient `q >= ESC` escapes: ESC ones then gamma(q-ESC+1).
#[cold]
#[inline(never)]
fn escape_cost64(q: u64) -> u64 {
    u64::from(ESC) + u64::from(2 * (bitlen64(q - u64::from(ESC) + 1) - 1) + 1)
}

/// [`put_series_wide`] for values within +-2^62: every transform (zig-zag, differences, minus
/// the minimum) then fits in 64 bits, and the estimates, the choices and the bits written
/// are the same.
fn put_series64(w: &mut BitWriter, vals: &[i64], us: &mut Vec<u64>, hints: Option<&[u32]>) {
    let Some(&first) = vals.first() else {
        return;
    };
    us.clear();
    if let Some(h) = hints {
        us.extend(vals.iter().map(|&v| zigzag64(v)));
        put_unsigned64(w, us, Some(h), Stats::of(us));
        return;
    }
    let rest = vals.get(1..).unwrap_or(&[]);
    // Pass 1: the extremes and the zig-zag sums of bit lengths. A sum of bit lengths is
    // 64 per value minus the sum of leading zeros (one operation less per value).
    let lz = |v: u64| u64::from(v.leading_zeros());
    let (mut min_plain, mut min_delta) = (first, i64::MAX);
    let (mut max_plain, mut max_delta) = (first, i64::MIN);
    let mut lz_plain = lz(zigzag64(first));
    let mut lz_delta = 0u64;
    let mut prev = first;
    for &v in rest {
        min_plain = min_plain.min(v);
        max_plain = max_plain.max(v);
        lz_plain += lz(zigzag64(v));
        let d = v - prev;
        min_delta = min_delta.min(d);
        max_delta = max_delta.max(d);
        lz_delta += lz(zigzag64(d));
        prev = v;
    }
    if rest.is_empty() {
        min_delta = 0;
        max_delta = 0;
    }
    let n = vals.len() as u64;
    let bits_plain = 64 * n - lz_plain;
    let bits_delta = 64 * (n - 1) - lz_delta;
    // Pass 2: the sums of bit lengths above the minima (none for a constant series: every
    // value and difference is at its minimum).
    let (mut fore_plain, mut fore_delta) = (0, 0);
    if min_plain != max_plain {
        let mut lz_plain = lz((first - min_plain) as u64);
        let mut lz_delta = 0u64;
        let mut prev = first;
        for &v in rest {
            lz_plain += lz((v - min_plain) as u64);
            lz_delta += lz(((v - prev) as u64).wrapping_sub(min_delta as u64));
            prev = v;
        }
        fore_plain = 64 * n - lz_plain;
        fore_delta = 64 * (n - 1) - lz_delta;
    }
    let hdr = |v: i64| u64::from(bitlen64(zigzag64(v))) + 8;
    let cands = [
        (false, false, bits_plain + 2 * n),
        (false, true, hdr(min_plain) + fore_plain + 2 * n),
        (true, false, hdr(first) + bits_delta + 2 * (n - 1)),
        (
            true,
            true,
            hdr(first) + hdr(min_delta) + fore_delta + 2 * (n - 1),
        ),
    ];
    let (delta, fore) = cands
        .iter()
        .filter(|c| !c.0 || vals.len() > 1)
        .min_by_key(|c| c.2)
        .map(|c| (c.0, c.1))
        .unwrap_or((false, false));
    // The transformed values' bit-length sum is the chosen estimate's, and their maximum
    // follows from the extremes (zig-zag grows with the magnitude).
    let zz_max = |lo: i64, hi: i64| zigzag64(lo).max(zigzag64(hi));
    w.bit(delta);
    let stats = if delta {
        w.num(u128::from(zigzag64(first)));
        w.bit(fore);
        let mut prev = first;
        if fore {
            w.num(u128::from(zigzag64(min_delta)));
            us.extend(rest.iter().map(|&v| {
                let d = ((v - prev) as u64).wrapping_sub(min_delta as u64);
                prev = v;
                d
            }));
            Stats {
                total: fore_delta,
                max: (max_delta as u64).wrapping_sub(min_delta as u64),
            }
        } else {
            us.extend(rest.iter().map(|&v| {
                let d = zigzag64(v - prev);
                prev = v;
                d
            }));
            Stats {
                total: bits_delta,
                max: zz_max(min_delta, max_delta),
            }
        }
    } else {
        w.bit(fore);
        if fore {
            w.num(u128::from(zigzag64(min_plain)));
            us.extend(vals.iter().map(|&v| (v - min_plain) as u64));
            Stats {
                total: fore_plain,
                max: (max_plain - min_plain) as u64,
            }
        } else {
            us.extend(vals.iter().map(|&v| zigzag64(v)));
            Stats {
                total: bits_plain,
                max: zz_max(min_plain, max_plain),
            }
        }
    };
    debug_assert_eq!(stats, Stats::of(us));
    put_unsigned64(w, us, None, stats);
}

/// The sum of the bit lengths and the largest of a slice of values.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stats {
    total: u64,
    max: u64,
}

impl Stats {
    fn of(us: &[u64]) -> Stats {
        us.iter().fold(Stats { total: 0, max: 0 }, |s, &u| Stats {
            total: s.total + u64::from(bitlen64(u)),
            max: s.max.max(u),
        })
    }
}

/// [`put_unsigned`] for 64-bit values (`stats` theirs): each family of parameter modes is
/// costed in one pass.
fn put_unsigned64(w: &mut BitWriter, us: &[u64], hints: Option<&[u32]>, stats: Stats) {
    if us.is_empty() {
        return;
    }
    let total = stats.total;
    if total == 0 {
        w.bit(true);
        return;
    }
    w.bit(false);
    let m = us.len() as u64;
    let avg = total.div_ceil(m).min(127) as u32;
    let mut best = (u64::MAX, KMode::Fixed(0));
    let consider = |c: u64, mode: KMode, best: &mut (u64, KMode)| {
        if c < best.0 {
            *best = (c, mode);
        }
    };
    // Fixed k in avg-2..=avg (fewer when avg < 2), in that order.
    let klo = avg.saturating_sub(2);
    let fc = fixed_costs(us, klo, stats.max);
    for (j, &c) in fc.iter().enumerate().take((avg - klo + 1) as usize) {
        consider(c, KMode::Fixed(klo + j as u32), &mut best);
    }
    let k0 = match best.1 {
        KMode::Fixed(k) => k,
        _ => avg,
    };
    if us.len() >= 8 {
        for (j, &c) in adaptive_costs(us, k0, stats.max).iter().enumerate() {
            consider(
                c,
                KMode::Adaptive {
                    k0,
                    off: j as i32 - 1,
                },
                &mut best,
            );
        }
    }
    if let Some(h) = hints {
        let hsum: i64 = h.iter().take(us.len()).map(|&x| i64::from(x)).sum();
        let center = ((total as i64 - hsum) / m as i64).clamp(-40, 40) as i32;
        for (j, &c) in hinted_costs(us, h, center - 2).iter().enumerate() {
            consider(
                c,
                KMode::Hinted {
                    off: center - 2 + j as i32,
                },
                &mut best,
            );
        }
    }
    let mode = best.1;
    put_mode(w, mode);
    let mut w = RiceRun::new(w);
    match mode {
        KMode::Fixed(k) => us.iter().for_each(|&u| w.put(u, k)),
        KMode::Adaptive { k0, off } => {
            if Adapt64::fits(k0, stats.max) {
                Adapt64::walk(us, k0, |u, base| w.put(u, adapt_k(base, off)));
            } else {
                let mut ad = Adapt::new(k0);
                for &u in us {
                    w.put(u, ad.k(off));
                    ad.update(u128::from(u));
                }
            }
        }
        KMode::Hinted { off } => {
            let h = hints.unwrap_or(&[]);
            for (i, &u) in us.iter().enumerate() {
                w.put(u, hinted_k(h.get(i).copied().unwrap_or(0), off));
            }
        }
    }
}

/// Rice costs of `us` with `k = kb + j` for j in 0..N, where `kb + j` stays in 0..=127.
/// While `v >> kb < ESC` every head is `(q >> j) + 1`, so one shift serves all N.
#[inline(always)]
fn costs_from<const N: usize>(v: u64, kb: u32, c: &mut [u64; N]) {
    let q = shr64(v, kb);
    if q < u64::from(ESC) {
        for (j, c) in c.iter_mut().enumerate() {
            *c += (q >> j) + 1 + u64::from(kb) + j as u64;
        }
    } else {
        for (j, c) in c.iter_mut().enumerate() {
            *c += rice_cost64(v, kb + j as u32);
        }
    }
}

/// Costs of the fixed parameters `klo`, `klo + 1`, `klo + 2` (`klo <= 125`) of values up
/// to `max`.
#[inline(never)]
fn fixed_costs(us: &[u64], klo: u32, max: u64) -> [u64; 3] {
    if klo + 2 < 64 {
        // Every cost as if no quotient escaped: the sum of the quotients plus (1 + k) per
        // value, three shifted sums (a loop the compiler vectorises). Then the values whose
        // quotient escapes (only when `max` does) get their real cost instead. Wrapping
        // arithmetic: the shifted sums of large values may wrap, the costs do not.
        let (mut s0, mut s1, mut s2) = (0u64, 0u64, 0u64);
        for &u in us {
            s0 = s0.wrapping_add(u >> klo);
            s1 = s1.wrapping_add(u >> (klo + 1));
            s2 = s2.wrapping_add(u >> (klo + 2));
        }
        let m = us.len() as u64;
        let k = u64::from(klo);
        let mut c = [
            s0.wrapping_add(m * (k + 1)),
            s1.wrapping_add(m * (k + 2)),
            s2.wrapping_add(m * (k + 3)),
        ];
        if max >> klo >= u64::from(ESC) {
            // The values whose quotient escapes are those >= ESC << klo (every value when
            // that does not fit; the check below sorts them out).
            let lim = if klo < 61 { u64::from(ESC) << klo } else { 0 };
            for &u in us.iter().filter(|&&u| u >= lim) {
                for (j, c) in c.iter_mut().enumerate() {
                    // An escaped head costs ESC + gamma(q - ESC + 1) instead of q + 1.
                    let q = u >> (klo + j as u32);
                    if q >= u64::from(ESC) {
                        let head = u64::from(ESC + 2 * bitlen64(q - u64::from(ESC) + 1) - 1);
                        *c = c.wrapping_sub(q + 1).wrapping_add(head);
                    }
                }
            }
        }
        return c;
    }
    let mut c = [0u64; 3];
    for &u in us {
        costs_from(u, klo, &mut c);
    }
    c
}

/// Costs of the adaptive modes `{k0, off: -1}` and `{k0, off: 0}` of values up to `max`.
#[inline(never)]
fn adaptive_costs(us: &[u64], k0: u32, max: u64) -> [u64; 2] {
    if Adapt64::fits(k0, max) {
        // The unescaped costs are (q >> j) + 1 + kb + j: summed by parts.
        let (mut q0, mut q1, mut kbs, mut fast) = (0u64, 0u64, 0u64, 0u64);
        let (mut c0, mut c1) = (0u64, 0u64);
        Adapt64::walk(us, k0, |u, base| {
            // The mean is below 2^63, so base <= 63 and the shift below is in range.
            if base >= 1 {
                let kb = (base - 1) as u32;
                let q = u >> kb;
                if q < u64::from(ESC) {
                    q0 += q;
                    q1 += q >> 1;
                    kbs += u64::from(kb);
                    fast += 1;
                } else {
                    c0 += rice_cost64(u, kb);
                    c1 += rice_cost64(u, kb + 1);
                }
            } else {
                c0 += rice_cost64(u, adapt_k(base, -1));
                c1 += rice_cost64(u, adapt_k(base, 0));
            }
        });
        return [c0 + q0 + kbs + fast, c1 + q1 + kbs + 2 * fast];
    }
    let mut c = [0u64; 2];
    let mut ad = Adapt::new(k0);
    for &u in us {
        let base = ad.base();
        if (1..=127).contains(&base) {
            costs_from(u, (base - 1) as u32, &mut c);
        } else {
            c[0] += rice_cost64(u, adapt_k(base, -1));
            c[1] += rice_cost64(u, adapt_k(base, 0));
        }
        ad.update(u128::from(u));
    }
    c
}

/// Costs of the hinted modes `{off: lo}`, `{off: lo + 1}`, `{off: lo + 2}`.
#[inline(never)]
fn hinted_costs(us: &[u64], hints: &[u32], lo: i32) -> [u64; 3] {
    // The unescaped costs are (q >> j) + 1 + kb + j: summed by parts.
    let (mut q0, mut q1, mut q2, mut kbs, mut fast) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut c = [0u64; 3];
    for (i, &u) in us.iter().enumerate() {
        let h = hints.get(i).copied().unwrap_or(0);
        let kb = h as i32 + lo;
        if (0..=125).contains(&kb) {
            let q = shr64(u, kb as u32);
            if q < u64::from(ESC) {
                q0 += q;
                q1 += q >> 1;
                q2 += q >> 2;
                kbs += kb as u64;
                fast += 1;
            } else {
                for (j, c) in c.iter_mut().enumerate() {
                    *c += rice_cost64(u, kb as u32 + j as u32);
                }
            }
        } else {
            for (j, c) in c.iter_mut().enumerate() {
                *c += rice_cost64(u, hinted_k(h, lo + j as i32));
            }
        }
    }
    [
        c[0] + q0 + kbs + fast,
        c[1] + q1 + kbs + 2 * fast,
        c[2] + q2 + kbs + 3 * fast,
    ]
}

fn put_mode(w: &mut BitWriter, mode: KMode) {
    match mode {
        KMode::Fixed(k) => {
            w.bits(0, 2);
            w.bits(u64::from(k), 7);
        }
        KMode::Adaptive { k0, off } => {
            w.bits(1, 2);
            w.bits(u64::from(k0), 7);
            w.bits((off + 8) as u64, 4);
        }
        KMode::Hinted { off } => {
            w.bits(2, 2);
            w.bits((off + 64) as u64, 7);
        }
    }
}

/// Reads `n` values written by [`put_series`] into `out` (cleared first); `hints` as given
/// to `put_series`.
pub fn get_series(
    r: &mut BitReader,
    n: usize,
    out: &mut Vec<i128>,
    hints: Option<&[u32]>,
) -> CoreResult<()> {
    out.clear();
    if n == 0 {
        return Ok(());
    }
    if let Some(h) = hints {
        return get_unsigned(r, n, h, |u| out.push(unzigzag(u)));
    }
    let delta = r.bit()?;
    if delta {
        let first = unzigzag(r.num()?);
        let fore = r.bit()?;
        let base = if fore { unzigzag(r.num()?) } else { 0 };
        out.push(first);
        let mut prev = first;
        get_unsigned(r, n - 1, &[], |u| {
            let d = if fore {
                (base as u128).wrapping_add(u) as i128
            } else {
                unzigzag(u)
            };
            prev = prev.wrapping_add(d);
            out.push(prev);
        })
    } else {
        let fore = r.bit()?;
        let base = if fore { unzigzag(r.num()?) } else { 0 };
        get_unsigned(r, n, &[], |u| {
            out.push(if fore {
                (base as u128).wrapping_add(u) as i128
            } else {
                unzigzag(u)
            })
        })
    }
}

fn get_unsigned(
    r: &mut BitReader,
    m: usize,
    hints: &[u32],
    mut f: impl FnMut(u128),
) -> CoreResult<()> {
    if m == 0 {
        return Ok(());
    }
    if r.bit()? {
        for _ in 0..m {
            f(0);
        }
        return Ok(());
    }
    match r.bits(2)? {
        0 => {
            let k = r.bits(7)? as u32;
            for _ in 0..m {
                f(r.rice(k)?);
            }
        }
        1 => {
            let k0 = r.bits(7)? as u32;
            let off = r.bits(4)? as i32 - 8;
            let mut ad = Adapt::new(k0);
            for _ in 0..m {
                let u = r.rice(ad.k(off))?;
                ad.update(u);
                f(u);
            }
        }
        2 => {
            let off = r.bits(7)? as i32 - 64;
            let mut hs = hints.iter().chain(std::iter::repeat(&0));
            for _ in 0..m {
                let h = hs.next().copied().unwrap_or(0);
                f(r.rice(hinted_k(h, off))?);
            }
        }
        _ => return Err(corrupt("bad parameter mode")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        let vals: Vec<u128> = vec![
            0,
            1,
            2,
            7,
            8,
            9,
            255,
            256,
            1 << 56,
            (1 << 64) + 3,
            u128::MAX,
            u128::MAX - 1,
            1 << 127,
        ];
        let mut w = BitWriter::default();
        for &v in &vals {
            w.num(v);
            if v > 0 {
                w.gamma(v);
            }
            for k in [0, 1, 5, 60, 127] {
                w.rice(v, k);
            }
        }
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for &v in &vals {
            assert_eq!(r.num().unwrap(), v);
            if v > 0 {
                assert_eq!(r.gamma().unwrap(), v);
            }
            for k in [0, 1, 5, 60, 127] {
                assert_eq!(r.rice(k).unwrap(), v, "v={v} k={k}");
            }
        }
        assert!(r.bytes_used() == bytes.len());
    }

    use crate::test_rng::XorShift as Rng;

    /// Bit by bit, LSB first: the layout every writer must produce.
    #[derive(Default)]
    struct RefWriter(Vec<bool>);
    impl RefWriter {
        fn bits128(&mut self, v: u128, n: u32) {
            for i in 0..n {
                self.0.push(i < 128 && (v >> i) & 1 == 1);
            }
        }
        fn bytes(&self) -> Vec<u8> {
            self.0
                .chunks(8)
                .map(|c| c.iter().rev().fold(0u8, |a, &b| (a << 1) | u8::from(b)))
                .collect()
        }
    }

    #[test]
    fn bit_writer_matches_bit_by_bit_layout() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        for _ in 0..200 {
            let mut w = BitWriter::default();
            let mut rf = RefWriter::default();
            for _ in 0..r.below(300) {
                let v = u128::from(r.next()) << 64 | u128::from(r.next());
                if r.below(2) == 0 {
                    let n = r.below(57) as u32;
                    w.bits(v as u64, n);
                    rf.bits128(v & ((1u128 << n) - 1), n);
                } else {
                    let n = r.below(129) as u32;
                    w.bits128(v, n);
                    let m = if n == 128 {
                        u128::MAX
                    } else {
                        (1u128 << n) - 1
                    };
                    rf.bits128(v & m, n);
                }
                assert_eq!(w.bit_len(), rf.0.len());
            }
            assert_eq!(w.finish(), rf.bytes());
        }
    }

    #[test]
    fn rice64_writes_the_bits_of_rice() {
        let mut r = Rng(0xfeed_beef_0bad_cafe);
        let mut vals: Vec<u64> = vec![0, 1, 7, 8, 9, 255, 256, u64::MAX, u64::MAX - 1, 1 << 63];
        vals.extend((0..2000).map(|_| r.next() >> r.below(64)));
        for &v in &vals {
            for k in 0..=127u32 {
                let (mut a, mut b) = (BitWriter::default(), BitWriter::default());
                // A misaligned start, as inside a chunk.
                a.bits(5, 3);
                b.bits(5, 3);
                a.rice64(v, k);
                b.rice(u128::from(v), k);
                assert_eq!(
                    rice_cost64(v, k),
                    rice_cost(u128::from(v), k),
                    "v={v} k={k}"
                );
                assert_eq!(a.bit_len() - 3, rice_cost64(v, k) as usize, "v={v} k={k}");
                assert_eq!(a.finish(), b.finish(), "v={v} k={k}");
            }
        }
    }

    /// Runs of codes through one [`RiceRun`] (the pending bits in locals, word flushes and
    /// slow codes in between) against [`BitWriter::rice`] one by one.
    #[test]
    fn rice_run_writes_the_bits_of_rice() {
        let mut r = Rng(0x5eed_0f00_2a11_0004);
        for _ in 0..2000 {
            let (mut a, mut b) = (BitWriter::default(), BitWriter::default());
            let lead = r.below(64) as u32;
            a.bits(0x5a5a, lead.min(16));
            b.bits(0x5a5a, lead.min(16));
            let mut run = RiceRun::new(&mut a);
            for _ in 0..r.below(200) {
                let k = match r.below(4) {
                    0 => r.below(128) as u32,
                    1 => 44 + r.below(8) as u32,
                    _ => r.below(20) as u32,
                };
                let v = match r.below(3) {
                    0 => r.next() >> r.below(64),
                    _ => r.below(16) << k.min(60) | (r.next() & mask(k)),
                };
                run.put(v, k);
                b.rice(u128::from(v), k);
            }
            drop(run);
            a.bits(3, 2);
            b.bits(3, 2);
            assert_eq!(a.bit_len(), b.bit_len());
            assert_eq!(a.finish(), b.finish());
        }
    }

    /// Random series of every shape: small noise, steps, times, values at the 64-bit path's
    /// bounds (+-2^62) and beyond, with and without hints.
    fn random_series(r: &mut Rng) -> (Vec<i128>, Option<Vec<u32>>) {
        const LIM: i128 = 1 << 62;
        let n = match r.below(4) {
            0 => r.below(9) as usize,
            _ => r.below(300) as usize,
        };
        let shape = r.below(9);
        let mut x: i128 = 0;
        let vals = (0..n)
            .map(|i| match shape {
                0 => r.below(16) as i128 - 8,
                1 => 1_600_000_000_000 + i as i128 * 60_000,
                2 => {
                    x += r.below(2001) as i128 - 1000;
                    5_000_000 + x
                }
                3 => (r.next() >> r.below(64)) as i128 * if r.below(2) == 0 { 1 } else { -1 },
                4 => LIM - 1 - r.below(3) as i128,
                5 => -LIM + r.below(3) as i128,
                6 => [LIM - 1, -LIM, 0, LIM / 2, -LIM / 2][r.below(5) as usize],
                7 => [LIM, -LIM - 1, i128::MAX, i128::MIN, 0][r.below(5) as usize],
                _ => (r.next() >> r.below(64)) as i128 - (1 << 40),
            })
            .collect();
        let hints = (r.below(3) == 0).then(|| (0..n).map(|_| r.below(130) as u32).collect());
        (vals, hints)
    }

    #[test]
    fn narrow_path_writes_the_bits_of_the_wide_path() {
        let mut r = Rng(0x0ddb_a11c_0ffe_e123);
        let mut narrow_taken = 0;
        for _ in 0..20_000 {
            let (vals, hints) = random_series(&mut r);
            let (mut a, mut b) = (BitWriter::default(), BitWriter::default());
            let mut fast = SeriesScratch::default();
            let mut wide = SeriesScratch {
                wide_only: true,
                ..SeriesScratch::default()
            };
            put_series(&mut a, &vals, &mut fast, hints.as_deref());
            put_series(&mut b, &vals, &mut wide, hints.as_deref());
            narrow_taken += usize::from(vals.iter().all(|v| (-(1i128 << 62)..1 << 62).contains(v)));
            let bytes = a.finish();
            assert_eq!(bytes, b.finish(), "{vals:?} {hints:?}");
            let mut out = Vec::new();
            get_series(
                &mut BitReader::new(&bytes),
                vals.len(),
                &mut out,
                hints.as_deref(),
            )
            .unwrap();
            assert_eq!(out, vals);
        }
        assert!(narrow_taken > 10_000, "{narrow_taken}");
    }

    #[test]
    fn series_i64_writes_the_bits_of_the_wide_path() {
        let mut r = Rng(0x1640_5e71_e500_0003);
        let mut narrow_taken = 0;
        for _ in 0..20_000 {
            let (vals, hints) = random_series(&mut r);
            let Ok(v64) = vals
                .iter()
                .map(|&v| i64::try_from(v))
                .collect::<Result<Vec<i64>, _>>()
            else {
                continue;
            };
            let (mut a, mut b) = (BitWriter::default(), BitWriter::default());
            let mut wide = SeriesScratch {
                wide_only: true,
                ..SeriesScratch::default()
            };
            put_series_i64(
                &mut a,
                &v64,
                &mut SeriesScratch::default(),
                hints.as_deref(),
            );
            put_series(&mut b, &vals, &mut wide, hints.as_deref());
            narrow_taken += usize::from(vals.iter().all(|v| (-(1i128 << 62)..1 << 62).contains(v)));
            assert_eq!(a.finish(), b.finish(), "{vals:?} {hints:?}");
        }
        assert!(narrow_taken > 10_000, "{narrow_taken}");
    }

    /// The one-peek Rice decoder against the field-by-field reference: same values, same
    /// positions, same errors, on valid codes of every size and on random and truncated bits.
    #[test]
    fn rice_matches_reference() {
        let mut r = Rng(0xdec0_de12_3456_789a);
        for round in 0..3000 {
            let mut w = BitWriter::default();
            let ks: Vec<u32> = (0..r.below(40))
                .map(|_| match r.below(4) {
                    0 => r.below(128) as u32,
                    1 => 45 + r.below(8) as u32,
                    _ => r.below(20) as u32,
                })
                .collect();
            for &k in &ks {
                let v = match r.below(4) {
                    0 => u128::from(r.next()) << 64 | u128::from(r.next()),
                    _ => u128::from(r.next() >> r.below(64)),
                } >> r.below(128);
                w.rice(v, k);
            }
            let mut bytes = w.finish();
            match round % 3 {
                0 => {}
                1 => bytes.truncate(r.below(bytes.len() as u64 + 1) as usize),
                _ => bytes.iter_mut().for_each(|b| *b = r.next() as u8),
            }
            let mut a = BitReader::new(&bytes);
            let mut b = BitReader::new(&bytes);
            b.reference = true;
            for &k in ks.iter().chain([0, 3, 47, 48, 49, 127].iter()) {
                let (x, y) = (a.rice(k), b.rice(k));
                assert_eq!(x.is_ok(), y.is_ok(), "k={k}");
                if let (Ok(x), Ok(y)) = (x, y) {
                    assert_eq!(x, y, "k={k}");
                    assert_eq!(a.pos, b.pos);
                } else {
                    break;
                }
            }
        }
    }

    /// The one-pass cost functions (shifted sums with escape corrections, the 64-bit
    /// adaptive state) against costing each mode value by value with the u128 reference.
    #[test]
    fn cost_passes_match_reference() {
        let mut r = Rng(0xc057_5eed_0000_0001);
        for round in 0..3000 {
            let n = 1 + r.below(300) as usize;
            let top = match round % 4 {
                0 => 58,
                1 => 59,
                2 => 64,
                _ => 1 + r.below(64) as u32,
            };
            let us: Vec<u64> = (0..n)
                .map(|_| match r.below(10) {
                    0 => r.next() >> (64 - top),
                    1 => (1u64 << (top - 1)).saturating_sub(r.below(3)),
                    _ => r.next() >> (64 - top.min(1 + r.below(20) as u32)),
                })
                .collect();
            let wide: Vec<u128> = us.iter().map(|&u| u128::from(u)).collect();
            let max = us.iter().copied().max().unwrap_or(0);
            for klo in [0, 1, r.below(62) as u32, 60, 61, 62, 63, 100, 125] {
                let want: Vec<u64> = (0..3)
                    .map(|j| mode_cost(&wide, &[], KMode::Fixed(klo + j)))
                    .collect();
                assert_eq!(fixed_costs(&us, klo, max).to_vec(), want, "klo={klo}");
            }
            for k0 in [0, 5, r.below(64) as u32, 62, 63, 64, 127] {
                let want: Vec<u64> = [-1, 0]
                    .iter()
                    .map(|&off| mode_cost(&wide, &[], KMode::Adaptive { k0, off }))
                    .collect();
                assert_eq!(adaptive_costs(&us, k0, max).to_vec(), want, "k0={k0}");
            }
        }
    }

    /// The hinted cost pass (shared shifts, sums by parts) against costing each value with
    /// the u128 reference, hints and offsets reaching both ends of the parameter range.
    #[test]
    fn hinted_costs_match_reference() {
        let mut r = Rng(0x4174_ed00_c057_0002);
        for _ in 0..3000 {
            let n = 1 + r.below(300) as usize;
            let top = 1 + r.below(64) as u32;
            let us: Vec<u64> = (0..n)
                .map(|_| match r.below(10) {
                    0 => r.next() >> (64 - top),
                    _ => r.next() >> (64 - top.min(1 + r.below(30) as u32)),
                })
                .collect();
            // Sometimes fewer hints than values (the rest count as 0).
            let hn = if r.below(4) == 0 {
                r.below(n as u64 + 1) as usize
            } else {
                n
            };
            let hints: Vec<u32> = (0..hn)
                .map(|_| match r.below(3) {
                    0 => r.below(130) as u32,
                    _ => 64 - (us[0] >> r.below(64)).leading_zeros(),
                })
                .collect();
            let wide: Vec<u128> = us.iter().map(|&u| u128::from(u)).collect();
            for lo in [-42, -3, 0, r.below(80) as i32 - 40, 38, 40] {
                let want: Vec<u64> = (0..3)
                    .map(|j| mode_cost(&wide, &hints, KMode::Hinted { off: lo + j }))
                    .collect();
                assert_eq!(hinted_costs(&us, &hints, lo).to_vec(), want, "lo={lo}");
            }
        }
    }

    #[test]
    fn series_round_trip() {
        let cases: Vec<Vec<i128>> = vec![
            vec![],
            vec![5],
            vec![0; 10],
            vec![i128::MIN, i128::MAX, 0, -1, 1, i128::MIN, i128::MAX],
            (0..300).map(|i| 1_000_000 + i * 60_000).collect(),
            (0..300).map(|i| (i * 7919 % 1000) - 500).collect(),
            (0..50).map(|i| i128::MAX - i).collect(),
        ];
        for c in cases {
            let mut w = BitWriter::default();
            let mut s = SeriesScratch::default();
            put_series(&mut w, &c, &mut s, None);
            w.bits(0b101, 3);
            let b = w.finish();
            let mut r = BitReader::new(&b);
            let mut out = Vec::new();
            get_series(&mut r, c.len(), &mut out, None).unwrap();
            assert_eq!(out, c);
            assert_eq!(r.bits(3).unwrap(), 0b101);
        }
    }
}
