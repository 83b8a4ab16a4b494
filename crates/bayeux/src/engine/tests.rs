//! Engine tests through `handle_request`, i.e. with the JSON a client sends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::*;
use crate::hooks::{Denial, Transport};
use crate::log::InMemoryLog;
use crate::session::InMemorySessionStore;

/// Principal = user name from `ext.user`; "mallory" is refused.
struct TestHooks;

impl Hooks for TestHooks {
    type Principal = String;

    async fn authenticate(&self, ctx: &HandshakeContext<'_>) -> Result<String, Denial> {
        match ctx.message.ext_field("user").and_then(Value::as_str) {
            Some("mallory") | None => Err(Denial::new("unauthorized")),
            Some(u) => Ok(u.to_owned()),
        }
    }

    fn principal_key(&self, p: &String) -> Arc<str> {
        Arc::from(p.as_str())
    }

    /// `x-user: <name>` names the request's principal, `x-anonymous` names nobody; without
    /// either, sessions are not bound to requests (the Bayeux default).
    async fn identify(&self, ctx: &RequestContext<'_>) -> Result<RequestPrincipal, Denial> {
        if let Some(user) = ctx.headers.get("x-user").and_then(|v| v.to_str().ok()) {
            Ok(RequestPrincipal::Key(Arc::from(user)))
        } else if ctx.headers.contains_key("x-anonymous") {
            Ok(RequestPrincipal::Anonymous)
        } else if ctx.headers.contains_key("x-busy") {
            Err(Denial::transient("busy"))
        } else {
            Ok(RequestPrincipal::Unchecked)
        }
    }

    async fn check_request(&self, ctx: &RequestContext<'_>) -> Result<(), Denial> {
        if ctx.headers.contains_key("x-evil") {
            Err(Denial::new("csrf"))
        } else {
            Ok(())
        }
    }

    async fn can_subscribe(&self, _p: &String, pattern: &ChannelPattern) -> Result<(), Denial> {
        if pattern.as_str().starts_with("/secret/") {
            Err(Denial::new("forbidden"))
        } else {
            Ok(())
        }
    }

    async fn can_publish(&self, _p: &String, ch: &ChannelName, _d: &Value) -> Result<(), Denial> {
        if ch.as_str().starts_with("/chat/") {
            Ok(())
        } else {
            Err(Denial::new("read_only"))
        }
    }

    async fn on_service_message(
        &self,
        ctx: ServiceContext<'_, String>,
    ) -> Result<Option<Value>, Denial> {
        Ok(Some(
            json!({ "echo": ctx.message.data, "to": ctx.principal }),
        ))
    }
}

type TestServer = Server<TestHooks, InMemorySessionStore<String>, InMemoryLog>;

fn config() -> Config {
    Config {
        timeout: Duration::from_millis(400),
        max_interval: Duration::from_millis(2_000),
        sweep_interval: Duration::from_millis(20),
        ..Config::default()
    }
}

fn server_with(config: Config, log_capacity: usize) -> TestServer {
    Server::new(
        config,
        TestHooks,
        InMemorySessionStore::new(),
        InMemoryLog::new(log_capacity),
    )
}

fn server() -> TestServer {
    server_with(config(), 1000)
}

async fn send_with<St: SessionStore<Principal = String>, L: MessageLog>(
    s: &Server<TestHooks, St, L>,
    headers: &HeaderMap,
    body: Value,
) -> Vec<Value> {
    let ctx = RequestContext {
        headers,
        transport: Transport::LongPolling,
    };
    let text = s
        .handle_request(&ctx, body.to_string().as_bytes())
        .await
        .expect("request accepted");
    match serde_json::from_str(&text).expect("reply is JSON") {
        Value::Array(v) => v,
        other => panic!("reply is not an array: {other}"),
    }
}

async fn send<St: SessionStore<Principal = String>, L: MessageLog>(
    s: &Server<TestHooks, St, L>,
    body: Value,
) -> Vec<Value> {
    send_with(s, &HeaderMap::new(), body).await
}

async fn handshake<St: SessionStore<Principal = String>, L: MessageLog>(
    s: &Server<TestHooks, St, L>,
    user: &str,
    ack: bool,
) -> String {
    let r = send(
        s,
        json!([{ "channel": "/meta/handshake", "id": "1", "version": "1.0",
                  "supportedConnectionTypes": ["long-polling"],
                  "ext": { "user": user, "ack": ack } }]),
    )
    .await;
    assert_eq!(r[0]["successful"], true, "{r:?}");
    let id = r[0]["clientId"].as_str().unwrap().to_owned();
    // The first connect is answered at once; do it so later ones are held.
    let (_, reply) = connect(s, &id, None).await;
    assert_eq!(reply["successful"], true, "{reply}");
    id
}

async fn subscribe<St: SessionStore<Principal = String>, L: MessageLog>(
    s: &Server<TestHooks, St, L>,
    id: &str,
    sub: Value,
) -> Value {
    send(
        s,
        json!([{ "channel": "/meta/subscribe", "id": "s", "clientId": id, "subscription": sub }]),
    )
    .await
    .remove(0)
}

/// Sends a connect; returns (delivered messages, connect reply).
async fn connect<St: SessionStore<Principal = String>, L: MessageLog>(
    s: &Server<TestHooks, St, L>,
    id: &str,
    ack: Option<u64>,
) -> (Vec<Value>, Value) {
    let mut msg = json!({ "channel": "/meta/connect", "id": "c", "clientId": id,
                           "connectionType": "long-polling" });
    if let Some(a) = ack {
        msg["ext"] = json!({ "ack": a });
    }
    let mut r = send(s, json!([msg])).await;
    let reply = r.pop().expect("a connect reply");
    assert_eq!(reply["channel"], "/meta/connect");
    (r, reply)
}

fn datas(msgs: &[Value]) -> Vec<Value> {
    msgs.iter().map(|m| m["data"].clone()).collect()
}

async fn publish<St: SessionStore<Principal = String>, L: MessageLog>(
    s: &Server<TestHooks, St, L>,
    channel: &str,
    data: Value,
) -> u64 {
    s.publish(channel, data, Audience::All).await.unwrap()
}

#[tokio::test]
async fn handshake_reply_has_everything_a_client_needs() {
    let s = server();
    let r = send(
        &s,
        json!({ "channel": "/meta/handshake", "id": 42, "version": "1.0",
                "supportedConnectionTypes": ["websocket", "long-polling"], "ext": { "user": "alice" } }),
    )
    .await;
    let h = &r[0];
    assert_eq!(h["successful"], true);
    assert_eq!(h["id"], 42);
    assert_eq!(h["version"], "1.0");
    assert_eq!(
        h["supportedConnectionTypes"],
        json!(["websocket", "long-polling"])
    );
    assert_eq!(h["advice"]["reconnect"], "retry");
    assert_eq!(h["advice"]["timeout"], 400);
    assert_eq!(h["advice"]["interval"], 0);
    assert!(h.get("ext").is_none(), "no ack unless asked");
    let id = h["clientId"].as_str().unwrap();
    assert!(id.len() >= 32, "at least 128 bits in hex");
    assert_eq!(s.active_sessions().await.unwrap(), 1);
}

#[tokio::test]
async fn handshake_denied_by_the_hook_says_do_not_retry() {
    let s = server();
    let r = send(
        &s,
        json!([{ "channel": "/meta/handshake", "id": "1", "ext": { "user": "mallory" } }]),
    )
    .await;
    assert_eq!(r[0]["successful"], false);
    assert_eq!(r[0]["error"], "403::unauthorized");
    assert_eq!(r[0]["advice"]["reconnect"], "none");
    assert!(r[0].get("clientId").is_none());
    assert_eq!(s.active_sessions().await.unwrap(), 0);
}

#[tokio::test]
async fn handshake_without_a_common_transport_fails() {
    let s = server();
    let r = send(&s, json!([{ "channel": "/meta/handshake", "supportedConnectionTypes": ["carrier-pigeon"], "ext": { "user": "a" } }])).await;
    assert_eq!(r[0]["successful"], false);
    assert!(r[0]["error"].as_str().unwrap().starts_with("301:"));
}

#[tokio::test]
async fn unknown_client_gets_402_and_handshake_advice() {
    let s = server();
    for channel in [
        "/meta/connect",
        "/meta/subscribe",
        "/chat/x",
        "/meta/disconnect",
    ] {
        let r = send(&s, json!([{ "channel": channel, "id": "9", "clientId": "nope", "subscription": "/a", "data": 1 }])).await;
        assert_eq!(r[0]["successful"], false, "{channel}");
        assert_eq!(r[0]["error"], "402::session_unknown", "{channel}");
        assert_eq!(
            r[0]["advice"],
            json!({ "reconnect": "handshake", "interval": 0 }),
            "{channel}"
        );
        assert_eq!(r[0]["id"], "9");
    }
}

#[tokio::test]
async fn first_connect_is_immediate_later_ones_are_held_until_timeout() {
    let s = server_with(
        Config {
            timeout: Duration::from_millis(1500),
            ..config()
        },
        100,
    );
    let r = send(
        &s,
        json!([{ "channel": "/meta/handshake", "ext": { "user": "a" } }]),
    )
    .await;
    let id = r[0]["clientId"].as_str().unwrap().to_owned();
    let t = Instant::now();
    let (msgs, reply) = connect(&s, &id, None).await;
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "first connect held"
    );
    assert!(msgs.is_empty());
    assert_eq!(reply["successful"], true);
    assert_eq!(reply["advice"]["reconnect"], "retry");

    let t = Instant::now();
    let (msgs, reply) = connect(&s, &id, None).await;
    let held = t.elapsed();
    assert!(held >= Duration::from_millis(1450), "held only {held:?}");
    assert!(held < Duration::from_secs(5), "held {held:?}");
    assert!(msgs.is_empty());
    assert_eq!(reply["successful"], true);
}

#[tokio::test]
async fn held_connect_returns_as_soon_as_a_message_arrives() {
    let s = server_with(
        Config {
            timeout: Duration::from_secs(10),
            ..config()
        },
        100,
    );
    let id = handshake(&s, "alice", false).await;
    subscribe(&s, &id, json!("/news")).await;
    let s2 = s.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        publish(&s2, "/news", json!("hello")).await;
    });
    let t = Instant::now();
    let (msgs, reply) = connect(&s, &id, None).await;
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(datas(&msgs), [json!("hello")]);
    assert_eq!(msgs[0]["channel"], "/news");
    assert_eq!(reply["successful"], true);
}

#[tokio::test]
async fn pending_messages_are_batched_in_order_into_one_reply() {
    let s = server();
    let id = handshake(&s, "alice", false).await;
    subscribe(&s, &id, json!(["/a", "/b"])).await;
    publish(&s, "/a", json!(1)).await;
    publish(&s, "/b", json!(2)).await;
    publish(&s, "/c", json!("not subscribed")).await;
    publish(&s, "/a", json!(3)).await;
    let (msgs, _) = connect(&s, &id, None).await;
    assert_eq!(datas(&msgs), [json!(1), json!(2), json!(3)]);
    // Without the ack extension, delivered means gone.
    let (msgs, _) = connect(&s, &id, Some(0)).await;
    assert!(msgs.is_empty());
}

#[tokio::test]
async fn a_second_connect_makes_the_first_return_empty() {
    let s = server_with(
        Config {
            timeout: Duration::from_secs(10),
            ..config()
        },
        100,
    );
    let id = handshake(&s, "alice", false).await;
    subscribe(&s, &id, json!("/news")).await;
    let (s1, id1) = (s.clone(), id.clone());
    let first = tokio::spawn(async move { connect(&s1, &id1, None).await });
    while s.held_connects() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (s2, id2) = (s.clone(), id.clone());
    let second = tokio::spawn(async move { connect(&s2, &id2, None).await });
    let (msgs, reply) = tokio::time::timeout(Duration::from_secs(2), first)
        .await
        .expect("first connect returned")
        .unwrap();
    assert!(msgs.is_empty());
    assert_eq!(reply["successful"], true);
    // The second one is the one still held, and it gets the next message.
    publish(&s, "/news", json!("x")).await;
    let (msgs, _) = tokio::time::timeout(Duration::from_secs(2), second)
        .await
        .expect("second connect returned")
        .unwrap();
    assert_eq!(datas(&msgs), [json!("x")]);
}

#[tokio::test]
async fn ack_extension_resends_what_was_not_acknowledged_once_and_in_order() {
    let s = server();
    let r = send(
        &s,
        json!([{ "channel": "/meta/handshake", "ext": { "user": "alice", "ack": true } }]),
    )
    .await;
    assert_eq!(r[0]["ext"], json!({ "ack": true }));
    let id = r[0]["clientId"].as_str().unwrap().to_owned();
    let (_, first) = connect(&s, &id, Some(0)).await;
    let batch0 = first["ext"]["ack"]
        .as_u64()
        .expect("batch id on every connect reply");
    subscribe(&s, &id, json!("/q")).await;

    publish(&s, "/q", json!(1)).await;
    publish(&s, "/q", json!(2)).await;
    let (msgs, reply) = connect(&s, &id, Some(batch0)).await;
    assert_eq!(datas(&msgs), [json!(1), json!(2)]);
    let batch1 = reply["ext"]["ack"].as_u64().unwrap();
    assert!(batch1 > batch0);

    // That reply is lost: the client still acknowledges batch0. Everything
    // after it comes again, followed by what is new, without repeats.
    publish(&s, "/q", json!(3)).await;
    let (msgs, reply) = connect(&s, &id, Some(batch0)).await;
    assert_eq!(datas(&msgs), [json!(1), json!(2), json!(3)]);
    let batch2 = reply["ext"]["ack"].as_u64().unwrap();

    // Acknowledged: nothing comes again.
    publish(&s, "/q", json!(4)).await;
    let (msgs, _) = connect(&s, &id, Some(batch2)).await;
    assert_eq!(datas(&msgs), [json!(4)]);
}

#[tokio::test]
async fn ack_batches_respect_the_reply_size_limit() {
    let s = server_with(
        Config {
            max_messages_per_reply: 2,
            ..config()
        },
        100,
    );
    let r = send(
        &s,
        json!([{ "channel": "/meta/handshake", "ext": { "user": "a", "ack": true } }]),
    )
    .await;
    let id = r[0]["clientId"].as_str().unwrap().to_owned();
    connect(&s, &id, Some(0)).await;
    subscribe(&s, &id, json!("/q")).await;
    for i in 1..=5 {
        publish(&s, "/q", json!(i)).await;
    }
    let mut got = Vec::new();
    let mut ack = 0;
    for _ in 0..3 {
        let (msgs, reply) = connect(&s, &id, Some(ack)).await;
        assert!(msgs.len() <= 2);
        got.extend(datas(&msgs));
        ack = reply["ext"]["ack"].as_u64().unwrap();
    }
    assert_eq!(got, [json!(1), json!(2), json!(3), json!(4), json!(5)]);
}

#[tokio::test]
async fn sessions_expire_without_connects() {
    let s = server_with(
        Config {
            max_interval: Duration::from_millis(100),
            ..config()
        },
        100,
    );
    let id = handshake(&s, "alice", false).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, reply) = connect(&s, &id, None).await;
    assert_eq!(reply["error"], "402::session_unknown");
    assert_eq!(reply["advice"]["reconnect"], "handshake");
    let m = s.metrics();
    assert_eq!(m.sessions_expired, 1);
    assert_eq!(s.active_sessions().await.unwrap(), 0);
}

#[tokio::test]
async fn a_held_connect_keeps_the_session_alive() {
    // Hold (400 ms) longer than max_interval (100 ms): the session must not
    // expire while its connect is held.
    let s = server_with(
        Config {
            max_interval: Duration::from_millis(100),
            ..config()
        },
        100,
    );
    let id = handshake(&s, "alice", false).await;
    for _ in 0..2 {
        let (_, reply) = connect(&s, &id, None).await;
        assert_eq!(reply["successful"], true, "{reply}");
    }
}

#[tokio::test]
async fn subscribe_authorization_and_validation() {
    let s = server();
    let id = handshake(&s, "alice", false).await;
    let r = subscribe(&s, &id, json!("/secret/plans")).await;
    assert_eq!(r["successful"], false);
    assert_eq!(r["error"], "403:/secret/plans:forbidden");
    let r = subscribe(&s, &id, json!("/foo/*/bar")).await;
    assert_eq!(r["error"], "400:/foo/*/bar:invalid_channel");
    let r = subscribe(&s, &id, json!("/meta/connect")).await;
    assert_eq!(r["error"], "403:/meta/connect:meta_channel");
    let r = subscribe(&s, &id, json!(["/ok", "/secret/x"])).await;
    assert_eq!(r["successful"], false, "all or nothing");
    let r = subscribe(&s, &id, json!(["/ok", "/v2/**"])).await;
    assert_eq!(r["successful"], true);
    assert_eq!(r["subscription"], json!(["/ok", "/v2/**"]));
    assert_eq!(r["clientId"], json!(id));
    // The denied one was not applied.
    publish(&s, "/ok", json!("a")).await;
    assert!(
        s.publish("/secret/x", json!("b"), Audience::All)
            .await
            .is_ok()
    );
    let (msgs, _) = connect(&s, &id, None).await;
    assert_eq!(datas(&msgs), [json!("a")]);
}

#[tokio::test]
async fn publish_authorization_and_broadcast() {
    let s = server();
    let alice = handshake(&s, "alice", false).await;
    let bob = handshake(&s, "bob", false).await;
    subscribe(&s, &bob, json!("/chat/*")).await;
    let r = send(&s, json!([{ "channel": "/chat/room", "id": "p1", "clientId": alice, "data": { "text": "hi" } }])).await;
    assert_eq!(r[0]["successful"], true);
    assert_eq!(r[0]["id"], "p1");
    assert!(r[0].get("data").is_none(), "a publish ack has no data");
    let r = send(
        &s,
        json!([{ "channel": "/news", "id": "p2", "clientId": alice, "data": 1 }]),
    )
    .await;
    assert_eq!(r[0]["error"], "403:/news:read_only");
    let r = send(
        &s,
        json!([{ "channel": "/chat/*", "id": "p3", "clientId": alice, "data": 1 }]),
    )
    .await;
    assert_eq!(r[0]["error"], "400:/chat/*:invalid_channel");
    let (msgs, _) = connect(&s, &bob, None).await;
    assert_eq!(datas(&msgs), [json!({ "text": "hi" })]);
}

#[tokio::test]
async fn principal_audience_reaches_only_that_principal() {
    let s = server();
    let alice = handshake(&s, "alice", false).await;
    let bob = handshake(&s, "bob", false).await;
    subscribe(&s, &alice, json!("/v2/me/*")).await;
    subscribe(&s, &bob, json!("/v2/me/calls")).await;
    s.publish("/v2/me/calls", json!("for bob"), Audience::principal("bob"))
        .await
        .unwrap();
    s.publish(
        "/v2/me/calls",
        json!("for alice"),
        Audience::principal("alice"),
    )
    .await
    .unwrap();
    s.publish("/v2/me/calls", json!("for all"), Audience::All)
        .await
        .unwrap();
    let (a, _) = connect(&s, &alice, None).await;
    let (b, _) = connect(&s, &bob, None).await;
    assert_eq!(datas(&a), [json!("for alice"), json!("for all")]);
    assert_eq!(datas(&b), [json!("for bob"), json!("for all")]);
}

#[tokio::test]
async fn wildcards_match_one_segment_or_any_depth() {
    let s = server();
    let one = handshake(&s, "a", false).await;
    let deep = handshake(&s, "b", false).await;
    subscribe(&s, &one, json!("/v2/me/*")).await;
    subscribe(&s, &deep, json!("/v2/**")).await;
    publish(&s, "/v2/me/calls", json!(1)).await;
    publish(&s, "/v2/me/calls/x", json!(2)).await;
    publish(&s, "/v2", json!(3)).await;
    assert_eq!(datas(&connect(&s, &one, None).await.0), [json!(1)]);
    assert_eq!(
        datas(&connect(&s, &deep, None).await.0),
        [json!(1), json!(2)]
    );
}

#[tokio::test]
async fn nothing_published_before_a_subscription_is_delivered_through_it() {
    let s = server();
    let id = handshake(&s, "a", false).await;
    publish(&s, "/late", json!("before")).await;
    subscribe(&s, &id, json!("/late")).await;
    publish(&s, "/late", json!("after")).await;
    assert_eq!(datas(&connect(&s, &id, None).await.0), [json!("after")]);
}

#[tokio::test]
async fn service_messages_are_answered_to_the_sender_only() {
    let s = server();
    let alice = handshake(&s, "alice", false).await;
    let bob = handshake(&s, "bob", false).await;
    subscribe(&s, &bob, json!("/service/**")).await;
    let r = send(
        &s,
        json!([{ "channel": "/service/echo", "id": "e", "clientId": alice, "data": "ping" }]),
    )
    .await;
    assert_eq!(r[0]["successful"], true);
    let (a, _) = connect(&s, &alice, None).await;
    assert_eq!(a[0]["channel"], "/service/echo");
    assert_eq!(a[0]["data"], json!({ "echo": "ping", "to": "alice" }));
    assert!(
        connect(&s, &bob, None).await.0.is_empty(),
        "service messages are not broadcast"
    );
    assert!(
        s.publish("/service/echo", json!(1), Audience::All)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_session_that_fell_out_of_the_log_must_handshake_again() {
    let s = server_with(config(), 3);
    let id = handshake(&s, "a", false).await;
    subscribe(&s, &id, json!("/x")).await;
    for i in 0..5 {
        publish(&s, "/x", json!(i)).await;
    }
    let (msgs, reply) = connect(&s, &id, None).await;
    assert!(msgs.is_empty());
    assert_eq!(reply["error"], "402::messages_lost");
    assert_eq!(reply["advice"]["reconnect"], "handshake");
    assert_eq!(s.metrics().sessions_lost_messages, 1);
    assert_eq!(
        connect(&s, &id, None).await.1["error"],
        "402::session_unknown"
    );
}

#[tokio::test]
async fn disconnect_ends_the_session_and_its_held_connect() {
    let s = server_with(
        Config {
            timeout: Duration::from_secs(10),
            ..config()
        },
        100,
    );
    let id = handshake(&s, "a", false).await;
    let (s1, id1) = (s.clone(), id.clone());
    let held = tokio::spawn(async move { connect(&s1, &id1, None).await });
    while s.held_connects() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = send(
        &s,
        json!([{ "channel": "/meta/disconnect", "id": "d", "clientId": id }]),
    )
    .await;
    assert_eq!(r[0]["successful"], true);
    let (_, reply) = tokio::time::timeout(Duration::from_secs(2), held)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply["successful"], false);
    assert_eq!(
        connect(&s, &id, None).await.1["error"],
        "402::session_unknown"
    );
}

#[tokio::test]
async fn shutdown_answers_held_connects_and_refuses_new_sessions() {
    let s = server_with(
        Config {
            timeout: Duration::from_secs(10),
            ..config()
        },
        100,
    );
    let id = handshake(&s, "a", false).await;
    let (s1, id1) = (s.clone(), id.clone());
    let held = tokio::spawn(async move { connect(&s1, &id1, None).await });
    while s.held_connects() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    s.shutdown(ShutdownMode::Close).await;
    assert!(t.elapsed() < Duration::from_secs(2));
    let (_, reply) = tokio::time::timeout(Duration::from_secs(2), held)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply["advice"]["reconnect"], "none");
    let r = send(
        &s,
        json!([{ "channel": "/meta/handshake", "ext": { "user": "b" } }]),
    )
    .await;
    assert_eq!(r[0]["successful"], false);
    assert_eq!(r[0]["advice"]["reconnect"], "none");
    assert_eq!(
        s.active_sessions().await.unwrap(),
        0,
        "Close deletes the sessions"
    );
}

#[tokio::test]
async fn handover_shutdown_keeps_sessions_for_another_node() {
    let s = server_with(
        Config {
            timeout: Duration::from_secs(10),
            ..config()
        },
        100,
    );
    let id = handshake(&s, "a", false).await;
    let (s1, id1) = (s.clone(), id.clone());
    let held = tokio::spawn(async move { connect(&s1, &id1, None).await });
    while s.held_connects() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.shutdown(ShutdownMode::Handover).await;
    let (_, reply) = tokio::time::timeout(Duration::from_secs(2), held)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply["successful"], true);
    assert_eq!(reply["advice"]["reconnect"], "retry");
    assert_eq!(s.active_sessions().await.unwrap(), 1);
}

#[tokio::test]
async fn request_hook_can_refuse_every_message_of_a_request() {
    let s = server();
    let mut h = HeaderMap::new();
    h.insert("x-evil", "1".parse().unwrap());
    let r = send_with(
        &s,
        &h,
        json!([{ "channel": "/meta/handshake", "id": "1", "ext": { "user": "a" } }]),
    )
    .await;
    assert_eq!(r[0]["error"], "403::csrf");
    assert_eq!(r[0]["id"], "1");
}

#[tokio::test]
async fn malformed_messages_get_error_replies_not_panics() {
    let s = server();
    let ctx = RequestContext {
        headers: &HeaderMap::new(),
        transport: Transport::LongPolling,
    };
    assert!(matches!(
        s.handle_request(&ctx, b"not json").await,
        Err(RequestError::InvalidJson(_))
    ));
    let r = send(
        &s,
        json!([{ "id": "x" }, { "channel": "/meta/nope", "id": "y" }, { "channel": 5 }]),
    )
    .await;
    assert_eq!(r.len(), 3);
    assert!(r.iter().all(|m| m["successful"] == false));
    assert_eq!(r[1]["error"], "400:/meta/nope:unknown meta channel");
}

#[tokio::test]
async fn metrics_count_sessions_and_deliveries() {
    let s = server();
    let id = handshake(&s, "a", false).await;
    subscribe(&s, &id, json!("/m")).await;
    publish(&s, "/m", json!(1)).await;
    publish(&s, "/m", json!(2)).await;
    connect(&s, &id, None).await;
    let m = s.metrics();
    assert_eq!(m.sessions_created, 1);
    assert_eq!(m.messages_published, 2);
    assert_eq!(m.messages_delivered, 2);
    assert_eq!(m.replies_with_messages, 1);
    assert!(m.mean_delivery_lag_ms().is_some());
    assert_eq!(m.connects_held, 0);
}

/// A store whose connect bookkeeping is slow, as a database's would be:
/// it widens the window in which two connects of one client could read the
/// same cursor.
struct SlowStore(InMemorySessionStore<String>);

impl SessionStore for SlowStore {
    type Principal = String;
    async fn sessions_of(&self, key: &str) -> Result<Vec<(ClientId, u64)>, crate::StoreError> {
        self.0.sessions_of(key).await
    }
    async fn create(&self, s: SessionRecord<String>) -> Result<(), crate::StoreError> {
        self.0.create(s).await
    }
    async fn load(
        &self,
        id: &ClientId,
    ) -> Result<Option<SessionRecord<String>>, crate::StoreError> {
        self.0.load(id).await
    }
    async fn add_subscription(
        &self,
        id: &ClientId,
        sub: Subscription,
    ) -> Result<bool, crate::StoreError> {
        self.0.add_subscription(id, sub).await
    }
    async fn remove_subscription(
        &self,
        id: &ClientId,
        p: &ChannelPattern,
    ) -> Result<bool, crate::StoreError> {
        self.0.remove_subscription(id, p).await
    }
    async fn record_connect(
        &self,
        id: &ClientId,
        u: ConnectUpdate,
    ) -> Result<Option<SessionRecord<String>>, crate::StoreError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.0.record_connect(id, u).await
    }
    async fn delete(&self, id: &ClientId) -> Result<bool, crate::StoreError> {
        self.0.delete(id).await
    }
    async fn expired(&self, now: u64, limit: usize) -> Result<Vec<ClientId>, crate::StoreError> {
        self.0.expired(now, limit).await
    }
    async fn count(&self) -> Result<usize, crate::StoreError> {
        self.0.count().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_connects_of_one_client_never_deliver_twice_or_lose() {
    let cfg = Config {
        timeout: Duration::from_millis(100),
        ..config()
    };
    let s = Server::new(
        cfg,
        TestHooks,
        SlowStore(InMemorySessionStore::new()),
        InMemoryLog::new(1000),
    );
    let id = handshake(&s, "a", false).await;
    subscribe(&s, &id, json!("/race")).await;
    let mut got = Vec::new();
    for i in 0..25 {
        publish(&s, "/race", json!(i)).await;
        let (a, b) = tokio::join!(connect(&s, &id, None), connect(&s, &id, None));
        got.extend(datas(&a.0));
        got.extend(datas(&b.0));
    }
    // Whatever is left over arrives on the next connect.
    got.extend(datas(&connect(&s, &id, None).await.0));
    let want: Vec<Value> = (0..25).map(|i| json!(i)).collect();
    assert_eq!(got, want);
}

/// Two nodes sharing the session store and the log: a subscribe on B reaches
/// the connect held on A once A is told to refresh that session (what a
/// cluster does on another node's announcement), not at the hold's end; a
/// disconnect on B ends A's held connect the same way, with 402.
#[tokio::test]
async fn a_refresh_gives_a_held_connect_what_another_node_changed() {
    let config = Config {
        timeout: Duration::from_secs(30),
        ..config()
    };
    let sessions = Arc::new(InMemorySessionStore::new());
    let log = Arc::new(InMemoryLog::new(100));
    let a = Server::new(config.clone(), TestHooks, sessions.clone(), log.clone());
    let b = Server::new(config, TestHooks, sessions, log);
    let id = handshake(&a, "u", true).await;
    assert!(
        !a.refresh_session(&ClientId::from_string(&id)),
        "nothing held yet"
    );

    let (a1, id1) = (a.clone(), id.clone());
    let held = tokio::spawn(async move { connect(&a1, &id1, None).await });
    while a.held_connects() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(subscribe(&b, &id, json!("/news")).await["successful"], true);
    publish(&b, "/news", json!("hello")).await;
    assert!(a.refresh_session(&ClientId::from_string(&id)));
    let (msgs, reply) = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("the held connect returns once refreshed, not after 30 s")
        .unwrap();
    assert_eq!(reply["successful"], true, "{reply}");
    assert_eq!(datas(&msgs), vec![json!("hello")]);

    let ack = reply["ext"]["ack"].as_u64();
    let (a1, id1) = (a.clone(), id.clone());
    let held = tokio::spawn(async move { connect(&a1, &id1, ack).await });
    while a.held_connects() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = send(
        &b,
        json!([{ "channel": "/meta/disconnect", "id": "d", "clientId": id }]),
    )
    .await;
    assert_eq!(r[0]["successful"], true);
    assert_eq!(a.refresh_all_sessions(), 1);
    let (msgs, reply) = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("the held connect ends once refreshed")
        .unwrap();
    assert!(msgs.is_empty());
    assert_eq!(reply["error"], "402::session_unknown", "{reply}");
    assert_eq!(reply["advice"]["reconnect"], "handshake");
}

/// A store that can be made unreachable, as a database during a restart.
struct FlakyStore {
    inner: InMemorySessionStore<String>,
    down: std::sync::atomic::AtomicBool,
}

impl FlakyStore {
    fn check(&self) -> Result<(), crate::StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(crate::StoreError::Unavailable("down".into()))
        } else {
            Ok(())
        }
    }
}

impl SessionStore for Arc<FlakyStore> {
    type Principal = String;
    async fn sessions_of(&self, key: &str) -> Result<Vec<(ClientId, u64)>, crate::StoreError> {
        self.check()?;
        self.inner.sessions_of(key).await
    }
    async fn create(&self, s: SessionRecord<String>) -> Result<(), crate::StoreError> {
        self.check()?;
        self.inner.create(s).await
    }
    async fn load(
        &self,
        id: &ClientId,
    ) -> Result<Option<SessionRecord<String>>, crate::StoreError> {
        self.check()?;
        self.inner.load(id).await
    }
    async fn add_subscription(
        &self,
        id: &ClientId,
        sub: Subscription,
    ) -> Result<bool, crate::StoreError> {
        self.check()?;
        self.inner.add_subscription(id, sub).await
    }
    async fn remove_subscription(
        &self,
        id: &ClientId,
        p: &ChannelPattern,
    ) -> Result<bool, crate::StoreError> {
        self.check()?;
        self.inner.remove_subscription(id, p).await
    }
    async fn record_connect(
        &self,
        id: &ClientId,
        u: ConnectUpdate,
    ) -> Result<Option<SessionRecord<String>>, crate::StoreError> {
        self.check()?;
        self.inner.record_connect(id, u).await
    }
    async fn delete(&self, id: &ClientId) -> Result<bool, crate::StoreError> {
        self.check()?;
        self.inner.delete(id).await
    }
    async fn expired(&self, now: u64, limit: usize) -> Result<Vec<ClientId>, crate::StoreError> {
        self.check()?;
        self.inner.expired(now, limit).await
    }
    async fn count(&self) -> Result<usize, crate::StoreError> {
        self.check()?;
        self.inner.count().await
    }
}

/// The store is unreachable for longer than `max_interval`: no client can
/// connect meanwhile, so every session's expiry passes. When the store is
/// back, the sessions are not expired at once: a client that reconnects
/// within `max_interval` continues its session with what was published during
/// the outage. One that does not come back still expires.
#[tokio::test]
async fn an_outage_of_the_store_does_not_expire_the_sessions_it_kept_from_connecting() {
    let cfg = Config {
        max_interval: Duration::from_millis(300),
        ..config()
    };
    let store = Arc::new(FlakyStore {
        inner: InMemorySessionStore::new(),
        down: std::sync::atomic::AtomicBool::new(false),
    });
    let s = Server::new(cfg, TestHooks, store.clone(), InMemoryLog::new(100));
    let id = handshake(&s, "a", true).await;
    assert_eq!(subscribe(&s, &id, json!("/news")).await["successful"], true);
    let gone = handshake(&s, "b", true).await;

    store.down.store(true, std::sync::atomic::Ordering::SeqCst);
    publish(&s, "/news", json!("during the outage")).await;
    let (_, reply) = connect(&s, &id, None).await;
    assert_eq!(reply["successful"], false, "{reply}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);

    let (msgs, reply) = connect(&s, &id, None).await;
    assert_eq!(reply["successful"], true, "the session survived: {reply}");
    assert_eq!(datas(&msgs), vec![json!("during the outage")]);
    // The client that never came back expires once the pause is over.
    let gone = ClientId::from_string(&gone);
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.inner.load(&gone).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the abandoned session never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn as_user(user: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-user", user.parse().unwrap());
    headers
}

/// Sends `body` with `headers`; the one reply.
async fn one_with(s: &TestServer, headers: &HeaderMap, body: Value) -> Value {
    send_with(s, headers, body).await.remove(0)
}

/// The attack: someone who learned alice's clientId uses it with their own credentials (or
/// none) to subscribe, unsubscribe, connect and disconnect. Every message is refused as for an
/// unknown client, and alice's session is left exactly as it was: her held connect is not
/// superseded, her subscriptions are hers, and she still receives.
#[tokio::test]
async fn a_session_is_usable_only_with_its_owners_credentials() {
    let s = server();
    let alice = as_user("alice");
    let r = one_with(
        &s,
        &alice,
        json!([{ "channel": "/meta/handshake", "version": "1.0",
                  "supportedConnectionTypes": ["long-polling"], "ext": { "user": "alice" } }]),
    )
    .await;
    let id = r["clientId"].as_str().unwrap().to_owned();
    let connect_msg =
        json!([{ "channel": "/meta/connect", "clientId": id, "connectionType": "long-polling" }]);
    let first = send_with(&s, &alice, connect_msg.clone()).await;
    assert_eq!(first[0]["successful"], true);
    let sub = one_with(
        &s,
        &alice,
        json!([{ "channel": "/meta/subscribe", "clientId": id, "subscription": "/news" }]),
    )
    .await;
    assert_eq!(sub["successful"], true, "{sub}");

    // alice's connect is held.
    let held = {
        let (s, alice, msg) = (s.clone(), alice.clone(), connect_msg.clone());
        tokio::spawn(async move { send_with(&s, &alice, msg).await })
    };
    while s.held_connects() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut anonymous = HeaderMap::new();
    anonymous.insert("x-anonymous", "1".parse().unwrap());
    for attacker in [as_user("bob"), anonymous] {
        for msg in [
            json!({ "channel": "/meta/subscribe", "clientId": id, "subscription": "/secrets-of-alice" }),
            json!({ "channel": "/meta/unsubscribe", "clientId": id, "subscription": "/news" }),
            json!({ "channel": "/meta/connect", "clientId": id, "connectionType": "long-polling" }),
            json!({ "channel": "/meta/disconnect", "clientId": id }),
            json!({ "channel": "/chat/room", "clientId": id, "data": "spoofed" }),
        ] {
            let r = send_with(&s, &attacker, json!([msg])).await;
            let reply = r.last().unwrap();
            assert_eq!(reply["successful"], false, "{msg}: {reply}");
            assert_eq!(reply["error"], "402::session_unknown", "{msg}: {reply}");
        }
    }
    assert_eq!(s.metrics().foreign_session_refusals, 10);
    let session = s
        .store()
        .load(&ClientId::from_string(&id))
        .await
        .unwrap()
        .unwrap();
    let patterns: Vec<&str> = session
        .subscriptions
        .iter()
        .map(|s| s.pattern.as_str())
        .collect();
    assert_eq!(
        patterns,
        ["/news"],
        "alice's subscriptions as she left them"
    );
    assert_eq!(s.held_connects(), 1, "alice's connect was not superseded");

    publish(&s, "/news", json!("for alice")).await;
    let delivered = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        datas(&delivered[..delivered.len() - 1]),
        [json!("for alice")]
    );
}

/// A request whose credentials name one principal cannot handshake as another (a WebSocket
/// authenticated at its upgrade carries one user's sessions).
#[tokio::test]
async fn a_handshake_must_be_the_requests_own_principal() {
    let s = server();
    let r = one_with(
        &s,
        &as_user("bob"),
        json!([{ "channel": "/meta/handshake", "version": "1.0",
                  "supportedConnectionTypes": ["long-polling"], "ext": { "user": "alice" } }]),
    )
    .await;
    assert_eq!(r["successful"], false);
    assert_eq!(r["error"], "403::credentials_mismatch");
    assert_eq!(s.active_sessions().await.unwrap(), 0);
}

/// The attack: thousands of subscriptions on one session (their matching cost grows with their
/// number). Refused whole beyond the cap, the session keeps what it had.
#[tokio::test]
async fn subscriptions_per_session_are_capped() {
    let s = server_with(
        Config {
            max_subscriptions_per_session: 3,
            ..config()
        },
        100,
    );
    let id = handshake(&s, "alice", false).await;
    let ok = subscribe(&s, &id, json!(["/a", "/b"])).await;
    assert_eq!(ok["successful"], true, "{ok}");
    let again = subscribe(&s, &id, json!(["/a", "/c"])).await;
    assert_eq!(
        again["successful"], true,
        "a pattern held already does not count twice"
    );
    let refused = subscribe(&s, &id, json!(["/d", "/e"])).await;
    assert_eq!(refused["successful"], false);
    assert_eq!(refused["error"], "403:/d:too_many_subscriptions");
    let session = s
        .store()
        .load(&ClientId::from_string(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.subscriptions.len(), 3);
}

/// The attack: one user opens thousands of sessions. Each handshake beyond the cap ends that
/// user's least recently active session; other users' sessions are untouched.
#[tokio::test]
async fn sessions_per_principal_are_capped_by_ending_the_least_recently_active() {
    let s = server_with(
        Config {
            max_sessions_per_principal: 2,
            ..config()
        },
        100,
    );
    let bob = handshake(&s, "bob", false).await;
    let first = handshake(&s, "alice", false).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = handshake(&s, "alice", false).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let third = handshake(&s, "alice", false).await;
    assert_eq!(s.store().sessions_of("alice").await.unwrap().len(), 2);
    let (_, gone) = connect(&s, &first, None).await;
    assert_eq!(gone["error"], "402::session_unknown", "{gone}");
    for live in [&second, &third, &bob] {
        assert!(
            s.store()
                .load(&ClientId::from_string(live))
                .await
                .unwrap()
                .is_some(),
            "{live}"
        );
    }
    assert_eq!(s.metrics().sessions_evicted, 1);
}

/// The attack: more sessions expire at once than one look of the sweeper lists. All of them go.
#[tokio::test]
async fn expiry_keeps_up_with_any_number_of_expired_sessions() {
    let s = server();
    for i in 0..(2 * SWEEP_PAGE + 500) {
        let mut r = SessionRecord {
            client_id: ClientId::from_string(&format!("c{i}")),
            principal: format!("u{i}"),
            principal_key: Arc::from(format!("u{i}").as_str()),
            subscriptions: Vec::new(),
            ack: false,
            cursor: 0,
            connected: true,
            last_connect_ms: 1,
            expires_at_ms: 10,
        };
        r.expires_at_ms += u64::try_from(i % 7).unwrap();
        s.store().create(r).await.unwrap();
    }
    assert_eq!(s.expire_sessions_now(1_000).await, 2 * SWEEP_PAGE + 500);
    assert_eq!(s.active_sessions().await.unwrap(), 0);
}

/// Revocation: every session of a principal ends at once, its held connect included.
#[tokio::test]
async fn all_sessions_of_a_principal_can_be_ended() {
    let s = server();
    let a1 = handshake(&s, "alice", false).await;
    let _a2 = handshake(&s, "alice", false).await;
    let bob = handshake(&s, "bob", false).await;
    let held = {
        let (s, a1) = (s.clone(), a1.clone());
        tokio::spawn(async move { connect(&s, &a1, None).await })
    };
    while s.held_connects() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s.held_principal_keys(), vec![Arc::<str>::from("alice")]);
    assert_eq!(s.end_sessions_of("alice").await.unwrap(), 2);
    let (_, reply) = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply["successful"], false, "{reply}");
    assert_eq!(s.active_sessions().await.unwrap(), 1);
    assert!(
        s.store()
            .load(&ClientId::from_string(&bob))
            .await
            .unwrap()
            .is_some()
    );
}

/// A transient refusal (a busy password verifier, say) tells the client to try again, not to
/// give up as a permanent one does: the official clients stop for good on `reconnect: none`.
#[tokio::test]
async fn a_transient_refusal_advises_a_retry_and_a_permanent_one_does_not() {
    let s = server();
    let mut busy = HeaderMap::new();
    busy.insert("x-busy", "1".parse().unwrap());
    let handshake = json!([{"channel": "/meta/handshake", "version": "1.0",
                            "supportedConnectionTypes": ["long-polling"]}]);
    let r = one_with(&s, &busy, handshake.clone()).await;
    assert_eq!(r["successful"], false, "{r}");
    assert_eq!(r["error"], "403::busy", "{r}");
    assert_eq!(r["advice"]["reconnect"], "retry", "{r}");
    let mut evil = HeaderMap::new();
    evil.insert("x-evil", "1".parse().unwrap());
    let r = one_with(&s, &evil, handshake).await;
    assert_eq!(r["successful"], false, "{r}");
    assert_eq!(r["advice"]["reconnect"], "none", "{r}");
}
