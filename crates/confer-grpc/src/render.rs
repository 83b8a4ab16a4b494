//! The caller's views as protobuf messages: the GWS `Call`/`Chat` and Evo `SessionInfo` that the
//! REST dialects render (`confer_render`), converted by the generated conversions. A gRPC `Call`
//! is exactly the GWS `Call` the same user gets over REST; a `SessionInfo` is Evo's.
//!
//! URIs point at the REST dialects (`{public url}/api/v2/...`), as GWS writes them, so a caller can
//! pass a `ChatParticipant.uri` straight back as `target_uri`.

use confer_core::{
    Actor, Conference, Timestamp, UserId,
    view::{self, ChatViewer},
};
use confer_model::{gws_chat, gws_voice, proto};
use confer_render::{evo, gws};

pub use confer_render::gws::Urls;

/// The caller's `Call`, or `None` when they never took part in it.
pub fn call(
    conference: &Conference,
    viewer: &Actor,
    urls: &Urls,
    now: Timestamp,
) -> Option<proto::Call> {
    view::call_view(conference, &viewer.user_id, now).map(|v| gws::call(&v, viewer, urls).into())
}

/// A GWS `CallStateChangeMessage` for `viewer`, at the event's time `at`.
pub fn call_notification(
    conference: &Conference,
    viewer: &Actor,
    urls: &Urls,
    at: Timestamp,
    kind: &str,
) -> Option<proto::CallStateChangeMessage> {
    let view = view::call_view(conference, &viewer.user_id, at)?;
    let kind = gws_voice::CallNotificationType::from_wire(kind);
    Some(gws::call_message(kind, &view, viewer, urls, None).into())
}

/// The caller's `Chat`, or `None` when they never had a part in it.
pub fn chat(conference: &Conference, viewer: &UserId, urls: &Urls) -> Option<proto::Chat> {
    view::chat_view(conference, viewer).map(|v| gws::chat(&v, urls).into())
}

/// A GWS `ChatStateChangeMessage` for `viewer`.
pub fn chat_notification(
    conference: &Conference,
    viewer: &UserId,
    urls: &Urls,
    kind: &str,
) -> Option<proto::ChatStateChangeMessage> {
    let view = view::chat_view(conference, viewer)?;
    let kind = gws_chat::ChatNotificationType::from_wire(kind);
    Some(gws::chat_message(kind, &view, urls, None).into())
}

/// A GWS `MessageLogUpdated` with the entries `indices` that `viewer` (an agent) may read; `None`
/// when there are none.
pub fn chat_messages_notification(
    conference: &Conference,
    viewer: &UserId,
    urls: &Urls,
    indices: &[u64],
) -> Option<proto::MessageLogUpdated> {
    let messages = view::chat_messages(conference, ChatViewer::Agent(viewer), Some(indices));
    if messages.is_empty() {
        return None;
    }
    Some(gws::new_messages(conference.id.as_str(), &messages, urls, None).into())
}

/// Evo's `SessionInfo` of a session, as `GET /sessions/{id}` shows it.
pub fn session(conference: &Conference) -> Option<proto::SessionInfo> {
    evo::session_info(conference).map(Into::into)
}
