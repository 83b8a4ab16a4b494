//! What an actor asks for. Every command names the conference it is about; new
//! ids (conference ids, participant ids, member ids) come in as arguments.
//!
//! Parameters that the dialects pass as free text and whose validation is a
//! domain rule (a chat removal's `targetUri`, `treatAs`; Evo's `MemberToRemove`;
//! the voice `participant`) arrive here as text and are checked by
//! [`crate::decide()`], so every front end enforces them the same way.

use serde::{Deserialize, Serialize};

use crate::conference::ConferenceNoun;
use crate::conference::chat::ChatMessageKind;
use crate::conference::session::{Channel, Direction, MemberCallState, MemberRole, SessionDetails};
use crate::conference::voice::{
    CallState, CallType, MonitoringKind, MonitoringMode, MonitoringScope,
};
use crate::ids::{AccountId, ConferenceId, MemberId, ParticipantId, UserId};
use crate::time::Timestamp;
use crate::user_data::UserData;

/// A request to change a conference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    // --- voice -----------------------------------------------------------
    /// A call that already exists on the telephony side, owned by the actor
    /// (whose own line becomes the first party).
    CreateCall(NewCall),
    /// GWS `Dial`: the actor calls `destination` from their own line.
    Dial(NewDial),
    /// GWS `Answer`: a ringing party picks up.
    Answer { call: ConferenceId },
    /// GWS `SingleStepConference`: the owner adds a line to the call.
    SingleStepConference {
        call: ConferenceId,
        destination: String,
        /// The user on that line, when the front end knows one.
        destination_user: Option<UserId>,
    },
    /// GWS voice `RemoveParticipantFromConference`.
    RemoveParticipantFromCall {
        call: ConferenceId,
        /// The phone number of the party to remove.
        participant: String,
    },
    /// GWS `Hangup`: the actor leaves the call.
    Hangup { call: ConferenceId },
    /// GWS `ClearCall`: the owner ends the call for everyone.
    ClearCall { call: ConferenceId },
    /// GWS `Hold` of the actor's own line.
    Hold { call: ConferenceId },
    /// GWS `Retrieve` of the actor's own line.
    Retrieve { call: ConferenceId },
    /// GWS `ListenIn` / `Coach` / `BargeIn`.
    StartMonitoring {
        call: ConferenceId,
        monitored_user: UserId,
        kind: MonitoringKind,
        scope: MonitoringScope,
        mode: MonitoringMode,
    },
    /// The supervisor stops monitoring the call.
    StopMonitoring { call: ConferenceId },

    // --- chat ------------------------------------------------------------
    /// A chat routed to the actor, who joins it as its first agent.
    CreateChat(NewChat),
    /// GWS chat `Invite`: another agent is invited, visible to all.
    InviteToChat {
        chat: ConferenceId,
        target_user: UserId,
    },
    /// GWS chat `Consult`: another agent is invited, visible to agents only.
    ConsultInChat {
        chat: ConferenceId,
        target_user: UserId,
    },
    /// GWS chat `Accept` of an invitation.
    AcceptChat {
        chat: ConferenceId,
        participant_id: ParticipantId,
        nickname: String,
    },
    /// GWS chat `Reject` of an invitation.
    RejectChat { chat: ConferenceId },
    /// GWS chat `SendMessage`.
    SendChatMessage {
        chat: ConferenceId,
        message: MessageParameters,
    },
    /// GWS chat `Leave`, with an optional parting message.
    LeaveChat {
        chat: ConferenceId,
        message: MessageParameters,
    },
    /// GWS chat `Complete`, with an optional parting message.
    CompleteChat {
        chat: ConferenceId,
        message: MessageParameters,
    },
    /// GWS chat `RemoveParticipantFromConference`.
    RemoveParticipantFromChat {
        chat: ConferenceId,
        target_uri: Option<String>,
        target_path: Option<String>,
        message: MessageParameters,
    },

    // --- Evo session -----------------------------------------------------
    /// Evo `NewSession`, in one of the actor's accounts.
    CreateSession(NewSession),
    /// Evo `InviteChatMember`.
    InviteSessionMember {
        session: ConferenceId,
        member_id: MemberId,
        /// Phone number or email of the new member.
        member_to_add: String,
        display_name: Option<String>,
        role: MemberRole,
    },
    /// Evo `DeleteChatMember`: `DELETE /sessions/{sessionId}/members/{memberId}?MemberToRemove=`.
    RemoveSessionMember {
        session: ConferenceId,
        /// The `{memberId}` path segment.
        member_id: Option<String>,
        /// The `MemberToRemove` query value: member id, phone number or email.
        member_to_remove: Option<String>,
    },
    /// Evo `DELETE /sessions/{id}`: ends the session.
    EndSession { session: ConferenceId },
}

/// The text parameters shared by chat operations that may post a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageParameters {
    pub text: Option<String>,
    /// GWS `messageType`; only with `text`; default `Text`.
    pub message_type: Option<String>,
    /// GWS `treatAs`: `Normal` or `System`; only with `text`; default `Normal`.
    pub treat_as: Option<String>,
}

impl MessageParameters {
    /// Just a text.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }
}

/// A call to record, as the telephony side reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewCall {
    pub id: ConferenceId,
    pub conn_id: String,
    pub call_uuid: String,
    pub dnis: String,
    pub call_type: CallType,
    /// `Dialing`, `Ringing` or `Established`.
    pub state: CallState,
    /// The lines besides the owner's own.
    pub other_parties: Vec<NewParty>,
    pub user_data: UserData,
}

/// A line of a new call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewParty {
    pub phone_number: String,
    pub user_id: Option<UserId>,
}

/// An outgoing call from the actor's line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDial {
    pub id: ConferenceId,
    pub conn_id: String,
    pub call_uuid: String,
    pub destination: String,
    /// The user on the destination line, if it is one: the call is then `Internal`.
    pub destination_user: Option<UserId>,
    pub user_data: UserData,
}

/// A chat routed to the actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewChat {
    pub id: ConferenceId,
    /// The actor's participant id in this chat.
    pub agent_participant_id: ParticipantId,
    pub agent_nickname: String,
    pub customer_participant_id: ParticipantId,
    pub customer_nickname: String,
    pub user_data: UserData,
    /// Messages exchanged before the chat reached the actor (log indices from 0).
    pub history: Vec<HistoryMessage>,
}

/// A message of a new chat's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryMessage {
    /// The customer's or the agent's participant id.
    pub from: ParticipantId,
    pub kind: ChatMessageKind,
    pub text: Option<String>,
    pub timestamp: Timestamp,
}

/// A new Evo session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSession {
    pub id: ConferenceId,
    pub account_id: AccountId,
    pub account_name: String,
    pub channel: Channel,
    pub direction: Direction,
    pub members: Vec<NewSessionMember>,
    pub details: Box<SessionDetails>,
}

/// An original member of a new session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSessionMember {
    pub member_id: MemberId,
    pub identity: String,
    pub display_name: Option<String>,
    pub role: MemberRole,
    pub call_state: MemberCallState,
}

impl Command {
    /// The conference the command is about.
    pub fn conference_id(&self) -> &ConferenceId {
        match self {
            Command::CreateCall(new) => &new.id,
            Command::Dial(new) => &new.id,
            Command::CreateChat(new) => &new.id,
            Command::CreateSession(new) => &new.id,
            Command::Answer { call }
            | Command::SingleStepConference { call, .. }
            | Command::RemoveParticipantFromCall { call, .. }
            | Command::Hangup { call }
            | Command::ClearCall { call }
            | Command::Hold { call }
            | Command::Retrieve { call }
            | Command::StartMonitoring { call, .. }
            | Command::StopMonitoring { call } => call,
            Command::InviteToChat { chat, .. }
            | Command::ConsultInChat { chat, .. }
            | Command::AcceptChat { chat, .. }
            | Command::RejectChat { chat }
            | Command::SendChatMessage { chat, .. }
            | Command::LeaveChat { chat, .. }
            | Command::CompleteChat { chat, .. }
            | Command::RemoveParticipantFromChat { chat, .. } => chat,
            Command::InviteSessionMember { session, .. }
            | Command::RemoveSessionMember { session, .. }
            | Command::EndSession { session } => session,
        }
    }

    /// The kind of conference the command applies to.
    pub fn noun(&self) -> ConferenceNoun {
        match self {
            Command::CreateCall(_)
            | Command::Dial(_)
            | Command::Answer { .. }
            | Command::SingleStepConference { .. }
            | Command::RemoveParticipantFromCall { .. }
            | Command::Hangup { .. }
            | Command::ClearCall { .. }
            | Command::Hold { .. }
            | Command::Retrieve { .. }
            | Command::StartMonitoring { .. }
            | Command::StopMonitoring { .. } => ConferenceNoun::Call,
            Command::CreateChat(_)
            | Command::InviteToChat { .. }
            | Command::ConsultInChat { .. }
            | Command::AcceptChat { .. }
            | Command::RejectChat { .. }
            | Command::SendChatMessage { .. }
            | Command::LeaveChat { .. }
            | Command::CompleteChat { .. }
            | Command::RemoveParticipantFromChat { .. } => ConferenceNoun::Chat,
            Command::CreateSession(_)
            | Command::InviteSessionMember { .. }
            | Command::RemoveSessionMember { .. }
            | Command::EndSession { .. } => ConferenceNoun::Session,
        }
    }

    /// Whether the command creates its conference.
    pub fn creates_conference(&self) -> bool {
        matches!(
            self,
            Command::CreateCall(_)
                | Command::Dial(_)
                | Command::CreateChat(_)
                | Command::CreateSession(_)
        )
    }

    /// The operation's name in messages (the dialect's own name where it has one).
    pub fn operation_name(&self) -> &'static str {
        match self {
            Command::CreateCall(_) => "CreateCall",
            Command::Dial(_) => "Dial",
            Command::Answer { .. } => "Answer",
            Command::SingleStepConference { .. } => "SingleStepConference",
            Command::RemoveParticipantFromCall { .. } => "RemoveParticipantFromConference",
            Command::Hangup { .. } => "Hangup",
            Command::ClearCall { .. } => "ClearCall",
            Command::Hold { .. } => "Hold",
            Command::Retrieve { .. } => "Retrieve",
            Command::StartMonitoring { kind, .. } => match kind {
                MonitoringKind::ListenIn => "ListenIn",
                MonitoringKind::Coach => "Coach",
                MonitoringKind::BargeIn => "BargeIn",
            },
            Command::StopMonitoring { .. } => "StopMonitoring",
            Command::CreateChat(_) => "CreateChat",
            Command::InviteToChat { .. } => "Invite",
            Command::ConsultInChat { .. } => "Consult",
            Command::AcceptChat { .. } => "Accept",
            Command::RejectChat { .. } => "Reject",
            Command::SendChatMessage { .. } => "SendMessage",
            Command::LeaveChat { .. } => "Leave",
            Command::CompleteChat { .. } => "Complete",
            Command::RemoveParticipantFromChat { .. } => "RemoveParticipantFromConference",
            Command::CreateSession(_) => "NewSession",
            Command::InviteSessionMember { .. } => "InviteChatMember",
            Command::RemoveSessionMember { .. } => "DeleteChatMember",
            Command::EndSession { .. } => "EndSession",
        }
    }
}
