//! What one request may ask of the domain: how long its ids and texts may be, and how many
//! participants a conference may gather. Without these, one request could store a 3 MB "id",
//! and one conference could grow until every command on it, and every notification about it,
//! costs more than the machine has.
//!
//! The limits are data (the server reads them from its configuration) and the checks are pure,
//! so every dialect refuses the same request the same way, through the one error table.

use serde_json::Value;

use crate::command::Command;
use crate::conference::chat::ChatMessageKind;
use crate::conference::{Conference, ConferenceKind};
use crate::error::DomainError;

/// The limits one server applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest id, name, phone number or other short field, in bytes.
    pub max_id_bytes: usize,
    /// Longest text (a chat message, a user-data key or value), in bytes.
    pub max_text_bytes: usize,
    /// Most participant records a conference keeps (present or departed: a call keeps the
    /// parties it had, so adding and removing one line over and over also counts).
    pub max_participants: usize,
    /// Most messages a chat's transcript keeps (each at most `max_text_bytes`).
    pub max_chat_messages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The fields whose strings are texts (everything below them), not ids.
const TEXT_FIELDS: [&str; 3] = ["text", "user_data", "history"];

impl Limits {
    /// 256-byte ids, 16 KiB texts, 64 participants, 10,000 chat messages.
    pub const DEFAULT: Limits = Limits {
        max_id_bytes: 256,
        max_text_bytes: 16 * 1024,
        max_participants: 64,
        max_chat_messages: 10_000,
    };

    /// Refuses an id (from a path or a request field) longer than the limit, or with a control
    /// character (no id has one; the store keeps sessions under a key that uses one).
    pub fn check_id(&self, parameter: &str, id: &str) -> Result<(), DomainError> {
        if id.len() > self.max_id_bytes {
            return Err(DomainError::TooLong {
                parameter: parameter.to_owned(),
                limit: self.max_id_bytes,
            });
        }
        if id.chars().any(char::is_control) {
            return Err(DomainError::ControlCharacter {
                parameter: parameter.to_owned(),
            });
        }
        Ok(())
    }

    /// Refuses a command any of whose strings is longer than its limit, naming the field.
    pub fn check_command(&self, command: &Command) -> Result<(), DomainError> {
        // Walking the command's serde form covers every field of every variant, including
        // fields added later, without a hand-kept list that could forget one.
        let value =
            serde_json::to_value(command).map_err(|error| DomainError::InvalidParameter {
                parameter: "command",
                value: error.to_string(),
                expected: "a command that serializes",
            })?;
        self.check_value(&value, &mut String::new(), false)
    }

    fn check_value(&self, value: &Value, path: &mut String, text: bool) -> Result<(), DomainError> {
        let limit = if text {
            self.max_text_bytes
        } else {
            self.max_id_bytes
        };
        match value {
            Value::String(s) if s.len() > limit => Err(DomainError::TooLong {
                parameter: path.clone(),
                limit,
            }),
            // Texts may hold line breaks and tabs; ids never a control character.
            Value::String(s) if !text && s.chars().any(char::is_control) => {
                Err(DomainError::ControlCharacter {
                    parameter: path.clone(),
                })
            }
            Value::Array(items) => items
                .iter()
                .try_for_each(|item| self.check_value(item, path, text)),
            Value::Object(map) => {
                for (key, item) in map {
                    if key.len() > self.max_text_bytes {
                        return Err(DomainError::TooLong {
                            parameter: path.clone(),
                            limit: self.max_text_bytes,
                        });
                    }
                    let before = path.len();
                    // The outer keys are serde's variant names; only fields make the path.
                    if !key.starts_with(char::is_uppercase) {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(key);
                    }
                    let below_text = text || TEXT_FIELDS.contains(&key.as_str());
                    self.check_value(item, path, below_text)?;
                    path.truncate(before);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Refuses a new state with more participant records (or chat messages) than the limit,
    /// unless the command did not add any (a conference already over a lowered limit can still
    /// lose participants).
    pub fn check_size(
        &self,
        before: Option<&Conference>,
        after: &Conference,
    ) -> Result<(), DomainError> {
        let now = participant_records(after);
        let was = before.map_or(0, participant_records);
        if now > self.max_participants && now > was {
            return Err(DomainError::TooManyParticipants {
                noun: after.noun(),
                id: after.id.clone(),
                limit: self.max_participants,
            });
        }
        // Said messages count (participants' texts and notices); joins and departures are
        // bounded by the participant limit. A command that removes someone is never refused
        // for its parting text: removal must work on a full chat.
        // Said messages are a subset of all messages: below the limit in all, nothing to count
        // (the usual case, so a chat command does not walk its whole transcript).
        let total = match &after.kind {
            ConferenceKind::Chat(chat) => chat.messages.len(),
            _ => 0,
        };
        if total <= self.max_chat_messages {
            return Ok(());
        }
        let (said, departed) = chat_messages(after);
        let (said_before, departed_before) = before.map_or((0, 0), chat_messages);
        if said > self.max_chat_messages && said > said_before && departed == departed_before {
            return Err(DomainError::TooManyMessages {
                noun: after.noun(),
                id: after.id.clone(),
                limit: self.max_chat_messages,
            });
        }
        Ok(())
    }
}

/// A chat's said messages (texts and notices), and its departed participants.
fn chat_messages(conference: &Conference) -> (usize, usize) {
    match &conference.kind {
        ConferenceKind::Chat(chat) => (
            chat.messages
                .iter()
                .filter(|m| matches!(m.kind, ChatMessageKind::Text | ChatMessageKind::Notice))
                .count(),
            chat.participants.iter().filter(|p| !p.is_present()).count(),
        ),
        _ => (0, 0),
    }
}

fn participant_records(conference: &Conference) -> usize {
    match &conference.kind {
        ConferenceKind::Voice(call) => call.parties.len() + call.monitoring.len(),
        // An agent has a participant record once joined and an agent record from the invitation.
        ConferenceKind::Chat(chat) => chat.participants.len().max(chat.agents.len()),
        ConferenceKind::Session(session) => session.members.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MessageParameters;
    use crate::ids::ConferenceId;

    const SMALL: Limits = Limits {
        max_id_bytes: 8,
        max_text_bytes: 16,
        max_participants: 2,
        max_chat_messages: 3,
    };

    #[test]
    fn ids_and_texts_have_their_own_limits_and_the_field_is_named() {
        let ok = Command::SendChatMessage {
            chat: ConferenceId::new("c1"),
            message: MessageParameters::text("sixteen bytes ok"),
        };
        assert_eq!(SMALL.check_command(&ok), Ok(()));
        let long_text = Command::SendChatMessage {
            chat: ConferenceId::new("c1"),
            message: MessageParameters::text("seventeen bytes!!"),
        };
        assert_eq!(
            SMALL.check_command(&long_text),
            Err(DomainError::TooLong {
                parameter: "message.text".into(),
                limit: 16
            })
        );
        let long_id = Command::Hangup {
            call: ConferenceId::new("123456789"),
        };
        assert_eq!(
            SMALL.check_command(&long_id),
            Err(DomainError::TooLong {
                parameter: "call".into(),
                limit: 8
            })
        );
        let control = Command::Hangup {
            call: ConferenceId::new("a\u{1f}b"),
        };
        assert_eq!(
            SMALL.check_command(&control),
            Err(DomainError::ControlCharacter {
                parameter: "call".into()
            })
        );
        assert_eq!(
            SMALL.check_command(&Command::SendChatMessage {
                chat: ConferenceId::new("c1"),
                message: MessageParameters::text("two\nlines"),
            }),
            Ok(()),
            "texts may have line breaks"
        );
        assert!(SMALL.check_id("id", "12345678").is_ok());
        assert!(SMALL.check_id("id", "123456789").is_err());
    }
}
