//! The raw protocol over real HTTP and WebSocket connections: the server on
//! 127.0.0.1 port 0, reqwest and tokio-tungstenite as clients.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bayeux::{Audience, Config, InMemoryLog, InMemorySessionStore, Server, ShutdownMode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::demo::{self, DemoHooks, DemoServer, TOKEN};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

/// Aborts the serving task when the test ends, pass or fail.
struct Running {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config() -> Config {
    Config {
        timeout: Duration::from_secs(5),
        max_request_bytes: 8 * 1024,
        max_messages_per_request: 10,
        ..Config::default()
    }
}

async fn start() -> (DemoServer, String, Running) {
    let server = demo::demo_server(config());
    let (addr, task) = demo::spawn(server.clone(), SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    (
        server,
        format!("http://{addr}{}", demo::BASE_PATH),
        Running { task },
    )
}

async fn post(url: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = tokio::time::timeout(WAIT, reqwest::Client::new().post(url).body(body).send())
        .await
        .expect("reply in time")
        .expect("HTTP works");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_json(url: &str, body: Value) -> Vec<Value> {
    let (status, v) = post(url, body.to_string()).await;
    assert_eq!(status, 200, "{v}");
    match v {
        Value::Array(a) => a,
        other => panic!("not an array: {other}"),
    }
}

fn handshake_msg(ack: bool) -> Value {
    json!([{ "channel": "/meta/handshake", "id": "1", "version": "1.0",
              "supportedConnectionTypes": ["websocket", "long-polling"],
              "ext": { "token": TOKEN, "user": "alice", "ack": ack } }])
}

fn connect_msg(id: &str, transport: &str, ack: Option<u64>) -> Value {
    let mut m = json!({ "channel": "/meta/connect", "id": "c", "clientId": id, "connectionType": transport });
    if let Some(a) = ack {
        m["ext"] = json!({ "ack": a });
    }
    json!([m])
}

#[tokio::test]
async fn long_polling_with_message_type_urls() {
    let (server, url, _running) = start().await;
    let r = post_json(&format!("{url}/handshake"), handshake_msg(false)).await;
    assert_eq!(r[0]["successful"], true);
    let id = r[0]["clientId"].as_str().unwrap().to_owned();
    let r = post_json(
        &format!("{url}/connect"),
        connect_msg(&id, "long-polling", None),
    )
    .await;
    assert_eq!(r[0]["successful"], true);
    let r = post_json(
        &format!("{url}/subscribe"),
        json!([{ "channel": "/meta/subscribe", "id": "s", "clientId": id, "subscription": "/v2/me/*" }]),
    )
    .await;
    assert_eq!(r[0]["successful"], true, "{r:?}");

    let s2 = server.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        s2.publish(
            "/v2/me/calls",
            json!({ "call": 1 }),
            Audience::principal("alice"),
        )
        .await
        .unwrap();
    });
    let t = Instant::now();
    let r = post_json(
        &format!("{url}/connect"),
        connect_msg(&id, "long-polling", None),
    )
    .await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "returned on the message, not the timeout"
    );
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(
        r[0],
        json!({ "channel": "/v2/me/calls", "data": { "call": 1 } })
    );
    assert_eq!(r[1]["channel"], "/meta/connect");

    // A batch of several messages in one POST, to `<base>/` (where the
    // official client sends batches).
    let r = post_json(
        &format!("{url}/"),
        json!([{ "channel": "/meta/unsubscribe", "id": "u", "clientId": id, "subscription": "/v2/me/*" },
               { "channel": "/meta/disconnect", "id": "d", "clientId": id }]),
    )
    .await;
    assert_eq!(
        (r[0]["successful"].clone(), r[1]["successful"].clone()),
        (json!(true), json!(true))
    );
    let r = post_json(
        &format!("{url}/connect"),
        connect_msg(&id, "long-polling", None),
    )
    .await;
    assert_eq!(r[0]["error"], "402::session_unknown");
}

#[tokio::test]
async fn credentials_in_headers_reach_the_authentication_hook() {
    let (_server, url, _running) = start().await;
    let hs = json!([{ "channel": "/meta/handshake", "id": "1", "supportedConnectionTypes": ["long-polling"] }]);
    let client = reqwest::Client::new();
    for (name, value) in [
        ("authorization", format!("Bearer {TOKEN}")),
        ("cookie", format!("a=b; demo_token={TOKEN}")),
    ] {
        let r: Value = client
            .post(&url)
            .header(name, value)
            .body(hs.to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r[0]["successful"], true, "{name}: {r}");
    }
    let r = post_json(&url, hs).await;
    assert_eq!(r[0]["error"], "403::invalid_token");
    assert_eq!(r[0]["advice"]["reconnect"], "none");
}

#[tokio::test]
async fn bad_requests_get_4xx_never_5xx() {
    let (_server, url, _running) = start().await;
    let (status, body) = post(&url, "{not json").await;
    assert_eq!(status, 400);
    assert!(
        body[0]["error"].as_str().unwrap().starts_with("400::"),
        "{body}"
    );
    assert_eq!(post(&url, "[]").await.0, 400);
    assert_eq!(post(&url, "\"a string\"").await.0, 400);
    let too_many = Value::Array(vec![json!({ "channel": "/meta/connect" }); 11]);
    assert_eq!(post(&url, too_many.to_string()).await.0, 413);
    let too_big = format!("[{{\"channel\":\"/x\",\"data\":\"{}\"}}]", "a".repeat(9000));
    assert_eq!(post(&url, too_big).await.0, 413);
    // A GET that is not a WebSocket upgrade.
    let r = reqwest::get(&url).await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Odd but valid JSON messages get Bayeux error replies.
    let r = post_json(
        &url,
        json!([{ "channel": "/meta/subscribe" }, { "nochannel": 1 }, 7]),
    )
    .await;
    assert_eq!(r.len(), 3);
    assert!(r.iter().all(|m| m["successful"] == false), "{r:?}");
}

#[tokio::test]
async fn graceful_shutdown_answers_held_long_polls() {
    let (server, url, running) = start().await;
    let r = post_json(&url, handshake_msg(false)).await;
    let id = r[0]["clientId"].as_str().unwrap().to_owned();
    post_json(&url, connect_msg(&id, "long-polling", None)).await;
    let held = tokio::spawn({
        let url = url.clone();
        async move { post_json(&url, connect_msg(&id, "long-polling", None)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown(ShutdownMode::Close).await;
    let r = tokio::time::timeout(WAIT, held).await.unwrap().unwrap();
    assert_eq!(r[0]["advice"]["reconnect"], "none", "{r:?}");
    // The HTTP server then stops accepting.
    let deadline = Instant::now() + WAIT;
    while !running.task.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(running.task.is_finished(), "server task ended");
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn ws_open(url: &str, headers: &[(&str, &str)]) -> Socket {
    let mut req = url.replacen("http", "ws", 1).into_client_request().unwrap();
    for (k, v) in headers {
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("upgrade in time")
        .expect("upgrade accepted")
        .0
}

async fn ws_send(ws: &mut Socket, v: Value) {
    ws.send(Ws::text(v.to_string())).await.unwrap();
}

/// The next text frame, as a message array.
async fn ws_recv(ws: &mut Socket) -> Vec<Value> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("frame in time")
            .expect("socket open")
            .unwrap();
        if let Ws::Text(t) = frame {
            return serde_json::from_str::<Vec<Value>>(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn websocket_holds_connects_while_answering_other_messages() {
    let (server, url, _running) = start().await;
    let mut ws = ws_open(&url, &[]).await;
    ws_send(&mut ws, handshake_msg(false)).await;
    let r = ws_recv(&mut ws).await;
    assert_eq!(r[0]["successful"], true, "{r:?}");
    let id = r[0]["clientId"].as_str().unwrap().to_owned();
    ws_send(&mut ws, connect_msg(&id, "websocket", None)).await;
    assert_eq!(ws_recv(&mut ws).await[0]["successful"], true);

    // Connect held; a subscribe sent meanwhile is answered first.
    ws_send(&mut ws, connect_msg(&id, "websocket", None)).await;
    ws_send(
        &mut ws,
        json!([{ "channel": "/meta/subscribe", "id": "s", "clientId": id, "subscription": "/chat/**" }]),
    )
    .await;
    let r = ws_recv(&mut ws).await;
    assert_eq!(r[0]["channel"], "/meta/subscribe");
    assert_eq!(r[0]["successful"], true);

    // A client publish is acknowledged and delivered through the held connect.
    ws_send(
        &mut ws,
        json!([{ "channel": "/chat/a/b", "id": "p", "clientId": id, "data": "hi" }]),
    )
    .await;
    let mut frames = [ws_recv(&mut ws).await, ws_recv(&mut ws).await];
    frames.sort_by_key(|f| f.len());
    assert_eq!(frames[0][0]["id"], "p");
    assert_eq!(frames[0][0]["successful"], true);
    assert_eq!(
        frames[1][0],
        json!({ "channel": "/chat/a/b", "data": "hi" })
    );
    assert_eq!(frames[1][1]["channel"], "/meta/connect");
    assert_eq!(server.metrics().messages_delivered, 1);
}

#[tokio::test]
async fn websocket_upgrade_headers_authenticate_the_handshake() {
    let (_server, url, _running) = start().await;
    let hs = json!([{ "channel": "/meta/handshake", "id": "1", "supportedConnectionTypes": ["websocket"] }]);
    let mut ws = ws_open(&url, &[("cookie", &format!("demo_token={TOKEN}"))]).await;
    ws_send(&mut ws, hs.clone()).await;
    assert_eq!(ws_recv(&mut ws).await[0]["successful"], true);
    let mut ws = ws_open(&url, &[]).await;
    ws_send(&mut ws, hs).await;
    assert_eq!(ws_recv(&mut ws).await[0]["error"], "403::invalid_token");
    ws_send(&mut ws, Value::String("garbage".into())).await;
    assert!(
        ws_recv(&mut ws).await[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("400::")
    );
}

/// A reply lost with its socket is sent again on a new socket when the
/// client acknowledges only the batch before it.
#[tokio::test]
async fn ack_resends_a_reply_lost_with_its_websocket() {
    let (server, url, _running) = start().await;
    let mut ws = ws_open(&url, &[]).await;
    ws_send(&mut ws, handshake_msg(true)).await;
    let r = ws_recv(&mut ws).await;
    assert_eq!(r[0]["ext"]["ack"], true);
    let id = r[0]["clientId"].as_str().unwrap().to_owned();
    ws_send(&mut ws, connect_msg(&id, "websocket", Some(0))).await;
    let batch0 = ws_recv(&mut ws).await[0]["ext"]["ack"].as_u64().unwrap();
    ws_send(&mut ws, json!([{ "channel": "/meta/subscribe", "id": "s", "clientId": id, "subscription": "/news" }])).await;
    ws_recv(&mut ws).await;

    ws_send(&mut ws, connect_msg(&id, "websocket", Some(batch0))).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server
        .publish("/news", json!("m1"), Audience::All)
        .await
        .unwrap();
    // The reply with m1 is written by the server but never read here.
    let deadline = Instant::now() + WAIT;
    while server.metrics().messages_delivered < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(ws);

    server
        .publish("/news", json!("m2"), Audience::All)
        .await
        .unwrap();
    let mut ws = ws_open(&url, &[]).await;
    ws_send(&mut ws, connect_msg(&id, "websocket", Some(batch0))).await;
    let r = ws_recv(&mut ws).await;
    let data: Vec<&Value> = r.iter().filter_map(|m| m.get("data")).collect();
    assert_eq!(data, [&json!("m1"), &json!("m2")]);
    let batch = r.last().unwrap()["ext"]["ack"].as_u64().unwrap();

    ws_send(&mut ws, connect_msg(&id, "websocket", Some(batch))).await;
    server
        .publish("/news", json!("m3"), Audience::All)
        .await
        .unwrap();
    let r = ws_recv(&mut ws).await;
    let data: Vec<&Value> = r.iter().filter_map(|m| m.get("data")).collect();
    assert_eq!(
        data,
        [&json!("m3")],
        "acknowledged messages are not sent again"
    );
}

type NodeServer = Server<DemoHooks, Arc<InMemorySessionStore<String>>, Arc<InMemoryLog>>;

async fn start_node(
    store: &Arc<InMemorySessionStore<String>>,
    log: &Arc<InMemoryLog>,
) -> (NodeServer, String, Running) {
    let server = Server::new(config(), DemoHooks, store.clone(), log.clone());
    let app = bayeux::axum::router_at(demo::BASE_PATH, server.clone());
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (
        server,
        format!("http://{addr}{}", demo::BASE_PATH),
        Running { task },
    )
}

/// Two servers sharing one store and one log, as two nodes sharing a
/// database would: a session made on one continues on the other, and a
/// reply lost on one is resent by the other.
#[tokio::test]
async fn a_session_continues_on_another_node_without_loss() {
    let store = Arc::new(InMemorySessionStore::new());
    let log = Arc::new(InMemoryLog::new(1000));
    let (node_a, url_a, _a) = start_node(&store, &log).await;
    let (_node_b, url_b, _b) = start_node(&store, &log).await;

    let r = post_json(&url_a, handshake_msg(true)).await;
    let id = r[0]["clientId"].as_str().unwrap().to_owned();
    let r = post_json(&url_b, connect_msg(&id, "long-polling", Some(0))).await;
    let batch0 = r[0]["ext"]["ack"].as_u64().unwrap();
    post_json(&url_a, json!([{ "channel": "/meta/subscribe", "id": "s", "clientId": id, "subscription": "/v2/me/calls" }])).await;

    node_a
        .publish("/v2/me/calls", json!(1), Audience::principal("alice"))
        .await
        .unwrap();
    // Served by node A; pretend the reply is lost on the way.
    let lost = post_json(&url_a, connect_msg(&id, "long-polling", Some(batch0))).await;
    assert_eq!(lost[0]["data"], 1);
    node_a
        .publish("/v2/me/calls", json!(2), Audience::principal("alice"))
        .await
        .unwrap();
    node_a
        .publish("/v2/me/calls", json!(3), Audience::principal("bob"))
        .await
        .unwrap();

    // Node B continues from the last acknowledged batch.
    let r = post_json(&url_b, connect_msg(&id, "long-polling", Some(batch0))).await;
    let data: Vec<&Value> = r.iter().filter_map(|m| m.get("data")).collect();
    assert_eq!(data, [&json!(1), &json!(2)]);
    let batch = r.last().unwrap()["ext"]["ack"].as_u64().unwrap();

    // A held connect on node B is woken by a publish on node A.
    let held = tokio::spawn({
        let url_b = url_b.clone();
        let id = id.clone();
        async move { post_json(&url_b, connect_msg(&id, "long-polling", Some(batch))).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    node_a
        .publish("/v2/me/calls", json!(4), Audience::principal("alice"))
        .await
        .unwrap();
    let r = tokio::time::timeout(WAIT, held).await.unwrap().unwrap();
    assert!(t.elapsed() < Duration::from_secs(3));
    let data: Vec<&Value> = r.iter().filter_map(|m| m.get("data")).collect();
    assert_eq!(data, [&json!(4)]);
}
