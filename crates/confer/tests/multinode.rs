//! Several `confer serve` processes on one PostgreSQL (issue 8): no sticky sessions, no lost
//! notifications. Each test starts its nodes as real processes on loopback ports, on a scratch
//! schema of the local PostgreSQL (`CONFER_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). The schema is chosen through the URL's startup
//! options (`?options=-csearch_path%3D<schema>`), which `--database-url` passes to PostgreSQL
//! as they are. With `CI` set an unreachable database fails the tests; without it they are
//! skipped with a message (`confer_store::testing::postgres_url_or_skip`).

mod gws_support;
// clippy's zombie_processes does not see that `ConferProcess` waits for its child in `Drop`.
#[allow(clippy::zombie_processes)]
mod support;

use std::{net::SocketAddr, time::Duration};

use confer_store::testing::PgTest;
use gws_support::{
    CHAT_ID, CHAT_REMOVAL, Gws, PASSWORD, VOICE_CALL_ID, VOICE_REMOVAL, basic, cometd::LongPoll,
    proxy::Proxy,
};
use reqwest::Method;
use serde_json::{Value, json};
use support::ConferProcess;

const WAIT: Duration = Duration::from_secs(20);
/// What every node is told its clients reach it at (the load balancer's URL).
const PUBLIC_URL: &str = "http://confer.test:8080";

/// Nodes on one scratch schema. Dropping it kills the nodes, then drops the schema.
struct Cluster {
    nodes: Vec<ConferProcess>,
    _dirs: Vec<tempfile::TempDir>,
    db: Option<PgTest>,
}

impl Cluster {
    /// `n` nodes; the first loads the demo world, the others find it in the database.
    async fn start(n: usize) -> Option<Self> {
        let db = PgTest::new().await?;
        let separator = if db.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{separator}options=-csearch_path%3D{}", db.url, db.schema);
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..n {
            let dir = tempfile::tempdir().expect("temp dir");
            // Behind a load balancer every node has the balancer's URL as its public URL, so
            // every node renders the same notification with the same URIs.
            let mut args = vec!["--database-url", url.as_str(), "--public-url", PUBLIC_URL];
            if i == 0 {
                args.push("--demo");
            }
            nodes.push(ConferProcess::start(dir.path(), &args));
            dirs.push(dir);
        }
        Some(Self {
            nodes,
            _dirs: dirs,
            db: Some(db),
        })
    }

    fn gws(&self, node: usize) -> Gws {
        Gws::new(&self.nodes[node].url(""))
    }

    fn url(&self) -> &str {
        &self.db.as_ref().expect("the database").url
    }

    fn schema(&self) -> &str {
        &self.db.as_ref().expect("the database").schema
    }

    fn notifications(&self, node: usize) -> String {
        self.nodes[node].url("/api/v2/notifications")
    }

    async fn finish(mut self) {
        self.nodes.clear();
        if let Some(db) = self.db.take() {
            db.finish().await;
        }
    }
}

/// A CometD session of `username` on `url`, subscribed to `/v2/me/*`.
async fn subscriber(url: &str, username: &str) -> LongPoll {
    let basic = basic(username);
    let session = LongPoll::handshake(url, &[("Authorization", basic.as_str())], json!({}))
        .await
        .unwrap_or_else(|reply| panic!("{username}'s handshake was refused: {reply}"));
    let reply = session.subscribe("/v2/me/*").await;
    assert_eq!(reply["successful"], true, "{reply}");
    session
}

fn types(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m["channel"].as_str().unwrap_or("?"),
                m["data"]["notificationType"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_through_one_node_reaches_subscribers_on_the_others() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let mut on_b = subscriber(&cluster.notifications(1), "agent15000").await;
    let mut on_c = subscriber(&cluster.notifications(2), "agent15002").await;

    let a = cluster.gws(0);
    let login = a.login("agent15000").await;
    let reply = a
        .post(
            &login,
            &format!("/api/v2/me/calls/{VOICE_CALL_ID}"),
            VOICE_REMOVAL,
        )
        .await;
    assert_eq!(reply.codes(), (200, 0), "{:?}", reply.body);

    for (who, session) in [
        ("agent15000 on B", &mut on_b),
        ("agent15002 on C", &mut on_c),
    ] {
        let got = session.messages(1, WAIT).await;
        assert_eq!(
            types(&got),
            ["/v2/me/calls ParticipantsUpdated"],
            "{who}: {got:?}"
        );
        let participants = &got[0]["data"]["call"]["participants"];
        assert!(
            !participants.to_string().contains("15001"),
            "{who} is told 15001 left: {participants}"
        );
        // Exactly once: nothing else follows.
        let more = session.messages(1, Duration::from_millis(1500)).await;
        assert!(more.is_empty(), "{who} got more: {more:?}");
    }
    cluster.finish().await;
}

/// A long-polling client whose every request goes to the next node in turn, as behind a load
/// balancer that is not sticky; with the acknowledge extension.
struct Roaming {
    http: reqwest::Client,
    urls: Vec<String>,
    next: usize,
    auth: String,
    client_id: String,
    ack: Option<u64>,
}

impl Roaming {
    fn url(&mut self) -> String {
        let url = self.urls[self.next % self.urls.len()].clone();
        self.next += 1;
        url
    }

    async fn post(&mut self, path: &str, message: Value) -> Vec<Value> {
        let url = format!("{}{path}", self.url());
        let response = self
            .http
            .post(&url)
            .header("Authorization", &self.auth)
            .json(&json!([message]))
            .send()
            .await
            .expect("a CometD request");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.json().await.expect("a JSON reply")
    }

    async fn start(urls: Vec<String>, username: &str) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let mut client = Self {
            http,
            urls,
            next: 0,
            auth: basic(username),
            client_id: String::new(),
            ack: None,
        };
        let reply = client
            .post(
                "/handshake",
                json!({"channel": "/meta/handshake", "version": "1.0",
                       "supportedConnectionTypes": ["long-polling"], "ext": {"ack": true}}),
            )
            .await;
        assert_eq!(reply[0]["successful"], true, "{reply:?}");
        client.client_id = reply[0]["clientId"].as_str().expect("clientId").to_owned();
        // The first connect (answered at once) and the subscription, each on another node.
        client.connect(0).await;
        let id = client.client_id.clone();
        let reply = client
            .post(
                "/subscribe",
                json!({"channel": "/meta/subscribe", "clientId": id, "subscription": "/v2/me/*"}),
            )
            .await;
        assert_eq!(reply[0]["successful"], true, "{reply:?}");
        client
    }

    /// One connect on the next node; the delivered messages.
    async fn connect(&mut self, hold_ms: u64) -> Vec<Value> {
        self.connect_keeping(hold_ms, true).await
    }

    /// A connect whose reply is lost on its way (the client never sees it, so it neither
    /// acknowledges it nor keeps its messages); how many messages it carried.
    async fn connect_lost(&mut self, hold_ms: u64) -> usize {
        self.connect_keeping(hold_ms, false).await.len()
    }

    async fn connect_keeping(&mut self, hold_ms: u64, keep: bool) -> Vec<Value> {
        let mut message = json!({"channel": "/meta/connect", "clientId": self.client_id,
                                 "connectionType": "long-polling", "advice": {"timeout": hold_ms}});
        if let Some(ack) = self.ack {
            message["ext"] = json!({ "ack": ack });
        }
        let reply = self.post("/connect", message).await;
        let mut delivered = Vec::new();
        for m in reply {
            if m["channel"] == "/meta/connect" {
                assert_eq!(m["successful"], true, "connect failed: {m}");
                if let Some(batch) = m["ext"]["ack"].as_u64()
                    && keep
                {
                    self.ack = Some(batch);
                }
            } else {
                delivered.push(m);
            }
        }
        delivered
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_roaming_between_nodes_on_every_connect_gets_everything_once_in_order() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let urls: Vec<String> = (0..3).map(|i| cluster.notifications(i)).collect();
    let mut roaming = Roaming::start(urls, "agent15000").await;
    // The reference: a session that stays on node A sees the same notifications in the same
    // order; both render from the one event log, so the messages must be equal too.
    let mut sticky = subscriber(&cluster.notifications(0), "agent15000").await;

    // Changes through every node, while the roaming client polls.
    const CHANGES: usize = 12;
    let gws: Vec<Gws> = (0..3).map(|i| cluster.gws(i)).collect();
    let login = gws[0].login("agent15000").await;
    let changes = tokio::spawn(async move {
        for i in 0..CHANGES {
            let operation = if i % 2 == 0 { "Hold" } else { "Retrieve" };
            let reply = gws[i % 3]
                .post(
                    &login,
                    &format!("/api/v2/me/calls/{VOICE_CALL_ID}"),
                    &format!(r#"{{"operationName":"{operation}"}}"#),
                )
                .await;
            assert_eq!(reply.codes(), (200, 0), "{operation}: {:?}", reply.body);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let expected = sticky.messages(CHANGES, WAIT).await;
    changes.await.expect("the changes were made");
    // Whatever else the sticky session gets (it must be nothing) decides the expected total.
    let mut expected = expected;
    expected.extend(sticky.messages(1, Duration::from_millis(1500)).await);
    assert!(expected.len() >= CHANGES, "{:?}", types(&expected));

    // Every reply that carries messages is lost once: with the ack extension the next connect,
    // on another node, must carry the same messages again (and nothing acknowledged).
    let mut got = Vec::new();
    let mut lost_with_messages = 0;
    let mut lose_next = true;
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < expected.len() && tokio::time::Instant::now() < deadline {
        if lose_next {
            if roaming.connect_lost(500).await > 0 {
                lost_with_messages += 1;
                lose_next = false;
            }
        } else {
            let before = got.len();
            got.extend(roaming.connect(500).await);
            lose_next = got.len() > before;
        }
    }
    assert!(lost_with_messages > 0, "a reply with messages was lost");
    // A few more connects on every node: nothing is delivered twice.
    for _ in 0..3 {
        got.extend(roaming.connect(300).await);
    }
    assert_eq!(types(&got), types(&expected));
    assert_eq!(got, expected, "every node renders the same notifications");
    cluster.finish().await;
}

/// Sends `request` `copies` times through every node at once; how many succeeded.
async fn race<F, Fut>(nodes: usize, copies: usize, request: F) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let mut tasks = Vec::new();
    for i in 0..nodes * copies {
        tasks.push(tokio::spawn(request(i % nodes)));
    }
    let mut won = 0;
    for task in tasks {
        if task.await.expect("a racing request") {
            won += 1;
        }
    }
    won
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_removals_of_the_same_participants_through_different_nodes_succeed_once() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    const COPIES: usize = 4;
    let gws: Vec<Gws> = (0..3).map(|i| cluster.gws(i)).collect();
    let agent = gws[0].login("agent15000").await;
    let consult = gws[0].login("test_consult").await;

    let voice = {
        let (gws, login) = (gws.clone(), agent.clone());
        race(3, COPIES, move |node| {
            let (gws, login) = (gws[node].clone(), login.clone());
            async move {
                let path = format!("/api/v2/me/calls/{VOICE_CALL_ID}");
                gws.post(&login, &path, VOICE_REMOVAL).await.codes() == (200, 0)
            }
        })
    };
    let chat = {
        let (gws, login) = (gws.clone(), consult.clone());
        race(3, COPIES, move |node| {
            let (gws, login) = (gws[node].clone(), login.clone());
            async move {
                let path = format!("/api/v2/me/chats/{CHAT_ID}");
                gws.post(&login, &path, CHAT_REMOVAL).await.codes() == (200, 0)
            }
        })
    };
    let evo = |member: &'static str| {
        let gws = gws.clone();
        race(3, COPIES, move |node| {
            let gws = gws[node].clone();
            async move {
                let response = gws
                    .request(
                        Method::DELETE,
                        &format!("/sessions/demo-session/members/{member}?format=json"),
                    )
                    .basic_auth("evo-user", Some(PASSWORD))
                    .send()
                    .await
                    .expect("DELETE");
                response.status().is_success()
            }
        })
    };
    let (voice, chat, m2, m3) = tokio::join!(voice, chat, evo("m2"), evo("m3"));
    assert_eq!(
        (voice, chat, m2, m3),
        (1, 1, 1, 1),
        "each participant is removed exactly once (voice, chat, m2, m3)"
    );
    cluster.finish().await;
}

/// The changes the SIGKILL and outage tests make: `Hold` and `Retrieve` of agent15000's call,
/// through the given nodes in turn, starting with the `first`-th (even: `Hold`); each answered
/// with success.
async fn hold_and_retrieve(gws: Vec<Gws>, first: usize, changes: usize) {
    let login = gws[0].login("agent15000").await;
    for i in first..first + changes {
        let operation = if i % 2 == 0 { "Hold" } else { "Retrieve" };
        let reply = gws[i % gws.len()]
            .post(
                &login,
                &format!("/api/v2/me/calls/{VOICE_CALL_ID}"),
                &format!(r#"{{"operationName":"{operation}"}}"#),
            )
            .await;
        assert_eq!(reply.codes(), (200, 0), "{operation}: {:?}", reply.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_its_clients_nothing() {
    let Some(mut cluster) = Cluster::start(3).await else {
        return;
    };
    let mut sticky = subscriber(&cluster.notifications(0), "agent15000").await;
    // The client talks to node B only, until B dies.
    let mut client = Roaming::start(vec![cluster.notifications(1)], "agent15000").await;
    let writers = || vec![cluster.gws(0), cluster.gws(2)];

    // Phase 1: B delivers three changes and the client keeps them.
    hold_and_retrieve(writers(), 0, 3).await;
    let mut expected = sticky.messages(3, WAIT).await;
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < 3 && tokio::time::Instant::now() < deadline {
        got.extend(client.connect(500).await);
    }
    assert_eq!(got, expected, "B delivered phase 1");

    // Phase 2: B's reply with the next changes is lost (its connect acknowledged phase 1), and
    // B is killed before the client could acknowledge them.
    hold_and_retrieve(writers(), 3, 3).await;
    expected.extend(sticky.messages(3, WAIT).await);
    assert_eq!(expected.len(), 6, "{:?}", types(&expected));
    assert!(
        client.connect_lost(2_000).await > 0,
        "B's lost reply carried messages"
    );
    cluster.nodes.remove(1).kill_hard();

    // The same session continues on C: phase 2 again, phase 1 not again, then nothing more.
    client.urls = vec![cluster.notifications(1)];
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < expected.len() && tokio::time::Instant::now() < deadline {
        got.extend(client.connect(500).await);
    }
    for _ in 0..2 {
        got.extend(client.connect(300).await);
    }
    assert_eq!(
        types(&got),
        types(&expected),
        "everything not acknowledged, once"
    );
    assert_eq!(got, expected);
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_postgresql_is_not_ready_and_recovers_by_itself() {
    let Some(mut cluster) = Cluster::start(1).await else {
        return;
    };
    // Node B reaches PostgreSQL through a proxy that can cut it off.
    let mut target = reqwest::Url::parse(cluster.url()).expect("a database URL");
    let host = target.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = target.port().unwrap_or(5432);
    let address: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("the database host resolves")
        .next()
        .expect("an address");
    let proxy = Proxy::start(address).await.expect("a proxy");
    target.set_host(Some("127.0.0.1")).expect("a host");
    target.set_port(Some(proxy.addr.port())).expect("a port");
    let separator = if target.query().is_some() { '&' } else { '?' };
    let url = format!(
        "{target}{separator}options=-csearch_path%3D{}",
        cluster.schema()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    cluster.nodes.push(ConferProcess::start(
        dir.path(),
        &["--database-url", url.as_str()],
    ));
    cluster._dirs.push(dir);
    let b = cluster.gws(1);
    let readyz = |gws: Gws| async move {
        gws.request(Method::GET, "/readyz")
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(readyz(b.clone()).await, 200);
    let mut on_b = subscriber(&cluster.notifications(1), "agent15000").await;

    // Cut: nothing PostgreSQL sends reaches B, and its open connections are closed.
    proxy.set_blackhole(true);
    proxy.cut_all();
    gws_support::eventually("B is not ready", WAIT, || {
        let b = b.clone();
        async move { readyz(b).await == 503 }
    })
    .await;
    // Meanwhile a change is made through A.
    hold_and_retrieve(vec![cluster.gws(0)], 0, 1).await;

    // PostgreSQL is back: B is ready again on its own, and its subscriber gets the change.
    proxy.set_blackhole(false);
    proxy.cut_all();
    gws_support::eventually("B is ready again", Duration::from_secs(60), || {
        let b = b.clone();
        async move { readyz(b).await == 200 }
    })
    .await;
    let got = on_b.messages(1, Duration::from_secs(30)).await;
    assert_eq!(types(&got), ["/v2/me/calls StatusChange"], "{got:?}");
    drop(proxy);
    cluster.finish().await;
}
