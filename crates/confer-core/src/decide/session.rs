//! Rules of Evo Voice sessions.

use super::{Decision, given};
use crate::actor::{Actor, Role};
use crate::command::NewSession;
use crate::conference::session::{
    DialState, HoldReason, MemberCallState, MemberRole, QueueState, Session, SessionCallState,
    SessionLogEntry, SessionMember, same_identity,
};
use crate::conference::{Conference, ConferenceKind, ConferenceNoun};
use crate::error::DomainError;
use crate::event::{EventKind, SessionEndReason};
use crate::ids::{ConferenceId, MemberId};

const NOUN: ConferenceNoun = ConferenceNoun::Session;

/// The session, if the actor may act on it: sessions of other accounts do not
/// exist for them; account members need Evo's `User` role.
fn accessible_session<'a>(
    conference: &'a Conference,
    actor: &Actor,
    operation: &'static str,
) -> Result<&'a Session, DomainError> {
    let session = conference
        .as_session()
        .filter(|session| actor.accounts.contains(&session.account_id))
        .ok_or_else(|| DomainError::ConferenceNotFound {
            noun: NOUN,
            id: conference.id.clone(),
        })?;
    if !actor.is_evo_user_in(&session.account_id) {
        return Err(DomainError::MissingRole {
            operation,
            role: Role::User,
        });
    }
    Ok(session)
}

fn ensure_not_ended(
    conference: &Conference,
    session: &Session,
    operation: &'static str,
) -> Result<(), DomainError> {
    if session.ended {
        return Err(DomainError::ConferenceEnded {
            noun: NOUN,
            id: conference.id.clone(),
            operation,
        });
    }
    Ok(())
}

fn log_entry(decision: &Decision, message: String) -> SessionLogEntry {
    SessionLogEntry {
        date: decision.at(),
        message,
    }
}

/// Evo `NewSession` in one of the actor's accounts.
pub(super) fn create_session(
    actor: &Actor,
    new: NewSession,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "NewSession";
    if !actor.accounts.contains(&new.account_id) {
        return Err(DomainError::NotAccountMember {
            user: actor.user_id.clone(),
            account: new.account_id,
        });
    }
    if !actor.is_evo_user_in(&new.account_id) {
        return Err(DomainError::MissingRole {
            operation: OPERATION,
            role: Role::User,
        });
    }
    let mut members: Vec<SessionMember> = Vec::with_capacity(new.members.len());
    for member in new.members {
        let identity = given(Some(&member.identity))
            .ok_or(DomainError::MissingParameter {
                parameter: "members.identity",
            })?
            .to_owned();
        check_member_is_new(&new.id, &members, &member.member_id, &identity)?;
        members.push(SessionMember {
            member_id: member.member_id,
            identity,
            display_name: member.display_name,
            role: member.role,
            call_state: member.call_state,
            is_original_member: true,
            muted: false,
            call_sid: None,
            endpoint_id: None,
            avatar_url: None,
            application_data: Default::default(),
        });
    }
    let call_state = if members.iter().any(|member| {
        matches!(
            member.call_state,
            MemberCallState::Connected | MemberCallState::Hold
        )
    }) {
        SessionCallState::Connected
    } else if members.iter().any(SessionMember::is_on_call) {
        SessionCallState::Ringing
    } else {
        SessionCallState::Disconnected
    };
    let dial_state = if call_state == SessionCallState::Disconnected {
        DialState::None
    } else {
        DialState::Active
    };
    let session = Session {
        account_id: new.account_id,
        account_name: new.account_name,
        channel: new.channel,
        direction: new.direction,
        dial_state,
        call_state,
        queue_state: QueueState::None,
        hold_reason: HoldReason::None,
        ended: false,
        date_completed: None,
        date_last_modified: decision.at(),
        last_modified_by: actor.user_id.clone(),
        members,
        log: vec![log_entry(
            decision,
            format!("{} created the session", actor.display_identity()),
        )],
        details: new.details,
    };
    decision.record(EventKind::ConferenceCreated {
        conference: Box::new(Conference {
            id: new.id,
            version: 1,
            created_at: decision.at(),
            created_by: actor.user_id.clone(),
            kind: ConferenceKind::Session(session),
        }),
    })
}

/// Member ids and identities are unique within a session.
fn check_member_is_new(
    session_id: &ConferenceId,
    members: &[SessionMember],
    member_id: &MemberId,
    identity: &str,
) -> Result<(), DomainError> {
    if given(Some(member_id.as_str())).is_none() {
        return Err(DomainError::MissingParameter {
            parameter: "memberId",
        });
    }
    if members.iter().any(|member| &member.member_id == member_id) {
        return Err(DomainError::IdInUse {
            noun: NOUN,
            id: session_id.clone(),
            what: "Member id",
            value: member_id.to_string(),
        });
    }
    if members
        .iter()
        .any(|member| same_identity(&member.identity, identity))
    {
        return Err(DomainError::AlreadyInConference {
            noun: NOUN,
            id: session_id.clone(),
            participant: identity.to_owned(),
        });
    }
    Ok(())
}

/// What Evo `InviteChatMember` asks for.
pub(super) struct MemberInvitation {
    pub member_id: MemberId,
    pub member_to_add: String,
    pub display_name: Option<String>,
    pub role: MemberRole,
}

/// Evo `InviteChatMember`. The core has no telephony: the member is taken as
/// connected once invited (the telephony layer reports only the outcome).
pub(super) fn invite_member(
    conference: &Conference,
    actor: &Actor,
    invitation: MemberInvitation,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "InviteChatMember";
    let session = accessible_session(conference, actor, OPERATION)?;
    let identity = given(Some(&invitation.member_to_add))
        .ok_or(DomainError::MissingParameter {
            parameter: "memberToAdd",
        })?
        .to_owned();
    ensure_not_ended(conference, session, OPERATION)?;
    check_member_is_new(
        &conference.id,
        &session.members,
        &invitation.member_id,
        &identity,
    )?;
    let entry = log_entry(
        decision,
        format!("{} added {}", actor.display_identity(), identity),
    );
    decision.record(EventKind::SessionMemberAdded {
        member: SessionMember {
            member_id: invitation.member_id,
            identity,
            display_name: invitation.display_name,
            role: invitation.role,
            call_state: MemberCallState::Connected,
            is_original_member: false,
            muted: false,
            call_sid: None,
            endpoint_id: None,
            avatar_url: None,
            application_data: Default::default(),
        },
        entry,
    })
}

/// Evo `DeleteChatMember`.
///
/// Any user with role `User` in the session's account may remove. The member
/// is named by `MemberToRemove` (member id, phone number or email) or, when
/// that is absent, by the `{memberId}` path segment. The real service has no
/// request property for the path segment, so when `MemberToRemove` is given a
/// path segment that names nobody is ignored; one that names *another* member
/// is refused rather than guessed at. When no member is left on the call, the
/// session ends.
pub(super) fn remove_member(
    conference: &Conference,
    actor: &Actor,
    member_id: Option<&str>,
    member_to_remove: Option<&str>,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "DeleteChatMember";
    let session = accessible_session(conference, actor, OPERATION)?;
    let (by_path, by_query) = (given(member_id), given(member_to_remove));
    let Some(reference) = by_query.or(by_path) else {
        return Err(DomainError::MissingParameter {
            parameter: "MemberToRemove",
        });
    };
    ensure_not_ended(conference, session, OPERATION)?;
    let member = session
        .find_member(reference)
        .ok_or_else(|| DomainError::NotInConference {
            noun: NOUN,
            id: conference.id.clone(),
            participant: reference.to_owned(),
        })?;
    if let (Some(path), Some(_)) = (by_path, by_query)
        && let Some(named_by_path) = session.find_member(path)
        && named_by_path.member_id != member.member_id
    {
        return Err(DomainError::ConflictingParameters {
            first: "memberId",
            second: "MemberToRemove",
        });
    }
    let entry = log_entry(
        decision,
        format!("{} removed {}", actor.display_identity(), member.identity),
    );
    decision.record(EventKind::SessionMemberRemoved {
        member: member.clone(),
        entry,
    })?;
    let anyone_left_on_call = decision
        .state()
        .and_then(Conference::as_session)
        .is_some_and(|session| session.members_on_call().next().is_some());
    if !anyone_left_on_call {
        let entry = log_entry(
            decision,
            "Session ended: no member is left on the call".to_owned(),
        );
        decision.record(EventKind::SessionEnded {
            reason: SessionEndReason::NoMemberLeft,
            entry,
        })?;
    }
    Ok(())
}

/// Evo `DELETE /sessions/{id}`: ends the session for everyone.
pub(super) fn end_session(
    conference: &Conference,
    actor: &Actor,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "EndSession";
    let session = accessible_session(conference, actor, OPERATION)?;
    ensure_not_ended(conference, session, OPERATION)?;
    let entry = log_entry(
        decision,
        format!("{} ended the session", actor.display_identity()),
    );
    decision.record(EventKind::SessionEnded {
        reason: SessionEndReason::EndedByUser,
        entry,
    })
}
