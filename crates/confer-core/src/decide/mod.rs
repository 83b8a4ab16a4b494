//! `decide`: whether a command is allowed, and which events it causes.
//!
//! Pure and deterministic: the same conference, actor, command and time give
//! the same events. Nothing is changed here; the caller stores the events and
//! folds them with [`crate::apply()`].
//!
//! ## Who may see a conference
//! A conference the actor has no part in does not exist for them: commands on
//! it are refused with `ConferenceNotFound` (like GWS's `/me/...` resources),
//! so refusals never reveal other people's calls. "Having a part" means: for a
//! call, being its owner, one of its parties (now or before) or a supervisor
//! monitoring it (any supervisor may start monitoring); for a chat, having an
//! agent record in it (invited, chatting, left, completed); for a session,
//! belonging to its account (an account member without the `User` role gets
//! `MissingRole`).

mod chat;
mod session;
mod voice;

pub use chat::parse_user_reference;

use crate::actor::Actor;
use crate::apply::apply;
use crate::command::Command;
use crate::conference::Conference;
use crate::conference::chat::Visibility;
use crate::error::DomainError;
use crate::event::{Event, EventKind};
use crate::ids::{ConferenceId, UserId};
use crate::time::Timestamp;

/// Decides what `command` by `actor` at `now` does to `current` (the conference
/// the command names, or `None` if it does not exist yet).
///
/// Returns the events to store, numbered from `current.version + 1`, or why the
/// command is refused. Never panics.
pub fn decide(
    current: Option<&Conference>,
    actor: &Actor,
    command: Command,
    now: Timestamp,
) -> Result<Vec<Event>, DomainError> {
    let id = command.conference_id().clone();
    if let Some(conference) = current
        && conference.id != id
    {
        return Err(DomainError::CommandTargetMismatch {
            command: id,
            loaded: conference.id.clone(),
        });
    }
    if id.as_str().trim().is_empty() {
        return Err(DomainError::MissingParameter { parameter: "id" });
    }
    let mut decision = Decision::new(current, actor, now, id.clone());
    match (current, command.creates_conference()) {
        (Some(_), true) => {
            return Err(DomainError::ConferenceAlreadyExists {
                noun: command.noun(),
                id,
            });
        }
        (None, false) => {
            return Err(DomainError::ConferenceNotFound {
                noun: command.noun(),
                id,
            });
        }
        (None, true) => decide_creation(actor, command, &mut decision)?,
        (Some(conference), false) => decide_change(conference, actor, command, &mut decision)?,
    }
    Ok(decision.into_events())
}

/// Decides and applies: the new state and the events that led to it.
/// Convenient for callers that keep the state in memory.
pub fn execute(
    current: Option<&Conference>,
    actor: &Actor,
    command: Command,
    now: Timestamp,
) -> Result<(Conference, Vec<Event>), DomainError> {
    let events = decide(current, actor, command, now)?;
    let mut state = current.cloned();
    for event in &events {
        state = Some(apply(state, event)?);
    }
    match state {
        Some(conference) => Ok((conference, events)),
        // decide never returns Ok without events for a missing conference, but
        // saying so here costs nothing and avoids a panic path.
        None => Err(DomainError::EventDoesNotApply {
            id: events
                .first()
                .map(|event| event.conference_id.clone())
                .unwrap_or_else(|| ConferenceId::new("")),
            version: 0,
            reason: "no event created the conference".into(),
        }),
    }
}

fn decide_creation(
    actor: &Actor,
    command: Command,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    match command {
        Command::CreateCall(new) => voice::create_call(actor, new, decision),
        Command::Dial(new) => voice::dial(actor, new, decision),
        Command::CreateChat(new) => chat::create_chat(actor, new, decision),
        Command::CreateSession(new) => session::create_session(actor, new, decision),
        other => Err(DomainError::ConferenceNotFound {
            noun: other.noun(),
            id: other.conference_id().clone(),
        }),
    }
}

fn decide_change(
    conference: &Conference,
    actor: &Actor,
    command: Command,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    match command {
        Command::Answer { .. } => voice::answer(conference, actor, decision),
        Command::SingleStepConference {
            destination,
            destination_user,
            ..
        } => voice::single_step_conference(
            conference,
            actor,
            &destination,
            destination_user,
            decision,
        ),
        Command::RemoveParticipantFromCall { participant, .. } => {
            voice::remove_participant(conference, actor, &participant, decision)
        }
        Command::Hangup { .. } => voice::hangup(conference, actor, decision),
        Command::ClearCall { .. } => voice::clear_call(conference, actor, decision),
        Command::Hold { .. } => voice::hold(conference, actor, true, decision),
        Command::Retrieve { .. } => voice::hold(conference, actor, false, decision),
        Command::StartMonitoring {
            monitored_user,
            kind,
            scope,
            mode,
            ..
        } => voice::start_monitoring(
            conference,
            actor,
            voice::MonitoringRequest {
                monitored_user,
                kind,
                scope,
                mode,
            },
            decision,
        ),
        Command::StopMonitoring { .. } => voice::stop_monitoring(conference, actor, decision),

        Command::InviteToChat { target_user, .. } => {
            chat::invite(conference, actor, target_user, Visibility::All, decision)
        }
        Command::ConsultInChat { target_user, .. } => {
            chat::invite(conference, actor, target_user, Visibility::Agents, decision)
        }
        Command::AcceptChat {
            participant_id,
            nickname,
            ..
        } => chat::accept(conference, actor, participant_id, nickname, decision),
        Command::RejectChat { .. } => chat::reject(conference, actor, decision),
        Command::SendChatMessage { message, .. } => {
            chat::send_message(conference, actor, &message, decision)
        }
        Command::LeaveChat { message, .. } => chat::leave(conference, actor, &message, decision),
        Command::CompleteChat { message, .. } => {
            chat::complete(conference, actor, &message, decision)
        }
        Command::RemoveParticipantFromChat {
            target_uri,
            target_path,
            message,
            ..
        } => chat::remove_participant(
            conference,
            actor,
            chat::RemovalTarget {
                target_uri: target_uri.as_deref(),
                target_path: target_path.as_deref(),
            },
            &message,
            decision,
        ),

        Command::InviteSessionMember {
            member_id,
            member_to_add,
            display_name,
            role,
            ..
        } => session::invite_member(
            conference,
            actor,
            session::MemberInvitation {
                member_id,
                member_to_add,
                display_name,
                role,
            },
            decision,
        ),
        Command::RemoveSessionMember {
            member_id,
            member_to_remove,
            ..
        } => session::remove_member(
            conference,
            actor,
            member_id.as_deref(),
            member_to_remove.as_deref(),
            decision,
        ),
        Command::EndSession { .. } => session::end_session(conference, actor, decision),

        creation @ (Command::CreateCall(_)
        | Command::Dial(_)
        | Command::CreateChat(_)
        | Command::CreateSession(_)) => Err(DomainError::ConferenceAlreadyExists {
            noun: creation.noun(),
            id: conference.id.clone(),
        }),
    }
}

/// The events of one decision, numbered and applied as they are recorded so
/// that a later event of the same decision is decided on the state the earlier
/// ones made (the chat log index after a posted message, the parties left
/// after a removal).
pub(crate) struct Decision {
    state: Option<Conference>,
    events: Vec<Event>,
    conference_id: ConferenceId,
    at: Timestamp,
    by: UserId,
}

impl Decision {
    fn new(current: Option<&Conference>, actor: &Actor, at: Timestamp, id: ConferenceId) -> Self {
        Self {
            state: current.cloned(),
            events: Vec::new(),
            conference_id: id,
            at,
            by: actor.user_id.clone(),
        }
    }

    /// Records one more event, applying it to the working state.
    pub(crate) fn record(&mut self, kind: EventKind) -> Result<(), DomainError> {
        let version = self
            .state
            .as_ref()
            .map_or(Some(1), |state| state.version.checked_add(1))
            .ok_or_else(|| DomainError::EventDoesNotApply {
                id: self.conference_id.clone(),
                version: u64::MAX,
                reason: "the version counter is exhausted".into(),
            })?;
        let event = Event {
            conference_id: self.conference_id.clone(),
            version,
            occurred_at: self.at,
            by: self.by.clone(),
            kind,
        };
        self.state = Some(apply(self.state.take(), &event)?);
        self.events.push(event);
        Ok(())
    }

    /// The state after the events recorded so far.
    pub(crate) fn state(&self) -> Option<&Conference> {
        self.state.as_ref()
    }

    /// The time of the decision.
    pub(crate) fn at(&self) -> Timestamp {
        self.at
    }

    fn into_events(self) -> Vec<Event> {
        self.events
    }
}

/// The text of an optional parameter, `None` when absent or blank.
pub(crate) fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|text| !text.is_empty())
}
