//! The conference: one model serving the three dialects.
//!
//! A [`Conference`] is the state rebuilt from its events by [`crate::apply()`]. It
//! holds domain facts only; what a given user sees of it is derived in
//! [`crate::view`].

pub mod chat;
pub mod session;
pub mod voice;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{ConferenceId, UserId};
use crate::time::Timestamp;

pub use chat::Chat;
pub use session::Session;
pub use voice::Call;

/// A conference of any kind, at a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conference {
    /// The GWS call id, GWS chat id or Evo session id (so a voice call has no
    /// second "call id" field: this is it).
    pub id: ConferenceId,
    /// How many events built this state: 1 after creation, +1 per event.
    pub version: u64,
    pub created_at: Timestamp,
    pub created_by: UserId,
    pub kind: ConferenceKind,
}

/// The dialect-specific state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConferenceKind {
    /// A GWS voice call.
    Voice(Call),
    /// A GWS chat.
    Chat(Chat),
    /// An Evo Voice session.
    Session(Session),
}

/// What a conference is called in messages ("call", "chat", "session").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConferenceNoun {
    Call,
    Chat,
    Session,
}

impl fmt::Display for ConferenceNoun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConferenceNoun::Call => "call",
            ConferenceNoun::Chat => "chat",
            ConferenceNoun::Session => "session",
        })
    }
}

impl Conference {
    /// What this conference is called in messages.
    pub fn noun(&self) -> ConferenceNoun {
        match self.kind {
            ConferenceKind::Voice(_) => ConferenceNoun::Call,
            ConferenceKind::Chat(_) => ConferenceNoun::Chat,
            ConferenceKind::Session(_) => ConferenceNoun::Session,
        }
    }

    /// The voice call, if this is one.
    pub fn as_call(&self) -> Option<&Call> {
        match &self.kind {
            ConferenceKind::Voice(call) => Some(call),
            _ => None,
        }
    }

    /// The chat, if this is one.
    pub fn as_chat(&self) -> Option<&Chat> {
        match &self.kind {
            ConferenceKind::Chat(chat) => Some(chat),
            _ => None,
        }
    }

    /// The Evo session, if this is one.
    pub fn as_session(&self) -> Option<&Session> {
        match &self.kind {
            ConferenceKind::Session(session) => Some(session),
            _ => None,
        }
    }

    /// Whether the conference is over for everyone (call released, chat closed, session ended).
    pub fn is_ended(&self) -> bool {
        match &self.kind {
            ConferenceKind::Voice(call) => call.is_released(),
            ConferenceKind::Chat(chat) => chat.is_closed(),
            ConferenceKind::Session(session) => session.ended,
        }
    }
}
