//! Errors as gRPC statuses, mapped from the one domain error table (`confer_core::ErrorKind::codes`)
//! that the REST dialects use too, with `google.rpc` details a caller can act on:
//!
//! * `ErrorInfo`: `reason` is the error kind (`NOT_IN_CONFERENCE`), `domain` is `confer`, and the
//!   metadata carries what the same refusal is in the other dialects (`gwsStatusCode`,
//!   `httpStatus`, `serviceStackErrorCode`), so a caller migrating from REST keeps its handling;
//! * `BadRequest`: one field violation per request field that is missing or invalid, named as in
//!   the `.proto` request (`target_uri`).

use std::collections::HashMap;

use confer_app::{auth::AuthError, engine::EngineError, history::HistoryError};
use confer_core::{DomainError, ErrorKind, GrpcCode};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// `ErrorInfo.domain` of every Confer error.
pub const ERROR_DOMAIN: &str = "confer";

/// Why a gRPC request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The core refused the command (or a read found nothing the caller may see).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A request field the gRPC edge checks itself (an unknown enum value, a malformed token...).
    #[error("{field}: {message}")]
    InvalidField {
        /// The field's name in the `.proto` request message.
        field: String,
        message: String,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The call's deadline passed before the answer was ready.
    #[error("the deadline passed before the request completed")]
    DeadlineExceeded,
    /// The server is stopping.
    #[error("the server is shutting down; reconnect and resume")]
    ShuttingDown,
    /// Reading the event log or the store failed.
    #[error("the store failed")]
    Store(#[from] confer_store::StoreError),
    /// A stored conference or event does not read back.
    #[error("a stored event does not read back: {0}")]
    Corrupt(String),
    /// `Subscribe` resumed from further back than the log keeps (its retention window).
    #[error(
        "the event log no longer holds the events after seq {after_seq}: the oldest it keeps is {oldest}; read the current state, then subscribe without after_seq"
    )]
    Pruned { after_seq: u64, oldest: u64 },
    /// The stream fell behind the retention window: what it was about to render was pruned.
    #[error("{0}; read the current state, then subscribe without after_seq")]
    FellBehind(HistoryError),
    /// New ids need the OS random source (its error, as text: `getrandom`'s error type is not a
    /// `std` error without that crate's `std` feature).
    #[error("no OS randomness: {0}")]
    Randomness(String),
}

impl From<HistoryError> for ApiError {
    fn from(error: HistoryError) -> Self {
        match error {
            HistoryError::Store(error) => ApiError::Store(error),
            pruned @ HistoryError::Pruned { .. } => ApiError::FellBehind(pruned),
            other => ApiError::Corrupt(format!("{other}: {}", source_text(&other))),
        }
    }
}

/// The innermost cause's text, for a message that names what actually went wrong.
fn source_text(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Domain(domain) => domain_status(&domain),
            ApiError::InvalidField { field, message } => Status::with_error_details(
                Code::InvalidArgument,
                format!("{field}: {message}"),
                ErrorDetails::with_bad_request(vec![FieldViolation::new(field, message)]),
            ),
            ApiError::Engine(EngineError::Domain(domain)) => domain_status(&domain),
            ApiError::Engine(EngineError::IdempotencyKeyReused) => Status::with_error_details(
                Code::InvalidArgument,
                "the idempotency-key was already used for a different request",
                ErrorDetails::with_bad_request(vec![FieldViolation::new(
                    "idempotency-key",
                    "already used for a different request; use a new key",
                )]),
            ),
            // Lost the race against other writers too many times: a conflict, worth a retry.
            ApiError::Engine(EngineError::TooMuchContention) => {
                Status::aborted("the conference kept changing under this request; try again")
            }
            ApiError::Engine(EngineError::Store(error)) | ApiError::Store(error) => {
                tracing::error!(error = %error, "gRPC request failed in the store");
                Status::unavailable("the store failed; try again")
            }
            ApiError::Engine(EngineError::Corrupt(error)) => {
                tracing::error!(error = %error, "stored data does not read back");
                Status::internal("stored data does not read back")
            }
            ApiError::Randomness(error) => {
                tracing::error!(error, "the OS random source failed");
                Status::internal("the server cannot make new ids")
            }
            ApiError::Corrupt(message) => {
                tracing::error!(%message, "stored data does not read back");
                Status::internal("stored data does not read back")
            }
            ApiError::Auth(AuthError::Missing | AuthError::Invalid) => {
                domain_status(&DomainError::NotAuthenticated)
            }
            // Both carry `google.rpc.RetryInfo`: when to try again.
            ApiError::Auth(AuthError::Throttled { retry_after }) => Status::with_error_details(
                Code::ResourceExhausted,
                error.to_string(),
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            ApiError::Auth(AuthError::Busy { retry_after }) => Status::with_error_details(
                Code::Unavailable,
                error.to_string(),
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            ApiError::Auth(AuthError::Store(error)) => {
                tracing::error!(error = %error, "authentication failed in the store");
                Status::unavailable("the store failed; try again")
            }
            ApiError::Auth(AuthError::User(error)) => {
                tracing::error!(error = %error, "a user record does not read back");
                Status::internal("the user record does not read back")
            }
            ApiError::DeadlineExceeded => Status::deadline_exceeded(error.to_string()),
            ApiError::Pruned { .. } | ApiError::FellBehind(_) => {
                Status::out_of_range(error.to_string())
            }
            ApiError::ShuttingDown => Status::unavailable(error.to_string()),
        }
    }
}

/// The tonic code for the table's gRPC code.
pub fn code_of(code: GrpcCode) -> Code {
    match code {
        GrpcCode::InvalidArgument => Code::InvalidArgument,
        GrpcCode::NotFound => Code::NotFound,
        GrpcCode::AlreadyExists => Code::AlreadyExists,
        GrpcCode::PermissionDenied => Code::PermissionDenied,
        GrpcCode::FailedPrecondition => Code::FailedPrecondition,
        GrpcCode::Aborted => Code::Aborted,
        GrpcCode::Internal => Code::Internal,
        GrpcCode::Unauthenticated => Code::Unauthenticated,
    }
}

/// A domain refusal as a status: the code and the equivalents in the other dialects from the
/// table, the message the REST dialects show, and the fields at fault.
pub fn domain_status(error: &DomainError) -> Status {
    let codes = error.codes();
    let metadata: HashMap<String, String> = [
        ("gwsStatusCode", codes.gws_status.to_string()),
        ("httpStatus", codes.http_status.to_string()),
        ("serviceStackErrorCode", codes.service_stack.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect();
    let mut details =
        ErrorDetails::with_error_info(reason_of(error.kind()), ERROR_DOMAIN, metadata);
    let message = error.to_string();
    for field in fields_at_fault(error) {
        details.add_bad_request_violation(field, message.clone());
    }
    if matches!(
        error,
        DomainError::CommandTargetMismatch { .. } | DomainError::EventDoesNotApply { .. }
    ) {
        tracing::error!(error = %error, "internal domain error");
    }
    Status::with_error_details(code_of(codes.grpc), message, details)
}

/// `ErrorInfo.reason`: the kind in UPPER_SNAKE_CASE (`NotInConference` → `NOT_IN_CONFERENCE`),
/// as `google.rpc.ErrorInfo` asks. The kind's Rust name is the source, so a new kind gets a reason
/// without another table.
pub fn reason_of(kind: ErrorKind) -> String {
    let name = format!("{kind:?}");
    let mut reason = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            reason.push('_');
        }
        reason.push(c.to_ascii_uppercase());
    }
    reason
}

/// The request fields a refusal is about, named as in the `.proto` requests.
fn fields_at_fault(error: &DomainError) -> Vec<String> {
    match error {
        DomainError::MissingParameter { parameter }
        | DomainError::InvalidParameter { parameter, .. }
        | DomainError::RequiresText { parameter } => vec![proto_field(parameter)],
        DomainError::ConflictingParameters { first, second } => {
            vec![proto_field(first), proto_field(second)]
        }
        _ => Vec::new(),
    }
}

/// A core parameter name (`targetUri`, `MemberToRemove`, the GWS and Evo names) as the gRPC
/// request field that carries it (`target_uri`, `member_to_remove`).
pub fn proto_field(parameter: &str) -> String {
    let mut field = String::with_capacity(parameter.len() + 4);
    for (i, c) in parameter.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                field.push('_');
            }
            field.push(c.to_ascii_lowercase());
        } else {
            field.push(c);
        }
    }
    field
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use confer_core::{ConferenceId, conference::ConferenceNoun};
    use tonic_types::StatusExt as _;

    use super::*;

    #[test]
    fn every_kind_has_a_distinct_upper_snake_reason() {
        let reasons: HashSet<String> = ErrorKind::ALL.into_iter().map(reason_of).collect();
        assert_eq!(reasons.len(), ErrorKind::ALL.len());
        assert!(reasons.contains("NOT_IN_CONFERENCE"));
        assert!(reasons.contains("VERSION_CONFLICT"));
        for reason in &reasons {
            assert!(
                reason.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{reason}"
            );
        }
    }

    #[test]
    fn the_status_code_comes_from_the_table_with_the_other_dialects_codes() {
        let error = DomainError::NotInConference {
            noun: ConferenceNoun::Call,
            id: ConferenceId::new("c1"),
            participant: "15009".into(),
        };
        let status = domain_status(&error);
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "Participant 15009 is not in call c1");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "NOT_IN_CONFERENCE");
        assert_eq!(info.domain, "confer");
        assert_eq!(info.metadata["gwsStatusCode"], "6");
        assert_eq!(info.metadata["httpStatus"], "404");
        assert_eq!(info.metadata["serviceStackErrorCode"], "NotFound");
        assert!(status.get_details_bad_request().is_none());

        for kind in ErrorKind::ALL {
            assert_eq!(
                code_of(kind.codes().grpc) as i32,
                kind.codes().grpc.number()
            );
        }
    }

    #[test]
    fn parameter_errors_name_the_proto_fields() {
        let status = domain_status(&DomainError::ConflictingParameters {
            first: "targetUri",
            second: "targetPath",
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<String> = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["target_uri", "target_path"]);
        assert_eq!(proto_field("MemberToRemove"), "member_to_remove");
        assert_eq!(proto_field("participant"), "participant");
    }
}
