//! Command plugins: sandboxed wasm components (wasmtime, component model).
//!
//! One module per concern: `manifest` (what a plugin declares), `wit` (the API versions,
//! side by side: bindings and host functions of each), `engine` (wasmtime: compile, cache,
//! instantiate, limits), `call` (a call's input and outcome, plain types),
//! `host_services` (who calls, and the server's side of the capabilities),
//! `capabilities` (what every host function checks), `egress`
//! (outbound HTTP), `secrets`, `jobs` (running calls, cancellation), `registry` (plugins
//! and the command table), `builtin` (embedded plugins). Generated wasm types stay inside
//! `wit/`: [`PluginHost`] speaks only plain Rust types to the rest of the server.

mod builtin;
pub mod call;
pub mod capabilities;
pub mod egress;
pub mod engine;
pub mod fake_services;
mod first_slice;
pub mod grants;
pub mod host_services;
pub mod inspect;
pub mod jobs;
pub mod manifest;
mod native;
pub mod registry;
pub mod secrets;
mod spare;
/// The in-process harness plugin authors test with, and `slashd plugin run`.
pub mod testkit;
pub mod wit;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub use call::{ActionInput, CallError, CallInput, CompleteInput, PluginReply, ReplyFormat};
pub use grants::Grants;
pub use host_services::{CallContext, HostServices};
pub use jobs::{Job, JobGuard, JobSpec, Jobs, ProgressUpdate};
pub use registry::{may_run, CommandInfo, PluginState, Registry, Route, Source};

use capabilities::{CallEnv, PluginIdentity};
use egress::HttpPolicy;
use engine::{CallLimits, Mount, Prepared, Runtime};
use manifest::Capability;
use native::NativePlugin;
use registry::{Counters, PluginEntry};
use secrets::Secrets;

use crate::config::{CommandsConfig, Config, ConfigFile, PluginConfig};

/// Largest plugin file read from disk.
const MAX_PLUGIN_BYTES: u64 = 64 << 20;

/// How a loaded plugin runs: a sandboxed component, or a trusted native library.
#[derive(Clone)]
pub enum Runner {
    Wasm(Arc<Prepared>),
    Native {
        plugin: Arc<NativePlugin>,
        identity: Arc<PluginIdentity>,
        limits: CallLimits,
    },
}

impl Runner {
    /// Whether a call's only effect is its reply (see [`acts_only_through_its_reply`]).
    pub fn acts_only_through_its_reply(&self) -> bool {
        match self {
            Runner::Wasm(prepared) => {
                acts_only_through_its_reply(&prepared.identity.grants, &prepared.mounts)
            }
            // Native code can do anything.
            Runner::Native { .. } => false,
        }
    }
}

/// Whether a wasm plugin with these grants and directories can only answer: granted
/// nothing that reaches past its reply (the network, its kv store, sessions, other jobs,
/// progress frames) or sees what storing its invocation changes (the server's message
/// counts), and no writable directory. Such a command may run before its invocation is
/// stored (`commands/together.rs`): if storing fails, nothing it did is left behind.
fn acts_only_through_its_reply(grants: &Grants, mounts: &[Mount]) -> bool {
    const NEED_THE_INVOCATION_STORED: [Capability; 6] = [
        Capability::Http,
        Capability::Kv,
        Capability::Sessions,
        Capability::Jobs,
        Capability::Progress,
        Capability::Stats,
    ];
    !NEED_THE_INVOCATION_STORED.iter().any(|c| grants.has(*c)) && !mounts.iter().any(|m| m.writable)
}

/// A plugin as `GET /admin/plugins` shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PluginView {
    pub name: String,
    pub version: Option<String>,
    pub source: Source,
    #[schema(schema_with = plugin_state_schema)]
    pub state: &'static str,
    /// Why a refused plugin was not enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub commands: Vec<CommandView>,
    pub grants_asked: Vec<&'static str>,
    pub grants_given: Vec<&'static str>,
    pub calls: u64,
    pub failures: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// `PluginView.state` as a string enum (the words `describe` maps `PluginState` to).
fn plugin_state_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["enabled", "disabled", "refused", "loading"]))
        .description(Some(
            "`refused`: not enabled, `reason` says why; `loading`: still compiling in the \
             background after a start on a cold compile cache, not routed yet",
        ))
        .into()
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CommandView {
    pub name: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub usage: String,
    /// The effective role: the manifest's, raised by config.
    pub min_role: crate::auth::Role,
    /// False when another plugin claims the same name (neither gets it) or the plugin is off.
    pub routed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no plugin named {0:?}")]
    NoSuchPlugin(String),
    #[error("the plugin was refused: {0}")]
    Refused(String),
    /// A reload found the config file invalid; the running plugins stay.
    #[error("invalid config, nothing changed: {0}")]
    InvalidConfig(String),
}

/// What [`PluginHost::start`] does with a plugin not in the compile cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// Compile it before returning: the admin tools, which must report the truth.
    Wait,
    /// Return at once with it [`PluginState::Loading`], compile it on a background task and
    /// swap it in when ready: the server, which listens meanwhile.
    Background,
}

/// One plugin the config names, ready to be loaded.
#[derive(Clone)]
struct Plan {
    name: String,
    source: Source,
    embedded: Option<&'static [u8]>,
    table: PluginConfig,
    grants: Vec<String>,
}

pub struct PluginHost {
    /// Reloads and enable/disable run one at a time.
    admin: tokio::sync::Mutex<()>,
    /// Bumped by every reload: the background loader swaps in only what the registry it
    /// started from still awaits.
    generation: std::sync::atomic::AtomicU64,
    /// Enable/disable asked for (by an admin, or another node) while the plugin was still
    /// loading: applied when it is swapped in. A reload clears them, as it does every
    /// admin change.
    deferred: std::sync::Mutex<std::collections::HashMap<String, bool>>,
    runtime: Runtime,
    registry: RwLock<Arc<Registry>>,
    services: Arc<dyn HostServices>,
    counters: Arc<Counters>,
    jobs: Arc<Jobs>,
}

impl PluginHost {
    /// Start the runtime and load every configured plugin; with [`Startup::Background`],
    /// those that need a cold compile finish loading after this returns.
    pub async fn start(
        config: &Config,
        services: Arc<dyn HostServices>,
        startup: Startup,
    ) -> anyhow::Result<Arc<PluginHost>> {
        let cache_dir = config
            .commands
            .cache_dir
            .clone()
            .unwrap_or_else(|| config.server.data_dir.join("plugin-cache"));
        let runtime = Runtime::new(&config.commands, Some(cache_dir))?;
        let host = Arc::new(PluginHost {
            admin: tokio::sync::Mutex::new(()),
            generation: std::sync::atomic::AtomicU64::new(0),
            deferred: std::sync::Mutex::default(),
            runtime,
            registry: RwLock::new(Arc::new(Registry::default())),
            services,
            counters: Arc::new(Counters::default()),
            jobs: Arc::new(Jobs::default()),
        });
        let plans = plans(config);
        let (now, later): (Vec<Plan>, Vec<Plan>) = match startup {
            Startup::Wait => (plans, Vec::new()),
            Startup::Background => plans.into_iter().partition(|p| !host.needs_compiling(p)),
        };
        let mut entries = host.load_plans(&now, &config.commands).await;
        entries.extend(later.iter().map(|plan| host.loading(plan)));
        host.swap(Registry::new(entries));
        if !later.is_empty() {
            let names: Vec<&str> = later.iter().map(|p| p.name.as_str()).collect();
            tracing::info!(plugins = ?names, "compiling plugins in the background; their commands answer once they are ready");
            let loader = host.clone();
            let defaults = config.commands.clone();
            tokio::spawn(async move { loader.load_in_background(later, defaults).await });
        }
        Ok(host)
    }

    /// A plugin whose component is not in the compile cache (a first start, a new plugin,
    /// a new slashd): loading it means a compile of seconds.
    fn needs_compiling(&self, plan: &Plan) -> bool {
        let refused = refusal_before_loading(
            &plan.name,
            &plan.source,
            &plan.table,
            plan.embedded.is_some(),
        );
        let wasm = match (plan.embedded, &plan.source) {
            _ if refused.is_some() => return false,
            (Some(bytes), _) => std::borrow::Cow::Borrowed(bytes),
            (None, Source::Path { path }) => match read_plugin_file(path) {
                Ok(bytes) => std::borrow::Cow::Owned(bytes),
                // A file that cannot be read is refused at once, by the normal path.
                Err(_) => return false,
            },
            _ => return false,
        };
        !self.runtime.is_compiled(&wasm)
    }

    /// The entry of a plugin compiling in the background, with the manifest its last load
    /// kept, if any.
    fn loading(&self, plan: &Plan) -> PluginEntry {
        let manifest = match (plan.embedded, &plan.source) {
            (Some(bytes), _) => self.runtime.kept_manifest(bytes),
            (None, Source::Path { path }) => read_plugin_file(path)
                .ok()
                .and_then(|bytes| self.runtime.kept_manifest(&bytes)),
            _ => None,
        };
        PluginEntry {
            name: plan.name.clone(),
            source: plan.source.clone(),
            state: PluginState::Loading,
            manifest,
            grants: Grants::default(),
            min_role: plan.table.min_role,
            runner: None,
        }
    }

    /// Compile and load each plan in turn, swapping each in as it is ready — unless a
    /// reload came first (it loaded everything itself) or an admin changed it meanwhile.
    async fn load_in_background(self: Arc<Self>, plans: Vec<Plan>, defaults: CommandsConfig) {
        let generation = self.generation.load(Ordering::SeqCst);
        for plan in plans {
            if self.generation.load(Ordering::SeqCst) != generation {
                return;
            }
            let started = Instant::now();
            // On a task of its own: a panic while loading one plugin refuses that plugin
            // instead of leaving it (and `/readyz`) loading for ever.
            let loaded = tokio::spawn({
                let (host, plan, defaults) = (self.clone(), plan.clone(), defaults.clone());
                async move { host.load_plan(&plan, &defaults).await }
            })
            .await;
            let mut entry = loaded.unwrap_or_else(|e| {
                tracing::error!(plugin = %plan.name, error = %e, "loading a plugin panicked");
                refused(
                    &plan.name,
                    plan.source.clone(),
                    &plan.table,
                    "loading it failed unexpectedly (see the server log)".into(),
                )
            });
            let _one_at_a_time = self.admin.lock().await;
            if self.generation.load(Ordering::SeqCst) != generation {
                return;
            }
            let current = self.registry();
            let still_awaited = current
                .plugin(&plan.name)
                .is_some_and(|p| p.state == PluginState::Loading);
            if !still_awaited {
                continue;
            }
            let asked = self.deferred_lock().remove(&plan.name);
            if let (Some(enabled), PluginState::Enabled | PluginState::Disabled) =
                (asked, &entry.state)
            {
                entry.state = if enabled {
                    PluginState::Enabled
                } else {
                    PluginState::Disabled
                };
            }
            log_entry(&entry);
            tracing::info!(plugin = %plan.name, elapsed_ms = started.elapsed().as_millis() as u64, "plugin loaded in the background");
            let entries = current
                .plugins()
                .map(|p| {
                    if p.name == plan.name {
                        entry.clone()
                    } else {
                        PluginEntry::clone(p)
                    }
                })
                .collect();
            self.swap(Registry::new(entries));
        }
        if self.registry().loading().is_empty() {
            tracing::info!("every plugin is loaded");
        }
    }

    fn deferred_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, bool>> {
        self.deferred.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Plugins still compiling in the background.
    pub fn still_loading(&self) -> Vec<String> {
        self.registry()
            .loading()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// The current registry; holding it keeps that version alive.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn swap(&self, registry: Registry) {
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(registry);
    }

    /// The calls running on this node.
    pub fn jobs(&self) -> &Arc<Jobs> {
        &self.jobs
    }

    fn env(&self, registry: Arc<Registry>) -> Arc<CallEnv> {
        Arc::new(CallEnv {
            services: self.services.clone(),
            registry,
            counters: self.counters.clone(),
            jobs: self.jobs.clone(),
        })
    }

    /// Run one command of an enabled plugin.
    pub async fn invoke(
        &self,
        route: &Route,
        ctx: CallContext,
        input: CallInput,
    ) -> Result<PluginReply, CallError> {
        let Some(runner) = route.plugin.runner.clone() else {
            return Err(CallError::Failed("the plugin is not loaded".into()));
        };
        let env = self.env(self.registry());
        let call = async {
            match &runner {
                Runner::Wasm(prepared) => self.runtime.invoke(prepared, env, ctx, input).await,
                Runner::Native {
                    plugin,
                    identity,
                    limits,
                } => {
                    plugin
                        .invoke(identity.clone(), env, ctx, input, limits)
                        .await
                }
            }
        };
        self.counted(&route.plugin.name, call).await
    }

    /// A call, counted in the plugin's calls, failures and latency.
    async fn counted<T>(
        &self,
        plugin: &str,
        call: impl std::future::Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        let counters = self.counters.of(plugin);
        counters.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = call.await;
        counters.record(started.elapsed());
        if matches!(result, Err(CallError::Failed(_) | CallError::Timeout(_))) {
            counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Ask a plugin to complete one argument, within `deadline`. Native plugins have no
    /// `complete` (none).
    pub async fn complete(
        &self,
        route: &Route,
        ctx: CallContext,
        input: CompleteInput,
        deadline: Duration,
    ) -> Result<Vec<slashd_plugin_api::Completion>, CallError> {
        match &route.plugin.runner {
            Some(Runner::Wasm(prepared)) => {
                let env = self.env(self.registry());
                self.runtime
                    .complete(prepared, env, ctx, input, deadline)
                    .await
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Run a plugin's `on-action` for a pressed button (counted as a call).
    pub async fn on_action(
        &self,
        route: &Route,
        ctx: CallContext,
        input: ActionInput,
    ) -> Result<PluginReply, CallError> {
        let Some(Runner::Wasm(prepared)) = route.plugin.runner.clone() else {
            return Err(CallError::Failed(
                "this plugin takes no button presses".into(),
            ));
        };
        let env = self.env(self.registry());
        let call = self.runtime.on_action(&prepared, env, ctx, input);
        self.counted(&route.plugin.name, call).await
    }

    /// Calls and failures per plugin since start.
    pub fn counters(&self) -> Vec<(String, u64, u64)> {
        self.counters.snapshot()
    }

    /// Re-read the config file the server would read now ([`ConfigFile`]) and reload the
    /// plugins from it. An invalid (or vanished) file is refused whole and the running
    /// plugins stay. Only `[plugins.*]` (and the per-plugin defaults in `[commands]`) apply
    /// without a restart.
    pub async fn reload_from(&self, file: &ConfigFile) -> Result<(), AdminError> {
        let (config, path) = file.load().map_err(|e| {
            tracing::warn!(
                error = format!("{e:#}"),
                "plugin reload refused: invalid config; the running plugins stay"
            );
            AdminError::InvalidConfig(format!("{e:#}"))
        })?;
        tracing::info!(
            file = path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none (defaults)".into()),
            "reloading plugins"
        );
        self.reload(&config).await;
        Ok(())
    }

    /// Load the plugins of a new config and swap them in. Calls in flight finish on the
    /// version they started with.
    pub async fn reload(&self, config: &Config) {
        let _one_at_a_time = self.admin.lock().await;
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.deferred_lock().clear();
        let entries = self.load_plans(&plans(config), &config.commands).await;
        self.swap(Registry::new(entries));
        tracing::info!("plugins reloaded");
    }

    /// Enable or disable a loaded plugin at once (until the next reload or restart); one
    /// still loading gets the state when it is loaded.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), AdminError> {
        let _one_at_a_time = self.admin.lock().await;
        let current = self.registry();
        let target = current
            .plugin(name)
            .ok_or_else(|| AdminError::NoSuchPlugin(name.to_string()))?;
        match &target.state {
            PluginState::Refused(reason) => return Err(AdminError::Refused(reason.clone())),
            PluginState::Loading => {
                self.deferred_lock().insert(name.to_string(), enabled);
                tracing::info!(
                    plugin = name,
                    enabled,
                    "plugin state changed by an admin; applied when it is loaded"
                );
                return Ok(());
            }
            PluginState::Enabled | PluginState::Disabled => {}
        }
        let entries = current
            .plugins()
            .map(|p| {
                let mut entry = PluginEntry::clone(p);
                if entry.name == name {
                    entry.state = if enabled {
                        PluginState::Enabled
                    } else {
                        PluginState::Disabled
                    };
                }
                entry
            })
            .collect();
        self.swap(Registry::new(entries));
        tracing::info!(plugin = name, enabled, "plugin state changed by an admin");
        Ok(())
    }

    /// Every plugin as the admin API shows it.
    pub fn describe(&self) -> Vec<PluginView> {
        let registry = self.registry();
        registry
            .plugins()
            .map(|p| {
                let counters = self.counters.of(&p.name);
                let (p50_ms, p99_ms) = counters
                    .percentiles_ms()
                    .map_or((None, None), |(a, b)| (Some(a), Some(b)));
                let commands = p
                    .manifest
                    .iter()
                    .flat_map(|m| &m.commands)
                    .map(|c| CommandView {
                        name: c.name.clone(),
                        aliases: c.aliases.clone(),
                        summary: c.summary.clone(),
                        usage: c.usage.clone(),
                        min_role: c
                            .min_role
                            .max(p.min_role.unwrap_or(crate::auth::Role::Viewer)),
                        routed: registry
                            .route(&c.name)
                            .is_some_and(|r| Arc::ptr_eq(&r.plugin, p)),
                    })
                    .collect();
                let (state, reason) = match &p.state {
                    PluginState::Enabled => ("enabled", None),
                    PluginState::Disabled => ("disabled", None),
                    PluginState::Refused(why) => ("refused", Some(why.clone())),
                    PluginState::Loading => ("loading", None),
                };
                PluginView {
                    name: p.name.clone(),
                    version: p.manifest.as_ref().map(|m| m.version.clone()),
                    source: p.source.clone(),
                    state,
                    reason,
                    commands,
                    grants_asked: p
                        .manifest
                        .iter()
                        .flat_map(|m| &m.capabilities)
                        .map(|c| c.as_str())
                        .collect(),
                    grants_given: p.grants.names(),
                    calls: counters.calls.load(Ordering::Relaxed),
                    failures: counters.failures.load(Ordering::Relaxed),
                    p50_ms,
                    p99_ms,
                }
            })
            .collect()
    }

    /// Load each plan now, one after another.
    async fn load_plans(&self, plans: &[Plan], defaults: &CommandsConfig) -> Vec<PluginEntry> {
        let mut entries = Vec::with_capacity(plans.len());
        for plan in plans {
            let entry = self.load_plan(plan, defaults).await;
            log_entry(&entry);
            entries.push(entry);
        }
        entries
    }

    async fn load_plan(&self, plan: &Plan, defaults: &CommandsConfig) -> PluginEntry {
        let Plan {
            name,
            source,
            embedded,
            table,
            grants,
        } = plan;
        if let Some(reason) = refusal_before_loading(name, source, table, embedded.is_some()) {
            return refused(name, source.clone(), table, reason);
        }
        match self
            .try_load(name, source, *embedded, table, grants, defaults)
            .await
        {
            Ok((manifest, grants, runner)) => PluginEntry {
                name: name.to_string(),
                source: source.clone(),
                state: if table.enabled.unwrap_or(true) {
                    PluginState::Enabled
                } else {
                    PluginState::Disabled
                },
                manifest: Some(manifest),
                grants,
                min_role: table.min_role,
                runner: Some(runner),
            },
            Err(reason) => refused(name, source.clone(), table, reason),
        }
    }

    async fn try_load(
        &self,
        name: &str,
        source: &Source,
        embedded: Option<&'static [u8]>,
        table: &PluginConfig,
        grant_names: &[String],
        defaults: &CommandsConfig,
    ) -> Result<(manifest::Manifest, Grants, Runner), String> {
        let grants = Grants::parse(grant_names)?;
        let identity = Arc::new(PluginIdentity {
            settings: table.settings.clone().unwrap_or_default(),
            secrets: Arc::new(Secrets::load(table.secrets.as_ref())?),
            http: Arc::new(HttpPolicy::from_config(table.http.as_ref())?),
            ..PluginIdentity::with_defaults(name, grants.clone(), defaults)
        });
        let limits = CallLimits {
            timeout: Duration::from_millis(table.timeout_ms.unwrap_or(defaults.timeout_ms)),
            memory_bytes: (table.memory_mb.unwrap_or(defaults.memory_mb) as usize) << 20,
            max_reply_bytes: defaults.max_reply_bytes,
        };
        let (manifest, missing, runner) = match (embedded, source) {
            (None, Source::Native { path }) => {
                let plugin = tokio::task::block_in_place(|| NativePlugin::load(path))?;
                let manifest = manifest::accept(plugin.manifest()?)?;
                let missing = registry::missing_grants(&manifest.capabilities, &[], &grants);
                let runner = Runner::Native {
                    plugin: Arc::new(plugin),
                    identity,
                    limits,
                };
                (manifest, missing, runner)
            }
            (Some(bytes), _) => self.load_wasm(name, bytes, identity, limits, table).await?,
            (None, Source::Path { path }) => {
                let bytes = read_plugin_file(path)?;
                self.load_wasm(name, &bytes, identity, limits, table)
                    .await?
            }
            (None, Source::BuiltIn) => return Err("nothing to load".into()),
        };
        if !matches!(source, Source::BuiltIn) && manifest.name != name {
            return Err(format!(
                "the plugin calls itself {:?} but is configured as {name:?}",
                manifest.name
            ));
        }
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
            return Err(format!(
                "needs capability {} which config does not grant (add to [plugins.{name}] grants)",
                names.join(", ")
            ));
        }
        Ok((manifest, grants, runner))
    }

    /// Check, compile and link a component, and ask it for its manifest.
    async fn load_wasm(
        &self,
        name: &str,
        wasm: &[u8],
        identity: Arc<PluginIdentity>,
        limits: CallLimits,
        table: &PluginConfig,
    ) -> Result<(manifest::Manifest, Vec<manifest::Capability>, Runner), String> {
        let mounts: Vec<Mount> = table
            .dirs
            .iter()
            .flatten()
            .map(|(guest, mount)| Mount {
                guest: guest.clone(),
                host: mount.host_path().to_path_buf(),
                writable: mount.writable(),
            })
            .collect();
        for mount in &mounts {
            if !mount.host.is_dir() {
                tracing::warn!(plugin = name, dir = %mount.host.display(), "a configured directory does not exist; the plugin will not see it");
            }
        }
        let env = self.env(Arc::new(Registry::default()));
        let (prepared, manifest) = self
            .runtime
            .load(name, wasm, identity, limits, mounts, env)
            .await?;
        let missing = prepared.missing_grants(&manifest);
        Ok((manifest, missing, Runner::Wasm(Arc::new(prepared))))
    }
}

/// Every plugin the config names, the built-ins first, as plans to load.
fn plans(config: &Config) -> Vec<Plan> {
    let mut plans = Vec::new();
    for builtin in builtin::BUILTINS {
        let table = config
            .plugins
            .get(builtin.name)
            .cloned()
            .unwrap_or_default();
        let grants = table.grants.clone().unwrap_or_else(|| {
            builtin
                .grants
                .iter()
                .map(|c| c.as_str().to_string())
                .collect()
        });
        plans.push(Plan {
            name: builtin.name.to_string(),
            source: Source::BuiltIn,
            embedded: Some(builtin.wasm),
            table,
            grants,
        });
    }
    for (name, table) in &config.plugins {
        if builtin::find(name).is_some() {
            continue;
        }
        let source = match (&table.path, table.native.unwrap_or(false)) {
            (Some(path), true) => Source::Native { path: path.clone() },
            (Some(path), false) => Source::Path { path: path.clone() },
            (None, _) => Source::BuiltIn,
        };
        plans.push(Plan {
            name: name.clone(),
            source,
            embedded: None,
            table: table.clone(),
            grants: table.grants.clone().unwrap_or_default(),
        });
    }
    plans
}

/// What refuses a plan before anything is read: a table with no path that names no
/// built-in, or a native library without the opt-in.
fn refusal_before_loading(
    name: &str,
    source: &Source,
    table: &PluginConfig,
    embedded: bool,
) -> Option<String> {
    match source {
        Source::BuiltIn if !embedded => Some(format!(
            "[plugins.{name}] has no path and is not a built-in"
        )),
        Source::Path { path } if is_native_library(path) && !table.native.unwrap_or(false) => {
            Some(format!("{} is a native library; loading one needs `native = true`, an explicit opt-in to unsandboxed code", path.display()))
        }
        _ => None,
    }
}

fn log_entry(entry: &PluginEntry) {
    match &entry.state {
        PluginState::Refused(reason) => {
            tracing::warn!(
                plugin = entry.name.as_str(),
                reason = reason.as_str(),
                "plugin not enabled"
            )
        }
        PluginState::Disabled => {
            tracing::info!(plugin = %entry.name, "plugin disabled by config")
        }
        PluginState::Enabled => tracing::info!(
            plugin = %entry.name,
            version = entry.manifest.as_ref().map(|m| m.version.as_str()).unwrap_or(""),
            grants = ?entry.grants.names(),
            "plugin enabled"
        ),
        PluginState::Loading => {}
    }
}

fn refused(name: &str, source: Source, table: &PluginConfig, reason: String) -> PluginEntry {
    PluginEntry {
        name: name.to_string(),
        source,
        state: PluginState::Refused(reason),
        manifest: None,
        grants: Grants::default(),
        min_role: table.min_role,
        runner: None,
    }
}

fn is_native_library(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("so" | "dylib" | "dll")
    )
}

fn read_plugin_file(path: &Path) -> Result<Vec<u8>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_PLUGIN_BYTES {
        return Err(format!(
            "{} is larger than {} MiB",
            path.display(),
            MAX_PLUGIN_BYTES >> 20
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_plugins_act_only_through_their_reply() {
        let dir = |writable| Mount {
            guest: "/data".into(),
            host: "/tmp".into(),
            writable,
        };
        let check = |grants: &[Capability], mounts: &[Mount], expected: bool| {
            assert_eq!(
                acts_only_through_its_reply(&Grants::of(grants), mounts),
                expected,
                "{grants:?}"
            );
        };
        check(&[], &[], true);
        check(
            &[
                Capability::Commands,
                Capability::Config,
                Capability::Secrets,
            ],
            &[dir(false)],
            true,
        );
        for reaching in [
            Capability::Http,
            Capability::Kv,
            Capability::Sessions,
            Capability::Jobs,
            Capability::Progress,
            Capability::Stats,
        ] {
            check(&[Capability::Commands, reaching], &[], false);
        }
        check(&[], &[dir(false), dir(true)], false);
    }
}
