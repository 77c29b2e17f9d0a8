//! Conversions between the SDK's plain types and the generated WIT types. Used by
//! [`export_plugin!`](crate::export_plugin); not part of the public API.

use crate::wit::slashd::plugin::types as w;
use crate::{
    Caller, Capability, Format, Invocation, Manifest, Plugin, PluginError, Reply, Role, SessionRef,
};

pub fn role_to_wit(role: Role) -> w::Role {
    match role {
        Role::Viewer => w::Role::Viewer,
        Role::Analyst => w::Role::Analyst,
        Role::Admin => w::Role::Admin,
    }
}

pub fn role_from_wit(role: w::Role) -> Role {
    match role {
        w::Role::Viewer => Role::Viewer,
        w::Role::Analyst => Role::Analyst,
        w::Role::Admin => Role::Admin,
    }
}

fn capability_to_wit(c: Capability) -> w::Capability {
    match c {
        Capability::Commands => w::Capability::Commands,
        Capability::Stats => w::Capability::Stats,
        Capability::Sessions => w::Capability::Sessions,
        Capability::Kv => w::Capability::Kv,
        Capability::Config => w::Capability::Config,
    }
}

pub fn manifest<P: Plugin>() -> w::Manifest {
    let m: Manifest = P::manifest();
    w::Manifest {
        name: m.name,
        version: m.version,
        commands: m
            .commands
            .into_iter()
            .map(|c| w::CommandSpec {
                name: c.name,
                aliases: c.aliases,
                summary: c.summary,
                usage: c.usage,
                min_role: role_to_wit(c.min_role),
            })
            .collect(),
        capabilities: m.capabilities.into_iter().map(capability_to_wit).collect(),
    }
}

pub fn invoke<P: Plugin>(call: w::Invocation) -> Result<w::Reply, w::PluginError> {
    let call = Invocation {
        command: call.command,
        args: call.args,
        raw_args: call.raw_args,
        caller: Caller {
            id: call.caller.id,
            name: call.caller.name,
            role: role_from_wit(call.caller.role),
        },
        session: SessionRef {
            id: call.session.id,
            title: call.session.title,
        },
        connection_id: call.connection_id,
    };
    match P::invoke(call) {
        Ok(reply) => Ok(reply_to_wit(reply)),
        Err(PluginError::Usage(text)) => Err(w::PluginError::Usage(text)),
        Err(PluginError::Failed(text)) => Err(w::PluginError::Failed(text)),
    }
}

fn reply_to_wit(reply: Reply) -> w::Reply {
    w::Reply {
        body: reply.body,
        format: match reply.format {
            Format::Plain => w::Format::Plain,
            Format::Markdown => w::Format::Markdown,
            Format::Json => w::Format::Json,
        },
        data: reply.data.map(|d| d.to_string()),
        ephemeral: reply.ephemeral,
    }
}
