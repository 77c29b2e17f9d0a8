//! The wasmtime side: one engine and linker for the process, compiled components cached on
//! disk, and the per-invocation path — a fresh `Store` and instance from an `InstancePre`,
//! limits, deadline, and the store dropped off the reply path.
//!
//! Plugin code runs on a tokio runtime of its own whose threads run at a lower CPU priority
//! than the server's. A plugin that spins until its deadline then competes for a core with
//! other plugin calls, not with the chat traffic: measured with the hostile gallery (bench
//! hostile), sharing the server's two workers pushed normal users' p99 to 21× quiet.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::bindings::{types, Plugin, PluginPre};
use super::capabilities::{CallContext, CallEnv, CallState, Output, PluginIdentity};
use super::manifest::{Capability, CommandSpec, Manifest};
use crate::auth::Role;
use crate::config::{CommandsConfig, MAX_PLUGIN_MEMORY_MB};

/// How often the epoch advances; a running plugin yields to tokio this often. It bounds how
/// long a spinning plugin holds one of the runtime's workers: with 10 ms, a few spinners
/// beside other plugin calls pushed normal users' p99 to 21× quiet (BENCHMARKS.md, hostile).
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Captured stdout/stderr per call.
const OUTPUT_CAPACITY: usize = 64 * 1024;

/// Limits of one plugin's calls.
#[derive(Debug, Clone)]
pub struct CallLimits {
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub max_reply_bytes: usize,
}

/// A preopened directory.
#[derive(Debug, Clone)]
pub struct Mount {
    pub guest: String,
    pub host: PathBuf,
    pub writable: bool,
}

/// A component ready to instantiate, with what each call needs.
pub struct Prepared {
    pre: PluginPre<CallState>,
    pub identity: Arc<PluginIdentity>,
    pub limits: CallLimits,
    pub mounts: Vec<Mount>,
    /// Capabilities the component actually imports.
    pub imports: Vec<Capability>,
}

/// The arguments of one call.
pub struct CallInput {
    pub command: String,
    pub args: Vec<String>,
    pub raw_args: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyFormat {
    Plain,
    Markdown,
    Json,
}

impl ReplyFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyFormat::Plain => "plain",
            ReplyFormat::Markdown => "markdown",
            ReplyFormat::Json => "json",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PluginReply {
    pub body: String,
    pub format: ReplyFormat,
    pub data: Option<serde_json::Value>,
    pub ephemeral: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    #[error("the plugin did not answer within {0:?}")]
    Timeout(Duration),
}

pub struct Runtime {
    /// Where plugin code runs (see the module comment). An `Option` only so `Drop` can shut
    /// it down without blocking, which a runtime dropped inside another one may not do.
    threads: Option<tokio::runtime::Runtime>,
    engine: Engine,
    linker: Linker<CallState>,
    cache_dir: Option<PathBuf>,
    permits: Arc<Semaphore>,
    /// Stores are dropped on this thread, after the reply is on its way — each with the
    /// permit of its call, so the pool slot and the permit are freed together.
    reaper: std::sync::mpsc::Sender<(Store<CallState>, OwnedSemaphorePermit)>,
}

impl Runtime {
    pub fn new(config: &CommandsConfig, cache_dir: Option<PathBuf>) -> anyhow::Result<Runtime> {
        // A slot is held from instantiation until the store is dropped (by the reaper), and
        // a call's permit is held as long: at most `max_concurrent` slots are ever in use.
        let slots = (config.max_concurrent as u32).max(1) + 8;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 8)
            .total_memories(slots)
            .total_tables(slots * 8)
            .total_stacks(slots)
            .max_core_instances_per_component(32)
            .max_memories_per_component(2)
            .max_tables_per_component(16)
            .max_memory_size((MAX_PLUGIN_MEMORY_MB as usize) << 20)
            // Keep the first pages of a warm slot's memory and tables resident: a fresh
            // instance then doesn't re-fault the stack and heap it touches first (measured:
            // store + instantiate + call 16.7 µs → 4.8 µs). Bounded by the warm slots kept.
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(64 << 10)
            .max_unused_warm_slots(16)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(512 * 1024)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(anyhow::Error::from)?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)
            .map_err(anyhow::Error::from)?;

        let (reaper, graveyard) =
            std::sync::mpsc::channel::<(Store<CallState>, OwnedSemaphorePermit)>();
        std::thread::Builder::new()
            .name("slashd-store-reaper".into())
            .spawn(move || {
                for (store, permit) in graveyard {
                    drop(store);
                    drop(permit);
                }
            })
            .context("cannot start the store reaper")?;

        Ok(Runtime {
            threads: Some(plugin_threads()?),
            engine,
            linker,
            cache_dir,
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            reaper,
        })
    }

    /// Compile a component, or load it from the on-disk cache. The cache key covers the
    /// bytes, the wasmtime version and the engine's settings. Logs one line per plugin
    /// before compiling and one when done (or one for a cache hit), with the time taken.
    pub fn compile(&self, plugin: &str, wasm: &[u8]) -> anyhow::Result<Component> {
        let started = Instant::now();
        let Some(dir) = &self.cache_dir else {
            return Component::new(&self.engine, wasm).map_err(anyhow::Error::from);
        };
        let path = dir.join(format!("{}.cwasm", self.cache_key(wasm)));
        if path.exists() {
            // Safety: the cache directory is the server's own; files are written only by
            // `serialize` below, renamed into place atomically.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(component) => {
                    tracing::info!(
                        plugin,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "plugin loaded from the compile cache"
                    );
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring a bad cache entry")
                }
            }
        }
        tracing::info!(
            plugin,
            bytes = wasm.len(),
            "compiling plugin (cached for next start)"
        );
        let component = Component::new(&self.engine, wasm).map_err(anyhow::Error::from)?;
        tracing::info!(
            plugin,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plugin compiled"
        );
        if let Err(e) = write_cache(dir, &path, &component) {
            tracing::warn!(error = format!("{e:#}"), "cannot cache a compiled plugin");
        }
        Ok(component)
    }

    /// Every import of a component, by name (WASI interfaces and slashd capabilities).
    pub fn import_names(&self, component: &Component) -> Vec<String> {
        component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    fn cache_key(&self, wasm: &[u8]) -> String {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut digest = Sha256::new();
        digest.update(wasm);
        digest.update(engine_hash.finish().to_le_bytes());
        hex::encode(&digest.finalize()[..20])
    }

    /// Which capability interfaces a component imports.
    pub fn imported_capabilities(&self, component: &Component) -> Vec<Capability> {
        component
            .component_type()
            .imports(&self.engine)
            .filter_map(|(name, _)| Capability::of_import(name))
            .collect()
    }

    /// Link once; every call instantiates from this.
    pub fn prepare(
        &self,
        component: &Component,
        identity: Arc<PluginIdentity>,
        limits: CallLimits,
        mounts: Vec<Mount>,
    ) -> anyhow::Result<Prepared> {
        let imports = self.imported_capabilities(component);
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)?;
        let pre = PluginPre::new(pre).map_err(anyhow::Error::from)?;
        Ok(Prepared {
            pre,
            identity,
            limits,
            mounts,
            imports,
        })
    }

    /// Ask a plugin for its manifest (no capability is usable here).
    pub async fn manifest(&self, plugin: &Prepared, env: Arc<CallEnv>) -> anyhow::Result<Manifest> {
        let outcome = self
            .run(plugin, env, None, |instance, store| {
                Box::pin(async move { instance.call_manifest(store).await })
            })
            .await;
        match outcome {
            Ok(m) => Ok(manifest_from_wit(m)),
            Err(e) => anyhow::bail!("manifest() failed: {e}"),
        }
    }

    /// One invocation: fresh store and instance, limits, deadline.
    pub async fn invoke(
        &self,
        plugin: &Prepared,
        env: Arc<CallEnv>,
        ctx: CallContext,
        input: CallInput,
    ) -> Result<PluginReply, CallError> {
        let invocation = types::Invocation {
            command: input.command,
            args: input.args,
            raw_args: input.raw_args,
            caller: types::Caller {
                id: ctx.user_id.clone(),
                name: ctx.user_name.clone(),
                role: role_to_wit(ctx.role),
            },
            session: types::SessionRef {
                id: ctx.session_id.clone(),
                title: ctx.session_title.clone(),
            },
            connection_id: ctx.connection_id.clone(),
        };
        let result = self
            .run(plugin, env, Some(ctx), move |instance, store| {
                Box::pin(async move { instance.call_invoke(store, &invocation).await })
            })
            .await?;
        match result {
            Ok(reply) => reply_from_wit(reply, plugin.limits.max_reply_bytes),
            Err(types::PluginError::Usage(text)) => Err(CallError::Usage(text)),
            Err(types::PluginError::Failed(text)) => Err(CallError::Failed(text)),
        }
    }

    async fn run<R: Send + 'static>(
        &self,
        plugin: &Prepared,
        env: Arc<CallEnv>,
        ctx: Option<CallContext>,
        call: impl for<'a> FnOnce(
                Plugin,
                &'a mut Store<CallState>,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = wasmtime::Result<R>> + Send + 'a>,
            > + Send
            + 'static,
    ) -> Result<R, CallError> {
        let timeout = plugin.limits.timeout;
        let started = Instant::now();
        // Waiting for a slot counts against the deadline too.
        let permit = tokio::time::timeout(timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| CallError::Timeout(timeout))?
            .map_err(|_| CallError::Failed("the plugin runtime is shutting down".into()))?;
        let deadline = started + timeout;

        let mut store = self.new_store(plugin, env, ctx, deadline).map_err(|e| {
            tracing::error!(
                plugin = plugin.identity.name.as_str(),
                error = format!("{e:#}"),
                "cannot set up a plugin call"
            );
            CallError::Failed("the plugin could not be started".into())
        })?;
        let pre = plugin.pre.clone();
        let name = plugin.identity.name.clone();
        let reaper = self.reaper.clone();
        // The task owns the store and the permit: if the caller goes away (its connection
        // closed), the call still ends by its deadline and frees both.
        let task = async move {
            let instantiate_and_call = async {
                let instance = pre.instantiate_async(&mut store).await?;
                call(instance, &mut store).await
            };
            // The epoch callback traps at the deadline; this outer timeout catches a plugin
            // stuck in a host call.
            let outcome =
                tokio::time::timeout(timeout + Duration::from_millis(50), instantiate_and_call)
                    .await;
            forward_output(&name, &store);
            let _ = reaper.send((store, permit));
            outcome
        };
        let threads = self
            .threads
            .as_ref()
            .ok_or_else(|| CallError::Failed("the plugin runtime is shutting down".into()))?;
        let outcome = threads
            .spawn(task)
            .await
            .map_err(|e| CallError::Failed(format!("the plugin call was lost: {e}")))?;
        match outcome {
            Err(_) => Err(CallError::Timeout(timeout)),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(classify_trap(&plugin.identity.name, &err, timeout)),
        }
    }

    fn new_store(
        &self,
        plugin: &Prepared,
        env: Arc<CallEnv>,
        ctx: Option<CallContext>,
        deadline: Instant,
    ) -> anyhow::Result<Store<CallState>> {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        // `manifest()` needs no files. A directory that cannot be opened is left out (the
        // plugin sees it missing) rather than failing every command of the plugin.
        let mounts = if ctx.is_some() {
            plugin.mounts.as_slice()
        } else {
            &[]
        };
        for mount in mounts {
            let perms = if mount.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            if let Err(e) = wasi.preopened_dir(&mount.host, &mount.guest, perms) {
                tracing::warn!(plugin = %plugin.identity.name, dir = %mount.host.display(), error = %e, "cannot open a directory for the plugin");
            }
        }
        let limits = StoreLimitsBuilder::new()
            .memory_size(plugin.limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let state = CallState::new(
            wasi.build(),
            limits,
            deadline,
            plugin.identity.clone(),
            ctx,
            env,
            Output { stdout, stderr },
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(threads) = self.threads.take() {
            threads.shutdown_background();
        }
    }
}

/// The runtime plugin code runs on: one worker per core, each at a lower priority (nice
/// 10) than the server's threads, so the kernel prefers chat traffic when cores are busy.
fn plugin_threads() -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("slashd-plugin")
        .on_thread_start(lower_this_threads_priority)
        .enable_all()
        .build()
        .context("cannot start the plugin threads")
}

/// Linux gives each thread its own nice value; elsewhere plugin threads keep the default.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority has no memory-safety preconditions; `0` names this thread.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) } != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower a plugin thread's priority");
        }
    }
}

fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let _ = std::thread::Builder::new()
        .name("slashd-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        });
}

fn write_cache(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Send what the plugin printed to the log, line by line.
fn forward_output(plugin: &str, store: &Store<CallState>) {
    for (stream, pipe) in [
        ("stdout", &store.data().output.stdout),
        ("stderr", &store.data().output.stderr),
    ] {
        let bytes = pipe.contents();
        if bytes.is_empty() {
            continue;
        }
        for line in String::from_utf8_lossy(&bytes).lines().take(100) {
            let line = crate::log_text::escape(line);
            tracing::info!(target: "slashd::plugin", plugin, stream, "{line}");
        }
    }
}

/// What the invoker is told of a failed call: one line naming the trap or the cause. The
/// whole error — its chain and the wasm backtrace — goes to the log, for the plugin's
/// authors and the admin, never to the chat.
fn classify_trap(plugin: &str, err: &wasmtime::Error, timeout: Duration) -> CallError {
    if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return CallError::Timeout(timeout);
    }
    tracing::warn!(
        target: "slashd::plugin",
        plugin,
        error = format!("{err:?}"),
        "plugin call failed"
    );
    let detail = match err.downcast_ref::<Trap>() {
        Some(trap) => format!("the plugin trapped: {trap}"),
        None => format!(
            "the plugin failed: {}",
            first_line(&err.root_cause().to_string())
        ),
    };
    CallError::Failed(detail)
}

/// The first line of `text`, at most 300 characters.
fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

fn role_to_wit(role: Role) -> types::Role {
    match role {
        Role::Viewer => types::Role::Viewer,
        Role::Analyst => types::Role::Analyst,
        Role::Admin => types::Role::Admin,
    }
}

fn role_from_wit(role: types::Role) -> Role {
    match role {
        types::Role::Viewer => Role::Viewer,
        types::Role::Analyst => Role::Analyst,
        types::Role::Admin => Role::Admin,
    }
}

fn manifest_from_wit(m: types::Manifest) -> Manifest {
    let mut manifest = Manifest::new(&m.name, &m.version);
    for c in m.commands {
        manifest.commands.push(CommandSpec {
            name: c.name,
            aliases: c.aliases,
            summary: c.summary,
            usage: c.usage,
            min_role: role_from_wit(c.min_role),
        });
    }
    manifest.capabilities = m
        .capabilities
        .into_iter()
        .map(|c| match c {
            types::Capability::Commands => Capability::Commands,
            types::Capability::Stats => Capability::Stats,
            types::Capability::Sessions => Capability::Sessions,
            types::Capability::Kv => Capability::Kv,
            types::Capability::Config => Capability::Config,
        })
        .collect();
    manifest
}

/// The reply size limit, the same for wasm and native plugins.
pub fn check_reply_size(size: usize, max_bytes: usize) -> Result<(), CallError> {
    if size > max_bytes {
        return Err(CallError::Failed(format!(
            "the reply is {size} bytes; the limit is {max_bytes}"
        )));
    }
    Ok(())
}

fn reply_from_wit(reply: types::Reply, max_bytes: usize) -> Result<PluginReply, CallError> {
    check_reply_size(
        reply.body.len() + reply.data.as_ref().map_or(0, String::len),
        max_bytes,
    )?;
    let data = match reply.data {
        None => None,
        Some(text) => Some(
            serde_json::from_str(&text)
                .map_err(|e| CallError::Failed(format!("the reply's data is not JSON: {e}")))?,
        ),
    };
    Ok(PluginReply {
        body: reply.body,
        format: match reply.format {
            types::Format::Plain => ReplyFormat::Plain,
            types::Format::Markdown => ReplyFormat::Markdown,
            types::Format::Json => ReplyFormat::Json,
        },
        data,
        ephemeral: reply.ephemeral,
    })
}
