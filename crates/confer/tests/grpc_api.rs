//! The gRPC API against the running server (in process, real listener, generated tonic clients):
//! every RPC, authentication, the error codes from the domain table with their details, paging
//! and idempotency.

mod grpc_support;

use grpc_support::*;
use tonic::Code;

/// The three seed removals over gRPC, as the seeds' users, on the demo world.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_seed_removals() {
    let server = Server::start().await;

    // Seed 000: agent15000 removes 15001 from the conference call.
    let mut calls = server.calls();
    let before = calls
        .get_call(as_user(
            "agent15000",
            proto::GetCallRequest {
                call_id: VOICE_CALL_ID.into(),
            },
        ))
        .await
        .expect("GetCall")
        .into_inner();
    assert_eq!(numbers(&before), ["15001", "15002"]);
    let removed = calls
        .remove_call_participant(as_user(
            "agent15000",
            proto::RemoveCallParticipantRequest {
                call_id: VOICE_CALL_ID.into(),
                participant: "15001".into(),
            },
        ))
        .await
        .expect("RemoveCallParticipant")
        .into_inner();
    let call = removed.call.expect("the call after the removal");
    assert_eq!(numbers(&call), ["15002"]);
    assert_eq!(call.state, "Established");
    let commit = removed.commit.expect("a commit");
    assert!(commit.first_seq > 0 && commit.first_seq <= commit.last_seq);
    assert!(!commit.replayed);

    // Seed 003: test_consult removes chat_consult, telling the customer why.
    let mut chats = server.chats();
    let target = format!(
        "http://{}/api/v2/users/{}",
        server.running().rest_addr,
        user_id("chat_consult")
    );
    let result = chats
        .remove_chat_participant(as_user(
            "test_consult",
            proto::RemoveChatParticipantRequest {
                chat_id: CHAT_ID.into(),
                target_uri: Some(target),
                text: Some("chat_consult had to leave".into()),
                treat_as: Some(proto::TreatAs::Normal as i32),
                ..Default::default()
            },
        ))
        .await
        .expect("RemoveChatParticipant")
        .into_inner();
    let chat = result.chat.expect("the chat after the removal");
    let nicknames: Vec<&str> = chat
        .participants
        .iter()
        .map(|p| p.nickname.as_str())
        .collect();
    assert_eq!(nicknames, ["test_consult", "test_consult_clientL"]);
    assert_eq!(chat.state, "Chatting");
    // The removed agent sees the chat as over for them (seed 003: `LeftChat`, then `Completed`).
    let theirs = chats
        .get_chat(as_user(
            "chat_consult",
            proto::GetChatRequest {
                chat_id: CHAT_ID.into(),
            },
        ))
        .await
        .expect("GetChat by the removed agent")
        .into_inner();
    assert_eq!(theirs.state, "Completed");
    assert!(theirs.capabilities.is_empty());

    // Seed 004: the Evo user removes the transfer member by phone number.
    let mut sessions = server.sessions();
    let result = sessions
        .remove_session_member(as_user(
            "evo-user",
            proto::RemoveSessionMemberRequest {
                session_id: SESSION_ID.into(),
                member_id: Some("+15550101".into()),
                member_to_remove: None,
            },
        ))
        .await
        .expect("RemoveSessionMember")
        .into_inner();
    let session = result.session.expect("the session after the removal");
    let identities: Vec<&str> = session
        .members
        .iter()
        .filter_map(|m| m.identity.as_deref())
        .collect();
    assert_eq!(identities, ["+15550100", "agent@example.com"]);
    assert!(
        session
            .log
            .iter()
            .any(|entry| entry.message.as_deref() == Some("agent@example.com removed +15550101")),
        "{:?}",
        session.log
    );

    // Removals are counted per dialect.
    let metrics = server.running().app.metrics.render();
    assert!(
        metrics.contains("confer_removals_total{dialect=\"grpc\",outcome=\"removed\"} 3"),
        "{metrics}"
    );
    server.stop().await;
}

/// The lifecycle around the removals, for each kind of conference: create, get, list, add, remove,
/// end; with a bearer token from Login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_of_the_lifecycle() {
    let server = Server::start().await;
    let owner = format!("Bearer {}", server.token("agent15000").await);

    // Calls.
    let mut calls = server.calls();
    let created = calls
        .create_call(authed(
            &owner,
            proto::CreateCallRequest {
                dnis: "15003".into(),
                call_type: "Internal".into(),
                other_parties: vec![proto::NewCallParty {
                    phone_number: "15003".into(),
                    user_id: None,
                }],
                ..Default::default()
            },
        ))
        .await
        .expect("CreateCall")
        .into_inner();
    let call = created.call.expect("a call");
    assert!(!call.id.is_empty(), "the server picked an id");
    assert_eq!(numbers(&call), ["15003"]);
    assert_eq!(created.commit.expect("a commit").version, 1);
    let added = calls
        .add_call_participant(authed(
            &owner,
            proto::AddCallParticipantRequest {
                call_id: call.id.clone(),
                destination: "15002".into(),
                user_id: Some(user_id("agent15002")),
            },
        ))
        .await
        .expect("AddCallParticipant")
        .into_inner();
    assert_eq!(numbers(&added.call.expect("a call")), ["15003", "15002"]);
    // The added user sees the call too.
    let theirs = calls
        .get_call(as_user(
            "agent15002",
            proto::GetCallRequest {
                call_id: call.id.clone(),
            },
        ))
        .await
        .expect("GetCall by the added user")
        .into_inner();
    assert_eq!(numbers(&theirs), ["15000", "15003"]);
    let listed = calls
        .list_calls(authed(&owner, proto::ListCallsRequest::default()))
        .await
        .expect("ListCalls")
        .into_inner();
    let ids: Vec<&str> = listed.calls.iter().map(|c| c.id.as_str()).collect();
    assert!(
        ids.contains(&call.id.as_str()) && ids.contains(&VOICE_CALL_ID),
        "{ids:?}"
    );
    assert!(listed.next_page_token.is_empty());
    let removed = calls
        .remove_call_participant(authed(
            &owner,
            proto::RemoveCallParticipantRequest {
                call_id: call.id.clone(),
                participant: "15003".into(),
            },
        ))
        .await
        .expect("RemoveCallParticipant")
        .into_inner();
    assert_eq!(numbers(&removed.call.expect("a call")), ["15002"]);
    let ended = calls
        .end_call(authed(
            &owner,
            proto::EndCallRequest {
                call_id: call.id.clone(),
            },
        ))
        .await
        .expect("EndCall")
        .into_inner();
    let ended_call = ended.call.expect("a call");
    assert_eq!(ended_call.state, "Released");
    assert!(ended_call.capabilities.is_empty());
    let listed = calls
        .list_calls(authed(&owner, proto::ListCallsRequest::default()))
        .await
        .expect("ListCalls")
        .into_inner();
    assert!(
        listed.calls.iter().all(|c| c.id != call.id),
        "a released call is not listed"
    );

    // Chats: agent15000 gets a chat, invites agent15002, who accepts and is then removed.
    let mut chats = server.chats();
    let created = chats
        .create_chat(authed(
            &owner,
            proto::CreateChatRequest {
                chat_id: "grpc-chat-1".into(),
                agent_nickname: "Agent Smith".into(),
                customer_nickname: "Customer".into(),
                user_data: None,
            },
        ))
        .await
        .expect("CreateChat")
        .into_inner();
    assert_eq!(created.chat.expect("a chat").state, "Chatting");
    chats
        .invite_chat_agent(authed(
            &owner,
            proto::InviteChatAgentRequest {
                chat_id: "grpc-chat-1".into(),
                user_id: user_id("agent15002"),
                visibility: proto::Visibility::All as i32,
            },
        ))
        .await
        .expect("InviteChatAgent");
    let accepted = chats
        .accept_chat_invitation(as_user(
            "agent15002",
            proto::AcceptChatInvitationRequest {
                chat_id: "grpc-chat-1".into(),
                nickname: "Agent Jones".into(),
            },
        ))
        .await
        .expect("AcceptChatInvitation")
        .into_inner();
    assert_eq!(accepted.chat.expect("a chat").participants.len(), 3);
    let listed = chats
        .list_chats(as_user("agent15002", proto::ListChatsRequest::default()))
        .await
        .expect("ListChats")
        .into_inner();
    assert_eq!(listed.chats.len(), 1);
    let removed = chats
        .remove_chat_participant(authed(
            &owner,
            proto::RemoveChatParticipantRequest {
                chat_id: "grpc-chat-1".into(),
                target_path: Some(format!("/users/{}", user_id("agent15002"))),
                ..Default::default()
            },
        ))
        .await
        .expect("RemoveChatParticipant by path")
        .into_inner();
    assert_eq!(removed.chat.expect("a chat").participants.len(), 2);
    let completed = chats
        .complete_chat(authed(
            &owner,
            proto::CompleteChatRequest {
                chat_id: "grpc-chat-1".into(),
                text: Some("Goodbye".into()),
                ..Default::default()
            },
        ))
        .await
        .expect("CompleteChat")
        .into_inner();
    assert_eq!(completed.chat.expect("a chat").state, "Completed");

    // Sessions, as the Evo user of the demo account.
    let mut sessions = server.sessions();
    let created = sessions
        .create_session(as_user(
            "evo-user",
            proto::CreateSessionRequest {
                account_id: ACCOUNT_ID.into(),
                channel: proto::FlowChannels::Voice as i32,
                direction: proto::SessionDirections::Incoming as i32,
                members: vec![
                    proto::NewSessionMember {
                        identity: "+15550200".into(),
                        role: proto::SessionMemberRoles::Caller as i32,
                        call_state: proto::SessionMemberCallState::Connected as i32,
                        ..Default::default()
                    },
                    proto::NewSessionMember {
                        identity: "agent@example.com".into(),
                        role: proto::SessionMemberRoles::Agent as i32,
                        call_state: proto::SessionMemberCallState::Connected as i32,
                        ..Default::default()
                    },
                ],
                display_name: Some("gRPC session".into()),
                ..Default::default()
            },
        ))
        .await
        .expect("CreateSession")
        .into_inner();
    let session = created.session.expect("a session");
    let session_id = session.id.clone().expect("an id");
    assert_eq!(session.members.len(), 2);
    assert_eq!(session.display_name.as_deref(), Some("gRPC session"));
    let added = sessions
        .add_session_member(as_user(
            "evo-user",
            proto::AddSessionMemberRequest {
                session_id: session_id.clone(),
                member_to_add: "+15550201".into(),
                role: proto::SessionMemberRoles::Transfer as i32,
                ..Default::default()
            },
        ))
        .await
        .expect("AddSessionMember")
        .into_inner();
    assert_eq!(added.session.expect("a session").members.len(), 3);
    let got = sessions
        .get_session(as_user(
            "evo-user",
            proto::GetSessionRequest {
                session_id: session_id.clone(),
            },
        ))
        .await
        .expect("GetSession")
        .into_inner();
    assert_eq!(got.members.len(), 3);
    let removed = sessions
        .remove_session_member(as_user(
            "evo-user",
            proto::RemoveSessionMemberRequest {
                session_id: session_id.clone(),
                member_id: None,
                member_to_remove: Some("+15550201".into()),
            },
        ))
        .await
        .expect("RemoveSessionMember by MemberToRemove")
        .into_inner();
    assert_eq!(removed.session.expect("a session").members.len(), 2);
    let ended = sessions
        .end_session(as_user(
            "evo-user",
            proto::EndSessionRequest {
                session_id: session_id.clone(),
            },
        ))
        .await
        .expect("EndSession")
        .into_inner();
    assert!(ended.session.expect("a session").ended);
    let listed = sessions
        .list_sessions(as_user("evo-user", proto::ListSessionsRequest::default()))
        .await
        .expect("ListSessions")
        .into_inner();
    let ids: Vec<&str> = listed
        .sessions
        .iter()
        .filter_map(|s| s.id.as_deref())
        .collect();
    let mut expected = vec![SESSION_ID, session_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "ended sessions are listed too, in id order");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_failures_are_unauthenticated() {
    let server = Server::start().await;
    let mut calls = server.calls();
    let get = || proto::GetCallRequest {
        call_id: VOICE_CALL_ID.into(),
    };

    let status = calls
        .get_call(tonic::Request::new(get()))
        .await
        .expect_err("no credentials");
    expect_status(&status, Code::Unauthenticated, "NOT_AUTHENTICATED", "20");
    for credentials in [
        basic_with("agent15000", "wrong"),
        basic_with("nobody", "demo"),
        "Basic not-base64!".to_owned(),
        "Bearer v1.forged.token.tag".to_owned(),
        "Digest username=agent15000".to_owned(),
    ] {
        let status = calls
            .get_call(authed(&credentials, get()))
            .await
            .expect_err(&credentials);
        expect_status(&status, Code::Unauthenticated, "NOT_AUTHENTICATED", "20");
    }
    let status = server
        .auth()
        .login(proto::LoginRequest {
            username: "agent15000".into(),
            password: "wrong".into(),
        })
        .await
        .expect_err("a wrong password");
    assert_eq!(status.code(), Code::Unauthenticated);

    // A token works like the password, and says who it belongs to.
    let login = server
        .auth()
        .login(proto::LoginRequest {
            username: "agent15000".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner();
    assert_eq!(login.user_id, user_id("agent15000"));
    assert!(login.expires_at_unix > 0);
    calls
        .get_call(authed(&format!("Bearer {}", login.token), get()))
        .await
        .expect("GetCall with a bearer token");
    server.stop().await;
}

/// Each gRPC code the domain table uses, produced by a real refusal, with its details.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_the_codes_of_the_domain_table() {
    let server = Server::start().await;
    let mut calls = server.calls();
    let mut chats = server.chats();
    let mut sessions = server.sessions();

    // NOT_FOUND: no such call; and another user's call does not exist for them either.
    let status = calls
        .get_call(as_user(
            "agent15000",
            proto::GetCallRequest {
                call_id: "no-such-call".into(),
            },
        ))
        .await
        .expect_err("unknown call");
    expect_status(&status, Code::NotFound, "CONFERENCE_NOT_FOUND", "6");
    let status = calls
        .get_call(as_user(
            "test_consult",
            proto::GetCallRequest {
                call_id: VOICE_CALL_ID.into(),
            },
        ))
        .await
        .expect_err("someone else's call");
    expect_status(&status, Code::NotFound, "CONFERENCE_NOT_FOUND", "6");
    let status = calls
        .remove_call_participant(as_user(
            "agent15000",
            proto::RemoveCallParticipantRequest {
                call_id: VOICE_CALL_ID.into(),
                participant: "15999".into(),
            },
        ))
        .await
        .expect_err("a number not in the call");
    expect_status(&status, Code::NotFound, "NOT_IN_CONFERENCE", "6");

    // PERMISSION_DENIED: a party who does not own the call; an agent outside the Evo account.
    let status = calls
        .remove_call_participant(as_user(
            "agent15002",
            proto::RemoveCallParticipantRequest {
                call_id: VOICE_CALL_ID.into(),
                participant: "15001".into(),
            },
        ))
        .await
        .expect_err("not the owner");
    expect_status(&status, Code::PermissionDenied, "NOT_CONFERENCE_OWNER", "3");
    let status = sessions
        .create_session(as_user(
            "agent15000",
            proto::CreateSessionRequest {
                account_id: ACCOUNT_ID.into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("a GWS agent in an Evo account");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // FAILED_PRECONDITION: the owner cannot be removed from their own call.
    let status = calls
        .remove_call_participant(as_user(
            "agent15000",
            proto::RemoveCallParticipantRequest {
                call_id: VOICE_CALL_ID.into(),
                participant: "15000".into(),
            },
        ))
        .await
        .expect_err("the owner");
    expect_status(
        &status,
        Code::FailedPrecondition,
        "CANNOT_REMOVE_OWNER",
        "2",
    );

    // INVALID_ARGUMENT, with the request fields at fault: from the core...
    let status = chats
        .remove_chat_participant(as_user(
            "test_consult",
            proto::RemoveChatParticipantRequest {
                chat_id: CHAT_ID.into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("no target");
    expect_status(&status, Code::InvalidArgument, "MISSING_PARAMETER", "1");
    assert_eq!(bad_fields(&status), ["target_uri"]);
    let status = chats
        .remove_chat_participant(as_user(
            "test_consult",
            proto::RemoveChatParticipantRequest {
                chat_id: CHAT_ID.into(),
                target_path: Some(format!("/users/{}", user_id("chat_consult"))),
                treat_as: Some(proto::TreatAs::System as i32),
                ..Default::default()
            },
        ))
        .await
        .expect_err("treat_as without text");
    expect_status(&status, Code::InvalidArgument, "REQUIRES_TEXT", "10");
    assert_eq!(bad_fields(&status), ["treat_as"]);
    // ... and from the gRPC edge (no ErrorInfo: the core never saw it).
    let status = chats
        .invite_chat_agent(as_user(
            "test_consult",
            proto::InviteChatAgentRequest {
                chat_id: CHAT_ID.into(),
                user_id: user_id("agent15000"),
                visibility: 42,
            },
        ))
        .await
        .expect_err("an unknown enum number");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["visibility"]);
    let status = calls
        .get_call(as_user("agent15000", proto::GetCallRequest::default()))
        .await
        .expect_err("no id");
    assert_eq!(bad_fields(&status), ["call_id"]);

    // ALREADY_EXISTS: the id is taken.
    let status = calls
        .create_call(as_user(
            "agent15000",
            proto::CreateCallRequest {
                call_id: VOICE_CALL_ID.into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("an existing id");
    expect_status(
        &status,
        Code::AlreadyExists,
        "CONFERENCE_ALREADY_EXISTS",
        "18",
    );

    // Nothing above changed the call.
    let call = calls
        .get_call(as_user(
            "agent15000",
            proto::GetCallRequest {
                call_id: VOICE_CALL_ID.into(),
            },
        ))
        .await
        .expect("GetCall")
        .into_inner();
    assert_eq!(numbers(&call), ["15001", "15002"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_answers_a_retry_once_and_refuses_another_request() {
    let server = Server::start().await;
    let mut calls = server.calls();
    let remove = |participant: &str| proto::RemoveCallParticipantRequest {
        call_id: VOICE_CALL_ID.into(),
        participant: participant.into(),
    };
    let first = calls
        .remove_call_participant(as_user_with_key("agent15000", "k-1", remove("15001")))
        .await
        .expect("the removal")
        .into_inner();
    let retry = calls
        .remove_call_participant(as_user_with_key("agent15000", "k-1", remove("15001")))
        .await
        .expect("the retry is answered, not refused as NOT_IN_CONFERENCE")
        .into_inner();
    let (first_commit, retry_commit) =
        (first.commit.expect("commit"), retry.commit.expect("commit"));
    assert!(!first_commit.replayed);
    assert!(retry_commit.replayed);
    assert_eq!(retry_commit.version, first_commit.version);
    assert_eq!((retry_commit.first_seq, retry_commit.last_seq), (0, 0));
    // The same call, rendered again: only `duration` (seconds since the call started, read at
    // the time of each answer) may have moved on.
    let without_duration = |call: Option<proto::Call>| {
        call.map(|call| proto::Call {
            duration: String::new(),
            ..call
        })
    };
    assert_eq!(without_duration(retry.call), without_duration(first.call));
    let status = calls
        .remove_call_participant(as_user_with_key("agent15000", "k-1", remove("15002")))
        .await
        .expect_err("the same key for another request");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["idempotency-key"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_through_every_item_once_in_id_order() {
    let server = Server::start().await;
    let mut calls = server.calls();
    let mut created = vec![VOICE_CALL_ID.to_owned()];
    for i in 0..6 {
        let id = format!("paging-{i}");
        calls
            .create_call(as_user(
                "agent15000",
                proto::CreateCallRequest {
                    call_id: id.clone(),
                    dnis: "15009".into(),
                    other_parties: vec![proto::NewCallParty {
                        phone_number: "15009".into(),
                        user_id: None,
                    }],
                    ..Default::default()
                },
            ))
            .await
            .expect("CreateCall");
        created.push(id);
    }
    created.sort();
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = calls
            .list_calls(as_user(
                "agent15000",
                proto::ListCallsRequest {
                    page_size: 3,
                    page_token: token.clone(),
                },
            ))
            .await
            .expect("ListCalls")
            .into_inner();
        pages += 1;
        assert!(page.calls.len() <= 3);
        seen.extend(page.calls.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, created);
    assert_eq!(pages, 3);
    let status = calls
        .list_calls(as_user(
            "agent15000",
            proto::ListCallsRequest {
                page_size: 3,
                page_token: "garbage".into(),
            },
        ))
        .await
        .expect_err("a token the server never gave");
    assert_eq!(bad_fields(&status), ["page_token"]);
    server.stop().await;
}
