//! A real headless Chromium loads the page from the binary against a replayed Binance capture
//! and draws the chart; no request leaves for another host.
//!
//! Needs Debian's `chromium` (scripts/install-deps.sh installs it; `$CANDLES_CHROMIUM` picks
//! another binary). Without it the test fails and says so: it is never skipped.

mod common;

use candles_testkit::fixtures;
use candles_testkit::server::workspace_root;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CAPTURE: &str = "ws_capture_spot_2021-04-04_BTCUSDT_ETHUSDT_DOTUSDT.jsonl";

fn chromium() -> String {
    if let Ok(p) = std::env::var("CANDLES_CHROMIUM") {
        return p;
    }
    for c in ["chromium", "chromium-browser"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if found {
            return c.to_string();
        }
    }
    panic!(
        "chromium is not installed: run scripts/install-deps.sh (it installs Debian's chromium), \
         or set CANDLES_CHROMIUM=/path/to/chromium"
    );
}

/// Headless Chromium driven over the DevTools protocol (CDP) on loopback.
///
/// Why not `--dump-dom` / `--screenshot` with `--virtual-time-budget`: virtual time pauses only
/// while a fetch is pending. Once the page's WebSocket is open nothing is pending, virtual time
/// runs free and the budget is spent in a few real milliseconds, so on a busy machine Chromium
/// dumped the page before the snapshot had arrived over the WebSocket (and reloading did not
/// help). Here the page runs in real time and is polled until it says it has drawn, with a bound.
mod cdp {
    use super::chromium;
    use serde_json::{json, Value};
    use std::net::TcpStream;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};
    use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

    /// Kills Chromium when dropped: on every path, panics included.
    struct Proc(Child);

    impl Drop for Proc {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    pub struct Browser {
        proc: Proc,
        /// The browser's own endpoint (targets, `Browser.close`) and the page's.
        browser: Conn,
        page: Conn,
        stderr: PathBuf,
    }

    impl Browser {
        /// Starts headless Chromium with a fresh profile and `extra` flags, and opens `url` in a
        /// 1200×700 viewport.
        pub fn launch(profile: &Path, extra: &[String], url: &str) -> Browser {
            let stderr = profile.with_extension("stderr");
            let child = Command::new(chromium())
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-default-apps",
                    "--hide-scrollbars",
                    "--window-size=1200,700",
                    "--remote-debugging-address=127.0.0.1",
                    "--remote-debugging-port=0",
                    // Every name resolves to nothing but 127.0.0.1: a request elsewhere fails.
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .args(extra)
                .arg("about:blank")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr).expect("chromium stderr file"))
                .spawn()
                .expect("start chromium");
            let mut proc = Proc(child);
            let started = Instant::now();
            let within = |what: &str| {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "chromium: no {what} within 30 s; {}",
                    read(&stderr)
                )
            };
            // Once it listens, Chromium writes the port it chose and the browser endpoint's path
            // to the profile.
            let (port, path) = loop {
                let active = std::fs::read_to_string(profile.join("DevToolsActivePort"));
                let mut lines = active.as_deref().unwrap_or("").lines();
                if let (Some(Ok(port)), Some(path)) = (lines.next().map(str::parse), lines.next()) {
                    if path.starts_with("/devtools/browser/") {
                        break (port, path.to_string());
                    }
                }
                if let Ok(Some(st)) = proc.0.try_wait() {
                    panic!("chromium exited ({st}); {}", read(&stderr));
                }
                within("DevToolsActivePort");
                std::thread::sleep(Duration::from_millis(50));
            };
            let mut browser = Conn::open(port, &path);
            let page = loop {
                let targets = browser.call("Target.getTargets", json!({}));
                let page = targets["targetInfos"].as_array().and_then(|t| {
                    let page = t.iter().find(|t| t["type"] == "page")?;
                    Some(page["targetId"].as_str()?.to_string())
                });
                if let Some(id) = page {
                    break Conn::open(port, &format!("/devtools/page/{id}"));
                }
                within("page target");
                std::thread::sleep(Duration::from_millis(50));
            };
            let mut b = Browser {
                proc,
                browser,
                page,
                stderr,
            };
            // The viewport `--screenshot` used: a headless window of that size has a smaller one.
            let size =
                json!({ "width": 1200, "height": 700, "deviceScaleFactor": 1, "mobile": false });
            b.page.call("Emulation.setDeviceMetricsOverride", size);
            let nav = b.page.call("Page.navigate", json!({ "url": url }));
            assert!(nav["errorText"].is_null(), "navigate to {url}: {nav}");
            b
        }

        /// The value of a JavaScript expression on the page (null when undefined).
        pub fn eval(&mut self, expr: &str) -> Value {
            let params = json!({ "expression": expr, "returnByValue": true });
            let mut r = self.page.call("Runtime.evaluate", params);
            assert!(r["exceptionDetails"].is_null(), "{expr}: {r}");
            r["result"]["value"].take()
        }

        /// Polls `expr` every 100 ms until it is a string; panics with the DOM after `within`.
        pub fn wait_for(&mut self, expr: &str, within: Duration) -> String {
            let deadline = Instant::now() + within;
            loop {
                if let Value::String(s) = self.eval(expr) {
                    return s;
                }
                if Instant::now() >= deadline {
                    panic!("{expr} still unset after {within:?}; DOM:\n{}", self.dom());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }

        /// The page's DOM as it is now (what `--dump-dom` prints).
        pub fn dom(&mut self) -> String {
            let dom = self.eval("document.documentElement.outerHTML");
            dom.as_str().expect("outerHTML").to_string()
        }

        /// A PNG of the page's viewport.
        pub fn screenshot(&mut self) -> Vec<u8> {
            let r = self
                .page
                .call("Page.captureScreenshot", json!({ "format": "png" }));
            let data = r["data"].as_str().expect("screenshot data");
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
                .expect("screenshot base64")
        }

        /// Closes the browser as a user would (`Browser.close`), so that what it writes as it
        /// exits (the end of the net log) is written; waits 30 s at most for it to exit.
        pub fn close(mut self) {
            self.browser.send("Browser.close", json!({}));
            // The reply, or the socket closing with the browser: either will do.
            let _ = self.browser.ws.read();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if self.proc.0.try_wait().expect("wait for chromium").is_some() {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "chromium did not exit within 30 s of Browser.close; {}",
                    read(&self.stderr)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// A DevTools WebSocket on loopback, with reads and writes bounded to 15 s each.
    struct Conn {
        ws: WebSocket<TcpStream>,
        next_id: u64,
    }

    impl Conn {
        fn open(port: u16, path: &str) -> Conn {
            let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to DevTools");
            tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            tcp.set_write_timeout(Some(Duration::from_secs(15)))
                .unwrap();
            let url = format!("ws://127.0.0.1:{port}{path}");
            let (ws, _) = tungstenite::client(url.as_str(), tcp)
                .unwrap_or_else(|e| panic!("DevTools WebSocket {url}: {e}"));
            Conn { ws, next_id: 0 }
        }

        fn send(&mut self, method: &str, params: Value) -> u64 {
            self.next_id += 1;
            let msg = json!({ "id": self.next_id, "method": method, "params": params });
            self.ws
                .send(Message::text(msg.to_string()))
                .unwrap_or_else(|e| panic!("CDP {method}: {e}"));
            self.next_id
        }

        /// Sends `method` and returns its reply's `result` (events in between are skipped).
        fn call(&mut self, method: &str, params: Value) -> Value {
            let id = self.send(method, params);
            loop {
                let m = self
                    .ws
                    .read()
                    .unwrap_or_else(|e| panic!("CDP {method}: no reply ({e})"));
                let Message::Text(t) = m else { continue };
                let mut reply: Value = serde_json::from_str(t.as_str()).expect("CDP JSON");
                if reply["id"] == id {
                    assert!(reply["error"].is_null(), "CDP {method}: {reply}");
                    return reply["result"].take();
                }
            }
        }
    }

    fn read(path: &Path) -> String {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        format!("chromium's stderr:\n{s}")
    }
}

/// Stores the capture's kline frames as the feeder's replay does: `x=true` official, else live.
fn replay_klines(c: &mut redis::Connection) -> usize {
    let mut n = 0;
    for line in fixtures::lines(CAPTURE) {
        let v: Value = serde_json::from_str(&line).unwrap();
        let frame = &v["frame"];
        let Some(stream) = frame["stream"].as_str() else {
            continue;
        };
        if !stream.contains("@kline_") {
            continue;
        }
        let k = &frame["data"]["k"];
        let key = format!(
            "candle:{{{}}}:{}",
            k["s"].as_str().unwrap(),
            k["i"].as_str().unwrap()
        );
        let cmd = if k["x"] == true {
            "CANDLE.OFFICIAL_ADD"
        } else {
            "CANDLE.LIVE_UPDATE"
        };
        let _: i64 = redis::cmd(cmd)
            .arg(&key)
            .arg("INTERVAL")
            .arg(k["i"].as_str().unwrap())
            .arg("JSON")
            .arg(frame.to_string())
            .query(c)
            .unwrap_or_else(|e| panic!("{cmd} {key}: {e}"));
        n += 1;
    }
    n
}

fn attr(dom: &str, name: &str) -> Option<String> {
    let body = &dom[dom.find("<body")?..];
    let tag = &body[..body.find('>')?];
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    Some(tag[at..].split('"').next()?.to_string())
}

/// Distinct colours and the share of pixels unlike the top-left one, of a PNG.
fn png_stats(path: &Path) -> (usize, f64, (u32, u32)) {
    let decoder = png::Decoder::new(std::fs::File::open(path).expect("screenshot"));
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let bpp = info.color_type.samples();
    let px: Vec<&[u8]> = buf[..info.buffer_size()].chunks(bpp).collect();
    let bg = px[0].to_vec();
    let mut colours = std::collections::HashSet::new();
    let mut differ = 0usize;
    for p in &px {
        colours.insert(p.to_vec());
        if p.iter()
            .zip(&bg)
            .take(3)
            .map(|(a, b)| a.abs_diff(*b) as u32)
            .sum::<u32>()
            > 30
        {
            differ += 1;
        }
    }
    (
        colours.len(),
        differ as f64 / px.len() as f64,
        (info.width, info.height),
    )
}

#[test]
fn chromium_draws_a_replayed_capture_without_other_hosts() {
    let s = redis();
    let mut c = s.conn();
    let frames = replay_klines(&mut c);
    assert!(frames > 100, "{frames} kline frames");
    let key = "candle:{BTCUSDT}:1m";
    let truth: Vec<Value> =
        serde_json::from_str(&range_json(&mut c, key, "-", "+", Some(720))).unwrap();
    assert!(truth.len() >= 2, "{truth:?}");
    assert!(
        truth.iter().any(|c| c["status"] == "live"),
        "the capture ends with a live candle"
    );
    let w = web(&s, &[]);
    let origin = w.base();
    let page = format!("{origin}/?key={}&tz=utc", candles_testkit::web::encode(key));
    let tmp = tempfile::tempdir().unwrap();

    // 1. The DOM after drawing: every candle on the chart, pixels painted, the picker filled.
    //    The page sets data-painted once it has drawn the WebSocket's snapshot and measured the
    //    canvas (the picker is filled before it connects).
    let netlog = tmp.path().join("net.json");
    let mut browser = cdp::Browser::launch(
        &tmp.path().join("p1"),
        &[format!("--log-net-log={}", netlog.display())],
        &page,
    );
    browser.wait_for("document.body?.dataset.painted", Duration::from_secs(60));
    let dom = browser.dom();
    // (3. The screenshot, taken in the same run once the chart is drawn.)
    let png = browser.screenshot();
    // Closed before the net log is read: Chromium completes the file as it exits.
    browser.close();
    let drawn = attr(&dom, "data-candles").unwrap_or_else(|| panic!("nothing drawn; DOM:\n{dom}"));
    assert_eq!(drawn, truth.len().to_string(), "candles drawn");
    let painted: usize = attr(&dom, "data-painted")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("canvas not inspected; DOM:\n{dom}"));
    assert!(painted > 1000, "canvas barely painted: {painted}");
    assert!(
        dom.contains("class=\"status live\""),
        "status not live:\n{dom}"
    );
    for sym in ["BTCUSDT", "ETHUSDT", "DOTUSDT"] {
        assert!(
            dom.contains(&format!("<option value=\"candle:{{{sym}}}:1m\"")),
            "{sym} missing from the picker"
        );
    }

    // 2. Every request the page made went to candles-web itself (the browser's own background
    //    requests carry no page initiator and are not the page's).
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&netlog).expect("net log"))
        .expect("net log JSON");
    let mut page_urls = Vec::new();
    for e in log["events"].as_array().expect("events") {
        let p = &e["params"];
        if let (Some(url), Some(init)) = (p["url"].as_str(), p["initiator"].as_str()) {
            if init.starts_with("http://127.0.0.1") {
                page_urls.push(url.to_string());
            }
        }
    }
    let ws_origin = origin.replace("http://", "ws://");
    assert!(
        page_urls
            .iter()
            .any(|u| u.starts_with(&format!("{ws_origin}/ws?"))),
        "{page_urls:?}"
    );
    assert!(
        page_urls
            .iter()
            .any(|u| u.ends_with("/lightweight-charts.js")),
        "{page_urls:?}"
    );
    for u in &page_urls {
        assert!(
            u.starts_with(&origin) || u.starts_with(&ws_origin),
            "the page asked another host: {u}"
        );
    }
    // What the binary serves names no other host to fetch from (the licence's and the
    // library's attribution links are links, not requests).
    for asset in ["/", "/app.js", "/app.css", "/lightweight-charts.js"] {
        let body = w.get(asset).body;
        for (at, _) in body.match_indices("://") {
            let host: String = body[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            assert!(
                ["www.w3.org", "www.apache.org", "www.tradingview.com"].contains(&host.as_str()),
                "{asset} mentions {host}"
            );
        }
    }

    // 3. A screenshot: saved under target/, and it is a chart, not a blank page.
    let shot = workspace_root().join("target").join("candles-web-test.png");
    let _ = std::fs::create_dir_all(shot.parent().unwrap());
    std::fs::write(&shot, png).expect("write the screenshot");
    let (colours, share, size) = png_stats(&shot);
    eprintln!(
        "screenshot {}: {size:?}, {colours} colours, {:.1}% painted",
        shot.display(),
        share * 100.0
    );
    assert_eq!(size, (1200, 700));
    assert!(colours > 20, "{colours} colours: a blank page?");
    assert!(share > 0.01, "{share}: almost nothing drawn");
}
