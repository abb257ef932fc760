//! What the feeder's tests and benchmark share: the `candles-feed` process (the caller passes the
//! binary's path, `env!("CARGO_BIN_EXE_candles-feed")`, so this kit does not depend on the
//! feeder), a module-loaded Redis without persistence, and helpers to read candles back.

use crate::server;
use crate::standin::{open_time, Dataset};
use candles_core::Dec;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One minute in ms.
pub const M: i64 = 60_000;

/// The 1000 real BTCUSDT 1m REST rows (2024-09-04).
pub fn rows_1m() -> Vec<Value> {
    crate::standin::rows_of_body(&crate::fixtures::text(
        "rest_klines_BTCUSDT_1m_limit1000.json",
    ))
    .unwrap()
}

/// `redis-server` with the module, no persistence, on a free loopback port; killed on drop.
pub struct Redis(server::Server);

impl Redis {
    pub fn start() -> Redis {
        Redis(server::Server::start_with(
            &["--save", "", "--appendonly", "no"],
            &[],
        ))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.0.port)
    }

    pub fn conn(&self) -> redis::Connection {
        self.0.conn()
    }

    pub fn log(&self) -> String {
        self.0.log()
    }

    /// Stops it and starts it again on the same port, empty (nothing is persisted).
    pub fn restart(&mut self) {
        self.0.restart("NOSAVE");
    }
}

/// The feeder binary `bin`, its stderr in a file; killed on drop.
pub struct Feeder {
    pub child: Child,
    pub log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Feeder {
    /// Starts `bin` (the `candles-feed` binary) with `args`, `RUST_LOG=candles_feed=debug,info`
    /// and no `CANDLES_FEED_SYMBOLS` from the environment.
    pub fn spawn(bin: impl AsRef<OsStr>, args: &[String]) -> Feeder {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("feed.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(bin)
            .args(args)
            .env("RUST_LOG", "candles_feed=debug,info")
            .env_remove("CANDLES_FEED_SYMBOLS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn candles-feed");
        Feeder {
            child,
            log_path,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn sigterm(&self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// Waits for the exit up to `d`; None if still running.
    pub fn wait_exit(&mut self, d: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + d;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` (async-friendly) until true or `d` passes.
pub async fn eventually<F: FnMut() -> bool>(d: Duration, mut f: F) -> bool {
    let end = Instant::now() + d;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn norm(v: &Value) -> String {
    match v {
        Value::String(s) => Dec::parse(s)
            .map(|d| d.to_string())
            .unwrap_or_else(|_| s.clone()),
        other => other.to_string(),
    }
}

/// A REST row as `CANDLE.RANGE_MERGED … FULL` returns it (as strings).
pub fn expected_full(row: &Value, kind: &str) -> Vec<String> {
    let f = |i: usize| norm(&row[i]);
    vec![
        f(0),
        f(1),
        f(2),
        f(3),
        f(4),
        f(5),
        kind.to_string(),
        f(6),
        f(7),
        f(8),
        f(9),
        f(10),
    ]
}

fn value_str(v: &redis::Value) -> String {
    match v {
        redis::Value::Int(i) => i.to_string(),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Double(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// `CANDLE.RANGE_MERGED key from to FULL` as rows of strings.
pub fn range_full(c: &mut redis::Connection, key: &str, from: i64, to: i64) -> Vec<Vec<String>> {
    let v: redis::Value = redis::cmd("CANDLE.RANGE_MERGED")
        .arg(key)
        .arg(from)
        .arg(to)
        .arg("FULL")
        .query(c)
        .unwrap_or_else(|e| panic!("RANGE_MERGED {key}: {e}"));
    match v {
        redis::Value::Array(rows) => rows
            .iter()
            .map(|r| match r {
                redis::Value::Array(f) => f.iter().map(value_str).collect(),
                other => panic!("row {other:?}"),
            })
            .collect(),
        other => panic!("RANGE_MERGED reply {other:?}"),
    }
}

/// Rows with open time in `from..=to`.
pub fn rows_between(rows: &[Value], from: i64, to: i64) -> Vec<Value> {
    rows.iter()
        .filter(|r| (from..=to).contains(&open_time(r)))
        .cloned()
        .collect()
}

/// A stand-in dataset of `rows`, visible up to `visible_until` if set.
pub fn dataset(rows: Vec<Value>, visible_until: Option<i64>) -> Dataset {
    let mut d = Dataset::new(rows);
    d.visible_until = visible_until;
    d
}
