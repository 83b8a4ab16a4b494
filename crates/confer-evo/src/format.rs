//! ServiceStack content negotiation: which format a reply is written in, and how a request body
//! is read.
//!
//! The reply format is, in this order of precedence:
//! 1. a `.json` / `.jsv` suffix on the path (`/sessions/demo-session.jsv`);
//! 2. the `format` query parameter (`?format=json` or `?format=jsv`, any case);
//! 3. the `Accept` header: the supported type with the highest `q` (`application/json`,
//!    `text/json`, `text/jsv`, `application/jsv`; `*/*` and `application/*` mean JSON);
//! 4. JSON.
//!
//! A `format` naming anything else is a 400 (a client that asks for XML must not get JSON it
//! cannot read by surprise); an `Accept` header naming only unsupported types gets JSON, the
//! default, as ServiceStack clients send `Accept` lists with types they merely tolerate.
//!
//! A request body is read by its `Content-Type`: JSON (`application/json`, `text/json`, or no
//! `Content-Type` at all), JSV (`text/jsv`, `application/jsv`) or a form
//! (`application/x-www-form-urlencoded`).

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::EvoError;

/// A wire format Evo clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Jsv,
}

/// The `Content-Type` of a JSV reply, as the seed shows it.
pub const JSV_CONTENT_TYPE: &str = "text/jsv; charset=utf-8";
/// The `Content-Type` of a JSON reply.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

impl Format {
    /// The format a path suffix names (`.json`, `.jsv`), if the path has one.
    pub fn of_suffix(path: &str) -> Option<Self> {
        if path.ends_with(".json") {
            Some(Format::Json)
        } else if path.ends_with(".jsv") {
            Some(Format::Jsv)
        } else {
            None
        }
    }

    /// The suffix that selects this format.
    pub fn suffix(self) -> &'static str {
        match self {
            Format::Json => ".json",
            Format::Jsv => ".jsv",
        }
    }

    /// The format a `?format=` value names.
    pub fn of_name(name: &str) -> Option<Self> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else if name.eq_ignore_ascii_case("jsv") {
            Some(Format::Jsv)
        } else {
            None
        }
    }

    /// The format a media type (without parameters) names.
    fn of_media_type(media_type: &str) -> Option<Self> {
        let media_type = media_type.trim().to_ascii_lowercase();
        match media_type.as_str() {
            "application/json" | "text/json" | "*/*" | "application/*" => Some(Format::Json),
            "text/jsv" | "application/jsv" => Some(Format::Jsv),
            _ => None,
        }
    }

    /// The best format an `Accept` header allows: the supported type with the highest `q`, the
    /// first one listed among equals; `None` when it names no supported type.
    pub fn of_accept(accept: &str) -> Option<Self> {
        let mut best: Option<(Format, u32)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let Some(format) = parts.next().and_then(Format::of_media_type) else {
                continue;
            };
            let quality = parts
                .filter_map(|parameter| parameter.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(1000, |(_, value)| quality_per_mille(value));
            if quality == 0 {
                continue;
            }
            if best.is_none_or(|(_, best_quality)| quality > best_quality) {
                best = Some((format, quality));
            }
        }
        best.map(|(format, _)| format)
    }

    /// Negotiates the reply format of a request.
    ///
    /// # Errors
    ///
    /// A `format` query parameter that names no supported format.
    pub fn negotiate(
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Self, EvoError> {
        if let Some(format) = Format::of_suffix(path) {
            return Ok(format);
        }
        if let Some(value) = query_value(query, "format") {
            return Format::of_name(&value).ok_or_else(|| EvoError::BadParameter {
                field: "format",
                message: format!("format '{value}' is not supported: use json or jsv"),
            });
        }
        Ok(headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(Format::of_accept)
            .unwrap_or_default())
    }

    /// The `Content-Type` of a reply in this format.
    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Format::Json => JSON_CONTENT_TYPE,
            Format::Jsv => JSV_CONTENT_TYPE,
        })
    }

    /// Writes `value` in this format.
    ///
    /// # Errors
    ///
    /// When the value cannot be written (never for the wire types of this crate, which hold
    /// only strings, booleans, integers, lists and string maps).
    pub fn write<T: Serialize>(self, value: &T) -> Result<Vec<u8>, EvoError> {
        match self {
            Format::Json => serde_json::to_vec(value).map_err(|e| EvoError::Internal(e.into())),
            Format::Jsv => jsv::to_string(value)
                .map(String::into_bytes)
                .map_err(|e| EvoError::Internal(e.into())),
        }
    }
}

/// A `q` value (`0.8`) in thousandths; malformed values count as 1, as if absent.
fn quality_per_mille(value: &str) -> u32 {
    match value.trim().parse::<f64>() {
        Ok(q) if (0.0..=1.0).contains(&q) => (q * 1000.0).round() as u32,
        _ => 1000,
    }
}

/// The last value of a query parameter, its name compared ignoring case (ServiceStack binds
/// query parameters to request properties that way); `None` when absent or unreadable.
pub fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs
        .into_iter()
        .rev()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// Removes the `.json` / `.jsv` suffix that selected the format from the last path parameter:
/// only when the (undecoded) request path ends with that suffix, so an id whose `.json` is
/// percent-encoded (`a%2Ejson`) keeps it.
pub fn strip_format_suffix(raw_path: &str, last_parameter: String) -> String {
    match Format::of_suffix(raw_path) {
        Some(format) => match last_parameter.strip_suffix(format.suffix()) {
            Some(stripped) => stripped.to_owned(),
            None => last_parameter,
        },
        None => last_parameter,
    }
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Jsv,
    Form,
}

impl BodyFormat {
    /// The body format a `Content-Type` names; JSON when there is none.
    ///
    /// # Errors
    ///
    /// A `Content-Type` this service does not read.
    pub fn of_headers(headers: &HeaderMap) -> Result<Self, EvoError> {
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            return Ok(BodyFormat::Json);
        };
        let text = value
            .to_str()
            .map_err(|_| EvoError::UnsupportedMediaType("(not text)".to_owned()))?;
        let media_type = text
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            "application/json" | "text/json" | "" => Ok(BodyFormat::Json),
            "text/jsv" | "application/jsv" => Ok(BodyFormat::Jsv),
            "application/x-www-form-urlencoded" => Ok(BodyFormat::Form),
            _ => Err(EvoError::UnsupportedMediaType(media_type)),
        }
    }

    /// Reads a request DTO; an empty body is the DTO with every field absent.
    ///
    /// # Errors
    ///
    /// A body that is not well-formed or does not fit `T` (400, `SerializationException`).
    pub fn read<T: DeserializeOwned + Default>(self, body: &[u8]) -> Result<T, EvoError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        match self {
            BodyFormat::Json => {
                serde_json::from_slice(body).map_err(|error| EvoError::Unreadable {
                    field: None,
                    message: format!("the JSON body does not read: {error}"),
                })
            }
            BodyFormat::Jsv => jsv::from_slice(body).map_err(|error| EvoError::Unreadable {
                field: error.path().map(str::to_owned),
                message: format!("the JSV body does not read: {error}"),
            }),
            BodyFormat::Form => {
                serde_urlencoded::from_bytes(body).map_err(|error| EvoError::Unreadable {
                    field: None,
                    message: format!("the form body does not read: {error}"),
                })
            }
        }
    }
}

/// The reply format of a request, as an extractor. A bad `?format=` is refused here, in the
/// format the `Accept` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated(pub Format);

impl<S: Send + Sync> FromRequestParts<S> for Negotiated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Format::negotiate(parts.uri.path(), parts.uri.query(), &parts.headers)
            .map(Negotiated)
            .map_err(|error| {
                let fallback =
                    Format::negotiate(parts.uri.path(), None, &parts.headers).unwrap_or_default();
                error.render(fallback).into_response()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn suffix_beats_query_beats_accept_beats_default() {
        let jsv = headers(&[("accept", "text/jsv")]);
        assert_eq!(
            Format::negotiate("/sessions/x.json", Some("format=jsv"), &jsv).unwrap(),
            Format::Json
        );
        assert_eq!(
            Format::negotiate("/sessions/x", Some("format=JSON"), &jsv).unwrap(),
            Format::Json
        );
        assert_eq!(
            Format::negotiate("/sessions/x", None, &jsv).unwrap(),
            Format::Jsv
        );
        assert_eq!(
            Format::negotiate("/sessions/x", None, &HeaderMap::new()).unwrap(),
            Format::Json
        );
        assert!(Format::negotiate("/sessions/x", Some("format=xml"), &jsv).is_err());
    }

    #[test]
    fn accept_lists_are_weighed() {
        assert_eq!(Format::of_accept("application/jsv"), Some(Format::Jsv));
        assert_eq!(
            Format::of_accept("text/html, application/json;q=0.5, text/jsv;q=0.9"),
            Some(Format::Jsv)
        );
        assert_eq!(
            Format::of_accept("text/jsv;q=0, */*;q=0.1"),
            Some(Format::Json)
        );
        assert_eq!(Format::of_accept("text/html"), None);
        assert_eq!(
            Format::of_accept("TEXT/JSV; charset=utf-8"),
            Some(Format::Jsv)
        );
        assert_eq!(Format::of_accept("text/jsv;q=banana"), Some(Format::Jsv));
    }

    #[test]
    fn suffixes_leave_parameters_only_when_the_raw_path_has_them() {
        assert_eq!(strip_format_suffix("/s/m3.jsv", "m3.jsv".into()), "m3");
        assert_eq!(
            strip_format_suffix("/s/m3%2Ejsv", "m3.jsv".into()),
            "m3.jsv"
        );
        assert_eq!(strip_format_suffix("/s/m3", "m3".into()), "m3");
    }

    #[test]
    fn query_values_ignore_name_case_and_decode() {
        assert_eq!(
            query_value(Some("MemberToRemove=%2B15550101&x=1"), "memberToRemove").as_deref(),
            Some("+15550101")
        );
        assert_eq!(query_value(Some("a=1"), "b"), None);
        assert_eq!(query_value(None, "b"), None);
    }

    #[test]
    fn bodies_are_read_by_content_type() {
        assert_eq!(
            BodyFormat::of_headers(&HeaderMap::new()).unwrap(),
            BodyFormat::Json
        );
        assert_eq!(
            BodyFormat::of_headers(&headers(&[("content-type", "text/jsv")])).unwrap(),
            BodyFormat::Jsv
        );
        assert_eq!(
            BodyFormat::of_headers(&headers(&[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8"
            )]))
            .unwrap(),
            BodyFormat::Form
        );
        assert!(BodyFormat::of_headers(&headers(&[("content-type", "text/xml")])).is_err());
    }
}
