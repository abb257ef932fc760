//! The HTTP side: the page and its assets (embedded), the JSON API, the WebSocket.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::backend::{glob_match, Backend, Bound, SERIES_TYPE};
use crate::hub::Hub;

pub struct AppState {
    pub backend: Backend,
    pub hub: Arc<Hub>,
    pub viewers: AtomicUsize,
    pub max_viewers: usize,
    pub max_count: usize,
    pub max_series: usize,
    pub snapshot: usize,
    pub shutdown: watch::Receiver<bool>,
}

/// Longest key accepted in a request.
const MAX_KEY: usize = 1024;
/// A viewer's socket that accepts nothing for this long is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message a viewer may send (viewers have nothing to say; pings and closes fit).
const MAX_INCOMING: usize = 4096;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
const CHARTS_JS: &str = include_str!("../assets/lightweight-charts.standalone.production.js");
const CHARTS_LICENSE: &str = include_str!("../assets/LICENSE.lightweight-charts");

/// Content-Security-Policy of the page: nothing from another host, no inline script.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/lightweight-charts.js",
            get(|| asset(CHARTS_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/LICENSE.lightweight-charts",
            get(|| asset(CHARTS_LICENSE, "text/plain; charset=utf-8")),
        )
        .route("/api/series", get(series))
        .route("/api/candles", get(candles))
        .route("/ws", get(ws))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(state)
}

fn common(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

async fn index() -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response();
    common(&mut r);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn asset(body: &'static str, ctype: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, ctype)], body).into_response();
    common(&mut r);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// An error as JSON with an HTTP status: `{"error": "..."}`.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A Redis error: the module's refusals are the client's fault (400, or 404 for a key
    /// that is not a series), anything else is Redis being unavailable (502).
    fn redis(e: redis::RedisError) -> ApiError {
        let text = e.to_string();
        match e.kind() {
            redis::ErrorKind::TypeError if text.contains("WRONGTYPE") => {
                ApiError::new(StatusCode::NOT_FOUND, "not a candle series")
            }
            redis::ErrorKind::ResponseError | redis::ErrorKind::ExtensionError => {
                ApiError::new(StatusCode::BAD_REQUEST, text)
            }
            _ => {
                tracing::warn!("Redis error: {text}");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("Redis unavailable: {text}"),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        common(&mut r);
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }
}

fn json(body: String) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    common(&mut r);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Checks `key`: present, bounded, inside the served pattern, and a candle series.
async fn series_key(state: &AppState, q: &HashMap<String, String>) -> Result<String, ApiError> {
    let key = q
        .get("key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "missing 'key'"))?;
    if key.len() > MAX_KEY {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "'key' is too long"));
    }
    let not_served = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no candle series at '{key}'"),
        )
    };
    if !glob_match(state.backend.keys.as_bytes(), key.as_bytes()) {
        return Err(not_served());
    }
    let t = state.backend.key_type(key).await.map_err(ApiError::redis)?;
    if t != SERIES_TYPE {
        return Err(not_served());
    }
    Ok(key.clone())
}

async fn series(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let list = state
        .backend
        .list_series(state.max_series)
        .await
        .map_err(|e| {
            tracing::warn!("listing series: {e:#}");
            ApiError::new(StatusCode::BAD_GATEWAY, format!("Redis unavailable: {e:#}"))
        })?;
    let body = serde_json::to_string(&list)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(json(body))
}

async fn candles(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let key = series_key(&state, &q).await?;
    let bound = |name: &str, default: Bound| -> Result<Bound, ApiError> {
        match q.get(name) {
            None => Ok(default),
            Some(s) => Bound::parse(s).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("'{name}' must be an open time in ms, '-' or '+'"),
                )
            }),
        }
    };
    let from = bound("from", Bound::Min)?;
    let to = bound("to", Bound::Max)?;
    let count = match q.get("count") {
        None => None,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n <= state.max_count => Some(n),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("'count' must be between 0 and {}", state.max_count),
                ))
            }
        },
    };
    // Without `count` the whole range is asked for, bounded: one more than --max-count is
    // read, and a range holding more is refused rather than cut.
    let ask = count.unwrap_or(state.max_count.saturating_add(1));
    let body = state
        .backend
        .range_json(&key, from, to, Some(ask))
        .await
        .map_err(ApiError::redis)?;
    if count.is_none() && body.matches("{\"open_time\":").count() > state.max_count {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the range holds more than {} candles: narrow 'from'/'to' or give 'count'",
                state.max_count
            ),
        ));
    }
    Ok(json(body))
}

/// Counts a viewer for as long as it lives.
struct ViewerSlot(Arc<AppState>);

impl Drop for ViewerSlot {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn ws(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let key = series_key(&state, &q).await?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            format!("/ws is a WebSocket endpoint: {e}"),
        )
    })?;
    let n = state.viewers.fetch_add(1, Ordering::AcqRel);
    let slot = ViewerSlot(state.clone());
    if n >= state.max_viewers {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many viewers (at most {})", state.max_viewers),
        ));
    }
    Ok(upgrade
        .max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING)
        .on_upgrade(move |socket| view(socket, key, slot)))
}

async fn view(socket: WebSocket, key: String, slot: ViewerSlot) {
    let state = slot.0.clone();
    let mut shutdown = state.shutdown.clone();
    let hub = state.hub.clone();
    let mut viewer = hub.join(&key);
    let id = viewer.id;
    tracing::debug!(%key, viewer = id, "viewer joined");
    let (mut sink, mut incoming) = socket.split();
    let mut ping = tokio::time::interval(Duration::from_secs(30));
    ping.tick().await;
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            out = viewer.rx.recv() => match out {
                Some(text) => {
                    match tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(text))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break,
                        Err(_) => {
                            tracing::warn!(%key, viewer = id, "viewer not reading: dropped");
                            break;
                        }
                    }
                }
                None => {
                    // The hub dropped this viewer: it fell too far behind.
                    let _ = tokio::time::timeout(
                        Duration::from_millis(200),
                        sink.send(close(1013, "too slow")),
                    )
                    .await;
                    break;
                }
            },
            msg = incoming.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Ping(Default::default())))
                    .await
                    .map_or(true, |r| r.is_err())
                {
                    break;
                }
            }
            _ = shutdown.changed() => {
                let _ = tokio::time::timeout(
                    Duration::from_millis(200),
                    sink.send(close(1001, "server shutting down")),
                )
                .await;
                break;
            }
        }
    }
    hub.leave(&key, id);
    tracing::debug!(%key, viewer = id, "viewer left");
    drop(slot);
}
