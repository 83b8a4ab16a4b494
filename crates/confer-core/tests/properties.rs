//! Properties over random command sequences on random small worlds.
//!
//! Each case builds a small world (a call, a chat and a session created with
//! random sizes), then runs random commands from random actors with ids and
//! texts drawn from small pools (so they collide) or made up (so they don't).
//! After every command it checks the invariants; at the end, that replaying
//! the log (also through JSON) rebuilds exactly the same state.

use std::collections::BTreeMap;

use confer_core::command::{
    HistoryMessage, NewCall, NewChat, NewDial, NewParty, NewSession, NewSessionMember,
};
use confer_core::conference::chat::ChatMessageKind;
use confer_core::conference::session::{
    Channel, Direction, MemberCallState, MemberRole, SessionDetails,
};
use confer_core::conference::voice::{
    CallState, CallType, MonitoringKind, MonitoringMode, MonitoringScope,
};
use confer_core::view::{
    ChatViewer, call_view, chat_messages, chat_view, customer_chat_view, is_listed_for,
    session_view,
};
use confer_core::{
    Actor, Audience, Command, Conference, ConferenceId, Event, EventKind, MemberId,
    MessageParameters, ParticipantId, Role, Timestamp, UserData, UserId, apply, decide, recipients,
    replay,
};
use proptest::prelude::*;

const CALL_IDS: [&str; 2] = ["call-0", "call-1"];
const CHAT_IDS: [&str; 2] = ["chat-0", "chat-1"];
const SESSION_IDS: [&str; 2] = ["sess-0", "sess-1"];
const NUMBERS: [&str; 6] = ["1000", "1001", "1002", "1099", "5550", "+1 555 0"];
const IDENTITIES: [&str; 5] = ["+15550100", "+1 555 0101", "a@x.com", "B@X.com", "client:c"];

/// The users of every world: agents with lines, a supervisor, Evo users, a
/// user with both GWS and Evo roles, and a user with no role at all.
fn users() -> Vec<Actor> {
    vec![
        Actor::new("u-a0", "a0")
            .with_role(Role::Agent)
            .with_phone_number("1000"),
        Actor::new("u-a1", "a1")
            .with_role(Role::Agent)
            .with_phone_number("1001"),
        Actor::new("u-a2", "a2")
            .with_role(Role::Agent)
            .with_role(Role::User)
            .with_phone_number("1002")
            .with_email("b@x.com")
            .with_account("acc-0"),
        Actor::new("u-s", "s")
            .with_role(Role::Supervisor)
            .with_role(Role::Agent)
            .with_phone_number("1099"),
        Actor::new("u-e0", "e0")
            .with_role(Role::User)
            .with_email("a@x.com")
            .with_account("acc-0"),
        Actor::new("u-e1", "e1")
            .with_role(Role::User)
            .with_account("acc-1"),
        Actor::new("u-x", "x"),
    ]
}

fn user_id(index: u8) -> UserId {
    let users = users();
    users
        .get(usize::from(index) % users.len())
        .map_or_else(|| UserId::new("u-x"), |actor| actor.user_id.clone())
}

/// Mostly an agent of the pool (a0, a1, a2, the supervisor), sometimes anyone.
fn agent_id(index: u8) -> UserId {
    if index % 8 == 7 {
        user_id(index / 8)
    } else {
        user_id(index % 4)
    }
}

/// Who runs a step: mostly a user the operation is meant for, sometimes anyone.
fn actor_for(step: &Step) -> u8 {
    if step.actor.is_multiple_of(6) {
        return step.actor / 6;
    }
    match step.operation {
        // Sessions: the Evo users (a2 is one too).
        21..=23 | 32..=35 => pick_index(&[4, 4, 2, 5], step.actor),
        // Calls and chats: the agents and the supervisor.
        _ => pick_index(&[0, 1, 2, 3], step.actor),
    }
}

fn pick_index(pool: &[u8], index: u8) -> u8 {
    pool.get(usize::from(index) % pool.len().max(1))
        .copied()
        .unwrap_or(0)
}

fn pick<'a>(pool: &[&'a str], index: u8) -> &'a str {
    pool.get(usize::from(index) % pool.len().max(1))
        .copied()
        .unwrap_or("")
}

/// One random step: who, which operation, and a few numbers and a text to
/// choose its parameters with.
#[derive(Debug, Clone)]
struct Step {
    actor: u8,
    operation: u8,
    a: u8,
    b: u8,
    c: u8,
    text: Option<String>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<u8>(),
        0_u8..36,
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        proptest::option::of("[ -~]{0,12}"),
    )
        .prop_map(|(actor, operation, a, b, c, text)| Step {
            actor,
            operation,
            a,
            b,
            c,
            text,
        })
}

fn message(step: &Step) -> MessageParameters {
    MessageParameters {
        text: if step.c.is_multiple_of(3) {
            None
        } else {
            step.text.clone()
        },
        message_type: (step.c % 5 == 1).then(|| "Text".to_owned()),
        treat_as: match step.c % 7 {
            1 => Some("System".to_owned()),
            2 => Some("normal".to_owned()),
            3 => step.text.clone(),
            _ => None,
        },
    }
}

/// A chat removal target: a user, a participant or garbage, as a URI or a path.
fn target(step: &Step, which: u8) -> Option<String> {
    let user = agent_id(step.b);
    match which % 6 {
        0 => None,
        1 => Some(format!("http://gws:8080/api/v2/users/{user}")),
        2 => Some(format!("/users/{user}")),
        3 => Some(format!("/api/v2/users/p-{}", step.b % 4)),
        4 => Some("/api/v2/users/cust".to_owned()),
        _ => step.text.clone(),
    }
}

fn creation(step: &Step) -> Command {
    let kind = step.a % 3;
    let id = |pool: &[&str]| ConferenceId::new(pick(pool, step.a / 3));
    match kind {
        0 => Command::CreateCall(NewCall {
            id: id(&CALL_IDS),
            conn_id: "conn".into(),
            call_uuid: "uuid".into(),
            dnis: "1001".into(),
            call_type: CallType::Internal,
            state: if step.c.is_multiple_of(4) {
                CallState::Ringing
            } else {
                CallState::Established
            },
            other_parties: (0..=step.c % 3)
                .map(|offset| {
                    let index = step.b.wrapping_add(offset);
                    let number = pick(&NUMBERS, index);
                    NewParty {
                        phone_number: number.to_owned(),
                        // The line of a pool agent belongs to that agent.
                        user_id: (usize::from(index) % NUMBERS.len() < 4).then(|| {
                            user_id(match index % 6 {
                                0 => 0,
                                1 => 1,
                                2 => 2,
                                _ => 3,
                            })
                        }),
                    }
                })
                .collect(),
            user_data: UserData::new(),
        }),
        1 => Command::CreateChat(NewChat {
            id: id(&CHAT_IDS),
            agent_participant_id: ParticipantId::new(format!("p-{}", step.c % 4)),
            agent_nickname: "agent".into(),
            customer_participant_id: ParticipantId::new("cust"),
            customer_nickname: "customer".into(),
            user_data: UserData::new(),
            history: (0..step.c % 3)
                .map(|index| HistoryMessage {
                    from: ParticipantId::new(if index.is_multiple_of(2) {
                        "cust".to_owned()
                    } else {
                        format!("p-{}", step.c % 4)
                    }),
                    kind: ChatMessageKind::Text,
                    text: Some(format!("m{index}")),
                    timestamp: Timestamp::from_millis(i64::from(index)),
                })
                .collect(),
        }),
        _ => Command::CreateSession(NewSession {
            id: id(&SESSION_IDS),
            account_id: pick(&["acc-0", "acc-1"], step.c).into(),
            account_name: "account".into(),
            channel: Channel::Voice,
            direction: Direction::Incoming,
            members: (0..=step.c % 3)
                .map(|index| NewSessionMember {
                    member_id: MemberId::new(format!("m{index}")),
                    identity: pick(&IDENTITIES, step.b.wrapping_add(index)).to_owned(),
                    display_name: None,
                    role: MemberRole::Caller,
                    call_state: if index == 2 {
                        MemberCallState::Hold
                    } else {
                        MemberCallState::Connected
                    },
                })
                .collect(),
            details: Box::new(SessionDetails::default()),
        }),
    }
}

fn command(step: &Step) -> Command {
    // Mostly the conferences every world starts with, sometimes the others.
    let which = if step.a.is_multiple_of(4) {
        step.a / 4
    } else {
        0
    };
    let call = ConferenceId::new(pick(&CALL_IDS, which));
    let chat = ConferenceId::new(pick(&CHAT_IDS, which));
    let session = ConferenceId::new(pick(&SESSION_IDS, which));
    let number = || {
        if step.c.is_multiple_of(9) {
            step.text.clone().unwrap_or_default()
        } else {
            pick(&NUMBERS, step.b).to_owned()
        }
    };
    match step.operation {
        0 => creation(step),
        1 => Command::Dial(NewDial {
            id: call,
            conn_id: "conn".into(),
            call_uuid: "uuid".into(),
            destination: number(),
            destination_user: (step.c.is_multiple_of(2)).then(|| user_id(step.b)),
            user_data: UserData::new(),
        }),
        2 => Command::Answer { call },
        3 => Command::SingleStepConference {
            call,
            destination: number(),
            destination_user: (step.c.is_multiple_of(2)).then(|| user_id(step.b)),
        },
        // Removals are drawn more often than the rest, ending a whole
        // conference less often, so that worlds live long enough to matter.
        4 | 5 | 24..=27 => Command::RemoveParticipantFromCall {
            call,
            participant: number(),
        },
        6 => Command::Hangup { call },
        7 if step.c.is_multiple_of(4) => Command::ClearCall { call },
        7 => Command::Hold { call },
        8 => Command::Hold { call },
        9 => Command::Retrieve { call },
        10 => Command::StartMonitoring {
            call,
            monitored_user: user_id(step.b),
            kind: match step.c % 3 {
                0 => MonitoringKind::ListenIn,
                1 => MonitoringKind::Coach,
                _ => MonitoringKind::BargeIn,
            },
            scope: if step.c.is_multiple_of(2) {
                MonitoringScope::Agent
            } else {
                MonitoringScope::Call
            },
            mode: MonitoringMode::default(),
        },
        11 => Command::StopMonitoring { call },
        12 => Command::InviteToChat {
            chat,
            target_user: agent_id(step.b),
        },
        13 => Command::ConsultInChat {
            chat,
            target_user: agent_id(step.b),
        },
        14 => Command::AcceptChat {
            chat,
            participant_id: ParticipantId::new(format!("p-{}", step.c % 5)),
            nickname: "agent".into(),
        },
        15 => Command::RejectChat { chat },
        16 => Command::SendChatMessage {
            chat,
            message: message(step),
        },
        17 => Command::LeaveChat {
            chat,
            message: message(step),
        },
        18 => Command::CompleteChat {
            chat,
            message: message(step),
        },
        19 | 20 | 28..=31 => Command::RemoveParticipantFromChat {
            chat,
            target_uri: target(step, step.c),
            target_path: target(step, step.c / 6),
            message: message(step),
        },
        21 => Command::InviteSessionMember {
            session,
            member_id: MemberId::new(format!("m{}", step.c % 5)),
            member_to_add: pick(&IDENTITIES, step.b).to_owned(),
            display_name: None,
            role: MemberRole::Transfer,
        },
        22 | 32..=35 => Command::RemoveSessionMember {
            session,
            member_id: (step.c.is_multiple_of(3)).then(|| format!("m{}", step.b % 4)),
            member_to_remove: match step.c % 4 {
                0 => None,
                1 => Some(pick(&IDENTITIES, step.b).to_owned()),
                2 => Some(format!("m{}", step.b % 4)),
                _ => step.text.clone(),
            },
        },
        23 if step.c.is_multiple_of(4) => Command::EndSession { session },
        _ => Command::InviteSessionMember {
            session,
            member_id: MemberId::new(format!("m{}", step.b % 5)),
            member_to_add: pick(&IDENTITIES, step.c).to_owned(),
            display_name: None,
            role: MemberRole::Agent,
        },
    }
}

/// Who is in the conference according to every view of every user (and the
/// customer's), as (kind, identity) pairs.
fn everyone_in_views(conference: &Conference, now: Timestamp) -> Vec<String> {
    let mut seen = Vec::new();
    for actor in users() {
        if let Some(view) = call_view(conference, &actor.user_id, now) {
            seen.extend(view.participants.iter().map(|p| {
                assert!(p.is_present(), "a call view lists a party who left");
                format!("party:{}", p.phone_number.digits())
            }));
        }
        if let Some(view) = chat_view(conference, &actor.user_id) {
            seen.extend(view.participants.iter().map(|p| {
                assert!(p.is_present(), "a chat view lists a participant who left");
                format!("chat:{}", p.participant_id)
            }));
        }
    }
    if let Some(view) = customer_chat_view(conference) {
        seen.extend(view.participants.iter().map(|p| {
            assert!(
                p.is_present(),
                "the customer's view lists a participant who left"
            );
            format!("chat:{}", p.participant_id)
        }));
    }
    if let Some(view) = session_view(conference) {
        seen.extend(
            view.session
                .members
                .iter()
                .map(|m| format!("member:{}", m.member_id)),
        );
    }
    seen
}

/// Whom a removal event took out, as in [`everyone_in_views`].
fn removed_by(event: &Event) -> Option<String> {
    match &event.kind {
        EventKind::PartyRemoved { party, .. } => {
            Some(format!("party:{}", party.phone_number.digits()))
        }
        EventKind::ChatParticipantRemoved { participant, .. } => {
            Some(format!("chat:{}", participant.participant_id))
        }
        EventKind::SessionMemberRemoved { member, .. } => {
            Some(format!("member:{}", member.member_id))
        }
        _ => None,
    }
}

/// Every user told about an event has a view to be shown.
fn check_recipients(event: &Event, after: &Conference, now: Timestamp) {
    for recipient in recipients(event, after) {
        assert!(!recipient.changes.is_empty());
        match &recipient.audience {
            Audience::User(user) => {
                let has_view =
                    call_view(after, user, now).is_some() || chat_view(after, user).is_some();
                assert!(has_view, "{user} is told about {event:?} but has no view");
                let _ = chat_messages(after, ChatViewer::Agent(user), None);
            }
            Audience::Customer(_) => assert!(customer_chat_view(after).is_some()),
            Audience::Account(account) => {
                assert_eq!(after.as_session().map(|s| &s.account_id), Some(account));
            }
        }
    }
}

fn run_world(steps: &[(u8, Command)]) -> Result<(), TestCaseError> {
    let actors = users();
    let mut conferences: BTreeMap<ConferenceId, Conference> = BTreeMap::new();
    let mut log: Vec<Event> = Vec::new();
    let mut now = Timestamp::from_millis(1_700_000_000_000);

    for (actor_index, command) in steps {
        now = now.plus_millis(1_000);
        let actor = actors
            .get(usize::from(*actor_index) % actors.len())
            .cloned()
            .unwrap_or_else(|| Actor::new("u-x", "x"));
        let id = command.conference_id().clone();
        let current = conferences.get(&id);
        // decide never panics: a panic fails the property.
        let Ok(events) = decide(current, &actor, command.clone(), now) else {
            continue;
        };
        prop_assert!(
            !events.is_empty(),
            "an accepted command has effects: {command:?}"
        );

        let mut state = current.cloned();
        let first_version = current.map_or(1, |c| c.version + 1);
        for (expected_version, event) in (first_version..).zip(&events) {
            prop_assert_eq!(&event.conference_id, &id);
            prop_assert_eq!(event.version, expected_version, "versions go up by one");
            let next = match apply(state, event) {
                Ok(next) => next,
                Err(error) => {
                    return Err(TestCaseError::fail(format!(
                        "decide's event {event:?} does not apply: {error}"
                    )));
                }
            };
            check_recipients(event, &next, now);

            if let EventKind::PartyRemoved { party, .. } = &event.kind {
                let owner = next.as_call().map(|call| call.owner.clone());
                prop_assert!(
                    party.user_id.is_none() || party.user_id != owner,
                    "the owner was removed: {:?}",
                    event
                );
            }
            state = Some(next);
        }
        let Some(state) = state else {
            return Err(TestCaseError::fail("no state after accepted events"));
        };

        let in_views = everyone_in_views(&state, now);
        for event in &events {
            if let Some(removed) = removed_by(event) {
                prop_assert!(
                    !in_views.contains(&removed),
                    "{} is still in a view after {:?}",
                    removed,
                    event
                );
            }
        }
        if let Some(session) = state.as_session()
            && session.ended
        {
            prop_assert!(session.members_on_call().next().is_none());
        }
        for actor in &actors {
            let _ = is_listed_for(&state, actor);
        }
        log.extend(events);
        conferences.insert(id, state);
    }

    // Replaying each conference's log from nothing rebuilds it exactly,
    // also after a trip through JSON (the store keeps events as JSON).
    let stored = serde_json::to_string(&log).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let reloaded: Vec<Event> =
        serde_json::from_str(&stored).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&reloaded, &log);
    for (id, conference) in &conferences {
        let own = || log.iter().filter(|event| &event.conference_id == id);
        let rebuilt = replay(own()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(rebuilt.as_ref(), Some(conference));
        let versions: Vec<u64> = own().map(|event| event.version).collect();
        let expected: Vec<u64> = (1..=conference.version).collect();
        prop_assert_eq!(versions, expected);
    }
    let rebuilt_from_json: Vec<Option<Conference>> = conferences
        .keys()
        .map(|id| {
            replay(reloaded.iter().filter(|event| &event.conference_id == id))
                .ok()
                .flatten()
        })
        .collect();
    prop_assert_eq!(
        rebuilt_from_json,
        conferences.values().cloned().map(Some).collect::<Vec<_>>()
    );
    Ok(())
}

/// A world starts with one of each kind of conference, created by a user who
/// may create it, with random sizes, and a chat that other agents were invited
/// to (by Invite or Consult) and joined. Steps are (actor index, command).
fn world_steps() -> impl Strategy<Value = Vec<(u8, Command)>> {
    let start = (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(parties, members, history, a0_consults, a2_consults)| {
            let step = |a: u8, b: u8, c: u8| Step {
                actor: 0,
                operation: 0,
                a,
                b,
                c,
                text: None,
            };
            let invite = |user: u8, consult: bool| {
                let chat = ConferenceId::new(CHAT_IDS[0]);
                if consult {
                    Command::ConsultInChat {
                        chat,
                        target_user: user_id(user),
                    }
                } else {
                    Command::InviteToChat {
                        chat,
                        target_user: user_id(user),
                    }
                }
            };
            let accept = |participant: &str| Command::AcceptChat {
                chat: ConferenceId::new(CHAT_IDS[0]),
                participant_id: ParticipantId::new(participant),
                nickname: participant.to_owned(),
            };
            vec![
                // a0 creates call-0 with 1 to 3 other lines among 1001, 1002, 1099, 5550.
                (0, creation(&step(0, 1 + parties % 2, parties / 2))),
                // a1 creates chat-0 as participant p-1.
                (1, creation(&step(1, 0, 1 + 4 * (history % 3)))),
                (1, invite(0, a0_consults)),
                (0, accept("p-0")),
                (1, invite(2, a2_consults)),
                (2, accept("p-2")),
                // e0 creates sess-0 in acc-0 with 1 to 3 members.
                (4, creation(&step(2, members, 2 * (members % 3)))),
            ]
        });
    let more = proptest::collection::vec(step(), 0..80).prop_map(|steps| {
        steps
            .iter()
            .map(|s| (actor_for(s), command(s)))
            .collect::<Vec<_>>()
    });
    (start, more).prop_map(|(mut steps, more)| {
        steps.extend(more);
        steps
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_the_invariants(steps in world_steps()) {
        run_world(&steps)?;
    }

    /// Whatever the actor and the command, decide answers without panicking,
    /// on an empty world too.
    #[test]
    fn decide_never_panics_on_a_missing_conference(step in step()) {
        let actors = users();
        let actor = actors.get(usize::from(step.actor) % actors.len()).cloned();
        if let Some(actor) = actor {
            let _ = decide(None, &actor, command(&step), Timestamp::from_millis(0));
        }
    }
}
