//! Serving one listener with every connection timed and bounded ([`ConnectionLimits`]): what
//! `axum::serve` does, plus what a public service needs and it lacks (it sets no timer, so
//! hyper's header read timeout is off; it has no connection limit; its graceful shutdown waits
//! for ever for a client that never finishes).
//!
//! * **Header read timeout**: hyper's, armed whenever an HTTP/1 connection waits for a request
//!   head (the first, and each next one on a kept-alive connection, so it is the idle timeout
//!   too). A connection that has not completed its first request by then is closed whatever
//!   its protocol: an HTTP/2 client that never sends its preface, or one that stops inside it,
//!   holds nothing for long either.
//! * **HTTP/2**: concurrent streams per connection, keepalive pings that close connections to
//!   dead peers, bounded header lists and pending resets (the "rapid reset" attack).
//! * **Connection limits**: a permit per open connection, held by the socket itself so that a
//!   WebSocket keeps counting after its upgrade; at the limit the listener stops accepting and
//!   new connections wait in the kernel's backlog. And a count per client address: one address
//!   at its limit has its new connections closed at once, so that it cannot take every permit
//!   (trusted proxies are exempt: every client behind them shares their address).
//! * **Graceful shutdown with a deadline**: on stop, the listener closes, every connection is
//!   asked to finish (HTTP/1: after its current request; HTTP/2: `GOAWAY`), and after
//!   [`ConnectionLimits::shutdown_grace`] whatever is still open is dropped.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use confer_app::config::ConnectionLimits;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    task::JoinSet,
};

/// Which HTTP versions a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (with upgrades: WebSocket) and HTTP/2 by prior knowledge (REST and CometD).
    Auto,
    /// HTTP/2 by prior knowledge only (gRPC).
    Http2,
}

/// Largest HTTP/2 header list a client may send (hyper's default is 16 MiB).
const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// Streams an HTTP/2 client may reset before the server has answered them, before the
/// connection is closed (the "rapid reset" flood).
const HTTP2_MAX_PENDING_RESETS: usize = 50;

fn builder(limits: &ConnectionLimits, protocol: Protocol) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .keep_alive_interval(limits.http2_keepalive)
        .keep_alive_timeout(limits.http2_keepalive)
        .max_header_list_size(HTTP2_MAX_HEADER_LIST_BYTES)
        .max_pending_accept_reset_streams(HTTP2_MAX_PENDING_RESETS);
    match protocol {
        Protocol::Auto => builder,
        Protocol::Http2 => builder.http2_only(),
    }
}

/// Serves `router` on `listener` until `stop` turns true, then shuts down gracefully within
/// the limits' grace period. `name` is for logs.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    trusted_proxies: &[IpAddr],
    protocol: Protocol,
    mut stop: watch::Receiver<bool>,
) {
    let builder = builder(&limits, protocol);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress {
        open: Mutex::new(HashMap::new()),
        limit: limits.max_connections_per_address,
        exempt: trusted_proxies.to_vec(),
    });
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                accept_failed(name, &error).await;
                continue;
            }
        };
        // Finished connections are reaped here, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        let Some(slot) = PerAddress::take(&per_address, peer.ip()) else {
            // Dropped: closed at once, before a byte is read.
            tracing::debug!(listener = name, %peer, "too many connections from this address: closed");
            continue;
        };
        // Replies are small and latency matters: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        let served = Arc::new(AtomicBool::new(false));
        let service = WithPeer {
            router: router.clone(),
            peer,
            served: served.clone(),
        };
        let io = TokioIo::new(Counted {
            tcp,
            _permit: permit,
            _slot: slot,
        });
        let connection = graceful.watch(
            builder
                .serve_connection_with_upgrades(io, service)
                .into_owned(),
        );
        let first_request_within = limits.header_read_timeout;
        connections.spawn(async move {
            let no_first_request = async {
                tokio::time::sleep(first_request_within).await;
                if served.load(Ordering::Relaxed) {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                }
                () = no_first_request => {
                    tracing::debug!(%peer, "no request within the header read timeout: closed");
                }
            }
        });
    }
    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            listener = name,
            open,
            "waiting for open connections to finish"
        );
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(
                listener = name,
                open = connections.len(),
                grace_secs = limits.shutdown_grace.as_secs(),
                "shutdown grace period over: closing the connections still open"
            );
        }
    }
    connections.abort_all();
}

/// Resolves once `stop` is true.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// An accept that failed. Errors of one connection (reset before it was accepted) are
/// nothing; others (out of file descriptors) are logged and retried after a pause, as
/// `axum::serve` does, rather than spinning.
async fn accept_failed(name: &str, error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(listener = name, %error, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The router, given each request's peer address (`ConnectInfo`, as axum's
/// `into_make_service_with_connect_info` gives it) without rebuilding the router for every
/// connection.
#[derive(Clone)]
struct WithPeer {
    router: Router,
    peer: SocketAddr,
    /// The connection has received a request (see the module docs).
    served: Arc<AtomicBool>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        self.served.store(true, Ordering::Relaxed);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        tower_service::Service::call(&mut self.router.clone(), request)
    }
}

/// A socket that holds its connection's permit and its address's slot for as long as it is
/// open, upgrades included.
struct Counted {
    tcp: TcpStream,
    _permit: OwnedSemaphorePermit,
    _slot: AddressSlot,
}

/// Open connections per client address (see [`ConnectionLimits::max_connections_per_address`]).
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
    limit: usize,
    exempt: Vec<IpAddr>,
}

impl PerAddress {
    /// A slot for one more connection from `address`, or `None` at its limit.
    fn take(this: &Arc<Self>, address: IpAddr) -> Option<AddressSlot> {
        if this.exempt.contains(&address) {
            return Some(AddressSlot(None));
        }
        let mut open = this.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(address).or_insert(0);
        if *count >= this.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot(Some((this.clone(), address))))
    }
}

/// One connection's place in its address's count; given back when dropped.
struct AddressSlot(Option<(Arc<PerAddress>, IpAddr)>);

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some((per_address, address)) = self.0.take() else {
            return;
        };
        let mut open = per_address
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&address);
            }
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
