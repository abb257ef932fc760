//! A local Binance stand-in (REST klines + combined-stream WebSocket) on 127.0.0.1, for tests,
//! the benchmark and offline demos. Its data and its "now" are set by the caller.

use candles_core::Interval;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// The klines of one (symbol, interval), as REST rows (`[t,"o","h","l","c","v",T,"q",n,"V","Q","B"]`).
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub rows: Arc<Vec<Value>>,
    /// The stand-in's "now": rows opened after this are not served yet. None = all rows.
    pub visible_until: Option<i64>,
    /// Shift every time so that the last visible row opens in the current real minute (it is
    /// then the forming candle for the module too).
    pub shift_to_now: bool,
}

impl Dataset {
    pub fn new(rows: Vec<Value>) -> Dataset {
        Dataset {
            rows: Arc::new(rows),
            visible_until: None,
            shift_to_now: false,
        }
    }

    /// The rows the stand-in serves now, times shifted if asked.
    pub fn visible(&self, interval: Interval) -> Vec<Value> {
        let mut rows: Vec<Value> = self
            .rows
            .iter()
            .filter(|r| self.visible_until.is_none_or(|u| open_time(r) <= u))
            .cloned()
            .collect();
        if self.shift_to_now {
            if let Some(last) = rows.last().map(open_time) {
                let now = interval.align_down(real_now_ms());
                let off = now - last;
                for r in rows.iter_mut() {
                    if let Value::Array(f) = r {
                        for i in [0usize, 6] {
                            if let Some(t) = f.get(i).and_then(Value::as_i64) {
                                f[i] = Value::from(t + off);
                            }
                        }
                    }
                }
            }
        }
        rows
    }
}

pub fn open_time(row: &Value) -> i64 {
    row.get(0).and_then(Value::as_i64).unwrap_or(i64::MIN)
}

pub fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How the klines endpoint misbehaves for one symbol, until healed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolFault {
    /// Answer every klines request of the symbol with this HTTP status (e.g. 500).
    Status(u16),
    /// Never answer (the request hangs until the fault is healed or the client gives up).
    Hang,
}

/// What the stand-in saw and how it should misbehave.
#[derive(Debug, Default)]
pub struct State {
    /// Keyed by (SYMBOL, interval as Binance spells it).
    pub datasets: HashMap<(String, String), Dataset>,
    /// Served for a symbol without its own dataset, keyed by interval.
    pub fallback: HashMap<String, Dataset>,
    /// Status (and Retry-After seconds) for the next klines requests, one each.
    pub fail_next: VecDeque<(u16, Option<u64>)>,
    /// Per-symbol faults (upper-case symbol), until removed.
    pub symbol_faults: HashMap<String, SymbolFault>,
    /// Every REST request: when, and its path with query.
    pub requests: Vec<(Instant, String)>,
    /// X-MBX-USED-WEIGHT-1M sent back: grows by 2 per klines request unless set.
    pub used_weight: u32,
    /// Path of every WebSocket connection, in order.
    pub ws_connections: Vec<String>,
    /// WebSocket connections open now.
    pub ws_open: usize,
    /// Pongs received (answers to the stand-in's pings).
    pub pongs: usize,
    /// The kline archive (`/data/spot/…` path → zip or `.CHECKSUM` bytes), see
    /// [`crate::archive::files`]; other `/data/` paths answer 404.
    pub archive: HashMap<String, Vec<u8>>,
}

#[derive(Clone, Debug)]
enum WsCmd {
    Frame(Arc<str>),
    Ping,
    DropAll,
}

pub struct StandIn {
    pub rest_url: String,
    pub ws_url: String,
    state: Arc<Mutex<State>>,
    ws_tx: broadcast::Sender<WsCmd>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl StandIn {
    /// Starts both servers on ephemeral 127.0.0.1 ports (inside the current tokio runtime).
    pub async fn start() -> std::io::Result<StandIn> {
        let rest = TcpListener::bind("127.0.0.1:0").await?;
        let ws = TcpListener::bind("127.0.0.1:0").await?;
        let rest_url = format!("http://{}", rest.local_addr()?);
        let ws_url = format!("ws://{}", ws.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let (ws_tx, _) = broadcast::channel(1 << 16);
        let mut tasks = Vec::new();
        {
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok((sock, _)) = rest.accept().await {
                    let state = state.clone();
                    tokio::spawn(async move {
                        let _ = serve_http(sock, state).await;
                    });
                }
            }));
        }
        {
            let state = state.clone();
            let tx = ws_tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok((sock, _)) = ws.accept().await {
                    let state = state.clone();
                    let rx = tx.subscribe();
                    tokio::spawn(async move {
                        let _ = serve_ws(sock, state, rx).await;
                    });
                }
            }));
        }
        Ok(StandIn {
            rest_url,
            ws_url,
            state,
            ws_tx,
            tasks,
        })
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_dataset(&self, symbol: &str, interval: Interval, ds: Dataset) {
        self.state().datasets.insert(
            (symbol.to_ascii_uppercase(), interval.as_str().to_string()),
            ds,
        );
    }

    pub fn set_fallback(&self, interval: Interval, ds: Dataset) {
        self.state()
            .fallback
            .insert(interval.as_str().to_string(), ds);
    }

    /// Moves the stand-in's "now" of a dataset.
    pub fn set_visible_until(&self, symbol: &str, interval: Interval, t: Option<i64>) {
        if let Some(ds) = self
            .state()
            .datasets
            .get_mut(&(symbol.to_ascii_uppercase(), interval.as_str().to_string()))
        {
            ds.visible_until = t;
        }
    }

    /// Makes every klines request of `symbol` fail (`SymbolFault::Status`) or hang, until
    /// [`StandIn::heal_symbol`]. The other symbols are served as usual.
    pub fn fault_symbol(&self, symbol: &str, fault: SymbolFault) {
        self.state()
            .symbol_faults
            .insert(symbol.to_ascii_uppercase(), fault);
    }

    /// Ends the fault of `symbol` (a hanging request is then answered).
    pub fn heal_symbol(&self, symbol: &str) {
        self.state()
            .symbol_faults
            .remove(&symbol.to_ascii_uppercase());
    }

    /// Serves `files` (path → bytes) as the kline archive under `{rest_url}/data/…`.
    pub fn add_archive(&self, files: impl IntoIterator<Item = (String, Vec<u8>)>) {
        self.state().archive.extend(files);
    }

    /// Corrupts the archive file at `path` (one byte of its middle flipped), its `.CHECKSUM`
    /// left as it was: what a truncated or tampered download looks like.
    pub fn corrupt_archive(&self, path: &str) -> bool {
        match self.state().archive.get_mut(path) {
            Some(b) if !b.is_empty() => {
                let i = b.len() / 2;
                b[i] ^= 0x55;
                true
            }
            _ => false,
        }
    }

    /// Archive requests (`/data/…` paths) made so far.
    pub fn archive_requests(&self) -> Vec<String> {
        self.state()
            .requests
            .iter()
            .filter(|(_, p)| p.starts_with("/data/"))
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Klines requests made for `symbol` so far.
    pub fn klines_requests_for(&self, symbol: &str) -> usize {
        let want = format!("symbol={}", symbol.to_ascii_uppercase());
        self.state()
            .requests
            .iter()
            .filter(|(_, p)| {
                p.starts_with("/api/v3/klines")
                    && p.split(['?', '&']).any(|kv| kv.eq_ignore_ascii_case(&want))
            })
            .count()
    }

    /// Sends a frame to every open connection subscribed to its stream (all, if it has none).
    pub fn send_frame(&self, frame: impl Into<Arc<str>>) {
        let _ = self.ws_tx.send(WsCmd::Frame(frame.into()));
    }

    pub fn send_ping(&self) {
        let _ = self.ws_tx.send(WsCmd::Ping);
    }

    /// Cuts every WebSocket connection without a close frame.
    pub fn drop_connections(&self) {
        let _ = self.ws_tx.send(WsCmd::DropAll);
    }

    pub fn ws_connection_count(&self) -> usize {
        self.state().ws_connections.len()
    }

    pub fn klines_requests(&self) -> Vec<(Instant, String)> {
        self.state()
            .requests
            .iter()
            .filter(|(_, p)| p.starts_with("/api/v3/klines"))
            .cloned()
            .collect()
    }

    /// Waits (up to `timeout`) until `cond` holds on the state.
    pub async fn wait_for(
        &self,
        timeout: std::time::Duration,
        mut cond: impl FnMut(&State) -> bool,
    ) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if cond(&self.state()) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Reads a fixture: a REST klines body (array of rows).
pub fn rows_of_body(body: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(rows)) => Ok(rows),
        Ok(_) => Err("a klines body is a JSON array".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A combined-stream kline frame built from a REST row (the same numbers Binance would send).
pub fn kline_frame(
    symbol: &str,
    interval: Interval,
    row: &Value,
    closed: bool,
    event_time: i64,
) -> String {
    let f = |i: usize| {
        row.get(i)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "\"0\"".into())
    };
    let sym = symbol.to_ascii_uppercase();
    format!(
        concat!(
            r#"{{"stream":"{lsym}@kline_{iv}","data":{{"e":"kline","E":{e},"s":"{sym}","k":{{"t":{t},"T":{ct},"s":"{sym}","i":"{iv}","f":1,"L":2,"#,
            r#""o":{o},"c":{c},"h":{h},"l":{l},"v":{v},"n":{n},"x":{x},"q":{q},"V":{vb},"Q":{qb},"B":"0"}}}}}}"#
        ),
        lsym = sym.to_ascii_lowercase(),
        iv = interval.as_str(),
        e = event_time,
        sym = sym,
        t = f(0),
        ct = f(6),
        o = f(1),
        c = f(4),
        h = f(2),
        l = f(3),
        v = f(5),
        n = f(8),
        x = closed,
        q = f(7),
        vb = f(9),
        qb = f(10),
    )
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

/// Binance's klines selection: open time in [startTime, endTime]; with startTime the first
/// `limit`, otherwise the last `limit`.
pub fn select_klines(
    rows: &[Value],
    start: Option<i64>,
    end: Option<i64>,
    limit: usize,
) -> Vec<Value> {
    let sel: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            start.is_none_or(|s| open_time(r) >= s) && end.is_none_or(|e| open_time(r) <= e)
        })
        .collect();
    let limit = limit.clamp(1, 1000);
    let slice = if start.is_some() {
        &sel[..sel.len().min(limit)]
    } else {
        &sel[sel.len().saturating_sub(limit)..]
    };
    slice.iter().map(|v| (*v).clone()).collect()
}

fn klines_response(state: &Arc<Mutex<State>>, query: &str) -> (u16, Vec<(String, String)>, String) {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((status, after)) = st.fail_next.pop_front() {
        let mut h = vec![];
        if let Some(a) = after {
            h.push(("Retry-After".to_string(), a.to_string()));
        }
        return (
            status,
            h,
            format!(r#"{{"code":-1003,"msg":"stand-in: status {status}"}}"#),
        );
    }
    let symbol = query_param(query, "symbol")
        .unwrap_or("")
        .to_ascii_uppercase();
    if let Some(SymbolFault::Status(status)) = st.symbol_faults.get(&symbol).copied() {
        return (
            status,
            vec![],
            format!(r#"{{"code":-1000,"msg":"stand-in: {symbol} fails with {status}"}}"#),
        );
    }
    st.used_weight += 2;
    let h = vec![(
        "X-MBX-USED-WEIGHT-1M".to_string(),
        st.used_weight.to_string(),
    )];
    let interval = query_param(query, "interval").unwrap_or("");
    let Ok(iv) = Interval::parse(interval) else {
        return (400, h, r#"{"code":-1120,"msg":"Invalid interval."}"#.into());
    };
    let ds = st
        .datasets
        .get(&(symbol, interval.to_string()))
        .or_else(|| st.fallback.get(interval));
    let Some(ds) = ds else {
        return (400, h, r#"{"code":-1121,"msg":"Invalid symbol."}"#.into());
    };
    let num = |n: &str| query_param(query, n).and_then(|v| v.parse::<i64>().ok());
    let rows = select_klines(
        &ds.visible(iv),
        num("startTime"),
        num("endTime"),
        num("limit").unwrap_or(500) as usize,
    );
    (200, h, Value::Array(rows).to_string())
}

async fn serve_http(sock: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut content_len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    content_len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        if content_len > 0 {
            let mut body = vec![0u8; content_len.min(1 << 20)];
            r.read_exact(&mut body).await?;
        }
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests
            .push((Instant::now(), target.clone()));
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path == "/api/v3/klines" {
            let symbol = query_param(query, "symbol")
                .unwrap_or("")
                .to_ascii_uppercase();
            while state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .symbol_faults
                .get(&symbol)
                == Some(&SymbolFault::Hang)
            {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        let (status, headers, body): (u16, Vec<(String, String)>, Vec<u8>) = match path {
            "/api/v3/klines" => {
                let (s, h, b) = klines_response(&state, query);
                (s, h, b.into_bytes())
            }
            "/api/v3/ping" => (200, vec![], b"{}".to_vec()),
            "/api/v3/time" => (
                200,
                vec![],
                format!(r#"{{"serverTime":{}}}"#, real_now_ms()).into_bytes(),
            ),
            p if p.starts_with("/data/") => {
                match state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .archive
                    .get(p)
                {
                    Some(b) => (200, vec![], b.clone()),
                    None => (
                        404,
                        vec![],
                        b"<Error><Code>NoSuchKey</Code></Error>".to_vec(),
                    ),
                }
            }
            _ => (404, vec![], br#"{"code":-1,"msg":"not found"}"#.to_vec()),
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            418 => "I'm a teapot",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes()).await?;
        w.write_all(&body).await?;
        w.flush().await?;
    }
}

#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
async fn serve_ws(
    sock: TcpStream,
    state: Arc<Mutex<State>>,
    mut rx: broadcast::Receiver<WsCmd>,
) -> anyhow::Result<()> {
    let _ = sock.set_nodelay(true);
    let mut path = String::new();
    let ws = tokio_tungstenite::accept_hdr_async(sock, |req: &Request, resp: Response| {
        path = req.uri().to_string();
        Ok(resp)
    })
    .await?;
    let streams: HashSet<String> = path
        .split_once("streams=")
        .map(|(_, s)| {
            s.split('&')
                .next()
                .unwrap_or("")
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.ws_connections.push(path.clone());
        st.ws_open += 1;
    }
    let (mut tx, mut inbound) = ws.split();
    let result: anyhow::Result<()> = async {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Ok(WsCmd::Frame(f)) => {
                        let wanted = streams.is_empty()
                            || stream_name(&f).is_none_or(|s| streams.contains(s));
                        if wanted {
                            tx.send(Message::text(f.to_string())).await?;
                        }
                    }
                    Ok(WsCmd::Ping) => tx.send(Message::Ping(b"stand-in".to_vec().into())).await?,
                    Ok(WsCmd::DropAll) => return Ok(()),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                m = inbound.next() => match m {
                    Some(Ok(Message::Pong(_))) => state.lock().unwrap_or_else(|e| e.into_inner()).pongs += 1,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    .await;
    state.lock().unwrap_or_else(|e| e.into_inner()).ws_open -= 1;
    result
}

/// The `stream` of a combined-stream frame (`{"stream":"btcusdt@kline_1m","data":…}`).
fn stream_name(frame: &str) -> Option<&str> {
    let rest = frame.trim_start().strip_prefix("{\"stream\":\"")?;
    rest.split('"').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Value> {
        (0..10)
            .map(|i| {
                serde_json::json!([
                    i * 60_000,
                    "1.0",
                    "2.0",
                    "0.5",
                    "1.5",
                    "3",
                    i * 60_000 + 59_999,
                    "4",
                    5,
                    "1",
                    "2",
                    "0"
                ])
            })
            .collect()
    }

    #[test]
    fn selection_like_binance() {
        let r = rows();
        let t = |v: Vec<Value>| v.iter().map(open_time).collect::<Vec<_>>();
        assert_eq!(
            t(select_klines(&r, None, None, 3)),
            [420_000, 480_000, 540_000]
        );
        assert_eq!(
            t(select_klines(&r, Some(60_000), None, 2)),
            [60_000, 120_000]
        );
        assert_eq!(
            t(select_klines(&r, Some(60_000), Some(120_000), 1000)),
            [60_000, 120_000]
        );
        assert_eq!(
            t(select_klines(&r, None, Some(120_000), 2)),
            [60_000, 120_000]
        );
        assert!(select_klines(&r, Some(600_000), None, 10).is_empty());
    }

    #[test]
    fn visible_and_shift() {
        let mut d = Dataset::new(rows());
        d.visible_until = Some(120_000);
        assert_eq!(d.visible(Interval::M1).len(), 3);
        d.shift_to_now = true;
        let v = d.visible(Interval::M1);
        let now = Interval::M1.align_down(real_now_ms());
        assert!((open_time(&v[2]) - now).abs() <= 60_000);
        assert_eq!(v[2][6].as_i64().unwrap() - open_time(&v[2]), 59_999);
    }

    #[test]
    fn frames_parse_back() {
        let r = rows();
        let f = kline_frame("btcusdt", Interval::M1, &r[3], true, 123);
        let k = candles_core::binance::parse_klines(f.as_bytes()).unwrap();
        assert_eq!(k[0].candle.open_time, 180_000);
        assert_eq!(k[0].closed, Some(true));
        assert_eq!(k[0].symbol.as_deref(), Some("BTCUSDT"));
        assert_eq!(stream_name(&f), Some("btcusdt@kline_1m"));
        let rest = candles_core::binance::parse_klines(
            Value::Array(vec![r[3].clone()]).to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(rest[0].candle, k[0].candle);
    }
}
