//! A real `redis-server` with the module loaded, on a free loopback port, in its own temp dir;
//! killed when the guard drops. The server binary is `$CANDLES_REDIS_SERVER` (e.g. a
//! `valkey-server`), else `redis-server` from PATH, so every suite runs on both.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The server binary the suites run: `$CANDLES_REDIS_SERVER`, else `redis-server` from PATH.
pub fn server_binary() -> String {
    std::env::var("CANDLES_REDIS_SERVER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "redis-server".to_string())
}

/// The module library under test: `$CANDLES_MODULE`, else the release build.
pub fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("CANDLES_MODULE") {
        return PathBuf::from(p);
    }
    let p = workspace_root().join("target/release/libredis_candles.so");
    assert!(
        p.exists(),
        "{} missing: run `cargo build --release` (make test does)",
        p.display()
    );
    p
}

/// CI persistence matrix: `CANDLES_TEST_PERSISTENCE` picks how every test server persists.
/// Unset or `none`: no RDB snapshots, no AOF (the default above). `aof`: AOF only
/// (`--appendonly yes --save ""`), so every write also goes through the AOF path
/// (`CANDLE.APPLY` effects, AOF rewrite snapshots). `rdb`: RDB snapshots only
/// (`--save "1 1" --appendonly no`). A test's own `extra` arguments come later on the command
/// line and win. Run the suite in a mode with e.g.
/// `CANDLES_TEST_PERSISTENCE=aof cargo test --release --workspace`.
pub fn persistence_args() -> Vec<String> {
    let mode = std::env::var("CANDLES_TEST_PERSISTENCE").unwrap_or_default();
    let args: &[&str] = match mode.to_ascii_lowercase().as_str() {
        "" | "none" => &[],
        "aof" => &["--appendonly", "yes", "--save", ""],
        "rdb" => &["--appendonly", "no", "--save", "1 1"],
        other => panic!("CANDLES_TEST_PERSISTENCE={other}: use none, aof or rdb"),
    };
    args.iter().map(|s| s.to_string()).collect()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    pub port: u16,
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// Starts a server with the module; `extra` are more `redis-server` arguments, e.g.
    /// `["--appendonly", "yes"]`; `module_args` are passed after the module path.
    pub fn start_with(extra: &[&str], module_args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.path().display().to_string(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--enable-debug-command".into(),
            "yes".into(),
            "--logfile".into(),
            "redis.log".into(),
        ];
        args.extend(persistence_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut load = vec![module_path().display().to_string()];
        load.extend(module_args.iter().map(|s| s.to_string()));
        args.push("--loadmodule".into());
        args.extend(load);
        let mut s = Server {
            port,
            dir,
            args,
            child: None,
        };
        s.spawn();
        s
    }

    pub fn start() -> Server {
        Self::start_with(&[], &[])
    }

    fn spawn(&mut self) {
        let bin = server_binary();
        let child = Command::new(&bin)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin}: {e} (on PATH, or set CANDLES_REDIS_SERVER)"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut c) = self.try_conn() {
                // While loading a big AOF/RDB, PING answers LOADING: wait for it.
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("redis-server exited ({status}); log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        client.get_connection_with_timeout(Duration::from_secs(2))
    }

    pub fn conn(&self) -> redis::Connection {
        let c = self.try_conn().expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Stops the server (SHUTDOWN with `how`, e.g. "SAVE" or "NOSAVE") and starts it again on
    /// the same port and directory, so it reloads its RDB or AOF.
    pub fn restart(&mut self, how: &str) {
        let _ = redis::cmd("SHUTDOWN")
            .arg(how)
            .query::<()>(&mut self.conn());
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// Kills the server with SIGKILL (`kill -9`); it stays down ([`Server::pid`] is then 0).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server with SIGKILL (`kill -9`: no shutdown, no final save) and starts it
    /// again on the same port and directory, so it reloads what it had persisted (its AOF).
    pub fn kill9_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// Restart with different server arguments appended (e.g. turning AOF on).
    pub fn restart_with(&mut self, how: &str, extra: &[&str]) {
        // Later arguments override earlier ones in redis-server's argv.
        let module_at = self
            .args
            .iter()
            .position(|a| a == "--loadmodule")
            .unwrap_or(self.args.len());
        for (i, e) in extra.iter().enumerate() {
            self.args.insert(module_at + i, e.to_string());
        }
        self.restart(how);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs a command given as words; the last argument may be binary via `arg_bytes`.
pub fn q<T: redis::FromRedisValue>(
    c: &mut redis::Connection,
    words: &[&str],
) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(words[0]);
    for w in &words[1..] {
        cmd.arg(*w);
    }
    cmd.query(c)
}

pub fn val(c: &mut redis::Connection, words: &[&str]) -> redis::Value {
    q::<redis::Value>(c, words).unwrap_or_else(|e| panic!("{words:?}: {e}"))
}

pub fn int(c: &mut redis::Connection, words: &[&str]) -> i64 {
    q::<i64>(c, words).unwrap_or_else(|e| panic!("{words:?}: {e}"))
}

/// The error text of a command expected to fail.
pub fn error(c: &mut redis::Connection, words: &[&str]) -> String {
    match q::<redis::Value>(c, words) {
        Ok(v) => panic!("{words:?} should fail, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// Polls `f` until it is true or 10 s pass.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// INFO field of a section, as text.
pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(c).ok()?;
    info.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_owned())
    })
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Starts a replica of `master` and waits until it is in sync.
pub fn start_replica(master: &Server) -> Server {
    let port = master.port.to_string();
    let r = Server::start_with(&["--replicaof", "127.0.0.1", &port], &[]);
    let mut c = r.conn();
    eventually("replica link up", || {
        info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
    });
    r
}

/// Waits until the replica has everything the master wrote so far.
pub fn sync_replica(master: &mut redis::Connection) {
    let n: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(master).unwrap();
    assert_eq!(n, 1, "replica did not acknowledge");
}
