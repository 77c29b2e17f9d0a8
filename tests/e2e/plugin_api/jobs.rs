//! Long commands: progress to the session, cancel by the invoker, refused for another
//! user, allowed for an admin; `/jobs` and `/cancel`; a spinning plugin and one waiting on
//! the network stop at once; a deadline is `plugin_timeout`; a shutdown cancels and says so.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{answers, frames_until, start_command, Reach};
use crate::harness::Ws;
use crate::support::{error_code, reply_text, usable, Shared};

fn progress_of<'a>(frames: &'a [Value], id: &str) -> Vec<&'a Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "command_progress" && f["invocation_id"] == id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_session_and_ends_done() {
    let reach = Reach::start(|s| s).await;
    let server = &reach.server;
    let shared = Shared::create(server, "pia", "max", "progress").await;
    let (mut owner, mut member) = shared.join_both(server).await;
    let id = start_command(&mut owner, &shared.session, "/reach-progress 4 150").await;
    let seen = frames_until(&mut member, |f| {
        f["type"] == "command_progress" && f["invocation_id"] == id && f["state"] == "done"
    })
    .await;
    let progress = progress_of(&seen, &id);
    assert!(progress.len() >= 3, "{seen:?}");
    let first = progress[0];
    assert_eq!(first["state"], "running");
    assert_eq!(first["command"], "reach-progress");
    assert_eq!(first["session_id"], shared.session.as_str());
    assert_eq!(first["text"], "step 1 of 4");
    assert_eq!(first["fraction"], 0.0);
    let reply = frames_until(&mut owner, |f| answers(f, &id)).await;
    assert_eq!(reply_text(reply.last().unwrap()), "4 steps done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_cancel_and_what_everyone_hears() {
    let reach = Reach::start(|s| s).await;
    let server = &reach.server;
    let shared = Shared::create(server, "ana", "bob", "cancel").await;
    let (mut owner, mut member) = shared.join_both(server).await;

    // The invoker cancels: it hears `cancelled`, the session a last `command_progress`.
    let id = start_command(&mut owner, &shared.session, "/reach-progress 200 100").await;
    frames_until(&mut member, |f| {
        f["type"] == "command_progress" && f["invocation_id"] == id
    })
    .await;
    owner
        .send(json!({"type": "cancel", "invocation_id": id}))
        .await;
    let heard = frames_until(&mut owner, |f| f["type"] == "error").await;
    let error = heard.last().unwrap();
    assert_eq!(error_code(error), "cancelled", "{error}");
    assert_eq!(error["message"], "/reach-progress: cancelled by ana");
    let last = frames_until(&mut member, |f| {
        f["type"] == "command_progress" && f["state"] != "running"
    })
    .await;
    assert_eq!(last.last().unwrap()["state"], "cancelled");

    // Another user may not; an admin anywhere may.
    let id = start_command(&mut owner, &shared.session, "/reach-progress 200 100").await;
    member
        .send(json!({"type": "cancel", "invocation_id": id, "id": "c1"}))
        .await;
    let refused = frames_until(&mut member, |f| f["type"] == "error")
        .await
        .pop()
        .unwrap();
    assert_eq!(error_code(&refused), "forbidden", "{refused}");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("only the user who ran /reach-progress"));
    member
        .send(json!({"type": "cancel", "invocation_id": "no-such-job", "id": "c2"}))
        .await;
    let nothing = frames_until(&mut member, |f| f["type"] == "error")
        .await
        .pop()
        .unwrap();
    assert_eq!(error_code(&nothing), "not_found", "{nothing}");
    let admin = server.admin().await;
    let mut admin_ws = server.ws(&admin).await;
    let ack = admin_ws
        .request(json!({"type": "cancel", "invocation_id": id}))
        .await;
    assert_eq!(ack["type"], "command_progress", "{ack}");
    assert_eq!(ack["state"], "cancelled");
    let heard = frames_until(&mut owner, |f| f["type"] == "error").await;
    assert_eq!(
        heard.last().unwrap()["message"],
        "/reach-progress: cancelled by admin"
    );
    usable(&mut owner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_and_cancel_are_commands_too() {
    let reach = Reach::start(|s| s).await;
    let server = &reach.server;
    let user = server.user("cy", "viewer").await;
    let (mut ws, session) = crate::support::joined(server, &user, "jobs").await;
    let id = start_command(&mut ws, &session, "/reach-progress 200 100").await;
    frames_until(&mut ws, |f| f["type"] == "command_progress").await;
    let list = ws.command(&session, "/jobs").await;
    let jobs = &list["message"]["metadata"]["data"]["jobs"];
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(jobs[0]["id"], id.as_str());
    assert_eq!(jobs[0]["command"], "reach-progress");
    assert_eq!(jobs[0]["user_name"], "cy");
    // Another viewer sees none of it.
    let other = server.user("di", "viewer").await;
    let (mut other_ws, other_session) = crate::support::joined(server, &other, "mine").await;
    let none = other_ws.command(&other_session, "/jobs").await;
    assert_eq!(reply_text(&none), "no commands are running");
    // The /cancel reply and the job's `cancelled` error come in either order.
    let cancel = start_command(&mut ws, &session, "/cancel").await;
    let (mut replied, mut stopped) = (false, false);
    while !(replied && stopped) {
        let frame = ws.recv().await;
        if frame["type"] == "message" && frame["message"]["metadata"]["reply_to"] == cancel.as_str()
        {
            assert_eq!(reply_text(&frame), format!("cancelling {id}"));
            replied = true;
        }
        if frame["type"] == "error" {
            assert_eq!(error_code(&frame), "cancelled", "{frame}");
            stopped = true;
        }
    }
    let nothing = ws.command(&session, "/cancel").await;
    assert_eq!(error_code(&nothing), "usage", "{nothing}");
}

/// Run `line` as a new user, let it get going, cancel it: the invoker must hear
/// `cancelled` within 2 s. Returns the connection.
async fn cancelled_at_once(server: &crate::harness::Server, name: &str, line: &str) -> Ws {
    let user = server.user(name, "viewer").await;
    let (mut ws, session) = crate::support::joined(server, &user, "stop").await;
    let id = start_command(&mut ws, &session, line).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let asked = Instant::now();
    ws.send(json!({"type": "cancel", "invocation_id": id}))
        .await;
    let heard = frames_until(&mut ws, |f| f["type"] == "error").await;
    assert_eq!(error_code(heard.last().unwrap()), "cancelled", "{line}");
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "{line}: {took:?}");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_call_is_cancelled_at_once() {
    let reach = Reach::start(|s| s).await;
    let mut ws = cancelled_at_once(&reach.server, "eve", "/reach-spin").await;
    usable(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_on_the_network_is_cancelled_at_once() {
    let reach = Reach::start(|s| s).await;
    // The world's slow answer takes an hour; raise the request timeout (1 s) past the
    // 2 s the cancel is given, so only the cancel can end the call in time.
    let server = &reach.server;
    server.edit_config(|c| c.replace("timeout_ms = 1000 }", "timeout_ms = 15000 }"));
    let admin = server.admin().await;
    let (status, _) = server
        .post("/admin/plugins/reload", &admin.token, json!({}))
        .await;
    assert!(status.is_success());
    let line = format!("/reach-get {}", reach.world.url("/api/slow"));
    cancelled_at_once(server, "fay", &line).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_deadline_is_a_timeout() {
    let reach = Reach::start(|s| s.set("plugins.reach", "timeout_ms", "1000")).await;
    let user = reach.server.user("gus", "viewer").await;
    let (mut ws, session) = crate::support::joined(&reach.server, &user, "late").await;
    let frame = ws.command(&session, "/reach-progress 100 100").await;
    assert_eq!(error_code(&frame), "plugin_timeout", "{frame}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_above_the_maximum_is_refused_by_config() {
    let mut reach = Reach::start(|s| s).await;
    let check = reach.server.cli(&["config", "check"], None);
    assert!(check.status.success());
    reach
        .server
        .edit_config(|c| c.replace("timeout_ms = 20000", "timeout_ms = 3600000"));
    let check = reach.server.cli(&["config", "check"], None);
    assert!(!check.status.success());
    let text = String::from_utf8_lossy(&check.stderr);
    assert!(
        text.contains("plugins.reach.timeout_ms is longer than commands.max_timeout (15m)"),
        "{text}"
    );
    reach.server.terminate(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_cancels_running_commands_and_says_so() {
    let mut reach = Reach::start(|s| s).await;
    let user = reach.server.user("hana", "viewer").await;
    let (mut ws, session) = crate::support::joined(&reach.server, &user, "bye").await;
    let id = start_command(&mut ws, &session, "/reach-progress 500 100").await;
    frames_until(&mut ws, |f| f["type"] == "command_progress").await;
    reach.server.signal("TERM");
    let (frames, _closed) = ws
        .frames_until_close(Duration::from_secs(10))
        .await
        .expect("the server closes the socket");
    let error = frames
        .iter()
        .find(|f| f["type"] == "error")
        .unwrap_or_else(|| panic!("no cancel before close: {frames:?}"));
    assert_eq!(error_code(error), "cancelled");
    assert_eq!(
        error["message"],
        "/reach-progress: the server is shutting down"
    );
    assert!(frames.iter().any(|f| f["type"] == "command_progress"
        && f["invocation_id"] == id
        && f["state"] == "cancelled"));
    let status = reach.server.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_cannot_fill_every_job_slot() {
    let reach = Reach::start(|s| s.set("commands", "max_running_per_user", "2")).await;
    let server = &reach.server;
    let user = server.user("ivy", "viewer").await;
    let (mut ws, session) = crate::support::joined(server, &user, "greedy").await;
    let first = start_command(&mut ws, &session, "/reach-progress 500 100").await;
    start_command(&mut ws, &session, "/reach-progress 500 100").await;
    let refused = ws.command(&session, "/reach-progress 1 1").await;
    assert_eq!(error_code(&refused), "rate_limited", "{refused}");
    assert_eq!(
        refused["message"],
        "you have 2 commands running; wait for one to finish, or /cancel one"
    );
    // At the limit, /jobs and /cancel still run: they are how to get out of it.
    let listed = ws.command(&session, "/jobs").await;
    assert_eq!(
        listed["message"]["metadata"]["data"]["jobs"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{listed}"
    );
    // Someone else is not affected.
    let other = server.user("jo", "viewer").await;
    let (mut other_ws, other_session) = crate::support::joined(server, &other, "fine").await;
    let done = other_ws
        .command(&other_session, "/reach-progress 1 1")
        .await;
    assert_eq!(reply_text(&done), "1 steps done");
    // One cancelled, one place free again.
    ws.send(json!({"type": "cancel", "invocation_id": first}))
        .await;
    frames_until(&mut ws, |f| {
        f["type"] == "error" && f["code"] == "cancelled"
    })
    .await;
    let done = ws.command(&session, "/reach-progress 1 1").await;
    assert_eq!(reply_text(&done), "1 steps done");
}
