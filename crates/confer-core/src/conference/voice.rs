//! A GWS voice call: parties on phone lines, an owner, and supervisor monitoring.

use serde::{Deserialize, Serialize};

use crate::ids::{PhoneNumber, UserId};
use crate::time::Timestamp;
use crate::user_data::UserData;

/// A voice call. Its GWS call id is the conference id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub conn_id: String,
    pub call_uuid: String,
    pub dnis: String,
    pub call_type: CallType,
    /// The call as a whole. `Held` is never stored here: holding is per party
    /// ([`Party::held`]) and shows in that party's own view only.
    pub state: CallState,
    /// The conference owner: the user who created the call. Only the owner (or a
    /// supervisor monitoring the call) may remove parties.
    pub owner: UserId,
    /// Every party the call ever had, in the order they joined. Parties who left
    /// stay here with a [`PartyDeparture`], so a removed user can still be shown
    /// their call as released; views list present parties only.
    pub parties: Vec<Party>,
    pub user_data: UserData,
    pub mute: Mute,
    /// When the call started; the duration shown is derived from it at view time.
    pub started_at: Timestamp,
    /// Supervisors monitoring (or who monitored) this call or one of its users;
    /// a stopped monitoring keeps its record so the supervisor can be shown
    /// the call as over for them.
    pub monitoring: Vec<Monitoring>,
}

/// GWS `callType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallType {
    Internal,
    Inbound,
    Outbound,
    Consult,
}

/// GWS call `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallState {
    Dialing,
    Ringing,
    Established,
    Held,
    Released,
}

/// GWS `mute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mute {
    Off,
    On,
}

/// One line in the call, identified by its phone number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub phone_number: PhoneNumber,
    /// The user on this line, when it is a known user's line (external numbers have none).
    pub user_id: Option<UserId>,
    /// This party put the call on hold.
    pub held: bool,
    /// Set once the party is no longer in the call.
    pub departure: Option<PartyDeparture>,
}

impl Party {
    /// A party in the call, not held.
    pub fn new(phone_number: PhoneNumber, user_id: Option<UserId>) -> Self {
        Self {
            phone_number,
            user_id,
            held: false,
            departure: None,
        }
    }

    /// Still in the call.
    pub fn is_present(&self) -> bool {
        self.departure.is_none()
    }

    /// Whether this is `user`'s line.
    pub fn belongs_to(&self, user: &UserId) -> bool {
        self.user_id.as_ref() == Some(user)
    }
}

/// When and why a party left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyDeparture {
    pub at: Timestamp,
    pub reason: PartyDepartureReason,
}

/// Why a party left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartyDepartureReason {
    /// The party hung up.
    HungUp,
    /// Removed from the conference by this user (the owner or a monitoring supervisor).
    RemovedBy(UserId),
}

/// A supervisor monitoring a user's calls or this call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitoring {
    pub supervisor: UserId,
    pub monitored_user: UserId,
    pub kind: MonitoringKind,
    pub scope: MonitoringScope,
    pub mode: MonitoringMode,
    pub started_at: Timestamp,
    /// Set once the supervisor stopped monitoring.
    pub stopped_at: Option<Timestamp>,
}

impl Monitoring {
    /// Whether this monitoring covers the call owned by `owner`: a call-scoped
    /// monitoring covers the whole call, an agent-scoped one covers only the
    /// monitored agent, so it counts for the call only when that agent owns it.
    pub fn covers_call_owned_by(&self, owner: &UserId) -> bool {
        self.scope == MonitoringScope::Call || &self.monitored_user == owner
    }
}

/// How the supervisor takes part (GWS `ListenIn`, `Coach`, `BargeIn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MonitoringKind {
    /// Hears everyone, heard by no one.
    ListenIn,
    /// Hears everyone, heard by the monitored agent only.
    Coach,
    /// Hears and is heard by everyone.
    BargeIn,
}

/// GWS `supervisorMonitoringScope` (default `Call`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MonitoringScope {
    /// Follows the agent.
    Agent,
    /// Follows the call.
    #[default]
    Call,
}

/// GWS `supervisorMonitoringMode` (default `AllCalls`).
///
/// The core records it; carrying a monitoring to the agent's later calls is a
/// cross-conference concern of the layer that creates calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MonitoringMode {
    NextCall,
    #[default]
    AllCalls,
}

impl Call {
    /// Parties still in the call, in joining order.
    pub fn present_parties(&self) -> impl Iterator<Item = &Party> {
        self.parties.iter().filter(|party| party.is_present())
    }

    /// The present party on `number` (compared by digits).
    pub fn present_party_by_number(&self, number: &str) -> Option<&Party> {
        self.present_parties()
            .find(|party| party.phone_number.same_number(number))
    }

    /// The present party of `user`.
    pub fn present_party_of_user(&self, user: &UserId) -> Option<&Party> {
        self.present_parties().find(|party| party.belongs_to(user))
    }

    /// The latest party record of `user`, present or not.
    pub fn latest_party_of_user(&self, user: &UserId) -> Option<&Party> {
        self.parties
            .iter()
            .rev()
            .find(|party| party.belongs_to(user))
    }

    /// Whether the call is over for everyone.
    pub fn is_released(&self) -> bool {
        self.state == CallState::Released
    }

    /// Monitorings going on now.
    pub fn active_monitoring(&self) -> impl Iterator<Item = &Monitoring> {
        self.monitoring
            .iter()
            .filter(|monitoring| monitoring.stopped_at.is_none())
    }

    /// `supervisor`'s monitoring of this call going on now, if any.
    pub fn monitoring_by(&self, supervisor: &UserId) -> Option<&Monitoring> {
        self.active_monitoring()
            .find(|monitoring| &monitoring.supervisor == supervisor)
    }

    /// `supervisor`'s latest monitoring of this call, going on or stopped.
    pub fn latest_monitoring_by(&self, supervisor: &UserId) -> Option<&Monitoring> {
        self.monitoring
            .iter()
            .rev()
            .find(|monitoring| &monitoring.supervisor == supervisor)
    }

    /// Whether `user` is a supervisor monitoring this call or its owner, which
    /// is what lets a supervisor remove parties.
    pub fn is_monitored_as_a_whole_by(&self, user: &UserId) -> bool {
        self.monitoring_by(user)
            .is_some_and(|monitoring| monitoring.covers_call_owned_by(&self.owner))
    }
}
