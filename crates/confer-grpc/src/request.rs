//! What every RPC reads from its request besides the message: who is calling (`authorization`),
//! by when it must answer (`grpc-timeout`), and the `idempotency-key`; plus the helpers RPCs share
//! (new ids, paging tokens, enum fields).

use std::{future::Future, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use confer_app::{App, auth::AuthError, engine::IdempotencyKey};
use confer_core::Actor;
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;

use crate::error::ApiError;

/// The longest `idempotency-key` accepted.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The user behind the `authorization` metadata: `Basic <base64 user:password>` or
/// `Bearer <session token>` (from `AuthService.Login`, or a REST login's session).
pub async fn authenticate(app: &App, metadata: &MetadataMap) -> Result<Actor, ApiError> {
    let Some(value) = metadata.get("authorization") else {
        return Err(AuthError::Missing.into());
    };
    let value = value.to_str().map_err(|_| AuthError::Invalid)?.trim();
    let (scheme, credentials) = value.split_once(' ').ok_or(AuthError::Invalid)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(app.auth.verify_session(credentials.trim()).await?)
    } else if scheme.eq_ignore_ascii_case("basic") {
        Ok(app
            .auth
            .verify_basic(&format!("Basic {}", credentials.trim()))
            .await?)
    } else {
        Err(AuthError::Invalid.into())
    }
}

/// The call's deadline, from the `grpc-timeout` header (`<digits><unit>`, units H M S m u n).
/// A malformed header counts as none, as tonic's server treats it.
pub fn timeout_of(metadata: &MetadataMap) -> Option<Duration> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    // The gRPC spec allows at most 8 digits.
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value.saturating_mul(3600)),
        "M" => Duration::from_secs(value.saturating_mul(60)),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

/// How long before the caller's deadline the server gives up (at most 10 ms early, at most a
/// tenth of the timeout): the DEADLINE_EXCEEDED it answers then reaches the caller before the
/// caller's own timer fires, so the caller learns that the server stopped the work, rather than
/// only that no answer came in time. (The server is not `tonic::transport::Server`, whose own
/// timeout layer would answer CANCELLED; see `confer`'s `server.rs`.)
pub fn budget(timeout: Duration) -> Duration {
    let margin = (timeout / 10).min(Duration::from_millis(10));
    timeout.saturating_sub(margin)
}

/// Runs `work` within the call's deadline: past it, the work is dropped (cancelled where it
/// awaits) and the answer is DEADLINE_EXCEEDED. A change that had already reached the store may
/// still commit: retry with the same `idempotency-key` to learn its outcome.
pub async fn within_deadline<T>(
    metadata: &MetadataMap,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    match timeout_of(metadata) {
        None => work.await,
        Some(timeout) => tokio::time::timeout(budget(timeout), work)
            .await
            .unwrap_or(Err(ApiError::DeadlineExceeded)),
    }
}

/// The `idempotency-key` metadata of a mutating RPC, with the fingerprint of the request it came
/// with: the full method name and the encoded message, so the same key with another request (or
/// the same key sent to a REST route) is refused rather than answered with the wrong result.
pub fn idempotency_key(
    metadata: &MetadataMap,
    method: &str,
    message: &impl prost::Message,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = metadata.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid("idempotency-key", "must be visible ASCII"))?
        .trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ApiError::invalid(
            "idempotency-key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
        ));
    }
    let digest = Sha256::digest(message.encode_to_vec());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        fingerprint: format!("grpc {method} {hex}"),
    }))
}

/// A new random id: `bytes` random bytes as lowercase hex (the demo's ids look the same).
pub fn new_id(bytes: usize) -> Result<String, ApiError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|error| ApiError::Randomness(error.to_string()))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// The given id, trimmed, or a new one when it is empty.
pub fn given_or_new_id(given: &str) -> Result<String, ApiError> {
    let given = given.trim();
    if given.is_empty() {
        new_id(16)
    } else {
        Ok(given.to_owned())
    }
}

/// A required id field.
pub fn required(field: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        Err(ApiError::invalid(field, "is required"))
    } else {
        Ok(value.to_owned())
    }
}

/// An optional text field: absent or blank is none.
pub fn optional(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.trim().is_empty())
}

// --- paging ---------------------------------------------------------------------------------------

/// The default and largest `page_size`.
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 1000;

/// Where a page starts: after this id (none: the first page), and how many items it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub after: Option<String>,
    pub size: usize,
}

/// Reads `page_size` and `page_token`. The token is opaque to callers (base64 of a versioned
/// cursor), so its form can change without breaking them.
pub fn page(page_size: i32, page_token: &str) -> Result<Page, ApiError> {
    let size = match page_size {
        ..0 => return Err(ApiError::invalid("page_size", "must not be negative")),
        0 => DEFAULT_PAGE_SIZE,
        n => usize::try_from(n).map_or(MAX_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE)),
    };
    let after = if page_token.is_empty() {
        None
    } else {
        let bad = || ApiError::invalid("page_token", "is not a token this server gave");
        let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        Some(text.strip_prefix("v1:").ok_or_else(bad)?.to_owned())
    };
    Ok(Page { after, size })
}

/// Cuts one page out of items ordered by id; returns it and the next page's token (empty on the
/// last page).
pub fn paginate<T>(items: Vec<T>, page: &Page, id: impl Fn(&T) -> &str) -> (Vec<T>, String) {
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| page.after.as_deref().is_none_or(|after| id(item) > after))
        .collect();
    let more = rest.len() > page.size;
    rest.truncate(page.size);
    let token = match rest.last() {
        Some(last) if more => URL_SAFE_NO_PAD.encode(format!("v1:{}", id(last))),
        _ => String::new(),
    };
    (rest, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(key: &'static str, value: &str) -> MetadataMap {
        let mut map = MetadataMap::new();
        map.insert(key, value.parse().unwrap());
        map
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        let cases = [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("250m", Some(Duration::from_millis(250))),
            ("7u", Some(Duration::from_micros(7))),
            ("99999999n", Some(Duration::from_nanos(99_999_999))),
            ("123456789S", None),
            ("5x", None),
            ("m", None),
            ("-5m", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                timeout_of(&metadata("grpc-timeout", text)),
                expected,
                "{text}"
            );
        }
        assert_eq!(timeout_of(&MetadataMap::new()), None);
    }

    #[test]
    fn the_budget_leaves_a_small_margin() {
        assert_eq!(budget(Duration::from_secs(10)), Duration::from_millis(9990));
        assert_eq!(budget(Duration::from_millis(50)), Duration::from_millis(45));
        assert_eq!(budget(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn pages_follow_each_other_and_tokens_are_checked() {
        let ids: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = page(3, &token).unwrap();
            let (items, next) = paginate(ids.clone(), &page, String::as_str);
            assert!(items.len() <= 3);
            seen.extend(items);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, ids);
        assert_eq!(page(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(page(5000, "").unwrap().size, MAX_PAGE_SIZE);
        assert!(page(-1, "").is_err());
        assert!(page(1, "not a token").is_err());
        assert!(page(1, &URL_SAFE_NO_PAD.encode("v2:x")).is_err());
    }

    #[test]
    fn idempotency_fingerprints_tell_requests_apart() {
        let request = confer_model::proto::EndCallRequest {
            call_id: "c1".into(),
        };
        let other = confer_model::proto::EndCallRequest {
            call_id: "c2".into(),
        };
        let map = metadata("idempotency-key", "k1");
        let a = idempotency_key(&map, "/confer.v1.CallService/EndCall", &request)
            .unwrap()
            .unwrap();
        let b = idempotency_key(&map, "/confer.v1.CallService/EndCall", &other)
            .unwrap()
            .unwrap();
        assert_eq!(a.key, "k1");
        assert_ne!(a.fingerprint, b.fingerprint);
        assert!(
            idempotency_key(&MetadataMap::new(), "m", &request)
                .unwrap()
                .is_none()
        );
        assert!(idempotency_key(&metadata("idempotency-key", " "), "m", &request).is_err());
    }
}
