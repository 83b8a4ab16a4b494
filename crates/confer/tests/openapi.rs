//! The OpenAPI document against the real `confer` binary:
//!
//! * the committed `openapi/confer.json` is what the code produces, and what `GET /openapi.json`
//!   serves (CI fails when an annotation changes and the file does not: API changes show up in
//!   review);
//! * Swagger UI and its assets load from the binary, with no internet;
//! * `openapi-spec-validator` accepts the document;
//! * Schemathesis, with a fixed example budget and seed, finds no response of the demo server
//!   that contradicts the document (status, content type, headers, body schema) and no 5xx.
//!
//! The Python tools are pinned in `openapi/requirements.txt` and installed by these tests into a
//! virtualenv under `target/tmp` (see `support::python`).

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use support::{ConferProcess, http};

const TOOLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openapi");
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/confer.json");

/// Examples per operation in each Schemathesis run (fixed, with a fixed seed, so that a run is
/// repeatable and bounded).
const MAX_EXAMPLES: &str = "30";
const SEED: &str = "20261122";

fn python() -> PathBuf {
    support::python::venv(
        "openapi-tools",
        &Path::new(TOOLS_DIR).join("requirements.txt"),
    )
}

fn committed() -> String {
    std::fs::read_to_string(COMMITTED).expect("read openapi/confer.json")
}

#[test]
fn the_committed_document_is_what_the_code_produces() {
    let produced = confer::openapi::document_json().expect("render the document");
    assert!(
        committed() == produced,
        "openapi/confer.json is stale: run `cargo xtask openapi` and commit the result"
    );
}

#[tokio::test]
async fn the_server_serves_the_document_and_swagger_ui_offline() {
    let data = tempfile::tempdir().expect("a temporary directory");
    let server = ConferProcess::start(data.path(), &["--demo"]);
    let client = http();

    let served: serde_json::Value = client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json")
        .error_for_status()
        .expect("200")
        .json()
        .await
        .expect("JSON");
    let committed: serde_json::Value = serde_json::from_str(&committed()).expect("JSON");
    assert_eq!(
        served, committed,
        "the served document is the committed one"
    );

    let page = client
        .get(server.url("/swagger-ui/"))
        .send()
        .await
        .expect("GET /swagger-ui/");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("the page");
    assert!(html.contains("swagger-ui"), "{html}");

    for (asset, content_type, needle) in [
        ("swagger-ui.css", "text/css", ".swagger-ui"),
        ("swagger-ui-bundle.js", "javascript", "SwaggerUIBundle"),
        ("swagger-initializer.js", "javascript", "/openapi.json"),
    ] {
        let response = client
            .get(server.url(&format!("/swagger-ui/{asset}")))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {asset}: {error}"));
        assert_eq!(response.status(), 200, "{asset}");
        let served_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(served_type.contains(content_type), "{asset}: {served_type}");
        let body = response.text().await.expect("the asset");
        assert!(body.contains(needle), "{asset} lacks {needle}");
    }
}

#[test]
fn openapi_spec_validator_accepts_the_document() {
    let python = python();
    let output = Command::new(&python)
        .args(["-m", "openapi_spec_validator", COMMITTED])
        .stdin(Stdio::null())
        .output()
        .expect("run openapi-spec-validator");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the document:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("OK"), "{stdout}");
}

/// One Schemathesis run over the operations whose path matches `paths`, as `user`.
fn schemathesis(python: &Path, server: &ConferProcess, paths: &str, user: &str) -> String {
    let started = Instant::now();
    let output = Command::new(python.with_file_name("schemathesis"))
        // Its example database goes to the working directory: keep it out of the repository.
        .current_dir(&server.data_dir)
        .args(["run", COMMITTED])
        .args(["--url", &server.url("")])
        .args(["--include-path-regex", paths])
        .args(["--auth", &format!("{user}:demo")])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--workers", "1", "--no-color"])
        .stdin(Stdio::null())
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The figures docs/openapi.md records come from this summary.
    println!(
        "schemathesis {paths} as {user} ({:.1} s):\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "Schemathesis found responses that contradict the document ({paths} as {user}):\n{stdout}\n{stderr}"
    );
    stdout
}

#[test]
fn schemathesis_finds_no_response_that_contradicts_the_document() {
    let python = python();
    let data = tempfile::tempdir().expect("a temporary directory");
    // CSRF off, so that generated operations reach the handlers instead of all being refused by
    // the CSRF check (which Schemathesis cannot satisfy); everything else is the demo as served.
    let server = ConferProcess::start(data.path(), &["--demo", "--csrf", "false"]);
    for (paths, user) in [
        ("^/(api|healthz|readyz|metrics)", "agent15000"),
        ("^/(sessions|auth)", "evo-user"),
    ] {
        let summary = schemathesis(&python, &server, paths, user);
        assert!(summary.contains("passed"), "{summary}");
    }
}
