//! What the test files share beyond the harness: the usual setups (a user joined to a
//! session of their own; an owner and a member of one session, each connected) and the
//! steps most tests take (post and wait for the ack, read a session's whole history, prove
//! a connection still works).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Closed, Server, User, Ws};

/// A session `title` of `user`'s own, and a connection of theirs joined to it.
pub async fn joined(server: &Server, user: &User, title: &str) -> (Ws, String) {
    let session = server.session(user, title).await;
    let mut ws = server.ws(user).await;
    ws.join(&session).await;
    (ws, session)
}

/// An owner and a member of one session.
pub struct Shared {
    pub owner: User,
    pub member: User,
    pub session: String,
}

impl Shared {
    /// New viewers `owner` and `member`; `owner` creates the session `title` and adds
    /// `member` to it.
    pub async fn create(server: &Server, owner: &str, member: &str, title: &str) -> Shared {
        Shared::across(server, server, owner, member, title).await
    }

    /// [`Shared::create`] on two nodes of one cluster: the owner and the session are created
    /// on `a`, the member on `b`.
    pub async fn across(a: &Server, b: &Server, owner: &str, member: &str, title: &str) -> Shared {
        let owner = a.user(owner, "viewer").await;
        let member = b.user(member, "viewer").await;
        let session = a.session(&owner, title).await;
        a.add_member(&owner, &session, &member).await;
        Shared {
            owner,
            member,
            session,
        }
    }

    /// A connection of the owner's, then one of the member's, each joined to the session;
    /// the owner's next frame was the member's arrival (`presence`), read here. Answers
    /// `(owner's, member's)`.
    pub async fn join_both(&self, server: &Server) -> (Ws, Ws) {
        self.join_both_across(server, server).await
    }

    /// [`Shared::join_both`] on two nodes: the owner connects to `a`, the member to `b`.
    pub async fn join_both_across(&self, a: &Server, b: &Server) -> (Ws, Ws) {
        let mut owner = a.ws(&self.owner).await;
        owner.join(&self.session).await;
        let mut member = b.ws(&self.member).await;
        member.join(&self.session).await;
        assert_eq!(
            owner.recv().await,
            presence(&self.session, &self.member, "joined")
        );
        (owner, member)
    }
}

/// A `presence` frame: `user` joined or left `session`.
pub fn presence(session: &str, user: &User, state: &str) -> Value {
    json!({"type": "presence", "session_id": session, "user_id": user.id, "state": state})
}

/// Prove a connection still works: a ping is answered by exactly its pong.
pub async fn usable(ws: &mut Ws) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let answer = ws.request(json!({"type": "ping", "id": id})).await;
    assert_eq!(answer, json!({"type": "pong", "id": id}));
}

/// Post one message and wait for its ack and the sender's own copy, which must be the next
/// two frames and agree (id, seq, session, content); returns the message object. The
/// connection must be the only one producing frames for itself meanwhile.
pub async fn post(ws: &mut Ws, session: &str, content: &str) -> Value {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("post-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    ws.send(json!({"type": "message", "session_id": session, "content": content, "id": id}))
        .await;
    let ack = ws.recv().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["id"], id.as_str(), "{ack}");
    let frame = ws.recv().await;
    assert_eq!(frame["type"], "message", "{frame}");
    assert_eq!(frame["session_id"], session);
    let message = frame["message"].clone();
    assert_eq!(
        message["id"], ack["message_id"],
        "ack and broadcast disagree: {ack} {frame}"
    );
    assert_eq!(
        message["seq"], ack["seq"],
        "ack and broadcast disagree: {ack} {frame}"
    );
    assert_eq!(message["content"], content);
    message
}

/// The whole REST history of a session, as `token` reads it (pages of 500).
pub async fn history(server: &Server, session: &str, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let after = all
            .last()
            .map(|m: &Value| m["seq"].as_i64().unwrap())
            .unwrap_or(0);
        let (status, page) = server
            .get(
                &format!("/chat/sessions/{session}/messages?limit=500&after_seq={after}"),
                token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        all.extend(page["messages"].as_array().unwrap().iter().cloned());
        if page["has_more"] != true {
            return all;
        }
    }
}

/// The text of a command's reply (a `message` frame).
pub fn reply_text(frame: &Value) -> &str {
    assert_eq!(frame["type"], "message", "expected a reply, got {frame}");
    frame["message"]["content"].as_str().unwrap()
}

/// The code of an `error` frame.
pub fn error_code(frame: &Value) -> &str {
    assert_eq!(frame["type"], "error", "expected an error, got {frame}");
    frame["code"].as_str().unwrap()
}

/// The server logged no panic.
pub fn assert_no_panic(server: &Server) {
    let logs = server.logs_text();
    assert!(!logs.contains("panicked"), "the server panicked:\n{logs}");
}

/// [`Ws::command`] for a command that asks for confirmation: the `confirm_required` is
/// accepted, then the reply (or the `error`) is returned. An `error` before the question is
/// returned as it is.
pub async fn command_confirmed(ws: &mut Ws, session: &str, line: &str) -> Value {
    ws.send(json!({"type": "message", "session_id": session, "content": line, "id": line}))
        .await;
    let asked = loop {
        let frame = ws.recv().await;
        if frame["id"] == line {
            break frame;
        }
    };
    if asked["type"] != "confirm_required" {
        return asked;
    }
    let id = format!("confirm {line}");
    ws.send(
        json!({"type": "confirm", "confirmation_id": asked["confirmation_id"],
                   "accept": true, "id": id}),
    )
    .await;
    let ack = loop {
        let frame = ws.recv().await;
        if frame["id"] == id.as_str() {
            break frame;
        }
    };
    if ack["type"] != "ack" {
        return ack;
    }
    loop {
        let frame = ws.recv().await;
        let answers_error = frame["type"] == "error" && frame["id"] == id.as_str();
        let answers_reply = frame["type"] == "message"
            && frame["message"]["metadata"]["reply_to"] == ack["message_id"];
        if answers_error || answers_reply {
            return frame;
        }
    }
}

/// Connect as `user`, retrying while the server (or the cluster) still counts a
/// connection that just closed.
pub async fn connect_eventually(server: &Server, user: &User) -> Ws {
    for _ in 0..100 {
        let mut ws = server.ws_with_header(Some(&user.token)).await;
        let first = ws.recv().await;
        if first["type"] == "ready" {
            return ws;
        }
        assert_eq!(first["code"], "rate_limited", "reconnect → {first}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never released the closed connection's slot");
}

/// A connection as `user` that is refused for the per-user connection cap: `rate_limited`,
/// then close 1008.
pub async fn refused_for_connections(server: &Server, user: &User) {
    let mut ws = server.ws_with_header(Some(&user.token)).await;
    let (frames, closed) = ws
        .frames_until_close(Duration::from_secs(10))
        .await
        .expect("the refused connection closes");
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["code"], "rate_limited", "{}", frames[0]);
    assert!(
        frames[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too many connections")),
        "{}",
        frames[0]
    );
    assert_eq!(closed, Closed::Code(1008));
}
