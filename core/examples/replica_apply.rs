//! What a replica (or an AOF replay) does with the `CANDLE.APPLY` a 1000-row
//! `CANDLE.OFFICIAL_ADD` replicates, without Redis: the master's effects, encoded as the module
//! sends them (`Effect::encode_after`: a bulk append goes as the chunks it sealed), are decoded,
//! validated and applied to a replica series. Checks that the replica ends with the master's
//! bytes and prints the time per candle.
//!
//! For deterministic figures count instructions in `replay_all` only:
//! `valgrind --tool=callgrind --toggle-collect='*replay_all*' target/release/examples/replica_apply`
//!
//! `cargo run --release -p candles-core --example replica_apply [-- REPS]`

use candles_core::binance::parse_incoming;
use candles_core::series::{DuplicatePolicy, Effect, Series, Settings};
use candles_core::Interval;
use std::time::Instant;

fn new_series() -> Series {
    Series::new(Settings {
        align: Default::default(),
        interval: Interval::M1,
        retention: 0,
        live_ttl_s: 86_400,
        live_max: 64,
        policy: DuplicatePolicy::Replace,
    })
}

/// The replica's side of every effect: decode, validate, apply.
#[inline(never)]
fn replay_all(replica: &mut Series, blobs: &[Vec<u8>]) {
    for blob in blobs {
        let e = Effect::decode(blob).expect("decodes");
        e.validate(Interval::M1).expect("valid");
        replica.apply(&e);
    }
}

fn main() {
    let reps: usize = candles_testkit::arg(1, 20);
    let bodies = candles_testkit::fixtures::rest_1m_bodies(reps);
    let mut master = new_series();
    let blobs: Vec<Vec<u8>> = bodies
        .iter()
        .map(|body| {
            let (batch, _) = parse_incoming(body).expect("parses");
            let e = master
                .add_official(&batch, i64::MAX / 2)
                .expect("adds")
                .effect;
            let mut blob = Vec::new();
            e.encode_after(&master, &mut blob);
            blob
        })
        .collect();
    let mut replica = new_series();
    let t0 = Instant::now();
    replay_all(&mut replica, &blobs);
    let t = t0.elapsed().as_secs_f64();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    master.encode(&mut a);
    replica.encode(&mut b);
    assert_eq!(a, b, "the replica holds the master's bytes");
    let sealed = blobs.iter().filter(|b| b.first() == Some(&4)).count();
    println!(
        "{reps} effects ({sealed} as sealed chunks): replica {:.3} us/candle, bytes equal the master's",
        t * 1e6 / (reps * 1000) as f64
    );
}
