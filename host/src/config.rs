//! Configuration: `slashd.toml` layered under `SLASHD_…` environment variables, parsed and
//! validated once at start. Every duration is humantime text ("10s", "12h", "30d").
//!
//! Environment mapping: `SLASHD_SECTION_KEY` sets `section.key` (the section is the part
//! before the first `_`, so `SLASHD_AUTH_JWT_SECRET` → `auth.jwt_secret`). A name with `__`
//! is split on `__` instead, for deeper keys: `SLASHD_PLUGINS__LOGS__ENABLED`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::auth::Role;

/// Environment variables that share the prefix but are not config keys.
const NON_CONFIG_ENV: &[&str] = &["ADMIN_PASSWORD", "CONFIG", "LOG", "LOG_FORMAT"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub sessions: SessionsConfig,
    pub realtime: RealtimeConfig,
    pub commands: CommandsConfig,
    /// The assistant that answers ordinary messages. Absent: plain chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assistant: Option<AssistantConfig>,
    /// Several nodes: Redis fan-out. Absent: one node, in-process fan-out.
    pub cluster: ClusterConfig,
    /// One table per plugin, by name. For a built-in, only the keys set here override its
    /// defaults.
    pub plugins: BTreeMap<String, PluginConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port (the log says which).
    pub listen: SocketAddr,
    /// Where the embedded database and the generated JWT secret live.
    pub data_dir: PathBuf,
    /// Largest accepted REST request body.
    pub max_body_bytes: usize,
    /// A REST request that takes longer is answered 408.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long shutdown waits for connections to flush and close.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`. Absent: `sqlite://<data_dir>/slashd.db`.
    pub url: Option<String>,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 16,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 secret. With neither this nor `public_key_pem`, a secret is generated and kept
    /// in `<data_dir>/jwt_secret`.
    pub jwt_secret: Option<String>,
    /// RS256 or Ed25519 public key (PEM) of an external identity provider. Local login and
    /// `slashd token issue` need a secret, so they are off in this mode.
    pub public_key_pem: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// Clock skew tolerated on `exp`/`nbf`, at most 5 s.
    pub leeway_secs: u64,
    /// Create unknown users from the token's `name` and `role` on first use.
    pub auto_provision: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            public_key_pem: None,
            issuer: None,
            audience: None,
            token_ttl: Duration::from_secs(12 * 3600),
            leeway_secs: 5,
            auto_provision: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// Active sessions idle this long are ended; ended sessions this old are deleted.
    #[serde(with = "humantime_serde")]
    pub idle_retention: Duration,
    /// How often the retention sweep runs.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// Longest title, in characters.
    pub max_title_chars: usize,
    /// Largest session metadata, as serialized JSON bytes.
    pub max_metadata_bytes: usize,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            idle_retention: Duration::from_secs(30 * 24 * 3600),
            sweep_interval: Duration::from_secs(600),
            max_title_chars: 200,
            max_metadata_bytes: 16 * 1024,
        }
    }
}

/// Limits of the WebSocket layer. Everything a client controls has one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Time allowed for the first `auth` frame when the upgrade carried no token.
    #[serde(with = "humantime_serde")]
    pub auth_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A connection silent this long (no pong, no frame) is closed.
    #[serde(with = "humantime_serde")]
    pub pong_timeout: Duration,
    /// Largest inbound frame/message; bigger closes the connection with 1009.
    pub max_frame_bytes: usize,
    /// Longest message `content`, in characters.
    pub max_content_chars: usize,
    /// Sustained inbound frames per second per connection (token bucket refill).
    pub rate_per_sec: f64,
    /// Burst of inbound frames allowed above the sustained rate.
    pub rate_burst: f64,
    /// Frames refused for rate that a connection may accumulate (refilled at the sustained
    /// rate) before it is judged to be flooding and closed with 1008.
    pub flood_strikes: f64,
    pub max_sessions_per_connection: usize,
    pub max_connections_per_user: usize,
    /// Frames queued for one connection; a client that stops reading is closed when full.
    pub outbound_queue: usize,
    /// Most messages returned in `joined.missed`; past it `has_more` is true.
    pub recovery_cap: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            auth_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(60),
            max_frame_bytes: 64 * 1024,
            max_content_chars: 8000,
            rate_per_sec: 20.0,
            rate_burst: 40.0,
            flood_strikes: 100.0,
            max_sessions_per_connection: 32,
            max_connections_per_user: 16,
            outbound_queue: 1024,
            recovery_cap: 500,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://host:6379`. Every node of a cluster must use the same PostgreSQL database,
    /// the same Redis, and the same `auth.jwt_secret`.
    pub redis_url: Option<String>,
    /// Prefix of the Redis channel and keys, so several deployments can share one Redis.
    pub namespace: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: None,
            namespace: "slashd".into(),
        }
    }
}

/// Limits of command dispatch and of the plugin sandbox, shared by all plugins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommandsConfig {
    /// Sustained commands per second per user, and the burst above it.
    pub rate_per_sec: f64,
    pub rate_burst: f64,
    /// Plugin calls running at once on this node; more wait for a slot.
    pub max_concurrent: usize,
    /// Defaults for `[plugins.NAME] timeout_ms` and `memory_mb`.
    pub timeout_ms: u64,
    pub memory_mb: u64,
    /// Largest reply (body + data) a plugin may return.
    pub max_reply_bytes: usize,
    /// Host calls one invocation may make.
    pub host_call_quota: u32,
    pub kv_max_key_bytes: usize,
    pub kv_max_value_bytes: usize,
    /// Keys one plugin may keep.
    pub kv_max_keys: i64,
    /// Where compiled plugins are cached. Default: `<data_dir>/plugin-cache`.
    pub cache_dir: Option<PathBuf>,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig {
            rate_per_sec: 5.0,
            rate_burst: 10.0,
            max_concurrent: 32,
            timeout_ms: 2000,
            memory_mb: 64,
            max_reply_bytes: 1024 * 1024,
            host_call_quota: 10_000,
            kv_max_key_bytes: 256,
            kv_max_value_bytes: 64 * 1024,
            kv_max_keys: 1000,
            cache_dir: None,
        }
    }
}

/// `[assistant]`: an OpenAI-compatible chat-completions endpoint that answers ordinary
/// (non-command) messages, streamed. Only `base_url` and `model` must be set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssistantConfig {
    /// The API root, e.g. `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key (sent as a bearer token). Absent: no
    /// `Authorization` header, as local servers expect.
    pub api_key_env: Option<String>,
    /// The system prompt, sent first. Empty: none is sent.
    pub system_prompt: String,
    /// The most stored messages sent as context (newest kept).
    pub max_context_messages: usize,
    /// The most characters of message content sent as context; the oldest messages are
    /// dropped first (the system prompt does not count).
    pub max_context_chars: usize,
    /// Longest reply, in bytes of text. A longer one fails as `assistant_failed`.
    pub max_reply_bytes: usize,
    /// Model calls running at once on this node; more wait for a slot.
    pub max_concurrent: usize,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest silence from the endpoint: before the response starts, or between chunks.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Longest whole reply, from the request to the last chunk.
    #[serde(with = "humantime_serde")]
    pub total_timeout: Duration,
}

impl Default for AssistantConfig {
    fn default() -> Self {
        AssistantConfig {
            base_url: String::new(),
            model: String::new(),
            api_key_env: None,
            system_prompt: "You are a helpful assistant taking part in a group chat.".into(),
            max_context_messages: 20,
            max_context_chars: 32_000,
            max_reply_bytes: 64 * 1024,
            max_concurrent: 16,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(300),
        }
    }
}

impl AssistantConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let url = self.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("assistant.base_url must be an http:// or https:// URL");
        }
        if self.model.trim().is_empty() {
            bail!("assistant.model must be set");
        }
        if self.api_key_env.as_deref().is_some_and(|v| v.is_empty()) {
            bail!("assistant.api_key_env must name an environment variable");
        }
        if self.max_context_messages == 0 || self.max_context_messages > 500 {
            bail!("assistant.max_context_messages must be within 1..=500");
        }
        if self.max_context_chars < 100 {
            bail!("assistant.max_context_chars must be at least 100");
        }
        if self.max_reply_bytes == 0 || self.max_concurrent == 0 {
            bail!("assistant.max_reply_bytes and max_concurrent must be positive");
        }
        if self.connect_timeout.is_zero()
            || self.read_timeout.is_zero()
            || self.total_timeout.is_zero()
        {
            bail!("assistant timeouts must be positive");
        }
        Ok(())
    }
}

/// Largest `memory_mb` a plugin may be given (the pooling allocator's slot size).
pub const MAX_PLUGIN_MEMORY_MB: u64 = 512;

/// `[plugins.NAME]`. Every key is optional so a table can override a built-in's defaults
/// one key at a time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginConfig {
    pub enabled: Option<bool>,
    /// A `.wasm` component (or, with `native = true`, a shared library). Built-ins have none.
    pub path: Option<PathBuf>,
    pub native: Option<bool>,
    /// Capabilities granted: `commands`, `stats`, `sessions`, `kv`, `config`.
    pub grants: Option<Vec<String>>,
    /// Guest path → host directory, preopened read-only (`{ path = "…", rw = true }` for
    /// read-write).
    pub dirs: Option<BTreeMap<String, DirMount>>,
    /// Raise the minimum role of all the plugin's commands.
    pub min_role: Option<Role>,
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    /// The plugin's own settings, read through the `config` capability.
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DirMount {
    ReadOnly(PathBuf),
    Detailed {
        path: PathBuf,
        #[serde(default)]
        rw: bool,
    },
}

impl DirMount {
    pub fn host_path(&self) -> &Path {
        match self {
            DirMount::ReadOnly(p) | DirMount::Detailed { path: p, .. } => p,
        }
    }

    pub fn writable(&self) -> bool {
        matches!(self, DirMount::Detailed { rw: true, .. })
    }
}

/// Plugin names: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
pub fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Config {
    /// Defaults ← the file (if any) ← `SLASHD_…` environment variables, then validated.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env_provider());
        let config: Config = figment.extract().context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let a = &self.auth;
        if a.jwt_secret.is_some() && a.public_key_pem.is_some() {
            bail!("auth: set either jwt_secret or public_key_pem, not both");
        }
        if let Some(secret) = &a.jwt_secret {
            if secret.len() < 32 {
                bail!("auth.jwt_secret must be at least 32 bytes");
            }
        }
        if a.leeway_secs > 5 {
            bail!("auth.leeway_secs must be at most 5");
        }
        if a.token_ttl.is_zero() {
            bail!("auth.token_ttl must be positive");
        }
        let s = &self.sessions;
        if s.idle_retention.is_zero() || s.sweep_interval.is_zero() {
            bail!("sessions.idle_retention and sessions.sweep_interval must be positive");
        }
        if s.max_title_chars == 0 {
            bail!("sessions.max_title_chars must be positive");
        }
        let r = &self.realtime;
        if r.max_frame_bytes < 1024 {
            bail!("realtime.max_frame_bytes must be at least 1024");
        }
        if r.rate_per_sec <= 0.0 || r.rate_burst < 1.0 || r.flood_strikes < 1.0 {
            bail!("realtime.rate_per_sec, rate_burst and flood_strikes must be positive");
        }
        if r.outbound_queue == 0
            || r.max_sessions_per_connection == 0
            || r.max_connections_per_user == 0
            || r.recovery_cap == 0
        {
            bail!("realtime limits must be positive");
        }
        if r.ping_interval.is_zero() || r.pong_timeout <= r.ping_interval {
            bail!("realtime.pong_timeout must be longer than realtime.ping_interval");
        }
        let c = &self.commands;
        if c.rate_per_sec <= 0.0 || c.rate_burst < 1.0 || c.max_concurrent == 0 {
            bail!("commands.rate_per_sec, rate_burst and max_concurrent must be positive");
        }
        if c.timeout_ms == 0 || c.memory_mb == 0 || c.memory_mb > MAX_PLUGIN_MEMORY_MB {
            bail!("commands.timeout_ms must be positive and memory_mb within 1..={MAX_PLUGIN_MEMORY_MB}");
        }
        for (name, plugin) in &self.plugins {
            if !valid_plugin_name(name) {
                bail!("plugins.{name}: plugin names are lowercase letters, digits, '-' and '_'");
            }
            if let Some(mb) = plugin.memory_mb {
                if mb == 0 || mb > MAX_PLUGIN_MEMORY_MB {
                    bail!("plugins.{name}.memory_mb must be within 1..={MAX_PLUGIN_MEMORY_MB}");
                }
            }
            if plugin.timeout_ms == Some(0) {
                bail!("plugins.{name}.timeout_ms must be positive");
            }
            for guest in plugin.dirs.iter().flat_map(|d| d.keys()) {
                if !guest.starts_with('/') || guest.split('/').any(|part| part == "..") {
                    bail!(
                        "plugins.{name}.dirs: guest path {guest:?} must be absolute, without '..'"
                    );
                }
            }
        }
        if let Some(assistant) = &self.assistant {
            assistant.validate()?;
        }
        if let Some(url) = &self.cluster.redis_url {
            if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                bail!("cluster.redis_url must start with redis:// or rediss://");
            }
            if self.database_url().starts_with("sqlite:") {
                bail!("cluster mode needs a shared database: set database.url to PostgreSQL");
            }
        }
        if self.database.max_connections == 0 {
            bail!("database.max_connections must be positive");
        }
        Ok(())
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.server.data_dir.join("slashd.db").display()
            ),
        }
    }
}

fn env_provider() -> Env {
    Env::prefixed("SLASHD_")
        .ignore(NON_CONFIG_ENV)
        .map(|key| {
            let key = key.as_str().to_ascii_lowercase();
            let dotted = if key.contains("__") {
                key.replace("__", ".")
            } else {
                key.replacen('_', ".", 1)
            };
            dotted.into()
        })
        .lowercase(false)
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    use super::*;

    #[test]
    fn env_keys_map_to_sections() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SLASHD_AUTH_JWT_SECRET", "x".repeat(40));
            jail.set_env("SLASHD_SERVER_LISTEN", "127.0.0.1:9999");
            jail.set_env("SLASHD_SESSIONS__IDLE_RETENTION", "2d");
            jail.set_env("SLASHD_ADMIN_PASSWORD", "not a config key");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.auth.jwt_secret.as_deref(), Some(&*"x".repeat(40)));
            assert_eq!(config.server.listen.port(), 9999);
            assert_eq!(
                config.sessions.idle_retention,
                Duration::from_secs(2 * 86400)
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "slashd.toml",
                "[server]\nlisten = \"127.0.0.1:1\"\nlsiten = 1\n",
            )?;
            let err = Config::load(Some(Path::new("slashd.toml"))).unwrap_err();
            assert!(format!("{err:#}").contains("lsiten"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn assistant_is_off_unless_configured() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert!(config.assistant.is_none());
            jail.create_file(
                "slashd.toml",
                "[assistant]\nbase_url = \"http://127.0.0.1:11434/v1\"\nmodel = \"m\"\n",
            )?;
            jail.set_env("SLASHD_ASSISTANT_READ_TIMEOUT", "2s");
            let config = Config::load(Some(Path::new("slashd.toml"))).map_err(|e| e.to_string())?;
            let assistant = config.assistant.expect("configured");
            assert_eq!(assistant.model, "m");
            assert_eq!(assistant.max_context_messages, 20);
            assert_eq!(assistant.read_timeout, Duration::from_secs(2));
            jail.create_file("bad.toml", "[assistant]\nmodel = \"m\"\n")?;
            let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err();
            assert!(format!("{err:#}").contains("base_url"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn leeway_is_capped() {
        let mut config = Config::default();
        config.auth.leeway_secs = 60;
        assert!(config.validate().is_err());
    }
}
