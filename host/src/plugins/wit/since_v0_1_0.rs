//! `slashd:plugin@0.1.0`, as 0.1.0 plugins were promised it: a component may import only
//! the capabilities config grants (checked at load, see `registry::missing_grants`), and a
//! host call without its grant traps. Generated types stay in this module.

use wasmtime::component::{HasSelf, Linker};
use wasmtime::Store;

use super::super::call::{CallError, CallInput, RawReply, ReplyFormat};
use super::super::capabilities::{CallState, Denied};
use super::super::host_services::CallContext;
use super::super::manifest::{Capability, CommandSpec, Manifest};
use crate::auth::Role;

mod generated {
    wasmtime::component::bindgen!({
        path: "../plugin-api/wit/since_v0.1.0",
        world: "plugin",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use generated::slashd::plugin::{commands, config, kv, log, sessions, stats, types};
pub use generated::{Plugin, PluginPre};

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    Plugin::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
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
    Ok(match instance.call_invoke(store, &invocation).await? {
        Ok(reply) => Ok(RawReply {
            body: reply.body,
            format: match reply.format {
                types::Format::Plain => ReplyFormat::Plain,
                types::Format::Markdown => ReplyFormat::Markdown,
                types::Format::Json => ReplyFormat::Json,
            },
            data: reply.data,
            ephemeral: reply.ephemeral,
            actions: Vec::new(),
        }),
        Err(types::PluginError::Usage(text)) => Err(CallError::Usage(text)),
        Err(types::PluginError::Failed(text)) => Err(CallError::Failed(text)),
    })
}

/// In 0.1.0 every refusal ends the call.
fn trap(denied: Denied) -> wasmtime::Error {
    match denied {
        Denied::Stop(why) | Denied::Refused(why) => wasmtime::Error::msg(why),
    }
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
        let mut spec = CommandSpec::new(&c.name, &c.summary)
            .usage(&c.usage)
            .min_role(role_from_wit(c.min_role));
        spec.aliases = c.aliases;
        manifest.commands.push(spec);
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
        CallState::log(self, level, &message).map_err(trap)
    }
}

impl commands::Host for CallState {
    async fn visible(&mut self) -> wasmtime::Result<Vec<commands::CommandInfo>> {
        let call = self.access(Capability::Commands).map_err(trap)?;
        Ok(self
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
            .collect())
    }
}

impl stats::Host for CallState {
    async fn get(&mut self) -> wasmtime::Result<Result<stats::ServerStats, String>> {
        self.access(Capability::Stats).map_err(trap)?;
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
        let call = self.access(Capability::Sessions).map_err(trap)?;
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
        let call = self.access(Capability::Sessions).map_err(trap)?;
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
        let call = self.access(Capability::Sessions).map_err(trap)?;
        Ok(self.env.services.end_current_session(&call).await)
    }

    async fn connection(&mut self) -> wasmtime::Result<sessions::ConnectionInfo> {
        let call = self.access(Capability::Sessions).map_err(trap)?;
        Ok(sessions::ConnectionInfo {
            id: call.connection_id.clone(),
            connected_at: call.connected_at.clone(),
        })
    }
}

impl kv::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        self.access(Capability::Kv).map_err(trap)?;
        Ok(self.kv_get(&key).await)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        self.access(Capability::Kv).map_err(trap)?;
        Ok(self.kv_set(&key, &value).await)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        self.access(Capability::Kv).map_err(trap)?;
        Ok(self.kv_delete(&key).await)
    }

    async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Result<Vec<String>, String>> {
        self.access(Capability::Kv).map_err(trap)?;
        Ok(self.kv_list(&prefix).await)
    }
}

impl config::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.access(Capability::Config).map_err(trap)?;
        Ok(self.setting(&key))
    }

    async fn all(&mut self) -> wasmtime::Result<String> {
        self.access(Capability::Config).map_err(trap)?;
        Ok(self.settings())
    }
}
