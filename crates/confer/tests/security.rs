//! Attacks on a fresh `confer serve --demo`, each performed for real against the server and
//! refused or bounded by a defence, with what the user who was not attacking must still see.
//! docs/security.md lists every threat with its defence and the test here that proves it.

mod gws_support;
// clippy's zombie_processes does not see that `ConferProcess` waits for its child in `Drop`.
#[allow(clippy::zombie_processes)]
mod support;

#[path = "security/cometd.rs"]
mod cometd;
#[path = "security/connections.rs"]
mod connections;
#[path = "security/limits.rs"]
mod limits;
#[path = "security/revocation.rs"]
mod revocation;
#[path = "security/signin.rs"]
mod signin;
#[path = "security/telemetry.rs"]
mod telemetry;
#[path = "security/tenancy.rs"]
mod tenancy;

/// A gRPC channel to `addr`.
async fn grpc_channel(addr: std::net::SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .connect_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .expect("a gRPC connection")
}
