//! Rules of GWS voice calls.

use super::{Decision, given};
use crate::actor::{Actor, Role};
use crate::command::{NewCall, NewDial};
use crate::conference::voice::{
    Call, CallState, CallType, Monitoring, MonitoringKind, MonitoringMode, MonitoringScope, Mute,
    Party,
};
use crate::conference::{Conference, ConferenceKind, ConferenceNoun};
use crate::error::DomainError;
use crate::event::{CallReleaseReason, EventKind};
use crate::ids::{ConferenceId, PhoneNumber, UserId};

const NOUN: ConferenceNoun = ConferenceNoun::Call;

/// A call that the actor has a part in (see the module docs of `decide`).
fn involved_call<'a>(conference: &'a Conference, actor: &Actor) -> Result<&'a Call, DomainError> {
    conference
        .as_call()
        .filter(|call| is_involved(call, &actor.user_id))
        .ok_or_else(|| not_found(conference))
}

fn is_involved(call: &Call, user: &UserId) -> bool {
    &call.owner == user
        || call.parties.iter().any(|party| party.belongs_to(user))
        || call.monitoring_by(user).is_some()
}

fn not_found(conference: &Conference) -> DomainError {
    DomainError::ConferenceNotFound {
        noun: NOUN,
        id: conference.id.clone(),
    }
}

fn ensure_not_released(
    conference: &Conference,
    call: &Call,
    operation: &'static str,
) -> Result<(), DomainError> {
    if call.is_released() {
        return Err(DomainError::ConferenceEnded {
            noun: NOUN,
            id: conference.id.clone(),
            operation,
        });
    }
    Ok(())
}

fn invalid_state(conference: &Conference, operation: &'static str, reason: String) -> DomainError {
    DomainError::InvalidState {
        noun: NOUN,
        id: conference.id.clone(),
        operation,
        reason,
    }
}

/// The actor's own line, required to own or dial a call.
fn own_line(actor: &Actor, operation: &'static str) -> Result<PhoneNumber, DomainError> {
    if !actor.is_agent() {
        return Err(DomainError::MissingRole {
            operation,
            role: Role::Agent,
        });
    }
    actor
        .phone_number
        .clone()
        .filter(|number| !number.digits().is_empty())
        .ok_or(DomainError::MissingParameter {
            parameter: "phoneNumber",
        })
}

fn new_conference(decision: &Decision, actor: &Actor, id: ConferenceId, call: Call) -> Conference {
    Conference {
        id,
        version: 1,
        created_at: decision.at(),
        created_by: actor.user_id.clone(),
        kind: ConferenceKind::Voice(call),
    }
}

/// Records a call that exists on the telephony side, owned by the actor.
pub(super) fn create_call(
    actor: &Actor,
    new: NewCall,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "CreateCall";
    let owner_line = own_line(actor, OPERATION)?;
    if !matches!(
        new.state,
        CallState::Dialing | CallState::Ringing | CallState::Established
    ) {
        return Err(DomainError::InvalidParameter {
            parameter: "state",
            value: format!("{:?}", new.state),
            expected: "Dialing, Ringing or Established",
        });
    }
    if new.other_parties.is_empty() {
        return Err(DomainError::MissingParameter {
            parameter: "participants",
        });
    }
    let mut parties = vec![Party::new(owner_line, Some(actor.user_id.clone()))];
    for other in new.other_parties {
        let number = given(Some(&other.phone_number)).ok_or(DomainError::MissingParameter {
            parameter: "participants.phoneNumber",
        })?;
        let duplicate = parties.iter().any(|party| {
            party.phone_number.same_number(number)
                || (other.user_id.is_some() && party.user_id == other.user_id)
        });
        if duplicate {
            return Err(DomainError::InvalidParameter {
                parameter: "participants",
                value: number.to_owned(),
                expected: "each line and user once",
            });
        }
        parties.push(Party::new(PhoneNumber::new(number), other.user_id));
    }
    let call = Call {
        conn_id: new.conn_id,
        call_uuid: new.call_uuid,
        dnis: new.dnis,
        call_type: new.call_type,
        state: new.state,
        owner: actor.user_id.clone(),
        parties,
        user_data: new.user_data,
        mute: Mute::Off,
        started_at: decision.at(),
        monitoring: Vec::new(),
    };
    let conference = new_conference(decision, actor, new.id, call);
    decision.record(EventKind::ConferenceCreated {
        conference: Box::new(conference),
    })
}

/// GWS `Dial`: a new call from the actor's line, `Dialing` until answered.
pub(super) fn dial(
    actor: &Actor,
    new: NewDial,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "Dial";
    let owner_line = own_line(actor, OPERATION)?;
    let destination = given(Some(&new.destination)).ok_or(DomainError::MissingParameter {
        parameter: "destination",
    })?;
    if owner_line.same_number(destination) || new.destination_user.as_ref() == Some(&actor.user_id)
    {
        return Err(DomainError::InvalidParameter {
            parameter: "destination",
            value: destination.to_owned(),
            expected: "another line than the caller's own",
        });
    }
    let call_type = if new.destination_user.is_some() {
        CallType::Internal
    } else {
        CallType::Outbound
    };
    let call = Call {
        conn_id: new.conn_id,
        call_uuid: new.call_uuid,
        dnis: destination.to_owned(),
        call_type,
        state: CallState::Dialing,
        owner: actor.user_id.clone(),
        parties: vec![
            Party::new(owner_line, Some(actor.user_id.clone())),
            Party::new(PhoneNumber::new(destination), new.destination_user),
        ],
        user_data: new.user_data,
        mute: Mute::Off,
        started_at: decision.at(),
        monitoring: Vec::new(),
    };
    let conference = new_conference(decision, actor, new.id, call);
    decision.record(EventKind::ConferenceCreated {
        conference: Box::new(conference),
    })
}

/// GWS `Answer`: the owner answers a call ringing at their line, or the
/// called party answers the owner's dialing call.
pub(super) fn answer(
    conference: &Conference,
    actor: &Actor,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "Answer";
    let call = involved_call(conference, actor)?;
    ensure_not_released(conference, call, OPERATION)?;
    let party = own_present_party(conference, call, actor)?;
    let is_owner = call.owner == actor.user_id;
    let rings_for_actor = match call.state {
        CallState::Ringing => is_owner,
        CallState::Dialing => !is_owner,
        _ => false,
    };
    if !rings_for_actor {
        return Err(invalid_state(
            conference,
            OPERATION,
            "the call is not ringing on your line".into(),
        ));
    }
    decision.record(EventKind::CallAnswered {
        phone_number: party.phone_number.clone(),
    })
}

fn own_present_party<'a>(
    conference: &Conference,
    call: &'a Call,
    actor: &Actor,
) -> Result<&'a Party, DomainError> {
    call.present_party_of_user(&actor.user_id)
        .ok_or_else(|| DomainError::NotInConference {
            noun: NOUN,
            id: conference.id.clone(),
            participant: actor
                .phone_number
                .as_ref()
                .map_or_else(|| actor.username.clone(), ToString::to_string),
        })
}

/// GWS `SingleStepConference`: the owner adds a line to an established call.
pub(super) fn single_step_conference(
    conference: &Conference,
    actor: &Actor,
    destination: &str,
    destination_user: Option<UserId>,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "SingleStepConference";
    let call = involved_call(conference, actor)?;
    let destination = given(Some(destination)).ok_or(DomainError::MissingParameter {
        parameter: "destination",
    })?;
    ensure_not_released(conference, call, OPERATION)?;
    if call.owner != actor.user_id {
        return Err(DomainError::NotConferenceOwner {
            id: conference.id.clone(),
            operation: OPERATION,
        });
    }
    if call.state != CallState::Established {
        return Err(invalid_state(
            conference,
            OPERATION,
            format!("the call is {:?}, not Established", call.state),
        ));
    }
    let already_there = call.present_party_by_number(destination).is_some()
        || destination_user
            .as_ref()
            .is_some_and(|user| call.present_party_of_user(user).is_some());
    if already_there {
        return Err(DomainError::AlreadyInConference {
            noun: NOUN,
            id: conference.id.clone(),
            participant: destination.to_owned(),
        });
    }
    decision.record(EventKind::PartyAdded {
        party: Party::new(PhoneNumber::new(destination), destination_user),
    })
}

/// GWS voice `RemoveParticipantFromConference`.
///
/// Only the owner, or a supervisor monitoring the call or its owner, may remove;
/// the target must be a present party other than the owner; when fewer than two
/// parties remain the call is released for everyone.
pub(super) fn remove_participant(
    conference: &Conference,
    actor: &Actor,
    participant: &str,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "RemoveParticipantFromConference";
    let call = involved_call(conference, actor)?;
    let participant = given(Some(participant)).ok_or(DomainError::MissingParameter {
        parameter: "participant",
    })?;
    ensure_not_released(conference, call, OPERATION)?;
    let is_owner = call.owner == actor.user_id;
    let is_monitoring_supervisor =
        actor.is_supervisor() && call.is_monitored_as_a_whole_by(&actor.user_id);
    if !is_owner && !is_monitoring_supervisor {
        return Err(DomainError::NotConferenceOwner {
            id: conference.id.clone(),
            operation: OPERATION,
        });
    }
    let target =
        call.present_party_by_number(participant)
            .ok_or_else(|| DomainError::NotInConference {
                noun: NOUN,
                id: conference.id.clone(),
                participant: participant.to_owned(),
            })?;
    if target.belongs_to(&call.owner) {
        return Err(DomainError::CannotRemoveOwner {
            id: conference.id.clone(),
            participant: target.phone_number.to_string(),
        });
    }
    decision.record(EventKind::PartyRemoved {
        party: target.clone(),
        removed_by: actor.user_id.clone(),
    })?;
    release_if_too_few_parties(decision)
}

/// Releases the call once fewer than two parties are left in it.
fn release_if_too_few_parties(decision: &mut Decision) -> Result<(), DomainError> {
    let parties_left = decision
        .state()
        .and_then(Conference::as_call)
        .map_or(0, |call| call.present_parties().count());
    if parties_left < 2 {
        decision.record(EventKind::CallReleased {
            reason: CallReleaseReason::TooFewParties,
        })?;
    }
    Ok(())
}

/// GWS `Hangup`: the actor's line leaves. The owner hanging up ends the call
/// (the core does not hand a conference over to another owner).
pub(super) fn hangup(
    conference: &Conference,
    actor: &Actor,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "Hangup";
    let call = involved_call(conference, actor)?;
    ensure_not_released(conference, call, OPERATION)?;
    let party = own_present_party(conference, call, actor)?;
    if call.owner == actor.user_id {
        return decision.record(EventKind::CallReleased {
            reason: CallReleaseReason::OwnerHungUp,
        });
    }
    decision.record(EventKind::PartyLeft {
        party: party.clone(),
    })?;
    release_if_too_few_parties(decision)
}

/// GWS `ClearCall`: the owner ends the call for everyone.
pub(super) fn clear_call(
    conference: &Conference,
    actor: &Actor,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    const OPERATION: &str = "ClearCall";
    let call = involved_call(conference, actor)?;
    ensure_not_released(conference, call, OPERATION)?;
    if call.owner != actor.user_id {
        return Err(DomainError::NotConferenceOwner {
            id: conference.id.clone(),
            operation: OPERATION,
        });
    }
    decision.record(EventKind::CallReleased {
        reason: CallReleaseReason::Cleared,
    })
}

/// GWS `Hold` (`hold == true`) and `Retrieve` of the actor's own line.
pub(super) fn hold(
    conference: &Conference,
    actor: &Actor,
    hold: bool,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    let operation = if hold { "Hold" } else { "Retrieve" };
    let call = involved_call(conference, actor)?;
    ensure_not_released(conference, call, operation)?;
    let party = own_present_party(conference, call, actor)?;
    if call.state != CallState::Established {
        return Err(invalid_state(
            conference,
            operation,
            format!("the call is {:?}, not Established", call.state),
        ));
    }
    if party.held == hold {
        let reason = if hold {
            "the call is already on hold"
        } else {
            "the call is not on hold"
        };
        return Err(invalid_state(conference, operation, reason.into()));
    }
    let phone_number = party.phone_number.clone();
    decision.record(if hold {
        EventKind::PartyHeld { phone_number }
    } else {
        EventKind::PartyRetrieved { phone_number }
    })
}

/// What a supervisor asks to monitor.
pub(super) struct MonitoringRequest {
    pub monitored_user: UserId,
    pub kind: MonitoringKind,
    pub scope: MonitoringScope,
    pub mode: MonitoringMode,
}

/// GWS `ListenIn` / `Coach` / `BargeIn`: a supervisor monitors a user of the call.
pub(super) fn start_monitoring(
    conference: &Conference,
    actor: &Actor,
    request: MonitoringRequest,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    let operation = match request.kind {
        MonitoringKind::ListenIn => "ListenIn",
        MonitoringKind::Coach => "Coach",
        MonitoringKind::BargeIn => "BargeIn",
    };
    // Any supervisor may look for a call to monitor; others must be part of it.
    let call = match conference.as_call() {
        Some(call) if actor.is_supervisor() => call,
        Some(call) if is_involved(call, &actor.user_id) => {
            return Err(DomainError::MissingRole {
                operation,
                role: Role::Supervisor,
            });
        }
        _ => return Err(not_found(conference)),
    };
    ensure_not_released(conference, call, operation)?;
    if request.monitored_user == actor.user_id {
        return Err(DomainError::InvalidParameter {
            parameter: "targetDeviceUri",
            value: request.monitored_user.to_string(),
            expected: "another user than the supervisor",
        });
    }
    let monitored_is_in_call = call.owner == request.monitored_user
        || call
            .present_party_of_user(&request.monitored_user)
            .is_some();
    if !monitored_is_in_call {
        return Err(DomainError::NotInConference {
            noun: NOUN,
            id: conference.id.clone(),
            participant: request.monitored_user.to_string(),
        });
    }
    if call.monitoring_by(&actor.user_id).is_some() {
        return Err(DomainError::AlreadyMonitoring {
            id: conference.id.clone(),
            supervisor: actor.user_id.clone(),
        });
    }
    decision.record(EventKind::MonitoringStarted {
        monitoring: Monitoring {
            supervisor: actor.user_id.clone(),
            monitored_user: request.monitored_user,
            kind: request.kind,
            scope: request.scope,
            mode: request.mode,
            started_at: decision.at(),
            stopped_at: None,
        },
    })
}

/// The supervisor stops monitoring the call.
pub(super) fn stop_monitoring(
    conference: &Conference,
    actor: &Actor,
    decision: &mut Decision,
) -> Result<(), DomainError> {
    // As for starting: any supervisor may look the call up.
    let call = match conference.as_call() {
        Some(call) if actor.is_supervisor() || is_involved(call, &actor.user_id) => call,
        _ => return Err(not_found(conference)),
    };
    let monitoring =
        call.monitoring_by(&actor.user_id)
            .ok_or_else(|| DomainError::NotMonitoring {
                id: conference.id.clone(),
                supervisor: actor.user_id.clone(),
            })?;
    decision.record(EventKind::MonitoringStopped {
        monitoring: monitoring.clone(),
    })
}
