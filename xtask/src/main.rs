//! Confer's maintainer tasks, run as `cargo xtask <task>` (the alias lives in `.cargo/config.toml`).
//!
//! - `cargo xtask codegen`: regenerate everything derived from `spec/`.
//! - `cargo xtask codegen --check`: fail, naming the files, when anything generated is stale.
//! - `cargo xtask test`: install what the test suite needs, then run it (the README's test command).

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
  test [ARGS...]      run the whole test suite (extra ARGS go to `cargo test`)";

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
        Some("test") => test(&root, &args[1..]),
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

/// The README's test command: everything the suite needs, then the suite.
fn test(root: &Path, extra: &[String]) -> anyhow::Result<ExitCode> {
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
