//! Everything that can be refused, and the one table that says how each refusal
//! is reported in every dialect.
//!
//! A refused command changes nothing. The front ends turn a [`DomainError`] into
//! their own reply through [`DomainError::codes`]: GWS `{"statusCode", "statusMessage"}`
//! with the HTTP status, Evo's ServiceStack `responseStatus.errorCode`, or a gRPC status.
//!
//! | kind | GWS statusCode | HTTP | gRPC | ServiceStack errorCode |
//! |---|---|---|---|---|
//! | MissingParameter | 1 | 400 | INVALID_ARGUMENT | ArgumentNullException |
//! | InvalidParameter, TooLong, ControlCharacter, RequiresText, ConflictingParameters | 10 | 400 | INVALID_ARGUMENT | ArgumentException |
//! | InvalidState, ConferenceEnded, CannotRemoveOwner, CannotRemoveCustomer, CannotRemoveSelf, TooManyParticipants, TooManyMessages | 2 | 400 | FAILED_PRECONDITION | InvalidOperationException |
//! | NotConferenceOwner, NotVisibleToAll | 3 | 403 | PERMISSION_DENIED | Forbidden |
//! | MissingRole, NotAccountMember | 5 | 403 | PERMISSION_DENIED | Forbidden |
//! | ConferenceNotFound, NotInConference, NotInvited, NotMonitoring | 6 | 404 | NOT_FOUND | NotFound |
//! | ConferenceAlreadyExists, AlreadyInConference, AlreadyMonitoring | 18 | 409 | ALREADY_EXISTS | Conflict |
//! | IdInUse | 19 | 409 | ALREADY_EXISTS | Conflict |
//! | VersionConflict | 19 | 409 | ABORTED | OptimisticConcurrencyException |
//! | NotAuthenticated | 20 | 401 | UNAUTHENTICATED | Unauthorized |
//! | CommandTargetMismatch, EventDoesNotApply | 4 | 500 | INTERNAL | InternalServerError |
//!
//! The HTTP status follows from the GWS statusCode alone ([`http_status_for_gws_status`]),
//! so a GWS reply and an Evo reply for the same refusal always agree.

use thiserror::Error;

use crate::actor::Role;
use crate::conference::ConferenceNoun;
use crate::ids::{AccountId, ConferenceId, UserId};

/// Why a command was refused, or why an event log could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("Access denied: the user is not authenticated")]
    NotAuthenticated,

    #[error("Invalid role: {operation} requires the {role:?} role")]
    MissingRole { operation: &'static str, role: Role },

    #[error("User {user} is not a member of account {account}")]
    NotAccountMember { user: UserId, account: AccountId },

    #[error("{} {id} was not found", .noun.capitalized())]
    ConferenceNotFound {
        noun: ConferenceNoun,
        id: ConferenceId,
    },

    #[error("{} {id} already exists", .noun.capitalized())]
    ConferenceAlreadyExists {
        noun: ConferenceNoun,
        id: ConferenceId,
    },

    #[error("{} {id} is over: {operation} is no longer possible", .noun.capitalized())]
    ConferenceEnded {
        noun: ConferenceNoun,
        id: ConferenceId,
        operation: &'static str,
    },

    #[error("{operation} is not possible in {noun} {id}: {reason}")]
    InvalidState {
        noun: ConferenceNoun,
        id: ConferenceId,
        operation: &'static str,
        reason: String,
    },

    #[error("Parameter {parameter} is required")]
    MissingParameter { parameter: &'static str },

    #[error("Parameter {parameter} has an invalid value '{value}': expected {expected}")]
    InvalidParameter {
        parameter: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("Parameter {parameter} is longer than {limit} bytes")]
    TooLong { parameter: String, limit: usize },

    #[error("Parameter {parameter} contains a control character")]
    ControlCharacter { parameter: String },

    #[error("{} {id} has reached its limit of {limit} participants", .noun.capitalized())]
    TooManyParticipants {
        noun: ConferenceNoun,
        id: ConferenceId,
        limit: usize,
    },

    #[error("{} {id} has reached its limit of {limit} messages", .noun.capitalized())]
    TooManyMessages {
        noun: ConferenceNoun,
        id: ConferenceId,
        limit: usize,
    },

    #[error("Parameter {parameter} may only be given together with text")]
    RequiresText { parameter: &'static str },

    #[error("Parameters {first} and {second} name different participants")]
    ConflictingParameters {
        first: &'static str,
        second: &'static str,
    },

    #[error("Participant {participant} is not in {noun} {id}")]
    NotInConference {
        noun: ConferenceNoun,
        id: ConferenceId,
        participant: String,
    },

    #[error("Participant {participant} is already in {noun} {id}")]
    AlreadyInConference {
        noun: ConferenceNoun,
        id: ConferenceId,
        participant: String,
    },

    #[error("{what} {value} is already in use in {noun} {id}")]
    IdInUse {
        noun: ConferenceNoun,
        id: ConferenceId,
        what: &'static str,
        value: String,
    },

    #[error("Only the owner of call {id} or a supervisor monitoring it may perform {operation}")]
    NotConferenceOwner {
        id: ConferenceId,
        operation: &'static str,
    },

    #[error("Participant {participant} owns call {id} and cannot be removed from it")]
    CannotRemoveOwner {
        id: ConferenceId,
        participant: String,
    },

    #[error("Only agents visible to all may perform {operation} in chat {id}")]
    NotVisibleToAll {
        id: ConferenceId,
        operation: &'static str,
    },

    #[error("Participant {participant} is the customer of chat {id} and cannot be removed")]
    CannotRemoveCustomer {
        id: ConferenceId,
        participant: String,
    },

    #[error("An agent cannot remove themself from chat {id}: use Leave or Complete")]
    CannotRemoveSelf { id: ConferenceId },

    #[error("User {user} has no pending invitation to chat {id}")]
    NotInvited { id: ConferenceId, user: UserId },

    #[error("Supervisor {supervisor} is not monitoring call {id}")]
    NotMonitoring {
        id: ConferenceId,
        supervisor: UserId,
    },

    #[error("Supervisor {supervisor} is already monitoring call {id}")]
    AlreadyMonitoring {
        id: ConferenceId,
        supervisor: UserId,
    },

    /// The store found another version than the one the command was decided on.
    #[error(
        "Conference {id} was changed concurrently: expected version {expected}, found {actual}"
    )]
    VersionConflict {
        id: ConferenceId,
        expected: u64,
        actual: u64,
    },

    /// The caller passed a conference other than the one the command names.
    #[error("Command for conference {command} was given conference {loaded}")]
    CommandTargetMismatch {
        command: ConferenceId,
        loaded: ConferenceId,
    },

    /// An event log that does not fit the state (wrong conference, version gap,
    /// event for another kind of conference): a corrupt or foreign log.
    #[error("Event version {version} does not apply to conference {id}: {reason}")]
    EventDoesNotApply {
        id: ConferenceId,
        version: u64,
        reason: String,
    },
}

impl ConferenceNoun {
    /// The noun at the start of a sentence.
    pub fn capitalized(self) -> &'static str {
        match self {
            ConferenceNoun::Call => "Call",
            ConferenceNoun::Chat => "Chat",
            ConferenceNoun::Session => "Session",
        }
    }
}

/// The variant of a [`DomainError`], without its data: the key of the code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotAuthenticated,
    MissingRole,
    NotAccountMember,
    ConferenceNotFound,
    ConferenceAlreadyExists,
    ConferenceEnded,
    InvalidState,
    MissingParameter,
    InvalidParameter,
    TooLong,
    ControlCharacter,
    TooManyParticipants,
    TooManyMessages,
    RequiresText,
    ConflictingParameters,
    NotInConference,
    AlreadyInConference,
    IdInUse,
    NotConferenceOwner,
    CannotRemoveOwner,
    NotVisibleToAll,
    CannotRemoveCustomer,
    CannotRemoveSelf,
    NotInvited,
    NotMonitoring,
    AlreadyMonitoring,
    VersionConflict,
    CommandTargetMismatch,
    EventDoesNotApply,
}

/// gRPC status codes used by Confer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrpcCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    FailedPrecondition,
    Aborted,
    Internal,
    Unauthenticated,
}

impl GrpcCode {
    /// The canonical name (`NOT_FOUND`).
    pub fn as_str(self) -> &'static str {
        match self {
            GrpcCode::InvalidArgument => "INVALID_ARGUMENT",
            GrpcCode::NotFound => "NOT_FOUND",
            GrpcCode::AlreadyExists => "ALREADY_EXISTS",
            GrpcCode::PermissionDenied => "PERMISSION_DENIED",
            GrpcCode::FailedPrecondition => "FAILED_PRECONDITION",
            GrpcCode::Aborted => "ABORTED",
            GrpcCode::Internal => "INTERNAL",
            GrpcCode::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The numeric code on the wire.
    pub fn number(self) -> i32 {
        match self {
            GrpcCode::InvalidArgument => 3,
            GrpcCode::NotFound => 5,
            GrpcCode::AlreadyExists => 6,
            GrpcCode::PermissionDenied => 7,
            GrpcCode::FailedPrecondition => 9,
            GrpcCode::Aborted => 10,
            GrpcCode::Internal => 13,
            GrpcCode::Unauthenticated => 16,
        }
    }
}

/// How one kind of error is reported in each dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCodes {
    /// GWS `statusCode` (never 0).
    pub gws_status: u8,
    pub http_status: u16,
    pub grpc: GrpcCode,
    /// ServiceStack `responseStatus.errorCode`.
    pub service_stack: &'static str,
}

const fn codes(gws_status: u8, grpc: GrpcCode, service_stack: &'static str) -> ErrorCodes {
    ErrorCodes {
        gws_status,
        http_status: http_status_for_gws_status(gws_status),
        grpc,
        service_stack,
    }
}

/// The HTTP status Confer uses for a GWS statusCode (no public source maps them):
/// 400 for 1, 2, 10 and the other request errors, 401 for 20, 403 for 3 and 5,
/// 404 for 6, 409 for 18 and 19, 500 for 4 and anything else.
pub const fn http_status_for_gws_status(gws_status: u8) -> u16 {
    match gws_status {
        1 | 2 | 10 | 11 => 400,
        20 => 401,
        3 | 5 => 403,
        6 => 404,
        18 | 19 => 409,
        _ => 500,
    }
}

const ARGUMENT_NULL: &str = "ArgumentNullException";
const ARGUMENT: &str = "ArgumentException";
const INVALID_OPERATION: &str = "InvalidOperationException";
const FORBIDDEN: &str = "Forbidden";
const NOT_FOUND: &str = "NotFound";
const CONFLICT: &str = "Conflict";

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 29] = [
        ErrorKind::NotAuthenticated,
        ErrorKind::MissingRole,
        ErrorKind::NotAccountMember,
        ErrorKind::ConferenceNotFound,
        ErrorKind::ConferenceAlreadyExists,
        ErrorKind::ConferenceEnded,
        ErrorKind::InvalidState,
        ErrorKind::MissingParameter,
        ErrorKind::InvalidParameter,
        ErrorKind::TooLong,
        ErrorKind::ControlCharacter,
        ErrorKind::TooManyParticipants,
        ErrorKind::TooManyMessages,
        ErrorKind::RequiresText,
        ErrorKind::ConflictingParameters,
        ErrorKind::NotInConference,
        ErrorKind::AlreadyInConference,
        ErrorKind::IdInUse,
        ErrorKind::NotConferenceOwner,
        ErrorKind::CannotRemoveOwner,
        ErrorKind::NotVisibleToAll,
        ErrorKind::CannotRemoveCustomer,
        ErrorKind::CannotRemoveSelf,
        ErrorKind::NotInvited,
        ErrorKind::NotMonitoring,
        ErrorKind::AlreadyMonitoring,
        ErrorKind::VersionConflict,
        ErrorKind::CommandTargetMismatch,
        ErrorKind::EventDoesNotApply,
    ];

    /// THE table: how this kind of error is reported in every dialect.
    pub const fn codes(self) -> ErrorCodes {
        use GrpcCode::*;
        match self {
            ErrorKind::MissingParameter => codes(1, InvalidArgument, ARGUMENT_NULL),
            ErrorKind::InvalidParameter => codes(10, InvalidArgument, ARGUMENT),
            ErrorKind::TooLong => codes(10, InvalidArgument, ARGUMENT),
            ErrorKind::ControlCharacter => codes(10, InvalidArgument, ARGUMENT),
            ErrorKind::TooManyParticipants => codes(2, FailedPrecondition, INVALID_OPERATION),
            ErrorKind::TooManyMessages => codes(2, FailedPrecondition, INVALID_OPERATION),
            ErrorKind::RequiresText => codes(10, InvalidArgument, ARGUMENT),
            ErrorKind::ConflictingParameters => codes(10, InvalidArgument, ARGUMENT),
            ErrorKind::InvalidState => codes(2, FailedPrecondition, INVALID_OPERATION),
            ErrorKind::ConferenceEnded => codes(2, FailedPrecondition, INVALID_OPERATION),
            ErrorKind::CannotRemoveOwner => codes(2, FailedPrecondition, INVALID_OPERATION),
            ErrorKind::CannotRemoveCustomer => codes(2, FailedPrecondition, INVALID_OPERATION),
            ErrorKind::CannotRemoveSelf => codes(2, FailedPrecondition, INVALID_OPERATION),
            ErrorKind::NotConferenceOwner => codes(3, PermissionDenied, FORBIDDEN),
            ErrorKind::NotVisibleToAll => codes(3, PermissionDenied, FORBIDDEN),
            ErrorKind::MissingRole => codes(5, PermissionDenied, FORBIDDEN),
            ErrorKind::NotAccountMember => codes(5, PermissionDenied, FORBIDDEN),
            ErrorKind::ConferenceNotFound => codes(6, NotFound, NOT_FOUND),
            ErrorKind::NotInConference => codes(6, NotFound, NOT_FOUND),
            ErrorKind::NotInvited => codes(6, NotFound, NOT_FOUND),
            ErrorKind::NotMonitoring => codes(6, NotFound, NOT_FOUND),
            ErrorKind::ConferenceAlreadyExists => codes(18, AlreadyExists, CONFLICT),
            ErrorKind::AlreadyInConference => codes(18, AlreadyExists, CONFLICT),
            ErrorKind::AlreadyMonitoring => codes(18, AlreadyExists, CONFLICT),
            ErrorKind::IdInUse => codes(19, AlreadyExists, CONFLICT),
            ErrorKind::VersionConflict => codes(19, Aborted, "OptimisticConcurrencyException"),
            ErrorKind::NotAuthenticated => codes(20, Unauthenticated, "Unauthorized"),
            ErrorKind::CommandTargetMismatch => codes(4, Internal, "InternalServerError"),
            ErrorKind::EventDoesNotApply => codes(4, Internal, "InternalServerError"),
        }
    }
}

impl DomainError {
    /// The variant, without its data.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DomainError::NotAuthenticated => ErrorKind::NotAuthenticated,
            DomainError::MissingRole { .. } => ErrorKind::MissingRole,
            DomainError::NotAccountMember { .. } => ErrorKind::NotAccountMember,
            DomainError::ConferenceNotFound { .. } => ErrorKind::ConferenceNotFound,
            DomainError::ConferenceAlreadyExists { .. } => ErrorKind::ConferenceAlreadyExists,
            DomainError::ConferenceEnded { .. } => ErrorKind::ConferenceEnded,
            DomainError::InvalidState { .. } => ErrorKind::InvalidState,
            DomainError::MissingParameter { .. } => ErrorKind::MissingParameter,
            DomainError::InvalidParameter { .. } => ErrorKind::InvalidParameter,
            DomainError::TooLong { .. } => ErrorKind::TooLong,
            DomainError::ControlCharacter { .. } => ErrorKind::ControlCharacter,
            DomainError::TooManyParticipants { .. } => ErrorKind::TooManyParticipants,
            DomainError::TooManyMessages { .. } => ErrorKind::TooManyMessages,
            DomainError::RequiresText { .. } => ErrorKind::RequiresText,
            DomainError::ConflictingParameters { .. } => ErrorKind::ConflictingParameters,
            DomainError::NotInConference { .. } => ErrorKind::NotInConference,
            DomainError::AlreadyInConference { .. } => ErrorKind::AlreadyInConference,
            DomainError::IdInUse { .. } => ErrorKind::IdInUse,
            DomainError::NotConferenceOwner { .. } => ErrorKind::NotConferenceOwner,
            DomainError::CannotRemoveOwner { .. } => ErrorKind::CannotRemoveOwner,
            DomainError::NotVisibleToAll { .. } => ErrorKind::NotVisibleToAll,
            DomainError::CannotRemoveCustomer { .. } => ErrorKind::CannotRemoveCustomer,
            DomainError::CannotRemoveSelf { .. } => ErrorKind::CannotRemoveSelf,
            DomainError::NotInvited { .. } => ErrorKind::NotInvited,
            DomainError::NotMonitoring { .. } => ErrorKind::NotMonitoring,
            DomainError::AlreadyMonitoring { .. } => ErrorKind::AlreadyMonitoring,
            DomainError::VersionConflict { .. } => ErrorKind::VersionConflict,
            DomainError::CommandTargetMismatch { .. } => ErrorKind::CommandTargetMismatch,
            DomainError::EventDoesNotApply { .. } => ErrorKind::EventDoesNotApply,
        }
    }

    /// How this error is reported in every dialect.
    pub fn codes(&self) -> ErrorCodes {
        self.kind().codes()
    }

    /// GWS `statusCode`.
    pub fn gws_status(&self) -> u8 {
        self.codes().gws_status
    }

    /// HTTP status.
    pub fn http_status(&self) -> u16 {
        self.codes().http_status
    }

    /// gRPC status code.
    pub fn grpc_code(&self) -> GrpcCode {
        self.codes().grpc
    }

    /// ServiceStack `errorCode`.
    pub fn service_stack_error_code(&self) -> &'static str {
        self.codes().service_stack
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_is_listed_once() {
        let distinct: HashSet<ErrorKind> = ErrorKind::ALL.into_iter().collect();
        assert_eq!(distinct.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn http_status_follows_gws_status_and_grpc_agrees() {
        for kind in ErrorKind::ALL {
            let codes = kind.codes();
            assert_ne!(codes.gws_status, 0, "{kind:?}");
            assert_eq!(
                codes.http_status,
                http_status_for_gws_status(codes.gws_status)
            );
            let expected_grpc: &[GrpcCode] = match codes.http_status {
                400 => &[GrpcCode::InvalidArgument, GrpcCode::FailedPrecondition],
                401 => &[GrpcCode::Unauthenticated],
                403 => &[GrpcCode::PermissionDenied],
                404 => &[GrpcCode::NotFound],
                409 => &[GrpcCode::AlreadyExists, GrpcCode::Aborted],
                _ => &[GrpcCode::Internal],
            };
            assert!(expected_grpc.contains(&codes.grpc), "{kind:?}");
        }
    }

    #[test]
    fn the_brief_mapping() {
        assert_eq!(http_status_for_gws_status(1), 400);
        assert_eq!(http_status_for_gws_status(2), 400);
        assert_eq!(http_status_for_gws_status(10), 400);
        assert_eq!(http_status_for_gws_status(20), 401);
        assert_eq!(http_status_for_gws_status(3), 403);
        assert_eq!(http_status_for_gws_status(5), 403);
        assert_eq!(http_status_for_gws_status(6), 404);
        assert_eq!(http_status_for_gws_status(18), 409);
        assert_eq!(http_status_for_gws_status(19), 409);
        assert_eq!(http_status_for_gws_status(4), 500);
        let conflict = DomainError::VersionConflict {
            id: ConferenceId::new("c"),
            expected: 3,
            actual: 4,
        };
        assert_eq!(conflict.http_status(), 409);
        assert_eq!(conflict.grpc_code().as_str(), "ABORTED");
        assert_eq!(conflict.grpc_code().number(), 10);
    }

    #[test]
    fn messages_read_well() {
        let error = DomainError::NotInConference {
            noun: ConferenceNoun::Call,
            id: ConferenceId::new("01RCC3N118B1V0SL8O7GK2LAES00000O"),
            participant: "15001".into(),
        };
        assert_eq!(
            error.to_string(),
            "Participant 15001 is not in call 01RCC3N118B1V0SL8O7GK2LAES00000O"
        );
        assert_eq!(error.gws_status(), 6);
        assert_eq!(error.service_stack_error_code(), "NotFound");
        let missing = DomainError::ConferenceNotFound {
            noun: ConferenceNoun::Session,
            id: ConferenceId::new("s1"),
        };
        assert_eq!(missing.to_string(), "Session s1 was not found");
    }
}
