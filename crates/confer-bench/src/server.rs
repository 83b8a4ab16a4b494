//! A `confer serve` process for a benchmark: its own process (so the load generator and the
//! server are measured apart, and its memory is its own), started on ephemeral ports, killed
//! when dropped.

use std::{
    collections::VecDeque,
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use anyhow::Context as _;

/// How long a server may take to print its banner (a big PostgreSQL store runs its migrations
/// check first; a cold SQLite file is opened).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of the server's stderr kept to explain a failure.
const STDERR_TAIL: usize = 40;

/// A running `confer serve`.
pub struct ConferServer {
    /// REST and CometD.
    pub rest: SocketAddr,
    /// gRPC.
    pub grpc: SocketAddr,
    child: Child,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl std::fmt::Debug for ConferServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConferServer")
            .field("rest", &self.rest)
            .field("grpc", &self.grpc)
            .field("pid", &self.child.id())
            .finish()
    }
}

/// The `confer` binary: `$CONFER_BIN`, else next to the current executable (both benchmark
/// binaries live in `target/release/` beside it), else one directory up (a test binary in
/// `target/<profile>/deps/`).
pub fn confer_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CONFER_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating the current executable")?;
    let name = format!("confer{}", std::env::consts::EXE_SUFFIX);
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(&name))
        .collect();
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "no confer binary at {candidates:?}: build it first \
                 (cargo build --release -p confer) or set CONFER_BIN"
            )
        })
}

/// Every simulated client of a benchmark is on loopback and many are one agent: the per-address,
/// per-listener and per-user limits that protect a public server (docs/security.md) would refuse
/// them, so they are raised out of the way. What is measured is the server, not its limits.
const BENCH_LIMITS: [&str; 6] = [
    "--max-connections",
    "1000000",
    "--max-connections-per-address",
    "1000000",
    "--cometd-max-sessions-per-user",
    "1000000",
];

impl ConferServer {
    /// Starts `confer serve --listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 <args>` and waits
    /// for its banner (`confer listening rest=http://A grpc=http://B`).
    pub fn start(args: &[&str]) -> anyhow::Result<ConferServer> {
        Self::start_binary(&confer_binary()?, args)
    }

    /// [`ConferServer::start`] with an explicit binary.
    pub fn start_binary(binary: &Path, args: &[&str]) -> anyhow::Result<ConferServer> {
        let mut child = Command::new(binary)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--grpc-listen",
                "127.0.0.1:0",
            ])
            .args(BENCH_LIMITS)
            .args(args)
            // The production default, whatever the caller's environment says.
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;

        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = stderr_tail.clone();
            // Drained for the whole life of the server, so it never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        let (banner_tx, banner_rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if !sent && let Some(addrs) = parse_banner(&line) {
                        let _ = banner_tx.send(addrs);
                        sent = true;
                    }
                }
            });
        }
        let mut server = ConferServer {
            rest: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            stderr_tail,
        };
        match banner_rx.recv_timeout(START_TIMEOUT) {
            Ok((rest, grpc)) => {
                server.rest = rest;
                server.grpc = grpc;
                Ok(server)
            }
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                anyhow::bail!(
                    "confer serve {args:?} printed no banner within {START_TIMEOUT:?} \
                     (exit status {status:?}); its last stderr lines:\n{}",
                    server.stderr_tail()
                )
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory (`VmRSS` of `/proc/<pid>/status`), in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_bytes_of(self.pid())
    }

    /// CPU seconds the server has used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds_of(self.pid())
    }

    /// The last lines the server wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// `http://<rest>`.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest)
    }

    /// Stops the server gracefully (SIGTERM, as a supervisor would) and waits up to 10 s, then
    /// kills it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        // SIGTERM through kill(1): the workspace forbids unsafe code, so no libc::kill.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ConferServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time a process has used (user + system, all its threads), in seconds: fields 14 and 15
/// of `/proc/<pid>/stat`, in the kernel's fixed user-space tick of 1/100 s.
pub fn cpu_seconds_of(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    stat_cpu_seconds(&stat).with_context(|| format!("unreadable /proc/{pid}/stat"))
}

fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `after_name` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// `VmRSS` of a process, in bytes.
pub fn rss_bytes_of(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    vm_rss_bytes(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `confer listening rest=http://127.0.0.1:1234 grpc=http://127.0.0.1:5678`.
pub fn parse_banner(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.trim().strip_prefix("confer listening ")?;
    let mut rest_addr = None;
    let mut grpc_addr = None;
    for part in rest.split_whitespace() {
        if let Some(v) = part.strip_prefix("rest=http://") {
            rest_addr = v.parse().ok();
        } else if let Some(v) = part.strip_prefix("grpc=http://") {
            grpc_addr = v.parse().ok();
        }
    }
    Some((rest_addr?, grpc_addr?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_gives_both_addresses() {
        let (rest, grpc) =
            parse_banner("confer listening rest=http://127.0.0.1:8080 grpc=http://127.0.0.1:50051")
                .unwrap();
        assert_eq!(rest.port(), 8080);
        assert_eq!(grpc.port(), 50051);
        assert!(parse_banner("confer listening rest=http://127.0.0.1:8080").is_none());
        assert!(parse_banner("Demo users").is_none());
    }

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 100 0 0";
        assert_eq!(stat_cpu_seconds(stat), Some(3.25));
        // This process has used some CPU, and the figure never goes down.
        let before = cpu_seconds_of(std::process::id()).unwrap();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_seconds_of(std::process::id()).unwrap() >= before);
    }

    #[test]
    fn rss_of_this_process_is_read() {
        let rss = rss_bytes_of(std::process::id()).unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        assert_eq!(vm_rss_bytes("VmRSS:\t  1234 kB\n"), Some(1234 * 1024));
    }
}
