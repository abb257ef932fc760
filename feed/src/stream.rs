//! The WebSocket side: stream names cut into combined-stream connections, and one reader task
//! per connection (reconnect with backoff, pongs, renewal before Binance's 24 h cut) that hands
//! the frames to the writer.

use crate::backoff::{Backoff, Shutdown};
use crate::config::{self, Args, Series};
use crate::errors::chain;
use crate::stats::STATS;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
pub use tokio_tungstenite::tungstenite::Utf8Bytes;
use tracing::{info, warn};

/// Frames in flight between the WebSocket readers and the writer; beyond it frames are dropped
/// (and the official candles among them come back by gap fill).
pub const CHANNEL_CAPACITY: usize = 1 << 16;

#[derive(Debug)]
pub enum Msg {
    /// Connection `conn` (index into the stream chunks) was (re)opened.
    Connected {
        conn: usize,
    },
    Frame(Utf8Bytes),
    /// The bootstrap stored the history of series `series` (index into the series); its oldest
    /// open time (None if the exchange had none).
    Bootstrapped {
        series: usize,
        first_open: Option<i64>,
    },
}

/// Stream names (klines of every series, then aggTrade per symbol if asked) cut into
/// connections of at most `per_conn` streams.
pub fn stream_chunks(series: &[Series], trades: bool, per_conn: usize) -> Vec<Vec<String>> {
    let mut names: Vec<String> = series.iter().map(Series::stream_name).collect();
    if trades {
        let mut seen = Vec::new();
        for s in series {
            if !seen.contains(&s.symbol) {
                seen.push(s.symbol.clone());
                names.push(config::trade_stream_name(&s.symbol));
            }
        }
    }
    names.chunks(per_conn.max(1)).map(|c| c.to_vec()).collect()
}

/// `<ws-url>/stream?streams=a/b/c`
pub fn stream_url(ws_url: &str, names: &[String]) -> String {
    format!(
        "{}/stream?streams={}",
        ws_url.trim_end_matches('/'),
        names.join("/")
    )
}
pub async fn ws_reader(
    conn: usize,
    url: String,
    n_streams: usize,
    args: Args,
    tx: mpsc::Sender<Msg>,
    shutdown: Shutdown,
) {
    let mut backoff = Backoff::new(args.backoff_min, args.backoff_max);
    let mut dropped: u64 = 0;
    let mut connected_before = false;
    loop {
        if shutdown.is_set() {
            return;
        }
        let connect = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true);
        let ws = tokio::select! {
            _ = shutdown.wait() => return,
            r = tokio::time::timeout(Duration::from_secs(10), connect) => r,
        };
        let mut ws = match ws {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                STATS.add_ws_error();
                let d = backoff.next_delay();
                warn!(conn, url = %short_url(&url), error = %chain(&e), retry_in_ms = d.as_millis() as u64, attempt = backoff.attempts(), "websocket connect failed, retrying");
                if !shutdown.sleep(d).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                STATS.add_ws_error();
                let d = backoff.next_delay();
                warn!(conn, url = %short_url(&url), retry_in_ms = d.as_millis() as u64, "websocket connect timed out, retrying");
                if !shutdown.sleep(d).await {
                    return;
                }
                continue;
            }
        };
        info!(conn, streams = n_streams, url = %short_url(&url), "websocket connected");
        if connected_before {
            STATS.add_reconnect();
        }
        connected_before = true;
        if tx.send(Msg::Connected { conn }).await.is_err() {
            return;
        }
        let opened = Instant::now();
        let renew_at = tokio::time::Instant::now() + args.ws_max_age;
        let mut frames: u64 = 0;
        // Why the connection ended, and whether to reconnect at once (planned) or after backoff.
        let (reason, planned): (String, bool) = loop {
            let next = tokio::select! {
                _ = shutdown.wait() => {
                    let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
                    return;
                }
                _ = tokio::time::sleep_until(renew_at) => break ("connection age limit reached, renewing".into(), true),
                r = tokio::time::timeout(args.ws_idle_timeout, ws.next()) => r,
            };
            match next {
                Err(_) => break (format!("no frame for {:?}", args.ws_idle_timeout), false),
                Ok(None) => break ("closed by the server".into(), false),
                Ok(Some(Err(e))) => break (format!("read error: {}", chain(&e)), false),
                Ok(Some(Ok(Message::Text(t)))) => {
                    frames += 1;
                    if t.len() < 200 && t.contains("serverShutdown") {
                        break ("serverShutdown event".into(), true);
                    }
                    match tx.try_send(Msg::Frame(t)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            dropped += 1;
                            if dropped % 1000 == 1 {
                                warn!(conn, dropped, "writer is behind (redis down?), dropping frames; gap fill will restore official candles");
                            }
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                Ok(Some(Ok(Message::Ping(_)))) => {
                    // tungstenite queued the pong; flush it now rather than on the next read.
                    if let Err(e) = ws.flush().await {
                        break (format!("sending pong: {}", chain(&e)), false);
                    }
                }
                Ok(Some(Ok(Message::Close(f)))) => break (format!("close frame {f:?}"), false),
                Ok(Some(Ok(_))) => {}
            }
        };
        if planned {
            info!(conn, reason = %reason, "websocket reconnecting");
            let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
            backoff.reset();
            continue;
        }
        STATS.add_ws_error();
        if frames > 0 && opened.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        let d = backoff.next_delay();
        warn!(conn, reason = %reason, frames, retry_in_ms = d.as_millis() as u64, "websocket disconnected, reconnecting");
        if !shutdown.sleep(d).await {
            return;
        }
    }
}

fn short_url(url: &str) -> String {
    if url.len() > 160 {
        format!(
            "{}…",
            &url[..url
                .char_indices()
                .nth(157)
                .map(|(i, _)| i)
                .unwrap_or(url.len())]
        )
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candles_core::Interval;

    #[test]
    fn chunks_and_urls() {
        let t = "candle:{SYMBOL}:INTERVAL";
        let series: Vec<Series> = ["BTCUSDT", "ETHUSDT"]
            .iter()
            .flat_map(|s| [Interval::M1, Interval::H1].map(|i| Series::new(s, i, t)))
            .collect();
        let c = stream_chunks(&series, true, 1024);
        assert_eq!(c.len(), 1);
        assert_eq!(
            stream_url("wss://stream.binance.com:9443/", &c[0]),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@kline_1m/btcusdt@kline_1h/ethusdt@kline_1m/ethusdt@kline_1h/btcusdt@aggTrade/ethusdt@aggTrade"
        );
        let c = stream_chunks(&series, false, 3);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);
        let many: Vec<Series> = (0..1100)
            .map(|i| Series::new(&format!("S{i}"), Interval::M1, t))
            .collect();
        let c = stream_chunks(&many, false, 1024);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), [1024, 76]);
    }
}
