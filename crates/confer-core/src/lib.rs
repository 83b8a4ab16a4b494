//! Confer's domain core: one model of a conference that serves the three
//! dialects Confer speaks (GWS voice calls, GWS chats, Evo Voice sessions), and
//! the rules for changing it, removing a participant above all.
//!
//! The core is event-sourced and deterministic: no I/O, no clock, no randomness.
//! Time and new ids come in as arguments.
//!
//! * [`decide`](decide::decide)`(conference, actor, command, now)` checks a
//!   [`Command`] against the rules and returns the [`Event`]s it causes, or a
//!   [`DomainError`];
//! * [`apply`](apply::apply)`(conference, event)` folds one event into the state;
//!   [`replay`] rebuilds a conference from its log;
//! * [`view`] derives what one user sees (their "me" view, the conferences
//!   listed for them), and [`recipients()`] says who must be told about an event.
//!
//! Wire formats (GWS JSON, Evo SessionInfo, protobuf), storage and transports
//! live in other crates that map to and from these domain types.

pub mod actor;
pub mod apply;
pub mod command;
pub mod conference;
pub mod decide;
pub mod demo;
pub mod error;
pub mod event;
pub mod ids;
pub mod limits;
pub mod recipients;
pub mod time;
pub mod user_data;
pub mod view;

pub use actor::{Actor, Role};
pub use apply::{apply, replay};
pub use command::{Command, MessageParameters};
pub use conference::{Conference, ConferenceKind, ConferenceNoun};
pub use decide::{decide, execute};
pub use error::{DomainError, ErrorCodes, ErrorKind, GrpcCode};
pub use event::{Event, EventKind};
pub use ids::{AccountId, ConferenceId, DeviceId, MemberId, ParticipantId, PhoneNumber, UserId};
pub use limits::Limits;
pub use recipients::{Audience, Change, Recipient, recipients};
pub use time::Timestamp;
pub use user_data::UserData;
