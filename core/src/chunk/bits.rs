//! Bit-level I/O of sealed chunks: [`BitWriter`] and [`BitReader`] (LSB-first, a 64-bit
//! word at a time) and the three integer codes they write and read:
//! * `num`: an 8-bit length then the value's bits below its leading one (headers).
//! * `gamma`: Elias gamma, for escapes.
//! * `rice(k)`: `q = v >> k` in unary (q < [`ESC`]) or `ESC` ones plus `gamma(q - ESC + 1)`,
//!   then the `k` low bits. Robust to outliers, near-optimal for geometric-ish residuals.
//!
//! Kept apart from the choice of codes ([`super::rice`], [`super::series`]) so the hot bit
//! packing can be read and tested on its own.

use super::corrupt;
use crate::error::CoreResult;

/// Unary length at which the Rice code escapes to gamma.
pub const ESC: u32 = 8;

#[inline]
pub fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// The unsigned words values are coded in: `u64` (the fast path) and `u128` (the general
/// path, the reference). Code lengths are written once over `Word` and monomorphised, so
/// the 64-bit path pays nothing for sharing them.
pub trait Word:
    Copy + Ord + From<u8> + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self>
{
    /// Bits up to and including the leading one (0 for 0).
    fn bitlen(self) -> u32;
    /// `self >> k`, 0 when `k` reaches the width.
    fn shr_or_zero(self, k: u32) -> Self;
    /// The low 64 bits.
    fn low64(self) -> u64;
}

impl Word for u64 {
    #[inline(always)]
    fn bitlen(self) -> u32 {
        u64::BITS - self.leading_zeros()
    }
    #[inline(always)]
    fn shr_or_zero(self, k: u32) -> u64 {
        self.checked_shr(k).unwrap_or(0)
    }
    #[inline(always)]
    fn low64(self) -> u64 {
        self
    }
}

impl Word for u128 {
    #[inline(always)]
    fn bitlen(self) -> u32 {
        u128::BITS - self.leading_zeros()
    }
    #[inline(always)]
    fn shr_or_zero(self, k: u32) -> u128 {
        self.checked_shr(k).unwrap_or(0)
    }
    #[inline(always)]
    fn low64(self) -> u64 {
        self as u64
    }
}

/// [`Word::bitlen`].
#[inline(always)]
pub fn bitlen<W: Word>(v: W) -> u32 {
    v.bitlen()
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

    /// The codes [`RiceRun::put`] does not write in one go: the general [`rice`](Self::rice)
    /// (escapes and `k > 48` are rare).
    #[cold]
    #[inline(never)]
    fn rice64_slow(&mut self, v: u64, k: u32) {
        self.rice(u128::from(v), k);
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

pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
    /// Format 1 (chunks without the format tag): runs of values have no zero-flags bit.
    pub v1: bool,
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
            v1: false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::rice::rice_cost;

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
                assert_eq!(rice_cost(v, k), rice_cost(u128::from(v), k), "v={v} k={k}");
                assert_eq!(a.bit_len() - 3, rice_cost(v, k) as usize, "v={v} k={k}");
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
}
