//! Session tokens and CSRF tokens, signed with keys every node shares (a key file or an
//! environment variable, never the database: see [`crate::auth::keys`]), so that any node
//! accepts a session any other node issued: no sticky load balancing.
//!
//! A session token is
//! `v2.<user id, base64url>.<session id>.<credential revision>.<expiry, unix seconds>.<key id>.<HMAC-SHA256, base64url>`:
//! - the *session id* is random and survives renewal, and the CSRF token is an HMAC of the user
//!   and session id (not of the whole token), so a renewed cookie keeps its CSRF token valid, as
//!   a GWS client expects (it reads the token once, from a GET);
//! - the *credential revision* is the user's at issue time: changing the password, disabling
//!   or removing the user moves it, which ends every token issued before (see
//!   [`crate::auth::Authenticator::verify_session`]);
//! - the *key id* names the key that signed it, so that after a rotation tokens signed with the
//!   previous key still verify until they expire, and nobody is logged out at once.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// One secret that signs sessions; 32 random bytes.
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id())
    }
}

impl SigningKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        // The OS random source failing is not something a server can run without.
        getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
        Self(bytes)
    }

    /// Hex, for the key file.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.trim();
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }

    /// A public name for the key (8 hex digits of its SHA-256): what tokens carry to say which
    /// key signed them. Reveals nothing usable about the key.
    pub fn id(&self) -> String {
        hex(&Sha256::digest(self.0)[..4])
    }

    fn mac(&self, label: &str, data: &str) -> HmacSha256 {
        // HMAC accepts keys of any length; 32 bytes always works.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        mac
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a valid session token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    pub user_id: String,
    /// Random, kept across renewals: what the CSRF token is bound to.
    pub session_id: String,
    /// The user's credential revision when the session was issued.
    pub revision: u64,
    /// Unix seconds.
    pub expires: i64,
}

/// The keys in use: the first signs, every one verifies (the others are previous keys kept
/// after a rotation until the tokens they signed have expired).
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// A ring; `None` when `keys` is empty.
    pub fn new(keys: Vec<SigningKey>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self { keys })
    }

    /// A ring of one key.
    pub fn single(key: SigningKey) -> Self {
        Self { keys: vec![key] }
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> &SigningKey {
        // `new` refuses an empty ring.
        &self.keys[0]
    }

    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    fn by_id(&self, id: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|key| key.id() == id)
    }

    /// A session token with these claims, signed with the current key.
    pub fn issue(&self, claims: &SessionClaims) -> String {
        let key = self.current();
        let payload = format!(
            "v2.{}.{}.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(&claims.user_id),
            claims.session_id,
            claims.revision,
            claims.expires,
            key.id()
        );
        let tag = key.mac("session", &payload).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// A new session for `user_id` at `revision`, valid until `expires_unix`.
    pub fn issue_session(&self, user_id: &str, revision: u64, expires_unix: i64) -> String {
        self.issue(&SessionClaims {
            user_id: user_id.to_owned(),
            session_id: random_session_id(),
            revision,
            expires: expires_unix,
        })
    }

    /// The claims of a token signed by one of the ring's keys and not expired at `now_unix`.
    /// (Whether the user still exists at that revision is the authenticator's business.)
    pub fn verify(&self, token: &str, now_unix: i64) -> Option<SessionClaims> {
        let (payload, tag) = token.rsplit_once('.')?;
        let mut parts = payload.split('.');
        let (
            Some("v2"),
            Some(user),
            Some(session_id),
            Some(revision),
            Some(expires),
            Some(key_id),
            None,
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return None;
        };
        let key = self.by_id(key_id)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        key.mac("session", payload).verify_slice(&tag).ok()?;
        let expires: i64 = expires.parse().ok()?;
        if expires <= now_unix {
            return None;
        }
        Some(SessionClaims {
            user_id: String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()?,
            session_id: session_id.to_owned(),
            revision: revision.parse().ok()?,
            expires,
        })
    }

    /// The user id of a valid, unexpired session token.
    pub fn verify_session(&self, token: &str, now_unix: i64) -> Option<String> {
        self.verify(token, now_unix).map(|claims| claims.user_id)
    }

    /// The CSRF token that belongs to a session token (empty for a token that does not parse,
    /// which no CSRF token matches).
    pub fn csrf_token(&self, session_token: &str) -> String {
        match csrf_subject(session_token) {
            Some(subject) => {
                URL_SAFE_NO_PAD.encode(self.current().mac("csrf", &subject).finalize().into_bytes())
            }
            None => String::new(),
        }
    }

    /// Whether `csrf` is the CSRF token of `session_token`, under any key of the ring (constant
    /// time per key).
    pub fn verify_csrf(&self, session_token: &str, csrf: &str) -> bool {
        let (Some(subject), Ok(tag)) = (csrf_subject(session_token), URL_SAFE_NO_PAD.decode(csrf))
        else {
            return false;
        };
        self.keys
            .iter()
            .any(|key| key.mac("csrf", &subject).verify_slice(&tag).is_ok())
    }
}

/// What a CSRF token is bound to: the user and session id, the parts a renewal keeps.
fn csrf_subject(session_token: &str) -> Option<String> {
    let mut parts = session_token.split('.');
    let (Some("v2"), Some(user), Some(session_id)) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(format!("{user}.{session_id}"))
}

/// 128 random bits, base64url.
fn random_session_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::single(SigningKey::random())
    }

    #[test]
    fn sessions_verify_until_they_expire_and_only_with_their_key() {
        let ring = ring();
        let token = ring.issue_session("agent15000", 3, 1_000);
        let claims = ring.verify(&token, 999).unwrap();
        assert_eq!(claims.user_id, "agent15000");
        assert_eq!(claims.revision, 3);
        assert_eq!(ring.verify(&token, 1_000), None, "expired");
        assert_eq!(self::ring().verify(&token, 999), None, "other key");
        let forged = token.replace(
            &URL_SAFE_NO_PAD.encode("agent15000"),
            &URL_SAFE_NO_PAD.encode("supervisor"),
        );
        assert_eq!(
            ring.verify(&forged, 999),
            None,
            "a changed user id breaks the signature"
        );
        let bumped = token.replacen(".3.", ".4.", 1);
        assert_eq!(
            ring.verify(&bumped, 999),
            None,
            "so does a changed revision"
        );
        for garbage in ["", ".", "v2......", "v1.a.b.c", "x.y.z.w.v.u.t"] {
            assert_eq!(ring.verify(garbage, 0), None, "{garbage:?}");
        }
    }

    #[test]
    fn a_rotated_ring_still_verifies_what_the_previous_key_signed() {
        let old = SigningKey::random();
        let before = KeyRing::single(old.clone());
        let token = before.issue_session("u1", 0, 100);
        let csrf = before.csrf_token(&token);
        let new = SigningKey::random();
        let after = KeyRing::new(vec![new.clone(), old]).unwrap();
        assert_eq!(after.verify_session(&token, 1).as_deref(), Some("u1"));
        assert!(after.verify_csrf(&token, &csrf));
        let fresh = after.issue_session("u1", 0, 100);
        assert!(fresh.contains(&format!(".{}.", new.id())), "{fresh}");
        let only_new = KeyRing::single(new);
        assert_eq!(only_new.verify(&token, 1), None, "the old key was dropped");
        assert!(KeyRing::new(Vec::new()).is_none());
    }

    #[test]
    fn csrf_tokens_belong_to_their_session_and_survive_renewal() {
        let ring = ring();
        let a = ring.issue_session("u1", 0, 10);
        let b = ring.issue_session("u1", 0, 10);
        let csrf = ring.csrf_token(&a);
        assert!(ring.verify_csrf(&a, &csrf));
        assert!(
            !ring.verify_csrf(&b, &csrf),
            "another session of the same user"
        );
        assert!(!ring.verify_csrf(&a, "not base64 !"));
        let mut claims = ring.verify(&a, 0).unwrap();
        claims.expires = 20;
        let renewed = ring.issue(&claims);
        assert_ne!(renewed, a);
        assert!(
            ring.verify_csrf(&renewed, &csrf),
            "renewal keeps the CSRF token"
        );
    }

    #[test]
    fn keys_survive_hex_and_have_short_public_ids() {
        let key = SigningKey::random();
        let back = SigningKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(back.0, key.0);
        assert_eq!(key.id().len(), 8);
        assert!(SigningKey::from_hex("zz").is_none());
    }
}
