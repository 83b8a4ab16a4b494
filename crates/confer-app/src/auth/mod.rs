//! Who is asking: credentials (HTTP Basic, session cookies, gRPC metadata) to an [`Actor`].
//!
//! Passwords are argon2 hashes ([`password`]); a verified credential is cached for a bounded
//! time ([`cache`]) so that authentication never becomes the bottleneck; sessions and CSRF
//! tokens are signed with a key the nodes share ([`tokens`]).

pub mod cache;
pub mod password;
pub mod tokens;

use std::{sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use confer_core::Actor;
use confer_store::{Store, StoreError};

use self::{cache::CredentialCache, tokens::SigningKey};
use crate::users::{UserError, actor_of};

/// How long a verified password is trusted without running argon2 again.
pub const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(300);
const CREDENTIAL_CACHE_CAPACITY: usize = 100_000;
/// How long a session (cookie) lasts.
pub const SESSION_TTL_SECS: i64 = 12 * 60 * 60;
/// How long a verified session token's user is reused without reading it from the store again:
/// short, so a changed or removed user is seen within seconds.
pub const SESSION_CACHE_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error(transparent)]
    User(#[from] UserError),
}

pub struct Authenticator {
    store: Arc<dyn Store>,
    cache: CredentialCache<Actor>,
    /// Users of recently verified session tokens (keyed by the token, with no password part).
    sessions: CredentialCache<Actor>,
    key: SigningKey,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, key: SigningKey) -> Self {
        Self {
            store,
            cache: CredentialCache::new(CREDENTIAL_CACHE_TTL, CREDENTIAL_CACHE_CAPACITY),
            sessions: CredentialCache::new(SESSION_CACHE_TTL, CREDENTIAL_CACHE_CAPACITY),
            key,
        }
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Verifies a username and password.
    pub async fn verify_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Actor, AuthError> {
        if let Some(actor) = self.cache.get(username, password) {
            return Ok(actor);
        }
        let Some(record) = self.store.get_user_by_username(username).await? else {
            return Err(AuthError::Invalid);
        };
        let stored = record.password_hash.clone();
        let given = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || password::verify(&given, &stored))
            .await
            .map_err(|_| AuthError::Invalid)?
            .map_err(|_| AuthError::Invalid)?;
        if !matches {
            return Err(AuthError::Invalid);
        }
        let actor = actor_of(&record)?;
        self.cache.insert(username, password, actor.clone());
        Ok(actor)
    }

    /// Verifies an `Authorization: Basic ...` header value.
    pub async fn verify_basic(&self, header: &str) -> Result<Actor, AuthError> {
        let encoded = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
            .ok_or(AuthError::Missing)?;
        let decoded = STANDARD
            .decode(encoded.trim())
            .map_err(|_| AuthError::Invalid)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Invalid)?;
        let (username, password) = decoded.split_once(':').ok_or(AuthError::Invalid)?;
        self.verify_password(username, password).await
    }

    /// A new session token for `actor`.
    pub fn issue_session(&self, actor: &Actor) -> String {
        let expires = crate::engine::now().millis() / 1000 + SESSION_TTL_SECS;
        self.key.issue_session(actor.user_id.as_str(), expires)
    }

    /// The user of a valid session token (reloaded, so role changes apply).
    pub async fn verify_session(&self, token: &str) -> Result<Actor, AuthError> {
        let now = crate::engine::now().millis() / 1000;
        // The signature and expiry are checked every time; only the user read is cached.
        let user_id = self
            .key
            .verify_session(token, now)
            .ok_or(AuthError::Invalid)?;
        if let Some(actor) = self.sessions.get(token, "") {
            return Ok(actor);
        }
        let record = self
            .store
            .get_user(&user_id)
            .await?
            .ok_or(AuthError::Invalid)?;
        let actor = actor_of(&record)?;
        self.sessions.insert(token, "", actor.clone());
        Ok(actor)
    }
}
