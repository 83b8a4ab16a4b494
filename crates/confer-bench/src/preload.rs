//! Filling a store before a server starts on it: agents (GWS users) each owning GWS voice calls
//! of three or more parties, from which the agent may remove a party
//! (`RemoveParticipantFromConference`).
//!
//! The conferences are built by confer-core's own commands (`CreateCall` through
//! `confer_core::execute`, as `confer_core::demo` builds the seeds' world), and stored as the
//! engine stores them (the snapshot, its listing keys, its `ConferenceCreated` event), but
//! through the store's bulk loader ([`confer_store::bulk`]): big transactions instead of one
//! durable commit per conference, so a million conferences load in about a minute instead of
//! many minutes of fsyncs.
//!
//! **Passwords:** every agent gets the same password, hashed once with deliberately cheap
//! argon2id parameters (8 KiB, 1 pass) and reused for all of them: a login then costs
//! microseconds instead of the production hash's tens of milliseconds, so a load client can log
//! in thousands of agents quickly. The server verifies with the parameters stored in the hash,
//! exactly as for any user; only the cost differs.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use confer_app::{
    engine::now,
    users::{UserProfile, actor_of},
};
use confer_core::{
    Command, ConferenceId, Role, Timestamp,
    command::{NewCall, NewParty},
    conference::voice::{CallState, CallType},
    user_data::UserData,
    view::{is_live, listing_keys},
};
use confer_store::{
    BulkConference, BulkLoad, ConferenceRecord, NewEvent, PgStore, PgStoreOptions, SqliteStore,
    UserRecord,
};
use serde::{Deserialize, Serialize};

/// Conferences per bulk transaction: large enough that commits are rare, small enough that one
/// batch's JSON stays a few tens of MB.
const BATCH: usize = 20_000;

/// Where to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// The embedded store in this data directory (what `confer serve --data-dir` opens).
    Sqlite { data_dir: PathBuf },
    /// A PostgreSQL schema (created if missing) on this URL.
    Postgres { url: String, schema: String },
}

/// What to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadSpec {
    pub target: StoreTarget,
    /// Number of agents (users with role agent and their own line).
    pub agents: usize,
    /// Calls each agent owns.
    pub calls_per_agent: usize,
    /// Parties of each call, the agent's own line included; at least 3.
    pub parties: usize,
    /// Every agent's password.
    pub password: String,
    /// Index of the first agent: several preloads into one store use disjoint ranges (agent
    /// usernames, lines and call ids are derived from it).
    pub first_agent: usize,
}

impl PreloadSpec {
    /// `agents` agents with `calls_per_agent` calls of 3 parties, password `bench`.
    pub fn new(target: StoreTarget, agents: usize, calls_per_agent: usize) -> PreloadSpec {
        PreloadSpec {
            target,
            agents,
            calls_per_agent,
            parties: 3,
            password: "bench".to_owned(),
            first_agent: 0,
        }
    }

    pub fn conferences(&self) -> usize {
        self.agents * self.calls_per_agent
    }
}

/// What was loaded: enough for a load client to build valid requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preloaded {
    pub agents: Vec<PreloadedAgent>,
    pub conferences: u64,
    pub events: u64,
    /// Wall time of the load.
    pub elapsed: Duration,
}

/// One agent and its calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreloadedAgent {
    pub username: String,
    pub password: String,
    pub user_id: String,
    /// The agent's own line (a party of each of its calls).
    pub phone_number: String,
    pub calls: Vec<PreloadedCall>,
}

/// One call and a party the owner may remove from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreloadedCall {
    pub call_id: String,
    /// The phone number to send as `participant` (GWS) / `participant` (gRPC).
    pub participant: String,
}

impl Preloaded {
    /// Every call with its owner, agent by agent.
    pub fn calls(&self) -> impl Iterator<Item = (&PreloadedAgent, &PreloadedCall)> {
        self.agents
            .iter()
            .flat_map(|agent| agent.calls.iter().map(move |call| (agent, call)))
    }
}

/// The username of agent `index`.
pub fn agent_username(index: usize) -> String {
    format!("bench-agent-{index:07}")
}

/// The line of agent `index`: `1` and 8 digits, never one of the other parties' numbers.
pub fn agent_line(index: usize) -> String {
    format!("1{index:08}")
}

/// The numbers of a call's other parties (the first is the one a load client removes).
pub fn other_party(k: usize) -> String {
    format!("2{k:08}")
}

/// A bijection on u64 (splitmix64's finalizer): distinct inputs give distinct outputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const BASE32HEX: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";

/// The id of call `i` of agent `agent`, shaped like a GWS call id (32 characters of base32hex)
/// and spread over the whole key space, so the removals of a run touch the store's B-trees at
/// random places as real traffic does, not one hot corner. Distinct for distinct `(agent, i)`
/// (`agent`, `i` < 2^32): the first 13 characters encode a bijection of the pair.
pub fn call_id(agent: usize, i: usize) -> String {
    let n = ((agent as u64) << 32) | (i as u64 & 0xFFFF_FFFF);
    let a = mix(n);
    let b = mix(a ^ 0xA5A5_A5A5_A5A5_A5A5);
    let mut out = String::with_capacity(32);
    // 64 bits of `a` → 13 characters (65 bits, top bit 0), then 19 characters from `b`.
    for k in (0..13).rev() {
        out.push(char::from(BASE32HEX[((a >> (5 * k)) & 31) as usize]));
    }
    for k in 0..19 {
        out.push(char::from(BASE32HEX[((b >> (3 * k)) & 31) as usize]));
    }
    out
}

/// A PHC argon2id hash of `password` with cheap parameters (see the module docs).
pub fn cheap_password_hash(password: &str) -> anyhow::Result<String> {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version};
    let params = Params::new(8, 1, 1, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the bench password: {e}"))
}

fn agent_record(index: usize, password_hash: &str) -> anyhow::Result<UserRecord> {
    let profile = UserProfile {
        roles: vec![Role::Agent],
        phone_number: Some(agent_line(index)),
        ..UserProfile::default()
    };
    let username = agent_username(index);
    Ok(UserRecord {
        id: username.clone(),
        username,
        password_hash: password_hash.to_owned(),
        profile: serde_json::to_value(profile)?,
    })
}

/// The `CreateCall` of call `i` of agent `agent` (owned by that agent, whose line is the first
/// party), with `parties - 1` other lines: what [`preload`] runs through the core for each call.
pub fn create_call_command(agent: usize, i: usize, parties: usize) -> Command {
    let id = call_id(agent, i);
    Command::CreateCall(NewCall {
        id: ConferenceId::new(id.clone()),
        conn_id: format!("{:016X}", mix(mix(((agent as u64) << 32) | i as u64))),
        call_uuid: id,
        dnis: other_party(1),
        call_type: CallType::Inbound,
        state: CallState::Established,
        other_parties: (1..parties)
            .map(|k| NewParty {
                phone_number: other_party(k),
                user_id: None,
            })
            .collect(),
        user_data: UserData::new(),
    })
}

/// Builds the calls `calls` (agent index, call index) through the core, as the engine would
/// store them.
fn build_batch(
    spec: &PreloadSpec,
    users: &[UserRecord],
    calls: &[(usize, usize)],
    at: Timestamp,
) -> anyhow::Result<Vec<BulkConference>> {
    let mut out = Vec::with_capacity(calls.len());
    // Calls come agent by agent: one actor serves a run of them.
    let mut cached: Option<(usize, confer_core::Actor)> = None;
    for &(agent, i) in calls {
        let record = users
            .get(agent - spec.first_agent)
            .with_context(|| format!("agent {agent} is not in this preload"))?;
        let actor = match &mut cached {
            Some((index, actor)) if *index == agent => &*actor,
            slot => &slot.insert((agent, actor_of(record)?)).1,
        };
        let command = create_call_command(agent, i, spec.parties);
        let id = command.conference_id().to_string();
        let (conference, events) = confer_core::execute(None, actor, command, at)
            .with_context(|| format!("creating call {id} for {}", record.username))?;
        let events = events
            .iter()
            .map(|event| {
                let payload = serde_json::to_value(event)?;
                let kind = payload
                    .pointer("/kind/type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("Event")
                    .to_owned();
                Ok(NewEvent {
                    conference_id: id.clone(),
                    kind,
                    payload,
                })
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        out.push(BulkConference {
            conference: ConferenceRecord {
                id: conference.id.to_string(),
                kind: conference.noun().to_string(),
                version: conference.version,
                state: serde_json::to_value(&conference)?,
                index_keys: listing_keys(&conference),
                live: is_live(&conference),
                updated_at_ms: at.millis(),
            },
            events,
        });
    }
    Ok(out)
}

enum Opened {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Opened {
    async fn load(&self, load: &BulkLoad) -> anyhow::Result<u64> {
        let outcome = match self {
            Opened::Sqlite(store) => store.bulk_load(load).await?,
            Opened::Postgres(store) => store.bulk_load(load).await?,
        };
        Ok(outcome.events.event_count())
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            Opened::Sqlite(store) => store.close().await?,
            Opened::Postgres(store) => store.close().await,
        }
        Ok(())
    }
}

/// Loads `spec` into its store (which must not hold these agents or calls yet), then closes the
/// store, so a server can open it.
pub async fn preload(spec: &PreloadSpec) -> anyhow::Result<Preloaded> {
    anyhow::ensure!(spec.parties >= 3, "a call needs at least 3 parties");
    anyhow::ensure!(spec.agents > 0, "at least one agent");
    let started = Instant::now();
    let store = match &spec.target {
        StoreTarget::Sqlite { data_dir } => Opened::Sqlite(
            SqliteStore::open(data_dir)
                .await
                .with_context(|| format!("opening the SQLite store in {}", data_dir.display()))?,
        ),
        StoreTarget::Postgres { url, schema } => Opened::Postgres(
            PgStore::connect_with(PgStoreOptions::new(url).schema(schema))
                .await
                .with_context(|| format!("connecting to PostgreSQL schema {schema}"))?,
        ),
    };

    let password = spec.password.clone();
    let hash = tokio::task::spawn_blocking(move || cheap_password_hash(&password)).await??;
    let users: Vec<UserRecord> = (spec.first_agent..spec.first_agent + spec.agents)
        .map(|index| agent_record(index, &hash))
        .collect::<anyhow::Result<_>>()?;

    let at = now();
    // Agent by agent, so that each batch reuses one actor for a run of calls.
    let all: Vec<(usize, usize)> = (spec.first_agent..spec.first_agent + spec.agents)
        .flat_map(|agent| (0..spec.calls_per_agent).map(move |i| (agent, i)))
        .collect();
    let batches: Vec<Vec<(usize, usize)>> = all.chunks(BATCH).map(<[_]>::to_vec).collect();

    // Build the next batch on a blocking thread while the store writes the current one: the
    // JSON work and the inserts then use both cores.
    let spec_shared = std::sync::Arc::new(spec.clone());
    let users_shared = std::sync::Arc::new(users.clone());
    let build = |calls: Vec<(usize, usize)>| {
        let spec = spec_shared.clone();
        let users = users_shared.clone();
        tokio::task::spawn_blocking(move || build_batch(&spec, &users, &calls, at))
    };
    let mut events = 0;
    let mut pending_users = Some(users.clone());
    let mut next = batches.first().cloned().map(build);
    for i in 0..batches.len().max(1) {
        let conferences = match next.take() {
            Some(task) => task.await??,
            None => Vec::new(),
        };
        next = batches.get(i + 1).cloned().map(build);
        let load = BulkLoad {
            users: pending_users.take().unwrap_or_default(),
            conferences,
        };
        events += store.load(&load).await?;
    }
    store.close().await?;

    let agents = users
        .into_iter()
        .enumerate()
        .map(|(k, user)| {
            let index = spec.first_agent + k;
            PreloadedAgent {
                username: user.username,
                password: spec.password.clone(),
                user_id: user.id,
                phone_number: agent_line(index),
                calls: (0..spec.calls_per_agent)
                    .map(|i| PreloadedCall {
                        call_id: call_id(index, i),
                        participant: other_party(1),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Preloaded {
        agents,
        conferences: spec.conferences() as u64,
        events,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_distinct_and_gws_shaped() {
        let mut seen = std::collections::HashSet::new();
        for agent in 0..50 {
            for i in 0..200 {
                let id = call_id(agent, i);
                assert_eq!(id.len(), 32);
                assert!(id.bytes().all(|b| BASE32HEX.contains(&b)), "{id}");
                assert!(seen.insert(id));
            }
        }
    }

    #[test]
    fn the_cheap_hash_verifies_with_the_server_code() {
        let hash = cheap_password_hash("bench").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(confer_app::auth::password::verify("bench", &hash).unwrap());
        assert!(!confer_app::auth::password::verify("Bench", &hash).unwrap());
    }
}
