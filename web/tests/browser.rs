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
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// Runs headless Chromium on `url` with `extra` flags (at most 90 s; killed after).
fn run_chromium(profile: &Path, extra: &[String], url: &str) -> String {
    let mut child = Command::new(chromium())
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
            "--virtual-time-budget=8000",
            // Every name resolves to nothing but 127.0.0.1: a request elsewhere cannot succeed.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap_or_default()
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
    let netlog = tmp.path().join("net.json");
    // A machine busy with other builds can dump the DOM before the first frame was measured:
    // up to three loads.
    let mut dom = String::new();
    for attempt in 1..=3 {
        dom = run_chromium(
            &tmp.path().join(format!("p1-{attempt}")),
            &[
                "--dump-dom".into(),
                format!("--log-net-log={}", netlog.display()),
            ],
            &page,
        );
        if attr(&dom, "data-painted").is_some() {
            break;
        }
        eprintln!("load {attempt}: the canvas was not measured yet; DOM:\n{dom}");
    }
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
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &tmp.path().join("p2"),
        &[format!("--screenshot={}", shot.display())],
        &page,
    );
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
