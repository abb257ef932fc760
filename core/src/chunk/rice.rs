//! The Rice parameters of a run of unsigned values: each parameter mode (one `k`, `k`
//! following a running mean, `k` from per-value hints) is costed, the cheapest written, and
//! the values coded with it; [`get_unsigned`] reads them back. Since chunk format 2 a run
//! with many zeros may instead flag each value zero or not and code only the others (the
//! wicks of short candles are a quarter zeros, which Rice with `k ~ 9` spent 10 bits on).
//!
//! Two paths that write the same bits: the general one over `u128` ([`put_unsigned`], costing
//! mode by mode, the reference) and the 64-bit one ([`put_unsigned64`], costing each family
//! of modes in one pass), which every real series takes. The cost of one code,
//! [`rice_cost`], is one generic function for both.

use super::bits::{bitlen, BitReader, BitWriter, RiceRun, Word, ESC};
use super::corrupt;
use crate::error::CoreResult;

/// [`ESC`] as a [`Word`].
#[inline(always)]
fn esc<W: Word>() -> W {
    W::from(ESC as u8)
}

/// Bits of the Rice code of `v` with parameter `k <= 127`, in either width (the same
/// result for the same value: `rice64_writes_the_bits_of_rice` checks both against the
/// writer). The escape is cold: the 64-bit cost passes call this in their inner loops.
#[inline(always)]
pub fn rice_cost<W: Word>(v: W, k: u32) -> u64 {
    let q = v.shr_or_zero(k);
    if q < esc() {
        q.low64() + 1 + u64::from(k)
    } else {
        escape_cost(q) + u64::from(k)
    }
}

/// The head of a Rice code whose quotient `q >= ESC` escapes: ESC ones then gamma(q-ESC+1).
#[cold]
#[inline(never)]
fn escape_cost<W: Word>(q: W) -> u64 {
    escape_head(q)
}

/// [`escape_cost`] inline, for the loop that corrects the escaped values' costs.
#[inline(always)]
fn escape_head<W: Word>(q: W) -> u64 {
    u64::from(ESC + 2 * bitlen(q - esc() + W::from(1)) - 1)
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
            f(u, bitlen(a) as i32 - (u32::BITS - n.leading_zeros()) as i32);
            a += u;
        }
        a >>= 1;
        for block in rest.chunks(ADAPT_N as usize / 2) {
            for &u in block {
                f(u, bitlen(a) as i32 - 4);
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

/// Whether a run with `zeros` zero values out of `m` (mean bit length `avg`) is worth
/// costing with zero flags: each zero would save about `avg` bits, each flag costs one;
/// costed only when the saving clearly passes the flags' cost (it rarely wins otherwise,
/// and the costing is a second pass).
#[inline]
fn zero_flags_worth(zeros: u64, m: u64, avg: u32) -> bool {
    4 * zeros * u64::from(avg) > 5 * m
}

/// The mean bit length of a run (the centre of the fixed parameters tried).
#[inline]
fn avg_bits(total: u64, m: u64) -> u32 {
    total.div_ceil(m).min(127) as u32
}

/// All-zero flag, else (format 2) a zero-flags bit, then the parameter mode and the values.
/// With zero flags, one bit per value says whether it is non-zero, and only the non-zero
/// values are coded (minus one, with the hints of their positions).
pub(super) fn put_unsigned(w: &mut BitWriter, us: &[u128], hints: Option<&[u32]>) {
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
    let (cost, mode) = choose(us, hints, total);
    let zeros = us.iter().filter(|&&u| u == 0).count() as u64;
    if zero_flags_worth(zeros, m, avg_bits(total, m)) {
        let nz: Vec<u128> = us.iter().filter(|&&u| u != 0).map(|&u| u - 1).collect();
        let nzh: Option<Vec<u32>> = hints.map(|h| {
            (0..us.len())
                .filter(|&i| us[i] != 0)
                .map(|i| h.get(i).copied().unwrap_or(0))
                .collect()
        });
        let nz_total: u64 = nz.iter().map(|&u| u64::from(bitlen(u))).sum();
        let (c2, mode2) = choose(&nz, nzh.as_deref(), nz_total);
        if c2 + m < cost {
            w.bit(true);
            for &u in us {
                w.bit(u != 0);
            }
            put_mode(w, mode2);
            walk(&nz, nzh.as_deref().unwrap_or(&[]), mode2, |u, k| {
                w.rice(u, k)
            });
            return;
        }
    }
    w.bit(false);
    put_mode(w, mode);
    walk(us, hints.unwrap_or(&[]), mode, |u, k| w.rice(u, k));
}

/// The cheapest parameter mode of `us` (the sum of whose bit lengths is `total`) and its cost.
fn choose(us: &[u128], hints: Option<&[u32]>, total: u64) -> (u64, KMode) {
    let m = us.len() as u64;
    let avg = avg_bits(total, m);
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
    best
}

/// The sum of the bit lengths and the largest of a slice of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Stats {
    pub total: u64,
    pub max: u64,
}

impl Stats {
    pub fn of(us: &[u64]) -> Stats {
        us.iter().fold(Stats { total: 0, max: 0 }, |s, &u| Stats {
            total: s.total + u64::from(bitlen(u)),
            max: s.max.max(u),
        })
    }
}

/// The buffers of [`put_unsigned64`]'s zero-flagged alternative.
#[derive(Default)]
pub struct ZeroScratch {
    nz: Vec<u64>,
    nzh: Vec<u32>,
}

/// [`put_unsigned`] for 64-bit values (`stats` theirs): each family of parameter modes is
/// costed in one pass.
pub(super) fn put_unsigned64(
    w: &mut BitWriter,
    us: &[u64],
    hints: Option<&[u32]>,
    stats: Stats,
    zs: &mut ZeroScratch,
) {
    if us.is_empty() {
        return;
    }
    if stats.total == 0 {
        w.bit(true);
        return;
    }
    w.bit(false);
    let m = us.len() as u64;
    let (cost, mode) = choose64(us, hints, stats);
    let zeros = us.iter().map(|&u| u64::from(u == 0)).sum::<u64>();
    if zero_flags_worth(zeros, m, avg_bits(stats.total, m)) {
        zs.nz.clear();
        zs.nzh.clear();
        for (i, &u) in us.iter().enumerate() {
            if u != 0 {
                zs.nz.push(u - 1);
                if let Some(h) = hints {
                    zs.nzh.push(h.get(i).copied().unwrap_or(0));
                }
            }
        }
        let nz_stats = Stats::of(&zs.nz);
        let nzh = hints.map(|_| zs.nzh.as_slice());
        let (c2, mode2) = choose64(&zs.nz, nzh, nz_stats);
        if c2 + m < cost {
            w.bit(true);
            for block in us.chunks(56) {
                let flags = block
                    .iter()
                    .enumerate()
                    .fold(0u64, |f, (j, &u)| f | u64::from(u != 0) << j);
                w.bits(flags, block.len() as u32);
            }
            write64(w, &zs.nz, nzh, nz_stats.max, mode2);
            return;
        }
    }
    w.bit(false);
    write64(w, us, hints, stats.max, mode);
}

/// [`choose`] for 64-bit values (`stats` theirs).
fn choose64(us: &[u64], hints: Option<&[u32]>, stats: Stats) -> (u64, KMode) {
    let total = stats.total;
    let m = us.len() as u64;
    let avg = avg_bits(total, m);
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
    best
}

/// The mode and the values of a run (values up to `max`).
fn write64(w: &mut BitWriter, us: &[u64], hints: Option<&[u32]>, max: u64, mode: KMode) {
    put_mode(w, mode);
    let mut w = RiceRun::new(w);
    match mode {
        KMode::Fixed(k) => us.iter().for_each(|&u| w.put(u, k)),
        KMode::Adaptive { k0, off } => {
            if Adapt64::fits(k0, max) {
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
    let q = v.shr_or_zero(kb);
    if q < u64::from(ESC) {
        for (j, c) in c.iter_mut().enumerate() {
            *c += (q >> j) + 1 + u64::from(kb) + j as u64;
        }
    } else {
        for (j, c) in c.iter_mut().enumerate() {
            *c += rice_cost(v, kb + j as u32);
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
            // that does not fit). Which ones they are is data: a branch per value on it was
            // mispredicted often enough to cost more than the sums, so they are gathered
            // branch-free, a block at a time, and only they are corrected.
            let lim = if klo < 61 { u64::from(ESC) << klo } else { 0 };
            let mut esc = [0u64; 64];
            for block in us.chunks(esc.len()) {
                let mut n = 0;
                for &u in block {
                    if let Some(slot) = esc.get_mut(n) {
                        *slot = u;
                    }
                    n += usize::from(u >= lim);
                }
                for &u in esc.get(..n).unwrap_or(&[]) {
                    for (j, c) in c.iter_mut().enumerate() {
                        // An escaped head costs ESC + gamma(q - ESC + 1) instead of q + 1:
                        // the difference, zero where this k's quotient does not escape.
                        let q = u >> (klo + j as u32);
                        let e = q.saturating_sub(u64::from(ESC) - 1);
                        let escaped = u64::from(e != 0).wrapping_neg();
                        let delta = (u64::from(ESC) + 2 * u64::from(bitlen(e)))
                            .wrapping_sub(q.wrapping_add(2));
                        *c = c.wrapping_add(delta & escaped);
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
                    c0 += rice_cost(u, kb);
                    c1 += rice_cost(u, kb + 1);
                }
            } else {
                c0 += rice_cost(u, adapt_k(base, -1));
                c1 += rice_cost(u, adapt_k(base, 0));
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
            c[0] += rice_cost(u, adapt_k(base, -1));
            c[1] += rice_cost(u, adapt_k(base, 0));
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
            let q = u.shr_or_zero(kb as u32);
            if q < u64::from(ESC) {
                q0 += q;
                q1 += q >> 1;
                q2 += q >> 2;
                kbs += kb as u64;
                fast += 1;
            } else {
                for (j, c) in c.iter_mut().enumerate() {
                    *c += rice_cost(u, kb as u32 + j as u32);
                }
            }
        } else {
            for (j, c) in c.iter_mut().enumerate() {
                *c += rice_cost(u, hinted_k(h, lo + j as i32));
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

/// Reads `m` values written by [`put_unsigned`] (`r.v1`: format 1, no zero-flags bit).
pub(super) fn get_unsigned(
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
    if r.v1 || !r.bit()? {
        return get_run(r, m, hints, f);
    }
    let mut flags = vec![0u64; m.div_ceil(64)];
    let mut left = m;
    let mut nz = 0usize;
    for word in flags.iter_mut() {
        let take = left.min(64) as u32;
        let lo = take.min(32);
        *word = r.bits(lo)? | r.bits(take - lo)? << lo;
        nz += word.count_ones() as usize;
        left -= take as usize;
    }
    if nz == 0 {
        return Err(corrupt("zero flags without a non-zero value"));
    }
    let is_nz = |i: usize| flags.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1);
    let nzh: Vec<u32> = if hints.is_empty() {
        Vec::new()
    } else {
        (0..m)
            .filter(|&i| is_nz(i))
            .map(|i| hints.get(i).copied().unwrap_or(0))
            .collect()
    };
    let mut vals = Vec::with_capacity(nz);
    get_run(r, nz, &nzh, |u| vals.push(u))?;
    let mut it = vals.into_iter();
    for i in 0..m {
        if is_nz(i) {
            let u = it.next().ok_or_else(|| corrupt("zero flags"))?;
            f(u.checked_add(1).ok_or_else(|| corrupt("value too large"))?);
        } else {
            f(0);
        }
    }
    Ok(())
}

/// The parameter mode and `m` values.
fn get_run(r: &mut BitReader, m: usize, hints: &[u32], mut f: impl FnMut(u128)) -> CoreResult<()> {
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
    use crate::test_rng::XorShift as Rng;
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

    /// Runs with zeros: the 64-bit writer writes the bits of the u128 reference, zero flags
    /// are taken when they pay (often, on runs that are mostly zeros), and both decode back;
    /// a format-1 reader reads runs without the zero-flags bit.
    #[test]
    fn zero_flagged_runs() {
        let mut r = Rng(0x2e50_f1a6_0000_0003);
        let mut flagged = 0;
        for round in 0..4000 {
            let n = 1 + r.below(300) as usize;
            let p0 = r.below(100);
            let top = 1 + r.below(63) as u32;
            let us: Vec<u64> = (0..n)
                .map(|_| {
                    if r.below(100) < p0 {
                        0
                    } else {
                        match r.below(20) {
                            0 => u64::MAX - r.below(2),
                            1 => 1,
                            _ => r.next() >> (64 - top),
                        }
                    }
                })
                .collect();
            let hints: Option<Vec<u32>> = (round % 3 == 0).then(|| {
                (0..r.below(n as u64 + 1))
                    .map(|_| r.below(70) as u32)
                    .collect()
            });
            let wide: Vec<u128> = us.iter().map(|&u| u128::from(u)).collect();
            let (mut a, mut b) = (BitWriter::default(), BitWriter::default());
            put_unsigned64(
                &mut a,
                &us,
                hints.as_deref(),
                Stats::of(&us),
                &mut ZeroScratch::default(),
            );
            put_unsigned(&mut b, &wide, hints.as_deref());
            let bytes = a.finish();
            assert_eq!(bytes, b.finish(), "{us:?} {hints:?}");
            // all-zero bit, then the zero-flags bit
            flagged += usize::from(bytes[0] & 3 == 2);
            let mut out = Vec::new();
            let mut rd = BitReader::new(&bytes);
            get_unsigned(&mut rd, n, hints.as_deref().unwrap_or(&[]), |u| out.push(u)).unwrap();
            assert_eq!(out, wide);
            // Format 1: no zero-flags bit.
            let mut w1 = BitWriter::default();
            w1.bit(false);
            w1.bits(0, 2);
            w1.bits(70, 7);
            for &u in &wide {
                w1.rice(u, 70);
            }
            let bytes = w1.finish();
            let mut rd = BitReader::new(&bytes);
            rd.v1 = true;
            out.clear();
            get_unsigned(&mut rd, n, &[], |u| out.push(u)).unwrap();
            assert_eq!(out, wide);
        }
        assert!(flagged > 1000, "{flagged}");
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
}
