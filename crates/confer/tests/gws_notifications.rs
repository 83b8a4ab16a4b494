//! The seeds' GWS exchanges end to end on a fresh `confer serve --demo` (the real binary): the
//! seed request gets the seed reply, and the CometD notifications are the seed's, field for
//! field (volatile fields aside), pinned by insta snapshots of what the server actually sends.
//! Also: how CometD handshakes are authenticated, and that a user only ever receives their own.

// clippy's zombie_processes does not see that `ConferProcess` waits for its child in `Drop`.
mod gws_support;
#[allow(clippy::zombie_processes)]
mod support;

use std::time::Duration;

use gws_support::{
    CHAT_ID, CHAT_REMOVAL, Gws, VOICE_CALL_ID, VOICE_REMOVAL, assert_matches_sample, basic,
    cometd::LongPoll, normalize,
};
use serde_json::{Value, json};
use support::ConferProcess;

const WAIT: Duration = Duration::from_secs(20);

fn demo_server() -> (ConferProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    (server, dir)
}

/// A CometD session of `username` (Basic credentials on the handshake) subscribed to
/// `/v2/me/*`.
async fn subscriber(gws: &Gws, username: &str) -> LongPoll {
    let basic = basic(username);
    let session = LongPoll::handshake(
        &gws.notifications(),
        &[("Authorization", basic.as_str())],
        json!({}),
    )
    .await
    .unwrap_or_else(|reply| panic!("{username}'s handshake was refused: {reply}"));
    let reply = session.subscribe("/v2/me/*").await;
    assert_eq!(reply["successful"], true, "{reply}");
    session
}

/// The notification of a delivered message, as the seed prints them: `{data, channel}`.
fn as_notification(message: &Value) -> Value {
    json!({ "data": message["data"], "channel": message["channel"] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voice_seed_end_to_end() {
    let (server, _dir) = demo_server();
    let gws = Gws::new(&server.url(""));
    let mut owner = subscriber(&gws, "agent15000").await;
    let mut other = subscriber(&gws, "agent15002").await;
    let mut bystander = subscriber(&gws, "supervisor").await;

    let login = gws.login("agent15000").await;
    let reply = gws
        .post(
            &login,
            &format!("/api/v2/me/calls/{VOICE_CALL_ID}"),
            VOICE_REMOVAL,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        gws_support::sample("gws_voice/remove_participant_reply.json")
    );

    let got = owner.messages(1, WAIT).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let notification = as_notification(&got[0]);
    assert_matches_sample(
        &notification,
        "gws_voice/participants_updated_notification.json",
        &gws.base,
    );
    insta::assert_json_snapshot!(
        "voice_seed_agent15000_participants_updated",
        normalize(&notification, &gws.base)
    );

    // agent15002 is told too, with its own view: the other party is now 15000 only, and as a
    // party who does not own the call it may not conference.
    let got = other.messages(1, WAIT).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let notification = as_notification(&got[0]);
    let data = &notification["data"];
    assert_eq!(notification["channel"], "/v2/me/calls");
    assert_eq!(data["notificationType"], "ParticipantsUpdated");
    assert_eq!(data["phoneNumber"], "15002");
    assert_eq!(data["call"]["state"], "Established");
    assert_eq!(data["call"]["participants"][0]["phoneNumber"], "15000");
    assert_eq!(
        data["call"]["participants"].as_array().map(Vec::len),
        Some(1)
    );
    insta::assert_json_snapshot!(
        "voice_seed_agent15002_participants_updated",
        normalize(&notification, &gws.base)
    );

    // The metrics saw the three sessions and the two deliveries.
    gws_support::eventually("the subscriber gauge", WAIT, || async {
        gws.metric("confer_notification_subscribers ").await == 3.0
    })
    .await;
    gws_support::eventually("the delivery-lag histogram", WAIT, || async {
        gws.metric("confer_notification_delivery_lag_seconds_count ")
            .await
            >= 2.0
    })
    .await;

    // Nobody else is told anything.
    let nothing = bystander.messages(1, Duration::from_millis(1500)).await;
    assert!(nothing.is_empty(), "{nothing:#?}");
    // And the reply changed what everyone sees.
    let call = gws
        .get(&login, &format!("/api/v2/me/calls/{VOICE_CALL_ID}"))
        .await;
    assert_eq!(
        call.body["call"]["participants"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_seed_end_to_end() {
    let (server, _dir) = demo_server();
    let gws = Gws::new(&server.url(""));
    let mut agent1 = subscriber(&gws, "test_consult").await;
    let mut agent2 = subscriber(&gws, "chat_consult").await;
    let mut bystander = subscriber(&gws, "agent15000").await;

    let login = gws.login("test_consult").await;
    let reply = gws
        .post(&login, &format!("/api/v2/me/chats/{CHAT_ID}"), CHAT_REMOVAL)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        gws_support::sample("gws_chat/remove_participant_reply.json")
    );

    // Agent1 (the remover): ParticipantsUpdated, then the ParticipantLeft entry at index 7.
    let got = agent1.messages(2, WAIT).await;
    let agent1_samples = [
        "gws_chat/agent1_1_participants_updated.json",
        "gws_chat/agent1_2_new_messages.json",
    ];
    assert_eq!(got.len(), agent1_samples.len(), "{got:#?}");
    for (i, (message, sample)) in got.iter().zip(agent1_samples).enumerate() {
        assert_eq!(message["channel"], "/v2/me/chats");
        assert_matches_sample(&message["data"], sample, &gws.base);
        insta::assert_json_snapshot!(
            format!("chat_seed_agent1_{}", i + 1),
            normalize(&message["data"], &gws.base)
        );
    }

    // Agent2 (removed): ParticipantsUpdated (LeftChat), NewMessages, StatusChange LeftChat,
    // StatusChange Completed with a referenceId.
    let got = agent2.messages(4, WAIT).await;
    let agent2_samples = [
        "gws_chat/agent2_1_participants_updated.json",
        "gws_chat/agent2_2_new_messages.json",
        "gws_chat/agent2_3_status_change_left_chat.json",
        "gws_chat/agent2_4_status_change_completed.json",
    ];
    assert_eq!(got.len(), agent2_samples.len(), "{got:#?}");
    for (i, (message, sample)) in got.iter().zip(agent2_samples).enumerate() {
        assert_eq!(message["channel"], "/v2/me/chats");
        assert_matches_sample(&message["data"], sample, &gws.base);
        insta::assert_json_snapshot!(
            format!("chat_seed_agent2_{}", i + 1),
            normalize(&message["data"], &gws.base)
        );
    }

    // Nothing more for either, nothing at all for a user outside the chat.
    assert!(
        agent1
            .messages(1, Duration::from_millis(800))
            .await
            .is_empty()
    );
    assert!(
        agent2
            .messages(1, Duration::from_millis(800))
            .await
            .is_empty()
    );
    assert!(
        bystander
            .messages(1, Duration::from_millis(800))
            .await
            .is_empty()
    );

    // The removed agent still reads the chat, as Completed; it is no longer listed.
    let removed = gws.login("chat_consult").await;
    let chat = gws
        .get(&removed, &format!("/api/v2/me/chats/{CHAT_ID}"))
        .await;
    assert_eq!(chat.body["chat"]["state"], "Completed");
    let chats = gws.get(&removed, "/api/v2/me/chats").await;
    assert_eq!(chats.body, json!({"statusCode": 0, "chats": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cometd_handshakes_are_authenticated_like_rest() {
    let (server, _dir) = demo_server();
    let gws = Gws::new(&server.url(""));
    let url = gws.notifications();

    // No credentials, wrong credentials: refused, and told not to retry.
    for headers in [
        vec![],
        vec![("Authorization", "Basic YWdlbnQxNTAwMDp3cm9uZw==")],
        vec![("Cookie", "JSESSIONID=v1.forged.0.sig")],
    ] {
        let refused = LongPoll::handshake(&url, &headers, json!({}))
            .await
            .err()
            .expect("refused");
        assert_eq!(refused["error"], "403::access_denied", "{refused}");
        assert_eq!(refused["advice"]["reconnect"], "none", "{refused}");
    }

    // An unknown (or expired) session is told to handshake again.
    let reply: Value = gws
        .http
        .post(format!("{url}/connect"))
        .json(
            &json!([{"channel": "/meta/connect", "clientId": "0123456789abcdef",
                       "connectionType": "long-polling"}]),
        )
        .send()
        .await
        .expect("connect")
        .json()
        .await
        .expect("a JSON reply");
    assert_eq!(reply[0]["error"], "402::session_unknown", "{reply}");
    assert_eq!(reply[0]["advice"]["reconnect"], "handshake", "{reply}");

    // The session cookie works with its CSRF token (header, or handshake ext for browser
    // WebSockets), and not without it.
    let login = gws.login("agent15000").await;
    let refused = LongPoll::handshake(&url, &[("Cookie", &login.cookie)], json!({}))
        .await
        .err()
        .expect("refused without the CSRF token");
    assert_eq!(refused["error"], "403::invalid_csrf_token", "{refused}");
    let other = gws.login("agent15002").await;
    let refused = LongPoll::handshake(
        &url,
        &[("Cookie", &login.cookie), ("X-CSRF-TOKEN", &other.csrf)],
        json!({}),
    )
    .await
    .err()
    .expect("refused with another session's token");
    assert_eq!(refused["error"], "403::invalid_csrf_token", "{refused}");
    let by_header = LongPoll::handshake(
        &url,
        &[("Cookie", &login.cookie), ("X-CSRF-TOKEN", &login.csrf)],
        json!({}),
    )
    .await;
    assert!(by_header.is_ok());
    let by_ext = LongPoll::handshake(&url, &[], json!({ "X-CSRF-TOKEN": login.csrf })).await;
    assert!(by_ext.is_err(), "the ext token is no credential by itself");

    // Channels: /v2/me/... yes, others no; no publishing, not even to one's own channel.
    let session = subscriber(&gws, "agent15000").await;
    for pattern in ["/v2/me/calls", "/v2/me/chats", "/v2/me/**", "/**"] {
        let reply = session.subscribe(pattern).await;
        assert_eq!(reply["successful"], true, "{pattern}: {reply}");
    }
    for pattern in ["/v2/users", "/v2/*", "/foo", "/v2/me"] {
        let reply = session.subscribe(pattern).await;
        assert_eq!(reply["successful"], false, "{pattern}: {reply}");
        assert_eq!(
            reply["error"],
            format!("403:{pattern}:forbidden_channel"),
            "{reply}"
        );
    }
    for channel in ["/v2/me/calls", "/chat/room"] {
        let reply = session.publish(channel, json!({"forged": true})).await;
        assert_eq!(reply["successful"], false, "{reply}");
    }

    // A user subscribed to everything still only gets their own: agent15002 sees the seed
    // removal's update for its own view, never agent15000's.
    let mut everything = {
        let basic = basic("agent15002");
        let s = LongPoll::handshake(&url, &[("Authorization", basic.as_str())], json!({}))
            .await
            .expect("handshake");
        assert_eq!(s.subscribe("/**").await["successful"], true);
        s
    };
    let reply = gws
        .post(
            &login,
            &format!("/api/v2/me/calls/{VOICE_CALL_ID}"),
            VOICE_REMOVAL,
        )
        .await;
    assert_eq!(reply.codes(), (200, 0));
    let got = everything.messages(2, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["data"]["phoneNumber"], "15002");
    assert!(
        got[0]["data"]["call"]["deviceUri"]
            .as_str()
            .is_some_and(|uri| uri.ends_with(gws_support::device_id("agent15002")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_is_announced_with_the_reference_of_its_request() {
    let (server, _dir) = demo_server();
    let gws = Gws::new(&server.url(""));
    let mut consultant = subscriber(&gws, "agent15002").await;
    let mut agent1 = subscriber(&gws, "test_consult").await;
    let login = gws.login("test_consult").await;
    let consult = json!({
        "operationName": "Consult",
        "targetUri": gws.url(&format!("/api/v2/users/{}", gws_support::user_id("agent15002"))),
    })
    .to_string();
    let reply = gws
        .post(&login, &format!("/api/v2/me/chats/{CHAT_ID}"), &consult)
        .await;
    assert_eq!(reply.codes(), (200, 0));
    let reference = reply.body["referenceId"].as_i64().expect("a referenceId");

    let got = consultant.messages(1, WAIT).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let data = &got[0]["data"];
    assert_eq!(data["notificationType"], "StatusChange");
    assert_eq!(data["chat"]["state"], "Invited");
    assert_eq!(data["chat"]["capabilities"], json!(["Accept", "Reject"]));
    assert_eq!(data["referenceId"], reference);

    // Accepting: the consultant is told it is chatting and sees its ParticipantJoined entry;
    // the other agents learn who joined. The customer's view is not a CometD user's.
    let consultant_login = gws.login("agent15002").await;
    let accept = r#"{"operationName":"Accept","nickname":"consultant"}"#;
    let reply = gws
        .post(
            &consultant_login,
            &format!("/api/v2/me/chats/{CHAT_ID}"),
            accept,
        )
        .await;
    assert_eq!(reply.body, json!({"statusCode": 0}));
    let got = consultant.messages(2, WAIT).await;
    let kinds: Vec<&Value> = got.iter().map(|m| &m["data"]["notificationType"]).collect();
    assert_eq!(
        kinds,
        [&json!("StatusChange"), &json!("NewMessages")],
        "{got:#?}"
    );
    assert_eq!(got[0]["data"]["chat"]["state"], "Chatting");
    assert_eq!(got[1]["data"]["messages"][0]["type"], "ParticipantJoined");
    assert_eq!(got[1]["data"]["messages"][0]["visibility"], "Agents");
    let got = agent1.messages(2, WAIT).await;
    let kinds: Vec<&Value> = got.iter().map(|m| &m["data"]["notificationType"]).collect();
    assert_eq!(
        kinds,
        [&json!("ParticipantsUpdated"), &json!("NewMessages")],
        "{got:#?}"
    );
    assert!(got[0]["data"].get("referenceId").is_none());
}
