//! The OpenAPI description of the GWS REST routes: the `#[utoipa::path]` annotations live on
//! the handlers; this module collects them, and describes the shapes the handlers build around
//! the generated wire models (the `{"statusCode":0,"<key>":...}` envelopes of [`super::ok_with`]
//! and the `operationName`-discriminated request bodies). It declares no wire type: every
//! schema here is a composition of the generated ones.

use std::{borrow::Cow, collections::BTreeMap};

use confer_model::{
    gws_chat::{
        Chat, ChatAcceptRequest, ChatLogEntry, ChatMessageRequest, ChatRemoveParticipantRequest,
        ChatTargetRequest,
    },
    gws_common::{Device, StatusReply, User},
    gws_voice::{
        Call, CallOperationRequest, CallRemoveParticipantRequest, DialRequest,
        SingleStepConferenceRequest, SupervisorMonitoringRequest,
    },
};
use serde_json::json;
use utoipa::{
    IntoResponses, OpenApi, PartialSchema, ToSchema,
    openapi::{
        ContentBuilder, RefOr, Response, ResponseBuilder,
        schema::{
            AllOfBuilder, ArrayBuilder, Discriminator, ObjectBuilder, OneOfBuilder, Ref, Schema,
        },
    },
};

/// The security scheme names the annotations use (declared by the document's assembler).
pub const BASIC: &str = "basic";
/// The `JSESSIONID` session cookie.
pub const SESSION: &str = "gws_session";
/// The `X-CSRF-TOKEN` header, required with both on modifying requests.
pub const CSRF: &str = "gws_csrf";

/// Every GWS REST operation.
#[derive(OpenApi)]
#[openapi(
    paths(
        super::me::me,
        super::me::calls,
        super::me::call,
        super::voice::operation,
        super::me::chats,
        super::me::chat,
        super::chat::operation,
        super::me::chat_messages,
        super::me::devices,
        super::me::device,
        super::devices::operation,
        super::devices::dial,
        super::users::users,
    ),
    tags(
        (name = "GWS voice", description = "Genesys Web Services voice: the user, calls, devices and their operations (`/api/v2/me`). Notifications: CometD at `/api/v2/notifications` (not REST, not described here)."),
        (name = "GWS chat", description = "Genesys Web Services chat: chats, their message logs and operations."),
    )
)]
pub struct GwsApi;

fn reference<T: ToSchema>() -> Ref {
    Ref::from_schema_name(T::name())
}

/// Pushes `T` and everything it refers to into `schemas`.
fn collect<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// `{"statusCode":0,"<key>":<item>}`: a [`StatusReply`] with the resource beside it.
fn envelope(key: &str, item: RefOr<Schema>, description: &str) -> RefOr<Schema> {
    AllOfBuilder::new()
        .description(Some(description))
        .item(reference::<StatusReply>())
        .item(ObjectBuilder::new().property(key, item).required(key))
        .into()
}

macro_rules! envelope_schema {
    ($name:ident, $description:literal, $key:literal, [$item:ty]) => {
        envelope_schema!(@impl $name, $description, $key, $item,
            ArrayBuilder::new().items(reference::<$item>()).into());
    };
    ($name:ident, $description:literal, $key:literal, $item:ty) => {
        envelope_schema!(@impl $name, $description, $key, $item, reference::<$item>().into());
    };
    (@impl $name:ident, $description:literal, $key:literal, $item:ty, $schema:expr) => {
        #[doc = $description]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                envelope($key, $schema, $description)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                collect::<StatusReply>(schemas);
                collect::<$item>(schemas);
            }
        }
    };
}

envelope_schema!(UserReply, "`GET /api/v2/me`: the user.", "user", User);
envelope_schema!(
    UsersReply,
    "`GET /api/v2/users`: the contact center's users (supervisors and admins only).",
    "users",
    [User]
);
envelope_schema!(
    CallsReply,
    "`GET /api/v2/me/calls`: the user's live calls.",
    "calls",
    [Call]
);
envelope_schema!(
    CallReply,
    "`GET /api/v2/me/calls/{id}`: one call as the user sees it.",
    "call",
    Call
);
envelope_schema!(
    ChatsReply,
    "`GET /api/v2/me/chats`: the user's live chats.",
    "chats",
    [Chat]
);
envelope_schema!(
    ChatReply,
    "`GET /api/v2/me/chats/{id}`: one chat as the user sees it.",
    "chat",
    Chat
);
envelope_schema!(
    MessagesReply,
    "`GET /api/v2/me/chats/{id}/messages`: the chat's message log.",
    "messages",
    [ChatLogEntry]
);
envelope_schema!(
    DevicesReply,
    "`GET /api/v2/me/devices`: the user's devices.",
    "devices",
    [Device]
);
envelope_schema!(
    DeviceReply,
    "`GET /api/v2/me/devices/{id}`: one of the user's devices.",
    "device",
    Device
);

/// A request body that is one of several generated request types, told apart by its
/// `operationName`: `(operationName, schema name)` pairs, each a generated type.
fn operations(description: &str, variants: &[(&str, Cow<'static, str>)]) -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new().description(Some(description));
    let mut seen: Vec<&str> = Vec::new();
    for (_, schema) in variants {
        if !seen.contains(&schema.as_ref()) {
            seen.push(schema.as_ref());
            one_of = one_of.item(Ref::from_schema_name(schema.as_ref()));
        }
    }
    let mapping = variants.iter().map(|(operation, schema)| {
        (
            (*operation).to_owned(),
            format!("#/components/schemas/{schema}"),
        )
    });
    one_of
        .discriminator(Some(Discriminator::with_mapping("operationName", mapping)))
        .into()
}

macro_rules! operation_schema {
    ($(#[$meta:meta])* $name:ident, $description:literal, { $($operation:literal => $ty:ty),+ $(,)? }) => {
        $(#[$meta])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                operations($description, &[$(($operation, <$ty as ToSchema>::name())),+])
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                $(collect::<$ty>(schemas);)+
            }
        }
    };
}

operation_schema!(
    /// The body of `POST /api/v2/me/calls/{id}`.
    CallOperation,
    "A voice operation on a call, chosen by `operationName`.",
    {
        "RemoveParticipantFromConference" => CallRemoveParticipantRequest,
        "SingleStepConference" => SingleStepConferenceRequest,
        "Answer" => CallOperationRequest,
        "Hangup" => CallOperationRequest,
        "ClearCall" => CallOperationRequest,
        "Hold" => CallOperationRequest,
        "Retrieve" => CallOperationRequest,
    }
);
operation_schema!(
    /// The body of `POST /api/v2/me/chats/{id}`.
    ChatOperation,
    "A chat operation, chosen by `operationName`.",
    {
        "RemoveParticipantFromConference" => ChatRemoveParticipantRequest,
        "Invite" => ChatTargetRequest,
        "Consult" => ChatTargetRequest,
        "Accept" => ChatAcceptRequest,
        "Reject" => ChatMessageRequest,
        "Leave" => ChatMessageRequest,
        "Complete" => ChatMessageRequest,
        "SendMessage" => ChatMessageRequest,
    }
);
operation_schema!(
    /// The body of `POST /api/v2/me/devices/{id}`.
    DeviceOperation,
    "A supervisor monitoring operation on the supervisor's own device, chosen by `operationName`.",
    {
        "ListenIn" => SupervisorMonitoringRequest,
        "Coach" => SupervisorMonitoringRequest,
        "BargeIn" => SupervisorMonitoringRequest,
        "CancelSupervisorMonitoring" => SupervisorMonitoringRequest,
    }
);
operation_schema!(
    /// The body of `POST /api/v2/me/devices/{id}/calls`.
    DialOperation,
    "Make a call from the user's device (`operationName: Dial`).",
    {
        "Dial" => DialRequest,
    }
);

/// A GWS error: `{"statusCode":N,"statusMessage":"..."}` with its HTTP status.
fn error_response(description: &str, status_code: i32, message: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(reference::<StatusReply>()))
                .example(Some(
                    json!({"statusCode": status_code, "statusMessage": message}),
                ))
                .build(),
        )
        .into()
}

/// The errors every GWS request can get.
fn common_errors() -> BTreeMap<String, RefOr<Response>> {
    BTreeMap::from([
        (
            "401".to_owned(),
            error_response(
                "statusCode 20: no credentials, wrong credentials, or an expired or forged session.",
                20,
                "Access denied",
            ),
        ),
        (
            "404".to_owned(),
            error_response(
                "statusCode 6: the resource does not exist or the user has no part in it.",
                6,
                "Call 01RCC3N118B1V0SL8O7GK2LAES00000X not found",
            ),
        ),
        (
            "500".to_owned(),
            error_response("statusCode 4: internal error.", 4, "Internal error"),
        ),
        (
            "429".to_owned(),
            error_response(
                "statusCode 20: too many failed sign-ins for this username or from this address; `Retry-After` says when to try again.",
                20,
                "Access denied: too many failed sign-ins; try again in 2 s",
            ),
        ),
        (
            "503".to_owned(),
            error_response(
                "statusCode 4: the store is unavailable, or every password verifier is busy (`Retry-After`).",
                4,
                "Service unavailable",
            ),
        ),
    ])
}

/// The errors of a GWS `GET`.
pub struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        common_errors()
    }
}

/// The errors of a GWS `GET` of one resource by its id.
pub struct ReadByIdErrors;

impl IntoResponses for ReadByIdErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = common_errors();
        responses.insert(
            "400".to_owned(),
            error_response(
                "statusCode 10: an id in the path is too long or holds a control character.",
                10,
                "Parameter id contains a control character",
            ),
        );
        responses
    }
}

/// The errors of a GWS operation (`POST` with `operationName`).
pub struct OperationErrors;

impl IntoResponses for OperationErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = common_errors();
        responses.extend([
            (
                "400".to_owned(),
                error_response(
                    "statusCode 1 (a required parameter is missing), 2 (not valid in the current state) or 10 (invalid input: malformed JSON, a wrong type or value, an unknown `operationName`).",
                    1,
                    "Missing parameter: participant",
                ),
            ),
            (
                "403".to_owned(),
                error_response(
                    "statusCode 3 (forbidden: not the owner, or the CSRF token is missing or wrong) or 5 (the user lacks the role).",
                    3,
                    "Forbidden",
                ),
            ),
            (
                "409".to_owned(),
                error_response(
                    "statusCode 18 (already exists) or 19 (`Idempotency-Key` reused for another request, or the conference kept changing: retry).",
                    19,
                    "Already in use",
                ),
            ),
            (
                "413".to_owned(),
                error_response("statusCode 10: the body is larger than 64 KiB.", 10, "Request body too large"),
            ),
        ]);
        responses
    }
}

/// `{"statusCode":0}`: the operation was done (and committed).
pub fn accepted_example() -> serde_json::Value {
    json!({"statusCode": 0})
}

/// A seed sample (`spec/samples/`), as an example; `null` for a name it does not know (the
/// unit test below checks every name the annotations use).
pub fn sample(name: &str) -> serde_json::Value {
    let text = match name {
        "voice_remove_request" => {
            include_str!("../../../../spec/samples/gws_voice/remove_participant_request.json")
        }
        "voice_remove_reply" => {
            include_str!("../../../../spec/samples/gws_voice/remove_participant_reply.json")
        }
        "chat_remove_request" => {
            include_str!("../../../../spec/samples/gws_chat/remove_participant_request.json")
        }
        "chat_remove_reply" => {
            include_str!("../../../../spec/samples/gws_chat/remove_participant_reply.json")
        }
        _ => "null",
    };
    serde_json::from_str(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_samples_parse() {
        for name in [
            "voice_remove_request",
            "voice_remove_reply",
            "chat_remove_request",
            "chat_remove_reply",
        ] {
            assert!(sample(name).is_object(), "{name}");
        }
    }

    #[test]
    fn every_post_names_its_operations() {
        let doc = GwsApi::openapi();
        let json = serde_json::to_value(&doc).unwrap();
        for schema in [
            "CallOperation",
            "ChatOperation",
            "DeviceOperation",
            "DialOperation",
        ] {
            let mapping = &json["components"]["schemas"][schema]["discriminator"]["mapping"];
            assert!(mapping.is_object(), "{schema}: {json}");
        }
    }
}
