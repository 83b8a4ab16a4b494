//! The requests of a removal benchmark: GWS logins and `RemoveParticipantFromConference`
//! requests over REST, `confer.v1.CallService/RemoveCallParticipant` over gRPC, built from what
//! [`crate::preload`] loaded.

use std::net::SocketAddr;

use anyhow::Context as _;
use base64::Engine as _;
use bytes::{BufMut as _, Bytes, BytesMut};
use http::Method;

use crate::{
    load::{PlannedRequest, Protocol, headers, request_once},
    preload::{PreloadedAgent, PreloadedCall},
};

/// What Confer answers a successful GWS removal (seed 000).
pub const REST_SUCCESS_BODY: &[u8] = br#"{"statusCode":0}"#;
/// The gRPC method of a call removal.
pub const GRPC_REMOVE_PATH: &str = "/confer.v1.CallService/RemoveCallParticipant";

/// A logged-in GWS client: the session cookie and its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GwsSession {
    pub username: String,
    /// `JSESSIONID=...`.
    pub cookie: String,
    pub csrf: String,
}

/// `Authorization: Basic ...` for an agent.
pub fn basic_auth(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// How often a login answered 503 or 429 is tried again.
const LOGIN_ATTEMPTS: usize = 30;

/// A cheap random byte (the low bits of the clock), for retry jitter.
fn jitter_byte() -> u8 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.subsec_nanos() >> 8) as u8)
}

/// Logs in as a GWS client does: `GET /api/v2/me` with Basic credentials, keeping the
/// `JSESSIONID` cookie and the `X-CSRF-TOKEN` header of the reply.
pub async fn login(addr: SocketAddr, agent: &PreloadedAgent) -> anyhow::Result<GwsSession> {
    let auth = basic_auth(&agent.username, &agent.password);
    let request = PlannedRequest {
        path: "/api/v2/me".to_owned(),
        headers: headers([("authorization", auth.as_str())])?,
        body: Bytes::new(),
    };
    // Logging a fleet in at once fills the password verifiers: the server answers 503 (or 429)
    // with Retry-After, and a client waits and tries again, as this one does.
    let mut reply = request_once(Protocol::Http1, addr, Method::GET, &request).await?;
    for _ in 0..LOGIN_ATTEMPTS {
        if reply.status != 503 && reply.status != 429 {
            break;
        }
        let wait = reply
            .headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        pause_before_retry(wait).await;
        reply = request_once(Protocol::Http1, addr, Method::GET, &request).await?;
    }
    anyhow::ensure!(
        reply.status == 200,
        "login of {} on {addr}: HTTP {} {}",
        agent.username,
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    let cookie = reply
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|c| c.starts_with("JSESSIONID=")))
        .with_context(|| format!("login of {}: no JSESSIONID cookie", agent.username))?
        .to_owned();
    // Without CSRF protection (`--csrf false`) there is no token, and none is needed.
    let csrf = reply
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok(GwsSession {
        username: agent.username.clone(),
        cookie,
        csrf,
    })
}

/// Waits `seconds` (what the server asked for), plus up to a second of jitter, so that a fleet
/// told to come back does not come back all at once.
async fn pause_before_retry(seconds: u64) {
    let jitter = u64::from(jitter_byte()) * 4;
    tokio::time::sleep(std::time::Duration::from_millis(seconds * 1000 + jitter)).await;
}

/// Signs an agent in over gRPC before its removals are measured, as a client's first call
/// does: `GetCall` with its Basic credentials, which the server verifies (argon2) once and then
/// caches. A fleet doing this at once fills the password verifiers, and the server answers
/// UNAVAILABLE ("try again in 1 s"): this client waits and tries again, as a client should,
/// instead of counting its first removals as failures.
pub async fn grpc_sign_in(addr: SocketAddr, agent: &PreloadedAgent) -> anyhow::Result<()> {
    let call = agent
        .calls
        .first()
        .with_context(|| format!("{} has no call to read", agent.username))?;
    let message = confer_model::proto::GetCallRequest {
        call_id: call.call_id.clone(),
    };
    let request = grpc_request(agent, "/confer.v1.CallService/GetCall", &message)?;
    let status = |reply: &crate::load::Reply| {
        reply
            .trailers
            .get("grpc-status")
            .or_else(|| reply.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut reply = request_once(Protocol::Grpc, addr, Method::POST, &request).await?;
    for _ in 0..LOGIN_ATTEMPTS {
        if status(&reply).as_deref() != Some("14") {
            break;
        }
        pause_before_retry(1).await;
        reply = request_once(Protocol::Grpc, addr, Method::POST, &request).await?;
    }
    anyhow::ensure!(
        status(&reply).as_deref() == Some("0"),
        "gRPC sign-in of {} on {addr}: HTTP {}, grpc-status {:?}",
        agent.username,
        reply.status,
        status(&reply)
    );
    Ok(())
}

/// Runs `each` for every agent, at most 8 at a time; the results in the agents' order.
async fn for_every_agent<T, F, Fut>(agents: &[&PreloadedAgent], each: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(PreloadedAgent) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let mut results = Vec::with_capacity(agents.len());
    for chunk in agents.chunks(8) {
        let running: Vec<_> = chunk
            .iter()
            .map(|agent| tokio::spawn(each((*agent).clone())))
            .collect();
        for task in running {
            results.push(task.await??);
        }
    }
    Ok(results)
}

/// Signs every agent in over gRPC ([`grpc_sign_in`]).
pub async fn grpc_sign_in_all(addr: SocketAddr, agents: &[&PreloadedAgent]) -> anyhow::Result<()> {
    for_every_agent(agents, move |agent| async move {
        grpc_sign_in(addr, &agent).await
    })
    .await
    .map(drop)
}

/// Logs in every agent ([`login`]).
pub async fn login_all(
    addr: SocketAddr,
    agents: &[&PreloadedAgent],
) -> anyhow::Result<Vec<GwsSession>> {
    for_every_agent(
        agents,
        move |agent| async move { login(addr, &agent).await },
    )
    .await
}

/// `POST /api/v2/me/calls/{id}` `RemoveParticipantFromConference`, with the session cookie and
/// CSRF token, as a GWS client sends it.
pub fn rest_removal(session: &GwsSession, call: &PreloadedCall) -> anyhow::Result<PlannedRequest> {
    let body = serde_json::json!({
        "operationName": "RemoveParticipantFromConference",
        "participant": call.participant,
    });
    let mut pairs = vec![
        ("content-type", "application/json"),
        ("cookie", session.cookie.as_str()),
    ];
    if !session.csrf.is_empty() {
        pairs.push(("x-csrf-token", session.csrf.as_str()));
    }
    Ok(PlannedRequest {
        path: format!("/api/v2/me/calls/{}", call.call_id),
        headers: headers(pairs)?,
        body: Bytes::from(serde_json::to_vec(&body)?),
    })
}

/// A gRPC message frame: uncompressed flag, big-endian length, the message.
pub fn grpc_frame(message: &[u8]) -> anyhow::Result<Bytes> {
    let len = u32::try_from(message.len()).context("a gRPC message over 4 GiB")?;
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(len);
    frame.put_slice(message);
    Ok(frame.freeze())
}

/// `confer.v1.CallService/RemoveCallParticipant` with the owner's Basic credentials (which the
/// server verifies once and then caches, as for any client).
pub fn grpc_removal(
    agent: &PreloadedAgent,
    call: &PreloadedCall,
) -> anyhow::Result<PlannedRequest> {
    let message = confer_model::proto::RemoveCallParticipantRequest {
        call_id: call.call_id.clone(),
        participant: call.participant.clone(),
    };
    grpc_request(agent, GRPC_REMOVE_PATH, &message)
}

/// A unary gRPC call to `path` carrying `message`, with the agent's Basic credentials.
fn grpc_request(
    agent: &PreloadedAgent,
    path: &str,
    message: &impl prost::Message,
) -> anyhow::Result<PlannedRequest> {
    let auth = basic_auth(&agent.username, &agent.password);
    Ok(PlannedRequest {
        path: path.to_owned(),
        headers: headers([
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("authorization", auth.as_str()),
        ])?,
        body: grpc_frame(&message.encode_to_vec())?,
    })
}
