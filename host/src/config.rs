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

use slashd_plugin_api::Role;

/// Environment variables that share the prefix but are not config keys: the server's own,
/// and the ones this repository's tests and CI read (README: `SLASHD_TEST_PG_URL`), which
/// reach every server a test starts.
const NON_CONFIG_ENV: &[&str] = &[
    "ADMIN_PASSWORD",
    "CONFIG",
    "LOG",
    "LOG_FORMAT",
    "TEST_PG_URL",
    "CI_TARGET",
    "TOOLCHAIN_CACHE",
];

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
    /// A request's headers must arrive within this (slowloris); an idle keep-alive
    /// connection waiting for its next request is closed after it too.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection with no bytes either way for this long is closed (WebSockets excepted:
    /// they have their own ping/pong timeout).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Open connections on this node; lowered at start to fit the open-file limit. Past
    /// it (or past `max_connections_per_ip`) a connection is answered 503 and closed.
    pub max_connections: usize,
    /// Open connections from one IP address. Behind a load balancer every connection
    /// comes from its address: raise this there.
    pub max_connections_per_ip: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_connections_per_ip: 256,
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
    /// `POST /auth/login` attempts per minute from one IP address (a token bucket refilled
    /// evenly); past it 429 `rate_limited` with `Retry-After`.
    pub login_attempts_per_ip: u32,
    /// Failed logins per minute for one user name, from anywhere; past it that name's
    /// logins are answered 429 until the bucket refills.
    pub login_failures_per_user: u32,
    /// Logins waiting for a password-hashing slot; past it 429 at once.
    pub login_queue: usize,
    /// How often the server looks for role and status changes (`slashd user set-role`,
    /// `user disable`, from any process or node) to apply them to open connections.
    #[serde(with = "humantime_serde")]
    pub revocation_poll: Duration,
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
            login_attempts_per_ip: 20,
            login_failures_per_user: 10,
            login_queue: 32,
            revocation_poll: Duration::from_millis(500),
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
    /// Active sessions one user may own; creating another is refused (409).
    pub max_owned_per_user: i64,
    /// Most bytes of messages (as JSON) in one history page; at least one message is
    /// always returned, and `has_more` tells that the page was cut.
    pub max_page_bytes: usize,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            idle_retention: Duration::from_secs(30 * 24 * 3600),
            sweep_interval: Duration::from_secs(600),
            max_title_chars: 200,
            max_metadata_bytes: 16 * 1024,
            max_owned_per_user: 1000,
            max_page_bytes: 1024 * 1024,
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
    /// New WebSocket connections one user may open per minute (a token bucket with that
    /// burst); past it the socket gets `rate_limited` and close 1008.
    pub connects_per_user_per_min: u32,
    /// Frames queued for one connection; a client that stops reading is closed when full.
    pub outbound_queue: usize,
    /// Bytes queued for one connection; past it the connection is closed like a full queue.
    pub outbound_queue_bytes: usize,
    /// Most messages returned in `joined.missed`; past it `has_more` is true.
    pub recovery_cap: usize,
    /// Most bytes (of JSON) of messages in one `joined.missed` (one message at least).
    pub recovery_max_bytes: usize,
    /// Recovery budget of one connection: bytes of `missed` per second, with a burst of
    /// four `recovery_max_bytes`. Past it a join answers fewer (or no) missed messages and
    /// `has_more: true`; the client pages the rest over REST.
    pub recovery_bytes_per_sec: usize,
    /// The same budget for all of one user's connections together (burst: 4 seconds' worth).
    pub recovery_user_bytes_per_sec: usize,
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
            connects_per_user_per_min: 60,
            outbound_queue: 1024,
            outbound_queue_bytes: 8 * 1024 * 1024,
            recovery_cap: 500,
            recovery_max_bytes: 1024 * 1024,
            recovery_bytes_per_sec: 1024 * 1024,
            recovery_user_bytes_per_sec: 4 * 1024 * 1024,
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
    /// Key (at least 32 bytes, the same on every node) that authenticates what nodes
    /// publish to each other: an event without a valid HMAC is dropped. Absent: a key
    /// derived from `auth.jwt_secret`, which every node shares already.
    pub secret: Option<String>,
    /// A channel per session, each node subscribed only to the sessions it has connections
    /// in (true), or one channel every node hears all room events on (false: for comparing,
    /// or a Redis proxy that limits channels). Every node must agree.
    pub shard_rooms: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: None,
            namespace: "slashd".into(),
            secret: None,
            shard_rooms: true,
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
    /// Audit rows older than this are deleted by the retention sweep.
    #[serde(with = "humantime_serde")]
    pub audit_retention: Duration,
    /// The longest `[plugins.NAME] timeout_ms` may be: how long a command may run.
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// Plugin calls alive at once on this node, running or waiting on I/O (each holds an
    /// instance). `max_concurrent` bounds those running wasm; a call waiting on an HTTP
    /// response gives its place up until the response arrives.
    pub max_jobs: usize,
    /// Commands one user may have running at once on this node; more are refused
    /// (`rate_limited`), so no one user fills `max_jobs`.
    pub max_running_per_user: usize,
    /// Sustained `complete` frames per second per user, and the burst above it (the page
    /// asks as the user types; a plugin's `complete` may run for each).
    pub complete_rate_per_sec: f64,
    pub complete_burst: f64,
    /// How long a plugin's `complete` may take.
    #[serde(with = "humantime_serde")]
    pub complete_timeout: Duration,
    /// How long a command or button that asks for confirmation waits for the answer.
    #[serde(with = "humantime_serde")]
    pub confirm_timeout: Duration,
    /// CPU time a plugin call may run on the server thread that took the command before it
    /// moves to the plugin threads (`plugins/first_slice.rs`); a plugin over it twice
    /// within 100 calls starts on the plugin threads for 30 s. At most 100 ms.
    #[serde(with = "humantime_serde")]
    pub first_slice_budget: Duration,
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
            audit_retention: Duration::from_secs(90 * 24 * 3600),
            max_timeout: Duration::from_secs(15 * 60),
            max_jobs: 256,
            max_running_per_user: 8,
            complete_rate_per_sec: 10.0,
            complete_burst: 20.0,
            complete_timeout: Duration::from_millis(200),
            confirm_timeout: Duration::from_secs(60),
            first_slice_budget: Duration::from_micros(500),
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
    /// Capabilities granted: `commands`, `stats`, `sessions`, `kv`, `config`, `http`,
    /// `secrets`, `progress`, `jobs`.
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
    /// Where the `http` capability may go, and how much.
    pub http: Option<PluginHttpConfig>,
    /// Named secrets for the `secrets` capability: `{ token = { env = "DEPLOY_TOKEN" } }`.
    pub secrets: Option<BTreeMap<String, SecretSource>>,
}

/// `[plugins.NAME] http`: the allow-list (see `allow_list.rs`) and per-call limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginHttpConfig {
    /// `scheme://host[:port][/path-prefix]` entries; nothing else is reachable.
    pub allow: Vec<String>,
    /// Requests one invocation may send.
    pub max_requests: u32,
    /// Largest response body one request may receive.
    pub max_response_bytes: u64,
    /// One request, from connect to the last byte of the body.
    pub timeout_ms: u64,
}

impl Default for PluginHttpConfig {
    fn default() -> Self {
        PluginHttpConfig {
            allow: Vec::new(),
            max_requests: 16,
            max_response_bytes: 1024 * 1024,
            timeout_ms: 10_000,
        }
    }
}

/// Where a secret's value comes from: exactly one of an environment variable or a file
/// (its contents, without a trailing newline). Read at load and on every reload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
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

/// Which config file the server reads, at start and at every plugin reload: `--config`
/// (or `SLASHD_CONFIG`) when given, else `./slashd.toml` of the directory it started in,
/// whenever that file exists — one created after the start is read by the next reload. A
/// default file that was read once and is gone now refuses the reload (the running plugins
/// stay) rather than falling back to the defaults and dropping every configured plugin.
#[derive(Debug)]
pub struct ConfigFile {
    given: Option<PathBuf>,
    default: PathBuf,
    /// The default file has been read at least once.
    seen_default: std::sync::atomic::AtomicBool,
}

impl ConfigFile {
    pub const DEFAULT_NAME: &'static str = "slashd.toml";

    pub fn new(given: Option<PathBuf>) -> ConfigFile {
        let dir = std::env::current_dir().unwrap_or_default();
        ConfigFile::in_dir(given, &dir)
    }

    /// As [`ConfigFile::new`], with the default file looked for in `dir`.
    pub fn in_dir(given: Option<PathBuf>, dir: &Path) -> ConfigFile {
        ConfigFile {
            given,
            default: dir.join(Self::DEFAULT_NAME),
            seen_default: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The file to read now, or `None` for the defaults (and the environment).
    pub fn current(&self) -> anyhow::Result<Option<PathBuf>> {
        use std::sync::atomic::Ordering;
        if let Some(given) = &self.given {
            return Ok(Some(given.clone()));
        }
        if self.default.exists() {
            self.seen_default.store(true, Ordering::Relaxed);
            return Ok(Some(self.default.clone()));
        }
        if self.seen_default.load(Ordering::Relaxed) {
            bail!(
                "{} was read before and is gone now; nothing changed (restore it, or restart to run on the defaults)",
                self.default.display()
            );
        }
        Ok(None)
    }

    /// Read the file that is current now.
    pub fn load(&self) -> anyhow::Result<(Config, Option<PathBuf>)> {
        let path = self.current()?;
        Ok((Config::load(path.as_deref())?, path))
    }
}

impl Config {
    /// Defaults ← the file (if any) ← `SLASHD_…` environment variables, then validated.
    ///
    /// Errors name the file, the line or the key, and what was wrong — never a value or a
    /// line of the file: they are logged and answered over the admin API, and the file
    /// holds secrets.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                bail!("config file {} does not exist", path.display());
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            // Parsed here first: the TOML parser's own error quotes the offending line.
            if let Err(e) = text.parse::<toml::Table>() {
                bail!("{}: {}", path.display(), toml_syntax_error(&text, &e));
            }
            figment = figment.merge(Toml::string(&text));
        }
        figment = figment.merge(env_provider());
        let config: Config = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {}", describe_errors(e)))?;
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
        if a.login_attempts_per_ip == 0 || a.login_failures_per_user == 0 || a.login_queue == 0 {
            bail!("auth.login_attempts_per_ip, login_failures_per_user and login_queue must be positive");
        }
        if a.revocation_poll.is_zero() {
            bail!("auth.revocation_poll must be positive");
        }
        let v = &self.server;
        if v.header_read_timeout.is_zero() || v.idle_timeout.is_zero() {
            bail!("server.header_read_timeout and server.idle_timeout must be positive");
        }
        if v.max_connections == 0 || v.max_connections_per_ip == 0 {
            bail!("server.max_connections and server.max_connections_per_ip must be positive");
        }
        let s = &self.sessions;
        if s.idle_retention.is_zero() || s.sweep_interval.is_zero() {
            bail!("sessions.idle_retention and sessions.sweep_interval must be positive");
        }
        if s.max_title_chars == 0 || s.max_owned_per_user <= 0 || s.max_page_bytes == 0 {
            bail!(
                "sessions.max_title_chars, max_owned_per_user and max_page_bytes must be positive"
            );
        }
        let r = &self.realtime;
        if r.max_frame_bytes < 1024 {
            bail!("realtime.max_frame_bytes must be at least 1024");
        }
        if r.rate_per_sec <= 0.0 || r.rate_burst < 1.0 || r.flood_strikes < 1.0 {
            bail!("realtime.rate_per_sec, rate_burst and flood_strikes must be positive");
        }
        if r.outbound_queue == 0
            || r.outbound_queue_bytes == 0
            || r.max_sessions_per_connection == 0
            || r.max_connections_per_user == 0
            || r.connects_per_user_per_min == 0
            || r.recovery_cap == 0
            || r.recovery_max_bytes == 0
            || r.recovery_bytes_per_sec == 0
            || r.recovery_user_bytes_per_sec == 0
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
        if c.audit_retention.is_zero() {
            bail!("commands.audit_retention must be positive");
        }
        if c.complete_rate_per_sec <= 0.0
            || c.complete_burst < 1.0
            || c.complete_timeout.is_zero()
            || c.confirm_timeout.is_zero()
        {
            bail!("commands.complete_rate_per_sec, complete_burst, complete_timeout and confirm_timeout must be positive");
        }
        if c.max_jobs < c.max_concurrent || c.max_timeout.is_zero() || c.max_running_per_user == 0 {
            bail!("commands.max_jobs must be at least max_concurrent; max_timeout and max_running_per_user positive");
        }
        if c.first_slice_budget > Duration::from_millis(100) {
            bail!("commands.first_slice_budget must be at most 100ms");
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
            if plugin
                .timeout_ms
                .is_some_and(|ms| u128::from(ms) > c.max_timeout.as_millis())
            {
                bail!(
                    "plugins.{name}.timeout_ms is longer than commands.max_timeout ({})",
                    humantime::format_duration(c.max_timeout)
                );
            }
            if let Some(http) = &plugin.http {
                crate::allow_list::AllowList::parse(&http.allow)
                    .map_err(|e| anyhow::anyhow!("plugins.{name}.{e}"))?;
                if http.max_requests == 0 || http.max_response_bytes == 0 || http.timeout_ms == 0 {
                    bail!("plugins.{name}.http: max_requests, max_response_bytes and timeout_ms must be positive");
                }
            }
            for (secret, source) in plugin.secrets.iter().flatten() {
                if source.env.is_some() == source.file.is_some() {
                    bail!("plugins.{name}.secrets.{secret}: set exactly one of env or file");
                }
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
            match (&self.cluster.secret, &self.auth.jwt_secret) {
                (Some(secret), _) if secret.len() < 32 => {
                    bail!("cluster.secret must be at least 32 bytes")
                }
                (None, None) => bail!(
                    "cluster mode needs a key shared by every node: set cluster.secret \
                     (or auth.jwt_secret, which it is then derived from)"
                ),
                _ => {}
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

/// "line 3, column 14: invalid basic string" — where, and what the parser expected.
fn toml_syntax_error(text: &str, err: &toml::de::Error) -> String {
    let Some(at) = err.span().map(|span| span.start.min(text.len())) else {
        return format!("TOML syntax error: {}", first_line(err.message()));
    };
    let before = text.get(..at).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    // The key the line sets, when it is a plain one: it helps, and it is no secret.
    let line_text = text.lines().nth(line - 1).unwrap_or_default();
    let key = line_text
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
        .map(|key| format!(" (key `{key}`)"))
        .unwrap_or_default();
    format!(
        "TOML syntax error at line {line}, column {column}{key}: {}",
        first_line(err.message())
    )
}

/// Every problem figment found, by key, without the values it saw.
fn describe_errors(errors: figment::Error) -> String {
    use figment::error::{Actual, Kind};
    fn kind_of(actual: &Actual) -> &'static str {
        match actual {
            Actual::Bool(_) => "a boolean",
            Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
            Actual::Float(_) => "a float",
            Actual::Char(_) | Actual::Str(_) => "a string",
            Actual::Bytes(_) => "bytes",
            Actual::Seq => "an array",
            Actual::Map => "a table",
            _ => "another kind of value",
        }
    }
    let lines: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let key = match e.path.is_empty() {
                true => "the configuration".to_string(),
                false => format!("`{}`", e.path.join(".")),
            };
            let what = match &e.kind {
                Kind::InvalidType(actual, expected) => {
                    format!("expected {expected}, found {}", kind_of(actual))
                }
                Kind::InvalidValue(actual, expected) => {
                    format!("invalid {}: expected {expected}", kind_of(actual))
                }
                Kind::InvalidLength(len, expected) => {
                    format!("{len} items, expected {expected}")
                }
                Kind::UnknownVariant(_, expected) => {
                    format!("unknown value, expected one of {}", expected.join(", "))
                }
                Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
                Kind::MissingField(field) => format!("missing key `{field}`"),
                Kind::DuplicateField(field) => format!("duplicate key `{field}`"),
                Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "number out of range".into(),
                Kind::Unsupported(actual) | Kind::UnsupportedKey(actual, _) => {
                    format!("{} is not supported here", kind_of(actual))
                }
                // Custom messages (durations, addresses) describe the problem; their first
                // line never carries the file's text.
                Kind::Message(message) => first_line(message),
            };
            format!("{key}: {what}")
        })
        .collect();
    lines.join("; ")
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
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

    /// The file a reload reads, as the admin changes the directory: `None` is the defaults,
    /// `Err` a refused reload.
    #[test]
    fn reload_reads_the_file_the_server_would_read_now() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join(ConfigFile::DEFAULT_NAME);
        let implicit = ConfigFile::in_dir(None, dir.path());
        assert_eq!(
            implicit.current().unwrap(),
            None,
            "no file at start: the defaults"
        );
        std::fs::write(&default, "").unwrap();
        assert_eq!(
            implicit.current().unwrap(),
            Some(default.clone()),
            "created after the start"
        );
        std::fs::remove_file(&default).unwrap();
        let gone = implicit.current().unwrap_err().to_string();
        assert!(gone.contains("is gone now; nothing changed"), "{gone}");

        let given = dir.path().join("elsewhere.toml");
        let explicit = ConfigFile::in_dir(Some(given.clone()), dir.path());
        std::fs::write(&default, "").unwrap();
        assert_eq!(
            explicit.current().unwrap(),
            Some(given.clone()),
            "--config wins"
        );
        let missing = explicit.load().unwrap_err().to_string();
        assert!(missing.contains("does not exist"), "{missing}");
    }

    #[test]
    fn env_keys_map_to_sections() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SLASHD_AUTH_JWT_SECRET", "x".repeat(40));
            jail.set_env("SLASHD_SERVER_LISTEN", "127.0.0.1:9999");
            jail.set_env("SLASHD_SESSIONS__IDLE_RETENTION", "2d");
            jail.set_env("SLASHD_ADMIN_PASSWORD", "not a config key");
            jail.set_env("SLASHD_TEST_PG_URL", "postgres://the tests' own, not a key");
            jail.set_env("SLASHD_CI_TARGET", "/the/ci/target");
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
    fn errors_never_quote_the_file() {
        let secret = "SEKRIT-0123456789-0123456789-0123456789";
        figment::Jail::expect_with(|jail| {
            let check = |text: &str, expected: &str| {
                jail.create_file("c.toml", text).expect("write");
                let err = format!("{:#}", Config::load(Some(Path::new("c.toml"))).unwrap_err());
                assert!(!err.contains("SEKRIT"), "{err}");
                assert!(!err.contains("jwt_secret ="), "{err}");
                assert!(err.contains(expected), "{err} lacks {expected}");
            };
            check(
                &format!("[auth]\njwt_secret = \"{secret}\"\nleeway = \"{secret}"),
                "line 3, column",
            );
            check(
                &format!("[auth\njwt_secret = \"{secret}\"\n"),
                "line 1, column",
            );
            check(
                "[auth]\njwt_secret = 1234567890123456789\n",
                "`auth.jwt_secret`: expected a string, found an integer",
            );
            check(
                &format!("[auth]\nleeway_secs = \"{secret}\"\n"),
                "`auth.leeway_secs`: expected",
            );
            Ok(())
        });
    }

    /// Every key of every section is in `slashd.example.toml`, set or commented out, under
    /// its section: the example is the config reference, so it cannot fall behind.
    #[test]
    fn the_example_config_documents_every_key() {
        let example = include_str!("../../slashd.example.toml");
        let mut defaults = serde_json::to_value(Config::default()).expect("serializable");
        defaults["assistant"] = serde_json::to_value(AssistantConfig::default()).expect("ok");
        let sections = defaults.as_object().expect("an object");
        for (section, keys) in sections {
            let Some(keys) = keys.as_object().filter(|keys| !keys.is_empty()) else {
                continue; // `plugins`: tables of their own, documented by example
            };
            let header = example
                .find(&format!("[{section}]"))
                .unwrap_or_else(|| panic!("slashd.example.toml has no [{section}]"));
            let rest = &example[header + 1..];
            let end = ["\n[", "\n# ["]
                .iter()
                .filter_map(|next| rest.find(next))
                .min()
                .unwrap_or(rest.len());
            let body = &rest[..end];
            for key in keys.keys() {
                let documented = body.lines().any(|line| {
                    let line = line.trim_start_matches(['#', ' ']);
                    line.starts_with(&format!("{key} =")) || line.starts_with(&format!("{key}="))
                });
                assert!(documented, "slashd.example.toml: [{section}] lacks `{key}`");
            }
        }
    }

    #[test]
    fn first_slice_budget_is_capped_and_parses_microseconds() {
        let mut config = Config::default();
        config.commands.first_slice_budget = Duration::from_millis(101);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("first_slice_budget"), "{err}");
        let parsed: CommandsConfig = toml::from_str(r#"first_slice_budget = "250us""#).unwrap();
        assert_eq!(parsed.first_slice_budget, Duration::from_micros(250));
    }

    #[test]
    fn leeway_is_capped() {
        let mut config = Config::default();
        config.auth.leeway_secs = 60;
        assert!(config.validate().is_err());
    }
}
