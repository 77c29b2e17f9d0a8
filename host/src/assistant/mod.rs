//! The assistant: ordinary (non-command) messages answered by an OpenAI-compatible
//! chat-completions endpoint, streamed to the session as `message_delta` frames and then
//! stored and broadcast as one `assistant` message with the same id.
//!
//! - On only when `[assistant]` is configured, and not in a session whose
//!   `metadata.assistant` is `false` (read at each reply, so it can be switched at any time).
//! - **One reply in flight per session.** Messages that arrive meanwhile are stored as usual
//!   and coalesced: when the reply ends, the assistant answers once more, with the latest
//!   context (see `context.rs` for how that context is ordered).
//! - A failure (endpoint down, status ≠ 200, malformed stream, stall, too long) is an
//!   `error` frame with `assistant_failed` to the session's participants; the user's message
//!   stays stored and nothing partial is stored.
//! - Model calls running at once on this node are capped (`max_concurrent`).

mod client;
mod context;

use std::sync::Arc;
use std::time::Instant;

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
}

impl Assistant {
    pub fn new(
        config: &AssistantConfig,
        chat: Chat,
        tasks: TaskTracker,
        shutdown: CancellationToken,
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
        })
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
