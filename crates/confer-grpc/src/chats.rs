//! `confer.v1.ChatService`: GWS chats, each answered with the caller's (an agent's) own view.

use confer_core::{Command, ConferenceNoun, MessageParameters, UserId, command::NewChat};
use confer_model::proto;
use tonic::{Request, Response, Status};

use crate::{
    api::{Api, Change, commit_of, not_found},
    calls::user_data,
    error::ApiError,
    generated::services::chat_service_server::ChatService,
    render,
    request::{given_or_new_id, new_id, page, paginate, required},
};

/// A new chat participant id: 16 upper-case hex digits, as the chat server writes them.
fn new_participant_id() -> Result<String, ApiError> {
    Ok(new_id(8)?.to_ascii_uppercase())
}

/// `treat_as` as the core's text (`Normal`, `System`); UNSPECIFIED counts as not given.
fn treat_as(value: Option<i32>) -> Result<Option<String>, ApiError> {
    let Some(number) = value else {
        return Ok(None);
    };
    match proto::TreatAs::try_from(number) {
        Ok(proto::TreatAs::Unspecified) => Ok(None),
        Ok(proto::TreatAs::Normal) => Ok(Some("Normal".into())),
        Ok(proto::TreatAs::System) => Ok(Some("System".into())),
        Err(_) => Err(ApiError::invalid(
            "treat_as",
            format!("{number} is not a TreatAs value"),
        )),
    }
}

fn message_parameters(
    text: Option<String>,
    message_type: Option<String>,
    treat: Option<i32>,
) -> Result<MessageParameters, ApiError> {
    Ok(MessageParameters {
        text,
        message_type,
        treat_as: treat_as(treat)?,
    })
}

impl Api {
    fn chat_result(
        &self,
        actor: &confer_core::Actor,
        executed: &confer_app::engine::Executed,
    ) -> proto::ChatResult {
        proto::ChatResult {
            chat: render::chat(&executed.conference, &actor.user_id, &self.urls),
            commit: Some(commit_of(executed)),
        }
    }
}

#[tonic::async_trait]
impl ChatService for Api {
    async fn create_chat(
        &self,
        request: Request<proto::CreateChatRequest>,
    ) -> Result<Response<proto::ChatResult>, Status> {
        self.change(
            "/confer.v1.ChatService/CreateChat",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let command = Command::CreateChat(NewChat {
                    id: given_or_new_id(&message.chat_id)?.into(),
                    agent_participant_id: new_participant_id()?.into(),
                    agent_nickname: message.agent_nickname,
                    customer_participant_id: new_participant_id()?.into(),
                    customer_nickname: message.customer_nickname,
                    user_data: user_data("user_data", message.user_data)?,
                    history: Vec::new(),
                });
                let executed = self.execute(&actor, command, idempotency).await?;
                Ok(self.chat_result(&actor, &executed))
            },
        )
        .await
    }

    async fn get_chat(
        &self,
        request: Request<proto::GetChatRequest>,
    ) -> Result<Response<proto::Chat>, Status> {
        self.read(request, |actor, message| async move {
            let id = required("chat_id", &message.chat_id)?;
            self.load(&id)
                .await?
                .and_then(|conference| render::chat(&conference, &actor.user_id, &self.urls))
                .ok_or_else(|| not_found(ConferenceNoun::Chat, &id))
        })
        .await
    }

    async fn list_chats(
        &self,
        request: Request<proto::ListChatsRequest>,
    ) -> Result<Response<proto::ListChatsResponse>, Status> {
        self.read(request, |actor, message| async move {
            let page = page(message.page_size, &message.page_token)?;
            let chats: Vec<_> = self
                .app
                .engine
                .listed_for(&actor)
                .await?
                .into_iter()
                .filter(|conference| conference.as_chat().is_some())
                .collect();
            let (chats, next_page_token) = paginate(chats, &page, |c| c.id.as_str());
            Ok(proto::ListChatsResponse {
                chats: chats
                    .iter()
                    .filter_map(|conference| render::chat(conference, &actor.user_id, &self.urls))
                    .collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn invite_chat_agent(
        &self,
        request: Request<proto::InviteChatAgentRequest>,
    ) -> Result<Response<proto::ChatResult>, Status> {
        self.change(
            "/confer.v1.ChatService/InviteChatAgent",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let chat = required("chat_id", &message.chat_id)?.into();
                let target_user = UserId::new(required("user_id", &message.user_id)?);
                let command = match proto::Visibility::try_from(message.visibility) {
                    Ok(proto::Visibility::Unspecified | proto::Visibility::All) => {
                        Command::InviteToChat { chat, target_user }
                    }
                    Ok(proto::Visibility::Agents) => Command::ConsultInChat { chat, target_user },
                    Err(_) => {
                        return Err(ApiError::invalid(
                            "visibility",
                            format!("{} is not a Visibility value", message.visibility),
                        ));
                    }
                };
                let executed = self.execute(&actor, command, idempotency).await?;
                Ok(self.chat_result(&actor, &executed))
            },
        )
        .await
    }

    async fn accept_chat_invitation(
        &self,
        request: Request<proto::AcceptChatInvitationRequest>,
    ) -> Result<Response<proto::ChatResult>, Status> {
        self.change(
            "/confer.v1.ChatService/AcceptChatInvitation",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let nickname = if message.nickname.trim().is_empty() {
                    actor.username.clone()
                } else {
                    message.nickname
                };
                let command = Command::AcceptChat {
                    chat: required("chat_id", &message.chat_id)?.into(),
                    participant_id: new_participant_id()?.into(),
                    nickname,
                };
                let executed = self.execute(&actor, command, idempotency).await?;
                Ok(self.chat_result(&actor, &executed))
            },
        )
        .await
    }

    async fn remove_chat_participant(
        &self,
        request: Request<proto::RemoveChatParticipantRequest>,
    ) -> Result<Response<proto::ChatResult>, Status> {
        self.change(
            "/confer.v1.ChatService/RemoveChatParticipant",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let command = Command::RemoveParticipantFromChat {
                    chat: required("chat_id", &message.chat_id)?.into(),
                    target_uri: message.target_uri,
                    target_path: message.target_path,
                    message: message_parameters(
                        message.text,
                        message.message_type,
                        message.treat_as,
                    )?,
                };
                let executed = self.execute_removal(&actor, command, idempotency).await?;
                Ok(self.chat_result(&actor, &executed))
            },
        )
        .await
    }

    async fn complete_chat(
        &self,
        request: Request<proto::CompleteChatRequest>,
    ) -> Result<Response<proto::ChatResult>, Status> {
        self.change(
            "/confer.v1.ChatService/CompleteChat",
            request,
            |Change {
                 actor,
                 message,
                 idempotency,
             }| async move {
                let command = Command::CompleteChat {
                    chat: required("chat_id", &message.chat_id)?.into(),
                    message: message_parameters(
                        message.text,
                        message.message_type,
                        message.treat_as,
                    )?,
                };
                let executed = self.execute(&actor, command, idempotency).await?;
                Ok(self.chat_result(&actor, &executed))
            },
        )
        .await
    }
}
