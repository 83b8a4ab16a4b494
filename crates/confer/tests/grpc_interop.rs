//! Interop with a gRPC client nobody here wrote: Python `grpcio` with `grpcio-reflection`, given no
//! `.proto`, against the real `confer` binary. It discovers the API by server reflection, removes a
//! participant, and receives the notification on `Subscribe` (see `grpc_interop/interop.py`).
//!
//! The client is installed by this test from PyPI, pinned in `grpc_interop/requirements.txt`,
//! into a virtualenv under `target/tmp` that later runs reuse.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::ConferProcess;

const CLIENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc_interop");

/// The virtualenv with the pinned client, created (and the requirements installed) when missing
/// or when the requirements changed. A marker file written last tells a complete one.
fn python_client() -> PathBuf {
    support::python::venv(
        "grpc-interop",
        &Path::new(CLIENT_DIR).join("requirements.txt"),
    )
}

#[test]
fn a_python_reflection_client_removes_a_participant_and_is_notified() {
    let python = python_client();
    let data = tempfile::tempdir().expect("a temporary directory");
    let server = ConferProcess::start(data.path(), &["--demo"]);

    let started = Instant::now();
    let mut child = Command::new(&python)
        .arg(Path::new(CLIENT_DIR).join("interop.py"))
        .arg(server.grpc.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Python client");
    // Bounded: the client has its own 30 s timeouts; this catches a hang anywhere else.
    while child.try_wait().expect("poll the client").is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the Python client did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("the client's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

    // Discovered by reflection (v1alpha through the library, v1 by hand): every service.
    for (listing, reflection) in [
        ("services", "grpc.reflection.v1alpha.ServerReflection"),
        ("v1_services", "grpc.reflection.v1.ServerReflection"),
    ] {
        let names: Vec<&str> = report[listing]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        for service in [
            "confer.v1.AuthService",
            "confer.v1.CallService",
            "confer.v1.ChatService",
            "confer.v1.NotificationService",
            "confer.v1.SessionService",
            "grpc.health.v1.Health",
            reflection,
        ] {
            assert!(
                names.contains(&service),
                "{listing} lacks {service}: {names:?}"
            );
        }
    }

    // The removal: the owner's call has only 15002 left (JSON field names are protobuf's).
    let removed = &report["removed"];
    let parties: Vec<&str> = removed["call"]["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["phoneNumber"].as_str())
        .collect();
    assert_eq!(parties, ["15002"], "{removed}");

    // The notification agent15002 received, for that very commit.
    assert_eq!(report["notification_payload"], "call");
    let notification = &report["notification"];
    assert_eq!(
        notification["seq"], removed["commit"]["lastSeq"],
        "{notification}"
    );
    assert_eq!(
        notification["call"]["notificationType"],
        "ParticipantsUpdated"
    );
    assert_eq!(notification["call"]["phoneNumber"], "15002");
    let seen: Vec<&str> = notification["call"]["call"]["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["phoneNumber"].as_str())
        .collect();
    assert_eq!(seen, ["15000"], "{notification}");

    // Removing the same party again is refused with the table's code.
    assert_eq!(report["refusal"], "NOT_FOUND");
    assert!(server.terminate(), "the server stops cleanly");
}
