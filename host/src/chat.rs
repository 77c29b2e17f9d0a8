//! Chat operations shared by REST, the WebSocket layer and (later) commands: who may see a
//! session, posting a message in order, ending a session.

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::realtime::frames::ServerFrame;
use crate::realtime::hub::Hub;
use crate::store::messages_error::AppendError;
use crate::store::{Access, Message, NewMessage, Session, Store};

/// Session ids are UUIDs; anything else is a bad request, not a lookup.
pub fn parse_session_id(id: &str) -> AppResult<()> {
    uuid::Uuid::try_parse(id)
        .map(drop)
        .map_err(|_| AppError::BadRequest("session_id must be a UUID".into()))
}

/// The session if `user_id` owns it or is a member; otherwise "not found", never
/// "forbidden", so ids don't leak.
pub async fn visible_session(
    state: &AppState,
    user_id: &str,
    session_id: &str,
) -> AppResult<(Session, Access)> {
    parse_session_id(session_id)?;
    state
        .store
        .session_for(session_id, user_id)
        .await?
        .ok_or_else(AppError::not_found_session)
}

/// Store a message (assigning its seq), run `on_stored` (the poster's ack), then broadcast
/// it — all under the room's post lock, so every participant sees `seq` order.
pub async fn post(
    state: &AppState,
    new: NewMessage<'_>,
    on_stored: impl FnOnce(&Message),
) -> AppResult<Message> {
    let room = state.hub.existing_room(new.session_id);
    let _order = match &room {
        Some(room) => Some(room.post_lock.lock().await),
        None => None,
    };
    let message = state.store.append_message(new).await.map_err(|e| match e {
        AppendError::NoSession => AppError::not_found_session(),
        AppendError::Ended => AppError::session_ended(),
        AppendError::Db(e) => e.into(),
    })?;
    state.metrics.message_stored(message.role.as_str());
    on_stored(&message);
    let frame = ServerFrame::Message {
        session_id: &message.session_id,
        message: &message,
    };
    state
        .hub
        .broadcast_message(&message.session_id, message.seq, frame.to_text());
    Ok(message)
}

/// End a session and tell everyone in it. Ending an ended session is a no-op.
pub async fn end_session(state: &AppState, session_id: &str) -> AppResult<Session> {
    end_session_in(&state.store, &state.hub, session_id).await
}

/// [`end_session`] for callers that hold only the store and the hub (plugin capabilities).
pub async fn end_session_in(store: &Store, hub: &Hub, session_id: &str) -> AppResult<Session> {
    let (session, changed) = store
        .end_session(session_id)
        .await?
        .ok_or_else(AppError::not_found_session)?;
    if changed {
        announce_ended(hub, session_id);
    }
    Ok(session)
}

/// Tell a session's participants it ended, and empty its room.
pub fn announce_ended(hub: &Hub, session_id: &str) {
    let frame = ServerFrame::SessionEnded { session_id };
    hub.broadcast(session_id, frame.to_text(), None);
    hub.close_room(session_id);
}
