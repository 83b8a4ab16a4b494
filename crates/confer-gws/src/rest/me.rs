//! The GET side: the user, their calls, chats and devices, each user seeing only their own.
//!
//! Lists show what is live for the user (`confer_core::view::is_listed_for`); an item is shown
//! to anyone who has a view of it (a removed agent can still read their chat as `LeftChat`, a
//! removed party their call as `Released`), and is "not found" (statusCode 6) for anyone else.

use axum::{
    Extension,
    extract::{Path, State, rejection::PathRejection},
    http::Uri,
    response::Response,
};
use confer_app::engine::now;
use confer_core::{
    ConferenceId, DomainError,
    conference::ConferenceNoun,
    view::{ChatViewer, call_view, chat_messages as log_of, chat_view},
};

use super::{Shared, ok_with, path_id};
use crate::{
    auth::Authenticated,
    directory::device_of,
    error::GwsError,
    render,
    wire::{Device, device_of_actor, user_of},
};

fn not_found(noun: ConferenceNoun, id: &str) -> GwsError {
    GwsError::Domain(DomainError::ConferenceNotFound {
        noun,
        id: ConferenceId::new(id),
    })
}

/// `GET /api/v2/me`.
#[utoipa::path(
    get,
    path = "/api/v2/me",
    tag = "GWS voice",
    operation_id = "gwsGetMe",
    summary = "The signed-in user.",
    responses(
        (status = 200, description = "The resource, beside `statusCode: 0`.", body = super::openapi::UserReply),
        super::openapi::ReadErrors,
    ),
    security(("basic" = []), ("gws_session" = []))
)]
pub async fn me(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
) -> Result<Response, GwsError> {
    ok_with("user", user_of(&auth.actor, &rest.urls))
}

/// `GET /api/v2/me/calls`.
#[utoipa::path(
    get,
    path = "/api/v2/me/calls",
    tag = "GWS voice",
    operation_id = "gwsListCalls",
    summary = "The user's live calls.",
    responses(
        (status = 200, description = "The resource, beside `statusCode: 0`.", body = super::openapi::CallsReply),
        super::openapi::ReadErrors,
    ),
    security(("basic" = []), ("gws_session" = []))
)]
pub async fn calls(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
) -> Result<Response, GwsError> {
    let actor = &auth.actor;
    let now = now();
    let calls: Vec<_> = rest
        .app
        .engine
        .listed_for(actor)
        .await?
        .iter()
        .filter_map(|conference| call_view(conference, &actor.user_id, now))
        .map(|view| render::call(&view, actor, &rest.urls))
        .collect();
    ok_with("calls", calls)
}

/// `GET /api/v2/me/calls/{id}`.
#[utoipa::path(
    get,
    path = "/api/v2/me/calls/{id}",
    tag = "GWS voice",
    operation_id = "gwsGetCall",
    summary = "One call, as the user sees it.",
    params(("id" = String, Path, description = "The call id.")),
    responses(
        (status = 200, description = "The resource, beside `statusCode: 0`.", body = super::openapi::CallReply),
        super::openapi::ReadByIdErrors,
    ),
    security(("basic" = []), ("gws_session" = []))
)]
pub async fn call(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, GwsError> {
    let id = path_id(path, &uri)?;
    let actor = &auth.actor;
    let view = rest
        .app
        .engine
        .load(&id)
        .await?
        .and_then(|conference| call_view(&conference, &actor.user_id, now()))
        .ok_or_else(|| not_found(ConferenceNoun::Call, &id))?;
    ok_with("call", render::call(&view, actor, &rest.urls))
}

/// `GET /api/v2/me/chats`.
#[utoipa::path(
    get,
    path = "/api/v2/me/chats",
    tag = "GWS chat",
    operation_id = "gwsListChats",
    summary = "The user's live chats.",
    responses(
        (status = 200, description = "The resource, beside `statusCode: 0`.", body = super::openapi::ChatsReply),
        super::openapi::ReadErrors,
    ),
    security(("basic" = []), ("gws_session" = []))
)]
pub async fn chats(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
) -> Result<Response, GwsError> {
    let actor = &auth.actor;
    let chats: Vec<_> = rest
        .app
        .engine
        .listed_for(actor)
        .await?
        .iter()
        .filter_map(|conference| chat_view(conference, &actor.user_id))
        .map(|view| render::chat(&view, &rest.urls))
        .collect();
    ok_with("chats", chats)
}

/// `GET /api/v2/me/chats/{id}`.
#[utoipa::path(
    get,
    path = "/api/v2/me/chats/{id}",
    tag = "GWS chat",
    operation_id = "gwsGetChat",
    summary = "One chat, as the user sees it.",
    params(("id" = String, Path, description = "The chat id.")),
    responses(
        (status = 200, description = "The resource, beside `statusCode: 0`.", body = super::openapi::ChatReply),
        super::openapi::ReadByIdErrors,
    ),
    security(("basic" = []), ("gws_session" = []))
)]
pub async fn chat(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, GwsError> {
    let id = path_id(path, &uri)?;
    let view = rest
        .app
        .engine
        .load(&id)
        .await?
        .and_then(|conference| chat_view(&conference, &auth.actor.user_id))
        .ok_or_else(|| not_found(ConferenceNoun::Chat, &id))?;
    ok_with("chat", render::chat(&view, &rest.urls))
}

/// `GET /api/v2/me/chats/{id}/messages`: the whole message log, as the agent may read it.
#[utoipa::path(
    get,
    path = "/api/v2/me/chats/{id}/messages",
    tag = "GWS chat",
    operation_id = "gwsGetChatMessages",
    summary = "The chat's message log.",
    params(("id" = String, Path, description = "The chat id.")),
    responses(
        (status = 200, description = "The resource, beside `statusCode: 0`.", body = super::openapi::MessagesReply),
        super::openapi::ReadByIdErrors,
    ),
    security(("basic" = []), ("gws_session" = []))
)]
pub async fn chat_messages(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, GwsError> {
    let id = path_id(path, &uri)?;
    let user = &auth.actor.user_id;
    let conference = rest
        .app
        .engine
        .load(&id)
        .await?
        .filter(|conference| chat_view(conference, user).is_some())
        .ok_or_else(|| not_found(ConferenceNoun::Chat, &id))?;
    let messages = log_of(&conference, ChatViewer::Agent(user), None);
    ok_with("messages", render::log_entries(&messages, &rest.urls))
}

/// `GET /api/v2/me/devices`.
#[utoipa::path(
    get,
    path = "/api/v2/me/devices",
    tag = "GWS voice",
    operation_id = "gwsListDevices",
    summary = "The user's devices.",
    responses(
        (status = 200, description = "The resource, beside `statusCode: 0`.", body = super::openapi::DevicesReply),
        super::openapi::ReadErrors,
    ),
    security(("basic" = []), ("gws_session" = []))
)]
pub async fn devices(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
) -> Result<Response, GwsError> {
    let devices: Vec<Device> = device_of_actor(&auth.actor, &rest.urls)
        .into_iter()
        .collect();
    ok_with("devices", devices)
}

/// `GET /api/v2/me/devices/{id}`.
#[utoipa::path(
    get,
    path = "/api/v2/me/devices/{id}",
    tag = "GWS voice",
    operation_id = "gwsGetDevice",
    summary = "One of the user's devices.",
    params(("id" = String, Path, description = "The device id (the user's own).")),
    responses(
        (status = 200, description = "The resource, beside `statusCode: 0`.", body = super::openapi::DeviceReply),
        super::openapi::ReadByIdErrors,
    ),
    security(("basic" = []), ("gws_session" = []))
)]
pub async fn device(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, GwsError> {
    let id = path_id(path, &uri)?;
    own_device(&auth, &id)?;
    let device =
        device_of_actor(&auth.actor, &rest.urls).ok_or(GwsError::UnknownDevice { device: id })?;
    ok_with("device", device)
}

/// Checks that `id` is the caller's own device: `/api/v2/me/devices/{id}` are theirs only.
pub fn own_device(auth: &Authenticated, id: &str) -> Result<(), GwsError> {
    if device_of(&auth.actor).as_deref() == Some(id) {
        Ok(())
    } else {
        Err(GwsError::UnknownDevice {
            device: id.to_owned(),
        })
    }
}
