//! The JSON every benchmark binary writes (`--out <file.json>`), and `cargo xtask bench` merges:
//!
//! ```json
//! {"bench": "confer-bench", "machine": {"cores": 2, "memory_bytes": 0, "os": "..."},
//!  "command": "target/release/confer-bench --quick", "started": "2026-11-22T10:00:00Z",
//!  "rows": [{"section": "rest_removal", "name": "...", "params": {}, "metrics": {},
//!            "target": {"what": "...", "met": true, "detail": "..."}}]}
//! ```
//!
//! Metric names are snake_case with their unit in the name (`ops_per_s`, `p99_ms`,
//! `bytes_per_conference`).

use std::{collections::BTreeMap, path::Path};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::machine::Machine;

/// One benchmark binary's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The binary's name (`confer-bench`, `cometd-bench`).
    pub bench: String,
    pub machine: Machine,
    /// The exact argv, joined with spaces.
    pub command: String,
    /// When the run started, RFC 3339 in UTC.
    pub started: String,
    pub rows: Vec<Row>,
}

/// One measured (or not measured) figure set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `rest_removal`, `grpc_removal`, `baseline`, `store_growth`, `storage`, `postgres`,
    /// `two_node`, `delivery`, ...
    pub section: String,
    pub name: String,
    /// What was run (connections, conferences, duration, transport, `outcome`...).
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// What was measured; unit in the name.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The issue's target this row is judged against, if any.
    #[serde(default)]
    pub target: Option<Target>,
}

/// A target and where the row stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The target in words: `"≥ 50% of the bare-hyper limit"`.
    pub what: String,
    pub met: bool,
    /// By how much it is met or missed: `"62% of the limit (target 50%)"`.
    pub detail: String,
}

impl Report {
    /// A report for this process: the machine, the exact command line and the start time.
    pub fn new(bench: impl Into<String>) -> Report {
        Report {
            bench: bench.into(),
            machine: Machine::detect(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            started: rfc3339_now(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Writes the report as pretty JSON, creating the parent directories.
    pub fn write(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads a report written by [`Report::write`].
    pub fn read(path: impl AsRef<Path>) -> anyhow::Result<Report> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

impl Row {
    pub fn new(section: impl Into<String>, name: impl Into<String>) -> Row {
        Row {
            section: section.into(),
            name: name.into(),
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
            target: None,
        }
    }

    /// Adds a parameter.
    pub fn param(mut self, key: &str, value: impl Into<Value>) -> Row {
        self.params.insert(key.to_owned(), value.into());
        self
    }

    /// Adds a metric; a non-finite value (a division by zero) is left out rather than written
    /// as an invalid JSON number.
    pub fn metric(mut self, key: &str, value: f64) -> Row {
        if value.is_finite() {
            self.metrics.insert(key.to_owned(), value);
        }
        self
    }

    pub fn target(mut self, target: Target) -> Row {
        self.target = Some(target);
        self
    }

    /// A row for a figure that could not be measured in this run, saying why: never a made-up
    /// number.
    pub fn not_measured(section: &str, name: &str, why: &str) -> Row {
        Row::new(section, name).param("outcome", format!("not measured: {why}"))
    }

    /// `params.outcome`, when set (`"ok"`, `"failed: ..."`, `"not measured: ..."`).
    pub fn outcome(&self) -> Option<&str> {
        self.params.get("outcome").and_then(Value::as_str)
    }

    /// Whether this row's run failed (errors) rather than measured or skipped.
    pub fn failed(&self) -> bool {
        self.outcome().is_some_and(|o| o.starts_with("failed"))
    }
}

impl Report {
    /// Prints a `FAILED` line for each failed row; true when none failed (the binary's exit).
    pub fn report_failures(&self) -> bool {
        let mut ok = true;
        for row in self.rows.iter().filter(|r| r.failed()) {
            eprintln!(
                "FAILED {} / {}: {}",
                row.section,
                row.name,
                row.outcome().unwrap_or("")
            );
            ok = false;
        }
        ok
    }
}

impl Target {
    /// A "higher is better" target: met when `value >= goal`.
    pub fn at_least(what: &str, value: f64, goal: f64, unit: &str) -> Target {
        let met = value >= goal;
        let detail = if met {
            format!(
                "{} {unit} (target ≥ {} {unit})",
                fmt_num(value),
                fmt_num(goal)
            )
        } else {
            format!(
                "{} {unit}: missed by {} {unit} ({:.0}% short of ≥ {} {unit})",
                fmt_num(value),
                fmt_num(goal - value),
                100.0 * (goal - value) / goal,
                fmt_num(goal)
            )
        };
        Target {
            what: what.to_owned(),
            met,
            detail,
        }
    }

    /// A "lower is better" target: met when `value < goal`.
    pub fn below(what: &str, value: f64, goal: f64, unit: &str) -> Target {
        let met = value < goal;
        let detail = if met {
            format!(
                "{} {unit} (target < {} {unit})",
                fmt_num(value),
                fmt_num(goal)
            )
        } else {
            format!(
                "{} {unit}: missed by {} {unit} ({:.0}% over < {} {unit})",
                fmt_num(value),
                fmt_num(value - goal),
                100.0 * (value - goal) / goal,
                fmt_num(goal)
            )
        };
        Target {
            what: what.to_owned(),
            met,
            detail,
        }
    }

    /// A "higher is better" target on a ratio (`0.62` = 62%): met when `ratio >= goal`; the
    /// detail speaks in percent and, when missed, in percentage points and as a factor.
    pub fn ratio_at_least(what: &str, ratio: f64, goal: f64, of_what: &str) -> Target {
        let met = ratio >= goal;
        let pct = |v: f64| fmt_num(100.0 * v);
        let detail = if met {
            format!("{}% of {of_what} (target ≥ {}%)", pct(ratio), pct(goal))
        } else {
            format!(
                "{}% of {of_what}: missed by {} percentage points (target ≥ {}%; {}× short)",
                pct(ratio),
                pct(goal - ratio),
                pct(goal),
                fmt_num(goal / ratio)
            )
        };
        Target {
            what: what.to_owned(),
            met,
            detail,
        }
    }

    /// A target that could not be judged (its figures are missing or the run failed).
    pub fn unjudged(what: &str, why: &str) -> Target {
        Target {
            what: what.to_owned(),
            met: false,
            detail: format!("not judged: {why}"),
        }
    }
}

/// A number with at most 2 decimals and no trailing zeros, readable in a table.
pub fn fmt_num(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    if value.abs() >= 100.0 {
        return format!("{value:.0}");
    }
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Now, RFC 3339 in UTC with second precision (`2026-11-22T10:00:00Z`).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the Unix epoch as RFC 3339 UTC (the proleptic Gregorian calendar).
pub fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn a_report_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut report = Report::new("confer-bench");
        report.push(
            Row::new("rest_removal", "REST removal")
                .param("connections", 16)
                .metric("ops_per_s", 1234.5)
                .metric("ratio_to_baseline", f64::NAN)
                .target(Target::at_least("≥ 50% of the limit", 40.0, 50.0, "%")),
        );
        report.push(Row::not_measured("two_node", "two nodes", "no PostgreSQL"));
        let path = dir.path().join("nested/out.json");
        report.write(&path).unwrap();
        let back = Report::read(&path).unwrap();
        assert_eq!(back, report);
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["rows"][0]["metrics"]["ops_per_s"], 1234.5);
        // NaN is left out, not written as invalid JSON.
        assert!(
            json["rows"][0]["metrics"]
                .get("ratio_to_baseline")
                .is_none()
        );
        assert_eq!(json["rows"][0]["target"]["met"], false);
        assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
        assert!(back.rows[1].outcome().unwrap().starts_with("not measured"));
    }

    #[test]
    fn targets_say_by_how_much() {
        let missed = Target::at_least("x", 40.0, 50.0, "%");
        assert!(!missed.met);
        assert!(
            missed.detail.contains("missed by 10 %"),
            "{}",
            missed.detail
        );
        let met = Target::below("p99", 3.2, 5.0, "ms");
        assert!(met.met);
        let ratio = Target::ratio_at_least("≥ 50% of the limit", 0.04, 0.5, "the limit");
        assert!(!ratio.met);
        assert!(
            ratio
                .detail
                .starts_with("4% of the limit: missed by 46 percentage points"),
            "{}",
            ratio.detail
        );
        assert!(ratio.detail.contains("12.5× short"), "{}", ratio.detail);
        let over = Target::below("p99", 7.5, 5.0, "ms");
        assert!(
            over.detail.contains("missed by 2.5 ms (50% over"),
            "{}",
            over.detail
        );
    }
}
