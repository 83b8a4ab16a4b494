//! Authentication as Evo (ServiceStack) clients do it.
//!
//! - HTTP Basic on every request (`Authorization: Basic ...`), verified by the application's
//!   authenticator (argon2, with its bounded cache).
//! - Or `POST /auth/credentials` with `userName`, `password` and `rememberMe` (JSON, JSV or a
//!   form; `POST /auth` with `provider: credentials` too), which sets ServiceStack's cookies:
//!   `ss-id` (a browser-session cookie), and with `rememberMe` also `ss-pid` (persistent, for the
//!   token's lifetime), and `ss-opt` (`perm` or `temp`, which of the two is in use). Both hold
//!   a signed session token that every node accepts (the application's signing key is shared
//!   through the store), so no sticky load balancing is needed.
//! - `GET|POST /auth/logout` clears the cookies. A copy of the token kept elsewhere stays valid
//!   until it expires (`--session-ttl-secs`, 8 hours by default, renewed while in use: a
//!   successful `/sessions` request past half the lifetime gets fresh cookies), or until the
//!   user's password changes or the user is disabled or removed, which ends every session of
//!   the user on every node within seconds.
//! - `GET /auth` answers who the session belongs to, or 401.
//!
//! When an `Authorization` header is present it alone decides (a wrong password is 401 even with
//! a valid cookie); otherwise `ss-id`, then `ss-pid`. Cookies are `HttpOnly` and `SameSite=Lax`,
//! so another site cannot make a browser send them with a cross-site `POST` or `DELETE`, and
//! `Secure` when the server's public URL is https.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use confer_app::App;
use confer_core::{Actor, Role};

use crate::{
    EvoState,
    error::EvoError,
    format::{BodyFormat, Format, Negotiated},
    reply::{read_body, reply},
    wire::{Authenticate, AuthenticateResponse},
};

/// ServiceStack's temporary session cookie.
pub const SESSION_COOKIE: &str = "ss-id";
/// ServiceStack's permanent session cookie (`rememberMe`).
pub const PERMANENT_SESSION_COOKIE: &str = "ss-pid";
/// ServiceStack's cookie saying which of the two is in use.
pub const SESSION_OPTIONS_COOKIE: &str = "ss-opt";

/// The actor a request speaks for.
///
/// # Errors
///
/// 401 without credentials or with credentials that do not verify.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Actor, EvoError> {
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let value = authorization
            .to_str()
            .map_err(|_| EvoError::InvalidCredentials)?;
        return match app.auth.verify_basic(value).await {
            Ok(actor) => Ok(actor),
            // A scheme other than Basic: these are not credentials this service takes.
            Err(confer_app::auth::AuthError::Missing) => Err(EvoError::InvalidCredentials),
            Err(other) => Err(other.into()),
        };
    }
    for name in [SESSION_COOKIE, PERMANENT_SESSION_COOKIE] {
        if let Some(token) = cookie(headers, name) {
            match app.auth.verify_session(&token).await {
                Ok(actor) => return Ok(actor),
                Err(confer_app::auth::AuthError::Invalid) => {}
                Err(other) => return Err(other.into()),
            }
        }
    }
    if cookie(headers, SESSION_COOKIE).is_some()
        || cookie(headers, PERMANENT_SESSION_COOKIE).is_some()
    {
        return Err(EvoError::InvalidCredentials);
    }
    Err(EvoError::NotAuthenticated)
}

/// Whether the actor passes ServiceStack's `[RequiredRole("User")]` on the session services:
/// Evo's `User`, or `Admin` (ServiceStack's admin passes every role check). Which accounts the
/// role applies in is the core's business.
pub fn require_user_role(actor: &Actor, operation: &'static str) -> Result<(), EvoError> {
    if actor.has_role(Role::User) || actor.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(confer_core::DomainError::MissingRole {
            operation,
            role: Role::User,
        }
        .into())
    }
}

/// The value of a cookie in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// The attributes every cookie of ours carries.
fn cookie_attributes(app: &App) -> &'static str {
    if app.public_url().starts_with("https://") {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    }
}

fn set_cookie(response: &mut Response, value: String) {
    // Tokens are base64url and digits, cookie names are constants: always a valid header.
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// What `/auth` answers about an actor.
fn authenticate_response(actor: &Actor, session_id: Option<String>) -> AuthenticateResponse {
    AuthenticateResponse {
        user_id: Some(actor.user_id.to_string()),
        session_id,
        user_name: Some(actor.username.clone()),
        display_name: Some(actor.display_identity().to_owned()),
        roles: actor
            .roles
            .iter()
            .map(|role| match role {
                Role::Agent => "Agent",
                Role::Supervisor => "Supervisor",
                Role::Admin => "Admin",
                Role::User => "User",
            })
            .map(str::to_owned)
            .collect(),
    }
}

/// Auth replies carry tokens: never cached.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// `POST /auth/credentials` and `POST /auth` (with `provider: credentials`).
#[utoipa::path(
    post,
    path = "/auth/credentials",
    tag = "Evo auth",
    operation_id = "evoAuthenticateCredentials",
    summary = "Sign in with a user name and password; sets the session cookies.",
    params(("format" = Option<String>, Query, description = "`json` or `jsv`: the reply's format (else `Accept`, default JSON).")),
    request_body(content((confer_model::evo::Authenticate = "application/json", example = json!({"userName": "evo-user", "password": "demo"})), (confer_model::evo::Authenticate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Signed in.", content((confer_model::evo::AuthenticateResponse = "application/json"), (confer_model::evo::AuthenticateResponse = "text/jsv"))),
        crate::openapi::Errors,
    ),
    security(())
)]
pub async fn credentials(
    State(state): State<Arc<EvoState>>,
    Negotiated(format): Negotiated,
    headers: HeaderMap,
    body: Body,
) -> Response {
    no_store(match sign_in(&state.app, format, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.render(format),
    })
}

async fn sign_in(
    app: &App,
    format: Format,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, EvoError> {
    let request: Authenticate = read_body(BodyFormat::of_headers(headers)?, body).await?;
    if let Some(provider) = request.provider.as_deref()
        && !provider.trim().is_empty()
        && !provider.trim().eq_ignore_ascii_case("credentials")
    {
        return Err(EvoError::BadParameter {
            field: "provider",
            message: format!("provider '{provider}' is not supported: use credentials"),
        });
    }
    let user_name = given(request.user_name.as_deref()).ok_or(EvoError::MissingField {
        field: "UserName",
        message: "'User Name' must not be empty.".to_owned(),
    })?;
    let password = request
        .password
        .as_deref()
        .filter(|password| !password.is_empty())
        .ok_or(EvoError::MissingField {
            field: "Password",
            message: "'Password' must not be empty.".to_owned(),
        })?;
    let actor = app.auth.verify_password(user_name, password).await?;
    let token = app.auth.issue_session(&actor).await?;
    let remember = request.remember_me.unwrap_or(false);
    let mut response = reply(
        format,
        StatusCode::OK,
        &authenticate_response(&actor, Some(token.clone())),
    )?;
    set_session_cookies(app, &mut response, &token, remember);
    Ok(response)
}

/// The cookies of a session: `ss-id`, with `rememberMe` also `ss-pid`, and `ss-opt`.
fn set_session_cookies(app: &App, response: &mut Response, token: &str, remember: bool) {
    let attributes = cookie_attributes(app);
    let lifetime = app.auth.session_ttl().as_secs();
    set_cookie(response, format!("{SESSION_COOKIE}={token}{attributes}"));
    if remember {
        set_cookie(
            response,
            format!("{PERMANENT_SESSION_COOKIE}={token}{attributes}; Max-Age={lifetime}"),
        );
    }
    let option = if remember { "perm" } else { "temp" };
    set_cookie(
        response,
        format!("{SESSION_OPTIONS_COOKIE}={option}{attributes}; Max-Age={lifetime}"),
    );
}

/// Sliding renewal: when the request was authenticated by a session cookie past half its
/// lifetime, the reply carries the renewed cookies.
pub async fn renew_session(app: &App, headers: &HeaderMap, response: &mut Response) {
    if headers.contains_key(header::AUTHORIZATION) {
        return;
    }
    let permanent = cookie(headers, PERMANENT_SESSION_COOKIE);
    let Some(token) = cookie(headers, SESSION_COOKIE).or_else(|| permanent.clone()) else {
        return;
    };
    if let Some(fresh) = app.auth.renewal(&token).await {
        set_session_cookies(app, response, &fresh, permanent.is_some());
    }
}

/// `GET|POST /auth/logout`: clears the session cookies. Needs no credentials, like ServiceStack's.
#[utoipa::path(
    get,
    path = "/auth/logout",
    tag = "Evo auth",
    operation_id = "evoLogout",
    summary = "Clear the session cookies (also `POST`). Needs no credentials.",
    params(("format" = Option<String>, Query, description = "`json` or `jsv`: the reply's format (else `Accept`, default JSON).")),
    responses(
        (status = 200, description = "Signed out.", content((confer_model::evo::AuthenticateResponse = "application/json"), (confer_model::evo::AuthenticateResponse = "text/jsv"))),
        (status = 400, description = "A bad `format`.", body = confer_model::evo::ErrorResponse),
    ),
    security(())
)]
pub async fn logout(
    State(state): State<Arc<EvoState>>,
    Negotiated(format): Negotiated,
) -> Response {
    let mut response = match reply(format, StatusCode::OK, &AuthenticateResponse::default()) {
        Ok(response) => response,
        Err(error) => return error.render(format),
    };
    let attributes = cookie_attributes(&state.app);
    for name in [
        SESSION_COOKIE,
        PERMANENT_SESSION_COOKIE,
        SESSION_OPTIONS_COOKIE,
    ] {
        set_cookie(
            &mut response,
            format!("{name}={attributes}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
        );
    }
    no_store(response)
}

/// `GET /auth`: who the request's credentials belong to.
#[utoipa::path(
    get,
    path = "/auth",
    tag = "Evo auth",
    operation_id = "evoCurrentUser",
    summary = "Who the request's credentials belong to.",
    params(("format" = Option<String>, Query, description = "`json` or `jsv`: the reply's format (else `Accept`, default JSON).")),
    responses(
        (status = 200, description = "The user and session.", content((confer_model::evo::AuthenticateResponse = "application/json"), (confer_model::evo::AuthenticateResponse = "text/jsv"))),
        crate::openapi::Errors,
    ),
    security(("basic" = []), ("evo_session" = []), ("evo_permanent_session" = []))
)]
pub async fn current(
    State(state): State<Arc<EvoState>>,
    Negotiated(format): Negotiated,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let actor = authenticate(&state.app, &headers).await?;
        let session = cookie(&headers, SESSION_COOKIE)
            .or_else(|| cookie(&headers, PERMANENT_SESSION_COOKIE))
            .filter(|_| headers.get(header::AUTHORIZATION).is_none());
        reply(
            format,
            StatusCode::OK,
            &authenticate_response(&actor, session),
        )
    }
    .await;
    no_store(result.unwrap_or_else(|error| error.render(format)))
}

/// `POST /auth`: ServiceStack's generic authenticate route; only the credentials provider.
#[utoipa::path(
    post,
    path = "/auth",
    tag = "Evo auth",
    operation_id = "evoAuthenticate",
    summary = "Sign in (`provider: credentials`); sets the `ss-id` (and with `rememberMe`, `ss-pid`) cookies.",
    params(("format" = Option<String>, Query, description = "`json` or `jsv`: the reply's format (else `Accept`, default JSON).")),
    request_body(content((confer_model::evo::Authenticate = "application/json", example = json!({"provider": "credentials", "userName": "evo-user", "password": "demo"})), (confer_model::evo::Authenticate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Signed in.", content((confer_model::evo::AuthenticateResponse = "application/json"), (confer_model::evo::AuthenticateResponse = "text/jsv"))),
        crate::openapi::Errors,
    ),
    security(())
)]
pub async fn authenticate_route(
    state: State<Arc<EvoState>>,
    negotiated: Negotiated,
    headers: HeaderMap,
    body: Body,
) -> Response {
    credentials(state, negotiated, headers, body).await
}

/// Non-blank text.
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; ss-id=v1.abc.123.def ; ss-opt=temp"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("ss-pid=\"p\""));
        assert_eq!(cookie(&headers, "ss-id").as_deref(), Some("v1.abc.123.def"));
        assert_eq!(cookie(&headers, "ss-pid").as_deref(), Some("p"));
        assert_eq!(cookie(&headers, "ss-x"), None);
    }

    #[test]
    fn only_user_and_admin_pass_the_role_check() {
        let user = Actor::new("u", "u").with_role(Role::User);
        let admin = Actor::new("a", "a").with_role(Role::Admin);
        let agent = Actor::new("g", "g").with_role(Role::Agent);
        assert!(require_user_role(&user, "x").is_ok());
        assert!(require_user_role(&admin, "x").is_ok());
        assert!(require_user_role(&agent, "x").is_err());
    }
}
