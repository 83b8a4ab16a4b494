//! What every service shares: the application, where the REST dialects are reached (for URIs),
//! the shutdown signal for open streams, and the steps every RPC takes (authenticate, honor the
//! deadline, run the command through the engine, answer with the caller's view and the commit).

use std::sync::Arc;

use confer_app::{
    App,
    engine::{Executed, IdempotencyKey},
};
use confer_core::{Actor, Command, DomainError};
use confer_model::proto;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::{
    error::ApiError,
    render::Urls,
    request::{authenticate, idempotency_key, within_deadline},
};

/// The implementation of every `confer.v1` service; one per server, shared by the services.
pub struct Api {
    pub app: Arc<App>,
    pub urls: Urls,
    /// Turns true when the server stops: open streams end.
    pub stopping: watch::Receiver<bool>,
}

/// A mutating RPC's request, authenticated, with its idempotency key.
pub struct Change<T> {
    pub actor: Actor,
    pub message: T,
    pub idempotency: Option<IdempotencyKey>,
}

impl Api {
    /// Runs a read-only RPC: authenticates, then `answer`, within the deadline.
    pub async fn read<T, R, F>(
        &self,
        request: Request<T>,
        answer: impl FnOnce(Actor, T) -> F,
    ) -> Result<Response<R>, Status>
    where
        F: Future<Output = Result<R, ApiError>>,
    {
        let (metadata, _, message) = request.into_parts();
        within_deadline(&metadata, async {
            let actor = authenticate(&self.app, &metadata).await?;
            answer(actor, message).await
        })
        .await
        .map(Response::new)
        .map_err(Status::from)
    }

    /// Runs a mutating RPC `method` (its full gRPC path, part of the idempotency fingerprint):
    /// authenticates, reads the `idempotency-key`, then `answer`, within the deadline.
    pub async fn change<T, R, F>(
        &self,
        method: &str,
        request: Request<T>,
        answer: impl FnOnce(Change<T>) -> F,
    ) -> Result<Response<R>, Status>
    where
        T: prost::Message,
        F: Future<Output = Result<R, ApiError>>,
    {
        let (metadata, _, message) = request.into_parts();
        within_deadline(&metadata, async {
            let actor = authenticate(&self.app, &metadata).await?;
            let idempotency = idempotency_key(&metadata, method, &message)?;
            answer(Change {
                actor,
                message,
                idempotency,
            })
            .await
        })
        .await
        .map(Response::new)
        .map_err(Status::from)
    }

    /// Runs a command through the engine (the one way every dialect changes a conference).
    pub async fn execute(
        &self,
        actor: &Actor,
        command: Command,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Executed, ApiError> {
        Ok(self.app.engine.execute(actor, command, idempotency).await?)
    }

    /// Runs a removal, counting it in the `confer_removals` metric by outcome.
    pub async fn execute_removal(
        &self,
        actor: &Actor,
        command: Command,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Executed, ApiError> {
        let result = self.execute(actor, command, idempotency).await;
        let outcome = match &result {
            Ok(executed) if executed.replayed => "replayed",
            Ok(_) => "removed",
            Err(_) => "refused",
        };
        self.app.metrics.record_removal("grpc", outcome);
        result
    }

    /// The conference with this id, as last committed.
    pub async fn load(&self, id: &str) -> Result<Option<confer_core::Conference>, ApiError> {
        Ok(self.app.engine.load(id).await?)
    }

    /// `AuthService.Login`.
    pub async fn log_in(
        &self,
        request: Request<proto::LoginRequest>,
    ) -> Result<Response<proto::LoginResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        within_deadline(&metadata, async {
            if message.username.is_empty() {
                return Err(ApiError::invalid("username", "is required"));
            }
            let actor = self
                .app
                .auth
                .verify_password(&message.username, &message.password)
                .await?;
            // Taken before the token, so the token never expires before the time said here.
            let expires_at_unix = self.app.auth.new_session_expiry();
            let token = self.app.auth.issue_session(&actor).await?;
            Ok(proto::LoginResponse {
                token,
                expires_at_unix,
                user_id: actor.user_id.to_string(),
                username: actor.username.clone(),
            })
        })
        .await
        .map(Response::new)
        .map_err(Status::from)
    }
}

/// What a change committed.
pub fn commit_of(executed: &Executed) -> proto::Commit {
    let (first_seq, last_seq) = if executed.replayed {
        (0, 0)
    } else {
        (*executed.seqs.start(), *executed.seqs.end())
    };
    proto::Commit {
        version: executed.conference.version,
        first_seq,
        last_seq,
        replayed: executed.replayed,
    }
}

/// A conference the caller may not see, or of another kind, is not found for them (as in the REST
/// dialects: refusals never reveal other people's conferences).
pub fn not_found(noun: confer_core::ConferenceNoun, id: &str) -> ApiError {
    DomainError::ConferenceNotFound {
        noun,
        id: id.into(),
    }
    .into()
}
