//! What candles-web's tests and benchmark share: the `candles-web` process (the caller passes
//! the binary's path, `env!("CARGO_BIN_EXE_candles-web")`), a plain HTTP/1.1 GET, and
//! percent-encoding for query strings.

use crate::server::free_port;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `candles-web` binary, its stderr in a file; killed on drop.
pub struct Web {
    pub child: Child,
    pub port: u16,
    pub log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Web {
    /// Starts `bin --redis <redis_url> --listen 127.0.0.1:<free port> <extra…>` and waits until
    /// it accepts connections (panics with its log if it exits or takes over 15 s).
    pub fn spawn(bin: impl AsRef<OsStr>, redis_url: &str, extra: &[&str]) -> Web {
        let mut w = Web::spawn_unready(bin, redis_url, extra);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if w.log().contains("candles-web listening") {
                return w;
            }
            if let Ok(Some(st)) = w.child.try_wait() {
                panic!("candles-web exited ({st}); log:\n{}", w.log());
            }
            assert!(
                Instant::now() < deadline,
                "candles-web did not start; log:\n{}",
                w.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it without waiting for it to listen.
    pub fn spawn_unready(bin: impl AsRef<OsStr>, redis_url: &str, extra: &[&str]) -> Web {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("web.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .args([
                "--redis",
                redis_url,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(extra)
            .env("RUST_LOG", "candles_web=debug,info")
            .env_remove("CANDLES_WEB_KEYS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn candles-web");
        Web {
            child,
            port,
            log_path,
            _dir: dir,
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:<port>/ws?key=<key>`.
    pub fn ws_url(&self, key: &str) -> String {
        format!("ws://127.0.0.1:{}/ws?key={}", self.port, encode(key))
    }

    pub fn get(&self, path: &str) -> Response {
        http_get(self.port, path)
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

    /// CPU time (user + system) the process used so far, from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        // utime and stime are fields 14 and 15 of the line: 11 and 12 after the ')'.
        let hz = 100; // USER_HZ on Linux
        Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP reply.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` on 127.0.0.1:`port` (HTTP/1.1, `Connection: close`), 10 s timeout.
pub fn http_get(port: u16, path: &str) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read reply");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
