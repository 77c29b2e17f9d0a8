//! A test harness for plugin authors: run a built `.wasm` in-process, with a fake caller,
//! session, grants, settings, secrets, allow-list and kv, through the same engine and limits
//! the server uses. `slashd plugin run` is this harness on the command line; Rust authors
//! may also use it from their own tests (`slashd` as a dev-dependency).
//!
//! ```no_run
//! # async fn t() -> anyhow::Result<()> {
//! use slashd::plugins::testkit::PluginTester;
//! let tester = PluginTester::builder("target/wasm32-wasip2/release/hello.wasm").build().await?;
//! let reply = tester.run("/hello world").await?;
//! assert_eq!(reply.body, "Hello, **world**!");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::call::{CallError, CallInput, PluginReply};
use super::capabilities::{CallEnv, PluginIdentity};
use super::egress::HttpPolicy;
use super::engine::{CallLimits, Mount, Runtime};
use super::fake_services::FakeServices;
use super::grants::Grants;
use super::host_services::CallContext;
use super::jobs::Jobs;
use super::manifest::{self, Capability, Manifest};
use super::registry::{Counters, PluginEntry, PluginState, Registry, Source};
use super::secrets::Secrets;
use crate::auth::Role;
use crate::config::{CommandsConfig, PluginHttpConfig};
use crate::protocol::command_line as parse;
use crate::protocol::ErrorCode;
use anyhow::Context;

pub struct TesterBuilder {
    path: PathBuf,
    grants: Option<Vec<Capability>>,
    settings: serde_json::Map<String, serde_json::Value>,
    secrets: BTreeMap<String, String>,
    http_allow: Vec<String>,
    kv_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    mounts: Vec<Mount>,
    timeout: Duration,
    memory_mb: u64,
    first_slice_budget: Option<Duration>,
    native: bool,
}

impl TesterBuilder {
    /// Grant exactly these capabilities (default: whatever the manifest asks for).
    pub fn grants(mut self, grants: &[Capability]) -> Self {
        self.grants = Some(grants.to_vec());
        self
    }

    /// One entry of the plugin's `settings` (the `config` capability).
    pub fn setting(mut self, key: &str, value: serde_json::Value) -> Self {
        self.settings.insert(key.to_string(), value);
        self
    }

    /// A secret (the `secrets` capability); it is redacted from everything the plugin
    /// writes, as on the server.
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets.insert(name.to_string(), value.to_string());
        self
    }

    /// One entry of the plugin's HTTP allow-list (`scheme://host[:port][/path-prefix]`).
    pub fn http_allow(mut self, entry: &str) -> Self {
        self.http_allow.push(entry.to_string());
        self
    }

    /// Keep the plugin's kv in `dir/kv.json` between runs (default: in memory).
    pub fn kv_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.kv_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Cache compiled components here, as the server does (default: no cache).
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cache_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Preopen a host directory at `guest` (read-only unless `writable`).
    pub fn dir(mut self, guest: &str, host: impl AsRef<Path>, writable: bool) -> Self {
        self.mounts.push(Mount {
            guest: guest.to_string(),
            host: host.as_ref().to_path_buf(),
            writable,
        });
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn memory_mb(mut self, mb: u64) -> Self {
        self.memory_mb = mb;
        self
    }

    /// As `commands.first_slice_budget` (default 500us): how much CPU time a call may
    /// take on the caller's thread before it moves to the plugin threads.
    pub fn first_slice_budget(mut self, budget: Duration) -> Self {
        self.first_slice_budget = Some(budget);
        self
    }

    /// Load a native library (`export_native_plugin!`) instead of a wasm component.
    pub fn native(mut self) -> Self {
        self.native = true;
        self
    }

    /// Compile and load the plugin; fails as the server would refuse it.
    pub async fn build(self) -> anyhow::Result<PluginTester> {
        if self.native {
            return self.build_native().await;
        }
        let wasm = std::fs::read(&self.path)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        let defaults = CommandsConfig {
            first_slice_budget: self
                .first_slice_budget
                .unwrap_or(CommandsConfig::default().first_slice_budget),
            ..CommandsConfig::default()
        };
        let runtime = Runtime::new(&defaults, self.cache_dir.clone())?;
        let services = Arc::new(self.services()?);
        let counters = Arc::new(Counters::default());
        let jobs = Arc::new(Jobs::default());
        let env_with = |registry: Arc<Registry>| {
            Arc::new(CallEnv {
                services: services.clone(),
                registry,
                counters: counters.clone(),
                jobs: jobs.clone(),
            })
        };
        // Read the manifest first, then give the plugin the grants it asked for.
        let (first, manifest) = runtime
            .load(
                "plugin-under-test",
                &wasm,
                self.identity("plugin-under-test", Grants::default(), &defaults)?,
                self.limits(&defaults),
                self.mounts.clone(),
                env_with(Arc::new(Registry::default())),
            )
            .await
            .map_err(anyhow::Error::msg)?;
        let grants = Grants::of(self.grants.as_deref().unwrap_or(&manifest.capabilities));
        let prepared = Arc::new(first.with_identity(self.identity(
            &manifest.name,
            grants.clone(),
            &defaults,
        )?));
        not_granted(&prepared.missing_grants(&manifest))?;
        let registry = Arc::new(Registry::new(vec![PluginEntry {
            name: manifest.name.clone(),
            source: Source::Path {
                path: self.path.clone(),
            },
            state: PluginState::Enabled,
            manifest: Some(manifest.clone()),
            grants,
            min_role: None,
            runner: Some(super::Runner::Wasm(prepared.clone())),
        }]));
        Ok(PluginTester {
            env: env_with(registry),
            runtime,
            runner: super::Runner::Wasm(prepared),
            manifest,
            services,
            caller: (String::from("tester"), Role::Admin),
        })
    }

    fn identity(
        &self,
        name: &str,
        grants: Grants,
        defaults: &CommandsConfig,
    ) -> anyhow::Result<Arc<PluginIdentity>> {
        let http = PluginHttpConfig {
            allow: self.http_allow.clone(),
            ..PluginHttpConfig::default()
        };
        Ok(Arc::new(PluginIdentity {
            settings: self.settings.clone(),
            secrets: Arc::new(
                Secrets::from_values(self.secrets.clone()).map_err(anyhow::Error::msg)?,
            ),
            http: Arc::new(HttpPolicy::from_config(Some(&http)).map_err(anyhow::Error::msg)?),
            ..PluginIdentity::with_defaults(name, grants, defaults)
        }))
    }

    fn services(&self) -> anyhow::Result<FakeServices> {
        FakeServices::persistent(self.kv_dir.as_deref()).map_err(anyhow::Error::msg)
    }

    fn limits(&self, defaults: &CommandsConfig) -> CallLimits {
        CallLimits {
            timeout: self.timeout,
            memory_bytes: (self.memory_mb as usize) << 20,
            max_reply_bytes: defaults.max_reply_bytes,
        }
    }

    async fn build_native(self) -> anyhow::Result<PluginTester> {
        let defaults = CommandsConfig::default();
        let plugin = super::native::NativePlugin::load(&self.path).map_err(anyhow::Error::msg)?;
        let manifest = plugin.manifest().map_err(anyhow::Error::msg)?;
        let manifest = manifest::accept(manifest).map_err(anyhow::Error::msg)?;
        let grants = Grants::of(self.grants.as_deref().unwrap_or(&manifest.capabilities));
        not_granted(&super::registry::missing_grants(
            &manifest.capabilities,
            &[],
            &grants,
        ))?;
        let identity = self.identity(&manifest.name, grants, &defaults)?;
        let limits = self.limits(&defaults);
        let services = Arc::new(self.services()?);
        Ok(PluginTester {
            env: Arc::new(CallEnv {
                services: services.clone(),
                registry: Arc::new(Registry::default()),
                counters: Arc::new(Counters::default()),
                jobs: Arc::new(Jobs::default()),
            }),
            runtime: Runtime::new(&defaults, None)?,
            runner: super::Runner::Native {
                plugin: Arc::new(plugin),
                identity,
                limits,
            },
            manifest,
            services,
            caller: (String::from("tester"), Role::Admin),
        })
    }
}

pub struct PluginTester {
    runtime: Runtime,
    runner: super::Runner,
    env: Arc<CallEnv>,
    manifest: Manifest,
    services: Arc<FakeServices>,
    caller: (String, Role),
}

impl PluginTester {
    pub fn builder(wasm: impl AsRef<Path>) -> TesterBuilder {
        TesterBuilder {
            path: wasm.as_ref().to_path_buf(),
            grants: None,
            settings: Default::default(),
            secrets: BTreeMap::new(),
            http_allow: Vec::new(),
            kv_dir: None,
            cache_dir: None,
            mounts: Vec::new(),
            timeout: Duration::from_secs(2),
            memory_mb: 64,
            first_slice_budget: None,
            native: false,
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Run further commands as this user (default: `tester`, admin).
    pub fn as_user(&mut self, name: &str, role: Role) -> &mut Self {
        self.caller = (name.to_string(), role);
        self
    }

    /// Run a command line such as `/hello "big world"`, as the server would: the command
    /// (or alias) must be the plugin's, the caller's role must suffice, and the arguments
    /// are split shell-style. Unknown and forbidden commands come back as `Failed`.
    pub async fn run(&self, line: &str) -> Result<PluginReply, CallError> {
        self.run_line(line).await.map_err(|e| match e {
            RunError::Call(e) => e,
            refused => CallError::Failed(refused.to_string()),
        })
    }

    /// [`PluginTester::run`], with the server's refusals before the call kept apart from
    /// the call's own outcome.
    pub async fn run_line(&self, line: &str) -> Result<PluginReply, RunError> {
        let (name, raw) = parse::split_command(line).ok_or(RunError::NotACommand)?;
        let command = self
            .manifest
            .commands
            .iter()
            .find(|c| c.name == name || c.aliases.contains(&name))
            .ok_or_else(|| RunError::UnknownCommand(name.to_string()))?;
        let (user, role) = &self.caller;
        if !role.allows(command.min_role) {
            return Err(RunError::Forbidden {
                command: command.name.clone(),
                needs: command.min_role,
            });
        }
        let args = parse::split_args(raw).ok_or_else(|| {
            CallError::Usage(format!("usage: unbalanced quotes; {}", command.usage))
        })?;
        let invocation_id = crate::store::new_id();
        let ctx = CallContext {
            user_id: format!("user-{user}"),
            user_name: user.clone(),
            role: *role,
            session_id: FakeServices::SESSION_ID.into(),
            session_title: "test session".into(),
            connection_id: "test-connection".into(),
            connected_at: "2026-01-01T00:00:00Z".into(),
            invocation_id: invocation_id.clone(),
            job: None,
        };
        // A job, as on the server: progress reports and `cancelled` work.
        let running = self
            .env
            .jobs
            .start(
                super::JobSpec {
                    id: invocation_id,
                    command: command.name.clone(),
                    user_id: ctx.user_id.clone(),
                    user_name: ctx.user_name.clone(),
                    session_id: ctx.session_id.clone(),
                    started_at: 0,
                },
                None,
            )
            .map_err(|_| CallError::Failed("cannot start the call".into()))?;
        let ctx = CallContext {
            job: Some(running.job.clone()),
            ..ctx
        };
        let values = match &command.args {
            Some(specs) => typed_values(specs, raw)
                .map_err(|e| CallError::Usage(format!("usage: {e}; {}", command.usage)))?,
            None => Vec::new(),
        };
        let input = CallInput {
            command: command.name.clone(),
            args,
            raw_args: raw.to_string(),
            values,
        };
        let reply = match &self.runner {
            super::Runner::Wasm(prepared) => {
                self.runtime
                    .invoke(prepared, self.env.clone(), ctx, input)
                    .await
            }
            super::Runner::Native {
                plugin,
                identity,
                limits,
            } => {
                plugin
                    .invoke(identity.clone(), self.env.clone(), ctx, input, limits)
                    .await
            }
        };
        Ok(reply?)
    }

    /// How many calls so far got an instance made ahead of them, off the reply path
    /// (as on the server; a native plugin has none). A diagnostic: each call still gets
    /// an instance of its own.
    pub fn instances_made_ahead(&self) -> u64 {
        match &self.runner {
            super::Runner::Wasm(prepared) => prepared.instances_made_ahead(),
            super::Runner::Native { .. } => 0,
        }
    }

    /// Inspect or seed the plugin's kv.
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.services.kv_value(key)
    }

    pub fn kv_set(&self, key: &str, value: &[u8]) {
        self.services.seed_kv(key, value);
    }

    /// Whether the plugin ended the (fake) current session.
    pub fn session_ended(&self) -> bool {
        self.services.session_ended()
    }
}

/// Why a line did not run, or how its call failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("a command starts with '/'")]
    NotACommand,
    #[error("unknown command /{0}: the plugin does not offer it")]
    UnknownCommand(String),
    #[error("forbidden: /{command} needs the {needs} role")]
    Forbidden { command: String, needs: Role },
    #[error(transparent)]
    Call(#[from] CallError),
}

impl RunError {
    /// The protocol's error code the server would answer with (docs/protocol.md).
    pub fn code(&self) -> ErrorCode {
        match self {
            RunError::NotACommand | RunError::UnknownCommand(_) => ErrorCode::UnknownCommand,
            RunError::Forbidden { .. } => ErrorCode::Forbidden,
            RunError::Call(CallError::Usage(_)) => ErrorCode::Usage,
            RunError::Call(CallError::Failed(_)) => ErrorCode::PluginFailed,
            RunError::Call(CallError::Timeout(_)) => ErrorCode::PluginTimeout,
            RunError::Call(CallError::Cancelled(_)) => ErrorCode::Cancelled,
        }
    }
}

/// Refuse a plugin whose manifest asks for capabilities not granted, naming them.
fn not_granted(missing: &[Capability]) -> anyhow::Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
    anyhow::bail!(
        "refused: needs capability {} which is not granted",
        names.join(", ")
    )
}

/// Typed values as the server would give them, against the fake world: any `user` name
/// is a viewer with id `user-NAME`; the only `session` is the fake current one.
fn typed_values(
    specs: &[slashd_plugin_api::ArgSpec],
    raw: &str,
) -> Result<Vec<slashd_plugin_api::NamedValue>, String> {
    use crate::protocol::args::{bind, Bound};
    use slashd_plugin_api::{NamedValue, Role, SessionRef, UserRef, Value};
    bind(specs, raw)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|arg| {
            let value = match arg.value {
                Bound::Value(value) => value,
                Bound::User(name) => Value::User(UserRef {
                    id: format!("user-{name}"),
                    name,
                    role: Role::Viewer,
                }),
                Bound::Session(id) if id == FakeServices::SESSION_ID => {
                    Value::Session(SessionRef {
                        id,
                        title: "test session".into(),
                    })
                }
                Bound::Session(id) => {
                    return Err(format!(
                        "--{}: no session {id:?} that you can see",
                        arg.name
                    ))
                }
            };
            Ok(NamedValue {
                name: arg.name,
                value,
            })
        })
        .collect()
}
