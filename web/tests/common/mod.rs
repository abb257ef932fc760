//! What candles-web's test files share: a module-loaded Redis that publishes the module's
//! keyspace events, the gateway process, series filled from the recorded Binance data, and a
//! WebSocket viewer.
#![allow(dead_code)]

use candles_testkit::fixtures;
use candles_testkit::server::Server;
use candles_testkit::web::Web;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub const BIN: &str = env!("CARGO_BIN_EXE_candles-web");
pub const KEY: &str = "candle:{BTCUSDT}:1m";
pub const M: i64 = 60_000;

/// redis-server with the module and `notify-keyspace-events Kd` (as the repository's redis.conf).
pub fn redis() -> Server {
    Server::start_with(&["--notify-keyspace-events", "Kd"], &[])
}

pub fn url(s: &Server) -> String {
    format!("redis://127.0.0.1:{}", s.port)
}

pub fn web(s: &Server, extra: &[&str]) -> Web {
    Web::spawn(BIN, &url(s), extra)
}

/// Stores the 1000 real BTCUSDT 1m REST rows (2024-09-04, all closed) at `key`; returns the
/// open time of the newest.
pub fn load_1m(c: &mut redis::Connection, key: &str) -> i64 {
    let body = fixtures::text("rest_klines_BTCUSDT_1m_limit1000.json");
    let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
        .arg(key)
        .arg("INTERVAL")
        .arg("1m")
        .arg("JSON")
        .arg(body)
        .query(c)
        .unwrap();
    assert_eq!(n, 1000);
    let rows: Value =
        serde_json::from_str(&fixtures::text("rest_klines_BTCUSDT_1m_limit1000.json")).unwrap();
    rows.as_array().unwrap().last().unwrap()[0]
        .as_i64()
        .unwrap()
}

/// `CANDLE.RANGE_MERGED key from to [COUNT n] FORMAT JSON` as Redis returns it.
pub fn range_json(
    c: &mut redis::Connection,
    key: &str,
    from: &str,
    to: &str,
    count: Option<usize>,
) -> String {
    let mut cmd = redis::cmd("CANDLE.RANGE_MERGED");
    cmd.arg(key).arg(from).arg(to);
    if let Some(n) = count {
        cmd.arg("COUNT").arg(n);
    }
    cmd.arg("FORMAT").arg("JSON");
    cmd.query(c).unwrap()
}

pub fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(w: &Web, key: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(w.ws_url(key)),
    )
    .await
    .expect("connect timed out")
    .expect("connect");
    ws
}

/// The next JSON text message (10 s at most).
pub async fn next_msg(ws: &mut Ws) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, ws.next())
            .await
            .expect("no message within 10 s")
            .expect("socket closed")
            .expect("socket error");
        match m {
            Message::Text(t) => return parse(t.as_str()),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => continue,
        }
    }
}

/// A viewer's picture of the series: snapshot, then updates applied by open time.
#[derive(Default)]
pub struct Picture(pub std::collections::BTreeMap<i64, Value>);

impl Picture {
    pub fn apply(&mut self, msg: &Value) {
        if msg["type"] == "snapshot" {
            self.0.clear();
        }
        for c in msg["candles"].as_array().expect("candles") {
            self.0
                .insert(c["open_time"].as_i64().expect("open_time"), c.clone());
        }
    }
}
