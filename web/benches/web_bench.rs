//! candles-web benchmark (not a test): `cargo bench -p candles-web --bench web_bench`.
//!
//! Needs `redis-server` on PATH and the module (`$CANDLES_MODULE`, else
//! `<workspace>/target/release/libredis_candles.so`). One redis-server with the module and
//! `notify-keyspace-events Kd`, the `candles-web` binary, 100 WebSocket viewers of one series
//! (the 1000 real BTCUSDT 1m rows). 1,000 times: a `CANDLE.LIVE_UPDATE` from a client, timed
//! from just before the command is sent until each of the 100 viewers has the `update`
//! message (the next write waits for all 100). Prints p50/p99 of those 100,000 deliveries and
//! of the slowest viewer per update, and the gateway's CPU time per update (user + system from
//! /proc over the 1,000 updates). Exits 1 if p99 misses its target (< 5 ms).
//! `WEB_BENCH_UPDATES=n` changes the count.

use candles_testkit::fixtures;
use candles_testkit::server::Server;
use candles_testkit::web::Web;
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "candle:{BTCUSDT}:1m";
const VIEWERS: usize = 100;
const TARGET_P99_MS: f64 = 5.0;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

fn main() {
    let updates: usize = std::env::var("WEB_BENCH_UPDATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let server = Server::start_with(&["--notify-keyspace-events", "Kd"], &[]);
    let mut c = server.conn();
    let body = fixtures::text("rest_klines_BTCUSDT_1m_limit1000.json");
    let rows: serde_json::Value = serde_json::from_str(&body).expect("fixture");
    let last = rows
        .as_array()
        .and_then(|r| r.last())
        .and_then(|r| r[0].as_i64())
        .expect("rows");
    let _: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
        .arg(KEY)
        .arg("INTERVAL")
        .arg("1m")
        .arg("JSON")
        .arg(body)
        .query(&mut c)
        .expect("load");
    let web = Web::spawn(
        env!("CARGO_BIN_EXE_candles-web"),
        &format!("redis://127.0.0.1:{}", server.port),
        &[],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (all, slowest, cpu) = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        for _ in 0..VIEWERS {
            let (mut ws, _) = tokio_tungstenite::connect_async(web.ws_url(KEY))
                .await
                .expect("viewer");
            // The snapshot first.
            loop {
                if let Some(Ok(Message::Text(_))) = ws.next().await {
                    break;
                }
            }
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(_) = m {
                        let _ = tx.send(Instant::now());
                    }
                }
            });
        }
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port)).unwrap();
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let t = (last + 60_000).to_string();
        let mut all = Vec::with_capacity(updates * VIEWERS);
        let mut slowest = Vec::with_capacity(updates);
        let warmup = 50;
        let mut cpu_start = web.cpu_time();
        for i in 0..warmup + updates {
            if i == warmup {
                cpu_start = web.cpu_time();
            }
            let vol = format!("{}.5", i + 1);
            let sent = Instant::now();
            let _: i64 = redis::cmd("CANDLE.LIVE_UPDATE")
                .arg(KEY)
                .arg(&t)
                .arg("57771.01")
                .arg("57790")
                .arg("57760")
                .arg("57785.5")
                .arg(&vol)
                .query_async(&mut conn)
                .await
                .expect("write");
            let mut worst = Duration::ZERO;
            for _ in 0..VIEWERS {
                let at = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                    .await
                    .expect("a viewer missed an update")
                    .expect("viewers gone");
                let d = at - sent;
                worst = worst.max(d);
                if i >= warmup {
                    all.push(d);
                }
            }
            if i >= warmup {
                slowest.push(worst);
            }
        }
        let cpu = web.cpu_time().saturating_sub(cpu_start);
        (all, slowest, cpu)
    });
    let (mut all, mut slowest) = (all, slowest);
    let p50 = pct(&mut all, 0.50);
    let p99 = pct(&mut all, 0.99);
    let s50 = pct(&mut slowest, 0.50);
    let s99 = pct(&mut slowest, 0.99);
    let cpu_us = cpu.as_secs_f64() * 1e6 / updates as f64;
    let pass = p99 < TARGET_P99_MS;
    println!("| measure | value | target | result |");
    println!("|---|---|---|---|");
    println!(
        "| candles-web push latency, module write → WebSocket viewer ({updates} updates × {VIEWERS} viewers) | p50 {p50:.2} ms, p99 {p99:.2} ms | p99 < {TARGET_P99_MS} ms | {} |",
        if pass { "PASS" } else { "FAIL" }
    );
    println!("|    same, the last of the {VIEWERS} viewers per update | p50 {s50:.2} ms, p99 {s99:.2} ms | (info) | info |");
    println!(
        "| candles-web CPU per update ({VIEWERS} viewers, user+system) | {cpu_us:.0} us ({:.1} us per viewer) | (info) | info |",
        cpu_us / VIEWERS as f64
    );
    drop(web);
    drop(server);
    if !pass {
        std::process::exit(1);
    }
}
