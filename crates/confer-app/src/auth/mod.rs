//! Who is asking: credentials (HTTP Basic, session cookies, gRPC metadata) to an [`Actor`].
//!
//! - Passwords are argon2 hashes ([`password`]), verified on a bounded pool ([`pool`]); an
//!   unknown username is verified against a dummy hash, so that it costs what a known one
//!   costs and usernames cannot be listed by timing.
//! - Failed sign-ins slow down per username and per client address ([`throttle`]).
//! - A verified password is cached for minutes ([`cache`]), so argon2 runs once per user per
//!   few minutes, not on every Basic-authenticated request.
//! - Sessions are tokens signed with keys kept outside the database ([`keys`], [`tokens`]); they
//!   carry the user's *credential revision*, which a password change or disabling the user
//!   moves (removing the user deletes the record), ending every session issued before.
//! - What this node knows of a user (its revision, whether it is disabled) is re-read from the
//!   store at most [`USER_CACHE_TTL`] after it was last read: a change made by any node or by
//!   `confer users ...` is seen by every node within those seconds, for cookies, bearer tokens
//!   and cached passwords alike. Notification streams ask [`Authenticator::is_current`] on the
//!   same schedule and end when it says no.

pub mod cache;
pub mod client;
pub mod keys;
pub mod password;
pub mod pool;
pub mod throttle;
pub mod tokens;

use std::{
    net::IpAddr,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use confer_core::Actor;
use confer_store::{Store, StoreError, UserRecord};

use self::{
    cache::{CredentialCache, TtlMap},
    pool::HashPool,
    throttle::{ADDRESS_POLICY, Throttle, USERNAME_POLICY},
    tokens::{KeyRing, SessionClaims},
};
use crate::users::{UserError, actor_of, profile_of};

/// How long a verified password is trusted without running argon2 again (the user's revision is
/// still checked every [`USER_CACHE_TTL`]).
pub const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(300);
const CREDENTIAL_CACHE_CAPACITY: usize = 100_000;
/// How long a session (cookie, bearer token) lasts by default without being renewed.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// How long this node trusts what it read of a user: the longest a password change, a disabled
/// or removed user takes to end its sessions here.
pub const USER_CACHE_TTL: Duration = Duration::from_secs(5);
/// How long a client is told to wait when the hashing pool is full.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    /// Too many failed sign-ins for this username or from this address.
    #[error("too many failed sign-ins; try again in {} s", retry_after_secs(*.retry_after))]
    Throttled { retry_after: Duration },
    /// Every password verifier is busy.
    #[error("too many sign-ins at once; try again in {} s", retry_after_secs(*.retry_after))]
    Busy { retry_after: Duration },
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error(transparent)]
    User(#[from] UserError),
}

/// Whole seconds, rounded up (a `Retry-After` of 0 would invite an immediate retry).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl AuthError {
    /// How long the client should wait before trying again, for the refusals that have one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AuthError::Throttled { retry_after } | AuthError::Busy { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

/// What this node knows of a user, as of its last read.
#[derive(Debug, Clone)]
struct UserState {
    actor: Actor,
    revision: u64,
    disabled: bool,
}

/// A password verified recently: whose, at which revision.
#[derive(Debug, Clone)]
struct VerifiedLogin {
    user_id: String,
    revision: u64,
}

pub struct Authenticator {
    store: Arc<dyn Store>,
    keys: RwLock<Arc<KeyRing>>,
    session_ttl: Duration,
    logins: CredentialCache<VerifiedLogin>,
    /// By user id; `None` remembers that there is no such user.
    users: TtlMap<Option<UserState>>,
    pool: HashPool,
    by_username: Throttle<String>,
    by_address: Throttle<IpAddr>,
    /// What an unknown username is verified against (see the module docs).
    dummy_hash: String,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, keys: KeyRing, session_ttl: Duration) -> Self {
        Self::with_pool(store, keys, session_ttl, HashPool::per_core())
    }

    pub fn with_pool(
        store: Arc<dyn Store>,
        keys: KeyRing,
        session_ttl: Duration,
        pool: HashPool,
    ) -> Self {
        Self {
            store,
            keys: RwLock::new(Arc::new(keys)),
            session_ttl,
            logins: CredentialCache::new(CREDENTIAL_CACHE_TTL, CREDENTIAL_CACHE_CAPACITY),
            users: TtlMap::new(USER_CACHE_TTL, CREDENTIAL_CACHE_CAPACITY),
            pool,
            by_username: Throttle::new(USERNAME_POLICY),
            by_address: Throttle::new(ADDRESS_POLICY),
            dummy_hash: password::dummy_hash().to_owned(),
        }
    }

    /// The keys sessions are signed and checked with now.
    pub fn signing_key(&self) -> Arc<KeyRing> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the keys (the key file changed: a rotation).
    pub fn set_keys(&self, keys: KeyRing) {
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
    }

    /// The password verifiers.
    pub fn pool(&self) -> &HashPool {
        &self.pool
    }

    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    /// The user with this id as of at most [`USER_CACHE_TTL`] ago.
    async fn user_state(&self, user_id: &str) -> Result<Option<UserState>, AuthError> {
        if let Some(state) = self.users.get(user_id) {
            return Ok(state);
        }
        let state = match self.store.get_user(user_id).await? {
            Some(record) => Some(state_of(&record)?),
            None => None,
        };
        self.users.insert(user_id, state.clone());
        Ok(state)
    }

    /// Forgets what this node knows of a user, so that a change made here applies here at once.
    pub fn forget_user(&self, user_id: &str) {
        self.users.remove(user_id);
    }

    /// Whether the user still exists, is enabled and is at `revision`: what a notification
    /// stream asks to know whether it may go on (seen within [`USER_CACHE_TTL`] of a change).
    pub async fn is_current(&self, user_id: &str, revision: u64) -> Result<bool, AuthError> {
        Ok(self
            .user_state(user_id)
            .await?
            .is_some_and(|state| !state.disabled && state.revision == revision))
    }

    /// The user's credential revision now (`None`: removed or disabled); a stream remembers it
    /// when it starts and checks it with [`Authenticator::is_current`].
    pub async fn current_revision(&self, user_id: &str) -> Result<Option<u64>, AuthError> {
        Ok(self
            .user_state(user_id)
            .await?
            .filter(|state| !state.disabled)
            .map(|state| state.revision))
    }

    /// Verifies a username and password sent by the client of the current request
    /// ([`client::current`]).
    pub async fn verify_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Actor, AuthError> {
        self.verify_password_from(username, password, client::current())
            .await
    }

    /// Verifies a username and password sent from `from`.
    pub async fn verify_password_from(
        &self,
        username: &str,
        password: &str,
        from: Option<IpAddr>,
    ) -> Result<Actor, AuthError> {
        if let Some(login) = self.logins.get(username, password) {
            if let Some(state) = self.user_state(&login.user_id).await?
                && !state.disabled
                && state.revision == login.revision
            {
                return Ok(state.actor);
            }
            // The password was changed, or the user disabled or removed: verify afresh.
            self.logins.forget(username);
        }
        let now = Instant::now();
        let locked = [
            self.by_username.locked_for(&username.to_owned(), now),
            from.and_then(|address| self.by_address.locked_for(&address, now)),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(retry_after) = locked {
            return Err(AuthError::Throttled { retry_after });
        }
        let record = self.store.get_user_by_username(username).await?;
        let state = record.as_ref().map(state_of).transpose()?;
        let stored = record
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |r| r.password_hash.as_str());
        let matches = self
            .pool
            .verify(password, stored)
            .await
            .map_err(|_| AuthError::Busy {
                retry_after: BUSY_RETRY_AFTER,
            })?;
        let Some(state) = state.filter(|state| matches && !state.disabled) else {
            self.by_username.failed(&username.to_owned(), now);
            if let Some(address) = from {
                self.by_address.failed(&address, now);
            }
            return Err(AuthError::Invalid);
        };
        self.by_username.succeeded(&username.to_owned());
        let user_id = state.actor.user_id.to_string();
        self.logins.insert(
            username,
            password,
            VerifiedLogin {
                user_id: user_id.clone(),
                revision: state.revision,
            },
        );
        self.users.insert(&user_id, Some(state.clone()));
        Ok(state.actor)
    }

    /// Verifies an `Authorization: Basic ...` header value sent by the client of the current
    /// request ([`client::current`]).
    pub async fn verify_basic(&self, header: &str) -> Result<Actor, AuthError> {
        self.verify_basic_from(header, client::current()).await
    }

    /// Verifies an `Authorization: Basic ...` header value sent from `from`.
    pub async fn verify_basic_from(
        &self,
        header: &str,
        from: Option<IpAddr>,
    ) -> Result<Actor, AuthError> {
        let encoded = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
            .ok_or(AuthError::Missing)?;
        let decoded = STANDARD
            .decode(encoded.trim())
            .map_err(|_| AuthError::Invalid)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Invalid)?;
        let (username, password) = decoded.split_once(':').ok_or(AuthError::Invalid)?;
        self.verify_password_from(username, password, from).await
    }

    fn now_unix() -> i64 {
        crate::engine::now().millis() / 1000
    }

    fn lifetime_secs(&self) -> i64 {
        i64::try_from(self.session_ttl.as_secs()).unwrap_or(i64::MAX)
    }

    /// A new session token for `actor`, at the user's current revision.
    pub async fn issue_session(&self, actor: &Actor) -> Result<String, AuthError> {
        let revision = self
            .current_revision(actor.user_id.as_str())
            .await?
            .ok_or(AuthError::Invalid)?;
        let expires = Self::now_unix().saturating_add(self.lifetime_secs());
        Ok(self
            .signing_key()
            .issue_session(actor.user_id.as_str(), revision, expires))
    }

    /// When a session token issued now expires (unix seconds).
    pub fn new_session_expiry(&self) -> i64 {
        Self::now_unix().saturating_add(self.lifetime_secs())
    }

    /// The claims of a token that verifies and whose user is still current.
    async fn current_claims(&self, token: &str) -> Result<(SessionClaims, Actor), AuthError> {
        let claims = self
            .signing_key()
            .verify(token, Self::now_unix())
            .ok_or(AuthError::Invalid)?;
        let state = self
            .user_state(&claims.user_id)
            .await?
            .filter(|state| !state.disabled && state.revision == claims.revision)
            .ok_or(AuthError::Invalid)?;
        Ok((claims, state.actor))
    }

    /// The user of a valid session token: signed by a current key, unexpired, and issued at the
    /// user's current revision (re-read at most [`USER_CACHE_TTL`] ago, so role changes apply too).
    pub async fn verify_session(&self, token: &str) -> Result<Actor, AuthError> {
        Ok(self.current_claims(token).await?.1)
    }

    /// Sliding renewal: a fresh token for the same session (same session id, so the same CSRF
    /// token) when less than half of its lifetime is left; `None` when it is fresh enough or
    /// not valid.
    pub async fn renewal(&self, token: &str) -> Option<String> {
        let (mut claims, _) = self.current_claims(token).await.ok()?;
        let now = Self::now_unix();
        if claims.expires.saturating_sub(now) > self.lifetime_secs() / 2 {
            return None;
        }
        claims.expires = now.saturating_add(self.lifetime_secs());
        Some(self.signing_key().issue(&claims))
    }
}

fn state_of(record: &UserRecord) -> Result<UserState, AuthError> {
    let profile = profile_of(record)?;
    Ok(UserState {
        actor: actor_of(record)?,
        revision: profile.credential_revision,
        disabled: profile.disabled,
    })
}
