//! The feeder's own test helpers on top of `candles_testkit::feeder` (the Redis, the feeder
//! process, reading candles back): the binary of this crate, its standard options against a
//! stand-in, and the checks that use the feeder's `CANDLE.GAPS` parser.
#![allow(dead_code)]

use candles_testkit::standin::StandIn;
use serde_json::Value;

pub use candles_testkit::feeder::*;
#[allow(unused_imports)] // not every test binary uses it
pub use candles_testkit::fixtures::text as fixture;
#[allow(unused_imports)] // not every test binary uses it
pub use candles_testkit::server::{free_port, module_path};

/// The feeder binary of this crate.
pub const FEED_BIN: &str = env!("CARGO_BIN_EXE_candles-feed");

/// The feeder binary with `args`; killed on drop.
pub fn spawn_feeder(args: &[String]) -> Feeder {
    Feeder::spawn(FEED_BIN, args)
}

/// The feeder with the standard options against a stand-in and a redis, plus `extra`.
pub fn standard_feeder(standin: &StandIn, redis: &Redis, extra: &[&str]) -> Feeder {
    let mut a: Vec<String> = vec![
        "--redis".into(),
        redis.url(),
        "--rest-url".into(),
        standin.rest_url.clone(),
        "--ws-url".into(),
        standin.ws_url.clone(),
        "--backoff-min".into(),
        "50ms".into(),
        "--backoff-max".into(),
        "500ms".into(),
        "--progress".into(),
        "log".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    spawn_feeder(&a)
}

/// `CANDLE.GAPS key from to` (None if the key does not exist).
pub fn gaps(c: &mut redis::Connection, key: &str, from: i64, to: i64) -> Option<Vec<(i64, i64)>> {
    let v: redis::Value = redis::cmd("CANDLE.GAPS")
        .arg(key)
        .arg(from)
        .arg(to)
        .query(c)
        .ok()?;
    candles_feed::sink::parse_gaps(&v).ok()
}

/// Asserts the official data of `key` over `from..=to` equals `rows` exactly and has no gap.
pub fn assert_official_equals(
    c: &mut redis::Connection,
    key: &str,
    rows: &[Value],
    from: i64,
    to: i64,
) {
    assert_eq!(
        gaps(c, key, from, to),
        Some(vec![]),
        "gaps in {key} {from}..{to}"
    );
    let got = range_full(c, key, from, to);
    let want: Vec<Vec<String>> = rows_between(rows, from, to)
        .iter()
        .map(|r| expected_full(r, "official"))
        .collect();
    assert_eq!(got.len(), want.len(), "row count of {key}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
}

/// Runs the feeder binary with `args`, stdout and stderr both on a pipe whose read end is
/// already closed (as `candles-feed … 2>&1 | head -1` once `head` exited), and debug logging so
/// that it writes a lot. Returns how it exited; None if it was still running after `d` (then
/// it is killed).
pub fn run_with_closed_output(
    args: &[String],
    d: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = std::process::Command::new(FEED_BIN)
        .args(args)
        .env("RUST_LOG", "debug")
        .env_remove("CANDLES_FEED_SYMBOLS")
        .stdin(std::process::Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .expect("spawn candles-feed");
    let end = std::time::Instant::now() + d;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if std::time::Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
