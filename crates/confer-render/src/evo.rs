//! The domain session as Evo's `SessionInfo`, through the generated wire types.
//!
//! Every field of the seed's table is written, with its seed type, on every reply: strings the
//! domain has no value for are the empty string (ServiceStack clients read an absent string and
//! `""` alike, and a client written against the seed sample finds every key it knows). What each
//! string holds:
//!
//! | field | value |
//! |---|---|
//! | `id` | the session id |
//! | `accountId`, `accountName` | the session's account |
//! | `customerId`, `customerName` | as given at creation, else `""` |
//! | `customerBreadcrumb` | `[{id: customerId, name: customerName}]` when the session has a customer, else `[]` |
//! | `endpointId`, `endpointName` | as given at creation, else `""` |
//! | `dateCompleted` | when the session ended (ISO 8601 UTC), `""` while it goes on |
//! | `destination`, `toAddress`, `fromAddress`, `fromName`, `fromPhoneNumber`, `callbackNumber`, `displayName`, `callSid`, `conferenceSid`, `outcome` | as given at creation, else `""` |
//! | `answeredById`, `answeredByName` | the first member in the `Agent` role now in the session (its endpoint id, else its identity; its display name, else its identity), else `""` |
//! | `mostRecentParticipantCallSid` | the `callSid` (member id) of the member added last that is still in the session, else `""` |
//! | `queueMemberId`, `ringQueueId`, `holdQueueName`, `heldByUserId`, `consoleData` | `""`: Confer has no queues, holds or console data |
//! | `wasMissed` | `false`: Confer records no ringing that went unanswered |
//! | `dateCreated`, `dateLastModified` | ISO 8601 UTC with milliseconds (`2014-02-13T16:20:59.000Z`) |
//! | `createdBy`, `lastModifiedBy` | the user id of who created / last changed the session |
//! | `log[]` | every log line, oldest first: `date` (ISO 8601 UTC) and `message` (`agent@example.com removed +15550101`) |
//!
//! Members (`SessionMemberInfo`) have no id field on the wire; a member's id is written as its
//! **`callSid`**, the field Evo itself addresses conference members by
//! (`PATCH /sessions/{id}/conference/members/{callSid}`). So `{memberId}` and `MemberToRemove`
//! accept what a client reads there, as well as the member's phone number or email `identity`.
//! A member's `endpointId` and `avatarUrl` are `""` unless known, `displayName` falls back to
//! the identity, and `applicationData` is the member's map (`{}` when empty).

use confer_core::{
    Conference,
    conference::session::{
        Channel, DialState, Direction, HoldReason, MemberCallState, MemberRole, QueueState,
        SessionCallState, SessionMember,
    },
};
use confer_model::evo::{
    CustomerBreadcrumb, FlowChannels, SessionCallState as WireCallState, SessionDialState,
    SessionDirections, SessionHoldReasons, SessionInfo, SessionLogInfo, SessionMemberCallState,
    SessionMemberInfo, SessionMemberRoles, SessionQueueStates,
};

/// The session as `SessionInfo`; `None` when the conference is not a session.
pub fn session_info(conference: &Conference) -> Option<SessionInfo> {
    let session = conference.as_session()?;
    let details = &session.details;
    let text = |value: &Option<String>| Some(value.clone().unwrap_or_default());
    let breadcrumb = if details.customer_id.is_some() || details.customer_name.is_some() {
        vec![CustomerBreadcrumb {
            id: text(&details.customer_id),
            name: text(&details.customer_name),
        }]
    } else {
        Vec::new()
    };
    let answered_by = session
        .members
        .iter()
        .find(|member| member.role == MemberRole::Agent);
    Some(SessionInfo {
        dial_state: dial_state(session.dial_state),
        call_state: call_state(session.call_state),
        queue_state: queue_state(session.queue_state),
        account_id: Some(session.account_id.to_string()),
        account_name: Some(session.account_name.clone()),
        customer_id: text(&details.customer_id),
        customer_breadcrumb: breadcrumb,
        customer_name: text(&details.customer_name),
        endpoint_id: text(&details.endpoint_id),
        endpoint_name: text(&details.endpoint_name),
        date_completed: Some(
            session
                .date_completed
                .map(|date| date.to_iso8601_utc())
                .unwrap_or_default(),
        ),
        destination: text(&details.destination),
        to_address: text(&details.to_address),
        from_address: text(&details.from_address),
        from_name: text(&details.from_name),
        answered_by_name: Some(
            answered_by
                .map(|member| {
                    member
                        .display_name
                        .clone()
                        .unwrap_or_else(|| member.identity.clone())
                })
                .unwrap_or_default(),
        ),
        queue_member_id: Some(String::new()),
        channel: channel(session.channel),
        ended: session.ended,
        outcome: text(&details.outcome),
        call_sid: text(&details.call_sid),
        console_data: Some(String::new()),
        hold_queue_name: Some(String::new()),
        held_by_user_id: Some(String::new()),
        hold_reason: hold_reason(session.hold_reason),
        conference_sid: text(&details.conference_sid),
        display_name: text(&details.display_name),
        log: session
            .log
            .iter()
            .map(|entry| SessionLogInfo {
                date: Some(entry.date.to_iso8601_utc()),
                message: Some(entry.message.clone()),
            })
            .collect(),
        members: session.members.iter().map(member_info).collect(),
        callback_number: text(&details.callback_number),
        answered_by_id: Some(
            answered_by
                .map(|member| {
                    member
                        .endpoint_id
                        .clone()
                        .unwrap_or_else(|| member.identity.clone())
                })
                .unwrap_or_default(),
        ),
        direction: direction(session.direction),
        from_phone_number: text(&details.from_phone_number),
        most_recent_participant_call_sid: Some(
            session
                .members
                .last()
                .map(|member| member.member_id.to_string())
                .unwrap_or_default(),
        ),
        was_missed: false,
        ring_queue_id: Some(String::new()),
        id: Some(conference.id.to_string()),
        date_created: Some(conference.created_at.to_iso8601_utc()),
        date_last_modified: Some(session.date_last_modified.to_iso8601_utc()),
        created_by: Some(conference.created_by.to_string()),
        last_modified_by: Some(session.last_modified_by.to_string()),
    })
}

/// One member; its id travels as `callSid` (see the module docs).
fn member_info(member: &SessionMember) -> SessionMemberInfo {
    SessionMemberInfo {
        identity: Some(member.identity.clone()),
        endpoint_id: Some(member.endpoint_id.clone().unwrap_or_default()),
        display_name: Some(
            member
                .display_name
                .clone()
                .unwrap_or_else(|| member.identity.clone()),
        ),
        is_original_member: member.is_original_member,
        avatar_url: Some(member.avatar_url.clone().unwrap_or_default()),
        application_data: member
            .application_data
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        call_state: member_call_state(member.call_state),
        role: member_role(member.role),
        call_sid: Some(member.member_id.to_string()),
        muted: member.muted,
    }
}

fn dial_state(state: DialState) -> SessionDialState {
    match state {
        DialState::None => SessionDialState::None,
        DialState::Active => SessionDialState::Active,
    }
}

fn call_state(state: SessionCallState) -> WireCallState {
    match state {
        SessionCallState::Disconnected => WireCallState::Disconnected,
        SessionCallState::Ringing => WireCallState::Ringing,
        SessionCallState::Connected => WireCallState::Connected,
        SessionCallState::Hold => WireCallState::Hold,
        SessionCallState::Passive => WireCallState::Passive,
    }
}

fn queue_state(state: QueueState) -> SessionQueueStates {
    match state {
        QueueState::None => SessionQueueStates::None,
        QueueState::Queued => SessionQueueStates::Queued,
        QueueState::Ringing => SessionQueueStates::Ringing,
        QueueState::Connected => SessionQueueStates::Connected,
        QueueState::Hold => SessionQueueStates::Hold,
        QueueState::Disconnected => SessionQueueStates::Disconnected,
    }
}

fn channel(channel: Channel) -> FlowChannels {
    match channel {
        Channel::Voice => FlowChannels::Voice,
        Channel::Chat => FlowChannels::Chat,
        Channel::Fax => FlowChannels::Fax,
    }
}

/// The wire channel in the core's terms (for `NewSession`).
pub fn channel_of(channel: FlowChannels) -> Channel {
    match channel {
        FlowChannels::Voice => Channel::Voice,
        FlowChannels::Chat => Channel::Chat,
        FlowChannels::Fax => Channel::Fax,
    }
}

fn hold_reason(reason: HoldReason) -> SessionHoldReasons {
    match reason {
        HoldReason::None => SessionHoldReasons::None,
        HoldReason::Transferring => SessionHoldReasons::Transferring,
    }
}

fn direction(direction: Direction) -> SessionDirections {
    match direction {
        Direction::Incoming => SessionDirections::Incoming,
        Direction::Outgoing => SessionDirections::Outgoing,
    }
}

/// The wire direction in the core's terms.
pub fn direction_of(direction: SessionDirections) -> Direction {
    match direction {
        SessionDirections::Incoming => Direction::Incoming,
        SessionDirections::Outgoing => Direction::Outgoing,
    }
}

fn member_call_state(state: MemberCallState) -> SessionMemberCallState {
    match state {
        MemberCallState::None => SessionMemberCallState::None,
        MemberCallState::Ringing => SessionMemberCallState::Ringing,
        MemberCallState::Connected => SessionMemberCallState::Connected,
        MemberCallState::Hold => SessionMemberCallState::Hold,
    }
}

/// The wire member call state in the core's terms.
pub fn member_call_state_of(state: SessionMemberCallState) -> MemberCallState {
    match state {
        SessionMemberCallState::None => MemberCallState::None,
        SessionMemberCallState::Ringing => MemberCallState::Ringing,
        SessionMemberCallState::Connected => MemberCallState::Connected,
        SessionMemberCallState::Hold => MemberCallState::Hold,
    }
}

fn member_role(role: MemberRole) -> SessionMemberRoles {
    match role {
        MemberRole::None => SessionMemberRoles::None,
        MemberRole::Caller => SessionMemberRoles::Caller,
        MemberRole::Agent => SessionMemberRoles::Agent,
        MemberRole::Transfer => SessionMemberRoles::Transfer,
    }
}

/// The wire member role in the core's terms.
pub fn member_role_of(role: SessionMemberRoles) -> MemberRole {
    match role {
        SessionMemberRoles::None => MemberRole::None,
        SessionMemberRoles::Caller => MemberRole::Caller,
        SessionMemberRoles::Agent => MemberRole::Agent,
        SessionMemberRoles::Transfer => MemberRole::Transfer,
    }
}

#[cfg(test)]
mod tests {
    use confer_core::{Timestamp, demo};
    use serde_json::Value;

    use super::*;

    fn demo_session() -> Conference {
        let world = demo::demo_world(Timestamp::from_millis(1_392_308_459_000)).unwrap();
        world.conference(demo::SESSION_ID).unwrap().clone()
    }

    #[test]
    fn every_seed_field_is_written_with_its_seed_type() {
        let info = session_info(&demo_session()).unwrap();
        let ours = serde_json::to_value(&info).unwrap();
        let seed: Value = serde_json::from_str(include_str!(
            "../../../spec/samples/evo/delete_chat_member_response.json"
        ))
        .unwrap();
        same_shape(&seed, &ours, "$");
    }

    /// Every key of the seed sample is present with the same JSON type (lists and maps
    /// checked element-wise where ours are not empty).
    fn same_shape(seed: &Value, ours: &Value, path: &str) {
        match (seed, ours) {
            (Value::Object(seed), Value::Object(ours)) => {
                if seed.keys().any(|key| key == "String") {
                    // A map sample (`applicationData`): any string keys.
                    return;
                }
                for (key, seed_value) in seed {
                    let ours_value = ours
                        .get(key)
                        .unwrap_or_else(|| panic!("{path}.{key} is missing"));
                    same_shape(seed_value, ours_value, &format!("{path}.{key}"));
                }
                assert_eq!(seed.len(), ours.len(), "{path} has other keys");
            }
            (Value::Array(seed), Value::Array(ours)) => {
                for item in ours {
                    same_shape(&seed[0], item, &format!("{path}[]"));
                }
            }
            (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) => {}
            _ => panic!("{path}: seed {seed} vs ours {ours}"),
        }
    }

    #[test]
    fn members_carry_their_id_as_call_sid() {
        let info = session_info(&demo_session()).unwrap();
        let sids: Vec<_> = info
            .members
            .iter()
            .map(|member| member.call_sid.as_deref().unwrap())
            .collect();
        assert_eq!(sids, ["m1", "m2", "m3"]);
        assert_eq!(info.most_recent_participant_call_sid.as_deref(), Some("m3"));
        assert_eq!(info.answered_by_id.as_deref(), Some("agent@example.com"));
        assert_eq!(info.answered_by_name.as_deref(), Some("Agent"));
        assert_eq!(info.id.as_deref(), Some(demo::SESSION_ID));
        assert_eq!(info.date_completed.as_deref(), Some(""));
    }
}
