//! `confer.v1.CallService`: GWS voice calls, each answered with the caller's own view.

use confer_core::{
    Command, ConferenceNoun, UserId,
    command::{NewCall, NewParty},
    conference::voice::{CallState, CallType},
    user_data::UserData,
};
use confer_model::{proto, proto_support::json_object_from_proto};
use tonic::{Request, Response, Status};

use crate::{
    api::{Api, Change, commit_of, not_found},
    error::ApiError,
    generated::services::call_service_server::CallService,
    render,
    request::{given_or_new_id, new_id, optional, page, paginate, required},
};

fn call_type(text: &str) -> Result<CallType, ApiError> {
    Ok(match text.trim() {
        "" | "Internal" => CallType::Internal,
        "Inbound" => CallType::Inbound,
        "Outbound" => CallType::Outbound,
        "Consult" => CallType::Consult,
        other => {
            return Err(ApiError::invalid(
                "call_type",
                format!("'{other}' is not Internal, Inbound, Outbound or Consult"),
            ));
        }
    })
}

fn call_state(text: &str) -> Result<CallState, ApiError> {
    Ok(match text.trim() {
        "" | "Established" => CallState::Established,
        "Dialing" => CallState::Dialing,
        "Ringing" => CallState::Ringing,
        other => {
            return Err(ApiError::invalid(
                "state",
                format!("'{other}' is not Dialing, Ringing or Established"),
            ));
        }
    })
}

/// A `JsonObject` as the core's ordered user data.
pub fn user_data(field: &str, object: Option<proto::JsonObject>) -> Result<UserData, ApiError> {
    let Some(object) = object else {
        return Ok(UserData::new());
    };
    let map = json_object_from_proto(object)
        .map_err(|error| ApiError::invalid(field, error.to_string()))?;
    Ok(map.into_iter().collect())
}

impl Api {
    fn call_result(
        &self,
        actor: &confer_core::Actor,
        executed: &confer_app::engine::Executed,
    ) -> proto::CallResult {
        proto::CallResult {
            call: render::call(
                &executed.conference,
                actor,
                &self.urls,
                confer_app::engine::now(),
            ),
            commit: Some(commit_of(executed)),
        }
    }
}

#[tonic::async_trait]
impl CallService for Api {
    async fn create_call(
        &self,
        request: Request<proto::CreateCallRequest>,
    ) -> Result<Response<proto::CallResult>, Status> {
        self.change(
            "/confer.v1.CallService/CreateCall",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let id = given_or_new_id(&message.call_id)?;
                let other_parties = message
                    .other_parties
                    .into_iter()
                    .map(|party| NewParty {
                        phone_number: party.phone_number,
                        user_id: optional(party.user_id).map(UserId::new),
                    })
                    .collect();
                let command = Command::CreateCall(NewCall {
                    id: id.as_str().into(),
                    conn_id: new_id(8)?,
                    // GWS shows a call's callUuid equal to its id (seed 000).
                    call_uuid: id.clone(),
                    dnis: message.dnis,
                    call_type: call_type(&message.call_type)?,
                    state: call_state(&message.state)?,
                    other_parties,
                    user_data: user_data("user_data", message.user_data)?,
                });
                let executed = self.execute(&actor, command, idempotency).await?;
                Ok(self.call_result(&actor, &executed))
            },
        )
        .await
    }

    async fn get_call(
        &self,
        request: Request<proto::GetCallRequest>,
    ) -> Result<Response<proto::Call>, Status> {
        self.read(request, |actor, message| async move {
            let id = required("call_id", &message.call_id)?;
            self.load(&id)
                .await?
                .and_then(|conference| {
                    render::call(&conference, &actor, &self.urls, confer_app::engine::now())
                })
                .ok_or_else(|| not_found(ConferenceNoun::Call, &id))
        })
        .await
    }

    async fn list_calls(
        &self,
        request: Request<proto::ListCallsRequest>,
    ) -> Result<Response<proto::ListCallsResponse>, Status> {
        self.read(request, |actor, message| async move {
            let page = page(message.page_size, &message.page_token)?;
            let calls: Vec<_> = self
                .app
                .engine
                .listed_for(&actor)
                .await?
                .into_iter()
                .filter(|conference| conference.as_call().is_some())
                .collect();
            let (calls, next_page_token) = paginate(calls, &page, |c| c.id.as_str());
            let now = confer_app::engine::now();
            Ok(proto::ListCallsResponse {
                calls: calls
                    .iter()
                    .filter_map(|conference| render::call(conference, &actor, &self.urls, now))
                    .collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn add_call_participant(
        &self,
        request: Request<proto::AddCallParticipantRequest>,
    ) -> Result<Response<proto::CallResult>, Status> {
        self.change(
            "/confer.v1.CallService/AddCallParticipant",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let command = Command::SingleStepConference {
                    call: required("call_id", &message.call_id)?.into(),
                    destination: message.destination,
                    destination_user: optional(message.user_id).map(UserId::new),
                };
                let executed = self.execute(&actor, command, idempotency).await?;
                Ok(self.call_result(&actor, &executed))
            },
        )
        .await
    }

    async fn remove_call_participant(
        &self,
        request: Request<proto::RemoveCallParticipantRequest>,
    ) -> Result<Response<proto::CallResult>, Status> {
        self.change(
            "/confer.v1.CallService/RemoveCallParticipant",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let command = Command::RemoveParticipantFromCall {
                    call: required("call_id", &message.call_id)?.into(),
                    participant: message.participant,
                };
                let executed = self.execute_removal(&actor, command, idempotency).await?;
                Ok(self.call_result(&actor, &executed))
            },
        )
        .await
    }

    async fn end_call(
        &self,
        request: Request<proto::EndCallRequest>,
    ) -> Result<Response<proto::CallResult>, Status> {
        self.change(
            "/confer.v1.CallService/EndCall",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let command = Command::ClearCall {
                    call: required("call_id", &message.call_id)?.into(),
                };
                let executed = self.execute(&actor, command, idempotency).await?;
                Ok(self.call_result(&actor, &executed))
            },
        )
        .await
    }
}
