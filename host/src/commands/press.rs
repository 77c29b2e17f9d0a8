//! Button presses. A reply's `actions` are stored in its `metadata.actions`; a press is
//! checked again, in full, at press time — the presser sees the session, the message is in
//! it and carries that button, the plugin that made it is still enabled, the presser's role
//! is at least the button's, a `once` button is unused — then the plugin's `on-action`
//! runs and its reply becomes a new `command` message (`metadata.reply_to` the message
//! with the button, `action`, `pressed_by`): history stays append-only.
//!
//! A `once` button is claimed in the database before `on-action` runs (see
//! `store::claim_action`), so of two presses at the same instant — on one node or two —
//! exactly one runs. The claim stands even if the plugin then fails: "pressed at most once".
//! A press is a job like a command: listed, cancellable, and counted against the presser's
//! `commands.max_running_per_user` (registered before the claim, so a refused press claims
//! nothing).

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use slashd_plugin_api::Action;

use super::{
    call_error, cut, log_invocation, reply_metadata, sha256_hex, storable, CommandError, Commands,
    Ran, ReplySink, MAX_LOGGED_NAME_CHARS,
};
use crate::auth::{log_refusal, Principal, Refused};
use crate::chat::ChatError;
use crate::plugins::{ActionInput, CallContext, JobGuard, Route};
use crate::store::{AuditEntry, MessageRole, SessionStatus};
use crate::time_fmt::rfc3339;

/// A press, as the client names it.
pub struct Press {
    pub session_id: String,
    pub message_id: String,
    pub action_id: String,
}

/// What a checked press does next.
pub enum Pressed {
    /// The button asks its presser to confirm `prompt` first.
    Confirm { command: String, prompt: String },
    /// It may run.
    Run(Box<Approved>),
}

/// A press that passed every check (and, for a `once` button, claimed it).
pub struct Approved {
    route: Route,
    action: Action,
    press: Press,
    session_title: String,
    /// The pressed reply's `data`.
    data: Option<Value>,
    running: JobGuard,
}

/// Who pressed, and where the answer goes.
pub struct PressCall {
    pub caller: Principal,
    pub connection_id: String,
    /// Unix milliseconds.
    pub connected_at: i64,
    pub reply: Arc<dyn ReplySink>,
    pub approved: Box<Approved>,
}

impl Commands {
    /// Check a press for `caller`. `confirmed`: the presser already accepted the button's
    /// prompt. Refusals are audited and logged.
    pub async fn approve_press(
        &self,
        caller: &Principal,
        press: Press,
        confirmed: bool,
    ) -> Result<Pressed, CommandError> {
        if self.limiter.try_take(&caller.id).await.is_err() {
            self.chat.metrics.command_refused("rate_limited");
            return Err(CommandError::RateLimited);
        }
        // What the log keeps of a session id the client made up: a bounded prefix.
        let session_id = cut(&press.session_id, MAX_LOGGED_NAME_CHARS);
        let audited = format!("action {} {}", press.message_id, press.action_id);
        let (command, result) = self.check_press(caller, press, confirmed).await;
        let err = match result {
            Ok(pressed) => return Ok(pressed),
            Err(err) => err,
        };
        let outcome = err.outcome();
        log_invocation(
            &caller.name,
            &session_id,
            &command,
            "",
            "denied",
            outcome,
            0,
        );
        self.chat.metrics.command_refused(outcome);
        if let CommandError::Forbidden(reason) = &err {
            log_refusal(Refused::Role, "ws", Some(&caller.name), reason);
        }
        // A press on a session the caller cannot see leaves no row naming it.
        if !matches!(
            err,
            CommandError::Chat(ChatError::NoSession | ChatError::BadSessionId)
        ) {
            self.audit(AuditEntry {
                user_id: &caller.id,
                session_id: Some(&session_id),
                command: &command,
                plugin: None,
                args_sha256: &sha256_hex(&audited),
                decision: "denied",
                outcome,
                duration_ms: 0,
            })
            .await;
        }
        Err(err)
    }

    /// The decision alone, with the command the button belongs to (for the audit).
    async fn check_press(
        &self,
        caller: &Principal,
        press: Press,
        confirmed: bool,
    ) -> (String, Result<Pressed, CommandError>) {
        let mut command = String::new();
        let result = async {
            let (session, _) = self
                .chat
                .visible_session(&caller.id, &press.session_id)
                .await?;
            if session.status != SessionStatus::Active {
                return Err(ChatError::Ended.into());
            }
            let no_button = || CommandError::NoSuchAction("no such button on that message".into());
            let message = self
                .chat
                .store
                .message_in(&press.session_id, &press.message_id)
                .await
                .map_err(ChatError::Db)?
                .filter(|m| m.role == MessageRole::Command)
                .ok_or_else(no_button)?;
            let meta = &message.metadata;
            let stored = meta
                .get("actions")
                .and_then(Value::as_array)
                .and_then(|list| {
                    list.iter()
                        .find(|a| a.get("id").and_then(Value::as_str) == Some(&press.action_id))
                })
                .ok_or_else(no_button)?;
            let used = stored.get("used").and_then(Value::as_bool) == Some(true);
            let action: Action = serde_json::from_value(stored.clone()).map_err(|_| no_button())?;
            command = meta
                .get("command")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let plugin = meta
                .get("plugin")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let registry = self.plugins.registry();
            let route = registry
                .route(&command)
                .filter(|r| r.plugin.name == plugin && r.command.name == command)
                .ok_or_else(|| {
                    CommandError::NoSuchAction(format!(
                        "/{command} is not available any more, so its buttons do nothing"
                    ))
                })?;
            let needed = action.min_role.max(route.min_role);
            if !caller.role.allows(needed) {
                return Err(CommandError::Forbidden(format!(
                    "this button needs the {needed} role"
                )));
            }
            if action.once && used {
                return Err(CommandError::AlreadyUsed);
            }
            if let (Some(prompt), false) = (&action.confirm, confirmed) {
                return Ok(Pressed::Confirm {
                    command: command.clone(),
                    prompt: prompt.clone(),
                });
            }
            let running =
                self.start_job(route, caller, &press.session_id, &crate::store::new_id())?;
            if action.once
                && !self
                    .chat
                    .store
                    .claim_action(&press.message_id, &action.id, &caller.id)
                    .await
                    .map_err(ChatError::Db)?
            {
                return Err(CommandError::AlreadyUsed);
            }
            Ok(Pressed::Run(Box::new(Approved {
                route: route.clone(),
                action,
                press,
                session_title: session.title,
                data: meta.get("data").cloned(),
                running,
            })))
        }
        .await;
        (command, result)
    }

    /// Run an approved press's `on-action` in its own task.
    pub fn spawn_press(self: &Arc<Self>, call: PressCall) {
        let commands = self.clone();
        self.tasks
            .spawn(async move { commands.run_press(call).await });
    }

    async fn run_press(&self, call: PressCall) {
        let started = Instant::now();
        let Approved {
            route,
            action,
            press,
            session_title,
            data,
            mut running,
        } = *call.approved;
        let job = running.job.clone();
        let ctx = CallContext {
            user_id: call.caller.id.clone(),
            user_name: call.caller.name.clone(),
            role: call.caller.role,
            session_id: press.session_id.clone(),
            session_title,
            connection_id: call.connection_id.clone(),
            connected_at: rfc3339(call.connected_at),
            invocation_id: job.spec.id.clone(),
            job: Some(job.clone()),
        };
        let input = ActionInput {
            command: route.command.name.clone(),
            action: action.id.clone(),
            message_id: press.message_id.clone(),
            data: data.map(|d| d.to_string()),
        };
        let result = self
            .plugins
            .on_action(&route, ctx, input)
            .await
            .and_then(storable);
        let elapsed = started.elapsed();
        let duration_ms = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
        self.end_job(&mut running, &result);
        let outcome = match result {
            Ok(reply) => {
                let mut metadata = reply_metadata(&route, &reply, duration_ms, &press.message_id);
                metadata["action"] = Value::from(action.id.as_str());
                metadata["pressed_by"] = Value::from(call.caller.id.as_str());
                metadata["pressed_by_name"] = Value::from(call.caller.name.as_str());
                self.deliver(&route, &press.session_id, metadata, reply, &*call.reply)
                    .await;
                "ok"
            }
            Err(err) => {
                let err = call_error(err, &route);
                let outcome = err.outcome();
                call.reply.error(err);
                outcome
            }
        };
        let audited = format!("action {} {}", press.message_id, action.id);
        let ran = Ran {
            caller: &call.caller,
            session_id: &press.session_id,
            route: &route,
            audited_args: &audited,
            outcome,
            elapsed,
        };
        self.record(ran).await;
    }
}
