//! `GET /asyncapi.json`: the document the server serves is the one the harness checks every
//! frame against (`harness::check_frame`), its schemas refuse what the server refuses, and
//! the example exchange in docs/protocol.md matches it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{frame_errors, Backend, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_one_the_suite_checks_frames_against() {
    let server = Server::start(Backend::Sqlite).await;
    let (status, doc) = server.call(Method::GET, "/asyncapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "no token needed");
    assert_eq!(doc, slashd::protocol::asyncapi::document());
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["channels"]["ws"]["address"], "/ws");
}

fn accepted(from_client: bool, frame: &Value) -> bool {
    frame_errors(from_client, frame).is_empty()
}

/// The schemas are as strict as the decoder: what it refuses, they refuse.
#[test]
fn the_schemas_refuse_what_the_server_refuses() {
    let session = "0195f3a0-5d6e-7f80-9a1b-2c3d4e5f6a70";
    #[rustfmt::skip]
    let cases: &[(bool, Value, bool)] = &[
        (true, json!({"type": "ping"}), true),
        (true, json!({"type": "ping", "id": 7}), true),
        (true, json!({"type": "ping", "id": "p"}), true),
        (true, json!({"type": "ping", "id": null}), true),
        (true, json!({"type": "ping", "id": "x".repeat(129)}), false),
        (true, json!({"type": "ping", "id": [1]}), false),
        (true, json!({"type": "warp"}), false),
        (true, json!({"session_id": session}), false),
        (true, json!({"type": "join", "session_id": session}), true),
        (true, json!({"type": "join", "session_id": session, "since_seq": 3}), true),
        (true, json!({"type": "join", "session_id": session, "since": 3}), false),
        (true, json!({"type": "typing", "session_id": session}), false),
        (true, json!({"type": "typing", "session_id": session, "state": "yes"}), false),
        (true, json!({"type": "confirm", "confirmation_id": "c", "accept": true}), true),
        (false, json!({"type": "pong"}), true),
        (false, json!({"type": "pong", "id": 1}), true),
        (false, json!({"type": "ack", "message_id": "m", "seq": 1}), true),
        (false, json!({"type": "ack", "message_id": "m"}), false),
        (false, json!({"type": "error", "code": "not_found", "message": "no such session"}), true),
        (false, json!({"type": "error", "code": "oops", "message": "?"}), false),
        (false, json!({"type": "presence", "session_id": session, "user_id": "u", "state": "away"}), false),
        (false, json!({"type": "session_ended", "session_id": session, "extra": 1}), false),
    ];
    for (from_client, frame, want) in cases {
        assert_eq!(accepted(*from_client, frame), *want, "{frame}");
    }
}

/// Every frame of docs/protocol.md's example exchange matches the document.
#[test]
fn the_reference_example_matches() {
    let reference = include_str!("../../docs/protocol.md");
    let example = reference
        .split("## Example: a session end to end")
        .nth(1)
        .expect("the example section");
    let mut checked = 0;
    for line in example.lines() {
        let (from_client, json) = if let Some(rest) = line.strip_prefix("→ ") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("← ").or_else(|| line.strip_prefix("⇐ ")) {
            (false, rest)
        } else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(json) else {
            continue; // "(the same message frame)"
        };
        let errors = frame_errors(from_client, &frame);
        assert!(errors.is_empty(), "{line}: {errors:?}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} example frames");
}
