//! Typed helpers for the host's capabilities. Each module but [`log`] needs its capability
//! in the manifest, and the server's config must grant what the manifest asks for, or the
//! plugin is not enabled. A call without its grant returns an error naming the capability.
//! The same helpers work in a wasm component and in a native plugin (which has no
//! [`http`], [`secrets`], [`progress`] or [`jobs`]: it is trusted code with its own means).

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

    /// One setting, `None` when it is not set.
    pub fn get(key: &str) -> Result<Option<serde_json::Value>, String> {
        Ok(backend::config_get(key)?.and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Every setting, as a JSON object.
    pub fn all() -> Result<serde_json::Value, String> {
        serde_json::from_str(&backend::config_all()?).map_err(|e| e.to_string())
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
    pub fn visible() -> Result<Vec<CommandInfo>, String> {
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
    pub fn connection() -> Result<ConnectionInfo, String> {
        backend::sessions_connection()
    }
}

/// Capability `secrets`: values the admin configures for this plugin (`[plugins.NAME]
/// secrets`), read from the server's environment or a file. The host hides every secret's
/// value in the plugin's log lines, errors and replies (`[secret]`).
pub mod secrets {
    /// The secret named `name`, `None` when the config names no such secret.
    pub fn get(name: &str) -> Result<Option<String>, String> {
        crate::backend::secrets_get(name)
    }
}

/// Capability `progress`: tell the session how a long command is going, and learn that it
/// was cancelled (stop soon after: the host stops the plugin at its next host call).
pub mod progress {
    /// Sent to the session as `command_progress`; `fraction` is clamped to 0.0..=1.0.
    pub fn report(text: &str, fraction: Option<f32>) -> Result<(), String> {
        crate::backend::progress_report(text, fraction)
    }

    /// True once the invoker or an admin cancelled this call.
    pub fn cancelled() -> Result<bool, String> {
        crate::backend::progress_cancelled()
    }
}

/// A running command as [`jobs::list_mine`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The invocation id.
    pub id: String,
    pub command: String,
    pub user_id: String,
    pub user_name: String,
    pub session_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// The last progress report.
    pub text: String,
    pub fraction: Option<f32>,
}

/// Capability `jobs`: the caller's running commands.
pub mod jobs {
    pub use super::Job;

    /// The caller's running commands (every user's, for an admin), oldest first.
    pub fn list_mine() -> Result<Vec<Job>, String> {
        crate::backend::jobs_list_mine()
    }

    /// Cancel a running command: the caller's own, or anyone's for an admin.
    pub fn cancel(id: &str) -> Result<(), String> {
        crate::backend::jobs_cancel(id)
    }
}

/// Capability `http`: outbound requests through `wasi:http`, to the URLs the admin's
/// allow-list names (`[plugins.NAME] http.allow`). Redirects are not followed: a 3xx is a
/// response like any other. A refused request is an [`http::Error`] naming the wasi:http
/// error code (`HttpRequestDenied`, `HttpResponseBodySize`, `ConnectionTimeout`, …).
pub mod http {
    use serde::de::DeserializeOwned;

    /// Why a request got no response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Error(pub String);

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Error {}

    impl From<Error> for crate::PluginError {
        fn from(e: Error) -> crate::PluginError {
            crate::PluginError::Failed(format!("HTTP request failed: {e}"))
        }
    }

    /// An outgoing request, built up and then [`Request::send`]-ed.
    #[derive(Debug, Clone)]
    pub struct Request {
        pub method: String,
        pub url: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Request {
        pub fn new(method: &str, url: &str) -> Request {
            Request {
                method: method.to_ascii_uppercase(),
                url: url.to_string(),
                headers: Vec::new(),
                body: Vec::new(),
            }
        }

        pub fn get(url: &str) -> Request {
            Request::new("GET", url)
        }

        pub fn post(url: &str) -> Request {
            Request::new("POST", url)
        }

        pub fn header(mut self, name: &str, value: &str) -> Request {
            self.headers.push((name.to_string(), value.to_string()));
            self
        }

        /// `Authorization: Bearer TOKEN`.
        pub fn bearer(self, token: &str) -> Request {
            self.header("authorization", &format!("Bearer {token}"))
        }

        /// A JSON body, with its content type.
        pub fn json(self, value: &serde_json::Value) -> Request {
            self.header("content-type", "application/json")
                .body(value.to_string().into_bytes())
        }

        pub fn body(mut self, body: Vec<u8>) -> Request {
            self.body = body;
            self
        }

        pub fn send(self) -> Result<Response, Error> {
            crate::backend::http_send(self).map_err(Error)
        }
    }

    /// A response, its body read whole (the host bounds its size).
    #[derive(Debug, Clone)]
    pub struct Response {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        /// A header's first value (names compare case-insensitively).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }

        pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
            serde_json::from_slice(&self.body)
                .map_err(|e| Error(format!("the response is not the JSON expected: {e}")))
        }

        pub fn is_success(&self) -> bool {
            (200..300).contains(&self.status)
        }
    }

    pub fn get(url: &str) -> Result<Response, Error> {
        Request::get(url).send()
    }

    pub fn post_json(url: &str, body: &serde_json::Value) -> Result<Response, Error> {
        Request::post(url).json(body).send()
    }
}
