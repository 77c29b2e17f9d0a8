//! Security hardening, one submodule per topic of the hardening SPEC (letters A–M): memory
//! and joins, HTTP connection limits, the audit log, login throttling, config reload
//! errors, authenticated Redis envelopes, token expiry slots, U+0000, the kv quota, log
//! injection, smaller limits, revocation on open sockets, and membership removal.

mod audit;
mod cluster_envelopes;
mod config_reload;
mod http_connections;
mod kv_quota;
mod log_injection;
mod login_throttle;
mod membership;
mod memory;
mod misc;
mod nul;
mod reconnects;
mod revocation;
mod token_slots;

use std::time::Duration;

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Server, User, Ws};
use crate::support::joined;

/// A new viewer `name` with a session `title` of their own, and a connection of theirs
/// joined to it.
pub async fn user_in_own_session(server: &Server, name: &str, title: &str) -> (User, String, Ws) {
    let user = server.user(name, "viewer").await;
    let (ws, session) = joined(server, &user, title).await;
    (user, session, ws)
}

/// Post `n` messages of `chars` characters each (the first characters number them), as
/// fast as the connection allows; waits for every ack and own copy. The server's realtime rate limit
/// must allow it.
pub async fn post_many(ws: &mut Ws, session: &str, n: usize, chars: usize) {
    use futures_util::SinkExt;
    for i in 0..n {
        let mut content = format!("{i:05} ");
        content.push_str(&"m".repeat(chars.saturating_sub(content.len())));
        ws.stream
            .feed(Message::text(
                json!({"type": "message", "session_id": session, "content": content, "id": i})
                    .to_string(),
            ))
            .await
            .expect("send");
    }
    ws.stream.flush().await.expect("flush");
    // Every ack, and the poster's own copy of every message.
    let (mut acks, mut copies) = (0, 0);
    while acks < n || copies < n {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("ack") => acks += 1,
            Some("message") => copies += 1,
            Some("presence") => {}
            _ => panic!("while posting: {frame}"),
        }
    }
}

/// Serialized JSON bytes of a list of messages, one by one (what a byte cap counts).
pub fn json_bytes(messages: &[Value]) -> usize {
    messages.iter().map(|m| m.to_string().len()).sum()
}

/// Wait until `pred` holds on the server's raw stderr lines, up to `within`.
pub async fn wait_for_raw_log(
    server: &Server,
    within: Duration,
    pred: impl Fn(&str) -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if server.raw_log_lines().iter().any(|l| pred(l)) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
