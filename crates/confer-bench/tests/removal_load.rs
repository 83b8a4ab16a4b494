//! The load generator end to end against a real Confer server (the `confer` crate's server, on
//! a preloaded SQLite store, over real HTTP/1.1 and gRPC): every planned removal succeeds once,
//! a repeated removal is counted as an error, and the bare baseline answers the captured reply.

use std::time::Duration;

use confer_app::config::ServeArgs;
use confer_bench::{
    baseline::{CannedReply, serve},
    load::{self, Expect, LoadOptions, Protocol, request_once},
    preload::{PreloadSpec, StoreTarget, preload},
    workload::{REST_SUCCESS_BODY, grpc_removal, login_all, rest_removal},
};
use http::Method;

fn options(protocol: Protocol, target: std::net::SocketAddr) -> LoadOptions {
    LoadOptions {
        protocol,
        targets: vec![target],
        warmup: Duration::ZERO,
        // Generous: the run ends when the plan is done, long before this.
        duration: Duration::from_secs(60),
        rate_per_s: None,
        request_timeout: Duration::from_secs(30),
        repeat_up_to: None,
        expect: Expect::Body(bytes::Bytes::from_static(REST_SUCCESS_BODY)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_through_a_real_server_and_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let preloaded = preload(&PreloadSpec::new(
        StoreTarget::Sqlite {
            data_dir: dir.path().to_path_buf(),
        },
        4,
        6,
    ))
    .await
    .unwrap();

    let mut config = ServeArgs {
        data_dir: Some(dir.path().to_path_buf()),
        ..ServeArgs::default()
    }
    .resolve()
    .unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.grpc_listen = "127.0.0.1:0".parse().unwrap();
    let server = confer::server::start(config).await.unwrap();
    let rest = server.rest_addr;

    // REST: agents 0 and 1 remove a party from each of their calls over 3 connections.
    let agents: Vec<_> = preloaded.agents.iter().take(2).collect();
    let sessions = login_all(rest, &agents).await.unwrap();
    assert!(sessions.iter().all(|s| !s.csrf.is_empty()));
    let requests: Vec<_> = agents
        .iter()
        .zip(&sessions)
        .flat_map(|(agent, session)| {
            agent
                .calls
                .iter()
                .map(move |call| rest_removal(session, call))
        })
        .collect::<anyhow::Result<_>>()
        .unwrap();
    let first = requests[0].clone();
    let plan = load::spread(requests, 3);
    let result = load::run(plan, &options(Protocol::Http1, rest))
        .await
        .unwrap();
    assert_eq!(result.outcome(), "ok");
    assert_eq!(result.measured, 12);
    assert_eq!(result.histogram.len(), 12);
    assert!(result.ops_per_s() > 0.0);
    assert!(result.exhausted);

    // The same removal again fails (the party is gone): the generator counts it as an error.
    let again = load::run(vec![vec![first.clone()]], &options(Protocol::Http1, rest))
        .await
        .unwrap();
    assert_eq!(again.errors, 1);
    assert!(!again.ok());
    assert!(again.outcome().starts_with("failed"), "{}", again.outcome());

    // gRPC: agent 2's calls, with Basic credentials.
    let agent = &preloaded.agents[2];
    let requests: Vec<_> = agent
        .calls
        .iter()
        .map(|call| grpc_removal(agent, call))
        .collect::<anyhow::Result<_>>()
        .unwrap();
    let grpc_first = requests[0].clone();
    let result = load::run(
        load::spread(requests, 2),
        &options(Protocol::Grpc, server.grpc_addr),
    )
    .await
    .unwrap();
    assert_eq!(result.outcome(), "ok");
    assert_eq!(result.measured, 6);
    // Repeated over gRPC: refused with a gRPC status, counted as an error.
    let again = load::run(
        vec![vec![grpc_first]],
        &options(Protocol::Grpc, server.grpc_addr),
    )
    .await
    .unwrap();
    assert_eq!(again.errors, 1, "{:?}", again.error_samples);
    assert!(
        again.error_samples[0].contains("grpc-status"),
        "{:?}",
        again.error_samples
    );

    // The baseline: capture a real reply (agent 3's first call), serve it canned, and drive the
    // same kind of plan against it.
    let session = login_all(rest, &[&preloaded.agents[3]])
        .await
        .unwrap()
        .remove(0);
    let real = request_once(
        Protocol::Http1,
        rest,
        Method::POST,
        &rest_removal(&session, &preloaded.agents[3].calls[0]).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(real.status, 200);
    assert_eq!(&real.body[..], REST_SUCCESS_BODY);
    let canned = CannedReply::from_reply(&real);
    assert!(canned.headers.iter().any(|(n, _)| n == "content-type"));
    assert!(!canned.headers.iter().any(|(n, _)| n == "date"));
    assert_eq!(
        canned.size_bytes(),
        real.body.len()
            + canned
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare = listener.local_addr().unwrap();
    let bare_task = tokio::spawn(async move { serve(listener, Protocol::Http1, &canned).await });
    let repeated: Vec<_> = (0..50).map(|_| first.clone()).collect();
    let result = load::run(load::spread(repeated, 4), &options(Protocol::Http1, bare))
        .await
        .unwrap();
    assert_eq!(result.outcome(), "ok");
    assert_eq!(result.measured, 50);
    bare_task.abort();

    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_run_keeps_its_schedule_and_its_time_bound() {
    // A canned server, so the test is about the generator only.
    let canned = CannedReply {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body_base64: "eyJzdGF0dXNDb2RlIjowfQ==".into(),
        trailers: vec![],
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { serve(listener, Protocol::Http1, &canned).await });
    let request = load::PlannedRequest {
        path: "/x".into(),
        headers: load::headers([("content-type", "application/json")]).unwrap(),
        body: bytes::Bytes::from_static(b"{}"),
    };
    let mut opts = options(Protocol::Http1, addr);
    // 200/s for 0.5 s over 4 connections: 25 slots each before the time bound, however fast or
    // slow the replies (a late slot is still sent, and counted late), far fewer than planned.
    opts.rate_per_s = Some(200.0);
    opts.duration = Duration::from_millis(500);
    let plan = load::spread((0..10_000).map(|_| request.clone()).collect(), 4);
    let result = load::run(plan, &opts).await.unwrap();
    assert_eq!(result.outcome(), "ok");
    assert_eq!(result.measured, 100);
    assert_eq!(result.unsent, 10_000 - 100);
    assert!(!result.exhausted);

    // Cycling a short plan: bounded by the count given, well within the time bound.
    let mut opts = options(Protocol::Http1, addr);
    opts.expect = Expect::Success;
    opts.repeat_up_to = Some(30);
    let plan = load::spread(vec![request.clone(), request.clone(), request], 3);
    let result = load::run(plan, &opts).await.unwrap();
    assert_eq!(result.outcome(), "ok");
    assert_eq!(result.measured, 90);
    assert!(result.exhausted);
    task.abort();
}
