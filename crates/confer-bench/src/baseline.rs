//! The bare baselines: a hyper server that answers every request with a canned reply (the same
//! status, headers, body and, for gRPC, trailers as Confer's real reply) and does no other work.
//! Driven by the same load generator over the same connections, it is the limit of what any
//! server can do on this machine with this client; Confer's figure is reported as a ratio of it.
//!
//! It runs in its own process (`confer-bench serve-baseline ...`), like `confer serve`, so both
//! sides of the comparison share the machine the same way.

use std::{
    convert::Infallible,
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::Path,
    pin::Pin,
    process::{Child, Command, Stdio},
    sync::{Arc, mpsc},
    task::{Context, Poll},
    time::Duration,
};

use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::load::{Protocol, Reply};

/// Headers the server's HTTP stack writes by itself: not copied (hyper adds its own).
const STACK_HEADERS: [&str; 4] = ["date", "content-length", "transfer-encoding", "connection"];

/// A reply to repeat, as captured from a real one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Base64 (gRPC bodies are binary).
    pub body_base64: String,
    pub trailers: Vec<(String, String)>,
}

fn pairs(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .filter(|(name, _)| !STACK_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_owned(), v.to_owned()))
        })
        .collect()
}

fn header_map(pairs: &[(String, String)]) -> anyhow::Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        );
    }
    Ok(map)
}

impl CannedReply {
    /// The reply to repeat: this real one.
    pub fn from_reply(reply: &Reply) -> CannedReply {
        CannedReply {
            status: reply.status,
            headers: pairs(&reply.headers),
            body_base64: base64::engine::general_purpose::STANDARD.encode(&reply.body),
            trailers: pairs(&reply.trailers),
        }
    }

    pub fn body(&self) -> anyhow::Result<Bytes> {
        Ok(Bytes::from(
            base64::engine::general_purpose::STANDARD.decode(&self.body_base64)?,
        ))
    }

    /// Bytes of the reply's headers, body and trailers (names, values and body; the stack's own
    /// framing, date and length are the same on both sides and left out).
    pub fn size_bytes(&self) -> usize {
        let fields = |pairs: &[(String, String)]| -> usize {
            pairs.iter().map(|(n, v)| n.len() + v.len()).sum()
        };
        fields(&self.headers) + fields(&self.trailers) + self.body().map_or(0, |b| b.len())
    }
}

/// The canned reply, parsed once.
struct Canned {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

impl Canned {
    fn new(reply: &CannedReply) -> anyhow::Result<Canned> {
        let trailers = header_map(&reply.trailers)?;
        Ok(Canned {
            status: StatusCode::from_u16(reply.status)?,
            headers: header_map(&reply.headers)?,
            body: reply.body()?,
            trailers: (!trailers.is_empty()).then_some(trailers),
        })
    }

    fn response(&self) -> Response<CannedBody> {
        let mut response = Response::new(CannedBody {
            data: Some(self.body.clone()).filter(|b| !b.is_empty()),
            trailers: self.trailers.clone(),
        });
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

/// A body of one data frame and optional trailers (what a unary gRPC reply is).
struct CannedBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for CannedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(trailers) = self.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// Serves `reply` on `listener` until the task is dropped: read each request to its end (what
/// any server must do), answer the canned reply, nothing else.
pub async fn serve(
    listener: TcpListener,
    protocol: Protocol,
    reply: &CannedReply,
) -> anyhow::Result<()> {
    let canned = Arc::new(Canned::new(reply)?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let canned = canned.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let canned = canned.clone();
                async move {
                    let _ = request.into_body().collect().await;
                    Ok::<_, Infallible>(canned.response())
                }
            });
            let io = TokioIo::new(stream);
            // A client closing its connection ends it; nothing to report.
            let _ = match protocol {
                Protocol::Http1 => {
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await
                }
                Protocol::Grpc => {
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await
                }
            };
        });
    }
}

/// The `serve-baseline` subcommand of the bench binary: `<http1|grpc> <canned reply JSON>`.
/// Prints `baseline listening <addr>` and serves until killed.
pub async fn serve_baseline_main(args: &[String]) -> anyhow::Result<()> {
    let [protocol, reply] = args else {
        anyhow::bail!("usage: serve-baseline <http1|grpc> <canned reply JSON>");
    };
    let protocol = match protocol.as_str() {
        "http1" => Protocol::Http1,
        "grpc" => Protocol::Grpc,
        other => anyhow::bail!("serve-baseline: protocol is http1 or grpc, not {other}"),
    };
    let reply: CannedReply = serde_json::from_str(reply).context("parsing the canned reply")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("baseline listening {}", listener.local_addr()?);
    serve(listener, protocol, &reply).await
}

/// A baseline server process.
pub struct BaselineServer {
    pub addr: SocketAddr,
    child: Child,
}

impl BaselineServer {
    /// Starts `<binary> serve-baseline <protocol> <reply>` (the bench binary itself).
    pub fn start(binary: &Path, protocol: Protocol, reply: &CannedReply) -> anyhow::Result<Self> {
        let protocol = match protocol {
            Protocol::Http1 => "http1",
            Protocol::Grpc => "grpc",
        };
        let mut child = Command::new(binary)
            .args(["serve-baseline", protocol, &serde_json::to_string(reply)?])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} serve-baseline", binary.display()))?;
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(addr) = line.strip_prefix("baseline listening ") {
                        let _ = tx.send(addr.trim().parse::<SocketAddr>());
                    }
                }
            });
        }
        let mut server = BaselineServer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
        };
        server.addr = rx
            .recv_timeout(Duration::from_secs(10))
            .context("the baseline server printed no address within 10 s")??;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BaselineServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
