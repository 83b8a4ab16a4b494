//! The OpenAPI description of the Evo routes: the `#[utoipa::path]` annotations live on the
//! handlers ([`crate::sessions`], [`crate::auth`]); this module collects them and describes the
//! ServiceStack error replies. Every schema is a generated wire type.
//!
//! Each route also answers with a `.json` or `.jsv` suffix on its last static segment, and every
//! reply can be JSV (`Accept: text/jsv` or `?format=jsv`); the document describes the plain
//! paths and both media types.

use std::collections::BTreeMap;

use confer_model::evo::ErrorResponse;
use serde_json::json;
use utoipa::{
    IntoResponses, OpenApi, ToSchema,
    openapi::{ContentBuilder, RefOr, Response, ResponseBuilder, schema::Ref},
};

/// HTTP Basic (shared with GWS).
pub const BASIC: &str = "basic";
/// ServiceStack's `ss-id` session cookie.
pub const SESSION: &str = "evo_session";
/// ServiceStack's `ss-pid` permanent session cookie.
pub const PERMANENT_SESSION: &str = "evo_permanent_session";

/// Every Evo operation.
#[derive(OpenApi)]
#[openapi(
    paths(
        crate::sessions::list,
        crate::sessions::create,
        crate::sessions::get,
        crate::sessions::end,
        crate::sessions::invite,
        crate::sessions::remove_member,
        crate::auth::current,
        crate::auth::authenticate_route,
        crate::auth::credentials,
        crate::auth::logout,
    ),
    components(schemas(ErrorResponse)),
    tags(
        (name = "Evo sessions", description = "Evo Voice (ServiceStack) sessions, in JSON or JSV (`Accept: text/jsv`, `?format=jsv`, or a `.jsv` suffix)."),
        (name = "Evo auth", description = "ServiceStack authentication: `ss-id` / `ss-pid` session cookies."),
    )
)]
pub struct EvoApi;

/// A ServiceStack error: `{"responseStatus":{"errorCode":...,"message":...}}`.
fn error_response(description: &str, error_code: &str, message: &str) -> RefOr<Response> {
    let schema = Ref::from_schema_name(ErrorResponse::name());
    let example = json!({"responseStatus": {"errorCode": error_code, "message": message}});
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(schema.clone()))
                .example(Some(example))
                .build(),
        )
        .content(
            "text/jsv",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .into()
}

/// The errors of every authenticated Evo request.
pub struct Errors;

impl IntoResponses for Errors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            (
                "400".to_owned(),
                error_response(
                    "Invalid input (a malformed body, a bad `format`, paging or id) or not valid in the session's state.",
                    "ArgumentException",
                    "Invalid value for countPerPage",
                ),
            ),
            (
                "401".to_owned(),
                error_response(
                    "No credentials, or wrong ones.",
                    "Unauthorized",
                    "Not Authenticated",
                ),
            ),
            (
                "403".to_owned(),
                error_response(
                    "The user lacks the `User` role.",
                    "Forbidden",
                    "Invalid Role",
                ),
            ),
            (
                "404".to_owned(),
                error_response(
                    "No such session or member (a session of another account is not found either).",
                    "NotFound",
                    "Session not found",
                ),
            ),
            (
                "409".to_owned(),
                error_response(
                    "A conflict: the id is in use, the `Idempotency-Key` was used for another request, or the session kept changing (retry).",
                    "Conflict",
                    "Conflict",
                ),
            ),
            (
                "500".to_owned(),
                error_response("Internal error.", "InternalServerError", "Internal error"),
            ),
            (
                "429".to_owned(),
                error_response(
                    "Too many failed sign-ins for this username or from this address; `Retry-After` says when to try again.",
                    "TooManyRequests",
                    "Too many failed sign-ins; try again in 2 s",
                ),
            ),
            (
                "503".to_owned(),
                error_response(
                    "The store is unavailable, or every password verifier is busy (`Retry-After`).",
                    "ServiceUnavailable",
                    "Service unavailable",
                ),
            ),
        ])
    }
}

/// A seed sample (`spec/samples/evo/`), as an example; `null` for a name it does not know (the
/// unit test below checks every name the annotations use).
pub fn sample(name: &str) -> serde_json::Value {
    let text = match name {
        "delete_member_request" => {
            include_str!("../../../spec/samples/evo/delete_chat_member_request.json")
        }
        "delete_member_response" => {
            include_str!("../../../spec/samples/evo/delete_chat_member_response.json")
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
        for name in ["delete_member_request", "delete_member_response"] {
            assert!(sample(name).is_object(), "{name}");
        }
    }
}
