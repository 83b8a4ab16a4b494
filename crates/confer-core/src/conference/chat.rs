//! A GWS chat: participants, a message log, and each agent's own state.

use serde::{Deserialize, Serialize};

use crate::ids::{ParticipantId, UserId};
use crate::time::Timestamp;
use crate::user_data::UserData;

/// A chat. Its GWS chat id is the conference id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    pub state: ChatState,
    pub user_data: UserData,
    /// Every participant the chat ever had; those who left keep their record
    /// (with a [`ChatDeparture`]) because log entries name them as `from`.
    pub participants: Vec<ChatParticipant>,
    /// The message log; `messages[i].index == i`.
    pub messages: Vec<ChatMessage>,
    /// Each agent's own state of this chat, one record per agent user.
    pub agents: Vec<AgentChat>,
}

/// The chat as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatState {
    /// Agents and the customer may talk.
    Open,
    /// No agent is left in the chat; nothing more can happen in it.
    Closed,
}

/// One participant: an agent or the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatParticipant {
    pub participant_id: ParticipantId,
    pub nickname: String,
    pub kind: ParticipantKind,
    /// The agent's user; customers are not users.
    pub user_id: Option<UserId>,
    pub visibility: Visibility,
    /// Set once the participant is no longer in the chat.
    pub departure: Option<ChatDeparture>,
}

impl ChatParticipant {
    /// Still in the chat.
    pub fn is_present(&self) -> bool {
        self.departure.is_none()
    }

    /// Whether this is `user`'s participant record.
    pub fn belongs_to(&self, user: &UserId) -> bool {
        self.user_id.as_ref() == Some(user)
    }
}

/// GWS participant `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParticipantKind {
    Agent,
    Customer,
}

/// Who sees a participant or a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    /// Everyone, the customer included (conference: `Invite`).
    All,
    /// Agents only (consultation: `Consult`).
    Agents,
}

/// When and why a participant left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatDeparture {
    pub at: Timestamp,
    pub reason: ChatDepartureReason,
}

/// Why a participant left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatDepartureReason {
    /// `Leave` or `Complete`.
    Left,
    /// Removed by this participant (`RemoveParticipantFromConference`).
    RemovedBy(ParticipantId),
    /// The chat closed with the participant still in it (the customer, when the last agent left).
    ChatClosed,
}

/// One entry of the message log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Position in the log, from 0.
    pub index: u64,
    pub from: ParticipantId,
    pub kind: ChatMessageKind,
    pub text: Option<String>,
    pub visibility: Visibility,
    pub timestamp: Timestamp,
    /// GWS `messageType` of a text message (default `Text`).
    pub message_type: Option<String>,
    /// GWS `treatAs` of a text message (default `Normal`).
    pub treat_as: Option<TreatAs>,
}

/// GWS message log entry `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatMessageKind {
    Text,
    Notice,
    ParticipantJoined,
    ParticipantLeft,
}

/// GWS `treatAs`: how the chat server treats a text message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TreatAs {
    #[default]
    Normal,
    System,
}

/// One agent's own state of the chat (what GWS shows that agent as `state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentChat {
    pub user_id: UserId,
    pub state: AgentChatState,
    /// The visibility the agent was invited with, or has as a participant.
    pub visibility: Visibility,
    /// The agent's participant record once they joined.
    pub participant_id: Option<ParticipantId>,
    /// Who invited the agent; `None` for the agent the chat was routed to.
    pub invited_by: Option<UserId>,
}

/// GWS chat `state` as one agent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentChatState {
    /// Invited (`Invite` or `Consult`), not yet accepted.
    Invited,
    Chatting,
    /// Out of the chat, still able to wrap it up (disposition, user data, `Complete`).
    LeftChat,
    /// Done with the chat.
    Completed,
}

impl Chat {
    /// Participants still in the chat, in joining order.
    pub fn present_participants(&self) -> impl Iterator<Item = &ChatParticipant> {
        self.participants
            .iter()
            .filter(|participant| participant.is_present())
    }

    /// The participant record with this id, present or not.
    pub fn participant(&self, id: &ParticipantId) -> Option<&ChatParticipant> {
        self.participants
            .iter()
            .find(|participant| &participant.participant_id == id)
    }

    /// `user`'s participant record while they are in the chat.
    pub fn present_participant_of_user(&self, user: &UserId) -> Option<&ChatParticipant> {
        self.present_participants()
            .find(|participant| participant.belongs_to(user))
    }

    /// `user`'s own state of the chat.
    pub fn agent(&self, user: &UserId) -> Option<&AgentChat> {
        self.agents.iter().find(|agent| &agent.user_id == user)
    }

    /// Present agents (not the customer).
    pub fn present_agents(&self) -> impl Iterator<Item = &ChatParticipant> {
        self.present_participants()
            .filter(|participant| participant.kind == ParticipantKind::Agent)
    }

    /// The index the next log entry gets.
    pub fn next_message_index(&self) -> u64 {
        self.messages
            .last()
            .map_or(0, |message| message.index.saturating_add(1))
    }

    /// Whether the chat is over.
    pub fn is_closed(&self) -> bool {
        self.state == ChatState::Closed
    }
}
