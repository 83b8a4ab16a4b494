//! Prometheus metrics, served at `GET /metrics` in the text exposition format.
//!
//! One registry per server (not a global), so tests that start several servers in one process
//! read their own figures.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/api/v2/me/calls/{id}`), never the raw path, so ids don't explode
    /// the label space.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RemovalLabels {
    /// `gws_voice`, `gws_chat`, `evo`, `grpc`.
    pub dialect: String,
    /// `removed`, `replayed` (idempotent repeat), or the error code name.
    pub outcome: String,
}

/// Every metric the server exposes.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RequestLabels, Histogram>,
    pub removals: Family<RemovalLabels, Counter>,
    pub notification_subscribers: Gauge,
    pub notification_delivery_lag_seconds: Histogram,
    pub store_commit_conflicts: Counter,
    /// Events deleted by retention (`crate::retention`).
    pub pruned_events: Counter,
    /// Ended conferences deleted by retention.
    pub pruned_conferences: Counter,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ]
    .into_iter()
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("confer");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let request_seconds = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route, method and status",
            request_seconds.clone(),
        );
        let removals = Family::<RemovalLabels, Counter>::default();
        registry.register(
            "removals",
            "Participant removals by dialect and outcome",
            removals.clone(),
        );
        let notification_subscribers = Gauge::default();
        registry.register(
            "notification_subscribers",
            "Active notification subscribers (CometD sessions and gRPC streams)",
            notification_subscribers.clone(),
        );
        let notification_delivery_lag_seconds = Histogram::new(latency_buckets());
        registry.register(
            "notification_delivery_lag_seconds",
            "Time from an event's commit to its delivery to a subscriber",
            notification_delivery_lag_seconds.clone(),
        );
        let store_commit_conflicts = Counter::default();
        registry.register(
            "store_commit_conflicts",
            "Commits retried because another writer changed the conference first",
            store_commit_conflicts.clone(),
        );
        let pruned_events = Counter::default();
        registry.register(
            "pruned_events",
            "Events deleted from the log by retention (--event-retention-secs)",
            pruned_events.clone(),
        );
        let pruned_conferences = Counter::default();
        registry.register(
            "pruned_conferences",
            "Ended conferences deleted by retention (--ended-conference-retention-secs)",
            pruned_conferences.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            request_seconds,
            removals,
            notification_subscribers,
            notification_delivery_lag_seconds,
            store_commit_conflicts,
            pruned_events,
            pruned_conferences,
        })
    }

    pub fn record_removal(&self, dialect: &str, outcome: &str) {
        self.removals
            .get_or_create(&RemovalLabels {
                dialect: dialect.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn observe_delivery_lag(&self, lag: Duration) {
        self.notification_delivery_lag_seconds
            .observe(lag.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// `GET /metrics`.
pub async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// A request method as a metric label: the standard methods by name, anything else (a client
/// may send any token) as `OTHER`, so that no client can grow the label sets. The route is the
/// matched pattern, never the path, and the status is the server's own.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Middleware counting every request by route pattern, method and status.
pub async fn track_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method()).to_owned();
    let response = next.run(request).await;
    let labels = RequestLabels {
        route,
        method,
        status: response.status().as_u16(),
    };
    metrics.requests.get_or_create(&labels).inc();
    metrics
        .request_seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
