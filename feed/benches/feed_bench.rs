//! candles-feed benchmark (not a test): `cargo bench -p candles-feed --bench feed_bench`.
//!
//! Needs `redis-server` on PATH and the module (`$CANDLES_MODULE`, else
//! `<workspace>/target/release/libredis_candles.so`). Measures:
//!  (a) replay throughput (frames/s) of recorded and synthetic kline-heavy files,
//!  (b) WebSocket-frame-to-Redis latency p50/p99 on loopback (stand-in send → pipeline acked),
//!  (c) RSS of the feeder binary with 200 series (100 symbols × 1m,1h) bootstrapped and streaming.
//! Prints the figures; exits 1 if a target is missed (≥ 50k frames/s, p99 < 1 ms, < 30 MB RSS).
//! `FEED_BENCH_QUICK=1` shortens every part.

use candles_core::Interval;
use candles_feed::backoff::shutdown_pair;
use candles_feed::config::Args;
use candles_feed::Hooks;
use candles_testkit::feeder::{rows_1m, Feeder, Redis};
use candles_testkit::fixtures::text as fixture;
use candles_testkit::server::module_path;
use candles_testkit::standin::{kline_frame, open_time, Dataset, StandIn};
use clap::Parser;
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TARGET_FPS: f64 = 50_000.0;
const TARGET_P99_US: f64 = 1000.0;
const TARGET_RSS_MB: f64 = 30.0;

fn quick() -> bool {
    std::env::var("FEED_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn args(v: &[String]) -> Args {
    let mut all = vec!["candles-feed".to_string()];
    all.extend_from_slice(v);
    Args::parse_from(all)
}

/// (a) replay: returns frames/s of the recorded captures with ticks (the gated figure) and of
/// the synthetic kline-heavy file (every frame a module write: bound by redis-server's CPU).
fn bench_replay(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> (f64, f64) {
    let redis = Redis::start();
    // Recorded: the three captures concatenated, repeated.
    let mut recorded = String::new();
    for f in [
        "ws_capture_spot_2021-04-04_BTCUSDT_ETHUSDT_DOTUSDT.jsonl",
        "ws_capture_spot_2021-04-05_10symbols_bookTicker_aggTrade.jsonl",
        "ws_capture_spot_2021-10-12_4symbols.jsonl",
    ] {
        recorded.push_str(&fixture(f));
        if !recorded.ends_with('\n') {
            recorded.push('\n');
        }
    }
    let reps = if quick() { 2 } else { 8 };
    let rec_path = dir.join("recorded.jsonl");
    std::fs::write(&rec_path, recorded.repeat(reps)).unwrap();
    // Kline-heavy: every frame is a module write. 1000 real 1m rows × (x=false, x=true) per symbol.
    let rows = rows_1m();
    let symbols = if quick() { 10 } else { 60 };
    let kl_path = dir.join("klines.jsonl");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&kl_path).unwrap());
        for r in &rows {
            for s in 0..symbols {
                let sym = format!("SYM{s}USDT");
                writeln!(
                    w,
                    "{}",
                    kline_frame(&sym, Interval::M1, r, false, open_time(r) + 30_000)
                )
                .unwrap();
                writeln!(
                    w,
                    "{}",
                    kline_frame(&sym, Interval::M1, r, true, open_time(r) + 60_000)
                )
                .unwrap();
            }
        }
    }
    let mut out = Vec::new();
    for (name, path, extra) in [
        (
            "recorded captures (klines+aggTrade→TICKS, depth/bookTicker skipped)",
            &rec_path,
            vec!["--ticks"],
        ),
        ("recorded captures, candles only", &rec_path, vec![]),
        (
            "synthetic klines (every frame a module write)",
            &kl_path,
            vec![],
        ),
    ] {
        let mut a = vec![
            "--replay".to_string(),
            path.display().to_string(),
            "--redis".into(),
            redis.url(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        let a = args(&a);
        let (_t, s) = shutdown_pair();
        let stats = rt
            .block_on(candles_feed::app::replay(&a, path, &s))
            .unwrap();
        let fps = stats.frames as f64 / stats.elapsed.as_secs_f64();
        println!(
            "replay  {name}: {} frames, {} commands, {} refused in {:.3} s = {:.0} frames/s",
            stats.frames,
            stats.commands,
            stats.failed,
            stats.elapsed.as_secs_f64(),
            fps
        );
        out.push(fps);
    }
    (out[0], out[2])
}

/// (b) latency: returns (p50 µs, p99 µs, max µs).
fn bench_latency(rt: &tokio::runtime::Runtime) -> (f64, f64, f64) {
    let redis = Redis::start();
    // The stand-in runs on its own runtime (its own thread), as Binance is another machine.
    let srt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let si = srt.block_on(StandIn::start()).unwrap();
    rt.block_on(async {
        let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(Vec::new()));
        let lat: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
        let (s2, l2) = (sent.clone(), lat.clone());
        let hooks = Hooks {
            on_written: Some(Arc::new(
                move |frames: &[candles_feed::app::Utf8Bytes]| {
                    let now = Instant::now();
                    let sent = s2.lock().unwrap();
                    let mut lat = l2.lock().unwrap();
                    for f in frames {
                        // the stand-in put the sequence number in E
                        let seq = f
                            .split("\"E\":")
                            .nth(1)
                            .and_then(|r| r.split(',').next())
                            .and_then(|n| n.parse::<usize>().ok());
                        if let Some(Some(t)) = seq.and_then(|s| sent.get(s)) {
                            lat.push(now - *t);
                        }
                    }
                },
            )),
        };
        let a = args(&[
            "--symbols".into(),
            "BTCUSDT".into(),
            "--intervals".into(),
            "1m".into(),
            "--bootstrap".into(),
            "0".into(),
            "--redis".into(),
            redis.url(),
            "--rest-url".into(),
            si.rest_url.clone(),
            "--ws-url".into(),
            si.ws_url.clone(),
        ]);
        let (trigger, shutdown) = shutdown_pair();
        // The feeder gets its own thread and runtime, built like the binary's (main.rs).
        let feeder = std::thread::spawn(move || {
            let frt = candles_feed::runtime().expect("runtime");
            frt.block_on(candles_feed::run(a, shutdown, hooks))
        });
        assert!(
            si.wait_for(Duration::from_secs(10), |s| s.ws_open == 1)
                .await,
            "feeder did not connect"
        );
        let rows = rows_1m();
        let n = if quick() { 500 } else { rows.len() };
        let mut seq = 0usize;
        for r in rows.iter().take(n) {
            for closed in [false, true] {
                let frame = kline_frame("BTCUSDT", Interval::M1, r, closed, seq as i64);
                sent.lock().unwrap().push(Some(Instant::now()));
                si.send_frame(frame);
                seq += 1;
                tokio::time::sleep(Duration::from_micros(700)).await;
            }
        }
        let total = seq;
        let _ = si
            .wait_for(Duration::from_secs(5), |_| {
                lat.lock().unwrap().len() >= total
            })
            .await;
        trigger.trigger();
        let _ = tokio::task::spawn_blocking(move || feeder.join()).await;
        let mut l: Vec<f64> = lat
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.as_secs_f64() * 1e6)
            .collect();
        // the first 100 warm the connection up
        let l = if l.len() > 200 { l.split_off(100) } else { l };
        let mut l = l;
        l.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!("latency {} frames measured of {} sent", l.len(), total);
        (pct(0.50), pct(0.99), l.last().copied().unwrap_or(f64::NAN))
    })
}

fn rss_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// (c) RSS of the binary with 200 series; returns (steady RSS MB, peak MB).
fn bench_rss(rt: &tokio::runtime::Runtime) -> (f64, f64) {
    let redis = Redis::start();
    let n_symbols = 100;
    rt.block_on(async {
        let si = StandIn::start().await.unwrap();
        let rows = rows_1m();
        // 1h rows: the same numbers on hour boundaries
        let h0 = Interval::H1.align_down(open_time(&rows[0]));
        let rows_h: Vec<Value> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut r = r.clone();
                let t = h0 - (999 - i as i64) * 3_600_000;
                r[0] = t.into();
                r[6] = (t + 3_599_999).into();
                r
            })
            .collect();
        si.set_fallback(Interval::M1, Dataset::new(rows.clone()));
        si.set_fallback(Interval::H1, Dataset::new(rows_h.clone()));
        let symbols: Vec<String> = (0..n_symbols).map(|i| format!("SYM{i}USDT")).collect();
        let f = Feeder::spawn(
            env!("CARGO_BIN_EXE_candles-feed"),
            &[
                "--symbols".into(),
                symbols.join(","),
                "--intervals".into(),
                "1m,1h".into(),
                "--bootstrap".into(),
                "1000".into(),
                "--redis".into(),
                redis.url(),
                "--rest-url".into(),
                si.rest_url.clone(),
                "--ws-url".into(),
                si.ws_url.clone(),
                "--progress".into(),
                "log".into(),
                "--weight-limit".into(),
                "100000".into(),
            ],
        );
        let pid = f.child.id();
        let t = Instant::now();
        assert!(
            si.wait_for(Duration::from_secs(90), |s| s.ws_open == 1)
                .await,
            "feeder did not bootstrap/connect: {}",
            f.log()
        );
        println!(
            "rss     bootstrap of 200 series × 1000 candles took {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // stream: every series gets updates for a few seconds
        let rounds = if quick() { 5 } else { 20 };
        for round in 0..rounds {
            for s in &symbols {
                si.send_frame(kline_frame(s, Interval::M1, &rows[999], false, round));
                si.send_frame(kline_frame(s, Interval::H1, &rows_h[999], false, round));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss = rss_kb(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0;
        let hwm = rss_kb(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
        drop(f);
        (rss, hwm)
    })
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let _ = module_path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    println!(
        "candles-feed benchmark (module {})",
        module_path().display()
    );
    let (fps, fps_klines) = bench_replay(&rt, dir.path());
    let (p50, p99, max) = bench_latency(&rt);
    println!("latency ws frame → redis ack: p50 {p50:.0} µs, p99 {p99:.0} µs, max {max:.0} µs");
    let (rss, hwm) = bench_rss(&rt);
    println!(
        "rss     200 series (100 symbols × 1m,1h), streaming: RSS {rss:.1} MB (peak {hwm:.1} MB)"
    );
    println!();
    let checks = [
        (
            format!("replay throughput {fps:.0} frames/s >= {TARGET_FPS:.0}"),
            fps >= TARGET_FPS,
        ),
        (
            format!("latency p99 {p99:.0} µs < {TARGET_P99_US:.0} µs"),
            p99 < TARGET_P99_US,
        ),
        (
            format!("RSS {rss:.1} MB < {TARGET_RSS_MB:.0} MB"),
            rss > 0.0 && rss < TARGET_RSS_MB,
        ),
    ];
    println!("info replay of kline frames only (each a module write, redis-bound): {fps_klines:.0} frames/s");
    let mut ok = true;
    for (what, pass) in &checks {
        println!("{} {what}", if *pass { "PASS" } else { "FAIL" });
        ok &= pass;
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    if !ok {
        std::process::exit(1);
    }
}
