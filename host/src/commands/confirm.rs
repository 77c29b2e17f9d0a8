//! Confirmations. A command or a button that declares `confirm` waits here — nothing
//! stored, run or broadcast — until its invoker accepts (it then proceeds as if just sent,
//! every check made again), declines, or `commands.confirm_timeout` (60 s) passes. A declined or expired one
//! leaves an audit row and nothing else.
//!
//! Node-local: a confirmation is answered on the node that asked for it (a client's
//! socket stays on one node). Only the user who was asked may answer, from any of their
//! connections on that node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::task::AbortHandle;

use super::{sha256_hex, CommandError, Commands, ReplySink};
use crate::auth::Principal;
use crate::protocol::frames::ServerFrame;
use crate::store::AuditEntry;
use crate::time_fmt::now_ms;

/// Confirmations one user may have waiting at once.
pub const MAX_WAITING_PER_USER: usize = 8;

/// What proceeds when the invoker accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    /// A `/command` line, posted as if just sent.
    Message { session_id: String, content: String },
    /// A button press, pressed again.
    Action {
        session_id: String,
        message_id: String,
        action_id: String,
    },
}

/// A confirmation the invoker was asked for.
pub struct Asked {
    pub id: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

struct Waiting {
    user_id: String,
    session_id: String,
    command: String,
    pending: Pending,
    /// Where the expiry notice goes.
    sink: Arc<dyn ReplySink>,
    expiry: AbortHandle,
}

impl Pending {
    /// The session it belongs to.
    pub fn session_id(&self) -> &str {
        match self {
            Pending::Message { session_id, .. } | Pending::Action { session_id, .. } => session_id,
        }
    }

    /// What the audit row hashes: the line, or the button.
    fn audited_args(&self) -> String {
        match self {
            Pending::Message { content, .. } => content.clone(),
            Pending::Action {
                message_id,
                action_id,
                ..
            } => format!("action {message_id} {action_id}"),
        }
    }
}

/// The confirmations waiting on this node.
#[derive(Default)]
pub struct Confirmations {
    waiting: Mutex<HashMap<String, Waiting>>,
}

impl Confirmations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove(&self, id: &str) -> Option<Waiting> {
        self.lock().remove(id)
    }

    /// Take `id` if `user_id` was asked for it.
    fn take(&self, id: &str, user_id: &str) -> Option<Waiting> {
        let mut waiting = self.lock();
        match waiting.get(id) {
            Some(w) if w.user_id == user_id => waiting.remove(id),
            _ => None,
        }
    }
}

impl Commands {
    /// Ask `caller` to confirm `prompt` before `pending` proceeds. The answer is
    /// [`Commands::answer`]; without one in `commands.confirm_timeout`, `sink` hears
    /// `cancelled`.
    pub fn ask(
        self: &Arc<Self>,
        caller: &Principal,
        command: &str,
        pending: Pending,
        sink: Arc<dyn ReplySink>,
    ) -> Result<Asked, CommandError> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut waiting = self.confirmations.lock();
        let mine = waiting.values().filter(|w| w.user_id == caller.id).count();
        if mine >= MAX_WAITING_PER_USER {
            self.chat.metrics.command_refused("rate_limited");
            return Err(CommandError::TooManyConfirmations);
        }
        let commands = self.clone();
        let expiring = id.clone();
        let ttl = self.confirm_timeout;
        let expiry = tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if let Some(w) = commands.confirmations.remove(&expiring) {
                commands.audit_unconfirmed(&w, "expired").await;
                let frame = ServerFrame::Cancelled {
                    id: &None,
                    confirmation_id: &expiring,
                };
                w.sink.send(frame.to_text());
            }
        })
        .abort_handle();
        waiting.insert(
            id.clone(),
            Waiting {
                user_id: caller.id.clone(),
                session_id: pending.session_id().to_string(),
                command: command.to_string(),
                pending,
                sink,
                expiry,
            },
        );
        tracing::info!(
            target: "slashd::command",
            user = caller.name.as_str(),
            command,
            confirmation = id.as_str(),
            "confirmation asked"
        );
        Ok(Asked {
            id,
            expires_at: now_ms().saturating_add(
                i64::try_from(self.confirm_timeout.as_millis()).unwrap_or(i64::MAX),
            ),
        })
    }

    /// What confirmation `id` holds, if it waits for `caller` (left waiting): the socket
    /// layer checks it could proceed here before an answer spends it.
    pub fn waiting_for(&self, caller: &Principal, id: &str) -> Option<Pending> {
        let waiting = self.confirmations.lock();
        waiting
            .get(id)
            .filter(|w| w.user_id == caller.id)
            .map(|w| w.pending.clone())
    }

    /// `caller`'s answer to confirmation `id`: what now proceeds if accepted, `None` if
    /// declined (audited). Someone else's confirmation is "no such confirmation", as an
    /// unknown one is.
    pub async fn answer(
        &self,
        caller: &Principal,
        id: &str,
        accept: bool,
    ) -> Result<Option<Pending>, CommandError> {
        let Some(waiting) = self.confirmations.take(id, &caller.id) else {
            tracing::warn!(
                target: "slashd::command",
                user = caller.name.as_str(),
                "confirm refused: no such confirmation waiting for this user"
            );
            return Err(CommandError::NoSuchConfirmation);
        };
        waiting.expiry.abort();
        if accept {
            return Ok(Some(waiting.pending));
        }
        self.audit_unconfirmed(&waiting, "declined").await;
        Ok(None)
    }

    /// The one trace an unconfirmed command leaves.
    async fn audit_unconfirmed(&self, w: &Waiting, outcome: &'static str) {
        tracing::info!(
            target: "slashd::command",
            user_id = w.user_id.as_str(),
            command = w.command.as_str(),
            outcome,
            "confirmation not given"
        );
        self.audit(AuditEntry {
            user_id: &w.user_id,
            session_id: Some(&w.session_id),
            command: &w.command,
            plugin: None,
            args_sha256: &sha256_hex(&w.pending.audited_args()),
            decision: "denied",
            outcome,
            duration_ms: 0,
        })
        .await;
    }
}
