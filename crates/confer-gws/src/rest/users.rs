//! `GET /api/v2/users`: the contact center's users, for supervisors and admins (GWS lets only
//! them see other users; an agent is refused with statusCode 5, HTTP 403).
//!
//! Each user is rendered exactly as `GET /api/v2/me` renders the signed-in user ([`user_of`]),
//! devices included: a supervisor picks an agent here and passes that agent's device to
//! `ListenIn` (`targetDeviceUri`). GWS expands devices only with `?subresources=devices`; like
//! `/api/v2/me`, Confer always includes them (they are one small object per user), so the query
//! parameter is accepted and changes nothing.
//!
//! Listed: every user with a GWS role (agent, supervisor, admin), ordered by user name. Users
//! who only use Evo (role `User`) are not GWS users and are left out. There is no paging: a
//! contact center's users are read in one go (the [`Directory`](crate::directory::Directory)
//! does the same to find a device's user).

use axum::{Extension, extract::State, response::Response};
use confer_core::{DomainError, Role};

use super::{Shared, ok_with};
use crate::{
    auth::Authenticated,
    error::GwsError,
    wire::{User, user_of},
};

/// `GET /api/v2/users`.
#[utoipa::path(
    get,
    path = "/api/v2/users",
    tag = "GWS voice",
    operation_id = "gwsListUsers",
    summary = "The contact center's users, with their devices (supervisors and admins only).",
    description = "Every user with a GWS role, ordered by `userName`, each as `GET /api/v2/me` shows it. An agent gets statusCode 5 (HTTP 403).",
    params(
        ("subresources" = Option<String>, Query, description = "GWS's expansion list (`devices`); accepted for compatibility: devices are always included."),
    ),
    responses(
        (status = 200, description = "The resource, beside `statusCode: 0`.", body = super::openapi::UsersReply),
        (status = 403, description = "statusCode 5: only supervisors and admins may list users.", body = confer_model::gws_common::StatusReply,
            example = json!({"statusCode": 5, "statusMessage": "Invalid role: GET /api/v2/users requires the Supervisor role"})),
        super::openapi::ReadErrors,
    ),
    security(("basic" = []), ("gws_session" = []))
)]
pub async fn users(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
) -> Result<Response, GwsError> {
    // Admins count as supervisors (`Actor::is_supervisor`), as they do for monitoring.
    if !auth.actor.is_supervisor() {
        return Err(GwsError::Domain(DomainError::MissingRole {
            operation: "GET /api/v2/users",
            role: Role::Supervisor,
        }));
    }
    let mut users: Vec<User> = rest
        .directory
        .all()
        .await?
        .iter()
        .map(|actor| user_of(actor, &rest.urls))
        .filter(|user| !user.roles.is_empty())
        .collect();
    users.sort_by(|a, b| a.user_name.cmp(&b.user_name).then_with(|| a.id.cmp(&b.id)));
    ok_with("users", users)
}
