//! `make run` (scripts/run.sh) as a new user meets it: a port that is already taken, a feeder
//! that fails, a missing replay file, and a replay of a multi-symbol capture. The script starts
//! its own redis-server; it must stop only that one, and only ever report success when it
//! really runs.

use candles_testkit::fixtures;
use candles_testkit::server::*;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A run directory directly under the repository root (redis.conf loads the module relative
/// to it), removed on drop.
fn run_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(".run-test-")
        .tempdir_in(workspace_root())
        .unwrap()
}

fn script(dir: &tempfile::TempDir, port: u16, intervals: &str, replay: &str) -> Command {
    script_web(dir, port, free_port(), intervals, replay)
}

/// The script with candles-web on `web_port`.
fn script_web(
    dir: &tempfile::TempDir,
    port: u16,
    web_port: u16,
    intervals: &str,
    replay: &str,
) -> Command {
    let root = workspace_root();
    let mut c = Command::new("bash");
    c.arg(root.join("scripts/run.sh"))
        .args([&port.to_string(), "", intervals, replay])
        .env("RUN_DIR", dir.path().file_name().unwrap())
        .env("WEB_PORT", web_port.to_string())
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn wait_for(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + within;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn output(mut child: Child, within: Duration) -> (Option<ExitStatus>, String) {
    let st = wait_for(&mut child, within);
    let mut text = String::new();
    for pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        let mut p = pipe;
        let _ = p.read_to_string(&mut text);
    }
    (st, text)
}

fn answers(port: u16) -> bool {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(300)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok()
}

fn needs_release_build() -> bool {
    let root = workspace_root();
    let ok = root.join("target/release/candles-feed").exists()
        && root.join("target/release/candles-web").exists()
        && root.join("target/release/libredis_candles.so").exists();
    assert!(
        ok || std::env::var("CI").is_err(),
        "make run needs the release build (make test builds it)"
    );
    ok
}

#[test]
fn a_taken_port_is_refused_and_the_other_server_survives() {
    if !needs_release_build() {
        return;
    }
    let other = Server::start();
    let pid = other.pid();
    let dir = run_dir();
    let (st, text) = output(
        script(&dir, other.port, "", "").spawn().unwrap(),
        Duration::from_secs(30),
    );
    let st = st.expect("run.sh finishes");
    assert!(!st.success(), "run.sh on a taken port must fail: {text}");
    assert!(
        text.contains(&format!("port {} is taken", other.port)) && text.contains("REDIS_PORT="),
        "{text}"
    );
    // The other server still runs and answers, with its data.
    let mut c = other.conn();
    assert_eq!(q::<String>(&mut c, &["PING"]).unwrap(), "PONG");
    assert_eq!(other.pid(), pid);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn a_failing_feeder_fails_make_run_and_stops_its_server() {
    if !needs_release_build() {
        return;
    }
    let port = free_port();
    let dir = run_dir();
    let (st, text) = output(
        script(&dir, port, "2m", "").spawn().unwrap(),
        Duration::from_secs(60),
    );
    let st = st.expect("run.sh finishes");
    assert!(!st.success(), "INTERVALS=2m must fail make run: {text}");
    assert!(text.contains("2m"), "{text}");
    assert!(!answers(port), "the script's redis-server must be stopped");
}

#[test]
fn a_missing_replay_file_is_an_error() {
    if !needs_release_build() {
        return;
    }
    let port = free_port();
    let dir = run_dir();
    let (st, text) = output(
        script(&dir, port, "", "no/such/capture.jsonl")
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
    );
    assert!(!st.expect("run.sh finishes").success(), "{text}");
    assert!(text.contains("does not exist"), "{text}");
    assert!(!answers(port));
}

#[test]
fn replay_stores_every_symbol_of_the_capture_and_ctrl_c_stops_only_its_server() {
    if !needs_release_build() {
        return;
    }
    let capture: PathBuf =
        fixtures::path("ws_capture_spot_2021-04-04_BTCUSDT_ETHUSDT_DOTUSDT.jsonl");
    let port = free_port();
    let web_port = free_port();
    let dir = run_dir();
    let mut child = script_web(&dir, port, web_port, "", capture.to_str().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let key_of = |sym: &str| format!("candle:{{{sym}}}:1m");
    let end = Instant::now() + Duration::from_secs(60);
    let mut stored = false;
    while Instant::now() < end && !stored {
        if let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(300)))
        {
            stored = ["BTCUSDT", "ETHUSDT", "DOTUSDT"].iter().all(|s| {
                redis::cmd("EXISTS")
                    .arg(key_of(s))
                    .query::<i64>(&mut c)
                    .is_ok_and(|n| n == 1)
            });
        }
        if !stored {
            assert!(child.try_wait().unwrap().is_none(), "run.sh exited early");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(stored, "every symbol of the capture is stored");
    // The chart beside it serves the replayed market.
    let r = candles_testkit::web::http_get(web_port, "/api/series");
    assert_eq!(r.status, 200, "{}", r.body);
    for s in ["BTCUSDT", "ETHUSDT", "DOTUSDT"] {
        assert!(
            r.body.contains(&key_of(s)),
            "{s} not on the chart: {}",
            r.body
        );
    }
    let r = candles_testkit::web::http_get(
        web_port,
        &format!(
            "/api/candles?key={}",
            candles_testkit::web::encode(&key_of("BTCUSDT"))
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"open_time\":1617566580000"), "{}", r.body);
    // Ctrl-C (the script's process gets SIGINT/SIGTERM): the script stops its own server.
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(wait_for(&mut child, Duration::from_secs(15)).is_some());
    assert!(!answers(port), "its redis-server stops with it");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", web_port)).is_err(),
        "its candles-web stops with it"
    );
}
