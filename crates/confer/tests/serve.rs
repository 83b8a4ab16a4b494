//! `confer serve` and `confer users` as a newcomer runs them: the real binary, real HTTP.

mod support;

use std::{
    io::Write,
    process::{Command, Stdio},
};

use support::{ConferProcess, http};

#[tokio::test]
async fn the_demo_prints_its_credentials_and_serves_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    for expected in [
        "every password is \"demo\"",
        "agent15000",
        "631608b3-ceb1-472b-ba05-2ae39555b0d1",
        "test_consult",
        "chat_consult",
        "evo-user",
        "01RCC3N118B1V0SL8O7GK2LAES00000O",
        "00010a9FSGFP001F",
        "demo-session",
    ] {
        assert!(
            server.banner.contains(expected),
            "banner lacks {expected:?}:\n{}",
            server.banner
        );
    }
    let client = http();
    let alive = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), 200);
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
    let metrics = client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"confer_http_requests_total{route="/readyz",method="GET",status="200"} 1"#),
        "{text}"
    );
    // Families with labels appear with their first sample (removals: see the dialect tests).
    for family in [
        "confer_notification_subscribers",
        "confer_notification_delivery_lag_seconds",
        "confer_store_commit_conflicts",
    ] {
        assert!(text.contains(family), "/metrics lacks {family}:\n{text}");
    }
    assert!(server.terminate(), "SIGTERM stops the server cleanly");
}

#[tokio::test]
async fn a_restart_on_the_same_data_keeps_the_demo_and_loads_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let first = ConferProcess::start(dir.path(), &["--demo"]);
    assert!(first.terminate());
    let second = ConferProcess::start(dir.path(), &["--demo"]);
    assert_eq!(
        http()
            .get(second.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(second.terminate());
    let list = run_confer(
        &["users", "list", "--data-dir", dir.path().to_str().unwrap()],
        "",
    );
    assert!(list.status.success(), "{list:?}");
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("agent15000\t"))
            .count(),
        1,
        "{stdout}"
    );
}

fn run_confer(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_confer"))
        .args(args)
        .env_remove("CONFER_DATABASE_URL")
        .env_remove("CONFER_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn users_are_added_with_a_password_from_stdin_and_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let added = run_confer(
        &[
            "users",
            "add",
            "--username",
            "alice",
            "--role",
            "supervisor",
            "--phone-number",
            "15010",
            "--data-dir",
            data,
        ],
        "s3cret\n",
    );
    assert!(added.status.success(), "{added:?}");
    assert!(String::from_utf8_lossy(&added.stdout).contains("added user alice"));

    let again = run_confer(
        &[
            "users",
            "add",
            "--username",
            "alice",
            "--role",
            "agent",
            "--data-dir",
            data,
        ],
        "x",
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{again:?}"
    );

    let empty = run_confer(
        &[
            "users",
            "add",
            "--username",
            "bob",
            "--role",
            "agent",
            "--data-dir",
            data,
        ],
        "",
    );
    assert!(!empty.status.success(), "an empty password is refused");

    let bad = run_confer(
        &[
            "users",
            "add",
            "--username",
            "a:b",
            "--role",
            "agent",
            "--data-dir",
            data,
        ],
        "x",
    );
    assert!(!bad.status.success(), "a ':' would break Basic credentials");

    let list = run_confer(&["users", "list", "--data-dir", data], "");
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert!(
        stdout.contains("alice\tid=alice\troles=supervisor\tphone=15010"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"), "the password is never shown");
    assert!(!stdout.contains("bob"));

    // The stored user authenticates against the server (and only with the right password).
    let server = ConferProcess::start(dir.path(), &[]);
    let app_store = confer_app::store::open(
        &confer_app::config::ServeArgs {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        }
        .resolve()
        .unwrap(),
    )
    .await
    .unwrap();
    let keys =
        confer_app::auth::tokens::KeyRing::single(confer_app::auth::tokens::SigningKey::random());
    let auth = confer_app::auth::Authenticator::new(
        app_store,
        keys,
        confer_app::auth::DEFAULT_SESSION_TTL,
    );
    let actor = auth.verify_password("alice", "s3cret").await.unwrap();
    assert_eq!(
        actor
            .phone_number
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("15010")
    );
    assert!(auth.verify_password("alice", "S3cret").await.is_err());
    assert!(server.terminate());
}

#[tokio::test]
async fn settings_come_from_the_environment_and_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("confer.toml");
    std::fs::write(&config, "demo = true\n").unwrap();
    // CONFER_CONFIG names the file; the file turns the demo on.
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_confer"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .env("CONFER_CONFIG", &config)
        .env("CONFER_DATA_DIR", &data)
        .env_remove("CONFER_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let banner = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut seen = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("confer listening") {
                break;
            }
        }
        seen
    });
    let banner = tokio::time::timeout(std::time::Duration::from_secs(60), banner)
        .await
        .unwrap()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(banner.contains("Demo users"), "{banner}");
    assert!(
        data.join("confer.db").exists(),
        "CONFER_DATA_DIR chose the data directory"
    );

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_confer"))
        .args(["serve", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("cannot read config file"),
        "{bad:?}"
    );
}
