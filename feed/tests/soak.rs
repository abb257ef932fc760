//! Soak: the stand-in streams the recorded candles of many symbols (1m and 5m, the stand-in's
//! "now" moving forward through the fixtures) while Redis (AOF, `appendfsync always`) is
//! killed with `kill -9` and restarted, the WebSocket is cut and REST answers 429. At the end
//! every series has every candle, none twice, none wrong.
//!
//! Bounded: `CANDLES_SOAK_SECS` (default 90) of faults, then at most a minute to settle; a
//! longer run: `CANDLES_SOAK_SECS=1800 cargo test --release -p candles-feed --test soak`.

mod common;

use candles_core::Interval;
use candles_testkit::server::Server;
use candles_testkit::standin::{
    kline_frame, open_time, real_now_ms, rows_of_body, Dataset, StandIn,
};
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const SYMBOLS: usize = 40;
/// Rows served from the start (the bootstrap takes them), the rest streamed.
const START: usize = 400;

fn soak_secs() -> u64 {
    std::env::var("CANDLES_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(90)
}

fn symbol(i: usize) -> String {
    format!("SOAK{i:02}USDT")
}

fn set_now(si: &StandIn, iv: Interval, t: i64) {
    if let Some(ds) = si.state().fallback.get_mut(iv.as_str()) {
        ds.visible_until = Some(t);
    }
}

fn gaps_of(c: &mut redis::Connection, key: &str, a: i64, b: i64) -> Option<Vec<(i64, i64)>> {
    common::gaps(c, key, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_kill9_ws_drops_and_429_lose_and_duplicate_nothing() {
    let secs = soak_secs();
    let mut redis = Server::start_with(
        &[
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ],
        &[],
    );
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let si = StandIn::start().await.unwrap();
    let r1 = rows_1m();
    let r5 = rows_of_body(&fixture("rest_klines_BTCUSDT_5m_limit1000.json")).unwrap();
    let n = r1.len().min(r5.len());
    si.set_fallback(Interval::M1, Dataset::new(r1.clone()));
    si.set_fallback(Interval::M5, Dataset::new(r5.clone()));
    set_now(&si, Interval::M1, open_time(&r1[START]));
    set_now(&si, Interval::M5, open_time(&r5[START]));
    let symbols: Vec<String> = (0..SYMBOLS).map(symbol).collect();
    let args: Vec<String> = [
        "--redis",
        &url,
        "--rest-url",
        &si.rest_url,
        "--ws-url",
        &si.ws_url,
        "--backoff-min",
        "50ms",
        "--backoff-max",
        "1s",
        "--progress",
        "log",
        "--symbols",
        &symbols.join(","),
        "--intervals",
        "1m,5m",
        "--bootstrap",
        "1000",
        "--stats-interval",
        "10s",
        // the stand-in's weight header only grows (no minute window): no pacing here; the
        // 429s below are the rate limit under test
        "--weight-limit",
        "1000000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let f = spawn_feeder(&args);
    assert!(
        eventually(Duration::from_secs(60), || f
            .log()
            .contains("bootstrap done"))
        .await,
        "{}",
        f.log()
    );
    assert!(
        si.wait_for(Duration::from_secs(20), |s| s.ws_open == 1)
            .await
    );

    // Stream row START+1 … n-1: each step closes the previous row and opens the next.
    let steps = n - 1 - START;
    let step = Duration::from_millis((secs * 1000 / steps as u64).max(20));
    let started = Instant::now();
    let (mut kills, mut drops, mut limits) = (0, 0, 0);
    let mut next_kill = Instant::now() + Duration::from_secs(secs / 4).max(Duration::from_secs(5));
    let mut next_drop = Instant::now() + Duration::from_secs(7);
    let mut next_429 = Instant::now() + Duration::from_secs(4);
    for i in START + 1..n {
        set_now(&si, Interval::M1, open_time(&r1[i]));
        set_now(&si, Interval::M5, open_time(&r5[i]));
        for s in &symbols {
            for (iv, rows) in [(Interval::M1, &r1), (Interval::M5, &r5)] {
                si.send_frame(kline_frame(s, iv, &rows[i - 1], true, real_now_ms()));
                si.send_frame(kline_frame(s, iv, &rows[i], false, real_now_ms()));
            }
        }
        let now = Instant::now();
        if now >= next_kill {
            redis.kill9_restart();
            kills += 1;
            next_kill = now + Duration::from_secs(secs / 4).max(Duration::from_secs(5));
        }
        if now >= next_drop {
            si.drop_connections();
            drops += 1;
            next_drop = now + Duration::from_secs(11);
        }
        if now >= next_429 {
            si.state().fail_next.push_back((429, Some(1)));
            limits += 1;
            next_429 = now + Duration::from_secs(5);
        }
        tokio::time::sleep(step).await;
    }
    // The last row closes too.
    for s in &symbols {
        for (iv, rows) in [(Interval::M1, &r1), (Interval::M5, &r5)] {
            si.send_frame(kline_frame(s, iv, &rows[n - 1], true, real_now_ms()));
        }
    }
    assert!(
        kills >= 2 && drops >= 2 && limits >= 2,
        "{kills} {drops} {limits}"
    );
    eprintln!(
        "soak: {} s streaming, {kills} kill -9, {drops} WebSocket drops, {limits} 429s",
        started.elapsed().as_secs()
    );

    // Settle: every series has every candle official, exactly, none twice.
    let mut c = redis.conn();
    let check = |c: &mut redis::Connection, s: &str, iv: &str, rows: &[Value]| -> bool {
        let key = format!("candle:{{{s}}}:{iv}");
        let (a, b) = (open_time(&rows[0]), open_time(&rows[n - 1]));
        gaps_of(c, &key, a, b) == Some(vec![])
            && range_full(c, &key, 0, i64::MAX / 2)
                == rows[..n]
                    .iter()
                    .map(|r| expected_full(r, "official"))
                    .collect::<Vec<_>>()
    };
    let ok = eventually(Duration::from_secs(60), || {
        symbols
            .iter()
            .all(|s| check(&mut c, s, "1m", &r1) && check(&mut c, s, "5m", &r5))
    })
    .await;
    if !ok {
        for s in &symbols {
            for (iv, rows) in [("1m", &r1), ("5m", &r5)] {
                let key = format!("candle:{{{s}}}:{iv}");
                let (a, b) = (open_time(&rows[0]), open_time(&rows[n - 1]));
                let got = range_full(&mut c, &key, 0, i64::MAX / 2);
                eprintln!(
                    "{key}: {} rows, gaps {:?}",
                    got.len(),
                    gaps_of(&mut c, &key, a, b)
                );
            }
        }
        let log = f.log();
        let tail: Vec<&str> = log.lines().rev().take(80).collect();
        panic!(
            "soak: series incomplete; feeder log tail:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let log = f.log();
    assert!(
        log.contains("reconnected to redis"),
        "the feeder saw the kill -9"
    );
}
