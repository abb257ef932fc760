//! candles-web against a real redis-server with the module: the API is exactly
//! `CANDLE.RANGE_MERGED … FORMAT JSON`, WebSocket viewers get a snapshot then every write as an
//! update, nothing is lost between the two, many viewers and a stalled one, SIGTERM.

mod common;

use candles_testkit::server::q;
use candles_testkit::web::{encode, http_get};
use common::*;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};

fn rdb_changes(c: &mut redis::Connection) -> i64 {
    candles_testkit::server::info_field(c, "persistence", "rdb_changes_since_last_save")
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

#[test]
fn api_equals_range_merged_and_errors_are_json() {
    let s = redis();
    let mut c = s.conn();
    load_1m(&mut c, KEY);
    let eth = "candle:{ETHUSDT}:1m";
    let _: i64 = q(
        &mut c,
        &[
            "CANDLE.LIVE_UPDATE",
            eth,
            "INTERVAL",
            "1m",
            "1725476820000",
            "2400",
            "2410",
            "2390",
            "2405",
            "7.5",
        ],
    )
    .unwrap();
    let _: () = q(&mut c, &["SET", "plain", "x"]).unwrap();
    let _: i64 = q(
        &mut c,
        &["TICKS.PUSH", "ticks:{binance}", "BTCUSDT", "1", "p", "1"],
    )
    .unwrap();
    let w = web(&s, &[]);
    let before = rdb_changes(&mut c);

    // /api/candles = RANGE_MERGED … FORMAT JSON, byte for byte.
    let k = encode(KEY);
    let cases: Vec<(String, &str, &str, Option<usize>)> = vec![
        (
            format!("/api/candles?key={k}&count=720"),
            "-",
            "+",
            Some(720),
        ),
        (format!("/api/candles?key={k}"), "-", "+", None),
        (
            format!("/api/candles?key={k}&from=1725417000000&to=1725420000000"),
            "1725417000000",
            "1725420000000",
            None,
        ),
        (format!("/api/candles?key={k}&count=5"), "-", "+", Some(5)),
        (format!("/api/candles?key={k}&count=0"), "-", "+", Some(0)),
        (
            format!("/api/candles?key={k}&from=1725417000000&to=1725420000000&count=10000"),
            "1725417000000",
            "1725420000000",
            Some(10000),
        ),
        (
            format!("/api/candles?key={k}&from=-&to=1725417000000&count=3"),
            "-",
            "1725417000000",
            Some(3),
        ),
        (
            format!("/api/candles?key={k}&from=1725476000000&to=%2B&count=10000"),
            "1725476000000",
            "+",
            Some(10000),
        ),
        (
            format!("/api/candles?key={}&count=10", encode(eth)),
            "-",
            "+",
            Some(10),
        ),
    ];
    for (path, from, to, count) in &cases {
        let key = if path.contains("ETHUSDT") { eth } else { KEY };
        let r = w.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body, range_json(&mut c, key, from, to, *count), "{path}");
    }
    let all = parse(&w.get(&format!("/api/candles?key={k}&count=10000")).body);
    assert_eq!(all.as_array().unwrap().len(), 1000);

    // /api/series: the candle series only, with interval and source (null: not derived).
    let r = w.get("/api/series");
    assert_eq!(r.status, 200);
    let list = parse(&r.body);
    assert_eq!(
        list,
        serde_json::json!([
            {"key": KEY, "interval": "1m", "source": null},
            {"key": eth, "interval": "1m", "source": null},
        ])
    );

    // Errors: JSON with a status.
    let errors = [
        ("/api/candles", 400, "missing 'key'"),
        (
            &*format!("/api/candles?key={k}&count=10001"),
            400,
            "'count' must be between 0 and 10000",
        ),
        (&*format!("/api/candles?key={k}&count=-1"), 400, "'count'"),
        (
            &*format!("/api/candles?key={k}&from=yesterday"),
            400,
            "'from'",
        ),
        (
            "/api/candles?key=missing",
            404,
            "no candle series at 'missing'",
        ),
        ("/api/candles?key=plain", 404, "no candle series at 'plain'"),
        (
            &*format!("/api/candles?key={}", encode("ticks:{binance}")),
            404,
            "no candle series",
        ),
        ("/nothing/here", 404, "no such endpoint"),
        ("/ws?key=missing", 404, "no candle series"),
    ];
    for (path, status, text) in errors {
        let r = w.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        let e = parse(&r.body);
        let msg = e["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {}", r.body));
        assert!(msg.contains(text), "{path}: {msg}");
    }

    // The page and its assets come from the binary; the page forbids other hosts.
    let page = w.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("lightweight-charts.js"));
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    for asset in [
        "/app.js",
        "/app.css",
        "/lightweight-charts.js",
        "/LICENSE.lightweight-charts",
    ] {
        let r = w.get(asset);
        assert_eq!(r.status, 200, "{asset}");
        assert!(r.body.len() > 100, "{asset}");
    }
    assert!(w
        .get("/LICENSE.lightweight-charts")
        .body
        .contains("Apache License"));

    // Read-only: nothing above wrote to Redis.
    assert_eq!(rdb_changes(&mut c), before, "candles-web wrote to Redis");
}

#[test]
fn key_pattern_narrows_what_is_served() {
    let s = redis();
    let mut c = s.conn();
    load_1m(&mut c, KEY);
    let eth = "candle:{ETHUSDT}:1m";
    let _: i64 = q(
        &mut c,
        &[
            "CANDLE.LIVE_UPDATE",
            eth,
            "INTERVAL",
            "1m",
            "1725476820000",
            "2400",
            "2410",
            "2390",
            "2405",
            "7.5",
        ],
    )
    .unwrap();
    let w = web(&s, &["--keys", "candle:{BTC*"]);
    let list = parse(&w.get("/api/series").body);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["key"], KEY);
    assert_eq!(
        w.get(&format!("/api/candles?key={}&count=1", encode(KEY)))
            .status,
        200
    );
    let r = w.get(&format!("/api/candles?key={}&count=1", encode(eth)));
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(w.get(&format!("/ws?key={}", encode(eth))).status, 404);
}

#[test]
fn a_range_beyond_max_count_is_refused_not_cut() {
    let s = redis();
    let mut c = s.conn();
    load_1m(&mut c, KEY);
    let w = web(&s, &["--max-count", "500"]);
    let k = encode(KEY);
    let r = w.get(&format!("/api/candles?key={k}"));
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(parse(&r.body)["error"]
        .as_str()
        .unwrap()
        .contains("more than 500"));
    // With a count, or a narrower range, it answers.
    assert_eq!(
        w.get(&format!("/api/candles?key={k}&count=500")).body,
        range_json(&mut c, KEY, "-", "+", Some(500))
    );
    let r = w.get(&format!("/api/candles?key={k}&from=1725446820000"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, range_json(&mut c, KEY, "1725446820000", "+", None));
    assert_eq!(
        w.get(&format!("/api/candles?key={k}&count=501")).status,
        400
    );
}

/// The candle at `t` as `RANGE_MERGED t t FORMAT JSON` gives it.
fn candle_at(c: &mut redis::Connection, key: &str, t: i64) -> Value {
    let v = parse(&range_json(c, key, &t.to_string(), &t.to_string(), None));
    v[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_every_write_as_an_update() {
    let s = redis();
    let mut c = s.conn();
    let last = load_1m(&mut c, KEY);
    let w = web(&s, &[]);
    let mut ws = connect(&w, KEY).await;
    let snap = next_msg(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["key"], KEY);
    assert_eq!(
        snap["candles"],
        parse(&range_json(&mut c, KEY, "-", "+", Some(720)))
    );
    assert_eq!(snap["candles"].as_array().unwrap().len(), 720);

    let t = last + M;
    let ts = t.to_string();
    // LIVE_UPDATE: the new live candle.
    let n: i64 = q(
        &mut c,
        &[
            "CANDLE.LIVE_UPDATE",
            KEY,
            &ts,
            "57771.01",
            "57790",
            "57760",
            "57785.5",
            "3.2",
        ],
    )
    .unwrap();
    assert_eq!(n, 1);
    let u = next_msg(&mut ws).await;
    assert_eq!(u["type"], "update");
    assert_eq!(u["key"], KEY);
    assert_eq!(u["candles"], serde_json::json!([candle_at(&mut c, KEY, t)]));
    assert_eq!(u["candles"][0]["status"], "live");
    assert_eq!(u["candles"][0]["close"], "57785.5");

    // LIVE_TICK: the same live candle, changed.
    let n: i64 = q(
        &mut c,
        &[
            "CANDLE.LIVE_TICK",
            KEY,
            &(t + 5123).to_string(),
            "57795.2",
            "0.01",
        ],
    )
    .unwrap();
    assert_eq!(n, 1);
    let u = next_msg(&mut ws).await;
    assert_eq!(u["candles"], serde_json::json!([candle_at(&mut c, KEY, t)]));
    assert_eq!(u["candles"][0]["high"], "57795.2");
    assert_eq!(u["candles"][0]["status"], "live");

    // OFFICIAL_ADD: the official candle replaces the live one at the same open time.
    let n: i64 = q(
        &mut c,
        &[
            "CANDLE.OFFICIAL_ADD",
            KEY,
            &ts,
            "57771.01",
            "57800",
            "57750",
            "57790",
            "12.5",
        ],
    )
    .unwrap();
    assert_eq!(n, 1);
    let u = next_msg(&mut ws).await;
    assert_eq!(u["candles"], serde_json::json!([candle_at(&mut c, KEY, t)]));
    assert_eq!(u["candles"][0]["open_time"], t);
    assert_eq!(u["candles"][0]["status"], "official");

    // A write that changes nothing (R2: a live candle older than the newest official) sends
    // nothing; the next real one does.
    let n: i64 = q(
        &mut c,
        &["CANDLE.LIVE_UPDATE", KEY, &ts, "1", "1", "1", "1", "1"],
    )
    .unwrap();
    assert_eq!(n, 0);
    let t2 = t + M;
    let _: i64 = q(
        &mut c,
        &[
            "CANDLE.LIVE_UPDATE",
            KEY,
            &t2.to_string(),
            "57790",
            "57791",
            "57789",
            "57790",
            "0.5",
        ],
    )
    .unwrap();
    let u = next_msg(&mut ws).await;
    assert_eq!(
        u["candles"],
        serde_json::json!([candle_at(&mut c, KEY, t2)])
    );

    // A gap filled in the past arrives too (an official candle re-written older than the tail).
    let old = last - 100 * M;
    let _: i64 = q(
        &mut c,
        &[
            "CANDLE.OFFICIAL_ADD",
            KEY,
            &old.to_string(),
            "1",
            "2",
            "0.5",
            "1.5",
            "9",
        ],
    )
    .unwrap();
    let u = next_msg(&mut ws).await;
    assert_eq!(
        u["candles"],
        serde_json::json!([candle_at(&mut c, KEY, old)])
    );
    ws.close(None).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_lost_between_snapshot_and_updates_and_reconnects_resync() {
    let s = redis();
    let mut c = s.conn();
    let last = load_1m(&mut c, KEY);
    let w = web(&s, &[]);
    // A writer ticks the live candles of the next minutes while viewers join at random points.
    let port = s.port;
    let writer = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        for i in 0..1500i64 {
            let t = last + M + i * 200; // 300 ticks per minute: five live candles
            let price = format!("{}.{}", 57000 + (i * 37) % 900, i % 100);
            let _: i64 = q(
                &mut c,
                &["CANDLE.LIVE_TICK", KEY, &t.to_string(), &price, "0.01"],
            )
            .unwrap();
            if i % 300 == 299 {
                // Close the minute: its official replaces the live candle.
                let open = last + M + (i / 300) * M;
                let _: i64 = q(
                    &mut c,
                    &[
                        "CANDLE.OFFICIAL_ADD",
                        KEY,
                        &open.to_string(),
                        "57000",
                        "58000",
                        "56000",
                        "57500",
                        "3",
                    ],
                )
                .unwrap();
            }
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let mut viewers = Vec::new();
    for _ in 0..6 {
        viewers.push((connect(&w, KEY).await, Picture::default()));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    // Reconnects resynchronise: one viewer drops and comes back mid-stream.
    let (mut ws0, _) = viewers.remove(0);
    let _ = next_msg(&mut ws0).await;
    ws0.close(None).await.ok();
    drop(ws0);
    viewers.push((connect(&w, KEY).await, Picture::default()));
    writer.join().unwrap();
    // A last write everyone must see, then every picture must equal Redis' window.
    let marker = last + 10 * M;
    let _: i64 = q(
        &mut c,
        &[
            "CANDLE.LIVE_UPDATE",
            KEY,
            &marker.to_string(),
            "1",
            "2",
            "1",
            "2",
            "42",
        ],
    )
    .unwrap();
    let truth: Vec<Value> =
        serde_json::from_str(&range_json(&mut c, KEY, "-", "+", Some(720))).unwrap();
    for (i, (ws, pic)) in viewers.iter_mut().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while pic.0.get(&marker).map(|m| m["volume"] == "42") != Some(true) {
            assert!(
                Instant::now() < deadline,
                "viewer {i} never saw the last write"
            );
            let m = next_msg(ws).await;
            pic.apply(&m);
        }
        let mine: Vec<Value> = pic.0.values().rev().take(720).rev().cloned().collect();
        assert_eq!(mine.len(), 720, "viewer {i}");
        assert_eq!(mine, truth, "viewer {i}: its picture differs from Redis");
    }
}

/// Re-writes the newest 720 officials with other volumes: one update of 720 candles (~110 KB).
fn rewrite_window(c: &mut redis::Connection, round: usize) {
    let rows: Vec<Value> = serde_json::from_str(&candles_testkit::fixtures::text(
        "rest_klines_BTCUSDT_1m_limit1000.json",
    ))
    .unwrap();
    let body: Vec<Value> = rows
        .iter()
        .skip(280)
        .map(|r| {
            let mut r = r.clone();
            r[5] = Value::String(format!("{}{}", r[5].as_str().unwrap(), round + 1));
            r
        })
        .collect();
    let _: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
        .arg(KEY)
        .arg("JSON")
        .arg(serde_json::to_string(&body).unwrap())
        .query(c)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_viewers_and_a_stalled_one() {
    let s = redis();
    let mut c = s.conn();
    let last = load_1m(&mut c, KEY);
    let w = web(&s, &["--viewer-queue", "300"]);
    // The stalled viewer: a tiny receive buffer, and it never reads. Alone at first, it is
    // sent 60 window rewrites (~6.6 MB): more than the sockets hold, so the gateway's writes
    // to it block and its queue fills up.
    let stalled = {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let stream = sock.connect(([127, 0, 0, 1], w.port).into()).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(w.ws_url(KEY), stream)
            .await
            .unwrap();
        ws
    };
    for round in 0..60 {
        rewrite_window(&mut c, round);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // 100 viewers join and time 200 updates each, while the stalled one stays blocked.
    let mut viewers = Vec::new();
    for _ in 0..100 {
        let mut ws = connect(&w, KEY).await;
        assert_eq!(next_msg(&mut ws).await["type"], "snapshot");
        viewers.push(ws);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let mut readers = Vec::new();
    for (i, mut ws) in viewers.into_iter().enumerate() {
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            let mut got = 0usize;
            while let Some(Ok(m)) = ws.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    let _ = tx.send((i, Instant::now()));
                    got += 1;
                    if v["candles"][0]["volume"] == "999" {
                        break;
                    }
                }
            }
            got
        }));
    }
    drop(tx);
    let t = last + M;
    let mut lat = Vec::new();
    let total = 350;
    for i in 0..total {
        let vol = if i == total - 1 {
            "999".to_string()
        } else {
            format!("{}", i + 1)
        };
        let sent = Instant::now();
        let _: i64 = q(
            &mut c,
            &[
                "CANDLE.LIVE_UPDATE",
                KEY,
                &t.to_string(),
                "1",
                "3",
                "1",
                "2",
                &vol,
            ],
        )
        .unwrap();
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 100 {
            let (v, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a viewer missed an update")
                .expect("readers ended");
            assert!(seen.insert(v), "viewer {v} got one write twice");
            if i < 200 {
                lat.push(at - sent);
            }
        }
    }
    for r in readers {
        let got = tokio::time::timeout(Duration::from_secs(10), r)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, total, "every viewer gets every update");
    }
    lat.sort();
    let p99 = lat[lat.len() * 99 / 100];
    eprintln!(
        "100 viewers, one stalled: p50 {:?} p99 {:?}",
        lat[lat.len() / 2],
        p99
    );
    assert!(p99 < Duration::from_millis(250), "p99 {p99:?}");
    // By now the stalled viewer's queue (300) overflowed: it was dropped.
    let log = w.log();
    assert!(
        log.contains("viewer too slow (queue full): dropped"),
        "the stalled viewer was not dropped:\n{log}"
    );
    assert_eq!(log.matches("viewer too slow").count(), 1, "{log}");
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_beyond_the_limit_get_503() {
    let s = redis();
    let mut c = s.conn();
    load_1m(&mut c, KEY);
    let w = web(&s, &["--max-viewers", "2"]);
    let mut a = connect(&w, KEY).await;
    let mut b = connect(&w, KEY).await;
    let _ = next_msg(&mut a).await;
    let _ = next_msg(&mut b).await;
    let r = http_get(w.port, &format!("/ws?key={}", encode(KEY)));
    // A plain GET is not an upgrade.
    assert_eq!(r.status, 426, "{}", r.body);
    let third = tokio_tungstenite::connect_async(w.ws_url(KEY)).await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("third viewer: {:?}", other.map(|_| ())),
    }
    a.close(None).await.ok();
    drop(a);
    // Its slot frees once it has gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(w.ws_url(KEY)).await {
            assert_eq!(next_msg(&mut ws).await["type"], "snapshot");
            break;
        }
        assert!(Instant::now() < deadline, "slot not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_it_within_a_second() {
    let s = redis();
    let mut c = s.conn();
    load_1m(&mut c, KEY);
    let mut w = web(&s, &[]);
    let mut viewers = Vec::new();
    for _ in 0..3 {
        let mut ws = connect(&w, KEY).await;
        let _ = next_msg(&mut ws).await;
        viewers.push(ws);
    }
    let start = Instant::now();
    w.sigterm();
    let st = w
        .wait_exit(Duration::from_secs(2))
        .expect("still running 2 s after SIGTERM");
    let took = start.elapsed();
    assert!(st.success(), "{st}: {}", w.log());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(w.log().contains("shutting down"), "{}", w.log());
    // The viewers were told (close frame) or saw the socket end.
    for mut ws in viewers {
        let end = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match ws.next().await {
                    None | Some(Err(_)) => return None,
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f))) => {
                        return f.map(|f| u16::from(f.code))
                    }
                    _ => {}
                }
            }
        })
        .await
        .expect("viewer socket still open");
        if let Some(code) = end {
            assert_eq!(code, 1001);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_auth_comes_from_the_url() {
    let s = redis();
    let mut c = s.conn();
    // A password from now on (this connection stays authenticated).
    let _: () = q(&mut c, &["CONFIG", "SET", "requirepass", "s3cret"]).unwrap();
    let last = load_1m(&mut c, KEY);
    let w = candles_testkit::web::Web::spawn(
        BIN,
        &format!("redis://:s3cret@127.0.0.1:{}", s.port),
        &[],
    );
    assert!(
        !w.log().contains("s3cret"),
        "the password is logged:\n{}",
        w.log()
    );
    assert_eq!(parse(&w.get("/api/series").body)[0]["key"], KEY);
    let mut ws = connect(&w, KEY).await;
    assert_eq!(next_msg(&mut ws).await["type"], "snapshot");
    let t = (last + M).to_string();
    let _: i64 = q(
        &mut c,
        &["CANDLE.LIVE_UPDATE", KEY, &t, "1", "2", "1", "2", "3"],
    )
    .unwrap();
    assert_eq!(next_msg(&mut ws).await["candles"][0]["status"], "live");
    // A wrong password is a clear, retried error, not a crash.
    let mut bad = candles_testkit::web::Web::spawn_unready(
        BIN,
        &format!("redis://:wrong@127.0.0.1:{}", s.port),
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bad.log().contains("Redis not reachable yet") {
        assert!(Instant::now() < deadline, "{}", bad.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !bad.log().contains("wrong"),
        "the password is logged:\n{}",
        bad.log()
    );
    bad.sigterm();
    assert!(
        bad.wait_exit(Duration::from_secs(2)).is_some(),
        "SIGTERM while connecting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_survived_and_resubscribed() {
    let mut s = redis();
    let mut c = s.conn();
    let last = load_1m(&mut c, KEY);
    let w = web(&s, &[]);
    let mut ws = connect(&w, KEY).await;
    assert_eq!(next_msg(&mut ws).await["type"], "snapshot");
    // An empty server comes back on the same port (nothing persisted).
    s.restart("NOSAVE");
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.log().matches("subscribed to keyspace events").count() < 2 {
        assert!(Instant::now() < deadline, "not resubscribed:\n{}", w.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut c = s.conn();
    let t = last + M;
    let _: i64 = q(
        &mut c,
        &[
            "CANDLE.LIVE_UPDATE",
            KEY,
            "INTERVAL",
            "1m",
            &t.to_string(),
            "1",
            "2",
            "1",
            "2",
            "3",
        ],
    )
    .unwrap();
    let u = next_msg(&mut ws).await;
    assert_eq!(u["type"], "update");
    assert_eq!(
        u["candles"],
        parse(&range_json(&mut c, KEY, "-", "+", None))
    );
    // And the API reads through the reconnected connection.
    let r = w.get(&format!("/api/candles?key={}", encode(KEY)));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, range_json(&mut c, KEY, "-", "+", None));
}
