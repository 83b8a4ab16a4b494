//! The Evo Voice (ServiceStack) dialect: `/sessions` REST in JSON and JSV. (Being built: see
//! issue 5.)

use std::sync::Arc;

use axum::Router;
use confer_app::App;

/// The Evo dialect's routes.
pub fn router(app: Arc<App>) -> Router {
    let _ = app;
    Router::new()
}
