//! `apply`: the state after one more event. Replaying a conference's events from
//! nothing rebuilds it exactly.
//!
//! `apply` checks that the event belongs where it is applied (same conference,
//! next version, an event of that kind of conference, about participants that
//! exist). Events produced by [`crate::decide()`] always fit; an event that does
//! not is reported as [`DomainError::EventDoesNotApply`] (a corrupt or foreign
//! log) instead of being half-applied or panicking.

use crate::conference::chat::{
    AgentChat, AgentChatState, Chat, ChatDeparture, ChatDepartureReason, ChatMessage,
    ChatParticipant, ChatState, ParticipantKind,
};
use crate::conference::session::{
    DialState, MemberCallState, QueueState, Session, SessionCallState,
};
use crate::conference::voice::{Call, CallState, Party, PartyDeparture, PartyDepartureReason};
use crate::conference::{Conference, ConferenceKind};
use crate::error::DomainError;
use crate::event::{Event, EventKind};
use crate::ids::{PhoneNumber, UserId};
use crate::time::Timestamp;

/// The conference after `event`; `current` is `None` before the creation event.
pub fn apply(current: Option<Conference>, event: &Event) -> Result<Conference, DomainError> {
    let does_not_apply = |reason: &str| DomainError::EventDoesNotApply {
        id: event.conference_id.clone(),
        version: event.version,
        reason: reason.to_owned(),
    };
    let mut conference = match (current, &event.kind) {
        (None, EventKind::ConferenceCreated { conference }) => {
            if event.version != 1 || conference.version != 1 {
                return Err(does_not_apply("a conference is created at version 1"));
            }
            if conference.id != event.conference_id {
                return Err(does_not_apply("the created conference has another id"));
            }
            return Ok(conference.as_ref().clone());
        }
        (None, _) => return Err(does_not_apply("the conference does not exist yet")),
        (Some(_), EventKind::ConferenceCreated { .. }) => {
            return Err(does_not_apply("the conference already exists"));
        }
        (Some(conference), _) => conference,
    };
    if conference.id != event.conference_id {
        return Err(does_not_apply("the event is about another conference"));
    }
    if conference.version.checked_add(1) != Some(event.version) {
        return Err(does_not_apply(
            "the event does not follow the current version",
        ));
    }
    let changed = match &mut conference.kind {
        ConferenceKind::Voice(call) => apply_to_call(call, event),
        ConferenceKind::Chat(chat) => apply_to_chat(chat, event),
        ConferenceKind::Session(session) => apply_to_session(session, event),
    };
    changed.map_err(does_not_apply)?;
    conference.version = event.version;
    Ok(conference)
}

/// Rebuilds a conference from its events, oldest first (`None` for no events).
pub fn replay<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<Option<Conference>, DomainError> {
    let mut state = None;
    for event in events {
        state = Some(apply(state, event)?);
    }
    Ok(state)
}

/// Why an event does not fit the state; turned into `EventDoesNotApply` by `apply`.
type Fit = Result<(), &'static str>;

const NOT_A_CALL_EVENT: &str = "the event is not about a voice call";
const NOT_A_CHAT_EVENT: &str = "the event is not about a chat";
const NOT_A_SESSION_EVENT: &str = "the event is not about a session";

fn apply_to_call(call: &mut Call, event: &Event) -> Fit {
    match &event.kind {
        EventKind::PartyAdded { party } => {
            call.parties.push(party.clone());
        }
        EventKind::CallAnswered { .. } => {
            call.state = CallState::Established;
        }
        EventKind::PartyHeld { phone_number } => {
            present_party_mut(call, phone_number)?.held = true;
        }
        EventKind::PartyRetrieved { phone_number } => {
            present_party_mut(call, phone_number)?.held = false;
        }
        EventKind::PartyRemoved { party, removed_by } => {
            depart_party(
                call,
                &party.phone_number,
                event.occurred_at,
                PartyDepartureReason::RemovedBy(removed_by.clone()),
            )?;
        }
        EventKind::PartyLeft { party } => {
            depart_party(
                call,
                &party.phone_number,
                event.occurred_at,
                PartyDepartureReason::HungUp,
            )?;
        }
        EventKind::CallReleased { .. } => {
            call.state = CallState::Released;
        }
        EventKind::MonitoringStarted { monitoring } => {
            if call.monitoring_by(&monitoring.supervisor).is_some() {
                return Err("the supervisor is already monitoring this call");
            }
            call.monitoring.push(monitoring.clone());
        }
        EventKind::MonitoringStopped { monitoring } => {
            let active = call
                .monitoring
                .iter_mut()
                .find(|existing| {
                    existing.stopped_at.is_none() && existing.supervisor == monitoring.supervisor
                })
                .ok_or("the supervisor is not monitoring this call")?;
            active.stopped_at = Some(event.occurred_at);
        }
        _ => return Err(NOT_A_CALL_EVENT),
    }
    Ok(())
}

fn present_party_mut<'a>(
    call: &'a mut Call,
    phone_number: &PhoneNumber,
) -> Result<&'a mut Party, &'static str> {
    call.parties
        .iter_mut()
        .find(|party| party.is_present() && &party.phone_number == phone_number)
        .ok_or("no present party has that phone number")
}

fn depart_party(
    call: &mut Call,
    phone_number: &PhoneNumber,
    at: Timestamp,
    reason: PartyDepartureReason,
) -> Fit {
    let party = present_party_mut(call, phone_number)?;
    party.held = false;
    party.departure = Some(PartyDeparture { at, reason });
    Ok(())
}

fn apply_to_chat(chat: &mut Chat, event: &Event) -> Fit {
    match &event.kind {
        EventKind::AgentInvited {
            agent,
            visibility,
            invited_by,
        } => {
            let invitation = AgentChat {
                user_id: agent.clone(),
                state: AgentChatState::Invited,
                visibility: *visibility,
                participant_id: None,
                invited_by: Some(invited_by.clone()),
            };
            // A re-invited agent (who left or was removed before) starts afresh.
            chat.agents.retain(|existing| &existing.user_id != agent);
            chat.agents.push(invitation);
        }
        EventKind::InvitationRejected { agent } => {
            agent_mut(chat, agent)?.state = AgentChatState::Completed;
        }
        EventKind::ChatParticipantJoined { participant, entry } => {
            if chat.participant(&participant.participant_id).is_some() {
                return Err("the participant id is already used in this chat");
            }
            chat.participants.push(participant.clone());
            append_message(chat, entry)?;
            if let Some(user) = &participant.user_id {
                let agent = agent_mut(chat, user)?;
                agent.state = AgentChatState::Chatting;
                agent.participant_id = Some(participant.participant_id.clone());
                agent.visibility = participant.visibility;
            }
        }
        EventKind::ChatMessagePosted { message } => {
            append_message(chat, message)?;
        }
        EventKind::ChatParticipantLeft { participant, entry } => {
            depart_participant(
                chat,
                participant,
                event.occurred_at,
                ChatDepartureReason::Left,
            )?;
            append_message(chat, entry)?;
        }
        EventKind::ChatParticipantRemoved {
            participant,
            removed_by,
            entry,
        } => {
            depart_participant(
                chat,
                participant,
                event.occurred_at,
                ChatDepartureReason::RemovedBy(removed_by.participant_id.clone()),
            )?;
            append_message(chat, entry)?;
        }
        EventKind::AgentChatStateChanged { agent, state } => {
            agent_mut(chat, agent)?.state = *state;
        }
        EventKind::ChatClosed {
            withdrawn_invitations,
        } => {
            chat.state = ChatState::Closed;
            for participant in chat.participants.iter_mut().filter(|p| p.is_present()) {
                participant.departure = Some(ChatDeparture {
                    at: event.occurred_at,
                    reason: ChatDepartureReason::ChatClosed,
                });
            }
            for user in withdrawn_invitations {
                agent_mut(chat, user)?.state = AgentChatState::Completed;
            }
        }
        _ => return Err(NOT_A_CHAT_EVENT),
    }
    Ok(())
}

fn agent_mut<'a>(chat: &'a mut Chat, user: &UserId) -> Result<&'a mut AgentChat, &'static str> {
    chat.agents
        .iter_mut()
        .find(|agent| &agent.user_id == user)
        .ok_or("the agent has no record in this chat")
}

fn append_message(chat: &mut Chat, message: &ChatMessage) -> Fit {
    if message.index != chat.next_message_index() {
        return Err("the log entry does not follow the last one");
    }
    chat.messages.push(message.clone());
    Ok(())
}

/// Marks a present participant as gone; an agent's own state becomes `LeftChat`.
fn depart_participant(
    chat: &mut Chat,
    participant: &ChatParticipant,
    at: Timestamp,
    reason: ChatDepartureReason,
) -> Fit {
    let record = chat
        .participants
        .iter_mut()
        .find(|p| p.is_present() && p.participant_id == participant.participant_id)
        .ok_or("no present participant has that id")?;
    record.departure = Some(ChatDeparture { at, reason });
    if record.kind == ParticipantKind::Agent
        && let Some(user) = record.user_id.clone()
    {
        agent_mut(chat, &user)?.state = AgentChatState::LeftChat;
    }
    Ok(())
}

fn apply_to_session(session: &mut Session, event: &Event) -> Fit {
    match &event.kind {
        EventKind::SessionMemberAdded { member, entry } => {
            if session.member(&member.member_id).is_some() {
                return Err("the member id is already used in this session");
            }
            session.members.push(member.clone());
            session.log.push(entry.clone());
        }
        EventKind::SessionMemberRemoved { member, entry } => {
            let position = session
                .members
                .iter()
                .position(|existing| existing.member_id == member.member_id)
                .ok_or("no member has that id")?;
            session.members.remove(position);
            session.log.push(entry.clone());
        }
        EventKind::SessionEnded { entry, .. } => {
            session.ended = true;
            session.date_completed = Some(event.occurred_at);
            session.call_state = SessionCallState::Disconnected;
            session.dial_state = DialState::None;
            if session.queue_state != QueueState::None {
                session.queue_state = QueueState::Disconnected;
            }
            for member in &mut session.members {
                member.call_state = MemberCallState::None;
            }
            session.log.push(entry.clone());
        }
        _ => return Err(NOT_A_SESSION_EVENT),
    }
    session.date_last_modified = event.occurred_at;
    session.last_modified_by = event.by.clone();
    Ok(())
}
