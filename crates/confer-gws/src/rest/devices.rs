//! `POST /api/v2/me/devices/{id}` (supervisor monitoring) and `POST
//! /api/v2/me/devices/{id}/calls` (`Dial`). The device must be the caller's own.
//!
//! Monitoring: `ListenIn`, `Coach`, `BargeIn` with `targetDeviceUri` (the monitored agent's
//! device), `supervisorMonitoringScope` (`Agent` | `Call`, default `Call`) and
//! `supervisorMonitoringMode` (`NextCall` | `AllCalls`, default `AllCalls`), applied to the call
//! the agent is in now; `CancelSupervisorMonitoring` (optional `targetDeviceUri`) stops the
//! caller's monitoring. An agent with no call to monitor is refused (statusCode 2): Confer does
//! not carry a monitoring over to an agent's later calls (see confer-core's "Not modelled").

use axum::{
    Extension,
    body::Body,
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderMap, Uri},
    response::Response,
};
use confer_core::{
    Actor, Command, Conference, ConferenceId, DomainError,
    command::NewDial,
    conference::voice::{MonitoringKind, MonitoringMode, MonitoringScope},
};

use super::{Operation, Shared, accepted, execute, me::own_device, params::Params, path_id};
use crate::{auth::Authenticated, error::GwsError, ids};

const RESOURCE: &str = "a device";
/// New call ids tried before giving up on a (160-bit-unlikely) run of collisions.
const ID_ATTEMPTS: usize = 3;

fn invalid(parameter: &'static str, value: &str, expected: &'static str) -> GwsError {
    GwsError::Domain(DomainError::InvalidParameter {
        parameter,
        value: value.to_owned(),
        expected,
    })
}

/// The device id a `targetDeviceUri` names: its last path segment
/// (`http://host/api/v2/devices/{id}`, `/devices/{id}` or the bare id).
fn device_in(uri: &str) -> Option<&str> {
    let path = uri.split(['?', '#']).next().unwrap_or(uri);
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty())
}

fn scope(params: &Params) -> Result<MonitoringScope, GwsError> {
    const NAME: &str = "supervisorMonitoringScope";
    match params.optional_str(NAME)?.map(str::trim) {
        None | Some("") => Ok(MonitoringScope::default()),
        Some(value) if value.eq_ignore_ascii_case("Call") => Ok(MonitoringScope::Call),
        Some(value) if value.eq_ignore_ascii_case("Agent") => Ok(MonitoringScope::Agent),
        Some(value) => Err(invalid(NAME, value, "Agent or Call")),
    }
}

fn mode(params: &Params) -> Result<MonitoringMode, GwsError> {
    const NAME: &str = "supervisorMonitoringMode";
    match params.optional_str(NAME)?.map(str::trim) {
        None | Some("") => Ok(MonitoringMode::default()),
        Some(value) if value.eq_ignore_ascii_case("AllCalls") => Ok(MonitoringMode::AllCalls),
        Some(value) if value.eq_ignore_ascii_case("NextCall") => Ok(MonitoringMode::NextCall),
        Some(value) => Err(invalid(NAME, value, "NextCall or AllCalls")),
    }
}

/// The user of the device `targetDeviceUri` names.
async fn target_agent(rest: &super::Rest, params: &Params) -> Result<Option<Actor>, GwsError> {
    const NAME: &str = "targetDeviceUri";
    let Some(uri) = params
        .optional_str(NAME)?
        .filter(|uri| !uri.trim().is_empty())
    else {
        return Ok(None);
    };
    let device = device_in(uri.trim()).ok_or_else(|| invalid(NAME, uri, "a device URI"))?;
    let agent = rest
        .directory
        .by_device(device)
        .await?
        .ok_or_else(|| GwsError::UnknownDevice {
            device: device.to_owned(),
        })?;
    Ok(Some(agent))
}

/// The first (by id) live call `pick` accepts among those listed for `actor`.
async fn find_call(
    rest: &super::Rest,
    actor: &Actor,
    pick: impl Fn(&Conference) -> bool,
) -> Result<Option<ConferenceId>, GwsError> {
    Ok(rest
        .app
        .engine
        .listed_for(actor)
        .await?
        .into_iter()
        .find(|conference| conference.as_call().is_some() && pick(conference))
        .map(|conference| conference.id))
}

#[utoipa::path(
    post,
    path = "/api/v2/me/devices/{id}",
    tag = "GWS voice",
    operation_id = "gwsDeviceOperation",
    summary = "Supervisor monitoring from the user's own device.",
    description = "`ListenIn`, `Coach`, `BargeIn` (on the monitored agent's current call) and `CancelSupervisorMonitoring`.",
    params(("id" = String, Path, description = "The supervisor's own device id."), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: a retry with the same key answers the original success and changes nothing.")),
    request_body(
        content = super::openapi::DeviceOperation,
        description = "`operationName` and its parameters. Any `Content-Type` is read as JSON.",
        examples(
            ("ListenIn" = (value = json!({"operationName": "ListenIn", "targetDeviceUri": "http://127.0.0.1:8080/api/v2/devices/631608b3", "supervisorMonitoringScope": "Call"}))),
        )
    ),
    responses(
        (status = 200, description = "`{\"statusCode\":0}`: done and committed.", body = confer_model::gws_common::StatusReply, example = json!({"statusCode": 0})),
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
    let device = path_id(path, &uri)?;
    own_device(&auth, &device)?;
    let Operation {
        params,
        idempotency,
    } = Operation::read(&headers, &uri, body).await?;
    let operation = params.operation()?;
    let command = match operation {
        "ListenIn" | "Coach" | "BargeIn" => {
            let kind = match operation {
                "ListenIn" => MonitoringKind::ListenIn,
                "Coach" => MonitoringKind::Coach,
                _ => MonitoringKind::BargeIn,
            };
            let agent = target_agent(&rest, &params).await?.ok_or(GwsError::Domain(
                DomainError::MissingParameter {
                    parameter: "targetDeviceUri",
                },
            ))?;
            let (scope, mode) = (scope(&params)?, mode(&params)?);
            let call = find_call(&rest, &agent, |conference| {
                conference
                    .as_call()
                    .is_some_and(|call| call.present_party_of_user(&agent.user_id).is_some())
            })
            .await?
            .ok_or_else(|| GwsError::NothingToMonitor {
                user: agent.username.clone(),
            })?;
            Command::StartMonitoring {
                call,
                monitored_user: agent.user_id,
                kind,
                scope,
                mode,
            }
        }
        "CancelSupervisorMonitoring" => {
            let agent = target_agent(&rest, &params).await?;
            let supervisor = auth.actor.user_id.clone();
            let call = find_call(&rest, &auth.actor, |conference| {
                conference.as_call().is_some_and(|call| {
                    call.monitoring_by(&supervisor).is_some_and(|monitoring| {
                        agent
                            .as_ref()
                            .is_none_or(|agent| monitoring.monitored_user == agent.user_id)
                    })
                })
            })
            .await?
            .ok_or_else(|| GwsError::NotMonitoring {
                user: auth.actor.username.clone(),
            })?;
            Command::StopMonitoring { call }
        }
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

/// `POST /api/v2/me/devices/{id}/calls` with `Dial`: a new call from the caller's line.
#[utoipa::path(
    post,
    path = "/api/v2/me/devices/{id}/calls",
    tag = "GWS voice",
    operation_id = "gwsDial",
    summary = "Make a call from the user's device.",
    description = "`Dial` with `destination.phoneNumber` and optional `userData`.",
    params(("id" = String, Path, description = "The user's own device id."), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: a retry with the same key answers the original success and changes nothing.")),
    request_body(
        content = super::openapi::DialOperation,
        description = "`operationName` and its parameters. Any `Content-Type` is read as JSON.",
        examples(
            ("Dial" = (value = json!({"operationName": "Dial", "destination": {"phoneNumber": "15002"}}))),
        )
    ),
    responses(
        (status = 200, description = "`{\"statusCode\":0}`: the call was made and committed.", body = confer_model::gws_common::StatusReply, example = json!({"statusCode": 0})),
        super::openapi::OperationErrors,
    ),
    security(("basic" = [], "gws_csrf" = []), ("gws_session" = [], "gws_csrf" = []))
)]
pub async fn dial(
    State(rest): State<Shared>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, GwsError> {
    let device = path_id(path, &uri)?;
    own_device(&auth, &device)?;
    let Operation {
        params,
        idempotency,
    } = Operation::read(&headers, &uri, body).await?;
    let operation = params.operation()?;
    if operation != "Dial" {
        return Err(GwsError::UnknownOperation {
            operation: operation.to_owned(),
            resource: "a device's calls",
        });
    }
    let destination = params.destination_phone_number()?;
    let user_data = params.user_data()?;
    let destination_user = rest
        .directory
        .by_line(&destination)
        .await?
        .map(|user| user.user_id);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let id = ids::call_id()?;
        let command = Command::Dial(NewDial {
            id: ConferenceId::new(id.clone()),
            conn_id: ids::conn_id()?,
            call_uuid: id,
            destination: destination.clone(),
            destination_user: destination_user.clone(),
            user_data: user_data.clone(),
        });
        match execute(&rest, &auth, command, idempotency.clone()).await {
            Err(GwsError::Domain(DomainError::ConferenceAlreadyExists { .. }))
                if attempt < ID_ATTEMPTS => {}
            result => {
                result?;
                return Ok(accepted(None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_uris() {
        for uri in [
            "http://127.0.0.1:8080/api/v2/devices/631608b3",
            "/api/v2/devices/631608b3/",
            "/devices/631608b3?x=1",
            "631608b3",
        ] {
            assert_eq!(device_in(uri), Some("631608b3"), "{uri}");
        }
        assert_eq!(device_in(""), None);
        assert_eq!(device_in("/"), None);
    }
}
