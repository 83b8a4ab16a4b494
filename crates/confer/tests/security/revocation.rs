//! Credentials that outlive what they were issued for: sessions after a password change, a
//! disabled or removed user; the signing key in the database; a key rotation that logs
//! everyone out.

use std::time::{Duration, Instant};

use confer_grpc::{proto, services::notification_service_client::NotificationServiceClient};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tonic::{Code, metadata::MetadataValue};

use crate::{
    gws_support::{Gws, Login, PASSWORD, Reply},
    support::{ConferProcess, http},
};

/// Every node re-reads a user at most this long after a change (`USER_CACHE_TTL`, 5 s), plus
/// slack for a loaded machine.
const WITHIN: Duration = Duration::from_secs(20);

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WITHIN;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within {WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn status_of(gws: &Gws, login: &Login) -> u16 {
    gws.get(login, "/api/v2/me").await.status.as_u16()
}

/// The attack: a session cookie (or a gRPC stream, or cached Basic credentials) of a user whose
/// password was changed, who was disabled or removed, keeps working for hours. Each change is
/// made as an operator makes it, with `confer users ...` beside the running server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_disabling_or_removal_ends_every_session_of_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    let gws = Gws::new(&server.url(""));
    let agent = gws.login("agent15000").await;
    let bystander = gws.login("agent15002").await;

    // A gRPC notification stream of the same user, authenticated by Basic.
    let mut notifications = NotificationServiceClient::new(crate::grpc_channel(server.grpc).await);
    let mut request = tonic::Request::new(proto::SubscribeRequest { after_seq: None });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(crate::gws_support::basic("agent15000")).unwrap(),
    );
    let mut stream = notifications.subscribe(request).await.unwrap().into_inner();

    server.admin(
        &["users", "passwd", "--username", "agent15000"],
        "a-new-secret",
    );
    until("the old cookie session refused", async || {
        status_of(&gws, &agent).await == 401
    })
    .await;
    let ended = tokio::time::timeout(WITHIN, stream.message())
        .await
        .expect("the stream ends");
    let status = ended.expect_err("the stream ends with a status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // The old password is refused although it was cached; the new one works.
    let old = gws
        .request(Method::GET, "/api/v2/me")
        .basic_auth("agent15000", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = gws
        .request(Method::GET, "/api/v2/me")
        .basic_auth("agent15000", Some("a-new-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(new.status(), StatusCode::OK);
    assert_eq!(
        status_of(&gws, &bystander).await,
        200,
        "others are not affected"
    );

    // Evo: a disabled user's ss-id cookie.
    let http = http();
    let signed_in = http
        .post(server.url("/auth/credentials"))
        .json(&json!({"userName": "evo-user", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|c| c.starts_with("ss-id=")))
        .expect("an ss-id cookie")
        .to_owned();
    let sessions = async || {
        http.get(server.url("/sessions?format=json"))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(sessions().await, StatusCode::OK);
    server.admin(&["users", "disable", "--username", "evo-user"], "");
    until("the disabled user's cookie refused", async || {
        sessions().await == StatusCode::UNAUTHORIZED
    })
    .await;
    server.admin(&["users", "enable", "--username", "evo-user"], "");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        sessions().await,
        StatusCode::UNAUTHORIZED,
        "enabling the user again does not bring its old sessions back"
    );

    // Removed.
    server.admin(&["users", "remove", "--username", "agent15002"], "");
    until("the removed user's cookie refused", async || {
        status_of(&gws, &bystander).await == 401
    })
    .await;
    let listed = server.admin(&["users", "list"], "");
    assert!(!listed.contains("agent15002"), "{listed}");
}

/// The attack: a copy of the database (a backup, a replica) forges sessions, because the
/// signing key lives in it. The key lives in a private file instead, and rotating it does not
/// log anyone out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_key_lives_in_a_private_file_and_rotates_without_logging_anyone_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    let key_file = dir.path().join("session-keys");
    let metadata = std::fs::metadata(&key_file).expect("the key file was created");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    }
    let keys_before = std::fs::read_to_string(&key_file).unwrap();
    let database = std::fs::read(dir.path().join("confer.db")).unwrap_or_default();
    for line in keys_before.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !database.windows(line.len()).any(|w| w == line.as_bytes()),
            "the signing key is in the database file"
        );
    }

    let gws = Gws::new(&server.url(""));
    let before = gws.login("agent15000").await;
    let key_id = |login: &Login| {
        login
            .cookie
            .split('.')
            .nth(5)
            .expect("a v2 session token")
            .to_owned()
    };
    let old_key = key_id(&before);
    let said = server.admin(&["keys", "rotate"], "");
    assert!(said.contains("new signing key"), "{said}");
    until("new sessions signed with the new key", async || {
        key_id(&gws.login("supervisor").await) != old_key
    })
    .await;
    // The session signed before the rotation still works, and its CSRF token too.
    assert_eq!(status_of(&gws, &before).await, 200);
    let reply: Reply = gws
        .post(
            &before,
            "/api/v2/me/calls/01RCC3N118B1V0SL8O7GK2LAES00000O",
            r#"{"operationName":"RemoveParticipantFromConference","participant":"15001"}"#,
        )
        .await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
}

/// A gRPC caller that keeps using its bearer token is not cut off when the token's lifetime
/// ends: past half of it (here 60 s, the shortest `--session-ttl-secs`), a call's answer carries
/// a fresh token for the same session, which works, and which a password change ends too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_in_use_is_renewed_over_grpc() {
    use confer_grpc::{
        renewal::RENEWED_TOKEN_HEADER,
        services::{
            auth_service_client::AuthServiceClient, call_service_client::CallServiceClient,
        },
    };

    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--demo", "--session-ttl-secs", "60"]);
    let channel = crate::grpc_channel(server.grpc).await;
    let token = AuthServiceClient::new(channel.clone())
        .login(proto::LoginRequest {
            username: "agent15000".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner()
        .token;
    let mut calls = CallServiceClient::new(channel);
    let list = async |calls: &mut CallServiceClient<_>, token: &str| {
        let mut request = tonic::Request::new(proto::ListCallsRequest::default());
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
        );
        calls.list_calls(request).await
    };
    let fresh = list(&mut calls, &token)
        .await
        .expect("a call with the token");
    assert!(
        fresh.metadata().get(RENEWED_TOKEN_HEADER).is_none(),
        "a fresh token is not renewed"
    );
    // Past half of its 60 s.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let answer = list(&mut calls, &token)
        .await
        .expect("a call with the token");
    let renewed = answer
        .metadata()
        .get(RENEWED_TOKEN_HEADER)
        .expect("a renewed token")
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(renewed, token);
    list(&mut calls, &renewed)
        .await
        .expect("a call with the renewed token");

    server.admin(
        &["users", "passwd", "--username", "agent15000"],
        "a-new-secret",
    );
    until("the renewed token refused", async || {
        list(&mut calls, &renewed)
            .await
            .is_err_and(|status| status.code() == Code::Unauthenticated)
    })
    .await;
}
