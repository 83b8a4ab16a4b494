//! Who is asking, the way GWS does it: HTTP Basic on any request, an HTTP session cookie
//! (`JSESSIONID`), and CSRF protection on top of the session.
//!
//! * A request with an `Authorization` header is authenticated by it (and only by it: wrong
//!   credentials are refused even if a valid cookie comes along). Otherwise the `JSESSIONID`
//!   cookie is. Neither: `401 {"statusCode":20,"statusMessage":"Access denied"}`.
//! * The session is a signed token from [`confer_app::auth::Authenticator`] (user id, session
//!   id, the user's credential revision, expiry; HMAC with keys every node shares), so any node
//!   accepts a session any node issued, and a password change or a disabled or removed user
//!   ends it. The first request authenticated by Basic without a session of the same user gets
//!   `Set-Cookie: JSESSIONID=...; Path=/; HttpOnly; SameSite=Lax` (and `Secure` when the public
//!   URL is https); a request whose session is past half its lifetime gets a renewed cookie,
//!   with the same CSRF token.
//! * CSRF (on unless `--csrf false`): every authenticated GET reply carries
//!   `X-CSRF-HEADER: X-CSRF-TOKEN` and `X-CSRF-TOKEN: <token>`, the token being an HMAC of the
//!   session token (so it lives exactly as long as the session). POST, PUT, PATCH and DELETE
//!   must send that token in `X-CSRF-TOKEN` together with the session cookie, else
//!   `403 {"statusCode":3,"statusMessage":"Missing or invalid Csrf token"}`, as GWS answers.
//!   Basic credentials alone do not exempt a request: GWS requires the header on every
//!   modifying request when the protection is on.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use confer_app::App;
use confer_core::Actor;

use crate::error::GwsError;

/// The session cookie, named as GWS (a Java servlet container) names it.
pub const SESSION_COOKIE: &str = "JSESSIONID";
/// The header naming the CSRF header, and the CSRF header itself.
pub const CSRF_HEADER_HEADER: &str = "X-CSRF-HEADER";
pub const CSRF_TOKEN_HEADER: &str = "X-CSRF-TOKEN";

/// An authenticated request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub actor: Actor,
    /// The session token the request belongs to (the cookie's, or a new one).
    pub session: String,
    /// The session was issued by this request: its reply sets the cookie.
    pub new_session: bool,
    /// The request came with a valid session cookie of this same user.
    pub cookie_session: bool,
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// Authenticates a request by its `Authorization` header or its session cookie. A cookie
/// session past half its lifetime is renewed: the reply sets the new cookie, whose CSRF token
/// is the same.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Authenticated, GwsError> {
    let cookie_token = cookie(headers, SESSION_COOKIE);
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let value = authorization
            .to_str()
            .map_err(|_| GwsError::NotAuthenticated)?;
        let actor = app.auth.verify_basic(value).await?;
        // Keep the client's session when it is this user's: its CSRF token stays valid.
        if let Some(token) = cookie_token
            && let Ok(session_actor) = app.auth.verify_session(token).await
            && session_actor.user_id == actor.user_id
        {
            return Ok(renewed(app, actor, token).await);
        }
        let session = app.auth.issue_session(&actor).await?;
        return Ok(Authenticated {
            actor,
            session,
            new_session: true,
            cookie_session: false,
        });
    }
    let token = cookie_token.ok_or(GwsError::NotAuthenticated)?;
    let actor = app.auth.verify_session(token).await?;
    Ok(renewed(app, actor, token).await)
}

/// A request authenticated by its session cookie `token`, renewed if due.
async fn renewed(app: &App, actor: Actor, token: &str) -> Authenticated {
    match app.auth.renewal(token).await {
        Some(fresh) => Authenticated {
            actor,
            session: fresh,
            new_session: true,
            cookie_session: true,
        },
        None => Authenticated {
            actor,
            session: token.to_owned(),
            new_session: false,
            cookie_session: true,
        },
    }
}

/// The CSRF token sent in `X-CSRF-TOKEN`, if any.
pub fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(CSRF_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// Whether `token` is the CSRF token of the request's own session cookie.
pub fn csrf_ok(app: &App, auth: &Authenticated, token: Option<&str>) -> bool {
    auth.cookie_session
        && token.is_some_and(|token| app.auth.signing_key().verify_csrf(&auth.session, token))
}

/// The headers a reply gets: the new session cookie, and on GET the CSRF headers.
pub fn decorate(app: &App, auth: &Authenticated, is_get: bool, headers: &mut HeaderMap) {
    let secure = if app.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    if auth.new_session
        && let Ok(value) = HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
            auth.session
        ))
    {
        headers.append(header::SET_COOKIE, value);
    }
    if app.config.csrf && is_get {
        let csrf = app.auth.signing_key().csrf_token(&auth.session);
        if let Ok(value) = HeaderValue::from_str(&csrf) {
            headers.insert(
                HeaderName::from_static("x-csrf-header"),
                HeaderValue::from_static(CSRF_TOKEN_HEADER),
            );
            headers.insert(HeaderName::from_static("x-csrf-token"), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; JSESSIONID=tok.en; b=2"),
        );
        assert_eq!(cookie(&headers, "JSESSIONID"), Some("tok.en"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("x=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("JSESSIONID=\"q\""));
        assert_eq!(cookie(&headers, "JSESSIONID"), Some("q"));
        headers.insert(header::COOKIE, HeaderValue::from_static("JSESSIONID="));
        assert_eq!(cookie(&headers, "JSESSIONID"), None);
    }
}
