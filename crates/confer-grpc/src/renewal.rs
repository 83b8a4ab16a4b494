//! Sliding renewal of bearer tokens, as REST renews its cookies: a call made with a session
//! token past half its lifetime is answered with a fresh token for the same session in the
//! `confer-session-token` response header (initial metadata; for a stream, at its start).
//! A caller that keeps using the API replaces its token with it and never has to sign in again;
//! one that ignores it signs in again before the old one expires, as before.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::HeaderValue,
    middleware::Next,
    response::Response,
};
use confer_app::App;

/// The response header (gRPC initial metadata) carrying a renewed token.
pub const RENEWED_TOKEN_HEADER: &str = "confer-session-token";

/// Middleware for the gRPC router: see the module docs.
pub async fn renew_bearer(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let mut response = next.run(request).await;
    if let Some(token) = token
        && let Some(fresh) = app.auth.renewal(&token).await
        && let Ok(value) = HeaderValue::from_str(&fresh)
    {
        response.headers_mut().insert(RENEWED_TOKEN_HEADER, value);
    }
    response
}
