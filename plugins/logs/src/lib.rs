//! `/stat` (alias `/stats`): server statistics and log statistics.
//! `/reload [--days N]` (or `/reload N`): re-read the log files of the last `days` (1–365,
//! default 1; the host checks it) from the preopened `/logs` directory and rebuild the log
//! statistics, kept in kv so they survive restarts.

mod parse;
mod scan;

use serde_json::{json, Value};
use slashd_plugin_api::host::{kv, stats};
use slashd_plugin_api::{
    export_plugin, ArgKind, ArgSpec, Capability, Command, Invocation, Manifest, Plugin,
    PluginError, Reply, Role, Value as Typed,
};

const STATS_KEY: &str = "log-stats";
const LOG_DIR: &str = "/logs";

struct Logs;

impl Plugin for Logs {
    fn manifest() -> Manifest {
        Manifest::new("logs", env!("CARGO_PKG_VERSION"))
            .command(Command::new("stat", "System statistics and log statistics").alias("stats"))
            .command(
                Command::new(
                    "reload",
                    "Re-read the last days of logs and rebuild the log statistics",
                )
                .arg(
                    ArgSpec::new("days", ArgKind::Integer, "How many days back to read")
                        .default("1")
                        .range(Some(1.0), Some(365.0)),
                )
                .min_role(Role::Analyst),
            )
            .capability(Capability::Stats)
            .capability(Capability::Kv)
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        match call.command.as_str() {
            "reload" => reload(days(&call)?),
            _ => stat(),
        }
    }
}

/// The host bound and checked `days` (an integer from 1 to 365, default 1).
fn days(call: &Invocation) -> Result<u32, PluginError> {
    match call.value("days") {
        Some(Typed::Integer(d)) => {
            u32::try_from(*d).map_err(|_| PluginError::Usage("days must be from 1 to 365".into()))
        }
        _ => Err(PluginError::Failed("the host gave no days".into())),
    }
}

fn reload(days: u32) -> Result<Reply, PluginError> {
    let now = time::OffsetDateTime::now_utc();
    let report = scan::scan_dir(LOG_DIR, now, days).map_err(PluginError::Failed)?;
    let value = report.to_json(now, days);
    kv::set_json(STATS_KEY, &value).map_err(PluginError::Failed)?;
    let body = format!(
        "Log statistics rebuilt for the last {days} day(s): {files} file(s) read ({fskip} skipped), \
         {lines} line(s) read, {counted} counted, {older} older, {bad} unparseable.\n\n{table}",
        files = report.files_read,
        fskip = report.files_skipped,
        lines = report.lines_read,
        counted = report.lines_counted,
        older = report.lines_older,
        bad = report.lines_unparseable,
        table = log_tables(&value),
    );
    Ok(Reply::markdown(body).with_data(value))
}

fn stat() -> Result<Reply, PluginError> {
    let s = stats::get().map_err(PluginError::Failed)?;
    let logs = kv::get_json(STATS_KEY).map_err(PluginError::Failed)?;
    let mut body = format!(
        "**Server**\n\n| | |\n|---|---|\n\
         | uptime | {} |\n| connections | {} |\n| users online | {} |\n\
         | sessions | {} active, {} in all |\n| messages | {} in all, {} in the last 24 h |\n",
        human_duration(s.uptime_secs),
        s.connections,
        s.users_online,
        s.sessions_active,
        s.sessions_total,
        s.messages_total,
        s.messages_last_24h,
    );
    if !s.plugins.is_empty() {
        body.push_str("\n**Plugins**\n\n| plugin | calls | failures |\n|---|---|---|\n");
        for p in &s.plugins {
            body.push_str(&format!("| {} | {} | {} |\n", p.name, p.calls, p.failures));
        }
    }
    match &logs {
        Some(value) => body.push_str(&format!(
            "\n**Logs** (last {} day(s), as of {})\n\n{}",
            value["days"],
            value["generated_at"].as_str().unwrap_or("?"),
            log_tables(value)
        )),
        None => body.push_str("\n**Logs**: no log statistics yet — run `/reload [--days N]`."),
    }
    let plugins: Vec<Value> = s
        .plugins
        .iter()
        .map(|p| json!({"name": p.name, "calls": p.calls, "failures": p.failures}))
        .collect();
    let data = json!({
        "server": {
            "uptime_secs": s.uptime_secs,
            "connections": s.connections,
            "users_online": s.users_online,
            "sessions_active": s.sessions_active,
            "sessions_total": s.sessions_total,
            "messages_total": s.messages_total,
            "messages_last_24h": s.messages_last_24h,
        },
        "plugins": plugins,
        "logs": logs,
    });
    Ok(Reply::markdown(body).with_data(data))
}

fn log_tables(value: &Value) -> String {
    let mut out = String::from("| level | lines |\n|---|---|\n");
    if let Some(levels) = value["by_level"].as_object() {
        for (level, n) in levels {
            out.push_str(&format!("| {level} | {n} |\n"));
        }
    }
    out.push_str("\n| day | lines |\n|---|---|\n");
    if let Some(days) = value["by_day"].as_object() {
        for (day, n) in days {
            out.push_str(&format!("| {day} | {n} |\n"));
        }
    }
    out.push_str("\n| source | lines |\n|---|---|\n");
    if let Some(sources) = value["top_sources"].as_array() {
        for s in sources {
            out.push_str(&format!(
                "| {} | {} |\n",
                s["source"].as_str().unwrap_or("-"),
                s["lines"]
            ));
        }
    }
    out
}

fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

export_plugin!(Logs);
