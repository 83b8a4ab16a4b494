//! Runs the Node scripts of a test's Node project (the unmodified official CometD client),
//! installing it from its lockfile (`npm ci`) the first time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The Node projects already installed by this test binary.
static INSTALLED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn tool_missing(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
}

/// Runs `npm ci` in `dir` once (per test binary) if its `node_modules` lacks the CometD
/// client, bounded by a timeout. Panics with a clear message if node or npm is absent.
pub fn ensure_node_modules(dir: &Path) {
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if installed.iter().any(|done| done == dir) {
        return;
    }
    assert!(
        !tool_missing("node"),
        "the official-client tests need Node.js (20 or later) on PATH: `node` was not found"
    );
    if !dir.join("node_modules").join("cometd").exists() {
        assert!(
            !tool_missing("npm"),
            "the official-client tests need npm on PATH to install {} (npm ci): `npm` was not found",
            dir.display()
        );
        let mut child = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("start npm ci");
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = child.try_wait().expect("wait for npm ci") {
                assert!(status.success(), "npm ci failed in {}", dir.display());
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("npm ci took more than 300 s in {}", dir.display());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    installed.push(dir.to_path_buf());
}

/// A running script; killed when dropped.
pub struct Script {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    pub seen: Vec<Value>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Script {
    /// Runs `node <script> <args>` in the Node project `dir`.
    pub fn start(dir: &Path, script: &str, args: &[&str]) -> Self {
        ensure_node_modules(dir);
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut r = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = r.next_line().await {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let mut r = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = r.next_line().await {
                s.push_str(&line);
                s.push('\n');
            }
            s
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The next JSON line, or `None` at end of output or timeout.
    async fn next(&mut self, until: Instant) -> Option<Value> {
        let left = until.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(left, self.lines.recv()).await.ok()??;
        let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
        self.seen.push(v.clone());
        Some(v)
    }

    /// Reads lines until one satisfies `pred`; panics (showing everything
    /// seen) if none does within `within`.
    pub async fn wait_for(&mut self, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + within;
        while let Some(v) = self.next(until).await {
            if pred(&v) {
                return v;
            }
        }
        panic!(
            "expected line not seen within {within:?}; seen: {:#?}",
            self.seen
        );
    }

    /// Waits for the script to exit; returns its exit code and all lines.
    pub async fn finish(mut self, within: Duration) -> (Option<i32>, Vec<Value>) {
        let until = Instant::now() + within;
        while self.next(until).await.is_some() {}
        let left = until.saturating_duration_since(Instant::now());
        let status = match tokio::time::timeout(left, self.child.wait()).await {
            Ok(Ok(s)) => s.code(),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        };
        if status != Some(0) {
            let err = tokio::time::timeout(Duration::from_secs(2), &mut self.stderr)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            eprintln!("node exited with {status:?}; stderr:\n{err}");
        }
        (status, std::mem::take(&mut self.seen))
    }
}

pub fn event(v: &Value, name: &str) -> bool {
    v["event"] == name
}

/// The `(channel, data)` of every `message` line.
pub fn messages(lines: &[Value]) -> Vec<(String, Value)> {
    lines
        .iter()
        .filter(|v| event(v, "message"))
        .map(|v| {
            (
                v["channel"].as_str().unwrap_or_default().to_owned(),
                v["data"].clone(),
            )
        })
        .collect()
}
