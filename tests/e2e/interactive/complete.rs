//! Completion: the host's own answers first (command names, options, choices, booleans,
//! the session's people, the caller's sessions), the plugin's `complete` only for
//! `completes` arguments — within its deadline and item cap — and never anything the
//! caller may not run, name or see.

use serde_json::json;

use super::{answer, complete, probe_server, values};
use crate::harness::Backend;
use crate::support::{joined, usable, Shared};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_answers_what_the_caller_may_use() {
    let server = probe_server(Backend::Sqlite, |s| s).await;
    let shared = Shared::create(&server, "olga", "mike", "completing").await;
    let (mut olga, _mike) = shared.join_both(&server).await;
    let session = shared.session.clone();
    let outsider = server.user("carl", "viewer").await;
    let foreign = server.session(&outsider, "carl's").await;
    let other = server.session(&shared.owner, "olga's other").await;

    // Command names: the viewer's, not the analyst command; they replace after the `/`.
    let names = complete(&mut olga, &session, "/probe-").await;
    assert_eq!(names["from"], 1);
    let got = values(&names);
    assert!(
        got.contains(&"probe-typed") && got.contains(&"probe-echo"),
        "{names}"
    );
    assert!(!got.contains(&"probe-analyst"), "{names}");
    assert!(names["items"][0]["label"].is_string(), "{names}");
    let none = complete(&mut olga, &session, "/probe-analyst ").await;
    assert_eq!(values(&none), Vec::<&str>::new());

    // Options, then a choice, a boolean; `from` is where the word being typed starts.
    let options = complete(&mut olga, &session, "/probe-typed --e").await;
    assert_eq!(values(&options), ["--env"]);
    assert_eq!(options["from"], 13);
    let env = complete(&mut olga, &session, "/probe-typed 3 ").await;
    assert_eq!(values(&env), ["staging", "prod"]);
    assert_eq!(env["from"], 15);
    let env = complete(&mut olga, &session, "/probe-typed --env=p").await;
    assert_eq!((values(&env), &env["from"]), (vec!["prod"], &json!(19)));
    let force = complete(&mut olga, &session, "/probe-typed 3 prod ").await;
    assert_eq!(values(&force), ["true", "false"]);
    // `from` counts characters, not bytes.
    let wide = complete(&mut olga, &session, "/probe-typed --note=é --e").await;
    assert_eq!(wide["from"], 22);

    // Users: the session's people only; sessions: the caller's own only.
    let people = complete(&mut olga, &session, "/probe-typed --who ").await;
    assert_eq!(values(&people), ["mike", "olga"]);
    assert_eq!(people["items"][0]["label"], "viewer");
    let none = complete(&mut olga, &session, "/probe-typed --who car").await;
    assert_eq!(values(&none), Vec::<&str>::new());
    let sessions = complete(&mut olga, &session, "/probe-typed --where ").await;
    let got = values(&sessions);
    assert!(
        got.contains(&other.as_str()) && got.contains(&session.as_str()),
        "{sessions}"
    );
    assert!(!got.contains(&foreign.as_str()), "{sessions}");
    let by_title = complete(&mut olga, &session, "/probe-typed --where other").await;
    assert_eq!(values(&by_title), [other.as_str()]);

    // The plugin's own suggestions (labels are the plugin's text, as it wrote it).
    let picked = complete(&mut olga, &session, "/probe-pick ab").await;
    assert_eq!(values(&picked), ["ab1", "ab2", "ab3"]);
    assert_eq!(picked["from"], 12);
    assert_eq!(
        picked["items"][0]["label"],
        r#"<img src=x onerror="window.__xss=1"> ab1 for olga"#
    );
    // At most 25 items; a plugin past the deadline adds nothing.
    let many = complete(&mut olga, &session, "/probe-pick many").await;
    assert_eq!(values(&many).len(), 25);
    let slow = complete(&mut olga, &session, "/probe-pick slow").await;
    assert_eq!(values(&slow), Vec::<&str>::new());
    // /help completes the names of commands the caller may run.
    let help = complete(&mut olga, &session, "/help probe-a").await;
    assert_eq!(values(&help), Vec::<&str>::new());
    let help = complete(&mut olga, &session, "/help probe-t").await;
    assert_eq!(values(&help), ["probe-typed"]);

    // Not a command, an untyped one, or past the last argument: nothing to suggest.
    for line in ["hello", "/probe-echo a", "/nosuch x"] {
        let got = complete(&mut olga, &session, line).await;
        assert_eq!(values(&got), Vec::<&str>::new(), "{line}");
    }
    // A line longer than a message may be is refused, not parsed.
    let long = format!("/probe-typed {}", "x".repeat(8000));
    let frame = json!({"type": "complete", "session_id": session, "line": long});
    let refused = answer(&mut olga, frame, "long").await;
    assert_eq!(refused["code"], "too_large", "{refused}");
    // A session the caller has not joined, or cannot see, is refused.
    let refused = complete(&mut olga, &foreign, "/pro").await;
    assert_eq!(refused["code"], "not_found", "{refused}");
    usable(&mut olga).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_is_rate_limited_per_user() {
    let server = probe_server(Backend::Sqlite, |s| {
        s.set("commands", "complete_burst", "3.0")
            .set("commands", "complete_rate_per_sec", "0.01")
    })
    .await;
    let ann = server.user("ann", "viewer").await;
    let (mut ws, session) = joined(&server, &ann, "completing fast").await;
    for _ in 0..3 {
        let ok = complete(&mut ws, &session, "/pro").await;
        assert_eq!(ok["type"], "completions", "{ok}");
    }
    let limited = complete(&mut ws, &session, "/pro").await;
    assert_eq!(limited["code"], "rate_limited", "{limited}");
    // Commands have their own budget, and the connection is fine.
    let reply = ws.command(&session, "/probe-echo still here").await;
    assert_eq!(reply["message"]["content"], "still here");
}
