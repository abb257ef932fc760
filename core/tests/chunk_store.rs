//! ChunkedStore against the reference ReferenceStore, encodings, corrupt input, real data.

use candles_core::chunk::{ChunkedStore, CHUNK_MAX, REOPEN_BELOW, STREAM_TAIL_MAX, TAIL_MAX};
use candles_core::store::ReferenceStore;
use candles_core::{Candle, CoreError, Dec};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

fn dec(r: &mut Rng, base: i128) -> Dec {
    let scale = match r.below(10) {
        0 => r.below(25) as u8,
        1..=3 => 8,
        _ => 2,
    };
    let mant = match r.below(40) {
        0 => 0,
        1 => i128::MAX - r.below(3) as i128,
        2 => i128::MIN + r.below(3) as i128,
        3 => 10i128.pow(36) - 1 - r.below(1000) as i128,
        4 => -(10i128.pow(35) + r.below(1000) as i128),
        5 => (r.next() as i128) << 60 | r.next() as i128,
        6..=8 => r.below(1000) as i128,
        _ => base + r.below(10_000) as i128 - 5_000,
    };
    Dec::new(mant, scale).expect("scale <= 24")
}

fn candle(r: &mut Rng, t: i64) -> Candle {
    let base = 5_000_000 + (t / 60_000 % 1000) as i128;
    let mut c = Candle::ohlcv(
        t,
        dec(r, base),
        dec(r, base),
        dec(r, base),
        dec(r, base),
        dec(r, base * 100),
    );
    let full = r.chance(60);
    if full || r.chance(50) {
        c.close_time = Some(if r.chance(90) {
            t.wrapping_add(59_999)
        } else {
            r.next() as i64
        });
    }
    if full || r.chance(50) {
        c.quote_volume = Some(dec(r, base * 1000));
    }
    if full || r.chance(50) {
        c.trades = Some(if r.chance(5) {
            u64::MAX - r.below(3)
        } else {
            r.below(20_000)
        });
    }
    if full || r.chance(50) {
        c.taker_buy_base = Some(dec(r, base * 50));
    }
    if full || r.chance(50) {
        c.taker_buy_quote = Some(dec(r, base * 500));
    }
    c
}

/// A realistic candle: the kind that dominates production data.
fn plain_candle(r: &mut Rng, t: i64, price: &mut i128) -> Candle {
    let d = |m: i128, s: u8| Dec::new(m, s).expect("scale");
    let o = *price;
    let c = o + r.below(2001) as i128 - 1000;
    let h = o.max(c) + r.below(500) as i128;
    let l = o.min(c) - r.below(500) as i128;
    *price = c;
    let v = r.below(50_000_000) as i128;
    let mut x = Candle::ohlcv(t, d(o, 2), d(h, 2), d(l, 2), d(c, 2), d(v, 5));
    x.close_time = Some(t + 59_999);
    x.quote_volume = Some(d(v * (h + l) / 2 + r.below(1000) as i128, 7));
    x.trades = Some(r.below(5000));
    x.taker_buy_base = Some(d(v / 2, 5));
    x.taker_buy_quote = Some(d(v / 2 * o, 7));
    x
}

fn check_same(a: &ChunkedStore, b: &ReferenceStore) {
    assert_eq!(a.len(), b.len());
    assert_eq!(a.is_empty(), b.is_empty());
    assert_eq!(a.first_time(), b.first_time());
    assert_eq!(a.last_time(), b.last_time());
    assert!(a.iter().eq(b.iter()), "iter differs");
}

fn round_trip(a: &ChunkedStore) -> ChunkedStore {
    let mut enc = Vec::new();
    a.encode(&mut enc);
    let d = ChunkedStore::decode(&enc).expect("own encoding decodes");
    let mut enc2 = Vec::new();
    d.encode(&mut enc2);
    assert_eq!(enc, enc2, "re-encoding is stable");
    assert_eq!(&d, a);
    d
}

fn differential(seed: u64, ops: usize, weird: bool, streamed: bool) {
    let mut r = Rng(seed);
    let mut a = ChunkedStore::new();
    a.set_streamed(streamed);
    let mut b = ReferenceStore::new();
    let step = 60_000i64;
    let mut next = 1_000 * step; // next newest open time
    let mut price = 5_000_000i128;
    let mk = |r: &mut Rng, t: i64, price: &mut i128| {
        if weird {
            candle(r, t)
        } else {
            plain_candle(r, t, price)
        }
    };
    for i in 0..ops {
        match r.below(100) {
            0..=49 => {
                // append the newest, sometimes after a gap
                if r.chance(5) {
                    next += step * r.below(10) as i64;
                }
                let c = mk(&mut r, next, &mut price);
                next += step;
                a.put(c);
                b.put(c);
            }
            50..=64 => {
                // gap fill / insert anywhere, or before the first
                let t = r.below((next / step) as u64 + 50) as i64 * step - 40 * step;
                let c = mk(&mut r, t, &mut price);
                a.put(c);
                b.put(c);
            }
            65..=72 => {
                // overwrite an existing candle
                let ts = b.times(i64::MIN, i64::MAX);
                if let Some(&t) = ts.get(r.below(ts.len() as u64) as usize) {
                    let c = mk(&mut r, t, &mut price);
                    a.put(c);
                    b.put(c);
                }
            }
            73..=74 => {
                let n = if r.chance(20) {
                    r.below(600)
                } else {
                    r.below(40)
                } as usize;
                a.remove_oldest(n);
                b.remove_oldest(n);
            }
            75..=84 => {
                let from = r.below((next / step) as u64 + 10) as i64 * step - 5 * step
                    + if r.chance(20) { 1 } else { 0 };
                let to = from + r.below(800) as i64 * step - 10 * step;
                let limit = match r.below(4) {
                    0 => None,
                    1 => Some(0),
                    2 => Some(r.below(10) as usize),
                    _ => Some(r.below(1000) as usize),
                };
                assert_eq!(
                    a.range(from, to, limit),
                    b.range(from, to, limit),
                    "range({from}, {to}, {limit:?}) op {i}"
                );
                assert_eq!(a.times(from, to), b.times(from, to), "times op {i}");
            }
            85..=94 => {
                let t = r.below((next / step) as u64 + 10) as i64 * step - 5 * step
                    + if r.chance(10) { 7 } else { 0 };
                assert_eq!(a.get(t), b.get(t), "get({t}) op {i}");
                assert_eq!(a.contains(t), b.contains(t), "contains({t}) op {i}");
            }
            95..=96 => {
                assert_eq!(
                    a.range(i64::MIN, i64::MAX, None),
                    b.range(i64::MIN, i64::MAX, None)
                );
                assert_eq!(a.range(i64::MAX, i64::MIN, None), Vec::<Candle>::new());
            }
            _ => {
                // A policy of the series holding the store, set again after a load.
                a = round_trip(&a);
                a.set_streamed(streamed);
            }
        }
        assert_eq!(a.len(), b.len(), "len after op {i}");
        if i % 97 == 0 {
            check_same(&a, &b);
        }
    }
    check_same(&a, &b);
    round_trip(&a);
    a.remove_oldest(usize::MAX);
    b.remove_oldest(usize::MAX);
    check_same(&a, &b);
    assert!(
        a.is_empty() && a.first_time().is_none() && a.range(i64::MIN, i64::MAX, Some(5)).is_empty()
    );
}

#[test]
fn matches_reference_on_realistic_candles() {
    for seed in [1, 2, 3] {
        differential(0x1234_5678 + seed, 6_000, false, false);
        differential(0x1234_5678 + seed, 6_000, false, true);
    }
}

#[test]
fn matches_reference_on_hostile_values() {
    for seed in [11, 12, 13] {
        differential(0xdead_beef + seed, 6_000, true, false);
        differential(0xdead_beef + seed, 6_000, true, true);
    }
}

/// A streamed store (a derived series') keeps up to `STREAM_TAIL_MAX - 1` candles in its
/// tail and seals them straight into one chunk of `STREAM_TAIL_MAX`: candles put one by one
/// or a few per `put_all` end in chunks of 128, each sealed once, and the same bytes either
/// way. Its long tail round-trips, and a store no longer streamed seals it at the next put.
#[test]
fn streamed_store_seals_its_tail_once_per_chunk() {
    let rows = fixture("rest_klines_BTCUSDT_1m_limit1000.json");
    let mut one = ChunkedStore::new();
    let mut few = ChunkedStore::new();
    let mut reference = ReferenceStore::new();
    one.set_streamed(true);
    few.set_streamed(true);
    for c in &rows {
        one.put(*c);
        reference.put(*c);
    }
    for batch in rows.chunks(17) {
        few.put_all(batch);
    }
    check_same(&one, &reference);
    let (mut e1, mut e2) = (Vec::new(), Vec::new());
    one.encode(&mut e1);
    few.encode(&mut e2);
    assert!(e1 == e2, "a few per put_all builds the bytes of one by one");
    let lens = one.chunk_lens();
    assert_eq!(lens, vec![STREAM_TAIL_MAX; rows.len() / STREAM_TAIL_MAX]);
    let tail = rows.len() % STREAM_TAIL_MAX;
    assert!(
        tail >= TAIL_MAX,
        "the fixture leaves a tail longer than TAIL_MAX: {tail}"
    );
    // The long tail is persisted as it is; the store loads unstreamed (the series sets it).
    let mut loaded = round_trip(&one);
    check_same(&loaded, &reference);
    let mut again = loaded.clone();
    loaded.set_streamed(true);
    let next = {
        let mut c = rows[rows.len() - 1];
        c.open_time += 60_000;
        c.close_time = c.close_time.map(|t| t + 60_000);
        c
    };
    loaded.put(next);
    assert_eq!(loaded.chunk_lens(), lens, "streamed: the tail grows");
    again.put(next);
    reference.put(next);
    assert_eq!(
        again.chunk_lens().len(),
        lens.len() + 1,
        "unstreamed: sealed"
    );
    check_same(&again, &reference);
    check_same(&loaded, &reference);
}

#[test]
fn extreme_times_and_values_round_trip() {
    let d = |m: i128, s: u8| Dec::new(m, s).unwrap();
    let mut a = ChunkedStore::new();
    let mut b = ReferenceStore::new();
    let times = [
        i64::MIN,
        i64::MIN + 1,
        -5,
        0,
        1,
        59_999,
        i64::MAX - 1,
        i64::MAX,
    ];
    for (i, &t) in times.iter().enumerate() {
        let mut c = Candle::ohlcv(
            t,
            d(i128::MAX, 0),
            d(i128::MIN, 24),
            d(1, 24),
            Dec::ZERO,
            d(10i128.pow(36) - 1, 12),
        );
        if i % 2 == 0 {
            c.close_time = Some(if i % 4 == 0 { i64::MAX } else { i64::MIN });
            c.quote_volume = Some(d(i128::MIN, 0));
            c.trades = Some(u64::MAX);
            c.taker_buy_base = Some(Dec::ZERO);
            c.taker_buy_quote = Some(d(-1, 24));
        }
        a.put(c);
        b.put(c);
    }
    check_same(&a, &b);
    round_trip(&a);
    // Force the same candles into a sealed chunk.
    for k in 0..TAIL_MAX as i64 {
        let c = Candle::ohlcv(
            1_000 + k,
            d(k as i128, 3),
            Dec::ZERO,
            Dec::ZERO,
            Dec::ZERO,
            Dec::ZERO,
        );
        a.put(c);
        b.put(c);
    }
    check_same(&a, &b);
    let x = round_trip(&a);
    check_same(&x, &b);
    for &t in &times {
        assert_eq!(a.get(t), b.get(t));
    }
    assert_eq!(
        a.range(i64::MIN, i64::MAX, Some(3)),
        b.range(i64::MIN, i64::MAX, Some(3))
    );
}

fn sample_store() -> ChunkedStore {
    let mut r = Rng(77);
    let mut s = ChunkedStore::new();
    let mut price = 4_000_000;
    for i in 0..(2 * CHUNK_MAX + 40) as i64 {
        let c = if i % 50 == 7 {
            candle(&mut r, i * 60_000)
        } else {
            plain_candle(&mut r, i * 60_000, &mut price)
        };
        s.put(c);
    }
    s
}

fn assert_valid(s: &ChunkedStore) {
    let all: Vec<Candle> = s.iter().collect();
    assert_eq!(all.len(), s.len());
    assert!(all.windows(2).all(|w| w[0].open_time < w[1].open_time));
    assert_eq!(s.first_time(), all.first().map(|c| c.open_time));
    assert_eq!(s.last_time(), all.last().map(|c| c.open_time));
    round_trip(s);
}

#[test]
fn truncated_input_is_an_error() {
    let s = sample_store();
    let mut enc = Vec::new();
    s.encode(&mut enc);
    for n in 0..enc.len() {
        match ChunkedStore::decode(&enc[..n]) {
            Err(CoreError::Corrupt(_)) => {}
            Err(e) => panic!("truncation {n}: wrong error kind {e:?}"),
            Ok(_) => panic!("truncation at {n} of {} decoded", enc.len()),
        }
    }
    let mut longer = enc.clone();
    longer.push(0);
    assert!(ChunkedStore::decode(&longer).is_err());
}

#[test]
fn flipped_bytes_are_an_error_or_a_valid_store() {
    let s = sample_store();
    let mut enc = Vec::new();
    s.encode(&mut enc);
    let mut r = Rng(99);
    let (mut ok, mut err) = (0, 0);
    let rounds = if cfg!(debug_assertions) {
        3_000
    } else {
        20_000
    };
    for i in 0..rounds {
        let mut bad = enc.clone();
        let flips = 1 + r.below(if i % 10 == 0 { 8 } else { 1 }) as usize;
        for _ in 0..flips {
            let p = r.below(bad.len() as u64) as usize;
            bad[p] ^= 1 << r.below(8);
            if r.chance(20) {
                bad[p] = r.next() as u8;
            }
        }
        match ChunkedStore::decode(&bad) {
            Ok(x) => {
                ok += 1;
                assert_valid(&x);
            }
            Err(CoreError::Corrupt(_)) => err += 1,
            Err(e) => panic!("wrong error kind {e:?}"),
        }
    }
    println!("flips: {ok} decoded to valid stores, {err} rejected");
    // Hostile headers: absurd counts must not allocate or loop.
    for bytes in [
        vec![
            1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ],
        vec![
            1, 5, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
            0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ],
        vec![1, 0, 0, 0, 0, 0],
        vec![1, 1, 0, 0, 0],
        vec![2, 1, 0, 0, 0],
        // An unknown format version (1 and 2 are known).
        vec![3, 0, 0, 0, 0],
        vec![],
    ] {
        assert!(ChunkedStore::decode(&bytes).is_err(), "{bytes:?}");
    }
    let mut empty = Vec::new();
    ChunkedStore::new().encode(&mut empty);
    assert_eq!(ChunkedStore::decode(&empty).unwrap(), ChunkedStore::new());
}

use candles_testkit::fixtures::candles as fixture;

#[test]
fn real_binance_klines_fit_in_24_bytes_per_candle() {
    for f in ["1m", "5m", "15m"] {
        let cs = fixture(&format!("rest_klines_BTCUSDT_{f}_limit1000.json"));
        assert_eq!(cs.len(), 1000);
        let mut orders = vec![cs.clone()];
        let mut sh = cs.clone();
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        for i in (1..sh.len()).rev() {
            sh.swap(i, r.below(i as u64 + 1) as usize);
        }
        orders.push(sh);
        for order in orders {
            let mut s = ChunkedStore::new();
            let mut reference = ReferenceStore::new();
            for c in order {
                s.put(c);
                reference.put(c);
            }
            check_same(&s, &reference);
            let mut enc = Vec::new();
            s.encode(&mut enc);
            let mem = s.mem_usage() as f64 / s.len() as f64;
            let disk = enc.len() as f64 / s.len() as f64;
            println!("{f}: {mem:.2} B/candle in memory, {disk:.2} B/candle encoded");
            assert!(mem <= 24.0, "{f}: {mem} bytes per candle");
            assert!(disk <= 24.0, "{f}: {disk} bytes per candle encoded");
            let back = round_trip(&s);
            check_same(&back, &reference);
            assert_eq!(
                s.range(i64::MIN, i64::MAX, Some(720)),
                reference.range(i64::MIN, i64::MAX, Some(720))
            );
        }
    }
}

/// REST pages appended with `put_all` (the module's bulk path): every chunk but the newest
/// at least half full and the memory no more than one-by-one puts' (whose chunks stop at
/// half, see `put_all_equals_one_by_one_puts`), for the real data in 1000-row pages and in
/// 100-row pages (each page below half a chunk tops the last up).
#[test]
fn real_pages_keep_chunks_full_enough() {
    let rows = fixture("rest_klines_BTCUSDT_1m_limit1000.json");
    for page in [1000usize, 100] {
        let mut paged = ChunkedStore::new();
        let mut single = ChunkedStore::new();
        for rep in 0..10i64 {
            let shifted: Vec<Candle> = rows
                .iter()
                .map(|c| {
                    let mut c = *c;
                    c.open_time += rep * 1000 * 60_000;
                    c.close_time = c.close_time.map(|t| t + rep * 1000 * 60_000);
                    c
                })
                .collect();
            for p in shifted.chunks(page) {
                paged.put_all(p);
            }
            for c in &shifted {
                single.put(*c);
            }
        }
        assert!(paged == single);
        let lens = paged.chunk_lens();
        assert!(
            lens[..lens.len() - 1].iter().all(|&n| n >= REOPEN_BELOW),
            "{page}: {lens:?}"
        );
        let (mp, ms) = (paged.mem_usage() as f64, single.mem_usage() as f64);
        println!(
            "pages of {page}: {} chunks, {:.2} B/candle; one by one {} chunks, {:.2} B/candle",
            lens.len(),
            mp / 10_000.0,
            single.chunk_lens().len(),
            ms / 10_000.0
        );
        assert!(mp <= ms * 1.01, "{page}: {mp} vs {ms}");
    }
}

/// The chunk sizes a bulk append (`put_all` of `batch` ascending candles, at least
/// `2 * TAIL_MAX`) leaves after chunks `pre` and a tail of `tail` candles, stated apart from
/// the implementation: the tail topped up to `TAIL_MAX` and then the batch in blocks of
/// `TAIL_MAX` are packed into chunks of at most `CHUNK_MAX`, starting in the last chunk only
/// while it is less than half full, and nothing is left in the tail.
fn bulk_layout(pre: &[usize], tail: usize, batch: usize) -> Vec<usize> {
    let mut blocks = Vec::new();
    let mut left = batch;
    if tail > 0 {
        let need = (TAIL_MAX - tail).min(left);
        blocks.push(tail + need);
        left -= need;
    }
    while left > 0 {
        let b = left.min(TAIL_MAX);
        blocks.push(b);
        left -= b;
    }
    let mut out = pre.to_vec();
    let mut open = match out.last() {
        Some(&n) if n < REOPEN_BELOW => out.pop(),
        _ => None,
    };
    for b in blocks {
        open = match open {
            Some(n) if n + b <= CHUNK_MAX => Some(n + b),
            other => {
                out.extend(other);
                Some(b)
            }
        };
    }
    out.extend(open);
    out
}

/// `put_all` stores the candles one `put` per candle stores, from every starting tail length
/// and chunk fill, for batches around the block sizes. A short batch (its tail-filling
/// candles flushed straight from the batch) leaves byte for byte the store one-by-one puts
/// leave. A bulk one is laid out by the bulk rule (`bulk_layout`): chunks filled up to
/// `CHUNK_MAX`, each encoded once, where one-by-one puts (the streaming path) stop merging
/// their tail into a chunk once it is half full.
#[test]
fn put_all_equals_one_by_one_puts() {
    let mut r = Rng(0x5eed_cafe);
    let mut t = 60_000i64;
    let mut next = |r: &mut Rng| {
        t += 60_000 * (1 + r.below(3) as i64);
        candle(r, t)
    };
    let (mut same, mut reopened, mut new_chunk) = (0, 0, 0);
    for start in [
        0usize, 1, 31, 32, 33, 127, 128, 129, 200, 255, 256, 257, 300, 511, 700,
    ] {
        for batch in [
            2usize, 17, 31, 32, 33, 63, 64, 65, 95, 96, 255, 256, 257, 1000, 1500,
        ] {
            let pre: Vec<Candle> = (0..start).map(|_| next(&mut r)).collect();
            let add: Vec<Candle> = (0..batch).map(|_| next(&mut r)).collect();
            let mut a = ChunkedStore::new();
            let mut b = ChunkedStore::new();
            for c in &pre {
                a.put(*c);
                b.put(*c);
            }
            let pre_lens = b.chunk_lens();
            let pre_tail = b.len() - pre_lens.iter().sum::<usize>();
            assert!(
                pre_lens.iter().all(|&n| n <= REOPEN_BELOW),
                "start {start}: puts build chunks of at most REOPEN_BELOW: {pre_lens:?}"
            );
            for c in &add {
                a.put(*c);
            }
            b.put_all(&add);
            assert_eq!(a.len(), b.len());
            assert!(a == b, "start {start}, batch {batch}: other candles");
            if batch < 2 * TAIL_MAX {
                let (mut ea, mut eb) = (Vec::new(), Vec::new());
                a.encode(&mut ea);
                b.encode(&mut eb);
                assert!(ea == eb, "start {start}, batch {batch}: encodings differ");
                assert_eq!(a.mem_usage(), b.mem_usage(), "start {start}, batch {batch}");
                same += 1;
                continue;
            }
            let lens = b.chunk_lens();
            assert_eq!(
                lens,
                bulk_layout(&pre_lens, pre_tail, batch),
                "start {start}, batch {batch}: {pre_lens:?} + {pre_tail} in the tail"
            );
            assert_eq!(lens.iter().sum::<usize>(), b.len(), "the tail is sealed");
            assert!(
                lens[..lens.len() - 1]
                    .iter()
                    .all(|&n| n >= REOPEN_BELOW.min(TAIL_MAX)),
                "start {start}, batch {batch}: {lens:?}"
            );
            assert!(round_trip(&b) == b);
            if pre_lens.last().is_some_and(|&n| n < REOPEN_BELOW) {
                reopened += 1;
            } else {
                new_chunk += 1;
            }
        }
    }
    assert!(
        same >= 90 && reopened > 30 && new_chunk > 30,
        "{same} {reopened} {new_chunk}"
    );
    // Not appends (overlap, unsorted): same as one by one too.
    let base: Vec<Candle> = (0..400).map(|_| next(&mut r)).collect();
    let mut a = ChunkedStore::new();
    let mut b = ChunkedStore::new();
    for c in &base {
        a.put(*c);
        b.put(*c);
    }
    let mut mixed: Vec<Candle> = base[100..200].to_vec();
    mixed.reverse();
    mixed.extend((0..100).map(|_| next(&mut r)));
    for c in &mixed {
        a.put(*c);
    }
    b.put_all(&mixed);
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    a.encode(&mut ea);
    b.encode(&mut eb);
    assert!(ea == eb && a == b);
}

/// Batches that are not pure appends (gap fills, overlapping re-sent pages, corrections,
/// duplicates inside one batch) go through the grouped path of `put_all`: same contents as
/// the reference, valid chunks, a stable encoding, exact `mem_usage`, and `get_many` agrees.
#[test]
fn scattered_batches_and_get_many_match_reference() {
    for seed in 1..=6u64 {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let mut a = ChunkedStore::new();
        let mut b = ReferenceStore::new();
        let mut price = 5_000_000i128;
        let span = 3_000i64;
        for round in 0..60 {
            let n = 1 + r.below(if round % 10 == 0 { 900 } else { 120 }) as usize;
            let batch: Vec<Candle> = (0..n)
                .map(|_| {
                    let t = r.below(span as u64) as i64 * 60_000;
                    if r.chance(50) {
                        plain_candle(&mut r, t, &mut price)
                    } else {
                        candle(&mut r, t)
                    }
                })
                .collect();
            a.put_all(&batch);
            b.put_all(&batch);
            check_same(&a, &b);
            let mut probe: Vec<i64> = (0..200)
                .map(|_| r.below(span as u64 + 10) as i64 * 60_000)
                .collect();
            probe.sort_unstable();
            assert_eq!(
                a.get_many(&probe),
                b.get_many(&probe),
                "seed {seed} round {round}"
            );
            // Unsorted probes give the same answers, just slower.
            probe.reverse();
            assert_eq!(a.get_many(&probe), b.get_many(&probe));
            if round % 7 == 0 {
                a = round_trip(&a);
            }
        }
        // mem_usage's running byte count is checked against the chunks in debug builds.
        assert!(a.mem_usage() > 0);
        assert_valid(&a);
    }
}

/// A chunk that receives more candles than fit is split into even pieces of at most
/// `CHUNK_MAX`.
#[test]
fn scattered_batch_into_one_chunk_splits_evenly() {
    let mut r = Rng(7);
    let mut price = 5_000_000i128;
    let mut a = ChunkedStore::new();
    // Every other minute, appended: sealed chunks with holes.
    let evens: Vec<Candle> = (0..2 * CHUNK_MAX as i64)
        .map(|i| plain_candle(&mut r, 2 * i * 60_000, &mut price))
        .collect();
    a.put_all(&evens);
    // Fill every hole at once.
    let odds: Vec<Candle> = (0..2 * CHUNK_MAX as i64 - 1)
        .map(|i| plain_candle(&mut r, (2 * i + 1) * 60_000, &mut price))
        .collect();
    a.put_all(&odds);
    let mut b = ReferenceStore::new();
    b.put_all(&evens);
    b.put_all(&odds);
    check_same(&a, &b);
    assert_valid(&a);
}
