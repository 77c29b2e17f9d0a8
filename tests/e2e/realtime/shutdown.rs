//! Graceful shutdown: every socket closed with 1001 (authenticated or not yet), every acked
//! message kept.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

use super::{frames_until_close, next_json, post_frame, seqs, text, CLOSE_WAIT};
use crate::harness::{frames_until_close_of, Backend, Closed, Setup};
use crate::on_both_backends;
use crate::support::{history, Shared};

on_both_backends!(
    graceful_shutdown_closes_1001_and_keeps_acked_messages,
    shutdown_also_closes_sockets_still_authenticating,
);

/// SIGTERM while a client is posting: every socket gets 1001, and every acked message is in
/// the database after a restart.
async fn graceful_shutdown_closes_1001_and_keeps_acked_messages(backend: Backend) {
    const POSTS: usize = 300;
    let mut server = Setup::new(backend)
        .set("realtime", "rate_per_sec", "100000.0")
        .set("realtime", "rate_burst", "100000.0")
        .start()
        .await;
    let Shared {
        owner,
        member,
        session: sid,
    } = Shared::create(&server, "owner", "member", "room").await;

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
