//! Facts that happened to a conference, in domain terms.
//!
//! Events are what the store keeps (as JSON, in order); the state is rebuilt from
//! them by [`crate::apply()`]. Each carries everything the notification layer
//! needs (snapshots of who left or joined, the log entry written) so that it
//! never has to look back into older state.

use serde::{Deserialize, Serialize};

use crate::conference::Conference;
use crate::conference::chat::{AgentChatState, ChatMessage, ChatParticipant, Visibility};
use crate::conference::session::{SessionLogEntry, SessionMember};
use crate::conference::voice::{Monitoring, Party};
use crate::ids::{ConferenceId, PhoneNumber, UserId};
use crate::time::Timestamp;

/// One fact about one conference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub conference_id: ConferenceId,
    /// The conference's version once this event is applied (1 for the creation).
    pub version: u64,
    pub occurred_at: Timestamp,
    /// The user whose command caused it.
    pub by: UserId,
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    /// The conference came to be, in this state (version 1).
    ConferenceCreated { conference: Box<Conference> },

    // --- voice -----------------------------------------------------------
    /// A line joined the call (`SingleStepConference`).
    PartyAdded { party: Party },
    /// The call was answered and is now established.
    CallAnswered { phone_number: PhoneNumber },
    /// This line put the call on hold.
    PartyHeld { phone_number: PhoneNumber },
    /// This line took the call off hold.
    PartyRetrieved { phone_number: PhoneNumber },
    /// The party (as it was before) was removed from the call by `removed_by`.
    PartyRemoved { party: Party, removed_by: UserId },
    /// The party (as it was before) hung up.
    PartyLeft { party: Party },
    /// The call is over for everyone.
    CallReleased { reason: CallReleaseReason },
    /// A supervisor started monitoring.
    MonitoringStarted { monitoring: Monitoring },
    /// A supervisor stopped monitoring (the monitoring as it was).
    MonitoringStopped { monitoring: Monitoring },

    // --- chat ------------------------------------------------------------
    /// An agent was invited (`Invite`: visibility All; `Consult`: Agents).
    AgentInvited {
        agent: UserId,
        visibility: Visibility,
        invited_by: UserId,
    },
    /// An invited agent rejected the invitation.
    InvitationRejected { agent: UserId },
    /// A participant joined; `entry` is the `ParticipantJoined` log entry.
    ChatParticipantJoined {
        participant: ChatParticipant,
        entry: ChatMessage,
    },
    /// A message was added to the log.
    ChatMessagePosted { message: ChatMessage },
    /// A participant left (`Leave`, `Complete`); `entry` is the `ParticipantLeft`
    /// log entry; an agent's own state becomes `LeftChat`.
    ChatParticipantLeft {
        participant: ChatParticipant,
        entry: ChatMessage,
    },
    /// A participant was removed by another (`RemoveParticipantFromConference`);
    /// `entry` is the `ParticipantLeft` log entry from the removed participant;
    /// the removed agent's own state becomes `LeftChat`.
    ChatParticipantRemoved {
        participant: ChatParticipant,
        removed_by: ChatParticipant,
        entry: ChatMessage,
    },
    /// An agent's own state of the chat changed.
    AgentChatStateChanged {
        agent: UserId,
        state: AgentChatState,
    },
    /// No agent is left: the chat is over. The customer, if still there, is out;
    /// the pending invitations of these agents are withdrawn (their state
    /// becomes `Completed`).
    ChatClosed { withdrawn_invitations: Vec<UserId> },

    // --- Evo session -----------------------------------------------------
    /// A member joined the session; `entry` is the log line written.
    SessionMemberAdded {
        member: SessionMember,
        entry: SessionLogEntry,
    },
    /// The member (as it was) was removed; `entry` is the log line written
    /// (e.g. "agent@example.com removed +15550101").
    SessionMemberRemoved {
        member: SessionMember,
        entry: SessionLogEntry,
    },
    /// The session is over.
    SessionEnded {
        reason: SessionEndReason,
        entry: SessionLogEntry,
    },
}

/// Why a call was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallReleaseReason {
    /// `ClearCall` by the owner.
    Cleared,
    /// The owner hung up (the core does not hand a conference over to another party).
    OwnerHungUp,
    /// Fewer than two parties remained.
    TooFewParties,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionEndReason {
    /// A user ended it (`DELETE /sessions/{id}`).
    EndedByUser,
    /// No member is left on the call.
    NoMemberLeft,
}
