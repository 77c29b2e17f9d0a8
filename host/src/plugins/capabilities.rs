//! What a plugin may touch. Every host function checks, in this order: the call's host-call
//! quota, that the capability is granted, and that it runs inside an invocation (not
//! `manifest()`). The server supplies the real operations through [`HostServices`]; the
//! plugin test harness supplies fakes.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::slashd::plugin::{commands, config, kv, log, sessions, stats, types};
use super::grants::Grants;
use super::manifest::Capability;
use super::registry::{Counters, Registry};
use crate::auth::Role;

/// Who runs a command, where.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub user_id: String,
    pub user_name: String,
    pub role: Role,
    pub session_id: String,
    pub session_title: String,
    pub connection_id: String,
    /// RFC 3339.
    pub connected_at: String,
}

#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub uptime_secs: u64,
    pub connections: u64,
    pub users_online: u64,
    pub sessions_active: u64,
    pub sessions_total: u64,
    pub messages_total: u64,
    pub messages_last_24h: u64,
}

#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub id: String,
    pub title: String,
    pub status: String,
    pub last_activity_at: String,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct SessionDetail {
    pub id: String,
    pub title: String,
    pub status: String,
    pub created_at: String,
    pub owner_id: String,
    pub message_count: u64,
    pub participants: Vec<String>,
}

/// The server-side operations behind the capabilities. Errors are messages for the plugin.
#[async_trait]
pub trait HostServices: Send + Sync + 'static {
    async fn stats(&self) -> Result<ServerStats, String>;
    async fn current_session(&self, ctx: &CallContext) -> Result<SessionDetail, String>;
    async fn my_sessions(
        &self,
        ctx: &CallContext,
        limit: u32,
    ) -> Result<Vec<SessionSummary>, String>;
    async fn end_current_session(&self, ctx: &CallContext) -> Result<(), String>;
    async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Store a value; refuse a new key when the plugin already has `max_keys`.
    async fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        max_keys: i64,
    ) -> Result<(), String>;
    async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), String>;
    async fn kv_list(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, String>;
}

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
}

impl PluginIdentity {
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

/// What every call of this runtime shares: the server's services and the registry.
pub struct CallEnv {
    pub services: Arc<dyn HostServices>,
    pub registry: Arc<Registry>,
    pub counters: Arc<Counters>,
}

/// Most log lines one call may write; the rest are counted and dropped.
const MAX_LOG_LINES: u32 = 100;

/// The data of one invocation's `Store`.
pub struct CallState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: StoreLimits,
    pub(super) deadline: Instant,
    pub(super) plugin: Arc<PluginIdentity>,
    /// `None` while the host asks for the manifest: no capability may be used then.
    pub(super) call: Option<CallContext>,
    pub(super) env: Arc<CallEnv>,
    pub(super) output: Output,
    host_calls: u32,
    log_lines: u32,
}

/// What the plugin wrote to stdout and stderr during the call (logged after it).
pub struct Output {
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
}

impl CallState {
    pub(super) fn new(
        wasi: WasiCtx,
        limits: StoreLimits,
        deadline: Instant,
        plugin: Arc<PluginIdentity>,
        call: Option<CallContext>,
        env: Arc<CallEnv>,
        output: Output,
    ) -> CallState {
        CallState {
            wasi,
            table: ResourceTable::new(),
            limits,
            deadline,
            plugin,
            call,
            env,
            output,
            host_calls: 0,
            log_lines: 0,
        }
    }

    fn charge(&mut self) -> wasmtime::Result<()> {
        self.host_calls += 1;
        if self.host_calls > self.plugin.host_call_quota {
            wasmtime::bail!("host call quota ({}) exceeded", self.plugin.host_call_quota);
        }
        Ok(())
    }

    /// Charge the call and check the grant; returns the invocation context.
    fn require(&mut self, cap: Capability) -> wasmtime::Result<CallContext> {
        self.charge()?;
        if !self.plugin.grants.has(cap) {
            wasmtime::bail!(
                "capability `{}` is not granted to plugin {}",
                cap.as_str(),
                self.plugin.name
            );
        }
        match &self.call {
            Some(call) => Ok(call.clone()),
            None => wasmtime::bail!("host capabilities are not available in manifest()"),
        }
    }

    fn check_key(&self, key: &str) -> Result<(), String> {
        self.plugin.check_key(key)
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

fn role_to_wit(role: Role) -> types::Role {
    match role {
        Role::Viewer => types::Role::Viewer,
        Role::Analyst => types::Role::Analyst,
        Role::Admin => types::Role::Admin,
    }
}

impl types::Host for CallState {}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.charge()?;
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            return Ok(());
        }
        let plugin = &self.plugin.name;
        let message: String = message.chars().take(2000).collect();
        let message = crate::log_text::escape(&message);
        let plugin = plugin.as_str();
        match level {
            log::Level::Trace => tracing::trace!(target: "slashd::plugin", plugin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "slashd::plugin", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "slashd::plugin", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "slashd::plugin", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "slashd::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

impl commands::Host for CallState {
    async fn visible(&mut self) -> wasmtime::Result<Vec<commands::CommandInfo>> {
        let call = self.require(Capability::Commands)?;
        Ok(self
            .env
            .registry
            .visible(call.role)
            .into_iter()
            .map(|c| commands::CommandInfo {
                name: c.name,
                aliases: c.aliases,
                summary: c.summary,
                usage: c.usage,
                min_role: role_to_wit(c.min_role),
                plugin: c.plugin,
            })
            .collect())
    }
}

impl stats::Host for CallState {
    async fn get(&mut self) -> wasmtime::Result<Result<stats::ServerStats, String>> {
        self.require(Capability::Stats)?;
        let s = match self.env.services.stats().await {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let plugins = self
            .env
            .counters
            .snapshot()
            .into_iter()
            .map(|(name, calls, failures)| stats::PluginStats {
                name,
                calls,
                failures,
            })
            .collect();
        Ok(Ok(stats::ServerStats {
            uptime_secs: s.uptime_secs,
            connections: s.connections,
            users_online: s.users_online,
            sessions_active: s.sessions_active,
            sessions_total: s.sessions_total,
            messages_total: s.messages_total,
            messages_last_24h: s.messages_last_24h,
            plugins,
        }))
    }
}

impl sessions::Host for CallState {
    async fn current(&mut self) -> wasmtime::Result<Result<sessions::SessionDetail, String>> {
        let call = self.require(Capability::Sessions)?;
        Ok(self
            .env
            .services
            .current_session(&call)
            .await
            .map(|d| sessions::SessionDetail {
                id: d.id,
                title: d.title,
                status: d.status,
                created_at: d.created_at,
                owner_id: d.owner_id,
                message_count: d.message_count,
                participants: d.participants,
            }))
    }

    async fn list_mine(
        &mut self,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<sessions::SessionSummary>, String>> {
        let call = self.require(Capability::Sessions)?;
        let limit = limit.clamp(1, 100);
        Ok(self
            .env
            .services
            .my_sessions(&call, limit)
            .await
            .map(|list| {
                list.into_iter()
                    .map(|s| sessions::SessionSummary {
                        id: s.id,
                        title: s.title,
                        status: s.status,
                        last_activity_at: s.last_activity_at,
                        created_at: s.created_at,
                    })
                    .collect()
            }))
    }

    async fn end_current(&mut self) -> wasmtime::Result<Result<(), String>> {
        let call = self.require(Capability::Sessions)?;
        Ok(self.env.services.end_current_session(&call).await)
    }

    async fn connection(&mut self) -> wasmtime::Result<sessions::ConnectionInfo> {
        let call = self.require(Capability::Sessions)?;
        Ok(sessions::ConnectionInfo {
            id: call.connection_id,
            connected_at: call.connected_at,
        })
    }
}

impl kv::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        self.require(Capability::Kv)?;
        if let Err(e) = self.check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.env.services.kv_get(&self.plugin.name, &key).await)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        self.require(Capability::Kv)?;
        if let Err(e) = self.check_key(&key) {
            return Ok(Err(e));
        }
        if value.len() > self.plugin.kv_max_value_bytes {
            return Ok(Err(format!(
                "kv values must be at most {} bytes",
                self.plugin.kv_max_value_bytes
            )));
        }
        let max_keys = self.plugin.kv_max_keys;
        Ok(self
            .env
            .services
            .kv_set(&self.plugin.name, &key, &value, max_keys)
            .await)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        self.require(Capability::Kv)?;
        if let Err(e) = self.check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.env.services.kv_delete(&self.plugin.name, &key).await)
    }

    async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Result<Vec<String>, String>> {
        self.require(Capability::Kv)?;
        Ok(self.env.services.kv_list(&self.plugin.name, &prefix).await)
    }
}

impl config::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.require(Capability::Config)?;
        Ok(self.plugin.settings.get(&key).map(|v| v.to_string()))
    }

    async fn all(&mut self) -> wasmtime::Result<String> {
        self.require(Capability::Config)?;
        Ok(serde_json::Value::Object(self.plugin.settings.clone()).to_string())
    }
}
