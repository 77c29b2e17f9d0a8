//! SPEC C — the command audit log: the per-user command rate is checked first (refusals
//! for rate are not audited), the stored command name is cut to 64 characters, and
//! `audit_retention` rows are deleted by the retention sweep.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::user_in_own_session;
use crate::harness::{Backend, Setup};
use crate::on_both_backends;

on_both_backends!(
    a_long_unknown_command_name_is_stored_cut_to_64,
    rate_limited_commands_are_not_audited,
    old_audit_rows_are_swept,
);

/// An unknown command whose name is 8,000 characters: refused `unknown_command`, and its
/// audit row keeps at most 64 characters of the name.
async fn a_long_unknown_command_name_is_stored_cut_to_64(backend: Backend) {
    let server = Setup::new(backend)
        .set("realtime", "max_content_chars", "9000")
        .start()
        .await;
    let (user, session, mut ws) = user_in_own_session(&server, "vera", "audit").await;
    let line = format!("/{}", "a".repeat(8000));
    let answer = ws
        .request(json!({"type": "message", "session_id": session, "content": line, "id": "long"}))
        .await;
    assert_eq!(answer["type"], "error", "{}", answer["type"]);
    assert_eq!(answer["code"], "unknown_command");
    assert_eq!(answer["id"], "long");
    let rows = server
        .count(&format!(
            "SELECT COUNT(*) FROM command_audit WHERE user_id = '{}'",
            user.id
        ))
        .await;
    assert_eq!(rows, 1, "the unknown command is audited once");
    let longest = server
        .count("SELECT CAST(MAX(LENGTH(command)) AS BIGINT) FROM command_audit")
        .await;
    assert!(
        (1..=64).contains(&longest),
        "audit row keeps {longest} characters of the command name"
    );
}

/// 100 unknown commands sent at once by one user (rate 5/s, burst 10): only those within
/// the rate reach the audit log; the rest are refused `rate_limited` unaudited.
async fn rate_limited_commands_are_not_audited(backend: Backend) {
    const N: usize = 100;
    let server = Setup::new(backend)
        .set("realtime", "rate_per_sec", "100000.0")
        .set("realtime", "rate_burst", "100000.0")
        .start()
        .await;
    let (user, session, mut ws) = user_in_own_session(&server, "vera", "audit").await;
    let started = Instant::now();
    for i in 0..N {
        let frame = json!({"type": "message", "session_id": session,
                           "content": format!("/no-such-command-{i}"), "id": i});
        ws.stream
            .feed(Message::text(frame.to_string()))
            .await
            .unwrap();
    }
    ws.stream.flush().await.unwrap();
    let mut codes = Vec::new();
    while codes.len() < N {
        let frame = ws.recv().await;
        if frame["type"] == "error" {
            codes.push(frame["code"].as_str().unwrap().to_string());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let limited = codes.iter().filter(|c| *c == "rate_limited").count();
    // Let late audit writes land before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = server
        .count(&format!(
            "SELECT COUNT(*) FROM command_audit WHERE user_id = '{}'",
            user.id
        ))
        .await;
    let bound = 10 + (5.0 * elapsed).ceil() as i64 + 2;
    assert!(
        rows <= bound,
        "{rows} audit rows for one user's 100 commands in {elapsed:.1}s (burst 10 + 5/s \
         allows {bound}); {limited} were refused for rate"
    );
    assert!(limited > 0, "no command was rate limited: {codes:?}");
}

/// `audit_retention = "1h"` with a sweep every second: a row from 1970 is deleted, a
/// fresh one stays.
async fn old_audit_rows_are_swept(backend: Backend) {
    let server = Setup::new(backend)
        .set("sessions", "sweep_interval", "\"1s\"")
        .set("commands", "audit_retention", "\"1h\"")
        .start()
        .await;
    let now_ms = crate::harness::now_secs() * 1000;
    for (id, at) in [("old-row", 1), ("fresh-row", now_ms)] {
        server
            .execute(&format!(
                "INSERT INTO command_audit (id, at, user_id, session_id, command, plugin, \
                 args_sha256, decision, outcome, duration_ms) VALUES ('{id}', {at}, 'someone', \
                 NULL, 'help', NULL, 'x', 'allowed', 'ok', 0)"
            ))
            .await;
    }
    let count = |id: &'static str| {
        let server = &server;
        async move {
            server
                .count(&format!(
                    "SELECT COUNT(*) FROM command_audit WHERE id = '{id}'"
                ))
                .await
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while count("old-row").await != 0 {
        assert!(
            Instant::now() < deadline,
            "a 1970 audit row survived 5 s of sweeps every second"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count("fresh-row").await, 1, "a fresh row is kept");
}
