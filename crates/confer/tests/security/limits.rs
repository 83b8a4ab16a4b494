//! Requests that ask too much of the domain: oversized ids and texts, conferences grown without
//! bound. Each is refused in the dialect's own error format and changes nothing.

use std::time::Duration;

use confer::server::{RunningServer, start};
use confer_app::config::ServeArgs;
use confer_grpc::{proto, services::call_service_client::CallServiceClient};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::{Code, metadata::MetadataValue};

use crate::gws_support::{CHAT_ID, Gws, PASSWORD, VOICE_CALL_ID, basic};

const CALL: &str = VOICE_CALL_ID;
const CHAT: &str = CHAT_ID;

async fn demo(max_participants: Option<usize>) -> (RunningServer, tempfile::TempDir) {
    demo_with(ServeArgs {
        max_participants,
        ..ServeArgs::default()
    })
    .await
}

/// The demo world with these settings, on ports 0 and its own data directory.
async fn demo_with(args: ServeArgs) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = ServeArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        grpc_listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.path().to_path_buf()),
        demo: Some(true),
        ..args
    }
    .resolve()
    .unwrap();
    (start(config).await.expect("the server starts"), dir)
}

/// The numbers of the other parties present in the demo call, as agent15000 sees it.
async fn parties(gws: &Gws, login: &crate::gws_support::Login) -> Vec<String> {
    let reply = gws.get(login, &format!("/api/v2/me/calls/{CALL}")).await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
    let mut numbers: Vec<String> = reply.body["call"]["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["phoneNumber"].as_str().map(str::to_owned))
        .collect();
    numbers.sort();
    numbers
}

/// The attack: a 3 MB "id" (or chat text) that the server stores and renders back. Every id is
/// at most 256 bytes and every text 16 KiB, in REST (GWS, Evo) and gRPC alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_ids_and_texts_are_refused_in_every_dialect_and_change_nothing() {
    let (server, _dir) = demo(None).await;
    let gws = Gws::new(&format!("http://{}", server.rest_addr));
    let agent = gws.login("agent15000").await;
    let before = parties(&gws, &agent).await;
    let long_id = "x".repeat(300);

    // GWS: a removal naming a 300-byte participant, and an operation on a 300-byte call id.
    let reply = gws
        .post(
            &agent,
            &format!("/api/v2/me/calls/{CALL}"),
            &json!({"operationName": "RemoveParticipantFromConference", "participant": long_id})
                .to_string(),
        )
        .await;
    assert_eq!(reply.codes(), (400, 10), "{:?}", reply.body);
    assert!(
        reply.body["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("participant") && m.contains("256")),
        "{:?}",
        reply.body
    );
    let reply = gws
        .post(
            &agent,
            &format!("/api/v2/me/calls/{long_id}"),
            r#"{"operationName":"Hold"}"#,
        )
        .await;
    assert_eq!(reply.codes(), (400, 10), "{:?}", reply.body);
    let reply = gws
        .get(&agent, &format!("/api/v2/me/calls/{long_id}"))
        .await;
    assert_eq!(reply.codes(), (400, 10), "{:?}", reply.body);

    // GWS chat: a 17 KiB message.
    let chat_agent = gws.login("test_consult").await;
    let reply = gws
        .post(
            &chat_agent,
            &format!("/api/v2/me/chats/{CHAT}"),
            &json!({"operationName": "SendMessage", "text": "y".repeat(17 * 1024)}).to_string(),
        )
        .await;
    assert_eq!(reply.codes(), (400, 10), "{:?}", reply.body);

    // Evo: a 300-byte member reference, answered in ServiceStack's format.
    let response = crate::support::http()
        .request(
            Method::DELETE,
            format!(
                "http://{}/sessions/demo-session/members/m3?MemberToRemove={long_id}&format=json",
                server.rest_addr
            ),
        )
        .basic_auth("evo-user", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["responseStatus"]["errorCode"], "ArgumentException",
        "{body}"
    );

    // gRPC: INVALID_ARGUMENT.
    let mut calls = CallServiceClient::new(crate::grpc_channel(server.grpc_addr).await);
    let mut request = tonic::Request::new(proto::RemoveCallParticipantRequest {
        call_id: CALL.into(),
        participant: long_id.clone(),
    });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(basic("agent15000")).unwrap(),
    );
    let status = calls.remove_call_participant(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // gRPC: a 3 MB id is refused before it is decoded (tonic would buffer up to 4 MiB); the
    // same channel still serves the next call.
    let mut request = tonic::Request::new(proto::RemoveCallParticipantRequest {
        call_id: "x".repeat(3 << 20),
        participant: "15001".into(),
    });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(basic("agent15000")).unwrap(),
    );
    let status = calls.remove_call_participant(request).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("the limit is: 65536 bytes"),
        "{status:?}"
    );
    let mut request = tonic::Request::new(proto::RemoveCallParticipantRequest {
        call_id: "no-such-call".into(),
        participant: "15001".into(),
    });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(basic("agent15000")).unwrap(),
    );
    let status = calls.remove_call_participant(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    assert_eq!(parties(&gws, &agent).await, before, "nothing changed");
    server.shutdown().await.unwrap();
}

/// The attack: one conference grown until every command on it, and every notification about it,
/// costs more than the machine has. With `--max-participants 4`, the demo call (three lines) takes
/// one more line, then refuses the next, and stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conference_cannot_grow_past_its_participant_limit() {
    let (server, _dir) = demo(Some(4)).await;
    let gws = Gws::new(&format!("http://{}", server.rest_addr));
    let agent = gws.login("agent15000").await;
    let add = |number: &str| {
        json!({"operationName": "SingleStepConference", "destination": {"phoneNumber": number}})
            .to_string()
    };
    let reply = gws
        .post(&agent, &format!("/api/v2/me/calls/{CALL}"), &add("15090"))
        .await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
    let full = parties(&gws, &agent).await;
    // Four lines: agent15000's own and three others.
    assert_eq!(full.len(), 3, "{full:?}");
    let reply = gws
        .post(&agent, &format!("/api/v2/me/calls/{CALL}"), &add("15091"))
        .await;
    assert_eq!(reply.codes(), (400, 2), "{:?}", reply.body);
    assert!(
        reply.body["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("limit of 4 participants")),
        "{:?}",
        reply.body
    );
    assert_eq!(parties(&gws, &agent).await, full, "nothing changed");
    // Removing still works on a full call.
    let reply = gws
        .post(
            &agent,
            &format!("/api/v2/me/calls/{CALL}"),
            r#"{"operationName":"RemoveParticipantFromConference","participant":"15090"}"#,
        )
        .await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.shutdown().await.unwrap();
}

/// The attack: one chat's transcript grown message by message (each within the text limit)
/// until reading it or notifying about it costs more than the machine has. With
/// `--max-chat-messages 12`, the chat takes messages up to the limit, refuses the next one and
/// keeps its transcript; removing a participant, with a parting text, still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_transcript_cannot_grow_past_its_message_limit() {
    let (server, _dir) = demo_with(ServeArgs {
        max_chat_messages: Some(12),
        ..ServeArgs::default()
    })
    .await;
    let gws = Gws::new(&format!("http://{}", server.rest_addr));
    let agent = gws.login("test_consult").await;
    let path = format!("/api/v2/me/chats/{CHAT}");
    let transcript = async || {
        let reply = gws.get(&agent, &format!("{path}/messages")).await;
        assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
        reply.body["messages"].as_array().expect("messages").clone()
    };
    let said = |messages: &[Value]| {
        messages
            .iter()
            .filter(|m| m["type"] == "Text" || m["type"] == "Notice")
            .count()
    };
    let send = json!({"operationName": "SendMessage", "text": "Still there?"}).to_string();
    let before = said(&transcript().await);
    assert!(before < 12, "the demo chat starts with {before} messages");
    for _ in before..12 {
        let reply = gws.post(&agent, &path, &send).await;
        assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
    }
    let full = transcript().await;
    assert_eq!(said(&full), 12);
    let reply = gws.post(&agent, &path, &send).await;
    assert_eq!(reply.codes(), (400, 2), "{:?}", reply.body);
    assert!(
        reply.body["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("limit of 12 messages")),
        "{:?}",
        reply.body
    );
    assert_eq!(transcript().await, full, "nothing changed");
    let removal = json!({"operationName": "RemoveParticipantFromConference",
        "targetUri": "http://10.10.15.212:9090/api/v2/users/c30d06daa1ea43b8be79f9b071f30d70",
        "text": "Thanks, colleague."})
    .to_string();
    let reply = gws.post(&agent, &path, &removal).await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
    server.shutdown().await.unwrap();
}
