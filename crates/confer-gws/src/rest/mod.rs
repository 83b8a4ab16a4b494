//! GWS REST under `/api/v2/me`: the user, their calls, chats and devices, and the operations
//! on them (`POST` with `{"operationName": ...}`); and `/api/v2/users`, the user list
//! supervisors pick an agent from.
//!
//! Every request first goes through [`authenticate_request`] (Basic or session cookie, CSRF on
//! modifying requests; see [`crate::auth`]). Operations are turned into one
//! `confer_core::Command` and run by the engine; the reply is GWS's `{"statusCode":0}` (with
//! `referenceId` for chat `Invite`/`Consult`), sent only after the commit. Results reach the
//! clients as CometD notifications from the event log ([`crate::feed`]).
//!
//! Request bodies are read up to [`MAX_BODY_BYTES`]; any `Content-Type` is accepted (curl sends
//! `-d` bodies as form data). `Idempotency-Key` on a POST makes it safe to retry: the key is
//! stored with the commit, together with a fingerprint of the method, the path and the
//! canonical body; a retry with the same key answers the original success and changes nothing,
//! the same key with another request is refused (statusCode 19).

mod chat;
mod devices;
mod me;
pub mod openapi;
pub mod params;
mod users;
mod voice;

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Request, State, rejection::PathRejection},
    http::{HeaderMap, Method, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodRouter, any, get, post},
};
use confer_app::{
    App,
    engine::{Executed, IdempotencyKey},
};
use confer_core::{Command, DomainError};
use confer_model::gws_common::{StatusCode, StatusReply};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use self::params::{Params, canonical_json};
use crate::{
    auth::{self, Authenticated},
    directory::Directory,
    error::GwsError,
    render::Urls,
};

/// The largest request body accepted (GWS operation bodies are a few hundred bytes; user data
/// can make them bigger).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The idempotency key header.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// What REST handlers share.
pub struct Rest {
    pub app: Arc<App>,
    pub directory: Arc<Directory>,
    pub urls: Urls,
}

type Shared = Arc<Rest>;

/// The REST routes, each behind authentication.
pub fn router(rest: Shared) -> Router {
    fn route(method_router: MethodRouter<Shared>) -> MethodRouter<Shared> {
        method_router.fallback(method_not_allowed)
    }
    Router::new()
        .route("/api/v2/me", route(get(me::me)))
        .route("/api/v2/me/calls", route(get(me::calls)))
        .route(
            "/api/v2/me/calls/{id}",
            route(get(me::call).post(voice::operation)),
        )
        .route("/api/v2/me/chats", route(get(me::chats)))
        .route(
            "/api/v2/me/chats/{id}",
            route(get(me::chat).post(chat::operation)),
        )
        .route(
            "/api/v2/me/chats/{id}/messages",
            route(get(me::chat_messages)),
        )
        .route("/api/v2/me/devices", route(get(me::devices)))
        .route(
            "/api/v2/me/devices/{id}",
            route(get(me::device).post(devices::operation)),
        )
        .route("/api/v2/me/devices/{id}/calls", route(post(devices::dial)))
        .route("/api/v2/users", route(get(users::users)))
        .route("/api/v2/{*rest}", any(unknown_resource))
        .route_layer(middleware::from_fn_with_state(
            rest.clone(),
            authenticate_request,
        ))
        .with_state(rest)
}

/// Authenticates every request, checks CSRF on modifying ones, and decorates the reply (session
/// cookie, CSRF headers on GET).
async fn authenticate_request(
    State(rest): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    let app = &rest.app;
    let authenticated = match auth::authenticate(app, request.headers()).await {
        Ok(authenticated) => authenticated,
        Err(error) => return error.into_response(),
    };
    let method = request.method().clone();
    let modifies = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if app.config.csrf
        && modifies
        && !auth::csrf_ok(app, &authenticated, auth::csrf_header(request.headers()))
    {
        let mut response = GwsError::Csrf.into_response();
        auth::decorate(app, &authenticated, false, response.headers_mut());
        return response;
    }
    request.extensions_mut().insert(authenticated.clone());
    let mut response = next.run(request).await;
    auth::decorate(
        app,
        &authenticated,
        method == Method::GET,
        response.headers_mut(),
    );
    response
}

async fn method_not_allowed(method: Method, uri: Uri) -> GwsError {
    GwsError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

async fn unknown_resource(uri: Uri) -> GwsError {
    GwsError::UnknownResource {
        path: uri.path().to_owned(),
    }
}

/// The `{id}` of a path, or a GWS "not found" for one that does not decode.
fn path_id(path: Result<Path<String>, PathRejection>, uri: &Uri) -> Result<String, GwsError> {
    path.map(|Path(id)| id)
        .map_err(|_| GwsError::UnknownResource {
            path: uri.path().to_owned(),
        })
}

/// `{"statusCode":0}`, with `referenceId` when given.
fn accepted(reference_id: Option<i64>) -> Response {
    Json(StatusReply {
        status_code: StatusCode::Success,
        status_message: None,
        reference_id,
    })
    .into_response()
}

/// `{"statusCode":0,"<key>":<value>}`: GWS names a collection or item after the resource.
fn ok_with(key: &str, value: impl Serialize) -> Result<Response, GwsError> {
    let value = serde_json::to_value(value)
        .map_err(|e| GwsError::Internal(format!("rendering {key}: {e}")))?;
    let mut body = Map::new();
    body.insert("statusCode".into(), Value::from(StatusCode::Success.code()));
    body.insert(key.into(), value);
    Ok(Json(Value::Object(body)).into_response())
}

/// Reads a request body, bounded.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, GwsError> {
    let too_large = GwsError::BodyTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(error) => {
            let is_limit = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if is_limit {
                Err(too_large)
            } else {
                Err(GwsError::MalformedJson(format!(
                    "the body could not be read: {error}"
                )))
            }
        }
    }
}

/// An operation request: its parameters and its idempotency key.
pub(crate) struct Operation {
    pub params: Params,
    pub idempotency: Option<IdempotencyKey>,
}

impl Operation {
    /// Reads the body and the `Idempotency-Key` header of `POST <uri>`.
    async fn read(headers: &HeaderMap, uri: &Uri, body: Body) -> Result<Self, GwsError> {
        let bytes = read_body(headers, body).await?;
        let params = Params::parse(&bytes)?;
        let idempotency = match headers.get(IDEMPOTENCY_KEY_HEADER) {
            None => None,
            Some(value) => {
                let key = value
                    .to_str()
                    .ok()
                    .map(str::trim)
                    .filter(|key| {
                        !key.is_empty()
                            && key.chars().count() <= MAX_IDEMPOTENCY_KEY_CHARS
                            && key.chars().all(|c| c.is_ascii_graphic())
                    })
                    .ok_or_else(|| {
                        GwsError::Domain(DomainError::InvalidParameter {
                            parameter: "Idempotency-Key",
                            value: String::from_utf8_lossy(value.as_bytes())
                                .chars()
                                .take(80)
                                .collect(),
                            expected: "1 to 255 visible ASCII characters",
                        })
                    })?;
                let request = format!(
                    "POST {}\n{}",
                    uri.path(),
                    canonical_json(&params.as_value())
                );
                let fingerprint = Sha256::digest(request.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                Some(IdempotencyKey {
                    key: key.to_owned(),
                    fingerprint,
                })
            }
        };
        Ok(Self {
            params,
            idempotency,
        })
    }
}

/// Runs `command` for the authenticated user.
async fn execute(
    rest: &Rest,
    auth: &Authenticated,
    command: Command,
    idempotency: Option<IdempotencyKey>,
) -> Result<Executed, GwsError> {
    Ok(rest
        .app
        .engine
        .execute(&auth.actor, command, idempotency)
        .await?)
}

/// Counts a removal by dialect and outcome.
fn record_removal(rest: &Rest, dialect: &str, result: &Result<Executed, GwsError>) {
    let outcome = match result {
        Ok(executed) if executed.replayed => "replayed".to_owned(),
        Ok(_) => "removed".to_owned(),
        Err(error) => error.metric_outcome(),
    };
    rest.app.metrics.record_removal(dialect, &outcome);
}
