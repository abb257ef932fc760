//! candles-feed at scale (not a test): `cargo bench -p candles-feed --bench scale_bench`.
//!
//! Needs `redis-server` and `redis-cli` on PATH and the module (`$CANDLES_MODULE`, else
//! `<workspace>/target/release/libredis_candles.so`). Measures:
//!  (a) the feeder with 1,000 symbols × {1m, 1h} (2,000 series) through the Binance stand-in
//!      into a real 3-master Redis Cluster (`--cluster`): bootstrap rate (candles/s), streaming
//!      throughput (WebSocket frames/s written), RSS of the process while streaming;
//!  (b) history back-fill of the same data two ways: the archive (`--history-from`, monthly
//!      zips verified by SHA-256) against REST paging (`--bootstrap N`, 1000 per request), in
//!      candles/s, one Redis server.
//!
//! The data: the 1000 recorded BTCUSDT 1m rows; for 1h and for the long series of (b) the same
//! rows repeated on earlier times (the prices are the recorded ones, only the times move).
//! `FEED_BENCH_QUICK=1` (what `make bench` sets) uses 200 symbols in (a) and 10 in (b).
//! Prints the figures; no target gates it.

use candles_core::Interval;
use candles_testkit::archive;
use candles_testkit::cluster::Cluster;
use candles_testkit::feeder::{rows_1m, Feeder, Redis};
use candles_testkit::server::module_path;
use candles_testkit::standin::{kline_frame, open_time, Dataset, StandIn};
use serde_json::Value;
use std::time::{Duration, Instant};

fn quick() -> bool {
    std::env::var("FEED_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn rss_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// `rows` repeated `times` times back to back, ending where `rows` ends, `step` ms apart.
fn repeated(rows: &[Value], times: usize, step: i64) -> Vec<Value> {
    let n = rows.len() as i64;
    let last = open_time(&rows[rows.len() - 1]);
    let first = last - (n * times as i64 - 1) * step;
    let mut out = Vec::with_capacity(rows.len() * times);
    for k in 0..times {
        for (i, r) in rows.iter().enumerate() {
            let mut r = r.clone();
            let t = first + (k as i64 * n + i as i64) * step;
            r[0] = t.into();
            r[6] = (t + step - 1).into();
            out.push(r);
        }
    }
    out
}

fn field_of(line: &str, name: &str) -> Option<f64> {
    let pat = format!("{name}=");
    let rest = &line[line.find(&pat)? + pat.len()..];
    rest.trim_start_matches('"')
        .split(|c: char| c == '"' || c.is_whitespace())
        .next()?
        .parse()
        .ok()
}

/// The last value of `name` on a log line containing `what`.
fn last_field(f: &Feeder, what: &str, name: &str) -> Option<f64> {
    f.log()
        .lines()
        .rev()
        .find(|l| l.contains(what))
        .and_then(|l| field_of(l, name))
}

async fn wait_log(f: &Feeder, what: &str, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if f.log().contains(what) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn base_args(si: &StandIn, redis: &str) -> Vec<String> {
    [
        "--redis",
        redis,
        "--rest-url",
        &si.rest_url,
        "--ws-url",
        &si.ws_url,
        "--progress",
        "log",
        "--weight-limit",
        "10000000",
        "--stats-interval",
        "100ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// (a): (symbols, bootstrap candles/s, frames/s, RSS MB, peak MB).
fn bench_cluster(rt: &tokio::runtime::Runtime) -> (usize, f64, f64, f64, f64) {
    let n_symbols: usize = if quick() { 200 } else { 1000 };
    let cluster = Cluster::start();
    rt.block_on(async {
        let si = StandIn::start().await.expect("stand-in");
        let rows = rows_1m();
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
        let mut args = base_args(&si, &cluster.seeds());
        args.extend(
            [
                "--cluster",
                "--symbols",
                &symbols.join(","),
                "--intervals",
                "1m,1h",
                "--bootstrap",
                "1000",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        let f = Feeder::spawn(env!("CARGO_BIN_EXE_candles-feed"), &args);
        let pid = f.child.id();
        assert!(
            wait_log(&f, "bootstrap done", Duration::from_secs(900)).await,
            "no bootstrap: {}",
            f.log()
        );
        let candles = last_field(&f, "bootstrap done", "candles").unwrap_or(0.0);
        let secs = last_field(&f, "bootstrap done", "seconds").unwrap_or(1.0);
        let boot_rate = candles / secs.max(1e-9);
        println!(
            "cluster bootstrap: {} series, {candles:.0} candles in {secs:.1} s = {boot_rate:.0} candles/s",
            n_symbols * 2
        );
        let conns = (n_symbols * 2).div_ceil(1024);
        assert!(si.wait_for(Duration::from_secs(30), |s| s.ws_open == conns).await);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let before = last_field(&f, "frames_per_sec", "frames").unwrap_or(0.0);
        // Streaming: bursts of live updates of every series, each burst small enough for the
        // stand-in's broadcast buffer; the feeder's own frame counter says when they are in.
        // 20,000 frames a burst: well under the stand-in's broadcast buffer and the feeder's
        // reader → writer queue (65,536 each), so neither overflows while the writer catches up.
        let bursts = if quick() { 60 } else { 120 };
        let per_burst = (20_000 / (n_symbols * 2)).max(1);
        let t = Instant::now();
        let mut sent = 0usize;
        for b in 0..bursts {
            for round in 0..per_burst {
                let e = (b * per_burst + round) as i64;
                for s in &symbols {
                    si.send_frame(kline_frame(s, Interval::M1, &rows[999], false, e));
                    si.send_frame(kline_frame(s, Interval::H1, &rows_h[999], false, e));
                    sent += 2;
                }
            }
            // Wait until the feeder has written all of it, or its counter stopped moving for
            // 300 ms (a frame the stand-in's broadcast skipped never comes), at most 5 s.
            let target = before + sent as f64;
            let end = Instant::now() + Duration::from_secs(5);
            let (mut last, mut still_since) = (-1.0, Instant::now());
            while Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let now = last_field(&f, "frames_per_sec", "frames").unwrap_or(0.0);
                if now >= target {
                    break;
                }
                if now != last {
                    (last, still_since) = (now, Instant::now());
                } else if still_since.elapsed() > Duration::from_millis(300) {
                    break;
                }
            }
        }
        let rss = rss_kb(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0;
        let hwm = rss_kb(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
        // all in: the counter reaches what was sent (frames lost to a lagging broadcast
        // buffer would never arrive: then the last count is taken)
        let end = Instant::now() + Duration::from_secs(20);
        let mut got = 0.0;
        while Instant::now() < end {
            got = last_field(&f, "frames_per_sec", "frames").unwrap_or(0.0) - before;
            if got >= sent as f64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = t.elapsed().as_secs_f64();
        let fps = got / elapsed;
        // Frames the feeder itself dropped (its reader → writer queue full) are logged; the
        // rest of what was not written never reached it (the stand-in's broadcast lagged).
        let dropped: u64 = f
            .log()
            .lines()
            .filter(|l| l.contains("dropping frames"))
            .filter_map(|l| field_of(l, "dropped"))
            .map(|d| d as u64)
            .max()
            .unwrap_or(0);
        println!("cluster streaming: the feeder's queue dropped at least {dropped} frames (logged every 1000th)");
        println!(
            "cluster streaming: {got:.0} of {sent} frames written in {elapsed:.1} s = {fps:.0} frames/s (stats counter, 100 ms resolution)"
        );
        drop(f);
        (n_symbols, boot_rate, fps, rss, hwm)
    })
}

/// (b): (candles per series, symbols, archive candles/s, REST candles/s, REST klines requests
/// of the archive run, of the REST run).
fn bench_history(rt: &tokio::runtime::Runtime) -> (usize, usize, f64, f64, usize, usize) {
    let n_symbols = if quick() { 10 } else { 40 };
    let times = 30; // 30,000 1m candles per series, about 21 days: two monthly files
    rt.block_on(async {
        let rows = repeated(&rows_1m(), times, 60_000);
        let n = rows.len();
        let symbols: Vec<String> = (0..n_symbols).map(|i| format!("HIS{i}USDT")).collect();
        let (y, m, d) = archive::civil(open_time(&rows[0]));
        let from = format!("{y:04}-{m:02}-{d:02}");
        let mut rates = Vec::new();
        let mut reqs = Vec::new();
        for mode in ["archive", "rest"] {
            let redis = Redis::start();
            let si = StandIn::start().await.expect("stand-in");
            si.set_fallback(Interval::M1, Dataset::new(rows.clone()));
            if mode == "archive" {
                for s in &symbols {
                    si.add_archive(archive::files(s, "1m", &rows, false));
                }
            }
            let mut args = base_args(&si, &redis.url());
            args.extend(
                ["--symbols", &symbols.join(","), "--intervals", "1m"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            let done = if mode == "archive" {
                args.extend(
                    [
                        "--bootstrap",
                        "0",
                        "--history-from",
                        &from,
                        "--archive-url",
                        &si.rest_url,
                    ]
                    .iter()
                    .map(|s| s.to_string()),
                );
                "archive back-fill done"
            } else {
                args.extend(["--bootstrap".to_string(), n.to_string()]);
                "bootstrap done"
            };
            let f = Feeder::spawn(env!("CARGO_BIN_EXE_candles-feed"), &args);
            assert!(
                wait_log(&f, done, Duration::from_secs(900)).await,
                "{mode}: {}",
                f.log()
            );
            let candles = last_field(&f, done, "candles").unwrap_or(0.0);
            let secs = last_field(&f, done, "seconds").unwrap_or(1.0);
            let rate = candles / secs.max(1e-9);
            let files = si.archive_requests().len();
            let klines = si.klines_requests().len();
            println!(
                "history {mode:7}: {n_symbols} series × {n} candles: {candles:.0} candles in {secs:.2} s = {rate:.0} candles/s, {files} archive requests, {klines} REST klines requests (weight {})",
                klines * 2
            );
            rates.push(rate);
            reqs.push(klines);
            drop(f);
        }
        (n, n_symbols, rates[0], rates[1], reqs[0], reqs[1])
    })
}

fn main() {
    let _ = module_path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    println!(
        "candles-feed scale benchmark (module {})",
        module_path().display()
    );
    let (n, boot, fps, rss, hwm) = bench_cluster(&rt);
    println!(
        "cluster {n} symbols × 1m,1h into 3 masters: bootstrap {boot:.0} candles/s, streaming {fps:.0} frames/s, RSS {rss:.1} MB (peak {hwm:.1} MB)"
    );
    let (per, syms, a, r, ra, rr) = bench_history(&rt);
    println!(
        "history {syms} series × {per} 1m candles: archive {a:.0} candles/s (REST weight {}) vs REST paging {r:.0} candles/s (REST weight {}): ×{:.1}",
        ra * 2,
        rr * 2,
        a / r.max(1e-9)
    );
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
