//! Entropy study of the chunk columns (issue 17): for each column of real Binance klines, the
//! cost in bits per candle of its residuals under the codec's predictor and candidate ones,
//! coded (a) by an adaptive Rice coder like the codec's and (b) by an adaptive binary
//! arithmetic coder over the Elias-gamma bucket (bit length) of the zig-zagged residual,
//! contexted on a magnitude estimate, plus the bits below the leading one (the first one
//! modelled, the rest raw). Contexts restart every 256 candles (a chunk decodes alone).
//!
//! `cargo run --release -p candles-core --example entropy [-- FILE.json ...]`
//! (default: the three BTCUSDT REST fixtures).

use candles_core::Candle;

const CHUNK: usize = 256;

fn zz(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

fn bitlen(u: u128) -> i32 {
    (128 - u.leading_zeros()) as i32
}

/// [`rice_bits`] where each value is first flagged zero / non-zero (one raw bit), the
/// non-zero ones coded as `u - 1`; the cheaper of the two per chunk (one header bit).
fn rice_zero_bits(r: &[i128]) -> f64 {
    r.chunks(CHUNK)
        .map(|ch| {
            let plain = rice_bits(ch);
            let nz: Vec<i128> = ch.iter().filter(|&&v| v != 0).copied().collect();
            // non-zero values: zig-zag minus one, kept as a positive i128 for rice_bits
            let shifted: Vec<i128> = nz
                .iter()
                .map(|&v| ((zz(v) - 1) >> 1) as i128 * if zz(v) & 1 == 1 { -1 } else { 1 })
                .collect();
            let zf = ch.len() as f64 + rice_bits(&shifted);
            plain.min(zf) + 1.0
        })
        .sum()
}

/// Adaptive Rice: per chunk, the best of every fixed k and the codec's running-mean k.
fn rice_bits(r: &[i128]) -> f64 {
    let mut total = 0u64;
    for ch in r.chunks(CHUNK) {
        let cost = |u: u128, k: u32| -> u64 {
            let q = u >> k;
            if q < 8 {
                q as u64 + 1 + u64::from(k)
            } else {
                8 + 2 * bitlen(q - 7) as u64 - 1 + u64::from(k)
            }
        };
        let mut best = u64::MAX;
        for k in 0..64 {
            best = best.min(ch.iter().map(|&v| cost(zz(v), k)).sum::<u64>());
        }
        for off in -1..=0i32 {
            for k0 in 0..40 {
                let (mut a, mut n, mut c) = (1u128 << k0, 1u32, 0u64);
                for &v in ch {
                    let u = zz(v);
                    let k = (bitlen(a) - bitlen(u128::from(n)) + off).clamp(0, 127) as u32;
                    c += cost(u, k);
                    a += u;
                    n += 1;
                    if n >= 16 {
                        a >>= 1;
                        n >>= 1;
                    }
                }
                best = best.min(c + 11);
            }
        }
        total += best + 9;
    }
    total as f64
}

/// An adaptive binary probability (12-bit, shift update), costs in bits.
#[derive(Clone, Copy)]
struct Bit(u32);
impl Bit {
    const NEW: Bit = Bit(2048);
    fn code(&mut self, b: bool, shift: u32) -> f64 {
        let p1 = f64::from(self.0) / 4096.0;
        let c = if b { -p1.log2() } else { -(1.0 - p1).log2() };
        if b {
            self.0 += (4096 - self.0) >> shift;
        } else {
            self.0 -= self.0 >> shift;
        }
        self.0 = self.0.clamp(32, 4064);
        c
    }
}

/// Magnitude estimate for each residual.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Est<'a> {
    /// Running mean of the previous magnitudes (the codec's adaptive Rice state).
    Running,
    /// Given per value (a hint from decoded fields).
    Given(&'a [i32]),
}

/// Arithmetic-coded bucket (bit length b of the zig-zag value, unary decisions "b > j"
/// contexted by j - estimate), then the first bit below the leading one modelled per
/// (b - estimate), the rest raw.
fn ac_bits(r: &[i128], est: Est, shift: u32) -> f64 {
    const W: i32 = 8;
    let mut total = 0.0;
    for (ci, ch) in r.chunks(CHUNK).enumerate() {
        let mut dec = [Bit::NEW; (2 * W + 1) as usize];
        let mut top = [Bit::NEW; (2 * W + 1) as usize];
        let (mut a, mut n) = (0u128, 0u32);
        for (i, &v) in ch.iter().enumerate() {
            let u = zz(v);
            let b = bitlen(u);
            let e = match est {
                Est::Running => {
                    if n == 0 {
                        16
                    } else {
                        bitlen(a / u128::from(n))
                    }
                }
                Est::Given(h) => h[ci * CHUNK + i],
            };
            let mut j = 0;
            loop {
                let ctx = ((j - e).clamp(-W, W) + W) as usize;
                let more = b > j;
                total += dec[ctx].code(more, shift);
                if !more {
                    break;
                }
                j += 1;
            }
            if b >= 2 {
                let ctx = ((b - e).clamp(-W, W) + W) as usize;
                total += top[ctx].code((u >> (b - 2)) & 1 == 1, shift);
                total += f64::from(b - 2);
            }
            a += u;
            n += 1;
            if n >= 16 {
                a >>= 1;
                n >>= 1;
            }
        }
    }
    total
}

/// Static (whole-file) entropy of the bucket given the estimate, plus b-1 raw bits: a floor
/// for this family of coders (no learning cost, the model's parameters free).
fn static_bits(r: &[i128], est: Option<&[i32]>) -> f64 {
    use std::collections::HashMap;
    let mut joint: HashMap<(i32, i32), f64> = HashMap::new();
    let mut marg: HashMap<i32, f64> = HashMap::new();
    let mut raw = 0.0;
    for (i, &v) in r.iter().enumerate() {
        let b = bitlen(zz(v));
        let e = est.map_or(0, |h| h[i]);
        *joint.entry((e, b)).or_default() += 1.0;
        *marg.entry(e).or_default() += 1.0;
        raw += f64::from((b - 1).max(0));
    }
    let mut h = 0.0;
    for ((e, _), c) in &joint {
        h -= c * (c / marg[e]).log2();
    }
    h + raw
}

/// [`static_bits`] with the first bit below the leading one modelled too (static, per
/// bucket and estimate): what a finer model of the values' shape inside a bucket would add.
fn static_bits2(r: &[i128], est: Option<&[i32]>) -> f64 {
    use std::collections::HashMap;
    let mut top: HashMap<(i32, i32), [f64; 2]> = HashMap::new();
    let mut saved = 0.0;
    for (i, &v) in r.iter().enumerate() {
        let u = zz(v);
        let b = bitlen(u);
        if b >= 2 {
            let e = est.map_or(0, |h| h[i]);
            top.entry((e, b)).or_default()[((u >> (b - 2)) & 1) as usize] += 1.0;
        }
    }
    for c in top.values() {
        let n = c[0] + c[1];
        for &k in c {
            if k > 0.0 {
                saved += k * (1.0 + (k / n).log2());
            }
        }
    }
    static_bits(r, est) - saved
}

fn mant(d: candles_core::Dec, s: u8) -> i128 {
    d.mantissa() * 10i128.pow(u32::from(s - d.scale()))
}

fn scale_of(cs: &[Candle], f: impl Fn(&Candle) -> candles_core::Dec) -> u8 {
    cs.iter().map(|c| f(c).scale()).max().unwrap_or(0)
}

fn bl(x: f64) -> i32 {
    bitlen(x.abs().round() as u128)
}

struct Row {
    col: &'static str,
    model: String,
    rice: f64,
    rz: f64,
    zeros: f64,
    ac: f64,
    floor: f64,
    floor2: f64,
}

fn study(name: &str, cs: &[Candle]) -> Vec<Row> {
    let n = cs.len() as f64;
    let sp = cs
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
    let sv = scale_of(cs, |c| c.volume);
    let sq = scale_of(cs, |c| c.quote_volume.unwrap());
    let sb = scale_of(cs, |c| c.taker_buy_base.unwrap());
    let st = scale_of(cs, |c| c.taker_buy_quote.unwrap());
    let p = |d| mant(d, sp) as f64;
    let o: Vec<f64> = cs.iter().map(|c| p(c.open)).collect();
    let h: Vec<f64> = cs.iter().map(|c| p(c.high)).collect();
    let l: Vec<f64> = cs.iter().map(|c| p(c.low)).collect();
    let cl: Vec<f64> = cs.iter().map(|c| p(c.close)).collect();
    let v: Vec<f64> = cs.iter().map(|c| mant(c.volume, sv) as f64).collect();
    let q: Vec<i128> = cs
        .iter()
        .map(|c| mant(c.quote_volume.unwrap(), sq))
        .collect();
    let tr: Vec<i128> = cs.iter().map(|c| i128::from(c.trades.unwrap())).collect();
    let tb: Vec<i128> = cs
        .iter()
        .map(|c| mant(c.taker_buy_base.unwrap(), sb))
        .collect();
    let tq: Vec<i128> = cs
        .iter()
        .map(|c| mant(c.taker_buy_quote.unwrap(), st))
        .collect();
    let vi: Vec<i128> = cs.iter().map(|c| mant(c.volume, sv)).collect();
    // Unit conversions: value at scale a times value at scale b, to scale t.
    let conv = |a: u8, b: u8, t: u8| 10f64.powi(i32::from(t) - i32::from(a) - i32::from(b));
    let kq = conv(sv, sp, sq); // volume * price -> qv units
    let kt = conv(sb, sp, st); // tbb * price -> tbq units
    let mut rows = Vec::new();
    let mut add = |col: &'static str, model: &str, r: Vec<i128>, hint: Option<Vec<i32>>| {
        let rice = rice_bits(&r) / n;
        let rz = rice_zero_bits(&r) / n;
        let zeros = r.iter().filter(|&&x| x == 0).count() as f64 / n;
        let run = ac_bits(&r, Est::Running, 4).min(ac_bits(&r, Est::Running, 5)) / n;
        let ac = match &hint {
            Some(hn) => {
                ac_bits(&r, Est::Given(hn), 4)
                    .min(ac_bits(&r, Est::Given(hn), 5))
                    .min(run * n)
                    / n
            }
            None => run,
        };
        let floor = static_bits(&r, hint.as_deref()) / n;
        let floor2 = static_bits2(&r, hint.as_deref()) / n;
        rows.push(Row {
            col,
            model: model.to_string(),
            rice,
            rz,
            zeros,
            ac,
            floor,
            floor2,
        });
    };
    let idx = 0..cs.len();
    let rnd = |x: f64| x.round() as i128;
    // --- prices
    let prev = |x: &[f64], i: usize, d: f64| if i == 0 { d } else { x[i - 1] };
    add(
        "open-prevclose",
        "o - c[-1]",
        idx.clone()
            .map(|i| rnd(o[i] - prev(&cl, i, o[i])))
            .collect(),
        None,
    );
    let rng: Vec<f64> = idx.clone().map(|i| h[i] - l[i]).collect();
    let prev_rng_hint: Vec<i32> = idx.clone().map(|i| bl(prev(&rng, i, rng[0]))).collect();
    let body: Vec<i128> = idx.clone().map(|i| rnd(cl[i] - o[i])).collect();
    add("close-open", "c - o", body.clone(), None);
    add(
        "close-open",
        "c - o | ctx prev range",
        body.clone(),
        Some(prev_rng_hint.clone()),
    );
    let up: Vec<i128> = idx.clone().map(|i| rnd(h[i] - o[i].max(cl[i]))).collect();
    let dn: Vec<i128> = idx.clone().map(|i| rnd(o[i].min(cl[i]) - l[i])).collect();
    let body_hint: Vec<i32> = idx.clone().map(|i| bl(cl[i] - o[i])).collect();
    add("high wick", "h - max(o,c)", up.clone(), None);
    add(
        "high wick",
        "| ctx prev range",
        up.clone(),
        Some(prev_rng_hint.clone()),
    );
    add(
        "high wick",
        "| ctx |c-o|",
        up.clone(),
        Some(body_hint.clone()),
    );
    add("low wick", "min(o,c) - l", dn.clone(), None);
    add(
        "low wick",
        "| ctx prev range",
        dn.clone(),
        Some(prev_rng_hint.clone()),
    );
    let up_hint: Vec<i32> = idx
        .clone()
        .map(|i| bl((h[i] - o[i].max(cl[i])).max(prev(&rng, i, rng[0]) / 2.0)))
        .collect();
    add(
        "low wick",
        "| ctx max(up wick, prev range/2)",
        dn.clone(),
        Some(up_hint),
    );
    // --- volume
    add("volume", "v", vi.clone(), None);
    add(
        "volume",
        "v | ctx v[-1]",
        vi.clone(),
        Some(idx.clone().map(|i| bl(prev(&v, i, v[0]))).collect()),
    );
    // Volume from the range, scaled by the previous candle's volume per range.
    let vpr_hint: Vec<i32> = idx
        .clone()
        .map(|i| {
            if i == 0 || rng[i - 1] == 0.0 {
                bl(prev(&v, i, v[0]))
            } else {
                bl(v[i - 1] / rng[i - 1].max(1.0) * rng[i].max(1.0))
            }
        })
        .collect();
    add(
        "volume",
        "v | ctx range*v[-1]/range[-1]",
        vi.clone(),
        Some(vpr_hint.clone()),
    );
    let mix_hint: Vec<i32> = idx
        .clone()
        .map(|i| {
            let a = prev(&v, i, v[0]).max(1.0).log2();
            let b = if i == 0 {
                a
            } else {
                (v[i - 1] / rng[i - 1].max(1.0) * rng[i].max(1.0))
                    .max(1.0)
                    .log2()
            };
            ((a + b) / 2.0).round() as i32 + 1
        })
        .collect();
    add(
        "volume",
        "v | ctx mean(log v[-1], log range-scaled)",
        vi.clone(),
        Some(mix_hint.clone()),
    );
    // --- quote volume: v * vwap estimate
    let vw = |wo: f64, wh: f64, wl: f64, wc: f64| -> Vec<i128> {
        idx.clone()
            .map(|i| {
                let pr = (wo * o[i] + wh * h[i] + wl * l[i] + wc * cl[i]) / (wo + wh + wl + wc);
                q[i] - rnd(v[i] * pr * kq)
            })
            .collect()
    };
    let qhint: Vec<i32> = idx.clone().map(|i| bl(v[i] * rng[i] * kq)).collect();
    add(
        "quote_volume",
        "v*(h+l)/2 | hint v*(h-l)",
        vw(0., 1., 1., 0.),
        Some(qhint.clone()),
    );
    add(
        "quote_volume",
        "v*(o+h+l+c)/4",
        vw(1., 1., 1., 1.),
        Some(qhint.clone()),
    );
    add(
        "quote_volume",
        "v*(o+h+l+2c)/5",
        vw(1., 1., 1., 2.),
        Some(qhint.clone()),
    );
    add(
        "quote_volume",
        "v*(2o+h+l+2c)/6",
        vw(2., 1., 1., 2.),
        Some(qhint.clone()),
    );
    add(
        "quote_volume",
        "v*(o+c)/2",
        vw(1., 0., 0., 1.),
        Some(qhint.clone()),
    );
    // least squares weights of vwap on o h l c (relative to mid), for information
    {
        let mut ata = [[0f64; 2]; 2];
        let mut atb = [0f64; 2];
        for i in idx.clone() {
            if v[i] == 0.0 || rng[i] == 0.0 {
                continue;
            }
            let mid = (h[i] + l[i]) / 2.0;
            let y = (q[i] as f64 / (v[i] * kq) - mid) / rng[i];
            let x = [(o[i] - mid) / rng[i], (cl[i] - mid) / rng[i]];
            for a in 0..2 {
                atb[a] += x[a] * y;
                for b in 0..2 {
                    ata[a][b] += x[a] * x[b];
                }
            }
        }
        let det = ata[0][0] * ata[1][1] - ata[0][1] * ata[1][0];
        let wo = (atb[0] * ata[1][1] - atb[1] * ata[0][1]) / det;
        let wc = (atb[1] * ata[0][0] - atb[0] * ata[1][0]) / det;
        println!("  {name}: vwap - mid ~ {wo:.3} (o - mid) + {wc:.3} (c - mid) (least squares)");
    }
    // --- trades
    add("trades", "t", tr.clone(), None);
    add(
        "trades",
        "t | ctx t[-1]",
        tr.clone(),
        Some(
            idx.clone()
                .map(|i| bitlen(zz(if i == 0 { tr[0] } else { tr[i - 1] })))
                .collect(),
        ),
    );
    let tpred: Vec<f64> = idx
        .clone()
        .map(|i| {
            if i == 0 || v[i - 1] == 0.0 {
                0.0
            } else {
                tr[i - 1] as f64 / v[i - 1] * v[i]
            }
        })
        .collect();
    add(
        "trades",
        "t - v*t[-1]/v[-1]",
        idx.clone().map(|i| tr[i] - rnd(tpred[i])).collect(),
        Some(idx.clone().map(|i| bl(tpred[i]) - 1).collect()),
    );
    let tpred2: Vec<f64> = idx
        .clone()
        .map(|i| {
            if i == 0 || v[i - 1] == 0.0 {
                0.0
            } else {
                // geometric mean of the previous count and the volume-scaled one
                let a = tr[i - 1] as f64;
                (a * tpred[i]).sqrt()
            }
        })
        .collect();
    add(
        "trades",
        "t - sqrt(t[-1] * v*t[-1]/v[-1])",
        idx.clone().map(|i| tr[i] - rnd(tpred2[i])).collect(),
        Some(idx.clone().map(|i| bl(tpred2[i]) - 1).collect()),
    );
    add(
        "trades",
        "t - (t[-1] + v*t[-1]/v[-1])/2",
        idx.clone()
            .map(|i| {
                let p = if i == 0 {
                    0.0
                } else {
                    (tr[i - 1] as f64 + tpred[i]) / 2.0
                };
                tr[i] - p.floor() as i128
            })
            .collect(),
        None,
    );
    add(
        "trades",
        "t | ctx sqrt-pred",
        tr.clone(),
        Some(idx.clone().map(|i| bl(tpred2[i])).collect()),
    );
    // --- taker buy base
    let kb = conv(sv, 0, sb);
    let vh: Vec<i32> = idx.clone().map(|i| bl(v[i] * kb)).collect();
    add(
        "taker_buy_base",
        "v/2 | hint v",
        idx.clone().map(|i| tb[i] - rnd(v[i] * kb / 2.0)).collect(),
        Some(vh.clone()),
    );
    for a in [0.1, 0.2, 0.3] {
        add(
            "taker_buy_base",
            &format!("v*(1/2 + {a}(c-o)/(h-l))"),
            idx.clone()
                .map(|i| {
                    let d = if rng[i] > 0.0 {
                        (cl[i] - o[i]) / rng[i]
                    } else {
                        0.0
                    };
                    tb[i] - rnd(v[i] * kb * (0.5 + a * d))
                })
                .collect(),
            Some(vh.clone()),
        );
    }
    add(
        "taker_buy_base",
        "v * tbb[-1]/v[-1]",
        idx.clone()
            .map(|i| {
                let r = if i == 0 || v[i - 1] == 0.0 {
                    0.5
                } else {
                    tb[i - 1] as f64 / (v[i - 1] * kb)
                };
                tb[i] - rnd(v[i] * kb * r)
            })
            .collect(),
        Some(vh.clone()),
    );
    // --- taker buy quote
    let tqh: Vec<i32> = idx
        .clone()
        .map(|i| bl(tb[i] as f64 * rng[i] * kt))
        .collect();
    let tvw = |beta: f64| -> Vec<i128> {
        idx.clone()
            .map(|i| {
                let vwap = if v[i] == 0.0 {
                    (h[i] + l[i]) / 2.0
                } else {
                    q[i] as f64 / (v[i] * kq)
                };
                let d = if rng[i] > 0.0 {
                    (cl[i] - o[i]) / rng[i]
                } else {
                    0.0
                };
                tq[i] - rnd(tb[i] as f64 * (vwap + beta * d * rng[i]) * kt)
            })
            .collect()
    };
    add(
        "taker_buy_quote",
        "tbb*qv/v | hint tbb*(h-l)",
        tvw(0.0),
        Some(tqh.clone()),
    );
    for beta in [0.02, 0.05, 0.1] {
        add(
            "taker_buy_quote",
            &format!("tbb*(qv/v + {beta}(c-o))"),
            tvw(beta),
            Some(tqh.clone()),
        );
    }
    // hint on the sell side's share: the residual is bounded by min(tbb, v - tbb) * range
    let tqh2: Vec<i32> = idx
        .clone()
        .map(|i| bl((tb[i] as f64).min(v[i] * kb - tb[i] as f64).max(0.0) * rng[i] * kt))
        .collect();
    add(
        "taker_buy_quote",
        "tbb*qv/v | hint min(tbb,sell)*(h-l)",
        tvw(0.0),
        Some(tqh2),
    );
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sets: Vec<(String, Vec<Candle>)> = if args.is_empty() {
        [
            "rest_klines_BTCUSDT_1m_limit1000.json",
            "rest_klines_BTCUSDT_5m_limit1000.json",
            "rest_klines_BTCUSDT_15m_limit1000.json",
        ]
        .iter()
        .map(|f| (f.to_string(), candles_testkit::fixtures::candles(f)))
        .collect()
    } else {
        args.iter()
            .map(|f| {
                let b = std::fs::read(f).expect("readable");
                let cs = candles_core::binance::parse_klines(&b)
                    .expect("klines")
                    .into_iter()
                    .map(|k| k.candle)
                    .collect();
                (f.clone(), cs)
            })
            .collect()
    };
    for (name, cs) in sets {
        println!("{name} ({} candles)", cs.len());
        let mut sec: Vec<(&str, usize)> = Vec::new();
        for ch in cs.chunks(candles_core::chunk::CHUNK_MAX) {
            for (i, (s, b)) in candles_core::chunk::section_bits(ch)
                .into_iter()
                .enumerate()
            {
                if sec.len() <= i {
                    sec.push((s, 0));
                }
                sec[i].1 += b;
            }
        }
        let line: Vec<String> = sec
            .iter()
            .map(|(s, b)| format!("{s} {:.1}", *b as f64 / cs.len() as f64))
            .collect();
        println!("  codec today, bits/candle: {}", line.join(", "));
        println!(
            "  {:<16} {:<44} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "column", "model", "zeros", "rice", "rice+z", "ac", "floor", "floor2"
        );
        for r in study(&name, &cs) {
            println!(
                "  {:<16} {:<44} {:>6.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2}",
                r.col, r.model, r.zeros, r.rice, r.rz, r.ac, r.floor, r.floor2
            );
        }
    }
}
