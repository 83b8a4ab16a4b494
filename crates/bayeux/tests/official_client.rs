//! Interoperability with the unmodified official CometD JavaScript client
//! (npm `cometd` + `cometd-nodejs-client`), run by Node against a server
//! started here on port 0. Needs `node` and `npm` on PATH; `npm ci` is run
//! in tests/node once if its node_modules is missing.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bayeux::{Audience, Config};
use serde_json::{Value, json};
use support::demo::{self, DemoServer};
use support::node::{self, Script, event, messages};
use support::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(30);

struct Running(tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn start(config: Config) -> (DemoServer, SocketAddr, Running) {
    let server = demo::demo_server(config);
    let (addr, task) = demo::spawn(server.clone(), SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("bind");
    (server, addr, Running(task))
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}{}", demo::BASE_PATH)
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Handshake, subscribe to a wildcard and a plain channel, publish from the
/// client, receive server publishes (only the principal's own on
/// `/v2/me/calls`), get refusals for a forbidden subscribe and publish.
async fn pubsub(transport: &str) {
    let (server, addr, _running) = start(Config::default()).await;
    let mut node = Script::start(&node::dir(), "basic.mjs", &[&url(addr), transport]);
    let hs = node.wait_for(WAIT, |v| event(v, "handshake")).await;
    assert_eq!(hs["successful"], true, "{hs}");
    assert_eq!(hs["transport"], transport);
    node.wait_for(WAIT, |v| event(v, "published")).await;

    server
        .publish(
            "/v2/me/calls",
            json!({ "call": "for alice" }),
            Audience::principal("alice"),
        )
        .await
        .unwrap();
    server
        .publish(
            "/v2/me/calls",
            json!({ "call": "for bob" }),
            Audience::principal("bob"),
        )
        .await
        .unwrap();
    server
        .publish("/chat/room", json!({ "text": "hello" }), Audience::All)
        .await
        .unwrap();
    server
        .publish(
            "/chat/room/deep",
            json!({ "text": "below /chat/*" }),
            Audience::All,
        )
        .await
        .unwrap();
    server
        .publish("/chat/end", json!({ "end": true }), Audience::All)
        .await
        .unwrap();

    let (code, lines) = node.finish(WAIT).await;
    assert_eq!(code, Some(0), "{lines:#?}");
    let denied: Vec<(&Value, &Value)> = lines
        .iter()
        .filter(|v| event(v, "denied"))
        .map(|v| (&v["what"], &v["error"]))
        .collect();
    assert_eq!(
        denied,
        [
            (&json!("subscribe"), &json!("403:/secret/plans:forbidden")),
            (&json!("publish"), &json!("403:/news:read_only")),
        ]
    );
    assert_eq!(
        messages(&lines),
        [
            ("/chat/node".to_owned(), json!({ "from": "node" })),
            ("/v2/me/calls".to_owned(), json!({ "call": "for alice" })),
            ("/chat/room".to_owned(), json!({ "text": "hello" })),
            ("/chat/end".to_owned(), json!({ "end": true })),
        ]
    );
    assert!(lines.iter().any(|v| event(v, "disconnected")), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_pubsub_over_websocket() {
    pubsub("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_pubsub_over_long_polling() {
    pubsub("long-polling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_gives_up_on_a_denied_handshake() {
    let (server, addr, _running) = start(Config::default()).await;
    for transport in ["websocket", "long-polling"] {
        let node = Script::start(&node::dir(), "denied.mjs", &[&url(addr), transport]);
        let (code, lines) = node.finish(WAIT).await;
        assert_eq!(code, Some(0), "{lines:#?}");
        let hs: Vec<&Value> = lines.iter().filter(|v| event(v, "handshake")).collect();
        assert_eq!(hs.len(), 1, "exactly one attempt, no retry: {lines:#?}");
        assert_eq!(hs[0]["error"], "403::invalid_token");
        assert_eq!(hs[0]["reconnect"], "none");
        let done = lines.iter().find(|v| event(v, "done")).expect("done line");
        assert_eq!(done["status"], "disconnected");
    }
    assert_eq!(server.active_sessions().await.unwrap(), 0);
}

/// The connection drops after the server wrote a connect reply carrying a
/// message (the reply is lost in the network), then the client reconnects.
/// Returns the messages the client printed.
async fn lose_a_reply(transport: &str, mode: &str) -> Vec<(String, Value)> {
    let config = Config {
        timeout: Duration::from_secs(3),
        ..Config::default()
    };
    let (server, addr, _running) = start(config).await;
    let proxy = Proxy::start(addr).await.expect("proxy");
    let mut node = Script::start(
        &node::dir(),
        "ack_reconnect.mjs",
        &[&url(proxy.addr), transport, mode],
    );
    let hs = node.wait_for(WAIT, |v| event(v, "handshake")).await;
    assert_eq!(hs["successful"], true, "{hs}");
    assert_eq!(hs["transport"], transport);
    let ack_negotiated = hs.get("ack") == Some(&json!(true));
    assert_eq!(ack_negotiated, mode == "ack", "{hs}");
    node.wait_for(WAIT, |v| event(v, "subscribed")).await;
    wait_until("a held connect", || server.metrics().connects_held == 1).await;

    let delivered = server.metrics().messages_delivered;
    proxy.set_blackhole(true);
    server
        .publish("/chat/room", json!({ "n": 1 }), Audience::All)
        .await
        .unwrap();
    wait_until("the reply carrying n=1", || {
        server.metrics().messages_delivered > delivered
    })
    .await;
    // Let the reply's bytes reach the proxy (and vanish) before cutting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut_all();
    proxy.set_blackhole(false);

    // The client notices, and reconnects with the same session.
    node.wait_for(WAIT, |v| event(v, "connect") && v["successful"] == false)
        .await;
    node.wait_for(WAIT, |v| event(v, "connect") && v["successful"] == true)
        .await;
    server
        .publish("/chat/room", json!({ "n": 2 }), Audience::All)
        .await
        .unwrap();
    server
        .publish("/chat/end", json!({ "end": true }), Audience::All)
        .await
        .unwrap();
    let (code, lines) = node.finish(WAIT).await;
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(
        server.metrics().sessions_created,
        1,
        "the session was continued, not replaced"
    );
    messages(&lines)
}

fn expected(with_lost: bool) -> Vec<(String, Value)> {
    let mut v = Vec::new();
    if with_lost {
        v.push(("/chat/room".to_owned(), json!({ "n": 1 })));
    }
    v.push(("/chat/room".to_owned(), json!({ "n": 2 })));
    v.push(("/chat/end".to_owned(), json!({ "end": true })));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_extension_redelivers_a_lost_reply_exactly_once_over_websocket() {
    assert_eq!(lose_a_reply("websocket", "ack").await, expected(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_extension_redelivers_a_lost_reply_exactly_once_over_long_polling() {
    assert_eq!(lose_a_reply("long-polling", "ack").await, expected(true));
}

/// The control experiment: the same loss without the extension really loses
/// the message, so the two tests above are not passing by accident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ack_extension_a_lost_reply_is_lost() {
    assert_eq!(lose_a_reply("websocket", "noack").await, expected(false));
}
