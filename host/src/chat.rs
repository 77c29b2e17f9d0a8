//! The chat core: the rules every way in shares — REST, the socket, commands, the assistant
//! and the plugins' services. Who may see a session, posting a message in `seq` order,
//! presence across nodes, ending a session. It holds only what those rules need (the store,
//! the hub, the metrics, the cluster's presence) and knows nothing of HTTP or sockets: its
//! errors are [`ChatError`], which `error.rs` maps to statuses and protocol codes.

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::hub::{Hub, Presence};
use crate::metrics::Metrics;
use crate::protocol::frames::{PresenceState, ServerFrame};
use crate::protocol::WireMessage;
use crate::store::messages_error::AppendError;
use crate::store::{Access, Message, NewMessage, Session, SessionStatus, Store};

/// Why a chat operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("session_id must be a UUID")]
    BadSessionId,
    /// Missing, or not visible to the caller: the two are never told apart.
    #[error("no such session")]
    NoSession,
    #[error("the session has ended")]
    Ended,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub type ChatResult<T> = Result<T, ChatError>;

/// The core every transport holds. Cheap to clone.
#[derive(Clone)]
pub struct Chat {
    pub store: Store,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    /// Presence on other nodes; `None` on a single node.
    presence: Option<Arc<dyn Presence>>,
    /// Where presence updates that wait on the cluster run (awaited on shutdown).
    tasks: TaskTracker,
}

impl Chat {
    pub fn new(
        store: Store,
        hub: Hub,
        metrics: Arc<Metrics>,
        presence: Option<Arc<dyn Presence>>,
        tasks: TaskTracker,
    ) -> Chat {
        Chat {
            store,
            hub,
            metrics,
            presence,
            tasks,
        }
    }

    /// The session if `user_id` owns it or is a member; otherwise "not found", never
    /// "forbidden", so ids don't leak.
    pub async fn visible_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> ChatResult<(Session, Access)> {
        parse_session_id(session_id)?;
        self.store
            .session_for(session_id, user_id)
            .await?
            .ok_or(ChatError::NoSession)
    }

    /// [`Chat::visible_session`], which must also be active.
    pub async fn active_session(&self, user_id: &str, session_id: &str) -> ChatResult<Session> {
        let (session, _) = self.visible_session(user_id, session_id).await?;
        if session.status != SessionStatus::Active {
            return Err(ChatError::Ended);
        }
        Ok(session)
    }

    /// Store a message (assigning its seq), run `on_stored` (the poster's ack), then
    /// broadcast it — all under the room's post lock, so every participant sees `seq` order.
    pub async fn post(
        &self,
        new: NewMessage<'_>,
        on_stored: impl FnOnce(&Message),
    ) -> ChatResult<Message> {
        let mut stored = self.post_together(vec![new], on_stored).await?;
        stored.pop().ok_or(ChatError::NoSession)
    }

    /// [`Chat::post`] for messages of one session stored in one transaction with
    /// consecutive seqs, all or none (a command's invocation and its reply): `on_stored` is
    /// told of the first, then each is broadcast in order.
    pub async fn post_together(
        &self,
        news: Vec<NewMessage<'_>>,
        on_stored: impl FnOnce(&Message),
    ) -> ChatResult<Vec<Message>> {
        let Some(session_id) = news.first().map(|n| n.session_id) else {
            return Ok(Vec::new());
        };
        let room = self.hub.existing_room(session_id);
        let _order = match &room {
            Some(room) => Some(room.post_lock.lock().await),
            None => None,
        };
        let stored = self
            .store
            .append_messages(news)
            .await
            .map_err(|e| match e {
                AppendError::NoSession => ChatError::NoSession,
                AppendError::Ended => ChatError::Ended,
                AppendError::Db(e) => ChatError::Db(e),
            })?;
        if let Some(first) = stored.first() {
            on_stored(first);
        }
        for message in &stored {
            self.metrics.message_stored(message.role.as_str());
            let frame = ServerFrame::Message {
                session_id: &message.session_id,
                message: WireMessage::from(message),
            };
            self.hub
                .broadcast_message(&message.session_id, message.seq, frame.to_text());
        }
        Ok(stored)
    }

    /// End a session and tell everyone in it. Ending an ended session is a no-op.
    pub async fn end_session(&self, session_id: &str) -> ChatResult<Session> {
        let (session, changed) = self
            .store
            .end_session(session_id)
            .await?
            .ok_or(ChatError::NoSession)?;
        if changed {
            self.announce_ended(session_id);
        }
        Ok(session)
    }

    /// Tell a session's participants it ended, and empty its room.
    pub fn announce_ended(&self, session_id: &str) {
        let frame = ServerFrame::SessionEnded { session_id };
        self.hub.broadcast(session_id, frame.to_text(), None);
        self.hub.close_room(session_id);
    }

    /// A user's first connection here joined the session: tell the others, unless the user
    /// is already present through another node.
    pub async fn user_joined(&self, session_id: &str, user_id: &str) {
        let elsewhere = match &self.presence {
            Some(presence) => presence.join(session_id, user_id).await,
            None => false,
        };
        if !elsewhere {
            self.announce_presence(session_id, user_id, PresenceState::Joined);
        }
    }

    /// A user's last connection here left the session: tell the others, unless the user is
    /// still present through another node (asked without blocking the caller).
    pub fn user_left(&self, session_id: &str, user_id: &str) {
        let Some(presence) = self.presence.clone() else {
            self.announce_presence(session_id, user_id, PresenceState::Left);
            return;
        };
        let (chat, session_id, user_id) =
            (self.clone(), session_id.to_string(), user_id.to_string());
        self.tasks.spawn(async move {
            if !presence.leave(&session_id, &user_id).await {
                chat.announce_presence(&session_id, &user_id, PresenceState::Left);
            }
        });
    }

    fn announce_presence(&self, session_id: &str, user_id: &str, state: PresenceState) {
        let frame = ServerFrame::Presence {
            session_id,
            user_id,
            state,
        };
        self.hub
            .broadcast(session_id, frame.to_text(), Some(user_id));
    }

    /// The session's participants: in a cluster everyone's, not just this node's.
    pub async fn participants(&self, session_id: &str) -> Vec<String> {
        let local = self.hub.participants(session_id);
        let Some(presence) = &self.presence else {
            return local;
        };
        let mut everyone = presence.participants(session_id).await.unwrap_or_default();
        for user in local {
            if !everyone.contains(&user) {
                everyone.push(user);
            }
        }
        everyone
    }
}

/// Session ids are UUIDs; anything else is a bad request, not a lookup.
pub fn parse_session_id(id: &str) -> ChatResult<()> {
    uuid::Uuid::try_parse(id)
        .map(drop)
        .map_err(|_| ChatError::BadSessionId)
}
