//! Python tools the end-to-end tests drive (the gRPC interop client, the OpenAPI validator,
//! Schemathesis): each from a pinned requirements file, in a virtualenv under `target/` that is
//! created once per set of pins and reused. Creation holds a lock file beside the virtualenv,
//! because tests run in parallel (and test binaries may too) and two `python -m venv` into one
//! directory fail with "File exists".

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// The Python of a virtualenv `name` holding `requirements` (a pinned `requirements.txt`),
/// created on first use (set `PYTHON` to choose the interpreter that creates it).
pub fn venv(name: &str, requirements: &Path) -> PathBuf {
    let pins = std::fs::read_to_string(requirements)
        .unwrap_or_else(|error| panic!("read {}: {error}", requirements.display()));
    // The pins name the virtualenv: changing them makes a new one.
    let tag: u64 = pins.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-venv-{tag:016x}"));
    let python = venv.join("bin/python");
    let ready = venv.join(".installed");
    if ready.exists() {
        return python;
    }
    let lock_path = venv.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|error| panic!("create {}: {error}", lock_path.display()));
    // Blocks while another test creates it; released when `lock` drops at return.
    lock.lock()
        .unwrap_or_else(|error| panic!("lock {}: {error}", lock_path.display()));
    if ready.exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let python3 = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    run(
        Command::new(&python3).args(["-m", "venv"]).arg(&venv),
        "create the virtualenv",
    );
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements),
        &format!("install {} from PyPI", requirements.display()),
    );
    std::fs::write(&ready, pins).expect("mark the virtualenv complete");
    python
}

/// Runs `command` to completion, panicking with its output if it fails.
pub fn run(command: &mut Command, what: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot {what}: {error}"));
    assert!(
        output.status.success(),
        "could not {what}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
