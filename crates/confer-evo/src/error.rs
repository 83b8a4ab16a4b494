//! Everything the Evo dialect can answer instead of a success, and how ServiceStack writes it:
//! `{"responseStatus":{"errorCode","message","errors":[{"errorCode","fieldName","message"}]}}`,
//! in the negotiated format.
//!
//! Domain refusals take their HTTP status and `errorCode` from the core's one table
//! ([`DomainError::codes`]); the errors that belong to the HTTP edge (credentials, bodies,
//! formats) use ServiceStack's names for them.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use std::time::Duration;

use confer_app::{
    auth::{AuthError, retry_after_secs},
    engine::EngineError,
};
use confer_core::{DomainError, ErrorKind};

use crate::{
    format::Format,
    wire::{ErrorResponse, ResponseError, ResponseStatus},
};

/// ServiceStack's message when a role check fails (`ErrorMessages.InvalidRole`).
pub const INVALID_ROLE: &str = "Invalid Role";
/// ServiceStack's message when no credentials were given.
pub const NOT_AUTHENTICATED: &str = "Not Authenticated";
/// ServiceStack's message when credentials do not verify.
pub const INVALID_CREDENTIALS: &str = "Invalid UserName or Password";

/// Why an Evo request was not answered with a success.
#[derive(Debug, thiserror::Error)]
pub enum EvoError {
    /// The core refused the command (or the edge refused it on the core's terms).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// No credentials: no `Authorization` header and no session cookie.
    #[error("{NOT_AUTHENTICATED}")]
    NotAuthenticated,
    /// Credentials that do not verify (a wrong password, an expired or forged session token).
    #[error("{INVALID_CREDENTIALS}")]
    InvalidCredentials,
    /// Too many failed sign-ins for this user name or from this address.
    #[error("Too many failed sign-ins; try again in {} s", retry_after_secs(*.retry_after))]
    Throttled { retry_after: Duration },
    /// Every password verifier is busy.
    #[error("Too many sign-ins at once; try again in {} s", retry_after_secs(*.retry_after))]
    Busy { retry_after: Duration },
    /// A query or path parameter that is not acceptable.
    #[error("{message}")]
    BadParameter {
        field: &'static str,
        message: String,
    },
    /// A required request field is missing.
    #[error("{message}")]
    MissingField {
        field: &'static str,
        message: String,
    },
    /// A body that does not parse or does not fit the request type.
    #[error("{message}")]
    Unreadable {
        field: Option<String>,
        message: String,
    },
    /// A body in a format this service does not read.
    #[error("Content-Type {0} is not supported: send application/json, text/jsv or a form")]
    UnsupportedMediaType(String),
    /// A body over the limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The `Idempotency-Key` was first used with another request.
    #[error(
        "the Idempotency-Key was already used for a different request; use a new key for a new request"
    )]
    IdempotencyKeyReused,
    /// The engine lost the race for the session too many times.
    #[error("the session kept changing under this request; try again")]
    Contention,
    /// A failure of the server itself (store, corrupt state); never caused by input.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<EngineError> for EvoError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Domain(domain) => EvoError::Domain(domain),
            EngineError::IdempotencyKeyReused => EvoError::IdempotencyKeyReused,
            EngineError::TooMuchContention => EvoError::Contention,
            other @ (EngineError::Store(_) | EngineError::Corrupt(_)) => {
                EvoError::Internal(other.into())
            }
        }
    }
}

impl From<AuthError> for EvoError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing => EvoError::NotAuthenticated,
            AuthError::Invalid => EvoError::InvalidCredentials,
            AuthError::Throttled { retry_after } => EvoError::Throttled { retry_after },
            AuthError::Busy { retry_after } => EvoError::Busy { retry_after },
            other @ (AuthError::Store(_) | AuthError::User(_)) => EvoError::Internal(other.into()),
        }
    }
}

impl EvoError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        let code = match self {
            EvoError::Domain(domain) => domain.http_status(),
            EvoError::NotAuthenticated | EvoError::InvalidCredentials => {
                ErrorKind::NotAuthenticated.codes().http_status
            }
            EvoError::BadParameter { .. }
            | EvoError::MissingField { .. }
            | EvoError::Unreadable { .. } => 400,
            EvoError::UnsupportedMediaType(_) => 415,
            EvoError::Throttled { .. } => 429,
            EvoError::Busy { .. } => 503,
            EvoError::PayloadTooLarge { .. } => 413,
            // RFC draft "The Idempotency-Key HTTP Header Field": a key reused with another
            // payload is 422.
            EvoError::IdempotencyKeyReused => 422,
            EvoError::Contention => ErrorKind::VersionConflict.codes().http_status,
            EvoError::Internal(_) => 500,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// ServiceStack's `errorCode`.
    pub fn error_code(&self) -> &'static str {
        match self {
            EvoError::Domain(domain) => domain.service_stack_error_code(),
            EvoError::NotAuthenticated | EvoError::InvalidCredentials => {
                ErrorKind::NotAuthenticated.codes().service_stack
            }
            EvoError::BadParameter { .. } => "ArgumentException",
            EvoError::MissingField { .. } => "ArgumentNullException",
            EvoError::Unreadable { .. } => "SerializationException",
            EvoError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            EvoError::Throttled { .. } => "TooManyRequests",
            EvoError::Busy { .. } => "ServiceUnavailable",
            EvoError::PayloadTooLarge { .. } => "RequestEntityTooLarge",
            EvoError::IdempotencyKeyReused => "UnprocessableEntity",
            EvoError::Contention => ErrorKind::VersionConflict.codes().service_stack,
            EvoError::Internal(_) => "InternalServerError",
        }
    }

    /// The outcome label of the removal metric: the domain error kind, or what went wrong at the
    /// edge.
    pub fn outcome(&self) -> String {
        match self {
            EvoError::Domain(domain) => format!("{:?}", domain.kind()),
            EvoError::NotAuthenticated | EvoError::InvalidCredentials => {
                format!("{:?}", ErrorKind::NotAuthenticated)
            }
            other => other.error_code().to_owned(),
        }
    }

    /// The message: ServiceStack's own text for authentication and role failures, the domain's
    /// sentence otherwise. Internal failures say nothing about the server's insides.
    pub fn message(&self) -> String {
        match self {
            EvoError::Domain(
                DomainError::MissingRole { .. } | DomainError::NotAccountMember { .. },
            ) => INVALID_ROLE.to_owned(),
            EvoError::Internal(_) => "The server failed to answer; try again later".to_owned(),
            other => other.to_string(),
        }
    }

    /// The per-field entries of `responseStatus.errors`.
    fn field_errors(&self) -> Vec<ResponseError> {
        let code = self.error_code();
        let entry = |field: &str| ResponseError {
            error_code: code.to_owned(),
            field_name: field.to_owned(),
            message: self.message(),
        };
        match self {
            EvoError::Domain(DomainError::MissingParameter { parameter })
            | EvoError::Domain(DomainError::InvalidParameter { parameter, .. })
            | EvoError::Domain(DomainError::RequiresText { parameter }) => vec![entry(parameter)],
            EvoError::Domain(DomainError::ConflictingParameters { first, second }) => {
                vec![entry(first), entry(second)]
            }
            EvoError::BadParameter { field, .. } | EvoError::MissingField { field, .. } => {
                vec![entry(field)]
            }
            EvoError::Unreadable {
                field: Some(field), ..
            } => vec![entry(field)],
            _ => Vec::new(),
        }
    }

    /// The ServiceStack error body.
    pub fn response_status(&self) -> ErrorResponse {
        ErrorResponse {
            response_status: ResponseStatus {
                error_code: self.error_code().to_owned(),
                message: self.message(),
                errors: self.field_errors(),
            },
        }
    }

    /// The whole reply, in `format`.
    pub fn render(&self, format: Format) -> Response {
        if let EvoError::Internal(source) = self {
            tracing::error!(error = %source, "the Evo dialect failed to answer");
        }
        let status = self.status();
        // Writing this plain body cannot fail; if it ever did, the status alone still answers.
        let body = format.write(&self.response_status()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, format.content_type());
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
        if let EvoError::Throttled { retry_after } | EvoError::Busy { retry_after } = self {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(*retry_after)),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            // What ServiceStack's BasicAuthProvider advertises, so curl and browsers know to
            // send Basic credentials.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"/auth/basic\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use confer_core::{ConferenceId, Role, conference::ConferenceNoun};

    use super::*;

    #[test]
    fn domain_errors_follow_the_core_table() {
        let missing = EvoError::Domain(DomainError::ConferenceNotFound {
            noun: ConferenceNoun::Session,
            id: ConferenceId::new("s1"),
        });
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let body = missing.response_status().response_status;
        assert_eq!(body.error_code, "NotFound");
        assert_eq!(body.message, "Session s1 was not found");
        assert!(body.errors.is_empty());
    }

    #[test]
    fn role_failures_say_invalid_role() {
        let error = EvoError::Domain(DomainError::MissingRole {
            operation: "DeleteChatMember",
            role: Role::User,
        });
        assert_eq!(error.status(), StatusCode::FORBIDDEN);
        assert_eq!(error.message(), INVALID_ROLE);
        assert_eq!(error.error_code(), "Forbidden");
    }

    #[test]
    fn parameter_errors_name_their_field() {
        let error = EvoError::Domain(DomainError::MissingParameter {
            parameter: "MemberToRemove",
        });
        let body = error.response_status().response_status;
        assert_eq!(body.error_code, "ArgumentNullException");
        assert_eq!(body.errors.len(), 1);
        assert_eq!(body.errors[0].field_name, "MemberToRemove");
    }

    #[test]
    fn edge_errors_have_their_statuses() {
        let cases = [
            (EvoError::Contention, 409, "OptimisticConcurrencyException"),
            (EvoError::IdempotencyKeyReused, 422, "UnprocessableEntity"),
            (
                EvoError::PayloadTooLarge { limit: 1 },
                413,
                "RequestEntityTooLarge",
            ),
            (
                EvoError::UnsupportedMediaType("text/xml".into()),
                415,
                "UnsupportedMediaType",
            ),
            (EvoError::NotAuthenticated, 401, "Unauthorized"),
            (EvoError::InvalidCredentials, 401, "Unauthorized"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.error_code(), code, "{error:?}");
        }
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let error = EvoError::Internal("database password is hunter2".into());
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.message().contains("hunter2"));
    }
}
