//! `GET /healthz` (the process is alive) and `GET /readyz` (the store answers).

use std::{sync::Arc, time::Duration};

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::App;

/// How long `/readyz` waits for the store before saying it is not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "Health",
    operation_id = "healthz",
    summary = "The process is alive.",
    responses(
        (status = 200, description = "Alive.", body = serde_json::Value, example = json!({"status": "alive"})),
    ),
    security(())
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "Health",
    operation_id = "readyz",
    summary = "The store answers.",
    responses(
        (status = 200, description = "Ready.", body = serde_json::Value, example = json!({"status": "ready"})),
        (status = 503, description = "The store does not answer.", body = serde_json::Value, example = json!({"status": "unavailable", "reason": "store: no answer within 2 s"})),
    ),
    security(())
)]
pub async fn readyz(State(app): State<Arc<App>>) -> (StatusCode, Json<Value>) {
    match tokio::time::timeout(READY_TIMEOUT, app.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Ok(Err(err)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": format!("store: {err}")})),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": "store: no answer within 2 s"})),
        ),
    }
}
