//! What the gRPC tests share: an in-process server on ephemeral ports with the demo world, and
//! tonic clients generated from `spec/services.proto`, authenticated per request.

// Each test file uses a different part of this module.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use confer::server::{RunningServer, start};
use confer_app::config::ServeArgs;
use confer_grpc::services::{
    auth_service_client::AuthServiceClient, call_service_client::CallServiceClient,
    chat_service_client::ChatServiceClient, notification_service_client::NotificationServiceClient,
    session_service_client::SessionServiceClient,
};
use tonic::{
    Code, Request, Status,
    metadata::MetadataValue,
    transport::{Channel, Endpoint},
};
use tonic_types::StatusExt as _;

pub use confer_core::demo::{ACCOUNT_ID, CHAT_ID, SESSION_ID, VOICE_CALL_ID};
pub use confer_grpc::proto;

/// Every demo user's password.
pub const PASSWORD: &str = "demo";

/// A demo user's id.
pub fn user_id(username: &str) -> String {
    confer_core::demo::demo_user(username)
        .map(|user| user.user_id.to_owned())
        .unwrap_or_else(|| panic!("{username} is not a demo user"))
}

/// A running in-process server with the demo loaded, and its data directory.
pub struct Server {
    pub running: Option<RunningServer>,
    pub channel: Channel,
    _data: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`Server::start`], with settings changed by `configure` first.
    pub async fn start_with(configure: impl FnOnce(&mut ServeArgs)) -> Self {
        let data = tempfile::tempdir().expect("a temporary directory");
        let mut args = ServeArgs {
            listen: Some("127.0.0.1:0".parse().expect("an address")),
            grpc_listen: Some("127.0.0.1:0".parse().expect("an address")),
            data_dir: Some(data.path().to_path_buf()),
            demo: Some(true),
            csrf: Some(true),
            ..ServeArgs::default()
        };
        configure(&mut args);
        let config = args.resolve().expect("a valid config");
        let running = start(config).await.expect("the server starts");
        let channel = Endpoint::from_shared(format!("http://{}", running.grpc_addr))
            .expect("an endpoint")
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .expect("connect to the gRPC listener");
        Self {
            running: Some(running),
            channel,
            _data: data,
        }
    }

    pub fn running(&self) -> &RunningServer {
        self.running.as_ref().expect("the server is running")
    }

    pub fn calls(&self) -> CallServiceClient<Channel> {
        CallServiceClient::new(self.channel.clone())
    }

    pub fn chats(&self) -> ChatServiceClient<Channel> {
        ChatServiceClient::new(self.channel.clone())
    }

    pub fn sessions(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel.clone())
    }

    pub fn notifications(&self) -> NotificationServiceClient<Channel> {
        NotificationServiceClient::new(self.channel.clone())
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    /// A session token for a demo user, from `AuthService.Login`.
    pub async fn token(&self, username: &str) -> String {
        self.auth()
            .login(proto::LoginRequest {
                username: username.into(),
                password: PASSWORD.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .token
    }

    /// Stops the server gracefully (bounded).
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            tokio::time::timeout(Duration::from_secs(30), running.shutdown())
                .await
                .expect("the server stops within 30 s")
                .expect("the server stops cleanly");
        }
    }
}

/// `Basic` credentials of a demo user.
pub fn basic(username: &str) -> String {
    basic_with(username, PASSWORD)
}

pub fn basic_with(username: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// `message` with `authorization: <credentials>`.
pub fn authed<T>(credentials: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(credentials).expect("ASCII credentials"),
    );
    request
}

/// `message` as a demo user, with Basic credentials.
pub fn as_user<T>(username: &str, message: T) -> Request<T> {
    authed(&basic(username), message)
}

/// `message` as a demo user with an `idempotency-key`.
pub fn as_user_with_key<T>(username: &str, key: &str, message: T) -> Request<T> {
    let mut request = as_user(username, message);
    request.metadata_mut().insert(
        "idempotency-key",
        MetadataValue::try_from(key).expect("an ASCII key"),
    );
    request
}

/// The `google.rpc.ErrorInfo` reason and `gwsStatusCode` of a status, after checking its code.
pub fn expect_status(status: &Status, code: Code, reason: &str, gws_status: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "confer");
    assert_eq!(info.metadata["gwsStatusCode"], gws_status, "{status:?}");
}

/// The fields of the `google.rpc.BadRequest` detail.
pub fn bad_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The phone numbers of a call's other parties.
pub fn numbers(call: &proto::Call) -> Vec<String> {
    call.participants
        .iter()
        .map(|party| party.phone_number.clone())
        .collect()
}

/// The next item of a stream, bounded.
pub async fn next<S, T>(stream: &mut S) -> Option<Result<T, Status>>
where
    S: tokio_stream::Stream<Item = Result<T, Status>> + Unpin,
{
    use tokio_stream::StreamExt as _;
    tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("a notification within 20 s")
}
