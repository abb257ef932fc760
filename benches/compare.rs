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
//!  5. TICKS.PUSH vs LPUSH+LTRIM and XADD MAXLEN ~ throughput (redis-benchmark);
//!  6. bytes per tick, 100 streams x 1000 ticks: one tick book vs 100 lists of JSON.
//!
//! Prints a table (measure | module | baseline | ratio | target | result) and exits 1 when a
//! target is missed. TICKS.* rows print "n/a" (and do not fail) when the module has no TICKS.*.
//! Env: `BENCH_SECS` (seconds per redis-benchmark run, default 2.5), `BENCH_REPEATS` (3),
//! `BENCH_DIR` (working dir for the server; its pid file is `redis.pid`).

use redis::{Connection, Value};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

type R<T> = Result<T, Box<dyn Error>>;

const MIN: i64 = 60_000;
const N_REPS: usize = 100; // 100 x 1000 real 1m rows = 100 k candles
const SERIES_KEY: &str = "candles:BTCUSDT:1m";
const ZSET_KEY: &str = "klines:BTCUSDT:1m";
const LIVE_KEY: &str = "live_candle:BTCUSDT:1m";
const CHART: usize = 720;

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// Pid of our redis-server, killed by the panic hook too.
static SERVER_PID: AtomicU32 = AtomicU32::new(0);

struct Server {
    child: Child,
    port: u16,
    pidfile: PathBuf,
}

impl Server {
    fn start(module: &Path, dir: &Path) -> R<Server> {
        std::fs::create_dir_all(dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pidfile = dir.join("redis.pid");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--dir",
                &dir.to_string_lossy(),
                "--pidfile",
                &pidfile.to_string_lossy(),
            ])
            .args([
                "--loglevel",
                "warning",
                "--logfile",
                &dir.join("redis.log").to_string_lossy(),
            ])
            .arg("--loadmodule")
            .arg(module)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        SERVER_PID.store(child.id(), Ordering::SeqCst);
        let mut s = Server {
            child,
            port,
            pidfile,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = s.conn() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return Ok(s);
                }
            }
            if let Some(st) = s.child.try_wait()? {
                return Err(format!(
                    "redis-server exited ({st}); see {}",
                    dir.join("redis.log").display()
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err("redis-server did not answer PING within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn conn(&self) -> R<Connection> {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        Ok(c.get_connection_with_timeout(Duration::from_secs(5))?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pidfile);
        SERVER_PID.store(0, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// INFO helpers
// ---------------------------------------------------------------------------------------------

fn info(c: &mut Connection, section: &str) -> R<String> {
    Ok(redis::cmd("INFO").arg(section).query::<String>(c)?)
}

fn used_memory(c: &mut Connection) -> R<i64> {
    let s = info(c, "memory")?;
    s.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no used_memory in INFO memory".into())
}

/// `cmdstat_<name>` → (calls, usec), names lowercased (module commands appear as registered).
fn cmdstats(c: &mut Connection) -> R<HashMap<String, (u64, u64)>> {
    let s = info(c, "commandstats")?;
    let mut out = HashMap::new();
    for l in s.lines() {
        let Some((name, rest)) = l.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else {
            continue;
        };
        let field = |k: &str| {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')?.parse::<u64>().ok())
        };
        if let (Some(calls), Some(usec)) = (field("calls"), field("usec")) {
            out.insert(name.to_ascii_lowercase(), (calls, usec));
        }
    }
    Ok(out)
}

/// usec per call of one command from a commandstats snapshot.
fn per_call(stats: &HashMap<String, (u64, u64)>, name: &str) -> R<(u64, f64)> {
    match stats.get(name) {
        Some(&(calls, usec)) if calls > 0 => Ok((calls, usec as f64 / calls as f64)),
        _ => Err(format!("no calls of '{name}' in INFO commandstats").into()),
    }
}

fn reset_stats(c: &mut Connection) -> R<()> {
    redis::cmd("CONFIG").arg("RESETSTAT").query::<()>(c)?;
    Ok(())
}

fn memory_usage(c: &mut Connection, key: &str) -> R<i64> {
    Ok(redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query::<i64>(c)?)
}

/// used_memory after the writer connections are gone (their buffers freed).
fn settled_memory(c: &mut Connection) -> R<i64> {
    std::thread::sleep(Duration::from_millis(300));
    used_memory(c)
}

// ---------------------------------------------------------------------------------------------
// redis-benchmark
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Bench {
    port: u16,
    secs: f64,
    repeats: usize,
}

impl Bench {
    /// One redis-benchmark run; requests per second.
    fn run(&self, n: u64, pipeline: u32, clients: u32, cmd: &[String]) -> R<f64> {
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-n",
                &n.to_string(),
                "-P",
                &pipeline.to_string(),
                "-c",
                &clients.to_string(),
                "--csv",
            ])
            .args(cmd)
            .stdin(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "redis-benchmark failed: {}{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        // Last CSV row: "<test>","rps","avg",... (the test name may itself contain commas).
        let row = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or("redis-benchmark printed nothing")?;
        let fields: Vec<&str> = row.rsplitn(8, ',').collect();
        let rps = fields
            .get(6)
            .and_then(|f| f.trim_matches('"').parse::<f64>().ok())
            .ok_or_else(|| format!("cannot parse redis-benchmark output: {row}"))?;
        Ok(rps)
    }

    /// Requests count that runs about `secs` seconds, from a short probe.
    fn calibrate(&self, cmd: &[String], pipeline: u32) -> R<u64> {
        let probe_n = if pipeline > 1 { 50_000 } else { 5_000 };
        let probe = self.run(probe_n, pipeline, 4, cmd)?;
        Ok(((probe * self.secs) as u64).clamp(probe_n, 20_000_000))
    }

    /// Runs every command `repeats` times (pipeline depth `pipeline`, 4 clients),
    /// interleaved (A B C, A B C, ...) so slow drift of a shared machine hits all alike;
    /// returns the median rps of each and its spread.
    fn medians(&self, cmds: &[&[String]], pipeline: u32) -> R<Vec<Throughput>> {
        self.medians_with(cmds, pipeline, &[], |_| Ok(()))
    }

    /// `medians`, with at most `max_n[i]` requests per run of command `i` (when given) and
    /// `after(i)` called after each of its runs (outside the measured run).
    fn medians_with(
        &self,
        cmds: &[&[String]],
        pipeline: u32,
        max_n: &[Option<u64>],
        mut after: impl FnMut(usize) -> R<()>,
    ) -> R<Vec<Throughput>> {
        let mut ns = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            let n = self.calibrate(c, pipeline)?;
            after(i)?;
            ns.push(max_n.get(i).copied().flatten().map_or(n, |m| n.min(m)));
        }
        let mut runs: Vec<Vec<f64>> = vec![Vec::new(); cmds.len()];
        for _ in 0..self.repeats {
            for (i, cmd) in cmds.iter().enumerate() {
                runs[i].push(self.run(ns[i], pipeline, 4, cmd)?);
                after(i)?;
            }
        }
        Ok(runs
            .into_iter()
            .map(|mut v| {
                v.sort_by(|a, b| a.total_cmp(b));
                Throughput {
                    median: v[v.len() / 2],
                    min: v[0],
                    max: v[v.len() - 1],
                }
            })
            .collect())
    }
}

#[derive(Clone, Copy)]
struct Throughput {
    median: f64,
    min: f64,
    max: f64,
}

impl Throughput {
    fn spread(&self) -> String {
        format!("{} .. {}", k(self.min), k(self.max))
    }
}

fn k(rps: f64) -> String {
    format!("{:.0}k/s", rps / 1000.0)
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

fn fixture(name: &str) -> R<String> {
    let p = candles_testkit::fixtures::path(name);
    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()).into())
}

fn klines(interval: &str) -> R<Vec<Json>> {
    let rows: Vec<Json> = serde_json::from_str(&fixture(&format!(
        "rest_klines_BTCUSDT_{interval}_limit1000.json"
    ))?)?;
    if rows.len() != 1000 || rows.iter().any(|r| r.as_array().map(Vec::len) != Some(12)) {
        return Err(format!("{interval} fixture: expected 1000 rows of 12 fields").into());
    }
    Ok(rows)
}

/// A row with open and close times shifted by `shift` ms (prices untouched).
fn shifted(row: &Json, shift: i64) -> Json {
    let mut r = row.clone();
    for i in [0, 6] {
        let t = r[i].as_i64().unwrap_or(0);
        r[i] = Json::from(t + shift);
    }
    r
}

/// The row's `t o h l c v` as positional arguments.
fn positional(row: &Json) -> Vec<String> {
    (0..6)
        .map(|i| match &row[i] {
            Json::String(s) => s.clone(),
            v => v.to_string(),
        })
        .collect()
}

/// Ticks in the original design's shape, `n_streams` x `per_stream`, from the real aggTrade
/// capture: each stream follows one symbol's real trade prices and times (consecutive trades,
/// starting at a stream-specific offset; when a stream wraps past the symbol's last trade,
/// times continue shifted by the capture's span). `lp` = trade price, `pc` = % change from
/// the stream's first tick, `ft`/`ts` = trade time in s/ms, `rt` = its UTC wall time.
fn ticks(n_streams: usize, per_stream: usize) -> R<Vec<(String, Vec<TickDoc>)>> {
    let mut by_sym: Vec<(String, Vec<(i64, String)>)> = Vec::new();
    for line in fixture("ws_aggTrade_combined.jsonl")?
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let v: Json = serde_json::from_str(line)?;
        let d = &v["data"];
        let (Some(s), Some(p), Some(t)) = (d["s"].as_str(), d["p"].as_str(), d["T"].as_i64())
        else {
            continue;
        };
        match by_sym.iter_mut().find(|(n, _)| n == s) {
            Some((_, v)) => v.push((t, p.to_string())),
            None => by_sym.push((s.to_string(), vec![(t, p.to_string())])),
        }
    }
    by_sym.retain(|(_, v)| v.len() >= 90);
    by_sym.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    if by_sym.is_empty() {
        return Err("aggTrade capture: no symbol with enough trades".into());
    }
    let mut out = Vec::new();
    for s in 0..n_streams {
        let trades = &by_sym[s % by_sym.len()].1;
        let span = trades[trades.len() - 1].0 - trades[0].0 + 1000;
        let start = (s * 7919) % trades.len();
        let token = (26001 + s).to_string();
        let mut docs = Vec::with_capacity(per_stream);
        let mut p0 = None;
        for j in 0..per_stream {
            let (t, p) = &trades[(start + j) % trades.len()];
            let ts = t + ((start + j) / trades.len()) as i64 * span;
            let price: f64 = p.parse()?;
            let p0 = *p0.get_or_insert(price);
            docs.push(TickDoc {
                ts,
                token: token.clone(),
                lp: json_decimal(p),
                pc: format!("{:.2}", (price - p0) / p0 * 100.0),
            });
        }
        out.push((token, docs));
    }
    Ok(out)
}

struct TickDoc {
    ts: i64,
    token: String,
    lp: String,
    pc: String,
}

impl TickDoc {
    fn ft(&self) -> i64 {
        self.ts.div_euclid(1000)
    }
    fn rt(&self) -> String {
        let s = self.ft().rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
    /// The JSON text the original design stored (Python `json.dumps` spacing).
    fn json(&self) -> String {
        format!(
            "{{\"ft\": {}, \"token\": \"{}\", \"lp\": {}, \"pc\": {}, \"rt\": \"{}\", \"ts\": {}, \"data_type\": \"optiontick\"}}",
            self.ft(),
            self.token,
            self.lp,
            self.pc,
            self.rt(),
            self.ts
        )
    }
    /// Field/value pairs without `ft` (the time).
    fn pairs(&self) -> Vec<String> {
        strs(&[
            "token",
            &self.token,
            "lp",
            &self.lp,
            "pc",
            &self.pc,
            "rt",
            &self.rt(),
            "ts",
            &self.ts.to_string(),
            "data_type",
            "optiontick",
        ])
    }
}

/// "58001.03000000" → "58001.03" (a JSON number as a Python float would print it).
fn json_decimal(p: &str) -> String {
    if !p.contains('.') {
        return p.to_string();
    }
    let t = p.trim_end_matches('0');
    if t.ends_with('.') {
        format!("{t}0")
    } else {
        t.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

enum Verdict {
    Pass,
    Fail,
    Info,
    NotBuilt,
}

struct Row {
    measure: String,
    module: String,
    baseline: String,
    ratio: String,
    target: String,
    verdict: Verdict,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    fn add(
        &mut self,
        measure: &str,
        module: String,
        baseline: String,
        ratio: f64,
        target: &str,
        pass: Option<bool>,
    ) {
        let verdict = match pass {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Fail,
            None => Verdict::Info,
        };
        self.rows.push(Row {
            measure: measure.into(),
            module,
            baseline,
            ratio: format!("{ratio:.2}x"),
            target: target.into(),
            verdict,
        });
    }

    /// A throughput row, module (`r[0]`) against baseline (`r[1]`) from one `medians` run;
    /// `min` is the ratio it must reach, or `None` for an info row.
    fn rates(&mut self, measure: &str, r: &[Throughput], min: Option<f64>) {
        let (m, b) = match r {
            [m, b, ..] => (m.median, b.median),
            _ => (0.0, 0.0),
        };
        let target = min.map_or("(info)".to_string(), |x| format!(">= {x:.1}x"));
        self.add(measure, k(m), k(b), m / b, &target, min.map(|x| m >= x * b));
    }

    fn not_built(&mut self, measure: &str, baseline: String, target: &str) {
        self.rows.push(Row {
            measure: measure.into(),
            module: "n/a (TICKS.* not built)".into(),
            baseline,
            ratio: "n/a".into(),
            target: target.into(),
            verdict: Verdict::NotBuilt,
        });
    }

    fn failed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Fail))
            .count()
    }

    fn print(&self) {
        let head = ["measure", "module", "baseline", "ratio", "target", "result"];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                let v = match r.verdict {
                    Verdict::Pass => "PASS",
                    Verdict::Fail => "FAIL",
                    Verdict::Info => "info",
                    Verdict::NotBuilt => "n/a",
                };
                [
                    r.measure.clone(),
                    r.module.clone(),
                    r.baseline.clone(),
                    r.ratio.clone(),
                    r.target.clone(),
                    v.into(),
                ]
            })
            .collect();
        let mut w = head.map(|h| h.chars().count());
        for c in &cells {
            for i in 0..6 {
                w[i] = w[i].max(c[i].chars().count());
            }
        }
        let line = |c: &[String]| {
            let mut s = String::new();
            for i in 0..6 {
                let pad = w[i] - c[i].chars().count();
                let _ = write!(
                    s,
                    "{}{}{}",
                    if i == 0 { "| " } else { " | " },
                    c[i],
                    " ".repeat(pad)
                );
            }
            s + " |"
        };
        let sep = {
            let mut s = String::new();
            for wi in w {
                let _ = write!(s, "|{}", "-".repeat(wi + 2));
            }
            s + "|"
        };
        println!("{}", line(&head.map(String::from)));
        println!("{sep}");
        for c in &cells {
            println!("{}", line(c));
        }
        for n in &self.notes {
            println!("  * {n}");
        }
    }
}

fn b(v: f64) -> String {
    format!("{v:.1} B")
}

fn us(v: f64) -> String {
    format!("{v:.3} us")
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------

/// 1 + 2: 100 k official candles into the series and into the ZSET.
fn official_phases(srv: &Server, meter: &mut Connection, t: &mut Table, rows_1m: &[Json]) -> R<()> {
    // Module: CANDLE.CREATE, then 100 OFFICIAL_ADD of 1000 real rows each.
    let batches: Vec<String> = (0..N_REPS)
        .map(|rep| {
            let shift = rep as i64 * 1000 * MIN;
            Json::Array(rows_1m.iter().map(|r| shifted(r, shift)).collect()).to_string()
        })
        .collect();
    let mem0 = settled_memory(meter)?;
    reset_stats(meter)?;
    {
        let mut c = srv.conn()?;
        redis::cmd("CANDLE.CREATE")
            .arg(SERIES_KEY)
            .arg("INTERVAL")
            .arg("1m")
            .query::<()>(&mut c)?;
        for body in &batches {
            let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
                .arg(SERIES_KEY)
                .arg("JSON")
                .arg(body)
                .query(&mut c)?;
            if n != 1000 {
                return Err(format!("CANDLE.OFFICIAL_ADD inserted {n}, expected 1000").into());
            }
        }
    }
    let stats_mod = cmdstats(meter)?;
    let mem1 = settled_memory(meter)?;
    let mu_mod = memory_usage(meter, SERIES_KEY)?;
    let n = (N_REPS * 1000) as f64;

    // Baseline: one ZADD NX per candle, member = the JSON row, score = open time.
    reset_stats(meter)?;
    {
        let mut c = srv.conn()?;
        for rep in 0..N_REPS {
            let shift = rep as i64 * 1000 * MIN;
            let mut p = redis::pipe();
            for r in rows_1m {
                let r = shifted(r, shift);
                p.cmd("ZADD")
                    .arg(ZSET_KEY)
                    .arg("NX")
                    .arg(r[0].as_i64().unwrap_or(0))
                    .arg(r.to_string())
                    .ignore();
            }
            p.query::<()>(&mut c)?;
        }
    }
    let stats_z = cmdstats(meter)?;
    let mem2 = settled_memory(meter)?;
    let mu_z = memory_usage(meter, ZSET_KEY)?;
    let zcard: i64 = redis::cmd("ZCARD").arg(ZSET_KEY).query(meter)?;
    if zcard != n as i64 {
        return Err(format!("ZCARD {zcard}, expected {n}").into());
    }

    let (m, z) = (mu_mod as f64 / n, mu_z as f64 / n);
    t.add(
        "1. B/official candle, MEMORY USAGE (100k 1m)",
        b(m),
        b(z),
        z / m,
        "<= 24 B and >= 12x",
        Some(m <= 24.0 && z / m >= 12.0),
    );
    let (m, z) = ((mem1 - mem0) as f64 / n, (mem2 - mem1) as f64 / n);
    t.add(
        "1. B/official candle, used_memory delta",
        b(m),
        b(z),
        z / m,
        "<= 24 B and >= 12x",
        Some(m <= 24.0 && z / m >= 12.0),
    );

    let (calls, add) = per_call(&stats_mod, "candle.official_add")?;
    let (zcalls, zadd) = per_call(&stats_z, "zadd")?;
    let m = add / 1000.0;
    t.add(
        "2. server usec/official candle ingested",
        us(m),
        us(zadd),
        zadd / m,
        ">= 5x",
        Some(zadd / m >= 5.0),
    );
    t.notes.push(format!(
        "2: OFFICIAL_ADD {calls} calls x 1000 rows at {add:.1} us/call (/1000 per candle); ZADD NX {zcalls} calls, one member each"
    ));
    Ok(())
}

/// Informational: the real 5m and 15m fixtures (1000 candles each), bytes per candle.
fn other_intervals(srv: &Server, meter: &mut Connection, t: &mut Table) -> R<()> {
    let mut c = srv.conn()?;
    for iv in ["5m", "15m"] {
        let rows = klines(iv)?;
        let key = format!("candles:BTCUSDT:{iv}");
        let zkey = format!("klines:BTCUSDT:{iv}");
        let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
            .arg(&key)
            .arg("INTERVAL")
            .arg(iv)
            .arg("JSON")
            .arg(Json::Array(rows.clone()).to_string())
            .query(&mut c)?;
        let mut p = redis::pipe();
        for r in &rows {
            p.cmd("ZADD")
                .arg(&zkey)
                .arg("NX")
                .arg(r[0].as_i64().unwrap_or(0))
                .arg(r.to_string())
                .ignore();
        }
        p.query::<()>(&mut c)?;
        let (m, z) = (
            memory_usage(meter, &key)? as f64 / n as f64,
            memory_usage(meter, &zkey)? as f64 / rows.len() as f64,
        );
        t.add(
            &format!("   B/official candle, MEMORY USAGE (1000 {iv})"),
            b(m),
            b(z),
            z / m,
            "(info)",
            None,
        );
    }
    Ok(())
}

/// 3: chart load, and the live row used by 4.
fn chart_phase(
    srv: &Server,
    meter: &mut Connection,
    bench: &Bench,
    t: &mut Table,
    rows_1m: &[Json],
) -> R<()> {
    let last = (N_REPS as i64 - 1) * 1000 * MIN + rows_1m[999][0].as_i64().unwrap_or(0);
    let live_row = shifted(
        &rows_1m[999],
        last + MIN - rows_1m[999][0].as_i64().unwrap_or(0),
    );
    let mut c = srv.conn()?;
    let mut cmd = redis::cmd("CANDLE.LIVE_UPDATE");
    cmd.arg(SERIES_KEY);
    for a in positional(&live_row) {
        cmd.arg(a);
    }
    let changed: i64 = cmd.query(&mut c)?;
    if changed != 1 {
        return Err("CANDLE.LIVE_UPDATE of the live row did not change the series".into());
    }
    redis::cmd("SET")
        .arg(LIVE_KEY)
        .arg(live_row.to_string())
        .arg("EX")
        .arg(86_400)
        .query::<()>(&mut c)?;

    let min = last - (CHART as i64 - 1) * MIN;
    let merged = strs(&[
        "CANDLE.RANGE_MERGED",
        SERIES_KEY,
        "-",
        "+",
        "COUNT",
        &CHART.to_string(),
    ]);
    let zrange = strs(&[
        "ZRANGEBYSCORE",
        ZSET_KEY,
        &min.to_string(),
        &last.to_string(),
    ]);
    let get = strs(&["GET", LIVE_KEY]);
    // Sanity: the replies hold what the chart needs.
    let Value::Array(rows) = redis::cmd(&merged[0])
        .arg(&merged[1..])
        .query::<Value>(&mut c)?
    else {
        return Err("RANGE_MERGED: not an array".into());
    };
    let kinds: Vec<bool> = rows
        .iter()
        .map(|r| {
            matches!(r, Value::Array(f) if f.get(6).and_then(|v| redis::from_redis_value::<String>(v).ok()).as_deref() == Some("live"))
        })
        .collect();
    if rows.len() != CHART || !kinds[CHART - 1] || kinds[..CHART - 1].iter().any(|&l| l) {
        return Err(format!(
            "RANGE_MERGED COUNT {CHART}: got {} rows, expected {} official + 1 live",
            rows.len(),
            CHART - 1
        )
        .into());
    }
    let mut merged_json = merged.clone();
    merged_json.extend(strs(&["FORMAT", "JSON"]));
    let text: String = redis::cmd(&merged_json[0])
        .arg(&merged_json[1..])
        .query(&mut c)?;
    let parsed: Vec<Json> = serde_json::from_str(&text)?;
    if parsed.len() != CHART || parsed[CHART - 1]["status"] != "live" {
        return Err(format!("RANGE_MERGED FORMAT JSON: {} rows", parsed.len()).into());
    }
    let zn: Vec<String> = redis::cmd(&zrange[0]).arg(&zrange[1..]).query(&mut c)?;
    if zn.len() != CHART {
        return Err(format!(
            "ZRANGEBYSCORE returned {} members, expected {CHART}",
            zn.len()
        )
        .into());
    }

    // commandstats keeps one entry per command, so each form of RANGE_MERGED is measured
    // in its own window; the baseline once.
    let mut rps = Vec::new();
    let mut usec = Vec::new();
    for (cmd, stat) in [
        (&merged_json, "candle.range_merged"),
        (&merged, "candle.range_merged"),
        (&zrange, "zrangebyscore"),
        (&get, "get"),
    ] {
        reset_stats(meter)?;
        rps.push(bench.run(if cmd[0] == "GET" { 200_000 } else { 5_000 }, 4, 2, cmd)?);
        usec.push(per_call(&cmdstats(meter)?, stat)?.1);
    }
    // The same JSON load with the cache off: every call renders from the chunks.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("candles.json_cache")
        .arg(0)
        .query::<()>(meter)?;
    reset_stats(meter)?;
    bench.run(2_000, 4, 2, &merged_json)?;
    let cold = per_call(&cmdstats(meter)?, "candle.range_merged")?.1;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("candles.json_cache")
        .arg(1024)
        .query::<()>(meter)?;
    let (mj, mr, z, g) = (usec[0], usec[1], usec[2], usec[3]);
    let base = format!("{} (Z {z:.1} + GET {g:.2})", us(z + g));
    t.add(
        "3. server usec/720-candle chart load (JSON)",
        us(mj),
        base.clone(),
        (z + g) / mj,
        ">= 3x",
        Some((z + g) / mj >= 3.0),
    );
    t.add(
        "   same, JSON, cache off (json_cache 0)",
        us(cold),
        base.clone(),
        (z + g) / cold,
        "(info)",
        None,
    );
    t.add(
        "   same, RESP arrays",
        us(mr),
        base,
        (z + g) / mr,
        "(info)",
        None,
    );
    t.notes.push(format!(
        "3: RANGE_MERGED {SERIES_KEY} - + COUNT {CHART} [FORMAT JSON] = {} official + 1 live (100k officials); baseline ZRANGEBYSCORE {CHART} members + GET {LIVE_KEY}, \
         both hand JSON text to the chart server. JSON: the newest official candles' text is cached per series (candles.json_cache, default 1024), \
         the live candle rendered per call. Client-side rates JSON {}, RESP {}, baseline Z {}",
        CHART - 1,
        k(rps[0]),
        k(rps[1]),
        k(rps[2])
    ));

    // 4: LIVE_UPDATE vs SET ... EX of the same JSON text: the live row as the original
    // design stores it (one key, same open time). The module parses and validates it into
    // the live region; SET stores the bytes. Then the positional form of the same candle.
    let row_text = live_row.to_string();
    let lu = strs(&["CANDLE.LIVE_UPDATE", SERIES_KEY, "JSON", &row_text]);
    let mut lu_pos = strs(&["CANDLE.LIVE_UPDATE", SERIES_KEY]);
    lu_pos.extend(positional(&live_row));
    let set = strs(&["SET", LIVE_KEY, &row_text, "EX", "86400"]);
    reset_stats(meter)?;
    let r = bench.medians(&[&lu, &set], 32)?;
    let st = cmdstats(meter)?;
    let (_, ulu) = per_call(&st, "candle.live_update")?;
    let (_, uset) = per_call(&st, "set")?;
    t.rates(
        "4. LIVE_UPDATE JSON <row> vs SET <row> EX rps (P32)",
        &r,
        Some(1.0),
    );
    t.add(
        "   server usec/call, LIVE_UPDATE JSON vs SET EX",
        us(ulu),
        us(uset),
        uset / ulu,
        "(info)",
        None,
    );
    let rp = bench.medians(&[&lu_pos, &set], 32)?;
    t.rates("   LIVE_UPDATE t o h l c v vs SET EX rps (P32)", &rp, None);
    t.notes.push(format!(
        "4: both commands carry the same {}-byte JSON kline row; spreads LIVE_UPDATE JSON {}, SET {}; positional (8 arguments) {}, SET {}",
        row_text.len(),
        r[0].spread(),
        r[1].spread(),
        rp[0].spread(),
        rp[1].spread()
    ));

    // 4 (info): what the feeder sends per WebSocket kline update, a real `x=false` frame,
    // against storing that frame's text with SET ... EX.
    let frame = fixture("ws_kline_1m_combined.jsonl")?
        .lines()
        .find(|l| l.contains("\"x\":false"))
        .ok_or("no x=false kline frame in ws_kline_1m_combined.jsonl")?
        .to_string();
    let ws_key = "candles:ETHUSDT:1m:ws";
    let lu_json = strs(&[
        "CANDLE.LIVE_UPDATE",
        ws_key,
        "INTERVAL",
        "1m",
        "JSON",
        &frame,
    ]);
    let mut cmd = redis::cmd("CANDLE.LIVE_UPDATE");
    for a in lu_json.iter().skip(1) {
        cmd.arg(a);
    }
    let changed: i64 = cmd.query(&mut c)?;
    if changed != 1 {
        return Err("CANDLE.LIVE_UPDATE of the WebSocket frame did not change its series".into());
    }
    let set_frame = strs(&["SET", "live_candle:ETHUSDT:1m", &frame, "EX", "86400"]);
    let r = bench.medians(&[&lu_json, &set_frame], 32)?;
    t.rates("   LIVE_UPDATE JSON <WS kline frame> vs SET EX", &r, None);
    Ok(())
}

/// Whether the loaded module has TICKS.PUSH.
fn has_ticks(c: &mut Connection) -> R<bool> {
    let v: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("TICKS.PUSH")
        .query(c)?;
    Ok(matches!(v, Value::Array(ref a) if a.first().is_some_and(|e| !matches!(e, Value::Nil))))
}

/// 5: tick push throughput; 6: bytes per tick.
fn tick_phases(
    srv: &Server,
    meter: &mut Connection,
    bench: &Bench,
    t: &mut Table,
    built: bool,
) -> R<()> {
    let streams = ticks(100, 1000)?;
    let tick = &streams[0].1[0];
    let doc = tick.json();
    let tok = &tick.token;
    let (lkey, xkey, bkey) = (
        format!("ticks:list:{tok}"),
        format!("ticks:x:{tok}"),
        "ticks:book:bench".to_string(),
    );
    let lpush = strs(&["LPUSH", &lkey, &doc]);
    let ltrim = strs(&["LTRIM", &lkey, "0", "999"]);
    let mut xadd = strs(&[
        "XADD",
        &xkey,
        "MAXLEN",
        "~",
        "1000",
        "*",
        "ft",
        &tick.ft().to_string(),
    ]);
    xadd.extend(tick.pairs());
    let push_json = strs(&["TICKS.PUSH", &bkey, tok, "TIMEFIELD", "ft", "JSON", &doc]);
    let mut push_pairs = strs(&[
        "TICKS.PUSH",
        &bkey,
        &format!("{tok}p"),
        &tick.ft().to_string(),
    ]);
    push_pairs.extend(tick.pairs());

    let mut c = srv.conn()?;
    // Prime the list to its cap so LTRIM runs against a full list (each LTRIM run then trims
    // nothing: cheaper than the real pair's one-element trim, i.e. favours the baseline).
    let mut p = redis::pipe();
    for _ in 0..1000 {
        p.cmd("LPUSH").arg(&lkey).arg(&doc).ignore();
    }
    p.query::<()>(&mut c)?;

    let mut cmds: Vec<&[String]> = vec![&lpush, &ltrim, &xadd];
    if built {
        cmds.push(&push_json);
        cmds.push(&push_pairs);
    }
    // LPUSH runs grow the list (capped at 2M pushes a run, ~300 MB): trim it back to 1000
    // after each, outside the measured runs, so every LTRIM run starts on a full list.
    let max_n = [Some(2_000_000)];
    let mut trim = |i: usize| -> R<()> {
        if i == 0 {
            redis::cmd("LTRIM")
                .arg(&lkey)
                .arg(0)
                .arg(999)
                .query::<()>(&mut c)?;
        }
        Ok(())
    };
    let r = bench.medians_with(&cmds, 32, &max_n, &mut trim)?;
    // The pair without pipelining (-P 1, shorter runs): every request pays a loopback round
    // trip, as a client sending LPUSH then LTRIM per tick would.
    let mut cmds1: Vec<&[String]> = vec![&lpush, &ltrim];
    if built {
        cmds1.push(&push_json);
    }
    let bench1 = Bench {
        secs: bench.secs / 2.0,
        ..*bench
    };
    let r1 = bench1.medians_with(&cmds1, 1, &[], &mut trim)?;
    let pair1 = 1.0 / (1.0 / r1[0].median + 1.0 / r1[1].median);
    let base1 = format!(
        "{} pair (LPUSH {} + LTRIM {})",
        k(pair1),
        k(r1[0].median),
        k(r1[1].median)
    );
    let pair = 1.0 / (1.0 / r[0].median + 1.0 / r[1].median);
    let base = format!(
        "{} pair (LPUSH {} + LTRIM {})",
        k(pair),
        k(r[0].median),
        k(r[1].median)
    );
    let xbase = format!("{} XADD MAXLEN ~ 1000", k(r[2].median));
    if built {
        let (pj, pp) = (r[3].median, r[4].median);
        t.add(
            "5. TICKS.PUSH JSON rps vs LPUSH+LTRIM pair",
            k(pj),
            base,
            pj / pair,
            ">= 2x",
            Some(pj / pair >= 2.0),
        );
        t.add(
            "   same, unpipelined (-P 1)",
            k(r1[2].median),
            base1.clone(),
            r1[2].median / pair1,
            "(info)",
            None,
        );
        t.add(
            "   TICKS.PUSH JSON rps vs XADD",
            k(pj),
            xbase.clone(),
            pj / r[2].median,
            "(info)",
            None,
        );
        t.add(
            "   TICKS.PUSH field/value rps vs XADD",
            k(pp),
            xbase,
            pp / r[2].median,
            "(info)",
            None,
        );
        t.notes.push(format!(
            "5: spreads: TICKS.PUSH JSON {}, field/value {}, LPUSH {}, LTRIM {}, XADD {}",
            r[3].spread(),
            r[4].spread(),
            r[0].spread(),
            r[1].spread(),
            r[2].spread()
        ));
    } else {
        t.not_built("5. TICKS.PUSH JSON rps vs LPUSH+LTRIM pair", base, ">= 2x");
        t.not_built("   same, unpipelined (-P 1)", base1, "(info)");
        t.not_built("   TICKS.PUSH JSON rps vs XADD", xbase, "(info)");
    }
    t.notes.push(
        "5: pair rate = 1/(1/LPUSH + 1/LTRIM), each benchmarked alone (redis-benchmark runs one command; \
         LTRIM runs hit a full list and trim nothing: an upper bound for the original design). \
         Pipelined, per-command server cost decides (2x the pair = faster than LPUSH alone); \
         unpipelined (-P 1), round trips decide and one TICKS.PUSH replaces two"
            .into(),
    );

    // 6: 100 streams x 1000 ticks.
    let n = streams.iter().map(|(_, d)| d.len()).sum::<usize>() as f64;
    let mem0 = settled_memory(meter)?;
    {
        let mut c = srv.conn()?;
        let mut p = redis::pipe();
        for (tok, docs) in &streams {
            for ch in docs.chunks(100) {
                p.cmd("LPUSH")
                    .arg(format!("ticklist:{tok}"))
                    .arg(ch.iter().map(TickDoc::json).collect::<Vec<_>>())
                    .ignore();
            }
        }
        p.query::<()>(&mut c)?;
    }
    let mem1 = settled_memory(meter)?;
    let mut mu_lists = 0;
    for (tok, _) in &streams {
        mu_lists += memory_usage(meter, &format!("ticklist:{tok}"))?;
    }
    let list_bytes = (mu_lists as f64 / n, (mem1 - mem0) as f64 / n);
    if !built {
        t.not_built(
            "6. B/tick, MEMORY USAGE (100 x 1000)",
            b(list_bytes.0),
            "<= 1/4 (>= 4x)",
        );
        return Ok(());
    }
    let book = "ticks:book:BTC-options";
    {
        let mut c = srv.conn()?;
        let mut p = redis::pipe();
        for (tok, docs) in &streams {
            for ch in docs.chunks(100) {
                p.cmd("TICKS.PUSH")
                    .arg(book)
                    .arg(tok)
                    .arg("TIMEFIELD")
                    .arg("ft")
                    .arg("JSON")
                    .arg(ch.iter().map(TickDoc::json).collect::<Vec<_>>())
                    .ignore();
            }
        }
        p.query::<()>(&mut c)?;
    }
    let mem2 = settled_memory(meter)?;
    let mu_book = memory_usage(meter, book)? as f64 / n;
    let d_book = (mem2 - mem1) as f64 / n;
    t.add(
        "6. B/tick, MEMORY USAGE (100 x 1000)",
        b(mu_book),
        b(list_bytes.0),
        list_bytes.0 / mu_book,
        "<= 1/4 (>= 4x)",
        Some(list_bytes.0 / mu_book >= 4.0),
    );
    t.add(
        "   B/tick, used_memory delta",
        b(d_book),
        b(list_bytes.1),
        list_bytes.1 / d_book,
        "<= 1/4 (>= 4x)",
        Some(list_bytes.1 / d_book >= 4.0),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------

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
         ticks from the real aggTrade capture (see compare.rs::ticks)"
    );
    let mut meter = srv.conn()?;
    let built = has_ticks(&mut meter)?;
    let rows_1m = klines("1m")?;

    let t0 = Instant::now();
    official_phases(&srv, &mut meter, t, &rows_1m)?;
    other_intervals(&srv, &mut meter, t)?;
    eprintln!("[{:.0}s] official candles done", t0.elapsed().as_secs_f64());
    chart_phase(&srv, &mut meter, &bench, t, &rows_1m)?;
    eprintln!(
        "[{:.0}s] chart and live updates done",
        t0.elapsed().as_secs_f64()
    );
    tick_phases(&srv, &mut meter, &bench, t, built)?;
    eprintln!("[{:.0}s] ticks done", t0.elapsed().as_secs_f64());
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
