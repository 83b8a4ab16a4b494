//! The load client: a minimal Bayeux 1.0 client over `websocket` (tokio-tungstenite) and
//! `long-polling` (hyper HTTP/1.1, one keep-alive connection per session), the same code for
//! every server measured (Confer's engine, cometd-nodejs-server, Faye, `confer serve`).
//!
//! It speaks only what every one of those servers understands: handshake, subscribe, a
//! `/meta/connect` loop (the first connect asks `advice.timeout: 0`, as the official client
//! does, so it is answered at once), publish, disconnect. Delivered messages are every message
//! carrying `data` on a non-meta channel, whether it comes in a connect reply (Confer, CometD)
//! or pushed on its own on the socket (Faye). No acknowledge extension.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{self, HeaderValue};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single exchange before the connect loop (handshake, subscribe) may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A Bayeux transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    WebSocket,
    LongPolling,
}

impl Transport {
    /// The Bayeux `connectionType`.
    pub fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::LongPolling => "long-polling",
        }
    }
}

/// Where a CometD server is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The server's address (loopback).
    pub addr: SocketAddr,
    /// The CometD path, e.g. `/cometd` or `/api/v2/notifications`.
    pub path: String,
    /// An `Authorization` header value for the handshake (and, on long-polling, every POST).
    pub authorization: Option<String>,
}

impl Endpoint {
    /// An endpoint without credentials.
    pub fn new(addr: SocketAddr, path: &str) -> Self {
        Self {
            addr,
            path: path.to_owned(),
            authorization: None,
        }
    }

    /// The same endpoint with HTTP Basic credentials.
    pub fn with_basic(mut self, user: &str, password: &str) -> Self {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.authorization = Some(format!("Basic {token}"));
        self
    }
}

/// What can go wrong in a session.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("http request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("not Bayeux JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{channel} refused: {error}")]
    Refused { channel: String, error: String },
    #[error("the server closed the connection")]
    Closed,
    #[error("no reply to {0} within {EXCHANGE_TIMEOUT:?}")]
    Timeout(&'static str),
}

/// One message received from the server: only the fields the client looks at. Borrowed from
/// the frame, so a delivered message is never copied before the caller reads it.
#[derive(Debug, Deserialize)]
pub struct Incoming<'a> {
    #[serde(borrow)]
    pub channel: std::borrow::Cow<'a, str>,
    #[serde(default)]
    pub successful: Option<bool>,
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
    #[serde(default, rename = "clientId", borrow)]
    pub client_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub advice: Option<IncomingAdvice>,
    #[serde(default, borrow)]
    pub id: Option<&'a RawValue>,
}

/// The advice fields the connect loop obeys.
#[derive(Debug, Deserialize)]
pub struct IncomingAdvice {
    #[serde(default)]
    pub reconnect: Option<String>,
}

impl Incoming<'_> {
    /// Whether this is a delivered message (data on a non-meta channel) rather than a reply.
    pub fn is_delivery(&self) -> bool {
        self.data.is_some() && !self.channel.starts_with("/meta/") && self.successful.is_none()
    }

    fn id_is(&self, id: u64) -> bool {
        self.id.is_some_and(|raw| {
            let s = raw.get().trim_matches('"');
            s.parse::<u64>() == Ok(id)
        })
    }

    fn refused(&self) -> ClientError {
        ClientError::Refused {
            channel: self.channel.to_string(),
            error: self.error.clone().unwrap_or_else(|| "unsuccessful".into()),
        }
    }
}

/// Parses one frame or reply body: a JSON array of messages, or one message object.
pub fn parse_frame(text: &str) -> Result<Vec<Incoming<'_>>, serde_json::Error> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        Ok(vec![serde_json::from_str(trimmed)?])
    } else {
        serde_json::from_str(trimmed)
    }
}

async fn tcp(addr: SocketAddr) -> Result<TcpStream, ClientError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| ClientError::Connect { addr, source })?;
    // Small frames both ways: Nagle would add its delay to every measured latency.
    stream
        .set_nodelay(true)
        .map_err(|source| ClientError::Connect { addr, source })?;
    Ok(stream)
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One keep-alive HTTP/1.1 connection that POSTs Bayeux message arrays.
pub struct HttpLane {
    sender: http1::SendRequest<Full<Bytes>>,
    endpoint: Endpoint,
    host: HeaderValue,
    cookies: Vec<(String, String)>,
    /// Whether to keep and send cookies (a Bayeux session's lane) or not (a lane shared by
    /// many users, whose requests carry their own `Cookie`).
    jar: bool,
    conn: tokio::task::JoinHandle<()>,
}

impl Drop for HttpLane {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl HttpLane {
    /// Opens the connection.
    pub async fn open(endpoint: &Endpoint) -> Result<Self, ClientError> {
        let stream = tcp(endpoint.addr).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        let conn = tokio::spawn(async move {
            // Ends when the connection closes or the lane is dropped; nothing to report.
            let _ = conn.await;
        });
        let host = HeaderValue::from_str(&endpoint.addr.to_string())
            .map_err(|e| ClientError::Request(e.into()))?;
        Ok(Self {
            sender,
            endpoint: endpoint.clone(),
            host,
            cookies: Vec::new(),
            jar: true,
            conn,
        })
    }

    /// A lane that neither keeps nor sends cookies: each request brings its own.
    pub async fn open_without_cookies(endpoint: &Endpoint) -> Result<Self, ClientError> {
        let mut lane = Self::open(endpoint).await?;
        lane.jar = false;
        Ok(lane)
    }

    /// POSTs `body` (a JSON array) to the endpoint and returns the reply body. Cookies the
    /// server sets are sent back, as a browser would (cometd-nodejs-server keys sessions to its
    /// browser cookie).
    pub async fn post(&mut self, body: String) -> Result<String, ClientError> {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
        if let Some(auth) = &self.endpoint.authorization {
            let value = HeaderValue::from_str(auth).map_err(|e| ClientError::Request(e.into()))?;
            headers.insert(header::AUTHORIZATION, value);
        }
        let path = self.endpoint.path.clone();
        let (status, bytes) = self
            .request(hyper::Method::POST, &path, headers, Bytes::from(body))
            .await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status != 200 {
            return Err(ClientError::Status { status, body: text });
        }
        Ok(text)
    }

    /// Sends one request on this connection (with the lane's cookies) and returns the status
    /// and body.
    pub async fn request(
        &mut self,
        method: hyper::Method,
        path: &str,
        headers: hyper::HeaderMap,
        body: Bytes,
    ) -> Result<(u16, Bytes), ClientError> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.clone())
            .body(Full::new(body))?;
        req.headers_mut().extend(headers);
        if self.jar && !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let value = HeaderValue::from_str(&jar.join("; "))
                .map_err(|e| ClientError::Request(e.into()))?;
            req.headers_mut().insert(header::COOKIE, value);
        }
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        for set in resp
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|_| self.jar)
        {
            let Some((name, value)) = set
                .to_str()
                .ok()
                .and_then(|s| s.split(';').next())
                .and_then(|kv| kv.split_once('='))
            else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            self.cookies.retain(|(k, _)| *k != name);
            self.cookies.push((name, value));
        }
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

enum Conn {
    Ws(Box<Ws>),
    Lp(HttpLane),
}

/// A handshaken Bayeux session.
pub struct Session {
    conn: Conn,
    endpoint: Endpoint,
    client_id: String,
    next_id: u64,
    connect_replies: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
}

/// What a session's connect loop saw.
#[derive(Debug, Default, Clone)]
pub struct LoopStats {
    /// Connect replies received.
    pub connects: u64,
    /// Delivered messages (data on a non-meta channel).
    pub deliveries: u64,
    /// Replies other than connects (publish acknowledgements, ...) that were unsuccessful.
    pub failures: u64,
}

/// Why a connect loop ended.
#[derive(Debug)]
pub enum LoopEnd {
    /// The stop signal.
    Stopped,
    /// The server ended the session (unsuccessful connect, or `reconnect: none|handshake`).
    Ended(String),
    /// A transport or protocol error.
    Failed(ClientError),
}

impl Session {
    /// Connects and handshakes on `transport`.
    pub async fn open(endpoint: &Endpoint, transport: Transport) -> Result<Self, ClientError> {
        let conn = match transport {
            Transport::WebSocket => {
                let url = format!("ws://{}{}", endpoint.addr, endpoint.path);
                let mut request = url.into_client_request()?;
                if let Some(auth) = &endpoint.authorization {
                    let value =
                        HeaderValue::from_str(auth).map_err(|e| ClientError::Request(e.into()))?;
                    request.headers_mut().insert(header::AUTHORIZATION, value);
                }
                let stream = tcp(endpoint.addr).await?;
                let (ws, _) =
                    tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
                Conn::Ws(Box::new(ws))
            }
            Transport::LongPolling => Conn::Lp(HttpLane::open(endpoint).await?),
        };
        let mut session = Self {
            conn,
            endpoint: endpoint.clone(),
            client_id: String::new(),
            next_id: 1,
            connect_replies: None,
        };
        let id = session.take_id();
        let hs = json!([{
            "channel": "/meta/handshake",
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": [transport.name()],
            "id": id.to_string(),
        }]);
        let reply = session.exchange(hs.to_string(), id, "handshake").await?;
        session.client_id = reply;
        Ok(session)
    }

    /// Counts this session's connect replies in `counter` (to know when a connect is held).
    pub fn count_connects(&mut self, counter: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        self.connect_replies = Some(counter);
    }

    fn connect_replied(&self) {
        if let Some(c) = &self.connect_replies {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The server-assigned clientId.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The transport of this session.
    pub fn transport(&self) -> Transport {
        match self.conn {
            Conn::Ws(_) => Transport::WebSocket,
            Conn::Lp(_) => Transport::LongPolling,
        }
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Subscribes to `channel`; an unsuccessful reply is an error.
    pub async fn subscribe(&mut self, channel: &str) -> Result<(), ClientError> {
        let id = self.take_id();
        let msg = json!([{
            "channel": "/meta/subscribe",
            "clientId": self.client_id,
            "subscription": channel,
            "id": id.to_string(),
        }]);
        self.exchange(msg.to_string(), id, "subscribe").await?;
        Ok(())
    }

    /// Sends `body` and waits for the reply with id `id`; returns its clientId (or "").
    /// Deliveries seen meanwhile are dropped (nothing is published before a run starts).
    async fn exchange(
        &mut self,
        body: String,
        id: u64,
        what: &'static str,
    ) -> Result<String, ClientError> {
        tokio::time::timeout(EXCHANGE_TIMEOUT, self.exchange_inner(body, id))
            .await
            .map_err(|_| ClientError::Timeout(what))?
    }

    async fn exchange_inner(&mut self, body: String, id: u64) -> Result<String, ClientError> {
        match &mut self.conn {
            Conn::Lp(lane) => {
                let text = lane.post(body).await?;
                for m in parse_frame(&text)? {
                    if m.id_is(id) {
                        return found(&m);
                    }
                }
                Err(ClientError::Refused {
                    channel: "(reply)".into(),
                    error: format!("no reply with id {id} in {text}"),
                })
            }
            Conn::Ws(ws) => {
                ws.send(WsMessage::text(body)).await?;
                loop {
                    let text = match ws.next().await {
                        Some(Ok(WsMessage::Text(t))) => t,
                        Some(Ok(WsMessage::Close(_))) | None => return Err(ClientError::Closed),
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(e.into()),
                    };
                    for m in parse_frame(&text)? {
                        if m.id_is(id) {
                            return found(&m);
                        }
                    }
                }
            }
        }
    }

    fn connect_message(&mut self, first: bool) -> String {
        let id = self.take_id();
        let mut m = json!({
            "channel": "/meta/connect",
            "clientId": self.client_id,
            "connectionType": self.transport().name(),
            "id": id.to_string(),
        });
        if first {
            m["advice"] = json!({ "timeout": 0 });
        }
        Value::Array(vec![m]).to_string()
    }

    /// Runs the connect loop until `stop` turns true (or the session ends), calling
    /// `on_data(message, received_at)` for each delivered message. Every message of one
    /// frame or reply gets the same receipt instant, taken when it arrived.
    pub async fn run<F>(
        mut self,
        mut stop: watch::Receiver<bool>,
        mut on_data: F,
    ) -> (LoopStats, LoopEnd)
    where
        F: FnMut(&Incoming<'_>, Instant) + Send,
    {
        let mut stats = LoopStats::default();
        let first = self.connect_message(true);
        let end = match &mut self.conn {
            Conn::Ws(_) => {
                self.run_ws(first, &mut stop, &mut on_data, &mut stats)
                    .await
            }
            Conn::Lp(_) => {
                self.run_lp(first, &mut stop, &mut on_data, &mut stats)
                    .await
            }
        };
        (stats, end)
    }

    async fn run_ws<F>(
        &mut self,
        first: String,
        stop: &mut watch::Receiver<bool>,
        on_data: &mut F,
        stats: &mut LoopStats,
    ) -> LoopEnd
    where
        F: FnMut(&Incoming<'_>, Instant) + Send,
    {
        let mut pending = Some(first);
        loop {
            if let Some(next) = pending.take() {
                let Conn::Ws(ws) = &mut self.conn else {
                    unreachable!()
                };
                if let Err(e) = ws.send(WsMessage::text(next)).await {
                    return LoopEnd::Failed(e.into());
                }
            }
            let Conn::Ws(ws) = &mut self.conn else {
                unreachable!()
            };
            let frame = tokio::select! {
                f = ws.next() => f,
                () = stopped(stop) => return LoopEnd::Stopped,
            };
            let received = Instant::now();
            let text = match frame {
                Some(Ok(WsMessage::Text(t))) => t,
                Some(Ok(WsMessage::Close(_))) | None => {
                    return LoopEnd::Failed(ClientError::Closed);
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return LoopEnd::Failed(e.into()),
            };
            let messages = match parse_frame(&text) {
                Ok(m) => m,
                Err(e) => return LoopEnd::Failed(e.into()),
            };
            let mut connect_done = false;
            for m in &messages {
                if m.is_delivery() {
                    stats.deliveries += 1;
                    on_data(m, received);
                } else if m.channel == "/meta/connect" {
                    stats.connects += 1;
                    if let Some(end) = connect_ended(m) {
                        return end;
                    }
                    self.connect_replied();
                    connect_done = true;
                } else if m.successful == Some(false) {
                    stats.failures += 1;
                }
            }
            let is_stopped = *stop.borrow();
            if connect_done && !is_stopped {
                pending = Some(self.connect_message(false));
            }
        }
    }

    async fn run_lp<F>(
        &mut self,
        first: String,
        stop: &mut watch::Receiver<bool>,
        on_data: &mut F,
        stats: &mut LoopStats,
    ) -> LoopEnd
    where
        F: FnMut(&Incoming<'_>, Instant) + Send,
    {
        let mut next = first;
        loop {
            let Conn::Lp(lane) = &mut self.conn else {
                unreachable!()
            };
            let text = tokio::select! {
                r = lane.post(next) => match r {
                    Ok(t) => t,
                    Err(e) => return LoopEnd::Failed(e),
                },
                () = stopped(stop) => return LoopEnd::Stopped,
            };
            let received = Instant::now();
            let messages = match parse_frame(&text) {
                Ok(m) => m,
                Err(e) => return LoopEnd::Failed(e.into()),
            };
            for m in &messages {
                if m.is_delivery() {
                    stats.deliveries += 1;
                    on_data(m, received);
                } else if m.channel == "/meta/connect" {
                    stats.connects += 1;
                    if let Some(end) = connect_ended(m) {
                        return end;
                    }
                    self.connect_replied();
                } else if m.successful == Some(false) {
                    stats.failures += 1;
                }
            }
            let is_stopped = *stop.borrow();
            if is_stopped {
                return LoopEnd::Stopped;
            }
            next = self.connect_message(false);
        }
    }

    /// A second HTTP connection for the same session (long-polling: the first one is busy
    /// with the held connect, so publishes go on another, as a browser's second connection).
    /// It shares the session's cookies, as a browser's connections do (cometd-nodejs-server
    /// finds a session only with the browser cookie it set at the handshake).
    pub async fn extra_lane(&self) -> Result<HttpLane, ClientError> {
        let mut lane = HttpLane::open(&self.endpoint).await?;
        if let Conn::Lp(own) = &self.conn {
            lane.cookies = own.cookies.clone();
        }
        Ok(lane)
    }

    /// Splits a websocket session into its socket, for a publisher that writes and reads
    /// concurrently. `None` on long-polling.
    fn into_ws(self) -> Option<(Box<Ws>, String, u64)> {
        match self.conn {
            Conn::Ws(ws) => Some((ws, self.client_id, self.next_id)),
            Conn::Lp(_) => None,
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone); holds no borrow of the watch, so
/// the select! branches using it stay `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn found(m: &Incoming<'_>) -> Result<String, ClientError> {
    if m.successful == Some(true) {
        Ok(m.client_id.as_deref().unwrap_or("").to_owned())
    } else {
        Err(m.refused())
    }
}

/// Whether a connect reply ends the session (and how).
fn connect_ended(m: &Incoming<'_>) -> Option<LoopEnd> {
    let reconnect = m.advice.as_ref().and_then(|a| a.reconnect.as_deref());
    if m.successful == Some(false) || matches!(reconnect, Some("none" | "handshake")) {
        return Some(LoopEnd::Ended(format!(
            "connect: successful={:?} error={:?} reconnect={reconnect:?}",
            m.successful, m.error
        )));
    }
    None
}

/// The payload of a benchmark message: its sequence number and its send time in
/// microseconds since the run's epoch (publisher and subscribers share the process, so one
/// monotonic clock serves both), padded to the configured size.
#[derive(Debug, Deserialize)]
pub struct BenchData {
    pub s: u64,
    pub t: u64,
}

/// Builds a payload of exactly `size` bytes of JSON when `size` is large enough for the
/// numbers (otherwise as small as possible).
pub fn bench_payload(seq: u64, t_us: u64, size: usize) -> String {
    let bare = format!(r#"{{"s":{seq},"t":{t_us},"p":""}}"#);
    let pad = size.saturating_sub(bare.len());
    format!(r#"{{"s":{seq},"t":{t_us},"p":"{}"}}"#, "x".repeat(pad))
}

/// What the publisher did.
#[derive(Debug, Default, Clone)]
pub struct PublishStats {
    /// Messages published (sent).
    pub sent: u64,
    /// Publish acknowledgements that were successful.
    pub acked: u64,
    /// Publish acknowledgements that were not.
    pub refused: u64,
    /// Why publishing stopped early, if it did.
    pub error: Option<String>,
}

/// The publish schedule: `count` messages at `rate` per second, in batches (one frame or
/// POST per tick holding every message due by then, at most [`MAX_BATCH`]), so a slow
/// server gets the same offered load whatever its reply time.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub channel: String,
    pub rate: f64,
    pub count: u64,
    pub size: usize,
    pub epoch: Instant,
}

/// Most publishes in one frame or POST: Confer's default `max_messages_per_request` is 100.
pub const MAX_BATCH: u64 = 100;
const TICK: Duration = Duration::from_millis(2);
/// How long the publisher waits for the last acknowledgements after sending everything.
const ACK_GRACE: Duration = Duration::from_secs(2);

fn publish_batch(
    client_id: &str,
    channel: &str,
    first_seq: u64,
    n: u64,
    t_us: u64,
    size: usize,
    next_id: &mut u64,
) -> String {
    let mut out = String::from("[");
    for k in 0..n {
        if k > 0 {
            out.push(',');
        }
        let data = bench_payload(first_seq + k, t_us, size);
        out.push_str(&format!(
            r#"{{"channel":"{channel}","clientId":"{client_id}","id":"{}","data":{data}}}"#,
            *next_id
        ));
        *next_id += 1;
    }
    out.push(']');
    out
}

/// Publishes `schedule` from an open session, keeping its connect loop alive meanwhile (a
/// session without connects would expire). Returns when everything is sent and acknowledged,
/// or `stop` turns true.
pub async fn publish(
    session: Session,
    schedule: Schedule,
    mut stop: watch::Receiver<bool>,
) -> PublishStats {
    let mut stats = PublishStats::default();
    match session.transport() {
        Transport::WebSocket => {
            let Some((mut ws, client_id, mut next_id)) = session.into_ws() else {
                unreachable!()
            };
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let connect = |id: u64, first: bool| {
                let mut m = json!({"channel":"/meta/connect","clientId":client_id,"connectionType":"websocket","id":id.to_string()});
                if first {
                    m["advice"] = json!({"timeout": 0});
                }
                Value::Array(vec![m]).to_string()
            };
            let first = connect(next_id, true);
            next_id += 1;
            if let Err(e) = ws.send(WsMessage::text(first)).await {
                stats.error = Some(e.to_string());
                return stats;
            }
            let start = Instant::now();
            let mut all_sent: Option<Instant> = None;
            loop {
                if stats.sent >= schedule.count {
                    // Everything is sent: wait a little for the acknowledgements, not forever
                    // (an overloaded server answers late; what it delivers is measured anyway).
                    let deadline = *all_sent.get_or_insert_with(|| Instant::now() + ACK_GRACE);
                    if stats.acked + stats.refused >= stats.sent || Instant::now() >= deadline {
                        break;
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(50)), if stats.sent >= schedule.count => {}
                    _ = tick.tick(), if stats.sent < schedule.count => {
                        let due = ((start.elapsed().as_secs_f64() * schedule.rate) as u64 + 1)
                            .min(schedule.count);
                        let n = due.saturating_sub(stats.sent).min(MAX_BATCH);
                        if n == 0 { continue; }
                        let t = schedule.epoch.elapsed().as_micros() as u64;
                        let body = publish_batch(&client_id, &schedule.channel, stats.sent, n, t, schedule.size, &mut next_id);
                        if let Err(e) = ws.send(WsMessage::text(body)).await {
                            stats.error = Some(e.to_string());
                            break;
                        }
                        stats.sent += n;
                    }
                    frame = ws.next() => {
                        let text = match frame {
                            Some(Ok(WsMessage::Text(t))) => t,
                            Some(Ok(WsMessage::Close(_))) | None => { stats.error = Some("closed".into()); break; }
                            Some(Ok(_)) => continue,
                            Some(Err(e)) => { stats.error = Some(e.to_string()); break; }
                        };
                        let Ok(messages) = parse_frame(&text) else {
                            stats.error = Some(format!("bad frame {text}"));
                            break;
                        };
                        let mut reconnect = false;
                        for m in &messages {
                            if m.channel == "/meta/connect" {
                                reconnect = true;
                            } else if m.channel == schedule.channel && !m.is_delivery() {
                                if m.successful == Some(true) { stats.acked += 1 } else { stats.refused += 1 }
                            }
                        }
                        if reconnect {
                            let c = connect(next_id, false);
                            next_id += 1;
                            if let Err(e) = ws.send(WsMessage::text(c)).await {
                                stats.error = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    () = stopped(&mut stop) => break,
                }
            }
            let _ = WebSocketStream::close(&mut *ws, None).await;
        }
        Transport::LongPolling => {
            let mut lane = match session.extra_lane().await {
                Ok(l) => l,
                Err(e) => {
                    stats.error = Some(e.to_string());
                    return stats;
                }
            };
            let client_id = session.client_id.clone();
            let mut next_id = 1_000_000_000;
            // The held connects run on the session's own connection meanwhile.
            let (keep_tx, keep_rx) = watch::channel(false);
            let keeper = tokio::spawn(session.run(keep_rx, |_, _| {}));
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let start = Instant::now();
            loop {
                let is_stopped = *stop.borrow();
                if is_stopped || stats.sent >= schedule.count {
                    break;
                }
                tick.tick().await;
                let due = ((start.elapsed().as_secs_f64() * schedule.rate) as u64 + 1)
                    .min(schedule.count);
                let n = due.saturating_sub(stats.sent).min(MAX_BATCH);
                if n == 0 {
                    continue;
                }
                let t = schedule.epoch.elapsed().as_micros() as u64;
                let body = publish_batch(
                    &client_id,
                    &schedule.channel,
                    stats.sent,
                    n,
                    t,
                    schedule.size,
                    &mut next_id,
                );
                stats.sent += n;
                let reply = tokio::select! {
                    r = lane.post(body) => r,
                    () = stopped(&mut stop) => break,
                };
                let text = match reply {
                    Ok(text) => text,
                    Err(e) => {
                        stats.error = Some(e.to_string());
                        break;
                    }
                };
                let Ok(messages) = parse_frame(&text) else {
                    stats.error = Some(format!("bad reply {text}"));
                    break;
                };
                for m in messages
                    .iter()
                    .filter(|m| m.channel == schedule.channel && !m.is_delivery())
                {
                    if m.successful == Some(true) {
                        stats.acked += 1;
                    } else {
                        stats.refused += 1;
                    }
                }
            }
            let _ = keep_tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), keeper).await;
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_configured_size_and_read_back() {
        for size in [64, 256, 1024] {
            let p = bench_payload(123_456, 987_654_321, size);
            assert_eq!(p.len(), size);
            let d: BenchData = serde_json::from_str(&p).unwrap();
            assert_eq!((d.s, d.t), (123_456, 987_654_321));
        }
        // Too small for the numbers: as small as possible, still valid.
        let p = bench_payload(1, 2, 4);
        assert_eq!(p, r#"{"s":1,"t":2,"p":""}"#);
    }

    #[test]
    fn frames_are_arrays_or_single_messages_and_deliveries_are_told_from_replies() {
        let frame = r#"[{"channel":"/bench/x","data":{"s":1,"t":2}},
            {"channel":"/bench/x","successful":true,"id":"7"},
            {"channel":"/meta/connect","successful":true,"advice":{"reconnect":"retry"},"id":"8"}]"#;
        let ms = parse_frame(frame).unwrap();
        assert_eq!(ms.len(), 3);
        assert!(ms[0].is_delivery());
        assert!(
            !ms[1].is_delivery(),
            "a publish acknowledgement is not a delivery"
        );
        assert!(ms[1].id_is(7));
        assert!(connect_ended(&ms[2]).is_none());
        let one = parse_frame(r#"{"channel":"/meta/connect","successful":false,"error":"402::session_unknown","advice":{"reconnect":"handshake"}}"#).unwrap();
        assert!(matches!(connect_ended(&one[0]), Some(LoopEnd::Ended(_))));
        assert!(parse_frame("not json").is_err());
    }

    #[test]
    fn basic_credentials_are_encoded() {
        let e = Endpoint::new("127.0.0.1:1".parse().unwrap(), "/c").with_basic("agent", "pw");
        assert_eq!(e.authorization.as_deref(), Some("Basic YWdlbnQ6cHc="));
    }
}
