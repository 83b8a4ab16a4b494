//! The gRPC API for microservice callers (package `confer.v1`): calls, chats and sessions with
//! their removals, a server-streaming `Subscribe` that delivers the caller's notifications from the
//! event log, login, the standard health service and server reflection (v1, and v1alpha for
//! older clients). How to call it: `docs/grpc.md`.
//!
//! The services are declared in `spec/services.proto`; `cargo xtask codegen` turns them into
//! [`services`] (tonic servers and clients) and [`FILE_DESCRIPTOR_SET`] (what reflection serves).
//! Their messages are the generated models ([`proto`]), so a `Call` here is the GWS `Call`.
//!
//! Every RPC authenticates (`authorization`: `Basic` or `Bearer`), honors its deadline, and runs
//! commands through the same engine, rules, views and error table as the REST dialects.

mod api;
mod calls;
mod chats;
pub mod error;
mod generated;
mod notifications;
pub mod render;
pub mod renewal;
pub mod request;
mod sessions;

use std::sync::Arc;

use anyhow::Context as _;
use confer_app::App;
pub use confer_model::proto;
use tokio::{net::TcpListener, sync::watch};
use tonic::{service::Routes, transport::server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

pub use crate::generated::{descriptor::FILE_DESCRIPTOR_SET, services};
use crate::{
    api::Api,
    render::Urls,
    services::{
        auth_service_server::{AuthService, AuthServiceServer},
        call_service_server::CallServiceServer,
        chat_service_server::ChatServiceServer,
        notification_service_server::NotificationServiceServer,
        session_service_server::SessionServiceServer,
    },
};

/// The `confer.v1` services, by their full names (what health reports on).
pub const SERVICE_NAMES: [&str; 5] = [
    services::auth_service_server::SERVICE_NAME,
    services::call_service_server::SERVICE_NAME,
    services::chat_service_server::SERVICE_NAME,
    services::session_service_server::SERVICE_NAME,
    services::notification_service_server::SERVICE_NAME,
];

/// The gRPC services of one server.
pub struct GrpcDialect {
    api: Arc<Api>,
    health: HealthReporter,
    routes: Routes,
    stop: watch::Sender<bool>,
}

impl GrpcDialect {
    /// Builds the services on `app` and reports them as serving.
    pub async fn start(app: Arc<App>) -> anyhow::Result<Self> {
        let (stop, stopping) = watch::channel(false);
        let api = Arc::new(Api {
            urls: Urls::new(app.public_url()),
            app,
            stopping,
        });
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in SERVICE_NAMES {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building server reflection v1 from the generated descriptor set")?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .context("building server reflection v1alpha from the generated descriptor set")?;
        // Every Confer request is small (ids, a chat message): tonic's default of 4 MiB would
        // have each call buffer megabytes before any limit looks at it.
        let max = api.app.config.connections.grpc_max_message_bytes;
        let routes = Routes::new(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(AuthServiceServer::from_arc(api.clone()).max_decoding_message_size(max))
            .add_service(CallServiceServer::from_arc(api.clone()).max_decoding_message_size(max))
            .add_service(ChatServiceServer::from_arc(api.clone()).max_decoding_message_size(max))
            .add_service(SessionServiceServer::from_arc(api.clone()).max_decoding_message_size(max))
            .add_service(
                NotificationServiceServer::from_arc(api.clone()).max_decoding_message_size(max),
            );
        Ok(Self {
            api,
            health,
            routes,
            stop,
        })
    }

    /// The connections of a gRPC listener, with the socket options the API needs: TCP_NODELAY,
    /// because a unary answer is a few small HTTP/2 frames, and with Nagle's algorithm on each
    /// waits for the client's delayed ACK (about 40 ms per call on Linux loopback).
    pub fn incoming(listener: TcpListener) -> TcpIncoming {
        TcpIncoming::from(listener).with_nodelay(Some(true))
    }

    /// Every gRPC service, ready to serve.
    pub fn routes(&self) -> Routes {
        self.routes.clone()
    }

    /// Reports every service as not serving and ends open `Subscribe` streams (with UNAVAILABLE:
    /// the caller reconnects elsewhere and resumes from its last seq), so that the server's
    /// graceful shutdown does not wait on them.
    pub async fn shutdown(&self) {
        for name in SERVICE_NAMES.into_iter().chain([""]) {
            self.health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        let _ = self.stop.send(true);
    }
}

#[tonic::async_trait]
impl AuthService for Api {
    async fn login(
        &self,
        request: tonic::Request<proto::LoginRequest>,
    ) -> Result<tonic::Response<proto::LoginResponse>, tonic::Status> {
        self.log_in(request).await
    }
}

impl std::fmt::Debug for GrpcDialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcDialect")
            .field("public_url", &self.api.urls.base())
            .finish_non_exhaustive()
    }
}
