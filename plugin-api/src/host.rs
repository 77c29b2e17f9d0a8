//! Typed helpers for the host's capabilities. Each module but [`log`] needs its capability
//! in the manifest *and* granted in the server's config; otherwise the plugin is not
//! enabled at all. The same helpers work in a wasm component and in a native plugin.

use serde::{Deserialize, Serialize};

use crate::Role;

/// Log through the server's `tracing`, tagged with the plugin's name. Always available.
pub mod log {
    use crate::backend;

    pub fn debug(message: &str) {
        backend::log("debug", message);
    }

    pub fn info(message: &str) {
        backend::log("info", message);
    }

    pub fn warn(message: &str) {
        backend::log("warn", message);
    }

    pub fn error(message: &str) {
        backend::log("error", message);
    }
}

/// Capability `kv`: bytes under string keys, private to this plugin, kept in the database.
pub mod kv {
    use crate::backend;

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
        backend::kv_get(key)
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), String> {
        backend::kv_set(key, value)
    }

    pub fn delete(key: &str) -> Result<(), String> {
        backend::kv_delete(key)
    }

    pub fn list_keys(prefix: &str) -> Result<Vec<String>, String> {
        backend::kv_list_keys(prefix)
    }

    /// A JSON value stored under `key`.
    pub fn get_json(key: &str) -> Result<Option<serde_json::Value>, String> {
        match get(key)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }

    pub fn set_json(key: &str, value: &serde_json::Value) -> Result<(), String> {
        set(key, value.to_string().as_bytes())
    }
}

/// Capability `config`: this plugin's `settings` table from the server's config file.
pub mod config {
    use crate::backend;

    pub fn get(key: &str) -> Option<serde_json::Value> {
        backend::config_get(key).and_then(|text| serde_json::from_str(&text).ok())
    }

    pub fn all() -> serde_json::Value {
        serde_json::from_str(&backend::config_all()).unwrap_or(serde_json::Value::Null)
    }
}

/// A command as `commands::visible` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInfo {
    pub name: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub usage: String,
    pub min_role: Role,
    pub plugin: String,
}

/// Capability `commands`.
pub mod commands {
    use super::CommandInfo;

    /// The commands the calling user may run, sorted by name.
    pub fn visible() -> Vec<CommandInfo> {
        crate::backend::commands_visible()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginStats {
    pub name: String,
    pub calls: u64,
    pub failures: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStats {
    pub uptime_secs: u64,
    pub connections: u64,
    pub users_online: u64,
    pub sessions_active: u64,
    pub sessions_total: u64,
    pub messages_total: u64,
    pub messages_last_24h: u64,
    pub plugins: Vec<PluginStats>,
}

/// Capability `stats`.
pub mod stats {
    pub use super::{PluginStats, ServerStats};

    pub fn get() -> Result<ServerStats, String> {
        crate::backend::stats_get()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub id: String,
    pub title: String,
    pub status: String,
    /// RFC 3339.
    pub last_activity_at: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetail {
    pub id: String,
    pub title: String,
    pub status: String,
    pub created_at: String,
    pub owner_id: String,
    pub message_count: u64,
    /// User ids connected to the session right now.
    pub participants: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    pub id: String,
    /// RFC 3339.
    pub connected_at: String,
}

/// Capability `sessions`.
pub mod sessions {
    pub use super::{ConnectionInfo, SessionDetail, SessionSummary};
    use crate::backend;

    /// The session the command was run in.
    pub fn current() -> Result<SessionDetail, String> {
        backend::sessions_current()
    }

    /// The caller's sessions, newest activity first.
    pub fn list_mine(limit: u32) -> Result<Vec<SessionSummary>, String> {
        backend::sessions_list_mine(limit)
    }

    /// End the current session (owner only); every participant gets `session_ended`.
    pub fn end_current() -> Result<(), String> {
        backend::sessions_end_current()
    }

    /// The connection the command came from.
    pub fn connection() -> ConnectionInfo {
        backend::sessions_connection()
    }
}
