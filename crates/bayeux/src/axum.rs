//! The two transports as an `axum` router: `long-polling` (POST)
//! and `websocket` (GET upgrade), on the same base path.
//!
//! ```text
//! let app = my_routes.merge(bayeux::axum::router_at("/api/v2/notifications", server));
//! ```
//!
//! Limits: request bodies and WebSocket messages are capped at
//! [`Config::max_request_bytes`](crate::Config::max_request_bytes) (HTTP 413
//! / the socket is closed), and at
//! [`Config::max_messages_per_request`](crate::Config::max_messages_per_request)
//! messages. A body that is not JSON gets HTTP 400 with a Bayeux-shaped error
//! array; nothing a client sends causes a 500.

use std::sync::Arc;
use std::time::Duration;

use ::axum::Router;
use ::axum::body::Bytes;
use ::axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use ::axum::extract::{DefaultBodyLimit, State};
use ::axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::engine::Server;
use crate::error::RequestError;
use crate::hooks::{Hooks, RequestContext, RequestPrincipal, Transport};
use crate::log::MessageLog;
use crate::message::parse_messages;
use crate::session::SessionStore;

const JSON: &str = "application/json;charset=UTF-8";

/// A router serving both transports at `base` (e.g. `/api/v2/notifications`):
/// WebSocket upgrades and long-polling POSTs at `base`, long-polling also at
/// `base/` and `base/<anything>` (the official client appends the message
/// type: `/handshake`, `/connect`, ..., and posts batches to `base/`).
/// Combine it with the rest of an application with `Router::merge`.
///
/// (`Router::nest` is not enough: a nested router never sees `base/`.)
pub fn router_at<H, S, L>(base: &str, server: Server<H, S, L>) -> Router
where
    H: Hooks,
    S: SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    let limit = server.config().max_request_bytes;
    let base = base.trim_end_matches('/');
    let root = if base.is_empty() { "/" } else { base };
    let mut r = Router::new().route(root, get(websocket::<H, S, L>).post(long_poll::<H, S, L>));
    if !base.is_empty() {
        r = r.route(&format!("{base}/"), post(long_poll::<H, S, L>));
    }
    r.route(
        &format!("{base}/{{*message_type}}"),
        post(long_poll::<H, S, L>),
    )
    .layer(DefaultBodyLimit::max(limit))
    .with_state(server)
}

/// [`router_at`] the root: for a server dedicated to Bayeux.
pub fn router<H, S, L>(server: Server<H, S, L>) -> Router
where
    H: Hooks,
    S: SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    router_at("/", server)
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

fn request_error_body(e: &RequestError) -> String {
    let code = match e {
        RequestError::TooManyMessages { .. } => 413,
        _ => 400,
    };
    let message = e.to_string().replace(':', " ");
    serde_json::json!([{ "successful": false, "error": format!("{code}::{message}") }]).to_string()
}

async fn long_poll<H, S, L>(
    State(server): State<Server<H, S, L>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response
where
    H: Hooks,
    S: SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    let ctx = RequestContext {
        headers: &headers,
        transport: Transport::LongPolling,
    };
    match server.handle_request(&ctx, &body).await {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => {
            let status = match e {
                RequestError::TooManyMessages { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            json_response(status, request_error_body(&e))
        }
    }
}

async fn websocket<H, S, L>(
    State(server): State<Server<H, S, L>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, ::axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response
where
    H: Hooks,
    S: SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let ctx = RequestContext {
        headers: &headers,
        transport: Transport::WebSocket,
    };
    // Authenticated once, at the upgrade: the socket carries only this principal's sessions.
    let who = match server.admit(&ctx).await {
        Ok(who) => Arc::new(who),
        Err(d) if d.transient => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "1")],
                d.reason,
            )
                .into_response();
        }
        Err(d) => return (StatusCode::FORBIDDEN, d.reason).into_response(),
    };
    let limit = server.config().max_request_bytes;
    upgrade
        .protocols(["cometd"])
        .max_message_size(limit)
        .max_frame_size(limit)
        // tungstenite's defaults (128 KiB each) are zero-filled on first use and stay resident
        // for every idle session: with 10,000 subscribers that is over a GiB. Bayeux frames are
        // small; a larger frame still arrives whole, the buffer just fills in more reads.
        .read_buffer_size(WEBSOCKET_BUFFER_BYTES)
        .write_buffer_size(WEBSOCKET_BUFFER_BYTES)
        .on_upgrade(move |socket| serve_socket(server, Arc::new(headers), who, socket))
}

/// The read and write buffer of each WebSocket (see `websocket`).
const WEBSOCKET_BUFFER_BYTES: usize = 4 * 1024;

/// One WebSocket: frames are processed in order, except `/meta/connect`s,
/// which are held in their own tasks so that a subscribe or publish sent
/// while a connect is held is answered at once. All writes go through one
/// writer task.
async fn serve_socket<H, S, L>(
    server: Server<H, S, L>,
    headers: Arc<HeaderMap>,
    who: Arc<RequestPrincipal>,
    socket: WebSocket,
) where
    H: Hooks,
    S: SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(WsMessage::Text(text.into())).await.is_err() {
                return;
            }
        }
        // Best effort: the peer may already be gone.
        let _ = sink.close().await;
    });
    let mut connects = JoinSet::new();
    let mut shutdown = server.shutdown_watch();
    let max_messages = server.config().max_messages_per_request;
    let mut shutting_down = server.shutdown_mode().is_some();

    while !shutting_down {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            changed = shutdown.changed() => {
                shutting_down = changed.is_err() || shutdown.borrow().is_some();
                continue;
            }
            Some(_) = connects.join_next(), if !connects.is_empty() => continue,
        };
        let bytes = match frame {
            Some(Ok(WsMessage::Text(t))) => Bytes::from(t),
            Some(Ok(WsMessage::Binary(b))) => b,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
        };
        let parsed = match parse_messages(&bytes, max_messages) {
            Ok(p) => p,
            Err(e) => {
                if tx.send(request_error_body(&e)).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let ctx = RequestContext {
            headers: &headers,
            transport: Transport::WebSocket,
        };
        // Boxed: inline, its future would make every socket's task as large as the largest
        // message handling, for the socket's whole life.
        let (out, held) = Box::pin(server.handle_parsed(&ctx, &who, parsed)).await;
        if !out.is_empty() && tx.send(out.to_json_array()).await.is_err() {
            break;
        }
        for msg in held {
            let server = server.clone();
            let headers = headers.clone();
            let who = who.clone();
            let tx = tx.clone();
            connects.spawn(async move {
                let ctx = RequestContext {
                    headers: &headers,
                    transport: Transport::WebSocket,
                };
                let out = server.handle_message(&ctx, &who, &msg).await;
                // The socket may have closed meanwhile; then there is no one to tell.
                let _ = tx.send(out.to_json_array()).await;
            });
        }
    }

    if shutting_down {
        // Held connects were woken by the shutdown; let their replies
        // (carrying the shutdown advice) go out before closing.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while connects.join_next().await.is_some() {}
        })
        .await;
    }
    // Dropping the set aborts connects still held for a closed socket.
    drop(connects);
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}
