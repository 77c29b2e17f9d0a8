//! Host calls through the component's WIT imports.

use crate::glue::role_from_wit;
use crate::host::{
    CommandInfo, ConnectionInfo, Job, PluginStats, ServerStats, SessionDetail, SessionSummary,
};
use crate::wit::slashd::plugin as w;

pub fn log(level: &str, message: &str) {
    let level = match level {
        "debug" => w::log::Level::Debug,
        "warn" => w::log::Level::Warn,
        "error" => w::log::Level::Error,
        _ => w::log::Level::Info,
    };
    w::log::log(level, message);
}

pub fn kv_get(key: &str) -> Result<Option<Vec<u8>>, String> {
    w::kv::get(key)
}

pub fn kv_set(key: &str, value: &[u8]) -> Result<(), String> {
    w::kv::set(key, value)
}

pub fn kv_delete(key: &str) -> Result<(), String> {
    w::kv::delete(key)
}

pub fn kv_list_keys(prefix: &str) -> Result<Vec<String>, String> {
    w::kv::list_keys(prefix)
}

pub fn config_get(key: &str) -> Result<Option<String>, String> {
    w::config::get(key)
}

pub fn config_all() -> Result<String, String> {
    w::config::all()
}

pub fn commands_visible() -> Result<Vec<CommandInfo>, String> {
    Ok(w::commands::visible()?
        .into_iter()
        .map(|c| CommandInfo {
            name: c.name,
            aliases: c.aliases,
            summary: c.summary,
            usage: c.usage,
            min_role: role_from_wit(c.min_role),
            plugin: c.plugin,
        })
        .collect())
}

pub fn stats_get() -> Result<ServerStats, String> {
    let s = w::stats::get()?;
    Ok(ServerStats {
        uptime_secs: s.uptime_secs,
        connections: s.connections,
        users_online: s.users_online,
        sessions_active: s.sessions_active,
        sessions_total: s.sessions_total,
        messages_total: s.messages_total,
        messages_last_24h: s.messages_last_24h,
        plugins: s
            .plugins
            .into_iter()
            .map(|p| PluginStats {
                name: p.name,
                calls: p.calls,
                failures: p.failures,
            })
            .collect(),
    })
}

pub fn sessions_current() -> Result<SessionDetail, String> {
    let d = w::sessions::current()?;
    Ok(SessionDetail {
        id: d.id,
        title: d.title,
        status: d.status,
        created_at: d.created_at,
        owner_id: d.owner_id,
        message_count: d.message_count,
        participants: d.participants,
    })
}

pub fn sessions_list_mine(limit: u32) -> Result<Vec<SessionSummary>, String> {
    Ok(w::sessions::list_mine(limit)?
        .into_iter()
        .map(|s| SessionSummary {
            id: s.id,
            title: s.title,
            status: s.status,
            last_activity_at: s.last_activity_at,
            created_at: s.created_at,
        })
        .collect())
}

pub fn sessions_end_current() -> Result<(), String> {
    w::sessions::end_current()
}

pub fn sessions_connection() -> Result<ConnectionInfo, String> {
    let c = w::sessions::connection()?;
    Ok(ConnectionInfo {
        id: c.id,
        connected_at: c.connected_at,
    })
}

pub fn secrets_get(name: &str) -> Result<Option<String>, String> {
    w::secrets::get(name)
}

pub fn progress_report(text: &str, fraction: Option<f32>) -> Result<(), String> {
    w::progress::report(text, fraction)
}

pub fn progress_cancelled() -> Result<bool, String> {
    w::progress::cancelled()
}

pub fn jobs_list_mine() -> Result<Vec<Job>, String> {
    Ok(w::jobs::list_mine()?
        .into_iter()
        .map(|j| Job {
            id: j.id,
            command: j.command,
            user_id: j.user_id,
            user_name: j.user_name,
            session_id: j.session_id,
            started_at: j.started_at,
            text: j.text,
            fraction: j.fraction,
        })
        .collect())
}

pub fn jobs_cancel(id: &str) -> Result<(), String> {
    w::jobs::cancel(id)
}

pub use super::wasi_http::send as http_send;
