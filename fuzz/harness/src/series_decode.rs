//! Series::decode and Effect::decode (the RDB/DUMP payload and the replicated CANDLE.APPLY
//! blob) on arbitrary bytes. Never a panic, never an allocation the input can't justify. What
//! decodes re-encodes to something that decodes to an equal value; a decoded effect that
//! validates is applied (as CANDLE.APPLY does) and the resulting series must survive an RDB
//! round trip too.
use candles_core::interval::ALL;
use candles_core::series::{DuplicatePolicy, Effect, Series, Settings};

fn roundtrip(s: &Series) {
    let mut buf = Vec::new();
    s.encode(&mut buf);
    let back =
        Series::decode(&buf).unwrap_or_else(|e| panic!("re-encoded series does not decode: {e}"));
    assert_eq!(&back, s);
    let mut again = Vec::new();
    back.encode(&mut again);
    assert_eq!(again, buf, "series encoding is not canonical");
}

/// The `series_decode` target: panics on a finding.
pub fn series_decode(data: &[u8]) {
    if let Ok(s) = Series::decode(data) {
        roundtrip(&s);
        let now = 1_725_500_000_000;
        let _ = s.range_merged(i64::MIN, i64::MAX, Some(100), now);
        let _ = s.live_candles(now);
        let _ = s.mem_usage();
        if let (Some(a), Some(b)) = (s.official().first_time(), s.official().last_time()) {
            let _ = s.gaps(a, b).map(|g| assert!(g.len() <= s.official_len()));
        }
    }
    if let Ok(e) = Effect::decode(data) {
        let mut buf = Vec::new();
        e.encode(&mut buf);
        let back = Effect::decode(&buf)
            .unwrap_or_else(|err| panic!("re-encoded effect does not decode: {err}"));
        assert_eq!(back, e);
        // CANDLE.APPLY: the effect's own settings when it creates the series, else a default one.
        let settings = e.create.unwrap_or(Settings {
            align: Default::default(),
            interval: ALL[data.len() % ALL.len()],
            retention: 0,
            live_ttl_s: 86_400,
            live_max: 64,
            policy: DuplicatePolicy::Replace,
        });
        if e.validate(settings.interval).is_ok() {
            let mut s = Series::new(settings);
            s.apply(&e);
            s.apply(&e); // applying twice is what a replayed AOF may do: same state
            roundtrip(&s);
        }
    }
}
