//! Views: what one user sees of a conference, derived from the state, never stored.
//!
//! Two questions are answered here:
//! * which conferences are *listed* for an actor ([`is_listed_for`],
//!   [`conferences_listed_for`]): the live ones they take part in (GWS
//!   `GET /me/calls`, `GET /me/chats`) and the sessions of their accounts
//!   (Evo `GET /sessions`, which lists ended sessions too);
//! * what one user's own ("me") view of a conference is ([`call_view`],
//!   [`chat_view`], [`customer_chat_view`], [`session_view`]). A me view exists
//!   for anyone who ever took part, so a removed user can be shown their call
//!   as released and a removed agent their chat as `LeftChat` / `Completed`.
//!
//! Participants who left are never listed in any view.

use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::conference::chat::{
    AgentChatState, ChatMessage, ChatMessageKind, ChatParticipant, ParticipantKind, TreatAs,
    Visibility,
};
use crate::conference::session::Session;
use crate::conference::voice::{CallState, CallType, Monitoring, Mute, Party};
use crate::conference::{Conference, ConferenceKind};
use crate::ids::{ConferenceId, ParticipantId, PhoneNumber, UserId};
use crate::time::Timestamp;
use crate::user_data::UserData;

/// Whether the conference is listed for the actor now.
pub fn is_listed_for(conference: &Conference, actor: &Actor) -> bool {
    let user = &actor.user_id;
    match &conference.kind {
        ConferenceKind::Voice(call) => {
            !call.is_released()
                && (call.present_party_of_user(user).is_some()
                    || call.monitoring_by(user).is_some())
        }
        ConferenceKind::Chat(chat) => chat
            .agent(user)
            .is_some_and(|agent| agent.state != AgentChatState::Completed),
        ConferenceKind::Session(session) => actor.is_evo_user_in(&session.account_id),
    }
}

/// The keys under which a store indexes the conference, so that listing needs no scan:
/// `user:<id>` for every user who takes or took part (parties, agents, monitoring supervisors)
/// and `account:<id>` for a session's account. A superset of who lists it now; callers filter
/// the candidates with [`is_listed_for`].
pub fn listing_keys(conference: &Conference) -> Vec<String> {
    let mut keys: Vec<String> = match &conference.kind {
        ConferenceKind::Voice(call) => std::iter::once(&call.owner)
            .chain(call.parties.iter().filter_map(|p| p.user_id.as_ref()))
            .chain(call.monitoring.iter().map(|m| &m.supervisor))
            .map(|user| format!("user:{user}"))
            .collect(),
        ConferenceKind::Chat(chat) => chat
            .agents
            .iter()
            .map(|agent| format!("user:{}", agent.user_id))
            .collect(),
        ConferenceKind::Session(session) => vec![format!("account:{}", session.account_id)],
    };
    keys.sort();
    keys.dedup();
    keys
}

/// Whether the conference still goes on for anyone (a released call, a closed chat and an
/// ended session do not).
pub fn is_live(conference: &Conference) -> bool {
    match &conference.kind {
        ConferenceKind::Voice(call) => !call.is_released(),
        ConferenceKind::Chat(chat) => !chat.is_closed(),
        ConferenceKind::Session(session) => !session.ended,
    }
}

/// The conferences listed for the actor, in the given order.
pub fn conferences_listed_for<'a>(
    conferences: impl IntoIterator<Item = &'a Conference>,
    actor: &Actor,
) -> Vec<&'a Conference> {
    conferences
        .into_iter()
        .filter(|conference| is_listed_for(conference, actor))
        .collect()
}

// --- voice ---------------------------------------------------------------

/// GWS call capabilities (names as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallCapability {
    Answer,
    Hangup,
    Hold,
    Retrieve,
    InitiateConference,
    SingleStepConference,
    InitiateTransfer,
    SingleStepTransfer,
    AttachUserData,
    UpdateUserData,
    DeleteUserData,
    DeleteUserDataPair,
    SendDtmf,
}

/// What the owner of an established call may do, in the order GWS lists it
/// (seed 000). The list is GWS's: it names operations other crates may not
/// implement yet, because it is what GWS clients expect to see.
pub const ESTABLISHED_OWNER_CAPABILITIES: [CallCapability; 11] = [
    CallCapability::UpdateUserData,
    CallCapability::SendDtmf,
    CallCapability::InitiateConference,
    CallCapability::Hold,
    CallCapability::SingleStepTransfer,
    CallCapability::InitiateTransfer,
    CallCapability::AttachUserData,
    CallCapability::DeleteUserDataPair,
    CallCapability::SingleStepConference,
    CallCapability::DeleteUserData,
    CallCapability::Hangup,
];

/// A party who is not the owner may not add lines (only the owner conferences).
const ESTABLISHED_PARTY_CAPABILITIES: [CallCapability; 9] = [
    CallCapability::UpdateUserData,
    CallCapability::SendDtmf,
    CallCapability::Hold,
    CallCapability::SingleStepTransfer,
    CallCapability::InitiateTransfer,
    CallCapability::AttachUserData,
    CallCapability::DeleteUserDataPair,
    CallCapability::DeleteUserData,
    CallCapability::Hangup,
];

const HELD_CAPABILITIES: [CallCapability; 6] = [
    CallCapability::UpdateUserData,
    CallCapability::Retrieve,
    CallCapability::AttachUserData,
    CallCapability::DeleteUserDataPair,
    CallCapability::DeleteUserData,
    CallCapability::Hangup,
];

const RINGING_CAPABILITIES: [CallCapability; 6] = [
    CallCapability::Answer,
    CallCapability::UpdateUserData,
    CallCapability::AttachUserData,
    CallCapability::DeleteUserDataPair,
    CallCapability::DeleteUserData,
    CallCapability::Hangup,
];

const DIALING_CAPABILITIES: [CallCapability; 5] = [
    CallCapability::UpdateUserData,
    CallCapability::AttachUserData,
    CallCapability::DeleteUserDataPair,
    CallCapability::DeleteUserData,
    CallCapability::Hangup,
];

/// One user's view of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallView {
    pub conference_id: ConferenceId,
    /// The viewer's own line, if they are (or were) a party.
    pub phone_number: Option<PhoneNumber>,
    /// The call as the viewer sees it (`Held` when the viewer holds it;
    /// `Released` when the call is over or the viewer is out of it).
    pub state: CallState,
    pub conn_id: String,
    pub call_uuid: String,
    pub dnis: String,
    pub call_type: CallType,
    pub owner: UserId,
    /// The OTHER parties in the call (none once it is released for the viewer).
    pub participants: Vec<Party>,
    pub capabilities: Vec<CallCapability>,
    pub user_data: UserData,
    pub duration_seconds: u64,
    pub mute: Mute,
    /// The viewer's own monitoring of the call, when the viewer is a supervisor
    /// monitoring it (agents are not told they are monitored).
    pub monitoring: Option<Monitoring>,
}

/// `user`'s view of the call at `now`; `None` if the user never took part in it.
pub fn call_view(conference: &Conference, user: &UserId, now: Timestamp) -> Option<CallView> {
    let call = conference.as_call()?;
    let own_party = call.latest_party_of_user(user);
    let monitoring = call.monitoring_by(user).cloned();
    let ever_monitored = call.latest_monitoring_by(user).is_some();
    if own_party.is_none() && !ever_monitored && &call.owner != user {
        return None;
    }
    let is_owner = &call.owner == user;
    // Out of the call: it is over, or the viewer's line left it, or the viewer
    // only monitored it and stopped.
    let out_of_call = call.is_released()
        || match own_party {
            Some(party) => !party.is_present(),
            None => monitoring.is_none() && !is_owner,
        };
    let (state, participants, capabilities): (CallState, Vec<Party>, &[CallCapability]) =
        if out_of_call {
            (CallState::Released, Vec::new(), &[])
        } else {
            let others = call
                .present_parties()
                .filter(|party| !party.belongs_to(user))
                .cloned()
                .collect();
            match own_party {
                // A monitoring supervisor is not a party: they see everyone and
                // act through monitoring operations only.
                None => (call.state, others, &[]),
                Some(party) => {
                    let state = own_state(call.state, is_owner, party.held);
                    (state, others, capabilities_for(state, is_owner))
                }
            }
        };
    Some(CallView {
        conference_id: conference.id.clone(),
        phone_number: own_party.map(|party| party.phone_number.clone()),
        state,
        conn_id: call.conn_id.clone(),
        call_uuid: call.call_uuid.clone(),
        dnis: call.dnis.clone(),
        call_type: call.call_type,
        owner: call.owner.clone(),
        participants,
        capabilities: capabilities.to_vec(),
        user_data: call.user_data.clone(),
        duration_seconds: now.whole_seconds_since(call.started_at),
        mute: call.mute,
        monitoring: if call.is_released() { None } else { monitoring },
    })
}

/// The call state from one party's side: the owner dials while the other side
/// rings, and holding is per party.
fn own_state(call_state: CallState, is_owner: bool, held: bool) -> CallState {
    match call_state {
        CallState::Dialing if !is_owner => CallState::Ringing,
        CallState::Ringing if !is_owner => CallState::Dialing,
        CallState::Established if held => CallState::Held,
        other => other,
    }
}

fn capabilities_for(state: CallState, is_owner: bool) -> &'static [CallCapability] {
    match state {
        CallState::Established if is_owner => &ESTABLISHED_OWNER_CAPABILITIES,
        CallState::Established => &ESTABLISHED_PARTY_CAPABILITIES,
        CallState::Held => &HELD_CAPABILITIES,
        CallState::Ringing => &RINGING_CAPABILITIES,
        CallState::Dialing => &DIALING_CAPABILITIES,
        CallState::Released => &[],
    }
}

// --- chat ----------------------------------------------------------------

/// GWS chat capabilities (names as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatCapability {
    Accept,
    Reject,
    Transfer,
    Leave,
    Invite,
    Consult,
    SetInFocus,
    SetDisposition,
    AttachUserData,
    DeleteUserData,
    UpdateUserData,
    Complete,
    SendMessage,
    SendStartTypingNotification,
    SendStopTypingNotification,
}

/// What a chatting agent may do, in GWS's order (seed 003, Agent1).
pub const CHATTING_CAPABILITIES: [ChatCapability; 13] = [
    ChatCapability::Transfer,
    ChatCapability::Leave,
    ChatCapability::Invite,
    ChatCapability::Consult,
    ChatCapability::SetInFocus,
    ChatCapability::SetDisposition,
    ChatCapability::AttachUserData,
    ChatCapability::DeleteUserData,
    ChatCapability::UpdateUserData,
    ChatCapability::Complete,
    ChatCapability::SendMessage,
    ChatCapability::SendStartTypingNotification,
    ChatCapability::SendStopTypingNotification,
];

/// What an agent who left may still do, in GWS's order (seed 003, Agent2).
pub const LEFT_CHAT_CAPABILITIES: [ChatCapability; 6] = [
    ChatCapability::SetInFocus,
    ChatCapability::Complete,
    ChatCapability::SetDisposition,
    ChatCapability::AttachUserData,
    ChatCapability::DeleteUserData,
    ChatCapability::UpdateUserData,
];

const INVITED_CAPABILITIES: [ChatCapability; 2] = [ChatCapability::Accept, ChatCapability::Reject];

/// One agent's view of a chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatView {
    pub conference_id: ConferenceId,
    /// The agent's own state of the chat.
    pub state: AgentChatState,
    pub capabilities: Vec<ChatCapability>,
    /// Participants in the chat now (agents see every one, themselves included).
    pub participants: Vec<ChatParticipant>,
    pub user_data: UserData,
}

/// `user`'s (an agent's) view of the chat; `None` if they were never part of it.
pub fn chat_view(conference: &Conference, user: &UserId) -> Option<ChatView> {
    let chat = conference.as_chat()?;
    let agent = chat.agent(user)?;
    let capabilities: &[ChatCapability] = match agent.state {
        AgentChatState::Invited => &INVITED_CAPABILITIES,
        AgentChatState::Chatting => &CHATTING_CAPABILITIES,
        AgentChatState::LeftChat => &LEFT_CHAT_CAPABILITIES,
        AgentChatState::Completed => &[],
    };
    Some(ChatView {
        conference_id: conference.id.clone(),
        state: agent.state,
        capabilities: capabilities.to_vec(),
        participants: chat.present_participants().cloned().collect(),
        user_data: chat.user_data.clone(),
    })
}

/// The customer's view of a chat: only what is visible to all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerChatView {
    pub conference_id: ConferenceId,
    pub customer: ParticipantId,
    /// Whether the customer is still in the chat.
    pub in_chat: bool,
    /// Participants in the chat now and visible to all.
    pub participants: Vec<ChatParticipant>,
    pub messages: Vec<MessageView>,
}

/// The customer's view of the chat.
pub fn customer_chat_view(conference: &Conference) -> Option<CustomerChatView> {
    let chat = conference.as_chat()?;
    let customer = chat
        .participants
        .iter()
        .find(|participant| participant.kind == ParticipantKind::Customer)?;
    Some(CustomerChatView {
        conference_id: conference.id.clone(),
        customer: customer.participant_id.clone(),
        in_chat: customer.is_present(),
        participants: chat
            .present_participants()
            .filter(|participant| participant.visibility == Visibility::All)
            .cloned()
            .collect(),
        messages: chat_messages(conference, ChatViewer::Customer, None),
    })
}

/// Who reads a chat log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatViewer<'a> {
    /// An agent of the chat: sees every entry.
    Agent(&'a UserId),
    /// The customer: sees entries visible to all.
    Customer,
}

/// A log entry with its author resolved, as notifications show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageView {
    pub index: u64,
    pub from: ChatParticipant,
    pub kind: ChatMessageKind,
    pub text: Option<String>,
    pub visibility: Visibility,
    pub timestamp: Timestamp,
    pub message_type: Option<String>,
    pub treat_as: Option<TreatAs>,
}

/// The log entries `viewer` may read: those with the given indices, or all of
/// them when `indices` is `None`. An agent must have a record in the chat.
pub fn chat_messages(
    conference: &Conference,
    viewer: ChatViewer<'_>,
    indices: Option<&[u64]>,
) -> Vec<MessageView> {
    let Some(chat) = conference.as_chat() else {
        return Vec::new();
    };
    let may_read = |message: &ChatMessage| match viewer {
        ChatViewer::Agent(user) => chat.agent(user).is_some(),
        ChatViewer::Customer => message.visibility == Visibility::All,
    };
    chat.messages
        .iter()
        .filter(|message| indices.is_none_or(|wanted| wanted.contains(&message.index)))
        .filter(|message| may_read(message))
        .filter_map(|message| {
            let from = chat.participant(&message.from)?.clone();
            Some(MessageView {
                index: message.index,
                from,
                kind: message.kind,
                text: message.text.clone(),
                visibility: message.visibility,
                timestamp: message.timestamp,
                message_type: message.message_type.clone(),
                treat_as: message.treat_as,
            })
        })
        .collect()
}

// --- Evo session -----------------------------------------------------------

/// A session as Evo's `SessionInfo` shows it (the same for every user of the account).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub conference_id: ConferenceId,
    pub created_at: Timestamp,
    pub created_by: UserId,
    pub session: Session,
}

/// The session's view; whether an actor may see it is [`is_listed_for`].
pub fn session_view(conference: &Conference) -> Option<SessionView> {
    let session = conference.as_session()?;
    Some(SessionView {
        conference_id: conference.id.clone(),
        created_at: conference.created_at,
        created_by: conference.created_by.clone(),
        session: session.clone(),
    })
}

#[cfg(test)]
mod listing_tests {
    use super::*;
    use crate::demo::{self, demo_world};

    #[test]
    fn listing_keys_cover_everyone_who_lists_the_demo_conferences() {
        let world = demo_world(Timestamp::from_millis(1_700_000_000_000)).unwrap();
        for conference in &world.conferences {
            let keys = listing_keys(conference);
            assert!(is_live(conference));
            for user in &demo::DEMO_USERS {
                let actor = user.actor();
                if is_listed_for(conference, &actor) {
                    let covered = keys.contains(&format!("user:{}", actor.user_id))
                        || actor
                            .accounts
                            .iter()
                            .any(|a| keys.contains(&format!("account:{a}")));
                    assert!(
                        covered,
                        "{} lists {} but no key covers it: {keys:?}",
                        user.username, conference.id
                    );
                }
            }
        }
        let call = world.conference(demo::VOICE_CALL_ID).unwrap();
        assert_eq!(
            listing_keys(call),
            vec![
                "user:a15000c0ffee4e0b9d6a2f7c3b1e5d00",
                "user:a15002c0ffee4e0b9d6a2f7c3b1e5d02"
            ]
        );
    }
}
