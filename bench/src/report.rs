//! What the scenarios print: the result table of the short scenarios (floor, ping, message,
//! fan-out, idle, cluster, all), and the pieces every report shares — the machine line, the
//! server log summary, progress lines on stderr.

use crate::server::LogReport;
use crate::stats::{fmt_count, fmt_us, Summary};
use crate::usage::CpuMeter;

/// One line of the result table.
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub p50: String,
    pub p99: String,
    pub ratio: String,
    pub target: String,
}

impl Row {
    pub fn new(scenario: impl Into<String>, metric: impl Into<String>) -> Row {
        Row {
            scenario: scenario.into(),
            metric: metric.into(),
            p50: String::new(),
            p99: String::new(),
            ratio: String::new(),
            target: String::new(),
        }
    }
}

/// The table the short scenarios fill in, with its notes and the servers' logs.
#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    pub logs: Vec<(String, LogReport)>,
    /// The floor of this run, when it was measured: slashd's round trips are given as a
    /// ratio to it.
    pub floor: Option<Summary>,
}

impl Report {
    pub fn print(&self, database_url: Option<&str>) {
        let header = Row {
            scenario: "scenario".into(),
            metric: "metric".into(),
            p50: "p50 / value".into(),
            p99: "p99".into(),
            ratio: "× floor".into(),
            target: "target".into(),
        };
        let rows: Vec<&Row> = std::iter::once(&header).chain(self.rows.iter()).collect();
        let width =
            |f: fn(&Row) -> &String| rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
        let w = [
            width(|r| &r.scenario),
            width(|r| &r.metric),
            width(|r| &r.p50),
            width(|r| &r.p99),
            width(|r| &r.ratio),
        ];
        println!();
        println!("{}", machine_line("slashd benchmark", database_url));
        println!();
        for (i, r) in rows.iter().enumerate() {
            println!(
                "{}  {}  {}  {}  {}  {}",
                pad(&r.scenario, w[0], false),
                pad(&r.metric, w[1], false),
                pad(&r.p50, w[2], true),
                pad(&r.p99, w[3], true),
                pad(&r.ratio, w[4], true),
                r.target
            );
            if i == 0 {
                println!(
                    "{}",
                    "-".repeat(w.iter().sum::<usize>() + 12 + header.target.len() + 14)
                );
            }
        }
        if !self.notes.is_empty() {
            println!();
            for note in &self.notes {
                println!("  {note}");
            }
        }
        println!();
        for (name, log) in &self.logs {
            print_logs(name, log);
        }
    }
}

fn pad(s: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(s.chars().count()));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

/// `TITLE — N cores, CPU — database: DB`, the first line of every report: figures from
/// different machines or backends are not comparable.
pub fn machine_line(title: &str, database_url: Option<&str>) -> String {
    format!(
        "{title} — {} cores, {} — database: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model(),
        db_label(database_url)
    )
}

fn db_label(database_url: Option<&str>) -> &'static str {
    database_url
        .map(|u| {
            if u.starts_with("postgres") {
                "PostgreSQL"
            } else {
                "custom"
            }
        })
        .unwrap_or("SQLite")
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn print_logs(name: &str, log: &LogReport) {
    println!(
        "server log ({name}): {} warnings, {} errors",
        log.warnings, log.errors
    );
    for line in log.lines.iter().take(5) {
        println!("    {line}");
    }
}

/// The note under the table for a round-trip series.
pub fn sample_note(label: &str, s: &Summary, meter: &CpuMeter) -> String {
    format!(
        "{label}: {} round trips measured, slowest {}; other processes used {:.0}% of one core",
        fmt_count(s.count as f64),
        fmt_us(s.max),
        meter.others_pct()
    )
}

pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A progress line, on stderr so stdout is the report alone.
pub fn progress(what: &str) {
    eprintln!("bench: {what}");
}
