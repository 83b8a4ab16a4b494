//! Who must be told about an event, and what changed for them.
//!
//! The notification layer calls [`recipients`] with each stored event and the
//! conference as it is right after that event, then renders each change with the
//! recipient's own view from [`crate::view`] at that same state. It never decides
//! by itself who may know what: visibility rules (consulting agents hidden from
//! the customer, monitoring hidden from agents) are applied here.
//!
//! Changes are named after GWS notification types (`StatusChange`,
//! `ParticipantsUpdated`, `NewMessages`); Evo has one change, the session itself.
//! For the seed chat removal, the removed agent gets `ParticipantsUpdated`,
//! `NewMessages`, `StatusChange` (to `LeftChat`) for the removal event, then
//! `StatusChange` (to `Completed`) for the next event.

use serde::{Deserialize, Serialize};

use crate::conference::chat::{
    Chat, ChatDepartureReason, ChatParticipant, ParticipantKind, Visibility,
};
use crate::conference::voice::Call;
use crate::conference::{Conference, ConferenceKind};
use crate::event::{Event, EventKind};
use crate::ids::{AccountId, ParticipantId, UserId};

/// Who is told.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Audience {
    /// An authenticated user.
    User(UserId),
    /// A chat's customer (not a user: reached through the chat itself).
    Customer(ParticipantId),
    /// Every user with the `User` role in an Evo account.
    Account(AccountId),
}

/// What changed for a recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// GWS `CallStateChangeMessage` / `StatusChange`: the call's state for the
    /// recipient (new, answered, held, released, monitoring started or stopped).
    CallStatusChanged,
    /// GWS `CallStateChangeMessage` / `ParticipantsUpdated`.
    CallParticipantsUpdated,
    /// GWS `ChatStateChangeMessage` / `StatusChange`: the recipient's own chat state.
    ChatStatusChanged,
    /// GWS `ChatStateChangeMessage` / `ParticipantsUpdated`.
    ChatParticipantsUpdated,
    /// GWS `MessageLogUpdated` / `NewMessages`: these log entries.
    ChatNewMessages { indices: Vec<u64> },
    /// Evo: the session changed.
    SessionUpdated,
}

/// One recipient and the changes to show them, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub audience: Audience,
    pub changes: Vec<Change>,
}

/// Who must be told about `event`, given the conference right after it.
pub fn recipients(event: &Event, after: &Conference) -> Vec<Recipient> {
    let mut list = RecipientList::default();
    match &after.kind {
        ConferenceKind::Voice(call) => call_recipients(&mut list, event, call),
        ConferenceKind::Chat(chat) => chat_recipients(&mut list, event, chat),
        ConferenceKind::Session(session) => {
            list.tell(
                Audience::Account(session.account_id.clone()),
                Change::SessionUpdated,
            );
        }
    }
    list.0
}

/// Recipients in the order first told, each with their changes in order.
#[derive(Default)]
struct RecipientList(Vec<Recipient>);

impl RecipientList {
    fn tell(&mut self, audience: Audience, change: Change) {
        match self
            .0
            .iter_mut()
            .find(|recipient| recipient.audience == audience)
        {
            Some(recipient) => {
                if !recipient.changes.contains(&change) {
                    recipient.changes.push(change);
                }
            }
            None => self.0.push(Recipient {
                audience,
                changes: vec![change],
            }),
        }
    }

    fn tell_user(&mut self, user: &UserId, change: Change) {
        self.tell(Audience::User(user.clone()), change);
    }
}

fn call_recipients(list: &mut RecipientList, event: &Event, call: &Call) {
    let present_users: Vec<&UserId> = call
        .present_parties()
        .filter_map(|party| party.user_id.as_ref())
        .collect();
    let supervisors: Vec<&UserId> = call
        .active_monitoring()
        .map(|monitoring| &monitoring.supervisor)
        .collect();
    let tell_everyone = |list: &mut RecipientList, change: Change| {
        for user in present_users.iter().chain(&supervisors) {
            list.tell_user(user, change.clone());
        }
    };
    match &event.kind {
        EventKind::ConferenceCreated { .. } | EventKind::CallAnswered { .. } => {
            tell_everyone(list, Change::CallStatusChanged);
        }
        EventKind::PartyAdded { party } => {
            if let Some(user) = &party.user_id {
                list.tell_user(user, Change::CallStatusChanged);
            }
            tell_everyone(list, Change::CallParticipantsUpdated);
        }
        EventKind::PartyHeld { phone_number } | EventKind::PartyRetrieved { phone_number } => {
            let holder = call
                .present_parties()
                .find(|party| &party.phone_number == phone_number)
                .and_then(|party| party.user_id.as_ref());
            if let Some(user) = holder {
                list.tell_user(user, Change::CallStatusChanged);
            }
        }
        EventKind::PartyRemoved { party, .. } | EventKind::PartyLeft { party } => {
            tell_everyone(list, Change::CallParticipantsUpdated);
            if let Some(user) = &party.user_id {
                list.tell_user(user, Change::CallStatusChanged);
            }
        }
        EventKind::CallReleased { .. } => tell_everyone(list, Change::CallStatusChanged),
        EventKind::MonitoringStarted { monitoring }
        | EventKind::MonitoringStopped { monitoring } => {
            list.tell_user(&monitoring.supervisor, Change::CallStatusChanged);
        }
        _ => {}
    }
}

fn chat_recipients(list: &mut RecipientList, event: &Event, chat: &Chat) {
    let present_agents: Vec<&UserId> = chat
        .present_agents()
        .filter_map(|participant| participant.user_id.as_ref())
        .collect();
    let customer = chat
        .participants
        .iter()
        .find(|participant| participant.kind == ParticipantKind::Customer);
    let present_customer = customer.filter(|customer| customer.is_present());
    let tell_agents = |list: &mut RecipientList, change: Change| {
        for user in &present_agents {
            list.tell_user(user, change.clone());
        }
    };
    let tell_customer_if = |list: &mut RecipientList, visible: bool, change: Change| {
        if let Some(customer) = present_customer.filter(|_| visible) {
            list.tell(Audience::Customer(customer.participant_id.clone()), change);
        }
    };
    match &event.kind {
        EventKind::ConferenceCreated { .. } => {
            let all: Vec<u64> = chat.messages.iter().map(|message| message.index).collect();
            for user in &present_agents {
                list.tell_user(user, Change::ChatStatusChanged);
                list.tell_user(
                    user,
                    Change::ChatNewMessages {
                        indices: all.clone(),
                    },
                );
            }
        }
        EventKind::AgentInvited { agent, .. }
        | EventKind::InvitationRejected { agent }
        | EventKind::AgentChatStateChanged { agent, .. } => {
            list.tell_user(agent, Change::ChatStatusChanged);
        }
        EventKind::ChatParticipantJoined { participant, entry } => {
            let new_messages = Change::ChatNewMessages {
                indices: vec![entry.index],
            };
            if let Some(user) = &participant.user_id {
                list.tell_user(user, Change::ChatStatusChanged);
                list.tell_user(user, new_messages.clone());
            }
            // The others learn who joined; the joiner's own status says it all.
            for user in present_agents
                .iter()
                .filter(|user| participant.user_id.as_ref() != Some(**user))
            {
                list.tell_user(user, Change::ChatParticipantsUpdated);
                list.tell_user(user, new_messages.clone());
            }
            let visible = is_visible_to_all(participant);
            tell_customer_if(list, visible, Change::ChatParticipantsUpdated);
            tell_customer_if(list, visible, new_messages);
        }
        EventKind::ChatMessagePosted { message } => {
            let new_messages = Change::ChatNewMessages {
                indices: vec![message.index],
            };
            tell_agents(list, new_messages.clone());
            tell_customer_if(list, message.visibility == Visibility::All, new_messages);
        }
        EventKind::ChatParticipantLeft { participant, entry }
        | EventKind::ChatParticipantRemoved {
            participant, entry, ..
        } => {
            let new_messages = Change::ChatNewMessages {
                indices: vec![entry.index],
            };
            tell_agents(list, Change::ChatParticipantsUpdated);
            tell_agents(list, new_messages.clone());
            if let Some(user) = &participant.user_id {
                list.tell_user(user, Change::ChatParticipantsUpdated);
                list.tell_user(user, new_messages.clone());
                list.tell_user(user, Change::ChatStatusChanged);
            }
            let visible = is_visible_to_all(participant);
            tell_customer_if(list, visible, Change::ChatParticipantsUpdated);
            tell_customer_if(list, visible, new_messages);
        }
        EventKind::ChatClosed {
            withdrawn_invitations,
        } => {
            for user in withdrawn_invitations {
                list.tell_user(user, Change::ChatStatusChanged);
            }
            // The customer was in the chat until this event closed it.
            let closed_on_customer = customer.filter(|customer| {
                customer.departure.as_ref().is_some_and(|departure| {
                    departure.at == event.occurred_at
                        && departure.reason == ChatDepartureReason::ChatClosed
                })
            });
            if let Some(customer) = closed_on_customer {
                list.tell(
                    Audience::Customer(customer.participant_id.clone()),
                    Change::ChatStatusChanged,
                );
            }
        }
        _ => {}
    }
}

fn is_visible_to_all(participant: &ChatParticipant) -> bool {
    participant.visibility == Visibility::All
}
