//! Authentication: by header or by a first `auth` frame in time, bad tokens (4001), and a
//! token that expires on an open connection.

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{assert_error, frames_until_close};
use crate::harness::{now_secs, Backend, Closed, Server, Setup, Ws};
use crate::on_both_backends;
use crate::support::{assert_no_panic, post, usable};

on_both_backends!(
    auth_by_first_frame_and_its_timeout,
    bad_tokens_on_the_upgrade_close_4001,
    expired_token_closes_a_live_connection,
);

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
