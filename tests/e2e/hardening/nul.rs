//! SPEC H — U+0000 from a client is refused `bad_request` everywhere (REST 400; WebSocket
//! `error` with the connection left open) on both backends; nothing answers 500.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Backend, Server};
use crate::on_both_backends;
use crate::support::usable;

on_both_backends!(nul_is_refused_as_a_bad_request_everywhere);

fn assert_bad_request(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error"]["code"], "bad_request", "{what}: {body}");
}

async fn nul_is_refused_as_a_bad_request_everywhere(backend: Backend) {
    let server = Server::start(backend).await;
    let owner = server.user("olga", "viewer").await;
    let admin = server.admin().await;
    let session = server.session(&owner, "room").await;

    let (status, body) = server
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "ol\u{0}ga", "password": "password-123"})),
        )
        .await;
    assert_bad_request(status, &body, "NUL in the login username");

    let (status, body) = server
        .post(
            &format!("/chat/sessions/{session}/members"),
            &owner.token,
            json!({"username": "mi\u{0}ke"}),
        )
        .await;
    assert_bad_request(status, &body, "NUL in an added member's username");

    let (status, body) = server
        .post(
            "/chat/sessions",
            &owner.token,
            json!({"title": "ti\u{0}tle"}),
        )
        .await;
    assert_bad_request(status, &body, "NUL in a session title");
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/chat/sessions/{session}"),
            Some(&owner.token),
            Some(json!({"title": "re\u{0}named"})),
        )
        .await;
    assert_bad_request(status, &body, "NUL in a new session title");

    let (status, body) = server.get("/admin/audit?user=a%00b", &admin.token).await;
    assert_bad_request(status, &body, "%00 in a query parameter");
    let (status, body) = server
        .get("/admin/audit?command=he%00lp", &admin.token)
        .await;
    assert_bad_request(status, &body, "%00 in another query parameter");

    // Session metadata is JSON the client controls too: whatever the answer, never a 500.
    let (status, body) = server
        .post(
            "/chat/sessions",
            &owner.token,
            json!({"title": "meta", "metadata": {"k": "v\u{0}"}}),
        )
        .await;
    assert!(
        status.is_success() || status == StatusCode::BAD_REQUEST,
        "NUL in session metadata: {status} {body}"
    );

    let mut ws = server.ws(&owner).await;
    ws.join(&session).await;
    let answer = ws
        .request(json!({"type": "message", "session_id": session,
                        "content": "hello\u{0}world", "id": "nul"}))
        .await;
    assert_eq!(answer["type"], "error", "NUL in message content: {answer}");
    assert_eq!(answer["code"], "bad_request", "{answer}");
    assert_eq!(answer["id"], "nul", "{answer}");
    usable(&mut ws).await;
    let stored = server.count("SELECT COUNT(*) FROM messages").await;
    assert_eq!(stored, 0, "nothing with a NUL was stored");
    assert!(
        !server.logs_text().contains("internal error"),
        "an internal error was logged:\n{}",
        server.logs_text()
    );
}
