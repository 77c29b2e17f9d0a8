//! SPEC J — log injection: with plain-text logs (`--log-format human`; the SPEC calls it
//! "text"), no raw newline from a client-controlled string reaches the log, so no line
//! can be forged.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::wait_for_raw_log;
use crate::harness::{now_secs, strip_ansi, Backend, Launch, Server, Setup};

const FORGED: &str = "ERROR forged line";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_strings_cannot_forge_log_lines() {
    let server = Setup::new(Backend::Sqlite)
        .set("auth", "auto_provision", "true")
        .start_with(Launch {
            human_logs: true,
            ..Launch::default()
        })
        .await;
    let evil = format!("mallory\n{FORGED}");
    let now = now_secs();
    let token = Server::forge(
        &json!({"sub": "idp|mallory", "name": evil, "role": "viewer",
                                      "iat": now, "exp": now + 600}),
    );
    // The token may be refused or accepted; if accepted, the name is used where it is
    // logged: requests, a WebSocket, a command.
    let (status, _) = server.get("/chat/sessions", &token).await;
    if status.is_success() {
        let (_, created) = server
            .post("/chat/sessions", &token, json!({"title": "t"}))
            .await;
        if let Some(session) = created["id"].as_str() {
            let mut ws = server.ws_with_header(Some(&token)).await;
            if ws.recv().await["type"] == "ready" {
                ws.join(session).await;
                ws.command(session, "/help").await;
                ws.command(session, "/no-such-command").await;
            }
        }
    }
    // Failed logins log the user name they were tried with.
    for name in [evil.as_str(), "x\r\nERROR forged line"] {
        server
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"username": name, "password": "wrong-password"})),
            )
            .await;
    }
    // A WebSocket auth frame with a garbage token containing a newline.
    let mut ws = server.ws_with_header(None).await;
    ws.send(json!({"type": "auth", "token": format!("x\n{FORGED}")}))
        .await;
    let _ = ws.recv_within(Duration::from_secs(2)).await;

    // Wait for the failed logins' refusal lines, then give stragglers a moment.
    assert!(
        wait_for_raw_log(&server, Duration::from_secs(5), |l| l
            .contains("login refused"))
        .await,
        "no login refusal was logged:\n{}",
        server.logs_text()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for line in server.raw_log_lines() {
        let plain = strip_ansi(&line);
        assert!(
            !plain.trim_start().starts_with(FORGED),
            "a client string forged a log line: {plain:?}\nfull log:\n{}",
            server.logs_text()
        );
        assert!(
            !plain.contains('\r'),
            "a raw carriage return reached the log: {plain:?}"
        );
    }
}
