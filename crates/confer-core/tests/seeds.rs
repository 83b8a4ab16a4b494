//! The three seed scenarios, end to end through decide, apply, views and recipients.

mod common;

use common::{NOW, conference, run_ok, state_after, user_id, world};
use confer_core::conference::chat::{AgentChatState, ChatMessageKind, ParticipantKind, Visibility};
use confer_core::conference::session::{MemberCallState, SessionCallState};
use confer_core::conference::voice::CallState;
use confer_core::demo::{
    self, CHAT_CONSULT_PARTICIPANT_ID, CHAT_ID, CUSTOMER_PARTICIPANT_ID, SESSION_ID,
    TEST_CONSULT_PARTICIPANT_ID, VOICE_CALL_ID,
};
use confer_core::event::SessionEndReason;
use confer_core::view::{
    ChatViewer, call_view, chat_messages, chat_view, customer_chat_view, session_view,
};
use confer_core::{
    Audience, Change, Command, ConferenceId, EventKind, MessageParameters, ParticipantId,
    Recipient, recipients,
};
use serde_json::{Value, json};

fn names<T: serde::Serialize>(items: &[T]) -> Vec<String> {
    items
        .iter()
        .map(|item| match serde_json::to_value(item) {
            Ok(Value::String(name)) => name,
            other => panic!("not a name: {other:?}"),
        })
        .collect()
}

// --- seed 000: GWS voice RemoveParticipantFromConference -------------------

#[test]
fn voice_seed_agent15000_removes_15001() {
    let mut world = world();
    let events = run_ok(
        &mut world,
        "agent15000",
        Command::RemoveParticipantFromCall {
            call: ConferenceId::new(VOICE_CALL_ID),
            participant: "15001".into(),
        },
    );
    assert_eq!(events.len(), 1, "two parties remain: no release");
    let EventKind::PartyRemoved { party, removed_by } = &events[0].kind else {
        panic!("expected PartyRemoved, got {:?}", events[0].kind);
    };
    assert_eq!(party.phone_number.as_str(), "15001");
    assert_eq!(removed_by, &user_id("agent15000"));
    assert_eq!(events[0].version, 2);

    let call = conference(&world, VOICE_CALL_ID);
    let view = call_view(call, &user_id("agent15000"), NOW).expect("the owner's view");
    let participants: Vec<&str> = view
        .participants
        .iter()
        .map(|party| party.phone_number.as_str())
        .collect();
    assert_eq!(participants, ["15002"]);
    assert_eq!(view.state, CallState::Established);
    assert_eq!(
        names(&view.capabilities),
        [
            "UpdateUserData",
            "SendDtmf",
            "InitiateConference",
            "Hold",
            "SingleStepTransfer",
            "InitiateTransfer",
            "AttachUserData",
            "DeleteUserDataPair",
            "SingleStepConference",
            "DeleteUserData",
            "Hangup",
        ]
    );
    assert_eq!(view.duration_seconds, 43);
    assert_eq!(view.conn_id, "0071027198180018");
    assert_eq!(view.call_uuid, VOICE_CALL_ID);
    assert_eq!(view.dnis, "15001");
    assert_eq!(names(&[view.call_type]), ["Internal"]);
    assert_eq!(names(&[view.mute]), ["Off"]);
    assert_eq!(view.monitoring, None);
    assert_eq!(
        view.phone_number.as_ref().map(|n| n.as_str()),
        Some("15000")
    );

    // agent15002 now sees only the owner.
    let other = call_view(call, &user_id("agent15002"), NOW).expect("a party's view");
    let participants: Vec<&str> = other
        .participants
        .iter()
        .map(|party| party.phone_number.as_str())
        .collect();
    assert_eq!(participants, ["15000"]);

    // Both users in the call get ParticipantsUpdated; 15001 is no user.
    assert_eq!(
        recipients(&events[0], call),
        vec![
            Recipient {
                audience: Audience::User(user_id("agent15000")),
                changes: vec![Change::CallParticipantsUpdated],
            },
            Recipient {
                audience: Audience::User(user_id("agent15002")),
                changes: vec![Change::CallParticipantsUpdated],
            },
        ]
    );
}

#[test]
fn voice_seed_then_removing_15002_releases_the_call_for_the_owner() {
    let mut world = world();
    for participant in ["15001", "15002"] {
        run_ok(
            &mut world,
            "agent15000",
            Command::RemoveParticipantFromCall {
                call: ConferenceId::new(VOICE_CALL_ID),
                participant: participant.into(),
            },
        );
    }
    let call = conference(&world, VOICE_CALL_ID);
    let kinds: Vec<&EventKind> = world
        .events_of(VOICE_CALL_ID)
        .into_iter()
        .map(|event| &event.kind)
        .collect();
    assert!(matches!(kinds.last(), Some(EventKind::CallReleased { .. })));
    let view = call_view(call, &user_id("agent15000"), NOW).expect("the owner's view");
    assert_eq!(view.state, CallState::Released);
    assert!(view.capabilities.is_empty());
    assert!(view.participants.is_empty());
    let removed = call_view(call, &user_id("agent15002"), NOW).expect("the removed user's view");
    assert_eq!(removed.state, CallState::Released);
    assert!(removed.capabilities.is_empty());
}

// --- seed 003: GWS chat RemoveParticipantFromConference --------------------

fn remove_chat_consult(message: MessageParameters) -> confer_core::demo::DemoWorld {
    let mut world = world();
    run_ok(
        &mut world,
        "test_consult",
        Command::RemoveParticipantFromChat {
            chat: ConferenceId::new(CHAT_ID),
            target_uri: Some(
                "http://10.10.15.212:9090/api/v2/users/c30d06daa1ea43b8be79f9b071f30d70".into(),
            ),
            target_path: None,
            message,
        },
    );
    world
}

#[test]
fn chat_seed_demo_state() {
    let world = world();
    let chat = conference(&world, CHAT_ID).as_chat().expect("a chat");
    assert_eq!(chat.next_message_index(), 7);
    let expected_keys = [
        "IdentifyCreateContact",
        "FirstName",
        "LastName",
        "RTargetObjectSelected",
        "RVQID",
        "ChatServerAppName",
        "PegAGChatdistributionforprocessing",
        "ChatServerHost",
        "RTargetObjSelDBID",
        "CBR-IT-path_DBIDs",
        "ChatServerPort",
        "CBR-Interaction_cost",
        "CBR-contract_DBIDs",
        "ContactId",
        "RTargetAgentSelected",
        "RTargetTypeSelected",
        "RTargetAgentGroup",
        "RTargetRuleSelected",
        "RTargetPlaceSelected",
        "CBR-actual_volume",
        "RTenant",
        "ChatServerDBID",
        "RRequestedSkills",
        "ChatServerModeHA",
        "RRequestedSkillCombination",
        "RVQDBID",
        "RStrategyDBID",
        "CustomerSegment",
        "ServiceType",
        "ServiceObjective",
        "RTargetRequested",
        "EmailAddress",
        "RStrategyName",
        "Subject",
    ];
    assert_eq!(chat.user_data.keys().collect::<Vec<_>>(), expected_keys);
    assert_eq!(
        chat.user_data.get("PegAGChatdistributionforprocessing"),
        Some(&json!(1))
    );
    assert_eq!(chat.user_data.get("ServiceObjective"), Some(&json!(0)));
    assert_eq!(chat.user_data.get("RRequestedSkills"), Some(&Value::Null));
    assert_eq!(chat.user_data.get("ChatServerModeHA"), Some(&json!("true")));

    let view = chat_view(conference(&world, CHAT_ID), &user_id("test_consult")).expect("a view");
    assert_eq!(view.state, AgentChatState::Chatting);
    let ids: Vec<&str> = view
        .participants
        .iter()
        .map(|p| p.participant_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            TEST_CONSULT_PARTICIPANT_ID,
            CUSTOMER_PARTICIPANT_ID,
            CHAT_CONSULT_PARTICIPANT_ID
        ]
    );
}

#[test]
fn chat_seed_test_consult_removes_chat_consult() {
    let world = remove_chat_consult(MessageParameters::default());
    let events = world.events_of(CHAT_ID);
    let removal_events: Vec<_> = events.iter().rev().take(2).rev().collect();
    let [removal, completion] = removal_events.as_slice() else {
        panic!("two events expected");
    };

    // The log gets ParticipantLeft at index 7, from chat_consult, visible to all.
    let EventKind::ChatParticipantRemoved {
        participant,
        removed_by,
        entry,
    } = &removal.kind
    else {
        panic!("expected ChatParticipantRemoved, got {:?}", removal.kind);
    };
    assert_eq!(
        participant.participant_id.as_str(),
        CHAT_CONSULT_PARTICIPANT_ID
    );
    assert_eq!(
        removed_by.participant_id.as_str(),
        TEST_CONSULT_PARTICIPANT_ID
    );
    assert_eq!(entry.index, 7);
    assert_eq!(entry.kind, ChatMessageKind::ParticipantLeft);
    assert_eq!(entry.from.as_str(), CHAT_CONSULT_PARTICIPANT_ID);
    assert_eq!(entry.visibility, Visibility::All);
    assert_eq!(entry.timestamp, NOW);
    assert!(matches!(
        &completion.kind,
        EventKind::AgentChatStateChanged { agent, state: AgentChatState::Completed }
            if agent == &user_id("chat_consult")
    ));

    // Right after the removal: chat_consult is LeftChat, with the seed's list.
    let after_removal = state_after(&world, CHAT_ID, events.len() - 1);
    let agent2 = chat_view(&after_removal, &user_id("chat_consult")).expect("Agent2's view");
    assert_eq!(agent2.state, AgentChatState::LeftChat);
    assert_eq!(
        names(&agent2.capabilities),
        [
            "SetInFocus",
            "Complete",
            "SetDisposition",
            "AttachUserData",
            "DeleteUserData",
            "UpdateUserData"
        ]
    );
    let ids: Vec<&str> = agent2
        .participants
        .iter()
        .map(|p| p.participant_id.as_str())
        .collect();
    assert_eq!(ids, [TEST_CONSULT_PARTICIPANT_ID, CUSTOMER_PARTICIPANT_ID]);
    assert_eq!(agent2.participants[1].kind, ParticipantKind::Customer);

    // Then Completed, with no capabilities.
    let chat = conference(&world, CHAT_ID);
    let agent2 = chat_view(chat, &user_id("chat_consult")).expect("Agent2's view");
    assert_eq!(agent2.state, AgentChatState::Completed);
    assert!(agent2.capabilities.is_empty());

    // The remover keeps chatting, with the seed's list.
    let agent1 = chat_view(chat, &user_id("test_consult")).expect("Agent1's view");
    assert_eq!(agent1.state, AgentChatState::Chatting);
    assert_eq!(
        names(&agent1.capabilities),
        [
            "Transfer",
            "Leave",
            "Invite",
            "Consult",
            "SetInFocus",
            "SetDisposition",
            "AttachUserData",
            "DeleteUserData",
            "UpdateUserData",
            "Complete",
            "SendMessage",
            "SendStartTypingNotification",
            "SendStopTypingNotification",
        ]
    );
    assert_eq!(agent1.participants, agent2.participants);

    // Notifications in the seed's order.
    assert_eq!(
        recipients(removal, &after_removal),
        vec![
            Recipient {
                audience: Audience::User(user_id("test_consult")),
                changes: vec![
                    Change::ChatParticipantsUpdated,
                    Change::ChatNewMessages { indices: vec![7] },
                ],
            },
            Recipient {
                audience: Audience::User(user_id("chat_consult")),
                changes: vec![
                    Change::ChatParticipantsUpdated,
                    Change::ChatNewMessages { indices: vec![7] },
                    Change::ChatStatusChanged,
                ],
            },
            Recipient {
                audience: Audience::Customer(ParticipantId::new(CUSTOMER_PARTICIPANT_ID)),
                changes: vec![
                    Change::ChatParticipantsUpdated,
                    Change::ChatNewMessages { indices: vec![7] },
                ],
            },
        ]
    );
    assert_eq!(
        recipients(completion, chat),
        vec![Recipient {
            audience: Audience::User(user_id("chat_consult")),
            changes: vec![Change::ChatStatusChanged],
        }]
    );

    // The NewMessages entry as the notification layer renders it.
    let messages = chat_messages(
        chat,
        ChatViewer::Agent(&user_id("test_consult")),
        Some(&[7]),
    );
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].from.nickname, "chat_consult");
    assert_eq!(messages[0].from.user_id, Some(user_id("chat_consult")));
    assert_eq!(messages[0].timestamp.millis(), 1_392_308_459_000);
}

#[test]
fn chat_seed_with_text_posts_the_text_before_the_departure() {
    let world = remove_chat_consult(MessageParameters {
        text: Some("chat_consult has left to handle your delivery".into()),
        message_type: None,
        treat_as: Some("System".into()),
    });
    let chat = conference(&world, CHAT_ID).as_chat().expect("a chat");
    let text = &chat.messages[7];
    assert_eq!(text.kind, ChatMessageKind::Text);
    assert_eq!(text.from.as_str(), TEST_CONSULT_PARTICIPANT_ID);
    assert_eq!(text.visibility, Visibility::All);
    assert_eq!(text.message_type.as_deref(), Some("Text"));
    assert_eq!(names(&[text.treat_as]), ["System"]);
    let left = &chat.messages[8];
    assert_eq!(left.kind, ChatMessageKind::ParticipantLeft);
    assert_eq!(left.from.as_str(), CHAT_CONSULT_PARTICIPANT_ID);

    // The customer sees both.
    let customer = customer_chat_view(conference(&world, CHAT_ID)).expect("customer view");
    let last: Vec<u64> = customer
        .messages
        .iter()
        .rev()
        .take(2)
        .map(|m| m.index)
        .collect();
    assert_eq!(last, [8, 7]);
}

// --- seed 004: Evo DeleteChatMember -----------------------------------------

#[test]
fn session_seed_evo_user_removes_15550101() {
    let mut world = world();
    let before = conference(&world, SESSION_ID).clone();
    run_ok(
        &mut world,
        "evo-user",
        Command::RemoveSessionMember {
            session: ConferenceId::new(SESSION_ID),
            member_id: None,
            member_to_remove: Some("+1 555 0101".into()),
        },
    );
    let view = session_view(conference(&world, SESSION_ID)).expect("a session view");
    let identities: Vec<&str> = view
        .session
        .members
        .iter()
        .map(|member| member.identity.as_str())
        .collect();
    assert_eq!(identities, ["+15550100", "agent@example.com"]);
    assert_eq!(
        view.session.log.last().map(|entry| entry.message.as_str()),
        Some("agent@example.com removed +15550101")
    );
    assert_eq!(
        view.session.log.len(),
        before.as_session().map_or(0, |s| s.log.len()) + 1
    );
    assert!(!view.session.ended);
    assert_eq!(view.session.date_completed, None);
    assert_eq!(view.session.call_state, SessionCallState::Connected);
    assert_eq!(view.session.date_last_modified, NOW);
    assert_eq!(view.session.last_modified_by, user_id("evo-user"));
}

#[test]
fn session_seed_removing_everyone_ends_the_session() {
    let mut world = world();
    for reference in ["+15550101", "AGENT@example.com", demo::CALLER_MEMBER_ID] {
        run_ok(
            &mut world,
            "evo-user",
            Command::RemoveSessionMember {
                session: ConferenceId::new(SESSION_ID),
                member_id: None,
                member_to_remove: Some(reference.into()),
            },
        );
    }
    let session = conference(&world, SESSION_ID)
        .as_session()
        .expect("a session");
    assert!(session.members.is_empty());
    assert!(session.ended);
    assert_eq!(session.date_completed, Some(NOW));
    assert_eq!(session.call_state, SessionCallState::Disconnected);
    assert!(
        session
            .members
            .iter()
            .all(|m| m.call_state == MemberCallState::None)
    );
    let last = world
        .events_of(SESSION_ID)
        .last()
        .map(|event| event.kind.clone());
    assert!(matches!(
        last,
        Some(EventKind::SessionEnded {
            reason: SessionEndReason::NoMemberLeft,
            ..
        })
    ));
}
