//! Tests of derived series (R8) and sealing (R9), against Binance's own candles where the
//! recorded fixtures overlap.

use super::*;
use crate::align::Align;
use crate::binance::parse_klines;
use crate::candle::{CandleKind, Incoming};
use crate::decimal::Dec;

use candles_testkit::fixtures::bytes as fixture;

const FAR: i64 = 4_000_000_000_000;

fn series(i: &str) -> Series {
    Series::new(Settings {
        interval: Interval::parse(i).unwrap(),
        align: Align::Utc,
        retention: 0,
        live_ttl_s: 86_400,
        live_max: 64,
        policy: DuplicatePolicy::Replace,
    })
}

fn rest(name: &str) -> Vec<Incoming> {
    parse_klines(&fixture(name))
        .unwrap()
        .into_iter()
        .map(|k| Incoming {
            candle: k.candle,
            closed: k.closed,
        })
        .collect()
}

/// A write to `chain[0]` (already applied, `effect` with the live times before it), cascaded
/// down the chain as the module does.
fn cascade(chain: &mut [Series], effect: &Effect, live_before: &[i64], now: i64) {
    let mut touched = chain[0].touched_times(effect, live_before);
    let mut given = effect.official.clone();
    for i in 1..chain.len() {
        let (src, rest) = chain.split_at_mut(i);
        let dst = &mut rest[0];
        let before = dst.live_times();
        let e = dst.derive(&src[i - 1], &touched, &given, now);
        dst.apply(&e);
        touched = dst.touched_times(&e, &before);
        // Handed back as the module's cascade does: every chain test runs on reused vectors.
        crate::candle::recycle(std::mem::replace(&mut given, e.official));
    }
}

fn add(chain: &mut [Series], batch: &[Incoming], now: i64) {
    let before = chain[0].live_times();
    let out = chain[0].add_official(batch, now).unwrap();
    cascade(chain, &out.effect, &before, now);
}

fn merged(s: &Series) -> Vec<(Candle, CandleKind)> {
    s.range_merged(i64::MIN, i64::MAX, None, FAR)
}

/// Every bucket of `derived` the source covers whole equals the exchange's own candle.
fn assert_equals_exchange(derived: &Series, exchange: &[Incoming], min_matches: usize) {
    let by_time: std::collections::HashMap<i64, Candle> = exchange
        .iter()
        .map(|i| (i.candle.open_time, i.candle))
        .collect();
    let mut matched = 0;
    for (c, kind) in merged(derived) {
        if kind != CandleKind::Official {
            continue;
        }
        let want = by_time
            .get(&c.open_time)
            .expect("an exchange candle for the bucket");
        assert_eq!(&c, want, "bucket {}", c.open_time);
        matched += 1;
    }
    assert!(matched >= min_matches, "only {matched} buckets compared");
}

#[test]
fn one_minute_to_five_minutes_equals_binance_field_for_field() {
    let mut chain = [series("1m"), series("5m")];
    add(
        &mut chain,
        &rest("rest_klines_BTCUSDT_1m_limit1000.json"),
        FAR,
    );
    let five = rest("rest_klines_BTCUSDT_5m_limit1000.json");
    // 1000 minutes from 02:27: 199 whole buckets; the first (from 02:25) is not derived, the
    // last (19:05, two minutes) is live.
    assert_equals_exchange(&chain[1], &five, 199);
    let m = merged(&chain[1]);
    assert_eq!(m.first().unwrap().0.open_time, 1_725_417_000_000);
    assert_eq!(m.last().unwrap().1, CandleKind::Live);
    assert_eq!(
        m.iter().filter(|(_, k)| *k == CandleKind::Official).count(),
        199
    );
}

/// A recycled vector comes back empty: a derivation that takes it holds only its own candles.
#[test]
fn recycled_candle_vectors_carry_nothing_over() {
    let one = rest("rest_klines_BTCUSDT_1m_limit1000.json");
    let mut fresh = [series("1m"), series("5m")];
    add(&mut fresh, &one, FAR);
    let stale = fresh[1].official.range(i64::MIN, i64::MAX, None);
    assert!(stale.len() > 100);
    for _ in 0..4 {
        crate::candle::recycle(stale.clone());
    }
    let mut reused = [series("1m"), series("5m")];
    let before = reused[0].live_times();
    let out = reused[0].add_official(&one, FAR).unwrap();
    let touched = reused[0].touched_times(&out.effect, &before);
    let (src, dst) = reused.split_at_mut(1);
    let e = dst[0].derive(&src[0], &touched, &out.effect.official, FAR);
    assert_eq!(e.official, stale);
}

#[test]
fn five_minutes_to_fifteen_minutes_equals_binance_where_the_files_overlap() {
    let mut chain = [series("5m"), series("15m")];
    add(
        &mut chain,
        &rest("rest_klines_BTCUSDT_5m_limit1000.json"),
        FAR,
    );
    let fifteen = rest("rest_klines_BTCUSDT_15m_limit1000.json");
    // The 15m body's last row was still forming when it was recorded: not a closed bucket.
    let closed = &fifteen[..fifteen.len() - 1];
    let overlap: Vec<&Incoming> = closed
        .iter()
        .filter(|i| i.candle.open_time >= 1_725_177_300_000)
        .collect();
    let by_time: std::collections::HashMap<i64, Candle> = overlap
        .iter()
        .map(|i| (i.candle.open_time, i.candle))
        .collect();
    let mut matched = 0;
    for (c, kind) in merged(&chain[1]) {
        if let Some(want) = by_time.get(&c.open_time) {
            assert_eq!(kind, CandleKind::Official);
            assert_eq!(&c, want);
            matched += 1;
        }
    }
    assert!(matched >= 30, "{matched}");
}

#[test]
fn a_chain_equals_each_level_derived_from_the_bottom() {
    let rows = rest("rest_klines_BTCUSDT_1m_limit1000.json");
    let mut chain = [series("1m"), series("5m"), series("15m"), series("1h")];
    // In pieces, out of order, as a feeder's gap fill would write them.
    let (a, b) = rows.split_at(600);
    add(&mut chain, b, FAR);
    add(&mut chain, a, FAR);
    for level in &chain[1..] {
        let mut minutes = series("1m");
        minutes.add_official(&rows, FAR).unwrap();
        let mut direct = Series::new(*level.settings());
        let e = direct.derive_all(&minutes, FAR);
        direct.apply(&e);
        assert_eq!(merged(level), merged(&direct), "{}", level.interval());
        assert!(!merged(&direct).is_empty());
    }
}

#[test]
fn a_correction_at_the_bottom_reaches_the_end_of_the_chain() {
    let rows = rest("rest_klines_BTCUSDT_1m_limit1000.json");
    let mut chain = [series("1m"), series("5m"), series("15m"), series("1h")];
    add(&mut chain, &rows, FAR);
    let hour = merged(&chain[3]);
    let (h, _) = hour
        .iter()
        .find(|(_, k)| *k == CandleKind::Official)
        .unwrap();
    // A REPLACE correction: one minute of that hour with a higher high and more volume.
    let mut fixed = chain[0].official().get(h.open_time + 60_000).unwrap();
    fixed.high = Dec::parse("99999.99").unwrap();
    fixed.volume = fixed
        .volume
        .checked_add(Dec::parse("1.5").unwrap())
        .unwrap();
    add(
        &mut chain,
        &[Incoming {
            candle: fixed,
            closed: None,
        }],
        FAR,
    );
    let after = chain[3].official().get(h.open_time).unwrap();
    assert_eq!(after.high.to_string(), "99999.99");
    assert_eq!(
        after.volume,
        h.volume.checked_add(Dec::parse("1.5").unwrap()).unwrap()
    );
    assert_eq!(
        chain[1]
            .official()
            .get(h.open_time)
            .unwrap()
            .high
            .to_string(),
        "99999.99"
    );
}

#[test]
fn a_live_minute_makes_every_level_live() {
    let rows = rest("rest_klines_BTCUSDT_1m_limit1000.json");
    // (No 1d: the 1m history begins inside its day, which is therefore not derived.)
    let mut chain = [series("1m"), series("5m"), series("15m"), series("1h")];
    // All but the last hour's worth, official; then a live minute after the last one.
    add(&mut chain, &rows[..960], FAR);
    let next = rows[959].candle.open_time + 60_000;
    let live = Candle {
        open_time: next,
        close_time: None,
        ..rows[960].candle
    };
    let before = chain[0].live_times();
    let out = chain[0].live_update(live, FAR).unwrap();
    cascade(&mut chain, &out.effect, &before, FAR);
    for s in &chain[1..] {
        let (c, kind) = *merged(s).last().unwrap();
        assert_eq!(kind, CandleKind::Live, "{}", s.interval());
        assert_eq!(c.open_time, s.buckets().align_down(next));
        assert_eq!(c.close, live.close);
    }
    // The exchange's official minute replaces it: each bucket is rebuilt from officials.
    add(
        &mut chain,
        &[Incoming {
            candle: rows[960].candle,
            closed: None,
        }],
        FAR,
    );
    assert_eq!(chain[0].live_len(), 0);
    assert_eq!(chain[1].live_len(), 1); // its 5m bucket has 1 of 5 minutes: still forming
}

#[test]
fn a_bucket_the_source_covers_only_in_part_is_never_official() {
    let rows = rest("rest_klines_BTCUSDT_1m_limit1000.json");
    let mut chain = [series("1m"), series("1h")];
    add(&mut chain, &rows, FAR);
    // The 1m history begins at 02:27: the 02:00 hour is not derived at all.
    let first = merged(&chain[1]).first().unwrap().0.open_time;
    assert_eq!(first, 1_725_418_800_000); // 03:00
                                          // Exchange history may fill it.
    let hour = Candle {
        open_time: 1_725_415_200_000,
        close_time: None,
        ..rows[0].candle
    };
    let out = chain[1]
        .add_official(
            &[Incoming {
                candle: hour,
                closed: None,
            }],
            FAR,
        )
        .unwrap();
    assert_eq!(out.changed, 1);
}

#[test]
fn a_gap_in_the_source_keeps_its_bucket_unofficial() {
    let mut rows = rest("rest_klines_BTCUSDT_1m_limit1000.json");
    rows.remove(100); // 04:07 missing
    let mut chain = [series("1m"), series("5m")];
    add(&mut chain, &rows, FAR);
    assert!(chain[1].official().get(1_725_422_700_000).is_none()); // 04:05
    assert!(chain[1].official().get(1_725_423_000_000).is_some()); // 04:10
}

#[test]
fn derived_candles_sum_exactly() {
    // Volumes whose float sums drift: 0.1 + 0.2.
    let mut chain = [series("1m"), series("5m")];
    let c = |t: i64, v: &str| Incoming {
        candle: Candle::ohlcv(
            t,
            Dec::parse("1").unwrap(),
            Dec::parse("1").unwrap(),
            Dec::parse("1").unwrap(),
            Dec::parse("1").unwrap(),
            Dec::parse(v).unwrap(),
        ),
        closed: None,
    };
    let batch: Vec<Incoming> = ["0.1", "0.2", "0.1", "0.2", "0.1"]
        .iter()
        .enumerate()
        .map(|(i, v)| c(i as i64 * 60_000, v))
        .collect();
    add(&mut chain, &batch, FAR);
    assert_eq!(
        chain[1].official().get(0).unwrap().volume.to_string(),
        "0.7"
    );
}

#[test]
fn time_zone_days_from_hours() {
    let rows = rest("rest_klines_BTCUSDT_15m_limit1000.json");
    let mut src = series("15m");
    src.add_official(&rows, FAR).unwrap();
    let berlin = Align::parse_zone("Europe/Berlin").unwrap();
    let mut day = Series::new(Settings {
        align: berlin,
        ..*series("1d").settings()
    });
    let e = day.derive_all(&src, FAR);
    day.apply(&e);
    let m = merged(&day);
    assert!(m.len() >= 9);
    // Berlin summer midnight is 22:00 UTC.
    for (c, _) in &m {
        assert_eq!(c.open_time.rem_euclid(86_400_000), 22 * 3_600_000);
        assert_eq!(c.close_time, Some(c.open_time + 86_400_000 - 1));
    }
    let (c, _) = m[1];
    let in_day: Vec<&Incoming> = rows
        .iter()
        .filter(|i| (c.open_time..c.open_time + 86_400_000).contains(&i.candle.open_time))
        .collect();
    assert_eq!(in_day.len(), 96);
    assert_eq!(c.open, in_day[0].candle.open);
    assert_eq!(c.close, in_day[95].candle.close);
}

#[test]
fn seal_makes_ended_live_candles_official() {
    let mut s = series("1m");
    let p = Dec::parse("100").unwrap();
    for t in [0, 60_000, 120_000] {
        s.live_tick(t + 5, p, Dec::parse("1").unwrap(), 130_000)
            .unwrap();
    }
    // The 02:00 minute is still forming at 130 s: it stays live whatever `until` says.
    let (n, e) = s.seal(i64::MAX, 130_000);
    assert_eq!(n, 2);
    assert_eq!(e.official.len(), 2);
    assert_eq!(s.official_len(), 2);
    assert_eq!(s.live_len(), 1);
    assert_eq!(s.seal(120_000, 130_000).0, 0);
}

/// A derived series' store takes its few candles per write into the longer streamed tail
/// (sealed in chunks of `STREAM_TAIL_MAX`), from its creation effect on and after a
/// snapshot round trip; its source's store keeps the ordinary one.
#[test]
fn derived_stores_take_a_streamed_tail() {
    use crate::chunk::{STREAM_TAIL_MAX, TAIL_MAX};
    let rows = rest("rest_klines_BTCUSDT_1m_limit1000.json");
    let mut minutes = series("1m");
    let mut fives = series("5m");
    fives.apply(&Effect {
        source: Some(b"m".to_vec()),
        ..Effect::default()
    });
    for page in rows.chunks(50) {
        let before = minutes.live_times();
        let out = minutes.add_official(page, FAR).unwrap();
        let touched = minutes.touched_times(&out.effect, &before);
        let e = fives.derive(&minutes, &touched, &out.effect.official, FAR);
        fives.apply(&e);
    }
    // 200 five-minute candles, ~10 per write: one chunk of 128, the rest in the tail.
    assert_eq!(fives.official().chunk_lens(), vec![STREAM_TAIL_MAX]);
    assert!(fives.official_len() - STREAM_TAIL_MAX >= TAIL_MAX);
    assert!(minutes
        .official()
        .chunk_lens()
        .iter()
        .all(|&n| n <= STREAM_TAIL_MAX));
    assert!(
        minutes.official_len() - minutes.official().chunk_lens().iter().sum::<usize>() < TAIL_MAX
    );
    let mut buf = Vec::new();
    fives.encode(&mut buf);
    let mut back = Series::decode(&buf).unwrap();
    assert_eq!(back, fives);
    // Still streamed: the next candles join the tail instead of sealing it.
    let mut next = back.official().range(i64::MIN, i64::MAX, Some(1))[0];
    next.open_time += 300_000;
    next.close_time = next.close_time.map(|t| t + 300_000);
    back.apply(&Effect {
        official: vec![next],
        ..Effect::default()
    });
    assert_eq!(back.official().chunk_lens(), vec![STREAM_TAIL_MAX]);
}

#[test]
fn links_and_alignment_round_trip() {
    let mut s = Series::new(Settings {
        align: Align::Offset(19_800),
        ..*series("1d").settings()
    });
    s.apply(&Effect {
        source: Some(b"candle:{BTC}:1h".to_vec()),
        feeds: Some(vec![b"candle:{BTC}:1w".to_vec()]),
        ..Effect::default()
    });
    let mut buf = Vec::new();
    s.encode(&mut buf);
    assert_eq!(buf[0], 3);
    let back = Series::decode(&buf).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.source(), Some(&b"candle:{BTC}:1h"[..]));
    assert_eq!(back.feeds().len(), 1);
    let e = Effect {
        create: Some(*s.settings()),
        source: Some(b"x".to_vec()),
        clock: Some(5),
        ..Effect::default()
    };
    let mut buf = Vec::new();
    e.encode(&mut buf);
    assert_eq!(Effect::decode(&buf).unwrap(), e);
    // A plain series keeps its old encoding.
    let mut buf = Vec::new();
    series("1m").encode(&mut buf);
    assert_eq!(buf[0], 1);
    for cut in 0..buf.len() {
        let _ = Series::decode(&buf[..cut]);
    }
}

/// Whatever the order of writes, each level kept current write by write (with its caches)
/// equals the level derived from scratch from the bottom: official pages, out-of-order gap
/// fills, REPLACE corrections inside a bucket whose aggregate is cached, live updates and
/// ticks, expiry.
#[test]
fn incremental_derivation_equals_derivation_from_scratch() {
    use crate::test_rng::XorShift;
    let rows = rest("rest_klines_BTCUSDT_1m_limit1000.json");
    let mut rng = XorShift(0x5eed_cafe);
    let mut chain = [series("1m"), series("5m"), series("15m"), series("1h")];
    let mut now = FAR;
    let mut written = 0usize; // rows[..written] were offered as officials, in some order
    for step in 0..400 {
        now += 1_000;
        let before = chain[0].live_times();
        let effect = match rng.below(6) {
            // The next page of history.
            0 if written < rows.len() => {
                let n = (1 + rng.below(40) as usize).min(rows.len() - written);
                let page: Vec<Incoming> = rows[written..written + n].to_vec();
                written += n;
                chain[0].add_official(&page, now).unwrap().effect
            }
            // A correction of a stored minute (REPLACE), or an out-of-order gap fill.
            1 if written > 0 => {
                let i = rng.below(written as u64) as usize;
                let mut c = rows[i].candle;
                c.high = c.high.checked_add(Dec::parse("0.5").unwrap()).unwrap();
                c.volume = c.volume.checked_add(Dec::parse("0.001").unwrap()).unwrap();
                chain[0]
                    .add_official(
                        &[Incoming {
                            candle: c,
                            closed: None,
                        }],
                        now,
                    )
                    .unwrap()
                    .effect
            }
            // A live update or a tick just after the last offered row.
            2 | 3 if written < rows.len() => {
                let c = rows[written].candle;
                chain[0]
                    .live_update(
                        Candle {
                            close_time: None,
                            ..c
                        },
                        now,
                    )
                    .unwrap()
                    .effect
            }
            4 if written < rows.len() => {
                let t = rows[written].candle.open_time + 5_000;
                chain[0]
                    .live_tick(t, rows[written].candle.low, Dec::parse("0.1").unwrap(), now)
                    .unwrap()
                    .effect
            }
            _ => continue,
        };
        cascade(&mut chain, &effect, &before, now);
        if step % 50 == 49 || step == 399 {
            for level in 1..4 {
                let mut scratch = Series::new(*chain[level].settings());
                let src = if level == 1 {
                    chain[0].clone()
                } else {
                    {
                        // Each level from scratch from the level below, itself from scratch.
                        let mut below = chain[0].clone();
                        for l in &chain[1..level] {
                            let mut next = Series::new(*l.settings());
                            let e = next.derive_all(&below, now);
                            next.apply(&e);
                            below = next;
                        }
                        below
                    }
                };
                let e = scratch.derive_all(&src, now);
                scratch.apply(&e);
                let (a, b) = (
                    chain[level].range_merged(i64::MIN, i64::MAX, None, now),
                    scratch.range_merged(i64::MIN, i64::MAX, None, now),
                );
                assert_eq!(a, b, "level {level} after step {step}");
            }
        }
    }
    assert!(written > 500, "{written}");
}
