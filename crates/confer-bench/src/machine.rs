//! The machine a benchmark ran on, recorded in every report: figures only compare on the same
//! kind of machine.

use serde::{Deserialize, Serialize};

/// Cores, memory and operating system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs this process may run on.
    pub cores: u64,
    /// Total physical memory (`MemTotal` of `/proc/meminfo`), 0 when unknown.
    pub memory_bytes: u64,
    /// The distribution and kernel, e.g. `Debian GNU/Linux 13 (trixie), Linux 6.1.0`.
    pub os: String,
}

impl Machine {
    /// Reads this machine's figures; what cannot be read is 0 or `"unknown"`, never an error
    /// (a report without its memory figure is still worth writing).
    pub fn detect() -> Machine {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get() as u64);
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| meminfo_total_bytes(&text))
            .unwrap_or(0);
        Machine {
            cores,
            memory_bytes,
            os: os_description(),
        }
    }
}

/// `MemTotal:       24563476 kB` → bytes.
fn meminfo_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn os_description() -> String {
    let distribution = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|v| format!("{} {}", std::env::consts::OS, v.trim()));
    match (distribution, kernel) {
        (Some(d), Some(k)) => format!("{d}, {k}"),
        (Some(d), None) => d,
        (None, Some(k)) => k,
        (None, None) => std::env::consts::OS.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_read_in_bytes() {
        let text = "MemTotal:       24563476 kB\nMemFree:  1 kB\n";
        assert_eq!(meminfo_total_bytes(text), Some(24_563_476 * 1024));
        assert_eq!(meminfo_total_bytes("nothing"), None);
    }

    #[test]
    fn this_machine_has_cores() {
        let machine = Machine::detect();
        assert!(machine.cores >= 1);
        assert!(!machine.os.is_empty());
    }
}
