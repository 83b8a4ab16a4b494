//! Confer's maintainer tasks, run as `cargo xtask <task>` (the alias lives in `.cargo/config.toml`).
//!
//! - `cargo xtask codegen`: regenerate everything derived from `spec/`.
//! - `cargo xtask codegen --check`: fail, naming the files, when anything generated is stale.
//! - `cargo xtask openapi [--check]`: write (or check) the committed OpenAPI document,
//!   `openapi/confer.json`, from the code's annotations.
//! - `cargo xtask test`: install what the test suite needs, then run it (the README's test command).
//! - `cargo xtask bench [--quick] [--only PREFIX] [--update-docs]`: the benchmarks, their table,
//!   JSON and growth plot (`docs/benchmarks.md`).

mod bench;
mod codegen;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::Context;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  codegen [--check]   regenerate the models, .proto files and conversions from spec/
                      (--check: change nothing, fail if anything is stale)
  openapi [--check]   write openapi/confer.json from the code's annotations
                      (--check: change nothing, fail if it differs)
  test [ARGS...]      run the whole test suite (extra ARGS go to `cargo test`)
  bench [--quick] [--only PREFIX[,...]] [--update-docs] [--merge-only]
                      run the benchmarks (release builds), print the table, write
                      target/bench/report.json and growth.svg (docs/benchmarks.md)";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root();
    match args.first().map(String::as_str) {
        Some("codegen") => match &args[1..] {
            [] => codegen_write(&root),
            [flag] if flag == "--check" => codegen_check(&root),
            other => usage_error(&format!("codegen takes only --check, not {other:?}")),
        },
        Some("openapi") => match &args[1..] {
            [] => openapi(&root, false),
            [flag] if flag == "--check" => openapi(&root, true),
            other => usage_error(&format!("openapi takes only --check, not {other:?}")),
        },
        Some("test") => test(&root, &args[1..]),
        Some("bench") => bench::run(&root, &args[1..]),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => usage_error(&format!("unknown task `{other}`")),
        None => usage_error("no task given"),
    }
}

fn usage_error(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}\n\n{USAGE}");
    Ok(ExitCode::from(2))
}

fn repo_root() -> PathBuf {
    // xtask/ sits at the root of the workspace.
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn codegen_write(root: &Path) -> anyhow::Result<ExitCode> {
    let files = codegen::generate(root)?;
    let changed = codegen::write(root, &files)?;
    if changed.is_empty() {
        println!(
            "codegen: all {} generated files are up to date",
            files.len()
        );
    } else {
        for path in &changed {
            println!("codegen: updated {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn codegen_check(root: &Path) -> anyhow::Result<ExitCode> {
    let files = codegen::generate(root)?;
    let staleness = codegen::check(root, &files)?;
    if staleness.is_fresh() {
        println!(
            "codegen --check: all {} generated files are fresh",
            files.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for path in &staleness.stale {
        eprintln!(
            "stale: {} (differs from what spec/ generates)",
            path.display()
        );
    }
    for path in &staleness.orphans {
        eprintln!(
            "stale: {} (generated, but spec/ no longer produces it)",
            path.display()
        );
    }
    eprintln!("generated code is out of date: run `cargo xtask codegen` and commit the result");
    Ok(ExitCode::FAILURE)
}

/// The committed OpenAPI document.
const OPENAPI_DOCUMENT: &str = "openapi/confer.json";

/// `cargo xtask openapi [--check]`: the document is what the `confer` crate's `openapi` example
/// prints (the same `confer::openapi::document_json` that `GET /openapi.json` serves).
fn openapi(root: &Path, check: bool) -> anyhow::Result<ExitCode> {
    let output = Command::new(env_or("CARGO", "cargo"))
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "--locked",
            "-p",
            "confer",
            "--example",
            "openapi",
        ])
        .output()
        .context("running the confer openapi example")?;
    if !output.status.success() {
        anyhow::bail!(
            "the confer openapi example failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let generated = String::from_utf8(output.stdout).context("the document is not UTF-8")?;
    let path = root.join(OPENAPI_DOCUMENT);
    let committed = std::fs::read_to_string(&path).ok();
    if committed.as_deref() == Some(generated.as_str()) {
        println!("openapi: {OPENAPI_DOCUMENT} is fresh");
        return Ok(ExitCode::SUCCESS);
    }
    if check {
        eprintln!(
            "stale: {OPENAPI_DOCUMENT} differs from what the code's annotations produce: run `cargo xtask openapi` and commit the result"
        );
        return Ok(ExitCode::FAILURE);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, generated).with_context(|| format!("writing {}", path.display()))?;
    println!("openapi: updated {OPENAPI_DOCUMENT}");
    Ok(ExitCode::SUCCESS)
}

/// Debian packages the test suite drives as real peers: Chromium for the console's browser test,
/// nginx as the load balancer in front of several nodes. Each entry is (package, program).
const DEBIAN_TEST_PACKAGES: &[(&str, &str)] = &[
    ("chromium", "/usr/bin/chromium"),
    ("nginx-light", "/usr/sbin/nginx"),
];

/// Installs the missing [`DEBIAN_TEST_PACKAGES`] with apt-get, when this machine can (root, apt).
/// Where it cannot, the tests that need a program say so themselves (and fail in CI).
fn ensure_debian_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = DEBIAN_TEST_PACKAGES
        .iter()
        .filter(|(_, program)| !Path::new(program).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !is_root || !Path::new("/usr/bin/apt-get").exists() {
        eprintln!(
            "xtask test: missing Debian packages {missing:?} and cannot install them here \
             (needs root and apt-get); the tests that need them will say so"
        );
        return Ok(());
    }
    println!("xtask test: installing Debian packages {missing:?}");
    let install = |update_first: bool| -> anyhow::Result<bool> {
        if update_first {
            Command::new("apt-get")
                .args(["update", "-q"])
                .status()
                .context("running apt-get update")?;
        }
        Ok(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get install")?
            .success())
    };
    // A machine's package lists may be stale or absent: update once, then retry.
    if !install(false)? && !install(true)? {
        anyhow::bail!("apt-get could not install {missing:?}");
    }
    Ok(())
}

/// The README's test command: everything the suite needs, then the suite.
fn test(root: &Path, extra: &[String]) -> anyhow::Result<ExitCode> {
    ensure_debian_packages()?;
    let status = Command::new(env_or("CARGO", "cargo"))
        .current_dir(root)
        .args(["test", "--workspace", "--locked"])
        .args(extra)
        .status()
        .context("running cargo test")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}
