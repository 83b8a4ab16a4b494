//! One conference, two dialects: a removal made over gRPC is what an Evo client then reads
//! (`GET /sessions/{id}`), and a removal made over Evo REST reaches gRPC `Subscribe` callers, from
//! the same event log.

mod grpc_support;
mod support;

use confer_model::evo::SessionInfo;
use grpc_support::*;
use proto::notification::Payload;

fn identities(members: impl IntoIterator<Item = Option<String>>) -> Vec<String> {
    members.into_iter().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evo_and_grpc_see_each_others_removals() {
    let server = Server::start().await;
    let http = support::http();
    let session_url = format!(
        "http://{}/sessions/{SESSION_ID}",
        server.running().rest_addr
    );

    // gRPC removes the transfer member; an Evo client reads the session without it.
    let removed = server
        .sessions()
        .remove_session_member(as_user(
            "evo-user",
            proto::RemoveSessionMemberRequest {
                session_id: SESSION_ID.into(),
                member_id: Some(confer_core::demo::TRANSFER_MEMBER_ID.into()),
                member_to_remove: None,
            },
        ))
        .await
        .expect("RemoveSessionMember over gRPC")
        .into_inner();
    let after_grpc = removed.commit.expect("a commit").last_seq;
    let response = http
        .get(&session_url)
        .basic_auth("evo-user", Some(PASSWORD))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("GET /sessions/{id}");
    assert!(response.status().is_success(), "{}", response.status());
    let info: SessionInfo = response.json().await.expect("a SessionInfo");
    assert_eq!(
        identities(info.members.into_iter().map(|m| m.identity)),
        ["+15550100", "agent@example.com"]
    );

    // Evo removes the caller by phone number; a gRPC subscriber resuming after the gRPC removal
    // gets exactly that change next, as the session after it.
    let mut stream = server
        .notifications()
        .subscribe(as_user(
            "evo-user",
            proto::SubscribeRequest {
                after_seq: Some(after_grpc),
            },
        ))
        .await
        .expect("Subscribe")
        .into_inner();
    let response = http
        .delete(format!("{session_url}/members/%2B15550100"))
        .basic_auth("evo-user", Some(PASSWORD))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("DELETE /sessions/{id}/members/{memberId}");
    assert!(response.status().is_success(), "{}", response.status());
    let over_rest: SessionInfo = response.json().await.expect("a SessionInfo");
    let notification = next(&mut stream)
        .await
        .expect("open")
        .expect("a notification");
    assert!(notification.seq > after_grpc);
    assert_eq!(notification.conference_id, SESSION_ID);
    let Some(Payload::Session(session)) = notification.payload else {
        panic!("not a session notification");
    };
    let members = identities(session.members.into_iter().map(|m| m.identity));
    assert_eq!(members, ["agent@example.com"]);
    assert_eq!(
        members,
        identities(over_rest.members.into_iter().map(|m| m.identity)),
        "gRPC is told what the REST caller was answered"
    );
    assert!(
        session
            .log
            .iter()
            .any(|entry| entry.message.as_deref() == Some("agent@example.com removed +15550100")),
        "{:?}",
        session.log
    );
    server.stop().await;
}
