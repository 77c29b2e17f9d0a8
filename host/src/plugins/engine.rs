//! The wasmtime side: one engine and linker for the process, compiled components cached on
//! disk, and the per-invocation path — a fresh `Store` and instance from an `InstancePre`
//! (or one made ahead, `spare.rs`), limits, deadline, and the store dropped on the thread
//! the call ran on.
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
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::call::{
    check_completions, ActionInput, CallError, CallInput, CompleteInput, PluginReply, RawReply,
};
use super::capabilities::{CallEnv, CallState, Output, PluginIdentity, Sandbox};
use super::egress::{CpuSlot, Egress};
use super::first_slice::{self, Clock, FirstSlice, Slice};
use super::host_services::CallContext;
use super::manifest::{Capability, Manifest};
use super::spare::{Spare, Spares, MAX_SPARES};
use super::wit::{self, ApiVersion, Pre};
use crate::config::{CommandsConfig, MAX_PLUGIN_MEMORY_MB};
use slashd_plugin_api::Completion;

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
    pre: Pre,
    pub identity: Arc<PluginIdentity>,
    pub limits: CallLimits,
    pub mounts: Vec<Mount>,
    /// Capabilities the component actually imports.
    pub imports: Vec<Capability>,
    /// Every import, by interface name.
    pub import_names: Vec<String>,
    /// Where its calls start (`first_slice.rs`).
    first_slice: Arc<FirstSlice>,
    /// Its next instance, made ahead (`spare.rs`); one per identity.
    spares: Arc<Spares>,
}

impl Prepared {
    pub fn version(&self) -> ApiVersion {
        self.pre.version()
    }

    /// The same linked component with another identity (grants, settings, secrets).
    pub fn with_identity(&self, identity: Arc<PluginIdentity>) -> Prepared {
        Prepared {
            pre: self.pre.clone(),
            identity,
            limits: self.limits.clone(),
            mounts: self.mounts.clone(),
            imports: self.imports.clone(),
            import_names: self.import_names.clone(),
            first_slice: self.first_slice.clone(),
            spares: Arc::default(),
        }
    }

    /// How many of its calls so far used an instance made ahead (`spare.rs`).
    pub fn instances_made_ahead(&self) -> u64 {
        self.spares.taken()
    }

    /// The capabilities config must grant: what the manifest asks for, and (API 0.1.0
    /// only) everything the component imports.
    pub fn missing_grants(&self, manifest: &Manifest) -> Vec<Capability> {
        let imports: &[Capability] = if self.version().imports_need_grants() {
            &self.imports
        } else {
            &[]
        };
        super::registry::missing_grants(&manifest.capabilities, imports, &self.identity.grants)
    }
}

pub struct Runtime {
    /// Where plugin code runs (see the module comment). An `Option` only so `Drop` can shut
    /// it down without blocking, which a runtime dropped inside another one may not do.
    threads: Option<tokio::runtime::Runtime>,
    engine: Engine,
    linker: Linker<CallState>,
    cache_dir: Option<PathBuf>,
    /// Cold compiles run one at a time: each already uses every core, and a reload that
    /// asks for a component the background loader is compiling then finds it cached.
    compiling: std::sync::Mutex<()>,
    /// Calls running wasm at once (`commands.max_concurrent`); a call waiting on an HTTP
    /// response gives its permit up until the response arrives.
    permits: Arc<Semaphore>,
    /// Calls alive at once (`commands.max_jobs`): each holds a pool slot.
    slots: Arc<Semaphore>,
    /// `commands.first_slice_budget`, given to each plugin's [`FirstSlice`].
    first_slice_budget: Duration,
    /// Pool places for spare instances (`spare.rs`), beside the calls' `slots`.
    spare_places: Arc<Semaphore>,
}

impl Runtime {
    pub fn new(config: &CommandsConfig, cache_dir: Option<PathBuf>) -> anyhow::Result<Runtime> {
        // A slot is held from instantiation until the store is dropped: at
        // most `max_jobs` slots are ever in use by calls, and `MAX_SPARES` by spares.
        let slots = u32::try_from(config.max_jobs.max(1))
            .unwrap_or(u32::MAX / 16)
            .min(1 << 16)
            + 8
            + MAX_SPARES;
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
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)?;
        wit::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;

        Ok(Runtime {
            threads: Some(plugin_threads()?),
            engine,
            linker,
            cache_dir,
            compiling: std::sync::Mutex::new(()),
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            slots: Arc::new(Semaphore::new(config.max_jobs.max(1))),
            first_slice_budget: config.first_slice_budget,
            spare_places: Arc::new(Semaphore::new(MAX_SPARES as usize)),
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
        let _one_at_a_time = if path.exists() {
            None
        } else {
            Some(self.compiling.lock().unwrap_or_else(|p| p.into_inner()))
        };
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

    /// Whether `wasm` is in the compile cache, so loading it takes milliseconds, not the
    /// seconds a cold compile of a big (Python, JavaScript) component takes.
    pub fn is_compiled(&self, wasm: &[u8]) -> bool {
        self.cache_dir
            .as_ref()
            .is_some_and(|dir| dir.join(format!("{}.cwasm", self.cache_key(wasm))).exists())
    }

    /// The manifest a component declared when it was last loaded, kept beside the compile
    /// cache (keyed by the component's bytes alone, so it outlives an engine upgrade that
    /// invalidates the compiled code). Only a hint of what is loading: the loaded
    /// component's own `manifest()` is what counts.
    pub fn kept_manifest(&self, wasm: &[u8]) -> Option<Manifest> {
        let path = self.manifest_path(wasm)?;
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn keep_manifest(&self, wasm: &[u8], manifest: &Manifest) {
        let Some(path) = self.manifest_path(wasm) else {
            return;
        };
        if path.exists() {
            // The same bytes declare the same manifest.
            return;
        }
        let written = serde_json::to_vec(manifest)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| {
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, &path)?;
                Ok(())
            });
        if let Err(e) = written {
            tracing::debug!(error = format!("{e:#}"), "cannot keep a plugin's manifest");
        }
    }

    fn manifest_path(&self, wasm: &[u8]) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let digest = Sha256::digest(wasm);
        Some(dir.join(format!("{}.manifest.json", hex::encode(&digest[..20]))))
    }

    /// Check, compile and link a component and ask it for its manifest: everything loading
    /// a plugin does but granting. Errors are one line each, fit for a log or a terminal.
    pub async fn load(
        &self,
        name: &str,
        wasm: &[u8],
        identity: Arc<PluginIdentity>,
        limits: CallLimits,
        mounts: Vec<Mount>,
        env: Arc<CallEnv>,
    ) -> Result<(Prepared, Manifest), String> {
        let version = wit::api_version(wasm)?;
        let component = tokio::task::block_in_place(|| self.compile(name, wasm))
            .map_err(|e| format!("not a valid component: {}", one_line(&e)))?;
        let prepared = self
            .prepare(&component, version, identity, limits, mounts)
            .map_err(|e| format!("does not fit the slashd:plugin world: {}", one_line(&e)))?;
        let manifest = self
            .manifest(&prepared, env)
            .await
            .map_err(|e| one_line(&e))?;
        let manifest = super::manifest::accept(manifest)?;
        self.keep_manifest(wasm, &manifest);
        Ok((prepared, manifest))
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
        version: ApiVersion,
        identity: Arc<PluginIdentity>,
        limits: CallLimits,
        mounts: Vec<Mount>,
    ) -> anyhow::Result<Prepared> {
        let imports = self.imported_capabilities(component);
        let import_names = self.import_names(component);
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)?;
        let pre = Pre::new(version, pre).map_err(anyhow::Error::from)?;
        Ok(Prepared {
            pre,
            identity,
            limits,
            mounts,
            imports,
            import_names,
            first_slice: Arc::new(FirstSlice::new(self.first_slice_budget)),
            spares: Arc::default(),
        })
    }

    /// Ask a plugin for its manifest (no capability is usable here).
    pub async fn manifest(&self, plugin: &Prepared, env: Arc<CallEnv>) -> anyhow::Result<Manifest> {
        let outcome = self
            .run(
                plugin,
                env,
                None,
                plugin.limits.timeout,
                move |store, instance| Box::pin(async move { instance.manifest(store).await }),
            )
            .await;
        match outcome {
            Ok(m) => Ok(m),
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
        let ctx = Arc::new(ctx);
        let call_ctx = ctx.clone();
        self.reply_call(plugin, env, ctx, move |store, instance| {
            Box::pin(async move { instance.invoke(store, &call_ctx, input).await })
        })
        .await
    }

    /// A `complete` call: fresh instance, `deadline` (shorter than a command's), checked
    /// items.
    pub async fn complete(
        &self,
        plugin: &Prepared,
        env: Arc<CallEnv>,
        ctx: CallContext,
        input: CompleteInput,
        deadline: Duration,
    ) -> Result<Vec<Completion>, CallError> {
        let ctx = Arc::new(ctx);
        let call_ctx = ctx.clone();
        let timeout = deadline.min(plugin.limits.timeout);
        let items = self
            .run(plugin, env, Some(ctx), timeout, move |store, instance| {
                Box::pin(async move { instance.complete(store, &call_ctx, input).await })
            })
            .await?;
        Ok(check_completions(items, &plugin.identity.secrets))
    }

    /// An `on-action` call: as an invocation, with the plugin's own limits.
    pub async fn on_action(
        &self,
        plugin: &Prepared,
        env: Arc<CallEnv>,
        ctx: CallContext,
        input: ActionInput,
    ) -> Result<PluginReply, CallError> {
        let ctx = Arc::new(ctx);
        let call_ctx = ctx.clone();
        self.reply_call(plugin, env, ctx, move |store, instance| {
            Box::pin(async move { instance.on_action(store, &call_ctx, input).await })
        })
        .await
    }

    /// A call that answers with a reply (`invoke`, `on-action`): the plugin's own deadline,
    /// and the reply as the host passes it on — size-checked, `data` parsed, secrets
    /// hidden — or the error, secrets hidden.
    async fn reply_call(
        &self,
        plugin: &Prepared,
        env: Arc<CallEnv>,
        ctx: Arc<CallContext>,
        call: impl for<'a> FnOnce(
                &'a mut Store<CallState>,
                wit::Instance,
            ) -> CallFuture<'a, Result<RawReply, CallError>>
            + Send
            + 'static,
    ) -> Result<PluginReply, CallError> {
        let result = self
            .run(plugin, env, Some(ctx), plugin.limits.timeout, call)
            .await;
        let secrets = &plugin.identity.secrets;
        match result {
            Ok(Ok(raw)) => raw.check(secrets, plugin.limits.max_reply_bytes),
            Ok(Err(e)) | Err(e) => Err(e.redacted(secrets)),
        }
    }

    async fn run<R: Send + 'static>(
        &self,
        plugin: &Prepared,
        env: Arc<CallEnv>,
        ctx: Option<Arc<CallContext>>,
        timeout: Duration,
        call: impl for<'a> FnOnce(&'a mut Store<CallState>, wit::Instance) -> CallFuture<'a, R>
            + Send
            + 'static,
    ) -> Result<R, CallError> {
        let started = Instant::now();
        let job = ctx.as_ref().and_then(|c| c.job.clone());
        // Waiting for a slot and a permit counts against the deadline too.
        let places = async {
            let slot = self.slots.clone().acquire_owned().await?;
            let permit = self.permits.clone().acquire_owned().await?;
            Ok::<_, tokio::sync::AcquireError>((slot, permit))
        };
        let cancelled_early = async {
            match &job {
                Some(job) => job.cancelled().await,
                None => std::future::pending().await,
            }
        };
        // Free places are the usual case: taken without a timer (each costs a wheel entry).
        let free = self
            .slots
            .clone()
            .try_acquire_owned()
            .ok()
            .and_then(|slot| {
                let permit = self.permits.clone().try_acquire_owned().ok()?;
                Some((slot, permit))
            });
        let (slot, permit) = match free {
            Some(places) => places,
            None => tokio::select! {
                places = tokio::time::timeout(timeout, places) => places
                    .map_err(|_| CallError::Timeout(timeout))?
                    .map_err(|_| CallError::Failed("the plugin runtime is shutting down".into()))?,
                () = cancelled_early => {
                    let why = job.as_ref().map(|j| j.cancel_reason()).unwrap_or_default();
                    return Err(CallError::Cancelled(why));
                }
            },
        };
        let cpu = CpuSlot::new(self.permits.clone(), permit);
        let deadline = started + timeout;

        // The first slice runs here, on the caller's thread, unless this plugin has been
        // slow in it lately or may reach the network (`first_slice.rs`). Only such calls
        // use and make spares (`spare.rs`): a store made here is dropped here.
        let clock = if plugin.identity.grants.has(Capability::Http) {
            None
        } else {
            plugin.first_slice.start(Instant::now())
        };
        let for_call = ctx.is_some();
        let spare = if clock.is_some() && for_call {
            plugin.spares.take()
        } else {
            None
        };
        let (mut store, instance) = match spare {
            Some((store, instance)) => (store, Some(instance)),
            None => {
                let store = new_store(&self.engine, plugin.recipe(for_call), env.clone(), deadline)
                    .map_err(|e| {
                        tracing::error!(
                            plugin = plugin.identity.name.as_str(),
                            error = format!("{e:#}"),
                            "cannot set up a plugin call"
                        );
                        CallError::Failed("the plugin could not be started".into())
                    })?;
                (store, None)
            }
        };
        store.data_mut().begin(ctx, deadline, env, cpu.clone());
        store.set_epoch_deadline(1);
        let pre = plugin.pre.clone();
        let identity = plugin.identity.clone();
        let cancelled_job = job.clone();
        // The task owns the store and its places: if the caller goes away (its connection
        // closed), the call still ends by its deadline and frees both.
        let task = async move {
            let cancelled = async {
                match &cancelled_job {
                    Some(job) => job.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            let called = async {
                let instance = match instance {
                    Some(instance) => instance,
                    // Boxed: inline, its state would make every call's task larger (the
                    // task is moved to the heap on each call, spare or not).
                    None => Box::pin(pre.instantiate(&mut store)).await?,
                };
                call(&mut store, instance).await
            };
            // The epoch callback traps at the deadline (or on a cancel); the outer timeout
            // catches a plugin stuck in a host call, the cancel branch one waiting on I/O.
            let outcome = tokio::select! {
                outcome = tokio::time::timeout(timeout + Duration::from_millis(50), called) => Some(outcome),
                () = cancelled => None,
            };
            forward_output(&identity, &store);
            drop(cpu.take());
            (outcome, Used { store, _slot: slot })
        };
        let threads = self
            .threads
            .as_ref()
            .ok_or_else(|| CallError::Failed("the plugin runtime is shutting down".into()))?;
        let mut task = Box::pin(task);
        let mut finished = None;
        if let Some(clock) = clock {
            let budget = plugin.first_slice.budget();
            let (slice, took) = first_slice::run(task.as_mut(), budget, clock).await;
            if plugin.first_slice.ran(Instant::now(), took, clock) {
                // Worth an operator's look when it recurs: a plugin that needs more than its
                // slice, or a machine that steals time from it.
                tracing::warn!(
                    target: "slashd::plugin",
                    plugin = %plugin.identity.name,
                    took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                    budget_us = u64::try_from(plugin.first_slice.budget().as_micros()).unwrap_or(u64::MAX),
                    "a plugin's calls went over their first slice twice within 100 calls; they start on the plugin threads for 30s"
                );
            }
            match slice {
                Slice::Finished(outcome) => finished = Some(outcome),
                Slice::Unfinished => {}
                // As a panic on the plugin threads is: this call is lost, the caller is not.
                Slice::Panicked => {
                    return Err(CallError::Failed(
                        "the plugin call was lost: it panicked".into(),
                    ))
                }
            }
        }
        let outcome = match finished {
            Some((outcome, used)) => {
                self.retire(plugin, used, for_call);
                outcome
            }
            // Dropped where the call ran: handing a store to another thread to drop cost
            // more than the drop (a wake-up, and its frees contended with the next call's
            // allocations; plugin-compare, back to back 34–110 µs a call → 18 µs).
            None => threads
                .spawn(async move { task.await.0 })
                .await
                .map_err(|e| CallError::Failed(format!("the plugin call was lost: {e}")))?,
        };
        let cancelled = || {
            job.as_ref()
                .filter(|j| j.is_cancelled())
                .map(|j| CallError::Cancelled(j.cancel_reason()))
        };
        match outcome {
            None => Err(cancelled().unwrap_or(CallError::Cancelled("cancelled".into()))),
            Some(Err(_)) => Err(CallError::Timeout(timeout)),
            Some(Ok(Ok(value))) => Ok(value),
            Some(Ok(Err(err))) => {
                Err(cancelled().unwrap_or_else(|| classify_trap(&plugin.identity, &err, timeout)))
            }
        }
    }

    /// A call that ran on the caller's thread is over: drop its store and make the
    /// plugin's next instance in a task of its own on this runtime (`spare.rs`), or, when
    /// one is ready or being made or spares do not apply, drop the store now.
    fn retire(&self, plugin: &Prepared, used: Used, for_call: bool) {
        let Ok(here) = tokio::runtime::Handle::try_current() else {
            return drop(used);
        };
        // A plugin demoted by this call starts its next on the plugin threads: no spare.
        if !for_call || !plugin.first_slice.inline(Instant::now()) || !plugin.spares.begin_refill()
        {
            return drop(used);
        }
        let refill = Refill {
            engine: self.engine.clone(),
            pre: plugin.pre.clone(),
            identity: plugin.identity.clone(),
            limits: plugin.limits.clone(),
            mounts: plugin.mounts.clone(),
            first_slice: plugin.first_slice.clone(),
            spares: plugin.spares.clone(),
            places: self.spare_places.clone(),
        };
        here.spawn(refill.run(used));
    }
}

/// The future of one call into an instance.
type CallFuture<'a, R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// What a finished call leaves: its store, and the pool place the store holds until it
/// is dropped (fields drop in order: the store first, so its slot is free before the
/// place can be taken again).
struct Used {
    store: Store<CallState>,
    _slot: OwnedSemaphorePermit,
}

/// What a store of one plugin is made from.
struct Recipe<'a> {
    identity: &'a Arc<PluginIdentity>,
    memory_bytes: usize,
    mounts: &'a [Mount],
    /// For a call (commands, completions, buttons) rather than `manifest()`: its
    /// directories are open and HTTP may be enabled.
    for_call: bool,
}

impl<'a> Recipe<'a> {
    fn of(
        identity: &'a Arc<PluginIdentity>,
        limits: &CallLimits,
        mounts: &'a [Mount],
        for_call: bool,
    ) -> Recipe<'a> {
        Recipe {
            identity,
            memory_bytes: limits.memory_bytes,
            mounts,
            for_call,
        }
    }
}

impl Prepared {
    fn recipe(&self, for_call: bool) -> Recipe<'_> {
        Recipe::of(&self.identity, &self.limits, &self.mounts, for_call)
    }
}

/// Making one plugin's next instance ahead of its call (`spare.rs`).
struct Refill {
    engine: Engine,
    pre: Pre,
    identity: Arc<PluginIdentity>,
    limits: CallLimits,
    mounts: Vec<Mount>,
    first_slice: Arc<FirstSlice>,
    spares: Arc<Spares>,
    places: Arc<Semaphore>,
}

impl Refill {
    async fn run(self, used: Used) {
        let env = used.store.data().env.clone();
        drop(used);
        let Ok(place) = self.places.clone().try_acquire_owned() else {
            return self.spares.made(None);
        };
        let recipe = Recipe::of(&self.identity, &self.limits, &self.mounts, true);
        // The plugin's own deadline, as for a call; the slice's budget bounds it here.
        let deadline = Instant::now() + self.limits.timeout;
        let mut store = match new_store(&self.engine, recipe, env, deadline) {
            Ok(store) => store,
            Err(e) => {
                tracing::debug!(plugin = %self.identity.name, error = format!("{e:#}"), "cannot make a spare instance");
                return self.spares.made(None);
            }
        };
        let budget = self.first_slice.budget();
        let clock = self.first_slice.start(Instant::now()).unwrap_or(Clock::Cpu);
        let (made, took) = {
            // Boxed, so the task spawned on the reply path is small: with the instantiation
            // inline, allocating and copying it was 9 % of a small plugin's call after an
            // idle pause (`perf` of plugin-compare).
            let mut instantiating = Box::pin(self.pre.instantiate(&mut store));
            first_slice::run(instantiating.as_mut(), budget, clock).await
        };
        if self.first_slice.ran(Instant::now(), took, clock) {
            tracing::warn!(
                target: "slashd::plugin",
                plugin = %self.identity.name,
                took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                "a plugin's instantiation went over its first slice twice within 100 calls; its calls start on the plugin threads for 30s"
            );
        }
        match made {
            Slice::Finished(Ok(instance)) if took <= budget => self.spares.made(Some(Spare {
                store,
                instance,
                _place: place,
            })),
            // A start function that traps fails the calls too; they will say why.
            _ => self.spares.made(None),
        }
    }
}

fn new_store(
    engine: &Engine,
    recipe: Recipe<'_>,
    env: Arc<CallEnv>,
    deadline: Instant,
) -> anyhow::Result<Store<CallState>> {
    let identity = recipe.identity;
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
    let mounts = if recipe.for_call { recipe.mounts } else { &[] };
    for mount in mounts {
        let perms = if mount.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        if let Err(e) = wasi.preopened_dir(&mount.host, &mount.guest, perms) {
            tracing::warn!(plugin = %identity.name, dir = %mount.host.display(), error = %e, "cannot open a directory for the plugin");
        }
    }
    let limits = StoreLimitsBuilder::new()
        .memory_size(recipe.memory_bytes)
        .trap_on_grow_failure(true)
        .build();
    let egress = Egress::new(
        &identity.name,
        identity.secrets.clone(),
        recipe.for_call && identity.grants.has(Capability::Http),
        identity.http.clone(),
        Some(env.services.clone()),
        deadline,
    );
    let sandbox = Sandbox {
        wasi: wasi.build(),
        egress,
        output: Output { stdout, stderr },
    };
    let state = CallState::new(sandbox, limits, deadline, identity.clone(), None, env);
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        if Instant::now() >= ctx.data().deadline || ctx.data().is_cancelled() {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    Ok(store)
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

/// Send what the plugin printed to the log, line by line, its secrets hidden.
fn forward_output(identity: &PluginIdentity, store: &Store<CallState>) {
    let plugin = identity.name.as_str();
    for (stream, pipe) in [
        ("stdout", &store.data().output.stdout),
        ("stderr", &store.data().output.stderr),
    ] {
        let bytes = pipe.contents();
        if bytes.is_empty() {
            continue;
        }
        // Redacted whole, then split: a secret with a newline in it (a PEM key) is hidden.
        let text = identity.secrets.redact(&String::from_utf8_lossy(&bytes));
        for line in text.lines().take(100) {
            let line = crate::log_text::escape(line);
            tracing::info!(target: "slashd::plugin", plugin, stream, "{line}");
        }
    }
}

/// What the invoker is told of a failed call: one line naming the trap or the cause. The
/// whole error — its chain and the wasm backtrace — goes to the log, for the plugin's
/// authors and the admin, never to the chat.
fn classify_trap(identity: &PluginIdentity, err: &wasmtime::Error, timeout: Duration) -> CallError {
    if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return CallError::Timeout(timeout);
    }
    tracing::warn!(
        target: "slashd::plugin",
        plugin = identity.name.as_str(),
        error = identity.secrets.redact(&format!("{err:?}")),
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

fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
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
