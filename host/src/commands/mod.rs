//! Command dispatch: parse a `/command`, find its plugin, authorize by role, rate-limit,
//! then run it and deliver the reply (docs/protocol.md):
//!
//! - refused before running (unknown, forbidden, bad quoting, rate) → `error` to the invoker
//!   only; nothing is stored;
//! - accepted → the invocation is stored and broadcast as a `user` message (acked), the
//!   plugin runs in its own task, and its reply is stored and broadcast as a `command`
//!   message — or, if ephemeral, sent to the invoking connection only;
//! - a failed run → `error` (`usage`, `plugin_failed`, `plugin_timeout`) to the invoker.
//!
//! Every invocation, allowed or denied, gets one audit row and one structured log line.

mod complete;
mod confirm;
mod press;
mod services;
mod together;
mod typed;

pub use complete::Place;
use confirm::Confirmations;
pub use confirm::Pending;
pub use press::{Press, PressCall, Pressed};
pub use services::ServerServices;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_util::task::TaskTracker;

use crate::auth::{log_refusal, Principal, Refused};
use crate::chat::{Chat, ChatError};
use crate::config::CommandsConfig;
use crate::limits::{ClusterLimit, KeyedBuckets, SharedBuckets};
use crate::plugins::{
    may_run, CallContext, CallError, CallInput, Job, JobGuard, JobSpec, PluginHost, PluginReply,
    ProgressUpdate, Route,
};
use crate::protocol::command_line as parse;
use crate::protocol::frames::{ProgressState, ServerFrame};
use crate::protocol::{Text, WireMessage};
use crate::store::{nul, AuditEntry, MessageRole, NewMessage};
use crate::time_fmt::{now_ms, rfc3339};

/// Why a command was refused or failed. Refusals come before anything is stored; the rest
/// reach the invoker through its [`ReplySink`].
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("not a command")]
    NotACommand,
    #[error("too many commands; slow down")]
    RateLimited,
    /// The caller already has as many commands running as they may.
    #[error("you have {0} commands running; wait for one to finish, or /cancel one")]
    TooManyRunning(usize),
    #[error("{0}")]
    Unknown(String),
    #[error("{0}")]
    Forbidden(String),
    /// The line's quoting is broken, or the plugin said the arguments are wrong; the text
    /// has the usage.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Timeout(String),
    /// A running command was cancelled (by its invoker, an admin, or a shutdown).
    #[error("{0}")]
    Cancelled(String),
    /// A `cancel` named no running command.
    #[error("{0}")]
    NoSuchJob(String),
    /// A pressed button, or the message that should carry it, is not there (or not
    /// visible: the two are never told apart).
    #[error("{0}")]
    NoSuchAction(String),
    /// A `once` button was pressed already.
    #[error("this button was already used")]
    AlreadyUsed,
    /// A `confirm` named no confirmation waiting for this user (never asked, answered,
    /// expired, or someone else's).
    #[error("no such confirmation (it may have expired)")]
    NoSuchConfirmation,
    /// The user has as many confirmations waiting as they may.
    #[error("too many confirmations waiting; answer one first")]
    TooManyConfirmations,
    /// Storing the invocation or the reply failed.
    #[error(transparent)]
    Chat(#[from] ChatError),
}

impl CommandError {
    /// The audit log's word for a refusal.
    fn outcome(&self) -> &'static str {
        match self {
            CommandError::Unknown(_) => "unknown",
            CommandError::Forbidden(_) => "forbidden",
            CommandError::Usage(_) => "usage",
            CommandError::RateLimited | CommandError::TooManyRunning(_) => "rate_limited",
            CommandError::Timeout(_) => "timeout",
            CommandError::Cancelled(_) => "cancelled",
            CommandError::NoSuchJob(_)
            | CommandError::NoSuchAction(_)
            | CommandError::NoSuchConfirmation => "not_found",
            CommandError::AlreadyUsed => "already_used",
            CommandError::TooManyConfirmations => "rate_limited",
            CommandError::NotACommand | CommandError::Failed(_) | CommandError::Chat(_) => "failed",
        }
    }
}

/// Where a running command answers its invoker alone: an error, or an ephemeral reply. The
/// socket layer implements it for the invoking connection (with the frame's `id`).
pub trait ReplySink: Send + Sync {
    fn error(&self, error: CommandError);
    /// A frame for the invoker only (an ephemeral reply).
    fn send(&self, frame: Text);
}

/// A command that passed every check and may run.
pub struct Approved {
    route: Route,
    args: Vec<String>,
    raw_args: String,
    /// Typed values, when the command declares `args`.
    values: Vec<slashd_plugin_api::NamedValue>,
}

impl Approved {
    pub fn command(&self) -> &str {
        &self.route.command.name
    }

    /// The prompt the invoker must accept before the command runs, if it has one.
    pub fn confirm(&self) -> Option<&str> {
        self.route.command.confirm.as_deref()
    }
}

/// Who invoked an approved command, where, and where its answers go.
pub struct Invocation {
    pub caller: Principal,
    pub connection_id: String,
    /// Unix milliseconds.
    pub connected_at: i64,
    pub session_id: String,
    pub session_title: String,
    /// The id of the stored invocation message, which the reply refers to.
    pub reply_to: String,
    /// The call, registered before its invocation was stored (see [`Commands::begin`]).
    pub running: JobGuard,
    pub reply: Arc<dyn ReplySink>,
    pub approved: Approved,
}

/// A plugin call under way, owning what it needs.
type PluginCall =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<PluginReply, CallError>> + Send>>;

/// Whether a finished call's reply went into the store with its invocation
/// (`together.rs`), or is still to be delivered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplyStored {
    Yes,
    No,
}

/// What [`Commands::record`] keeps of a call that ran.
struct Ran<'a> {
    caller: &'a Principal,
    session_id: &'a str,
    route: &'a Route,
    /// Hashed into the audit row: the raw arguments, or the pressed button.
    audited_args: &'a str,
    outcome: &'static str,
    elapsed: std::time::Duration,
}

/// Command dispatch: what approving and running commands needs, and nothing else.
pub struct Commands {
    chat: Chat,
    plugins: Arc<PluginHost>,
    /// Commands per user, across the cluster when there is one.
    limiter: ClusterLimit,
    /// `complete` frames per user.
    complete_limiter: KeyedBuckets,
    complete_timeout: std::time::Duration,
    max_running_per_user: usize,
    /// Commands and button presses waiting for their invoker to confirm.
    confirmations: Confirmations,
    confirm_timeout: std::time::Duration,
    /// Running commands, awaited on shutdown.
    tasks: TaskTracker,
}

impl Commands {
    pub fn new(
        chat: Chat,
        plugins: Arc<PluginHost>,
        config: &CommandsConfig,
        tasks: TaskTracker,
        shared: Option<Arc<dyn SharedBuckets>>,
    ) -> Commands {
        Commands {
            chat,
            plugins,
            limiter: ClusterLimit::new("commands", config.rate_burst, config.rate_per_sec, shared),
            complete_limiter: KeyedBuckets::new(
                config.complete_burst,
                config.complete_rate_per_sec,
            ),
            complete_timeout: config.complete_timeout,
            max_running_per_user: config.max_running_per_user,
            confirmations: Confirmations::default(),
            confirm_timeout: config.confirm_timeout,
            tasks,
        }
    }

    /// Check a `/command` line for `caller`: the caller is within the command rate (checked
    /// first, and not audited: a flood must cost nothing), the command exists, the caller
    /// may run it, and its arguments parse. Those refusals are audited and logged before
    /// they are answered.
    pub async fn approve(
        &self,
        caller: &Principal,
        session_id: &str,
        content: &str,
    ) -> Result<Approved, CommandError> {
        let Some((name, raw_args)) = parse::split_command(content) else {
            return Err(CommandError::NotACommand);
        };
        // The rate comes first, before any lookup or write: a flood of commands — known or
        // not — costs one token-bucket check each and leaves no audit rows (only the metric).
        if self.limiter.try_take(&caller.id).await.is_err() {
            self.chat.metrics.command_refused("rate_limited");
            return Err(CommandError::RateLimited);
        }
        // What the log and the audit keep of a name nobody registered: a bounded prefix.
        let name = cut(&name, MAX_LOGGED_NAME_CHARS);
        let checked = match self.check(caller, &name, raw_args) {
            Ok(approved) => self.bind_typed(caller, session_id, approved).await,
            Err(err) => Err(err),
        };
        let err = match checked {
            Ok(approved) => return Ok(approved),
            Err(err) => err,
        };
        let outcome = err.outcome();
        let plugin = self
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
        self.chat.metrics.command_refused(outcome);
        if let CommandError::Forbidden(reason) = &err {
            log_refusal(Refused::Role, "ws", Some(&caller.name), reason);
        }
        self.audit(AuditEntry {
            user_id: &caller.id,
            session_id: Some(session_id),
            command: &name,
            plugin: None,
            args_sha256: &sha256_hex(raw_args),
            decision: "denied",
            outcome,
            duration_ms: 0,
        })
        .await;
        Err(err)
    }

    /// The decision alone.
    fn check(
        &self,
        caller: &Principal,
        name: &str,
        raw_args: &str,
    ) -> Result<Approved, CommandError> {
        let registry = self.plugins.registry();
        let Some(route) = registry.route(name) else {
            // Which plugins are loading is the admins' business (`GET /admin/plugins`).
            if registry.loading_claim(name).is_some() {
                return Err(CommandError::Unknown(format!(
                    "/{name} is not ready: plugins still loading; try again shortly"
                )));
            }
            let hint = did_you_mean(name, &registry.visible_names(caller.role));
            if !registry.loading().is_empty() {
                let hint = hint
                    .map(|s| format!(" (did you mean /{s}?)"))
                    .unwrap_or_default();
                return Err(CommandError::Unknown(format!(
                    "unknown command /{name}: plugins still loading, try again shortly{hint}"
                )));
            }
            return Err(CommandError::Unknown(match hint {
                Some(s) => format!("unknown command /{name}: did you mean /{s}?"),
                None => format!("unknown command /{name}: /help lists the commands you can run"),
            }));
        };
        if !may_run(caller.role, route) {
            return Err(CommandError::Forbidden(format!(
                "/{name} needs the {} role",
                route.min_role
            )));
        }
        let Some(args) = parse::split_args(raw_args) else {
            return Err(CommandError::Usage(format!(
                "usage: unbalanced quotes; {}",
                route.command.usage
            )));
        };
        Ok(Approved {
            route: route.clone(),
            args,
            raw_args: raw_args.to_string(),
            values: Vec::new(),
        })
    }

    /// A typed command's arguments, bound and checked against its declaration, `user` and
    /// `session` ones resolved to what the caller may see — before anything is stored.
    async fn bind_typed(
        &self,
        caller: &Principal,
        session_id: &str,
        mut approved: Approved,
    ) -> Result<Approved, CommandError> {
        let Some(specs) = &approved.route.command.args else {
            return Ok(approved);
        };
        let usage = |e: &dyn std::fmt::Display| {
            CommandError::Usage(format!("usage: {e}; {}", approved.route.command.usage))
        };
        let bound =
            crate::protocol::args::bind(specs, &approved.raw_args).map_err(|e| usage(&e))?;
        approved.values = typed::resolve(&self.chat, caller, session_id, bound)
            .await
            .map_err(|e| match e {
                typed::ResolveError::Usage(text) => usage(&text),
                typed::ResolveError::Chat(e) => CommandError::Chat(e),
            })?;
        Ok(approved)
    }

    /// Register an approved command as a job under the id its invocation message will be
    /// stored with — before it is stored, so whoever sees the invocation can cancel it.
    /// A user with `commands.max_running_per_user` running is refused here — except for the
    /// built-in `jobs` plugin's `/jobs` and `/cancel`, which they need most then.
    pub fn begin(
        &self,
        approved: &Approved,
        caller: &Principal,
        session_id: &str,
        invocation_id: &str,
    ) -> Result<JobGuard, CommandError> {
        self.start_job(&approved.route, caller, session_id, invocation_id)
    }

    /// A plugin call of `caller`'s — a command or a button press — registered as a job
    /// (listed, cancellable, counted against `commands.max_running_per_user`).
    fn start_job(
        &self,
        route: &Route,
        caller: &Principal,
        session_id: &str,
        id: &str,
    ) -> Result<JobGuard, CommandError> {
        let plugin = &route.plugin;
        let exempt =
            plugin.name == "jobs" && matches!(plugin.source, crate::plugins::Source::BuiltIn);
        let spec = JobSpec {
            id: id.to_string(),
            command: route.command.name.clone(),
            user_id: caller.id.clone(),
            user_name: caller.name.clone(),
            session_id: session_id.to_string(),
            started_at: now_ms(),
        };
        let limit = (!exempt).then_some(self.max_running_per_user);
        self.plugins.jobs().start(spec, limit).map_err(|running| {
            self.chat.metrics.command_refused("rate_limited");
            CommandError::TooManyRunning(running)
        })
    }

    /// Run an approved command in its own task; the reply or error goes out when it
    /// finishes.
    pub fn spawn(self: &Arc<Self>, invocation: Invocation) {
        let commands = self.clone();
        self.tasks
            .spawn(async move { commands.run(invocation).await });
    }

    async fn run(self: &Arc<Self>, mut call: Invocation) {
        let started = Instant::now();
        let result = self.start_call(&mut call).await;
        self.finish(call, result, started.elapsed(), ReplyStored::No)
            .await;
    }

    /// The plugin call of `call`, owning what it needs (it may outlive the caller's task:
    /// `together.rs`). The plugin takes the arguments; the audit keeps only the raw line's
    /// hash.
    fn start_call(self: &Arc<Self>, call: &mut Invocation) -> PluginCall {
        let args = std::mem::take(&mut call.approved.args);
        let route = call.approved.route.clone();
        let ctx = CallContext {
            user_id: call.caller.id.clone(),
            user_name: call.caller.name.clone(),
            role: call.caller.role,
            session_id: call.session_id.clone(),
            session_title: call.session_title.clone(),
            connection_id: call.connection_id.clone(),
            connected_at: rfc3339(call.connected_at),
            invocation_id: call.reply_to.clone(),
            job: Some(call.running.job.clone()),
        };
        let input = CallInput {
            command: route.command.name.clone(),
            args,
            raw_args: call.approved.raw_args.clone(),
            values: std::mem::take(&mut call.approved.values),
        };
        let plugins = self.plugins.clone();
        Box::pin(async move { plugins.invoke(&route, ctx, input).await.and_then(storable) })
    }

    /// A call is over: end its job, deliver the reply (unless it was stored with the
    /// invocation) or the error, and record it.
    async fn finish(
        &self,
        mut call: Invocation,
        result: Result<PluginReply, CallError>,
        elapsed: std::time::Duration,
        stored: ReplyStored,
    ) {
        let route = &call.approved.route;
        self.end_job(&mut call.running, &result);
        let outcome = match result {
            Ok(_) if stored == ReplyStored::Yes => "ok",
            Ok(reply) => {
                let duration_ms = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
                let metadata = reply_metadata(route, &reply, duration_ms, &call.reply_to);
                self.deliver(route, &call.session_id, metadata, reply, &*call.reply)
                    .await;
                "ok"
            }
            Err(err) => {
                let err = call_error(err, route);
                let outcome = err.outcome();
                call.reply.error(err);
                outcome
            }
        };
        let ran = Ran {
            caller: &call.caller,
            session_id: &call.session_id,
            route,
            audited_args: &call.approved.raw_args,
            outcome,
            elapsed,
        };
        self.record(ran).await;
    }

    /// A call is over: the session hears how it ended (when it reported progress or was
    /// cancelled) and the job is unlisted — both before the reply or the error goes out.
    fn end_job(&self, running: &mut JobGuard, result: &Result<PluginReply, CallError>) {
        let ended = match result {
            Ok(_) => ProgressState::Done,
            Err(CallError::Cancelled(_)) => ProgressState::Cancelled,
            Err(_) => ProgressState::Failed,
        };
        self.finish_progress(&running.job, ended);
        running.finish();
    }

    /// The log line, the metric and the audit row of a call that ran.
    async fn record(&self, ran: Ran<'_>) {
        let plugin = ran.route.plugin.name.as_str();
        let command = ran.route.command.name.as_str();
        let duration_ms = i64::try_from(ran.elapsed.as_millis()).unwrap_or(i64::MAX);
        log_invocation(
            &ran.caller.name,
            ran.session_id,
            command,
            plugin,
            "allowed",
            ran.outcome,
            duration_ms,
        );
        self.chat
            .metrics
            .command_finished(plugin, ran.outcome, ran.elapsed);
        self.audit(AuditEntry {
            user_id: &ran.caller.id,
            session_id: Some(ran.session_id),
            command,
            plugin: Some(plugin),
            args_sha256: &sha256_hex(ran.audited_args),
            decision: "allowed",
            outcome: ran.outcome,
            duration_ms,
        })
        .await;
    }

    /// Store and broadcast the reply as a `command` message — or, if ephemeral, send it to
    /// the invoker alone, unstored.
    async fn deliver(
        &self,
        route: &Route,
        session_id: &str,
        metadata: Value,
        mut reply: PluginReply,
        sink: &dyn ReplySink,
    ) {
        let mut metadata = reply_fields(route, metadata, &mut reply);
        if !reply.ephemeral {
            match self
                .chat
                .post(reply_message(session_id, &reply, metadata.clone()), |_| {})
                .await
            {
                Ok(_) => return,
                // The command ended its own session (`/clear`): the invoker still gets the
                // answer, as an ephemeral one.
                Err(ChatError::Ended) => {}
                Err(err) => return sink.error(err.into()),
            }
        }
        metadata["ephemeral"] = Value::Bool(true);
        let id = crate::store::new_id();
        let frame = ServerFrame::Message {
            session_id,
            message: WireMessage {
                id: &id,
                session_id,
                seq: None,
                role: MessageRole::Command,
                user_id: None,
                content: &reply.body,
                metadata: &metadata,
                created_at: now_ms(),
            },
        };
        sink.send(frame.to_text());
    }

    /// The last `command_progress` of a command that reported progress or was cancelled:
    /// the session learns how it ended.
    fn finish_progress(&self, job: &Job, state: ProgressState) {
        let last = job.last_report();
        if last.is_none() && state != ProgressState::Cancelled {
            return;
        }
        let update = last.unwrap_or(ProgressUpdate {
            text: String::new(),
            fraction: None,
        });
        broadcast_progress(&self.chat, &job.spec, &update, state);
    }

    /// Cancel a running command on behalf of `caller` (its invoker, or an admin).
    pub fn cancel(
        &self,
        caller: &Principal,
        invocation_id: &str,
    ) -> Result<Arc<Job>, CommandError> {
        use crate::plugins::jobs::CancelError;
        let job = self
            .plugins
            .jobs()
            .cancel(invocation_id, &caller.id, &caller.name, caller.role)
            .map_err(|e| match e {
                CancelError::NotFound(_) => CommandError::NoSuchJob(e.to_string()),
                CancelError::Forbidden(_) => CommandError::Forbidden(e.to_string()),
            })?;
        tracing::info!(
            target: "slashd::command",
            user = caller.name.as_str(),
            command = job.spec.command.as_str(),
            invocation = invocation_id,
            "command cancelled"
        );
        Ok(job)
    }

    async fn audit(&self, entry: AuditEntry<'_>) {
        if let Err(e) = self.chat.store.audit(entry).await {
            tracing::error!(error = %e, "cannot write the command audit row");
        }
    }

    /// The commands a caller may run (for `GET /commands`).
    pub fn visible(&self, caller: &Principal) -> Vec<crate::plugins::CommandInfo> {
        self.plugins.registry().visible(caller.role)
    }
}

/// A `command_progress` frame to the session's participants (across nodes).
pub fn broadcast_progress(
    chat: &Chat,
    job: &JobSpec,
    update: &ProgressUpdate,
    state: ProgressState,
) {
    let frame = ServerFrame::CommandProgress {
        session_id: &job.session_id,
        invocation_id: &job.id,
        command: &job.command,
        text: &update.text,
        fraction: update.fraction,
        state,
    };
    chat.hub.broadcast(&job.session_id, frame.to_text(), None);
}

/// What a reply's message says about how it came.
fn reply_metadata(route: &Route, reply: &PluginReply, duration_ms: i64, reply_to: &str) -> Value {
    json!({
        "command": route.command.name,
        "plugin": route.plugin.name,
        "status": "ok",
        "duration_ms": duration_ms,
        "format": reply.format.as_str(),
        "reply_to": reply_to,
    })
}

/// A reply's metadata with what the plugin gave besides its body: its data, and its
/// buttons in `actions`, each at least the command's role. An ephemeral reply's buttons are
/// dropped (they could never be pressed: nothing stores them).
fn reply_fields(route: &Route, mut metadata: Value, reply: &mut PluginReply) -> Value {
    if let Some(data) = reply.data.take() {
        metadata["data"] = data;
    }
    if !reply.actions.is_empty() && reply.ephemeral {
        tracing::warn!(
            target: "slashd::plugin",
            plugin = route.plugin.name.as_str(),
            command = route.command.name.as_str(),
            actions = reply.actions.len(),
            "an ephemeral reply's buttons were dropped (only stored replies carry them)"
        );
    } else if !reply.actions.is_empty() {
        for action in &mut reply.actions {
            action.min_role = action.min_role.max(route.min_role);
        }
        metadata["actions"] = serde_json::to_value(&reply.actions).unwrap_or_default();
    }
    metadata
}

/// A stored reply's message.
fn reply_message<'a>(
    session_id: &'a str,
    reply: &'a PluginReply,
    metadata: Value,
) -> NewMessage<'a> {
    NewMessage {
        id: None,
        session_id,
        role: MessageRole::Command,
        user_id: None,
        content: &reply.body,
        metadata,
    }
}

/// A failed plugin call, as the invoker hears of it.
fn call_error(err: CallError, route: &Route) -> CommandError {
    let command = &route.command.name;
    match err {
        CallError::Usage(text) => CommandError::Usage(usage_text(&text, route)),
        CallError::Failed(text) => CommandError::Failed(format!("/{command} failed: {text}")),
        e @ CallError::Timeout(_) => CommandError::Timeout(format!("/{command}: {e}")),
        CallError::Cancelled(why) => CommandError::Cancelled(format!("/{command}: {why}")),
    }
}

/// A reply the store can hold on both databases (see `store::nul`).
pub(crate) fn storable(reply: PluginReply) -> Result<PluginReply, CallError> {
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

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Most characters of a command name kept in the audit log, the log line and the answer.
/// Registered names are far shorter; only an unknown name is ever cut. (Also the most of
/// a client's session id a refused press logs.)
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
