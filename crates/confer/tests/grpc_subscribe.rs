//! `NotificationService.Subscribe` against the running server: what each user is told, in commit
//! order, resumable from the last seq seen; deadlines, cancellation and shutdown end streams.

mod grpc_support;

use std::time::{Duration, Instant};

use grpc_support::*;
use proto::notification::Payload;
use tonic::{Code, Streaming};

async fn subscribe(
    server: &Server,
    username: &str,
    after_seq: Option<u64>,
) -> Streaming<proto::Notification> {
    server
        .notifications()
        .subscribe(as_user(username, proto::SubscribeRequest { after_seq }))
        .await
        .expect("Subscribe")
        .into_inner()
}

async fn remove_from_demo_call(server: &Server, participant: &str) -> proto::Commit {
    server
        .calls()
        .remove_call_participant(as_user(
            "agent15000",
            proto::RemoveCallParticipantRequest {
                call_id: VOICE_CALL_ID.into(),
                participant: participant.into(),
            },
        ))
        .await
        .expect("RemoveCallParticipant")
        .into_inner()
        .commit
        .expect("a commit")
}

async fn add_to_demo_call(server: &Server, destination: &str) -> proto::Commit {
    server
        .calls()
        .add_call_participant(as_user(
            "agent15000",
            proto::AddCallParticipantRequest {
                call_id: VOICE_CALL_ID.into(),
                destination: destination.into(),
                user_id: None,
            },
        ))
        .await
        .expect("AddCallParticipant")
        .into_inner()
        .commit
        .expect("a commit")
}

fn call_of(notification: &proto::Notification) -> (&str, Vec<String>) {
    match &notification.payload {
        Some(Payload::Call(message)) => (
            message.notification_type.as_str(),
            numbers(message.call.as_ref().expect("a call")),
        ),
        other => panic!("not a call notification: {other:?}"),
    }
}

/// Seed 000 over gRPC: the remaining party (agent15002) is told `ParticipantsUpdated` with the
/// call as they see it, carrying the removal's seq; the Evo user is told nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_reaches_the_parties_and_only_them() {
    let server = Server::start().await;
    let mut party = subscribe(&server, "agent15002", None).await;
    let mut evo = subscribe(&server, "evo-user", None).await;

    let commit = remove_from_demo_call(&server, "15001").await;
    let notification = next(&mut party)
        .await
        .expect("open")
        .expect("a notification");
    assert_eq!(notification.seq, commit.last_seq);
    assert_eq!(notification.conference_id, VOICE_CALL_ID);
    assert_eq!((notification.part, notification.last_in_seq), (0, true));
    assert_eq!(
        call_of(&notification),
        ("ParticipantsUpdated", vec!["15000".to_owned()])
    );
    if let Some(Payload::Call(message)) = &notification.payload {
        assert_eq!(message.phone_number, "15002");
        assert_eq!(message.message_type, "CallStateChangeMessage");
    }

    // The Evo user's stream stays quiet until something of their account happens.
    server
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
        .expect("RemoveSessionMember");
    let first = next(&mut evo).await.expect("open").expect("a notification");
    assert_eq!(
        first.conference_id, SESSION_ID,
        "the call removal was not for them"
    );
    match first.payload {
        Some(Payload::Session(session)) => assert_eq!(session.members.len(), 2),
        other => panic!("not a session: {other:?}"),
    }
    server.stop().await;
}

/// The chat removal of seed 003: the removed agent gets participants, messages and status for the
/// removal event (one seq, three parts), as GWS CometD would deliver them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_removal_gives_the_removed_agent_three_parts_of_one_seq() {
    let server = Server::start().await;
    let mut removed = subscribe(&server, "chat_consult", None).await;
    let result = server
        .chats()
        .remove_chat_participant(as_user(
            "test_consult",
            proto::RemoveChatParticipantRequest {
                chat_id: CHAT_ID.into(),
                target_path: Some(format!("/users/{}", user_id("chat_consult"))),
                ..Default::default()
            },
        ))
        .await
        .expect("RemoveChatParticipant")
        .into_inner();
    let commit = result.commit.expect("a commit");
    let mut parts = Vec::new();
    loop {
        let notification = next(&mut removed)
            .await
            .expect("open")
            .expect("a notification");
        let last = notification.last_in_seq;
        parts.push(notification);
        if last {
            break;
        }
    }
    assert!(parts.iter().all(|n| n.seq == commit.first_seq));
    let kinds: Vec<String> = parts
        .iter()
        .map(|n| match &n.payload {
            Some(Payload::Chat(m)) => format!(
                "{}:{}",
                m.notification_type,
                m.chat.as_ref().map_or("", |c| c.state.as_str())
            ),
            Some(Payload::ChatMessages(m)) => {
                format!("{}:{}", m.notification_type, m.messages[0].r#type)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ParticipantsUpdated:LeftChat",
            "NewMessages:ParticipantLeft",
            "StatusChange:LeftChat"
        ]
    );
    assert_eq!(parts.iter().map(|n| n.part).collect::<Vec<_>>(), [0, 1, 2]);
    server.stop().await;
}

/// Notifications come in commit order; a caller who disconnects and resumes from the last seq it
/// saw gets exactly what it missed, and a caller starting from 0 gets the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_in_commit_order_and_resume_from_the_last_seq_seen() {
    let server = Server::start().await;
    let mut party = subscribe(&server, "agent15002", None).await;
    let mut expected_seqs = Vec::new();
    for number in ["15101", "15102", "15103"] {
        expected_seqs.push(add_to_demo_call(&server, number).await.last_seq);
    }
    let mut last_seen = 0;
    for expected in &expected_seqs {
        let notification = next(&mut party)
            .await
            .expect("open")
            .expect("a notification");
        assert_eq!(notification.seq, *expected);
        assert!(notification.seq > last_seen, "in commit order");
        last_seen = notification.seq;
    }
    // The caller goes away; changes happen meanwhile.
    drop(party);
    let missed = [
        remove_from_demo_call(&server, "15101").await.last_seq,
        remove_from_demo_call(&server, "15001").await.last_seq,
        add_to_demo_call(&server, "15104").await.last_seq,
    ];
    let mut resumed = subscribe(&server, "agent15002", Some(last_seen)).await;
    let mut got = Vec::new();
    for _ in missed {
        let notification = next(&mut resumed)
            .await
            .expect("open")
            .expect("a notification");
        got.push((notification.seq, call_of(&notification).1));
    }
    assert_eq!(
        got,
        [
            (
                missed[0],
                vec![
                    "15000".into(),
                    "15001".into(),
                    "15102".into(),
                    "15103".into()
                ]
            ),
            (
                missed[1],
                vec!["15000".into(), "15102".into(), "15103".into()]
            ),
            (
                missed[2],
                vec![
                    "15000".into(),
                    "15102".into(),
                    "15103".into(),
                    "15104".into()
                ]
            ),
        ]
    );

    // From the start of the log: the call's creation first (the demo's events), then the rest.
    let mut history = subscribe(&server, "agent15002", Some(0)).await;
    let first = next(&mut history)
        .await
        .expect("open")
        .expect("a notification");
    assert_eq!(first.conference_id, VOICE_CALL_ID);
    assert_eq!(call_of(&first).0, "StatusChange");
    let mut seqs = vec![first.seq];
    while seqs.last() != Some(&missed[2]) {
        let notification = next(&mut history)
            .await
            .expect("open")
            .expect("a notification");
        seqs.push(notification.seq);
    }
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        seqs, sorted,
        "one notification per event here, in seq order"
    );
    assert!(
        expected_seqs
            .iter()
            .chain(&missed)
            .all(|s| seqs.contains(s))
    );
    server.stop().await;
}

/// A stream with a deadline ends with DEADLINE_EXCEEDED at it; a unary call whose work outlasts its
/// deadline (a password check for an unknown password runs argon2) answers DEADLINE_EXCEEDED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_are_honored() {
    let server = Server::start().await;
    // A token, so that the password check (argon2, slow in debug builds) is not part of the
    // stream's budget.
    let token = format!("Bearer {}", server.token("agent15002").await);
    let mut request = authed(&token, proto::SubscribeRequest { after_seq: None });
    // The deadline travels as `grpc-timeout`, with no timer of the test's own. tonic's client
    // applies the header only to the wait for the response headers, which a stream gets at
    // once: what ends the stream must be the server honouring the deadline.
    server_deadline(&mut request, "500m");
    let started = Instant::now();
    let mut stream = server
        .notifications()
        .subscribe(request)
        .await
        .expect("Subscribe")
        .into_inner();
    let status = next(&mut stream)
        .await
        .expect("the stream ends with a status")
        .expect_err("no notification came, the deadline did");
    assert_deadline_status(&status);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );

    // A user whose stored hash asks for an expensive argon2 (128 MiB, 4 passes: hundreds of
    // milliseconds on any machine, where the default parameters take a few): the server
    // verifies with the parameters the hash carries, so its password check alone outlasts the
    // call's 50 ms deadline, however fast or busy the machine is.
    let store = &server.running().app.store;
    let mut slow = store
        .get_user_by_username("agent15000")
        .await
        .expect("the store answers")
        .expect("a demo user");
    slow.id = "slow-hash-user".into();
    slow.username = "slow-hash".into();
    slow.password_hash = {
        use argon2::password_hash::PasswordHasher as _;
        let params = argon2::Params::new(128 * 1024, 4, 1, None).expect("argon2 parameters");
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(PASSWORD.as_bytes())
            .expect("a hash")
            .to_string()
    };
    store.put_user(slow).await.expect("the user is stored");
    let mut request = authed(
        &basic_with("slow-hash", "not-the-password"),
        proto::GetCallRequest {
            call_id: VOICE_CALL_ID.into(),
        },
    );
    // The server answers 5 ms early (see `assert_deadline_status`).
    server_deadline(&mut request, "50m");
    let status = tokio::time::timeout(Duration::from_secs(10), server.calls().get_call(request))
        .await
        .expect("the server answers at the deadline, not after the password check")
        .expect_err("the deadline passes during the password check");
    assert_deadline_status(&status);
    server.stop().await;
}

/// A caller that cancels its stream frees it on the server (the subscriber gauge drops back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_is_released() {
    let server = Server::start().await;
    let gauge = || server.running().app.metrics.notification_subscribers.get();
    assert_eq!(gauge(), 0);
    let stream = subscribe(&server, "agent15002", None).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge() != 1 {
        assert!(Instant::now() < deadline, "the stream was never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stream);
    while gauge() != 0 {
        assert!(
            Instant::now() < deadline,
            "the cancelled stream is still open on the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

/// Stopping the server ends open streams with UNAVAILABLE (reconnect and resume) instead of
/// waiting on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams() {
    let server = Server::start().await;
    let mut stream = subscribe(&server, "agent15002", None).await;
    let waiter = tokio::spawn(async move { next(&mut stream).await });
    server.stop().await;
    let ended = waiter.await.expect("the reader task");
    match ended {
        Some(Err(status)) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        // The connection may close right after the status; either way the stream is over.
        None => {}
        Some(Ok(notification)) => panic!("unexpected notification {notification:?}"),
    }
}

/// Sets the call's deadline (`grpc-timeout`, e.g. `"20m"` for 20 ms), with no timer in the test.
fn server_deadline<T>(request: &mut tonic::Request<T>, timeout: &str) {
    let value = timeout.parse().expect("a valid grpc-timeout");
    request.metadata_mut().insert("grpc-timeout", value);
}

/// The status of a call that ended at its deadline. From the server it must be
/// DEADLINE_EXCEEDED, as the gRPC spec says (tonic's own server would answer CANCELLED "Timeout
/// expired"; Confer is not served by it). But tonic's client enforces `grpc-timeout` too, on the
/// wait for a unary answer: on a loaded machine its timer can fire before the server's answer,
/// sent a few milliseconds early, arrives. That status is the client's own CANCELLED, made
/// locally, so it carries its cause (`TimeoutExpired`) as a source, which a status read from the
/// wire never has. Such a run says nothing about the server and is not a failure; a CANCELLED
/// from the server is.
fn assert_deadline_status(status: &tonic::Status) {
    let by_the_client_timer =
        status.code() == Code::Cancelled && std::error::Error::source(status).is_some();
    assert!(
        status.code() == Code::DeadlineExceeded || by_the_client_timer,
        "{status:?}"
    );
}

/// Retention on a running server: once the demo's events are pruned, a resume from before them
/// is told so (OUT_OF_RANGE), and a change after the prune still reaches its parties rendered
/// right, from the state the store kept as the conference's base (the node's cache is off, so
/// nothing else could supply it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_pruned_events_is_refused_and_later_events_render_from_the_base() {
    let server = Server::start_with(|args| {
        args.event_retention_secs = Some(1);
        args.cached_conferences = Some(0);
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let refusal = loop {
        let mut stream = subscribe(&server, "agent15000", Some(0)).await;
        match next(&mut stream).await.expect("an answer") {
            Err(status) => break status,
            // Not pruned yet: the demo's first event arrived.
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "the demo's events are never pruned"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(refusal.code(), Code::OutOfRange, "{refusal:?}");
    assert!(
        refusal.message().contains("subscribe without after_seq"),
        "says what to do: {}",
        refusal.message()
    );

    let mut party = subscribe(&server, "agent15002", None).await;
    let commit = add_to_demo_call(&server, "15077").await;
    let notification = next(&mut party)
        .await
        .expect("open")
        .expect("a notification");
    assert_eq!(notification.seq, commit.last_seq);
    let call = server
        .calls()
        .get_call(as_user(
            "agent15002",
            proto::GetCallRequest {
                call_id: VOICE_CALL_ID.into(),
            },
        ))
        .await
        .expect("GetCall")
        .into_inner();
    assert_eq!(
        call_of(&notification),
        ("ParticipantsUpdated", numbers(&call)),
        "the notification shows the call as GetCall does"
    );
    assert!(numbers(&call).contains(&"15077".to_owned()));
    server.stop().await;
}
