//! Native plugins: trusted `cdylib`s loaded with `libloading`, for teams that need native
//! code and accept that it is **not sandboxed** — it runs with the server's privileges, and
//! a crash (not a panic) in it takes the server down. Loading one is the admin's explicit
//! choice (`native = true`).
//!
//! The boundary is `slashd_plugin_api::native` (ABI version 1, JSON across, each side frees
//! its own buffers). A library is loaded once and never unloaded — unloading Rust dylibs is
//! unsound (thread-local destructors) — so disabling only stops routing, and a new version
//! of a library needs a restart. Calls run on a blocking thread with the plugin's deadline;
//! past it the user gets `plugin_timeout`, but the thread cannot be killed and runs on.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{json, Value};
use slashd_plugin_api::native::{Buffer, HostTable, PluginVTable, ABI_VERSION, ENTRY_SYMBOL};

use super::call::{check_reply_size, CallError, CallInput, PluginReply, ReplyFormat};
use super::capabilities::{CallEnv, PluginIdentity};
use super::engine::CallLimits;
use super::host_services::CallContext;
use super::manifest::{self, Capability, Manifest};

/// Libraries loaded so far, by canonical path: loaded once, never unloaded.
static LOADED: LazyLock<Mutex<HashMap<PathBuf, &'static PluginVTable>>> =
    LazyLock::new(Default::default);

pub struct NativePlugin {
    vtable: &'static PluginVTable,
    pub path: PathBuf,
}

impl NativePlugin {
    /// Load (or find already loaded) the library at `path`.
    pub fn load(path: &Path) -> Result<NativePlugin, String> {
        let canonical = path
            .canonicalize()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(vtable) = loaded.get(&canonical) {
            return Ok(NativePlugin {
                vtable,
                path: canonical,
            });
        }
        // Safety: loading runs the library's initializers — that is the trust the admin
        // granted with `native = true`.
        let library = unsafe { libloading::Library::new(&canonical) }
            .map_err(|e| format!("cannot load {}: {e}", canonical.display()))?;
        let entry: libloading::Symbol<unsafe extern "C" fn() -> *const PluginVTable> =
            unsafe { library.get(ENTRY_SYMBOL.as_bytes()) }.map_err(|_| {
                format!(
                    "{} exports no `{ENTRY_SYMBOL}`: build it with export_native_plugin!",
                    canonical.display()
                )
            })?;
        // Safety: the entry returns a pointer to a static in the library, which is never
        // unloaded (the `Library` is forgotten below). `abi_version` is the first field in
        // every ABI version, so reading it is sound before we know the rest of the layout.
        let vtable: &'static PluginVTable = match unsafe { entry().as_ref() } {
            Some(v) => unsafe { &*(v as *const PluginVTable) },
            None => return Err("the plugin's entry returned null".into()),
        };
        if vtable.abi_version != ABI_VERSION {
            return Err(format!(
                "native ABI version {} is not supported (this slashd speaks {ABI_VERSION})",
                vtable.abi_version
            ));
        }
        std::mem::forget(library);
        loaded.insert(canonical.clone(), vtable);
        tracing::warn!(path = %canonical.display(), "loaded a native plugin: it is not sandboxed");
        Ok(NativePlugin {
            vtable,
            path: canonical,
        })
    }

    pub fn manifest(&self) -> Result<Manifest, String> {
        // Safety: the vtable's functions follow the ABI; the buffer goes back to its `free`.
        let bytes = unsafe {
            let buffer = (self.vtable.manifest)();
            let bytes = buffer.as_slice().to_vec();
            (self.vtable.free)(buffer);
            bytes
        };
        manifest::from_json(&bytes)
    }

    pub async fn invoke(
        &self,
        identity: Arc<PluginIdentity>,
        env: Arc<CallEnv>,
        ctx: CallContext,
        input: CallInput,
        limits: &CallLimits,
    ) -> Result<PluginReply, CallError> {
        let request = json!({
            "command": input.command,
            "args": input.args,
            "raw_args": input.raw_args,
            "id": ctx.invocation_id,
            "values": input.values,
            "caller": {"id": ctx.user_id, "name": ctx.user_name, "role": ctx.role.as_str()},
            "session": {"id": ctx.session_id, "title": ctx.session_title},
            "connection_id": ctx.connection_id,
        })
        .to_string();
        let call = NativeCall {
            identity,
            env,
            ctx,
            runtime: tokio::runtime::Handle::current(),
            host_calls: Cell::new(0),
        };
        let vtable = self.vtable;
        let task = tokio::task::spawn_blocking(move || {
            let table = HostTable {
                abi_version: ABI_VERSION,
                ctx: &call as *const NativeCall as *const c_void,
                call: host_call,
                free: host_free,
            };
            // Safety: `table` and `request` outlive the call; the answer goes back to the
            // plugin's `free`.
            unsafe {
                let buffer = (vtable.invoke)(&table, request.as_ptr(), request.len());
                let bytes = buffer.as_slice().to_vec();
                (vtable.free)(buffer);
                bytes
            }
        });
        let bytes = match tokio::time::timeout(limits.timeout, task).await {
            Err(_) => return Err(CallError::Timeout(limits.timeout)),
            Ok(Err(_)) => {
                return Err(CallError::Failed(
                    "the native plugin's thread failed".into(),
                ))
            }
            Ok(Ok(bytes)) => bytes,
        };
        answer_from_json(&bytes, limits.max_reply_bytes)
    }
}

fn answer_from_json(bytes: &[u8], max_reply_bytes: usize) -> Result<PluginReply, CallError> {
    let answer: Value = serde_json::from_slice(bytes)
        .map_err(|e| CallError::Failed(format!("malformed answer: {e}")))?;
    if let Some(text) = answer.get("usage").and_then(Value::as_str) {
        return Err(CallError::Usage(text.to_string()));
    }
    if let Some(text) = answer.get("failed").and_then(Value::as_str) {
        return Err(CallError::Failed(text.to_string()));
    }
    let reply: slashd_plugin_api::Reply = answer
        .get("ok")
        .cloned()
        .ok_or_else(|| CallError::Failed("malformed answer".into()))
        .and_then(|v| {
            serde_json::from_value(v)
                .map_err(|e| CallError::Failed(format!("malformed reply: {e}")))
        })?;
    let data_len = reply.data.as_ref().map_or(0, |d| d.to_string().len());
    check_reply_size(reply.body.len() + data_len, max_reply_bytes)?;
    Ok(PluginReply {
        body: reply.body,
        format: match reply.format {
            slashd_plugin_api::Format::Plain => ReplyFormat::Plain,
            slashd_plugin_api::Format::Markdown => ReplyFormat::Markdown,
            slashd_plugin_api::Format::Json => ReplyFormat::Json,
        },
        data: reply.data,
        ephemeral: reply.ephemeral,
        // The native ABI has no `on-action`: a button could never be pressed.
        actions: Vec::new(),
    })
}

/// One native call's view of the host, lent to the plugin through the host table.
struct NativeCall {
    identity: Arc<PluginIdentity>,
    env: Arc<CallEnv>,
    ctx: CallContext,
    runtime: tokio::runtime::Handle,
    host_calls: Cell<u32>,
}

unsafe extern "C" fn host_call(ctx: *const c_void, request: *const u8, len: usize) -> Buffer {
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // Safety: `ctx` is the `NativeCall` this thread's `invoke` lent; `request` holds
        // `len` bytes for the duration of this call.
        let call = unsafe { &*(ctx as *const NativeCall) };
        let request = if request.is_null() {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(request, len) }
        };
        match serde_json::from_slice::<Value>(request) {
            Ok(request) => match call.dispatch(&request) {
                Ok(value) => json!({ "ok": value }),
                Err(e) => json!({ "err": e }),
            },
            Err(e) => json!({ "err": format!("malformed request: {e}") }),
        }
    }))
    .unwrap_or_else(|_| json!({ "err": "host error" }));
    Buffer::from_vec(answer.to_string().into_bytes())
}

unsafe extern "C" fn host_free(buffer: Buffer) {
    // Safety: only buffers `host_call` made, handed back once (the ABI's ownership rule).
    drop(unsafe { buffer.into_vec() });
}

impl NativeCall {
    /// The same rules as the wasm host functions: quota first, then the grant.
    fn dispatch(&self, request: &Value) -> Result<Value, String> {
        let calls = self.host_calls.get() + 1;
        self.host_calls.set(calls);
        if calls > self.identity.host_call_quota {
            return Err(format!(
                "host call quota ({}) exceeded",
                self.identity.host_call_quota
            ));
        }
        let op = request
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let text = |key: &str| {
            request
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let needed = match op.split('.').next().unwrap_or_default() {
            "log" => None,
            "kv" => Some(Capability::Kv),
            "config" => Some(Capability::Config),
            "commands" => Some(Capability::Commands),
            "stats" => Some(Capability::Stats),
            "sessions" => Some(Capability::Sessions),
            _ => return Err(format!("unknown host operation {op:?}")),
        };
        if let Some(cap) = needed {
            if !self.identity.grants.has(cap) {
                return Err(format!(
                    "capability `{}` is not granted to plugin {}",
                    cap.as_str(),
                    self.identity.name
                ));
            }
        }
        let services = &self.env.services;
        let plugin = &self.identity.name;
        let ctx = &self.ctx;
        let to_value = |v: Result<Value, String>| v;
        match op {
            "log" => {
                tracing::info!(target: "slashd::plugin", plugin = plugin.as_str(), level = text("level").as_str(), "{}", crate::log_text::escape(&text("message").chars().take(2000).collect::<String>()));
                Ok(Value::Null)
            }
            "config.get" => Ok(self.identity.settings.get(&text("key")).map(|v| Value::String(v.to_string())).unwrap_or(Value::Null)),
            "config.all" => Ok(Value::String(Value::Object(self.identity.settings.clone()).to_string())),
            "commands.visible" => serde_json::to_value(self.env.registry.visible(ctx.role)).map_err(|e| e.to_string()),
            "kv.get" => {
                self.identity.check_key(&text("key"))?;
                let value = self.runtime.block_on(services.kv_get(plugin, &text("key")))?;
                Ok(json!(value))
            }
            "kv.set" => {
                let key = text("key");
                self.identity.check_key(&key)?;
                let value: Vec<u8> = serde_json::from_value(request.get("value").cloned().unwrap_or(Value::Null)).map_err(|e| e.to_string())?;
                if value.len() > self.identity.kv_max_value_bytes {
                    return Err(format!("kv values must be at most {} bytes", self.identity.kv_max_value_bytes));
                }
                self.runtime.block_on(services.kv_set(plugin, &key, &value, self.identity.kv_max_keys))?;
                Ok(Value::Null)
            }
            "kv.delete" => {
                self.identity.check_key(&text("key"))?;
                self.runtime.block_on(services.kv_delete(plugin, &text("key")))?;
                Ok(Value::Null)
            }
            "kv.list_keys" => Ok(json!(self.runtime.block_on(services.kv_list(plugin, &text("prefix")))?)),
            "stats.get" => {
                let s = self.runtime.block_on(services.stats())?;
                let plugins: Vec<Value> = self
                    .env
                    .counters
                    .snapshot()
                    .into_iter()
                    .map(|(name, calls, failures)| json!({"name": name, "calls": calls, "failures": failures}))
                    .collect();
                Ok(json!({
                    "uptime_secs": s.uptime_secs, "connections": s.connections, "users_online": s.users_online,
                    "sessions_active": s.sessions_active, "sessions_total": s.sessions_total,
                    "messages_total": s.messages_total, "messages_last_24h": s.messages_last_24h, "plugins": plugins,
                }))
            }
            "sessions.current" => to_value(self.runtime.block_on(services.current_session(ctx)).map(|d| json!({
                "id": d.id, "title": d.title, "status": d.status, "created_at": d.created_at,
                "owner_id": d.owner_id, "message_count": d.message_count, "participants": d.participants,
            }))),
            "sessions.list_mine" => {
                let limit = request.get("limit").and_then(Value::as_u64).unwrap_or(20).clamp(1, 100) as u32;
                let list = self.runtime.block_on(services.my_sessions(ctx, limit))?;
                Ok(Value::Array(list.into_iter().map(|s| json!({
                    "id": s.id, "title": s.title, "status": s.status,
                    "last_activity_at": s.last_activity_at, "created_at": s.created_at,
                })).collect()))
            }
            "sessions.end_current" => {
                self.runtime.block_on(services.end_current_session(ctx))?;
                Ok(Value::Null)
            }
            "sessions.connection" => Ok(json!({"id": ctx.connection_id, "connected_at": ctx.connected_at})),
            _ => Err(format!("unknown host operation {op:?}")),
        }
    }
}
