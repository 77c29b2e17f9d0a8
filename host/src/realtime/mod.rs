//! The WebSocket transport: the upgrade, one task per connection (protocol v1, decoded by
//! `protocol::frames`), its writer, and the limits that keep one client from hurting the
//! others. Rooms and fan-out are the hub's; the rules are the chat core's.

pub mod connection;
pub mod limits;
pub mod revocation;
pub mod writer;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;

use crate::state::AppState;

/// `GET /ws`. A token in the `Authorization` header is checked before the upgrade, but a
/// refusal is still reported in-protocol (`error` + close 4001) so browsers can see it.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let header_auth = match bearer(&headers) {
        Some(token) => Some(
            state
                .auth
                .authenticate(token, "ws")
                .await
                .map_err(Into::into),
        ),
        None => None,
    };
    let limits = &state.config.realtime;
    let tasks = state.tasks.clone();
    // tungstenite's defaults allocate a 128 KiB read buffer per socket up front; most chat
    // frames are small, so read in 8 KiB chunks (larger frames still arrive, in several).
    ws.max_message_size(limits.max_frame_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| tasks.track_future(connection::run(state, socket, header_auth)))
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
