//! What the multi-node tests share: a cluster of `confer serve` processes on one scratch schema
//! of the local PostgreSQL (optionally each behind its own TCP proxy to the database, which can
//! cut it off), CometD clients that choose the node of every request, and gRPC `Subscribe`
//! streams.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use confer_grpc::{proto, services::notification_service_client::NotificationServiceClient};
use confer_store::{Store, testing::PgTest};
use serde_json::{Value, json};
use tonic::{Streaming, metadata::MetadataValue, transport::Endpoint};

use confer_grpc::proto::notification::Payload;
use reqwest::Method;

use crate::{
    gws_support::{Gws, PASSWORD, VOICE_CALL_ID, basic, cometd::LongPoll, proxy::Proxy},
    support::ConferProcess,
};

pub const WAIT: Duration = Duration::from_secs(20);
/// What every node is told its clients reach it at (the load balancer's URL).
pub const PUBLIC_URL: &str = "http://confer.test:8080";

/// Nodes on one scratch schema. Dropping it kills the nodes, then drops the schema.
pub struct Cluster {
    pub nodes: Vec<ConferProcess>,
    /// Each node's proxy to PostgreSQL, when started with [`Cluster::start_proxied`].
    pub proxies: Vec<Proxy>,
    dirs: Vec<tempfile::TempDir>,
    /// The session key file every node shares (as a deployment shares one secret).
    keys: tempfile::TempDir,
    db: Option<PgTest>,
}

impl Cluster {
    /// `n` nodes; the first loads the demo world, the others find it in the database.
    pub async fn start(n: usize) -> Option<Self> {
        Self::start_with(n, false).await
    }

    /// `n` nodes, each reaching PostgreSQL through its own [`Proxy`] (in `proxies`).
    pub async fn start_proxied(n: usize) -> Option<Self> {
        Self::start_with(n, true).await
    }

    async fn start_with(n: usize, proxied: bool) -> Option<Self> {
        let db = PgTest::new().await?;
        let mut cluster = Self {
            nodes: Vec::new(),
            proxies: Vec::new(),
            dirs: Vec::new(),
            keys: tempfile::tempdir().expect("temp dir"),
            db: Some(db),
        };
        for i in 0..n {
            let url = if proxied {
                let proxy = Proxy::start(cluster.database_address().await)
                    .await
                    .expect("a proxy to PostgreSQL");
                let url = cluster.node_url(Some(proxy.addr));
                cluster.proxies.push(proxy);
                url
            } else {
                cluster.node_url(None)
            };
            cluster.add_node(&url, i == 0);
        }
        Some(cluster)
    }

    /// The URL a node is given: the test database on the cluster's schema (through `via`).
    pub fn node_url(&self, via: Option<SocketAddr>) -> String {
        let mut target = reqwest::Url::parse(self.url()).expect("a database URL");
        if let Some(via) = via {
            target
                .set_host(Some(&via.ip().to_string()))
                .expect("a host");
            target.set_port(Some(via.port())).expect("a port");
        }
        // The schema goes in the startup options, as the docs tell operators to do.
        let separator = if target.query().is_some() { '&' } else { '?' };
        format!(
            "{target}{separator}options=-csearch_path%3D{}",
            self.schema()
        )
    }

    /// Where PostgreSQL listens.
    pub async fn database_address(&self) -> SocketAddr {
        let target = reqwest::Url::parse(self.url()).expect("a database URL");
        let host = target.host_str().unwrap_or("127.0.0.1").to_owned();
        let port = target.port().unwrap_or(5432);
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .expect("the database host resolves")
            .next()
            .expect("an address")
    }

    /// Starts one more node on `database_url`.
    pub fn add_node(&mut self, database_url: &str, demo: bool) {
        let dir = tempfile::tempdir().expect("temp dir");
        // Behind a load balancer every node has the balancer's URL as its public URL, so
        // every node renders the same notification with the same URIs.
        let key_file = self.keys.path().join("session-keys");
        let key_file = key_file.to_str().expect("a UTF-8 temp path");
        let mut args = vec![
            "--database-url",
            database_url,
            "--public-url",
            PUBLIC_URL,
            "--session-key-file",
            key_file,
        ];
        if demo {
            args.push("--demo");
        }
        self.nodes.push(ConferProcess::start(dir.path(), &args));
        self.dirs.push(dir);
    }

    pub fn gws(&self, node: usize) -> Gws {
        Gws::new(&self.nodes[node].url(""))
    }

    pub fn url(&self) -> &str {
        &self.db.as_ref().expect("the database").url
    }

    pub fn schema(&self) -> &str {
        &self.db.as_ref().expect("the database").schema
    }

    /// A store on the cluster's schema, for looking at what the nodes wrote.
    pub fn store(&self) -> &dyn Store {
        self.db.as_ref().expect("the database").store.as_ref()
    }

    pub fn notifications(&self, node: usize) -> String {
        self.nodes[node].url("/api/v2/notifications")
    }

    /// `GET /readyz` of a node: its HTTP status, 0 when it does not answer.
    pub async fn readyz(&self, node: usize) -> u16 {
        crate::support::http()
            .get(self.nodes[node].url("/readyz"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Waits until the CometD session `client_id` has a connect held (up to `hold_ms`) by some
    /// node: the arrival of such a connect sets the session's expiry to its connect time plus
    /// the hold plus `max_interval` (10 s), which no other request does.
    pub async fn wait_until_held(&self, client_id: &str, hold_ms: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let session = self
                .store()
                .load_cometd_session(client_id)
                .await
                .expect("the store answers")
                .expect("the session exists");
            if session.expires_at_ms >= session.last_connect_ms + hold_ms {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no connect of {client_id} was held within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn finish(mut self) {
        self.nodes.clear();
        self.proxies.clear();
        if let Some(db) = self.db.take() {
            db.finish().await;
        }
    }
}

/// A CometD session of `username` on `url`, subscribed to `/v2/me/*`.
pub async fn subscriber(url: &str, username: &str) -> LongPoll {
    let basic = basic(username);
    let session = LongPoll::handshake(url, &[("Authorization", basic.as_str())], json!({}))
        .await
        .unwrap_or_else(|reply| panic!("{username}'s handshake was refused: {reply}"));
    let reply = session.subscribe("/v2/me/*").await;
    assert_eq!(reply["successful"], true, "{reply}");
    session
}

/// `"<channel> <notificationType>"` of each message.
pub fn types(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m["channel"].as_str().unwrap_or("?"),
                m["data"]["notificationType"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// A long-polling CometD session (with the acknowledge extension) whose every request names
/// the node it goes to.
pub struct Session {
    http: reqwest::Client,
    auth: String,
    pub client_id: String,
    /// The last batch id received and kept.
    pub ack: Option<u64>,
}

/// One `/meta/connect`: what it delivered, and its own reply.
pub struct Connected {
    pub messages: Vec<Value>,
    pub reply: Value,
}

impl Session {
    /// POSTs one message to `<url><path>`; the reply array, or why there is none.
    pub async fn post(&self, url: &str, path: &str, message: Value) -> Result<Vec<Value>, String> {
        let url = format!("{url}{path}");
        let response = self
            .http
            .post(&url)
            .header("Authorization", &self.auth)
            .json(&json!([message]))
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}"));
        }
        response
            .json()
            .await
            .map_err(|e| format!("{url}: not JSON: {e}"))
    }

    /// Handshakes on `url` (asking for the ack extension).
    pub async fn handshake(url: &str, username: &str) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let mut session = Self {
            http,
            auth: basic(username),
            client_id: String::new(),
            ack: None,
        };
        let reply = session
            .post(
                url,
                "/handshake",
                json!({"channel": "/meta/handshake", "version": "1.0",
                       "supportedConnectionTypes": ["long-polling"], "ext": {"ack": true}}),
            )
            .await
            .expect("a handshake reply");
        assert_eq!(reply[0]["successful"], true, "{reply:?}");
        assert_eq!(reply[0]["ext"]["ack"], true, "{reply:?}");
        session.client_id = reply[0]["clientId"].as_str().expect("clientId").to_owned();
        session
    }

    /// `/meta/subscribe` on `url`; its reply.
    pub async fn subscribe(&self, url: &str, subscription: &str) -> Value {
        let reply = self
            .post(
                url,
                "/subscribe",
                json!({"channel": "/meta/subscribe", "clientId": self.client_id,
                       "subscription": subscription}),
            )
            .await
            .expect("a subscribe reply");
        reply[0].clone()
    }

    /// `/meta/disconnect` on `url`; its reply.
    pub async fn disconnect(&self, url: &str) -> Value {
        let reply = self
            .post(
                url,
                "/disconnect",
                json!({"channel": "/meta/disconnect", "clientId": self.client_id}),
            )
            .await
            .expect("a disconnect reply");
        reply[0].clone()
    }

    /// One `/meta/connect` on `url`, held up to `hold_ms`. With `keep`, the batch id of a
    /// successful reply becomes the ack of the next connect; without, the reply is as good as
    /// lost on its way (neither acknowledged nor kept).
    pub async fn connect(
        &mut self,
        url: &str,
        hold_ms: u64,
        keep: bool,
    ) -> Result<Connected, String> {
        let mut message = json!({"channel": "/meta/connect", "clientId": self.client_id,
                                 "connectionType": "long-polling", "advice": {"timeout": hold_ms}});
        if let Some(ack) = self.ack {
            message["ext"] = json!({ "ack": ack });
        }
        let replies = self.post(url, "/connect", message).await?;
        let mut connected = Connected {
            messages: Vec::new(),
            reply: Value::Null,
        };
        for m in replies {
            if m["channel"] == "/meta/connect" {
                connected.reply = m;
            } else {
                connected.messages.push(m);
            }
        }
        if keep
            && connected.reply["successful"] == true
            && let Some(batch) = connected.reply["ext"]["ack"].as_u64()
        {
            self.ack = Some(batch);
        }
        Ok(connected)
    }
}

/// A long-polling client whose every request goes to the next node in turn, as behind a load
/// balancer that is not sticky; with the acknowledge extension.
pub struct Roaming {
    pub session: Session,
    pub urls: Vec<String>,
    next: usize,
}

impl Roaming {
    fn url(&mut self) -> String {
        let url = self.urls[self.next % self.urls.len()].clone();
        self.next += 1;
        url
    }

    /// Handshake, first connect (answered at once) and the subscription to `/v2/me/*`, each on
    /// the next node.
    pub async fn start(urls: Vec<String>, username: &str) -> Self {
        let mut client = Self {
            session: Session::handshake(&urls[0], username).await,
            urls,
            next: 1,
        };
        client.connect(0).await;
        let url = client.url();
        let reply = client.session.subscribe(&url, "/v2/me/*").await;
        assert_eq!(reply["successful"], true, "{reply:?}");
        client
    }

    /// One connect on the next node; the delivered messages.
    pub async fn connect(&mut self, hold_ms: u64) -> Vec<Value> {
        self.connect_keeping(hold_ms, true).await
    }

    /// A connect whose reply is lost on its way (the client never sees it, so it neither
    /// acknowledges it nor keeps its messages); how many messages it carried.
    pub async fn connect_lost(&mut self, hold_ms: u64) -> usize {
        self.connect_keeping(hold_ms, false).await.len()
    }

    async fn connect_keeping(&mut self, hold_ms: u64, keep: bool) -> Vec<Value> {
        let url = self.url();
        let connected = self
            .session
            .connect(&url, hold_ms, keep)
            .await
            .unwrap_or_else(|e| panic!("a connect: {e}"));
        assert_eq!(
            connected.reply["successful"], true,
            "connect failed: {}",
            connected.reply
        );
        connected.messages
    }
}

/// The changes several tests make: `Hold` and `Retrieve` of agent15000's call, through the
/// given nodes in turn, starting with the `first`-th (even: `Hold`); each answered with
/// success.
pub async fn hold_and_retrieve(gws: Vec<Gws>, first: usize, changes: usize) {
    let login = gws[0].login("agent15000").await;
    for i in first..first + changes {
        let operation = if i % 2 == 0 { "Hold" } else { "Retrieve" };
        let reply = gws[i % gws.len()]
            .post(
                &login,
                &format!("/api/v2/me/calls/{VOICE_CALL_ID}"),
                &format!(r#"{{"operationName":"{operation}"}}"#),
            )
            .await;
        assert_eq!(reply.codes(), (200, 0), "{operation}: {:?}", reply.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A gRPC `NotificationService.Subscribe` stream of `username` on the node at `grpc`, from
/// `after_seq` (the head when `None`).
pub async fn grpc_subscribe(
    grpc: SocketAddr,
    username: &str,
    after_seq: Option<u64>,
) -> Result<Streaming<proto::Notification>, tonic::Status> {
    let channel = Endpoint::from_shared(format!("http://{grpc}"))
        .expect("an endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(proto::SubscribeRequest { after_seq });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(basic_credentials(username)).expect("ASCII credentials"),
    );
    Ok(NotificationServiceClient::new(channel)
        .subscribe(request)
        .await?
        .into_inner())
}

fn basic_credentials(username: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{PASSWORD}"))
    )
}

/// The next notification of a stream within `within`: `None` on timeout, `Some(Err)` when the
/// stream failed or ended.
pub async fn next_notification(
    stream: &mut Streaming<proto::Notification>,
    within: Duration,
) -> Option<Result<proto::Notification, tonic::Status>> {
    match tokio::time::timeout(within, stream.message()).await {
        Err(_) => None,
        Ok(Ok(Some(n))) => Some(Ok(n)),
        Ok(Ok(None)) => Some(Err(tonic::Status::cancelled("the stream ended"))),
        Ok(Err(status)) => Some(Err(status)),
    }
}

/// Reads `count` notifications from a stream, failing the test if it ends or they do not come
/// within [`WAIT`].
pub async fn notifications(
    stream: &mut Streaming<proto::Notification>,
    count: usize,
) -> Vec<proto::Notification> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_notification(stream, left).await {
            Some(Ok(n)) => got.push(n),
            Some(Err(status)) => panic!("the stream failed after {}: {status}", got.len()),
            None => panic!("{} of {count} notifications within {WAIT:?}", got.len()),
        }
    }
    got
}

/// `(seq, part)` of each notification: what identifies it in the log.
pub fn positions(notifications: &[proto::Notification]) -> Vec<(u64, u32)> {
    notifications.iter().map(|n| (n.seq, n.part)).collect()
}

/// The call notification a gRPC notification carries: its type and the call's phone numbers.
pub fn grpc_call(notification: &proto::Notification) -> (String, Vec<String>) {
    match &notification.payload {
        Some(Payload::Call(message)) => (
            message.notification_type.clone(),
            message
                .call
                .as_ref()
                .map(|call| {
                    call.participants
                        .iter()
                        .map(|p| p.phone_number.clone())
                        .collect()
                })
                .unwrap_or_default(),
        ),
        other => panic!("not a call notification: {other:?}"),
    }
}

/// The phone numbers of the call in a CometD call notification.
pub fn cometd_numbers(message: &Value) -> Vec<String> {
    message["data"]["call"]["participants"]
        .as_array()
        .map(|parties| {
            parties
                .iter()
                .filter_map(|p| p["phoneNumber"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A removal through `gws`, as a client that may meet an outage sends it: with an
/// `Idempotency-Key`, so that a retry after an answer lost in the outage is answered with the
/// original success. `Some(true)` when acknowledged, `Some(false)` when refused, `None` when
/// there was no usable answer (connection error, 5xx).
pub async fn remove_party(gws: &Gws, cookie: &str, csrf: &str, number: &str) -> Option<bool> {
    let response = gws
        .request(Method::POST, &format!("/api/v2/me/calls/{VOICE_CALL_ID}"))
        .header("Cookie", cookie)
        .header("X-CSRF-TOKEN", csrf)
        .header("Idempotency-Key", format!("remove-{number}"))
        .header("Content-Type", "application/json")
        .body(
            json!({"operationName": "RemoveParticipantFromConference", "participant": number})
                .to_string(),
        )
        .send()
        .await
        .ok()?;
    let status = response.status();
    let body: Value = response.json().await.ok()?;
    if status.is_server_error() {
        return None;
    }
    Some(status.is_success() && body["statusCode"] == 0)
}

/// A gRPC subscriber of `username` on `grpc` from `after_seq` that, when its stream breaks (its
/// node lost PostgreSQL or died), subscribes again after the last seq it read to its end, as a
/// client should; returns the first `count` notifications it read (within 90 s).
pub async fn resuming_grpc_subscriber(
    grpc: SocketAddr,
    username: &'static str,
    after_seq: u64,
    count: usize,
) -> Vec<proto::Notification> {
    let mut got: Vec<proto::Notification> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut cursor = after_seq;
    while got.len() < count && tokio::time::Instant::now() < deadline {
        let Ok(mut stream) = grpc_subscribe(grpc, username, Some(cursor)).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        while got.len() < count {
            match next_notification(&mut stream, Duration::from_secs(60)).await {
                Some(Ok(n)) => {
                    if n.last_in_seq {
                        cursor = n.seq;
                    }
                    got.push(n);
                }
                Some(Err(_)) => {
                    // Parts of a seq not read to its end come again from its first part.
                    got.retain(|n| n.seq <= cursor);
                    break;
                }
                None => break,
            }
        }
    }
    got
}
