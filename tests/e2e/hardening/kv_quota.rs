//! SPEC I — the kv quota is atomic: concurrent first writes of distinct keys cannot all
//! see room for one more key.

use std::sync::Arc;

use serde_json::json;

use super::user_in_own_session;
use crate::harness::{Backend, Setup};
use crate::on_both_backends;

on_both_backends!(concurrent_first_writes_respect_kv_max_keys);

/// `kv_max_keys = 5`; six users, one connection each, send five `/probe-kvset` of distinct
/// keys each at the same moment (within the per-user command burst of 10): at most five
/// rows exist afterwards.
async fn concurrent_first_writes_respect_kv_max_keys(backend: Backend) {
    const USERS: usize = 6;
    const EACH: usize = 5;
    let server = Setup::new(backend)
        .plugin("probe", &[("grants", r#"["kv", "config"]"#)])
        .set("commands", "kv_max_keys", "5")
        .start()
        .await;
    let barrier = Arc::new(tokio::sync::Barrier::new(USERS));
    let mut tasks = Vec::new();
    for u in 0..USERS {
        let (_, session, mut ws) = user_in_own_session(&server, &format!("user{u}"), "kv").await;
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            for i in 0..EACH {
                let line = format!("/probe-kvset key-{u}-{i} value");
                ws.send(
                    json!({"type": "message", "session_id": session, "content": line, "id": i}),
                )
                .await;
            }
            // Every command is answered: a reply or an error for it.
            let mut answers = Vec::new();
            while answers.len() < EACH {
                let frame = ws.recv().await;
                let is_reply = frame["type"] == "message" && frame["message"]["role"] == "command";
                if is_reply || frame["type"] == "error" {
                    answers.push(frame);
                }
            }
            answers
        }));
    }
    let mut stored = 0;
    for task in tasks {
        for answer in task.await.unwrap() {
            if answer["type"] == "message" && answer["message"]["content"] == "stored" {
                stored += 1;
            } else {
                assert!(
                    answer["type"] == "error" || answer["message"]["metadata"]["status"] != "ok",
                    "{answer}"
                );
            }
        }
    }
    let rows = server
        .count("SELECT COUNT(*) FROM plugin_kv WHERE plugin = 'probe'")
        .await;
    assert!(
        rows <= 5,
        "{rows} kv rows for a plugin limited to 5 keys ({stored} writes answered `stored`)"
    );
    assert!(rows >= 1, "no write succeeded at all");
    assert_eq!(rows, stored as i64, "every `stored` answer is a row");
}
