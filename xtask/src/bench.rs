//! `cargo xtask bench [--quick] [--only PREFIX[,PREFIX...]] [--update-docs]`: Confer's benchmarks
//! (issue 7) in one go.
//!
//! 1. builds the release binaries (`confer`, `confer-bench`, and `cometd-bench` when it builds);
//! 2. runs `target/release/confer-bench`, then `target/release/cometd-bench`, each with
//!    `--out target/bench/<bench>.json` (and `--quick`, `--only` when given);
//! 3. merges their JSON into `target/bench/report.json`, prints one Markdown table (also written
//!    to `target/bench/report.md`) with each row's target met or missed and by how much;
//! 4. draws the growth curves into `target/bench/growth.svg` (with `--update-docs`, also
//!    `docs/bench-growth.svg`).
//!
//! `--merge-only` skips steps 1 and 2: it merges the reports already in `target/bench/` (after
//! re-running one binary by hand, say).
//!
//! The report format is the benchmark binaries' (`confer_bench::report`); it is read here as
//! plain JSON so that the xtask does not build the benchmark crates' dependencies.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The benchmark binaries, in the order they run, with the sections each writes.
const BENCHES: [(&str, &[&str]); 2] = [
    (
        "confer-bench",
        &[
            "rest_removal",
            "grpc_removal",
            "baseline",
            "store_growth",
            "storage",
            "retention",
            "postgres",
            "two_node",
        ],
    ),
    (
        "cometd-bench",
        &[
            "delivery",
            "delivery_growth",
            "bayeux_peers",
            "session_memory",
            "two_node_delivery",
        ],
    ),
];

/// One benchmark binary's report (the shape `confer_bench::report::Report` writes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub bench: String,
    pub machine: Value,
    pub command: String,
    pub started: String,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub section: String,
    pub name: String,
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub target: Option<Target>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub what: String,
    pub met: bool,
    pub detail: String,
}

/// `target/bench/report.json`: every binary's rows, with where they came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merged {
    pub machine: Value,
    /// The `cargo xtask bench ...` command.
    pub command: String,
    pub started: String,
    /// Each binary's own command and start time.
    pub parts: Vec<Part>,
    pub rows: Vec<MergedRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub bench: String,
    pub command: String,
    pub started: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedRow {
    pub bench: String,
    #[serde(flatten)]
    pub row: Row,
}

pub struct Options {
    quick: bool,
    only: Vec<String>,
    update_docs: bool,
    merge_only: bool,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            quick: false,
            only: Vec::new(),
            update_docs: false,
            merge_only: false,
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--update-docs" => options.update_docs = true,
                "--merge-only" => options.merge_only = true,
                "--only" => options.only.extend(
                    iter.next()
                        .context("--only needs a section prefix")?
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned),
                ),
                other => anyhow::bail!(
                    "bench takes --quick, --only PREFIX[,PREFIX...], --update-docs and --merge-only, not {other:?}"
                ),
            }
        }
        Ok(options)
    }

    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| section.starts_with(p.as_str()))
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir))
}

fn cargo_build(root: &Path, packages: &[&str]) -> anyhow::Result<bool> {
    let mut command = Command::new(crate::env_or("CARGO", "cargo"));
    command
        .current_dir(root)
        .args(["build", "--release", "--locked"]);
    for package in packages {
        command.args(["-p", package]);
    }
    Ok(command
        .status()
        .with_context(|| format!("running cargo build for {packages:?}"))?
        .success())
}

/// `cargo xtask bench ...`.
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<ExitCode> {
    let options = Options::parse(args)?;
    let started = now_rfc3339();
    let target = target_dir(root);
    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let all_ok = options.merge_only || build_and_run(root, &target, &out_dir, &options)?;

    let mut command = String::from("cargo xtask bench");
    for arg in args {
        command.push(' ');
        command.push_str(arg);
    }
    let merged = merge(&out_dir, command, started, &options)?;
    let merged_path = out_dir.join("report.json");
    std::fs::write(&merged_path, serde_json::to_string_pretty(&merged)? + "\n")
        .with_context(|| format!("writing {}", merged_path.display()))?;
    let table = markdown(&merged);
    println!("\n{table}");
    std::fs::write(out_dir.join("report.md"), &table)?;

    let plot = out_dir.join("growth.svg");
    draw_growth(&merged, &plot)?;
    println!(
        "xtask bench: wrote {}, {} and {}",
        merged_path.display(),
        out_dir.join("report.md").display(),
        plot.display()
    );
    if options.update_docs {
        let docs = root.join("docs").join("bench-growth.svg");
        std::fs::copy(&plot, &docs).with_context(|| format!("copying to {}", docs.display()))?;
        println!("xtask bench: updated {}", docs.display());
    }

    let failed = merged.rows.iter().filter(|r| is_failed(&r.row)).count();
    if failed > 0 {
        eprintln!("xtask bench: {failed} row(s) failed");
    }
    Ok(if all_ok && failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Builds the binaries and runs the wanted ones; `false` when one of them failed or could not
/// run.
fn build_and_run(
    root: &Path,
    target: &Path,
    out_dir: &Path,
    options: &Options,
) -> anyhow::Result<bool> {
    println!("xtask bench: building the release binaries");
    if !cargo_build(root, &["confer", "confer-bench"])? {
        anyhow::bail!("building confer and confer-bench failed");
    }
    let cometd_builds = cargo_build(root, &["cometd-bench"])?;
    if !cometd_builds {
        eprintln!(
            "xtask bench: cometd-bench does not build; its sections are not run (an earlier \
             target/bench/cometd-bench.json, if any, is still merged)"
        );
    }

    let mut all_ok = true;
    for (bench, sections) in BENCHES {
        if !sections.iter().any(|s| options.wants(s)) {
            continue;
        }
        if bench == "cometd-bench" && !cometd_builds {
            all_ok = false;
            continue;
        }
        let out = out_dir.join(format!("{bench}.json"));
        // A stale report must not pass for this run's.
        let _ = std::fs::remove_file(&out);
        let mut command = Command::new(target.join("release").join(bench));
        command.current_dir(root).arg("--out").arg(&out);
        if options.quick {
            command.arg("--quick");
        }
        if !options.only.is_empty() {
            command.arg("--only").arg(options.only.join(","));
        }
        println!("xtask bench: running {bench}");
        let status = command
            .status()
            .with_context(|| format!("running target/release/{bench}"))?;
        if !status.success() {
            eprintln!("xtask bench: {bench} exited with {status}");
            all_ok = false;
        }
    }

    Ok(all_ok)
}

/// Reads every binary's report present in `dir` into one.
pub fn merge(
    dir: &Path,
    command: String,
    started: String,
    options: &Options,
) -> anyhow::Result<Merged> {
    let mut merged = Merged {
        machine: Value::Null,
        command,
        started,
        parts: Vec::new(),
        rows: Vec::new(),
    };
    for (bench, _) in BENCHES {
        let path = dir.join(format!("{bench}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let report: Report =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if merged.machine.is_null() {
            merged.machine = report.machine.clone();
        }
        merged.parts.push(Part {
            bench: report.bench.clone(),
            command: report.command.clone(),
            started: report.started.clone(),
        });
        merged.rows.extend(
            report
                .rows
                .into_iter()
                .filter(|row| options.wants(&row.section))
                .map(|row| MergedRow {
                    bench: report.bench.clone(),
                    row,
                }),
        );
    }
    Ok(merged)
}

fn outcome(row: &Row) -> Option<&str> {
    row.params.get("outcome").and_then(Value::as_str)
}

fn is_failed(row: &Row) -> bool {
    outcome(row).is_some_and(|o| o.starts_with("failed"))
}

/// A number for a table: thousands separated above 1,000, two decimals at most below.
fn fmt(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    if value.abs() >= 1000.0 {
        let digits = format!("{:.0}", value.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        return if value < 0.0 { format!("-{out}") } else { out };
    }
    if value.abs() >= 100.0 {
        return format!("{value:.0}");
    }
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The figures of a row, most telling first.
fn figures(row: &Row) -> String {
    let m = &row.metrics;
    let mut parts = Vec::new();
    let mut used: Vec<&str> = vec!["requests"];
    let mut take = |key: &'static str, render: &dyn Fn(f64) -> String| {
        if let Some(v) = m.get(key) {
            parts.push(render(*v));
            used.push(key);
        }
    };
    take("ops_per_s", &|v| format!("{} ops/s", fmt(v)));
    take("delivered_per_s", &|v| format!("{} delivered/s", fmt(v)));
    take("p50_ms", &|v| format!("p50 {} ms", fmt(v)));
    take("p99_ms", &|v| format!("p99 {} ms", fmt(v)));
    take("p999_ms", &|v| format!("p99.9 {} ms", fmt(v)));
    take("ratio_to_baseline", &|v| {
        format!("{}% of the bare limit", fmt(100.0 * v))
    });
    take("bytes_per_conference", &|v| {
        format!("{} B/conference", fmt(v))
    });
    take("bytes_per_session", &|v| format!("{} B/session", fmt(v)));
    take("errors", &|v| {
        if v > 0.0 {
            format!("**{} errors**", fmt(v))
        } else {
            String::new()
        }
    });
    for (key, value) in m {
        if !used.contains(&key.as_str()) {
            parts.push(format!("{key} {}", fmt(*value)));
        }
    }
    parts.retain(|p| !p.is_empty());
    parts.join(", ")
}

/// Short parameters worth a glance (numbers and short words; prose is left to the JSON).
fn params(row: &Row) -> String {
    row.params
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "outcome" | "includes" | "how"))
        .filter_map(|(key, value)| match value {
            Value::Number(n) => Some(format!("{key} {}", fmt(n.as_f64().unwrap_or(f64::NAN)))),
            Value::String(s) if s.len() <= 24 => Some(format!("{key} {s}")),
            Value::Bool(b) => Some(format!("{key} {b}")),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The table every run prints (and `docs/benchmarks.md` shows).
pub fn markdown(merged: &Merged) -> String {
    let mut out = String::new();
    let machine = &merged.machine;
    out.push_str(&format!(
        "`{}` on {} cores, {} GiB, {}; started {}\n\n",
        merged.command,
        machine["cores"],
        machine["memory_bytes"]
            .as_f64()
            .map_or("?".to_owned(), |b| fmt(b / 1024f64.powi(3))),
        machine["os"].as_str().unwrap_or("?"),
        merged.started
    ));
    out.push_str("| section | what | figures | parameters | target | result |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for MergedRow { row, .. } in &merged.rows {
        let (target, result) = match (&row.target, outcome(row)) {
            (_, Some(o)) if o.starts_with("not measured") => (String::new(), o.to_owned()),
            (_, Some(o)) if o.starts_with("failed") => (
                row.target
                    .as_ref()
                    .map_or(String::new(), |t| t.what.clone()),
                format!("**{o}**"),
            ),
            (Some(t), _) => (
                format!("{}: {}", t.what, t.detail),
                if t.met {
                    "met".to_owned()
                } else {
                    "**missed**".to_owned()
                },
            ),
            (None, _) => (String::new(), "measured".to_owned()),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            cell(&row.section),
            cell(&row.name),
            cell(&figures(row)),
            cell(&params(row)),
            cell(&target),
            cell(&result)
        ));
    }
    if merged.rows.is_empty() {
        out.push_str("| - | no rows: no benchmark wrote a report | | | | |\n");
    }
    out
}

/// One curve of a panel.
struct Curve {
    label: String,
    points: Vec<(f64, f64)>,
}

/// The store growth (removals/s and p99 against stored conferences) and the delivery growth
/// (p99 against subscribers, per transport).
fn growth_curves(merged: &Merged) -> [(String, String, String, Vec<Curve>); 3] {
    let ok = |row: &Row| !is_failed(row) && outcome(row).is_none_or(|o| !o.starts_with("not"));
    let mut throughput = Vec::new();
    let mut p99 = Vec::new();
    let mut delivery: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for MergedRow { row, .. } in &merged.rows {
        if !ok(row) {
            continue;
        }
        let m = &row.metrics;
        match row.section.as_str() {
            "store_growth" => {
                if let Some(&n) = m.get("conferences") {
                    if let Some(&v) = m.get("ops_per_s") {
                        throughput.push((n, v));
                    }
                    if let Some(&v) = m.get("p99_ms") {
                        p99.push((n, v));
                    }
                }
            }
            "delivery_growth" => {
                if let (Some(&n), Some(&v)) = (m.get("subscribers"), m.get("p99_ms")) {
                    let transport = row
                        .params
                        .get("transport")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned();
                    delivery.entry(transport).or_default().push((n, v));
                }
            }
            _ => {}
        }
    }
    let sorted = |mut points: Vec<(f64, f64)>| {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    [
        (
            "REST removals/s as the store grows".to_owned(),
            "stored conferences (SQLite)".to_owned(),
            "removals/s".to_owned(),
            vec![Curve {
                label: "removals/s".to_owned(),
                points: sorted(throughput),
            }],
        ),
        (
            "REST removal p99 as the store grows".to_owned(),
            "stored conferences (SQLite)".to_owned(),
            "p99 ms".to_owned(),
            vec![Curve {
                label: "p99 ms".to_owned(),
                points: sorted(p99),
            }],
        ),
        (
            "CometD delivery p99 as subscribers grow".to_owned(),
            "subscribers".to_owned(),
            "p99 ms".to_owned(),
            delivery
                .into_iter()
                .map(|(label, points)| Curve {
                    label,
                    points: sorted(points),
                })
                .collect(),
        ),
    ]
}

/// Draws the three growth panels into an SVG file.
pub fn draw_growth(merged: &Merged, path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;

    let root = SVGBackend::new(path, (1500, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let colors = [BLUE, RED, GREEN, MAGENTA];
    for (panel, (title, x_desc, y_desc, curves)) in panels.iter().zip(growth_curves(merged)) {
        let points: Vec<(f64, f64)> = curves.iter().flat_map(|c| c.points.clone()).collect();
        if points.is_empty() {
            let chart = ChartBuilder::on(panel)
                .caption(&title, ("sans-serif", 18))
                .margin(20)
                .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
            chart.plotting_area().draw(&Text::new(
                "not measured in this run",
                (0.25, 0.5),
                ("sans-serif", 16),
            ))?;
            continue;
        }
        let x_min = points
            .iter()
            .map(|p| p.0)
            .fold(f64::INFINITY, f64::min)
            .max(1.0);
        let x_max = points
            .iter()
            .map(|p| p.0)
            .fold(0.0, f64::max)
            .max(x_min * 10.0);
        let y_max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-3) * 1.15;
        let mut chart = ChartBuilder::on(panel)
            .caption(&title, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d((x_min / 1.5..x_max * 1.5).log_scale(), 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            // A log axis gets a key point at every 1-2-3..9 × 10^k: label only the powers of
            // ten, so the labels do not run into each other.
            .x_label_formatter(&|x| {
                let exponent = x.log10().round();
                if (x / 10f64.powf(exponent) - 1.0).abs() < 1e-6 {
                    fmt(*x)
                } else {
                    String::new()
                }
            })
            .light_line_style(WHITE)
            .y_label_formatter(&|y| fmt(*y))
            .draw()?;
        for (curve, color) in curves.iter().zip(colors.iter().cycle()) {
            let color = *color;
            chart
                .draw_series(LineSeries::new(curve.points.clone(), color.stroke_width(2)))?
                .label(curve.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart.draw_series(
                curve
                    .points
                    .iter()
                    .map(|&p| Circle::new(p, 4, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Now as RFC 3339 UTC, second precision.
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(section: &str, name: &str, metrics: &[(&str, f64)], params: Value) -> Row {
        Row {
            section: section.into(),
            name: name.into(),
            params: serde_json::from_value(params).unwrap(),
            metrics: metrics.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            target: None,
        }
    }

    fn write_report(dir: &Path, bench: &str, rows: Vec<Row>) {
        let report = Report {
            bench: bench.into(),
            machine: serde_json::json!({"cores": 2, "memory_bytes": 25769803776u64, "os": "Linux"}),
            command: format!("target/release/{bench} --quick"),
            started: "2026-11-22T10:00:00Z".into(),
            rows,
        };
        std::fs::write(
            dir.join(format!("{bench}.json")),
            serde_json::to_string(&report).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn reports_merge_into_one_table_and_one_plot() {
        let dir = tempfile::tempdir().unwrap();
        let mut rest = row(
            "rest_removal",
            "REST removal (SQLite)",
            &[
                ("ops_per_s", 1794.2),
                ("p99_ms", 31.6),
                ("ratio_to_baseline", 0.12),
            ],
            serde_json::json!({"outcome": "ok", "connections": 16}),
        );
        rest.target = Some(Target {
            what: "REST ≥ 50% of the limit".into(),
            met: false,
            detail: "12%: missed by 38%".into(),
        });
        write_report(
            dir.path(),
            "confer-bench",
            vec![
                rest,
                row(
                    "store_growth",
                    "at 10000",
                    &[
                        ("conferences", 10_000.0),
                        ("ops_per_s", 2000.0),
                        ("p99_ms", 20.0),
                    ],
                    serde_json::json!({"outcome": "ok"}),
                ),
                row(
                    "store_growth",
                    "at 100000",
                    &[
                        ("conferences", 100_000.0),
                        ("ops_per_s", 1800.0),
                        ("p99_ms", 25.0),
                    ],
                    serde_json::json!({"outcome": "ok"}),
                ),
                row(
                    "two_node",
                    "two nodes",
                    &[],
                    serde_json::json!({"outcome": "not measured: no PostgreSQL"}),
                ),
            ],
        );
        write_report(
            dir.path(),
            "cometd-bench",
            vec![
                row(
                    "delivery_growth",
                    "ws 100",
                    &[("subscribers", 100.0), ("p99_ms", 3.0)],
                    serde_json::json!({"transport": "websocket"}),
                ),
                row(
                    "delivery_growth",
                    "ws 1000",
                    &[("subscribers", 1000.0), ("p99_ms", 9.0)],
                    serde_json::json!({"transport": "websocket"}),
                ),
                row(
                    "delivery",
                    "broken",
                    &[("errors", 3.0)],
                    serde_json::json!({"outcome": "failed: 3 errors"}),
                ),
            ],
        );
        let options = Options {
            quick: true,
            only: vec![],
            update_docs: false,
            merge_only: false,
        };
        let merged = merge(
            dir.path(),
            "cargo xtask bench --quick".into(),
            "now".into(),
            &options,
        )
        .unwrap();
        assert_eq!(merged.parts.len(), 2);
        assert_eq!(merged.rows.len(), 7);
        assert_eq!(merged.rows[5].bench, "cometd-bench");
        let table = markdown(&merged);
        assert!(table.contains("| rest_removal | REST removal (SQLite) | 1,794 ops/s, p99 31.6 ms, 12% of the bare limit |"), "{table}");
        assert!(
            table.contains("REST ≥ 50% of the limit: 12%: missed by 38% | **missed** |"),
            "{table}"
        );
        assert!(table.contains("| not measured: no PostgreSQL |"), "{table}");
        assert!(table.contains("**failed: 3 errors**"), "{table}");
        assert!(table.contains("on 2 cores, 24 GiB"), "{table}");

        let svg = dir.path().join("growth.svg");
        draw_growth(&merged, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..100]);
        assert!(text.contains("REST removals/s as the store grows"));
        assert!(text.contains("websocket"));

        // --only keeps the matching sections.
        let only = Options {
            quick: true,
            only: vec!["store".into()],
            update_docs: false,
            merge_only: false,
        };
        let merged = merge(dir.path(), "x".into(), "now".into(), &only).unwrap();
        assert_eq!(merged.rows.len(), 2);
        assert!(merged.rows.iter().all(|r| r.row.section == "store_growth"));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt(1794.2), "1,794");
        assert_eq!(fmt(1_000_000.0), "1,000,000");
        assert_eq!(fmt(31.6), "31.6");
        assert_eq!(fmt(0.126), "0.13");
        assert_eq!(fmt(250.4), "250");
        assert!(now_rfc3339().ends_with('Z'));
    }
}
