//! `make bench` (or `cargo bench --bench compare`): the module against the hand-written Redis
//! patterns it replaces, side by side, in one run against one redis-server.
//!
//! Starts its own `redis-server` (loopback, free port, no persistence) with the module
//! (`$CANDLES_MODULE`, else `<workspace>/target/release/libredis_candles.so`), loads real
//! Binance data, and measures
//!  1. bytes per official candle (100 k): series key vs a ZSET of JSON kline rows (ZADD NX);
//!  2. server cost per official candle ingested (INFO commandstats): OFFICIAL_ADD of 1000-row
//!     JSON batches vs one ZADD NX per candle;
//!  3. server cost of a 720-candle chart load: RANGE_MERGED COUNT 720 vs ZRANGEBYSCORE + GET;
//!  4. LIVE_UPDATE vs SET ... EX throughput of the same JSON kline row (redis-benchmark,
//!     pipelined), and the positional form;
//!  5. server cost per tick (INFO commandstats) of TICKS.PUSH, one JSON document a command and
//!     100, vs LPUSH + LTRIM of the same documents; TICKS.PUSH vs LPUSH+LTRIM and XADD MAXLEN ~
//!     throughput (redis-benchmark, info);
//!  6. bytes per tick, 100 streams x 1000 ticks: one tick book vs 100 lists of JSON;
//!  7. derived series: ingest into a 1m series feeding a 5m/1h/1d chain vs feeding nothing,
//!     live updates likewise, a chart read and bytes per candle of a derived series.
//!
//! Prints a table (measure | module | baseline | ratio | target | result) and exits 1 when a
//! target is missed. TICKS.* rows print "n/a" (and do not fail) when the module has no TICKS.*.
//! Env: `BENCH_SECS` (seconds per redis-benchmark run, default 2.5), `BENCH_REPEATS` (3),
//! `BENCH_DIR` (working dir for the server; its pid file is `redis.pid`), `BENCH_ONLY=ticks`
//! (phases 5 and 6 alone) or `BENCH_ONLY=derived` (phase 7 alone).
//!
//! Files: `server.rs` (the redis-server), `stats.rs` (INFO helpers), `bench.rs` (redis-benchmark
//! runner), `data.rs` (fixtures, shifted rows, tick docs), `table.rs` (results), and the phases:
//! `candles.rs` (1, 2), `chart.rs` (3, 4), `ticks.rs` (5, 6), `derived.rs` (7).

mod bench;
mod candles;
mod chart;
mod data;
mod derived;
mod server;
mod stats;
mod table;
mod ticks;

use bench::Bench;
use server::{Server, SERVER_PID};
use std::error::Error;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Instant;
use table::Table;

type R<T> = Result<T, Box<dyn Error>>;

const MIN: i64 = 60_000;
const N_REPS: usize = 100; // 100 x 1000 real 1m rows = 100 k candles
const SERIES_KEY: &str = "candles:BTCUSDT:1m";
const ZSET_KEY: &str = "klines:BTCUSDT:1m";
const LIVE_KEY: &str = "live_candle:BTCUSDT:1m";
const CHART: usize = 720;

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "?".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "?".into());
    format!(
        "machine: nproc {} | CPU {} | {} | {}",
        first_line("nproc", &[]),
        cpu,
        first_line("redis-server", &["--version"]),
        first_line("redis-benchmark", &["--version"])
    )
}

fn run(t: &mut Table) -> R<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let module = std::env::var_os("CANDLES_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/libredis_candles.so"));
    if !module.exists() {
        return Err(format!(
            "module not found at {} (cargo build --release)",
            module.display()
        )
        .into());
    }
    let dir = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".bench"));
    let env_f = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(d)
    };

    println!("{}", machine());
    let srv = Server::start(&module, &dir)?;
    let bench = Bench {
        port: srv.port,
        secs: env_f("BENCH_SECS", 2.5),
        repeats: env_f("BENCH_REPEATS", 3.0).max(1.0) as usize,
    };
    println!(
        "server: redis-server on 127.0.0.1:{} (--save \"\" --appendonly no), module {}; redis-benchmark -P 32 -c 4, {} s per run, median of {}",
        srv.port,
        module.display(),
        bench.secs,
        bench.repeats
    );
    println!(
        "data: 100k 1m candles = the 1000 real BTCUSDT 1m REST rows x {N_REPS}, open/close times shifted by 1000 min per repetition, prices untouched; \
         ticks from the real aggTrade capture (see benches/compare/data.rs::ticks)"
    );
    let mut meter = srv.conn()?;
    let built = ticks::has_ticks(&mut meter)?;
    let rows_1m = data::klines("1m")?;

    let t0 = Instant::now();
    if std::env::var("BENCH_ONLY").as_deref() == Ok("ticks") {
        ticks::tick_phases(&srv, &mut meter, &bench, t, built)?;
        eprintln!("[{:.0}s] ticks done", t0.elapsed().as_secs_f64());
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("derived") {
        derived::derived_phase(&srv, &mut meter, t, &rows_1m)?;
        eprintln!("[{:.0}s] derived series done", t0.elapsed().as_secs_f64());
        return Ok(());
    }
    candles::official_phases(&srv, &mut meter, t, &rows_1m)?;
    candles::other_intervals(&srv, &mut meter, t)?;
    eprintln!("[{:.0}s] official candles done", t0.elapsed().as_secs_f64());
    chart::chart_phase(&srv, &mut meter, &bench, t, &rows_1m)?;
    eprintln!(
        "[{:.0}s] chart and live updates done",
        t0.elapsed().as_secs_f64()
    );
    ticks::tick_phases(&srv, &mut meter, &bench, t, built)?;
    eprintln!("[{:.0}s] ticks done", t0.elapsed().as_secs_f64());
    derived::derived_phase(&srv, &mut meter, t, &rows_1m)?;
    eprintln!("[{:.0}s] derived series done", t0.elapsed().as_secs_f64());
    Ok(())
}

fn main() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let pid = SERVER_PID.load(Ordering::SeqCst);
        if pid != 0 {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        default_hook(info);
    }));
    // cargo bench passes --bench; nothing to parse.
    let mut t = Table::default();
    let r = run(&mut t);
    println!();
    t.print();
    match r {
        Err(e) => {
            eprintln!("bench error: {e}");
            std::process::exit(2);
        }
        Ok(()) if t.failed() > 0 => {
            println!("\n{} target(s) missed", t.failed());
            std::process::exit(1);
        }
        Ok(()) => println!("\nall targets met"),
    }
}
