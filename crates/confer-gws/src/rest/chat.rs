//! `POST /api/v2/me/chats/{id}`: the chat operations.
//!
//! `RemoveParticipantFromConference` (`targetUri` | `targetPath`, `text`, `messageType`,
//! `treatAs`), `Invite` and `Consult` (`targetUri` or `targetPath` of the user; the reply carries
//! a `referenceId`), `Accept` (`nickname`), `Reject`, `Leave` and `Complete` (optional message),
//! `SendMessage` (`text`, `messageType`, `treatAs`).

use axum::{
    Extension,
    body::Body,
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderMap, Uri},
    response::Response,
};
use confer_core::{
    Command, ConferenceId, DomainError, ParticipantId, UserId, decide::parse_user_reference,
};

use super::{Operation, Shared, accepted, execute, params::Params, path_id, record_removal};
use crate::{auth::Authenticated, error::GwsError, ids};

const REMOVE: &str = "RemoveParticipantFromConference";
const RESOURCE: &str = "a chat";
/// New participant ids tried before giving up on a (160-bit-unlikely) run of collisions.
const ID_ATTEMPTS: usize = 3;

/// The user an `Invite`/`Consult` names by `targetUri` or `targetPath`.
fn target_user(params: &Params) -> Result<UserId, GwsError> {
    let given = |name: &'static str| -> Result<Option<(&'static str, &str)>, GwsError> {
        Ok(params
            .optional_str(name)?
            .filter(|value| !value.trim().is_empty())
            .map(|value| (name, value)))
    };
    let (parameter, reference) = match given("targetUri")? {
        Some(found) => found,
        None => given("targetPath")?.ok_or(GwsError::Domain(DomainError::MissingParameter {
            parameter: "targetUri",
        }))?,
    };
    parse_user_reference(reference).ok_or_else(|| {
        GwsError::Domain(DomainError::InvalidParameter {
            parameter,
            value: reference.to_owned(),
            expected: "a user URI or path such as /api/v2/users/{userId}",
        })
    })
}

#[utoipa::path(
    post,
    path = "/api/v2/me/chats/{id}",
    tag = "GWS chat",
    operation_id = "gwsChatOperation",
    summary = "An operation on a chat.",
    description = "`RemoveParticipantFromConference` (seed 003), `Invite`, `Consult` (the reply carries `referenceId`), `Accept`, `Reject`, `Leave`, `Complete`, `SendMessage`.",
    params(("id" = String, Path, description = "The chat id."), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: a retry with the same key answers the original success and changes nothing.")),
    request_body(
        content = super::openapi::ChatOperation,
        description = "`operationName` and its parameters. Any `Content-Type` is read as JSON.",
        examples(
            ("RemoveParticipantFromConference" = (summary = "Seed 003: remove chat_consult by targetUri", value = json!(super::openapi::sample("chat_remove_request")))),
            ("SendMessage" = (value = json!({"operationName": "SendMessage", "text": "One moment please"}))),
            ("Invite" = (value = json!({"operationName": "Invite", "targetPath": "/users/c30d06daa1ea43b8be79f9b071f30d70"}))),
        )
    ),
    responses(
        (status = 200, description = "`{\"statusCode\":0}` (with `referenceId` for `Invite` and `Consult`): done and committed.", body = confer_model::gws_common::StatusReply, example = json!(super::openapi::sample("chat_remove_reply"))),
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
    let chat = ConferenceId::new(path_id(path, &uri)?);
    let Operation {
        params,
        idempotency,
    } = Operation::read(&headers, &uri, body).await?;
    let operation = params.operation()?;
    if operation == REMOVE {
        let command = (|| -> Result<Command, GwsError> {
            Ok(Command::RemoveParticipantFromChat {
                chat: chat.clone(),
                target_uri: params.optional_str("targetUri")?.map(str::to_owned),
                target_path: params.optional_str("targetPath")?.map(str::to_owned),
                message: params.message()?,
            })
        })();
        let result = match command {
            Ok(command) => execute(&rest, &auth, command, idempotency).await,
            Err(error) => Err(error),
        };
        record_removal(&rest, "gws_chat", &result);
        result?;
        return Ok(accepted(None));
    }
    match operation {
        "Invite" | "Consult" => {
            let target_user = target_user(&params)?;
            let command = if operation == "Invite" {
                Command::InviteToChat { chat, target_user }
            } else {
                Command::ConsultInChat { chat, target_user }
            };
            let executed = execute(&rest, &auth, command, idempotency).await?;
            // The invitation is the command's one event: its version is the reference the
            // invited agent's notification carries (see `feed::reference_id`).
            let reference = i64::try_from(executed.conference.version).unwrap_or(i64::MAX);
            Ok(accepted(Some(reference)))
        }
        "Accept" => {
            let nickname = params
                .optional_str("nickname")?
                .map(str::trim)
                .filter(|nickname| !nickname.is_empty())
                .unwrap_or(&auth.actor.username)
                .to_owned();
            let mut attempt = 0;
            loop {
                attempt += 1;
                let command = Command::AcceptChat {
                    chat: chat.clone(),
                    participant_id: ParticipantId::new(ids::participant_id()?),
                    nickname: nickname.clone(),
                };
                match execute(&rest, &auth, command, idempotency.clone()).await {
                    Err(GwsError::Domain(DomainError::IdInUse { .. })) if attempt < ID_ATTEMPTS => {
                    }
                    result => {
                        result?;
                        return Ok(accepted(None));
                    }
                }
            }
        }
        "Reject" | "Leave" | "Complete" | "SendMessage" => {
            let command = match operation {
                "Reject" => Command::RejectChat { chat },
                "Leave" => Command::LeaveChat {
                    chat,
                    message: params.message()?,
                },
                "Complete" => Command::CompleteChat {
                    chat,
                    message: params.message()?,
                },
                _ => Command::SendChatMessage {
                    chat,
                    message: params.message()?,
                },
            };
            execute(&rest, &auth, command, idempotency).await?;
            Ok(accepted(None))
        }
        other => Err(GwsError::UnknownOperation {
            operation: other.to_owned(),
            resource: RESOURCE,
        }),
    }
}
