//! Structured logs (`--log-format json`, which the harness uses): one line per command
//! invocation, run or refused, and one line with its reason per refused authentication.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{now_secs, Backend, Server};
use crate::on_both_backends;

on_both_backends!(
    every_command_invocation_has_one_line,
    every_refused_auth_has_one_line_with_its_reason
);

/// Wait for `pred`, give stragglers a moment, then return the matching lines logged since
/// `from`.
async fn lines_since(server: &Server, from: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    assert!(
        server.wait_for_log(&pred).await,
        "no matching line in:\n{}",
        server.logs_text()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.log_lines()[from..]
        .iter()
        .filter(|l| pred(l))
        .cloned()
        .collect()
}

fn command_line(l: &Value, command: &str) -> bool {
    l["target"] == "slashd::command" && l["fields"]["command"] == command
}

async fn every_command_invocation_has_one_line(backend: Backend) {
    let server = Server::start(backend).await;
    let viewer = server.user("vera", "viewer").await;
    let session = server.session(&viewer, "logged").await;
    let mut ws = server.ws(&viewer).await;
    ws.join(&session).await;

    for (line, command, plugin, decision, outcome) in [
        ("/help", "help", "help", "allowed", "ok"),
        ("/nope", "nope", "", "denied", "unknown"),
        ("/reload", "reload", "logs", "denied", "forbidden"),
    ] {
        let from = server.log_lines().len();
        ws.command(&session, line).await;
        let lines = lines_since(&server, from, |l| command_line(l, command)).await;
        assert_eq!(lines.len(), 1, "exactly one line for {line}: {lines:?}");
        let f = &lines[0]["fields"];
        assert_eq!(f["message"], "command", "{f}");
        assert_eq!(f["plugin"], plugin, "{f}");
        assert_eq!(f["user"], "vera", "{f}");
        assert_eq!(f["session"], session.as_str(), "{f}");
        assert_eq!(f["decision"], decision, "{f}");
        assert_eq!(f["outcome"], outcome, "{f}");
        assert!(f["elapsed_ms"].is_u64(), "{f}");
    }
}

fn auth_line(l: &Value) -> bool {
    l["target"] == "slashd::auth"
}

/// Do `act`, then expect exactly one `slashd::auth` line: `message` with `reason`.
async fn expect_refusal(
    server: &Server,
    act: impl std::future::Future<Output = ()>,
    message: &str,
    transport: &str,
    reason: &str,
) -> Value {
    let from = server.log_lines().len();
    act.await;
    let lines = lines_since(server, from, auth_line).await;
    assert_eq!(lines.len(), 1, "one line for {reason:?}: {lines:?}");
    let f = lines[0]["fields"].clone();
    assert_eq!(f["message"], message, "{f}");
    assert_eq!(f["transport"], transport, "{f}");
    assert!(
        f["reason"].as_str().is_some_and(|r| r.contains(reason)),
        "reason {reason:?}: {f}"
    );
    assert_eq!(lines[0]["level"], "WARN", "{}", lines[0]);
    f
}

async fn every_refused_auth_has_one_line_with_its_reason(backend: Backend) {
    let server = Server::start(backend).await;
    let viewer = server.user("vera", "viewer").await;

    let f = expect_refusal(
        &server,
        async {
            let (status, _) = server
                .call(
                    Method::POST,
                    "/auth/login",
                    None,
                    Some(json!({"username": "vera", "password": "wrong-password"})),
                )
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        },
        "login refused",
        "rest",
        "bad credentials",
    )
    .await;
    assert_eq!(f["user"], "vera");

    expect_refusal(
        &server,
        async {
            let (status, _) = server.call(Method::GET, "/chat/sessions", None, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        },
        "token refused",
        "rest",
        "missing bearer token",
    )
    .await;

    expect_refusal(
        &server,
        async {
            let (status, _) = server.get("/chat/sessions", "garbage").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        },
        "token refused",
        "rest",
        "token is malformed",
    )
    .await;

    let expired = Server::forge(&json!({
        "sub": viewer.id, "name": "vera", "role": "viewer",
        "iat": now_secs() - 7200, "exp": now_secs() - 3600,
    }));
    expect_refusal(
        &server,
        async {
            let (status, _) = server.get("/chat/sessions", &expired).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        },
        "token refused",
        "rest",
        "expired",
    )
    .await;

    expect_refusal(
        &server,
        async {
            let mut ws = server.ws_with_header(Some(&expired)).await;
            assert_eq!(ws.recv().await["code"], "unauthorized");
        },
        "token refused",
        "ws",
        "expired",
    )
    .await;

    expect_refusal(
        &server,
        async {
            let mut ws = server.ws_with_header(None).await;
            ws.send(json!({"type": "ping"})).await;
            assert_eq!(ws.recv().await["code"], "unauthorized");
        },
        "token refused",
        "ws",
        "authenticate first",
    )
    .await;

    let f = expect_refusal(
        &server,
        async {
            let (status, _) = server.get("/admin/plugins", &viewer.token).await;
            assert_eq!(status, StatusCode::FORBIDDEN);
        },
        "role refused",
        "rest",
        "admin role",
    )
    .await;
    assert_eq!(f["user"], "vera");

    let session = server.session(&viewer, "roles").await;
    let mut ws = server.ws(&viewer).await;
    ws.join(&session).await;
    let f = expect_refusal(
        &server,
        async {
            let answer = ws.command(&session, "/reload").await;
            assert_eq!(answer["code"], "forbidden", "{answer}");
        },
        "role refused",
        "ws",
        "needs the analyst role",
    )
    .await;
    assert_eq!(f["user"], "vera");
}
