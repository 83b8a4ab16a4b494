//! The ServiceStack envelope and request types around `SessionInfo`: errors, the list page, the
//! authentication DTOs and the bodies of `NewSession` and `InviteChatMember`.
//!
//! These are hand-written because `spec/evo.toml` does not declare them yet (the spec holds the
//! seed's `SessionInfo` family and `DeleteChatMember`, and this crate was built without changing
//! the spec). They follow the spec's conventions: every field has an explicit camelCase wire name
//! and a PascalCase alias (ServiceStack reads names ignoring case; the JSV reader does too), unknown
//! input fields are accepted and dropped, and absent optional values are left out of the output.
//! Moving them into the spec is a mechanical follow-up.

use confer_model::evo::{
    FlowChannels, SessionDirections, SessionInfo, SessionMemberCallState, SessionMemberRoles,
};
use serde::{Deserialize, Serialize};

/// ServiceStack's error body: `{"responseStatus": {...}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ErrorResponse {
    #[serde(rename = "responseStatus", alias = "ResponseStatus", default)]
    pub response_status: ResponseStatus,
}

/// ServiceStack's `ResponseStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResponseStatus {
    /// The error's code: the exception type or HTTP status name, as ServiceStack writes it
    /// (`NotFound`, `Forbidden`, `ArgumentException`...).
    #[serde(rename = "errorCode", alias = "ErrorCode", default)]
    pub error_code: String,
    /// What went wrong, for people.
    #[serde(rename = "message", alias = "Message", default)]
    pub message: String,
    /// One entry per offending field; empty when the error is not about a field.
    #[serde(rename = "errors", alias = "Errors", default)]
    pub errors: Vec<ResponseError>,
}

/// ServiceStack's `ResponseError`: what is wrong with one field.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResponseError {
    #[serde(rename = "errorCode", alias = "ErrorCode", default)]
    pub error_code: String,
    #[serde(rename = "fieldName", alias = "FieldName", default)]
    pub field_name: String,
    #[serde(rename = "message", alias = "Message", default)]
    pub message: String,
}

/// One page of a list, in Evo's `ListResponse` shape.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SessionList {
    /// The sessions on this page.
    #[serde(rename = "items", alias = "Items", default)]
    pub items: Vec<SessionInfo>,
    /// How many sessions there are on all pages.
    #[serde(rename = "totalCount", alias = "TotalCount", default)]
    pub total_count: u64,
    /// How many pages there are at this page size (0 when there is nothing to list).
    #[serde(rename = "totalPages", alias = "TotalPages", default)]
    pub total_pages: u64,
    /// Whether pages after this one exist.
    #[serde(rename = "hasMorePages", alias = "HasMorePages", default)]
    pub has_more_pages: bool,
}

/// ServiceStack's `Authenticate` request (`POST /auth/credentials`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Authenticate {
    /// `credentials` (the only provider), or absent on `/auth/credentials`.
    #[serde(
        rename = "provider",
        alias = "Provider",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub provider: Option<String>,
    #[serde(
        rename = "userName",
        alias = "UserName",
        alias = "username",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_name: Option<String>,
    #[serde(
        rename = "password",
        alias = "Password",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<String>,
    /// Also set the permanent `ss-pid` cookie.
    #[serde(rename = "rememberMe", alias = "RememberMe", default)]
    pub remember_me: Option<bool>,
}

/// ServiceStack's `AuthenticateResponse` (the fields Confer has).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AuthenticateResponse {
    #[serde(
        rename = "userId",
        alias = "UserId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<String>,
    /// The session token, also set as the `ss-id` cookie.
    #[serde(
        rename = "sessionId",
        alias = "SessionId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub session_id: Option<String>,
    #[serde(
        rename = "userName",
        alias = "UserName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_name: Option<String>,
    #[serde(
        rename = "displayName",
        alias = "DisplayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    #[serde(
        rename = "roles",
        alias = "Roles",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub roles: Vec<String>,
}

/// `POST /sessions` (Evo's `NewSession`): a session in one of the caller's accounts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewSession {
    /// The session id; the server chooses one when absent.
    #[serde(
        rename = "id",
        alias = "Id",
        alias = "sessionId",
        alias = "SessionId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// The account; may be left out by a user who belongs to exactly one.
    #[serde(
        rename = "accountId",
        alias = "AccountId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub account_id: Option<String>,
    /// Defaults to the account id (Confer keeps no account directory).
    #[serde(
        rename = "accountName",
        alias = "AccountName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub account_name: Option<String>,
    #[serde(rename = "channel", alias = "Channel", default)]
    pub channel: FlowChannels,
    #[serde(rename = "direction", alias = "Direction", default)]
    pub direction: SessionDirections,
    /// The original members.
    #[serde(rename = "members", alias = "Members", default)]
    pub members: Vec<NewSessionMember>,
    #[serde(
        rename = "customerId",
        alias = "CustomerId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub customer_id: Option<String>,
    #[serde(
        rename = "customerName",
        alias = "CustomerName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub customer_name: Option<String>,
    #[serde(
        rename = "endpointId",
        alias = "EndpointId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_id: Option<String>,
    #[serde(
        rename = "endpointName",
        alias = "EndpointName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_name: Option<String>,
    #[serde(
        rename = "destination",
        alias = "Destination",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination: Option<String>,
    #[serde(
        rename = "toAddress",
        alias = "ToAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub to_address: Option<String>,
    #[serde(
        rename = "fromAddress",
        alias = "FromAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub from_address: Option<String>,
    #[serde(
        rename = "fromName",
        alias = "FromName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub from_name: Option<String>,
    #[serde(
        rename = "fromPhoneNumber",
        alias = "FromPhoneNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub from_phone_number: Option<String>,
    #[serde(
        rename = "displayName",
        alias = "DisplayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    #[serde(
        rename = "callbackNumber",
        alias = "CallbackNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub callback_number: Option<String>,
    #[serde(
        rename = "callSid",
        alias = "CallSid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub call_sid: Option<String>,
    #[serde(
        rename = "conferenceSid",
        alias = "ConferenceSid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub conference_sid: Option<String>,
    #[serde(
        rename = "outcome",
        alias = "Outcome",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub outcome: Option<String>,
}

/// An original member of a new session.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewSessionMember {
    /// The member's id (shown as the member's `callSid`); the server chooses one when absent.
    #[serde(
        rename = "memberId",
        alias = "MemberId",
        alias = "callSid",
        alias = "CallSid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub member_id: Option<String>,
    /// A phone number or an email.
    #[serde(
        rename = "identity",
        alias = "Identity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub identity: Option<String>,
    #[serde(
        rename = "displayName",
        alias = "DisplayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    #[serde(rename = "role", alias = "Role", default)]
    pub role: SessionMemberRoles,
    /// Defaults to `Connected`: Confer has no telephony and records what the caller reports.
    #[serde(
        rename = "callState",
        alias = "CallState",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub call_state: Option<SessionMemberCallState>,
}

/// `POST /sessions/{id}/members` (Evo's `InviteChatMember`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InviteChatMember {
    /// The new member: a phone number or an email.
    #[serde(
        rename = "memberToAdd",
        alias = "MemberToAdd",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub member_to_add: Option<String>,
    /// The caller id to dial from; accepted and not used (Confer places no calls).
    #[serde(
        rename = "callerId",
        alias = "CallerId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub caller_id: Option<String>,
    /// The member's id (shown as `callSid`); the server chooses one when absent.
    #[serde(
        rename = "memberId",
        alias = "MemberId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub member_id: Option<String>,
    #[serde(
        rename = "displayName",
        alias = "DisplayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    #[serde(rename = "role", alias = "Role", default)]
    pub role: SessionMemberRoles,
}
