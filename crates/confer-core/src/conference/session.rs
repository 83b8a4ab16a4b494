//! An Evo Voice session (`SessionInfo`): members identified by phone number or
//! email, a log, and the account it belongs to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, MemberId, UserId, looks_like_phone_number};
use crate::time::Timestamp;

/// An Evo session. Its session id is the conference id; `dateCreated` and
/// `createdBy` are the conference's `created_at` and `created_by`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub account_id: AccountId,
    pub account_name: String,
    pub channel: Channel,
    pub direction: Direction,
    pub dial_state: DialState,
    pub call_state: SessionCallState,
    pub queue_state: QueueState,
    pub hold_reason: HoldReason,
    pub ended: bool,
    pub date_completed: Option<Timestamp>,
    pub date_last_modified: Timestamp,
    pub last_modified_by: UserId,
    /// Members currently in the session; a removed member is gone from this list.
    pub members: Vec<SessionMember>,
    pub log: Vec<SessionLogEntry>,
    /// Boxed: a large block of optional text that no rule reads.
    pub details: Box<SessionDetails>,
}

/// The descriptive `SessionInfo` fields the core carries but no rule reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetails {
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    pub endpoint_id: Option<String>,
    pub endpoint_name: Option<String>,
    /// What was entered into the Dial box.
    pub destination: Option<String>,
    pub to_address: Option<String>,
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub from_phone_number: Option<String>,
    pub display_name: Option<String>,
    pub callback_number: Option<String>,
    pub call_sid: Option<String>,
    pub conference_sid: Option<String>,
    pub outcome: Option<String>,
}

/// One member of the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMember {
    /// Unique within the session; chosen by whoever added the member.
    pub member_id: MemberId,
    /// A phone number or an email address.
    pub identity: String,
    pub display_name: Option<String>,
    pub role: MemberRole,
    pub call_state: MemberCallState,
    pub is_original_member: bool,
    pub muted: bool,
    pub call_sid: Option<String>,
    pub endpoint_id: Option<String>,
    pub avatar_url: Option<String>,
    pub application_data: BTreeMap<String, String>,
}

impl SessionMember {
    /// Whether the member is still on the call (ringing, connected or held):
    /// the session ends when no such member remains.
    pub fn is_on_call(&self) -> bool {
        matches!(
            self.call_state,
            MemberCallState::Ringing | MemberCallState::Connected | MemberCallState::Hold
        )
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLogEntry {
    pub date: Timestamp,
    pub message: String,
}

/// Evo `SessionDialState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DialState {
    None,
    Active,
}

/// Evo `SessionCallState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionCallState {
    Disconnected,
    Ringing,
    Connected,
    Hold,
    Passive,
}

/// Evo `SessionQueueStates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueState {
    None,
    Queued,
    Ringing,
    Connected,
    Hold,
    Disconnected,
}

/// Evo `FlowChannels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    Voice,
    Chat,
    Fax,
}

/// Evo `SessionHoldReasons`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldReason {
    None,
    Transferring,
}

/// Evo `SessionMemberCallState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberCallState {
    None,
    Ringing,
    Connected,
    Hold,
}

/// Evo `SessionMemberRoles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberRole {
    None,
    Caller,
    Agent,
    Transfer,
}

/// Evo `SessionDirections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// Whether two member identities name the same person: emails compare
/// case-insensitively, phone numbers by their digits, anything else exactly.
pub fn same_identity(left: &str, right: &str) -> bool {
    let (left, right) = (left.trim(), right.trim());
    if left.contains('@') || right.contains('@') {
        left.eq_ignore_ascii_case(right)
    } else if looks_like_phone_number(left) && looks_like_phone_number(right) {
        digits(left) == digits(right)
    } else {
        left == right
    }
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

impl Session {
    /// The member a reference names: first by member id, then by identity
    /// (see [`same_identity`]). Identities are unique in a session, so at most
    /// one member matches each way.
    pub fn find_member(&self, reference: &str) -> Option<&SessionMember> {
        let reference = reference.trim();
        self.members
            .iter()
            .find(|member| member.member_id.as_str() == reference)
            .or_else(|| {
                self.members
                    .iter()
                    .find(|member| same_identity(&member.identity, reference))
            })
    }

    /// The member with this id.
    pub fn member(&self, member_id: &MemberId) -> Option<&SessionMember> {
        self.members
            .iter()
            .find(|member| &member.member_id == member_id)
    }

    /// Members still on the call.
    pub fn members_on_call(&self) -> impl Iterator<Item = &SessionMember> {
        self.members.iter().filter(|member| member.is_on_call())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_compare_by_kind() {
        assert!(same_identity("Agent@Example.com", "agent@example.com"));
        assert!(same_identity("+1 555 0100", "+15550100"));
        assert!(!same_identity("+15550100", "+15550101"));
        assert!(same_identity("client:bob", "client:bob"));
        assert!(!same_identity("client:bob", "client:Bob"));
        // A member id with digits is not a phone number.
        assert!(!same_identity("m1", "1"));
    }
}
