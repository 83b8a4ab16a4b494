//! What every end-to-end test goes through: a real `confer` process on port 0, with its own data
//! directory, killed when the test ends.

#![allow(dead_code)]

pub mod python;

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// A running `confer serve`.
pub struct ConferProcess {
    child: Option<Child>,
    pub rest: SocketAddr,
    pub grpc: SocketAddr,
    /// Everything the process printed before it was ready (for failure messages).
    pub banner: String,
    pub data_dir: PathBuf,
}

impl ConferProcess {
    /// Starts `confer serve` on ephemeral ports with `data_dir` and extra arguments, and waits
    /// (bounded) until it says where it listens.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_confer"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--grpc-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .env_remove("CONFER_DATABASE_URL")
            .env_remove("CONFER_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start confer");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    // The test stopped listening; keep draining so the server never blocks.
                    continue;
                }
            }
        });
        let mut banner = String::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match lines_rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("confer did not report its address in 60 s; it printed:\n{banner}");
                }
            };
            banner.push_str(&line);
            banner.push('\n');
            if let Some(rest) = line.strip_prefix("confer listening ") {
                let mut rest_addr = None;
                let mut grpc_addr = None;
                for part in rest.split_whitespace() {
                    if let Some(v) = part.strip_prefix("rest=http://") {
                        rest_addr = v.parse().ok();
                    } else if let Some(v) = part.strip_prefix("grpc=http://") {
                        grpc_addr = v.parse().ok();
                    }
                }
                let (Some(rest), Some(grpc)) = (rest_addr, grpc_addr) else {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("unparsable banner line: {line}");
                };
                return Self {
                    child: Some(child),
                    rest,
                    grpc,
                    banner,
                    data_dir: data_dir.to_path_buf(),
                };
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The server's resident memory in KiB (Linux `/proc`), for reports; 0 where unknown.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmRSS:"))
                    .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Runs `confer <args>` on this server's data directory (an administrator's command beside
    /// the running server), with `stdin` as its standard input; panics unless it succeeds.
    pub fn admin(&self, args: &[&str], stdin: &str) -> String {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_confer"))
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("RUST_LOG", "warn")
            .env_remove("CONFER_DATABASE_URL")
            .env_remove("CONFER_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start confer");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let output = child.wait_with_output().expect("confer runs");
        assert!(
            output.status.success(),
            "confer {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.rest)
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    pub fn kill_hard(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (bounded) for a clean exit; returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }
}

impl Drop for ConferProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP client for tests: no proxies, bounded timeouts.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}
