//! Views of `confer_core::view` rendered into the GWS wire types of `confer_model`.
//!
//! Pure functions: what a user sees is decided by the core's views; this module only spells it
//! the way GWS does (URIs on the server's own public URL, capability names, `duration` as a
//! string of seconds, chat timestamps as ISO 8601 with an offset plus milliseconds in
//! `timestampSeconds`). The same functions serve REST replies (at the wall clock) and
//! notifications (at the event's own time, so that a notification renders the same on every
//! node and every time).

use confer_core::{
    Actor, UserId,
    conference::{
        chat::{AgentChatState, ChatMessageKind, ChatParticipant, ParticipantKind, Visibility},
        voice::{CallState, CallType, MonitoringKind, Mute},
    },
    view::{CallCapability, CallView, ChatCapability, ChatView, MessageView},
};
use confer_model::{
    gws_chat::{self, ChatLogEntry, ChatStateChangeMessage, MessageLogUpdated},
    gws_common::NotificationMessageType,
    gws_voice::{self, CallParticipant, CallStateChangeMessage},
};
use indexmap::IndexMap;
use serde_json::Value;

/// The id of a user's device: their device id, or else their line (GWS addresses a device by
/// either).
pub fn device_of(actor: &Actor) -> Option<String> {
    actor
        .device_id
        .as_ref()
        .map(|device| device.as_str().to_owned())
        .or_else(|| actor.phone_number.as_ref().map(ToString::to_string))
}

/// Where the server's resources are, for the URIs GWS puts in replies and notifications.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// `base` is `App::public_url()`: `http://host:port`, no trailing slash.
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn call(&self, id: &str) -> String {
        format!("{}/api/v2/me/calls/{id}", self.base)
    }

    pub fn device(&self, id: &str) -> String {
        format!("{}/api/v2/devices/{id}", self.base)
    }

    pub fn user(&self, id: &str) -> String {
        format!("{}/api/v2/users/{id}", self.base)
    }

    pub fn chat(&self, id: &str) -> String {
        format!("{}/api/v2/chats/{id}", self.base)
    }
}

fn call_state(state: CallState) -> gws_voice::CallState {
    match state {
        CallState::Dialing => gws_voice::CallState::Dialing,
        CallState::Ringing => gws_voice::CallState::Ringing,
        CallState::Established => gws_voice::CallState::Established,
        CallState::Held => gws_voice::CallState::Held,
        CallState::Released => gws_voice::CallState::Released,
    }
}

fn call_type(call_type: CallType) -> gws_voice::CallType {
    match call_type {
        CallType::Internal => gws_voice::CallType::Internal,
        CallType::Inbound => gws_voice::CallType::Inbound,
        CallType::Outbound => gws_voice::CallType::Outbound,
        CallType::Consult => gws_voice::CallType::Consult,
    }
}

fn call_capability(capability: CallCapability) -> gws_voice::CallCapability {
    use gws_voice::CallCapability as Wire;
    match capability {
        CallCapability::Answer => Wire::Answer,
        CallCapability::Hangup => Wire::Hangup,
        CallCapability::Hold => Wire::Hold,
        CallCapability::Retrieve => Wire::Retrieve,
        CallCapability::InitiateConference => Wire::InitiateConference,
        CallCapability::SingleStepConference => Wire::SingleStepConference,
        CallCapability::InitiateTransfer => Wire::InitiateTransfer,
        CallCapability::SingleStepTransfer => Wire::SingleStepTransfer,
        CallCapability::AttachUserData => Wire::AttachUserData,
        CallCapability::UpdateUserData => Wire::UpdateUserData,
        CallCapability::DeleteUserData => Wire::DeleteUserData,
        CallCapability::DeleteUserDataPair => Wire::DeleteUserDataPair,
        CallCapability::SendDtmf => Wire::SendDtmf,
    }
}

fn user_data(data: &confer_core::UserData) -> IndexMap<String, Value> {
    data.iter()
        .map(|(key, value)| (key.to_owned(), value.clone()))
        .collect()
}

/// `viewer`'s call, as `/api/v2/me/calls/{id}` and call notifications show it.
pub fn call(view: &CallView, viewer: &Actor, urls: &Urls) -> gws_voice::Call {
    let id = view.conference_id.as_str();
    let device = device_of(viewer).unwrap_or_default();
    gws_voice::Call {
        id: id.to_owned(),
        state: call_state(view.state),
        call_uuid: view.call_uuid.clone(),
        conn_id: view.conn_id.clone(),
        device_uri: urls.device(&device),
        participants: view
            .participants
            .iter()
            .map(|party| {
                let number = party.phone_number.to_string();
                CallParticipant {
                    // GWS leaves it empty for internal numbers (seed 000); Confer knows no
                    // E.164 form of any line.
                    e164_number: String::new(),
                    formatted_phone_number: number.clone(),
                    phone_number: number.clone(),
                    digits: number,
                }
            })
            .collect(),
        dnis: view.dnis.clone(),
        call_type: call_type(view.call_type),
        capabilities: view
            .capabilities
            .iter()
            .copied()
            .map(call_capability)
            .collect(),
        duration: view.duration_seconds.to_string(),
        mute: match view.mute {
            Mute::Off => gws_voice::MuteState::Off,
            Mute::On => gws_voice::MuteState::On,
        },
        // Only the monitoring supervisor is told (the core keeps monitoring from agents).
        supervisor_listening_in: view
            .monitoring
            .as_ref()
            .is_some_and(|monitoring| monitoring.kind == MonitoringKind::ListenIn),
        monitored_user_muted: false,
        monitoring: view.monitoring.is_some(),
        uri: urls.call(id),
        path: format!("/calls/{id}"),
        user_data: user_data(&view.user_data),
        recording_state: None,
        parent_call_uri: None,
        parent_call_path: None,
    }
}

/// A call notification (`data` on `/v2/me/calls`).
pub fn call_message(
    notification_type: gws_voice::CallNotificationType,
    view: &CallView,
    viewer: &Actor,
    urls: &Urls,
    reference_id: Option<i64>,
) -> CallStateChangeMessage {
    let mut extensions = IndexMap::new();
    // Seed 000 shows it on every call notification; Confer has no business/private distinction.
    extensions.insert("BusinessCall".to_owned(), Value::from(0));
    CallStateChangeMessage {
        notification_type,
        call: call(view, viewer, urls),
        phone_number: view
            .phone_number
            .as_ref()
            .or(viewer.phone_number.as_ref())
            .map(ToString::to_string)
            .unwrap_or_default(),
        extensions,
        message_type: NotificationMessageType::CallStateChangeMessage,
        reference_id,
    }
}

fn visibility(visibility: Visibility) -> gws_chat::Visibility {
    match visibility {
        Visibility::All => gws_chat::Visibility::All,
        Visibility::Agents => gws_chat::Visibility::Agents,
    }
}

/// A chat participant; agents carry their user URI (what a removal names).
pub fn participant(participant: &ChatParticipant, urls: &Urls) -> gws_chat::ChatParticipant {
    gws_chat::ChatParticipant {
        nickname: participant.nickname.clone(),
        r#type: match participant.kind {
            ParticipantKind::Agent => gws_chat::ChatParticipantType::Agent,
            ParticipantKind::Customer => gws_chat::ChatParticipantType::Customer,
        },
        uri: participant
            .user_id
            .as_ref()
            .map(|user: &UserId| urls.user(user.as_str())),
        visibility: visibility(participant.visibility),
        participant_id: participant.participant_id.to_string(),
    }
}

fn chat_state(state: AgentChatState) -> gws_chat::ChatState {
    match state {
        AgentChatState::Chatting => gws_chat::ChatState::Chatting,
        AgentChatState::LeftChat => gws_chat::ChatState::LeftChat,
        AgentChatState::Completed => gws_chat::ChatState::Completed,
        // No public source names the state of an invitation not yet answered; GWS desktops
        // show it as an invitation, and the enum passes unlisted states through.
        AgentChatState::Invited => gws_chat::ChatState::Other("Invited".to_owned()),
    }
}

fn chat_capability(capability: ChatCapability) -> gws_chat::ChatCapability {
    use gws_chat::ChatCapability as Wire;
    match capability {
        ChatCapability::Accept => Wire::Accept,
        ChatCapability::Reject => Wire::Reject,
        ChatCapability::Transfer => Wire::Transfer,
        ChatCapability::Leave => Wire::Leave,
        ChatCapability::Invite => Wire::Invite,
        ChatCapability::Consult => Wire::Consult,
        ChatCapability::SetInFocus => Wire::SetInFocus,
        ChatCapability::SetDisposition => Wire::SetDisposition,
        ChatCapability::AttachUserData => Wire::AttachUserData,
        ChatCapability::DeleteUserData => Wire::DeleteUserData,
        ChatCapability::UpdateUserData => Wire::UpdateUserData,
        ChatCapability::Complete => Wire::Complete,
        ChatCapability::SendMessage => Wire::SendMessage,
        ChatCapability::SendStartTypingNotification => Wire::SendStartTypingNotification,
        ChatCapability::SendStopTypingNotification => Wire::SendStopTypingNotification,
    }
}

/// An agent's chat, as `/api/v2/me/chats/{id}` and chat notifications show it.
pub fn chat(view: &ChatView, urls: &Urls) -> gws_chat::Chat {
    let id = view.conference_id.as_str();
    gws_chat::Chat {
        user_data: user_data(&view.user_data),
        state: chat_state(view.state),
        capabilities: view
            .capabilities
            .iter()
            .copied()
            .map(chat_capability)
            .collect(),
        uri: urls.chat(id),
        participants: view
            .participants
            .iter()
            .map(|p| participant(p, urls))
            .collect(),
        id: id.to_owned(),
    }
}

/// A chat notification about the chat itself (`data` on `/v2/me/chats`).
pub fn chat_message(
    notification_type: gws_chat::ChatNotificationType,
    view: &ChatView,
    urls: &Urls,
    reference_id: Option<i64>,
) -> ChatStateChangeMessage {
    ChatStateChangeMessage {
        reference_id,
        chat: chat(view, urls),
        notification_type,
        message_type: NotificationMessageType::ChatStateChangeMessage,
    }
}

/// `2014-02-13T16:20:59.000+0000`: ISO 8601 with a numeric offset, as GWS writes chat
/// timestamps (Confer's server offset is always UTC).
pub fn chat_timestamp(timestamp: confer_core::Timestamp) -> String {
    let iso = timestamp.to_iso8601_utc();
    match iso.strip_suffix('Z') {
        Some(local) => format!("{local}+0000"),
        None => iso,
    }
}

/// Message log entries.
pub fn log_entries(messages: &[MessageView], urls: &Urls) -> Vec<ChatLogEntry> {
    messages
        .iter()
        .map(|message| ChatLogEntry {
            index: i64::try_from(message.index).unwrap_or(i64::MAX),
            from: participant(&message.from, urls),
            text: message.text.clone(),
            timestamp: chat_timestamp(message.timestamp),
            visibility: visibility(message.visibility),
            r#type: match message.kind {
                ChatMessageKind::Text => gws_chat::ChatLogEntryType::Text,
                ChatMessageKind::Notice => gws_chat::ChatLogEntryType::Notice,
                ChatMessageKind::ParticipantJoined => gws_chat::ChatLogEntryType::ParticipantJoined,
                ChatMessageKind::ParticipantLeft => gws_chat::ChatLogEntryType::ParticipantLeft,
            },
            // The name says seconds; GWS sends milliseconds (seed 003: 1392308459000).
            timestamp_seconds: message.timestamp.millis(),
            message_type: message
                .message_type
                .as_deref()
                .map(gws_chat::ChatMessageType::from_wire),
        })
        .collect()
}

/// A `NewMessages` notification.
pub fn new_messages(
    chat_id: &str,
    messages: &[MessageView],
    urls: &Urls,
    reference_id: Option<i64>,
) -> MessageLogUpdated {
    MessageLogUpdated {
        messages: log_entries(messages, urls),
        notification_type: gws_chat::ChatNotificationType::NewMessages,
        message_type: NotificationMessageType::MessageLogUpdated,
        chat_uri: urls.chat(chat_id),
        reference_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confer_core::{Timestamp, demo, view};

    const NOW: Timestamp = Timestamp::from_millis(1_392_308_459_000);

    fn sample(path: &str) -> Value {
        let file = format!("{}/../../spec/samples/{path}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn the_seed_voice_notification_renders_from_the_demo_world() {
        let mut world = demo::demo_world(NOW).unwrap();
        let agent = demo::demo_actor("agent15000").unwrap();
        world
            .execute(
                &agent,
                confer_core::Command::RemoveParticipantFromCall {
                    call: demo::VOICE_CALL_ID.into(),
                    participant: "15001".into(),
                },
                NOW,
            )
            .unwrap();
        let conference = world.conference(demo::VOICE_CALL_ID).unwrap();
        let view = view::call_view(conference, &agent.user_id, NOW).unwrap();
        let message = call_message(
            gws_voice::CallNotificationType::ParticipantsUpdated,
            &view,
            &agent,
            &Urls::new("http://127.0.0.1:8080"),
            None,
        );
        let notification = gws_voice::CallNotification {
            data: message,
            channel: "/v2/me/calls".into(),
        };
        assert_eq!(
            serde_json::to_value(notification).unwrap(),
            sample("gws_voice/participants_updated_notification.json")
        );
    }

    #[test]
    fn chat_timestamps_have_an_offset() {
        assert_eq!(chat_timestamp(NOW), "2014-02-13T16:20:59.000+0000");
    }
}
