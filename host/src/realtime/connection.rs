//! One task per WebSocket connection: authenticate, then read frames and answer them until
//! the client leaves, misbehaves, its token expires, or the server shuts down. Writes go
//! through the connection's [`Outbound`] queue, drained by its own writer task.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use tokio::time::{interval_at, sleep, sleep_until, MissedTickBehavior};

use super::limits::{RateLimiter, TokenBucket, Verdict};
use super::writer::spawn_writer;
use crate::auth::{log_refusal, Principal, Refused};
use crate::chat::ChatError;
use crate::cluster::Admission;
use crate::commands::{
    CommandError, Invocation, Pending, Place, Press, PressCall, Pressed, ReplySink,
};
use crate::error::AppError;
use crate::hub::outbound::{close, Outgoing};
use crate::hub::{ConnHandle, Outbound, Standing};
use crate::protocol::frames::{self, ClientFrame, FrameId, ServerFrame, UserInfo};
use crate::protocol::Text;
use crate::state::AppState;
use crate::store::{Message as StoredMessage, MessageRole, NewMessage, Session};

pub async fn run(
    state: AppState,
    socket: WebSocket,
    header_auth: Option<Result<Principal, AppError>>,
) {
    let (sink, mut stream) = socket.split();
    let (out, writer) = spawn_writer(
        sink,
        state.config.realtime.outbound_queue,
        state.config.realtime.outbound_queue_bytes,
        state.chat.metrics.clone(),
    );

    let outcome = match header_auth {
        Some(Ok(principal)) => Auth::Ready(principal, None),
        Some(Err(err)) => Auth::Refused(err, None),
        None => first_frame_auth(&state, &mut stream).await,
    };
    let (principal, auth_id) = match outcome {
        Auth::Ready(principal, id) => (principal, id),
        Auth::Refused(err, id) => {
            send_error(&out, &id, &err);
            out.close(close::UNAUTHORIZED, "unauthorized").await;
            drop(out);
            let _ = writer.await;
            return;
        }
        Auth::ShuttingDown => {
            out.close(close::GOING_AWAY, "server shutting down").await;
            drop(out);
            let _ = writer.await;
            return;
        }
    };

    let conn_id: Arc<str> = uuid::Uuid::new_v4().to_string().into();
    let (standing, standing_rx) = tokio::sync::watch::channel(Standing {
        role: principal.role,
        disabled: false,
    });
    let handle = ConnHandle {
        conn_id: conn_id.clone(),
        user_id: principal.id.as_str().into(),
        out: out.clone(),
        standing: Arc::new(standing),
    };
    if let Err(retry_after) = state.user_budgets.connects.try_take(&principal.id) {
        state.chat.metrics.limit_hit("connects_per_user");
        let err = AppError::RetryLater {
            message: "too many new connections for this user; retry later".into(),
            retry_after,
        };
        send_error(&out, &auth_id, &err);
        out.close(close::POLICY, "too many new connections").await;
        drop(out);
        let _ = writer.await;
        return;
    }
    let max = state.config.realtime.max_connections_per_user;
    // The node's own count always applies; in a cluster, so does the count on all nodes
    // (unless Redis is unreachable: see cluster/connections.rs).
    let admitted = state.chat.hub.register(handle.clone(), max)
        && match &state.cluster {
            Some(cluster) => {
                let admission = cluster.admit_connection(&principal.id, &conn_id, max).await;
                if admission == Admission::Full {
                    state.chat.hub.unregister(&conn_id, &principal.id);
                }
                admission != Admission::Full
            }
            None => true,
        };
    if !admitted {
        state.chat.metrics.limit_hit("connections_per_user");
        let err =
            AppError::RateLimited(format!("too many connections for this user (limit {max})"));
        send_error(&out, &None, &err);
        out.close(close::POLICY, "too many connections").await;
        drop(out);
        let _ = writer.await;
        return;
    }
    // From here on the connection is registered; `Connection`'s `Drop` releases it on every
    // exit path, a panic included.
    let limits = &state.config.realtime;
    let mut conn = Connection {
        limiter: RateLimiter::new(limits.rate_per_sec, limits.rate_burst, limits.flood_strikes),
        recovery: TokenBucket::new(
            4.0 * limits.recovery_max_bytes as f64,
            limits.recovery_bytes_per_sec as f64,
        ),
        state: state.clone(),
        principal,
        handle,
        joined: HashSet::new(),
        connected_at: crate::time_fmt::now_ms(),
        standing: standing_rx,
    };
    tracing::debug!(
        conn = &*conn_id,
        user = conn.principal.name.as_str(),
        "connection ready"
    );
    out.push(
        ServerFrame::Ready {
            id: &auth_id,
            connection_id: &conn_id,
            user: UserInfo::from(&conn.principal),
        }
        .to_text(),
    );
    conn.read_loop(&mut stream).await;
    drop(conn);
    drop(out);
    let _ = writer.await;
}

/// How long a closing connection waits for the client's close frame, and how many of its
/// frames it reads (and drops) meanwhile.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);
const CLOSE_HANDSHAKE_FRAMES: u32 = 64;

/// How authentication ended.
enum Auth {
    /// With the `auth` frame's id, if it had one (the `ready` echoes it).
    Ready(Principal, FrameId),
    Refused(AppError, FrameId),
    ShuttingDown,
}

/// Wait for `{"type":"auth","token":…}` as the first frame.
async fn first_frame_auth(state: &AppState, stream: &mut SplitStream<WebSocket>) -> Auth {
    let deadline = sleep(state.config.realtime.auth_timeout);
    tokio::pin!(deadline);
    let refused = |why: &str| {
        log_refusal(Refused::Token, "ws", None, why);
        Auth::Refused(AppError::Unauthorized(why.into()), None)
    };
    loop {
        let msg = tokio::select! {
            _ = state.shutdown.cancelled() => return Auth::ShuttingDown,
            _ = &mut deadline => return refused("no auth frame in time"),
            msg = stream.next() => msg,
        };
        match msg {
            Some(Ok(Message::Text(text))) => {
                return match frames::decode(&text) {
                    Ok((id, ClientFrame::Auth { token })) => {
                        match state.auth.authenticate(&token, "ws").await {
                            Ok(principal) => Auth::Ready(principal, id),
                            Err(err) => Auth::Refused(err.into(), id),
                        }
                    }
                    _ => refused("authenticate first: send {\"type\":\"auth\",\"token\":…}"),
                };
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return refused("authenticate first"),
        }
    }
}

struct Connection {
    state: AppState,
    principal: Principal,
    handle: ConnHandle,
    /// Sessions this connection joined (a session that ends is pruned lazily).
    joined: HashSet<String>,
    limiter: RateLimiter,
    /// Bytes of `joined.missed` this connection may still be sent (see `join`).
    recovery: TokenBucket,
    /// Unix milliseconds.
    connected_at: i64,
    /// The account's role and status, updated while the socket is open.
    standing: tokio::sync::watch::Receiver<Standing>,
}

/// Why the read loop stopped, and how to close.
enum Exit {
    Close(u16, &'static str),
    Gone,
}

impl Connection {
    fn out(&self) -> &Outbound {
        &self.handle.out
    }

    async fn read_loop(&mut self, stream: &mut SplitStream<WebSocket>) {
        let limits = self.state.config.realtime.clone();
        let shutdown = self.state.shutdown.clone();
        let expiry = token_deadline(self.principal.expires_at);
        let mut pings = interval_at(
            tokio::time::Instant::now() + limits.ping_interval,
            limits.ping_interval,
        );
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_seen = Instant::now();

        let exit = loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break Exit::Close(close::GOING_AWAY, "server shutting down"),
                _ = self.handle.out.overflowed() => break Exit::Gone,
                Ok(()) = self.standing.changed() => {
                    let standing = *self.standing.borrow_and_update();
                    if standing.disabled {
                        log_refusal(Refused::Token, "ws", Some(&self.principal.name), "user was disabled");
                        send_error(self.out(), &None, &AppError::Unauthorized(crate::auth::SUBJECT_REFUSED.into()));
                        break Exit::Close(close::UNAUTHORIZED, "account disabled");
                    }
                    if standing.role != self.principal.role {
                        tracing::info!(user = self.principal.name.as_str(), from = self.principal.role.as_str(), to = standing.role.as_str(), "role changed on an open connection");
                        self.principal.role = standing.role;
                    }
                    continue;
                }
                _ = sleep_until(expiry) => {
                    log_refusal(Refused::Token, "ws", Some(&self.principal.name), "token expired");
                    send_error(self.out(), &None, &AppError::Unauthorized("token expired".into()));
                    break Exit::Close(close::UNAUTHORIZED, "token expired");
                }
                _ = pings.tick() => {
                    if last_seen.elapsed() > limits.pong_timeout {
                        break Exit::Close(close::GOING_AWAY, "ping timeout");
                    }
                    self.out().push_item(Outgoing::Ping);
                    continue;
                }
                msg = stream.next() => msg,
            };
            last_seen = Instant::now();
            let msg = match msg {
                None => break Exit::Gone,
                Some(Ok(msg)) => msg,
                Some(Err(err)) => break read_error_exit(&err),
            };
            // Control frames count too: tungstenite answers every ping with a pong, so an
            // uncounted ping flood would make the server write as fast as a client sends.
            let text = match msg {
                Message::Text(text) => Some(text),
                Message::Binary(_) => None,
                Message::Ping(_) | Message::Pong(_) => {
                    if let Verdict::Disconnect = self.limiter.check() {
                        break Exit::Close(close::POLICY, "flooding");
                    }
                    continue;
                }
                Message::Close(_) => break Exit::Gone,
            };
            match self.limiter.check() {
                Verdict::Allow => {}
                Verdict::Refuse => {
                    // The id is read without decoding the frame (a shallow scan), so the
                    // client can tell which frame was refused.
                    let id = text.as_deref().and_then(frames::peek_id);
                    send_error(self.out(), &id, &AppError::RateLimited("slow down".into()));
                    continue;
                }
                Verdict::Disconnect => {
                    send_error(self.out(), &None, &AppError::RateLimited("flooding".into()));
                    break Exit::Close(close::POLICY, "flooding");
                }
            }
            match text {
                Some(text) => self.handle_text(&text).await,
                None => send_error(
                    self.out(),
                    &None,
                    &AppError::BadRequest("binary frames are not supported; send JSON text".into()),
                ),
            }
        };
        if let Exit::Close(code, reason) = exit {
            self.out().close(code, reason).await;
            // The closing handshake: read (and drop) what the client still sends until its
            // close arrives. Dropping a socket with unread data makes the kernel send a
            // reset, which can destroy our close frame before the client reads it. Bounded
            // in frames as well as time: a flooder being closed must not get two more
            // seconds of reading at full speed.
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
                let mut left = CLOSE_HANDSHAKE_FRAMES;
                while let Some(Ok(msg)) = stream.next().await {
                    left = left.saturating_sub(1);
                    if matches!(msg, Message::Close(_)) || left == 0 {
                        break;
                    }
                }
            })
            .await;
        }
    }

    async fn handle_text(&mut self, text: &str) {
        let (id, frame) = match frames::decode(text) {
            Ok(decoded) => decoded,
            Err(bad) => {
                return send_error(self.out(), &bad.id, &AppError::BadRequest(bad.message));
            }
        };
        let result = match frame {
            ClientFrame::Auth { .. } => Err(AppError::BadRequest("already authenticated".into())),
            ClientFrame::Ping {} => {
                self.out().push(ServerFrame::Pong { id: &id }.to_text());
                Ok(())
            }
            ClientFrame::Join {
                session_id,
                since_seq,
            } => self.join(&id, &session_id, since_seq).await,
            ClientFrame::Leave { session_id } => self.leave(&id, &session_id),
            ClientFrame::Message {
                session_id,
                content,
            } => self.post(&id, &session_id, &content, false).await,
            ClientFrame::Typing { session_id, state } => self.typing(&session_id, state).await,
            ClientFrame::Cancel { invocation_id } => self.cancel(&invocation_id),
            ClientFrame::Complete { session_id, line } => {
                self.complete(&id, &session_id, &line).await
            }
            ClientFrame::Confirm {
                confirmation_id,
                accept,
            } => self.confirm(&id, &confirmation_id, accept).await,
            ClientFrame::Action {
                session_id,
                message_id,
                action_id,
            } => {
                let press = Press {
                    session_id,
                    message_id,
                    action_id,
                };
                self.press(&id, press, false).await
            }
        };
        if let Err(err) = result {
            send_error(self.out(), &id, &err);
        }
    }

    /// Cancel a running command. The session hears `command_progress` `cancelled` when the
    /// plugin has stopped; a canceller outside that session is answered at once.
    fn cancel(&mut self, invocation_id: &str) -> Result<(), AppError> {
        let job = self.state.commands.cancel(&self.principal, invocation_id)?;
        let spec = &job.spec;
        if !self
            .state
            .chat
            .hub
            .is_member(&spec.session_id, &self.handle.conn_id)
        {
            let frame = ServerFrame::CommandProgress {
                session_id: &spec.session_id,
                invocation_id: &spec.id,
                command: &spec.command,
                text: "",
                fraction: None,
                state: crate::protocol::frames::ProgressState::Cancelled,
            };
            self.out().push(frame.to_text());
        }
        Ok(())
    }

    async fn join(
        &mut self,
        id: &FrameId,
        session_id: &str,
        since_seq: Option<i64>,
    ) -> Result<(), AppError> {
        let state = self.state.clone();
        let chat = &state.chat;
        let since_seq = since_seq.unwrap_or(i64::MAX);
        if since_seq < 0 {
            return Err(AppError::BadRequest("since_seq must be 0 or more".into()));
        }
        let session = chat.active_session(&self.principal.id, session_id).await?;
        self.joined
            .retain(|s| chat.hub.is_member(s, &self.handle.conn_id));
        if self.joined.contains(session_id) {
            // Already joined: everything since the first join was delivered live, so the
            // answer needs no history — a repeated join costs one session lookup.
            let participants = chat.participants(session_id).await;
            self.out().push(
                ServerFrame::Joined {
                    id,
                    session_id,
                    participants,
                    last_seq: session.last_seq,
                    missed: &[],
                    has_more: false,
                }
                .to_text(),
            );
            return Ok(());
        }
        if self.joined.len() >= state.config.realtime.max_sessions_per_connection {
            return Err(AppError::BadRequest(format!(
                "a connection may join at most {} sessions",
                state.config.realtime.max_sessions_per_connection
            )));
        }
        let cap = state.config.realtime.recovery_cap as i64;
        // Register and read the backlog under the room's post lock, so no message is both
        // in `missed` and broadcast, or in neither.
        loop {
            let room = chat.hub.room(session_id);
            let _order = room.post_lock.lock().await;
            let Some(joined) = chat.hub.add_member(session_id, &room, &self.handle) else {
                continue;
            };
            let result = async {
                // In a cluster: hear the session's events before its history is read.
                chat.hub.watch(session_id).await;
                // Checked again after the watch: a removal from the session meanwhile was
                // announced where this node may not have been listening yet.
                let current = chat.active_session(&self.principal.id, session_id).await?;
                let (missed, has_more) = if since_seq < current.last_seq {
                    self.recover(session_id, since_seq, cap).await?
                } else {
                    (Vec::new(), false)
                };
                Ok::<_, AppError>((current, missed, has_more))
            }
            .await;
            let (current, missed, has_more) = match result {
                Ok(r) => r,
                Err(err) => {
                    chat.hub.remove_member(session_id, &self.handle.conn_id);
                    return Err(err);
                }
            };
            self.joined.insert(session_id.to_string());
            chat.metrics.session_joined();
            chat.hub.note_last_seq(session_id, current.last_seq);
            if joined.first_for_user {
                // Registers cluster presence before the participants are read, so the
                // joiner is among them on every node.
                chat.user_joined(session_id, &self.principal.id).await;
            }
            let participants = chat.participants(session_id).await;
            self.out().push(
                ServerFrame::Joined {
                    id,
                    session_id,
                    participants,
                    last_seq: current.last_seq,
                    missed: &missed,
                    has_more,
                }
                .to_text(),
            );
            chat.hub.release(session_id);
            return Ok(());
        }
    }

    /// The messages a join recovers, within the recovery budgets: one join's
    /// `recovery_max_bytes`, this connection's bucket and the user's (all their connections
    /// together). What is left out is paged over REST (`has_more`).
    async fn recover(
        &mut self,
        session_id: &str,
        since_seq: i64,
        cap: i64,
    ) -> Result<(Vec<crate::store::Message>, bool), AppError> {
        let state = &self.state;
        let user_budget = &state.user_budgets.recovery;
        let grant = (state.config.realtime.recovery_max_bytes as f64)
            .min(self.recovery.available())
            .min(user_budget.available(&self.principal.id));
        if grant < 1.0 {
            state.chat.metrics.limit_hit("recovery_budget");
            return Ok((Vec::new(), true));
        }
        let (missed, has_more) = state
            .chat
            .store
            .messages_page(session_id, since_seq, cap, 0, grant as usize)
            .await?;
        let sent: usize = missed.iter().map(crate::store::Message::json_size).sum();
        self.recovery.charge(sent as f64);
        user_budget.charge(&self.principal.id, sent as f64);
        Ok((missed, has_more))
    }

    fn leave(&mut self, id: &FrameId, session_id: &str) -> Result<(), AppError> {
        if !self.joined.remove(session_id) {
            return Err(AppError::BadRequest("not joined to that session".into()));
        }
        self.leave_room(session_id);
        self.out()
            .push(ServerFrame::Left { id, session_id }.to_text());
        Ok(())
    }

    fn leave_room(&self, session_id: &str) {
        let chat = &self.state.chat;
        if let Some((user_id, true)) = chat.hub.remove_member(session_id, &self.handle.conn_id) {
            chat.user_left(session_id, &user_id);
        }
    }

    fn leave_all(&mut self) {
        for session_id in std::mem::take(&mut self.joined) {
            self.leave_room(&session_id);
        }
    }

    /// Posting (and typing, completing, pressing) needs a prior `join`; the error says
    /// which applies.
    async fn require_joined(&self, session_id: &str) -> Result<(), AppError> {
        let chat = &self.state.chat;
        if chat.hub.is_member(session_id, &self.handle.conn_id) {
            return Ok(());
        }
        chat.active_session(&self.principal.id, session_id).await?;
        Err(AppError::BadRequest(
            "join the session before posting to it".into(),
        ))
    }

    /// Completions for the line being typed in a joined session.
    async fn complete(
        &mut self,
        id: &FrameId,
        session_id: &str,
        line: &str,
    ) -> Result<(), AppError> {
        let max = self.state.config.realtime.max_content_chars;
        if line.chars().count() > max {
            return Err(AppError::TooLarge(format!(
                "line is longer than {max} characters"
            )));
        }
        self.require_joined(session_id).await?;
        let place = Place {
            session_id: session_id.to_string(),
            connection_id: self.handle.conn_id.to_string(),
            connected_at: self.connected_at,
        };
        let found = self
            .state
            .commands
            .complete(&self.principal, &place, line)
            .await?;
        self.out().push(
            ServerFrame::Completions {
                id,
                items: &found.items,
                from: found.from,
            }
            .to_text(),
        );
        Ok(())
    }

    /// The invoker's answer to a `confirm_required`: what waited proceeds as if just sent,
    /// or `cancelled`.
    async fn confirm(
        &mut self,
        id: &FrameId,
        confirmation_id: &str,
        accept: bool,
    ) -> Result<(), AppError> {
        // A yes from a connection that has not joined the session could not proceed:
        // refuse it without spending the confirmation (the invoker may still answer where
        // they asked).
        let waiting = self
            .state
            .commands
            .waiting_for(&self.principal, confirmation_id);
        if let (true, Some(pending)) = (accept, &waiting) {
            self.require_joined(pending.session_id()).await?;
        }
        let answer = self
            .state
            .commands
            .answer(&self.principal, confirmation_id, accept)
            .await?;
        match answer {
            None => {
                self.out().push(
                    ServerFrame::Cancelled {
                        id,
                        confirmation_id,
                    }
                    .to_text(),
                );
                Ok(())
            }
            Some(Pending::Message {
                session_id,
                content,
            }) => self.post(id, &session_id, &content, true).await,
            Some(Pending::Action {
                session_id,
                message_id,
                action_id,
            }) => {
                let press = Press {
                    session_id,
                    message_id,
                    action_id,
                };
                self.press(id, press, true).await
            }
        }
    }

    /// A button press: checked, confirmed if the button asks, then run. Like posting, it
    /// needs the session joined on this connection (where its result is broadcast).
    async fn press(&mut self, id: &FrameId, press: Press, confirmed: bool) -> Result<(), AppError> {
        self.require_joined(&press.session_id).await?;
        let pending = Pending::Action {
            session_id: press.session_id.clone(),
            message_id: press.message_id.clone(),
            action_id: press.action_id.clone(),
        };
        let commands = self.state.commands.clone();
        match commands
            .approve_press(&self.principal, press, confirmed)
            .await?
        {
            Pressed::Confirm { command, prompt } => {
                self.ask_confirmation(id, &command, &prompt, pending)
            }
            Pressed::Run(approved) => {
                commands.spawn_press(PressCall {
                    caller: self.principal.clone(),
                    connection_id: self.handle.conn_id.to_string(),
                    connected_at: self.connected_at,
                    reply: self.reply_sink(id),
                    approved,
                });
                Ok(())
            }
        }
    }

    /// Park `pending` until the user confirms `prompt`; they hear `confirm_required`.
    fn ask_confirmation(
        &self,
        id: &FrameId,
        command: &str,
        prompt: &str,
        pending: Pending,
    ) -> Result<(), AppError> {
        let asked =
            self.state
                .commands
                .ask(&self.principal, command, pending, self.reply_sink(id))?;
        self.out().push(
            ServerFrame::ConfirmRequired {
                id,
                confirmation_id: &asked.id,
                prompt,
                expires_at: asked.expires_at,
            }
            .to_text(),
        );
        Ok(())
    }

    /// Where a command's answers to this connection go, echoing frame `id`.
    fn reply_sink(&self, id: &FrameId) -> Arc<dyn ReplySink> {
        Arc::new(Reply {
            out: self.handle.out.clone(),
            frame_id: id.clone(),
        })
    }

    /// Post a message; a `/command` is checked first, and one that declares `confirm` waits
    /// for the user's yes unless `confirmed`.
    async fn post(
        &mut self,
        id: &FrameId,
        session_id: &str,
        content: &str,
        confirmed: bool,
    ) -> Result<(), AppError> {
        let state = &self.state;
        let max = state.config.realtime.max_content_chars;
        if content.trim().is_empty() {
            return Err(AppError::BadRequest("content must not be empty".into()));
        }
        if content.chars().count() > max {
            return Err(AppError::TooLarge(format!(
                "content is longer than {max} characters"
            )));
        }
        self.require_joined(session_id).await?;
        // A command is checked before anything is stored: a refused one is not broadcast.
        let approved = match content.starts_with('/') {
            true => Some(
                state
                    .commands
                    .approve(&self.principal, session_id, content)
                    .await?,
            ),
            false => None,
        };
        if let Some(prompt) = approved
            .as_ref()
            .and_then(|a| a.confirm())
            .filter(|_| !confirmed)
        {
            let pending = Pending::Message {
                session_id: session_id.to_string(),
                content: content.to_string(),
            };
            let command = approved.as_ref().map(|a| a.command()).unwrap_or_default();
            return self.ask_confirmation(id, command, prompt, pending);
        }
        let metadata = match &approved {
            Some(a) => serde_json::json!({ "command": a.command() }),
            None => serde_json::json!({}),
        };
        // A command is a job from before its invocation is stored (and acked): whoever sees
        // the invocation's id can cancel it.
        let invocation_id = crate::store::new_id();
        let running = match &approved {
            Some(a) => Some(state.commands.begin(
                a,
                &self.principal,
                session_id,
                &invocation_id,
            )?),
            None => None,
        };
        let new = NewMessage {
            id: approved.as_ref().map(|_| invocation_id.as_str()),
            session_id,
            role: MessageRole::User,
            user_id: Some(&self.principal.id),
            content,
            metadata,
        };
        let out = self.handle.out.clone();
        let ack = |message: &StoredMessage| {
            out.push(
                ServerFrame::Ack {
                    id,
                    message_id: &message.id,
                    seq: message.seq,
                }
                .to_text(),
            );
        };
        let Some((approved, running)) = approved.zip(running) else {
            state.chat.post(new, ack).await?;
            // An ordinary message: the assistant (when configured) answers it.
            if let Some(assistant) = &state.assistant {
                assistant.on_user_message(session_id);
            }
            return Ok(());
        };
        let runs_first = state.commands.runs_before_stored(&approved);
        let invocation = |session_title: String, reply_to: String| Invocation {
            caller: self.principal.clone(),
            connection_id: self.handle.conn_id.to_string(),
            connected_at: self.connected_at,
            session_id: session_id.to_string(),
            session_title,
            reply_to,
            running,
            reply: self.reply_sink(id),
            approved,
        };
        let title = |session: Option<Session>| match session {
            Some(session) => Ok(session.title),
            None => Err(ChatError::NoSession),
        };
        // A command that acts only through its reply runs first, and is stored with it
        // (`commands/together.rs`); the plugin is told the session's title, read before.
        if runs_first {
            let session_title = title(state.chat.store.session(session_id).await?)?;
            let call = invocation(session_title, invocation_id.clone());
            state.commands.run_then_store(call, new, ack).await?;
            return Ok(());
        }
        // Any other runs after its invocation is stored; its session's title is read
        // meanwhile: one database round trip less on the command's path.
        let (message, session) = tokio::join!(
            state.chat.post(new, ack),
            state.chat.store.session(session_id)
        );
        let (message, session_title) = (message?, title(session?)?);
        state.commands.spawn(invocation(session_title, message.id));
        Ok(())
    }

    async fn typing(&mut self, session_id: &str, typing: bool) -> Result<(), AppError> {
        self.require_joined(session_id).await?;
        let frame = ServerFrame::Typing {
            session_id,
            user_id: &self.principal.id,
            state: typing,
        };
        self.state
            .chat
            .hub
            .broadcast(session_id, frame.to_text(), Some(&self.principal.id));
        Ok(())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.leave_all();
        self.state
            .chat
            .hub
            .unregister(&self.handle.conn_id, &self.handle.user_id);
        if let Some(cluster) = &self.state.cluster {
            cluster.release_connection(&self.handle.user_id, &self.handle.conn_id);
        }
    }
}

/// A running command's answers to the connection that invoked it, echoing its frame's `id`.
struct Reply {
    out: Outbound,
    frame_id: FrameId,
}

impl ReplySink for Reply {
    fn error(&self, error: CommandError) {
        send_error(&self.out, &self.frame_id, &error.into());
    }

    fn send(&self, frame: Text) {
        self.out.push(frame);
    }
}

/// Answer a client frame with an `error` (internal causes are logged, never sent).
fn send_error(out: &Outbound, id: &FrameId, err: &AppError) {
    if let AppError::Internal(cause) = err {
        tracing::error!(
            error = format!("{cause:#}"),
            "internal error on a connection"
        );
    }
    let message = err.public_message();
    out.push(
        ServerFrame::Error {
            id,
            code: err.code(),
            message: &message,
        }
        .to_text(),
    );
}

fn read_error_exit(err: &axum::Error) -> Exit {
    use tungstenite::error::{CapacityError, Error as WsError};
    let inner = std::error::Error::source(err).and_then(|e| e.downcast_ref::<WsError>());
    match inner {
        Some(WsError::Capacity(
            CapacityError::MessageTooLong { .. } | CapacityError::TooManyHeaders,
        )) => Exit::Close(close::TOO_BIG, "frame too large"),
        Some(WsError::Utf8(_)) => Exit::Close(close::INVALID_PAYLOAD, "invalid UTF-8"),
        Some(WsError::Protocol(_)) => Exit::Close(close::POLICY, "protocol error"),
        _ => Exit::Gone,
    }
}

/// Longest a connection is kept open on one token, whatever its `exp` says: far enough to
/// never matter, near enough that instant arithmetic cannot overflow.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// When the token expires, as a tokio instant. `exp` is the token's claim: any `u64`.
fn token_deadline(exp: u64) -> tokio::time::Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let left = Duration::from_secs(exp.saturating_sub(now)).min(MAX_TOKEN_LIFETIME);
    let now = tokio::time::Instant::now();
    // Ten years always fit in an `Instant`; should they not, close rather than panic.
    now.checked_add(left).unwrap_or(now)
}
