//! Connections that cost the server without ever finishing a request: half-sent request heads,
//! idle kept-alive connections, a stalled HTTP/2 preface, more connections than the server
//! should hold, and clients that keep a request open while the server is asked to stop.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    gws_support::basic,
    support::{ConferProcess, http},
};

/// Reads until the server closes the connection; whether it did within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

async fn connect_and_send(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("a connection");
    stream.write_all(bytes).await.expect("bytes sent");
    stream
}

/// A whole request.
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: confer\r\n\r\n";

/// A connection that sent a whole request and was answered: accepted, and kept alive.
async fn answered_and_kept_alive(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = connect_and_send(addr, HEALTHZ).await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("answered in time")
        .expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    stream
}

async fn healthz(server: &ConferProcess) -> reqwest::StatusCode {
    http()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("GET /healthz answered")
        .status()
}

/// The attack (slowloris): 200 connections that send half a request head, an idle kept-alive
/// connection, and connections to the gRPC port that stop inside the HTTP/2 preface or send
/// nothing. Meanwhile other clients are served at once, and with `--header-read-timeout-secs 1`
/// every one of those connections is closed by the server (before, they stayed open for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_and_idle_connections_are_closed_and_delay_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--header-read-timeout-secs", "1"]);
    let mut half_sent = Vec::new();
    for _ in 0..200 {
        half_sent.push(
            connect_and_send(server.rest, b"GET /healthz HTTP/1.1\r\nHost: confer\r\n").await,
        );
    }
    let mut idle = connect_and_send(server.rest, HEALTHZ).await;
    let mut stalled_preface = connect_and_send(server.grpc, b"PRI * HTTP/2.0\r\n").await;
    let mut silent = connect_and_send(server.grpc, b"").await;

    for _ in 0..20 {
        assert_eq!(healthz(&server).await, 200);
    }

    let within = Duration::from_secs(15);
    for (i, stream) in half_sent.iter_mut().enumerate() {
        assert!(
            closed_within(stream, within).await,
            "half-sent connection {i} still open"
        );
    }
    assert!(
        closed_within(&mut idle, within).await,
        "the idle kept-alive connection still open"
    );
    assert!(
        closed_within(&mut stalled_preface, within).await,
        "the stalled HTTP/2 preface still open"
    );
    assert!(
        closed_within(&mut silent, within).await,
        "the silent gRPC connection still open"
    );
    assert_eq!(healthz(&server).await, 200);
}

/// The attack: more connections than the server should hold. With `--max-connections 10`, ten
/// open connections make the next client wait, not the server allocate; when one closes, the
/// waiting client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(
        dir.path(),
        &[
            "--max-connections",
            "10",
            "--header-read-timeout-secs",
            "120",
        ],
    );
    let mut open = Vec::new();
    for _ in 0..10 {
        open.push(answered_and_kept_alive(server.rest).await);
    }
    let waiting = tokio::spawn({
        let url = server.url("/healthz");
        async move { http().get(url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !waiting.is_finished(),
        "the 11th connection was served at once"
    );
    drop(open.pop());
    let status = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("served once a connection closed")
        .expect("the task")
        .expect("a reply");
    assert_eq!(status, 200);
}

/// The attack: a client keeps a request open (a body sent one byte at a time) while the server
/// is asked to stop; a graceful stop waited for it for ever. With `--shutdown-grace-secs 2`,
/// SIGTERM ends the process, cleanly, soon after the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_within_its_grace_period_whatever_clients_do() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(
        dir.path(),
        &[
            "--demo",
            "--shutdown-grace-secs",
            "2",
            "--header-read-timeout-secs",
            "120",
        ],
    );
    let head = format!(
        "POST /api/v2/me/calls/{} HTTP/1.1\r\nHost: confer\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
        crate::gws_support::VOICE_CALL_ID,
        basic("agent15000"),
    );
    let mut slow = connect_and_send(server.rest, head.as_bytes()).await;
    let _half_sent = connect_and_send(server.rest, b"GET /healthz HTTP/1.1\r\n").await;
    // Keep the upload going, one byte a second, for longer than the test waits.
    let uploader = tokio::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if slow.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(stopped, "the server exited cleanly within 20 s of SIGTERM");
    uploader.abort();
}

/// The attack: one HTTP/2 connection opens stream after stream (held `Subscribe` streams cost
/// the server for as long as they are open). With `--http2-max-concurrent-streams 2`, two open
/// streams make a third call on the same connection wait for one to end, instead of the server
/// taking it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_http2_connection_holds_at_most_so_many_streams() {
    use confer_grpc::{proto, services::notification_service_client::NotificationServiceClient};
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(
        dir.path(),
        &["--demo", "--http2-max-concurrent-streams", "2"],
    );
    let channel = crate::grpc_channel(server.grpc).await;
    let subscribe = async || {
        let mut request = tonic::Request::new(proto::SubscribeRequest { after_seq: None });
        request.metadata_mut().insert(
            "authorization",
            tonic::metadata::MetadataValue::try_from(basic("agent15000")).unwrap(),
        );
        NotificationServiceClient::new(channel.clone())
            .subscribe(request)
            .await
            .expect("a stream")
            .into_inner()
    };
    let first = subscribe().await;
    let _second = subscribe().await;
    let check = tokio::spawn({
        let channel = channel.clone();
        async move {
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| r.into_inner().status)
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !check.is_finished(),
        "a third stream was served while two were open"
    );
    drop(first);
    let status = tokio::time::timeout(Duration::from_secs(15), check)
        .await
        .expect("served once a stream ended")
        .expect("the task")
        .expect("a health answer");
    assert_eq!(status, 1, "SERVING");
}

/// The attack: one client address opens connection after connection until the listener's
/// limit is reached and no one else gets in. With `--max-connections-per-address 5`, the sixth
/// connection from the same address is closed at once, while the listener still has room;
/// when one of the five closes, the address is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_so_many_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(
        dir.path(),
        &[
            "--max-connections-per-address",
            "5",
            "--header-read-timeout-secs",
            "120",
        ],
    );
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(answered_and_kept_alive(server.rest).await);
    }
    let mut sixth = connect_and_send(server.rest, HEALTHZ).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), sixth.read_to_end(&mut answer))
        .await
        .expect("the sixth connection closed at once");
    assert!(
        answer.is_empty(),
        "the sixth connection was served: {:?}",
        String::from_utf8_lossy(&answer)
    );
    drop(open.pop());
    crate::gws_support::eventually(
        "the address served again",
        Duration::from_secs(10),
        || async {
            http()
                .get(server.url("/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
}
