//! `slashd:plugin@0.2.0`: any toolchain, least privilege. A component may import every
//! interface of the world (componentize-py and componentize-js do); what its *manifest*
//! asks for must be granted, and a call outside the grants returns an error naming the
//! capability — never a trap. `wasi:http/types` is always linked; only
//! `outgoing-handler.handle` is gated (by `egress.rs`). Generated types stay here.

use wasmtime::component::{HasSelf, Linker};
use wasmtime::Store;

use super::super::call::{ActionInput, CallError, CallInput, CompleteInput, RawReply, ReplyFormat};
use super::super::capabilities::{CallState, Denied};
use super::super::host_services::CallContext;
use super::super::manifest::{ArgKind, ArgSpec, Capability, CommandSpec, Manifest};
use crate::auth::Role;
use crate::time_fmt::rfc3339;
use slashd_plugin_api::{Action, ActionStyle, Completion, NamedValue, Value};

mod generated {
    wasmtime::component::bindgen!({
        path: "../plugin-api/wit/since_v0.2.0",
        world: "plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

use generated::slashd::plugin::{
    commands, config, jobs, kv, log, progress, secrets, sessions, stats, types,
};
pub use generated::{Plugin, PluginPre};

/// The slashd interfaces; WASI and `wasi:http` are added by the engine.
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    fn state(s: &mut CallState) -> &mut CallState {
        s
    }
    types::add_to_linker::<CallState, HasSelf<CallState>>(linker, state)?;
    log::add_to_linker::<CallState, HasSelf<CallState>>(linker, state)?;
    commands::add_to_linker::<CallState, HasSelf<CallState>>(linker, state)?;
    stats::add_to_linker::<CallState, HasSelf<CallState>>(linker, state)?;
    sessions::add_to_linker::<CallState, HasSelf<CallState>>(linker, state)?;
    kv::add_to_linker::<CallState, HasSelf<CallState>>(linker, state)?;
    config::add_to_linker::<CallState, HasSelf<CallState>>(linker, state)?;
    secrets::add_to_linker::<CallState, HasSelf<CallState>>(linker, state)?;
    progress::add_to_linker::<CallState, HasSelf<CallState>>(linker, state)?;
    jobs::add_to_linker::<CallState, HasSelf<CallState>>(linker, state)?;
    Ok(())
}

pub async fn manifest(
    instance: &Plugin,
    store: &mut Store<CallState>,
) -> wasmtime::Result<Manifest> {
    Ok(manifest_from_wit(instance.call_manifest(store).await?))
}

pub async fn invoke(
    instance: &Plugin,
    store: &mut Store<CallState>,
    ctx: &CallContext,
    input: CallInput,
) -> wasmtime::Result<Result<RawReply, CallError>> {
    let invocation = types::Invocation {
        id: ctx.invocation_id.clone(),
        command: input.command,
        args: input.args,
        raw_args: input.raw_args,
        values: values_to_wit(input.values),
        caller: caller(ctx),
        session: session(ctx),
        connection_id: ctx.connection_id.clone(),
    };
    Ok(reply_from_wit(
        instance.call_invoke(&mut *store, &invocation).await?,
    ))
}

/// The plugin's suggestions for one argument (checked by the caller).
pub async fn complete(
    instance: &Plugin,
    store: &mut Store<CallState>,
    ctx: &CallContext,
    input: CompleteInput,
) -> wasmtime::Result<Vec<Completion>> {
    let request = types::CompletionRequest {
        command: input.command,
        arg: input.arg,
        partial: input.partial,
        values: values_to_wit(input.values),
        caller: caller(ctx),
        session: session(ctx),
    };
    let items = instance.call_complete(&mut *store, &request).await?;
    Ok(items
        .into_iter()
        .map(|c| Completion {
            value: c.value,
            label: c.label,
        })
        .collect())
}

/// A button of one of the plugin's replies was pressed.
pub async fn on_action(
    instance: &Plugin,
    store: &mut Store<CallState>,
    ctx: &CallContext,
    input: ActionInput,
) -> wasmtime::Result<Result<RawReply, CallError>> {
    let event = types::ActionEvent {
        command: input.command,
        action: input.action,
        message_id: input.message_id,
        data: input.data,
        caller: caller(ctx),
        session: session(ctx),
    };
    Ok(reply_from_wit(
        instance.call_on_action(&mut *store, &event).await?,
    ))
}

fn caller(ctx: &CallContext) -> types::Caller {
    types::Caller {
        id: ctx.user_id.clone(),
        name: ctx.user_name.clone(),
        role: role_to_wit(ctx.role),
    }
}

fn session(ctx: &CallContext) -> types::SessionRef {
    types::SessionRef {
        id: ctx.session_id.clone(),
        title: ctx.session_title.clone(),
    }
}

fn reply_from_wit(reply: Result<types::Reply, types::PluginError>) -> Result<RawReply, CallError> {
    match reply {
        Ok(reply) => Ok(RawReply {
            body: reply.body,
            format: match reply.format {
                types::Format::Plain => ReplyFormat::Plain,
                types::Format::Markdown => ReplyFormat::Markdown,
                types::Format::Json => ReplyFormat::Json,
            },
            data: reply.data,
            ephemeral: reply.ephemeral,
            actions: reply.actions.into_iter().map(action_from_wit).collect(),
        }),
        Err(types::PluginError::Usage(text)) => Err(CallError::Usage(text)),
        Err(types::PluginError::Failed(text)) => Err(CallError::Failed(text)),
    }
}

fn action_from_wit(a: types::Action) -> Action {
    Action {
        id: a.id,
        label: a.label,
        style: match a.style {
            types::ActionStyle::Primary => ActionStyle::Primary,
            types::ActionStyle::Secondary => ActionStyle::Secondary,
            types::ActionStyle::Danger => ActionStyle::Danger,
        },
        min_role: role_from_wit(a.min_role),
        confirm: a.confirm,
        once: a.once,
    }
}

fn values_to_wit(values: Vec<NamedValue>) -> Vec<types::NamedValue> {
    values
        .into_iter()
        .map(|v| types::NamedValue {
            name: v.name,
            value: match v.value {
                Value::Text(t) => types::Value::Text(t),
                Value::Integer(n) => types::Value::Integer(n),
                Value::Number(x) => types::Value::Number(x),
                Value::Boolean(b) => types::Value::Boolean(b),
                Value::DurationMs(ms) => types::Value::DurationMs(ms),
                Value::Choice(c) => types::Value::Choice(c),
                Value::User(u) => types::Value::User(types::UserRef {
                    id: u.id,
                    name: u.name,
                    role: role_to_wit(u.role),
                }),
                Value::Session(s) => types::Value::Session(types::SessionRef {
                    id: s.id,
                    title: s.title,
                }),
            },
        })
        .collect()
}

/// A refusal the plugin sees as an error; quota and cancellation still end the call.
fn refuse<T>(denied: Denied) -> wasmtime::Result<Result<T, String>> {
    match denied {
        Denied::Stop(why) => Err(wasmtime::Error::msg(why)),
        Denied::Refused(why) => Ok(Err(why)),
    }
}

/// `let call = access!(self, Capability::Kv);` — the context, or return the refusal.
macro_rules! access {
    ($state:expr, $cap:expr) => {
        match $state.access($cap) {
            Ok(call) => call,
            Err(denied) => return refuse(denied),
        }
    };
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

fn capability_from_wit(c: types::Capability) -> Capability {
    match c {
        types::Capability::Commands => Capability::Commands,
        types::Capability::Stats => Capability::Stats,
        types::Capability::Sessions => Capability::Sessions,
        types::Capability::Kv => Capability::Kv,
        types::Capability::Config => Capability::Config,
        types::Capability::Http => Capability::Http,
        types::Capability::Secrets => Capability::Secrets,
        types::Capability::Progress => Capability::Progress,
        types::Capability::Jobs => Capability::Jobs,
    }
}

fn arg_from_wit(a: types::ArgSpec) -> ArgSpec {
    ArgSpec {
        name: a.name,
        kind: match a.kind {
            types::ArgKind::Text => ArgKind::Text,
            types::ArgKind::Integer => ArgKind::Integer,
            types::ArgKind::Number => ArgKind::Number,
            types::ArgKind::Boolean => ArgKind::Boolean,
            types::ArgKind::Duration => ArgKind::Duration,
            types::ArgKind::Choice(choices) => ArgKind::Choice(choices),
            types::ArgKind::User => ArgKind::User,
            types::ArgKind::Session => ArgKind::Session,
        },
        summary: a.summary,
        required: a.required,
        default: a.default,
        rest: a.rest,
        completes: a.completes,
        min: a.min,
        max: a.max,
    }
}

fn manifest_from_wit(m: types::Manifest) -> Manifest {
    let mut manifest = Manifest::new(&m.name, &m.version);
    for c in m.commands {
        let mut spec = CommandSpec::new(&c.name, &c.summary)
            .usage(&c.usage)
            .min_role(role_from_wit(c.min_role));
        spec.aliases = c.aliases;
        spec.args = c
            .args
            .map(|args| args.into_iter().map(arg_from_wit).collect());
        spec.confirm = c.confirm;
        manifest.commands.push(spec);
    }
    manifest.capabilities = m
        .capabilities
        .into_iter()
        .map(capability_from_wit)
        .collect();
    manifest
}

impl types::Host for CallState {}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => tracing::Level::TRACE,
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        match CallState::log(self, level, &message) {
            Ok(()) => Ok(()),
            Err(Denied::Stop(why) | Denied::Refused(why)) => Err(wasmtime::Error::msg(why)),
        }
    }
}

impl commands::Host for CallState {
    async fn visible(&mut self) -> wasmtime::Result<Result<Vec<commands::CommandInfo>, String>> {
        let call = access!(self, Capability::Commands);
        Ok(Ok(self
            .visible_commands(&call)
            .into_iter()
            .map(|c| commands::CommandInfo {
                name: c.name,
                aliases: c.aliases,
                summary: c.summary,
                usage: c.usage,
                min_role: role_to_wit(c.min_role),
                plugin: c.plugin,
            })
            .collect()))
    }
}

impl stats::Host for CallState {
    async fn get(&mut self) -> wasmtime::Result<Result<stats::ServerStats, String>> {
        access!(self, Capability::Stats);
        let s = match self.env.services.stats().await {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let counters = self.plugin_counters();
        Ok(Ok(stats::ServerStats {
            uptime_secs: s.uptime_secs,
            connections: s.connections,
            users_online: s.users_online,
            sessions_active: s.sessions_active,
            sessions_total: s.sessions_total,
            messages_total: s.messages_total,
            messages_last_24h: s.messages_last_24h,
            plugins: counters
                .into_iter()
                .map(|(name, calls, failures)| stats::PluginStats {
                    name,
                    calls,
                    failures,
                })
                .collect(),
        }))
    }
}

impl sessions::Host for CallState {
    async fn current(&mut self) -> wasmtime::Result<Result<sessions::SessionDetail, String>> {
        let call = access!(self, Capability::Sessions);
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
        let call = access!(self, Capability::Sessions);
        Ok(self
            .env
            .services
            .my_sessions(&call, limit.clamp(1, 100))
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
        let call = access!(self, Capability::Sessions);
        Ok(self.env.services.end_current_session(&call).await)
    }

    async fn connection(&mut self) -> wasmtime::Result<Result<sessions::ConnectionInfo, String>> {
        let call = access!(self, Capability::Sessions);
        Ok(Ok(sessions::ConnectionInfo {
            id: call.connection_id.clone(),
            connected_at: call.connected_at.clone(),
        }))
    }
}

impl kv::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        access!(self, Capability::Kv);
        Ok(self.kv_get(&key).await)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        access!(self, Capability::Kv);
        Ok(self.kv_set(&key, &value).await)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        access!(self, Capability::Kv);
        Ok(self.kv_delete(&key).await)
    }

    async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Result<Vec<String>, String>> {
        access!(self, Capability::Kv);
        Ok(self.kv_list(&prefix).await)
    }
}

impl config::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, String>> {
        access!(self, Capability::Config);
        Ok(Ok(self.setting(&key)))
    }

    async fn all(&mut self) -> wasmtime::Result<Result<String, String>> {
        access!(self, Capability::Config);
        Ok(Ok(self.settings()))
    }
}

impl secrets::Host for CallState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<Option<String>, String>> {
        access!(self, Capability::Secrets);
        Ok(Ok(self.secret(&name)))
    }
}

impl progress::Host for CallState {
    async fn report(
        &mut self,
        text: String,
        fraction: Option<f32>,
    ) -> wasmtime::Result<Result<(), String>> {
        let call = access!(self, Capability::Progress);
        self.report_progress(&call, &text, fraction);
        Ok(Ok(()))
    }

    async fn cancelled(&mut self) -> wasmtime::Result<Result<bool, String>> {
        // Asking is allowed after a cancel (that is the point); only the grant is checked.
        let call = match self.access(Capability::Progress) {
            Ok(call) => call,
            Err(Denied::Stop(_)) if self.is_cancelled() => return Ok(Ok(true)),
            Err(denied) => return refuse(denied),
        };
        Ok(Ok(call.job.as_ref().is_some_and(|j| j.is_cancelled())))
    }
}

impl jobs::Host for CallState {
    async fn list_mine(&mut self) -> wasmtime::Result<Result<Vec<jobs::Job>, String>> {
        let call = access!(self, Capability::Jobs);
        Ok(Ok(self
            .jobs_of(&call)
            .into_iter()
            .map(|job| {
                let progress = job.last_report();
                jobs::Job {
                    id: job.spec.id.clone(),
                    command: job.spec.command.clone(),
                    user_id: job.spec.user_id.clone(),
                    user_name: job.spec.user_name.clone(),
                    session_id: job.spec.session_id.clone(),
                    started_at: rfc3339(job.spec.started_at),
                    text: progress
                        .as_ref()
                        .map(|p| p.text.clone())
                        .unwrap_or_default(),
                    fraction: progress.and_then(|p| p.fraction),
                }
            })
            .collect()))
    }

    async fn cancel(&mut self, id: String) -> wasmtime::Result<Result<(), String>> {
        let call = access!(self, Capability::Jobs);
        Ok(self.cancel_job(&call, &id))
    }
}
