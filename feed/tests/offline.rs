//! Feeder behaviour that needs no Redis module: retries without Binance, SIGTERM, the REST
//! client against the stand-in (paging, 429), WebSocket pings, watchdog and renewal.

mod common;

use candles_core::Interval;
use candles_feed::backoff::shutdown_pair;
use candles_feed::rest::Rest;
use candles_testkit::standin::{open_time, Dataset, StandIn};
use common::*;
use std::time::{Duration, Instant};

fn closed_port() -> u16 {
    free_port()
}

#[test]
fn bad_options_exit_with_2() {
    let mut f = spawn_feeder(&["--intervals".into(), "1m".into()]);
    let st = f.wait_exit(Duration::from_secs(5)).expect("exits");
    assert_eq!(st.code(), Some(2), "{}", f.log());
    assert!(f.log().contains("--symbols"), "{}", f.log());
}

/// An option error with a closed stderr: still exit code 2, no panic (101) or abort (signal).
#[test]
fn bad_options_with_a_closed_stderr_exit_with_2() {
    use std::os::unix::process::ExitStatusExt;
    let st = run_with_closed_output(&["--intervals".into(), "1m".into()], Duration::from_secs(5))
        .expect("exits");
    assert_eq!(st.signal(), None, "{st:?}");
    assert_eq!(st.code(), Some(2), "{st:?}");
}

#[test]
fn keeps_retrying_without_binance_and_stops_on_sigterm() {
    let p = closed_port();
    let mut f = spawn_feeder(&[
        "--symbols".into(),
        "BTCUSDT".into(),
        "--rest-url".into(),
        format!("http://127.0.0.1:{p}"),
        "--ws-url".into(),
        format!("ws://127.0.0.1:{p}"),
        "--redis".into(),
        format!("redis://127.0.0.1:{p}"),
        "--backoff-min".into(),
        "50ms".into(),
        "--backoff-max".into(),
        "200ms".into(),
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        f.child.try_wait().unwrap().is_none(),
        "still running: {}",
        f.log()
    );
    let log = f.log();
    assert!(
        log.matches("REST klines request failed, retrying").count() >= 3,
        "{log}"
    );
    f.sigterm();
    let t = Instant::now();
    let st = f
        .wait_exit(Duration::from_secs(2))
        .expect("exit after SIGTERM");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    assert!(st.success(), "{st:?} {}", f.log());
}

/// Every error line carries its root cause: against a closed port the REST, WebSocket and Redis
/// lines say "Connection refused", not just "error sending request for url (…)".
#[test]
fn error_lines_name_their_root_cause() {
    let p = closed_port();
    let mut f = spawn_feeder(&[
        "--symbols".into(),
        "BTCUSDT".into(),
        "--bootstrap".into(),
        "10".into(),
        "--rest-url".into(),
        format!("http://127.0.0.1:{p}"),
        "--ws-url".into(),
        format!("ws://127.0.0.1:{p}"),
        "--redis".into(),
        format!("redis://127.0.0.1:{p}"),
        "--backoff-min".into(),
        "50ms".into(),
        "--backoff-max".into(),
        "200ms".into(),
    ]);
    let refused = |line: &str| line.to_ascii_lowercase().contains("connection refused");
    let has = |log: &str, what: &str| log.lines().any(|l| l.contains(what) && refused(l));
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let log = f.log();
        if has(&log, "REST klines request failed")
            && has(&log, "websocket connect failed")
            && has(&log, "redis unavailable")
        {
            break;
        }
        assert!(Instant::now() < end, "no cause in the error lines:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = f.log();
    let rest_line = log
        .lines()
        .find(|l| l.contains("REST klines request failed"))
        .unwrap_or_default();
    assert!(
        rest_line.contains("error sending request") && refused(rest_line),
        "{rest_line}"
    );
    f.sigterm();
    assert!(f.wait_exit(Duration::from_secs(2)).is_some());
}

fn rest(si: &StandIn) -> (Rest, candles_feed::backoff::ShutdownTrigger) {
    let (t, s) = shutdown_pair();
    (
        Rest::new(
            &si.rest_url,
            1200,
            Duration::from_millis(20),
            Duration::from_millis(100),
            s,
        )
        .unwrap(),
        t,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_pages_backwards_and_forwards() {
    let si = StandIn::start().await.unwrap();
    let base = rows_1m();
    // 3000 rows: the fixture shifted back twice, then the fixture itself
    let mut rows = Vec::new();
    for k in [2000i64, 1000, 0] {
        for r in &base {
            let mut r = r.clone();
            r[0] = (open_time(&r) - k * M).into();
            r[6] = (r[6].as_i64().unwrap() - k * M).into();
            rows.push(r);
        }
    }
    si.set_dataset("BTCUSDT", Interval::M1, Dataset::new(rows.clone()));
    let (r, _t) = rest(&si);
    let pages = r.last_klines("BTCUSDT", Interval::M1, 2500).await.unwrap();
    assert_eq!(
        pages.iter().map(|p| p.rows).collect::<Vec<_>>(),
        [500, 1000, 1000],
        "oldest page first"
    );
    assert_eq!(pages[0].first_open, open_time(&rows[500]));
    assert_eq!(pages[2].last_open, open_time(&rows[2999]));
    let reqs = si.klines_requests();
    assert_eq!(reqs.len(), 3);
    assert!(
        !reqs[0].1.contains("endTime") && reqs[0].1.contains("limit=1000"),
        "{}",
        reqs[0].1
    );
    assert!(
        reqs[2]
            .1
            .contains(&format!("endTime={}", open_time(&rows[1000]) - 1))
            && reqs[2].1.contains("limit=500"),
        "{}",
        reqs[2].1
    );
    // the body is passed on exactly as served
    let want = serde_json::Value::Array(rows[2000..].to_vec()).to_string();
    assert_eq!(pages[2].body, want);
    // startTime paging
    let p = r
        .klines(
            "BTCUSDT",
            Interval::M1,
            Some(open_time(&rows[10])),
            Some(open_time(&rows[12])),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(
        (p.rows, p.first_open, p.last_open),
        (3, open_time(&rows[10]), open_time(&rows[12]))
    );
    assert!(r.used_weight() > 0, "weight header read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_honours_429_and_418_retry_after() {
    let si = StandIn::start().await.unwrap();
    si.set_dataset("BTCUSDT", Interval::M1, Dataset::new(rows_1m()));
    si.state()
        .fail_next
        .extend([(429, Some(1)), (418, Some(1))]);
    let (r, _t) = rest(&si);
    let t = Instant::now();
    let pages = r.last_klines("BTCUSDT", Interval::M1, 10).await.unwrap();
    assert_eq!(pages[0].rows, 10);
    let reqs = si.klines_requests();
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs[1].0 - reqs[0].0 >= Duration::from_secs(1),
        "waited Retry-After"
    );
    assert!(
        reqs[2].0 - reqs[1].0 >= Duration::from_secs(1),
        "waited Retry-After"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // a 400 (unknown symbol) is not retried
    let e = r.last_klines("NOPE", Interval::M1, 10).await.unwrap_err();
    assert!(e.is_permanent(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_retries_server_errors_and_stops_on_shutdown() {
    let si = StandIn::start().await.unwrap();
    si.set_dataset("BTCUSDT", Interval::M1, Dataset::new(rows_1m()));
    si.state().fail_next.extend([(500, None), (503, None)]);
    let (r, t) = rest(&si);
    assert_eq!(
        r.last_klines("BTCUSDT", Interval::M1, 5).await.unwrap()[0].rows,
        5
    );
    // endless 429 with a long Retry-After: shutdown interrupts the wait
    si.state().fail_next.extend([(429, Some(60))]);
    let h = tokio::spawn(async move { r.last_klines("BTCUSDT", Interval::M1, 5).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    t.trigger();
    let res = tokio::time::timeout(Duration::from_secs(1), h)
        .await
        .expect("stops")
        .unwrap();
    assert!(res.is_err());
    assert!(t0.elapsed() < Duration::from_millis(500));
}

/// WebSocket-only feeder (no bootstrap; redis unreachable does not matter for these checks).
fn ws_feeder(si: &StandIn, extra: &[&str]) -> Feeder {
    let p = closed_port();
    let mut a: Vec<String> = vec![
        "--symbols".into(),
        "BTCUSDT,ETHUSDT".into(),
        "--intervals".into(),
        "1m,1h".into(),
        "--bootstrap".into(),
        "0".into(),
        "--rest-url".into(),
        si.rest_url.clone(),
        "--ws-url".into(),
        si.ws_url.clone(),
        "--redis".into(),
        format!("redis://127.0.0.1:{p}"),
        "--backoff-min".into(),
        "20ms".into(),
        "--backoff-max".into(),
        "100ms".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    spawn_feeder(&a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_pings_watchdog_renewal_and_server_shutdown() {
    let si = StandIn::start().await.unwrap();
    let f = ws_feeder(&si, &["--ticks", "--ws-idle-timeout", "1500ms"]);
    assert!(
        si.wait_for(Duration::from_secs(10), |s| s.ws_connections.len() == 1)
            .await,
        "{}",
        f.log()
    );
    let path = si.state().ws_connections[0].clone();
    assert_eq!(path, "/stream?streams=btcusdt@kline_1m/btcusdt@kline_1h/ethusdt@kline_1m/ethusdt@kline_1h/btcusdt@aggTrade/ethusdt@aggTrade");
    // pings are answered
    si.send_ping();
    si.send_ping();
    assert!(
        si.wait_for(Duration::from_secs(2), |s| s.pongs >= 2).await,
        "pongs: {}",
        f.log()
    );
    // serverShutdown → reconnect at once
    si.send_frame(r#"{"e":"serverShutdown","E":1}"#);
    assert!(
        si.wait_for(Duration::from_secs(3), |s| s.ws_connections.len() == 2)
            .await,
        "{}",
        f.log()
    );
    // no frames for 1.5 s → watchdog reconnects
    let t = Instant::now();
    assert!(
        si.wait_for(Duration::from_secs(5), |s| s.ws_connections.len() == 3)
            .await,
        "{}",
        f.log()
    );
    assert!(
        t.elapsed() >= Duration::from_millis(1200),
        "{:?}",
        t.elapsed()
    );
    assert!(f.log().contains("no frame for"), "{}", f.log());
    // a dropped connection is re-opened
    si.drop_connections();
    assert!(
        si.wait_for(Duration::from_secs(3), |s| s.ws_connections.len() >= 4
            && s.ws_open == 1)
            .await,
        "{}",
        f.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_renewed_at_max_age_and_split_by_stream_count() {
    let si = StandIn::start().await.unwrap();
    let f = ws_feeder(
        &si,
        &["--ws-max-age", "800ms", "--streams-per-connection", "3"],
    );
    // 4 kline streams, 3 per connection → 2 connections
    assert!(
        si.wait_for(Duration::from_secs(10), |s| s.ws_open == 2)
            .await,
        "{}",
        f.log()
    );
    let mut paths = si.state().ws_connections.clone();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/stream?streams=btcusdt@kline_1m/btcusdt@kline_1h/ethusdt@kline_1m",
            "/stream?streams=ethusdt@kline_1h"
        ]
    );
    // both renewed after 800 ms, with no backoff
    assert!(
        si.wait_for(Duration::from_secs(3), |s| s.ws_connections.len() >= 4)
            .await,
        "{}",
        f.log()
    );
    assert!(
        f.log().contains("connection age limit reached"),
        "{}",
        f.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_streaming_exits_within_a_second() {
    let si = StandIn::start().await.unwrap();
    let mut f = ws_feeder(&si, &[]);
    assert!(
        si.wait_for(Duration::from_secs(10), |s| s.ws_open == 1)
            .await,
        "{}",
        f.log()
    );
    f.sigterm();
    let t = Instant::now();
    let st = tokio::task::block_in_place(|| f.wait_exit(Duration::from_secs(3))).expect("exits");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    assert!(st.success(), "{st:?}");
    assert!(f.log().contains("shutting down"), "{}", f.log());
}
