//! The supervisor console (`/console/`) as people use it: a fresh `confer serve --demo`, and the
//! page in Debian's headless Chromium driven by playwright-core (`tests/console/console.mjs`,
//! locked in `tests/console/package-lock.json`, installed with `npm ci` on first use).
//!
//! The browser run: agent15000 signs in (keyboard only), sees the demo call with 15001 and 15002
//! and removes 15001; agent15002 (on a 375 px screen) sees it go without reloading; the
//! supervisor picks agent15000 from the agent list (`GET /api/v2/users`) and listens in, is
//! refused removing the owner (the server's message shows next to 15000) and removes 15002; agent15002, offline meanwhile, shows the banner and catches
//! up by itself; test_consult removes chat_consult from the chat with a message to the customer;
//! a reload resumes the session and signing out forgets it. Console errors and failed requests
//! of every page fail the run, except those a scenario causes on purpose. Afterwards the server
//! is asked, over REST, whether the clicks really changed what they claim.
//!
//! Needs `/usr/bin/chromium` (`cargo xtask test` installs it) and `node` + `npm`: without them
//! the browser test fails when `CI` is set and is skipped with a message otherwise. The
//! screenshot goes to the target directory; `CONFER_UPDATE_SCREENSHOT=1` also copies it to
//! `docs/console.png`.

// clippy's zombie_processes does not see that `ConferProcess` waits for its child in `Drop`.
#[allow(clippy::zombie_processes)]
mod support;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use confer_core::demo::{CHAT_ID, VOICE_CALL_ID, demo_user};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use support::ConferProcess;
use tokio::{io::AsyncReadExt, process::Command};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser run (it takes about ten seconds; each wait inside is bounded at 10 s).
const BROWSER_RUN: Duration = Duration::from_secs(120);
const NPM_CI: Duration = Duration::from_secs(300);

fn node_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("console")
}

fn demo_server() -> (ConferProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ConferProcess::start(dir.path(), &["--demo"]);
    (server, dir)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

#[tokio::test]
async fn the_binary_serves_the_console_and_its_assets() {
    let (server, _dir) = demo_server();
    let http = no_redirects();

    let reply = http.get(server.url("/console")).send().await.expect("GET");
    assert_eq!(reply.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(reply.headers()[header::LOCATION], "/console/");

    let mut etag = None;
    for (path, content_type) in [
        ("/console/", "text/html; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/bayeux.js", "text/javascript; charset=utf-8"),
        ("/console/gws.js", "text/javascript; charset=utf-8"),
        ("/console/icon.svg", "image/svg+xml"),
    ] {
        let reply = http.get(server.url(path)).send().await.expect("GET");
        assert_eq!(reply.status(), StatusCode::OK, "{path}");
        assert_eq!(
            reply.headers()[header::CONTENT_TYPE],
            content_type,
            "{path}"
        );
        assert_eq!(reply.headers()[header::CACHE_CONTROL], "no-cache", "{path}");
        if path == "/console/" {
            etag = Some(reply.headers()[header::ETAG].clone());
        }
        assert!(!reply.bytes().await.expect("body").is_empty(), "{path}");
    }
    let reply = http
        .get(server.url("/console/"))
        .header(header::IF_NONE_MATCH, etag.expect("the page has an ETag"))
        .send()
        .await
        .expect("GET");
    assert_eq!(reply.status(), StatusCode::NOT_MODIFIED);

    let reply = http
        .get(server.url("/console/missing.js"))
        .send()
        .await
        .expect("GET");
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    // The console's routes sit beside the APIs without shadowing them.
    let reply = http.get(server.url("/healthz")).send().await.expect("GET");
    assert_eq!(reply.status(), StatusCode::OK);
}

/// Whether the browser test can run here; in CI it must.
fn browser_prerequisites() -> Result<(), String> {
    if !Path::new(CHROMIUM).exists() {
        return Err(format!(
            "{CHROMIUM} is missing (Debian package `chromium`; `cargo xtask test` installs it)"
        ));
    }
    for tool in ["node", "npm"] {
        let found = std::process::Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            return Err(format!("`{tool}` is not on PATH (Node.js 20 or later)"));
        }
    }
    Ok(())
}

/// The playwright-core version `package.json` pins.
fn pinned_playwright(project: &Path) -> String {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("package.json")).expect("package.json"),
    )
    .expect("package.json is JSON");
    manifest["dependencies"]["playwright-core"]
        .as_str()
        .expect("package.json pins playwright-core")
        .to_owned()
}

/// `npm ci` unless node_modules already holds the pinned playwright-core.
async fn ensure_node_modules(project: &Path) {
    let installed = std::fs::read_to_string(
        project
            .join("node_modules")
            .join("playwright-core")
            .join("package.json"),
    )
    .ok()
    .and_then(|text| serde_json::from_str::<Value>(&text).ok())
    .and_then(|manifest| manifest["version"].as_str().map(str::to_owned));
    if installed.as_deref() == Some(pinned_playwright(project).as_str()) {
        return;
    }
    let mut npm = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(project)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start npm ci");
    let status = tokio::time::timeout(NPM_CI, npm.wait())
        .await
        .unwrap_or_else(|_| panic!("npm ci took more than {NPM_CI:?} in {}", project.display()))
        .expect("wait for npm ci");
    assert!(status.success(), "npm ci failed in {}", project.display());
}

/// Runs the browser script; returns its exit status, its JSON lines and its stderr.
async fn run_browser(base: &str, screenshot: &Path) -> (Option<i32>, Vec<Value>, String) {
    let project = node_project();
    ensure_node_modules(&project).await;
    let device = demo_user("agent15000")
        .and_then(|user| user.device_id)
        .expect("agent15000 has a device");
    let config = json!({ "callId": VOICE_CALL_ID, "chatId": CHAT_ID, "agentDevice": device });
    let mut node = Command::new("node")
        .arg("console.mjs")
        .arg(base)
        .arg(screenshot)
        .arg(config.to_string())
        .current_dir(&project)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut stdout = node.stdout.take().expect("piped stdout");
    let mut stderr = node.stderr.take().expect("piped stderr");
    let run = async {
        let (mut out, mut err) = (String::new(), String::new());
        let (read_out, read_err, status) = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err),
            node.wait()
        );
        read_out.expect("read stdout");
        read_err.expect("read stderr");
        (status.expect("wait for node").code(), out, err)
    };
    let (code, out, err) = tokio::time::timeout(BROWSER_RUN, run)
        .await
        .unwrap_or_else(|_| panic!("the browser run took more than {BROWSER_RUN:?}"));
    let lines = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_owned())))
        .collect();
    (code, lines, err)
}

/// GET `path` as `username` (Basic; GETs need no CSRF token).
async fn get_as(server: &ConferProcess, username: &str, path: &str) -> Value {
    let reply = support::http()
        .get(server.url(path))
        .basic_auth(username, Some("demo"))
        .send()
        .await
        .expect("GET");
    assert_eq!(reply.status(), StatusCode::OK, "{username} GET {path}");
    reply.json().await.expect("JSON")
}

#[tokio::test]
async fn people_use_the_console_in_a_browser() {
    if let Err(missing) = browser_prerequisites() {
        let in_ci = std::env::var_os("CI").is_some_and(|value| !value.is_empty());
        assert!(
            !in_ci,
            "the console's browser test cannot run: {missing}; CI must provide it"
        );
        eprintln!("SKIPPED people_use_the_console_in_a_browser: {missing}");
        return;
    }
    let (server, _dir) = demo_server();
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    let _ = std::fs::remove_file(&screenshot);

    let (code, lines, stderr) = run_browser(&server.url(""), &screenshot).await;
    let transcript = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        code,
        Some(0),
        "the browser run failed:\n{transcript}\nstderr:\n{stderr}"
    );
    assert_eq!(
        lines.last().and_then(|line| line["step"].as_str()),
        Some("done"),
        "{transcript}"
    );

    // What the page showed is what the server holds.
    let calls = get_as(&server, "agent15000", "/api/v2/me/calls").await;
    assert_eq!(calls["calls"], json!([]), "the call is over for agent15000");
    let call = get_as(
        &server,
        "agent15000",
        &format!("/api/v2/me/calls/{VOICE_CALL_ID}"),
    )
    .await;
    assert_eq!(call["call"]["state"], "Released", "{call}");
    let chat = get_as(
        &server,
        "test_consult",
        &format!("/api/v2/me/chats/{CHAT_ID}"),
    )
    .await;
    let nicknames: Vec<&str> = chat["chat"]["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|participant| participant["nickname"].as_str())
        .collect();
    assert_eq!(
        nicknames,
        ["test_consult", "test_consult_clientL"],
        "{chat}"
    );
    let log = get_as(
        &server,
        "test_consult",
        &format!("/api/v2/me/chats/{CHAT_ID}/messages"),
    )
    .await;
    let entries = log["messages"].as_array().expect("messages");
    assert!(
        entries.iter().any(|entry| entry["type"] == "Text"
            && entry["text"] == "A colleague will follow up by email."),
        "the message to the customer is in the log: {log}"
    );
    assert!(
        entries
            .iter()
            .any(|entry| entry["type"] == "ParticipantLeft"
                && entry["from"]["nickname"] == "chat_consult"),
        "chat_consult's ParticipantLeft is in the log: {log}"
    );

    let png = std::fs::read(&screenshot).expect("the run took a screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} is not a real screenshot",
        screenshot.display()
    );
    if std::env::var("CONFER_UPDATE_SCREENSHOT").is_ok_and(|value| value == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console.png");
        std::fs::write(&docs, &png).expect("write docs/console.png");
        eprintln!("updated {}", docs.display());
    }
}
