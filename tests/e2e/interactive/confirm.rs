//! Confirmation: a command (or a button) that declares `confirm` stores, runs and
//! broadcasts nothing until its invoker accepts; a declined or expired one leaves only its
//! audit row; nobody else can answer it.

use std::time::Duration;

use serde_json::{json, Value};

use super::{answer, probe_server, reply_to};
use crate::harness::{Backend, Ws};
use crate::support::{error_code, history, usable, Shared};

const PROMPT: &str = r#"Really run <img src=x onerror="window.__xss=1"> probe-confirm?"#;

/// Send `line` and return the `confirm_required` that answers it.
async fn ask(ws: &mut Ws, session: &str, line: &str) -> Value {
    let frame = json!({"type": "message", "session_id": session, "content": line});
    let asked = answer(ws, frame, line).await;
    assert_eq!(asked["type"], "confirm_required", "{asked}");
    asked
}

fn confirm(asked: &Value, accept: bool) -> Value {
    json!({"type": "confirm", "confirmation_id": asked["confirmation_id"], "accept": accept})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_accept_decline_expire_and_strangers() {
    let server = probe_server(Backend::Sqlite, |s| {
        s.set("commands", "confirm_timeout", r#""1s""#)
    })
    .await;
    let shared = Shared::create(&server, "olga", "mike", "confirming").await;
    let (mut olga, mut mike) = shared.join_both(&server).await;
    let session = shared.session.clone();
    let token = shared.owner.token.clone();

    let asked = ask(&mut olga, &session, "/probe-confirm").await;
    assert_eq!(asked["prompt"], PROMPT);
    assert!(
        asked["expires_at"].as_str().unwrap().ends_with('Z'),
        "{asked}"
    );
    // Nothing was stored or broadcast.
    assert_eq!(history(&server, &session, &token).await.len(), 0);
    mike.expect_silence(Duration::from_millis(200)).await;

    // Another user cannot answer it, not even to decline.
    for accept in [true, false] {
        let stranger = answer(&mut mike, confirm(&asked, accept), "stranger").await;
        assert_eq!(error_code(&stranger), "not_found", "{stranger}");
    }
    // A yes from the invoker's connection that has not joined the session cannot proceed,
    // and does not spend the confirmation.
    let mut elsewhere = server.ws(&shared.owner).await;
    let unjoined = answer(&mut elsewhere, confirm(&asked, true), "elsewhere").await;
    assert_eq!(error_code(&unjoined), "bad_request", "{unjoined}");
    // Its invoker accepts: the command proceeds as if just sent.
    let ack = answer(&mut olga, confirm(&asked, true), "yes").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let reply = olga.recv_type("message").await;
    let reply = if reply["message"]["role"] == "command" {
        reply
    } else {
        olga.recv_type("message").await
    };
    assert_eq!(reply["message"]["content"], "confirmed");
    assert_eq!(history(&server, &session, &token).await.len(), 2);
    // Answered once; a second answer finds nothing.
    let again = answer(&mut olga, confirm(&asked, true), "again").await;
    assert_eq!(error_code(&again), "not_found");

    // Declined: `cancelled`, nothing stored.
    let asked = ask(&mut olga, &session, "/probe-confirm").await;
    let cancelled = answer(&mut olga, confirm(&asked, false), "no").await;
    assert_eq!(cancelled["type"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["confirmation_id"], asked["confirmation_id"]);
    // Expired: `cancelled` arrives by itself, and an answer after it finds nothing.
    let asked = ask(&mut olga, &session, "/probe-confirm").await;
    let expired = olga.recv_type("cancelled").await;
    assert_eq!(expired["confirmation_id"], asked["confirmation_id"]);
    assert!(expired.get("id").is_none(), "{expired}");
    let late = answer(&mut olga, confirm(&asked, true), "late").await;
    assert_eq!(error_code(&late), "not_found");
    assert_eq!(history(&server, &session, &token).await.len(), 2);

    // The audit keeps one row for each unconfirmed one.
    let admin = server.admin().await;
    let (_, audit) = server
        .get("/admin/audit?user=olga&command=probe-confirm", &admin.token)
        .await;
    let mut outcomes: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    outcomes.sort();
    assert_eq!(outcomes, ["declined", "expired", "ok"], "{audit}");

    // Unknown ids and malformed answers are refused; the connection stays healthy.
    let unknown = answer(
        &mut olga,
        json!({"type": "confirm", "confirmation_id": "nope", "accept": true}),
        "unknown",
    )
    .await;
    assert_eq!(error_code(&unknown), "not_found");
    // (Not a frame the protocol allows: sent past the harness's schema check.)
    olga.send_unchecked(
        json!({"type": "confirm", "confirmation_id": 7, "accept": true, "id": "malformed"}),
    )
    .await;
    let malformed = reply_to(&mut olga, "malformed").await;
    assert_eq!(error_code(&malformed), "bad_request");
    usable(&mut olga).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_confirmations_are_bounded_per_user() {
    let server = probe_server(Backend::Sqlite, |s| s).await;
    let ann = server.user("ann", "viewer").await;
    let (mut ws, session) = crate::support::joined(&server, &ann, "many asks").await;
    for i in 0..8 {
        ask(&mut ws, &session, &format!("/probe-confirm {i}")).await;
    }
    let frame = json!({"type": "message", "session_id": session, "content": "/probe-confirm 8"});
    let refused = answer(&mut ws, frame, "ninth").await;
    assert_eq!(error_code(&refused), "rate_limited", "{refused}");
    usable(&mut ws).await;
}
