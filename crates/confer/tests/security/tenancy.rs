//! One account probing or blocking another through the ids they share a namespace of.

use confer::server::start;
use confer_app::{
    config::ServeArgs,
    users::{self, NewUser, UserRole},
};
use confer_grpc::{proto, services::session_service_client::SessionServiceClient};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::{Code, metadata::MetadataValue};

use crate::{gws_support::PASSWORD, support::http};

/// The attack: an Evo user of account `acme` creates a session with the id a user of
/// `globex` is about to use (or already uses), to block it, or to learn that it exists. Session
/// ids are per account: both sessions exist side by side, each account sees and changes only
/// its own, and asking for the other's answers exactly as asking for a missing one, in Evo and
/// gRPC alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_id_taken_in_one_account_neither_blocks_nor_reveals_another() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServeArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        grpc_listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.path().to_path_buf()),
        ..ServeArgs::default()
    }
    .resolve()
    .unwrap();
    let server = start(config).await.unwrap();
    for (username, account) in [("wile", "acme"), ("hank", "globex")] {
        users::add(
            server.app.store.as_ref(),
            NewUser {
                username: username.into(),
                role: UserRole::User,
                phone_number: None,
                user_id: None,
                email: Some(format!("{username}@example.com")),
                accounts: vec![account.into()],
                device_id: None,
                password: PASSWORD.into(),
            },
        )
        .await
        .unwrap();
    }
    let http = http();
    let base = format!("http://{}", server.rest_addr);
    let evo = |user: &str, method: Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .basic_auth(user, Some(PASSWORD))
            .header("Accept", "application/json")
    };
    let new_session = |caller: &str| json!({"id": "shared-id", "members": [{"identity": caller, "role": "Caller", "callState": "Connected"}]});

    // acme takes the id first; globex can still use it for a session of its own.
    for (user, caller) in [("wile", "+15550001"), ("hank", "+15550002")] {
        let created = evo(user, Method::POST, "/sessions")
            .json(&new_session(caller))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::OK, "{user}");
        let info: Value = created.json().await.unwrap();
        assert_eq!(info["id"], "shared-id");
    }
    // Each sees its own.
    for (user, account) in [("wile", "acme"), ("hank", "globex")] {
        let info: Value = evo(user, Method::GET, "/sessions/shared-id")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["accountId"], account, "{user}: {info}");
    }
    // acme ends its session: globex's is untouched.
    let ended = evo("wile", Method::DELETE, "/sessions/shared-id")
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    let theirs: Value = evo("hank", Method::GET, "/sessions/shared-id")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["accountId"], "globex");
    assert!(
        theirs["dateCompleted"].as_str().unwrap_or("").is_empty(),
        "{theirs}"
    );

    // A globex-only id probed from acme answers as a missing one, body for body.
    let only_globex = evo("hank", Method::POST, "/sessions")
        .json(&json!({"id": "globex-only", "members": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(only_globex.status(), StatusCode::OK);
    let mut bodies = Vec::new();
    for id in ["globex-only", "nowhere"] {
        let probe = evo("wile", Method::GET, &format!("/sessions/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(probe.status(), StatusCode::NOT_FOUND);
        bodies.push(probe.text().await.unwrap().replace(id, "{id}"));
    }
    assert_eq!(bodies[0], bodies[1]);

    // gRPC: the same.
    let channel = crate::grpc_channel(server.grpc_addr).await;
    let mut sessions = SessionServiceClient::new(channel);
    let mut statuses = Vec::new();
    for id in ["globex-only", "nowhere"] {
        let mut request = tonic::Request::new(proto::GetSessionRequest {
            session_id: id.into(),
        });
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(basic("wile")).unwrap(),
        );
        let status = sessions.get_session(request).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        statuses.push(status.message().replace(id, "{id}"));
    }
    assert_eq!(statuses[0], statuses[1]);
    server.shutdown().await.unwrap();
}

fn basic(username: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{PASSWORD}"))
    )
}
