//! gRPC removal throughput: the real `confer.v1` services on a loopback listener, driven by the
//! generated tonic client.
//!
//! ```text
//! cargo run --release -p confer-grpc --example removal_load -- [CALLS] [CONCURRENCY] [bearer|basic]
//! ```
//!
//! The server is what `confer serve` runs for gRPC (the application on the embedded SQLite store
//! in a scratch directory, `GrpcDialect`, tonic), on 127.0.0.1 with an ephemeral port. CALLS voice
//! calls of three parties are created over gRPC (`CreateCall`, timed separately), then each gets one
//! `RemoveCallParticipant`, from CONCURRENCY tasks sharing one HTTP/2 connection, each call a full
//! round trip: authenticate (a `Login` bearer token, which reloads the user on every call, or Basic
//! credentials, which the server caches after the first argon2 check) → engine (load, decide, durable commit) → render the
//! caller's `Call` → answer. Bounded in count; nothing leaves the machine.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use confer_app::{
    App,
    config::ServeArgs,
    users::{self, NewUser, UserRole},
};
use confer_grpc::{
    GrpcDialect, proto,
    services::{auth_service_client::AuthServiceClient, call_service_client::CallServiceClient},
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};
use tonic::{
    Request,
    metadata::MetadataValue,
    transport::{Channel, Server},
};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn authed<T>(token: &MetadataValue<tonic::metadata::Ascii>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", token.clone());
    request
}

/// Runs `count` requests made by `make`, at most `concurrency` at a time; returns the wall time
/// and each request's latency, sorted.
async fn run<F, Fut>(count: usize, concurrency: usize, make: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    for i in 0..count {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore stays open");
        let request = make(i);
        tasks.spawn(async move {
            let at = Instant::now();
            let result = request.await;
            drop(permit);
            result.map(|()| at.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(count);
    while let Some(result) = tasks.join_next().await {
        latencies.push(
            result
                .expect("a request task")
                .expect("the request succeeds"),
        );
    }
    let wall = started.elapsed();
    latencies.sort();
    (wall, latencies)
}

fn report(what: &str, concurrency: usize, wall: Duration, latencies: &[Duration]) {
    println!(
        "| {what} | {concurrency} | {} | {:.0} | {:.2} | {:.2} |",
        latencies.len(),
        latencies.len() as f64 / wall.as_secs_f64(),
        percentile(latencies, 50.0).as_secs_f64() * 1e3,
        percentile(latencies, 99.0).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let calls: usize = args.next().map_or(Ok(5000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let scheme = args.next().unwrap_or_else(|| "bearer".to_owned());

    let data = tempfile::tempdir()?;
    let config = ServeArgs {
        data_dir: Some(data.path().to_path_buf()),
        ..ServeArgs::default()
    }
    .resolve()?;
    let app = App::open(config).await?;
    users::add(
        app.store.as_ref(),
        NewUser {
            username: "load-owner".into(),
            role: UserRole::Agent,
            phone_number: Some("20000".into()),
            user_id: None,
            email: None,
            accounts: Vec::new(),
            device_id: None,
            password: "load".into(),
        },
    )
    .await?;
    let grpc = GrpcDialect::start(app.clone()).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let routes = grpc.routes();
    let server = tokio::spawn(
        Server::builder()
            .add_routes(routes)
            .serve_with_incoming(GrpcDialect::incoming(listener)),
    );

    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let login = AuthServiceClient::new(channel.clone())
        .login(proto::LoginRequest {
            username: "load-owner".into(),
            password: "load".into(),
        })
        .await?
        .into_inner();
    let token: MetadataValue<_> = match scheme.as_str() {
        "bearer" => format!("Bearer {}", login.token).parse()?,
        "basic" => {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode("load-owner:load");
            format!("Basic {encoded}").parse()?
        }
        other => anyhow::bail!("the auth scheme is bearer or basic, not {other}"),
    };
    let client = CallServiceClient::new(channel);

    println!(
        "{calls} calls, concurrency {concurrency}, gRPC on {addr} (SQLite in a scratch dir)\n"
    );
    println!("| RPC | concurrency | requests | requests/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    let (wall, latencies) = run(calls, concurrency, |i| {
        let mut client = client.clone();
        let request = authed(
            &token,
            proto::CreateCallRequest {
                call_id: format!("load-call-{i:08}"),
                dnis: "20001".into(),
                other_parties: vec![
                    proto::NewCallParty {
                        phone_number: "20001".into(),
                        user_id: None,
                    },
                    proto::NewCallParty {
                        phone_number: "20002".into(),
                        user_id: None,
                    },
                ],
                ..Default::default()
            },
        );
        async move { client.create_call(request).await.map(|_| ()) }
    })
    .await;
    report("CreateCall", concurrency, wall, &latencies);
    for run_concurrency in [1, concurrency] {
        // Each pass removes a different party, so every request is a real removal.
        let party = if run_concurrency == 1 {
            "20001"
        } else {
            "20002"
        };
        let count = if run_concurrency == 1 {
            calls.min(1000)
        } else {
            calls
        };
        let (wall, latencies) = run(count, run_concurrency, |i| {
            let mut client = client.clone();
            let request = authed(
                &token,
                proto::RemoveCallParticipantRequest {
                    call_id: format!("load-call-{i:08}"),
                    participant: party.into(),
                },
            );
            async move { client.remove_call_participant(request).await.map(|_| ()) }
        })
        .await;
        report("RemoveCallParticipant", run_concurrency, wall, &latencies);
    }
    grpc.shutdown().await;
    server.abort();
    Ok(())
}
