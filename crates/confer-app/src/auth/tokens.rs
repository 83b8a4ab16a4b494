//! Session tokens and CSRF tokens, signed with a key every node shares (kept in the store), so
//! that any node accepts a session any other node issued: no sticky load balancing.
//!
//! A session token is `v1.<user id, base64url>.<expiry, unix seconds>.<HMAC-SHA256, base64url>`.
//! The CSRF token of a session is an HMAC of the session token under a different label, so it
//! lives exactly as long as the session, as in GWS.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The secret that signs sessions; 32 random bytes.
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
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

    /// Hex, for storage.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
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

    /// A session token for `user_id`, valid until `expires_unix`.
    pub fn issue_session(&self, user_id: &str, expires_unix: i64) -> String {
        let payload = format!("v1.{}.{expires_unix}", URL_SAFE_NO_PAD.encode(user_id));
        let tag = self.mac("session", &payload).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The user id of a valid, unexpired session token.
    pub fn verify_session(&self, token: &str, now_unix: i64) -> Option<String> {
        let (payload, tag) = token.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac("session", payload).verify_slice(&tag).ok()?;
        let mut parts = payload.split('.');
        let (Some("v1"), Some(user), Some(expires), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if expires.parse::<i64>().ok()? <= now_unix {
            return None;
        }
        String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()
    }

    /// The CSRF token that belongs to a session token.
    pub fn csrf_token(&self, session_token: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac("csrf", session_token).finalize().into_bytes())
    }

    /// Whether `csrf` is the CSRF token of `session_token` (constant time).
    pub fn verify_csrf(&self, session_token: &str, csrf: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(csrf)
            .is_ok_and(|tag| self.mac("csrf", session_token).verify_slice(&tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_verify_until_they_expire_and_only_with_their_key() {
        let key = SigningKey::random();
        let token = key.issue_session("agent15000", 1_000);
        assert_eq!(
            key.verify_session(&token, 999).as_deref(),
            Some("agent15000")
        );
        assert_eq!(key.verify_session(&token, 1_000), None, "expired");
        assert_eq!(
            SigningKey::random().verify_session(&token, 999),
            None,
            "other key"
        );
        let forged = token.replace(
            &URL_SAFE_NO_PAD.encode("agent15000"),
            &URL_SAFE_NO_PAD.encode("supervisor"),
        );
        assert_eq!(
            key.verify_session(&forged, 999),
            None,
            "a changed user id breaks the signature"
        );
        for garbage in ["", ".", "v1..", "v1.a.b.c.d", "x.y.z.w"] {
            assert_eq!(key.verify_session(garbage, 0), None, "{garbage:?}");
        }
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let key = SigningKey::random();
        let a = key.issue_session("u1", 10);
        let b = key.issue_session("u2", 10);
        let csrf = key.csrf_token(&a);
        assert!(key.verify_csrf(&a, &csrf));
        assert!(!key.verify_csrf(&b, &csrf));
        assert!(!key.verify_csrf(&a, "not base64 !"));
    }

    #[test]
    fn keys_survive_hex() {
        let key = SigningKey::random();
        let back = SigningKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(back.0, key.0);
        assert!(SigningKey::from_hex("zz").is_none());
    }
}
