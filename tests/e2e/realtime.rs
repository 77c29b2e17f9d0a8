//! WebSocket protocol v1 (DESIGN §3) against the real binary: fan-out to every tab in `seq`
//! order, typing, presence, `session_ended`, concurrent posters, recovery with `since_seq`,
//! bad input, protocol abuse (binary, invalid UTF-8, oversized frames, flooding), auth and
//! token expiry, per-user and per-connection limits, slow consumers and graceful shutdown.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::{
    frames_until_close_of, now_secs, Backend, Closed, Server, Setup, User, Ws, WAIT,
};
use crate::on_both_backends;

on_both_backends!(
    fanout_reaches_every_tab_once_in_seq_order,
    typing_goes_to_the_others_only,
    presence_on_first_join_and_last_leave,
    session_ended_reaches_everyone,
    concurrent_posters_get_gapless_seqs_in_one_order,
    reconnect_with_since_seq_gets_exactly_the_missed,
    recovery_is_capped_and_says_so,
    bad_frames_are_answered_and_the_connection_stays_usable,
    binary_and_invalid_utf8_do_not_hurt_the_server,
    oversized_frames_close_1009,
    flooding_is_refused_then_closed_1008,
    auth_by_first_frame_and_its_timeout,
    bad_tokens_on_the_upgrade_close_4001,
    expired_token_closes_a_live_connection,
    connection_and_session_limits,
    slow_consumer_is_closed_and_others_get_everything,
    graceful_shutdown_closes_1001_and_keeps_acked_messages,
    shutdown_also_closes_sockets_still_authenticating,
);

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Reader = SplitStream<WsStream>;
type Writer = SplitSink<WsStream, Message>;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn text(frame: Value) -> Message {
    Message::text(frame.to_string())
}

fn post_frame(session: &str, content: &str, id: Value) -> Value {
    json!({"type": "message", "session_id": session, "content": content, "id": id})
}

/// The next JSON text frame of a split reader; panics on close, error or after [`WAIT`].
async fn next_json(reader: &mut Reader) -> Value {
    let read = async {
        loop {
            match reader.next().await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str::<Value>(&t).expect("server sent JSON")
                }
                Some(Ok(Message::Close(frame))) => {
                    panic!("connection closed while reading: {frame:?}")
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("read error: {e}"),
                None => panic!("connection ended while reading"),
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("no frame within WAIT")
}

/// How long [`frames_until_close`] waits for the server to end a connection.
const CLOSE_WAIT: Duration = Duration::from_secs(25);

/// Every text frame until the connection ends, and how it ended; panics after [`CLOSE_WAIT`].
async fn frames_until_close(ws: &mut Ws) -> (Vec<Value>, Closed) {
    ws.frames_until_close(CLOSE_WAIT)
        .await
        .expect("connection did not close")
}

/// Prove the connection still works: a ping is answered by exactly its pong.
async fn usable(ws: &mut Ws) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let answer = ws.request(json!({"type": "ping", "id": id})).await;
    assert_eq!(answer, json!({"type": "pong", "id": id}));
}

/// Assert an `error` frame: its code, the echoed `id` (or none), a message, nothing else.
fn assert_error(frame: &Value, code: &str, id: Option<&Value>, context: &str) {
    assert_eq!(frame["type"], "error", "{context} → {frame}");
    assert_eq!(frame["code"], code, "{context} → {frame}");
    assert_eq!(frame.get("id"), id, "{context} → {frame}");
    assert!(
        frame["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{context}: error without a message: {frame}"
    );
    let keys: HashSet<&str> = frame
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        keys.is_subset(&HashSet::from(["type", "code", "message", "id"])),
        "{frame}"
    );
}

/// Send raw text, expect an `error` with `code` (and `id` echoed when given), then prove the
/// connection is still usable.
async fn refused(ws: &mut Ws, raw: &str, code: &str, id: Option<Value>) {
    ws.send_text(raw).await;
    let answer = ws.recv().await;
    let context: String = raw.chars().take(200).collect();
    assert_error(&answer, code, id.as_ref(), &context);
    usable(ws).await;
}

/// Post one message and wait for its ack and the sender's own copy; returns the message
/// object. The connection must be the only one producing frames for itself meanwhile.
async fn post(ws: &mut Ws, session: &str, content: &str) -> Value {
    let id = format!("post-{content}");
    ws.send(post_frame(session, content, json!(id))).await;
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

/// Leave a joined session (in a quiet session: the next frame is the answer).
async fn leave(ws: &mut Ws, session: &str) {
    let left = ws
        .request(json!({"type": "leave", "session_id": session}))
        .await;
    assert_eq!(left, json!({"type": "left", "session_id": session}));
}

fn presence(session: &str, user: &User, state: &str) -> Value {
    json!({"type": "presence", "session_id": session, "user_id": user.id, "state": state})
}

fn seqs(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect()
}

/// The whole REST history of a session (pages of 500).
async fn history(server: &Server, session: &str, token: &str) -> Vec<Value> {
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

fn assert_no_panic(server: &Server) {
    let logs = server.logs_text();
    assert!(!logs.contains("panicked"), "the server panicked:\n{logs}");
}

/// Connect, retrying while the server still counts a connection that just closed.
async fn connect_eventually(server: &Server, user: &User) -> Ws {
    for _ in 0..100 {
        let mut ws = server.ws_with_header(Some(&user.token)).await;
        let first = ws.recv().await;
        if first["type"] == "ready" {
            return ws;
        }
        assert_error(&first, "rate_limited", None, "reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never released the closed connection's slot");
}

// ---------------------------------------------------------------------------------------
// Fan-out, typing, presence, session end
// ---------------------------------------------------------------------------------------

/// Two users, three tabs of the owner: every connection gets every message exactly once in
/// `seq` order; acks carry the stored id and seq (checked against REST history); the ack
/// comes before the sender's own copy.
async fn fanout_reaches_every_tab_once_in_seq_order(backend: Backend) {
    const ROUNDS: usize = 5;
    let server = Server::start(backend).await;
    let owner = server.user("owner", "viewer").await;
    let member = server.user("member", "viewer").await;
    let sid = server.session(&owner, "room").await;
    server.add_member(&owner, &sid, &member).await;

    let mut conns = [
        server.ws(&owner).await,
        server.ws(&owner).await,
        server.ws(&owner).await,
        server.ws(&member).await,
    ];
    let users = [&owner, &owner, &owner, &member];

    let joined = conns[0]
        .request(json!({"type": "join", "session_id": sid, "id": "j0"}))
        .await;
    assert_eq!(
        joined,
        json!({"type": "joined", "id": "j0", "session_id": sid, "participants": [owner.id],
               "last_seq": 0, "missed": [], "has_more": false})
    );
    let joined = conns[3]
        .request(json!({"type": "join", "session_id": sid, "id": 3}))
        .await;
    assert_eq!(
        joined,
        json!({"type": "joined", "id": 3, "session_id": sid, "participants": [owner.id, member.id],
               "last_seq": 0, "missed": [], "has_more": false})
    );
    assert_eq!(conns[0].recv().await, presence(&sid, &member, "joined"));
    for tab in &mut conns[1..3] {
        let joined = tab.join(&sid).await;
        assert_eq!(
            joined["participants"],
            json!([owner.id, member.id]),
            "{joined}"
        );
        assert_eq!(joined["missed"], json!([]));
    }

    // Every connection posts ROUNDS messages, interleaved and pipelined.
    for round in 0..ROUNDS {
        for (c, ws) in conns.iter_mut().enumerate() {
            let id = format!("c{c}-r{round}");
            ws.send(post_frame(
                &sid,
                &format!("hello from {c} #{round}"),
                json!(id),
            ))
            .await;
        }
    }

    let total = ROUNDS * conns.len();
    let mut views: Vec<Vec<Value>> = Vec::new();
    for (c, ws) in conns.iter_mut().enumerate() {
        let mut messages: Vec<Value> = Vec::new();
        let mut acks: Vec<Value> = Vec::new();
        while messages.len() < total || acks.len() < ROUNDS {
            let frame = ws.recv().await;
            match frame["type"].as_str().unwrap() {
                "ack" => {
                    // The sender's own copy of this message must not have arrived yet.
                    assert!(
                        !messages.iter().any(|m| m["seq"] == frame["seq"]),
                        "conn {c}: ack after its own broadcast copy: {frame}"
                    );
                    acks.push(frame);
                }
                "message" => {
                    assert_eq!(frame["session_id"], sid.as_str());
                    messages.push(frame["message"].clone());
                }
                _ => panic!("conn {c}: unexpected frame {frame}"),
            }
        }
        assert_eq!(
            seqs(&messages),
            (1..=total as i64).collect::<Vec<_>>(),
            "conn {c}"
        );
        // Acks: in posting order, each naming the stored message.
        for (round, ack) in acks.iter().enumerate() {
            let keys: Vec<&String> = ack.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 4, "{ack}");
            assert_eq!(ack["id"], format!("c{c}-r{round}"));
            let seq = ack["seq"].as_i64().unwrap();
            let stored = &messages[seq as usize - 1];
            assert_eq!(stored["id"], ack["message_id"], "{ack} vs {stored}");
            assert_eq!(stored["content"], format!("hello from {c} #{round}"));
            assert_eq!(stored["user_id"], users[c].id.as_str());
            assert_eq!(stored["role"], "user");
            assert_eq!(stored["session_id"], sid.as_str());
            assert_eq!(stored["metadata"], json!({}));
            assert!(stored["created_at"].is_string(), "{stored}");
        }
        let ack_seqs: Vec<i64> = acks.iter().map(|a| a["seq"].as_i64().unwrap()).collect();
        assert!(
            ack_seqs.windows(2).all(|w| w[0] < w[1]),
            "conn {c}: acks out of order {ack_seqs:?}"
        );
        views.push(messages);
    }
    for (c, view) in views.iter().enumerate() {
        assert_eq!(
            view, &views[0],
            "conn {c} saw a different history than conn 0"
        );
    }
    let ids: HashSet<&str> = views[0].iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), total, "message ids are unique");

    // What the sockets saw is exactly what was stored.
    assert_eq!(history(&server, &sid, &member.token).await, views[0]);
    assert_eq!(history(&server, &sid, &owner.token).await, views[0]);
    // Nothing else is pending anywhere.
    for ws in conns.iter_mut() {
        usable(ws).await;
    }
}

/// `typing` reaches the other user's connections and none of the typist's own tabs.
async fn typing_goes_to_the_others_only(backend: Backend) {
    let server = Server::start(backend).await;
    let owner = server.user("owner", "viewer").await;
    let member = server.user("member", "viewer").await;
    let sid = server.session(&owner, "room").await;
    server.add_member(&owner, &sid, &member).await;

    let mut m = server.ws(&member).await;
    m.join(&sid).await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        let mut tab = server.ws(&owner).await;
        tab.join(&sid).await;
        tabs.push(tab);
    }
    assert_eq!(m.recv().await, presence(&sid, &owner, "joined"));

    tabs[0]
        .send(json!({"type": "typing", "session_id": sid, "state": true, "id": "t1"}))
        .await;
    assert_eq!(
        m.recv().await,
        json!({"type": "typing", "session_id": sid, "user_id": owner.id, "state": true})
    );
    // The member now posts: for every tab of the typist, that message is the next frame —
    // so no typing frame was queued to any of them (fan-out is ordered per room).
    let message = post(&mut m, &sid, "after typing").await;
    for tab in tabs.iter_mut() {
        let frame = tab.recv().await;
        assert_eq!(
            frame,
            json!({"type": "message", "session_id": sid, "message": message})
        );
    }

    // And the other way round: the member types, every owner tab sees it, the member not.
    m.send(json!({"type": "typing", "session_id": sid, "state": false}))
        .await;
    for tab in tabs.iter_mut() {
        assert_eq!(
            tab.recv().await,
            json!({"type": "typing", "session_id": sid, "user_id": member.id, "state": false})
        );
    }
    let message = post(&mut tabs[1], &sid, "owner speaks").await;
    assert_eq!(
        m.recv().await,
        json!({"type": "message", "session_id": sid, "message": message})
    );
    for i in [0, 2] {
        assert_eq!(
            tabs[i].recv().await,
            json!({"type": "message", "session_id": sid, "message": message})
        );
    }
    for ws in tabs.iter_mut().chain(std::iter::once(&mut m)) {
        usable(ws).await;
    }
}

/// `presence` joined/left only for a user's first connection in and last connection out,
/// whether it leaves by `leave` or by disconnecting.
async fn presence_on_first_join_and_last_leave(backend: Backend) {
    let server = Server::start(backend).await;
    let owner = server.user("owner", "viewer").await;
    let member = server.user("member", "viewer").await;
    let sid = server.session(&owner, "room").await;
    server.add_member(&owner, &sid, &member).await;

    let mut m = server.ws(&member).await;
    let joined = m.join(&sid).await;
    assert_eq!(joined["participants"], json!([member.id]));

    let mut a = server.ws(&owner).await;
    let joined = a.join(&sid).await;
    assert_eq!(joined["participants"], json!([member.id, owner.id]));
    assert_eq!(m.recv().await, presence(&sid, &owner, "joined"));

    // A second owner tab: no presence for the member.
    let mut b = server.ws(&owner).await;
    let joined = b.join(&sid).await;
    assert_eq!(joined["participants"], json!([member.id, owner.id]));
    // The first tab leaves: still present through the second, so still no presence.
    let left = a
        .request(json!({"type": "leave", "session_id": sid, "id": "bye"}))
        .await;
    assert_eq!(
        left,
        json!({"type": "left", "id": "bye", "session_id": sid})
    );
    // The second tab disconnects: the owner's last connection is gone.
    b.stream.close(None).await.expect("close");
    // The member's very next frame is the owner's departure: nothing for b's join or a's leave.
    assert_eq!(m.recv().await, presence(&sid, &owner, "left"));

    // Back in through the first tab: joined again.
    let joined = a.join(&sid).await;
    assert_eq!(joined["participants"], json!([member.id, owner.id]));
    assert_eq!(m.recv().await, presence(&sid, &owner, "joined"));

    // The member leaves by frame; the owner sees it; leaving twice is refused.
    let left = m.request(json!({"type": "leave", "session_id": sid})).await;
    assert_eq!(left, json!({"type": "left", "session_id": sid}));
    assert_eq!(a.recv().await, presence(&sid, &member, "left"));
    refused(
        &mut m,
        &json!({"type": "leave", "session_id": sid, "id": 1}).to_string(),
        "bad_request",
        Some(json!(1)),
    )
    .await;

    // The member comes back, then drops the TCP connection without a close handshake.
    m.join(&sid).await;
    assert_eq!(a.recv().await, presence(&sid, &member, "joined"));
    drop(m);
    assert_eq!(a.recv().await, presence(&sid, &member, "left"));
    let joined = a.join(&sid).await;
    assert_eq!(
        joined["participants"],
        json!([owner.id]),
        "the dropped connection was cleaned up"
    );
    usable(&mut a).await;
}

/// Ending a session over REST sends `session_ended` to every connection in it (all tabs);
/// the session can then be neither posted to nor joined; others are not told.
async fn session_ended_reaches_everyone(backend: Backend) {
    let server = Server::start(backend).await;
    let owner = server.user("owner", "viewer").await;
    let member = server.user("member", "viewer").await;
    let other = server.user("other", "viewer").await;
    let sid = server.session(&owner, "room").await;
    let elsewhere = server.session(&other, "elsewhere").await;
    server.add_member(&owner, &sid, &member).await;

    let mut m = server.ws(&member).await;
    m.join(&sid).await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        let mut tab = server.ws(&owner).await;
        tab.join(&sid).await;
        tabs.push(tab);
    }
    assert_eq!(m.recv().await, presence(&sid, &owner, "joined"));
    let mut outsider = server.ws(&other).await;
    outsider.join(&elsewhere).await;

    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{sid}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ended");

    let ended = json!({"type": "session_ended", "session_id": sid});
    for ws in tabs.iter_mut().chain(std::iter::once(&mut m)) {
        assert_eq!(ws.recv().await, ended);
    }
    // The outsider's next frame is its own pong: it was not told.
    usable(&mut outsider).await;

    for ws in tabs.iter_mut().chain(std::iter::once(&mut m)) {
        usable(ws).await;
        let raw = post_frame(&sid, "too late", json!("late")).to_string();
        refused(ws, &raw, "bad_request", Some(json!("late"))).await;
        let raw = json!({"type": "join", "session_id": sid, "id": "rejoin"}).to_string();
        refused(ws, &raw, "bad_request", Some(json!("rejoin"))).await;
        let raw = json!({"type": "typing", "session_id": sid, "state": true, "id": 5}).to_string();
        refused(ws, &raw, "bad_request", Some(json!(5))).await;
    }
    let messages = history(&server, &sid, &owner.token).await;
    assert!(messages.is_empty(), "{messages:?}");
}

// ---------------------------------------------------------------------------------------
// Ordering under concurrency, recovery
// ---------------------------------------------------------------------------------------

/// 20 connections post 50 messages each at once: seqs are exactly 1..=1000, and every
/// connection sees the same order, which is the stored one.
async fn concurrent_posters_get_gapless_seqs_in_one_order(backend: Backend) {
    const POSTERS: usize = 20;
    const EACH: usize = 50;
    const TOTAL: usize = POSTERS * EACH;
    let server = Setup::new(backend)
        .set("realtime", "rate_per_sec", "100000.0")
        .set("realtime", "rate_burst", "100000.0")
        .set("realtime", "max_connections_per_user", "32")
        .start()
        .await;
    let owner = server.user("owner", "viewer").await;
    let member = server.user("member", "viewer").await;
    let sid = server.session(&owner, "busy").await;
    server.add_member(&owner, &sid, &member).await;

    let mut clients = Vec::new();
    for i in 0..POSTERS {
        let user = if i % 2 == 0 { &owner } else { &member };
        let mut ws = server.ws(user).await;
        ws.join(&sid).await;
        clients.push((ws, user.id.clone()));
    }

    let barrier = Arc::new(tokio::sync::Barrier::new(POSTERS));
    let mut tasks = Vec::new();
    for (i, (ws, _)) in clients.into_iter().enumerate() {
        let barrier = barrier.clone();
        let sid = sid.clone();
        tasks.push(tokio::spawn(async move {
            let (mut writer, mut reader) = ws.stream.split();
            let sender = tokio::spawn(async move {
                barrier.wait().await;
                for k in 0..EACH {
                    let frame = post_frame(&sid, &format!("p{i}-{k}"), json!(format!("p{i}-{k}")));
                    writer.send(text(frame)).await.expect("send");
                }
                writer
            });
            let mut messages = Vec::new();
            let mut acks = Vec::new();
            while messages.len() < TOTAL || acks.len() < EACH {
                let frame = next_json(&mut reader).await;
                match frame["type"].as_str().unwrap() {
                    "message" => messages.push(frame["message"].clone()),
                    "ack" => acks.push(frame),
                    "presence" => assert_eq!(frame["state"], "joined", "{frame}"),
                    _ => panic!("poster {i}: unexpected frame {frame}"),
                }
            }
            let _writer = sender.await.expect("sender");
            (messages, acks)
        }));
    }
    let mut views = Vec::new();
    for task in tasks {
        views.push(task.await.expect("poster task"));
    }

    let expected: Vec<i64> = (1..=TOTAL as i64).collect();
    let reference: Vec<&str> = views[0]
        .0
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for (i, (messages, acks)) in views.iter().enumerate() {
        assert_eq!(
            seqs(messages),
            expected,
            "poster {i}: seqs are not exactly 1..={TOTAL}"
        );
        let ids: Vec<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, reference, "poster {i} saw another order than poster 0");
        // Its own acks: one per post, in posting order, naming the message that was broadcast.
        assert_eq!(acks.len(), EACH);
        let mut last = 0;
        for (k, ack) in acks.iter().enumerate() {
            assert_eq!(ack["id"], format!("p{i}-{k}"), "{ack}");
            let seq = ack["seq"].as_i64().unwrap();
            assert!(seq > last, "poster {i}: ack seqs not increasing at {ack}");
            last = seq;
            let message = &messages[seq as usize - 1];
            assert_eq!(message["id"], ack["message_id"]);
            assert_eq!(message["content"], format!("p{i}-{k}"));
            assert_eq!(
                message["user_id"],
                if i % 2 == 0 { &owner.id } else { &member.id }.as_str()
            );
        }
    }
    let contents: HashSet<&str> = views[0]
        .0
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents.len(), TOTAL, "every post is there exactly once");

    let stored = history(&server, &sid, &member.token).await;
    assert_eq!(
        stored, views[0].0,
        "the stored history is the order everyone saw"
    );
}

/// A client that reconnects and joins with `since_seq` gets exactly the messages it missed,
/// then live messages without duplicates.
async fn reconnect_with_since_seq_gets_exactly_the_missed(backend: Backend) {
    let server = Server::start(backend).await;
    let owner = server.user("owner", "viewer").await;
    let member = server.user("member", "viewer").await;
    let sid = server.session(&owner, "room").await;
    server.add_member(&owner, &sid, &member).await;

    let mut o = server.ws(&owner).await;
    o.join(&sid).await;
    let mut m = server.ws(&member).await;
    m.join(&sid).await;
    assert_eq!(o.recv().await, presence(&sid, &member, "joined"));

    let mut seen = Vec::new();
    for i in 1..=3 {
        seen.push(post(&mut o, &sid, &format!("before {i}")).await);
    }
    for expected in &seen {
        assert_eq!(
            m.recv().await,
            json!({"type": "message", "session_id": sid, "message": expected})
        );
    }
    // The member's connection dies (no close handshake).
    drop(m);
    assert_eq!(o.recv().await, presence(&sid, &member, "left"));

    let mut missed = Vec::new();
    for i in 4..=7 {
        missed.push(post(&mut o, &sid, &format!("while away {i}")).await);
    }
    assert_eq!(seqs(&missed), [4, 5, 6, 7]);

    let mut m = server.ws(&member).await;
    let joined = m
        .request(json!({"type": "join", "session_id": sid, "since_seq": 3, "id": "rejoin"}))
        .await;
    assert_eq!(
        joined,
        json!({"type": "joined", "id": "rejoin", "session_id": sid, "participants": [owner.id, member.id],
               "last_seq": 7, "missed": missed, "has_more": false})
    );
    assert_eq!(o.recv().await, presence(&sid, &member, "joined"));

    // Live again: the next message arrives once, and nothing from the backlog repeats.
    let live = post(&mut o, &sid, "back online").await;
    assert_eq!(live["seq"], 8);
    assert_eq!(
        m.recv().await,
        json!({"type": "message", "session_id": sid, "message": live})
    );
    usable(&mut m).await;

    // Other since_seq values on a fresh tab.
    let mut all = seen.clone();
    all.extend(missed.iter().cloned());
    all.push(live.clone());
    // (A join of a session the connection is in recovers nothing — it has seen it all —
    // so each case leaves first.)
    let mut tab = server.ws(&member).await;
    for (since, expected) in [
        (0, all.clone()),
        (6, all[6..].to_vec()),
        (8, vec![]),
        (100, vec![]),
    ] {
        let joined = tab
            .request(json!({"type": "join", "session_id": sid, "since_seq": since}))
            .await;
        assert_eq!(joined["type"], "joined", "{joined}");
        assert_eq!(joined["last_seq"], 8);
        assert_eq!(joined["missed"], json!(expected), "since_seq {since}");
        assert_eq!(joined["has_more"], false);
        leave(&mut tab, &sid).await;
    }
    let joined = tab.join(&sid).await;
    assert_eq!(joined["missed"], json!([]), "no since_seq, no backlog");
    assert_eq!(joined["last_seq"], 8);
    assert_eq!(history(&server, &sid, &owner.token).await, all);
}

/// Past `realtime.recovery_cap` missed messages, `joined` holds the first `cap` and sets
/// `has_more`; the rest is paged over REST.
async fn recovery_is_capped_and_says_so(backend: Backend) {
    let server = Setup::new(backend)
        .set("realtime", "recovery_cap", "5")
        .start()
        .await;
    let owner = server.user("owner", "viewer").await;
    let member = server.user("member", "viewer").await;
    let sid = server.session(&owner, "room").await;
    server.add_member(&owner, &sid, &member).await;

    let mut o = server.ws(&owner).await;
    o.join(&sid).await;
    let mut all = Vec::new();
    for i in 1..=12 {
        all.push(post(&mut o, &sid, &format!("m{i}")).await);
    }

    let mut m = server.ws(&member).await;
    let cases: [(i64, std::ops::Range<usize>, bool); 4] = [
        (0, 0..5, true),
        (6, 6..11, true),
        (7, 7..12, false),
        (11, 11..12, false),
    ];
    for (since, range, has_more) in cases {
        let joined = m
            .request(json!({"type": "join", "session_id": sid, "since_seq": since, "id": since}))
            .await;
        assert_eq!(joined["type"], "joined", "{joined}");
        assert_eq!(joined["id"], since);
        assert_eq!(joined["last_seq"], 12);
        assert_eq!(
            joined["missed"],
            json!(all[range.clone()]),
            "since_seq {since}"
        );
        assert_eq!(joined["has_more"], has_more, "since_seq {since}");
        leave(&mut m, &sid).await;
    }
    // The rest after a capped recovery, as the client is told to fetch it.
    let (status, page) = server
        .get(
            &format!("/chat/sessions/{sid}/messages?after_seq=5"),
            &member.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["messages"], json!(all[5..]));
    assert_eq!(page["has_more"], false);
}

// ---------------------------------------------------------------------------------------
// Bad input and protocol abuse
// ---------------------------------------------------------------------------------------

/// Every kind of bad frame is answered by `error` with the right code (echoing a valid `id`)
/// and the connection keeps working.
async fn bad_frames_are_answered_and_the_connection_stays_usable(backend: Backend) {
    let server = Setup::new(backend)
        .set("realtime", "rate_per_sec", "10000.0")
        .set("realtime", "rate_burst", "10000.0")
        .set("realtime", "max_content_chars", "100")
        .start()
        .await;
    let owner = server.user("owner", "viewer").await;
    let stranger = server.user("stranger", "viewer").await;
    let sid = server.session(&owner, "mine").await;
    let foreign = server.session(&stranger, "theirs").await;
    let ended = server.session(&owner, "over").await;
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{ended}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let nowhere = uuid::Uuid::new_v4().to_string();

    let mut ws = server.ws(&owner).await;
    let bad = "bad_request";

    // Not a JSON object: no id can be echoed.
    refused(&mut ws, "not json", bad, None).await;
    refused(&mut ws, "", bad, None).await;
    refused(&mut ws, "{\"type\":\"ping\"", bad, None).await;
    refused(&mut ws, "[1,2,3]", bad, None).await;
    refused(&mut ws, r#"[{"type":"ping","id":1}]"#, bad, None).await;
    refused(&mut ws, r#""ping""#, bad, None).await;
    refused(&mut ws, "42", bad, None).await;
    refused(&mut ws, "null", bad, None).await;
    // Unknown or missing type.
    refused(
        &mut ws,
        r#"{"type":"warp","id":"u1"}"#,
        bad,
        Some(json!("u1")),
    )
    .await;
    refused(
        &mut ws,
        r#"{"type":"PING","id":"u2"}"#,
        bad,
        Some(json!("u2")),
    )
    .await;
    refused(&mut ws, r#"{"id":2}"#, bad, Some(json!(2))).await;
    refused(&mut ws, r#"{"type":7,"id":3}"#, bad, Some(json!(3))).await;
    refused(&mut ws, r#"{"type":null,"id":4}"#, bad, Some(json!(4))).await;
    // Missing fields.
    refused(
        &mut ws,
        r#"{"type":"join","id":"m1"}"#,
        bad,
        Some(json!("m1")),
    )
    .await;
    refused(
        &mut ws,
        r#"{"type":"auth","id":"m2"}"#,
        bad,
        Some(json!("m2")),
    )
    .await;
    let raw = json!({"type": "message", "session_id": sid, "id": "m3"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("m3"))).await;
    let raw = json!({"type": "typing", "session_id": sid, "id": "m4"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("m4"))).await;
    refused(
        &mut ws,
        r#"{"type":"leave","id":"m5"}"#,
        bad,
        Some(json!("m5")),
    )
    .await;
    // Extra fields.
    refused(
        &mut ws,
        r#"{"type":"ping","id":"e1","extra":true}"#,
        bad,
        Some(json!("e1")),
    )
    .await;
    let raw = json!({"type": "join", "session_id": sid, "id": "e2", "since": 1}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("e2"))).await;
    // Mistyped fields.
    let raw = json!({"type": "message", "session_id": sid, "content": 5, "id": "t1"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("t1"))).await;
    let raw = json!({"type": "typing", "session_id": sid, "state": "yes", "id": "t2"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("t2"))).await;
    let raw = json!({"type": "join", "session_id": sid, "since_seq": "1", "id": "t3"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("t3"))).await;
    let raw = json!({"type": "join", "session_id": sid, "since_seq": 1.5, "id": "t4"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("t4"))).await;
    refused(
        &mut ws,
        r#"{"type":"join","session_id":42,"id":"t5"}"#,
        bad,
        Some(json!("t5")),
    )
    .await;
    refused(
        &mut ws,
        r#"{"type":"join","session_id":null,"id":"t6"}"#,
        bad,
        Some(json!("t6")),
    )
    .await;
    let raw = json!({"type": "join", "session_id": sid, "since_seq": -1, "id": "t7"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("t7"))).await;
    // Ids: a string of at most 128 characters or a number; anything else is refused unechoed.
    let long = "é".repeat(128);
    let answer = ws.request(json!({"type": "ping", "id": long})).await;
    assert_eq!(
        answer,
        json!({"type": "pong", "id": long}),
        "128 characters is allowed"
    );
    let answer = ws.request(json!({"type": "ping", "id": -1.5})).await;
    assert_eq!(answer, json!({"type": "pong", "id": -1.5}));
    let answer = ws.request(json!({"type": "ping", "id": null})).await;
    assert_eq!(answer, json!({"type": "pong"}));
    let raw = json!({"type": "ping", "id": "x".repeat(129)}).to_string();
    refused(&mut ws, &raw, bad, None).await;
    let raw = json!({"type": "ping", "id": "x".repeat(10_000)}).to_string();
    refused(&mut ws, &raw, bad, None).await;
    refused(&mut ws, r#"{"type":"ping","id":{"a":1}}"#, bad, None).await;
    refused(&mut ws, r#"{"type":"ping","id":[1]}"#, bad, None).await;
    refused(&mut ws, r#"{"type":"ping","id":true}"#, bad, None).await;
    // Already authenticated.
    let raw = json!({"type": "auth", "token": owner.token, "id": "a1"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("a1"))).await;

    // Session ids: malformed, foreign, missing, ended.
    for bogus in [
        "not-a-uuid",
        "",
        "../../etc/passwd",
        "00000000-0000-0000-0000-00000000000g",
    ] {
        let raw = json!({"type": "join", "session_id": bogus, "id": "s1"}).to_string();
        refused(&mut ws, &raw, bad, Some(json!("s1"))).await;
    }
    let raw = json!({"type": "join", "session_id": foreign, "id": "s2"}).to_string();
    refused(&mut ws, &raw, "not_found", Some(json!("s2"))).await;
    let raw = json!({"type": "join", "session_id": nowhere, "id": "s3"}).to_string();
    refused(&mut ws, &raw, "not_found", Some(json!("s3"))).await;
    let raw = post_frame(&foreign, "let me in", json!("s4")).to_string();
    refused(&mut ws, &raw, "not_found", Some(json!("s4"))).await;
    let raw =
        json!({"type": "typing", "session_id": foreign, "state": true, "id": "s5"}).to_string();
    refused(&mut ws, &raw, "not_found", Some(json!("s5"))).await;
    let raw = post_frame("not-a-uuid", "hi", json!("s6")).to_string();
    refused(&mut ws, &raw, bad, Some(json!("s6"))).await;
    let raw = json!({"type": "join", "session_id": ended, "id": "s7"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("s7"))).await;
    let raw = post_frame(&ended, "hello?", json!("s8")).to_string();
    refused(&mut ws, &raw, bad, Some(json!("s8"))).await;
    // Own active session, but not joined yet.
    let raw = post_frame(&sid, "too early", json!("s9")).to_string();
    refused(&mut ws, &raw, bad, Some(json!("s9"))).await;
    let raw = json!({"type": "typing", "session_id": sid, "state": true, "id": "s10"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("s10"))).await;
    let raw = json!({"type": "leave", "session_id": sid, "id": "s11"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("s11"))).await;

    // Content, once joined.
    let joined = ws
        .request(json!({"type": "join", "session_id": sid, "id": 77}))
        .await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["id"], 77);
    for empty in ["", " ", "\n\t  \r\n"] {
        let raw = post_frame(&sid, empty, json!("c1")).to_string();
        refused(&mut ws, &raw, bad, Some(json!("c1"))).await;
    }
    let raw = post_frame(&sid, &"x".repeat(101), json!("c2")).to_string();
    refused(&mut ws, &raw, "too_large", Some(json!("c2"))).await;
    let raw = post_frame(&sid, &"ü".repeat(101), json!("c3")).to_string();
    refused(&mut ws, &raw, "too_large", Some(json!("c3"))).await;
    // Exactly at the limit (in characters, not bytes) is fine.
    let at_limit = post(&mut ws, &sid, &"ü".repeat(100)).await;
    assert_eq!(at_limit["seq"], 1);
    // Nothing refused was stored.
    let stored = history(&server, &sid, &owner.token).await;
    assert_eq!(stored, vec![at_limit]);
    assert_no_panic(&server);
}

/// A binary frame is refused in-protocol; a text frame with invalid UTF-8 closes that
/// connection (1007); the server stays healthy for everyone else.
async fn binary_and_invalid_utf8_do_not_hurt_the_server(backend: Backend) {
    let server = Server::start(backend).await;
    let user = server.user("user", "viewer").await;

    let mut ws = server.ws(&user).await;
    ws.stream
        .send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .expect("send");
    assert_error(&ws.recv().await, "bad_request", None, "binary frame");
    usable(&mut ws).await;
    let json_as_binary = json!({"type": "ping", "id": 1}).to_string().into_bytes();
    ws.stream
        .send(Message::binary(json_as_binary))
        .await
        .expect("send");
    assert_error(
        &ws.recv().await,
        "bad_request",
        None,
        "JSON in a binary frame",
    );
    usable(&mut ws).await;

    let mut broken = server.ws(&user).await;
    let invalid = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    broken
        .stream
        .send(Message::Frame(invalid))
        .await
        .expect("send");
    let (frames, closed) = frames_until_close(&mut broken).await;
    assert!(frames.is_empty(), "{frames:?}");

    // Everyone else is unaffected, and new connections are served.
    usable(&mut ws).await;
    let mut fresh = server.ws(&user).await;
    usable(&mut fresh).await;
    assert_no_panic(&server);
    assert_eq!(
        closed,
        Closed::Code(1007),
        "invalid UTF-8 must close with 1007"
    );
}

/// A frame (or a fragmented message) over `realtime.max_frame_bytes` closes with 1009; one of
/// exactly the limit is an ordinary frame.
async fn oversized_frames_close_1009(backend: Backend) {
    const LIMIT: usize = 64 * 1024;
    let server = Server::start(backend).await;
    let user = server.user("user", "viewer").await;
    let sid = server.session(&user, "room").await;

    // Exactly 64 KiB: parsed, and refused only because the content is too long.
    let mut ws = server.ws(&user).await;
    ws.join(&sid).await;
    let skeleton = post_frame(&sid, "", json!("big")).to_string();
    let content = "y".repeat(LIMIT - skeleton.len());
    let raw = post_frame(&sid, &content, json!("big")).to_string();
    assert_eq!(raw.len(), LIMIT);
    refused(&mut ws, &raw, "too_large", Some(json!("big"))).await;

    // One byte over.
    let mut big = server.ws(&user).await;
    big.send_text(&"z".repeat(LIMIT + 1)).await;
    let (frames, closed_big) = frames_until_close(&mut big).await;
    assert!(frames.is_empty(), "{frames:?}");

    // Fragments each under the limit, together over it.
    let mut fragmented = server.ws(&user).await;
    let first = Frame::message(vec![b'a'; 40_000], OpCode::Data(Data::Text), false);
    let rest = Frame::message(vec![b'a'; 40_000], OpCode::Data(Data::Continue), true);
    fragmented
        .stream
        .feed(Message::Frame(first))
        .await
        .expect("send");
    fragmented
        .stream
        .feed(Message::Frame(rest))
        .await
        .expect("send");
    fragmented.stream.flush().await.expect("flush");
    let (frames, closed_fragmented) = frames_until_close(&mut fragmented).await;
    assert!(frames.is_empty(), "{frames:?}");

    // The server and its other connections are fine.
    usable(&mut ws).await;
    let mut fresh = server.ws(&user).await;
    usable(&mut fresh).await;
    assert_no_panic(&server);
    assert_eq!(closed_big, Closed::Code(1009), "one frame over the limit");
    assert_eq!(
        closed_fragmented,
        Closed::Code(1009),
        "a fragmented message over the limit"
    );
}

/// A `rate_limited` refusal of the frame whose id was `id`. The server does not decode a
/// refused frame, so it may leave the id out (see DESIGN §3: answers echo the id).
fn assert_rate_limited(frame: &Value, id: usize) {
    let echoed = frame.get("id").cloned();
    assert!(
        echoed.is_none() || echoed == Some(json!(id)),
        "rate_limited answer with a wrong id: {frame}"
    );
    assert_error(frame, "rate_limited", echoed.as_ref(), "refused frame");
}

/// Past the burst, frames are refused with `rate_limited`; a client that keeps flooding is
/// closed with 1008. A short burst is only refused, and the connection recovers.
async fn flooding_is_refused_then_closed_1008(backend: Backend) {
    let server = Setup::new(backend)
        .set("realtime", "rate_per_sec", "2.0")
        .set("realtime", "rate_burst", "5.0")
        .set("realtime", "flood_strikes", "10.0")
        .start()
        .await;
    let user = server.user("user", "viewer").await;

    // A burst of 8: five answered, three refused; after a pause it answers again.
    let mut burst = server.ws(&user).await;
    for i in 0..8 {
        burst
            .stream
            .feed(text(json!({"type": "ping", "id": i})))
            .await
            .expect("send");
    }
    burst.stream.flush().await.expect("flush");
    for i in 0..5 {
        assert_eq!(burst.recv().await, json!({"type": "pong", "id": i}));
    }
    for i in 5..8 {
        assert_rate_limited(&burst.recv().await, i);
    }
    // Let the bucket refill (2 per second) — a wait, not a timing assertion.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    usable(&mut burst).await;

    // A flood of 200 frames in one go.
    let mut flood = server.ws(&user).await;
    for i in 0..200 {
        flood
            .stream
            .feed(text(json!({"type": "ping", "id": i})))
            .await
            .expect("send");
    }
    flood.stream.flush().await.expect("flush");
    let (frames, closed) = frames_until_close(&mut flood).await;
    assert_eq!(closed, Closed::Code(1008), "frames: {frames:?}");
    // One answer per frame, in order: the burst's pongs, then refusals (a refill may let
    // the odd ping through).
    for (i, frame) in frames.iter().take(5).enumerate() {
        assert_eq!(frame, &json!({"type": "pong", "id": i}));
    }
    let mut limited = 0;
    for (i, frame) in frames.iter().enumerate() {
        if frame["type"] == "pong" {
            assert_eq!(frame, &json!({"type": "pong", "id": i}));
        } else {
            assert_rate_limited(frame, i);
            limited += 1;
        }
    }
    assert!(
        limited >= 11,
        "ten strikes and the last straw, got {limited}: {frames:?}"
    );
    assert!(
        frames.len() < 200,
        "closed before the flood was through: {}",
        frames.len()
    );
    assert_eq!(
        frames.last().unwrap()["code"],
        "rate_limited",
        "last frame before 1008"
    );

    // The limit is per connection: the user's other connection still works.
    usable(&mut burst).await;
    assert_no_panic(&server);
}

// ---------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------

async fn expect_unauthorized_close(ws: &mut Ws, context: &str) {
    let (frames, closed) = frames_until_close(ws).await;
    assert_eq!(frames.len(), 1, "{context}: {frames:?}");
    assert_error(&frames[0], "unauthorized", None, context);
    assert_eq!(closed, Closed::Code(4001), "{context}");
}

/// Without a header, the first frame must be `auth` within `realtime.auth_timeout`.
async fn auth_by_first_frame_and_its_timeout(backend: Backend) {
    let server = Setup::new(backend)
        .set("realtime", "auth_timeout", "\"1s\"")
        .start()
        .await;
    let user = server.user("user", "analyst").await;
    let sid = server.session(&user, "room").await;

    // A good auth frame: `ready` with the user, then a normal connection.
    let mut ws = server.ws_with_header(None).await;
    ws.send(json!({"type": "auth", "token": user.token})).await;
    let ready = ws.recv().await;
    assert_eq!(ready["type"], "ready", "{ready}");
    assert!(
        ready["connection_id"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{ready}"
    );
    assert_eq!(
        ready["user"],
        json!({"id": user.id, "name": "user", "role": "analyst"})
    );
    ws.join(&sid).await;
    post(&mut ws, &sid, "hello").await;
    usable(&mut ws).await;

    // Header auth also gets a ready with a fresh connection id.
    let mut other = server.ws_with_header(Some(&user.token)).await;
    let ready2 = other.recv().await;
    assert_eq!(ready2["type"], "ready");
    assert_ne!(ready2["connection_id"], ready["connection_id"]);

    // Silence past the timeout.
    let mut silent = server.ws_with_header(None).await;
    expect_unauthorized_close(&mut silent, "no auth frame").await;
    // Anything else first.
    let mut eager = server.ws_with_header(None).await;
    eager.send(json!({"type": "ping", "id": 1})).await;
    expect_unauthorized_close(&mut eager, "ping before auth").await;
    let mut garbage = server.ws_with_header(None).await;
    garbage.send_text("hello?").await;
    expect_unauthorized_close(&mut garbage, "garbage before auth").await;
    let mut binary = server.ws_with_header(None).await;
    binary
        .stream
        .send(Message::binary(b"{}".to_vec()))
        .await
        .expect("send");
    expect_unauthorized_close(&mut binary, "binary before auth").await;
    // A bad token in the auth frame.
    let mut bad = server.ws_with_header(None).await;
    bad.send(json!({"type": "auth", "token": "not.a.token"}))
        .await;
    expect_unauthorized_close(&mut bad, "bad auth token").await;
    let mut empty = server.ws_with_header(None).await;
    empty.send(json!({"type": "auth", "token": ""})).await;
    expect_unauthorized_close(&mut empty, "empty auth token").await;

    // The server keeps serving.
    usable(&mut ws).await;
    assert_no_panic(&server);
}

/// A bad token in the upgrade's `Authorization` header: `error` unauthorized, then 4001.
async fn bad_tokens_on_the_upgrade_close_4001(backend: Backend) {
    let server = Server::start(backend).await;
    let user = server.user("user", "viewer").await;
    let now = now_secs();
    let expired = Server::forge(&json!({"sub": user.id, "name": "user", "role": "viewer",
                                        "exp": now - 3600, "iat": now - 7200}));
    let unknown = Server::forge(
        &json!({"sub": uuid::Uuid::new_v4().to_string(), "name": "ghost",
                                        "role": "viewer", "exp": now + 3600, "iat": now}),
    );
    let wrong_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": user.id, "name": "user", "role": "viewer", "exp": now + 3600, "iat": now}),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-0123456789abcdef0123456789"),
    )
    .unwrap();
    let no_role = Server::forge(&json!({"sub": user.id, "exp": now + 3600, "iat": now}));
    let tampered = {
        let mut t = user.token.clone();
        let last = t.pop().unwrap();
        t.push(if last == 'A' { 'B' } else { 'A' });
        t
    };
    for (name, token) in [
        ("garbage", "garbage".to_string()),
        ("expired", expired),
        ("unknown user", unknown),
        ("wrong key", wrong_key),
        ("no role", no_role),
        ("tampered", tampered),
    ] {
        let mut ws = server.ws_with_header(Some(&token)).await;
        expect_unauthorized_close(&mut ws, name).await;
    }
    // The right token still works.
    let mut ws = server.ws(&user).await;
    usable(&mut ws).await;
}

/// A connection whose token expires while it is open gets `error` unauthorized and 4001,
/// whichever way it authenticated.
async fn expired_token_closes_a_live_connection(backend: Backend) {
    let server = Server::start(backend).await;
    let user = server.user("user", "viewer").await;
    let sid = server.session(&user, "room").await;
    let now = now_secs();
    let short = Server::forge(&json!({"sub": user.id, "name": "user", "role": "viewer",
                                      "exp": now + 2, "iat": now}));

    let mut by_header = server.ws_with_header(Some(&short)).await;
    assert_eq!(by_header.recv().await["type"], "ready");
    by_header.join(&sid).await;
    usable(&mut by_header).await;
    let mut by_frame = server.ws_with_header(None).await;
    by_frame.send(json!({"type": "auth", "token": short})).await;
    assert_eq!(by_frame.recv().await["type"], "ready");
    usable(&mut by_frame).await;
    // A long-lived token in the same room is unaffected.
    let mut steady = server.ws(&user).await;
    steady.join(&sid).await;

    expect_unauthorized_close(&mut by_header, "expired on a header connection").await;
    expect_unauthorized_close(&mut by_frame, "expired on an auth-frame connection").await;
    post(&mut steady, &sid, "still here").await;
}

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

/// `max_connections_per_user` (over: `rate_limited` + 1008, slot freed on disconnect) and
/// `max_sessions_per_connection` (over: refused, the connection stays usable).
async fn connection_and_session_limits(backend: Backend) {
    let server = Setup::new(backend)
        .set("realtime", "max_connections_per_user", "2")
        .set("realtime", "max_sessions_per_connection", "2")
        .start()
        .await;
    let user = server.user("user", "viewer").await;
    let other = server.user("other", "viewer").await;

    let mut first = server.ws(&user).await;
    let second = server.ws(&user).await;
    let mut third = server.ws_with_header(Some(&user.token)).await;
    let (frames, closed) = frames_until_close(&mut third).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_error(&frames[0], "rate_limited", None, "third connection");
    assert_eq!(closed, Closed::Code(1008));
    // Another user is not affected.
    let mut theirs = server.ws(&other).await;
    usable(&mut theirs).await;
    // Closing one frees its slot.
    drop(second);
    let mut again = connect_eventually(&server, &user).await;
    usable(&mut again).await;

    // Sessions per connection.
    let s1 = server.session(&user, "one").await;
    let s2 = server.session(&user, "two").await;
    let s3 = server.session(&user, "three").await;
    first.join(&s1).await;
    first.join(&s2).await;
    let raw = json!({"type": "join", "session_id": s3, "id": "third"}).to_string();
    refused(&mut first, &raw, "bad_request", Some(json!("third"))).await;
    // Joining one it is already in is not a new session.
    first.join(&s2).await;
    let left = first
        .request(json!({"type": "leave", "session_id": s1}))
        .await;
    assert_eq!(left["type"], "left");
    first.join(&s3).await;
    // An ended session no longer counts.
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{s2}"),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first.recv().await,
        json!({"type": "session_ended", "session_id": s2})
    );
    first.join(&s1).await;
    post(&mut first, &s1, "in one").await;
    post(&mut first, &s3, "in three").await;
}

/// One client never reads while another receives 10,000 broadcasts: the reader gets all of
/// them in order, the non-reader is closed, and server memory stays bounded.
async fn slow_consumer_is_closed_and_others_get_everything(backend: Backend) {
    const N: usize = 10_000;
    let server = Setup::new(backend)
        .set("realtime", "rate_per_sec", "100000.0")
        .set("realtime", "rate_burst", "100000.0")
        .set("realtime", "outbound_queue", "64")
        .start()
        .await;
    let owner = server.user("owner", "viewer").await;
    let member = server.user("member", "viewer").await;
    let sid = server.session(&owner, "firehose").await;
    server.add_member(&owner, &sid, &member).await;

    let mut poster = server.ws(&owner).await;
    poster.join(&sid).await;
    let mut healthy = server.ws(&member).await;
    healthy.join(&sid).await;
    assert_eq!(poster.recv().await, presence(&sid, &member, "joined"));
    let mut slow = server.ws(&member).await;
    slow.join(&sid).await;
    // From here on `slow` reads nothing until the end.

    let pid = server.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut max_kib = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let rss = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
                max_kib = max_kib.max(rss);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            max_kib
        }
    });

    let padding = "x".repeat(4000);
    let (mut writer, mut reader): (Writer, Reader) = poster.stream.split();
    let send = tokio::spawn({
        let sid = sid.clone();
        async move {
            for i in 0..N {
                let content = format!("{i:05} {padding}");
                writer
                    .feed(text(
                        json!({"type": "message", "session_id": sid, "content": content}),
                    ))
                    .await
                    .expect("send");
                if i % 32 == 31 {
                    writer.flush().await.expect("flush");
                }
            }
            writer.flush().await.expect("flush");
            writer
        }
    });
    let own = tokio::spawn(async move {
        let (mut acks, mut copies) = (0i64, 0usize);
        while copies < N || (acks as usize) < N {
            let frame = next_json(&mut reader).await;
            match frame["type"].as_str().unwrap() {
                "ack" => {
                    acks += 1;
                    assert_eq!(frame["seq"], acks, "poster: acks out of order");
                }
                "message" => copies += 1,
                _ => panic!("poster: unexpected {frame}"),
            }
        }
        reader
    });
    let Ws { stream } = healthy;
    let (_healthy_writer, mut healthy_reader) = stream.split();
    let mut received = 0usize;
    while received < N {
        let frame = next_json(&mut healthy_reader).await;
        assert_eq!(frame["type"], "message", "{}", frame["type"]);
        let message = &frame["message"];
        assert_eq!(
            message["seq"],
            received as i64 + 1,
            "healthy receiver: out of order or gap"
        );
        let content = message["content"].as_str().unwrap();
        assert!(
            content.starts_with(&format!("{received:05} ")),
            "wrong content at {received}"
        );
        received += 1;
    }
    let _writer = send.await.expect("sender");
    let _reader = own.await.expect("poster reader");

    let closed = slow.closed().await;
    assert!(
        matches!(closed, Closed::Code(1008) | Closed::Abrupt),
        "the non-reading client must be closed, got {closed:?}"
    );
    // …and the operator can see it.
    let text =
        crate::metrics::wait_for_value(&server, "slashd_slow_reader_closes_total", 1.0).await;
    let dropped = crate::metrics::value(&text, "slashd_outbound_dropped_frames_total");
    assert!(dropped.is_some_and(|d| d >= 1.0), "{text}");
    stop.store(true, Ordering::Relaxed);
    let max_kib = sampler.await.expect("sampler");
    assert!(max_kib > 0, "could not read the server's RSS");
    assert!(max_kib < 400 * 1024, "server RSS reached {max_kib} KiB");
    assert_eq!(history(&server, &sid, &owner.token).await.len(), N);
    assert_no_panic(&server);
}

// ---------------------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------------------

/// SIGTERM while a client is posting: every socket gets 1001, and every acked message is in
/// the database after a restart.
async fn graceful_shutdown_closes_1001_and_keeps_acked_messages(backend: Backend) {
    const POSTS: usize = 300;
    let mut server = Setup::new(backend)
        .set("realtime", "rate_per_sec", "100000.0")
        .set("realtime", "rate_burst", "100000.0")
        .start()
        .await;
    let owner = server.user("owner", "viewer").await;
    let member = server.user("member", "viewer").await;
    let sid = server.session(&owner, "room").await;
    server.add_member(&owner, &sid, &member).await;

    let mut poster = server.ws(&owner).await;
    poster.join(&sid).await;
    let mut tab = server.ws(&owner).await;
    tab.join(&sid).await;
    let mut m = server.ws(&member).await;
    m.join(&sid).await;
    let idle = server.ws(&member).await;

    let (mut writer, mut reader) = poster.stream.split();
    for i in 0..POSTS {
        writer
            .feed(text(post_frame(&sid, &format!("m{i}"), json!(i))))
            .await
            .expect("send");
    }
    writer.flush().await.expect("flush");
    // Wait for the first ack, so the shutdown lands while posts are in flight.
    let mut poster_frames = Vec::new();
    loop {
        let frame = next_json(&mut reader).await;
        let is_ack = frame["type"] == "ack";
        poster_frames.push(frame);
        if is_ack {
            break;
        }
    }
    let poster_task = tokio::spawn(async move {
        let (frames, closed) = frames_until_close_of(&mut reader, CLOSE_WAIT)
            .await
            .expect("connection did not close");
        (frames, closed, writer)
    });
    let mut others = Vec::new();
    for mut ws in [tab, m, idle] {
        others.push(tokio::spawn(
            async move { frames_until_close(&mut ws).await },
        ));
    }

    let status = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(20)));
    let status = status.expect("the server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status:?}");

    let (frames, closed, _writer) = poster_task.await.expect("poster");
    assert_eq!(closed, Closed::Code(1001), "poster");
    poster_frames.extend(frames);
    let mut seen_by_others = Vec::new();
    for (i, task) in others.into_iter().enumerate() {
        let (frames, closed) = task.await.expect("reader");
        assert_eq!(closed, Closed::Code(1001), "connection {i}");
        seen_by_others.extend(frames.into_iter().filter(|f| f["type"] == "message"));
    }

    let acks: Vec<&Value> = poster_frames
        .iter()
        .filter(|f| f["type"] == "ack")
        .collect();
    assert!(!acks.is_empty());
    for (i, ack) in acks.iter().enumerate() {
        assert_eq!(ack["id"], i, "acks in posting order");
        assert_eq!(ack["seq"], i as i64 + 1);
    }

    server.spawn().await;
    let stored = history(&server, &sid, &member.token).await;
    assert!(
        stored.len() >= acks.len(),
        "{} stored < {} acked",
        stored.len(),
        acks.len()
    );
    assert_eq!(seqs(&stored), (1..=stored.len() as i64).collect::<Vec<_>>());
    for (i, ack) in acks.iter().enumerate() {
        let message = &stored[i];
        assert_eq!(
            message["id"], ack["message_id"],
            "acked message {i} lost or changed"
        );
        assert_eq!(message["content"], format!("m{i}"));
    }
    for frame in seen_by_others {
        let seq = frame["message"]["seq"].as_i64().unwrap();
        assert_eq!(
            stored[seq as usize - 1],
            frame["message"],
            "broadcast but not stored"
        );
    }
    // The restarted server serves the same tokens and history.
    let mut ws = server.ws(&owner).await;
    let joined = ws
        .request(json!({"type": "join", "session_id": sid, "since_seq": 0}))
        .await;
    assert_eq!(joined["last_seq"], stored.len() as i64);
}

/// A socket still waiting for its `auth` frame is an open socket too: shutdown closes it
/// with 1001 instead of leaving it to the auth timeout.
async fn shutdown_also_closes_sockets_still_authenticating(backend: Backend) {
    let mut server = Setup::new(backend)
        .set("realtime", "auth_timeout", "\"20s\"")
        .start()
        .await;
    let user = server.user("user", "viewer").await;
    let ready = server.ws(&user).await;
    let pending = server.ws_with_header(None).await;
    let mut tasks = Vec::new();
    for mut ws in [ready, pending] {
        tasks.push(tokio::spawn(
            async move { frames_until_close(&mut ws).await },
        ));
    }
    let status = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(20)));
    assert!(status.is_some(), "the server did not exit after SIGTERM");
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("reader"));
    }
    assert_eq!(
        results[0].1,
        Closed::Code(1001),
        "authenticated socket: {:?}",
        results[0]
    );
    assert_eq!(
        results[1].1,
        Closed::Code(1001),
        "socket awaiting auth: {:?}",
        results[1]
    );
}
