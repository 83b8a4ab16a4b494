//! What a client can do to the server's own telemetry.

use reqwest::Method;

use crate::support::{ConferProcess, http};

/// The attack: requests with invented HTTP methods, each a new label set on `/metrics`
/// (measured before: 300 of them grew it by 480 KB). Unknown methods are counted as `OTHER`,
/// so the page grows by one label set however many are invented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_do_not_grow_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &[]);
    let client = http();
    let metrics = async || {
        client
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("a body")
    };
    let send = async |method: &str| {
        client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                server.url("/healthz"),
            )
            .send()
            .await
            .expect("an answer")
            .status()
    };
    // One invented method first, so that its label set exists before the baseline.
    assert_eq!(send("INVENTED").await, 405);
    let before = metrics().await;
    for i in 0..300 {
        assert_eq!(send(&format!("INVENTED{i}")).await, 405);
    }
    let after = metrics().await;
    assert!(
        after.len() < before.len() + 2_000,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(after.contains(r#"method="OTHER""#), "{after}");
    assert!(!after.contains("INVENTED"), "an invented method is a label");
}
