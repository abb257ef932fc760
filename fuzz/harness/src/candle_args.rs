//! Candle::from_args on arbitrary argument splits (space-separated words, as a client would
//! send `t o h l c v`), Interval::parse on every word, and the accepted candles through a
//! series' write rules (official add, live update, live tick) with a fuzzed clock.
use candles_core::candle::parse_time;
use candles_core::candle::Incoming;
use candles_core::series::{DuplicatePolicy, Series, Settings};
use candles_core::{Candle, Dec, Interval};

/// The `candle_args` target: panics on a finding.
pub fn candle_args(data: &[u8]) {
    let words: Vec<&[u8]> = data.split(|&b| b == b' ').collect();
    let mut interval = Interval::M1;
    for w in &words {
        if let Ok(i) = Interval::parse(&String::from_utf8_lossy(w)) {
            assert_eq!(Interval::parse(i.as_str()).unwrap(), i);
            assert_eq!(Interval::from_code(i.code()), Some(i));
            interval = i;
        }
    }
    let candles: Vec<Candle> = words
        .chunks(6)
        .filter_map(|ch| Candle::from_args(ch).ok())
        .collect();
    let _ = Candle::from_args(&words);
    if candles.is_empty() {
        return;
    }
    let now = words
        .last()
        .and_then(|w| parse_time(w).ok())
        .unwrap_or(1_725_500_000_000);
    let policy = [
        DuplicatePolicy::Replace,
        DuplicatePolicy::Keep,
        DuplicatePolicy::Block,
    ][data.len() % 3];
    let settings = Settings {
        align: Default::default(),
        interval,
        retention: (data.len() % 5) as u64,
        live_ttl_s: 60,
        live_max: 3,
        policy,
    };
    let mut s = Series::new(settings);
    for (i, c) in candles.iter().enumerate() {
        if c.validate(interval).is_ok() {
            let t = c.open_time;
            assert!(
                interval.align_down(t) == t && interval.next(t) > t && interval.prev(t) < t
                    || t == 0
            );
        }
        let batch = [Incoming {
            candle: *c,
            closed: if i % 2 == 0 { None } else { Some(i % 3 == 0) },
        }];
        let _ = s.add_official(&batch, now);
        let _ = s.live_update(*c, now);
        let _ = s.live_tick(c.open_time.saturating_add(1), c.close, c.volume, now);
        let _ = s.live_tick(c.open_time, c.high, Dec::ZERO, now.saturating_add(1));
    }
    let _ = s.range_merged(i64::MIN, i64::MAX, Some(10), now);
    // Whatever the rules let in must survive an RDB round trip.
    let mut buf = Vec::new();
    s.encode(&mut buf);
    let back = Series::decode(&buf)
        .unwrap_or_else(|e| panic!("series built by the rules does not decode: {e}"));
    assert_eq!(back, s);
}
