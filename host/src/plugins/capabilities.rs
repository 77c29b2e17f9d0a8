//! What a plugin may touch, the same for every API version. Every host function checks,
//! in this order: the call's host-call quota, that the call was not cancelled, that the
//! capability is granted, and that it runs inside an invocation (not `manifest()`) — see
//! [`CallState::access`]. How a refusal reaches the plugin is the version's business
//! (`wit/since_v*`): 0.1.0 traps, 0.2.0 returns an error. The server supplies the real
//! operations through [`HostServices`]; `slashd plugin check` and the test harness supply
//! fakes.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::egress::{CpuSlot, Egress, HttpPolicy};
use super::grants::Grants;
use super::host_services::{CallContext, HostServices};
use super::jobs::Job;
use super::manifest::Capability;
use super::registry::{CommandInfo, Counters, Registry};
use super::secrets::Secrets;

/// A plugin's identity and limits, shared by all its calls.
#[derive(Debug)]
pub struct PluginIdentity {
    pub name: String,
    pub grants: Grants,
    /// `[plugins.NAME] settings` as a JSON object.
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub host_call_quota: u32,
    pub kv_max_key_bytes: usize,
    pub kv_max_value_bytes: usize,
    pub kv_max_keys: i64,
    /// Its secrets' values; every text it writes is redacted with them.
    pub secrets: Arc<Secrets>,
    /// Where the `http` capability may go.
    pub http: Arc<HttpPolicy>,
}

impl PluginIdentity {
    /// An identity with the given grants and `[commands]` defaults, no settings, secrets
    /// or allow-list (the checker's and the harness's starting point).
    pub fn with_defaults(
        name: &str,
        grants: Grants,
        defaults: &crate::config::CommandsConfig,
    ) -> PluginIdentity {
        PluginIdentity {
            name: name.to_string(),
            grants,
            settings: Default::default(),
            host_call_quota: defaults.host_call_quota,
            kv_max_key_bytes: defaults.kv_max_key_bytes,
            kv_max_value_bytes: defaults.kv_max_value_bytes,
            kv_max_keys: defaults.kv_max_keys,
            secrets: Arc::new(Secrets::default()),
            http: Arc::new(HttpPolicy::default()),
        }
    }

    pub fn check_key(&self, key: &str) -> Result<(), String> {
        if key.is_empty() || key.len() > self.kv_max_key_bytes || key.contains('\0') {
            return Err(format!(
                "kv keys must be 1..={} bytes, without U+0000",
                self.kv_max_key_bytes
            ));
        }
        Ok(())
    }
}

/// What every call of this runtime shares: the server's services, the registry and the
/// node's running jobs.
pub struct CallEnv {
    pub services: Arc<dyn HostServices>,
    pub registry: Arc<Registry>,
    pub counters: Arc<Counters>,
    pub jobs: Arc<super::jobs::Jobs>,
}

/// Most log lines one call may write; the rest are counted and dropped.
const MAX_LOG_LINES: u32 = 100;

/// The data of one invocation's `Store`.
pub struct CallState {
    pub(super) wasi: WasiCtx,
    pub(super) http: WasiHttpCtx,
    pub(super) egress: Egress,
    pub(super) table: ResourceTable,
    pub(super) limits: StoreLimits,
    pub(super) deadline: Instant,
    pub(super) plugin: Arc<PluginIdentity>,
    /// `None` while the host asks for the manifest: no capability may be used then.
    pub(super) call: Option<Arc<CallContext>>,
    pub(super) env: Arc<CallEnv>,
    pub(super) output: Output,
    host_calls: u32,
    log_lines: u32,
    /// Capabilities already refused in this call (each refusal is logged once).
    refused: Vec<Capability>,
}

/// What the plugin wrote to stdout and stderr during the call (logged after it).
pub struct Output {
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
}

/// Why a host call may not proceed.
pub(super) enum Denied {
    /// The call's host-call quota is spent, or the call was cancelled: the call ends here,
    /// in every API version.
    Stop(String),
    /// Not granted, or not inside an invocation: 0.1.0 traps, 0.2.0 tells the plugin.
    Refused(String),
}

/// What the plugin sees of the system: WASI, outbound HTTP, its captured output.
pub(super) struct Sandbox {
    pub wasi: WasiCtx,
    pub egress: Egress,
    pub output: Output,
}

impl CallState {
    pub(super) fn new(
        sandbox: Sandbox,
        limits: StoreLimits,
        deadline: Instant,
        plugin: Arc<PluginIdentity>,
        call: Option<Arc<CallContext>>,
        env: Arc<CallEnv>,
    ) -> CallState {
        let Sandbox {
            wasi,
            egress,
            output,
        } = sandbox;
        CallState {
            wasi,
            http: WasiHttpCtx::new(),
            egress,
            table: ResourceTable::new(),
            limits,
            deadline,
            plugin,
            call,
            env,
            output,
            host_calls: 0,
            log_lines: 0,
            refused: Vec::new(),
        }
    }

    /// Give this store to one call: its context, deadline, environment and CPU place, and
    /// quotas counted from zero. A spare's start functions ran before (`spare.rs`).
    pub(super) fn begin(
        &mut self,
        call: Option<Arc<CallContext>>,
        deadline: Instant,
        env: Arc<CallEnv>,
        cpu: Arc<CpuSlot>,
    ) {
        let job = call.as_ref().and_then(|c| c.job.clone());
        self.egress.begin(env.services.clone(), job, deadline, cpu);
        self.call = call;
        self.deadline = deadline;
        self.env = env;
        self.host_calls = 0;
        self.log_lines = 0;
        self.refused.clear();
    }

    /// Whether the call was cancelled (checked by the epoch callback too).
    pub(super) fn is_cancelled(&self) -> bool {
        self.call
            .as_ref()
            .and_then(|c| c.job.as_ref())
            .is_some_and(|j| j.is_cancelled())
    }

    /// Count a host call against the quota; stop a cancelled call.
    pub(super) fn charge(&mut self) -> Result<(), Denied> {
        self.host_calls += 1;
        if self.host_calls > self.plugin.host_call_quota {
            return Err(Denied::Stop(format!(
                "host call quota ({}) exceeded",
                self.plugin.host_call_quota
            )));
        }
        if self.is_cancelled() {
            return Err(Denied::Stop("the command was cancelled".into()));
        }
        Ok(())
    }

    /// The checks of every capability call; returns the invocation context.
    pub(super) fn access(&mut self, cap: Capability) -> Result<Arc<CallContext>, Denied> {
        self.charge()?;
        if !self.plugin.grants.has(cap) {
            let why = format!(
                "capability `{}` is not granted to plugin {}",
                cap.as_str(),
                self.plugin.name
            );
            if !self.refused.contains(&cap) {
                self.refused.push(cap);
                tracing::warn!(
                    target: "slashd::plugin",
                    plugin = self.plugin.name.as_str(),
                    capability = cap.as_str(),
                    "plugin called a capability it was not granted"
                );
            }
            return Err(Denied::Refused(why));
        }
        match &self.call {
            Some(call) => Ok(call.clone()),
            None => Err(Denied::Refused(
                "host capabilities are not available in manifest()".into(),
            )),
        }
    }

    pub(super) fn log(&mut self, level: tracing::Level, message: &str) -> Result<(), Denied> {
        self.charge()?;
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            return Ok(());
        }
        // Redacted whole, then cut: a secret across the cut is hidden too.
        let redacted: String = self
            .plugin
            .secrets
            .redact(message)
            .chars()
            .take(2000)
            .collect();
        let message = crate::log_text::escape(&redacted);
        let plugin = self.plugin.name.as_str();
        match level {
            tracing::Level::TRACE => tracing::trace!(target: "slashd::plugin", plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(target: "slashd::plugin", plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(target: "slashd::plugin", plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(target: "slashd::plugin", plugin, "{message}"),
            tracing::Level::ERROR => tracing::error!(target: "slashd::plugin", plugin, "{message}"),
        }
        Ok(())
    }

    pub(super) fn visible_commands(&self, call: &CallContext) -> Vec<CommandInfo> {
        self.env.registry.visible(call.role)
    }

    /// Calls and failures per plugin, for `stats`.
    pub(super) fn plugin_counters(&self) -> Vec<(String, u64, u64)> {
        self.env.counters.snapshot()
    }

    pub(super) async fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.plugin.check_key(key)?;
        self.env.services.kv_get(&self.plugin.name, key).await
    }

    pub(super) async fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.plugin.check_key(key)?;
        if value.len() > self.plugin.kv_max_value_bytes {
            return Err(format!(
                "kv values must be at most {} bytes",
                self.plugin.kv_max_value_bytes
            ));
        }
        let max_keys = self.plugin.kv_max_keys;
        self.env
            .services
            .kv_set(&self.plugin.name, key, value, max_keys)
            .await
    }

    pub(super) async fn kv_delete(&mut self, key: &str) -> Result<(), String> {
        self.plugin.check_key(key)?;
        self.env.services.kv_delete(&self.plugin.name, key).await
    }

    pub(super) async fn kv_list(&mut self, prefix: &str) -> Result<Vec<String>, String> {
        self.env.services.kv_list(&self.plugin.name, prefix).await
    }

    pub(super) fn setting(&self, key: &str) -> Option<String> {
        self.plugin.settings.get(key).map(|v| v.to_string())
    }

    pub(super) fn settings(&self) -> String {
        serde_json::Value::Object(self.plugin.settings.clone()).to_string()
    }

    pub(super) fn secret(&self, name: &str) -> Option<String> {
        self.plugin.secrets.get(name).map(str::to_string)
    }

    pub(super) fn report_progress(&self, call: &CallContext, text: &str, fraction: Option<f32>) {
        let Some(job) = &call.job else { return };
        let text = self.plugin.secrets.redact(text);
        if let Some(update) = job.report(&text, fraction) {
            self.env.services.progress(call, &job.spec.command, &update);
        }
    }

    /// The caller's running jobs (everyone's, for an admin).
    pub(super) fn jobs_of(&self, call: &CallContext) -> Vec<Arc<Job>> {
        self.env.jobs.visible(&call.user_id, call.role)
    }

    pub(super) fn cancel_job(&self, call: &CallContext, id: &str) -> Result<(), String> {
        self.env
            .jobs
            .cancel(id, &call.user_id, &call.user_name, call.role)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}
