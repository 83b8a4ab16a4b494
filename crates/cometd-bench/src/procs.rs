//! Child processes the benchmark measures (Confer's Bayeux engine in `cometd-bench
//! serve-bayeux`, cometd-nodejs-server and Faye under Node) and what `/proc` says about
//! processes: resident memory, CPU time, open-file limits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::Endpoint;

/// How long a server may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `npm ci` may take for the peers' project.
const NPM_TIMEOUT: Duration = Duration::from_secs(300);

/// A server process that prints `listening http://ADDR/PATH` once ready; killed on drop.
pub struct ServerProc {
    name: String,
    child: Child,
    /// Where it serves CometD.
    pub addr: SocketAddr,
    /// The CometD path.
    pub path: String,
}

impl std::fmt::Debug for ServerProc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProc")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("pid", &self.child.id())
            .finish()
    }
}

/// Parses `listening http://127.0.0.1:PORT/path`.
pub fn parse_listening(line: &str) -> Option<(SocketAddr, String)> {
    let rest = line.trim().strip_prefix("listening http://")?;
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    Some((addr.parse().ok()?, format!("/{path}")))
}

impl ServerProc {
    /// Starts `command` (stdout piped, stderr inherited so a crash explains itself) and waits
    /// for its `listening` line.
    pub async fn start(name: &str, mut command: Command) -> anyhow::Result<ServerProc> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(found) = parse_listening(&line) {
                    return Ok(Some(found));
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let (addr, path) = match found {
            Ok(Ok(Some(found))) => found,
            Ok(Ok(None)) => bail!("{name} exited before listening"),
            Ok(Err(e)) => bail!("reading {name}'s output: {e}"),
            Err(_) => bail!("{name} did not listen within {START_TIMEOUT:?}"),
        };
        // Keep draining stdout so a chatty server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProc {
            name: name.to_owned(),
            child,
            addr,
            path,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its CometD endpoint (no credentials).
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.addr, &self.path)
    }

    /// Kills it and waits for it to be gone.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// The peers' Node project (package.json, lockfile and server scripts).
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// Installs the peers' Node project with `npm ci` when its `node_modules` lacks either
/// package, bounded by [`NPM_TIMEOUT`]. Fails with a clear message when node or npm is missing.
pub async fn ensure_peers_installed(dir: &Path) -> anyhow::Result<()> {
    let node_version = Command::new("node")
        .arg("--version")
        .output()
        .await
        .context("the peer comparison needs Node.js (20 or later) on PATH: `node` was not found")?;
    if !node_version.status.success() {
        bail!("`node --version` failed");
    }
    let modules = dir.join("node_modules");
    if modules.join("cometd-nodejs-server").is_dir() && modules.join("faye").is_dir() {
        return Ok(());
    }
    eprintln!("cometd-bench: npm ci in {}", dir.display());
    let mut child = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("the peer comparison needs npm on PATH (npm ci): `npm` was not found")?;
    match tokio::time::timeout(NPM_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => bail!("npm ci failed in {} ({status})", dir.display()),
        Ok(Err(e)) => bail!("waiting for npm ci: {e}"),
        Err(_) => bail!("npm ci took more than {NPM_TIMEOUT:?} in {}", dir.display()),
    }
}

/// Starts one of the peers' scripts (`cometd-server.js`, `faye-server.js`) under Node.
pub async fn start_peer(name: &str, script: &str) -> anyhow::Result<ServerProc> {
    let dir = peers_dir();
    ensure_peers_installed(&dir).await?;
    let mut command = Command::new("node");
    command.arg(script).current_dir(&dir);
    ServerProc::start(name, command).await
}

/// Starts Confer's Bayeux engine in its own process: this binary's `serve-bayeux`.
pub async fn start_bayeux() -> anyhow::Result<ServerProc> {
    let exe = std::env::current_exe().context("locating cometd-bench")?;
    let mut command = Command::new(exe);
    command.arg("serve-bayeux");
    ServerProc::start("confer-bayeux", command).await
}

/// `VmRSS` of a process in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User + system CPU time a process has used, in seconds (`/proc/<pid>/stat`, clock ticks of
/// 1/100 s, the value on every Linux this runs on).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its `)` are fixed.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After `)`: state is index 0, so utime (field 14) is index 11 and stime index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// This process's own CPU time in seconds.
pub fn own_cpu_seconds() -> Option<f64> {
    cpu_seconds(std::process::id())
}

/// The soft `Max open files` of a process.
pub fn open_files_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (child processes inherit it)
/// and returns the new soft limit.
pub fn raise_nofile_limit() -> anyhow::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).context("setrlimit(RLIMIT_NOFILE)")?;
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

/// Waits until `pred` holds or `within` passes; returns whether it held.
pub async fn wait_until(within: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_is_parsed() {
        let (addr, path) = parse_listening("listening http://127.0.0.1:4242/cometd\n").unwrap();
        assert_eq!(addr.port(), 4242);
        assert_eq!(path, "/cometd");
        assert!(parse_listening("starting").is_none());
        assert!(parse_listening("listening http://nowhere/cometd").is_none());
    }

    #[test]
    fn this_process_is_readable_in_proc() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 0);
        assert!(cpu_seconds(pid).is_some());
        assert!(open_files_limit(pid).unwrap() > 0);
    }
}
