//! Which address a request comes from, for throttling failed sign-ins by address.
//!
//! The server's outermost layer ([`track_client`]) works it out once per request and keeps it
//! for the request's task ([`current`]), so that every dialect's sign-in path (GWS, Evo, CometD
//! handshakes, gRPC `Login` and Basic metadata) is throttled by address without each handler
//! passing it down.
//!
//! The peer of the TCP connection, unless that peer is one of `--trusted-proxy`: then the
//! rightmost address in `X-Forwarded-For` that is not itself a trusted proxy (the one the
//! nearest trusted proxy saw connect). An `X-Forwarded-For` from anyone else is ignored: a
//! client could put anything there, and would rotate it to escape the throttle.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::ConnectInfo,
    http::{Extensions, HeaderMap},
};

tokio::task_local! {
    static CLIENT: Option<IpAddr>;
}

/// The client address of the request this task serves, if the server recorded one.
pub fn current() -> Option<IpAddr> {
    CLIENT.try_with(|client| *client).ok().flatten()
}

/// Runs `work` as serving a request from `client`.
pub async fn scope<F: std::future::Future>(client: Option<IpAddr>, work: F) -> F::Output {
    CLIENT.scope(client, work).await
}

/// Middleware: records the request's client address (see [`client_address`]) for its task.
pub async fn track_client(
    axum::extract::State(trusted_proxies): axum::extract::State<std::sync::Arc<[IpAddr]>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let client = client_address(
        &trusted_proxies,
        peer_of(request.extensions()),
        request.headers(),
    );
    scope(client, next.run(request)).await
}

/// The TCP peer the server recorded for a request (axum's `ConnectInfo`, which the listeners
/// put on every REST and gRPC request).
pub fn peer_of(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer)
}

/// The client address of a request that arrived from `peer` with `headers`.
pub fn client_address(
    trusted_proxies: &[IpAddr],
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|address| !trusted_proxies.contains(address))
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 203.0.113.7, 10.0.0.1"),
        );
        let from_proxy = Some(SocketAddr::new(proxy, 4000));
        let from_client = Some("198.51.100.2:5000".parse().unwrap());
        assert_eq!(
            client_address(&[proxy], from_proxy, &headers),
            Some("203.0.113.7".parse().unwrap()),
            "the address the proxy saw, not what the client claimed before it"
        );
        assert_eq!(
            client_address(&[proxy], from_client, &headers),
            Some("198.51.100.2".parse().unwrap()),
            "anyone else's header is ignored"
        );
        assert_eq!(client_address(&[], from_proxy, &headers), Some(proxy));
        assert_eq!(client_address(&[proxy], None, &headers), None);
        assert_eq!(
            client_address(&[proxy], from_proxy, &HeaderMap::new()),
            Some(proxy)
        );
    }
}
