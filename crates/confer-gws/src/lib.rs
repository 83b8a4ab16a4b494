//! The Genesys Web Services dialect: `/api/v2/me/...` voice and chat REST, and CometD
//! notifications at `/api/v2/notifications`. (Being built: see issue 4.)

use std::sync::Arc;

use axum::Router;
use confer_app::App;

/// The GWS dialect of one server: its routes and its background work.
pub struct GwsDialect {
    app: Arc<App>,
}

impl GwsDialect {
    /// Starts what the dialect runs in the background (the notification feed).
    pub async fn start(app: Arc<App>) -> anyhow::Result<Self> {
        Ok(Self { app })
    }

    /// The dialect's REST and CometD routes.
    pub fn router(&self) -> Router {
        let _ = &self.app;
        Router::new()
    }

    /// Closes notification sessions; called when the server stops.
    pub async fn shutdown(&self) {}
}
