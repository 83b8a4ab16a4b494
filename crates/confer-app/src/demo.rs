//! `--demo`: the seeds' world (users, the voice call, the chat, the Evo session), loaded into the
//! store through the core's own commands, so every seed request sent as printed gets the seed's
//! reply. Loading is idempotent: what already exists (a restart on the same data) is kept.

use std::fmt::Write as _;

use confer_core::demo::{self, DEMO_USERS};
use confer_store::{Commit, NewEvent, Store, StoreError, UserRecord};

use crate::{
    auth::password,
    engine::{EngineError, now, record_of},
    users::UserProfile,
};

/// Every demo user's password.
pub const DEMO_PASSWORD: &str = "demo";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("building the demo world failed")]
    World(#[from] confer_core::DomainError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error("serializing the demo world failed")]
    Json(#[from] serde_json::Error),
}

/// Loads what is missing of the demo world; returns the text that tells a newcomer how to use it.
pub async fn load(store: &dyn Store) -> Result<String, DemoError> {
    // One hash for all demo users: they share the password, and argon2 is slow on purpose.
    let hash = tokio::task::spawn_blocking(|| password::hash(DEMO_PASSWORD))
        .await
        .map_err(|_| password::PasswordError::Hash("the hashing task was cancelled".into()))??;
    for user in &DEMO_USERS {
        if store.get_user_by_username(user.username).await?.is_some() {
            continue;
        }
        let profile = UserProfile {
            roles: user.roles.to_vec(),
            phone_number: user.phone_number.map(str::to_owned),
            email: user.email.map(str::to_owned),
            device_id: user.device_id.map(str::to_owned),
            accounts: user.account.map(str::to_owned).into_iter().collect(),
            ..UserProfile::default()
        };
        let record = UserRecord {
            id: user.user_id.to_owned(),
            username: user.username.to_owned(),
            password_hash: hash.clone(),
            profile: serde_json::to_value(profile)?,
        };
        match store.put_user(record).await {
            // Another node loading the demo at the same time won: fine.
            Ok(()) | Err(StoreError::UsernameTaken { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let now = now();
    let world = demo::demo_world(now)?;
    for conference in &world.conferences {
        let record = record_of(conference, now)?;
        if store.get_conference(&record.id).await?.is_some() {
            continue;
        }
        let events = world
            .events_of(conference.id.as_str())
            .into_iter()
            .map(|event| {
                let payload = serde_json::to_value(event)?;
                let kind = payload
                    .pointer("/kind/type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("Event")
                    .to_owned();
                Ok(NewEvent {
                    conference_id: record.id.clone(),
                    kind,
                    payload,
                })
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        let commit = Commit {
            conference: record,
            expected_version: None,
            events,
            idempotency: None,
        };
        match store.commit(commit).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(credentials_text())
}

/// What `confer serve --demo` prints.
pub fn credentials_text() -> String {
    let mut out = String::from("Demo users (every password is \"demo\"):\n");
    for user in &DEMO_USERS {
        let roles: Vec<String> = user
            .roles
            .iter()
            .map(|r| format!("{r:?}").to_lowercase())
            .collect();
        let _ = write!(out, "  {:<13} role {:<10}", user.username, roles.join(","));
        if let Some(phone) = user.phone_number {
            let _ = write!(out, " phone {phone}");
        }
        if let Some(device) = user.device_id {
            let _ = write!(out, " device {device}");
        }
        if let Some(email) = user.email {
            let _ = write!(out, " email {email}");
        }
        if let Some(account) = user.account {
            let _ = write!(out, " account {account}");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Demo conferences:\n  voice call {} (agent15000 with 15001 and 15002)\n  chat {} (test_consult, chat_consult, customer test_consult_clientL)\n  Evo session {} in account {} (+15550100 caller, agent@example.com agent, +15550101 transfer)",
        demo::VOICE_CALL_ID,
        demo::CHAT_ID,
        demo::SESSION_ID,
        demo::ACCOUNT_ID
    );
    out
}
