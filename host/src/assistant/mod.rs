//! The assistant: ordinary (non-command) messages answered by an OpenAI-compatible
//! chat-completions endpoint, streamed to the session as `message_delta` frames and then
//! stored and broadcast as one `assistant` message with the same id.
//!
//! - On only when `[assistant]` is configured, and not in a session whose
//!   `metadata.assistant` is `false` (read at each reply, so it can be switched at any time).
//! - **One reply in flight per session.** Messages that arrive meanwhile are stored as usual
//!   and coalesced: when the reply ends, the assistant answers once more, with the latest
//!   context (see `context.rs` for how that context is ordered). In a cluster the turn is
//!   the whole cluster's ([`ReplyTurns`], a lock in Redis): a message on another node while
//!   this one answers asks this one to answer once more. While that store is unreachable,
//!   each node keeps the rule for itself.
//! - A failure (endpoint down, status ≠ 200, malformed stream, stall, too long) is an
//!   `error` frame with `assistant_failed` to the session's participants; the user's message
//!   stays stored and nothing partial is stored.
//! - Model calls running at once on this node are capped (`max_concurrent`).

mod client;
mod context;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chat::{Chat, ChatError};
use crate::config::AssistantConfig;
use crate::protocol::frames::ServerFrame;
use crate::protocol::ErrorCode;
use crate::store::{new_id, MessageRole, NewMessage, SessionStatus};
use client::ModelClient;

/// Why a reply failed.
#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    /// The model endpoint failed, stalled, or sent something unusable; the text is fit
    /// for the session's participants.
    #[error("{0}")]
    Failed(String),
    /// Ours: logged, and told only as "internal error".
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<sqlx::Error> for AssistantError {
    fn from(err: sqlx::Error) -> Self {
        AssistantError::Internal(err.into())
    }
}

pub struct Assistant {
    config: AssistantConfig,
    client: ModelClient,
    chat: Chat,
    /// Replies being written, awaited on shutdown.
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// Sessions with a reply in flight → whether a message arrived meanwhile.
    in_flight: DashMap<String, bool>,
    slots: Semaphore,
    /// The cluster's turns, when there is a cluster.
    turns: Option<Arc<dyn ReplyTurns>>,
}

/// Whose turn it is to answer a session, across nodes: the seam the cluster fills (a lock
/// per session in Redis). Each call is one atomic step, so a message can never fall between
/// a holder deciding it is done and another node deciding it is not its turn.
#[async_trait::async_trait]
pub trait ReplyTurns: Send + Sync {
    /// Take `session_id`'s turn for `ttl` under `token`: `Some(true)` taken; `Some(false)`
    /// another node holds it, and is now asked to answer once more; `None` unknown (the store
    /// did not answer).
    async fn claim(&self, session_id: &str, token: &str, ttl: Duration) -> Option<bool>;
    /// A reply under `token` ended: `Some(true)` if another answer was asked for meanwhile
    /// (the turn is kept, renewed for `ttl`; taken back if it had lapsed), `Some(false)` if
    /// not (the turn is given up); `None` unknown.
    async fn next(&self, session_id: &str, token: &str, ttl: Duration) -> Option<bool>;
    /// Still replying under `token`: keep the turn for another `ttl` (a reply may wait for a
    /// model slot longer than one).
    async fn renew(&self, session_id: &str, token: &str, ttl: Duration);
    /// Give the turn up without answering again (this node is shutting down).
    async fn release(&self, session_id: &str, token: &str);
}

impl Assistant {
    pub fn new(
        config: &AssistantConfig,
        chat: Chat,
        tasks: TaskTracker,
        shutdown: CancellationToken,
        turns: Option<Arc<dyn ReplyTurns>>,
    ) -> anyhow::Result<Assistant> {
        let client = ModelClient::new(config)?;
        tracing::info!(
            base_url = config.base_url.as_str(),
            model = config.model.as_str(),
            "assistant enabled"
        );
        Ok(Assistant {
            config: config.clone(),
            client,
            chat,
            tasks,
            shutdown,
            in_flight: DashMap::new(),
            slots: Semaphore::new(config.max_concurrent),
            turns,
        })
    }

    /// How long a cluster turn lasts unless renewed: a reply (waiting for a model slot, then
    /// the call) and a margin. A node that dies mid-reply holds the session's turn that long.
    fn turn_ttl(&self) -> Duration {
        self.config
            .total_timeout
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(30))
    }

    /// Take the session's reply slot; `false` (and a note to answer again) if a reply is
    /// already in flight.
    fn claim(&self, session_id: &str) -> bool {
        match self.in_flight.entry(session_id.to_string()) {
            Entry::Occupied(mut e) => {
                *e.get_mut() = true;
                false
            }
            Entry::Vacant(e) => {
                e.insert(false);
                true
            }
        }
    }

    /// Whether a message arrived here meanwhile (the note is taken; the slot is kept).
    fn asked_again(&self, session_id: &str) -> bool {
        match self.in_flight.get_mut(session_id) {
            Some(mut asked) => std::mem::replace(&mut *asked, false),
            None => false,
        }
    }

    /// After a reply: go again if a message arrived meanwhile, else give the slot up.
    fn again(&self, session_id: &str) -> bool {
        match self.in_flight.entry(session_id.to_string()) {
            Entry::Occupied(mut e) if *e.get() => {
                *e.get_mut() = false;
                true
            }
            Entry::Occupied(e) => {
                e.remove();
                false
            }
            Entry::Vacant(_) => false,
        }
    }
}

impl Assistant {
    /// A user's ordinary message was stored and broadcast: answer it.
    pub fn on_user_message(self: &Arc<Self>, session_id: &str) {
        let Some(turns) = self.turns.clone() else {
            self.answer_here(session_id);
            return;
        };
        let assistant = self.clone();
        let session_id = session_id.to_string();
        self.tasks.spawn(async move {
            let token = new_id();
            match turns.claim(&session_id, &token, assistant.turn_ttl()).await {
                Some(true) => serve_turn(assistant, turns, session_id, token).await,
                // Another node answers, and now answers once more.
                Some(false) => {}
                None => assistant.answer_here(&session_id),
            }
        });
    }

    /// Answer with this node's own rule (no cluster, or its store unreachable).
    fn answer_here(self: &Arc<Self>, session_id: &str) {
        if !self.claim(session_id) {
            return;
        }
        let slot = Slot {
            assistant: self.clone(),
            session_id: session_id.to_string(),
            held: true,
        };
        self.tasks.spawn(serve(slot));
    }
}

/// Answer under the cluster's turn, again while messages arrive meanwhile on any node.
///
/// It holds this node's slot too, so a message that falls back to the per-node rule (Redis
/// did not answer its claim) waits for this reply instead of running beside it.
async fn serve_turn(
    assistant: Arc<Assistant>,
    turns: Arc<dyn ReplyTurns>,
    session_id: String,
    token: String,
) {
    let ttl = assistant.turn_ttl();
    if !assistant.claim(&session_id) {
        // A per-node reply is running here (a Redis blip); it answers once more.
        turns.release(&session_id, &token).await;
        return;
    }
    let mut slot = Slot {
        assistant: assistant.clone(),
        session_id: session_id.clone(),
        held: true,
    };
    loop {
        let replying = reply(&assistant, &session_id);
        tokio::pin!(replying);
        let mut renew = tokio::time::interval(ttl / 3);
        renew.tick().await;
        loop {
            tokio::select! {
                _ = assistant.shutdown.cancelled() => {
                    turns.release(&session_id, &token).await;
                    return;
                }
                () = &mut replying => break,
                _ = renew.tick() => turns.renew(&session_id, &token, ttl).await,
            }
        }
        // Asked again here, through the per-node rule, while Redis was away?
        let here = assistant.asked_again(&session_id);
        // Unknown (Redis went away): only what was asked here counts.
        if turns.next(&session_id, &token, ttl).await == Some(true) || here {
            continue;
        }
        if !assistant.again(&session_id) {
            slot.held = false;
            return;
        }
    }
}

/// A session's reply slot; released on drop if `again` did not release it (shutdown, panic).
struct Slot {
    assistant: Arc<Assistant>,
    session_id: String,
    held: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.held {
            self.assistant.in_flight.remove(&self.session_id);
        }
    }
}

async fn serve(mut slot: Slot) {
    let assistant = slot.assistant.clone();
    loop {
        tokio::select! {
            _ = assistant.shutdown.cancelled() => return,
            () = reply(&assistant, &slot.session_id) => {}
        }
        if !assistant.again(&slot.session_id) {
            slot.held = false;
            return;
        }
    }
}

/// One reply; a failure is told to the session's participants.
async fn reply(assistant: &Assistant, session_id: &str) {
    let result = try_reply(assistant, session_id).await;
    let outcome = match &result {
        Ok(Replied::Stored) => "ok",
        Ok(Replied::Discarded) => "discarded",
        Ok(Replied::NotAsked) => return,
        Err(_) => "failed",
    };
    let chat = &assistant.chat;
    chat.metrics.assistant_reply(outcome);
    let Err(err) = result else {
        return;
    };
    let message = match err {
        AssistantError::Failed(message) => message,
        AssistantError::Internal(cause) => {
            tracing::error!(
                error = format!("{cause:#}"),
                session = session_id,
                "assistant: internal error"
            );
            "the assistant could not answer: internal error".to_string()
        }
    };
    tracing::warn!(session = session_id, error = %message, "assistant failed");
    let frame = ServerFrame::Error {
        id: &None,
        code: ErrorCode::AssistantFailed,
        message: &message,
    };
    chat.hub.broadcast(session_id, frame.to_text(), None);
}

/// How a reply attempt ended, short of failing.
enum Replied {
    Stored,
    /// Written, but the session ended (or was deleted) meanwhile: nobody to tell.
    Discarded,
    /// Nothing to answer: the session ended, turned the assistant off, or has no context.
    NotAsked,
}

async fn try_reply(assistant: &Assistant, session_id: &str) -> Result<Replied, AssistantError> {
    let (config, chat) = (&assistant.config, &assistant.chat);
    let _permit = assistant
        .slots
        .acquire()
        .await
        .map_err(|e| AssistantError::Internal(e.into()))?;
    let Some(session) = chat.store.session(session_id).await? else {
        return Ok(Replied::NotAsked);
    };
    if session.status != SessionStatus::Active
        || session.metadata.get("assistant") == Some(&Value::Bool(false))
    {
        return Ok(Replied::NotAsked);
    }
    let history = chat
        .store
        .context_messages(session_id, config.max_context_messages as i64)
        .await?;
    let Some(prompt) = context::build(&config.system_prompt, history, config.max_context_chars)
    else {
        return Ok(Replied::NotAsked);
    };

    let started = Instant::now();
    let message_id = new_id();
    let text = assistant
        .client
        .stream_reply(&prompt.messages, |delta| {
            let frame = ServerFrame::MessageDelta {
                session_id,
                message_id: &message_id,
                delta,
            };
            chat.hub.broadcast(session_id, frame.to_text(), None);
        })
        .await?;

    let new = NewMessage {
        id: Some(&message_id),
        session_id,
        role: MessageRole::Assistant,
        user_id: None,
        content: &text,
        metadata: json!({
            "model": assistant.client.model(),
            "reply_to": prompt.reply_to,
            "duration_ms": started.elapsed().as_millis() as u64,
        }),
    };
    match chat.post(new, |_| {}).await {
        Ok(_) => Ok(Replied::Stored),
        // The session ended (or was deleted) while the reply was written: nobody to tell.
        Err(ChatError::Ended | ChatError::NoSession) => Ok(Replied::Discarded),
        Err(ChatError::Db(e)) => Err(e.into()),
        Err(e @ ChatError::BadSessionId) => Err(AssistantError::Internal(e.into())),
    }
}
