//! One conference, two dialects: a voice removal made over gRPC reaches GWS CometD subscribers,
//! and a chat removal made over GWS REST reaches gRPC `Subscribe` callers, from the same event log
//! and the same recipients rule.

mod gws_support;

use std::time::Duration;

use confer_grpc::{
    proto::{self, notification::Payload},
    services::{
        call_service_client::CallServiceClient,
        notification_service_client::NotificationServiceClient,
    },
};
use gws_support::{CHAT_ID, CHAT_REMOVAL, Server, VOICE_CALL_ID, basic, cometd::LongPoll};
use serde_json::json;
use tokio_stream::StreamExt as _;
use tonic::{Request, metadata::MetadataValue, transport::Channel};

const WAIT: Duration = Duration::from_secs(20);

fn as_user<T>(username: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(basic(username)).expect("ASCII credentials"),
    );
    request
}

async fn grpc(server: &Server) -> Channel {
    let addr = server.running.as_ref().expect("running").grpc_addr;
    Channel::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .connect()
        .await
        .expect("connect to the gRPC listener")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_removal_reaches_cometd_subscribers() {
    let server = Server::start(true).await;
    let gws = server.gws();
    let authorization = basic("agent15002");
    let mut cometd = LongPoll::handshake(
        &gws.notifications(),
        &[("Authorization", authorization.as_str())],
        json!({}),
    )
    .await
    .unwrap_or_else(|reply| panic!("the handshake was refused: {reply}"));
    let reply = cometd.subscribe("/v2/me/*").await;
    assert_eq!(reply["successful"], true, "{reply}");

    CallServiceClient::new(grpc(&server).await)
        .remove_call_participant(as_user(
            "agent15000",
            proto::RemoveCallParticipantRequest {
                call_id: VOICE_CALL_ID.into(),
                participant: "15001".into(),
            },
        ))
        .await
        .expect("RemoveCallParticipant over gRPC");

    let got = cometd.messages(1, WAIT).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["channel"], "/v2/me/calls");
    let data = &got[0]["data"];
    assert_eq!(data["notificationType"], "ParticipantsUpdated");
    assert_eq!(data["call"]["id"], VOICE_CALL_ID);
    let parties: Vec<&str> = data["call"]["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["phoneNumber"].as_str())
        .collect();
    assert_eq!(parties, ["15000"], "{data}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gws_rest_removal_reaches_grpc_subscribers() {
    let server = Server::start(true).await;
    let mut stream = NotificationServiceClient::new(grpc(&server).await)
        .subscribe(as_user(
            "chat_consult",
            proto::SubscribeRequest { after_seq: None },
        ))
        .await
        .expect("Subscribe")
        .into_inner();

    // Seed 003 as GWS clients send it: session cookie, CSRF token, the seed's body.
    let gws = server.gws();
    let login = gws.login("test_consult").await;
    let reply = gws
        .post(&login, &format!("/api/v2/me/chats/{CHAT_ID}"), CHAT_REMOVAL)
        .await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);

    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let notification = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a notification in time")
            .expect("the stream is open")
            .expect("a notification");
        assert_eq!(notification.conference_id, CHAT_ID);
        kinds.push(match notification.payload {
            Some(Payload::Chat(message)) => format!(
                "{}:{}",
                message.notification_type,
                message.chat.map(|chat| chat.state).unwrap_or_default()
            ),
            Some(Payload::ChatMessages(message)) => {
                format!(
                    "{}:{}",
                    message.notification_type, message.messages[0].r#type
                )
            }
            other => panic!("not a chat notification: {other:?}"),
        });
    }
    // What GWS CometD delivers to the removed agent (seed 003, Agent2), over gRPC.
    assert_eq!(
        kinds,
        [
            "ParticipantsUpdated:LeftChat",
            "NewMessages:ParticipantLeft",
            "StatusChange:LeftChat"
        ]
    );
    server.stop().await;
}
