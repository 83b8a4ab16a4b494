//! Every way a GWS request can fail, and THE table that says how each is answered.
//!
//! Domain refusals are reported through `confer_core`'s own table ([`DomainError::codes`]), so a
//! GWS reply and an Evo or gRPC reply for the same refusal agree. The dialect's own failures
//! (authentication, CSRF, a body that is not what GWS expects, an unknown operation, the store
//! failing) have their rows in [`GwsError::codes`]. Every error is answered as
//! `{"statusCode":N,"statusMessage":"..."}` with the HTTP status of its row; an error never
//! changes anything (the engine only commits successes).
//!
//! | error | statusCode | HTTP |
//! |---|---|---|
//! | a domain refusal | `DomainError::gws_status()` | `DomainError::http_status()` |
//! | no credentials, wrong credentials, expired session | 20 | 401 |
//! | too many failed sign-ins (username or address), with `Retry-After` | 20 | 429 |
//! | every password verifier busy, with `Retry-After` | 4 | 503 |
//! | missing or invalid CSRF token | 3 | 403 |
//! | body is not JSON, not an object, or a parameter has the wrong JSON type | 10 | 400 |
//! | body larger than [`MAX_BODY_BYTES`](crate::rest::MAX_BODY_BYTES) | 10 | 413 |
//! | missing `operationName` | 1 | 400 |
//! | unknown `operationName` for the resource | 10 | 400 |
//! | unknown resource (`/api/v2/...`) | 6 | 404 |
//! | method not allowed on the resource | 3 | 405 |
//! | device id that is not the caller's own device | 6 | 404 |
//! | a supervisor operation whose target has no call | 2 | 400 |
//! | stopping a monitoring when the caller monitors no call | 6 | 404 |
//! | `Idempotency-Key` reused for another request | 19 | 409 |
//! | the conference kept changing (optimistic retries exhausted) | 19 | 409 |
//! | store unavailable | 4 | 503 |
//! | any other internal failure | 4 | 500 |

use axum::{
    Json,
    http::StatusCode as HttpStatus,
    response::{IntoResponse, Response},
};
use std::time::Duration;

use confer_app::{
    auth::{AuthError, retry_after_secs},
    engine::EngineError,
};
use confer_core::{DomainError, ErrorKind, error::http_status_for_gws_status};
use confer_model::gws_common::{StatusCode, StatusReply};
use confer_store::StoreError;

/// Why a GWS request failed.
#[derive(Debug, thiserror::Error)]
pub enum GwsError {
    /// A refusal by the domain rules (or a parameter error phrased as one).
    #[error(transparent)]
    Domain(#[from] DomainError),

    /// No credentials, wrong ones, or an expired session: GWS's exact text.
    #[error("Access denied")]
    NotAuthenticated,

    /// Too many failed sign-ins for this username or from this address.
    #[error("Access denied: too many failed sign-ins; try again in {} s", retry_after_secs(*.retry_after))]
    Throttled { retry_after: Duration },

    /// Every password verifier is busy.
    #[error("The service is busy verifying sign-ins; try again in {} s", retry_after_secs(*.retry_after))]
    Busy { retry_after: Duration },

    /// A POST/PUT/DELETE without the CSRF token of its session.
    #[error("Missing or invalid Csrf token")]
    Csrf,

    #[error("The request body is not valid JSON: {0}")]
    MalformedJson(String),

    #[error("The request body must be a JSON object")]
    NotAnObject,

    #[error("The request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },

    #[error("Operation {operation} is not supported on {resource}")]
    UnknownOperation {
        operation: String,
        resource: &'static str,
    },

    #[error("Resource {path} was not found")]
    UnknownResource { path: String },

    #[error("Method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },

    #[error("Device {device} was not found")]
    UnknownDevice { device: String },

    #[error("User {user} has no call to monitor")]
    NothingToMonitor { user: String },

    #[error("User {user} is not monitoring any call")]
    NotMonitoring { user: String },

    #[error("The Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,

    #[error("The conference kept changing under this request; try again")]
    TooMuchContention,

    #[error("The service is temporarily unavailable")]
    Unavailable(#[source] StoreError),

    /// Something that is not the client's fault; the detail is logged, not sent.
    #[error("Internal error")]
    Internal(String),
}

/// One row of the table: the GWS `statusCode` and the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codes {
    pub status: StatusCode,
    pub http: u16,
}

fn row(status: u8) -> Codes {
    Codes {
        status: StatusCode::from_code(i32::from(status)),
        http: http_status_for_gws_status(status),
    }
}

impl GwsError {
    /// THE table (see the module docs).
    pub fn codes(&self) -> Codes {
        match self {
            GwsError::Domain(error) => {
                let codes = error.codes();
                Codes {
                    status: StatusCode::from_code(i32::from(codes.gws_status)),
                    http: codes.http_status,
                }
            }
            GwsError::NotAuthenticated => row(20),
            GwsError::Throttled { .. } => Codes {
                http: 429,
                ..row(20)
            },
            GwsError::Busy { .. } => Codes {
                http: 503,
                ..row(4)
            },
            GwsError::Csrf => row(3),
            GwsError::MalformedJson(_) | GwsError::NotAnObject => row(10),
            GwsError::BodyTooLarge { .. } => Codes {
                http: 413,
                ..row(10)
            },
            GwsError::UnknownOperation { .. } => row(10),
            GwsError::UnknownResource { .. }
            | GwsError::UnknownDevice { .. }
            | GwsError::NotMonitoring { .. } => row(6),
            GwsError::MethodNotAllowed { .. } => Codes {
                http: 405,
                ..row(3)
            },
            GwsError::NothingToMonitor { .. } => row(2),
            GwsError::IdempotencyKeyReused | GwsError::TooMuchContention => row(19),
            GwsError::Unavailable(_) => Codes {
                http: 503,
                ..row(4)
            },
            GwsError::Internal(_) => row(4),
        }
    }

    /// The label this error gets in the removal metric: the domain error kind, or the
    /// dialect's own name.
    pub fn metric_outcome(&self) -> String {
        match self {
            GwsError::Domain(error) => format!("{:?}", error.kind()),
            GwsError::NotAuthenticated => format!("{:?}", ErrorKind::NotAuthenticated),
            GwsError::Throttled { .. } => "Throttled".into(),
            GwsError::Busy { .. } => "Busy".into(),
            GwsError::Csrf => "Csrf".into(),
            GwsError::MalformedJson(_) | GwsError::NotAnObject => "MalformedRequest".into(),
            GwsError::BodyTooLarge { .. } => "BodyTooLarge".into(),
            GwsError::UnknownOperation { .. } => "UnknownOperation".into(),
            GwsError::UnknownResource { .. } | GwsError::MethodNotAllowed { .. } => {
                "UnknownResource".into()
            }
            GwsError::UnknownDevice { .. } => "UnknownDevice".into(),
            GwsError::NothingToMonitor { .. } => "NothingToMonitor".into(),
            GwsError::NotMonitoring { .. } => "NotMonitoring".into(),
            GwsError::IdempotencyKeyReused => "IdempotencyKeyReused".into(),
            GwsError::TooMuchContention => "TooMuchContention".into(),
            GwsError::Unavailable(_) => "Unavailable".into(),
            GwsError::Internal(_) => "Internal".into(),
        }
    }

    /// The reply body: `{"statusCode":N,"statusMessage":"..."}`.
    pub fn reply(&self) -> StatusReply {
        StatusReply {
            status_code: self.codes().status,
            status_message: Some(self.to_string()),
            reference_id: None,
        }
    }
}

impl From<EngineError> for GwsError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Domain(error) => GwsError::Domain(error),
            EngineError::IdempotencyKeyReused => GwsError::IdempotencyKeyReused,
            EngineError::TooMuchContention => GwsError::TooMuchContention,
            EngineError::Store(error) => error.into(),
            EngineError::Corrupt(error) => {
                GwsError::Internal(format!("corrupt stored data: {error}"))
            }
        }
    }
}

impl From<StoreError> for GwsError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            GwsError::Unavailable(error)
        } else {
            GwsError::Internal(format!("store: {error}"))
        }
    }
}

impl From<AuthError> for GwsError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing | AuthError::Invalid => GwsError::NotAuthenticated,
            AuthError::Throttled { retry_after } => GwsError::Throttled { retry_after },
            AuthError::Busy { retry_after } => GwsError::Busy { retry_after },
            AuthError::Store(error) => error.into(),
            AuthError::User(error) => GwsError::Internal(format!("user record: {error}")),
        }
    }
}

impl IntoResponse for GwsError {
    fn into_response(self) -> Response {
        let codes = self.codes();
        match &self {
            GwsError::Internal(detail) => tracing::error!(%detail, "GWS request failed"),
            GwsError::Unavailable(source) => {
                tracing::warn!(error = %source, "GWS request failed: store unavailable");
            }
            _ => {}
        }
        let status = HttpStatus::from_u16(codes.http).unwrap_or(HttpStatus::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.reply())).into_response();
        if let GwsError::Throttled { retry_after } | GwsError::Busy { retry_after } = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs(*retry_after)),
            );
        }
        if matches!(self, GwsError::BodyTooLarge { .. }) {
            // The rest of the body is not read: the connection cannot carry another request.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confer_core::{ConferenceId, conference::ConferenceNoun};

    #[test]
    fn the_dialect_rows() {
        let cases: [(GwsError, i32, u16); 10] = [
            (GwsError::NotAuthenticated, 20, 401),
            (GwsError::Csrf, 3, 403),
            (GwsError::MalformedJson("x".into()), 10, 400),
            (GwsError::NotAnObject, 10, 400),
            (GwsError::BodyTooLarge { limit: 1 }, 10, 413),
            (
                GwsError::UnknownOperation {
                    operation: "Fly".into(),
                    resource: "a call",
                },
                10,
                400,
            ),
            (GwsError::UnknownResource { path: "/x".into() }, 6, 404),
            (GwsError::IdempotencyKeyReused, 19, 409),
            (GwsError::TooMuchContention, 19, 409),
            (GwsError::Internal("boom".into()), 4, 500),
        ];
        for (error, status, http) in cases {
            let codes = error.codes();
            assert_eq!(
                (codes.status.code(), codes.http),
                (status, http),
                "{error:?}"
            );
            let reply = serde_json::to_value(error.reply()).unwrap();
            assert_eq!(reply["statusCode"], status);
            assert!(reply["statusMessage"].is_string());
            assert!(reply.get("referenceId").is_none());
        }
        assert_eq!(
            serde_json::to_value(GwsError::NotAuthenticated.reply()).unwrap(),
            serde_json::json!({"statusCode": 20, "statusMessage": "Access denied"})
        );
        assert_eq!(
            GwsError::Internal("secret detail".into()).to_string(),
            "Internal error",
            "internal details are logged, not sent"
        );
    }

    #[test]
    fn domain_errors_use_the_core_table() {
        let error = GwsError::from(EngineError::Domain(DomainError::NotInConference {
            noun: ConferenceNoun::Call,
            id: ConferenceId::new("c"),
            participant: "15009".into(),
        }));
        assert_eq!(error.codes().status.code(), 6);
        assert_eq!(error.codes().http, 404);
        assert_eq!(error.metric_outcome(), "NotInConference");
    }
}
