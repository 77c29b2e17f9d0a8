//! The assistant: ordinary messages answered by an OpenAI-compatible endpoint, streamed.
//!
//! The endpoint is a fake started by each test on loopback (it is an external API, so a fake
//! is right here): it records every request body and answers with scripted server-sent
//! events, or with an HTTP 500, a malformed stream, a stall, or an overlong reply.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, Server, Setup, Ws, ADMIN_PASSWORD};
use crate::on_both_backends;
use crate::support::{history, Shared};

on_both_backends!(
    context_is_the_system_prompt_and_the_last_messages,
    deltas_stream_in_order_and_make_up_the_stored_reply,
    backend_down_is_assistant_failed,
    http_500_is_assistant_failed,
    malformed_sse_is_assistant_failed,
    a_stall_past_the_read_timeout_is_assistant_failed,
    an_overlong_reply_is_assistant_failed,
    two_sessions_stream_at_once_without_mixing,
    commands_are_never_sent_to_the_model,
    metadata_assistant_false_turns_it_off,
    messages_during_a_reply_are_coalesced,
    the_api_key_is_sent_as_a_bearer_token_and_never_logged,
);

const SYSTEM_PROMPT: &str = "You are the test assistant.";
const MODEL: &str = "test-model";
/// The server's `assistant.read_timeout` in these tests.
const READ_TIMEOUT: Duration = Duration::from_millis(500);
/// The server's `assistant.max_reply_bytes` in these tests.
const MAX_REPLY_BYTES: usize = 2000;

// ---------------------------------------------------------------------------------------
// The fake endpoint

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Stream the scripted reply, then `[DONE]`.
    Reply,
    /// Answer HTTP 500 with a JSON error.
    Status500,
    /// One good chunk, then data that is not JSON.
    Malformed,
    /// One good chunk, then silence far longer than the read timeout.
    Stall,
    /// More text than `max_reply_bytes`.
    Long,
}

struct FakeState {
    requests: Mutex<Vec<Value>>,
    /// The `Authorization` header of each request.
    authorizations: Mutex<Vec<Option<String>>>,
    mode: Mutex<Mode>,
    /// Pause before each chunk of a reply.
    chunk_delay: Mutex<Duration>,
    /// Streams open right now, and the most that were ever open at once.
    active: AtomicUsize,
    max_active: AtomicUsize,
}

#[derive(Clone)]
pub(crate) struct Fake {
    pub(crate) base_url: String,
    state: Arc<FakeState>,
}

impl Fake {
    pub(crate) async fn start() -> Fake {
        let state = Arc::new(FakeState {
            requests: Mutex::new(Vec::new()),
            authorizations: Mutex::new(Vec::new()),
            mode: Mutex::new(Mode::Reply),
            chunk_delay: Mutex::new(Duration::from_millis(10)),
            active: AtomicUsize::new(0),
            max_active: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub(crate) fn set_chunk_delay(&self, delay: Duration) {
        *self.state.chunk_delay.lock().unwrap() = delay;
    }

    pub(crate) fn requests(&self) -> Vec<Value> {
        self.state.requests.lock().unwrap().clone()
    }

    fn authorizations(&self) -> Vec<Option<String>> {
        self.state.authorizations.lock().unwrap().clone()
    }

    pub(crate) fn max_active(&self) -> usize {
        self.state.max_active.load(Ordering::SeqCst)
    }
}

/// The reply the fake writes to a prompt whose last message is `last`, in chunks.
fn reply_chunks(last: &str) -> Vec<String> {
    vec![
        "You".into(),
        " said".into(),
        ": ".into(),
        last.to_string(),
        ".".into(),
    ]
}

pub(crate) fn reply_to(last: &str) -> String {
    reply_chunks(last).concat()
}

fn content_event(text: &str) -> String {
    let chunk = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}],
    });
    format!("data: {chunk}\n\n")
}

/// Counts a stream as open until its body is dropped.
struct Open(Arc<FakeState>);

impl Open {
    fn new(state: Arc<FakeState>) -> Open {
        let now = state.active.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_active.fetch_max(now, Ordering::SeqCst);
        Open(state)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn completions(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_string());
    state.authorizations.lock().unwrap().push(authorization);
    state.requests.lock().unwrap().push(body.clone());
    let mode = *state.mode.lock().unwrap();
    let delay = *state.chunk_delay.lock().unwrap();
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let role = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n";
    let stop = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    let done = "data: [DONE]\n\n";
    let mut script: VecDeque<(Duration, String)> = VecDeque::new();
    match mode {
        Mode::Status500 => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"message": "the fake is down"}})),
            )
                .into_response();
        }
        Mode::Reply => {
            script.push_back((Duration::ZERO, role.into()));
            for chunk in reply_chunks(&last) {
                script.push_back((delay, content_event(&chunk)));
            }
            script.push_back((Duration::ZERO, stop.into()));
            script.push_back((Duration::ZERO, done.into()));
        }
        Mode::Malformed => {
            script.push_back((Duration::ZERO, content_event("partial")));
            script.push_back((delay, "data: {\"choices\": [oops\n\n".into()));
            script.push_back((Duration::ZERO, done.into()));
        }
        Mode::Stall => {
            script.push_back((Duration::ZERO, content_event("partial")));
            script.push_back((READ_TIMEOUT * 6, content_event(" and late")));
            script.push_back((Duration::ZERO, done.into()));
        }
        Mode::Long => {
            let piece = "x".repeat(500);
            for _ in 0..(MAX_REPLY_BYTES / 500 + 2) {
                script.push_back((delay, content_event(&piece)));
            }
            script.push_back((Duration::ZERO, done.into()));
        }
    }
    let open = Open::new(state.clone());
    let stream = futures_util::stream::unfold((script, open), |(mut script, open)| async move {
        let (pause, text) = script.pop_front()?;
        tokio::time::sleep(pause).await;
        Some((Ok::<_, Infallible>(text), (script, open)))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Helpers

/// A server whose assistant is the fake (or `base_url`), with small timeouts.
async fn start(backend: Backend, base_url: &str, extra: impl FnOnce(Setup) -> Setup) -> Server {
    let setup = Setup::new(backend)
        .set("assistant", "base_url", &format!("{base_url:?}"))
        .set("assistant", "model", &format!("{MODEL:?}"))
        .set("assistant", "system_prompt", &format!("{SYSTEM_PROMPT:?}"))
        .set("assistant", "connect_timeout", "\"1s\"")
        .set("assistant", "read_timeout", "\"500ms\"")
        .set("assistant", "total_timeout", "\"20s\"")
        .set("assistant", "max_reply_bytes", &MAX_REPLY_BYTES.to_string());
    extra(setup).start().await
}

/// Post an ordinary message; returns its ack.
async fn say(ws: &mut Ws, session: &str, text: &str) -> Value {
    ws.send(json!({"type": "message", "session_id": session, "content": text, "id": text}))
        .await;
    loop {
        let frame = ws.recv().await;
        if frame["id"] == text {
            assert_eq!(frame["type"], "ack", "{frame}");
            return frame;
        }
    }
}

/// Read until the assistant's stored reply arrives: the deltas seen on the way and the
/// `message` frame. Panics on an `error` frame.
async fn assistant_reply(ws: &mut Ws) -> (Vec<Value>, Value) {
    let mut deltas = Vec::new();
    loop {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("message_delta") => deltas.push(frame),
            Some("message") if frame["message"]["role"] == "assistant" => {
                return (deltas, frame);
            }
            Some("error") => panic!("expected a reply, got {frame}"),
            _ => {}
        }
    }
}

/// Read until an `error` frame; returns it and the deltas seen before it. Panics if an
/// assistant message is stored meanwhile.
async fn assistant_error(ws: &mut Ws) -> (Value, Vec<Value>) {
    let mut deltas = Vec::new();
    loop {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("message_delta") => deltas.push(frame),
            Some("message") if frame["message"]["role"] == "assistant" => {
                panic!("expected assistant_failed, got a stored reply {frame}")
            }
            Some("error") => return (frame, deltas),
            _ => {}
        }
    }
}

fn concat_deltas(deltas: &[Value]) -> String {
    deltas
        .iter()
        .map(|d| d["delta"].as_str().unwrap())
        .collect()
}

fn roles_and_contents(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(r, c)| (r.to_string(), c.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests

async fn context_is_the_system_prompt_and_the_last_messages(backend: Backend) {
    let fake = Fake::start().await;
    let server = start(backend, &fake.base_url, |s| {
        s.set("assistant", "max_context_messages", "4")
    })
    .await;
    let alice = server.user("alice", "viewer").await;
    let session = server.session(&alice, "chat").await;
    let mut ws = server.ws(&alice).await;
    ws.join(&session).await;

    say(&mut ws, &session, "first").await;
    let (_, r1) = assistant_reply(&mut ws).await;
    assert_eq!(r1["message"]["content"], reply_to("first"));
    let help = ws.command(&session, "/help").await;
    assert_eq!(help["message"]["role"], "command", "{help}");
    let help_text = help["message"]["content"].as_str().unwrap().to_string();
    say(&mut ws, &session, "second").await;
    assistant_reply(&mut ws).await;
    say(&mut ws, &session, "third").await;
    assistant_reply(&mut ws).await;

    let requests = fake.requests();
    assert_eq!(requests.len(), 3, "one request per ordinary message");
    for request in &requests {
        assert_eq!(request["model"], MODEL);
        assert_eq!(request["stream"], true);
        for m in request["messages"].as_array().unwrap() {
            let content = m["content"].as_str().unwrap();
            assert!(!content.starts_with('/'), "a command was sent: {request}");
            assert_ne!(content, help_text, "a command reply was sent: {request}");
        }
    }
    assert_eq!(
        requests[0]["messages"],
        json!([
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "first"},
        ])
    );
    // The last 4 context messages — first, R1, second, R2, third less the oldest — with the
    // invocation and reply of /help left out.
    assert_eq!(
        requests[2]["messages"],
        json!([
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "assistant", "content": reply_to("first")},
            {"role": "user", "content": "second"},
            {"role": "assistant", "content": reply_to("second")},
            {"role": "user", "content": "third"},
        ])
    );
    // The same selection as GET …/context (which now also holds the third reply).
    let (_, context) = server
        .get(
            &format!("/chat/sessions/{session}/context?max_messages=5"),
            &alice.token,
        )
        .await;
    let sent = requests[2]["messages"].as_array().unwrap();
    assert_eq!(context["messages"].as_array().unwrap()[..4], sent[1..]);
}

async fn deltas_stream_in_order_and_make_up_the_stored_reply(backend: Backend) {
    let fake = Fake::start().await;
    fake.set_chunk_delay(Duration::from_millis(40));
    let server = start(backend, &fake.base_url, |s| s).await;
    let shared = Shared::create(&server, "alice", "bob", "chat").await;
    let (mut a, mut b) = shared.join_both(&server).await;
    let Shared {
        owner: alice,
        session,
        ..
    } = shared;

    let ack = say(&mut a, &session, "hello there").await;
    let expected = reply_to("hello there");
    let (deltas, stored) = assistant_reply(&mut a).await;
    let (bob_deltas, bob_stored) = assistant_reply(&mut b).await;

    assert_eq!(
        deltas
            .iter()
            .map(|d| d["delta"].clone())
            .collect::<Vec<_>>(),
        reply_chunks("hello there")
            .into_iter()
            .map(Value::from)
            .collect::<Vec<_>>(),
        "every chunk, in order"
    );
    assert_eq!(concat_deltas(&deltas), expected);
    let message = &stored["message"];
    assert_eq!(message["content"], expected);
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["user_id"], Value::Null);
    assert_eq!(message["seq"], ack["seq"].as_i64().unwrap() + 1);
    assert_eq!(message["metadata"]["model"], MODEL);
    assert_eq!(message["metadata"]["reply_to"], ack["message_id"]);
    for d in &deltas {
        assert_eq!(d["session_id"], session.as_str());
        assert_eq!(d["message_id"], message["id"], "deltas carry the stored id");
    }
    // Every participant sees the same stream and the same message.
    assert_eq!(bob_deltas, deltas);
    assert_eq!(bob_stored, stored);

    let messages = history(&server, &session, &alice.token).await;
    assert_eq!(
        roles_and_contents(&messages),
        pairs(&[("user", "hello there"), ("assistant", &expected)])
    );
    assert_eq!(messages[1]["id"], message["id"]);
    assert_eq!(messages[1]["seq"], message["seq"]);
}

/// Post a message in a session whose endpoint fails; both participants get
/// `assistant_failed`, the user's message is kept and nothing partial is stored.
async fn expect_failure(
    server: &Server,
    text: &str,
    partial: Option<&str>,
    message_says: &str,
) -> (String, Ws, Duration) {
    let shared = Shared::create(server, "alice", "bob", "chat").await;
    let (mut a, mut b) = shared.join_both(server).await;
    let Shared {
        owner: alice,
        session,
        ..
    } = shared;
    let started = std::time::Instant::now();
    let ack = say(&mut a, &session, text).await;
    let mut took = Duration::ZERO;
    for ws in [&mut a, &mut b] {
        let (error, deltas) = assistant_error(ws).await;
        assert_eq!(error["code"], "assistant_failed", "{error}");
        assert!(
            error.get("id").is_none(),
            "not an answer to a frame: {error}"
        );
        let said = error["message"].as_str().unwrap();
        assert!(said.contains(message_says), "{said:?}");
        if let Some(partial) = partial {
            assert_eq!(concat_deltas(&deltas), partial);
        }
        took = took.max(started.elapsed());
    }
    let messages = history(server, &session, &alice.token).await;
    assert_eq!(roles_and_contents(&messages), pairs(&[("user", text)]));
    assert_eq!(messages[0]["id"], ack["message_id"]);
    let stored = server
        .count("SELECT COUNT(*) FROM messages WHERE role = 'assistant'")
        .await;
    assert_eq!(stored, 0, "nothing partial is stored");
    (session, a, took)
}

/// After a failure the session is answered again (its reply slot was released).
async fn recovers(fake: &Fake, session: &str, ws: &mut Ws) {
    fake.set_mode(Mode::Reply);
    say(ws, session, "again").await;
    let (_, stored) = assistant_reply(ws).await;
    assert_eq!(stored["message"]["content"], reply_to("again"));
}

async fn backend_down_is_assistant_failed(backend: Backend) {
    // A port that nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = start(backend, &format!("http://127.0.0.1:{port}/v1"), |s| s).await;
    expect_failure(&server, "anyone there?", None, "cannot reach").await;
}

async fn http_500_is_assistant_failed(backend: Backend) {
    let fake = Fake::start().await;
    fake.set_mode(Mode::Status500);
    let server = start(backend, &fake.base_url, |s| s).await;
    let (session, mut ws, _) = expect_failure(&server, "hello", None, "HTTP 500").await;
    recovers(&fake, &session, &mut ws).await;
    use crate::metrics::wait_for_value;
    let text = wait_for_value(
        &server,
        r#"slashd_assistant_replies_total{outcome="ok"}"#,
        1.0,
    )
    .await;
    assert_eq!(
        crate::metrics::value(&text, r#"slashd_assistant_replies_total{outcome="failed"}"#),
        Some(1.0),
        "{text}"
    );
}

async fn malformed_sse_is_assistant_failed(backend: Backend) {
    let fake = Fake::start().await;
    fake.set_mode(Mode::Malformed);
    let server = start(backend, &fake.base_url, |s| s).await;
    let (session, mut ws, _) = expect_failure(&server, "hello", Some("partial"), "malformed").await;
    recovers(&fake, &session, &mut ws).await;
}

async fn a_stall_past_the_read_timeout_is_assistant_failed(backend: Backend) {
    let fake = Fake::start().await;
    fake.set_mode(Mode::Stall);
    let server = start(backend, &fake.base_url, |s| s).await;
    let (session, mut ws, took) =
        expect_failure(&server, "hello", Some("partial"), "sent nothing for").await;
    assert!(
        took >= READ_TIMEOUT && took < READ_TIMEOUT * 5,
        "the stall was cut at the read timeout, not waited out ({took:?})"
    );
    recovers(&fake, &session, &mut ws).await;
}

async fn an_overlong_reply_is_assistant_failed(backend: Backend) {
    let fake = Fake::start().await;
    fake.set_mode(Mode::Long);
    let server = start(backend, &fake.base_url, |s| s).await;
    let (session, mut ws, _) = expect_failure(&server, "hello", None, "longer than").await;
    recovers(&fake, &session, &mut ws).await;
}

async fn two_sessions_stream_at_once_without_mixing(backend: Backend) {
    let fake = Fake::start().await;
    fake.set_chunk_delay(Duration::from_millis(150));
    let server = start(backend, &fake.base_url, |s| s).await;
    let alice = server.user("alice", "viewer").await;
    let bob = server.user("bob", "viewer").await;
    let s1 = server.session(&alice, "one").await;
    let s2 = server.session(&bob, "two").await;
    let mut a = server.ws(&alice).await;
    a.join(&s1).await;
    let mut b = server.ws(&bob).await;
    b.join(&s2).await;

    say(&mut a, &s1, "apples").await;
    say(&mut b, &s2, "bananas").await;
    let ((da, ma), (db, mb)) = tokio::join!(assistant_reply(&mut a), assistant_reply(&mut b));

    assert_eq!(
        fake.max_active(),
        2,
        "the two replies streamed at the same time"
    );
    for (deltas, stored, session, word) in [(&da, &ma, &s1, "apples"), (&db, &mb, &s2, "bananas")] {
        assert_eq!(stored["session_id"], session.as_str());
        assert_eq!(stored["message"]["content"], reply_to(word));
        assert_eq!(concat_deltas(deltas), reply_to(word));
        for d in deltas {
            assert_eq!(d["session_id"], session.as_str());
            assert_eq!(d["message_id"], stored["message"]["id"]);
        }
    }
    assert_ne!(ma["message"]["id"], mb["message"]["id"]);
}

async fn commands_are_never_sent_to_the_model(backend: Backend) {
    let fake = Fake::start().await;
    let server = start(backend, &fake.base_url, |s| s).await;
    let alice = server.user("alice", "viewer").await;
    let session = server.session(&alice, "chat").await;
    let mut ws = server.ws(&alice).await;
    ws.join(&session).await;

    let help = ws.command(&session, "/help").await;
    assert_eq!(help["message"]["role"], "command", "{help}");
    let unknown = ws.command(&session, "/nosuchcommand").await;
    assert_eq!(unknown["code"], "unknown_command", "{unknown}");
    ws.expect_silence(Duration::from_millis(800)).await;
    assert_eq!(fake.requests().len(), 0, "{:?}", fake.requests());
}

async fn metadata_assistant_false_turns_it_off(backend: Backend) {
    let fake = Fake::start().await;
    let server = start(backend, &fake.base_url, |s| s).await;
    let alice = server.user("alice", "viewer").await;
    let (status, body) = server
        .post(
            "/chat/sessions",
            &alice.token,
            json!({"title": "quiet", "metadata": {"assistant": false}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let session = body["id"].as_str().unwrap().to_string();
    let mut ws = server.ws(&alice).await;
    ws.join(&session).await;

    say(&mut ws, &session, "just us humans").await;
    let own = ws.recv_type("message").await;
    assert_eq!(own["message"]["role"], "user");
    ws.expect_silence(Duration::from_millis(800)).await;
    assert_eq!(fake.requests().len(), 0);

    // The setting is read at each message: switching it back on works at once.
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/chat/sessions/{session}"),
            Some(&alice.token),
            Some(json!({"metadata": {"assistant": true}})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    say(&mut ws, &session, "now answer").await;
    let (_, stored) = assistant_reply(&mut ws).await;
    assert_eq!(stored["message"]["content"], reply_to("now answer"));
    assert_eq!(fake.requests().len(), 1);
}

async fn messages_during_a_reply_are_coalesced(backend: Backend) {
    let fake = Fake::start().await;
    fake.set_chunk_delay(Duration::from_millis(150));
    let server = start(backend, &fake.base_url, |s| s).await;
    let alice = server.user("alice", "viewer").await;
    let session = server.session(&alice, "chat").await;
    let mut ws = server.ws(&alice).await;
    ws.join(&session).await;

    say(&mut ws, &session, "one").await;
    // The first reply is streaming: post two more meanwhile.
    let first_delta = ws.recv_type("message_delta").await;
    say(&mut ws, &session, "two").await;
    say(&mut ws, &session, "three").await;
    let (_, r1) = assistant_reply(&mut ws).await;
    assert_eq!(r1["message"]["id"], first_delta["message_id"]);
    assert_eq!(r1["message"]["content"], reply_to("one"));
    // One more reply, with the latest context, answers both.
    let (_, r2) = assistant_reply(&mut ws).await;
    assert_eq!(r2["message"]["content"], reply_to("three"));
    ws.expect_silence(Duration::from_millis(800)).await;

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "coalesced into one more request");
    // The model sees its first reply right after the message it answered.
    assert_eq!(
        requests[1]["messages"],
        json!([
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": reply_to("one")},
            {"role": "user", "content": "two"},
            {"role": "user", "content": "three"},
        ])
    );
    // Stored in the order everyone saw.
    let messages = history(&server, &session, &alice.token).await;
    assert_eq!(
        roles_and_contents(&messages),
        pairs(&[
            ("user", "one"),
            ("user", "two"),
            ("user", "three"),
            ("assistant", &reply_to("one")),
            ("assistant", &reply_to("three")),
        ])
    );
}

async fn the_api_key_is_sent_as_a_bearer_token_and_never_logged(backend: Backend) {
    // The harness gives every server SLASHD_ADMIN_PASSWORD in its environment: a secret
    // with a known value, standing in for an API key variable.
    let key = ADMIN_PASSWORD;
    let fake = Fake::start().await;
    let server = start(backend, &fake.base_url, |s| {
        s.set("assistant", "api_key_env", "\"SLASHD_ADMIN_PASSWORD\"")
    })
    .await;
    let alice = server.user("alice", "viewer").await;
    let session = server.session(&alice, "chat").await;
    let mut ws = server.ws(&alice).await;
    ws.join(&session).await;
    say(&mut ws, &session, "hello").await;
    assistant_reply(&mut ws).await;
    fake.set_mode(Mode::Status500);
    say(&mut ws, &session, "again").await;
    let (error, _) = assistant_error(&mut ws).await;
    assert_eq!(error["code"], "assistant_failed");

    assert_eq!(
        fake.authorizations(),
        vec![Some(format!("Bearer {key}")); 2]
    );
    let logs = server.logs_text();
    assert!(!logs.contains(key), "the key was logged:\n{logs}");
    assert!(!error.to_string().contains(key));

    // Without api_key_env, no Authorization header is sent.
    let other = Fake::start().await;
    let plain = start(backend, &other.base_url, |s| s).await;
    let bob = plain.user("bob", "viewer").await;
    let session = plain.session(&bob, "chat").await;
    let mut ws = plain.ws(&bob).await;
    ws.join(&session).await;
    say(&mut ws, &session, "hello").await;
    assistant_reply(&mut ws).await;
    assert_eq!(other.authorizations(), vec![None]);
}
