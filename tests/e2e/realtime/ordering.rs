//! Ordering under concurrency (gap-free seqs, one order for everyone) and recovery with
//! `since_seq` (exactly the missed messages; capped, and saying so).

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;

use super::{next_json, post_frame, seqs, text};
use crate::harness::{Backend, Server, Setup, Ws};
use crate::on_both_backends;
use crate::support::{history, post, presence, usable, Shared};

on_both_backends!(
    concurrent_posters_get_gapless_seqs_in_one_order,
    reconnect_with_since_seq_gets_exactly_the_missed,
    recovery_is_capped_and_says_so,
);

/// Leave a joined session (in a quiet session: the next frame is the answer).
async fn leave(ws: &mut Ws, session: &str) {
    let left = ws
        .request(json!({"type": "leave", "session_id": session}))
        .await;
    assert_eq!(left, json!({"type": "left", "session_id": session}));
}

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
    let Shared {
        owner,
        member,
        session: sid,
    } = Shared::create(&server, "owner", "member", "busy").await;

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
    let shared = Shared::create(&server, "owner", "member", "room").await;
    let (mut o, mut m) = shared.join_both(&server).await;
    let Shared {
        owner,
        member,
        session: sid,
    } = shared;

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
    let Shared {
        owner,
        member,
        session: sid,
    } = Shared::create(&server, "owner", "member", "room").await;

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
