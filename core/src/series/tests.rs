//! Tests of `Series`: the write rules, merged and JSON reads, and the wire formats, most
//! of them against the recorded Binance fixtures.

use super::*;
use crate::binance::{parse_klines, parse_stream_frame, StreamEvent};
use crate::candle::{CandleKind, Incoming};
use crate::chart_cache::ChartCache;
use crate::decimal::Dec;
use crate::render;

use candles_testkit::fixtures::bytes as fixture;

fn settings(interval: Interval) -> Settings {
    Settings {
        align: Default::default(),
        interval,
        retention: 0,
        live_ttl_s: 86_400,
        live_max: 64,
        policy: DuplicatePolicy::Replace,
    }
}

fn rest_1m() -> Vec<Incoming> {
    parse_klines(&fixture("rest_klines_BTCUSDT_1m_limit1000.json"))
        .unwrap()
        .into_iter()
        .map(|k| Incoming {
            candle: k.candle,
            closed: k.closed,
        })
        .collect()
}

fn d(s: &str) -> Dec {
    Dec::parse(s).unwrap()
}

fn c(t: i64, o: &str, h: &str, l: &str, cl: &str, v: &str) -> Candle {
    Candle::ohlcv(t, d(o), d(h), d(l), d(cl), d(v))
}

fn off(c: Candle) -> Incoming {
    Incoming {
        candle: c,
        closed: None,
    }
}

const FAR: i64 = 4_000_000_000_000; // 2096: every fixture candle is closed by then.
const T0: i64 = 1_725_416_820_000; // first row of the 1m fixture

#[test]
fn bootstrap_rest_body_and_identical_readd_is_noop() {
    let rows = rest_1m();
    let mut s = Series::new(settings(Interval::M1));
    let out = s.add_official(&rows, FAR).unwrap();
    assert_eq!((out.changed, out.routed_live), (1000, 0));
    assert_eq!(s.official_len(), 1000);
    let again = s.add_official(&rows, FAR).unwrap();
    assert_eq!(again.changed, 0);
    assert!(again.effect.is_empty());
    let merged = s.range_merged(i64::MIN, i64::MAX, None, FAR);
    assert_eq!(merged.len(), 1000);
    assert_eq!(merged[0].0, rows[0].candle);
    assert!(merged.iter().all(|(_, k)| *k == CandleKind::Official));
    assert_eq!(merged[0].0.open.to_string(), "56714");
    assert_eq!(merged[999].0.close.to_string(), "57771.01");
}

#[test]
fn r4_forming_last_row_is_stored_live_then_official_wins() {
    let rows = rest_1m();
    let last = rows.last().unwrap().candle;
    // The server clock is inside the last candle: it is still forming.
    let now = last.open_time + 30_000;
    let mut s = Series::new(settings(Interval::M1));
    let out = s.add_official(&rows, now).unwrap();
    assert_eq!((out.changed, out.routed_live), (999, 1));
    assert_eq!(s.official_len(), 999);
    assert_eq!(s.live_candles(now), vec![last]);
    let tail = s.range_merged(i64::MIN, i64::MAX, Some(2), now);
    assert_eq!(tail[1], (last, CandleKind::Live));
    assert_eq!(tail[0].1, CandleKind::Official);
    // Later the closed candle arrives (corrected values): official, live dropped.
    let mut closed = last;
    closed.volume = d("99.5");
    let out = s
        .add_official(&[off(closed)], last.open_time + 61_000)
        .unwrap();
    assert_eq!(out.changed, 1);
    assert_eq!(s.live_len(), 0);
    assert_eq!(
        s.range_merged(i64::MIN, i64::MAX, Some(1), now)[0],
        (closed, CandleKind::Official)
    );
}

/// Forming rows of one open time sent more than once in a batch: the last of each time is
/// the live candle, as if each replaced the one before, and a page of only forming rows
/// (a clock behind the exchange's) routes every one of them.
#[test]
fn r4_repeated_forming_rows_last_one_wins() {
    let rows = rest_1m();
    // Every row still forming: the clock sits before the first one closes.
    let now = T0 + 1;
    let mut page: Vec<Incoming> = rows.clone();
    let mut again = rows[3].clone();
    again.candle.volume = d("12.5");
    page.push(again.clone());
    let mut s = Series::new(settings(Interval::M1));
    let out = s.add_official(&page, now).unwrap();
    assert_eq!((out.changed, out.routed_live), (0, 1001));
    let put: Vec<i64> = out
        .effect
        .live_put
        .iter()
        .map(|l| l.candle.open_time)
        .collect();
    let mut want: Vec<i64> = rows.iter().map(|r| r.candle.open_time).collect();
    want.retain(|&t| t != rows[3].candle.open_time);
    want.push(rows[3].candle.open_time);
    assert_eq!(put, want);
    assert_eq!(out.effect.live_put.last().unwrap().candle, again.candle);
}

#[test]
fn r4_ws_frames_from_capture() {
    let mut s = Series::new(settings(Interval::M1));
    let mut last_closed = None;
    for line in String::from_utf8(fixture("ws_kline_1m_combined.jsonl"))
        .unwrap()
        .lines()
    {
        if !line.contains("btcusdt@kline_1m") {
            continue;
        }
        let StreamEvent::Kline(k) = parse_stream_frame(line.as_bytes()).unwrap() else {
            panic!()
        };
        let event_time: i64 = serde_json::from_str::<serde_json::Value>(line).unwrap()["data"]["E"]
            .as_i64()
            .unwrap();
        if k.closed == Some(true) {
            last_closed = Some(k.candle);
            let out = s
                .add_official(
                    &[Incoming {
                        candle: k.candle,
                        closed: k.closed,
                    }],
                    event_time,
                )
                .unwrap();
            assert_eq!(out.changed, 1);
        } else {
            // x=false sent as official is rerouted to live (R4).
            let out = s
                .add_official(
                    &[Incoming {
                        candle: k.candle,
                        closed: k.closed,
                    }],
                    event_time,
                )
                .unwrap();
            assert_eq!(out.changed, 0);
            assert_eq!(s.live_candles(event_time).last(), Some(&k.candle));
        }
    }
    let closed = last_closed.unwrap();
    assert_eq!(s.official_len(), 1);
    assert_eq!(s.official().get(closed.open_time), Some(closed));
    let live = s.live_candles(1_617_566_700_000);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].open_time, closed.open_time + 60_000);
}

#[test]
fn r2_live_update_ignored_for_official_or_older_times() {
    let mut s = Series::new(settings(Interval::M1));
    s.add_official(&[off(c(120_000, "1", "2", "1", "2", "1"))], FAR)
        .unwrap();
    assert!(
        !s.live_update(c(120_000, "5", "5", "5", "5", "1"), FAR)
            .unwrap()
            .changed
    );
    assert!(
        !s.live_update(c(60_000, "5", "5", "5", "5", "1"), FAR)
            .unwrap()
            .changed
    );
    assert!(
        s.live_update(c(180_000, "5", "5", "5", "5", "1"), FAR)
            .unwrap()
            .changed
    );
    assert_eq!(s.live_len(), 1);
}

#[test]
fn r5_no_hole_while_official_lags() {
    let h = 3_600_000;
    let mut s = Series::new(settings(Interval::H1));
    s.live_update(c(10 * h, "1", "2", "1", "2", "1"), 10 * h + 5)
        .unwrap();
    s.live_update(c(11 * h, "2", "3", "2", "3", "1"), 11 * h + 5)
        .unwrap();
    let m = s.range_merged(0, 20 * h, None, 11 * h + 10);
    assert_eq!(
        m.iter().map(|(c, k)| (c.open_time, *k)).collect::<Vec<_>>(),
        vec![(10 * h, CandleKind::Live), (11 * h, CandleKind::Live)]
    );
    s.add_official(&[off(c(10 * h, "1", "2.5", "1", "2", "1.5"))], 11 * h + 20)
        .unwrap();
    let m = s.range_merged(0, 20 * h, None, 11 * h + 30);
    assert_eq!(
        m.iter().map(|(c, k)| (c.open_time, *k)).collect::<Vec<_>>(),
        vec![(10 * h, CandleKind::Official), (11 * h, CandleKind::Live)]
    );
}

#[test]
fn r3_duplicate_policies() {
    let a = c(60_000, "1", "2", "1", "2", "1");
    let b = c(60_000, "1", "3", "1", "2", "1");
    let other = c(120_000, "1", "3", "1", "2", "1");
    for (policy, expect_changed, expect) in [
        (DuplicatePolicy::Replace, 1, &b),
        (DuplicatePolicy::Keep, 0, &a),
    ] {
        let mut s = Series::new(Settings {
            align: Default::default(),
            policy,
            ..settings(Interval::M1)
        });
        s.add_official(&[off(a)], FAR).unwrap();
        assert_eq!(
            s.add_official(&[off(b)], FAR).unwrap().changed,
            expect_changed
        );
        assert_eq!(s.official().get(60_000).as_ref(), Some(expect));
    }
    let mut s = Series::new(Settings {
        align: Default::default(),
        policy: DuplicatePolicy::Block,
        ..settings(Interval::M1)
    });
    s.add_official(&[off(a)], FAR).unwrap();
    assert_eq!(s.add_official(&[off(a)], FAR).unwrap().changed, 0);
    let before = s.clone();
    assert!(s.add_official(&[off(other), off(b)], FAR).is_err());
    assert_eq!(s, before);
    // Two different candles for one time inside one batch conflict too.
    let mut fresh = Series::new(Settings {
        align: Default::default(),
        policy: DuplicatePolicy::Block,
        ..settings(Interval::M1)
    });
    assert!(fresh
        .add_official(&[off(other), off(c(120_000, "1", "4", "1", "2", "1"))], FAR)
        .is_err());
    assert_eq!(fresh.official_len(), 0);
}

#[test]
fn r6_batch_with_one_invalid_candle_writes_nothing() {
    let mut rows = rest_1m();
    let mut s = Series::new(settings(Interval::M1));
    rows[500].candle.high = d("1"); // below open
    assert!(s.add_official(&rows, FAR).is_err());
    assert_eq!(s.official_len(), 0);
    rows[500].candle.high = d("100000");
    rows[700].candle.open_time += 1; // misaligned
    assert!(s.add_official(&rows, FAR).is_err());
    assert_eq!(s, Series::new(settings(Interval::M1)));
}

#[test]
fn r7_live_ticks_fold_exactly() {
    let mut s = Series::new(settings(Interval::M1));
    assert!(
        s.live_tick(60_500, d("10"), d("0.1"), 60_500)
            .unwrap()
            .changed
    );
    s.live_tick(61_000, d("12"), d("0.2"), 61_000).unwrap();
    s.live_tick(62_000, d("9.5"), d("0.0001"), 62_000).unwrap();
    let live = s.live_candles(62_000);
    assert_eq!(live, vec![c(60_000, "10", "12", "9.5", "9.5", "0.3001")]);
    s.add_official(&[off(c(60_000, "10", "12", "9", "9.5", "5"))], FAR)
        .unwrap();
    assert!(
        !s.live_tick(60_700, d("50"), d("1"), 200_000)
            .unwrap()
            .changed
    );
    assert!(
        s.live_tick(120_100, d("50"), d("1"), 200_000)
            .unwrap()
            .changed
    );
    assert!(s.live_tick(120_100, d("-1"), d("1"), 200_000).is_err());
}

#[test]
fn live_ttl_and_live_max() {
    let mut s = Series::new(Settings {
        align: Default::default(),
        live_ttl_s: 10,
        live_max: 3,
        ..settings(Interval::M1)
    });
    for i in 1..=5 {
        s.live_update(c(i * 60_000, "1", "1", "1", "1", "1"), 1_000)
            .unwrap();
    }
    assert_eq!(
        s.live_candles(1_000)
            .iter()
            .map(|c| c.open_time)
            .collect::<Vec<_>>(),
        vec![180_000, 240_000, 300_000]
    );
    assert!(
        s.live_candles(11_000).is_empty(),
        "expired 10 s after the last update"
    );
    assert_eq!(s.live_candles(10_999).len(), 3);
    // A later write purges the expired ones as part of its effect.
    let out = s
        .live_update(c(360_000, "1", "1", "1", "1", "1"), 20_000)
        .unwrap();
    assert_eq!(out.effect.live_drop, vec![180_000, 240_000, 300_000]);
    assert_eq!(s.live_len(), 1);
}

#[test]
fn count_returns_newest_ascending_and_mixes_live() {
    let rows = rest_1m();
    let mut s = Series::new(settings(Interval::M1));
    s.add_official(&rows, FAR).unwrap();
    let last = rows.last().unwrap().candle.open_time;
    s.live_update(c(last + 60_000, "1", "1", "1", "1", "1"), FAR - 1)
        .unwrap();
    let m = s.range_merged(i64::MIN, i64::MAX, Some(720), FAR);
    assert_eq!(m.len(), 720);
    assert_eq!(m[719].1, CandleKind::Live);
    assert_eq!(m[718].0, rows[999].candle);
    assert_eq!(m[0].0, rows[1000 - 719].candle);
    assert!(m.windows(2).all(|w| w[0].0.open_time < w[1].0.open_time));
    assert!(s.range_merged(T0, T0 + 120_000, None, FAR).len() == 3);
    assert!(s.range_merged(5, 4, None, FAR).is_empty());
}

#[test]
fn gaps_between_aligned_times() {
    let mut s = Series::new(settings(Interval::M1));
    for t in [3, 4, 7, 9] {
        s.add_official(&[off(c(t * 60_000, "1", "1", "1", "1", "1"))], FAR)
            .unwrap();
    }
    let m = 60_000;
    assert_eq!(
        s.gaps(m, 12 * m).unwrap(),
        vec![(m, 2 * m), (5 * m, 6 * m), (8 * m, 8 * m), (10 * m, 12 * m)]
    );
    assert_eq!(s.gaps(3 * m, 4 * m).unwrap(), vec![]);
    assert!(s.gaps(m + 1, 2 * m).is_err());
    let mut months = Series::new(settings(Interval::Mo1));
    let jan = 1_704_067_200_000;
    let mar = 1_709_251_200_000;
    months
        .add_official(&[off(c(mar, "1", "1", "1", "1", "1"))], FAR)
        .unwrap();
    assert_eq!(
        months.gaps(jan, mar).unwrap(),
        vec![(jan, Interval::Mo1.prev(mar))]
    );
}

#[test]
fn retention_keeps_newest() {
    let mut s = Series::new(Settings {
        align: Default::default(),
        retention: 10,
        ..settings(Interval::M1)
    });
    let out = s.add_official(&rest_1m(), FAR).unwrap();
    assert_eq!((out.changed, s.official_len()), (10, 10));
    assert_eq!(s.official().first_time(), Some(T0 + 990 * 60_000));
}

#[test]
fn encoding_round_trips_and_rejects_corruption() {
    let rows = rest_1m();
    let now = rows.last().unwrap().candle.open_time + 1;
    let mut s = Series::new(settings(Interval::M1));
    s.add_official(&rows, now).unwrap();
    let mut buf = Vec::new();
    s.encode(&mut buf);
    assert_eq!(Series::decode(&buf).unwrap(), s);
    for n in (0..buf.len()).step_by(97) {
        assert!(Series::decode(&buf[..n]).is_err());
    }
    let mut bad = buf.clone();
    bad[0] = 99;
    assert!(Series::decode(&bad).is_err());
    for i in (0..buf.len()).step_by(13) {
        let mut flipped = buf.clone();
        flipped[i] ^= 0x5a;
        let _ = Series::decode(&flipped); // must not panic
    }
}

#[test]
fn effects_replay_to_the_same_state() {
    let rows = rest_1m();
    let mut master = Series::new(settings(Interval::M1));
    let mut replica = master.clone();
    let now = rows.last().unwrap().candle.open_time + 5;
    let mut effects = vec![master.add_official(&rows[..600], now).unwrap().effect];
    effects.push(master.add_official(&rows[600..], now).unwrap().effect);
    effects.push(
        master
            .live_tick(now + 60_000, d("1"), d("2"), now + 60_000)
            .unwrap()
            .effect,
    );
    effects.push(
        master
            .live_update(
                c(now - 5 + 120_000, "1", "1", "1", "1", "1"),
                now + 90_000_000,
            )
            .unwrap()
            .effect,
    );
    for e in effects {
        let mut blob = Vec::new();
        e.encode(&mut blob);
        let e2 = Effect::decode(&blob).unwrap();
        assert_eq!(e2, e);
        e2.validate(Interval::M1).unwrap();
        replica.apply(&e2);
    }
    assert_eq!(replica, master);
}

/// A bulk append replicates as the chunks it sealed (effect version 4): the same candles in
/// about a third of the bytes, and a replica applying it builds the same bytes. Effects
/// whose officials are not exactly the newest whole chunks go as records.
#[test]
fn bulk_appends_replicate_as_their_sealed_chunks() {
    let rows = rest_1m();
    let mut master = Series::new(settings(Interval::M1));
    let mut replica = master.clone();
    let now = rows.last().unwrap().candle.open_time + 5;
    let replay = |replica: &mut Series, blob: &[u8], e: &Effect| {
        let e2 = Effect::decode(blob).unwrap();
        assert_eq!(&e2, e);
        e2.validate(Interval::M1).unwrap();
        replica.apply(&e2);
    };
    // 1. Two pages that each seal chunks of their own (512 = 256 + 256, then 488 = 256 +
    //    232). A page that tops up a short last chunk (fewer than 128) goes as records.
    for page in [&rows[..512], &rows[512..]] {
        let e = master.add_official(page, now).unwrap().effect;
        assert!(e.official.len() > 100);
        let (mut sealed, mut records) = (Vec::new(), Vec::new());
        e.encode_after(&master, &mut sealed);
        e.encode(&mut records);
        assert_eq!(sealed.first(), Some(&4));
        assert!(
            sealed.len() * 2 < records.len(),
            "{} {}",
            sealed.len(),
            records.len()
        );
        replay(&mut replica, &sealed, &e);
        assert_eq!(replica, master);
        // Truncated or altered chunks are refused (or decode to something validated), never
        // a panic.
        for cut in (0..sealed.len()).step_by(7) {
            assert!(Effect::decode(sealed.get(..cut).unwrap()).is_err());
        }
        for i in (0..sealed.len()).step_by(5) {
            let mut bad = sealed.clone();
            bad[i] ^= 0x5a;
            if let Ok(e) = Effect::decode(&bad) {
                let _ = e.validate(Interval::M1);
            }
        }
    }
    let newest = master.official.last_time().unwrap();
    let older = master.official.get(newest - 500 * 60_000).unwrap();
    let next = Candle {
        open_time: newest + 60_000,
        close_time: Some(newest + 2 * 60_000 - 1),
        ..older
    };
    let corrected = Candle {
        volume: d("1.5"),
        ..older
    };
    for official in [
        // 2. A correction inside the stored chunks.
        vec![corrected],
        // 3. A small append (into the tail).
        vec![next],
        // 4. The same time twice (the later wins): never carried as chunks.
        vec![
            Candle {
                open_time: newest + 120_000,
                close_time: Some(newest + 180_000 - 1),
                ..next
            };
            2
        ],
    ] {
        let e = Effect {
            official,
            ..Effect::default()
        };
        master.apply(&e);
        let mut blob = Vec::new();
        e.encode_after(&master, &mut blob);
        assert_eq!(blob.first(), Some(&1));
        replay(&mut replica, &blob, &e);
    }
    assert_eq!(replica, master);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    master.encode(&mut a);
    replica.encode(&mut b);
    assert_eq!(a, b);
}

/// Found by fuzzing (series_decode): equality was derived, so it compared the chart cache's
/// key (`official_gen`, bumped by every non-append official write and never persisted) and a
/// series that had one such write no longer equalled its own RDB round trip. Equality is by
/// stored data: a warm cache and a bumped generation change nothing, the data does.
#[test]
fn round_trip_equals_the_series_whatever_its_cache_state() {
    let cache = ChartCache::new(usize::MAX);
    let round_trip = |s: &Series| {
        let mut buf = Vec::new();
        s.encode(&mut buf);
        let back = Series::decode(&buf).unwrap();
        assert_eq!(back, *s);
        assert_eq!((back.official_gen, back.cache_bytes()), (0, 0));
        let mut again = Vec::new();
        back.encode(&mut again);
        assert_eq!(again, buf);
    };
    let rows = rest_1m();
    let mut s = Series::new(settings(Interval::M1));
    s.add_official(&rows[..600], FAR).unwrap();
    // A JSON read fills the cache and bumps nothing.
    let json = s.range_merged_json(i64::MIN, i64::MAX, Some(100), false, FAR, &cache, 1024);
    assert!(s.cache_bytes() > 0);
    assert_eq!(s.official_gen, 0);
    round_trip(&s);
    // A non-append write (an older candle corrected) bumps the generation.
    let mut fixed = rows[10].clone();
    fixed.candle.trades = fixed.candle.trades.map(|n| n + 1);
    assert_eq!(s.add_official(&[fixed], FAR).unwrap().changed, 1);
    assert_eq!(s.official_gen, 1);
    round_trip(&s);
    // With the cache warm again (the corrected candle is older than the 100 read).
    assert_eq!(
        s.range_merged_json(i64::MIN, i64::MAX, Some(100), false, FAR, &cache, 1024),
        json
    );
    assert!(s.cache_bytes() > 0);
    round_trip(&s);
    // And with a live candle and a stamp.
    let t = rows[600].candle.open_time;
    s.live_update(c(t, "1", "1", "1", "1", "1"), FAR).unwrap();
    assert!(s.stamp.is_some() && s.live_len() == 1);
    round_trip(&s);
    // Stored data still counts: each field the snapshot keeps tells series apart.
    let mut other = s.clone();
    other.stamp = other.stamp.map(|t| t + 1);
    assert_ne!(other, s);
    let mut other = s.clone();
    other.live.clear();
    assert_ne!(other, s);
    let mut other = s.clone();
    other.settings.live_max += 1;
    assert_ne!(other, s);
    let mut other = s.clone();
    other.official.remove_oldest(1);
    assert_ne!(other, s);
}

/// Found by fuzzing (candle_args): a tick in the first days of 1970 on a 1w series made a live
/// candle opening on Monday 1969-12-29, which Series::decode (RDB load) refuses.
#[test]
fn live_tick_never_creates_a_candle_before_1970() {
    let mut s = Series::new(settings(Interval::W1));
    assert!(s.live_tick(1_000, d("1"), d("1"), 5_000).is_err());
    assert_eq!(s.live_len(), 0);
    let first_monday = 4 * 86_400_000; // 1970-01-05
    assert!(
        s.live_tick(first_monday + 5, d("1"), d("1"), 5_000)
            .unwrap()
            .changed
    );
    let mut buf = Vec::new();
    s.encode(&mut buf);
    assert_eq!(Series::decode(&buf).unwrap(), s);
}

const MIN: i64 = 60_000;

/// The cached JSON of `range_merged_json` is byte-for-byte what rendering from the store
/// gives, through appends, inserts, replacements, live updates, expiry and retention.
#[test]
fn json_cache_matches_uncached_render() {
    let cache = ChartCache::new(usize::MAX);
    let rows = rest_1m();
    let mut rng = crate::test_rng::XorShift(0x2545_f491_4f6c_dd1d);
    let mut rnd = |n: u64| rng.below(n);
    for (cap, retention) in [(1usize, 0u64), (7, 0), (64, 0), (300, 0), (64, 150)] {
        let mut st = settings(Interval::M1);
        st.retention = retention;
        st.live_ttl_s = 600;
        let mut s = Series::new(st);
        let mut fed = 0usize;
        let mut now = T0;
        let mut served_cached = 0;
        for step in 0..120 {
            match rnd(6) {
                // append the next few rows (pure appends: the cache is extended)
                0..=2 => {
                    let n = 1 + rnd(40) as usize;
                    let end = (fed + n).min(rows.len());
                    s.add_official(&rows[fed..end], FAR).unwrap();
                    fed = end;
                }
                // replace an older candle (REPLACE policy: invalidates the cache)
                3 if fed > 0 => {
                    let mut c = rows[rnd(fed as u64) as usize].clone();
                    c.candle.volume = d("123.456");
                    s.add_official(&[c], FAR).unwrap();
                }
                // a live candle just after the newest official, or a few minutes later
                4 => {
                    let base = s.official().last_time().unwrap_or(T0 - MIN);
                    let t = base + MIN * (1 + rnd(3) as i64);
                    let p = format!("{}.5", 100 + step);
                    let _ = s.live_update(c(t, &p, &p, &p, &p, "1"), now);
                }
                // time passes (live candles expire after 600 s)
                _ => now += 1000 * rnd(400) as i64,
            }
            let last = s.official().last_time().unwrap_or(T0);
            let queries = [
                (i64::MIN, i64::MAX, Some(1 + rnd(400) as usize)),
                (i64::MIN, i64::MAX, None),
                (last - MIN * rnd(500) as i64, i64::MAX, None),
                (
                    last - MIN * rnd(500) as i64,
                    last + MIN * 5,
                    Some(1 + rnd(50) as usize),
                ),
                (T0, last - MIN * rnd(50) as i64, Some(10)),
            ];
            // Mostly one shape, so the cache is extended across steps; now and then FULL
            // (a cache of the other shape starts over).
            let full = rnd(5) == 0;
            for (from, to, count) in queries {
                {
                    // On a copy: a read with the cache off drops the cache it is checking.
                    let want = s
                        .clone()
                        .range_merged_json(from, to, count, full, now, &cache, 0);
                    let got = s.range_merged_json(from, to, count, full, now, &cache, cap);
                    assert_eq!(
                        String::from_utf8(got).unwrap(),
                        String::from_utf8(want.clone()).unwrap(),
                        "cap {cap} retention {retention} step {step} {from}..{to} {count:?} full {full}"
                    );
                    // The visit RESP replies use: cached texts and decoded candles, in
                    // order, are the same candles (as their JSON, joined as the reply is).
                    let mut visited = vec![b'['];
                    let mut cached = 0;
                    s.visit_merged_cached(from, to, count, full, now, &cache, cap, |m| {
                        if visited.len() > 1 {
                            visited.push(b',');
                        }
                        match m {
                            Merged::Cached(text) => {
                                visited.extend_from_slice(text);
                                cached += 1;
                            }
                            Merged::Candle(c, k) => render::candle_json(&mut visited, c, k, full),
                        }
                    });
                    visited.push(b']');
                    assert_eq!(
                        String::from_utf8(visited).unwrap(),
                        String::from_utf8(want).unwrap(),
                        "visit: cap {cap} retention {retention} step {step} {from}..{to} {count:?} full {full}"
                    );
                    served_cached += cached;
                }
            }
        }
        assert!(
            served_cached > 0,
            "cap {cap}: no read was served from the cache"
        );
        s.range_merged_json(i64::MIN, i64::MAX, Some(1), false, now, &cache, cap);
        assert!(s.cache_bytes() > 0 || fed == 0);
        s.range_merged_json(i64::MIN, i64::MAX, Some(1), false, now, &cache, 0);
        assert_eq!(s.cache_bytes(), 0, "json_cache 0 frees the cache");
    }
}

#[test]
fn json_render_is_valid_json_with_exact_decimals() {
    let cache = ChartCache::new(usize::MAX);
    let mut s = Series::new(settings(Interval::M1));
    s.add_official(&rest_1m(), FAR).unwrap();
    let text = s.range_merged_json(i64::MIN, i64::MAX, Some(3), true, FAR, &cache, 1024);
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let raw: Vec<serde_json::Value> =
        serde_json::from_slice(&fixture("rest_klines_BTCUSDT_1m_limit1000.json")).unwrap();
    let want = &raw[999];
    assert_eq!(rows[2]["open_time"], want[0]);
    assert_eq!(
        d(rows[2]["close"].as_str().unwrap()).to_string(),
        d(want[4].as_str().unwrap()).to_string()
    );
    assert_eq!(rows[2]["status"], "official");
    assert_eq!(rows[2]["trades"], want[8]);
}

/// Merged reads put live candles after the officials: a snapshot with a live candle at or
/// before the newest official (which `apply` never leaves) is refused on load.
#[test]
fn decode_refuses_live_at_or_before_newest_official() {
    let mut s = Series::new(settings(Interval::M1));
    s.add_official(&rest_1m()[..10], FAR).unwrap();
    let last = s.official().last_time().unwrap();
    let mut ok = Vec::new();
    s.encode(&mut ok);
    assert!(Series::decode(&ok).is_ok());
    s.live.insert(
        last,
        LiveCandle {
            candle: c(last, "1", "2", "0.5", "1.5", "3"),
            updated_ms: T0,
        },
    );
    let mut bad = Vec::new();
    s.encode(&mut bad);
    let e = Series::decode(&bad).unwrap_err();
    assert!(
        e.to_string().contains("at or before the newest official"),
        "{e}"
    );
}

#[test]
fn write_clock_reuses_the_stamp_briefly() {
    let mut s = Series::new(settings(Interval::M1));
    assert_eq!(s.write_clock(T0), WriteClock::Fresh(T0));
    let now = T0 + 60_000;
    s.live_update(c(T0, "1", "2", "1", "2", "3"), now).unwrap();
    assert_eq!(s.write_clock(now), WriteClock::Stamp(now));
    assert_eq!(s.write_clock(now + 999), WriteClock::Stamp(now));
    assert_eq!(s.write_clock(now + 1000), WriteClock::Fresh(now + 1000));
    // A clock that went back never reuses a stamp from its future.
    assert_eq!(s.write_clock(now - 1), WriteClock::Fresh(now - 1));
    assert_eq!(s.replay_clock(0), now);
    assert_eq!(Series::new(settings(Interval::M1)).replay_clock(7), 7);

    // At most 1% of LIVE_TTL: 10 s -> 100 ms; LIVE_TTL 0 (never expires) -> 1 s.
    for (ttl, reuse) in [(10, 100), (1, 10), (0, 1000), (86_400, 1000)] {
        let mut s = Series::new(Settings {
            align: Default::default(),
            live_ttl_s: ttl,
            ..settings(Interval::M1)
        });
        s.live_update(c(T0, "1", "2", "1", "2", "3"), now).unwrap();
        assert_eq!(
            s.write_clock(now + reuse - 1),
            WriteClock::Stamp(now),
            "ttl {ttl}"
        );
        assert_eq!(s.write_clock(now + reuse), WriteClock::Fresh(now + reuse));
    }
    // Official writes restamp too (they replicate as effects).
    let mut s = Series::new(settings(Interval::M1));
    s.add_official(&rest_1m(), FAR).unwrap();
    assert_eq!(s.write_clock(FAR + 5), WriteClock::Stamp(FAR));
}

/// A master that replicates a write as its effect when the clock is fresh and verbatim (the
/// replica re-runs it with `replay_clock`) when the stamp is reused ends in the same state as
/// its replica, bytes included, through expiry, LIVE_MAX eviction, ticks and officials.
#[test]
fn stamped_writes_replay_verbatim_to_the_same_state() {
    use crate::test_rng::XorShift;
    let rows = rest_1m();
    let mut master = Series::new(Settings {
        align: Default::default(),
        live_ttl_s: 3,
        live_max: 8,
        ..settings(Interval::M1)
    });
    let mut replica = master.clone();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut now = rows[0].candle.open_time;
    let (mut verbatim, mut effects) = (0, 0);
    let mut next_official = 0;
    for step in 0..4000 {
        now += rng.below(40) as i64; // often within the 30 ms reuse window, sometimes not
        if step % 500 == 499 {
            now += 4000; // let live candles expire
        }
        let op = rng.below(10);
        // A master-side decision, then the same write on the replica.
        let clock = master.write_clock(now);
        let newest = master
            .official()
            .last_time()
            .unwrap_or(rows[0].candle.open_time - 60_000);
        let t = newest + 60_000 * (1 + rng.below(12) as i64);
        let price = format!("{}.{}", 100 + rng.below(50), rng.below(100));
        let run = |s: &mut Series, at: i64| -> Effect {
            match op {
                0..=5 => {
                    s.live_tick(t + rng_free(step), d(&price), d("0.5"), at)
                        .unwrap()
                        .effect
                }
                _ => {
                    s.live_update(c(t, &price, &price, &price, &price, "1"), at)
                        .unwrap()
                        .effect
                }
            }
        };
        if op == 9 && next_official < rows.len() {
            // Officials always replicate as effects.
            let n = (1 + rng.below(30) as usize).min(rows.len() - next_official);
            let e = master
                .add_official(&rows[next_official..next_official + n], FAR)
                .unwrap()
                .effect;
            next_official += n;
            replay_effect(&mut replica, &e);
            effects += 1;
            continue;
        }
        match clock {
            WriteClock::Stamp(at) => {
                let a = run(&mut master, at);
                let at_replica = replica.replay_clock(-1);
                let b = run(&mut replica, at_replica);
                assert_eq!(a, b, "step {step}");
                verbatim += 1;
            }
            WriteClock::Fresh(at) => {
                let e = run(&mut master, at);
                replay_effect(&mut replica, &e);
                effects += 1;
            }
        }
        if step % 50 == 0 {
            assert_eq!(replica, master, "step {step}");
        }
    }
    assert_eq!(replica, master);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    master.encode(&mut a);
    replica.encode(&mut b);
    assert_eq!(a, b);
    assert!(
        verbatim > 1000 && effects > 500,
        "{verbatim} verbatim, {effects} effects"
    );
}

/// A tick time inside its bucket that does not depend on the series (same on both sides).
fn rng_free(step: u64) -> i64 {
    (step as i64 * 7_919) % 60_000
}

fn replay_effect(replica: &mut Series, e: &Effect) {
    let mut blob = Vec::new();
    e.encode(&mut blob);
    let e2 = Effect::decode(&blob).unwrap();
    assert_eq!(&e2, e);
    replica.apply(&e2);
}

#[test]
fn stamp_encoding_is_versioned() {
    let mut s = Series::new(settings(Interval::M1));
    s.add_official(&rest_1m()[..10], FAR).unwrap();
    // Settings, store and live of a stamped series are the v1 bytes, then the stamp.
    let mut v2 = Vec::new();
    s.encode(&mut v2);
    assert_eq!(v2[0], 2);
    let back = Series::decode(&v2).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.write_clock(FAR), WriteClock::Stamp(FAR));
    let mut unstamped = s.clone();
    unstamped.stamp = None;
    let mut v1 = Vec::new();
    unstamped.encode(&mut v1);
    assert_eq!(v1[0], 1);
    assert_eq!(&v2[1..v1.len()], &v1[1..]);
    assert_eq!(Series::decode(&v1).unwrap(), unstamped);
    assert!(Series::decode(&v2[..v2.len() - 1]).is_err());

    // Effects: version 1 (no clock, as in AOF files written before the stamp) still applies.
    let e = Effect {
        live_put: vec![LiveCandle {
            candle: c(T0, "1", "1", "1", "1", "1"),
            updated_ms: T0,
        }],
        ..Effect::default()
    };
    let mut blob = Vec::new();
    e.encode(&mut blob);
    assert_eq!(blob[0], 1);
    assert_eq!(Effect::decode(&blob).unwrap(), e);
    let stamped = Effect {
        clock: Some(T0),
        ..e.clone()
    };
    let mut blob2 = Vec::new();
    stamped.encode(&mut blob2);
    assert_eq!(blob2[0], 2);
    assert_eq!(Effect::decode(&blob2).unwrap(), stamped);
    let mut fresh = Series::new(settings(Interval::M1));
    fresh.apply(&e);
    assert_eq!(fresh.replay_clock(-1), -1);
    fresh.apply(&stamped);
    assert_eq!(fresh.replay_clock(-1), T0);
}

/// A live write that skips its effect (`EffectMode::Skip`, for writes replicated verbatim)
/// reaches the same state, bytes included, and the same answer as one that builds it:
/// updates and ticks, refused ones, expiry, LIVE_MAX eviction and officials in between.
#[test]
fn skipping_the_effect_reaches_the_same_state() {
    use crate::test_rng::XorShift;
    let rows = rest_1m();
    let mut built = Series::new(Settings {
        align: Default::default(),
        live_ttl_s: 2,
        live_max: 5,
        ..settings(Interval::M1)
    });
    let mut skipped = built.clone();
    let mut rng = XorShift(0x5851_f42d_4c95_7f2d);
    let mut now = rows[0].candle.open_time;
    let mut next_official = 0;
    let mut changes = 0;
    for step in 0..3000 {
        now += rng.below(300) as i64;
        let newest = built
            .official()
            .last_time()
            .unwrap_or(rows[0].candle.open_time - 60_000);
        // Sometimes at or before the newest official (refused by R2).
        let t = newest + 60_000 * (rng.below(10) as i64 - 1);
        let price = format!("{}.{}", 100 + rng.below(50), rng.below(100));
        let op = rng.below(10);
        if op == 9 && next_official < rows.len() {
            let n = (1 + rng.below(20) as usize).min(rows.len() - next_official);
            let batch = &rows[next_official..next_official + n];
            next_official += n;
            built.add_official(batch, now).unwrap();
            skipped.add_official(batch, now).unwrap();
            continue;
        }
        let run = |s: &mut Series, mode: EffectMode| -> (bool, Effect) {
            let out = if op < 5 {
                s.live_tick_with(t + rng_free(step), d(&price), d("0.5"), now, mode)
            } else {
                s.live_update_with(&c(t, &price, &price, &price, &price, "1"), now, mode)
            }
            .unwrap();
            (out.changed, out.effect)
        };
        let (a, effect) = run(&mut built, EffectMode::Build);
        let (b, none) = run(&mut skipped, EffectMode::Skip);
        assert_eq!(a, b, "step {step}");
        assert!(none.is_empty(), "step {step}");
        // `changed` says what a non-empty effect would (the verbatim caller relies on it).
        assert_eq!(a, !effect.is_empty(), "step {step}");
        changes += usize::from(a);
        assert_eq!(skipped, built, "step {step}");
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    built.encode(&mut x);
    skipped.encode(&mut y);
    assert_eq!(x, y);
    assert!(changes > 1000 && next_official > 100, "{changes} changes");
}

/// Copy `rep` of the real 1m REST rows (see `test_data::rest_1m_copy`), as a REST body
/// adds them.
fn rest_1m_copy(rep: i64) -> Vec<Incoming> {
    crate::test_data::rest_1m_copy(rep)
        .into_iter()
        .map(off)
        .collect()
}

#[test]
fn merged_reads_decode_only_the_newest_chunks() {
    let cache = ChartCache::new(usize::MAX);
    use crate::chunk::{take_decoded, CHUNK_MAX};
    let mut s = Series::new(settings(Interval::M1));
    for rep in 0..5 {
        s.add_official(&rest_1m_copy(rep), FAR).unwrap();
    }
    assert_eq!(s.official_len(), 5000); // 20 chunks and a tail
    let whole = |d: Vec<(usize, bool)>| d.iter().filter(|x| x.1).count();
    let last = s.official().last_time().unwrap();

    // The newest 720 (RESP, COUNT): 720 candles span at most 4 chunks of 256 and the tail.
    take_decoded();
    let got = s.range_merged(i64::MIN, i64::MAX, Some(720), FAR);
    assert_eq!(got.len(), 720);
    let d = take_decoded();
    assert!(d.len() <= 4, "{d:?}");

    // A chart load (JSON, cache of 1024): the first fills the cache from the newest chunks
    // only, the next decodes nothing, nor does one after an appended candle.
    let cap = 1024;
    let from = last - 719 * MIN;
    s.range_merged_json(from, i64::MAX, None, false, FAR, &cache, cap);
    let first = take_decoded();
    assert!(whole(first.clone()) <= cap / CHUNK_MAX + 1, "{first:?}");
    s.range_merged_json(from, i64::MAX, None, false, FAR, &cache, cap);
    assert_eq!(take_decoded(), vec![]);
    // The other shape (FULL) has a window of its own: once both are loaded, reads that
    // alternate the two decode nothing.
    s.range_merged_json(from, i64::MAX, None, true, FAR, &cache, cap);
    take_decoded();
    for full in [false, true, false, true] {
        s.range_merged_json(from, i64::MAX, None, full, FAR, &cache, cap);
        assert_eq!(take_decoded(), vec![], "full {full}");
    }
    let next = rest_1m_copy(5).swap_remove(0);
    s.add_official(&[next], FAR).unwrap();
    take_decoded();
    let out = s.range_merged_json(from + MIN, i64::MAX, None, false, FAR, &cache, cap);
    assert_eq!(take_decoded(), vec![]);
    assert_eq!(
        out,
        s.clone()
            .range_merged_json(from + MIN, i64::MAX, None, false, FAR, &cache, 0)
    );
}

#[test]
fn merged_reads_match_a_plain_merge() {
    let cache = ChartCache::new(usize::MAX);
    // 3,000 real officials (in 20 chunks' worth of batches) and live candles after them,
    // some expired: every read equals "all officials in range, then the fresh lives, the
    // newest `count` of them".
    let mut st = settings(Interval::M1);
    st.live_ttl_s = 600;
    let mut s = Series::new(st);
    for rep in 0..3 {
        s.add_official(&rest_1m_copy(rep), FAR).unwrap();
    }
    let last = s.official().last_time().unwrap();
    let now = FAR;
    for k in 1..=6 {
        // Updated 100 s apart: the oldest ones are expired at `now`.
        let t = last + k * MIN;
        let p = format!("{}.5", 60_000 + k);
        s.live_update(c(t, &p, &p, &p, &p, "1"), now - (7 - k) * 100_000)
            .unwrap();
    }
    let plain = |from: i64, to: i64, count: Option<usize>| -> Vec<(Candle, CandleKind)> {
        let mut all: Vec<(Candle, CandleKind)> = s
            .official()
            .iter()
            .filter(|c| c.open_time >= from && c.open_time <= to)
            .map(|c| (c, CandleKind::Official))
            .collect();
        all.extend(s.fresh_live(from, to, now).map(|c| (*c, CandleKind::Live)));
        let keep = count.unwrap_or(all.len()).min(all.len());
        all.split_off(all.len() - keep)
    };
    let mut rng = crate::test_rng::XorShift(0x9e37_79b9_7f4a_7c15);
    let span = last + 7 * MIN - T0;
    for i in 0..400 {
        let a = T0 - MIN + (rng.below(span as u64 / 1000) as i64) * 1000;
        let b = a + (rng.below(span as u64 / 1000) as i64) * 1000;
        let count = match i % 4 {
            0 => None,
            1 => Some(1 + rng.below(5) as usize),
            2 => Some(1 + rng.below(800) as usize),
            _ => Some(1 + rng.below(4000) as usize),
        };
        let want = plain(a, b, count);
        assert_eq!(s.range_merged(a, b, count, now), want, "{a}..{b} {count:?}");
        let json = s.range_merged_json(a, b, count, i % 3 == 0, now, &cache, 0);
        let want_json = render::candles_json(want.iter().map(|(c, k)| (c, *k)), i % 3 == 0);
        assert_eq!(json, want_json, "{a}..{b} {count:?}");
    }
}

/// Several series read as charts (plain and FULL) through one cache whose budget holds only
/// a couple of windows: every reply is byte-for-byte the uncached render, the cache stays
/// within its budget after every read, evicts the least recently read series, and a series
/// dropped (or whose reads turn the cache off) gives its bytes back.
#[test]
fn json_reads_agree_under_a_small_shared_budget() {
    let window = {
        let c = ChartCache::new(usize::MAX);
        let mut s = Series::new(settings(Interval::M1));
        s.add_official(&rest_1m(), FAR).unwrap();
        s.range_merged_json(i64::MIN, i64::MAX, Some(720), false, FAR, &c, 1024);
        s.cache_bytes()
    };
    let cache = ChartCache::new(window * 5 / 2);
    let mut series: Vec<Series> = (0..5)
        .map(|rep| {
            let mut s = Series::new(settings(Interval::M1));
            s.add_official(&rest_1m_copy(rep), FAR).unwrap();
            s
        })
        .collect();
    let mut rng = crate::test_rng::XorShift(0x1234_5678_9abc_def1);
    for step in 0..200 {
        let i = rng.below(series.len() as u64) as usize;
        let full = rng.below(3) == 0;
        let count = Some(1 + rng.below(1100) as usize);
        if step % 17 == 16 {
            let next = rest_1m_copy(5 + i as i64).swap_remove(step % 50);
            let _ = series[i].add_official(&[next], FAR);
        }
        let s = &series[i];
        let want = s
            .clone()
            .range_merged_json(i64::MIN, i64::MAX, count, full, FAR, &cache, 0);
        let got = s.range_merged_json(i64::MIN, i64::MAX, count, full, FAR, &cache, 1024);
        assert_eq!(got, want, "step {step} series {i} {count:?} full {full}");
        let st = cache.stats();
        assert!(st.bytes <= st.budget, "step {step}: {st:?}");
        assert_eq!(
            st.bytes,
            series.iter().map(Series::cache_bytes).sum::<usize>()
        );
        // The series just read is the last to go: it is cached unless its window alone
        // is over the budget.
        assert!(s.cache_bytes() > 0, "step {step}");
    }
    assert!(cache.stats().evictions > 0);
    // Dropped series give their bytes back.
    let last = series.pop().unwrap();
    let held = last.cache_bytes();
    let before = cache.stats().bytes;
    drop(last);
    assert_eq!(cache.stats().bytes, before - held);
    // A read with json_cache 0 drops its series' windows.
    let s = &series[0];
    s.range_merged_json(i64::MIN, i64::MAX, Some(5), false, FAR, &cache, 1024);
    assert!(s.cache_bytes() > 0);
    s.range_merged_json(i64::MIN, i64::MAX, Some(5), false, FAR, &cache, 0);
    assert_eq!(s.cache_bytes(), 0);
    drop(series);
    assert_eq!(cache.stats().bytes, 0);
}
