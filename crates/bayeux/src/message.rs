//! Bayeux messages on the wire: what clients send, what the server replies.
//!
//! Incoming messages are parsed leniently (unknown fields ignored, `id` kept
//! as whatever JSON the client sent so it can be echoed exactly). Replies are
//! serialized once each; delivered messages are already encoded in the log
//! entry and are spliced into the reply array as they are
//! (see [`ReplyBuf`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{BayeuxError, RequestError};

/// Bayeux protocol version this server speaks.
pub const BAYEUX_VERSION: &str = "1.0";

/// Meta channel names.
pub mod meta {
    /// `/meta/handshake`
    pub const HANDSHAKE: &str = "/meta/handshake";
    /// `/meta/connect`
    pub const CONNECT: &str = "/meta/connect";
    /// `/meta/subscribe`
    pub const SUBSCRIBE: &str = "/meta/subscribe";
    /// `/meta/unsubscribe`
    pub const UNSUBSCRIBE: &str = "/meta/unsubscribe";
    /// `/meta/disconnect`
    pub const DISCONNECT: &str = "/meta/disconnect";
}

/// A message received from a client.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The channel; required.
    pub channel: String,
    /// Echoed verbatim in the reply (string or number).
    #[serde(default)]
    pub id: Option<Value>,
    /// The session, for everything but the handshake.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Payload of a publish.
    #[serde(default)]
    pub data: Option<Value>,
    /// Extension fields (`ack`, authentication tokens, ...).
    #[serde(default)]
    pub ext: Option<Value>,
    /// Client advice (`timeout` on the first connect).
    #[serde(default)]
    pub advice: Option<Value>,
    /// Subscribe/unsubscribe: a pattern or an array of patterns.
    #[serde(default)]
    pub subscription: Option<Value>,
    /// Connect: the transport in use.
    #[serde(default)]
    pub connection_type: Option<String>,
    /// Handshake: transports the client can use.
    #[serde(default)]
    pub supported_connection_types: Option<Vec<String>>,
    /// Handshake: protocol version.
    #[serde(default)]
    pub version: Option<String>,
}

impl Message {
    /// `ext.<key>` if present.
    pub fn ext_field(&self, key: &str) -> Option<&Value> {
        self.ext.as_ref()?.get(key)
    }

    /// `advice.timeout` as milliseconds, if the client sent a usable one.
    pub fn advice_timeout_ms(&self) -> Option<u64> {
        self.advice.as_ref()?.get("timeout")?.as_u64()
    }
}

/// One parsed element of a request: a message, or an error reply for an
/// element that could not be understood (the rest of the batch still runs).
pub type Parsed = Result<Message, Box<Reply>>;

/// Parses a request body: an array of messages or a single message object.
pub fn parse_messages(body: &[u8], max_messages: usize) -> Result<Vec<Parsed>, RequestError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        _ => {
            return Err(RequestError::InvalidJson(
                "expected an object or an array".into(),
            ));
        }
    };
    if items.is_empty() {
        return Err(RequestError::Empty);
    }
    if items.len() > max_messages {
        return Err(RequestError::TooManyMessages {
            count: items.len(),
            max: max_messages,
        });
    }
    Ok(items.into_iter().map(parse_one).collect())
}

fn parse_one(item: Value) -> Parsed {
    // Keep channel and id, if readable, so the error reply can be matched by the client.
    let channel = item
        .get("channel")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let id = item.get("id").cloned();
    serde_json::from_value::<Message>(item).map_err(|e| {
        let mut reply = Reply::new(if channel.is_empty() {
            "/meta/unknown"
        } else {
            &channel
        });
        reply.id = id;
        reply.fail(&BayeuxError::new(
            400,
            format!("bad message ({e})").replace(':', " "),
        ));
        Box::new(reply)
    })
}

/// What the server advises a client to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Advice {
    /// `retry`, `handshake` or `none`.
    pub reconnect: Reconnect,
    /// Milliseconds to wait before the next connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    /// Milliseconds the server holds a connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// The `advice.reconnect` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reconnect {
    /// Connect again (after `interval`).
    Retry,
    /// The session is gone: handshake again.
    Handshake,
    /// Stop.
    None,
}

impl Advice {
    /// `{reconnect: "handshake", interval: 0}`: what an unknown session gets.
    pub fn handshake() -> Self {
        Self {
            reconnect: Reconnect::Handshake,
            interval: Some(0),
            timeout: None,
        }
    }

    /// `{reconnect: "none"}`.
    pub fn none() -> Self {
        Self {
            reconnect: Reconnect::None,
            interval: None,
            timeout: None,
        }
    }
}

/// A reply to one client message (a meta reply or a publish acknowledgement).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    /// Channel of the request.
    pub channel: String,
    /// The request's id, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Whether the request succeeded.
    pub successful: bool,
    /// `code:args:message` when not successful.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Subscribe/unsubscribe: the pattern(s), echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Value>,
    /// Handshake: protocol version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    /// Handshake: the server's transports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_connection_types: Option<Vec<&'static str>>,
    /// Advice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<Advice>,
    /// Extensions (`ack`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ext: Option<Value>,
}

impl Reply {
    /// A successful reply on `channel`; callers fill the rest.
    pub fn new(channel: &str) -> Self {
        Self {
            channel: channel.to_owned(),
            id: None,
            client_id: None,
            successful: true,
            error: None,
            subscription: None,
            version: None,
            supported_connection_types: None,
            advice: None,
            ext: None,
        }
    }

    /// A reply to `msg` (channel, id and clientId echoed).
    pub fn to(msg: &Message) -> Self {
        let mut r = Self::new(&msg.channel);
        r.id = msg.id.clone();
        r.client_id = msg.client_id.clone();
        r
    }

    /// Marks the reply unsuccessful with `error`.
    pub fn fail(&mut self, error: &BayeuxError) -> &mut Self {
        self.successful = false;
        self.error = Some(error.to_string());
        self
    }

    /// Builder form of [`Reply::fail`].
    pub fn failed(mut self, error: &BayeuxError) -> Self {
        self.fail(error);
        self
    }

    /// Builder: sets the advice.
    pub fn with_advice(mut self, advice: Advice) -> Self {
        self.advice = Some(advice);
        self
    }

    /// Serializes the reply. A reply only holds strings, numbers and JSON
    /// values that were themselves parsed, so this cannot fail in practice;
    /// should it, a generic error object is sent rather than panicking.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"channel":"/meta/unknown","successful":false,"error":"500::encoding failed"}"#
                .to_owned()
        })
    }
}

/// The pieces of one reply array: replies serialized here, and delivered
/// messages shared with the log (serialized once, whoever receives them).
#[derive(Debug, Default)]
pub struct ReplyBuf {
    pieces: Vec<Piece>,
}

#[derive(Debug)]
enum Piece {
    Owned(String),
    Shared(Arc<str>),
}

impl ReplyBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a reply.
    pub fn push_reply(&mut self, reply: &Reply) {
        self.pieces.push(Piece::Owned(reply.encode()));
    }

    /// Appends an already encoded message (a log entry's wire form).
    pub fn push_encoded(&mut self, encoded: Arc<str>) {
        self.pieces.push(Piece::Shared(encoded));
    }

    /// Appends everything from `other`.
    pub fn append(&mut self, other: ReplyBuf) {
        self.pieces.extend(other.pieces);
    }

    /// Number of messages in the buffer.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether no message is in the buffer.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The JSON array text: each piece copied once into the output.
    pub fn to_json_array(&self) -> String {
        let len: usize = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Owned(s) => s.len(),
                Piece::Shared(s) => s.len(),
            })
            .sum();
        let mut out = String::with_capacity(len + self.pieces.len() + 2);
        out.push('[');
        for (i, p) in self.pieces.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(match p {
                Piece::Owned(s) => s,
                Piece::Shared(s) => s,
            });
        }
        out.push(']');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_array_and_single_object() {
        let a = parse_messages(br#"[{"channel":"/meta/connect","id":"1"}]"#, 10).unwrap();
        assert_eq!(a.len(), 1);
        let o = parse_messages(br#"{"channel":"/meta/connect","id":2}"#, 10).unwrap();
        let m = o[0].as_ref().unwrap();
        assert_eq!(m.id, Some(Value::from(2)));
    }

    #[test]
    fn rejects_garbage_and_limits() {
        assert!(matches!(
            parse_messages(b"{nope", 10),
            Err(RequestError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_messages(b"42", 10),
            Err(RequestError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_messages(b"[]", 10),
            Err(RequestError::Empty)
        ));
        let many = format!("[{}]", [r#"{"channel":"/a"}"#; 3].join(","));
        assert!(matches!(
            parse_messages(many.as_bytes(), 2),
            Err(RequestError::TooManyMessages { count: 3, max: 2 })
        ));
    }

    #[test]
    fn a_bad_element_becomes_an_error_reply_with_its_id() {
        let parsed = parse_messages(
            br#"[{"channel":"/meta/connect","id":"7","clientId":5}, 3]"#,
            10,
        )
        .unwrap();
        let r = parsed[0].as_ref().unwrap_err();
        assert_eq!(r.id, Some(Value::from("7")));
        assert!(!r.successful);
        assert!(r.error.as_deref().unwrap().starts_with("400:"));
        assert!(parsed[1].is_err());
    }

    #[test]
    fn error_format_is_code_args_message() {
        let e = BayeuxError::with_arg(403, "/foo", "denied");
        assert_eq!(e.to_string(), "403:/foo:denied");
        assert_eq!(
            BayeuxError::session_unknown().to_string(),
            "402::session_unknown"
        );
    }

    #[test]
    fn reply_buf_splices_pieces() {
        let mut b = ReplyBuf::new();
        b.push_encoded(Arc::from(r#"{"channel":"/a","data":1}"#));
        let mut r = Reply::new("/meta/connect");
        r.id = Some(Value::from("3"));
        b.push_reply(&r);
        let v: Value = serde_json::from_str(&b.to_json_array()).unwrap();
        assert_eq!(v[0]["data"], 1);
        assert_eq!(v[1]["id"], "3");
        assert_eq!(v[1]["successful"], true);
        assert!(v[1].get("error").is_none());
    }
}
