//! The feeder against a real redis-server with the redis-candles module and the Binance
//! stand-in: bootstrap, routing, gap fill after a dropped connection, 429, redis restart,
//! replay. After each fault: CANDLE.GAPS over the covered range is empty and
//! CANDLE.RANGE_MERGED … FULL equals the stand-in's data exactly.

mod common;

use candles_core::Interval;
use candles_feed::route::unwrap_recorded;
use candles_testkit::standin::{
    kline_frame, open_time, real_now_ms, Dataset, StandIn, SymbolFault,
};
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const KEY: &str = "candle:{BTCUSDT}:1m";

async fn wait_log(f: &Feeder, what: &str, d: Duration) {
    assert!(
        eventually(d, || f.log().contains(what)).await,
        "no '{what}' in the log:\n{}",
        f.log()
    );
}

/// Waits until the feeder streams (its WebSocket is open) and its bootstrap is done: the streams
/// start beside the bootstrap, so both are awaited.
async fn wait_streaming(si: &StandIn, f: &Feeder, d: Duration) {
    assert!(si.wait_for(d, |s| s.ws_open == 1).await, "{}", f.log());
    wait_log(f, "bootstrap done", d).await;
}

/// Waits until `check` holds on a fresh redis connection.
async fn wait_redis(
    redis: &Redis,
    f: &Feeder,
    what: &str,
    d: Duration,
    mut check: impl FnMut(&mut redis::Connection) -> bool,
) {
    let mut c = redis.conn();
    assert!(
        eventually(d, || check(&mut c)).await,
        "timed out waiting for {what}; feeder log:\n{}",
        f.log()
    );
}

fn row_is(c: &mut redis::Connection, key: &str, row: &Value, kind: &str) -> bool {
    let t = open_time(row);
    range_full(c, key, t, t) == vec![expected_full(row, kind)]
}

/// Leaves at least `margin` before the end of the current minute.
async fn away_from_minute_end(margin: Duration) {
    let into = real_now_ms().rem_euclid(M);
    if M - into < margin.as_millis() as i64 {
        tokio::time::sleep(Duration::from_millis((M - into + 200) as u64)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_pages_and_keeps_the_forming_row_live() {
    let redis = Redis::start();
    let si = StandIn::start().await.unwrap();
    let base = rows_1m();
    // 2000 rows (the fixture shifted back, then the fixture), times moved so that the last row is
    // the current minute: the module must keep it live.
    let mut rows = Vec::new();
    for k in [1000i64, 0] {
        for r in &base {
            let mut r = r.clone();
            r[0] = (open_time(&r) - k * M).into();
            r[6] = (r[6].as_i64().unwrap() - k * M).into();
            rows.push(r);
        }
    }
    let mut ds = Dataset::new(rows);
    ds.shift_to_now = true;
    si.set_dataset("BTCUSDT", Interval::M1, ds.clone());
    away_from_minute_end(Duration::from_secs(8)).await;
    let f = standard_feeder(
        &si,
        &redis,
        &[
            "--symbols",
            "btcusdt",
            "--intervals",
            "1m",
            "--bootstrap",
            "1500",
        ],
    );
    wait_log(&f, "bootstrap done", Duration::from_secs(20)).await;
    let served = ds.visible(Interval::M1);
    let reqs = si.klines_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(
        reqs[1].1.contains("limit=500") && reqs[1].1.contains("endTime="),
        "{}",
        reqs[1].1
    );

    let mut c = redis.conn();
    let got = range_full(&mut c, KEY, 0, real_now_ms() + 3_600_000);
    assert_eq!(got.len(), 1500);
    let want: Vec<Vec<String>> = served[500..]
        .iter()
        .enumerate()
        .map(|(i, r)| expected_full(r, if i == 1499 { "live" } else { "official" }))
        .collect();
    assert_eq!(got.last(), want.last(), "the forming row is live");
    assert_eq!(got, want);
    assert_eq!(
        got[1499][0],
        Interval::M1.align_down(real_now_ms()).to_string()
    );
    let from = open_time(&served[500]);
    assert_eq!(
        gaps(&mut c, KEY, from, open_time(&served[1998])),
        Some(vec![])
    );
    assert!(
        f.log().contains("progress=\"2/2\"") || f.log().contains("1/1"),
        "{}",
        f.log()
    );
}

/// One symbol whose REST answers 500 (listed first): the other is bootstrapped and streamed all
/// the same; the failing one keeps retrying on its own, its frames are written meanwhile, and
/// once REST answers its history is stored and complete up to the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_symbol_delays_no_other_and_fills_once_rest_answers() {
    const ETH: &str = "candle:{ETHUSDT}:1m";
    let redis = Redis::start();
    let si = StandIn::start().await.unwrap();
    let rows = rows_1m();
    let t = |i: usize| open_time(&rows[i]);
    for sym in ["BTCUSDT", "ETHUSDT"] {
        si.set_dataset(sym, Interval::M1, dataset(rows.clone(), Some(t(100))));
    }
    si.fault_symbol("ETHUSDT", SymbolFault::Status(500));
    let f = standard_feeder(
        &si,
        &redis,
        &[
            "--symbols",
            "ETHUSDT,BTCUSDT",
            "--intervals",
            "1m",
            "--bootstrap",
            "50",
        ],
    );
    // the healthy series: fully bootstrapped, streamed
    wait_redis(
        &redis,
        &f,
        "BTCUSDT bootstrapped",
        Duration::from_secs(10),
        |c| range_full(c, KEY, t(51), t(100)).len() == 50,
    )
    .await;
    assert_official_equals(&mut redis.conn(), KEY, &rows, t(51), t(100));
    assert!(
        si.wait_for(Duration::from_secs(10), |s| s.ws_open == 1)
            .await,
        "streaming never started: {}",
        f.log()
    );
    let frame = |sym: &str, i: usize, closed: bool| {
        kline_frame(sym, Interval::M1, &rows[i], closed, t(i) + 30_000)
    };
    si.send_frame(frame("BTCUSDT", 101, true));
    si.send_frame(frame("ETHUSDT", 101, false));
    wait_redis(
        &redis,
        &f,
        "BTCUSDT 101 streamed",
        Duration::from_secs(5),
        |c| row_is(c, KEY, &rows[101], "official"),
    )
    .await;
    wait_redis(
        &redis,
        &f,
        "ETHUSDT 101 streamed",
        Duration::from_secs(5),
        |c| row_is(c, ETH, &rows[101], "live"),
    )
    .await;
    assert_official_equals(&mut redis.conn(), KEY, &rows, t(51), t(101));
    // the failing one keeps trying, on its own
    let before = si.klines_requests_for("ETHUSDT");
    assert!(
        eventually(Duration::from_secs(5), || si.klines_requests_for("ETHUSDT")
            >= before + 2)
        .await,
        "ETHUSDT is not retried: {}",
        f.log()
    );
    assert!(range_full(&mut redis.conn(), ETH, t(51), t(100)).is_empty());
    assert!(
        f.log()
            .lines()
            .any(|l| l.contains("REST klines request failed")
                && l.contains("ETHUSDT")
                && l.contains("500")),
        "{}",
        f.log()
    );
    assert!(!f.log().contains("bootstrap done"), "{}", f.log());
    assert_eq!(si.klines_requests_for("BTCUSDT"), 1);
    si.send_frame(frame("ETHUSDT", 101, true));
    wait_redis(
        &redis,
        &f,
        "ETHUSDT 101 official",
        Duration::from_secs(5),
        |c| row_is(c, ETH, &rows[101], "official"),
    )
    .await;

    // REST answers again: its history is stored, complete up to the stream
    si.heal_symbol("ETHUSDT");
    wait_redis(&redis, &f, "ETHUSDT filled", Duration::from_secs(10), |c| {
        gaps(c, ETH, t(51), t(101)) == Some(vec![]) && range_full(c, ETH, t(51), t(101)).len() == 51
    })
    .await;
    assert_official_equals(&mut redis.conn(), ETH, &rows, t(51), t(101));
    wait_log(&f, "bootstrap done", Duration::from_secs(5)).await;
    si.send_frame(frame("ETHUSDT", 102, false));
    wait_redis(
        &redis,
        &f,
        "ETHUSDT 102 streamed",
        Duration::from_secs(5),
        |c| row_is(c, ETH, &rows[102], "live"),
    )
    .await;
}

/// The value of `name=` on `line` (text log format).
fn field(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.trim_matches('"').parse().ok())
}

/// `--stats-interval 200ms`: counter lines while it runs, and the summary at exit, with the
/// frames, commands, REST requests, gap fills and reconnects it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_logged_periodically_and_at_exit() {
    let redis = Redis::start();
    let si = StandIn::start().await.unwrap();
    let rows = rows_1m();
    let t = |i: usize| open_time(&rows[i]);
    si.set_dataset("BTCUSDT", Interval::M1, dataset(rows.clone(), Some(t(100))));
    let mut f = standard_feeder(
        &si,
        &redis,
        &[
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "1m",
            "--bootstrap",
            "20",
            "--stats-interval",
            "200ms",
        ],
    );
    wait_streaming(&si, &f, Duration::from_secs(10)).await;
    let frame = |i: usize, closed: bool| {
        kline_frame("BTCUSDT", Interval::M1, &rows[i], closed, t(i) + 30_000)
    };
    si.send_frame(frame(101, true));
    si.send_frame(frame(102, false));
    wait_redis(&redis, &f, "live 102", Duration::from_secs(5), |c| {
        row_is(c, KEY, &rows[102], "live")
    })
    .await;
    // a dropped connection: one reconnect, one websocket error
    si.drop_connections();
    assert!(
        si.wait_for(Duration::from_secs(5), |s| s.ws_connections.len() == 2
            && s.ws_open == 1)
            .await,
        "{}",
        f.log()
    );
    si.set_visible_until("BTCUSDT", Interval::M1, Some(t(104)));
    si.send_frame(frame(104, false));
    wait_log(&f, "gap filled", Duration::from_secs(5)).await;
    let stats_line = |log: &str, what: &str| -> Option<String> {
        log.lines()
            .rev()
            .find(|l| l.contains(what) && field(l, "frames") == Some(3))
            .map(str::to_string)
    };
    assert!(
        eventually(Duration::from_secs(3), || stats_line(&f.log(), " stats ")
            .is_some_and(|l| field(&l, "reconnects") == Some(1)))
        .await,
        "no periodic counters line:\n{}",
        f.log()
    );
    assert!(
        eventually(Duration::from_secs(3), || f
            .log()
            .lines()
            .filter(|l| l.contains(" stats "))
            .count()
            >= 2)
        .await,
        "{}",
        f.log()
    );
    f.sigterm();
    let st = tokio::task::block_in_place(|| f.wait_exit(Duration::from_secs(3))).expect("exits");
    assert!(st.success(), "{st:?}");
    let log = f.log();
    let exit = log
        .lines()
        .find(|l| l.contains("stats at exit"))
        .unwrap_or_else(|| panic!("no exit summary:\n{log}"));
    assert_eq!(field(exit, "frames"), Some(3), "{exit}");
    // 1 bootstrap page, 3 frames, 1 gap page (102, only live before, and 103)
    assert_eq!(field(exit, "commands"), Some(5), "{exit}");
    assert_eq!(field(exit, "rest_requests"), Some(2), "{exit}");
    assert_eq!(field(exit, "rest_errors"), Some(0), "{exit}");
    assert_eq!(field(exit, "gap_fills"), Some(1), "{exit}");
    assert_eq!(field(exit, "gap_candles"), Some(2), "{exit}");
    assert_eq!(field(exit, "reconnects"), Some(1), "{exit}");
    assert_eq!(field(exit, "ws_errors"), Some(1), "{exit}");
    assert_eq!(field(exit, "errors"), Some(1), "{exit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_routing_and_gap_fill_after_a_dropped_connection() {
    let redis = Redis::start();
    let si = StandIn::start().await.unwrap();
    let rows = rows_1m();
    let t = |i: usize| open_time(&rows[i]);
    si.set_dataset("BTCUSDT", Interval::M1, dataset(rows.clone(), Some(t(100))));
    let f = standard_feeder(
        &si,
        &redis,
        &[
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "1m",
            "--bootstrap",
            "50",
        ],
    );
    // the streams start beside the bootstrap: wait for both
    wait_streaming(&si, &f, Duration::from_secs(20)).await;
    let frame = |i: usize, closed: bool| {
        kline_frame("BTCUSDT", Interval::M1, &rows[i], closed, t(i) + 30_000)
    };

    // x=false → live, x=true → official
    si.send_frame(frame(101, false));
    wait_redis(&redis, &f, "live 101", Duration::from_secs(5), |c| {
        row_is(c, KEY, &rows[101], "live")
    })
    .await;
    si.send_frame(frame(101, true));
    wait_redis(&redis, &f, "official 101", Duration::from_secs(5), |c| {
        row_is(c, KEY, &rows[101], "official")
    })
    .await;
    si.send_frame(frame(102, false));
    wait_redis(&redis, &f, "live 102", Duration::from_secs(5), |c| {
        row_is(c, KEY, &rows[102], "live")
    })
    .await;
    assert_official_equals(&mut redis.conn(), KEY, &rows, t(51), t(101));

    // the connection drops across candle boundaries: 102..104 close while the feeder is away
    si.drop_connections();
    si.set_visible_until("BTCUSDT", Interval::M1, Some(t(105)));
    assert!(
        si.wait_for(Duration::from_secs(5), |s| s.ws_connections.len() == 2
            && s.ws_open == 1)
            .await,
        "{}",
        f.log()
    );
    si.send_frame(frame(105, false));
    wait_redis(
        &redis,
        &f,
        "gap 102..104 filled",
        Duration::from_secs(10),
        |c| gaps(c, KEY, t(51), t(104)) == Some(vec![]),
    )
    .await;
    assert_official_equals(&mut redis.conn(), KEY, &rows, t(51), t(104));
    assert!(
        si.klines_requests()
            .iter()
            .any(|(_, p)| p.contains(&format!("startTime={}&endTime={}", t(102), t(104)))),
        "{:?}",
        si.klines_requests()
    );

    // the stream jumps ahead (105 → 110) on the same connection: 105..109 are fetched
    si.set_visible_until("BTCUSDT", Interval::M1, Some(t(110)));
    si.send_frame(frame(110, false));
    wait_redis(
        &redis,
        &f,
        "gap 105..109 filled",
        Duration::from_secs(10),
        |c| gaps(c, KEY, t(51), t(109)) == Some(vec![]),
    )
    .await;
    assert_official_equals(&mut redis.conn(), KEY, &rows, t(51), t(109));
    assert!(row_is(&mut redis.conn(), KEY, &rows[110], "live"));
}

/// The kline `k` of a recorded frame as RANGE_MERGED FULL would return it.
fn expected_of_frame(frame: &str, kind: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(frame).unwrap();
    let k = &v["data"]["k"];
    let row = serde_json::json!([
        k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], "0"
    ]);
    expected_full(&row, kind)
}

/// Kline frames of the 2021-04-04 capture, per symbol: (closed frame of 20:03, last frame of 20:04).
fn capture_klines() -> (Vec<String>, Vec<(String, String, String)>) {
    let text = fixture("ws_capture_spot_2021-04-04_BTCUSDT_ETHUSDT_DOTUSDT.jsonl");
    let frames: Vec<String> = text
        .lines()
        .filter_map(unwrap_recorded)
        .filter(|f| f.contains("@kline_1m"))
        .map(str::to_owned)
        .collect();
    let mut per = Vec::new();
    for sym in ["BTCUSDT", "ETHUSDT", "DOTUSDT"] {
        let mine: Vec<&String> = frames
            .iter()
            .filter(|f| f.contains(&format!("\"s\":\"{sym}\"")))
            .collect();
        let closed = mine
            .iter()
            .find(|f| f.contains("\"x\":true"))
            .unwrap()
            .to_string();
        let last = mine.last().unwrap().to_string();
        per.push((sym.to_string(), closed, last));
    }
    (frames, per)
}

fn check_capture(c: &mut redis::Connection, per: &[(String, String, String)]) -> bool {
    per.iter().all(|(sym, closed, last)| {
        let key = format!("candle:{{{sym}}}:1m");
        let got = range_full(c, &key, 1617566580000, 1617566640000);
        got == vec![
            expected_of_frame(closed, "official"),
            expected_of_frame(last, "live"),
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_frames_route_to_live_and_official() {
    let redis = Redis::start();
    let si = StandIn::start().await.unwrap();
    let f = standard_feeder(
        &si,
        &redis,
        &[
            "--symbols",
            "BTCUSDT,ETHUSDT,DOTUSDT",
            "--intervals",
            "1m",
            "--bootstrap",
            "0",
        ],
    );
    assert!(
        si.wait_for(Duration::from_secs(20), |s| s.ws_open == 1)
            .await,
        "{}",
        f.log()
    );
    let (frames, per) = capture_klines();
    assert_eq!(frames.len(), 118);
    for fr in frames {
        si.send_frame(fr);
    }
    wait_redis(&redis, &f, "capture stored", Duration::from_secs(10), |c| {
        check_capture(c, &per)
    })
    .await;
    // nothing asked of REST: no gap
    assert!(
        si.klines_requests().is_empty(),
        "{:?}",
        si.klines_requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_429_retry_after_is_honoured() {
    let redis = Redis::start();
    let si = StandIn::start().await.unwrap();
    let rows = rows_1m();
    si.set_dataset("BTCUSDT", Interval::M1, Dataset::new(rows.clone()));
    si.state().fail_next.push_back((429, Some(1)));
    let f = standard_feeder(
        &si,
        &redis,
        &[
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "1m",
            "--bootstrap",
            "100",
        ],
    );
    wait_log(&f, "bootstrap done", Duration::from_secs(20)).await;
    let reqs = si.klines_requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[1].0 - reqs[0].0 >= Duration::from_secs(1),
        "Retry-After: 1 not honoured"
    );
    assert!(f.log().contains("rate limited (HTTP 429)"), "{}", f.log());
    assert_official_equals(
        &mut redis.conn(),
        KEY,
        &rows,
        open_time(&rows[900]),
        open_time(&rows[999]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_stream_is_repaired() {
    let mut redis = Redis::start();
    let si = StandIn::start().await.unwrap();
    let rows = rows_1m();
    let t = |i: usize| open_time(&rows[i]);
    si.set_dataset("BTCUSDT", Interval::M1, dataset(rows.clone(), Some(t(100))));
    let f = standard_feeder(
        &si,
        &redis,
        &[
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "1m",
            "--bootstrap",
            "30",
        ],
    );
    // the streams start beside the bootstrap: wait for both
    wait_streaming(&si, &f, Duration::from_secs(20)).await;
    assert_official_equals(&mut redis.conn(), KEY, &rows, t(71), t(100));
    // frames keep coming, every 50 ms
    let sender = {
        let frame = kline_frame("BTCUSDT", Interval::M1, &rows[101], false, t(101) + 1000);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let si_frames = std::sync::Arc::new(si);
        let si2 = si_frames.clone();
        let h = tokio::spawn(async move {
            while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                si2.send_frame(frame.clone());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        (stop, h, si_frames)
    };
    wait_redis(&redis, &f, "live 101", Duration::from_secs(5), |c| {
        row_is(c, KEY, &rows[101], "live")
    })
    .await;
    let t0 = Instant::now();
    tokio::task::block_in_place(|| redis.restart());
    wait_redis(
        &redis,
        &f,
        "data restored after the restart",
        Duration::from_secs(15),
        |c| gaps(c, KEY, t(71), t(100)) == Some(vec![]),
    )
    .await;
    assert_official_equals(&mut redis.conn(), KEY, &rows, t(71), t(100));
    wait_redis(&redis, &f, "live 101 again", Duration::from_secs(5), |c| {
        row_is(c, KEY, &rows[101], "live")
    })
    .await;
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert!(f.log().contains("reconnected to redis"), "{}", f.log());
    sender.0.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sender.1.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_sends_the_same_commands_and_exits() {
    let redis = Redis::start();
    let capture =
        candles_testkit::fixtures::path("ws_capture_spot_2021-04-04_BTCUSDT_ETHUSDT_DOTUSDT.jsonl");
    let mut f = spawn_feeder(&[
        "--replay".into(),
        capture.display().to_string(),
        "--redis".into(),
        redis.url(),
    ]);
    let st =
        tokio::task::block_in_place(|| f.wait_exit(Duration::from_secs(30))).expect("replay exits");
    assert!(st.success(), "{st:?} {}", f.log());
    assert!(
        f.log().contains("replay done") && f.log().contains("frames=4716"),
        "{}",
        f.log()
    );
    let (_, per) = capture_klines();
    assert!(check_capture(&mut redis.conn(), &per));

    // raw frames (no recv_ts wrapper), filtered to one symbol
    let redis2 = Redis::start();
    let raw = candles_testkit::fixtures::path("ws_kline_1m_combined.jsonl");
    let mut f = spawn_feeder(&[
        "--replay".into(),
        raw.display().to_string(),
        "--redis".into(),
        redis2.url(),
        "--symbols".into(),
        "BTCUSDT".into(),
    ]);
    let st =
        tokio::task::block_in_place(|| f.wait_exit(Duration::from_secs(30))).expect("replay exits");
    assert!(st.success(), "{st:?} {}", f.log());
    let mut c = redis2.conn();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert_eq!(keys, [KEY]);
    let btc = &per[0];
    let got = range_full(&mut c, KEY, 1617566580000, 1617566580000);
    assert_eq!(got, vec![expected_of_frame(&btc.1, "official")]);
}

fn replay_capture(redis: &Redis, extra: &[&str]) -> (std::process::ExitStatus, String) {
    let capture =
        candles_testkit::fixtures::path("ws_capture_spot_2021-04-04_BTCUSDT_ETHUSDT_DOTUSDT.jsonl");
    replay_file(redis, &capture, extra)
}

fn replay_file(
    redis: &Redis,
    file: &std::path::Path,
    extra: &[&str],
) -> (std::process::ExitStatus, String) {
    let mut a = vec![
        "--replay".to_string(),
        file.display().to_string(),
        "--redis".into(),
        redis.url(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    let mut f = spawn_feeder(&a);
    let st = f.wait_exit(Duration::from_secs(30)).expect("replay exits");
    (st, f.log())
}

fn keys(redis: &Redis) -> Vec<String> {
    let mut k: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.conn())
        .unwrap();
    k.sort();
    k
}

/// With no --symbols (and the default --intervals), a replay stores every symbol of the file;
/// --symbols narrows it.
#[test]
fn replay_without_symbols_stores_every_symbol_of_the_file() {
    let (_, per) = capture_klines();
    let redis = Redis::start();
    let (st, log) = replay_capture(&redis, &[]);
    assert!(st.success(), "{st:?} {log}");
    assert_eq!(
        keys(&redis),
        [
            "candle:{BTCUSDT}:1m",
            "candle:{DOTUSDT}:1m",
            "candle:{ETHUSDT}:1m"
        ],
        "{log}"
    );
    // the exit summary counts what "replay done" counts
    let done = log.lines().find(|l| l.contains("replay done")).unwrap();
    let exit = log.lines().find(|l| l.contains("stats at exit")).unwrap();
    assert!(field(done, "frames").is_some_and(|n| n > 0), "{done}");
    assert_eq!(field(exit, "frames"), field(done, "frames"), "{log}");
    assert_eq!(field(exit, "commands"), field(done, "commands"), "{log}");
    assert_eq!(field(exit, "errors"), Some(0), "{log}");
    assert!(check_capture(&mut redis.conn(), &per));

    // what `make run` passes by default: DOTUSDT is left out
    let redis = Redis::start();
    let (st, log) = replay_capture(&redis, &["--symbols", "BTCUSDT,ETHUSDT"]);
    assert!(st.success(), "{st:?} {log}");
    assert_eq!(
        keys(&redis),
        ["candle:{BTCUSDT}:1m", "candle:{ETHUSDT}:1m"],
        "{log}"
    );
    assert!(check_capture(&mut redis.conn(), &per[..2]));
}

/// Refused commands are counted one by one and named (key, error) in the summary, and the
/// replay exits non-zero; the other keys are still stored.
#[test]
fn replay_counts_refused_commands_and_names_them() {
    let (frames, per) = capture_klines();
    let btc_frames = frames
        .iter()
        .filter(|f| f.contains("\"s\":\"BTCUSDT\""))
        .count();
    assert_eq!(btc_frames, 44);
    let redis = Redis::start();
    let _: () = redis::cmd("SET")
        .arg(KEY)
        .arg("not a series")
        .query(&mut redis.conn())
        .unwrap();
    let (st, log) = replay_capture(&redis, &[]);
    assert_eq!(st.code(), Some(1), "{st:?} {log}");
    assert!(!log.contains("replay done"), "{log}");
    assert!(
        log.contains(&format!(
            "redis refused {btc_frames} of {} commands",
            frames.len()
        )),
        "{log}"
    );
    let named = log
        .lines()
        .find(|l| l.contains("replay: commands refused"))
        .unwrap_or_else(|| panic!("no refused line: {log}"));
    assert!(
        named.contains(&format!("key={KEY}"))
            && named.contains("WRONGTYPE")
            && named.contains(&format!("commands={btc_frames}")),
        "{named}"
    );
    assert!(check_capture(&mut redis.conn(), &per[1..]));
}

/// A replay file that does not exist, or yields no command, is an error, never "replay done".
#[test]
fn replay_of_a_missing_or_commandless_file_fails() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let (st, log) = replay_file(&redis, &missing, &[]);
    assert_eq!(st.code(), Some(1), "{st:?} {log}");
    assert!(log.contains("missing.jsonl"), "{log}");
    assert!(!log.contains("replay done"), "{log}");

    // recorded frames, none of which makes a command (bookTicker only)
    let book = candles_testkit::fixtures::path("ws_bookTicker_combined.jsonl");
    let (st, log) = replay_file(&redis, &book, &[]);
    assert_eq!(st.code(), Some(1), "{st:?} {log}");
    assert!(log.contains("no commands"), "{log}");
    assert!(!log.contains("replay done"), "{log}");

    // an empty file, and one with no recorded frame at all
    for (name, body) in [("empty.jsonl", ""), ("junk.jsonl", "hello\n{\"a\":1}\n")] {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        let (st, log) = replay_file(&redis, &p, &[]);
        assert_eq!(st.code(), Some(1), "{name}: {st:?} {log}");
        assert!(log.contains("no commands"), "{name}: {log}");
        assert!(!log.contains("replay done"), "{name}: {log}");
    }

    // everything filtered out by --symbols
    let (st, log) = replay_capture(&redis, &["--symbols", "XRPUSDT"]);
    assert_eq!(st.code(), Some(1), "{st:?} {log}");
    assert!(log.contains("no commands for --symbols XRPUSDT"), "{log}");
    assert!(keys(&redis).is_empty());
}

/// A closed stderr and stdout (`candles-feed … 2>&1 | head -1`) must not kill the feeder: the
/// replay runs to its end and exits 0 by itself, not by a signal or an abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_survives_a_closed_stderr_and_stdout() {
    use std::os::unix::process::ExitStatusExt;
    let redis = Redis::start();
    let capture =
        candles_testkit::fixtures::path("ws_capture_spot_2021-04-04_BTCUSDT_ETHUSDT_DOTUSDT.jsonl");
    let args = [
        "--replay".to_string(),
        capture.display().to_string(),
        "--redis".into(),
        redis.url(),
    ];
    let st = tokio::task::block_in_place(|| run_with_closed_output(&args, Duration::from_secs(30)))
        .expect("the replay exits by itself");
    assert_eq!(st.signal(), None, "killed by a signal: {st:?}");
    assert_eq!(st.code(), Some(0), "{st:?}");
    // and it did its work
    let (_, per) = capture_klines();
    assert!(check_capture(&mut redis.conn(), &per));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_go_to_the_tick_book_and_live_candles() {
    let redis = Redis::start();
    let si = StandIn::start().await.unwrap();
    let f = standard_feeder(
        &si,
        &redis,
        &[
            "--symbols",
            "BTCUSDT,ETHUSDT,DOTUSDT",
            "--intervals",
            "1m",
            "--bootstrap",
            "0",
            "--ticks",
            "--live-tick",
            "--ticks-maxlen",
            "5000",
        ],
    );
    assert!(
        si.wait_for(Duration::from_secs(20), |s| s.ws_open == 1)
            .await,
        "{}",
        f.log()
    );
    assert!(si.state().ws_connections[0]
        .ends_with("/btcusdt@aggTrade/ethusdt@aggTrade/dotusdt@aggTrade"));
    let text = fixture("ws_capture_spot_2021-04-04_BTCUSDT_ETHUSDT_DOTUSDT.jsonl");
    let trades: Vec<&str> = text
        .lines()
        .filter_map(unwrap_recorded)
        .filter(|f| f.contains("@aggTrade"))
        .collect();
    assert_eq!(trades.len(), 1227 + 506 + 177);
    for fr in &trades {
        si.send_frame(fr.to_string());
    }
    let count = |c: &mut redis::Connection, sym: &str| -> Option<usize> {
        let v: redis::Value = redis::cmd("TICKS.RANGE")
            .arg("ticks:{binance}")
            .arg(sym)
            .arg(0)
            .arg(i64::MAX / 2)
            .query(c)
            .ok()?;
        match v {
            redis::Value::Array(a) => Some(a.len()),
            _ => None,
        }
    };
    wait_redis(
        &redis,
        &f,
        "1227 BTCUSDT ticks",
        Duration::from_secs(10),
        |c| count(c, "BTCUSDT") == Some(1227),
    )
    .await;
    let mut c = redis.conn();
    assert_eq!(count(&mut c, "ETHUSDT"), Some(506));
    assert_eq!(count(&mut c, "DOTUSDT"), Some(177));
    // the trades also built live candles (20:03 and 20:04) for every series of their symbol
    let rows = range_full(&mut c, "candle:{BTCUSDT}:1m", 1617566520000, 1617566700000);
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r[6] == "live"),
        "{rows:?}"
    );
}

/// `--derive`: only 1m is streamed and back-filled; 5m is created derived from it, its buckets
/// computed by the module and equal to Binance's own 5m candles, and its older history comes
/// from REST into the derived series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derive_streams_the_smallest_interval_and_derives_the_others() {
    const M5: &str = "candle:{BTCUSDT}:5m";
    let redis = Redis::start();
    let si = StandIn::start().await.unwrap();
    let five: Vec<Value> =
        serde_json::from_str(&fixture("rest_klines_BTCUSDT_5m_limit1000.json")).unwrap();
    si.set_dataset("BTCUSDT", Interval::M1, Dataset::new(rows_1m()));
    si.set_dataset("BTCUSDT", Interval::M5, Dataset::new(five.clone()));
    let f = standard_feeder(
        &si,
        &redis,
        &["--symbols", "btcusdt", "--intervals", "5m,1m", "--derive"],
    );
    wait_streaming(&si, &f, Duration::from_secs(20)).await;
    assert!(f.log().contains("derived series created"), "{}", f.log());
    // One series streamed (1m); 5m's history by REST.
    assert!(f.log().contains("series=1 "), "{}", f.log());
    let reqs = si.klines_requests();
    assert!(reqs.iter().any(|r| r.1.contains("interval=5m")), "{reqs:?}");
    let mut c = redis.conn();
    let info: Vec<redis::Value> = redis::cmd("CANDLE.INFO").arg(M5).query(&mut c).unwrap();
    let source = info
        .chunks(2)
        .find(|p| redis::from_redis_value::<String>(&p[0]).is_ok_and(|k| k == "source"))
        .and_then(|p| redis::from_redis_value::<String>(&p[1]).ok());
    assert_eq!(source.as_deref(), Some(KEY));
    // Every official 5m candle equals Binance's: 799 from REST (older than the 1m history),
    // 199 derived from 1m.
    wait_redis(&redis, &f, "5m history", Duration::from_secs(20), |c| {
        range_full(c, M5, 0, i64::MAX / 2)
            .iter()
            .filter(|r| r[6] == "official")
            .count()
            == 998
    })
    .await;
    let got = range_full(&mut c, M5, 0, i64::MAX / 2);
    for row in got.iter().filter(|r| r[6] == "official") {
        let t: i64 = row[0].parse().unwrap();
        let want = five.iter().find(|r| open_time(r) == t).unwrap();
        assert_eq!(row, &expected_full(want, "official"), "bucket {t}");
    }
    assert_eq!(
        got.last().unwrap()[6],
        "live",
        "the 5m bucket the 1m history only starts"
    );
}
