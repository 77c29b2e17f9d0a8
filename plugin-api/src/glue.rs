//! Conversions between the SDK's plain types and the generated WIT types. Used by
//! [`export_plugin!`](crate::export_plugin); not part of the public API.

use crate::wit::slashd::plugin::types as w;
use crate::{
    Action, ActionEvent, ActionStyle, ArgKind, ArgSpec, Caller, Capability, Completion,
    CompletionRequest, Format, Invocation, Manifest, NamedValue, Plugin, PluginError, Reply, Role,
    SessionRef, UserRef, Value,
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
        Capability::Http => w::Capability::Http,
        Capability::Secrets => w::Capability::Secrets,
        Capability::Progress => w::Capability::Progress,
        Capability::Jobs => w::Capability::Jobs,
    }
}

fn arg_to_wit(a: ArgSpec) -> w::ArgSpec {
    w::ArgSpec {
        name: a.name,
        kind: match a.kind {
            ArgKind::Text => w::ArgKind::Text,
            ArgKind::Integer => w::ArgKind::Integer,
            ArgKind::Number => w::ArgKind::Number,
            ArgKind::Boolean => w::ArgKind::Boolean,
            ArgKind::Duration => w::ArgKind::Duration,
            ArgKind::Choice(choices) => w::ArgKind::Choice(choices),
            ArgKind::User => w::ArgKind::User,
            ArgKind::Session => w::ArgKind::Session,
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
                args: c
                    .args
                    .map(|args| args.into_iter().map(arg_to_wit).collect()),
                confirm: c.confirm,
            })
            .collect(),
        capabilities: m.capabilities.into_iter().map(capability_to_wit).collect(),
    }
}

fn caller(c: w::Caller) -> Caller {
    Caller {
        id: c.id,
        name: c.name,
        role: role_from_wit(c.role),
    }
}

fn session(s: w::SessionRef) -> SessionRef {
    SessionRef {
        id: s.id,
        title: s.title,
    }
}

fn values(values: Vec<w::NamedValue>) -> Vec<NamedValue> {
    values
        .into_iter()
        .map(|v| NamedValue {
            name: v.name,
            value: match v.value {
                w::Value::Text(t) => Value::Text(t),
                w::Value::Integer(i) => Value::Integer(i),
                w::Value::Number(n) => Value::Number(n),
                w::Value::Boolean(b) => Value::Boolean(b),
                w::Value::DurationMs(ms) => Value::DurationMs(ms),
                w::Value::Choice(c) => Value::Choice(c),
                w::Value::User(u) => Value::User(UserRef {
                    id: u.id,
                    name: u.name,
                    role: role_from_wit(u.role),
                }),
                w::Value::Session(s) => Value::Session(session(s)),
            },
        })
        .collect()
}

pub fn invoke<P: Plugin>(call: w::Invocation) -> Result<w::Reply, w::PluginError> {
    let call = Invocation {
        id: call.id,
        command: call.command,
        args: call.args,
        raw_args: call.raw_args,
        values: values(call.values),
        caller: caller(call.caller),
        session: session(call.session),
        connection_id: call.connection_id,
    };
    answer(P::invoke(call))
}

pub fn complete<P: Plugin>(request: w::CompletionRequest) -> Vec<w::Completion> {
    let request = CompletionRequest {
        command: request.command,
        arg: request.arg,
        partial: request.partial,
        values: values(request.values),
        caller: caller(request.caller),
        session: session(request.session),
    };
    P::complete(request)
        .into_iter()
        .map(|c: Completion| w::Completion {
            value: c.value,
            label: c.label,
        })
        .collect()
}

pub fn on_action<P: Plugin>(event: w::ActionEvent) -> Result<w::Reply, w::PluginError> {
    let event = ActionEvent {
        command: event.command,
        action: event.action,
        message_id: event.message_id,
        data: event.data.and_then(|d| serde_json::from_str(&d).ok()),
        caller: caller(event.caller),
        session: session(event.session),
    };
    answer(P::on_action(event))
}

fn answer(result: Result<Reply, PluginError>) -> Result<w::Reply, w::PluginError> {
    match result {
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
        actions: reply.actions.into_iter().map(action_to_wit).collect(),
    }
}

fn action_to_wit(a: Action) -> w::Action {
    w::Action {
        id: a.id,
        label: a.label,
        style: match a.style {
            ActionStyle::Primary => w::ActionStyle::Primary,
            ActionStyle::Secondary => w::ActionStyle::Secondary,
            ActionStyle::Danger => w::ActionStyle::Danger,
        },
        min_role: role_to_wit(a.min_role),
        confirm: a.confirm,
        once: a.once,
    }
}
