//! The seeds' world, built through the same commands and rules as everything else.
//!
//! Users, ids and data come from the seed documents where they give them
//! (call `01RCC3N118B1V0SL8O7GK2LAES00000O`, chat `00010a9FSGFP001F`, the chat's
//! user data, participant and user ids). Where the seeds are silent the values
//! are invented and marked so: the user ids of the voice users and of the
//! supervisor, devices other than agent15000's, the earlier chat messages, and
//! the Evo member ids.

use serde::Serialize;
use serde_json::{Value, json};

use crate::actor::{Actor, Role};
use crate::command::{
    Command, HistoryMessage, MessageParameters, NewCall, NewChat, NewParty, NewSession,
    NewSessionMember,
};
use crate::conference::Conference;
use crate::conference::chat::ChatMessageKind;
use crate::conference::session::{Channel, Direction, MemberCallState, MemberRole, SessionDetails};
use crate::conference::voice::{CallState, CallType};
use crate::decide::execute;
use crate::error::DomainError;
use crate::event::Event;
use crate::ids::{ConferenceId, MemberId, ParticipantId, UserId};
use crate::time::Timestamp;
use crate::user_data::UserData;

/// The voice call of seed 000.
pub const VOICE_CALL_ID: &str = "01RCC3N118B1V0SL8O7GK2LAES00000O";
/// Its `connId`.
pub const VOICE_CONN_ID: &str = "0071027198180018";
/// The chat of seed 003.
pub const CHAT_ID: &str = "00010a9FSGFP001F";
/// test_consult's participant id in the chat.
pub const TEST_CONSULT_PARTICIPANT_ID: &str = "00AF52FCF0C0002F";
/// chat_consult's participant id in the chat.
pub const CHAT_CONSULT_PARTICIPANT_ID: &str = "00AF52FCF0C10030";
/// The customer's participant id in the chat.
pub const CUSTOMER_PARTICIPANT_ID: &str = "00AF52FCF09E002D";
/// The Evo session.
pub const SESSION_ID: &str = "demo-session";
/// The Evo account.
pub const ACCOUNT_ID: &str = "demo-account";
/// Member ids of the session's members (invented: SessionInfo shows none).
pub const CALLER_MEMBER_ID: &str = "m1";
pub const AGENT_MEMBER_ID: &str = "m2";
pub const TRANSFER_MEMBER_ID: &str = "m3";

/// A user of the demo, as the server loads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoUser {
    pub username: &'static str,
    pub user_id: &'static str,
    pub roles: &'static [Role],
    pub phone_number: Option<&'static str>,
    pub email: Option<&'static str>,
    pub account: Option<&'static str>,
    pub device_id: Option<&'static str>,
}

impl DemoUser {
    /// The user as an authenticated actor.
    pub fn actor(&self) -> Actor {
        let mut actor = Actor::new(self.user_id, self.username);
        actor.roles = self.roles.iter().copied().collect();
        actor.phone_number = self.phone_number.map(Into::into);
        actor.email = self.email.map(str::to_owned);
        actor.device_id = self.device_id.map(Into::into);
        actor.accounts = self.account.map(Into::into).into_iter().collect();
        actor
    }
}

/// The demo users.
pub const DEMO_USERS: [DemoUser; 6] = [
    DemoUser {
        username: "agent15000",
        // Invented: the seed shows no user id for the voice users.
        user_id: "a15000c0ffee4e0b9d6a2f7c3b1e5d00",
        roles: &[Role::Agent],
        phone_number: Some("15000"),
        email: None,
        account: None,
        device_id: Some("631608b3-ceb1-472b-ba05-2ae39555b0d1"),
    },
    DemoUser {
        username: "agent15002",
        user_id: "a15002c0ffee4e0b9d6a2f7c3b1e5d02",
        roles: &[Role::Agent],
        phone_number: Some("15002"),
        email: None,
        account: None,
        device_id: Some("7b5e2c1a-9d4f-4e3b-8a6c-15002d0e0002"),
    },
    DemoUser {
        username: "supervisor",
        user_id: "5c0e7a1d2b3f4c5d9e8f7a6b5c4d3e2f",
        roles: &[Role::Supervisor],
        phone_number: Some("15099"),
        email: None,
        account: None,
        device_id: Some("0d9c8b7a-6f5e-4d3c-9b2a-15099e0e0099"),
    },
    DemoUser {
        username: "test_consult",
        user_id: "914165a5841348aa94ccfccd56917443",
        roles: &[Role::Agent],
        phone_number: None,
        email: None,
        account: None,
        device_id: None,
    },
    DemoUser {
        username: "chat_consult",
        user_id: "c30d06daa1ea43b8be79f9b071f30d70",
        roles: &[Role::Agent],
        phone_number: None,
        email: None,
        account: None,
        device_id: None,
    },
    DemoUser {
        username: "evo-user",
        user_id: "e70e7a5e4f3d4c2b9a1f0e9d8c7b6a50",
        roles: &[Role::User],
        phone_number: None,
        email: Some("agent@example.com"),
        account: Some(ACCOUNT_ID),
        device_id: None,
    },
];

/// The demo user with this username.
pub fn demo_user(username: &str) -> Option<&'static DemoUser> {
    DEMO_USERS.iter().find(|user| user.username == username)
}

/// The demo user with this username, as an actor.
pub fn demo_actor(username: &str) -> Option<Actor> {
    demo_user(username).map(DemoUser::actor)
}

/// The user data of the chat, as seed 003 prints it (34 pairs, in order).
pub fn seed_chat_user_data() -> UserData {
    let pairs: [(&str, Value); 34] = [
        ("IdentifyCreateContact", json!("3")),
        ("FirstName", json!("test_consult_client")),
        ("LastName", json!("Lastname")),
        (
            "RTargetObjectSelected",
            json!("Chatdistributionforprocessing"),
        ),
        ("RVQID", json!("")),
        ("ChatServerAppName", json!("ChatServer")),
        ("PegAGChatdistributionforprocessing", json!(1)),
        ("ChatServerHost", json!("GWS-gf81")),
        ("RTargetObjSelDBID", json!("157")),
        ("CBR-IT-path_DBIDs", json!("")),
        ("ChatServerPort", json!("7030")),
        ("CBR-Interaction_cost", json!("")),
        ("CBR-contract_DBIDs", json!("")),
        ("ContactId", json!("00010a9FSGFP000M")),
        ("RTargetAgentSelected", json!("GWS1")),
        ("RTargetTypeSelected", json!("2")),
        ("RTargetAgentGroup", json!("Chatdistributionforprocessing")),
        ("RTargetRuleSelected", json!("")),
        ("RTargetPlaceSelected", json!("GWS1")),
        ("CBR-actual_volume", json!("")),
        ("RTenant", json!("Environment")),
        ("ChatServerDBID", json!("175")),
        ("RRequestedSkills", Value::Null),
        ("ChatServerModeHA", json!("true")),
        ("RRequestedSkillCombination", json!("")),
        ("RVQDBID", json!("")),
        ("RStrategyDBID", json!("894")),
        ("CustomerSegment", json!("default")),
        ("ServiceType", json!("default")),
        ("ServiceObjective", json!(0)),
        ("RTargetRequested", json!("Chatdistributionforprocessing")),
        ("EmailAddress", json!("Email@abc.com")),
        ("RStrategyName", json!("Chatinboundstrategy")),
        ("Subject", json!("Customersupport")),
    ];
    pairs.into_iter().collect()
}

/// A set of conferences and their event logs, kept in memory: the demo's
/// world, and a minimal store for tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemoWorld {
    /// The current state of each conference, in creation order.
    pub conferences: Vec<Conference>,
    /// Every event, in the order it happened.
    pub events: Vec<Event>,
}

impl DemoWorld {
    /// The conference with this id.
    pub fn conference(&self, id: &str) -> Option<&Conference> {
        self.conferences
            .iter()
            .find(|conference| conference.id.as_str() == id)
    }

    /// Decides `command` against the current state, applies and keeps the events.
    pub fn execute(
        &mut self,
        actor: &Actor,
        command: Command,
        now: Timestamp,
    ) -> Result<Vec<Event>, DomainError> {
        let position = self
            .conferences
            .iter()
            .position(|conference| &conference.id == command.conference_id());
        let current = position.and_then(|index| self.conferences.get(index));
        let (next, events) = execute(current, actor, command, now)?;
        match position.and_then(|index| self.conferences.get_mut(index)) {
            Some(slot) => *slot = next,
            None => self.conferences.push(next),
        }
        self.events.extend(events.iter().cloned());
        Ok(events)
    }

    /// The events of one conference, oldest first.
    pub fn events_of(&self, id: &str) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|event| event.conference_id.as_str() == id)
            .collect()
    }
}

fn actor(username: &str) -> Result<Actor, DomainError> {
    demo_actor(username).ok_or(DomainError::NotAuthenticated)
}

/// The seeds' world just before each seed's removal, with `now` the time of
/// those removals: the call started 43 s earlier (the seed shows `duration` 43).
pub fn demo_world(now: Timestamp) -> Result<DemoWorld, DomainError> {
    let mut world = DemoWorld::default();
    let seconds_ago = |seconds: i64| now.plus_millis(-1000 * seconds);

    let agent15000 = actor("agent15000")?;
    world.execute(
        &agent15000,
        Command::CreateCall(NewCall {
            id: ConferenceId::new(VOICE_CALL_ID),
            conn_id: VOICE_CONN_ID.to_owned(),
            call_uuid: VOICE_CALL_ID.to_owned(),
            dnis: "15001".to_owned(),
            call_type: CallType::Internal,
            state: CallState::Established,
            other_parties: vec![
                NewParty {
                    phone_number: "15001".to_owned(),
                    user_id: None,
                },
                NewParty {
                    phone_number: "15002".to_owned(),
                    user_id: demo_user("agent15002").map(|user| UserId::new(user.user_id)),
                },
            ],
            user_data: UserData::new(),
        }),
        seconds_ago(43),
    )?;

    let test_consult = actor("test_consult")?;
    let chat_consult = actor("chat_consult")?;
    let chat_id = ConferenceId::new(CHAT_ID);
    let customer = ParticipantId::new(CUSTOMER_PARTICIPANT_ID);
    let agent = ParticipantId::new(TEST_CONSULT_PARTICIPANT_ID);
    // Invented: the seed does not show the first seven log entries.
    let history = [
        (&customer, ChatMessageKind::ParticipantJoined, None, 300),
        (
            &customer,
            ChatMessageKind::Text,
            Some("Hello, my order has not arrived."),
            290,
        ),
        (&agent, ChatMessageKind::ParticipantJoined, None, 280),
        (
            &agent,
            ChatMessageKind::Text,
            Some("Hi, I am sorry to hear that. Let me ask a colleague."),
            270,
        ),
        (&customer, ChatMessageKind::Text, Some("Thank you."), 260),
    ]
    .into_iter()
    .map(|(from, kind, text, ago)| HistoryMessage {
        from: from.clone(),
        kind,
        text: text.map(str::to_owned),
        timestamp: seconds_ago(ago),
    })
    .collect();
    world.execute(
        &test_consult,
        Command::CreateChat(NewChat {
            id: chat_id.clone(),
            agent_participant_id: agent.clone(),
            agent_nickname: "test_consult".to_owned(),
            customer_participant_id: customer.clone(),
            customer_nickname: "test_consult_clientL".to_owned(),
            user_data: seed_chat_user_data(),
            history,
        }),
        seconds_ago(280),
    )?;
    world.execute(
        &test_consult,
        Command::InviteToChat {
            chat: chat_id.clone(),
            target_user: chat_consult.user_id.clone(),
        },
        seconds_ago(250),
    )?;
    world.execute(
        &chat_consult,
        Command::AcceptChat {
            chat: chat_id.clone(),
            participant_id: ParticipantId::new(CHAT_CONSULT_PARTICIPANT_ID),
            nickname: "chat_consult".to_owned(),
        },
        seconds_ago(240),
    )?;
    world.execute(
        &chat_consult,
        Command::SendChatMessage {
            chat: chat_id,
            message: MessageParameters::text(
                "Hello, I am chat_consult. I will check your delivery.",
            ),
        },
        seconds_ago(230),
    )?;

    let evo_user = actor("evo-user")?;
    let session_id = ConferenceId::new(SESSION_ID);
    world.execute(
        &evo_user,
        Command::CreateSession(NewSession {
            id: session_id.clone(),
            account_id: ACCOUNT_ID.into(),
            account_name: "Demo Account".to_owned(),
            channel: Channel::Voice,
            direction: Direction::Incoming,
            members: vec![
                NewSessionMember {
                    member_id: MemberId::new(CALLER_MEMBER_ID),
                    identity: "+15550100".to_owned(),
                    display_name: Some("Caller".to_owned()),
                    role: MemberRole::Caller,
                    call_state: MemberCallState::Connected,
                },
                NewSessionMember {
                    member_id: MemberId::new(AGENT_MEMBER_ID),
                    identity: "agent@example.com".to_owned(),
                    display_name: Some("Agent".to_owned()),
                    role: MemberRole::Agent,
                    call_state: MemberCallState::Connected,
                },
            ],
            details: Box::new(SessionDetails {
                from_address: Some("+15550100".to_owned()),
                from_phone_number: Some("+15550100".to_owned()),
                to_address: Some("agent@example.com".to_owned()),
                display_name: Some("Incoming call from +15550100".to_owned()),
                ..SessionDetails::default()
            }),
        }),
        seconds_ago(120),
    )?;
    world.execute(
        &evo_user,
        Command::InviteSessionMember {
            session: session_id,
            member_id: MemberId::new(TRANSFER_MEMBER_ID),
            member_to_add: "+15550101".to_owned(),
            display_name: Some("Transfer".to_owned()),
            role: MemberRole::Transfer,
        },
        seconds_ago(60),
    )?;
    Ok(world)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::replay;
    use crate::view::conferences_listed_for;

    const NOW: Timestamp = Timestamp::from_millis(1_392_308_459_000);

    #[test]
    fn the_demo_world_builds_and_replays() {
        let world = demo_world(NOW).expect("the demo world builds");
        assert_eq!(world.conferences.len(), 3);
        for conference in &world.conferences {
            let rebuilt = replay(world.events_of(conference.id.as_str())).expect("replays");
            assert_eq!(rebuilt.as_ref(), Some(conference));
        }
        let stored = serde_json::to_string(&world.events).expect("events serialize");
        let reloaded: Vec<Event> = serde_json::from_str(&stored).expect("events deserialize");
        assert_eq!(reloaded, world.events);
    }

    #[test]
    fn each_demo_user_sees_their_conferences() {
        let world = demo_world(NOW).expect("the demo world builds");
        let listed = |username: &str| -> Vec<String> {
            let actor = demo_actor(username).expect("a demo user");
            conferences_listed_for(&world.conferences, &actor)
                .iter()
                .map(|conference| conference.id.to_string())
                .collect()
        };
        assert_eq!(listed("agent15000"), [VOICE_CALL_ID]);
        assert_eq!(listed("agent15002"), [VOICE_CALL_ID]);
        assert!(listed("supervisor").is_empty());
        assert_eq!(listed("test_consult"), [CHAT_ID]);
        assert_eq!(listed("chat_consult"), [CHAT_ID]);
        assert_eq!(listed("evo-user"), [SESSION_ID]);
    }

    #[test]
    fn demo_users_are_data() {
        let users = serde_json::to_value(DEMO_USERS).expect("users serialize");
        assert_eq!(users[0]["username"], "agent15000");
        assert_eq!(
            users[0]["device_id"],
            "631608b3-ceb1-472b-ba05-2ae39555b0d1"
        );
        assert_eq!(users[5]["roles"], serde_json::json!(["User"]));
        let evo = demo_actor("evo-user").expect("evo-user");
        assert!(evo.is_evo_user_in(&ACCOUNT_ID.into()));
        assert_eq!(evo.display_identity(), "agent@example.com");
        assert!(demo_actor("nobody").is_none());
    }

    #[test]
    fn the_session_has_three_connected_members() {
        let world = demo_world(NOW).expect("the demo world builds");
        let session = world
            .conference(SESSION_ID)
            .and_then(Conference::as_session)
            .expect("the session");
        let members: Vec<(&str, MemberRole, MemberCallState)> = session
            .members
            .iter()
            .map(|member| (member.identity.as_str(), member.role, member.call_state))
            .collect();
        assert_eq!(
            members,
            [
                ("+15550100", MemberRole::Caller, MemberCallState::Connected),
                (
                    "agent@example.com",
                    MemberRole::Agent,
                    MemberCallState::Connected
                ),
                (
                    "+15550101",
                    MemberRole::Transfer,
                    MemberCallState::Connected
                ),
            ]
        );
        assert_eq!(session.channel, Channel::Voice);
        assert_eq!(session.direction, Direction::Incoming);
    }
}
