//! The caller's views (`confer_core::view`) as the generated wire models (`confer_model`), then as
//! their protobuf messages through the generated conversions: a gRPC `Call` is the GWS `Call` the
//! same user would get over REST, a `SessionInfo` is Evo's.
//!
//! URIs point at the REST dialects (`{public url}/api/v2/...`), as GWS writes them, so a caller can
//! pass a `ChatParticipant.uri` straight back as `target_uri`.

use confer_core::{
    Actor, Conference, Timestamp, UserId,
    conference::{
        chat::{ChatParticipant, ParticipantKind, Visibility},
        session::{
            Channel, DialState, Direction, HoldReason, MemberCallState, MemberRole, QueueState,
            SessionCallState,
        },
        voice::{CallState, CallType, Mute, Party},
    },
    user_data::UserData,
    view::{self, CallView, ChatView, ChatViewer, MessageView, SessionView},
};
use confer_model::{evo, gws_chat, gws_common, gws_voice, proto};
use indexmap::IndexMap;
use serde::Serialize;

/// Where the REST dialects are reached (`http://host:port`, no trailing slash).
#[derive(Debug, Clone)]
pub struct Urls {
    pub base: String,
}

impl Urls {
    pub fn call(&self, id: &str) -> String {
        format!("{}/api/v2/me/calls/{id}", self.base)
    }

    pub fn chat(&self, id: &str) -> String {
        format!("{}/api/v2/chats/{id}", self.base)
    }

    pub fn user(&self, id: &UserId) -> String {
        format!("{}/api/v2/users/{id}", self.base)
    }

    pub fn device(&self, id: &str) -> String {
        format!("{}/api/v2/devices/{id}", self.base)
    }
}

/// A core enum's wire name: the core names its variants as the dialects do (`Established`,
/// `SendDtmf`), and serializes them by that name.
fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        // Unit variants always serialize as strings; anything else would be a core change this
        // module must follow, and an empty name shows up in tests.
        _ => String::new(),
    }
}

fn json_map(data: &UserData) -> IndexMap<String, serde_json::Value> {
    data.iter()
        .map(|(key, value)| (key.to_owned(), value.clone()))
        .collect()
}

/// GWS chat timestamps: ISO 8601 with milliseconds and a numeric offset (`...000+0000`).
fn gws_timestamp(at: Timestamp) -> String {
    let utc = at.to_iso8601_utc();
    match utc.strip_suffix('Z') {
        Some(local) => format!("{local}+0000"),
        None => utc,
    }
}

// --- voice ------------------------------------------------------------------------------------------

fn call_state(state: CallState) -> gws_voice::CallState {
    match state {
        CallState::Dialing => gws_voice::CallState::Dialing,
        CallState::Ringing => gws_voice::CallState::Ringing,
        CallState::Established => gws_voice::CallState::Established,
        CallState::Held => gws_voice::CallState::Held,
        CallState::Released => gws_voice::CallState::Released,
    }
}

fn call_type(kind: CallType) -> gws_voice::CallType {
    match kind {
        CallType::Internal => gws_voice::CallType::Internal,
        CallType::Inbound => gws_voice::CallType::Inbound,
        CallType::Outbound => gws_voice::CallType::Outbound,
        CallType::Consult => gws_voice::CallType::Consult,
    }
}

fn call_participant(party: &Party) -> gws_voice::CallParticipant {
    let number = party.phone_number.as_str();
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    gws_voice::CallParticipant {
        // GWS leaves it empty for internal extensions (seed 000); a number written in
        // international form has one.
        e164_number: if number.trim_start().starts_with('+') {
            format!("+{digits}")
        } else {
            String::new()
        },
        formatted_phone_number: number.to_owned(),
        phone_number: number.to_owned(),
        digits,
    }
}

/// The GWS `Call` of a call view, for `viewer`.
pub fn call_model(view: &CallView, viewer: &Actor, urls: &Urls) -> gws_voice::Call {
    let id = view.conference_id.as_str();
    gws_voice::Call {
        id: id.to_owned(),
        state: call_state(view.state),
        call_uuid: view.call_uuid.clone(),
        conn_id: view.conn_id.clone(),
        device_uri: viewer
            .device_id
            .as_ref()
            .map(|device| urls.device(device.as_str()))
            .unwrap_or_default(),
        participants: view.participants.iter().map(call_participant).collect(),
        dnis: view.dnis.clone(),
        call_type: call_type(view.call_type),
        capabilities: view
            .capabilities
            .iter()
            .map(|capability| gws_voice::CallCapability::from_wire(&wire_name(capability)))
            .collect(),
        duration: view.duration_seconds.to_string(),
        mute: match view.mute {
            Mute::Off => gws_voice::MuteState::Off,
            Mute::On => gws_voice::MuteState::On,
        },
        // Agents are not told they are monitored.
        supervisor_listening_in: false,
        monitored_user_muted: false,
        monitoring: view.monitoring.is_some(),
        uri: urls.call(id),
        path: format!("/calls/{id}"),
        user_data: json_map(&view.user_data),
        recording_state: None,
        parent_call_uri: None,
        parent_call_path: None,
    }
}

/// The caller's `Call`, or `None` when they never took part in it.
pub fn call(
    conference: &Conference,
    viewer: &Actor,
    urls: &Urls,
    now: Timestamp,
) -> Option<proto::Call> {
    view::call_view(conference, &viewer.user_id, now).map(|v| call_model(&v, viewer, urls).into())
}

/// A GWS `CallStateChangeMessage` for `viewer`.
pub fn call_notification(
    conference: &Conference,
    viewer: &Actor,
    urls: &Urls,
    at: Timestamp,
    kind: &str,
) -> Option<proto::CallStateChangeMessage> {
    let view = view::call_view(conference, &viewer.user_id, at)?;
    let phone_number = view
        .phone_number
        .as_ref()
        .map(|number| number.as_str().to_owned())
        .or_else(|| viewer.phone_number.as_ref().map(|n| n.as_str().to_owned()))
        .unwrap_or_default();
    let message = gws_voice::CallStateChangeMessage {
        notification_type: gws_voice::CallNotificationType::from_wire(kind),
        call: call_model(&view, viewer, urls),
        phone_number,
        // What seed 000 shows for an ordinary call.
        extensions: [("BusinessCall".to_owned(), serde_json::Value::from(0))]
            .into_iter()
            .collect(),
        message_type: gws_common::NotificationMessageType::CallStateChangeMessage,
        reference_id: None,
    };
    Some(message.into())
}

// --- chat -------------------------------------------------------------------------------------------

fn visibility(value: Visibility) -> gws_chat::Visibility {
    match value {
        Visibility::All => gws_chat::Visibility::All,
        Visibility::Agents => gws_chat::Visibility::Agents,
    }
}

fn chat_participant(participant: &ChatParticipant, urls: &Urls) -> gws_chat::ChatParticipant {
    gws_chat::ChatParticipant {
        nickname: participant.nickname.clone(),
        r#type: match participant.kind {
            ParticipantKind::Agent => gws_chat::ChatParticipantType::Agent,
            ParticipantKind::Customer => gws_chat::ChatParticipantType::Customer,
        },
        uri: participant.user_id.as_ref().map(|user| urls.user(user)),
        visibility: visibility(participant.visibility),
        participant_id: participant.participant_id.to_string(),
    }
}

/// The GWS `Chat` of an agent's chat view.
pub fn chat_model(view: &ChatView, urls: &Urls) -> gws_chat::Chat {
    let id = view.conference_id.as_str();
    gws_chat::Chat {
        user_data: json_map(&view.user_data),
        state: gws_chat::ChatState::from_wire(&wire_name(&view.state)),
        capabilities: view
            .capabilities
            .iter()
            .map(|capability| gws_chat::ChatCapability::from_wire(&wire_name(capability)))
            .collect(),
        uri: urls.chat(id),
        participants: view
            .participants
            .iter()
            .map(|participant| chat_participant(participant, urls))
            .collect(),
        id: id.to_owned(),
    }
}

/// The caller's `Chat`, or `None` when they never had a part in it.
pub fn chat(conference: &Conference, viewer: &UserId, urls: &Urls) -> Option<proto::Chat> {
    view::chat_view(conference, viewer).map(|v| chat_model(&v, urls).into())
}

/// A GWS `ChatStateChangeMessage` for `viewer`.
pub fn chat_notification(
    conference: &Conference,
    viewer: &UserId,
    urls: &Urls,
    kind: &str,
) -> Option<proto::ChatStateChangeMessage> {
    let view = view::chat_view(conference, viewer)?;
    let message = gws_chat::ChatStateChangeMessage {
        reference_id: None,
        chat: chat_model(&view, urls),
        notification_type: gws_chat::ChatNotificationType::from_wire(kind),
        message_type: gws_common::NotificationMessageType::ChatStateChangeMessage,
    };
    Some(message.into())
}

fn log_entry(message: &MessageView, urls: &Urls) -> gws_chat::ChatLogEntry {
    gws_chat::ChatLogEntry {
        index: i64::try_from(message.index).unwrap_or(i64::MAX),
        from: chat_participant(&message.from, urls),
        text: message.text.clone(),
        timestamp: gws_timestamp(message.timestamp),
        visibility: visibility(message.visibility),
        r#type: gws_chat::ChatLogEntryType::from_wire(&wire_name(&message.kind)),
        timestamp_seconds: message.timestamp.millis(),
        message_type: message
            .message_type
            .as_deref()
            .map(gws_chat::ChatMessageType::from_wire),
    }
}

/// A GWS `MessageLogUpdated` with the entries `indices` that `viewer` (an agent) may read; `None`
/// when there are none.
pub fn chat_messages_notification(
    conference: &Conference,
    viewer: &UserId,
    urls: &Urls,
    indices: &[u64],
) -> Option<proto::MessageLogUpdated> {
    let messages = view::chat_messages(conference, ChatViewer::Agent(viewer), Some(indices));
    if messages.is_empty() {
        return None;
    }
    let message = gws_chat::MessageLogUpdated {
        messages: messages.iter().map(|m| log_entry(m, urls)).collect(),
        notification_type: gws_chat::ChatNotificationType::NewMessages,
        message_type: gws_common::NotificationMessageType::MessageLogUpdated,
        chat_uri: urls.chat(conference.id.as_str()),
        reference_id: None,
    };
    Some(message.into())
}

// --- Evo session ------------------------------------------------------------------------------------

/// Evo's `SessionInfo` of a session view.
pub fn session_model(view: &SessionView) -> evo::SessionInfo {
    let session = &view.session;
    let details = &session.details;
    evo::SessionInfo {
        dial_state: match session.dial_state {
            DialState::None => evo::SessionDialState::None,
            DialState::Active => evo::SessionDialState::Active,
        },
        call_state: match session.call_state {
            SessionCallState::Disconnected => evo::SessionCallState::Disconnected,
            SessionCallState::Ringing => evo::SessionCallState::Ringing,
            SessionCallState::Connected => evo::SessionCallState::Connected,
            SessionCallState::Hold => evo::SessionCallState::Hold,
            SessionCallState::Passive => evo::SessionCallState::Passive,
        },
        queue_state: match session.queue_state {
            QueueState::None => evo::SessionQueueStates::None,
            QueueState::Queued => evo::SessionQueueStates::Queued,
            QueueState::Ringing => evo::SessionQueueStates::Ringing,
            QueueState::Connected => evo::SessionQueueStates::Connected,
            QueueState::Hold => evo::SessionQueueStates::Hold,
            QueueState::Disconnected => evo::SessionQueueStates::Disconnected,
        },
        account_id: Some(session.account_id.to_string()),
        account_name: Some(session.account_name.clone()),
        customer_id: details.customer_id.clone(),
        customer_breadcrumb: Vec::new(),
        customer_name: details.customer_name.clone(),
        endpoint_id: details.endpoint_id.clone(),
        endpoint_name: details.endpoint_name.clone(),
        date_completed: session.date_completed.map(Timestamp::to_iso8601_utc),
        destination: details.destination.clone(),
        to_address: details.to_address.clone(),
        from_address: details.from_address.clone(),
        from_name: details.from_name.clone(),
        answered_by_name: None,
        queue_member_id: None,
        channel: match session.channel {
            Channel::Voice => evo::FlowChannels::Voice,
            Channel::Chat => evo::FlowChannels::Chat,
            Channel::Fax => evo::FlowChannels::Fax,
        },
        ended: session.ended,
        outcome: details.outcome.clone(),
        call_sid: details.call_sid.clone(),
        console_data: None,
        hold_queue_name: None,
        held_by_user_id: None,
        hold_reason: match session.hold_reason {
            HoldReason::None => evo::SessionHoldReasons::None,
            HoldReason::Transferring => evo::SessionHoldReasons::Transferring,
        },
        conference_sid: details.conference_sid.clone(),
        display_name: details.display_name.clone(),
        log: session
            .log
            .iter()
            .map(|entry| evo::SessionLogInfo {
                date: Some(entry.date.to_iso8601_utc()),
                message: Some(entry.message.clone()),
            })
            .collect(),
        members: session
            .members
            .iter()
            .map(|member| evo::SessionMemberInfo {
                identity: Some(member.identity.clone()),
                endpoint_id: member.endpoint_id.clone(),
                display_name: member.display_name.clone(),
                is_original_member: member.is_original_member,
                avatar_url: member.avatar_url.clone(),
                application_data: member
                    .application_data
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect(),
                call_state: member_call_state(member.call_state),
                role: member_role(member.role),
                call_sid: member.call_sid.clone(),
                muted: member.muted,
            })
            .collect(),
        callback_number: details.callback_number.clone(),
        answered_by_id: None,
        direction: match session.direction {
            Direction::Incoming => evo::SessionDirections::Incoming,
            Direction::Outgoing => evo::SessionDirections::Outgoing,
        },
        from_phone_number: details.from_phone_number.clone(),
        most_recent_participant_call_sid: None,
        was_missed: false,
        ring_queue_id: None,
        id: Some(view.conference_id.to_string()),
        date_created: Some(view.created_at.to_iso8601_utc()),
        date_last_modified: Some(session.date_last_modified.to_iso8601_utc()),
        created_by: Some(view.created_by.to_string()),
        last_modified_by: Some(session.last_modified_by.to_string()),
    }
}

fn member_call_state(state: MemberCallState) -> evo::SessionMemberCallState {
    match state {
        MemberCallState::None => evo::SessionMemberCallState::None,
        MemberCallState::Ringing => evo::SessionMemberCallState::Ringing,
        MemberCallState::Connected => evo::SessionMemberCallState::Connected,
        MemberCallState::Hold => evo::SessionMemberCallState::Hold,
    }
}

fn member_role(role: MemberRole) -> evo::SessionMemberRoles {
    match role {
        MemberRole::None => evo::SessionMemberRoles::None,
        MemberRole::Caller => evo::SessionMemberRoles::Caller,
        MemberRole::Agent => evo::SessionMemberRoles::Agent,
        MemberRole::Transfer => evo::SessionMemberRoles::Transfer,
    }
}

/// The session's `SessionInfo` (whether the caller may see it is the caller's check).
pub fn session(conference: &Conference) -> Option<proto::SessionInfo> {
    view::session_view(conference).map(|v| session_model(&v).into())
}

#[cfg(test)]
mod tests {
    use confer_core::demo::{self, demo_actor, demo_world};

    use super::*;

    fn urls() -> Urls {
        Urls {
            base: "http://127.0.0.1:8080".into(),
        }
    }

    /// The demo call, seen by its owner, renders as seed 000's call (the seed's `duration` and
    /// user data aside).
    #[test]
    fn the_demo_call_renders_as_the_seed_shows_it() {
        let now = Timestamp::from_millis(1_700_000_000_000);
        let world = demo_world(now).unwrap();
        let call_conference = world.conference(demo::VOICE_CALL_ID).unwrap();
        let owner = demo_actor("agent15000").unwrap();
        let view = view::call_view(call_conference, &owner.user_id, now).unwrap();
        let model = call_model(&view, &owner, &urls());
        let json = serde_json::to_value(&model).unwrap();
        let seed: serde_json::Value = serde_json::from_str(include_str!(
            "../../../spec/samples/gws_voice/participants_updated_notification.json"
        ))
        .unwrap();
        let seed_call = &seed["data"]["call"];
        for field in [
            "id",
            "state",
            "callUuid",
            "connId",
            "deviceUri",
            "dnis",
            "callType",
            "capabilities",
            "mute",
            "uri",
            "path",
        ] {
            assert_eq!(json[field], seed_call[field], "{field}");
        }
        // Before the removal the owner sees both other parties.
        assert_eq!(model.participants.len(), 2);
        assert_eq!(model.participants[1], {
            let seed_party: gws_voice::CallParticipant =
                serde_json::from_value(seed_call["participants"][0].clone()).unwrap();
            seed_party
        });
    }

    #[test]
    fn chat_log_timestamps_have_a_numeric_offset() {
        assert_eq!(
            gws_timestamp(Timestamp::from_millis(1_392_308_459_000)),
            "2014-02-13T16:20:59.000+0000"
        );
    }

    #[test]
    fn every_core_capability_has_a_listed_wire_name() {
        for capability in view::ESTABLISHED_OWNER_CAPABILITIES {
            let wire = gws_voice::CallCapability::from_wire(&wire_name(&capability));
            assert!(
                !matches!(wire, gws_voice::CallCapability::Other(_)),
                "{capability:?}"
            );
        }
        for capability in view::CHATTING_CAPABILITIES
            .iter()
            .chain(&view::LEFT_CHAT_CAPABILITIES)
        {
            let wire = gws_chat::ChatCapability::from_wire(&wire_name(capability));
            assert!(
                !matches!(wire, gws_chat::ChatCapability::Other(_)),
                "{capability:?}"
            );
        }
    }
}
