//! Interoperability with a client nobody here wrote: the unmodified official CometD JavaScript
//! client (npm `cometd` 8.0.11 + `cometd-nodejs-client` 2.0.0, locked in `tests/gws_node`),
//! run by Node against a fresh `confer serve --demo`, over WebSocket and long-polling: the
//! seeds' removals and their notifications, the channel rules, a refused handshake, and a
//! reconnect after the connection dropped while a notification was on its way.
//!
//! Needs `node` (20+) and `npm` on PATH; `npm ci` runs once in tests/gws_node if its
//! node_modules is missing.

// clippy's zombie_processes does not see that `ConferProcess` waits for its child in `Drop`.
mod gws_support;
#[allow(clippy::zombie_processes)]
mod support;

use std::time::Duration;

use gws_support::{
    CHAT_ID, CHAT_REMOVAL, Gws, Login, VOICE_CALL_ID, VOICE_REMOVAL, assert_matches_sample,
    eventually,
    node::{self, Script, event, messages},
    proxy::Proxy,
};
use serde_json::{Value, json};
use support::ConferProcess;

const WAIT: Duration = Duration::from_secs(40);
const DELIVERED: &str = "confer_notification_delivery_lag_seconds_count ";

fn demo_server() -> (ConferProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    (server, dir)
}

fn basic_auth(username: &str) -> String {
    json!({ "basic": format!("{username}:demo") }).to_string()
}

fn cookie_auth(login: &Login) -> String {
    json!({ "cookie": login.cookie, "csrf": login.csrf }).to_string()
}

/// Starts `listen.mjs` and waits until it is subscribed.
async fn listener(url: &str, transport: &str, auth: &str, expected: usize) -> Script {
    let mut node = Script::start(
        &node::dir(),
        "listen.mjs",
        &[url, transport, auth, &expected.to_string()],
    );
    let handshake = node.wait_for(WAIT, |v| event(v, "handshake")).await;
    assert_eq!(handshake["successful"], true, "{handshake}");
    assert_eq!(handshake["transport"], transport, "{handshake}");
    assert_eq!(
        handshake["ack"], true,
        "the ack extension is negotiated: {handshake}"
    );
    let subscribed = node.wait_for(WAIT, |v| event(v, "subscribed")).await;
    assert_eq!(subscribed["successful"], true, "{subscribed}");
    node
}

async fn voice_seed(transport: &str, by_cookie: bool) {
    let (server, _dir) = demo_server();
    let gws = Gws::new(&server.url(""));
    let login = gws.login("agent15000").await;
    let auth = if by_cookie {
        cookie_auth(&login)
    } else {
        basic_auth("agent15000")
    };
    let node = listener(&gws.notifications(), transport, &auth, 1).await;
    let reply = gws
        .post(
            &login,
            &format!("/api/v2/me/calls/{VOICE_CALL_ID}"),
            VOICE_REMOVAL,
        )
        .await;
    assert_eq!(reply.body, json!({"statusCode": 0}));
    let (code, lines) = node.finish(WAIT).await;
    assert_eq!(code, Some(0), "{lines:#?}");
    let received = messages(&lines);
    assert_eq!(received.len(), 1, "{lines:#?}");
    let (channel, data) = &received[0];
    let notification = json!({ "data": data, "channel": channel });
    assert_matches_sample(
        &notification,
        "gws_voice/participants_updated_notification.json",
        &gws.base,
    );
}

async fn chat_seed(transport: &str, by_cookie: bool) {
    let (server, _dir) = demo_server();
    let gws = Gws::new(&server.url(""));
    let agent1_login = gws.login("test_consult").await;
    let agent2_login = gws.login("chat_consult").await;
    let (auth1, auth2) = if by_cookie {
        (cookie_auth(&agent1_login), cookie_auth(&agent2_login))
    } else {
        (basic_auth("test_consult"), basic_auth("chat_consult"))
    };
    let url = gws.notifications();
    let agent1 = listener(&url, transport, &auth1, 2).await;
    let agent2 = listener(&url, transport, &auth2, 4).await;
    let reply = gws
        .post(
            &agent1_login,
            &format!("/api/v2/me/chats/{CHAT_ID}"),
            CHAT_REMOVAL,
        )
        .await;
    assert_eq!(reply.body, json!({"statusCode": 0}));
    for (node, samples) in [
        (
            agent1,
            &[
                "gws_chat/agent1_1_participants_updated.json",
                "gws_chat/agent1_2_new_messages.json",
            ][..],
        ),
        (
            agent2,
            &[
                "gws_chat/agent2_1_participants_updated.json",
                "gws_chat/agent2_2_new_messages.json",
                "gws_chat/agent2_3_status_change_left_chat.json",
                "gws_chat/agent2_4_status_change_completed.json",
            ][..],
        ),
    ] {
        let (code, lines) = node.finish(WAIT).await;
        assert_eq!(code, Some(0), "{lines:#?}");
        let received = messages(&lines);
        assert_eq!(received.len(), samples.len(), "{lines:#?}");
        for ((channel, data), sample) in received.iter().zip(samples) {
            assert_eq!(channel, "/v2/me/chats");
            assert_matches_sample(data, sample, &gws.base);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_seed_over_websocket_with_basic_credentials() {
    voice_seed("websocket", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_seed_over_long_polling_with_the_session_cookie() {
    voice_seed("long-polling", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_seed_over_websocket_with_the_session_cookie() {
    chat_seed("websocket", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_seed_over_long_polling_with_basic_credentials() {
    chat_seed("long-polling", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_rules_and_a_refused_handshake() {
    let (server, _dir) = demo_server();
    let gws = Gws::new(&server.url(""));
    let url = gws.notifications();
    for transport in ["websocket", "long-polling"] {
        let node = Script::start(
            &node::dir(),
            "rules.mjs",
            &[&url, transport, &basic_auth("agent15000")],
        );
        let (code, lines) = node.finish(WAIT).await;
        assert_eq!(code, Some(0), "{lines:#?}");
        let outcomes: Vec<(Value, Value, Value)> = lines
            .iter()
            .filter(|v| event(v, "subscribe") || event(v, "publish"))
            .map(|v| {
                (
                    v["channel"].clone(),
                    v["successful"].clone(),
                    v["error"].clone(),
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                (
                    json!("/v2/users"),
                    json!(false),
                    json!("403:/v2/users:forbidden_channel")
                ),
                (
                    json!("/v2/me/calls"),
                    json!(false),
                    json!("403:/v2/me/calls:publish_denied")
                ),
                (json!("/v2/me/*"), json!(true), Value::Null),
            ],
            "{transport}"
        );

        let wrong = json!({ "basic": "agent15000:wrong" }).to_string();
        let node = Script::start(&node::dir(), "denied.mjs", &[&url, transport, &wrong]);
        let (code, lines) = node.finish(WAIT).await;
        assert_eq!(code, Some(0), "{lines:#?}");
        let handshakes: Vec<&Value> = lines.iter().filter(|v| event(v, "handshake")).collect();
        assert_eq!(
            handshakes.len(),
            1,
            "exactly one attempt, no retry: {lines:#?}"
        );
        assert_eq!(handshakes[0]["error"], "403::access_denied");
        assert_eq!(handshakes[0]["reconnect"], "none");
    }
}

/// The connection drops right after the server wrote the connect reply carrying the seed
/// notification (the proxy swallows it, then cuts every connection); the client reconnects on
/// the same session and receives it, once, before what follows.
async fn reconnect(transport: &str) {
    let (server, _dir) = demo_server();
    let gws = Gws::new(&server.url(""));
    let login = gws.login("agent15000").await;
    let proxy = Proxy::start(server.rest).await.expect("proxy");
    let url = format!("http://{}/api/v2/notifications", proxy.addr);
    let mut node = listener(&url, transport, &basic_auth("agent15000"), 3).await;
    // Let the client's next connect reach the server and be held there.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let delivered = gws.metric(DELIVERED).await;
    proxy.set_blackhole(true);
    let call = format!("/api/v2/me/calls/{VOICE_CALL_ID}");
    assert_eq!(
        gws.post(&login, &call, VOICE_REMOVAL).await.body,
        json!({"statusCode": 0})
    );
    eventually("the reply carrying the notification", WAIT, || async {
        gws.metric(DELIVERED).await > delivered
    })
    .await;
    // Let the reply's bytes reach the proxy (and vanish) before cutting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut_all();
    proxy.set_blackhole(false);

    node.wait_for(WAIT, |v| event(v, "connect") && v["successful"] == false)
        .await;
    node.wait_for(WAIT, |v| event(v, "connect") && v["successful"] == true)
        .await;
    // Then the last other party goes: an update and the call's release follow.
    let remove = r#"{"operationName":"RemoveParticipantFromConference","participant":"15002"}"#;
    assert_eq!(
        gws.post(&login, &call, remove).await.body,
        json!({"statusCode": 0})
    );

    let (code, lines) = node.finish(WAIT).await;
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|v| event(v, "handshake")).count(),
        1,
        "the session was continued, not replaced: {lines:#?}"
    );
    let received = messages(&lines);
    let summary: Vec<(Value, Value, Value)> = received
        .iter()
        .map(|(_, data)| {
            (
                data["notificationType"].clone(),
                data["call"]["state"].clone(),
                json!(data["call"]["participants"].as_array().map(|list| {
                    list.iter()
                        .map(|p| p["phoneNumber"].clone())
                        .collect::<Vec<_>>()
                })),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                json!("ParticipantsUpdated"),
                json!("Established"),
                json!(["15002"])
            ),
            (
                json!("ParticipantsUpdated"),
                json!("Established"),
                json!([])
            ),
            (json!("StatusChange"), json!("Released"), json!([])),
        ],
        "{lines:#?}"
    );
    let (channel, data) = &received[0];
    assert_matches_sample(
        &json!({ "data": data, "channel": channel }),
        "gws_voice/participants_updated_notification.json",
        &gws.base,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_lost_with_the_connection_arrives_after_reconnecting_over_websocket() {
    reconnect("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_lost_with_the_connection_arrives_after_reconnecting_over_long_polling() {
    reconnect("long-polling").await;
}
