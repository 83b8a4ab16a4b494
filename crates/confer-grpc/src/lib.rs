//! The gRPC API for microservice callers (package `confer.v1`). (Being built: see issue 6; today
//! it serves the standard health service.)

use std::sync::Arc;

use confer_app::App;
use tonic::service::Routes;

/// The gRPC services of one server.
pub struct GrpcDialect {
    app: Arc<App>,
}

impl GrpcDialect {
    pub async fn start(app: Arc<App>) -> anyhow::Result<Self> {
        Ok(Self { app })
    }

    /// Every gRPC service, ready to serve.
    pub fn routes(&self) -> Routes {
        let _ = &self.app;
        let (_reporter, health) = tonic_health::server::health_reporter();
        Routes::new(health)
    }

    /// Ends open streams; called when the server stops.
    pub async fn shutdown(&self) {}
}
