//! Limits: connections per user, sessions per connection, and a slow consumer (closed, while
//! the others get everything).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{assert_error, frames_until_close, next_json, refused, text, Reader, Writer};
use crate::harness::{rss_kib_of, Backend, Closed, Setup, Ws};
use crate::on_both_backends;
use crate::support::{assert_no_panic, connect_eventually, history, post, usable, Shared};

on_both_backends!(
    connection_and_session_limits,
    slow_consumer_is_closed_and_others_get_everything,
);

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
    let shared = Shared::create(&server, "owner", "member", "firehose").await;
    let (poster, healthy) = shared.join_both(&server).await;
    let Shared {
        owner,
        member,
        session: sid,
    } = shared;
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
                max_kib = max_kib.max(rss_kib_of(pid));
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
