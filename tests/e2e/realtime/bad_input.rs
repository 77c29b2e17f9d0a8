//! Bad input and protocol abuse: refused frames (answered, the connection kept), binary
//! frames, invalid UTF-8, oversized frames, flooding.

use std::time::Duration;

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use super::{assert_error, frames_until_close, post_frame, refused, text};
use crate::harness::{Backend, Closed, Server, Setup};
use crate::on_both_backends;
use crate::support::{assert_no_panic, history, post, usable};

on_both_backends!(
    bad_frames_are_answered_and_the_connection_stays_usable,
    binary_and_invalid_utf8_do_not_hurt_the_server,
    oversized_frames_close_1009,
    flooding_is_refused_then_closed_1008,
);

/// Every kind of bad frame is answered by `error` with the right code (echoing a valid `id`)
/// and the connection keeps working: frames that do not decode (one of each kind; every
/// case is in the decoder's unit table) and frames the server refuses for what they ask
/// (sessions that are malformed, foreign, missing, ended or not joined; content).
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

    // How each bad frame decodes — and which id it echoes — is the unit table in
    // host/src/protocol/frames.rs. Here, one of each kind proves the wire path: answered by
    // `error` `bad_request`, the id echoed when there is a valid one, the connection kept.
    // Not JSON: no id can be echoed.
    refused(&mut ws, "not json", bad, None).await;
    // An unknown type (a string id echoed), a missing type (a number id echoed).
    refused(
        &mut ws,
        r#"{"type":"warp","id":"u1"}"#,
        bad,
        Some(json!("u1")),
    )
    .await;
    refused(&mut ws, r#"{"id":2}"#, bad, Some(json!(2))).await;
    // A mistyped field.
    let raw = json!({"type": "message", "session_id": sid, "content": 5, "id": "t1"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("t1"))).await;
    // Ids: a string of at most 128 characters or a number is echoed exactly; anything else
    // is refused unechoed.
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
    refused(&mut ws, r#"{"type":"ping","id":{"a":1}}"#, bad, None).await;

    // Decoded, then refused by the connection.
    let raw = json!({"type": "join", "session_id": sid, "since_seq": -1, "id": "t7"}).to_string();
    refused(&mut ws, &raw, bad, Some(json!("t7"))).await;
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
/// refused frame, so it may leave the id out (see docs/protocol.md: answers echo the id).
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
