//! Typed helpers for the host's capabilities. Each module but [`log`] needs its capability
//! in the manifest *and* granted in the server's config; otherwise the plugin is not
//! enabled at all.

use crate::glue::role_from_wit;
use crate::Role;

/// Log through the server's `tracing`, tagged with the plugin's name. Always available.
pub mod log {
    use crate::wit::slashd::plugin::log as w;

    pub fn debug(message: &str) {
        w::log(w::Level::Debug, message);
    }

    pub fn info(message: &str) {
        w::log(w::Level::Info, message);
    }

    pub fn warn(message: &str) {
        w::log(w::Level::Warn, message);
    }

    pub fn error(message: &str) {
        w::log(w::Level::Error, message);
    }
}

/// Capability `kv`: bytes under string keys, private to this plugin, kept in the database.
pub mod kv {
    use crate::wit::slashd::plugin::kv as w;

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
        w::get(key)
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), String> {
        w::set(key, value)
    }

    pub fn delete(key: &str) -> Result<(), String> {
        w::delete(key)
    }

    pub fn list_keys(prefix: &str) -> Result<Vec<String>, String> {
        w::list_keys(prefix)
    }

    /// A JSON value stored under `key`.
    pub fn get_json(key: &str) -> Result<Option<serde_json::Value>, String> {
        match get(key)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }

    pub fn set_json(key: &str, value: &serde_json::Value) -> Result<(), String> {
        set(key, value.to_string().as_bytes())
    }
}

/// Capability `config`: this plugin's `settings` table from the server's config file.
pub mod config {
    use crate::wit::slashd::plugin::config as w;

    pub fn get(key: &str) -> Option<serde_json::Value> {
        w::get(key).and_then(|text| serde_json::from_str(&text).ok())
    }

    pub fn all() -> serde_json::Value {
        serde_json::from_str(&w::all()).unwrap_or(serde_json::Value::Null)
    }
}

/// A command as `commands::visible` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    use super::{role_from_wit, CommandInfo};
    use crate::wit::slashd::plugin::commands as w;

    /// The commands the calling user may run, sorted by name.
    pub fn visible() -> Vec<CommandInfo> {
        w::visible()
            .into_iter()
            .map(|c| CommandInfo {
                name: c.name,
                aliases: c.aliases,
                summary: c.summary,
                usage: c.usage,
                min_role: role_from_wit(c.min_role),
                plugin: c.plugin,
            })
            .collect()
    }
}

/// Capability `stats`.
pub mod stats {
    pub use crate::wit::slashd::plugin::stats::{PluginStats, ServerStats};

    pub fn get() -> Result<ServerStats, String> {
        crate::wit::slashd::plugin::stats::get()
    }
}

/// Capability `sessions`.
pub mod sessions {
    pub use crate::wit::slashd::plugin::sessions::{ConnectionInfo, SessionDetail, SessionSummary};
    use crate::wit::slashd::plugin::sessions as w;

    /// The session the command was run in.
    pub fn current() -> Result<SessionDetail, String> {
        w::current()
    }

    /// The caller's sessions, newest activity first.
    pub fn list_mine(limit: u32) -> Result<Vec<SessionSummary>, String> {
        w::list_mine(limit)
    }

    /// End the current session; every participant gets `session_ended`.
    pub fn end_current() -> Result<(), String> {
        w::end_current()
    }

    /// The connection the command came from.
    pub fn connection() -> ConnectionInfo {
        w::connection()
    }
}
