//! GWS REST against a running server (in process, real HTTP): every endpoint of the issue,
//! authentication (Basic, session cookie, CSRF), the error table with "nothing changed" checks,
//! `Idempotency-Key`, and the removal metrics.

mod gws_support;

use gws_support::{
    CHAT_ID, Gws, Login, PASSWORD, Reply, Server, VOICE_CALL_ID, VOICE_REMOVAL, device_id, user_id,
};
use reqwest::Method;
use serde_json::{Value, json};

fn call_path() -> String {
    format!("/api/v2/me/calls/{VOICE_CALL_ID}")
}

fn chat_path() -> String {
    format!("/api/v2/me/chats/{CHAT_ID}")
}

/// The phone numbers of a call's other parties, as `viewer` sees them.
async fn parties(gws: &Gws, viewer: &Login, call: &str) -> Vec<String> {
    let reply = gws.get(viewer, &format!("/api/v2/me/calls/{call}")).await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
    reply.body["call"]["participants"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| p["phoneNumber"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The nicknames of a chat's participants, as `viewer` sees them.
async fn chat_participants(gws: &Gws, viewer: &Login) -> Vec<String> {
    let reply = gws.get(viewer, &chat_path()).await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
    reply.body["chat"]["participants"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| p["nickname"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_error(reply: &Reply, http: u16, status: i64) {
    assert_eq!(reply.codes(), (http, status), "{:?}", reply.body);
    let body = reply.body.as_object().expect("an object");
    assert_eq!(body.len(), 2, "only statusCode and statusMessage: {body:?}");
    assert!(
        body["statusMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_sees_their_own_calls_chats_and_devices() {
    let server = Server::start(true).await;
    let gws = server.gws();

    // GET /api/v2/me: the user, the session cookie, the CSRF headers.
    let reply = Reply::of(
        gws.request(Method::GET, "/api/v2/me")
            .basic_auth("agent15000", Some(PASSWORD))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.codes(), (200, 0));
    let cookie = reply.header("set-cookie").expect("a session cookie");
    assert!(cookie.starts_with("JSESSIONID=v2."), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert_eq!(reply.header("x-csrf-header"), Some("X-CSRF-TOKEN"));
    assert!(reply.header("x-csrf-token").is_some_and(|t| t.len() > 20));
    let user = &reply.body["user"];
    assert_eq!(user["id"], user_id("agent15000"));
    assert_eq!(user["userName"], "agent15000");
    assert_eq!(user["roles"], json!(["ROLE_AGENT"]));
    assert_eq!(user["phoneNumber"], "15000");
    assert_eq!(user["devices"][0]["id"], device_id("agent15000"));
    assert_eq!(
        user["devices"][0]["uri"],
        gws.url(&format!("/api/v2/devices/{}", device_id("agent15000")))
    );

    let supervisor = gws.login("supervisor").await;
    let me = gws.get(&supervisor, "/api/v2/me").await;
    assert_eq!(me.body["user"]["roles"], json!(["ROLE_SUPERVISOR"]));
    assert!(
        me.body["user"]["devices"][0]["capabilities"]
            .as_array()
            .is_some_and(|caps| caps.contains(&json!("ListenIn")))
    );

    // Calls: the owner and the other agent each see the call with their own view.
    let owner = gws.login("agent15000").await;
    let calls = gws.get(&owner, "/api/v2/me/calls").await;
    assert_eq!(calls.codes(), (200, 0));
    let list = calls.body["calls"].as_array().expect("calls");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], VOICE_CALL_ID);
    assert_eq!(list[0]["state"], "Established");
    assert_eq!(list[0]["capabilities"].as_array().map(Vec::len), Some(11));
    assert_eq!(
        parties(&gws, &owner, VOICE_CALL_ID).await,
        ["15001", "15002"]
    );
    let other = gws.login("agent15002").await;
    assert_eq!(
        parties(&gws, &other, VOICE_CALL_ID).await,
        ["15000", "15001"]
    );
    for outsider in ["test_consult", "supervisor"] {
        let login = gws.login(outsider).await;
        let calls = gws.get(&login, "/api/v2/me/calls").await;
        assert_eq!(calls.body, json!({"statusCode": 0, "calls": []}));
        let item = gws.get(&login, &call_path()).await;
        assert_error(&item, 404, 6);
    }

    // Chats.
    let agent1 = gws.login("test_consult").await;
    let chats = gws.get(&agent1, "/api/v2/me/chats").await;
    assert_eq!(chats.codes(), (200, 0));
    assert_eq!(chats.body["chats"][0]["id"], CHAT_ID);
    assert_eq!(chats.body["chats"][0]["state"], "Chatting");
    assert_eq!(
        chat_participants(&gws, &agent1).await,
        ["test_consult", "test_consult_clientL", "chat_consult"]
    );
    let messages = gws.get(&agent1, &format!("{}/messages", chat_path())).await;
    assert_eq!(messages.codes(), (200, 0));
    let indices: Vec<i64> = messages.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["index"].as_i64())
        .collect();
    assert_eq!(indices, [0, 1, 2, 3, 4, 5, 6]);
    let chats = gws.get(&owner, "/api/v2/me/chats").await;
    assert_eq!(chats.body, json!({"statusCode": 0, "chats": []}));
    assert_error(&gws.get(&owner, &chat_path()).await, 404, 6);

    // Devices: one's own only.
    let devices = gws.get(&owner, "/api/v2/me/devices").await;
    assert_eq!(devices.body["devices"][0]["id"], device_id("agent15000"));
    let device = gws
        .get(
            &owner,
            &format!("/api/v2/me/devices/{}", device_id("agent15000")),
        )
        .await;
    assert_eq!(device.codes(), (200, 0));
    let foreign = gws
        .get(
            &owner,
            &format!("/api/v2/me/devices/{}", device_id("agent15002")),
        )
        .await;
    assert_error(&foreign, 404, 6);

    // Unknown resources and methods get GWS bodies too.
    assert_error(&gws.get(&owner, "/api/v2/me/workbins").await, 404, 6);
    assert_error(&gws.get(&owner, "/api/v2/no-such-resource").await, 404, 6);
    let delete = Reply::of(
        gws.request(Method::DELETE, &call_path())
            .header("Cookie", &owner.cookie)
            .header("X-CSRF-TOKEN", &owner.csrf)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&delete, 405, 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_sessions_and_csrf() {
    let server = Server::start(true).await;
    let gws = server.gws();
    let owner = gws.login("agent15000").await;
    let denied = json!({"statusCode": 20, "statusMessage": "Access denied"});

    // No credentials, wrong ones, a forged or foreign-signed cookie: 401 with GWS's body.
    let attempts = [
        gws.request(Method::GET, "/api/v2/me"),
        gws.request(Method::POST, &call_path()).body(VOICE_REMOVAL),
        gws.request(Method::GET, "/api/v2/me")
            .basic_auth("agent15000", Some("wrong")),
        gws.request(Method::GET, "/api/v2/me")
            .basic_auth("nobody", Some(PASSWORD)),
        gws.request(Method::GET, "/api/v2/me")
            .header("Authorization", "Bearer something"),
        gws.request(Method::GET, "/api/v2/me")
            .header("Cookie", "JSESSIONID=v1.YWdlbnQxNTAwMA.9999999999.forged"),
        // Wrong Basic credentials are refused even alongside a valid session cookie.
        gws.request(Method::GET, "/api/v2/me")
            .header("Cookie", &owner.cookie)
            .basic_auth("agent15000", Some("wrong")),
    ];
    for attempt in attempts {
        let reply = Reply::of(attempt.send().await.unwrap()).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.body, denied);
    }

    // The session cookie alone authenticates GETs, and keeps its CSRF token.
    let reply = gws.get(&owner, "/api/v2/me").await;
    assert_eq!(reply.codes(), (200, 0));
    assert_eq!(reply.header("x-csrf-token"), Some(owner.csrf.as_str()));
    assert!(reply.header("set-cookie").is_none(), "the session is kept");

    // Modifying requests need the CSRF token of their session: Basic alone, the cookie without
    // a token, a wrong token, another session's token: 403, and nothing changed.
    let other = gws.login("agent15002").await;
    let csrf_failures = [
        gws.request(Method::POST, &call_path())
            .basic_auth("agent15000", Some(PASSWORD))
            .body(VOICE_REMOVAL),
        gws.request(Method::POST, &call_path())
            .header("Cookie", &owner.cookie)
            .body(VOICE_REMOVAL),
        gws.request(Method::POST, &call_path())
            .header("Cookie", &owner.cookie)
            .header("X-CSRF-TOKEN", "not-the-token")
            .body(VOICE_REMOVAL),
        gws.request(Method::POST, &call_path())
            .header("Cookie", &owner.cookie)
            .header("X-CSRF-TOKEN", &other.csrf)
            .body(VOICE_REMOVAL),
        gws.request(Method::POST, &call_path())
            .basic_auth("agent15000", Some(PASSWORD))
            .header("X-CSRF-TOKEN", &owner.csrf)
            .body(VOICE_REMOVAL),
    ];
    for attempt in csrf_failures {
        let reply = Reply::of(attempt.send().await.unwrap()).await;
        assert_eq!(reply.status, 403);
        assert_eq!(
            reply.body,
            json!({"statusCode": 3, "statusMessage": "Missing or invalid Csrf token"})
        );
    }
    assert_eq!(
        parties(&gws, &owner, VOICE_CALL_ID).await,
        ["15001", "15002"]
    );

    // Basic with the session cookie and its token: accepted.
    let reply = Reply::of(
        gws.request(Method::POST, &call_path())
            .basic_auth("agent15000", Some(PASSWORD))
            .header("Cookie", &owner.cookie)
            .header("X-CSRF-TOKEN", &owner.csrf)
            .body(VOICE_REMOVAL)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"statusCode": 0}));
    server.stop().await;

    // With `--csrf false`, Basic alone is enough and GET replies carry no CSRF headers.
    let server = Server::start(false).await;
    let gws = server.gws();
    let reply = Reply::of(
        gws.request(Method::GET, "/api/v2/me")
            .basic_auth("agent15000", Some(PASSWORD))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.codes(), (200, 0));
    assert!(reply.header("x-csrf-token").is_none());
    let reply = Reply::of(
        gws.request(Method::POST, &call_path())
            .basic_auth("agent15000", Some(PASSWORD))
            .body(VOICE_REMOVAL)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"statusCode": 0}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_refusals_change_nothing() {
    let server = Server::start(true).await;
    let gws = server.gws();
    let owner = gws.login("agent15000").await;
    let other = gws.login("agent15002").await;
    let outsider = gws.login("test_consult").await;
    let oversized = format!(
        r#"{{"operationName":"RemoveParticipantFromConference","participant":"15001","pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let cases: Vec<(&str, &Login, String, &str, u16, i64)> = vec![
        ("not the owner", &other, call_path(), VOICE_REMOVAL, 403, 3),
        (
            "not in the call",
            &outsider,
            call_path(),
            VOICE_REMOVAL,
            404,
            6,
        ),
        (
            "unknown call",
            &owner,
            "/api/v2/me/calls/NOSUCHCALL".into(),
            VOICE_REMOVAL,
            404,
            6,
        ),
        (
            "unknown participant",
            &owner,
            call_path(),
            r#"{"operationName":"RemoveParticipantFromConference","participant":"15009"}"#,
            404,
            6,
        ),
        (
            "the owner as target",
            &owner,
            call_path(),
            r#"{"operationName":"RemoveParticipantFromConference","participant":"15000"}"#,
            400,
            2,
        ),
        (
            "missing parameter",
            &owner,
            call_path(),
            r#"{"operationName":"RemoveParticipantFromConference"}"#,
            400,
            1,
        ),
        (
            "wrong type",
            &owner,
            call_path(),
            r#"{"operationName":"RemoveParticipantFromConference","participant":15001}"#,
            400,
            10,
        ),
        (
            "unknown operationName",
            &owner,
            call_path(),
            r#"{"operationName":"Teleport","participant":"15001"}"#,
            400,
            10,
        ),
        (
            "operationName of the wrong type",
            &owner,
            call_path(),
            r#"{"operationName":["RemoveParticipantFromConference"]}"#,
            400,
            10,
        ),
        (
            "missing operationName",
            &owner,
            call_path(),
            r#"{"participant":"15001"}"#,
            400,
            1,
        ),
        ("empty body", &owner, call_path(), "", 400, 1),
        (
            "malformed JSON",
            &owner,
            call_path(),
            r#"{"operationName":"RemoveParticipantFromConference","participant":"15001""#,
            400,
            10,
        ),
        (
            "not an object",
            &owner,
            call_path(),
            r#"["15001"]"#,
            400,
            10,
        ),
        ("oversized body", &owner, call_path(), &oversized, 413, 10),
        (
            "SingleStepConference without destination",
            &owner,
            call_path(),
            r#"{"operationName":"SingleStepConference"}"#,
            400,
            1,
        ),
        (
            "SingleStepConference by a party who does not own the call",
            &other,
            call_path(),
            r#"{"operationName":"SingleStepConference","destination":{"phoneNumber":"15005"}}"#,
            403,
            3,
        ),
        (
            "SingleStepConference to a line already there",
            &owner,
            call_path(),
            r#"{"operationName":"SingleStepConference","destination":{"phoneNumber":"15002"}}"#,
            409,
            18,
        ),
        (
            "ClearCall by a party who does not own the call",
            &other,
            call_path(),
            r#"{"operationName":"ClearCall"}"#,
            403,
            3,
        ),
        (
            "Retrieve of a call not held",
            &owner,
            call_path(),
            r#"{"operationName":"Retrieve"}"#,
            400,
            2,
        ),
    ];
    for (what, login, path, body, http, status) in cases {
        let reply = gws.post(login, &path, body).await;
        assert_eq!(reply.codes(), (http, status), "{what}: {:?}", reply.body);
        assert_error(&reply, http, status);
        assert_eq!(
            parties(&gws, &owner, VOICE_CALL_ID).await,
            ["15001", "15002"],
            "{what} changed the call"
        );
    }
    // A non-JSON content type is read all the same (curl -d sends form data).
    let reply = Reply::of(
        gws.request(Method::POST, &call_path())
            .header("Cookie", &owner.cookie)
            .header("X-CSRF-TOKEN", &owner.csrf)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(r#"{"operationName":"RemoveParticipantFromConference","participant":"15009"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&reply, 404, 6);

    // Counted by dialect and outcome.
    let metrics = gws.metrics().await;
    for line in [
        r#"confer_removals_total{dialect="gws_voice",outcome="NotConferenceOwner"} 1"#,
        r#"confer_removals_total{dialect="gws_voice",outcome="NotInConference"} 2"#,
        r#"confer_removals_total{dialect="gws_voice",outcome="MissingParameter"} 1"#,
        r#"confer_removals_total{dialect="gws_voice",outcome="CannotRemoveOwner"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_operations_build_and_end_conferences() {
    let server = Server::start(true).await;
    let gws = server.gws();
    let owner = gws.login("agent15000").await;
    let other = gws.login("agent15002").await;
    let supervisor = gws.login("supervisor").await;
    let ok = json!({"statusCode": 0});

    // The seed removal, then SingleStepConference adds a line back, with an Idempotency-Key:
    // the retry answers the same and adds nothing; the key with another body is refused.
    assert_eq!(gws.post(&owner, &call_path(), VOICE_REMOVAL).await.body, ok);
    assert_eq!(parties(&gws, &owner, VOICE_CALL_ID).await, ["15002"]);
    let add = r#"{"operationName":"SingleStepConference","destination":{"phoneNumber":"15003"}}"#;
    let key = [("Idempotency-Key", "add-15003")];
    for _ in 0..2 {
        let reply = gws.post_with(&owner, &call_path(), add, &key).await;
        assert_eq!((reply.status.as_u16(), &reply.body), (200, &ok));
    }
    // The same request written differently is the same request.
    let respaced =
        r#"{ "destination": {"phoneNumber":"15003"}, "operationName": "SingleStepConference" }"#;
    assert_eq!(
        gws.post_with(&owner, &call_path(), respaced, &key)
            .await
            .body,
        ok
    );
    assert_eq!(
        parties(&gws, &owner, VOICE_CALL_ID).await,
        ["15002", "15003"]
    );
    let reused = gws
        .post_with(
            &owner,
            &call_path(),
            r#"{"operationName":"SingleStepConference","destination":{"phoneNumber":"15004"}}"#,
            &key,
        )
        .await;
    assert_error(&reused, 409, 19);
    assert_eq!(
        parties(&gws, &owner, VOICE_CALL_ID).await,
        ["15002", "15003"]
    );
    let bad_key = gws
        .post_with(
            &owner,
            &call_path(),
            add,
            &[("Idempotency-Key", "has space")],
        )
        .await;
    assert_error(&bad_key, 400, 10);

    // A removal retried with its key is answered once more as a success, and counted as such.
    let remove = r#"{"operationName":"RemoveParticipantFromConference","participant":"15003"}"#;
    let key = [("Idempotency-Key", "remove-15003")];
    for _ in 0..2 {
        assert_eq!(
            gws.post_with(&owner, &call_path(), remove, &key).await.body,
            ok
        );
    }
    assert_eq!(parties(&gws, &owner, VOICE_CALL_ID).await, ["15002"]);
    let metrics = gws.metrics().await;
    assert!(
        metrics.contains(r#"confer_removals_total{dialect="gws_voice",outcome="removed"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"confer_removals_total{dialect="gws_voice",outcome="replayed"} 1"#),
        "{metrics}"
    );

    // Hold and Retrieve one's own line.
    let hold = gws
        .post(&other, &call_path(), r#"{"operationName":"Hold"}"#)
        .await;
    assert_eq!(hold.body, ok);
    let seen = gws.get(&other, &call_path()).await;
    assert_eq!(seen.body["call"]["state"], "Held");
    assert!(
        seen.body["call"]["capabilities"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("Retrieve")))
    );
    assert_error(
        &gws.post(&other, &call_path(), r#"{"operationName":"Hold"}"#)
            .await,
        400,
        2,
    );
    assert_eq!(
        gws.post(&other, &call_path(), r#"{"operationName":"Retrieve"}"#)
            .await
            .body,
        ok
    );
    assert_eq!(
        gws.get(&other, &call_path()).await.body["call"]["state"],
        "Established"
    );

    // Supervisor monitoring: ListenIn on agent15000's device, then the supervisor sees the call
    // as monitoring and may remove a party; an agent may not monitor.
    let target = json!({
        "operationName": "ListenIn",
        "targetDeviceUri": gws.url(&format!("/api/v2/devices/{}", device_id("agent15000"))),
    })
    .to_string();
    let supervisor_device = format!("/api/v2/me/devices/{}", device_id("supervisor"));
    let agent_device = format!("/api/v2/me/devices/{}", device_id("agent15002"));
    assert_error(&gws.post(&other, &agent_device, &target).await, 403, 5);
    assert_error(&gws.post(&supervisor, &agent_device, &target).await, 404, 6);
    let bad_scope = json!({
        "operationName": "Coach",
        "targetDeviceUri": device_id("agent15000"),
        "supervisorMonitoringScope": "Galaxy",
    })
    .to_string();
    assert_error(
        &gws.post(&supervisor, &supervisor_device, &bad_scope).await,
        400,
        10,
    );
    assert_error(
        &gws.post(
            &supervisor,
            &supervisor_device,
            r#"{"operationName":"ListenIn"}"#,
        )
        .await,
        400,
        1,
    );
    assert_eq!(
        gws.post(&supervisor, &supervisor_device, &target)
            .await
            .body,
        ok
    );
    let calls = gws.get(&supervisor, "/api/v2/me/calls").await;
    assert_eq!(calls.body["calls"][0]["id"], VOICE_CALL_ID);
    assert_eq!(calls.body["calls"][0]["monitoring"], true);
    assert_eq!(calls.body["calls"][0]["supervisorListeningIn"], true);
    assert_error(
        &gws.post(&supervisor, &supervisor_device, &target).await,
        409,
        18,
    );
    // "The owner of the conference call or a supervisor during monitoring" may remove.
    let add = r#"{"operationName":"SingleStepConference","destination":{"phoneNumber":"15005"}}"#;
    assert_eq!(gws.post(&owner, &call_path(), add).await.body, ok);
    let remove = r#"{"operationName":"RemoveParticipantFromConference","participant":"15005"}"#;
    assert_error(&gws.post(&other, &call_path(), remove).await, 403, 3);
    assert_eq!(gws.post(&supervisor, &call_path(), remove).await.body, ok);
    assert_eq!(parties(&gws, &owner, VOICE_CALL_ID).await, ["15002"]);
    assert_eq!(
        gws.get(&other, &call_path()).await.body["call"]["monitoring"],
        false,
        "agents are not told they are monitored"
    );
    let cancel = r#"{"operationName":"CancelSupervisorMonitoring"}"#;
    assert_eq!(
        gws.post(&supervisor, &supervisor_device, cancel).await.body,
        ok
    );
    assert_error(
        &gws.post(&supervisor, &supervisor_device, cancel).await,
        404,
        6,
    );
    assert_error(
        &gws.post(
            &supervisor,
            &supervisor_device,
            r#"{"operationName":"Fly"}"#,
        )
        .await,
        400,
        10,
    );

    // Dial from one's own device: a new call, Dialing for the caller, Ringing for the callee,
    // who answers; then the callee hangs up and the call is released.
    let dial = r#"{"operationName":"Dial","destination":{"phoneNumber":"15099"}}"#;
    let own_calls = format!("/api/v2/me/devices/{}/calls", device_id("agent15000"));
    assert_error(
        &gws.post(
            &owner,
            &format!("/api/v2/me/devices/{}/calls", device_id("agent15002")),
            dial,
        )
        .await,
        404,
        6,
    );
    assert_error(
        &gws.post(&owner, &own_calls, r#"{"operationName":"Dial"}"#)
            .await,
        400,
        1,
    );
    assert_eq!(gws.post(&owner, &own_calls, dial).await.body, ok);
    let calls = gws.get(&owner, "/api/v2/me/calls").await;
    let dialed = calls.body["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .find(|call| call["id"] != VOICE_CALL_ID)
        .expect("the dialed call")
        .clone();
    let dialed_id = dialed["id"].as_str().expect("an id").to_owned();
    assert_eq!(dialed["state"], "Dialing");
    assert_eq!(dialed["callType"], "Internal");
    assert_eq!(dialed_id.len(), 32);
    let dialed_path = format!("/api/v2/me/calls/{dialed_id}");
    assert_eq!(
        gws.get(&supervisor, &dialed_path).await.body["call"]["state"],
        "Ringing"
    );
    assert_eq!(
        gws.post(&supervisor, &dialed_path, r#"{"operationName":"Answer"}"#)
            .await
            .body,
        ok
    );
    assert_eq!(
        gws.get(&owner, &dialed_path).await.body["call"]["state"],
        "Established"
    );
    assert_eq!(
        gws.post(&supervisor, &dialed_path, r#"{"operationName":"Hangup"}"#)
            .await
            .body,
        ok
    );
    let released = gws.get(&owner, &dialed_path).await;
    assert_eq!(released.body["call"]["state"], "Released");
    assert_eq!(released.body["call"]["capabilities"], json!([]));

    // ClearCall by the owner ends the seed call for everyone.
    assert_eq!(
        gws.post(&owner, &call_path(), r#"{"operationName":"ClearCall"}"#)
            .await
            .body,
        ok
    );
    assert_eq!(
        gws.get(&other, &call_path()).await.body["call"]["state"],
        "Released"
    );
    for login in [&owner, &other] {
        let calls = gws.get(login, "/api/v2/me/calls").await;
        assert_eq!(calls.body, json!({"statusCode": 0, "calls": []}));
    }
    assert_error(&gws.post(&owner, &call_path(), VOICE_REMOVAL).await, 400, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_operations_and_refusals() {
    let server = Server::start(true).await;
    let gws = server.gws();
    let agent1 = gws.login("test_consult").await;
    let agent2 = gws.login("chat_consult").await;
    let consultant = gws.login("agent15002").await;
    let ok = json!({"statusCode": 0});
    let user_uri = |name: &str| gws.url(&format!("/api/v2/users/{}", user_id(name)));

    // Consult brings agent15002 in, visible to agents only; the reply has a referenceId.
    let consult =
        json!({"operationName": "Consult", "targetUri": user_uri("agent15002")}).to_string();
    let reply = gws.post(&agent1, &chat_path(), &consult).await;
    assert_eq!(reply.codes(), (200, 0));
    assert!(reply.body["referenceId"].is_i64(), "{:?}", reply.body);
    let invited = gws.get(&consultant, &chat_path()).await;
    assert_eq!(invited.body["chat"]["state"], "Invited");
    assert_eq!(
        invited.body["chat"]["capabilities"],
        json!(["Accept", "Reject"])
    );
    let accept = r#"{"operationName":"Accept","nickname":"consultant"}"#;
    assert_eq!(gws.post(&consultant, &chat_path(), accept).await.body, ok);
    let everyone = [
        "test_consult",
        "test_consult_clientL",
        "chat_consult",
        "consultant",
    ];
    assert_eq!(chat_participants(&gws, &agent1).await, everyone);

    let remove = |target: &str| {
        json!({"operationName": "RemoveParticipantFromConference", "targetUri": target}).to_string()
    };
    let outsider = gws.login("agent15000").await;
    let cases: Vec<(&str, &Login, String, u16, i64)> = vec![
        (
            "a consult-only agent",
            &consultant,
            remove(&user_uri("chat_consult")),
            403,
            3,
        ),
        (
            "the customer as target",
            &agent1,
            json!({"operationName": "RemoveParticipantFromConference",
                   "targetPath": "/users/00AF52FCF09E002D"})
            .to_string(),
            400,
            2,
        ),
        (
            "oneself",
            &agent1,
            remove(&user_uri("test_consult")),
            400,
            2,
        ),
        (
            "someone not in the chat",
            &agent1,
            remove(&user_uri("supervisor")),
            404,
            6,
        ),
        (
            "not in the chat",
            &outsider,
            remove(&user_uri("chat_consult")),
            404,
            6,
        ),
        (
            "missing target",
            &agent1,
            r#"{"operationName":"RemoveParticipantFromConference"}"#.into(),
            400,
            1,
        ),
        (
            "targets that disagree",
            &agent1,
            json!({"operationName": "RemoveParticipantFromConference",
                   "targetUri": user_uri("chat_consult"),
                   "targetPath": format!("/users/{}", user_id("agent15002"))})
            .to_string(),
            400,
            10,
        ),
        (
            "a target that is no user URI",
            &agent1,
            remove("/api/v2/chats/00010a9FSGFP001F"),
            400,
            10,
        ),
        (
            "treatAs without text",
            &agent1,
            json!({"operationName": "RemoveParticipantFromConference",
                   "targetUri": user_uri("chat_consult"), "treatAs": "System"})
            .to_string(),
            400,
            10,
        ),
        (
            "an invalid treatAs",
            &agent1,
            json!({"operationName": "RemoveParticipantFromConference",
                   "targetUri": user_uri("chat_consult"), "text": "bye", "treatAs": "Loud"})
            .to_string(),
            400,
            10,
        ),
        (
            "text of the wrong type",
            &agent1,
            json!({"operationName": "RemoveParticipantFromConference",
                   "targetUri": user_uri("chat_consult"), "text": 42})
            .to_string(),
            400,
            10,
        ),
        (
            "an unknown operation",
            &agent1,
            r#"{"operationName":"Transfer"}"#.into(),
            400,
            10,
        ),
        (
            "SendMessage without text",
            &agent1,
            r#"{"operationName":"SendMessage"}"#.into(),
            400,
            1,
        ),
        (
            "Invite of someone already in",
            &agent1,
            json!({"operationName": "Invite", "targetUri": user_uri("chat_consult")}).to_string(),
            409,
            18,
        ),
        (
            "Accept without an invitation",
            &agent1,
            r#"{"operationName":"Accept"}"#.into(),
            404,
            6,
        ),
    ];
    for (what, login, body, http, status) in cases {
        let reply = gws.post(login, &chat_path(), &body).await;
        assert_error(&reply, http, status);
        assert_eq!(
            chat_participants(&gws, &agent1).await,
            everyone,
            "{what} changed the chat"
        );
    }
    assert_error(
        &gws.post(
            &agent1,
            "/api/v2/me/chats/NOSUCHCHAT",
            &remove(&user_uri("chat_consult")),
        )
        .await,
        404,
        6,
    );

    // SendMessage, then the removal with a parting text: the text is logged before the
    // ParticipantLeft entry.
    let send = r#"{"operationName":"SendMessage","text":"One moment please."}"#;
    assert_eq!(gws.post(&agent1, &chat_path(), send).await.body, ok);
    let removal = json!({"operationName": "RemoveParticipantFromConference",
                         "targetUri": user_uri("chat_consult"), "text": "Thanks, colleague.",
                         "treatAs": "System"})
    .to_string();
    assert_eq!(gws.post(&agent1, &chat_path(), &removal).await.body, ok);
    assert_eq!(
        chat_participants(&gws, &agent1).await,
        ["test_consult", "test_consult_clientL", "consultant"]
    );
    let log = gws.get(&agent1, &format!("{}/messages", chat_path())).await;
    let tail: Vec<(Value, Value, Value)> = log.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|m| {
            (
                m["type"].clone(),
                m["text"].clone(),
                m["from"]["nickname"].clone(),
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            (
                json!("Text"),
                json!("One moment please."),
                json!("test_consult")
            ),
            (
                json!("Text"),
                json!("Thanks, colleague."),
                json!("test_consult")
            ),
            (json!("ParticipantLeft"), Value::Null, json!("chat_consult")),
        ]
    );
    assert_eq!(
        gws.get(&agent2, &chat_path()).await.body["chat"]["state"],
        "Completed"
    );

    // Leave, then Complete (wrap-up) for the consultant; Invite and Reject for another agent.
    let leave = r#"{"operationName":"Leave"}"#;
    assert_eq!(gws.post(&consultant, &chat_path(), leave).await.body, ok);
    assert_eq!(
        gws.get(&consultant, &chat_path()).await.body["chat"]["state"],
        "LeftChat"
    );
    assert_eq!(
        gws.post(&consultant, &chat_path(), r#"{"operationName":"Complete"}"#)
            .await
            .body,
        ok
    );
    assert_eq!(
        gws.get(&consultant, &chat_path()).await.body["chat"]["state"],
        "Completed"
    );
    let invite = json!({"operationName": "Invite",
                        "targetPath": format!("/users/{}", user_id("agent15000"))})
    .to_string();
    let reply = gws.post(&agent1, &chat_path(), &invite).await;
    assert!(reply.body["referenceId"].is_i64(), "{:?}", reply.body);
    assert_eq!(
        gws.post(&outsider, &chat_path(), r#"{"operationName":"Reject"}"#)
            .await
            .body,
        ok
    );
    assert_eq!(
        gws.get(&outsider, &chat_path()).await.body["chat"]["state"],
        "Completed"
    );

    let metrics = gws.metrics().await;
    for line in [
        r#"confer_removals_total{dialect="gws_chat",outcome="removed"} 1"#,
        r#"confer_removals_total{dialect="gws_chat",outcome="NotVisibleToAll"} 1"#,
        r#"confer_removals_total{dialect="gws_chat",outcome="CannotRemoveCustomer"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    server.stop().await;
}

/// `GET /api/v2/users`: a supervisor lists the GWS users with their devices, and the device it
/// lists for an agent is one `ListenIn` takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_lists_users_and_monitors_one_it_picked() {
    let server = Server::start(true).await;
    let gws = server.gws();
    let supervisor = gws.login("supervisor").await;

    let reply = gws
        .get(&supervisor, "/api/v2/users?subresources=devices")
        .await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
    assert!(
        reply.header("x-csrf-token").is_some(),
        "a GET carries the CSRF token"
    );
    let users = reply.body["users"].as_array().expect("users");
    let names: Vec<&str> = users
        .iter()
        .filter_map(|user| user["userName"].as_str())
        .collect();
    // Ordered by user name; the Evo-only user (no GWS role) is not a GWS user.
    assert_eq!(
        names,
        [
            "agent15000",
            "agent15002",
            "chat_consult",
            "supervisor",
            "test_consult"
        ]
    );
    let agent = &users[0];
    assert_eq!(agent["id"], user_id("agent15000"));
    assert_eq!(agent["roles"], json!(["ROLE_AGENT"]));
    assert_eq!(agent["phoneNumber"], "15000");
    assert_eq!(
        agent["uri"],
        gws.url(&format!("/api/v2/users/{}", user_id("agent15000")))
    );
    assert_eq!(agent["devices"][0]["id"], device_id("agent15000"));
    // Each user is shown exactly as that user's own `GET /api/v2/me` shows them.
    let own = gws.get(&gws.login("agent15000").await, "/api/v2/me").await;
    assert_eq!(agent, &own.body["user"]);
    assert_eq!(users[3]["roles"], json!(["ROLE_SUPERVISOR"]));
    assert_eq!(users[2]["devices"], json!([]), "chat_consult has no line");
    // Without `subresources` the reply is the same (devices are always included).
    assert_eq!(gws.get(&supervisor, "/api/v2/users").await.body, reply.body);

    // The picked agent's device URI, as listed, starts a monitoring.
    let listen_in = json!({
        "operationName": "ListenIn",
        "targetDeviceUri": agent["devices"][0]["uri"],
        "supervisorMonitoringScope": "Call",
    })
    .to_string();
    let own_device = format!("/api/v2/me/devices/{}", device_id("supervisor"));
    let started = gws.post(&supervisor, &own_device, &listen_in).await;
    assert_eq!(started.body, json!({"statusCode": 0}));
    let calls = gws.get(&supervisor, "/api/v2/me/calls").await;
    assert_eq!(calls.body["calls"][0]["id"], VOICE_CALL_ID);
    assert_eq!(calls.body["calls"][0]["monitoring"], true);
    server.stop().await;
}

/// Agents may not list users (statusCode 5, HTTP 403), nobody may unauthenticated (20, 401),
/// and the list is read-only (405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_supervisors_list_users() {
    let server = Server::start(true).await;
    let gws = server.gws();

    for agent in ["agent15000", "test_consult"] {
        let login = gws.login(agent).await;
        let reply = gws.get(&login, "/api/v2/users?subresources=devices").await;
        assert_error(&reply, 403, 5);
        assert!(
            reply.body["statusMessage"]
                .as_str()
                .is_some_and(|m| m.contains("Supervisor")),
            "{:?}",
            reply.body
        );
    }
    // Basic credentials alone are enough for a GET, and are checked the same way.
    let reply = Reply::of(
        gws.request(Method::GET, "/api/v2/users")
            .basic_auth("agent15002", Some(PASSWORD))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&reply, 403, 5);

    let denied = json!({"statusCode": 20, "statusMessage": "Access denied"});
    for attempt in [
        gws.request(Method::GET, "/api/v2/users"),
        gws.request(Method::GET, "/api/v2/users")
            .basic_auth("supervisor", Some("wrong")),
    ] {
        let reply = Reply::of(attempt.send().await.unwrap()).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.body, denied);
    }

    let supervisor = gws.login("supervisor").await;
    let reply = gws
        .post(&supervisor, "/api/v2/users", r#"{"operationName":"Add"}"#)
        .await;
    assert_error(&reply, 405, 3);
    server.stop().await;
}
