//! What the GWS tests share: servers (in process, or the `confer` binary), a REST client that
//! logs in the way GWS clients do (Basic, then the session cookie and the CSRF token), a
//! long-polling CometD client, the official CometD client under Node, a lossy TCP proxy, and
//! the comparison with the seed samples.

#![allow(dead_code)]

pub mod cometd;
// Each test binary includes this module and uses part of it.
#[allow(unused_imports)]
pub use confer_testkit::proxy;

/// The official CometD client's scripts for the GWS tests: `tests/gws_node`.
pub mod node {
    #[allow(unused_imports)]
    pub use confer_testkit::node::{Script, event, messages};

    pub fn dir() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("gws_node")
    }
}

use std::{path::PathBuf, time::Duration};

use confer::server::{RunningServer, start};
use confer_app::config::ServeArgs;
use reqwest::{Method, RequestBuilder, StatusCode, header::HeaderMap};
use serde_json::Value;

pub use confer_core::demo::{CHAT_ID, VOICE_CALL_ID};

/// Every demo user's password.
pub const PASSWORD: &str = "demo";
/// The chat seed's request body (seed 003).
pub const CHAT_REMOVAL: &str = r#"{"operationName":"RemoveParticipantFromConference","targetUri":"http://10.10.15.212:9090/api/v2/users/c30d06daa1ea43b8be79f9b071f30d70"}"#;
/// The voice seed's request body (seed 000).
pub const VOICE_REMOVAL: &str =
    r#"{"operationName":"RemoveParticipantFromConference","participant":"15001"}"#;

/// A demo user's id.
pub fn user_id(username: &str) -> &'static str {
    confer_core::demo::demo_user(username)
        .map(|user| user.user_id)
        .unwrap_or_else(|| panic!("{username} is not a demo user"))
}

/// `Basic <base64(username:demo)>`.
pub fn basic(username: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{username}:{PASSWORD}");
    let mut out = String::new();
    for chunk in input.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// A demo user's device id.
pub fn device_id(username: &str) -> &'static str {
    confer_core::demo::demo_user(username)
        .and_then(|user| user.device_id)
        .unwrap_or_else(|| panic!("{username} has no device"))
}

/// An in-process server with the demo world on ephemeral ports, with its own data directory.
pub struct Server {
    pub running: Option<RunningServer>,
    pub base: String,
    _data: tempfile::TempDir,
}

impl Server {
    pub async fn start(csrf: bool) -> Self {
        let data = tempfile::tempdir().expect("a temporary directory");
        let config = ServeArgs {
            listen: Some("127.0.0.1:0".parse().expect("an address")),
            grpc_listen: Some("127.0.0.1:0".parse().expect("an address")),
            data_dir: Some(data.path().to_path_buf()),
            demo: Some(true),
            csrf: Some(csrf),
            ..ServeArgs::default()
        }
        .resolve()
        .expect("a valid config");
        let running = start(config).await.expect("the server starts");
        let base = format!("http://{}", running.rest_addr);
        Self {
            running: Some(running),
            base,
            _data: data,
        }
    }

    pub fn gws(&self) -> Gws {
        Gws::new(&self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stopping needs the runtime; a test that wants a clean stop calls `stop`.
        drop(self.running.take());
    }
}

impl Server {
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), running.shutdown()).await;
        }
    }
}

/// A logged-in user: the session cookie and its CSRF token, as `GET /api/v2/me` gave them.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    /// `JSESSIONID=...`, ready for a `Cookie` header.
    pub cookie: String,
    pub csrf: String,
}

/// A reply: HTTP status, headers, JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the reply ({status}) is not JSON ({e}): {text:?}"));
        Self {
            status,
            headers,
            body,
        }
    }

    /// `(HTTP status, statusCode)`.
    pub fn codes(&self) -> (u16, i64) {
        (
            self.status.as_u16(),
            self.body["statusCode"].as_i64().unwrap_or(-1),
        )
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A GWS REST client.
#[derive(Clone)]
pub struct Gws {
    pub base: String,
    pub http: reqwest::Client,
}

impl Gws {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The CometD URL.
    pub fn notifications(&self) -> String {
        self.url("/api/v2/notifications")
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// `GET /api/v2/me` with Basic credentials: the session cookie and the CSRF token.
    pub async fn login(&self, username: &str) -> Login {
        let reply = Reply::of(
            self.request(Method::GET, "/api/v2/me")
                .basic_auth(username, Some(PASSWORD))
                .send()
                .await
                .expect("GET /api/v2/me"),
        )
        .await;
        assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);
        let cookie = reply
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.split(';').next().filter(|c| c.starts_with("JSESSIONID=")))
            .expect("a JSESSIONID cookie")
            .to_owned();
        let csrf = reply
            .header("x-csrf-token")
            .map(str::to_owned)
            .unwrap_or_default();
        Login {
            username: username.to_owned(),
            cookie,
            csrf,
        }
    }

    /// A GET with the session cookie.
    pub async fn get(&self, login: &Login, path: &str) -> Reply {
        Reply::of(
            self.request(Method::GET, path)
                .header("Cookie", &login.cookie)
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    /// A POST as a GWS client sends it: session cookie, CSRF header, JSON body.
    pub async fn post(&self, login: &Login, path: &str, body: &str) -> Reply {
        self.post_with(login, path, body, &[]).await
    }

    pub async fn post_with(
        &self,
        login: &Login,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .request(Method::POST, path)
            .header("Cookie", &login.cookie)
            .header("X-CSRF-TOKEN", &login.csrf)
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::of(request.send().await.expect("POST")).await
    }

    /// The Prometheus exposition.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of one sample line of `/metrics` (0 when absent).
    pub async fn metric(&self, line_start: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .find_map(|line| {
                line.strip_prefix(line_start)
                    .and_then(|rest| rest.trim().split(' ').next())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0.0)
    }
}

/// A seed sample from `spec/samples`.
pub fn sample(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../spec/samples")
        .join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).expect("samples are JSON")
}

/// The fields the issue calls volatile: `duration`, timestamps and `referenceId` values. Their
/// presence and type are checked; their values are replaced so that the rest compares exactly.
const VOLATILE: [&str; 4] = ["duration", "timestamp", "timestampSeconds", "referenceId"];

/// Hosts that stand for "this server" in the seeds (and the server's own).
fn host_of(text: &str, own: &str) -> Option<usize> {
    ["http://127.0.0.1:8080", "http://10.10.15.212:9090", own]
        .iter()
        .filter(|host| text.starts_with(*host))
        .map(|host| host.len())
        .next()
}

/// `value` with the volatile fields redacted and every URI's host replaced by `http://HOST`.
pub fn normalize(value: &Value, own_base: &str) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, inner)| {
                    let inner = if VOLATILE.contains(&key.as_str()) {
                        let ok = match key.as_str() {
                            "duration" => inner.as_str().is_some_and(|d| d.parse::<u64>().is_ok()),
                            "timestamp" => inner.as_str().is_some_and(|t| t.len() >= 24),
                            _ => inner.is_i64(),
                        };
                        assert!(ok, "volatile field {key} has an unexpected value: {inner}");
                        Value::String(format!("[{key}]"))
                    } else {
                        normalize(inner, own_base)
                    };
                    (key.clone(), inner)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalize(v, own_base)).collect()),
        Value::String(text) => match host_of(text, own_base) {
            Some(len) => Value::String(format!("http://HOST{}", &text[len..])),
            None => value.clone(),
        },
        other => other.clone(),
    }
}

/// Asserts that what the server sent equals the seed sample, volatile fields aside; shows both
/// in full when not.
pub fn assert_matches_sample(sent: &Value, sample_path: &str, own_base: &str) {
    let expected = normalize(&sample(sample_path), own_base);
    let actual = normalize(sent, own_base);
    assert!(
        actual == expected,
        "{sample_path} differs from what the server sent (volatile fields redacted)\n\
         expected: {}\n\
         actual:   {}",
        serde_json::to_string_pretty(&expected).unwrap_or_default(),
        serde_json::to_string_pretty(&actual).unwrap_or_default(),
    );
}

/// Waits until `cond` holds, polling; panics after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
