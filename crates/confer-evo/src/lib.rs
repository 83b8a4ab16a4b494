//! The Evo Voice (ServiceStack) dialect: `/sessions` REST in JSON and JSV, and ServiceStack's
//! `/auth` routes.
//!
//! | route | ServiceStack operation |
//! |---|---|
//! | `GET /sessions` | list (`{items, totalCount, totalPages, hasMorePages}`) |
//! | `POST /sessions` | `NewSession` |
//! | `GET /sessions/{id}` | get one `SessionInfo` |
//! | `DELETE /sessions/{id}` | end the session |
//! | `POST /sessions/{id}/members` | `InviteChatMember` |
//! | `DELETE /sessions/{sessionId}/members/{memberId}` | `DeleteChatMember` (the seed) |
//! | `POST /auth/credentials`, `POST /auth` | sign in, set `ss-id` / `ss-pid` |
//! | `GET /auth` | who the credentials belong to |
//! | `GET\|POST /auth/logout` | clear the cookies |
//!
//! Each route also answers with a `.json` or `.jsv` suffix. How replies are negotiated and bodies
//! read: [`format`]; authentication: [`auth`]; errors: [`error`]; what `SessionInfo` holds and how
//! members are identified on the wire: [`render`]. The user guide is `docs/evo.md` at the
//! repository root.

pub mod auth;
pub mod error;
pub mod format;
pub mod openapi;
pub use confer_render::evo as render;
pub mod reply;
pub mod sessions;
pub mod wire;

use std::sync::Arc;

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::Response,
    routing::{delete, get, post},
};
use confer_app::App;

/// What the Evo handlers share.
pub struct EvoState {
    pub app: Arc<App>,
}

/// The Evo dialect's routes.
pub fn router(app: Arc<App>) -> Router {
    let state = Arc::new(EvoState { app });
    let mut sessions = Router::new();
    let mut auth = Router::new();
    // Routes whose last segment is static also answer with a format suffix on it; a suffix on a
    // last segment that is a parameter (`/sessions/{id}.jsv`) is taken off by the handler.
    for suffix in ["", ".json", ".jsv"] {
        sessions = sessions
            .route(
                &format!("/sessions{suffix}"),
                get(sessions::list).post(sessions::create),
            )
            .route(
                &format!("/sessions/{{id}}/members{suffix}"),
                post(sessions::invite),
            );
        auth = auth
            .route(
                &format!("/auth{suffix}"),
                get(auth::current).post(auth::authenticate_route),
            )
            .route(
                &format!("/auth/credentials{suffix}"),
                post(auth::credentials),
            )
            .route(
                &format!("/auth/logout{suffix}"),
                get(auth::logout).post(auth::logout),
            );
    }
    sessions
        .route("/sessions/{id}", get(sessions::get).delete(sessions::end))
        .route(
            "/sessions/{id}/members/{memberId}",
            delete(sessions::remove_member),
        )
        // Not on the auth routes: signing in sets its own cookies, signing out clears them.
        .route_layer(middleware::from_fn_with_state(state.clone(), renew_session))
        .merge(auth)
        .with_state(state)
}

/// Renews the session cookies of a successful request that used them (see
/// [`auth::renew_session`]).
async fn renew_session(
    State(state): State<Arc<EvoState>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers().clone();
    let mut response = next.run(request).await;
    if response.status().is_success() {
        auth::renew_session(&state.app, &headers, &mut response).await;
    }
    response
}
