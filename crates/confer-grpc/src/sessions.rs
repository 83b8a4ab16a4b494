//! `confer.v1.SessionService`: Evo Voice sessions of the caller's accounts, as `SessionInfo`.

use confer_core::{
    Command, ConferenceNoun, DomainError, Role,
    command::{NewSession, NewSessionMember},
    conference::session::{Channel, Direction, MemberCallState, MemberRole, SessionDetails},
};
use confer_model::proto;
use tonic::{Request, Response, Status};

use crate::{
    api::{Api, Change, commit_of, not_found},
    error::ApiError,
    generated::services::session_service_server::SessionService,
    render,
    request::{given_or_new_id, new_id, optional, page, paginate, required},
};

fn unknown(field: &str, enum_name: &str, number: i32) -> ApiError {
    ApiError::invalid(field, format!("{number} is not a {enum_name} value"))
}

fn channel(number: i32) -> Result<Channel, ApiError> {
    Ok(match proto::FlowChannels::try_from(number) {
        Ok(proto::FlowChannels::Voice) => Channel::Voice,
        Ok(proto::FlowChannels::Chat) => Channel::Chat,
        Ok(proto::FlowChannels::Fax) => Channel::Fax,
        Err(_) => return Err(unknown("channel", "FlowChannels", number)),
    })
}

fn direction(number: i32) -> Result<Direction, ApiError> {
    Ok(match proto::SessionDirections::try_from(number) {
        Ok(proto::SessionDirections::Incoming) => Direction::Incoming,
        Ok(proto::SessionDirections::Outgoing) => Direction::Outgoing,
        Err(_) => return Err(unknown("direction", "SessionDirections", number)),
    })
}

fn role(field: &str, number: i32) -> Result<MemberRole, ApiError> {
    Ok(match proto::SessionMemberRoles::try_from(number) {
        Ok(proto::SessionMemberRoles::None) => MemberRole::None,
        Ok(proto::SessionMemberRoles::Caller) => MemberRole::Caller,
        Ok(proto::SessionMemberRoles::Agent) => MemberRole::Agent,
        Ok(proto::SessionMemberRoles::Transfer) => MemberRole::Transfer,
        Err(_) => return Err(unknown(field, "SessionMemberRoles", number)),
    })
}

fn member_call_state(field: &str, number: i32) -> Result<MemberCallState, ApiError> {
    Ok(match proto::SessionMemberCallState::try_from(number) {
        Ok(proto::SessionMemberCallState::None) => MemberCallState::None,
        Ok(proto::SessionMemberCallState::Ringing) => MemberCallState::Ringing,
        Ok(proto::SessionMemberCallState::Connected) => MemberCallState::Connected,
        Ok(proto::SessionMemberCallState::Hold) => MemberCallState::Hold,
        Err(_) => return Err(unknown(field, "SessionMemberCallState", number)),
    })
}

/// A new member id when none is given: short, unique in practice within a session.
fn member_id_or_new(given: &str) -> Result<String, ApiError> {
    let given = given.trim();
    if given.is_empty() {
        Ok(format!("m{}", new_id(6)?))
    } else {
        Ok(given.to_owned())
    }
}

impl Api {
    fn session_result(&self, executed: &confer_app::engine::Executed) -> proto::SessionResult {
        proto::SessionResult {
            session: render::session(&executed.conference),
            commit: Some(commit_of(executed)),
        }
    }
}

#[tonic::async_trait]
impl SessionService for Api {
    async fn create_session(
        &self,
        request: Request<proto::CreateSessionRequest>,
    ) -> Result<Response<proto::SessionResult>, Status> {
        self.change(
            "/confer.v1.SessionService/CreateSession",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let account_id = required("account_id", &message.account_id)?;
                let account_name = if message.account_name.trim().is_empty() {
                    account_id.clone()
                } else {
                    message.account_name
                };
                let members = message
                    .members
                    .into_iter()
                    .enumerate()
                    .map(|(i, member)| {
                        Ok(NewSessionMember {
                            member_id: member_id_or_new(&member.member_id)?.into(),
                            identity: member.identity,
                            display_name: optional(member.display_name),
                            role: role(&format!("members[{i}].role"), member.role)?,
                            call_state: member_call_state(
                                &format!("members[{i}].call_state"),
                                member.call_state,
                            )?,
                        })
                    })
                    .collect::<Result<Vec<_>, ApiError>>()?;
                let details = SessionDetails {
                    destination: optional(message.destination),
                    display_name: optional(message.display_name),
                    customer_name: optional(message.customer_name),
                    from_address: optional(message.from_address),
                    to_address: optional(message.to_address),
                    ..SessionDetails::default()
                };
                let command = Command::CreateSession(NewSession {
                    id: given_or_new_id(&message.session_id)?.into(),
                    account_id: account_id.into(),
                    account_name,
                    channel: channel(message.channel)?,
                    direction: direction(message.direction)?,
                    members,
                    details: Box::new(details),
                });
                let executed = self.execute(&actor, command, idempotency).await?;
                Ok(self.session_result(&executed))
            },
        )
        .await
    }

    async fn get_session(
        &self,
        request: Request<proto::GetSessionRequest>,
    ) -> Result<Response<proto::SessionInfo>, Status> {
        self.read(request, |actor, message| async move {
            let id = required("session_id", &message.session_id)?;
            let conference = self.app.engine.load_session(&actor, &id).await?;
            let Some((conference, session)) = conference
                .as_ref()
                .and_then(|c| c.as_session().map(|s| (c, s)))
            else {
                return Err(not_found(ConferenceNoun::Session, &id));
            };
            // As for commands: outside the account the session does not exist; inside it without
            // Evo's User role, the role is missing.
            if !actor.accounts.contains(&session.account_id) {
                return Err(not_found(ConferenceNoun::Session, &id));
            }
            if !actor.is_evo_user_in(&session.account_id) {
                return Err(DomainError::MissingRole {
                    operation: "GetSession",
                    role: Role::User,
                }
                .into());
            }
            render::session(conference).ok_or_else(|| not_found(ConferenceNoun::Session, &id))
        })
        .await
    }

    async fn list_sessions(
        &self,
        request: Request<proto::ListSessionsRequest>,
    ) -> Result<Response<proto::ListSessionsResponse>, Status> {
        self.read(request, |actor, message| async move {
            let page = page(message.page_size, &message.page_token)?;
            let sessions: Vec<_> = self
                .app
                .engine
                .listed_for(&actor)
                .await?
                .into_iter()
                .filter(|conference| conference.as_session().is_some())
                .collect();
            let (sessions, next_page_token) = paginate(sessions, &page, |c| c.id.as_str());
            Ok(proto::ListSessionsResponse {
                sessions: sessions.iter().filter_map(render::session).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn add_session_member(
        &self,
        request: Request<proto::AddSessionMemberRequest>,
    ) -> Result<Response<proto::SessionResult>, Status> {
        self.change(
            "/confer.v1.SessionService/AddSessionMember",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let command = Command::InviteSessionMember {
                    session: required("session_id", &message.session_id)?.into(),
                    member_id: member_id_or_new(&message.member_id)?.into(),
                    member_to_add: message.member_to_add,
                    display_name: optional(message.display_name),
                    role: role("role", message.role)?,
                };
                let executed = self.execute(&actor, command, idempotency).await?;
                Ok(self.session_result(&executed))
            },
        )
        .await
    }

    async fn remove_session_member(
        &self,
        request: Request<proto::RemoveSessionMemberRequest>,
    ) -> Result<Response<proto::SessionResult>, Status> {
        self.change(
            "/confer.v1.SessionService/RemoveSessionMember",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let command = Command::RemoveSessionMember {
                    session: required("session_id", &message.session_id)?.into(),
                    member_id: optional(message.member_id),
                    member_to_remove: optional(message.member_to_remove),
                };
                let executed = self.execute_removal(&actor, command, idempotency).await?;
                Ok(self.session_result(&executed))
            },
        )
        .await
    }

    async fn end_session(
        &self,
        request: Request<proto::EndSessionRequest>,
    ) -> Result<Response<proto::SessionResult>, Status> {
        self.change(
            "/confer.v1.SessionService/EndSession",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let command = Command::EndSession {
                    session: required("session_id", &message.session_id)?.into(),
                };
                let executed = self.execute(&actor, command, idempotency).await?;
                Ok(self.session_result(&executed))
            },
        )
        .await
    }
}
