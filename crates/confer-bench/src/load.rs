//! The load generator: a fixed number of keep-alive connections, each sending its planned
//! requests one at a time (closed loop), or on a fixed schedule (open loop, for "p99 at a given
//! rate"), bounded by the number of planned requests *and* by time. HTTP/1.1 for REST, HTTP/2
//! with gRPC framing for gRPC; the same code drives Confer and the bare baselines, so only the
//! server differs between two runs.
//!
//! Latency is recorded in microseconds in an HDR histogram. In open loop it is measured from
//! the request's *scheduled* time, so a slow reply that delays the next requests counts against
//! them too (no coordinated omission).

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, header};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// Errors kept verbatim to explain a failed run (the rest are only counted).
const ERRORS_KEPT: usize = 5;
/// Highest latency the histogram records: 60 s, in µs.
const MAX_LATENCY_US: u64 = 60_000_000;

/// How requests travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1, one request at a time per connection (REST).
    Http1,
    /// HTTP/2 with gRPC framing, one stream at a time per connection.
    Grpc,
}

/// One request of a plan.
#[derive(Debug, Clone)]
pub struct PlannedRequest {
    /// Path and query (`/api/v2/me/calls/ID`, `/confer.v1.CallService/RemoveCallParticipant`).
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What counts as a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// HTTP: a 2xx status and exactly this body. gRPC: `grpc-status: 0` (the body is not checked).
    Body(Bytes),
    /// Any 2xx status (and `grpc-status: 0` for gRPC).
    Success,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub protocol: Protocol,
    /// Connection `c` goes to `targets[c % targets.len()]`.
    pub targets: Vec<SocketAddr>,
    /// Requests completed in this first stretch are not recorded (connections warm up, the
    /// server's caches fill).
    pub warmup: Duration,
    /// Measured time after the warmup; no request is sent after it.
    pub duration: Duration,
    /// `None`: closed loop. `Some(r)`: open loop at `r` requests/s over all connections.
    pub rate_per_s: Option<f64>,
    /// A request that takes longer is an error (and ends its connection).
    pub request_timeout: Duration,
    pub expect: Expect,
    /// `None`: each connection sends its planned requests once. `Some(n)`: it cycles through
    /// them up to `n` requests (for a baseline server, which does not look at the requests and
    /// answers far more than the plan holds); the time bound still applies.
    pub repeat_up_to: Option<usize>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub connections: usize,
    /// Successful requests in the measured window.
    pub measured: u64,
    /// Successful requests during the warmup.
    pub warmup_ok: u64,
    /// Failed requests (non-2xx, wrong body, gRPC error, transport error, timeout), warmup
    /// included: any error fails the run.
    pub errors: u64,
    /// The first few errors, verbatim.
    pub error_samples: Vec<String>,
    /// The measured window: from the end of the warmup to the last measured completion.
    pub window: Duration,
    /// Latency of the measured requests, µs.
    pub histogram: Histogram<u64>,
    /// Planned requests never sent because the time bound came first.
    pub unsent: u64,
    /// Some connection ran out of planned requests before the time bound.
    pub exhausted: bool,
}

impl LoadResult {
    pub fn ops_per_s(&self) -> f64 {
        if self.window.is_zero() {
            return 0.0;
        }
        self.measured as f64 / self.window.as_secs_f64()
    }

    /// Latency quantile (0.0..=1.0) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn ok(&self) -> bool {
        self.errors == 0 && self.measured > 0
    }

    /// `"ok"`, or `"failed: ..."` with the errors.
    pub fn outcome(&self) -> String {
        if self.errors > 0 {
            format!(
                "failed: {} errors, first: {}",
                self.errors,
                self.error_samples.join(" | ")
            )
        } else if self.measured == 0 {
            "failed: no request completed in the measured window".to_owned()
        } else {
            "ok".to_owned()
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits between 1 µs and 60 s: constant arguments that are always valid.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap_or_else(|_| unreachable!())
}

/// One connection's sender, for either protocol.
enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// Opens one keep-alive connection (TCP_NODELAY, as every client of a request/reply API should).
async fn connect(protocol: Protocol, addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
    Ok(match protocol {
        Protocol::Http1 => {
            let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(connection);
            Sender::Http1(sender)
        }
        Protocol::Grpc => {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            Sender::Http2(sender)
        }
    })
}

fn build(
    protocol: Protocol,
    addr: SocketAddr,
    planned: &PlannedRequest,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let uri = match protocol {
        // HTTP/1.1 sends the path; the Host header carries the authority.
        Protocol::Http1 => planned.path.clone(),
        // HTTP/2 carries scheme and authority as pseudo-headers, taken from the URI.
        Protocol::Grpc => format!("http://{addr}{}", planned.path),
    };
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .body(Full::new(planned.body.clone()))?;
    *request.headers_mut() = planned.headers.clone();
    if protocol == Protocol::Http1 {
        request
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_str(&addr.to_string())?);
    }
    Ok(request)
}

/// A reply, read to its end.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: HeaderMap,
}

async fn read(response: Response<Incoming>) -> anyhow::Result<Reply> {
    let (parts, body) = response.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    })
}

async fn send(sender: &mut Sender, request: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
    let response = match sender {
        Sender::Http1(s) => {
            s.ready().await?;
            s.send_request(request).await?
        }
        Sender::Http2(s) => {
            s.ready().await?;
            s.send_request(request).await?
        }
    };
    read(response).await
}

/// `None` when the reply is a success, else why not.
fn judge(protocol: Protocol, expect: &Expect, reply: &Reply) -> Option<String> {
    if !(200..300).contains(&reply.status) {
        return Some(format!(
            "HTTP {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    if protocol == Protocol::Grpc {
        // A trailers-only reply carries grpc-status in its headers.
        let status = reply
            .trailers
            .get("grpc-status")
            .or_else(|| reply.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok());
        return match status {
            Some("0") => None,
            other => {
                let message = reply
                    .trailers
                    .get("grpc-message")
                    .or_else(|| reply.headers.get("grpc-message"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                Some(format!("grpc-status {other:?}: {message}"))
            }
        };
    }
    match expect {
        Expect::Body(body) if reply.body != *body => Some(format!(
            "HTTP {} with body {} (expected {})",
            reply.status,
            String::from_utf8_lossy(&reply.body),
            String::from_utf8_lossy(body)
        )),
        _ => None,
    }
}

/// Sends one request on a fresh connection and returns the reply as read (for measuring the
/// real reply before a baseline copies it, and for logins).
pub async fn request_once(
    protocol: Protocol,
    addr: SocketAddr,
    method: Method,
    planned: &PlannedRequest,
) -> anyhow::Result<Reply> {
    let mut sender = connect(protocol, addr).await?;
    let mut request = build(protocol, addr, planned)?;
    *request.method_mut() = method;
    tokio::time::timeout(Duration::from_secs(30), send(&mut sender, request))
        .await
        .context("no reply within 30 s")?
}

struct ConnectionOutcome {
    measured: u64,
    warmup_ok: u64,
    errors: u64,
    error_samples: Vec<String>,
    last_completion: Option<Instant>,
    histogram: Histogram<u64>,
    unsent: u64,
    exhausted: bool,
}

#[allow(clippy::too_many_arguments)]
async fn run_connection(
    index: usize,
    connections: usize,
    plan: Vec<PlannedRequest>,
    options: LoadOptions,
    start: Instant,
) -> ConnectionOutcome {
    let addr = options.targets[index % options.targets.len()];
    let warmup_end = start + options.warmup;
    let deadline = warmup_end + options.duration;
    let mut out = ConnectionOutcome {
        measured: 0,
        warmup_ok: 0,
        errors: 0,
        error_samples: Vec::new(),
        last_completion: None,
        histogram: new_histogram(),
        unsent: 0,
        exhausted: false,
    };
    let limit = match options.repeat_up_to {
        Some(n) if !plan.is_empty() => n,
        _ => plan.len(),
    };
    let total = limit as u64;
    let mut sent = 0u64;
    let note_error = |out: &mut ConnectionOutcome, error: String| {
        out.errors += 1;
        if out.error_samples.len() < ERRORS_KEPT {
            out.error_samples.push(error);
        }
    };
    let mut sender = match connect(options.protocol, addr).await {
        Ok(sender) => sender,
        Err(error) => {
            note_error(&mut out, format!("connection {index}: {error:#}"));
            out.unsent = total;
            return out;
        }
    };
    // Open loop: this connection's share of the rate, its first slot staggered so that the
    // connections do not fire in bursts.
    let interval = options
        .rate_per_s
        .map(|rate| Duration::from_secs_f64(connections as f64 / rate.max(1e-9)));
    let offset = options
        .rate_per_s
        .map(|rate| Duration::from_secs_f64(index as f64 / rate.max(1e-9)));
    for (k, planned) in plan.iter().cycle().take(limit).enumerate() {
        let scheduled = match (interval, offset) {
            (Some(interval), Some(offset)) => {
                let at = start + offset + interval.mul_f64(k as f64);
                if at >= deadline {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                at
            }
            _ => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                now
            }
        };
        let request = match build(options.protocol, addr, planned) {
            Ok(request) => request,
            Err(error) => {
                note_error(&mut out, format!("building a request: {error:#}"));
                sent += 1;
                continue;
            }
        };
        sent += 1;
        let result =
            tokio::time::timeout(options.request_timeout, send(&mut sender, request)).await;
        let done = Instant::now();
        match result {
            Ok(Ok(reply)) => match judge(options.protocol, &options.expect, &reply) {
                None if scheduled >= warmup_end => {
                    let micros = (done - scheduled)
                        .as_micros()
                        .clamp(1, u128::from(MAX_LATENCY_US));
                    let _ = out.histogram.record(micros as u64);
                    out.measured += 1;
                    out.last_completion = Some(done);
                }
                None => out.warmup_ok += 1,
                Some(why) => note_error(&mut out, format!("{}: {why}", planned.path)),
            },
            Ok(Err(error)) => {
                note_error(&mut out, format!("{}: {error:#}", planned.path));
                // The connection is gone: the rest of this connection's plan is not sent.
                break;
            }
            Err(_) => {
                note_error(
                    &mut out,
                    format!(
                        "{}: no reply within {:?}",
                        planned.path, options.request_timeout
                    ),
                );
                break;
            }
        }
    }
    out.unsent = total - sent;
    out.exhausted = sent == total && Instant::now() < deadline;
    out
}

/// Runs `plan` (one list of requests per connection) with `options`.
pub async fn run(
    plan: Vec<Vec<PlannedRequest>>,
    options: &LoadOptions,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(!plan.is_empty(), "a load run needs at least one connection");
    anyhow::ensure!(!options.targets.is_empty(), "a load run needs a target");
    let connections = plan.len();
    let start = Instant::now();
    let tasks: Vec<_> = plan
        .into_iter()
        .enumerate()
        .map(|(index, requests)| {
            tokio::spawn(run_connection(
                index,
                connections,
                requests,
                options.clone(),
                start,
            ))
        })
        .collect();
    let warmup_end = start + options.warmup;
    let mut result = LoadResult {
        connections,
        measured: 0,
        warmup_ok: 0,
        errors: 0,
        error_samples: Vec::new(),
        window: Duration::ZERO,
        histogram: new_histogram(),
        unsent: 0,
        exhausted: false,
    };
    let mut last = None::<Instant>;
    for task in tasks {
        let outcome = task.await.context("a load connection task panicked")?;
        result.measured += outcome.measured;
        result.warmup_ok += outcome.warmup_ok;
        result.errors += outcome.errors;
        for sample in outcome.error_samples {
            if result.error_samples.len() < ERRORS_KEPT {
                result.error_samples.push(sample);
            }
        }
        result.histogram.add(&outcome.histogram)?;
        result.unsent += outcome.unsent;
        result.exhausted |= outcome.exhausted;
        last = last.max(outcome.last_completion);
    }
    result.window = last.map_or(Duration::ZERO, |last| {
        last.saturating_duration_since(warmup_end)
    });
    Ok(result)
}

/// Spreads `requests` over `connections` lists, round robin.
pub fn spread(requests: Vec<PlannedRequest>, connections: usize) -> Vec<Vec<PlannedRequest>> {
    let connections = connections.max(1);
    let mut plan: Vec<Vec<PlannedRequest>> = (0..connections).map(|_| Vec::new()).collect();
    for (i, request) in requests.into_iter().enumerate() {
        plan[i % connections].push(request);
    }
    plan
}

/// A header map from pairs (invalid names or values are a bug in the caller: an error).
pub fn headers<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> anyhow::Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        );
    }
    Ok(map)
}
