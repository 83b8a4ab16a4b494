//! Writing replies and reading request bodies and `Idempotency-Key`s.

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use confer_app::engine::IdempotencyKey;
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::{
    error::EvoError,
    format::{BodyFormat, Format},
};

/// The largest request body read: a `NewSession` with a few hundred members fits; more is a
/// client bug or an attack, refused with 413 before it is buffered.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The longest `Idempotency-Key` accepted.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

/// A success: `value` in `format`.
///
/// # Errors
///
/// When the value cannot be written (not for this crate's wire types).
pub fn reply<T: Serialize>(
    format: Format,
    status: StatusCode,
    value: &T,
) -> Result<Response, EvoError> {
    let body = format.write(value)?;
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, format.content_type());
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

/// The request body as `T`, read in `body_format`, at most [`BODY_LIMIT`] bytes.
///
/// # Errors
///
/// 413 over the limit, 400 when the body does not read as `T`.
pub async fn read_body<T: DeserializeOwned + Default>(
    body_format: BodyFormat,
    body: Body,
) -> Result<T, EvoError> {
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|error| {
            if is_length_limit(&error) {
                EvoError::PayloadTooLarge { limit: BODY_LIMIT }
            } else {
                // The client went away or sent a broken chunked body.
                EvoError::Unreadable {
                    field: None,
                    message: format!("the request body could not be read: {error}"),
                }
            }
        })?;
    body_format.read(&bytes)
}

/// Whether reading a body failed because it was over the limit.
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

/// The request's `Idempotency-Key`, with the fingerprint of the request it belongs to: the
/// method, the route with its ids (without a format suffix: the same request asked in JSON and
/// in JSV is one request) and the request DTO as canonical JSON (so a JSON body and the same
/// body in JSV are one request too).
///
/// # Errors
///
/// 400 for a key that is empty, longer than [`IDEMPOTENCY_KEY_MAX`] or not visible ASCII.
pub fn idempotency_key<T: Serialize>(
    headers: &HeaderMap,
    method: &str,
    route: &str,
    request: &T,
) -> Result<Option<IdempotencyKey>, EvoError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = || EvoError::BadParameter {
        field: "Idempotency-Key",
        message: format!(
            "the Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"
        ),
    };
    let key = value.to_str().map_err(|_| invalid())?.trim();
    if key.is_empty()
        || key.len() > IDEMPOTENCY_KEY_MAX
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid());
    }
    let canonical = serde_json::to_string(request).map_err(|e| EvoError::Internal(e.into()))?;
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update(b"\n");
    hash.update(route.as_bytes());
    hash.update(b"\n");
    hash.update(canonical.as_bytes());
    let fingerprint = hash
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<String>();
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        fingerprint: format!("evo:{fingerprint}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_follow_the_request_not_its_encoding() {
        let mut headers = HeaderMap::new();
        headers.insert("idempotency-key", HeaderValue::from_static("k1"));
        let a = idempotency_key(&headers, "DELETE", "/sessions/s/members/m3", &("m3", 1))
            .unwrap()
            .unwrap();
        let b = idempotency_key(&headers, "DELETE", "/sessions/s/members/m3", &("m3", 1))
            .unwrap()
            .unwrap();
        let c = idempotency_key(&headers, "DELETE", "/sessions/s/members/m2", &("m2", 1))
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a.key, "k1");
        assert!(
            idempotency_key(&HeaderMap::new(), "DELETE", "/", &())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        for bad in ["", "   ", "a b"] {
            let mut headers = HeaderMap::new();
            headers.insert("idempotency-key", HeaderValue::from_str(bad).unwrap());
            assert!(
                idempotency_key(&headers, "POST", "/", &()).is_err(),
                "{bad:?}"
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            "idempotency-key",
            HeaderValue::from_str(&"k".repeat(IDEMPOTENCY_KEY_MAX + 1)).unwrap(),
        );
        assert!(idempotency_key(&headers, "POST", "/", &()).is_err());
    }
}
