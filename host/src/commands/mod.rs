//! Command dispatch: parse a `/command`, find its plugin, authorize by role, rate-limit,
//! then run it and deliver the reply (DESIGN §3):
//!
//! - refused before running (unknown, forbidden, bad quoting, rate) → `error` to the invoker
//!   only; nothing is stored;
//! - accepted → the invocation is stored and broadcast as a `user` message (acked), the
//!   plugin runs in its own task, and its reply is stored and broadcast as a `command`
//!   message — or, if ephemeral, sent to the invoking connection only;
//! - a failed run → `error` (`usage`, `plugin_failed`, `plugin_timeout`) to the invoker.
//!
//! Every invocation, allowed or denied, gets one audit row and one structured log line.

pub mod parse;
mod services;

pub use services::ServerServices;

use std::time::Instant;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::auth::{log_refusal, Principal, Refused};
use crate::chat;
use crate::config::CommandsConfig;
use crate::error::AppError;
use crate::limits::KeyedBuckets;
use crate::plugins::{may_run, CallContext, CallError, CallInput, PluginReply, Route};
use crate::realtime::connection::send_error;
use crate::realtime::frames::FrameId;
use crate::realtime::outbound::Outbound;
use crate::store::{nul, AuditEntry, MessageRole, NewMessage};
use crate::time_fmt::{now_ms, rfc3339};

/// A command that passed every check and may run.
pub struct Approved {
    route: Route,
    args: Vec<String>,
    raw_args: String,
}

impl Approved {
    pub fn command(&self) -> &str {
        &self.route.command.name
    }
}

/// Per-user command rate limits.
pub struct CommandLimiter {
    buckets: KeyedBuckets,
}

impl CommandLimiter {
    pub fn new(config: &CommandsConfig) -> Self {
        CommandLimiter {
            buckets: KeyedBuckets::new(config.rate_burst, config.rate_per_sec),
        }
    }

    fn allow(&self, user_id: &str) -> bool {
        self.buckets.try_take(user_id).is_ok()
    }
}

/// Check a `/command` line for `caller`: the caller is within the command rate (checked
/// first, and not audited: a flood must cost nothing), the command exists, the caller may
/// run it, and its arguments parse. Those refusals are audited and logged before they are
/// answered.
pub async fn approve(
    state: &AppState,
    caller: &Principal,
    session_id: &str,
    content: &str,
) -> Result<Approved, AppError> {
    let Some((name, raw_args)) = parse::split_command(content) else {
        return Err(AppError::BadRequest("not a command".into()));
    };
    // The rate comes first, before any lookup or write: a flood of commands — known or not —
    // costs one token-bucket check each and leaves no audit rows (only the metric).
    if !state.command_limits.allow(&caller.id) {
        state.metrics.command_refused("rate_limited");
        return Err(AppError::RateLimited("too many commands; slow down".into()));
    }
    // What the log and the audit keep of a name nobody registered: a bounded prefix.
    let name = cut(&name, MAX_LOGGED_NAME_CHARS);
    match check(state, caller, &name, raw_args) {
        Ok(approved) => Ok(approved),
        Err((outcome, err)) => {
            let plugin = state
                .plugins
                .registry()
                .route(&name)
                .map(|r| r.plugin.name.clone())
                .unwrap_or_default();
            log_invocation(
                &caller.name,
                session_id,
                &name,
                &plugin,
                "denied",
                outcome,
                0,
            );
            state.metrics.command_refused(outcome);
            if let AppError::Forbidden(reason) = &err {
                log_refusal(Refused::Role, "ws", Some(&caller.name), reason);
            }
            let entry = AuditEntry {
                user_id: &caller.id,
                session_id: Some(session_id),
                command: &name,
                plugin: None,
                args_sha256: &sha256_hex(raw_args),
                decision: "denied",
                outcome,
                duration_ms: 0,
            };
            if let Err(e) = state.store.audit(entry).await {
                tracing::error!(error = %e, "cannot write the command audit row");
            }
            Err(err)
        }
    }
}

/// The decision alone: the approved command, or the audit outcome and the error.
fn check(
    state: &AppState,
    caller: &Principal,
    name: &str,
    raw_args: &str,
) -> Result<Approved, (&'static str, AppError)> {
    let registry = state.plugins.registry();
    let Some(route) = registry.route(name) else {
        let hint = did_you_mean(name, &registry.visible_names(caller.role));
        let message = match hint {
            Some(s) => format!("unknown command /{name}: did you mean /{s}?"),
            None => format!("unknown command /{name}: /help lists the commands you can run"),
        };
        return Err(("unknown", AppError::UnknownCommand(message)));
    };
    if !may_run(caller.role, route) {
        return Err((
            "forbidden",
            AppError::Forbidden(format!("/{name} needs the {} role", route.min_role)),
        ));
    }
    let Some(args) = parse::split_args(raw_args) else {
        return Err((
            "usage",
            AppError::Usage(format!("unbalanced quotes; usage: {}", route.command.usage)),
        ));
    };
    Ok(Approved {
        route: route.clone(),
        args,
        raw_args: raw_args.to_string(),
    })
}

/// Where a running command reports back.
pub struct Invoker {
    pub principal: Principal,
    pub connection_id: String,
    pub connected_at: i64,
    pub out: Outbound,
    pub frame_id: FrameId,
}

/// Run an approved command in its own task; the reply or error goes out when it finishes.
pub fn spawn(
    state: AppState,
    invoker: Invoker,
    session_id: String,
    session_title: String,
    reply_to: String,
    approved: Approved,
) {
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        run(
            &state,
            &invoker,
            &session_id,
            session_title,
            &reply_to,
            approved,
        )
        .await;
    });
}

async fn run(
    state: &AppState,
    invoker: &Invoker,
    session_id: &str,
    session_title: String,
    reply_to: &str,
    approved: Approved,
) {
    let started = Instant::now();
    let ctx = CallContext {
        user_id: invoker.principal.id.clone(),
        user_name: invoker.principal.name.clone(),
        role: invoker.principal.role,
        session_id: session_id.to_string(),
        session_title,
        connection_id: invoker.connection_id.clone(),
        connected_at: rfc3339(invoker.connected_at),
    };
    let input = CallInput {
        command: approved.route.command.name.clone(),
        args: approved.args,
        raw_args: approved.raw_args.clone(),
    };
    let result = state
        .plugins
        .invoke(&approved.route, ctx, input)
        .await
        .and_then(storable);
    let elapsed = started.elapsed();
    let duration_ms = elapsed.as_millis() as i64;
    let plugin = approved.route.plugin.name.as_str();
    let command = approved.route.command.name.as_str();
    let outcome = match result {
        Ok(reply) => {
            deliver(
                state,
                invoker,
                session_id,
                reply_to,
                command,
                plugin,
                duration_ms,
                reply,
            )
            .await;
            "ok"
        }
        Err(err) => {
            let (outcome, app_err) = match err {
                CallError::Usage(text) => {
                    ("usage", AppError::Usage(usage_text(&text, &approved.route)))
                }
                CallError::Failed(text) => (
                    "failed",
                    AppError::PluginFailed(format!("/{command} failed: {text}")),
                ),
                e @ CallError::Timeout(_) => (
                    "timeout",
                    AppError::PluginTimeout(format!("/{command}: {e}")),
                ),
            };
            send_error(&invoker.out, &invoker.frame_id, &app_err);
            outcome
        }
    };
    log_invocation(
        &invoker.principal.name,
        session_id,
        command,
        plugin,
        "allowed",
        outcome,
        duration_ms,
    );
    state.metrics.command_finished(plugin, outcome, elapsed);
    let entry = AuditEntry {
        user_id: &invoker.principal.id,
        session_id: Some(session_id),
        command,
        plugin: Some(plugin),
        args_sha256: &sha256_hex(&approved.raw_args),
        decision: "allowed",
        outcome,
        duration_ms,
    };
    if let Err(e) = state.store.audit(entry).await {
        tracing::error!(error = %e, "cannot write the command audit row");
    }
}

/// A reply the store can hold on both databases (see `store::nul`).
fn storable(reply: PluginReply) -> Result<PluginReply, CallError> {
    if reply.body.contains('\0') || reply.data.as_ref().is_some_and(nul::in_json) {
        return Err(CallError::Failed("the reply contains U+0000 (NUL)".into()));
    }
    Ok(reply)
}

/// The one structured line every command invocation gets, run or refused.
fn log_invocation(
    user: &str,
    session: &str,
    command: &str,
    plugin: &str,
    decision: &'static str,
    outcome: &'static str,
    elapsed_ms: i64,
) {
    tracing::info!(
        target: "slashd::command",
        user,
        session,
        command,
        plugin,
        decision,
        outcome,
        elapsed_ms,
        "command"
    );
}

fn usage_text(plugin_text: &str, route: &Route) -> String {
    let usage = &route.command.usage;
    if plugin_text.is_empty() || plugin_text == usage {
        format!("usage: {usage}")
    } else if plugin_text.contains(usage.as_str()) {
        plugin_text.to_string()
    } else {
        format!("{plugin_text} (usage: {usage})")
    }
}

#[allow(clippy::too_many_arguments)]
async fn deliver(
    state: &AppState,
    invoker: &Invoker,
    session_id: &str,
    reply_to: &str,
    command: &str,
    plugin: &str,
    duration_ms: i64,
    reply: PluginReply,
) {
    let mut metadata = json!({
        "command": command,
        "plugin": plugin,
        "status": "ok",
        "duration_ms": duration_ms,
        "format": reply.format.as_str(),
        "reply_to": reply_to,
    });
    if let Some(data) = reply.data {
        metadata["data"] = data;
    }
    if !reply.ephemeral {
        let new = NewMessage {
            id: None,
            session_id,
            role: MessageRole::Command,
            user_id: None,
            content: &reply.body,
            metadata: metadata.clone(),
        };
        match chat::post(state, new, |_| {}).await {
            Ok(_) => return,
            // The command ended its own session (`/clear`): the invoker still gets the answer.
            Err(AppError::Conflict(_)) => {}
            Err(err) => {
                send_error(&invoker.out, &invoker.frame_id, &err);
                return;
            }
        }
    }
    metadata["ephemeral"] = Value::Bool(true);
    let message = json!({
        "id": crate::store::new_id(),
        "session_id": session_id,
        "seq": null,
        "role": "command",
        "user_id": null,
        "content": reply.body,
        "metadata": metadata,
        "created_at": rfc3339(now_ms()),
    });
    let frame = json!({"type": "message", "session_id": session_id, "message": message});
    invoker.out.push(frame.to_string().into());
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Most characters of a command name kept in the audit log, the log line and the answer.
/// Registered names are far shorter; only an unknown name is ever cut.
const MAX_LOGGED_NAME_CHARS: usize = 64;

/// `text`, cut to at most `max` characters, the last of them `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The closest visible name, if it is close enough to be a typo.
fn did_you_mean<'a>(typed: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (strsim::damerau_levenshtein(typed, n), *n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3))
        .min()
        .map(|(_, n)| n)
}

/// The commands a caller may run (for `GET /commands`).
pub fn visible(state: &AppState, caller: &Principal) -> Vec<crate::plugins::CommandInfo> {
    state.plugins.registry().visible(caller.role)
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_names_are_cut() {
        assert_eq!(super::cut("help", 64), "help");
        assert_eq!(super::cut(&"x".repeat(64), 64), "x".repeat(64));
        assert_eq!(
            super::cut(&"x".repeat(65), 64),
            format!("{}…", "x".repeat(63))
        );
        assert_eq!(super::cut("éééé", 3), "éé…");
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["help", "status", "sessions"];
        assert_eq!(super::did_you_mean("hepl", &names), Some("help"));
        assert_eq!(super::did_you_mean("statsu", &names), Some("status"));
        assert_eq!(super::did_you_mean("deploy", &names), None);
    }
}
