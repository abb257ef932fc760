//! A *series* of integers (a column of a chunk): coded as is or as first differences, each
//! zig-zagged or minus its minimum (frame of reference), whichever the estimate says is
//! cheapest, then handed to the Rice coder ([`super::rice`]).
//!
//! [`put_series_wide`] (any `i128`) is the reference; [`put_series64`] writes the same bits
//! for values within +-2^62 (every exchange column), from two passes of running extremes
//! and leading-zero counts instead of materialising every candidate transform. They are
//! kept apart because they are different algorithms, not the same one at two widths
//! (`narrow_path_writes_the_bits_of_the_wide_path` holds them to the same output).

use super::bits::{bitlen, BitReader, BitWriter};
use super::rice::{get_unsigned, put_unsigned, put_unsigned64, Stats, ZeroScratch};
use crate::error::CoreResult;
use crate::varint::{unzigzag128, zigzag, zigzag128};

/// Cheap size estimate of a transformed body, for choosing between transforms.
fn estimate(us: impl Iterator<Item = u128>) -> u64 {
    us.map(|u| u64::from(bitlen(u)) + 2).sum()
}

/// Reusable buffers of [`put_series`].
#[derive(Default)]
pub struct SeriesScratch {
    wide: Vec<u128>,
    narrow: Vec<i64>,
    /// [`put_series_i64`]'s values widened for the general path.
    vals128: Vec<i128>,
    us: Vec<u64>,
    zs: ZeroScratch,
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
            put_series64(w, &sc.narrow, &mut sc.us, &mut sc.zs, hints);
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
        put_series64(w, vals, &mut sc.us, &mut sc.zs, hints);
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
        scratch.extend(vals.iter().map(|&v| zigzag128(v)));
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
    let hdr = |v: i128| u64::from(bitlen(zigzag128(v))) + 8;
    let cands = [
        (false, false, estimate(vals.iter().map(|&v| zigzag128(v)))),
        (
            false,
            true,
            hdr(min_plain) + estimate(vals.iter().map(|&v| v.wrapping_sub(min_plain) as u128)),
        ),
        (true, false, hdr(first) + estimate(deltas().map(zigzag128))),
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
        w.num(zigzag128(first));
        w.bit(fore);
        if fore {
            w.num(zigzag128(min_delta));
            scratch.extend(deltas().map(|d| d.wrapping_sub(min_delta) as u128));
        } else {
            scratch.extend(deltas().map(zigzag128));
        }
    } else {
        w.bit(fore);
        if fore {
            w.num(zigzag128(min_plain));
            scratch.extend(vals.iter().map(|&v| v.wrapping_sub(min_plain) as u128));
        } else {
            scratch.extend(vals.iter().map(|&v| zigzag128(v)));
        }
    }
    put_unsigned(w, scratch, None);
}
/// the minimum) then fits in 64 bits, and the estimates, the choices and the bits written
/// are the same.
fn put_series64(
    w: &mut BitWriter,
    vals: &[i64],
    us: &mut Vec<u64>,
    zs: &mut ZeroScratch,
    hints: Option<&[u32]>,
) {
    let Some(&first) = vals.first() else {
        return;
    };
    us.clear();
    if let Some(h) = hints {
        us.extend(vals.iter().map(|&v| zigzag(v)));
        put_unsigned64(w, us, Some(h), Stats::of(us), zs);
        return;
    }
    let rest = vals.get(1..).unwrap_or(&[]);
    // Pass 1: the extremes and the zig-zag sums of bit lengths. A sum of bit lengths is
    // 64 per value minus the sum of leading zeros (one operation less per value).
    let lz = |v: u64| u64::from(v.leading_zeros());
    let (mut min_plain, mut min_delta) = (first, i64::MAX);
    let (mut max_plain, mut max_delta) = (first, i64::MIN);
    let mut lz_plain = lz(zigzag(first));
    let mut lz_delta = 0u64;
    let mut prev = first;
    for &v in rest {
        min_plain = min_plain.min(v);
        max_plain = max_plain.max(v);
        lz_plain += lz(zigzag(v));
        let d = v - prev;
        min_delta = min_delta.min(d);
        max_delta = max_delta.max(d);
        lz_delta += lz(zigzag(d));
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
    let hdr = |v: i64| u64::from(bitlen(zigzag(v))) + 8;
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
    let zz_max = |lo: i64, hi: i64| zigzag(lo).max(zigzag(hi));
    w.bit(delta);
    let stats = if delta {
        w.num(u128::from(zigzag(first)));
        w.bit(fore);
        let mut prev = first;
        if fore {
            w.num(u128::from(zigzag(min_delta)));
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
                let d = zigzag(v - prev);
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
            w.num(u128::from(zigzag(min_plain)));
            us.extend(vals.iter().map(|&v| (v - min_plain) as u64));
            Stats {
                total: fore_plain,
                max: (max_plain - min_plain) as u64,
            }
        } else {
            us.extend(vals.iter().map(|&v| zigzag(v)));
            Stats {
                total: bits_plain,
                max: zz_max(min_plain, max_plain),
            }
        }
    };
    debug_assert_eq!(stats, Stats::of(us));
    put_unsigned64(w, us, None, stats, zs);
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
        return get_unsigned(r, n, h, |u| out.push(unzigzag128(u)));
    }
    let delta = r.bit()?;
    if delta {
        let first = unzigzag128(r.num()?);
        let fore = r.bit()?;
        let base = if fore { unzigzag128(r.num()?) } else { 0 };
        out.push(first);
        let mut prev = first;
        get_unsigned(r, n - 1, &[], |u| {
            let d = if fore {
                (base as u128).wrapping_add(u) as i128
            } else {
                unzigzag128(u)
            };
            prev = prev.wrapping_add(d);
            out.push(prev);
        })
    } else {
        let fore = r.bit()?;
        let base = if fore { unzigzag128(r.num()?) } else { 0 };
        get_unsigned(r, n, &[], |u| {
            out.push(if fore {
                (base as u128).wrapping_add(u) as i128
            } else {
                unzigzag128(u)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::bits::BitReader;
    use crate::test_rng::XorShift as Rng;
    /// Random series of every shape: small noise, steps, times, values at the 64-bit path's
    /// bounds (+-2^62) and beyond, with and without hints.
    fn random_series(r: &mut Rng) -> (Vec<i128>, Option<Vec<u32>>) {
        const LIM: i128 = 1 << 62;
        let n = match r.below(4) {
            0 => r.below(9) as usize,
            _ => r.below(300) as usize,
        };
        let shape = r.below(10);
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
                // Mostly zeros (the zero-flagged runs), sometimes at the bounds.
                9 => match r.below(4) {
                    0 => [LIM - 1, -LIM, i128::MAX, 0][r.below(4) as usize],
                    1 => r.below(5000) as i128,
                    _ => 0,
                },
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
