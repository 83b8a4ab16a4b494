//! Bayeux sessions belong to their user: a clientId someone learns (another agent, a proxy's
//! log, a request with no credentials at all) is worth nothing without the owner's own
//! credentials, over long-polling and WebSocket; one user's sessions and one session's
//! subscriptions are capped; a revoked user's held connect ends.

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message as Ws, client::IntoClientRequest};

use crate::{
    gws_support::{Gws, Login, VOICE_CALL_ID, VOICE_REMOVAL, basic, cometd::LongPoll},
    support::ConferProcess,
};

const WAIT: Duration = Duration::from_secs(20);

/// Every message that uses a session, each naming `client_id`: had any of them been accepted
/// from someone else, they would receive the owner's notifications, steal its held connect, or
/// end its session.
fn uses_of(client_id: &str) -> Vec<Value> {
    vec![
        json!({"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/v2/**"}),
        json!({"channel": "/meta/unsubscribe", "clientId": client_id, "subscription": "/v2/me/calls"}),
        json!({"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling", "advice": {"timeout": 0}}),
        json!({"channel": "/meta/disconnect", "clientId": client_id}),
    ]
}

fn assert_refused(reply: &Value, code: &str, who: &str) {
    assert_eq!(reply["successful"], false, "{who}: {reply}");
    let error = reply["error"].as_str().unwrap_or_default();
    assert!(error.starts_with(code), "{who}: {reply}");
}

fn cookie_and_csrf(login: &Login) -> [(&str, &str); 2] {
    [
        ("Cookie", login.cookie.as_str()),
        ("X-CSRF-TOKEN", login.csrf.as_str()),
    ]
}

/// agent15000, signed in by cookie, with a CometD session subscribed to its calls.
async fn owner_subscribed(gws: &Gws) -> (Login, LongPoll) {
    let login = gws.login("agent15000").await;
    let session = LongPoll::handshake(&gws.notifications(), &cookie_and_csrf(&login), json!({}))
        .await
        .expect("the owner's handshake");
    assert_eq!(session.subscribe("/v2/me/calls").await["successful"], true);
    (login, session)
}

/// The owner's session, subscribed to its calls, still receives the voice seed's notification:
/// nothing the attacks sent changed it.
async fn still_receives(gws: &Gws, owner_login: &Login, owner: &mut LongPoll) {
    let reply = gws
        .post(
            owner_login,
            &format!("/api/v2/me/calls/{VOICE_CALL_ID}"),
            VOICE_REMOVAL,
        )
        .await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
    let got = owner.messages(1, WAIT).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["channel"], "/v2/me/calls", "{got:#?}");
    assert_eq!(got[0]["data"]["notificationType"], "ParticipantsUpdated");
}

/// The attack: agent15000's clientId, used over long-polling by someone else (another agent's
/// cookie and CSRF token, another agent's or a wrong Basic password, a forged cookie, nothing)
/// to subscribe, connect and disconnect. Each is refused as an unknown client; the owner's
/// cookie without its CSRF token is refused as a CSRF failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_is_worth_nothing_without_its_owners_credentials_over_long_polling() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    let gws = Gws::new(&server.url(""));
    let (owner_login, mut owner) = owner_subscribed(&gws).await;
    let other = gws.login("agent15002").await;

    let other_basic = basic("agent15002");
    let wrong_password = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("agent15000:not-the-password")
    );
    let attackers: [(&str, Vec<(&str, &str)>); 5] = [
        ("no credentials", vec![]),
        (
            "another agent's cookie and CSRF token",
            cookie_and_csrf(&other).to_vec(),
        ),
        (
            "another agent's Basic credentials",
            vec![("Authorization", other_basic.as_str())],
        ),
        (
            "the owner's username with a wrong password",
            vec![("Authorization", wrong_password.as_str())],
        ),
        (
            "a forged session cookie",
            vec![("Cookie", "JSESSIONID=v2.YWdlbnQ.forged.1.9999999999.1.AAAA")],
        ),
    ];
    for (who, headers) in &attackers {
        for message in uses_of(&owner.client_id) {
            let reply = owner.post_as(headers, json!([message])).await;
            assert_refused(&reply[0], "402:", who);
        }
    }
    let cookie_only = [("Cookie", owner_login.cookie.as_str())];
    for message in uses_of(&owner.client_id) {
        let reply = owner.post_as(&cookie_only, json!([message])).await;
        assert_refused(
            &reply[0],
            "403:",
            "the owner's cookie without its CSRF token",
        );
    }

    still_receives(&gws, &owner_login, &mut owner).await;
}

/// A WebSocket to `/api/v2/notifications` with these upgrade headers.
async fn websocket(
    server: &ConferProcess,
    headers: &[(&str, &str)],
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = format!("ws://{}/api/v2/notifications", server.rest)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .expect("a header name"),
            value.parse().expect("a header value"),
        );
    }
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade");
    socket
}

/// Sends one message on `socket`; its reply.
async fn over_socket(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    message: Value,
) -> Value {
    socket
        .send(Ws::Text(json!([message]).to_string().into()))
        .await
        .expect("a frame sent");
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a reply in time")
            .expect("the socket open")
            .expect("a frame");
        if let Ws::Text(text) = frame {
            let replies: Vec<Value> = serde_json::from_str(&text).expect("a JSON array");
            return replies.into_iter().next().expect("one reply");
        }
    }
}

/// The attack over WebSocket: a socket upgraded with another agent's cookie and CSRF token, or
/// with no credentials, sends messages naming agent15000's clientId. The socket carries only
/// its own user's sessions: each is refused as an unknown client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_carries_only_its_own_users_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    let gws = Gws::new(&server.url(""));
    let (owner_login, mut owner) = owner_subscribed(&gws).await;
    let other = gws.login("agent15002").await;

    let other_headers = cookie_and_csrf(&other);
    for (who, headers) in [
        ("another agent's socket", &other_headers[..]),
        ("a socket without credentials", &[][..]),
    ] {
        let mut socket = websocket(&server, headers).await;
        for message in uses_of(&owner.client_id) {
            let reply = over_socket(&mut socket, message).await;
            assert_refused(&reply, "402:", who);
        }
    }
    // The other agent's socket still serves the other agent.
    let mut socket = websocket(&server, &other_headers).await;
    let reply = over_socket(
        &mut socket,
        json!({"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"], "ext": {"X-CSRF-TOKEN": other.csrf}}),
    )
    .await;
    assert_eq!(reply["successful"], true, "{reply}");

    still_receives(&gws, &owner_login, &mut owner).await;
}

/// The attack (cross-site WebSocket hijacking): a page of another origin opens a WebSocket to
/// Confer, and the browser adds the victim's cookie. The upgrade is refused; the same upgrade
/// from Confer's own origin, or from a client that sends no Origin, is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_rides_only_on_websockets_of_the_servers_own_origin() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    let gws = Gws::new(&server.url(""));
    let victim = gws.login("agent15000").await;
    let upgrade = async |origin: Option<&str>| {
        let mut request = format!("ws://{}/api/v2/notifications", server.rest)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("cookie", victim.cookie.parse().unwrap());
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(other) => panic!("the upgrade failed otherwise: {other}"),
        }
    };
    assert_eq!(upgrade(Some("http://attacker.example")).await, 403);
    assert_eq!(upgrade(Some("null")).await, 403);
    assert_eq!(upgrade(Some(&server.url(""))).await, 101);
    assert_eq!(upgrade(None).await, 101);
}

/// The attack: one user opens session after session, and subscribes to channel after channel
/// in one of them (each subscription costs matching on every notification). The 65th session
/// ends the user's least recently active one; the 101st subscription is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_sessions_and_one_sessions_subscriptions_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    let gws = Gws::new(&server.url(""));
    let credentials = basic("agent15000");
    let headers = [("Authorization", credentials.as_str())];
    let mut sessions = Vec::new();
    for _ in 0..64 {
        sessions.push(
            LongPoll::handshake(&gws.notifications(), &headers, json!({}))
                .await
                .expect("a handshake under the cap"),
        );
    }
    // All but the first are active again: the first is the least recently active.
    for session in &mut sessions[1..] {
        session.connect_once(0).await;
    }
    let mut newest = LongPoll::handshake(&gws.notifications(), &headers, json!({}))
        .await
        .expect("a handshake over the cap still succeeds");
    let first = sessions[0].subscribe("/v2/me/calls").await;
    assert_refused(&first, "402:", "the least recently active session, ended");
    for session in &sessions[1..] {
        let reply = session.subscribe("/v2/me/calls").await;
        assert_eq!(reply["successful"], true, "{reply}");
    }

    for i in 0..100 {
        let reply = newest.subscribe(&format!("/v2/me/channel{i}")).await;
        assert_eq!(reply["successful"], true, "subscription {i}: {reply}");
    }
    let over = newest.subscribe("/v2/me/channel100").await;
    assert_refused(&over, "403:", "the 101st subscription");
    assert!(
        over["error"]
            .as_str()
            .unwrap_or_default()
            .ends_with("too_many_subscriptions"),
        "{over}"
    );
    // Subscribing again to a held channel adds nothing; after an unsubscribe there is room.
    assert_eq!(
        newest.subscribe("/v2/me/channel7").await["successful"],
        true
    );
    let reply = newest
        .post_as(
            &headers,
            json!([{"channel": "/meta/unsubscribe", "clientId": newest.client_id, "subscription": "/v2/me/channel7"}]),
        )
        .await;
    assert_eq!(reply[0]["successful"], true, "{reply:?}");
    assert_eq!(
        newest.subscribe("/v2/me/channel100").await["successful"],
        true
    );
    assert!(
        newest
            .connect_once(0)
            .await
            .iter()
            .any(|m| m["successful"] == true)
    );
}

/// The attack: a user is disabled (a leaver, a stolen password) while holding a CometD connect;
/// without a defence the connect is answered as usual and the session lives on. Its held
/// connect is answered as an unknown client's, and another user's session is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_users_held_connect_ends() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    let gws = Gws::new(&server.url(""));
    let owner_basic = basic("agent15000");
    let mut owner = LongPoll::handshake(
        &gws.notifications(),
        &[("Authorization", owner_basic.as_str())],
        json!({}),
    )
    .await
    .expect("the owner's handshake");
    let bystander_basic = basic("agent15002");
    let bystander = LongPoll::handshake(
        &gws.notifications(),
        &[("Authorization", bystander_basic.as_str())],
        json!({}),
    )
    .await
    .expect("the bystander's handshake");

    let held = tokio::spawn(async move { owner.connect_once(30_000).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.admin(&["users", "disable", "--username", "agent15000"], "");
    let reply = tokio::time::timeout(Duration::from_secs(40), held)
        .await
        .expect("the held connect answered")
        .expect("the connect task");
    let connect = reply
        .iter()
        .find(|m| m["channel"] == "/meta/connect")
        .expect("a connect reply");
    assert_refused(connect, "402:", "the disabled user's held connect");

    let reply = bystander.subscribe("/v2/me/calls").await;
    assert_eq!(reply["successful"], true, "{reply}");
}
