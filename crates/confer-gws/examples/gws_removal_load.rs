//! GWS removal load: REST removal throughput and CometD delivery latency, on loopback.
//!
//! ```text
//! cargo run --release -p confer-gws --example gws_removal_load -- [CALLS] [CONCURRENCY]
//! ```
//!
//! A server (the GWS dialect on the embedded SQLite store, CSRF on) is started in this process
//! on 127.0.0.1, with CONCURRENCY agents, each owning CALLS / CONCURRENCY preloaded calls of
//! three parties (not timed). Each agent logs in (Basic, then the session cookie and CSRF
//! token, as a GWS client does) and holds a long-polling CometD session (ack extension)
//! subscribed to `/v2/me/calls`. Then:
//!
//! 1. **throughput**: the agents remove one party from each of their calls over REST, all at
//!    once (`POST /api/v2/me/calls/{id}` `RemoveParticipantFromConference`): requests/s and
//!    p50/p99 of the request latency;
//! 2. **delivery latency**: for each removal, the time from its `{"statusCode":0}` reply to the
//!    owner's CometD session receiving the `ParticipantsUpdated` notification for that call,
//!    p50/p99, under that load, and again with one agent removing one call at a time (the
//!    latency of an idle server).
//!
//! Bounded: at most CALLS removals per phase, and the program stops waiting for notifications
//! after 60 s. Nothing leaves the machine.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use confer_app::{
    App,
    config::ServeArgs,
    users::{self, NewUser, UserRole},
};
use confer_core::{
    Actor, Command, ConferenceId,
    command::{NewCall, NewParty},
    conference::voice::{CallState, CallType},
    user_data::UserData,
};
use confer_gws::GwsDialect;
use serde_json::{Value, json};

const PASSWORD: &str = "load-password";
const NOTIFICATION_WAIT: Duration = Duration::from_secs(60);

type Receipts = Arc<Mutex<HashMap<String, Instant>>>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn call_id(agent: usize, i: usize) -> String {
    format!("LOAD{agent:02}C{i:07}")
}

/// A logged-in agent: HTTP client, session cookie, CSRF token.
struct Agent {
    http: reqwest::Client,
    cookie: String,
    csrf: String,
}

async fn login(base: &str, username: &str) -> anyhow::Result<Agent> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()?;
    let reply = http
        .get(format!("{base}/api/v2/me"))
        .basic_auth(username, Some(PASSWORD))
        .send()
        .await?;
    anyhow::ensure!(
        reply.status().is_success(),
        "login of {username}: {}",
        reply.status()
    );
    let cookie = reply
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|c| c.starts_with("JSESSIONID=")))
        .ok_or_else(|| anyhow::anyhow!("no session cookie"))?
        .to_owned();
    let csrf = reply
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok(Agent { http, cookie, csrf })
}

/// A long-polling CometD session (ack extension) that records when each call's notification
/// arrives, until `stop`.
async fn subscribe(
    base: String,
    username: String,
    receipts: Receipts,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = format!("{base}/api/v2/notifications");
    let post = |messages: Value| {
        http.post(&url)
            .basic_auth(&username, Some(PASSWORD))
            .json(&messages)
            .send()
    };
    let reply: Value = post(json!([{
        "channel": "/meta/handshake", "version": "1.0",
        "supportedConnectionTypes": ["long-polling"], "ext": {"ack": true}
    }]))
    .await?
    .json()
    .await?;
    let client_id = reply[0]["clientId"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("handshake refused: {reply}"))?
        .to_owned();
    let reply: Value = post(json!([{
        "channel": "/meta/subscribe", "clientId": client_id, "subscription": "/v2/me/calls"
    }]))
    .await?
    .json()
    .await?;
    anyhow::ensure!(reply[0]["successful"] == true, "subscribe refused: {reply}");
    // The first connect is answered at once.
    let _: Value = post(json!([{
        "channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"
    }]))
    .await?
    .json()
    .await?;
    Ok(tokio::spawn(async move {
        let mut ack: Option<u64> = None;
        loop {
            let mut connect = json!({
                "channel": "/meta/connect", "clientId": client_id,
                "connectionType": "long-polling", "advice": {"timeout": 5000}
            });
            if let Some(ack) = ack {
                connect["ext"] = json!({ "ack": ack });
            }
            let reply = match http.post(&url).json(&json!([connect])).send().await {
                Ok(response) => response.json::<Value>().await,
                Err(error) => {
                    eprintln!("{username}: connect failed: {error}");
                    return;
                }
            };
            let Ok(Value::Array(messages)) = reply else {
                return;
            };
            let now = Instant::now();
            for message in messages {
                if message["channel"] == "/meta/connect" {
                    if let Some(batch) = message["ext"]["ack"].as_u64() {
                        ack = Some(batch);
                    }
                    continue;
                }
                if message["data"]["notificationType"] == "ParticipantsUpdated"
                    && let Some(id) = message["data"]["call"]["id"].as_str()
                {
                    receipts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(id.to_owned())
                        .or_insert(now);
                }
            }
        }
    }))
}

/// Removes one party from each of `calls`, one at a time; `(call, reply time, latency)` each.
async fn remove_all(
    base: String,
    agent: Agent,
    calls: Vec<String>,
) -> anyhow::Result<Vec<(String, Instant, Duration)>> {
    let mut out = Vec::with_capacity(calls.len());
    for id in calls {
        let started = Instant::now();
        let response = agent
            .http
            .post(format!("{base}/api/v2/me/calls/{id}"))
            .header("Cookie", &agent.cookie)
            .header("X-CSRF-TOKEN", &agent.csrf)
            .body(r#"{"operationName":"RemoveParticipantFromConference","participant":"20001"}"#)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        let replied = Instant::now();
        anyhow::ensure!(
            status.is_success() && body == json!({"statusCode": 0}),
            "removal from {id}: {status} {body}"
        );
        out.push((id, replied, replied - started));
    }
    Ok(out)
}

struct Phase {
    removals: usize,
    elapsed: Duration,
    request: Vec<Duration>,
    delivery: Vec<Duration>,
    early: usize,
    missing: usize,
}

async fn run_phase(
    base: &str,
    agents: Vec<(Agent, Vec<String>)>,
    receipts: &Receipts,
) -> anyhow::Result<Phase> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (agent, calls) in agents {
        tasks.push(tokio::spawn(remove_all(base.to_owned(), agent, calls)));
    }
    let mut done = Vec::new();
    for task in tasks {
        done.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let deadline = Instant::now() + NOTIFICATION_WAIT;
    loop {
        let got = {
            let receipts = receipts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            done.iter()
                .filter(|(id, _, _)| receipts.contains_key(id))
                .count()
        };
        if got == done.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let receipts = receipts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut request: Vec<Duration> = done.iter().map(|(_, _, latency)| *latency).collect();
    let mut delivery = Vec::new();
    let (mut early, mut missing) = (0, 0);
    for (id, replied, _) in &done {
        match receipts.get(id) {
            // The notification may beat the reply: both leave right after the commit.
            Some(received) if received < replied => {
                early += 1;
                delivery.push(Duration::ZERO);
            }
            Some(received) => delivery.push(*received - *replied),
            None => missing += 1,
        }
    }
    request.sort();
    delivery.sort();
    Ok(Phase {
        removals: done.len(),
        elapsed,
        request,
        delivery,
        early,
        missing,
    })
}

fn report(name: &str, concurrency: usize, phase: &Phase) {
    println!(
        "{name}: concurrency {concurrency}, {} removals in {:.2} s = {:.0} removals/s; request p50 {:.2} ms p99 {:.2} ms; \
         delivery (reply -> CometD receipt) p50 {:.2} ms p99 {:.2} ms ({} arrived before the reply, {} missing)",
        phase.removals,
        phase.elapsed.as_secs_f64(),
        phase.removals as f64 / phase.elapsed.as_secs_f64(),
        ms(percentile(&phase.request, 50.0)),
        ms(percentile(&phase.request, 99.0)),
        ms(percentile(&phase.delivery, 50.0)),
        ms(percentile(&phase.delivery, 99.0)),
        phase.early,
        phase.missing,
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let calls: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let concurrency: usize = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(8)
        .clamp(1, 64);
    let per_agent = calls.div_ceil(concurrency).max(1);
    let idle_calls = per_agent.min(200);

    let data = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let listen = listener.local_addr()?;
    let config = ServeArgs {
        listen: Some(listen),
        grpc_listen: Some("127.0.0.1:0".parse()?),
        data_dir: Some(data.path().to_path_buf()),
        ..ServeArgs::default()
    }
    .resolve()?;
    let app = App::open(config).await?;
    let base = format!("http://{listen}");

    // Preload (not timed): the agents and their calls of three parties.
    let preload = Instant::now();
    let mut owners = Vec::new();
    for agent in 0..concurrency {
        let username = format!("load-agent-{agent:02}");
        let record = users::add(
            app.store.as_ref(),
            NewUser {
                username: username.clone(),
                role: UserRole::Agent,
                phone_number: Some(format!("3{agent:04}")),
                user_id: None,
                email: None,
                accounts: Vec::new(),
                device_id: None,
                password: PASSWORD.into(),
            },
        )
        .await?;
        let actor: Actor = users::actor_of(&record)?;
        // Agent 0 also owns the calls of the idle phase.
        let owned = if agent == 0 {
            per_agent + idle_calls
        } else {
            per_agent
        };
        for i in 0..owned {
            let id = call_id(agent, i);
            let command = Command::CreateCall(NewCall {
                id: ConferenceId::new(id.clone()),
                conn_id: format!("{agent:02}{i:014}"),
                call_uuid: id,
                dnis: "20001".into(),
                call_type: CallType::Internal,
                state: CallState::Established,
                other_parties: ["20001", "20002"]
                    .into_iter()
                    .map(|number| NewParty {
                        phone_number: number.into(),
                        user_id: None,
                    })
                    .collect(),
                user_data: UserData::new(),
            });
            app.engine.execute(&actor, command, None).await?;
        }
        owners.push(username);
    }
    println!(
        "preloaded {} calls for {concurrency} agents in {:.1} s",
        concurrency * per_agent + idle_calls,
        preload.elapsed().as_secs_f64()
    );

    // The server starts after the preload, as a restarted server would: the feed follows the
    // log from its head.
    let gws = GwsDialect::start(app.clone()).await?;
    let router = gws.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let receipts: Receipts = Arc::new(Mutex::new(HashMap::new()));
    let mut subscribers = Vec::new();
    let mut agents = Vec::new();
    for (agent, username) in owners.iter().enumerate() {
        subscribers.push(subscribe(base.clone(), username.clone(), receipts.clone()).await?);
        let calls: Vec<String> = (0..per_agent).map(|i| call_id(agent, i)).collect();
        agents.push((login(&base, username).await?, calls));
    }

    let loaded = run_phase(&base, agents, &receipts).await?;
    report("load", concurrency, &loaded);

    // For comparison: an authenticated GET that changes nothing (HTTP + session check).
    let probe = login(&base, &owners[0]).await?;
    let mut gets = Vec::with_capacity(500);
    for _ in 0..500 {
        let started = Instant::now();
        let response = probe
            .http
            .get(format!("{base}/api/v2/me"))
            .header("Cookie", &probe.cookie)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET /api/v2/me: {}",
            response.status()
        );
        let _ = response.bytes().await?;
        gets.push(started.elapsed());
    }
    gets.sort();
    println!(
        "baseline: GET /api/v2/me with the session cookie, 500 sequential: p50 {:.2} ms p99 {:.2} ms",
        ms(percentile(&gets, 50.0)),
        ms(percentile(&gets, 99.0)),
    );

    let idle_agent = login(&base, &owners[0]).await?;
    let idle_calls: Vec<String> = (per_agent..per_agent + idle_calls)
        .map(|i| call_id(0, i))
        .collect();
    let idle = run_phase(&base, vec![(idle_agent, idle_calls)], &receipts).await?;
    report("idle", 1, &idle);

    for subscriber in subscribers {
        subscriber.abort();
    }
    gws.shutdown().await;
    server.abort();
    Ok(())
}
