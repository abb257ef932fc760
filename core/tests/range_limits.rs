//! `ChunkedStore::range` with and without a limit, with bounds on, inside and between
//! chunks and in the tail, against `ReferenceStore`, on real candles with gaps.

use candles_core::chunk::ChunkedStore;
use candles_core::store::ReferenceStore;
use candles_core::Candle;

fn fixture() -> Vec<Candle> {
    candles_testkit::fixtures::candles("rest_klines_BTCUSDT_1m_limit1000.json")
}

#[test]
fn range_matches_reference_at_every_kind_of_bound() {
    let rows = fixture();
    let mut a = ChunkedStore::new();
    let mut b = ReferenceStore::new();
    let mut all = Vec::new();
    for rep in 0..3i64 {
        // Gaps: every 7th candle of the second copy is missing.
        for (i, c) in rows.iter().enumerate() {
            if rep == 1 && i % 7 == 0 {
                continue;
            }
            let mut c = *c;
            c.open_time += rep * 1000 * 60_000;
            all.push(c);
        }
    }
    a.put_all(&all);
    for c in &all {
        b.put(*c);
    }
    let (t0, t1) = (all[0].open_time, all[all.len() - 1].open_time);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n.max(1)
    };
    let span = (t1 - t0) / 60_000;
    for i in 0..3000 {
        let from = match i % 4 {
            0 => i64::MIN,
            _ => t0 + (rnd(span as u64 + 20) as i64 - 10) * 60_000 + (rnd(3) as i64 - 1),
        };
        let to = match i % 3 {
            0 => i64::MAX,
            _ => from.saturating_add(rnd(1500) as i64 * 60_000),
        };
        let limit = match rnd(5) {
            0 => None,
            1 => Some(rnd(40) as usize),
            2 => Some(720),
            _ => Some(rnd(3500) as usize),
        };
        assert_eq!(
            a.range(from, to, limit),
            b.range(from, to, limit),
            "range({from}, {to}, {limit:?})"
        );
    }
}
