//! A small long-polling Bayeux client over real HTTP, with the acknowledge extension: what the
//! Rust tests use to see exactly what the server sends (the official client is exercised by
//! `gws_official_client.rs`).

use std::time::Duration;

use serde_json::{Value, json};

/// One CometD session.
pub struct LongPoll {
    http: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    pub client_id: String,
    /// The last batch id received (the ack extension).
    ack: Option<u64>,
}

/// POSTs `messages` to `url` with `headers`; the reply array.
async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    messages: Value,
) -> Vec<Value> {
    let mut request = http.post(url).json(&messages);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("a CometD request");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON reply");
    assert!(status.is_success(), "CometD HTTP {status}: {body}");
    body.as_array().cloned().unwrap_or_default()
}

impl LongPoll {
    /// Handshakes at `url` (`.../api/v2/notifications`) with these request headers and
    /// handshake `ext`; the handshake reply on refusal.
    pub async fn handshake(url: &str, headers: &[(&str, &str)], ext: Value) -> Result<Self, Value> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let mut ext = ext;
        if let Some(map) = ext.as_object_mut() {
            map.insert("ack".into(), Value::Bool(true));
        }
        let reply = post(
            &http,
            &format!("{url}/handshake"),
            &headers,
            json!([{
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
                "ext": ext,
            }]),
        )
        .await;
        let reply = reply.into_iter().next().unwrap_or(Value::Null);
        if reply["successful"] != true {
            return Err(reply);
        }
        let mut session = Self {
            http,
            url: url.to_owned(),
            headers,
            client_id: reply["clientId"].as_str().expect("a clientId").to_owned(),
            ack: None,
        };
        // The first connect is answered at once; it sets the session going.
        let first = session.connect_raw(0).await;
        assert!(
            first
                .iter()
                .any(|m| m["channel"] == "/meta/connect" && m["successful"] == true),
            "{first:?}"
        );
        Ok(session)
    }

    /// Subscribes; the reply.
    pub async fn subscribe(&self, subscription: &str) -> Value {
        let reply = post(
            &self.http,
            &format!("{}/subscribe", self.url),
            &self.headers,
            json!([{
                "channel": "/meta/subscribe",
                "clientId": self.client_id,
                "subscription": subscription,
            }]),
        )
        .await;
        reply.into_iter().next().unwrap_or(Value::Null)
    }

    /// Publishes; the reply.
    pub async fn publish(&self, channel: &str, data: Value) -> Value {
        let reply = post(
            &self.http,
            &self.url,
            &self.headers,
            json!([{ "channel": channel, "clientId": self.client_id, "data": data }]),
        )
        .await;
        reply.into_iter().next().unwrap_or(Value::Null)
    }

    /// POSTs `messages` with `headers` instead of the session's own (someone else's request).
    pub async fn post_as(&self, headers: &[(&str, &str)], messages: Value) -> Vec<Value> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        post(&self.http, &self.url, &headers, messages).await
    }

    /// One connect held up to `hold_ms`: everything in the reply.
    pub async fn connect_once(&mut self, hold_ms: u64) -> Vec<Value> {
        self.connect_raw(hold_ms).await
    }

    /// One connect held up to `hold_ms`: everything in the reply.
    async fn connect_raw(&mut self, hold_ms: u64) -> Vec<Value> {
        let mut message = json!({
            "channel": "/meta/connect",
            "clientId": self.client_id,
            "connectionType": "long-polling",
            "advice": { "timeout": hold_ms },
        });
        if let Some(ack) = self.ack {
            message["ext"] = json!({ "ack": ack });
        }
        let reply = post(
            &self.http,
            &format!("{}/connect", self.url),
            &self.headers,
            json!([message]),
        )
        .await;
        for m in &reply {
            if m["channel"] == "/meta/connect"
                && let Some(batch) = m["ext"]["ack"].as_u64()
            {
                self.ack = Some(batch);
            }
        }
        reply
    }

    /// The delivered messages (`{channel, data}`) of connects until `count` arrived or `within`
    /// passed.
    pub async fn messages(&mut self, count: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < count {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let hold = u64::try_from(left.as_millis())
                .unwrap_or(u64::MAX)
                .min(5_000);
            for m in self.connect_raw(hold).await {
                if !m["channel"].as_str().unwrap_or("").starts_with("/meta/") {
                    got.push(m);
                }
            }
        }
        got
    }
}
