//! One test per rule and per refusal, on the demo world.

mod common;

use common::{NOW, actor, conference, run, run_err, run_ok, user_id, world};
use confer_core::command::{NewCall, NewChat, NewDial, NewParty, NewSession, NewSessionMember};
use confer_core::conference::chat::{AgentChatState, ChatMessageKind, ChatState, Visibility};
use confer_core::conference::session::{
    Channel, Direction, MemberCallState, MemberRole, SessionDetails,
};
use confer_core::conference::voice::{
    CallState, CallType, MonitoringKind, MonitoringMode, MonitoringScope,
};
use confer_core::demo::{
    CHAT_CONSULT_PARTICIPANT_ID, CHAT_ID, CUSTOMER_PARTICIPANT_ID, DemoWorld, SESSION_ID,
    TEST_CONSULT_PARTICIPANT_ID, VOICE_CALL_ID,
};
use confer_core::error::ErrorKind;
use confer_core::event::CallReleaseReason;
use confer_core::view::{call_view, chat_view, conferences_listed_for, customer_chat_view};
use confer_core::{
    Actor, Command, ConferenceId, DomainError, Event, EventKind, MemberId, MessageParameters,
    ParticipantId, Role, UserData, UserId, apply, decide,
};

fn call_id() -> ConferenceId {
    ConferenceId::new(VOICE_CALL_ID)
}

fn chat_id() -> ConferenceId {
    ConferenceId::new(CHAT_ID)
}

fn session_id() -> ConferenceId {
    ConferenceId::new(SESSION_ID)
}

fn remove_party(participant: &str) -> Command {
    Command::RemoveParticipantFromCall {
        call: call_id(),
        participant: participant.into(),
    }
}

fn monitor(user: &str, scope: MonitoringScope) -> Command {
    Command::StartMonitoring {
        call: call_id(),
        monitored_user: user_id(user),
        kind: MonitoringKind::ListenIn,
        scope,
        mode: MonitoringMode::AllCalls,
    }
}

fn remove_from_chat(target_uri: Option<&str>, target_path: Option<&str>) -> Command {
    remove_from_chat_with(target_uri, target_path, MessageParameters::default())
}

fn remove_from_chat_with(
    target_uri: Option<&str>,
    target_path: Option<&str>,
    message: MessageParameters,
) -> Command {
    Command::RemoveParticipantFromChat {
        chat: chat_id(),
        target_uri: target_uri.map(str::to_owned),
        target_path: target_path.map(str::to_owned),
        message,
    }
}

fn remove_member(member_id: Option<&str>, member_to_remove: Option<&str>) -> Command {
    Command::RemoveSessionMember {
        session: session_id(),
        member_id: member_id.map(str::to_owned),
        member_to_remove: member_to_remove.map(str::to_owned),
    }
}

fn kind(error: &DomainError) -> ErrorKind {
    error.kind()
}

/// The demo world with a "consult" agent (visibility Agents) in the chat.
fn world_with_consultant() -> (DemoWorld, Actor) {
    let mut world = world();
    let consultant =
        Actor::new("c0ffee00000000000000000000000001", "consultant").with_role(Role::Agent);
    run_ok(
        &mut world,
        "test_consult",
        Command::ConsultInChat {
            chat: chat_id(),
            target_user: consultant.user_id.clone(),
        },
    );
    world
        .execute(
            &consultant,
            Command::AcceptChat {
                chat: chat_id(),
                participant_id: ParticipantId::new("00AF52FCF0C20031"),
                nickname: "consultant".into(),
            },
            NOW,
        )
        .expect("the consultant joins");
    (world, consultant)
}

// --- voice removal ---------------------------------------------------------

#[test]
fn voice_only_owner_or_monitoring_supervisor_may_remove() {
    let mut world = world();
    let error = run_err(&mut world, "agent15002", remove_party("15001"));
    assert_eq!(kind(&error), ErrorKind::NotConferenceOwner);
    assert_eq!(error.gws_status(), 3);
    assert_eq!(error.http_status(), 403);
}

#[test]
fn voice_supervisor_monitoring_the_call_may_remove() {
    let mut world = world();
    run_ok(
        &mut world,
        "supervisor",
        monitor("agent15002", MonitoringScope::Call),
    );
    let events = run_ok(&mut world, "supervisor", remove_party("15001"));
    assert!(matches!(
        &events[0].kind,
        EventKind::PartyRemoved { removed_by, .. } if removed_by == &user_id("supervisor")
    ));
}

#[test]
fn voice_supervisor_monitoring_the_owner_may_remove() {
    let mut world = world();
    run_ok(
        &mut world,
        "supervisor",
        monitor("agent15000", MonitoringScope::Agent),
    );
    run_ok(&mut world, "supervisor", remove_party("15001"));
}

#[test]
fn voice_supervisor_monitoring_another_agent_only_may_not_remove() {
    let mut world = world();
    run_ok(
        &mut world,
        "supervisor",
        monitor("agent15002", MonitoringScope::Agent),
    );
    let error = run_err(&mut world, "supervisor", remove_party("15001"));
    assert_eq!(kind(&error), ErrorKind::NotConferenceOwner);
}

#[test]
fn voice_supervisor_not_monitoring_does_not_see_the_call() {
    let mut world = world();
    let error = run_err(&mut world, "supervisor", remove_party("15001"));
    assert_eq!(kind(&error), ErrorKind::ConferenceNotFound);
    assert_eq!(error.http_status(), 404);
}

#[test]
fn voice_owner_cannot_be_removed() {
    let mut world = world();
    let error = run_err(&mut world, "agent15000", remove_party("15000"));
    assert_eq!(kind(&error), ErrorKind::CannotRemoveOwner);
    run_ok(
        &mut world,
        "supervisor",
        monitor("agent15000", MonitoringScope::Call),
    );
    let error = run_err(&mut world, "supervisor", remove_party("15000"));
    assert_eq!(kind(&error), ErrorKind::CannotRemoveOwner);
}

#[test]
fn voice_target_must_be_a_present_party() {
    let mut world = world();
    let error = run_err(&mut world, "agent15000", remove_party("19999"));
    assert_eq!(kind(&error), ErrorKind::NotInConference);
    run_ok(&mut world, "agent15000", remove_party("15001"));
    let again = run_err(&mut world, "agent15000", remove_party("15001"));
    assert_eq!(kind(&again), ErrorKind::NotInConference);
    assert_eq!(
        again.to_string(),
        "Participant 15001 is not in call 01RCC3N118B1V0SL8O7GK2LAES00000O"
    );
}

#[test]
fn voice_participant_is_required_and_compared_by_digits() {
    let mut world = world();
    let error = run_err(&mut world, "agent15000", remove_party("  "));
    assert_eq!(kind(&error), ErrorKind::MissingParameter);
    assert_eq!(error.gws_status(), 1);
    run_ok(&mut world, "agent15000", remove_party("1-5001"));
}

#[test]
fn voice_fewer_than_two_parties_release_the_call() {
    let mut world = world();
    run_ok(&mut world, "agent15000", remove_party("15001"));
    let events = run_ok(&mut world, "agent15000", remove_party("15002"));
    assert_eq!(events.len(), 2);
    assert!(matches!(
        events[1].kind,
        EventKind::CallReleased {
            reason: CallReleaseReason::TooFewParties
        }
    ));
    let error = run_err(&mut world, "agent15000", remove_party("15002"));
    assert_eq!(kind(&error), ErrorKind::ConferenceEnded);
    assert!(
        conferences_listed_for(&world.conferences, &actor("agent15000"))
            .iter()
            .all(|c| c.id != call_id())
    );
}

// --- other voice rules -----------------------------------------------------

#[test]
fn voice_create_requires_an_agent_with_a_line() {
    let new_call = |id: &str| {
        Command::CreateCall(NewCall {
            id: ConferenceId::new(id),
            conn_id: "c".into(),
            call_uuid: "u".into(),
            dnis: "15001".into(),
            call_type: CallType::Internal,
            state: CallState::Established,
            other_parties: vec![NewParty {
                phone_number: "15001".into(),
                user_id: None,
            }],
            user_data: UserData::new(),
        })
    };
    let mut world = world();
    assert_eq!(
        kind(&run_err(&mut world, "evo-user", new_call("x1"))),
        ErrorKind::MissingRole
    );
    assert_eq!(
        kind(&run_err(&mut world, "test_consult", new_call("x1"))),
        ErrorKind::MissingParameter
    );
    assert_eq!(
        kind(&run_err(&mut world, "agent15000", new_call(VOICE_CALL_ID))),
        ErrorKind::ConferenceAlreadyExists
    );
    run_ok(&mut world, "agent15000", new_call("x1"));
}

#[test]
fn voice_dial_answer_hold_retrieve_hangup() {
    let mut world = world();
    let id = ConferenceId::new("dial-1");
    run_ok(
        &mut world,
        "agent15000",
        Command::Dial(NewDial {
            id: id.clone(),
            conn_id: "conn".into(),
            call_uuid: "uuid".into(),
            destination: "15002".into(),
            destination_user: Some(user_id("agent15002")),
            user_data: UserData::new(),
        }),
    );
    let call = conference(&world, "dial-1");
    assert_eq!(
        call_view(call, &user_id("agent15000"), NOW).map(|v| v.state),
        Some(CallState::Dialing)
    );
    assert_eq!(
        call_view(call, &user_id("agent15002"), NOW).map(|v| v.state),
        Some(CallState::Ringing)
    );

    // The caller cannot answer their own call.
    let error = run_err(
        &mut world,
        "agent15000",
        Command::Answer { call: id.clone() },
    );
    assert_eq!(kind(&error), ErrorKind::InvalidState);
    run_ok(
        &mut world,
        "agent15002",
        Command::Answer { call: id.clone() },
    );

    run_ok(&mut world, "agent15002", Command::Hold { call: id.clone() });
    let call = conference(&world, "dial-1");
    assert_eq!(
        call_view(call, &user_id("agent15002"), NOW).map(|v| v.state),
        Some(CallState::Held)
    );
    assert_eq!(
        call_view(call, &user_id("agent15000"), NOW).map(|v| v.state),
        Some(CallState::Established)
    );
    let twice = run_err(&mut world, "agent15002", Command::Hold { call: id.clone() });
    assert_eq!(kind(&twice), ErrorKind::InvalidState);
    run_ok(
        &mut world,
        "agent15002",
        Command::Retrieve { call: id.clone() },
    );
    let not_held = run_err(
        &mut world,
        "agent15002",
        Command::Retrieve { call: id.clone() },
    );
    assert_eq!(kind(&not_held), ErrorKind::InvalidState);

    let events = run_ok(
        &mut world,
        "agent15002",
        Command::Hangup { call: id.clone() },
    );
    assert!(matches!(events[0].kind, EventKind::PartyLeft { .. }));
    assert!(matches!(events[1].kind, EventKind::CallReleased { .. }));
}

#[test]
fn voice_single_step_conference_is_for_the_owner_and_new_lines() {
    let mut world = world();
    let add = |destination: &str| Command::SingleStepConference {
        call: call_id(),
        destination: destination.into(),
        destination_user: None,
    };
    assert_eq!(
        kind(&run_err(&mut world, "agent15002", add("15003"))),
        ErrorKind::NotConferenceOwner
    );
    assert_eq!(
        kind(&run_err(&mut world, "agent15000", add("15002"))),
        ErrorKind::AlreadyInConference
    );
    run_ok(&mut world, "agent15000", add("15003"));
    let view = call_view(
        conference(&world, VOICE_CALL_ID),
        &user_id("agent15000"),
        NOW,
    );
    assert_eq!(view.map(|v| v.participants.len()), Some(3));
}

#[test]
fn voice_owner_hangup_and_clear_call_release_for_everyone() {
    let mut world = world();
    assert_eq!(
        kind(&run_err(
            &mut world,
            "agent15002",
            Command::ClearCall { call: call_id() }
        )),
        ErrorKind::NotConferenceOwner
    );
    let events = run_ok(
        &mut world,
        "agent15000",
        Command::ClearCall { call: call_id() },
    );
    assert!(matches!(
        events[0].kind,
        EventKind::CallReleased {
            reason: CallReleaseReason::Cleared
        }
    ));
    let mut world = common::world();
    let events = run_ok(
        &mut world,
        "agent15000",
        Command::Hangup { call: call_id() },
    );
    assert!(matches!(
        events[0].kind,
        EventKind::CallReleased {
            reason: CallReleaseReason::OwnerHungUp
        }
    ));
}

#[test]
fn voice_monitoring_rules() {
    let mut world = world();
    assert_eq!(
        kind(&run_err(
            &mut world,
            "agent15002",
            monitor("agent15000", MonitoringScope::Call)
        )),
        ErrorKind::MissingRole
    );
    assert_eq!(
        kind(&run_err(
            &mut world,
            "supervisor",
            monitor("test_consult", MonitoringScope::Call)
        )),
        ErrorKind::NotInConference
    );
    assert_eq!(
        kind(&run_err(
            &mut world,
            "supervisor",
            monitor("supervisor", MonitoringScope::Call)
        )),
        ErrorKind::InvalidParameter
    );
    assert_eq!(
        kind(&run_err(
            &mut world,
            "supervisor",
            Command::StopMonitoring { call: call_id() }
        )),
        ErrorKind::NotMonitoring
    );
    run_ok(
        &mut world,
        "supervisor",
        monitor("agent15000", MonitoringScope::Call),
    );
    assert_eq!(
        kind(&run_err(
            &mut world,
            "supervisor",
            monitor("agent15000", MonitoringScope::Call)
        )),
        ErrorKind::AlreadyMonitoring
    );
    let listed = conferences_listed_for(&world.conferences, &actor("supervisor"));
    assert_eq!(listed.len(), 1);
    let view = call_view(
        conference(&world, VOICE_CALL_ID),
        &user_id("supervisor"),
        NOW,
    )
    .expect("the supervisor's view");
    assert_eq!(view.participants.len(), 3);
    assert!(view.capabilities.is_empty());
    assert!(view.monitoring.is_some());
    // Agents are not told they are monitored.
    let agent = call_view(
        conference(&world, VOICE_CALL_ID),
        &user_id("agent15000"),
        NOW,
    );
    assert_eq!(agent.and_then(|v| v.monitoring), None);
    run_ok(
        &mut world,
        "supervisor",
        Command::StopMonitoring { call: call_id() },
    );
    assert!(conferences_listed_for(&world.conferences, &actor("supervisor")).is_empty());
}

// --- chat removal ------------------------------------------------------------

#[test]
fn chat_target_uri_or_path_is_required() {
    let mut world = world();
    let error = run_err(
        &mut world,
        "test_consult",
        remove_from_chat(None, Some(" ")),
    );
    assert_eq!(kind(&error), ErrorKind::MissingParameter);
    assert_eq!(error.to_string(), "Parameter targetUri is required");
}

#[test]
fn chat_target_path_alone_is_enough() {
    let mut world = world();
    run_ok(
        &mut world,
        "test_consult",
        remove_from_chat(None, Some("/users/c30d06daa1ea43b8be79f9b071f30d70")),
    );
}

#[test]
fn chat_target_must_be_a_user_reference() {
    let mut world = world();
    let error = run_err(
        &mut world,
        "test_consult",
        remove_from_chat(
            Some("http://10.10.15.212:9090/api/v2/chats/00010a9FSGFP001F"),
            None,
        ),
    );
    assert_eq!(kind(&error), ErrorKind::InvalidParameter);
    assert_eq!(error.gws_status(), 10);
}

#[test]
fn chat_target_uri_and_path_must_agree() {
    let mut world = world();
    let error = run_err(
        &mut world,
        "test_consult",
        remove_from_chat(
            Some("/api/v2/users/c30d06daa1ea43b8be79f9b071f30d70"),
            Some("/users/914165a5841348aa94ccfccd56917443"),
        ),
    );
    assert_eq!(kind(&error), ErrorKind::ConflictingParameters);
    run_ok(
        &mut world,
        "test_consult",
        remove_from_chat(
            Some("http://h:1/api/v2/users/c30d06daa1ea43b8be79f9b071f30d70"),
            Some("/users/c30d06daa1ea43b8be79f9b071f30d70"),
        ),
    );
}

#[test]
fn chat_message_type_and_treat_as_need_text() {
    let mut world = world();
    let target = Some("/users/c30d06daa1ea43b8be79f9b071f30d70");
    let error = run_err(
        &mut world,
        "test_consult",
        remove_from_chat_with(
            target,
            None,
            MessageParameters {
                message_type: Some("Text".into()),
                ..MessageParameters::default()
            },
        ),
    );
    assert_eq!(kind(&error), ErrorKind::RequiresText);
    let error = run_err(
        &mut world,
        "test_consult",
        remove_from_chat_with(
            target,
            None,
            MessageParameters {
                treat_as: Some("System".into()),
                ..MessageParameters::default()
            },
        ),
    );
    assert_eq!(kind(&error), ErrorKind::RequiresText);
    let error = run_err(
        &mut world,
        "test_consult",
        remove_from_chat_with(
            target,
            None,
            MessageParameters {
                text: Some("bye".into()),
                treat_as: Some("Loud".into()),
                message_type: None,
            },
        ),
    );
    assert_eq!(kind(&error), ErrorKind::InvalidParameter);
}

#[test]
fn chat_consult_agent_may_not_remove() {
    let (mut world, consultant) = world_with_consultant();
    let error = world
        .execute(
            &consultant,
            remove_from_chat(Some("/users/c30d06daa1ea43b8be79f9b071f30d70"), None),
            NOW,
        )
        .expect_err("a consult agent is not visible to all");
    assert_eq!(kind(&error), ErrorKind::NotVisibleToAll);
    // ... but may be removed, and the customer never saw them come or go.
    let uri = format!("/api/v2/users/{}", consultant.user_id);
    run_ok(
        &mut world,
        "test_consult",
        remove_from_chat(Some(&uri), None),
    );
    let customer = customer_chat_view(conference(&world, CHAT_ID)).expect("customer view");
    assert!(
        customer
            .messages
            .iter()
            .all(|m| m.from.nickname != "consultant")
    );
    assert!(
        customer
            .participants
            .iter()
            .all(|p| p.nickname != "consultant")
    );
}

#[test]
fn chat_customer_view_hides_consulting_agents() {
    let (world, _) = world_with_consultant();
    let chat = conference(&world, CHAT_ID);
    let customer = customer_chat_view(chat).expect("customer view");
    assert_eq!(customer.participants.len(), 3);
    let agent = chat_view(chat, &user_id("test_consult")).expect("agent view");
    assert_eq!(agent.participants.len(), 4);
    let joined = chat
        .as_chat()
        .and_then(|c| c.messages.last())
        .map(|m| (m.kind, m.visibility));
    assert_eq!(
        joined,
        Some((ChatMessageKind::ParticipantJoined, Visibility::Agents))
    );
}

#[test]
fn chat_customer_and_self_cannot_be_removed() {
    let mut world = world();
    let error = run_err(
        &mut world,
        "test_consult",
        remove_from_chat(Some(&format!("/users/{CUSTOMER_PARTICIPANT_ID}")), None),
    );
    assert_eq!(kind(&error), ErrorKind::CannotRemoveCustomer);
    let error = run_err(
        &mut world,
        "test_consult",
        remove_from_chat(Some("/users/914165a5841348aa94ccfccd56917443"), None),
    );
    assert_eq!(kind(&error), ErrorKind::CannotRemoveSelf);
    let error = run_err(
        &mut world,
        "test_consult",
        remove_from_chat(Some(&format!("/users/{TEST_CONSULT_PARTICIPANT_ID}")), None),
    );
    assert_eq!(kind(&error), ErrorKind::CannotRemoveSelf);
}

#[test]
fn chat_target_must_be_in_the_chat() {
    let mut world = world();
    let error = run_err(
        &mut world,
        "test_consult",
        remove_from_chat(Some("/users/nobody"), None),
    );
    assert_eq!(kind(&error), ErrorKind::NotInConference);
    run_ok(
        &mut world,
        "test_consult",
        remove_from_chat(Some("/users/c30d06daa1ea43b8be79f9b071f30d70"), None),
    );
    let again = run_err(
        &mut world,
        "test_consult",
        remove_from_chat(Some("/users/c30d06daa1ea43b8be79f9b071f30d70"), None),
    );
    assert_eq!(kind(&again), ErrorKind::NotInConference);
    // The removed agent can no longer remove anyone either.
    let removed = run_err(
        &mut world,
        "chat_consult",
        remove_from_chat(Some("/users/914165a5841348aa94ccfccd56917443"), None),
    );
    assert_eq!(kind(&removed), ErrorKind::NotInConference);
}

#[test]
fn chat_outsiders_do_not_see_it() {
    let mut world = world();
    let error = run_err(
        &mut world,
        "agent15000",
        remove_from_chat(Some("/users/c30d06daa1ea43b8be79f9b071f30d70"), None),
    );
    assert_eq!(kind(&error), ErrorKind::ConferenceNotFound);
    // A chat command on a call id: there is no such chat.
    let error = run_err(
        &mut world,
        "agent15000",
        Command::LeaveChat {
            chat: call_id(),
            message: MessageParameters::default(),
        },
    );
    assert_eq!(kind(&error), ErrorKind::ConferenceNotFound);
    assert_eq!(
        error.to_string(),
        format!("Chat {VOICE_CALL_ID} was not found")
    );
}

// --- other chat rules ----------------------------------------------------------

#[test]
fn chat_invitations() {
    let mut world = world();
    let invite = |user: &str| Command::InviteToChat {
        chat: chat_id(),
        target_user: user_id(user),
    };
    assert_eq!(
        kind(&run_err(&mut world, "test_consult", invite("chat_consult"))),
        ErrorKind::AlreadyInConference
    );
    assert_eq!(
        kind(&run_err(
            &mut world,
            "agent15000",
            Command::AcceptChat {
                chat: chat_id(),
                participant_id: ParticipantId::new("x"),
                nickname: "x".into()
            }
        )),
        ErrorKind::ConferenceNotFound
    );
    run_ok(&mut world, "test_consult", invite("agent15002"));
    let accept = |participant: &str| Command::AcceptChat {
        chat: chat_id(),
        participant_id: ParticipantId::new(participant),
        nickname: "agent15002".into(),
    };
    assert_eq!(
        kind(&run_err(
            &mut world,
            "agent15002",
            accept(CHAT_CONSULT_PARTICIPANT_ID)
        )),
        ErrorKind::IdInUse
    );
    assert_eq!(
        kind(&run_err(&mut world, "test_consult", accept("new"))),
        ErrorKind::NotInvited
    );
    run_ok(
        &mut world,
        "agent15002",
        Command::RejectChat { chat: chat_id() },
    );
    let view = chat_view(conference(&world, CHAT_ID), &user_id("agent15002"));
    assert_eq!(view.map(|v| v.state), Some(AgentChatState::Completed));
    assert_eq!(
        kind(&run_err(&mut world, "agent15002", accept("new"))),
        ErrorKind::NotInvited
    );
}

#[test]
fn chat_send_message_needs_text() {
    let mut world = world();
    let error = run_err(
        &mut world,
        "test_consult",
        Command::SendChatMessage {
            chat: chat_id(),
            message: MessageParameters::default(),
        },
    );
    assert_eq!(kind(&error), ErrorKind::MissingParameter);
    let events = run_ok(
        &mut world,
        "test_consult",
        Command::SendChatMessage {
            chat: chat_id(),
            message: MessageParameters::text("hello"),
        },
    );
    assert!(
        matches!(&events[0].kind, EventKind::ChatMessagePosted { message } if message.index == 7)
    );
}

#[test]
fn chat_leave_then_complete_and_the_last_agent_closes_it() {
    let mut world = world();
    run_ok(
        &mut world,
        "chat_consult",
        Command::LeaveChat {
            chat: chat_id(),
            message: MessageParameters::text("bye"),
        },
    );
    let view = chat_view(conference(&world, CHAT_ID), &user_id("chat_consult"));
    assert_eq!(view.map(|v| v.state), Some(AgentChatState::LeftChat));
    let with_text = run_err(
        &mut world,
        "chat_consult",
        Command::CompleteChat {
            chat: chat_id(),
            message: MessageParameters::text("late"),
        },
    );
    assert_eq!(kind(&with_text), ErrorKind::InvalidState);
    run_ok(
        &mut world,
        "chat_consult",
        Command::CompleteChat {
            chat: chat_id(),
            message: MessageParameters::default(),
        },
    );
    let events = run_ok(
        &mut world,
        "test_consult",
        Command::CompleteChat {
            chat: chat_id(),
            message: MessageParameters::default(),
        },
    );
    assert!(matches!(
        events.last().map(|e| &e.kind),
        Some(EventKind::ChatClosed { .. })
    ));
    let chat = conference(&world, CHAT_ID);
    assert_eq!(chat.as_chat().map(|c| c.state), Some(ChatState::Closed));
    assert!(chat.is_ended());
    let customer = customer_chat_view(chat).expect("customer view");
    assert!(!customer.in_chat);
    assert!(customer.participants.is_empty());
    let error = run_err(
        &mut world,
        "test_consult",
        Command::SendChatMessage {
            chat: chat_id(),
            message: MessageParameters::text("anyone?"),
        },
    );
    assert_eq!(kind(&error), ErrorKind::ConferenceEnded);
}

#[test]
fn chat_create_requires_an_agent_and_distinct_ids() {
    let new_chat = |agent: &str, customer: &str| {
        Command::CreateChat(NewChat {
            id: ConferenceId::new("chat-2"),
            agent_participant_id: ParticipantId::new(agent),
            agent_nickname: "a".into(),
            customer_participant_id: ParticipantId::new(customer),
            customer_nickname: "c".into(),
            user_data: UserData::new(),
            history: Vec::new(),
        })
    };
    let mut world = world();
    assert_eq!(
        kind(&run_err(&mut world, "evo-user", new_chat("p1", "p2"))),
        ErrorKind::MissingRole
    );
    assert_eq!(
        kind(&run_err(&mut world, "agent15000", new_chat("p1", "p1"))),
        ErrorKind::IdInUse
    );
    run_ok(&mut world, "agent15000", new_chat("p1", "p2"));
}

// --- session removal -----------------------------------------------------------

#[test]
fn session_member_by_path_id_email_or_phone() {
    let mut world = world();
    run_ok(&mut world, "evo-user", remove_member(Some("m3"), None));
    run_ok(
        &mut world,
        "evo-user",
        remove_member(None, Some(" Agent@Example.COM ")),
    );
    let session = conference(&world, SESSION_ID)
        .as_session()
        .expect("a session");
    assert_eq!(session.members.len(), 1);
    assert!(!session.ended);
    run_ok(
        &mut world,
        "evo-user",
        remove_member(Some("ignored"), Some("+1 (555) 010-0")),
    );
    assert!(conference(&world, SESSION_ID).is_ended());
}

#[test]
fn session_member_is_required() {
    let mut world = world();
    let error = run_err(&mut world, "evo-user", remove_member(None, Some("")));
    assert_eq!(kind(&error), ErrorKind::MissingParameter);
}

#[test]
fn session_member_must_be_there() {
    let mut world = world();
    let error = run_err(
        &mut world,
        "evo-user",
        remove_member(None, Some("+15559999")),
    );
    assert_eq!(kind(&error), ErrorKind::NotInConference);
    run_ok(
        &mut world,
        "evo-user",
        remove_member(None, Some("+15550101")),
    );
    let again = run_err(
        &mut world,
        "evo-user",
        remove_member(None, Some("+15550101")),
    );
    assert_eq!(kind(&again), ErrorKind::NotInConference);
}

#[test]
fn session_path_and_query_naming_different_members_is_refused() {
    let mut world = world();
    let error = run_err(
        &mut world,
        "evo-user",
        remove_member(Some("m1"), Some("+15550101")),
    );
    assert_eq!(kind(&error), ErrorKind::ConflictingParameters);
    run_ok(
        &mut world,
        "evo-user",
        remove_member(Some("m3"), Some("+15550101")),
    );
}

#[test]
fn session_needs_role_user_in_the_account() {
    let mut world = world();
    // An account member without the User role.
    let member_only = Actor::new("u-member", "member").with_account("demo-account");
    let error = world
        .execute(&member_only, remove_member(None, Some("+15550101")), NOW)
        .expect_err("no User role");
    assert_eq!(kind(&error), ErrorKind::MissingRole);
    assert_eq!(error.service_stack_error_code(), "Forbidden");
    // A User of another account does not see the session.
    let stranger = Actor::new("u-other", "other")
        .with_role(Role::User)
        .with_account("other");
    let error = world
        .execute(&stranger, remove_member(None, Some("+15550101")), NOW)
        .expect_err("another account");
    assert_eq!(kind(&error), ErrorKind::ConferenceNotFound);
    // GWS agents have no Evo role.
    let error = run_err(
        &mut world,
        "agent15000",
        remove_member(None, Some("+15550101")),
    );
    assert_eq!(kind(&error), ErrorKind::ConferenceNotFound);
    // An admin of the account may.
    let admin = Actor::new("u-admin", "admin")
        .with_role(Role::Admin)
        .with_account("demo-account");
    world
        .execute(&admin, remove_member(None, Some("+15550101")), NOW)
        .expect("an admin passes Evo role checks");
}

#[test]
fn session_ended_refuses_changes() {
    let mut world = world();
    run_ok(
        &mut world,
        "evo-user",
        Command::EndSession {
            session: session_id(),
        },
    );
    let session = conference(&world, SESSION_ID)
        .as_session()
        .expect("a session");
    assert!(session.ended);
    assert!(
        session
            .members
            .iter()
            .all(|m| m.call_state == MemberCallState::None)
    );
    let error = run_err(
        &mut world,
        "evo-user",
        remove_member(None, Some("+15550101")),
    );
    assert_eq!(kind(&error), ErrorKind::ConferenceEnded);
    assert_eq!(error.grpc_code().as_str(), "FAILED_PRECONDITION");
}

#[test]
fn session_invite_rules_and_create_in_own_account_only() {
    let mut world = world();
    let invite = |member_id: &str, identity: &str| Command::InviteSessionMember {
        session: session_id(),
        member_id: MemberId::new(member_id),
        member_to_add: identity.into(),
        display_name: None,
        role: MemberRole::Transfer,
    };
    assert_eq!(
        kind(&run_err(&mut world, "evo-user", invite("m1", "+15550199"))),
        ErrorKind::IdInUse
    );
    assert_eq!(
        kind(&run_err(
            &mut world,
            "evo-user",
            invite("m9", "+1 555 0100")
        )),
        ErrorKind::AlreadyInConference
    );
    run_ok(&mut world, "evo-user", invite("m9", "+15550199"));

    let new_session = |account: &str| {
        Command::CreateSession(NewSession {
            id: ConferenceId::new("s2"),
            account_id: account.into(),
            account_name: "x".into(),
            channel: Channel::Chat,
            direction: Direction::Outgoing,
            members: vec![NewSessionMember {
                member_id: MemberId::new("a"),
                identity: "a@example.com".into(),
                display_name: None,
                role: MemberRole::Agent,
                call_state: MemberCallState::Connected,
            }],
            details: Box::new(SessionDetails::default()),
        })
    };
    assert_eq!(
        kind(&run_err(&mut world, "evo-user", new_session("other"))),
        ErrorKind::NotAccountMember
    );
    run_ok(&mut world, "evo-user", new_session("demo-account"));
}

// --- errors not produced by decide's rules ------------------------------------

#[test]
fn command_for_another_conference_is_a_caller_bug() {
    let world = world();
    let error = decide(
        Some(conference(&world, CHAT_ID)),
        &actor("agent15000"),
        remove_party("15001"),
        NOW,
    )
    .expect_err("mismatched conference");
    assert_eq!(kind(&error), ErrorKind::CommandTargetMismatch);
    assert_eq!(error.http_status(), 500);
}

#[test]
fn apply_refuses_events_that_do_not_fit() {
    let world = world();
    let call = conference(&world, VOICE_CALL_ID).clone();
    let event = |version: u64, kind: EventKind| Event {
        conference_id: call_id(),
        version,
        occurred_at: NOW,
        by: UserId::new("x"),
        kind,
    };
    let gap = event(
        call.version + 2,
        EventKind::CallReleased {
            reason: CallReleaseReason::Cleared,
        },
    );
    assert_eq!(
        kind(&apply(Some(call.clone()), &gap).expect_err("gap")),
        ErrorKind::EventDoesNotApply
    );
    let foreign = event(
        call.version + 1,
        EventKind::ChatClosed {
            withdrawn_invitations: vec![],
        },
    );
    assert_eq!(
        kind(&apply(Some(call.clone()), &foreign).expect_err("chat event on a call")),
        ErrorKind::EventDoesNotApply
    );
    let orphan = event(
        1,
        EventKind::CallReleased {
            reason: CallReleaseReason::Cleared,
        },
    );
    assert_eq!(
        kind(&apply(None, &orphan).expect_err("no conference")),
        ErrorKind::EventDoesNotApply
    );
    let unknown_party = event(
        call.version + 1,
        EventKind::PartyHeld {
            phone_number: "99999".into(),
        },
    );
    assert!(apply(Some(call), &unknown_party).is_err());
}

#[test]
fn errors_for_other_layers_have_their_codes() {
    assert_eq!(DomainError::NotAuthenticated.gws_status(), 20);
    assert_eq!(DomainError::NotAuthenticated.http_status(), 401);
    assert_eq!(
        DomainError::NotAuthenticated.grpc_code().as_str(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        DomainError::NotAuthenticated.service_stack_error_code(),
        "Unauthorized"
    );
    let conflict = DomainError::VersionConflict {
        id: chat_id(),
        expected: 9,
        actual: 10,
    };
    assert_eq!(conflict.gws_status(), 19);
    assert_eq!(conflict.http_status(), 409);
    assert_eq!(
        conflict.service_stack_error_code(),
        "OptimisticConcurrencyException"
    );
}

#[test]
fn commands_on_missing_conferences_are_not_found() {
    let mut world = world();
    let error = run_err(
        &mut world,
        "agent15000",
        Command::Hangup {
            call: ConferenceId::new("nope"),
        },
    );
    assert_eq!(kind(&error), ErrorKind::ConferenceNotFound);
    let _ = run(&mut world, "agent15000", remove_party("15001"));
}

// --- views and recipients beyond the seeds ------------------------------------

#[test]
fn session_events_are_told_to_the_account() {
    let mut world = world();
    let events = run_ok(
        &mut world,
        "evo-user",
        remove_member(None, Some("+15550101")),
    );
    let told = confer_core::recipients(&events[0], conference(&world, SESSION_ID));
    assert_eq!(
        told,
        vec![confer_core::Recipient {
            audience: confer_core::Audience::Account("demo-account".into()),
            changes: vec![confer_core::Change::SessionUpdated],
        }]
    );
}

#[test]
fn a_joining_agent_is_told_their_status_and_the_others_the_participants() {
    let mut world = world();
    run_ok(
        &mut world,
        "test_consult",
        Command::InviteToChat {
            chat: chat_id(),
            target_user: user_id("agent15002"),
        },
    );
    let events = run_ok(
        &mut world,
        "agent15002",
        Command::AcceptChat {
            chat: chat_id(),
            participant_id: ParticipantId::new("p-new"),
            nickname: "agent15002".into(),
        },
    );
    let told = confer_core::recipients(&events[0], conference(&world, CHAT_ID));
    let new_messages = confer_core::Change::ChatNewMessages { indices: vec![7] };
    let changes_of = |audience: confer_core::Audience| {
        told.iter()
            .find(|recipient| recipient.audience == audience)
            .map(|recipient| recipient.changes.clone())
    };
    assert_eq!(
        changes_of(confer_core::Audience::User(user_id("agent15002"))),
        Some(vec![
            confer_core::Change::ChatStatusChanged,
            new_messages.clone()
        ])
    );
    assert_eq!(
        changes_of(confer_core::Audience::User(user_id("test_consult"))),
        Some(vec![
            confer_core::Change::ChatParticipantsUpdated,
            new_messages.clone()
        ])
    );
    assert_eq!(
        changes_of(confer_core::Audience::Customer(ParticipantId::new(
            CUSTOMER_PARTICIPANT_ID
        ))),
        Some(vec![
            confer_core::Change::ChatParticipantsUpdated,
            new_messages
        ])
    );
}

#[test]
fn only_agents_accept_chat_invitations() {
    let mut world = world();
    run_ok(
        &mut world,
        "test_consult",
        Command::InviteToChat {
            chat: chat_id(),
            target_user: user_id("evo-user"),
        },
    );
    let error = run_err(
        &mut world,
        "evo-user",
        Command::AcceptChat {
            chat: chat_id(),
            participant_id: ParticipantId::new("p-new"),
            nickname: "evo".into(),
        },
    );
    assert_eq!(kind(&error), ErrorKind::MissingRole);
}

#[test]
fn a_supervisor_who_stops_monitoring_sees_the_call_released() {
    let mut world = world();
    run_ok(
        &mut world,
        "supervisor",
        monitor("agent15000", MonitoringScope::Call),
    );
    let events = run_ok(
        &mut world,
        "supervisor",
        Command::StopMonitoring { call: call_id() },
    );
    let call = conference(&world, VOICE_CALL_ID);
    let told = confer_core::recipients(&events[0], call);
    assert_eq!(told.len(), 1);
    assert_eq!(
        told[0].audience,
        confer_core::Audience::User(user_id("supervisor"))
    );
    let view = call_view(call, &user_id("supervisor"), NOW).expect("the former monitor's view");
    assert_eq!(view.state, CallState::Released);
    assert!(view.participants.is_empty());
    // They may monitor again.
    run_ok(
        &mut world,
        "supervisor",
        monitor("agent15000", MonitoringScope::Call),
    );
}

#[test]
fn a_removed_user_sees_the_call_released_and_is_told() {
    let mut world = world();
    run_ok(
        &mut world,
        "agent15000",
        Command::SingleStepConference {
            call: call_id(),
            destination: "15099".into(),
            destination_user: Some(user_id("supervisor")),
        },
    );
    let events = run_ok(&mut world, "agent15000", remove_party("15099"));
    let call = conference(&world, VOICE_CALL_ID);
    let told = confer_core::recipients(&events[0], call);
    assert!(told.iter().any(|recipient| recipient.audience
        == confer_core::Audience::User(user_id("supervisor"))
        && recipient.changes == vec![confer_core::Change::CallStatusChanged]));
    let view = call_view(call, &user_id("supervisor"), NOW).expect("the removed user's view");
    assert_eq!(view.state, CallState::Released);
    assert!(view.capabilities.is_empty());
    assert!(conferences_listed_for(&world.conferences, &actor("supervisor")).is_empty());
}
