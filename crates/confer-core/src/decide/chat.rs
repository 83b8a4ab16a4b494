//! Rules of GWS chats.

use super::{Decision, given};
use crate::actor::{Actor, Role};
use crate::command::{MessageParameters, NewChat};
use crate::conference::chat::{
    AgentChat, AgentChatState, Chat, ChatMessage, ChatMessageKind, ChatParticipant, ChatState,
    ParticipantKind, TreatAs, Visibility,
};
use crate::conference::{Conference, ConferenceKind, ConferenceNoun};
use crate::error::DomainError;
use crate::event::EventKind;
use crate::ids::{ParticipantId, UserId};

const NOUN: ConferenceNoun = ConferenceNoun::Chat;

/// A chat the actor has an agent record in.
fn involved_chat<'a>(
    conference: &'a Conference,
    actor: &Actor,
) -> Result<(&'a Chat, &'a AgentChat), DomainError> {
    conference
        .as_chat()
        .and_then(|chat| chat.agent(&actor.user_id).map(|agent| (chat, agent)))
        .ok_or_else(|| DomainError::ConferenceNotFound {
            noun: NOUN,
            id: conference.id.clone(),
        })
}

fn ensure_open(
    conference: &Conference,
    chat: &Chat,
    operation: &'static str,
) -> Result<(), DomainError> {
    if chat.is_closed() {
        return Err(DomainError::ConferenceEnded {
            noun: NOUN,
            id: conference.id.clone(),
            operation,
        });
    }
    Ok(())
}

/// The actor's participant record while they are in the chat.
fn own_participant<'a>(
    conference: &Conference,
    chat: &'a Chat,
    actor: &Actor,
) -> Result<&'a ChatParticipant, DomainError> {
    chat.present_participant_of_user(&actor.user_id)
        .ok_or_else(|| DomainError::NotInConference {
            noun: NOUN,
            id: conference.id.clone(),
            participant: actor.username.clone(),
        })
}

/// A text message the actor asked to post, validated.
pub(crate) struct MessageToPost {
    text: String,
    message_type: String,
    treat_as: TreatAs,
}

/// Checks the `text` / `messageType` / `treatAs` trio: the latter two only
/// with `text`; `treatAs` is `Normal` or `System` (default `Normal`);
/// `messageType` defaults to `Text`. `None` when no text was given.
pub(crate) fn parse_message(
    params: &MessageParameters,
) -> Result<Option<MessageToPost>, DomainError> {
    let message_type = given(params.message_type.as_deref());
    let treat_as = given(params.treat_as.as_deref());
    let Some(text) = params.text.as_deref().filter(|text| !text.is_empty()) else {
        if message_type.is_some() {
            return Err(DomainError::RequiresText {
                parameter: "messageType",
            });
        }
        if treat_as.is_some() {
            return Err(DomainError::RequiresText {
                parameter: "treatAs",
            });
        }
        return Ok(None);
    };
    let treat_as = match treat_as {
        None => TreatAs::Normal,
        Some(value) if value.eq_ignore_ascii_case("Normal") => TreatAs::Normal,
        Some(value) if value.eq_ignore_ascii_case("System") => TreatAs::System,
        Some(value) => {
            return Err(DomainError::InvalidParameter {
                parameter: "treatAs",
                value: value.to_owned(),
                expected: "Normal or System",
            });
        }
    };
    Ok(Some(MessageToPost {
        text: text.to_owned(),
        message_type: message_type.unwrap_or("Text").to_owned(),
        treat_as,
    }))
}

/// The user id a chat removal's `targetUri` / `targetPath` names.
///
/// Scheme, host and port are ignored, as are a query and a fragment; the path
/// must be `/api/v2/users/{userId}` or `/users/{userId}`.
pub fn parse_user_reference(reference: &str) -> Option<UserId> {
    let reference = reference.trim();
    let without_scheme = match reference.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, path)| path)?,
        None => reference,
    };
    let path = without_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or(without_scheme);
    let segments: Vec<&str> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let user = match segments.as_slice() {
        ["api", "v2", "users", user] | ["users", user] => *user,
        _ => return None,
    };
    Some(UserId::new(user))
}

fn post_message(
    decision: &mut Decision,
    from: &ChatParticipant,
    message: MessageToPost,
) -> Result<(), DomainError> {
    let index = next_index(decision);
    decision.record(EventKind::ChatMessagePosted {
        message: ChatMessage {
            index,
            from: from.participant_id.clone(),
            kind: ChatMessageKind::Text,
            text: Some(message.text),
            visibility: from.visibility,
            timestamp: decision.at(),
            message_type: Some(message.message_type),
            treat_as: Some(message.treat_as),
        },
    })
}

fn next_index(decision: &Decision) -> u64 {
    decision
        .state()
        .and_then(Conference::as_chat)
        .map_or(0, Chat::next_message_index)
}

/// A `ParticipantJoined` / `ParticipantLeft` log entry from `participant`.
fn presence_entry(
    decision: &Decision,
    participant: &ChatParticipant,
    kind: ChatMessageKind,
) -> ChatMessage {
    ChatMessage {
        index: next_index(decision),
        from: participant.participant_id.clone(),
        kind,
        text: None,
        // Who sees a participant come and go is who sees the participant:
        // a consulting agent's departure stays among agents.
        visibility: participant.visibility,
        timestamp: decision.at(),
        message_type: None,
        treat_as: None,
    }
}

/// Closes the chat once no agent is left in it.
fn close_if_no_agent_left(decision: &mut Decision) -> Result<(), DomainError> {
    let Some(chat) = decision.state().and_then(Conference::as_chat) else {
        return Ok(());
    };
    if chat.is_closed() || chat.present_agents().next().is_some() {
        return Ok(());
    }
    let withdrawn_invitations = chat
        .agents
        .iter()
        .filter(|agent| agent.state == AgentChatState::Invited)
        .map(|agent| agent.user_id.clone())
        .collect();
    decision.record(EventKind::ChatClosed {
        withdrawn_invitations,
    })
}

/// A chat routed to the actor: they join as its first agent, visible to all.
pub(super) fn create_chat(
    actor: &Actor,
    new: NewChat,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    if !actor.is_agent() {
        return Err(DomainError::MissingRole {
            operation: "CreateChat",
            role: Role::Agent,
        });
    }
    if given(Some(new.agent_participant_id.as_str())).is_none() {
        return Err(DomainError::MissingParameter {
            parameter: "agentParticipantId",
        });
    }
    if given(Some(new.customer_participant_id.as_str())).is_none() {
        return Err(DomainError::MissingParameter {
            parameter: "customerParticipantId",
        });
    }
    if new.agent_participant_id == new.customer_participant_id {
        return Err(DomainError::IdInUse {
            noun: NOUN,
            id: new.id.clone(),
            what: "Participant id",
            value: new.agent_participant_id.to_string(),
        });
    }
    let agent = ChatParticipant {
        participant_id: new.agent_participant_id.clone(),
        nickname: new.agent_nickname,
        kind: ParticipantKind::Agent,
        user_id: Some(actor.user_id.clone()),
        visibility: Visibility::All,
        departure: None,
    };
    let customer = ChatParticipant {
        participant_id: new.customer_participant_id.clone(),
        nickname: new.customer_nickname,
        kind: ParticipantKind::Customer,
        user_id: None,
        visibility: Visibility::All,
        departure: None,
    };
    let mut messages = Vec::with_capacity(new.history.len());
    for (index, earlier) in (0_u64..).zip(new.history) {
        if earlier.from != agent.participant_id && earlier.from != customer.participant_id {
            return Err(DomainError::InvalidParameter {
                parameter: "history.from",
                value: earlier.from.to_string(),
                expected: "the agent's or the customer's participant id",
            });
        }
        messages.push(ChatMessage {
            index,
            from: earlier.from,
            kind: earlier.kind,
            text: earlier.text,
            visibility: Visibility::All,
            timestamp: earlier.timestamp,
            message_type: None,
            treat_as: None,
        });
    }
    let chat = Chat {
        state: ChatState::Open,
        user_data: new.user_data,
        participants: vec![agent, customer],
        messages,
        agents: vec![AgentChat {
            user_id: actor.user_id.clone(),
            state: AgentChatState::Chatting,
            visibility: Visibility::All,
            participant_id: Some(new.agent_participant_id),
            invited_by: None,
        }],
    };
    decision.record(EventKind::ConferenceCreated {
        conference: Box::new(Conference {
            id: new.id,
            version: 1,
            created_at: decision.at(),
            created_by: actor.user_id.clone(),
            kind: ConferenceKind::Chat(chat),
        }),
    })
}

/// GWS chat `Invite` (visibility All) and `Consult` (visibility Agents).
pub(super) fn invite(
    conference: &Conference,
    actor: &Actor,
    target_user: UserId,
    visibility: Visibility,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    let operation = match visibility {
        Visibility::All => "Invite",
        Visibility::Agents => "Consult",
    };
    let (chat, _) = involved_chat(conference, actor)?;
    if given(Some(target_user.as_str())).is_none() {
        return Err(DomainError::MissingParameter {
            parameter: "targetUri",
        });
    }
    ensure_open(conference, chat, operation)?;
    let inviter = own_participant(conference, chat, actor)?;
    if inviter.visibility != Visibility::All {
        return Err(DomainError::NotVisibleToAll {
            id: conference.id.clone(),
            operation,
        });
    }
    if target_user == actor.user_id {
        return Err(DomainError::InvalidParameter {
            parameter: "targetUri",
            value: target_user.to_string(),
            expected: "another agent",
        });
    }
    let already = chat.agent(&target_user).is_some_and(|agent| {
        matches!(
            agent.state,
            AgentChatState::Invited | AgentChatState::Chatting
        )
    });
    if already {
        return Err(DomainError::AlreadyInConference {
            noun: NOUN,
            id: conference.id.clone(),
            participant: target_user.to_string(),
        });
    }
    decision.record(EventKind::AgentInvited {
        agent: target_user,
        visibility,
        invited_by: actor.user_id.clone(),
    })
}

/// GWS chat `Accept`: an invited agent joins with a new participant id.
pub(super) fn accept(
    conference: &Conference,
    actor: &Actor,
    participant_id: ParticipantId,
    nickname: String,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "Accept";
    let (chat, agent) = involved_chat(conference, actor)?;
    // Invitations name any user id; only an agent may take one up.
    if !actor.is_agent() {
        return Err(DomainError::MissingRole {
            operation: OPERATION,
            role: Role::Agent,
        });
    }
    if given(Some(participant_id.as_str())).is_none() {
        return Err(DomainError::MissingParameter {
            parameter: "participantId",
        });
    }
    ensure_open(conference, chat, OPERATION)?;
    if agent.state != AgentChatState::Invited {
        return Err(DomainError::NotInvited {
            id: conference.id.clone(),
            user: actor.user_id.clone(),
        });
    }
    if chat.participant(&participant_id).is_some() {
        return Err(DomainError::IdInUse {
            noun: NOUN,
            id: conference.id.clone(),
            what: "Participant id",
            value: participant_id.to_string(),
        });
    }
    let participant = ChatParticipant {
        participant_id,
        nickname,
        kind: ParticipantKind::Agent,
        user_id: Some(actor.user_id.clone()),
        visibility: agent.visibility,
        departure: None,
    };
    let entry = presence_entry(decision, &participant, ChatMessageKind::ParticipantJoined);
    decision.record(EventKind::ChatParticipantJoined { participant, entry })
}

/// GWS chat `Reject` of an invitation: the agent is done with the chat.
pub(super) fn reject(
    conference: &Conference,
    actor: &Actor,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    let (_, agent) = involved_chat(conference, actor)?;
    if agent.state != AgentChatState::Invited {
        return Err(DomainError::NotInvited {
            id: conference.id.clone(),
            user: actor.user_id.clone(),
        });
    }
    decision.record(EventKind::InvitationRejected {
        agent: actor.user_id.clone(),
    })
}

/// GWS chat `SendMessage`: `text` is required.
pub(super) fn send_message(
    conference: &Conference,
    actor: &Actor,
    params: &MessageParameters,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "SendMessage";
    let (chat, _) = involved_chat(conference, actor)?;
    let message =
        parse_message(params)?.ok_or(DomainError::MissingParameter { parameter: "text" })?;
    ensure_open(conference, chat, OPERATION)?;
    let sender = own_participant(conference, chat, actor)?;
    post_message(decision, sender, message)
}

/// GWS chat `Leave`: the agent leaves (state `LeftChat`), after an optional message.
pub(super) fn leave(
    conference: &Conference,
    actor: &Actor,
    params: &MessageParameters,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "Leave";
    let (chat, _) = involved_chat(conference, actor)?;
    let message = parse_message(params)?;
    ensure_open(conference, chat, OPERATION)?;
    let leaver = own_participant(conference, chat, actor)?;
    depart(decision, leaver, message)?;
    close_if_no_agent_left(decision)
}

/// Posts the optional parting message, then the participant's departure.
fn depart(
    decision: &mut Decision,
    participant: &ChatParticipant,
    message: Option<MessageToPost>,
) -> Result<(), DomainError> {
    if let Some(message) = message {
        post_message(decision, participant, message)?;
    }
    let entry = presence_entry(decision, participant, ChatMessageKind::ParticipantLeft);
    decision.record(EventKind::ChatParticipantLeft {
        participant: participant.clone(),
        entry,
    })
}

/// GWS chat `Complete`: a chatting agent leaves and completes; an agent who
/// already left completes (wrap-up), even once the chat is closed.
pub(super) fn complete(
    conference: &Conference,
    actor: &Actor,
    params: &MessageParameters,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "Complete";
    let (chat, agent) = involved_chat(conference, actor)?;
    let message = parse_message(params)?;
    match agent.state {
        AgentChatState::Chatting => {
            ensure_open(conference, chat, OPERATION)?;
            let leaver = own_participant(conference, chat, actor)?;
            depart(decision, leaver, message)?;
        }
        AgentChatState::LeftChat => {
            if message.is_some() {
                return Err(DomainError::InvalidState {
                    noun: NOUN,
                    id: conference.id.clone(),
                    operation: OPERATION,
                    reason: "you already left the chat, so no message can be sent".into(),
                });
            }
        }
        state @ (AgentChatState::Invited | AgentChatState::Completed) => {
            return Err(DomainError::InvalidState {
                noun: NOUN,
                id: conference.id.clone(),
                operation: OPERATION,
                reason: format!("your chat is {state:?}"),
            });
        }
    }
    decision.record(EventKind::AgentChatStateChanged {
        agent: actor.user_id.clone(),
        state: AgentChatState::Completed,
    })?;
    close_if_no_agent_left(decision)
}

/// Where a chat removal's target came from.
pub(super) struct RemovalTarget<'a> {
    pub target_uri: Option<&'a str>,
    pub target_path: Option<&'a str>,
}

impl RemovalTarget<'_> {
    /// The user named by `targetUri` and/or `targetPath`; when both are given
    /// they must name the same user.
    fn user(&self) -> Result<UserId, DomainError> {
        let parse = |parameter: &'static str, value: &str| {
            parse_user_reference(value).ok_or_else(|| DomainError::InvalidParameter {
                parameter,
                value: value.to_owned(),
                expected: "a user URI or path such as /api/v2/users/{userId}",
            })
        };
        match (given(self.target_uri), given(self.target_path)) {
            (None, None) => Err(DomainError::MissingParameter {
                parameter: "targetUri",
            }),
            (Some(uri), None) => parse("targetUri", uri),
            (None, Some(path)) => parse("targetPath", path),
            (Some(uri), Some(path)) => {
                let from_uri = parse("targetUri", uri)?;
                let from_path = parse("targetPath", path)?;
                if from_uri != from_path {
                    return Err(DomainError::ConflictingParameters {
                        first: "targetUri",
                        second: "targetPath",
                    });
                }
                Ok(from_uri)
            }
        }
    }
}

/// GWS chat `RemoveParticipantFromConference`.
///
/// Only an agent in the chat who is visible to all may remove; the target is
/// another agent in the chat (not the customer, not the remover). With `text`,
/// the message is posted before the removed agent's `ParticipantLeft` entry.
/// The removed agent's own chat goes to `LeftChat`, then `Completed`.
pub(super) fn remove_participant(
    conference: &Conference,
    actor: &Actor,
    target: RemovalTarget<'_>,
    params: &MessageParameters,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "RemoveParticipantFromConference";
    let (chat, _) = involved_chat(conference, actor)?;
    let target_user = target.user()?;
    let message = parse_message(params)?;
    ensure_open(conference, chat, OPERATION)?;
    let remover = own_participant(conference, chat, actor)?;
    if remover.visibility != Visibility::All {
        return Err(DomainError::NotVisibleToAll {
            id: conference.id.clone(),
            operation: OPERATION,
        });
    }
    let removed = find_removal_target(conference, chat, &target_user)?;
    if removed.participant_id == remover.participant_id {
        return Err(DomainError::CannotRemoveSelf {
            id: conference.id.clone(),
        });
    }
    let Some(removed_user) = removed.user_id.clone() else {
        return Err(DomainError::CannotRemoveCustomer {
            id: conference.id.clone(),
            participant: removed.participant_id.to_string(),
        });
    };
    if let Some(message) = message {
        post_message(decision, remover, message)?;
    }
    let entry = presence_entry(decision, removed, ChatMessageKind::ParticipantLeft);
    decision.record(EventKind::ChatParticipantRemoved {
        participant: removed.clone(),
        removed_by: remover.clone(),
        entry,
    })?;
    decision.record(EventKind::AgentChatStateChanged {
        agent: removed_user,
        state: AgentChatState::Completed,
    })
}

/// The present participant a removal names: an agent by user id or, so that
/// naming the customer gets a clear refusal, any participant by participant id.
fn find_removal_target<'a>(
    conference: &Conference,
    chat: &'a Chat,
    target: &UserId,
) -> Result<&'a ChatParticipant, DomainError> {
    chat.present_participant_of_user(target)
        .or_else(|| {
            chat.present_participants()
                .find(|participant| participant.participant_id.as_str() == target.as_str())
        })
        .ok_or_else(|| DomainError::NotInConference {
            noun: NOUN,
            id: conference.id.clone(),
            participant: target.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_references() {
        let expected = Some(UserId::new("c30d06daa1ea43b8be79f9b071f30d70"));
        for reference in [
            "http://10.10.15.212:9090/api/v2/users/c30d06daa1ea43b8be79f9b071f30d70",
            "https://gws.example.com/api/v2/users/c30d06daa1ea43b8be79f9b071f30d70/",
            "/api/v2/users/c30d06daa1ea43b8be79f9b071f30d70",
            "/users/c30d06daa1ea43b8be79f9b071f30d70",
            " /users/c30d06daa1ea43b8be79f9b071f30d70?x=1#top ",
        ] {
            assert_eq!(parse_user_reference(reference), expected, "{reference}");
        }
        for reference in [
            "",
            "http://10.10.15.212:9090",
            "/api/v2/chats/00010a9FSGFP001F",
            "/api/v2/users/a/b",
            "/api/v2/users/",
            "c30d06daa1ea43b8be79f9b071f30d70",
        ] {
            assert_eq!(parse_user_reference(reference), None, "{reference}");
        }
    }

    #[test]
    fn message_parameters() {
        let only_type = MessageParameters {
            message_type: Some("Text".into()),
            ..MessageParameters::default()
        };
        assert!(matches!(
            parse_message(&only_type),
            Err(DomainError::RequiresText {
                parameter: "messageType"
            })
        ));
        let only_treat_as = MessageParameters {
            treat_as: Some("System".into()),
            ..MessageParameters::default()
        };
        assert!(matches!(
            parse_message(&only_treat_as),
            Err(DomainError::RequiresText {
                parameter: "treatAs"
            })
        ));
        let bad = MessageParameters {
            text: Some("hi".into()),
            treat_as: Some("Loud".into()),
            ..MessageParameters::default()
        };
        assert!(matches!(
            parse_message(&bad),
            Err(DomainError::InvalidParameter {
                parameter: "treatAs",
                ..
            })
        ));
        let defaults = parse_message(&MessageParameters::text("hi")).ok().flatten();
        assert!(
            defaults.is_some_and(|message| message.message_type == "Text"
                && message.treat_as == TreatAs::Normal
                && message.text == "hi")
        );
        assert!(matches!(
            parse_message(&MessageParameters::default()),
            Ok(None)
        ));
    }
}
