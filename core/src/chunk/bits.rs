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
        if n == 0 {
            return;
        }
        self.acc |= (v & mask(n)) << self.nacc;
        self.nacc += n;
        while self.nacc >= 8 {
            self.buf.push(self.acc as u8);
            self.acc >>= 8;
            self.nacc -= 8;
        }
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

    pub fn bit_len(&self) -> usize {
        self.buf.len() * 8 + self.nacc as usize
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.nacc > 0 {
            self.buf.push(self.acc as u8);
        }
        self.buf
    }
}

pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            end: data.len().saturating_mul(8),
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

    #[inline]
    pub fn rice(&mut self, k: u32) -> CoreResult<u128> {
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
    #[inline]
    fn k(&self, off: i32) -> u32 {
        (bitlen(self.a) as i32 - bitlen(u128::from(self.n)) as i32 + off).clamp(0, 127) as u32
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

/// Writes `vals` (the decoder knows how many). With `hints` (one per value, known to the
/// decoder) the values are zig-zagged as they are and may use hinted parameters.
pub fn put_series(
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
    match best.1 {
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
    walk(us, hints.unwrap_or(&[]), best.1, |u, k| w.rice(u, k));
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
            let mut s = Vec::new();
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
