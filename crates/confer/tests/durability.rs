//! A success is answered only after its commit is durable: kill the server with SIGKILL right
//! after a burst of acknowledged removals, restart it on the same data, and find every one.

mod support;

use serde_json::{Value, json};
use support::{ConferProcess, http};

const SESSIONS: usize = 40;

fn session_id(i: usize) -> String {
    format!("durable-{i:03}")
}

#[tokio::test]
async fn acknowledged_removals_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    let client = http();

    // Sessions of three members each (evo-user's account, over the Evo API).
    for i in 0..SESSIONS {
        let created = client
            .post(server.url("/sessions"))
            .basic_auth("evo-user", Some("demo"))
            .json(&json!({
                "id": session_id(i),
                "accountId": "demo-account",
                "members": [
                    {"identity": format!("+1555100{i:03}"), "role": "Caller"},
                    {"identity": "agent@example.com", "role": "Agent"},
                    {"identity": format!("+1555200{i:03}"), "role": "Transfer"},
                ]
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    }

    // A burst of removals, all in flight at once; keep only the acknowledged ones.
    let mut burst = Vec::new();
    for i in 0..SESSIONS {
        let (client, url) = (
            client.clone(),
            server.url(&format!("/sessions/{}/members/x", session_id(i))),
        );
        burst.push(tokio::spawn(async move {
            let reply = client
                .delete(url)
                .query(&[("MemberToRemove", format!("+1555200{i:03}"))])
                .basic_auth("evo-user", Some("demo"))
                .send()
                .await
                .unwrap();
            (i, reply.status().as_u16())
        }));
    }
    let mut acknowledged = Vec::new();
    for task in burst {
        let (i, status) = task.await.unwrap();
        assert_eq!(status, 200, "removal {i}");
        acknowledged.push(i);
    }
    // No graceful anything: the process dies the instant the last answer is in.
    server.kill_hard();

    let restarted = ConferProcess::start(dir.path(), &[]);
    for i in acknowledged {
        let reply = client
            .get(restarted.url(&format!("/sessions/{}", session_id(i))))
            .basic_auth("evo-user", Some("demo"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        let session: Value = reply.json().await.unwrap();
        let identities: Vec<&str> = session["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["identity"].as_str())
            .collect();
        assert!(
            !identities.contains(&format!("+1555200{i:03}").as_str()),
            "acknowledged removal {i} was lost: {identities:?}"
        );
        assert_eq!(identities.len(), 2, "{identities:?}");
    }
    assert!(restarted.terminate());
}
