//! SPEC F — Redis envelopes are authenticated: what anyone with access to Redis publishes
//! by hand on `{namespace}:events` in the old unauthenticated forms (a room frame with a
//! huge seq, a forged system message, non-JSON, a plugin state change) has no effect.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{Backend, Server, Setup, Ws};
use crate::support::Shared;

const REDIS: &str = "redis://127.0.0.1:6379";

fn setup() -> Setup {
    Setup::new(Backend::Postgres)
        .set("realtime", "rate_per_sec", "10000.0")
        .set("realtime", "rate_burst", "10000.0")
        .set("commands", "rate_burst", "100.0")
}

/// Publish `payload` on `channel`; answers how many subscribers received it.
async fn publish(channel: &str, payload: &str) -> i64 {
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis at 127.0.0.1:6379 is required for cluster tests");
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async(&mut conn)
        .await
        .unwrap()
}

fn message_frame(
    session: &str,
    seq: i64,
    role: &str,
    user_id: Option<&str>,
    content: &str,
) -> Value {
    json!({"type": "message", "session_id": session, "message": {
        "id": uuid::Uuid::new_v4().to_string(), "session_id": session, "seq": seq,
        "role": role, "user_id": user_id, "content": content, "metadata": {},
        "created_at": "2026-01-01T00:00:00Z"}})
}

/// Collect `message` frames until `n` have arrived, panicking on anything forged.
async fn real_messages(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        let frame = ws.recv().await;
        assert!(
            !frame.to_string().contains("FORGED"),
            "a forged envelope reached a client: {frame}"
        );
        if frame["type"] == "message" {
            got.push(frame["message"].clone());
        }
    }
    got
}

async fn help_works(node: &Server, ws: &mut Ws, session: &str, which: &str) {
    let reply = ws.command(session, "/help").await;
    assert_eq!(
        reply["type"], "message",
        "/help on node {which} after a forged plugin_state: {reply} (node {})",
        node.base
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_published_envelopes_have_no_effect() {
    let nodes = setup().start_cluster(2, REDIS).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let shared = Shared::across(a, b, "olga", "mike", "across nodes").await;
    let (mut on_a, mut on_b) = shared.join_both_across(a, b).await;
    let Shared { owner, session, .. } = shared;
    // Crossing works before the forgeries.
    on_a.send(json!({"type": "message", "session_id": session, "content": "before"}))
        .await;
    let before = real_messages(&mut on_b, 1).await;
    assert_eq!(before[0]["seq"], 1);
    real_messages(&mut on_a, 1).await;

    let channel = format!("{}:events", a.cluster_namespace());
    let forged_room = message_frame(
        &session,
        1_000_000_000,
        "user",
        Some(&owner.id),
        "FORGED user message",
    );
    let forged_system = message_frame(
        &session,
        2,
        "system",
        None,
        "FORGED system: your session is compromised",
    );
    let envelopes = [
        json!({"kind": "room", "node": "x", "session_id": session,
               "frame": forged_room.to_string(), "seq": 1_000_000_000i64})
        .to_string(),
        json!({"kind": "room", "node": "x", "session_id": session,
               "frame": forged_system.to_string(), "seq": 2})
        .to_string(),
        json!({"kind": "room", "node": "x", "session_id": session,
               "frame": "FORGED raw frame, not JSON"})
        .to_string(),
        "FORGED: not JSON at all".to_string(),
        json!({"kind": "plugin_state", "node": "x", "name": "help", "enabled": false}).to_string(),
    ];
    for envelope in &envelopes {
        let receivers = publish(&channel, envelope).await;
        assert_eq!(receivers, 2, "both nodes listen on {channel}");
    }
    // Nothing reaches any client.
    for ws in [&mut on_a, &mut on_b] {
        if let Some(frame) = ws.recv_within(Duration::from_millis(800)).await {
            panic!("a hand-published envelope reached a client: {frame}");
        }
    }
    // Real messages still arrive, in order, on both nodes.
    for i in 0..4 {
        let (ws, who) = if i % 2 == 0 {
            (&mut on_a, "a")
        } else {
            (&mut on_b, "b")
        };
        ws.send(json!({"type": "message", "session_id": session, "content": format!("{who}{i}")}))
            .await;
    }
    for ws in [&mut on_a, &mut on_b] {
        let seqs: Vec<i64> = real_messages(ws, 4)
            .await
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, [2, 3, 4, 5], "later real messages in order");
    }
    // /help is still enabled on every node.
    let started = Instant::now();
    help_works(a, &mut on_a, &session, "a").await;
    help_works(b, &mut on_b, &session, "b").await;
    assert!(started.elapsed() < Duration::from_secs(10));
}
