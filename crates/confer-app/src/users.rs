//! Users: who may log in, with which roles, line, device and accounts.
//!
//! A user is stored as a [`UserRecord`] whose `profile` is a [`UserProfile`]; [`actor_of`] turns
//! it into the core's [`Actor`].

use std::collections::BTreeSet;

use confer_core::{AccountId, Actor, DeviceId, PhoneNumber, Role, UserId};
use confer_store::{Store, StoreError, UserRecord};
use serde::{Deserialize, Serialize};

use crate::auth::password;

/// A user's role as `confer users add --role` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UserRole {
    /// A GWS agent (`ROLE_AGENT`).
    Agent,
    /// A GWS supervisor (`ROLE_SUPERVISOR`): may monitor agents' calls.
    Supervisor,
    /// A GWS admin (`ROLE_ADMIN`): what a supervisor may, and Evo's User role in their accounts.
    Admin,
    /// Evo Voice's `User` role, in the user's accounts.
    User,
}

impl UserRole {
    pub fn core_role(self) -> Role {
        match self {
            UserRole::Agent => Role::Agent,
            UserRole::Supervisor => Role::Supervisor,
            UserRole::Admin => Role::Admin,
            UserRole::User => Role::User,
        }
    }
}

/// What the store keeps about a user besides the username and password hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// Moves on every password change and every disabling: a session token issued at another
    /// revision is refused (see `crate::auth`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub credential_revision: u64,
    /// A disabled user cannot sign in, and its sessions end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a username must be 1 to 128 characters without ':' or control characters")]
    InvalidUsername,
    #[error("a user id must be 1 to 128 characters of letters, digits, '-', '_', '.' or '@'")]
    InvalidUserId,
    #[error("an account must be 1 to 128 characters without control characters")]
    InvalidAccount,
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error("user {0} already exists")]
    Taken(String),
    #[error("there is no user {0}")]
    NoSuchUser(String),
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("user {username} has an unreadable profile")]
    Profile {
        username: String,
        #[source]
        source: serde_json::Error,
    },
}

/// What `confer users add` asks for.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub role: UserRole,
    pub phone_number: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub accounts: Vec<String>,
    pub device_id: Option<String>,
    pub password: String,
}

fn valid_username(name: &str) -> bool {
    // ':' would break HTTP Basic credentials.
    (1..=128).contains(&name.chars().count()) && !name.chars().any(|c| c == ':' || c.is_control())
}

fn valid_user_id(id: &str) -> bool {
    // User ids appear in URIs (`/api/v2/users/{id}`) and channel names.
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// Adds a user (the password is hashed with argon2 here).
pub async fn add(store: &dyn Store, user: NewUser) -> Result<UserRecord, UserError> {
    if !valid_username(&user.username) {
        return Err(UserError::InvalidUsername);
    }
    let id = user
        .user_id
        .clone()
        .unwrap_or_else(|| user.username.clone());
    if !valid_user_id(&id) {
        return Err(UserError::InvalidUserId);
    }
    // Sessions are stored under their account and id, separated by a control character.
    if !user
        .accounts
        .iter()
        .all(|a| (1..=128).contains(&a.chars().count()) && !a.chars().any(char::is_control))
    {
        return Err(UserError::InvalidAccount);
    }
    let password_hash = hash_off_runtime(user.password.clone()).await?;
    let profile = UserProfile {
        roles: vec![user.role.core_role()],
        phone_number: user.phone_number,
        email: user.email,
        device_id: user.device_id,
        accounts: user.accounts,
        credential_revision: 0,
        disabled: false,
    };
    let record = UserRecord {
        id,
        username: user.username.clone(),
        password_hash,
        profile: serde_json::to_value(&profile).map_err(|source| UserError::Profile {
            username: user.username.clone(),
            source,
        })?,
    };
    match store.put_user(record.clone()).await {
        Ok(()) => Ok(record),
        Err(StoreError::UsernameTaken { .. }) => Err(UserError::Taken(user.username)),
        Err(other) => Err(other.into()),
    }
}

async fn hash_off_runtime(password: String) -> Result<String, UserError> {
    Ok(
        tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(|_| {
                password::PasswordError::Hash("the hashing task was cancelled".into())
            })??,
    )
}

async fn existing(store: &dyn Store, username: &str) -> Result<UserRecord, UserError> {
    store
        .get_user_by_username(username)
        .await?
        .ok_or_else(|| UserError::NoSuchUser(username.to_owned()))
}

/// Changes `username`'s profile with `change` and stores it.
async fn change_profile(
    store: &dyn Store,
    mut record: UserRecord,
    change: impl FnOnce(&mut UserProfile),
) -> Result<UserRecord, UserError> {
    let mut profile = profile_of(&record)?;
    change(&mut profile);
    record.profile = serde_json::to_value(&profile).map_err(|source| UserError::Profile {
        username: record.username.clone(),
        source,
    })?;
    store.update_user(record.clone()).await?;
    Ok(record)
}

/// Sets a new password; every session and cached credential of the user ends (on every node
/// within `crate::auth::USER_CACHE_TTL`).
pub async fn set_password(
    store: &dyn Store,
    username: &str,
    password: String,
) -> Result<UserRecord, UserError> {
    let mut record = existing(store, username).await?;
    record.password_hash = hash_off_runtime(password).await?;
    change_profile(store, record, |profile| profile.credential_revision += 1).await
}

/// Disables (or enables again) a user. Disabling ends every session of the user; enabling does
/// not bring them back.
pub async fn set_disabled(
    store: &dyn Store,
    username: &str,
    disabled: bool,
) -> Result<UserRecord, UserError> {
    let record = existing(store, username).await?;
    change_profile(store, record, |profile| {
        if disabled && !profile.disabled {
            profile.credential_revision += 1;
        }
        profile.disabled = disabled;
    })
    .await
}

/// Removes a user; its sessions end with it.
pub async fn remove(store: &dyn Store, username: &str) -> Result<UserRecord, UserError> {
    let record = existing(store, username).await?;
    if !store.delete_user(&record.id).await? {
        return Err(UserError::NoSuchUser(username.to_owned()));
    }
    Ok(record)
}

/// One line per user: username, id, roles, phone number, email, accounts.
pub async fn list(store: &dyn Store) -> Result<Vec<String>, UserError> {
    let mut lines = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_users(after.as_deref(), 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        let full = page.len() == 500;
        for record in page {
            let profile = profile_of(&record)?;
            let roles: Vec<String> = profile
                .roles
                .iter()
                .map(|r| format!("{r:?}").to_lowercase())
                .collect();
            lines.push(format!(
                "{}\tid={}\troles={}\tphone={}\temail={}\taccounts={}{}",
                record.username,
                record.id,
                roles.join(","),
                profile.phone_number.as_deref().unwrap_or("-"),
                profile.email.as_deref().unwrap_or("-"),
                if profile.accounts.is_empty() {
                    "-".to_owned()
                } else {
                    profile.accounts.join(",")
                },
                if profile.disabled { "\tdisabled" } else { "" },
            ));
        }
        if !full {
            break;
        }
    }
    Ok(lines)
}

pub fn profile_of(record: &UserRecord) -> Result<UserProfile, UserError> {
    serde_json::from_value(record.profile.clone()).map_err(|source| UserError::Profile {
        username: record.username.clone(),
        source,
    })
}

/// The core's view of a stored user.
pub fn actor_of(record: &UserRecord) -> Result<Actor, UserError> {
    let profile = profile_of(record)?;
    Ok(Actor {
        user_id: UserId::new(record.id.clone()),
        username: record.username.clone(),
        roles: profile.roles.into_iter().collect::<BTreeSet<_>>(),
        phone_number: profile.phone_number.map(PhoneNumber::new),
        email: profile.email,
        device_id: profile.device_id.map(DeviceId::new),
        accounts: profile.accounts.into_iter().map(AccountId::new).collect(),
    })
}
