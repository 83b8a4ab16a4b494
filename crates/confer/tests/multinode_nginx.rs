//! Three `confer serve` nodes on one PostgreSQL behind Debian's nginx, configured with the file
//! the deployment guide tells operators to use (`deploy/nginx/confer.conf`, only its addresses
//! replaced by the test nodes'), and the unmodified official CometD JavaScript client (the
//! Node project in `tests/gws_node`) talking to the nodes through it, over long-polling (every
//! request may land on another node: nginx balances round-robin, with no stickiness) and over
//! WebSocket, next to a gRPC `Subscribe` stream through nginx's gRPC port. Removals are made
//! through nginx; the node serving the WebSocket is killed midway; every client gets every
//! notification once, in order.
//!
//! Needs `/usr/sbin/nginx` (Debian's `nginx-light`, installed by `cargo xtask test`): with `CI`
//! set its absence fails the test, otherwise the test is skipped with a message. Needs the local
//! PostgreSQL like `multinode.rs`, and `node`/`npm` like `gws_official_client.rs`.

// Shared with the other GWS tests; this one uses part of it.
#[allow(unused_imports)]
mod gws_support;
mod multinode_support;
// clippy's zombie_processes does not see that `ConferProcess` waits for its child in `Drop`.
#[allow(clippy::zombie_processes)]
mod support;

use std::{
    cell::Cell,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use gws_support::{
    Gws, VOICE_CALL_ID,
    node::{self, Script, event, messages},
};
use multinode_support::{
    Cluster, cometd_numbers, grpc_call, remove_party, resuming_grpc_subscriber,
};
use serde_json::json;
use support::ConferProcess;

const NGINX: &str = "/usr/sbin/nginx";
const WAIT: Duration = Duration::from_secs(40);

/// The configuration the deployment guide shows.
fn documented_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/confer.conf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The deployment guide shows the configuration this test runs, verbatim.
#[test]
fn the_deployment_guide_shows_the_tested_configuration() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deployment.md");
    let guide =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shown = format!("```nginx\n{}```", documented_config());
    assert!(
        guide.contains(&shown),
        "docs/deployment.md must show deploy/nginx/confer.conf as it is, in an nginx block"
    );
}

/// `text` with `from` replaced by `to`; `from` must occur exactly once (so a change of the
/// documented file that this test does not follow fails here, not silently).
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "deploy/nginx/confer.conf should contain {from:?} exactly once"
    );
    text.replacen(from, to, 1)
}

/// A loopback port nothing listens on right now (it may be taken before nginx binds it, which
/// [`Nginx::start`] detects and retries).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// nginx running in the foreground as a child process, with everything (configuration, pid,
/// logs, temporary files) in its own directory; stopped (SIGTERM, then SIGKILL) when dropped.
struct Nginx {
    child: Option<Child>,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx with the documented configuration in front of `nodes` (three), or `None` (with a
    /// message) when nginx is not installed and `CI` is not set.
    fn start(nodes: &[ConferProcess]) -> Option<Self> {
        if !Path::new(NGINX).exists() {
            let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
            assert!(
                !in_ci,
                "{NGINX} is missing: CI must install Debian's nginx-light (cargo xtask test does)"
            );
            eprintln!("skipping the nginx test: {NGINX} is missing (apt-get install nginx-light)");
            return None;
        }
        assert_eq!(
            nodes.len(),
            3,
            "the documented configuration has three nodes"
        );
        for _ in 0..5 {
            if let Some(nginx) = Self::try_start(nodes) {
                return Some(nginx);
            }
        }
        panic!("nginx could not bind a free port in five tries");
    }

    /// One attempt; `None` when a port was taken meanwhile.
    fn try_start(nodes: &[ConferProcess]) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // nginx started as root runs its workers as `nobody`, who must reach the temporary
        // directories nginx creates in here.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod the nginx directory");
        }
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut conf = documented_config();
        for (i, node) in nodes.iter().enumerate() {
            let i = u16::try_from(i).expect("three nodes");
            let (rest, grpc) = (8081 + i, 50052 + i);
            conf = replace_once(
                &conf,
                &format!("server 127.0.0.1:{rest} "),
                &format!("server {} ", node.rest),
            );
            conf = replace_once(
                &conf,
                &format!("server 127.0.0.1:{grpc} "),
                &format!("server {} ", node.grpc),
            );
        }
        conf = replace_once(&conf, "listen 8080;", &format!("listen {http};"));
        conf = replace_once(
            &conf,
            "listen 50051 http2;",
            &format!("listen {grpc} http2;"),
        );
        let d = dir.path().display();
        std::fs::write(dir.path().join("confer.conf"), conf).expect("write confer.conf");
        // The main file of a packaged nginx, reduced to what this nginx needs: the documented
        // file is included in the `http` context, as /etc/nginx/nginx.conf includes conf.d/.
        let main = format!(
            "worker_processes 1;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
                 access_log off;\n\
                 client_body_temp_path {d}/client_body;\n\
                 proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n\
                 uwsgi_temp_path {d}/uwsgi;\n\
                 scgi_temp_path {d}/scgi;\n\
                 include {d}/confer.conf;\n\
             }}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, main).expect("write nginx.conf");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("a log file");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg("stderr")
            .arg("-c")
            .arg(&conf_path)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {d}/nginx.pid; error_log {d}/error.log warn;"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start nginx");
        let mut nginx = Self {
            child: Some(child),
            http,
            grpc,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = nginx
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                nginx.child = None;
                let log = nginx.logs();
                if log.contains("Address already in use") {
                    return None;
                }
                panic!("nginx exited ({status}):\n{log}");
            }
            let ready = [http, grpc].iter().all(|a| {
                std::net::TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok()
            });
            if ready {
                return Some(nginx);
            }
            assert!(
                Instant::now() < deadline,
                "nginx not listening in 20 s:\n{}",
                nginx.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// What nginx wrote to its standard error and error log.
    fn logs(&self) -> String {
        let read = |name| std::fs::read_to_string(self.path(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM: the master stops its workers before exiting (SIGKILL would orphan them,
        // still listening).
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Starts `listen.mjs` (the official client) on `url` and waits until it is subscribed.
async fn listener(url: &str, transport: &str, expected: usize) -> Script {
    let auth = json!({ "basic": "agent15000:demo" }).to_string();
    let mut node = Script::start(
        &node::dir(),
        "listen.mjs",
        &[url, transport, &auth, &expected.to_string()],
    );
    let handshake = node.wait_for(WAIT, |v| event(v, "handshake")).await;
    assert_eq!(handshake["successful"], true, "{handshake}");
    assert_eq!(handshake["ack"], true, "the ack extension: {handshake}");
    let subscribed = node.wait_for(WAIT, |v| event(v, "subscribed")).await;
    assert_eq!(subscribed["successful"], true, "{subscribed}");
    node
}

/// Waits until the script printed its `count`-th message.
async fn wait_for_messages(script: &mut Script, count: usize) {
    let seen = Cell::new(messages(&script.seen).len());
    if seen.get() >= count {
        return;
    }
    script
        .wait_for(WAIT, |v| {
            if event(v, "message") {
                seen.set(seen.get() + 1);
            }
            seen.get() >= count
        })
        .await;
}

/// Removes `number` from the demo call through nginx until acknowledged. A request that was
/// on its way to a node that died is answered 502 by nginx and not repeated by it (a POST);
/// the client repeats it with the same Idempotency-Key, as the guide says.
async fn remove_through(gws: &Gws, login: &gws_support::Login, number: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match remove_party(gws, &login.cookie, &login.csrf, number).await {
            Some(true) => return,
            Some(false) => panic!("removing {number} was refused"),
            None => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "removing {number} never succeeded"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The node that accepted the WebSocket upgrade: its `/metrics` counts a 101 on the CometD
/// route.
async fn websocket_node(cluster: &Cluster) -> usize {
    for i in 0..cluster.nodes.len() {
        let upgraded =
            cluster.gws(i).metrics().await.lines().any(|l| {
                l.contains("route=\"/api/v2/notifications\"") && l.contains("status=\"101\"")
            });
        if upgraded {
            return i;
        }
    }
    panic!("no node accepted the WebSocket upgrade");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_through_nginx_gets_everything_once_while_a_node_dies() {
    let Some(mut cluster) = Cluster::start(3).await else {
        return;
    };
    let Some(nginx) = Nginx::start(&cluster.nodes) else {
        cluster.finish().await;
        return;
    };
    let gws = Gws::new(&nginx.url(""));
    let login = gws.login("agent15000").await;

    // Six parties join the demo call; the clients then watch them being removed.
    const PARTIES: u32 = 6;
    let numbers: Vec<String> = (0..PARTIES).map(|i| (15200 + i).to_string()).collect();
    for number in &numbers {
        let reply = gws
            .post(
                &login,
                &format!("/api/v2/me/calls/{VOICE_CALL_ID}"),
                &json!({"operationName": "SingleStepConference",
                        "destination": {"phoneNumber": number}})
                .to_string(),
            )
            .await;
        assert_eq!(reply.codes(), (200, 0), "adding {number}: {:?}", reply.body);
    }
    let head = cluster.store().head_seq().await.expect("the head");

    let url = nginx.url("/api/v2/notifications");
    let n = PARTIES as usize;
    let mut long_polling = listener(&url, "long-polling", n).await;
    let mut websocket = listener(&url, "websocket", n).await;
    let grpc = tokio::spawn(resuming_grpc_subscriber(nginx.grpc, "agent15000", head, n));

    // Half the removals; every client gets them.
    for number in &numbers[..n / 2] {
        remove_through(&gws, &login, number).await;
    }
    wait_for_messages(&mut long_polling, n / 2).await;
    wait_for_messages(&mut websocket, n / 2).await;

    // The node serving the WebSocket dies; the rest of the removals.
    let victim = websocket_node(&cluster).await;
    cluster.nodes.remove(victim).kill_hard();
    for number in &numbers[n / 2..] {
        remove_through(&gws, &login, number).await;
    }

    // Each removal once, in order: every notification is ParticipantsUpdated and the call it
    // shows has lost exactly the next removed party.
    let expected: Vec<Vec<String>> = (1..=n).map(|i| numbers[i..].to_vec()).collect();
    let ours = |parties: Vec<String>| -> Vec<String> {
        parties
            .into_iter()
            .filter(|p| numbers.contains(p))
            .collect()
    };
    for (transport, script) in [("long-polling", long_polling), ("websocket", websocket)] {
        let (code, lines) = script.finish(WAIT).await;
        assert_eq!(code, Some(0), "{transport}: {lines:#?}");
        let received = messages(&lines);
        let kinds: Vec<&str> = received
            .iter()
            .map(|(_, data)| data["notificationType"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(
            kinds,
            vec!["ParticipantsUpdated"; n],
            "{transport}: {lines:#?}"
        );
        let shown: Vec<Vec<String>> = received
            .iter()
            .map(|(channel, data)| {
                assert_eq!(channel, "/v2/me/calls");
                ours(cometd_numbers(&json!({ "data": data })))
            })
            .collect();
        assert_eq!(shown, expected, "{transport}");
    }
    let grpc = tokio::time::timeout(Duration::from_secs(120), grpc)
        .await
        .expect("the gRPC subscriber ends")
        .expect("the gRPC subscriber");
    let shown: Vec<Vec<String>> = grpc.iter().map(|n| ours(grpc_call(n).1)).collect();
    assert_eq!(shown, expected, "gRPC through nginx");

    drop(nginx);
    cluster.finish().await;
}
