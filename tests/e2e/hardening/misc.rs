//! SPEC K — the smaller items: WebSocket Ping frames count against the rate, owned
//! sessions are capped, history pages are byte-capped, auto-provisioning a taken name,
//! `aud` arrays, one-line plugin trap messages, a generic refusal for valid tokens of
//! unknown or disabled users, a SQLite URL without `?mode=rwc`, and `rate_limited`
//! answers that echo the frame's id.

use std::time::Duration;

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{json_bytes, post_many, user_in_own_session};
use crate::harness::{now_secs, Backend, Closed, Launch, Server, Setup};
use crate::on_both_backends;
use crate::support::usable;

on_both_backends!(
    owned_active_sessions_are_capped,
    message_pages_are_byte_capped_and_page_on,
    auto_provisioning_a_taken_name_is_unauthorized,
    valid_tokens_of_unknown_or_disabled_users_get_a_generic_refusal,
);

fn claims(sub: &str, name: &str, role: &str) -> Value {
    let now = now_secs();
    json!({"sub": sub, "name": name, "role": role, "iat": now, "exp": now + 600})
}

/// A client flooding WebSocket Ping control frames (rate 5/s, burst 5, 5 strikes) is
/// closed with 1008 like any other flood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_control_frames_count_against_the_rate() {
    let server = Setup::new(Backend::Sqlite)
        .set("realtime", "rate_per_sec", "5.0")
        .set("realtime", "rate_burst", "5.0")
        .set("realtime", "flood_strikes", "5.0")
        .start()
        .await;
    let user = server.user("pinger", "viewer").await;
    let mut ws = server.ws(&user).await;
    for i in 0..200u32 {
        if ws
            .stream
            .feed(Message::Ping(i.to_be_bytes().to_vec().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = ws.stream.flush().await;
    let ended = ws.frames_until_close(Duration::from_secs(5)).await;
    let (_, closed) = ended.expect("a ping flood was not closed within 5 s");
    assert_eq!(closed, Closed::Code(1008), "a ping flood closes with 1008");
    // Others are fine.
    let mut other = server.ws(&user).await;
    usable(&mut other).await;
}

/// `max_owned_per_user = 3`: the 4th active session is refused 409 `bad_request`;
/// ending one makes room.
async fn owned_active_sessions_are_capped(backend: Backend) {
    let server = Setup::new(backend)
        .set("sessions", "max_owned_per_user", "3")
        .start()
        .await;
    let user = server.user("olga", "viewer").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(server.session(&user, &format!("s{i}")).await);
    }
    let (status, body) = server
        .post(
            "/chat/sessions",
            &user.token,
            json!({"title": "one too many"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    // Another user is not affected.
    let other = server.user("otto", "viewer").await;
    server.session(&other, "mine").await;
    // Ending one frees a place.
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{}", ids[0]),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.session(&user, "room again").await;
}

/// `max_page_bytes = 20000`: a history page holds at most that many bytes of messages (at
/// least one), `has_more` when cut; paging on with `after_seq` gets the rest, nothing lost.
async fn message_pages_are_byte_capped_and_page_on(backend: Backend) {
    const CAP: usize = 20_000;
    let server = Setup::new(backend)
        .set("sessions", "max_page_bytes", &CAP.to_string())
        .set("realtime", "rate_per_sec", "1000.0")
        .set("realtime", "rate_burst", "1000.0")
        .start()
        .await;
    let (user, sid, mut ws) = user_in_own_session(&server, "olga", "history").await;
    post_many(&mut ws, &sid, 12, 4000).await;

    let mut all: Vec<i64> = Vec::new();
    let mut after = 0;
    let mut pages = 0;
    loop {
        let (status, page) = server
            .get(
                &format!("/chat/sessions/{sid}/messages?limit=500&after_seq={after}"),
                &user.token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let messages = page["messages"].as_array().unwrap();
        assert!(!messages.is_empty(), "a page holds at least one message");
        let bytes = json_bytes(messages);
        assert!(
            messages.len() == 1 || bytes <= CAP,
            "a page of {} messages holds {bytes} bytes (cap {CAP})",
            messages.len()
        );
        let seqs: Vec<i64> = messages
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        let last = *seqs.last().unwrap();
        all.extend(seqs);
        pages += 1;
        assert_eq!(page["has_more"], last < 12, "has_more after seq {last}");
        if last >= 12 {
            break;
        }
        after = last;
        assert!(pages < 20);
    }
    assert_eq!(
        all,
        (1..=12).collect::<Vec<_>>(),
        "nothing lost, nothing twice"
    );
    assert!(
        pages >= 3,
        "12 × ~4.2 KB needs at least 3 pages of 20,000 bytes"
    );
}

/// Auto-provisioning from a token whose `name` is another user's: 401, not 500.
async fn auto_provisioning_a_taken_name_is_unauthorized(backend: Backend) {
    let server = Setup::new(backend)
        .set("auth", "auto_provision", "true")
        .start()
        .await;
    server.user("alice", "viewer").await;
    let token = Server::forge(&claims("idp|impostor", "alice", "viewer"));
    let (status, body) = server.get("/chat/sessions", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    // And over WebSocket.
    let mut ws = server.ws_with_header(Some(&token)).await;
    let (frames, closed) = ws
        .frames_until_close(Duration::from_secs(10))
        .await
        .expect("closed");
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["code"], "unauthorized", "{frames:?}");
    assert_eq!(closed, Closed::Code(4001));
}

/// `aud` as an array: accepted when it holds the configured audience, refused otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aud_array_with_the_audience_is_accepted() {
    let server = Setup::new(Backend::Sqlite)
        .set("auth", "audience", "\"slashd\"")
        .start()
        .await;
    let user = server.user("erin", "viewer").await;
    let with_aud = |aud: Value| {
        let mut c = claims(&user.id, "erin", "viewer");
        c["aud"] = aud;
        Server::forge(&c)
    };
    let (status, body) = server
        .get("/chat/sessions", &with_aud(json!(["other", "slashd"])))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .get("/chat/sessions", &with_aud(json!(["other", "another"])))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = server.get("/chat/sessions", &with_aud(json!([]))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

/// A plugin that panics, overflows its stack or exhausts its memory answers the invoker
/// `plugin_failed` with one line (no newline, no "wasm backtrace"); the log keeps the detail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_traps_answer_one_line() {
    let server = Setup::new(Backend::Sqlite)
        .plugin(
            "hostile",
            &[("grants", r#"["kv"]"#), ("timeout_ms", "1000")],
        )
        .set("commands", "rate_per_sec", "1000.0")
        .set("commands", "rate_burst", "1000.0")
        .start()
        .await;
    let (_, session, mut ws) = user_in_own_session(&server, "eve", "traps").await;
    for line in ["/panic", "/recurse", "/membomb"] {
        let answer = ws.command(&session, line).await;
        assert_eq!(answer["type"], "error", "{line}: {answer}");
        assert_eq!(answer["code"], "plugin_failed", "{line}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(!message.is_empty());
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "{line}: a multi-line message: {message:?}"
        );
        assert!(
            !message.to_lowercase().contains("wasm backtrace"),
            "{line}: the message carries a backtrace: {message:?}"
        );
    }
    assert!(
        server
            .wait_for_log(|l| l.to_string().contains("hostile plugin panics on purpose"))
            .await,
        "the log keeps the panic's detail"
    );
}

/// A validly signed token for an unknown user, or for a disabled one, is refused with
/// exactly "token is not accepted" (REST and WebSocket); the log keeps the real reason.
async fn valid_tokens_of_unknown_or_disabled_users_get_a_generic_refusal(backend: Backend) {
    let server = Server::start(backend).await;
    let dora = server.user("dora", "viewer").await;
    let out = server.cli(&["user", "disable", "dora"], None);
    assert!(out.status.success());
    let unknown = Server::forge(&claims(
        &uuid::Uuid::new_v4().to_string(),
        "ghost",
        "viewer",
    ));
    let disabled = Server::forge(&claims(&dora.id, "dora", "viewer"));
    for (what, token, reason_hint) in [
        ("unknown user", &unknown, "known"),
        ("disabled user", &disabled, "disabled"),
    ] {
        let from = server.log_lines().len();
        let (status, body) = server.get("/chat/sessions", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(
            body["error"]["message"], "token is not accepted",
            "{what} over REST"
        );
        let mut ws = server.ws_with_header(Some(token)).await;
        let (frames, closed) = ws
            .frames_until_close(Duration::from_secs(10))
            .await
            .expect("closed");
        assert_eq!(frames.len(), 1, "{what}: {frames:?}");
        assert_eq!(frames[0]["code"], "unauthorized", "{what}");
        assert_eq!(
            frames[0]["message"], "token is not accepted",
            "{what} over WebSocket"
        );
        assert_eq!(closed, Closed::Code(4001), "{what}");
        assert!(
            server
                .wait_for_log(|l| {
                    l["target"] == "slashd::auth"
                        && l["fields"]["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains(reason_hint))
                })
                .await,
            "{what}: the log keeps the real reason"
        );
        assert!(server.log_lines().len() > from);
    }
}

/// `url = "sqlite:///<dir>/new/slashd.db"` without `?mode=rwc`, for a file (and folder)
/// that do not exist yet: the server starts and creates the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_url_without_mode_creates_the_database() {
    let server = Setup::new(Backend::Sqlite)
        .start_with(Launch {
            sqlite_url: Some("sqlite://{dir}/new/slashd.db".into()),
            ..Launch::default()
        })
        .await;
    assert!(
        server.dir.path().join("new/slashd.db").exists(),
        "the database file was not created"
    );
    let (status, _) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let admin = server.admin().await;
    let (status, _) = server.get("/chat/sessions", &admin.token).await;
    assert_eq!(status, StatusCode::OK);
}

/// The `rate_limited` answers to a burst carry the id of the frame they refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_answers_echo_the_frame_id() {
    let server = Setup::new(Backend::Sqlite)
        .set("realtime", "rate_per_sec", "2.0")
        .set("realtime", "rate_burst", "5.0")
        .set("realtime", "flood_strikes", "10.0")
        .start()
        .await;
    let user = server.user("burst", "viewer").await;
    let mut ws = server.ws(&user).await;
    for i in 0..8 {
        ws.stream
            .feed(Message::text(json!({"type": "ping", "id": i}).to_string()))
            .await
            .unwrap();
    }
    ws.stream.flush().await.unwrap();
    for i in 0..8 {
        let frame = ws.recv().await;
        if frame["type"] == "pong" {
            assert_eq!(frame, json!({"type": "pong", "id": i}));
        } else {
            assert_eq!(frame["code"], "rate_limited", "{frame}");
            assert_eq!(
                frame["id"], i,
                "the refusal names the refused frame: {frame}"
            );
        }
    }
}
