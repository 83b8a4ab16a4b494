//! `POST /api/v2/me/calls/{id}`: the voice operations.
//!
//! `RemoveParticipantFromConference` (`participant`: a phone number), `SingleStepConference`
//! (`destination.phoneNumber`), `Answer`, `Hangup`, `ClearCall`, `Hold`, `Retrieve`.

use axum::{
    Extension,
    body::Body,
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderMap, Uri},
    response::Response,
};
use confer_core::{Command, ConferenceId};

use super::{Operation, Shared, accepted, execute, path_id, record_removal};
use crate::{auth::Authenticated, error::GwsError};

pub const REMOVE: &str = "RemoveParticipantFromConference";
/// The operations of this resource, for error messages.
const RESOURCE: &str = "a call";

#[utoipa::path(
    post,
    path = "/api/v2/me/calls/{id}",
    tag = "GWS voice",
    operation_id = "gwsCallOperation",
    summary = "An operation on a call.",
    description = "`RemoveParticipantFromConference` (seed 000), `SingleStepConference`, `Answer`, `Hangup`, `ClearCall`, `Hold`, `Retrieve`. Clients learn the result from CometD notifications.",
    params(("id" = String, Path, description = "The call id."), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: a retry with the same key answers the original success and changes nothing.")),
    request_body(
        content = super::openapi::CallOperation,
        description = "`operationName` and its parameters. Any `Content-Type` is read as JSON.",
        examples(
            ("RemoveParticipantFromConference" = (summary = "Seed 000: remove 15001 from the conference", value = json!(super::openapi::sample("voice_remove_request")))),
            ("SingleStepConference" = (value = json!({"operationName": "SingleStepConference", "destination": {"phoneNumber": "15003"}}))),
            ("Hold" = (value = json!({"operationName": "Hold"}))),
        )
    ),
    responses(
        (status = 200, description = "`{\"statusCode\":0}`: done and committed.", body = confer_model::gws_common::StatusReply, example = json!(super::openapi::sample("voice_remove_reply"))),
        super::openapi::OperationErrors,
    ),
    security(("basic" = [], "gws_csrf" = []), ("gws_session" = [], "gws_csrf" = []))
)]
pub async fn operation(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, GwsError> {
    let call = ConferenceId::new(path_id(path, &uri)?);
    let Operation {
        params,
        idempotency,
    } = Operation::read(&headers, &uri, body).await?;
    let operation = params.operation()?;
    if operation == REMOVE {
        let result = match params.required_str("participant") {
            Ok(participant) => {
                let command = Command::RemoveParticipantFromCall {
                    call,
                    participant: participant.trim().to_owned(),
                };
                execute(&rest, &auth, command, idempotency).await
            }
            Err(error) => Err(error),
        };
        record_removal(&rest, "gws_voice", &result);
        result?;
        return Ok(accepted(None));
    }
    let command = match operation {
        "SingleStepConference" => {
            let destination = params.destination_phone_number()?;
            // The user on that line, when it is one: they are then told about the call.
            let destination_user = rest
                .directory
                .by_line(&destination)
                .await?
                .map(|user| user.user_id);
            Command::SingleStepConference {
                call,
                destination,
                destination_user,
            }
        }
        "Answer" => Command::Answer { call },
        "Hangup" => Command::Hangup { call },
        "ClearCall" => Command::ClearCall { call },
        "Hold" => Command::Hold { call },
        "Retrieve" => Command::Retrieve { call },
        other => {
            return Err(GwsError::UnknownOperation {
                operation: other.to_owned(),
                resource: RESOURCE,
            });
        }
    };
    execute(&rest, &auth, command, idempotency).await?;
    Ok(accepted(None))
}
