//! SPEC M — removing members: `DELETE /chat/sessions/{id}/members/{user_id}`; who may
//! remove whom, and what the removed member's open socket sees.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Backend, Server, User};
use crate::on_both_backends;

on_both_backends!(members_can_be_removed_and_lose_access_at_once);

async fn remove(
    server: &Server,
    caller: &User,
    session: &str,
    member: &User,
) -> (StatusCode, Value) {
    server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{session}/members/{}", member.id),
            Some(&caller.token),
            None,
        )
        .await
}

async fn members_can_be_removed_and_lose_access_at_once(backend: Backend) {
    let server = Server::start(backend).await;
    let owner = server.user("olga", "viewer").await;
    let m1 = server.user("mike", "viewer").await;
    let m2 = server.user("mona", "viewer").await;
    let outsider = server.user("otto", "viewer").await;
    let sid = server.session(&owner, "team").await;
    server.add_member(&owner, &sid, &m1).await;
    server.add_member(&owner, &sid, &m2).await;

    let mut m1_ws = server.ws(&m1).await;
    m1_ws.join(&sid).await;

    // A member removing someone else: forbidden.
    let (status, body) = remove(&server, &m1, &sid, &m2).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    // Removing the owner: a bad request.
    let (status, body) = remove(&server, &owner, &sid, &owner).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    // Someone who is not a member: the session is not theirs to see.
    let (status, body) = remove(&server, &outsider, &sid, &m1).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");

    // The owner removes m1: 204, and m1's joined socket is told at once.
    let (status, body) = remove(&server, &owner, &sid, &m1).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let left = m1_ws
        .recv_within(Duration::from_secs(3))
        .await
        .expect("the removed member's socket was not told within 3 s");
    assert_eq!(left["type"], "left", "{left}");
    assert_eq!(left["session_id"], sid.as_str(), "{left}");
    let answer = m1_ws
        .request(
            json!({"type": "message", "session_id": sid, "content": "still here?", "id": "after"}),
        )
        .await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "not_found", "{answer}");
    assert_eq!(answer["id"], "after");
    let (status, _) = server
        .get(&format!("/chat/sessions/{sid}"), &m1.token)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the removed member cannot see the session"
    );
    let (status, listed) = server.get("/chat/sessions", &m1.token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !listed.to_string().contains(&sid),
        "the session is no longer listed for the removed member: {listed}"
    );

    // A member may remove themselves.
    let (status, body) = remove(&server, &m2, &sid, &m2).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = server
        .get(&format!("/chat/sessions/{sid}"), &m2.token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The owner still has the session.
    let (status, _) = server
        .get(&format!("/chat/sessions/{sid}"), &owner.token)
        .await;
    assert_eq!(status, StatusCode::OK);
}
