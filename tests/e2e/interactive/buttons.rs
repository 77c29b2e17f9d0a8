//! Buttons: a reply's actions are stored in its metadata; a press is checked again in full
//! at press time, runs `on-action`, and posts the result as a new message. A `once` button
//! runs exactly once however many press it at the same instant.

use serde_json::{json, Value};

use super::{press, probe_server};
use crate::harness::{Backend, Server, Ws};
use crate::on_both_backends;
use crate::support::{error_code, history, joined, usable, Shared};

on_both_backends!(
    buttons_are_stored_and_pressed_with_every_check,
    a_once_button_runs_exactly_once_under_concurrent_presses,
);

/// `/probe-buttons LABEL` in `session`; returns the reply's message.
async fn buttons(ws: &mut Ws, session: &str, label: &str) -> Value {
    let reply = ws
        .command(session, &format!("/probe-buttons {label}"))
        .await;
    assert_eq!(reply["type"], "message", "{reply}");
    reply["message"].clone()
}

fn action<'a>(message: &'a Value, id: &str) -> &'a Value {
    message["metadata"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no action {id} in {message}"))
}

async fn buttons_are_stored_and_pressed_with_every_check(backend: Backend) {
    let server = probe_server(backend, |s| s).await;
    let shared = Shared::create(&server, "olga", "mike", "buttons").await;
    let (mut olga, mut mike) = shared.join_both(&server).await;
    let session = shared.session.clone();

    let message = buttons(&mut olga, &session, "Ship <b>it</b>").await;
    let id = message["id"].as_str().unwrap().to_string();
    assert_eq!(
        action(&message, "go"),
        &json!({"id": "go", "label": "Ship <b>it</b>", "style": "primary",
                "min_role": "viewer", "confirm": null, "once": false})
    );
    assert_eq!(action(&message, "admin")["min_role"], "admin");
    assert_eq!(
        action(&message, "sure")["confirm"],
        "Really Ship <b>it</b>?"
    );
    // The member sees the same buttons, live and in history.
    let live = mike.recv_type("message").await;
    let live = if live["message"]["id"] == id.as_str() {
        live
    } else {
        mike.recv_type("message").await
    };
    assert_eq!(
        live["message"]["metadata"]["actions"],
        message["metadata"]["actions"]
    );
    let stored = history(&server, &session, &shared.owner.token).await;
    let stored = stored.iter().find(|m| m["id"] == id.as_str()).unwrap();
    assert_eq!(
        stored["metadata"]["actions"],
        message["metadata"]["actions"]
    );

    // A member presses: the result is a new command message, for everyone.
    let result = press(&mut mike, &shared.member, &session, &id, "go").await;
    assert_eq!(result["type"], "message", "{result}");
    let meta = &result["message"]["metadata"];
    assert_eq!(result["message"]["content"], "go pressed by mike");
    assert_eq!(meta["reply_to"], id.as_str());
    assert_eq!(meta["action"], "go");
    assert_eq!(meta["pressed_by"], shared.member.id.as_str());
    assert_eq!(meta["pressed_by_name"], "mike");
    assert_eq!(meta["data"]["data"], json!({"label": "Ship <b>it</b>"}));
    assert_eq!(meta["data"]["message_id"], id.as_str());
    let seen = olga.recv_type("message").await;
    let seen = if seen["message"]["metadata"]["action"] == "go" {
        seen
    } else {
        olga.recv_type("message").await
    };
    assert_eq!(seen["message"]["id"], result["message"]["id"]);

    // Refusals: too low a role, no such button, no such message, a plugin failure.
    let forbidden = press(&mut mike, &shared.member, &session, &id, "admin").await;
    assert_eq!(
        (
            error_code(&forbidden),
            forbidden["message"].as_str().unwrap()
        ),
        ("forbidden", "this button needs the admin role")
    );
    for (message_id, action_id) in [(id.as_str(), "nope"), ("no-such-message", "go")] {
        let missing = press(&mut mike, &shared.member, &session, message_id, action_id).await;
        assert_eq!(error_code(&missing), "not_found", "{missing}");
    }
    // The invocation message is the user's, not a reply with buttons.
    let invocation = message["metadata"]["reply_to"]
        .as_str()
        .unwrap()
        .to_string();
    let not_a_reply = press(&mut mike, &shared.member, &session, &invocation, "go").await;
    assert_eq!(error_code(&not_a_reply), "not_found", "{not_a_reply}");
    let failed = press(&mut mike, &shared.member, &session, &id, "fail").await;
    assert_eq!(error_code(&failed), "plugin_failed", "{failed}");

    // A member must join the session on the connection that presses (where the result
    // is broadcast).
    let mut unjoined = server.ws(&shared.member).await;
    let not_joined = press(&mut unjoined, &shared.member, &session, &id, "go").await;
    assert_eq!(not_joined["code"], "bad_request", "{not_joined}");
    assert_eq!(
        not_joined["message"],
        "join the session before posting to it"
    );
    // An outsider cannot press, nor learn that the message exists.
    let carl = server.user("carl", "admin").await;
    let (mut outsider, _) = joined(&server, &carl, "carl's").await;
    let refused = press(&mut outsider, &carl, &session, &id, "go").await;
    assert_eq!(error_code(&refused), "not_found", "{refused}");
    // A button of one session pressed in another is not there.
    let carl_session = server.session(&carl, "carl's second").await;
    outsider.join(&carl_session).await;
    let elsewhere = press(&mut outsider, &carl, &carl_session, &id, "go").await;
    assert_eq!(error_code(&elsewhere), "not_found", "{elsewhere}");

    // A button that asks first: confirm_required, then the result on accept.
    let asked = press(&mut mike, &shared.member, &session, &id, "sure").await;
    assert_eq!(asked["type"], "confirm_required", "{asked}");
    assert_eq!(asked["prompt"], "Really Ship <b>it</b>?");
    mike.send(
        json!({"type": "confirm", "confirmation_id": asked["confirmation_id"],
                     "accept": true, "id": "yes"}),
    )
    .await;
    let done = loop {
        let frame = mike.recv_type("message").await;
        if frame["message"]["metadata"]["action"] == "sure" {
            break frame;
        }
    };
    assert_eq!(done["message"]["content"], "sure pressed by mike", "{done}");

    // An ephemeral reply carries no buttons: nothing stores them.
    let ephemeral = olga.command(&session, "/probe-buttons ephemeral").await;
    assert_eq!(ephemeral["message"]["metadata"]["ephemeral"], true);
    assert!(
        ephemeral["message"]["metadata"].get("actions").is_none(),
        "{ephemeral}"
    );

    // After the session ends, its buttons do nothing.
    let (status, _) = server
        .call(
            reqwest::Method::DELETE,
            &format!("/chat/sessions/{session}"),
            Some(&shared.owner.token),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    let ended = press(&mut mike, &shared.member, &session, &id, "go").await;
    assert_eq!(error_code(&ended), "bad_request", "{ended}");
    assert_eq!(ended["message"], "the session has ended");
    usable(&mut mike).await;
}

async fn a_once_button_runs_exactly_once_under_concurrent_presses(backend: Backend) {
    let server = probe_server(backend, |s| s).await;
    let shared = Shared::create(&server, "olga", "mike", "once").await;
    let (mut olga, mut mike) = shared.join_both(&server).await;
    let session = shared.session.clone();
    for round in 0..3 {
        let message = buttons(&mut olga, &session, &format!("round {round}")).await;
        let id = message["id"].as_str().unwrap().to_string();
        assert_eq!(action(&message, "once")["once"], true);
        let (a, b) = tokio::join!(
            press(&mut olga, &shared.owner, &session, &id, "once"),
            press(&mut mike, &shared.member, &session, &id, "once"),
        );
        let ran: Vec<&Value> = [&a, &b]
            .into_iter()
            .filter(|f| f["type"] == "message")
            .collect();
        let refused: Vec<&Value> = [&a, &b]
            .into_iter()
            .filter(|f| f["type"] == "error")
            .collect();
        assert_eq!(
            (ran.len(), refused.len()),
            (1, 1),
            "round {round}: {a} / {b}"
        );
        assert_eq!(refused[0]["message"], "this button was already used");
        // Everyone who reads the message learns it was used.
        let stored = history(&server, &session, &shared.owner.token).await;
        let stored = stored.iter().find(|m| m["id"] == id.as_str()).unwrap();
        assert_eq!(action(stored, "once")["used"], true, "{stored}");
        assert!(action(stored, "go").get("used").is_none());
        let results = stored_results(&server, &session, &shared.owner.token, &id).await;
        assert_eq!(results, 1, "round {round}");
        // The loser's socket still has the winner's broadcast to read.
        drain_until_quiet(&mut olga).await;
        drain_until_quiet(&mut mike).await;
    }
    // A rejoin after the fact recovers the used flag too (`joined.missed`).
    let mut late = server.ws(&shared.member).await;
    let joined = late
        .request(json!({"type": "join", "session_id": session, "since_seq": 0}))
        .await;
    let used = joined["missed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["metadata"]["actions"].is_array())
        .all(|m| action(m, "once")["used"] == true);
    assert!(used, "{joined}");
    // A third press, later, is refused at once.
    let message = history(&server, &session, &shared.owner.token).await;
    let first = message
        .iter()
        .find(|m| m["metadata"]["actions"].is_array())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let again = press(&mut late, &shared.member, &session, &first, "once").await;
    assert_eq!(again["message"], "this button was already used");
}

/// Stored messages that are results of a press on `message`.
async fn stored_results(server: &Server, session: &str, token: &str, message: &str) -> usize {
    history(server, session, token)
        .await
        .iter()
        .filter(|m| m["metadata"]["reply_to"] == message && m["metadata"]["action"] == "once")
        .count()
}

async fn drain_until_quiet(ws: &mut Ws) {
    while ws
        .recv_within(std::time::Duration::from_millis(300))
        .await
        .is_some()
    {}
}

/// Two nodes sharing PostgreSQL: the owner presses on one, the member on the other, at the
/// same instant — the database's claim lets exactly one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_once_button_runs_once_across_nodes() {
    let nodes = crate::harness::Setup::new(Backend::Postgres)
        .set("commands", "rate_per_sec", "1000.0")
        .set("commands", "rate_burst", "1000.0")
        .plugin("probe", &[("grants", r#"["kv", "config"]"#)])
        .start_cluster(2, "redis://127.0.0.1:6379")
        .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let shared = Shared::across(a, b, "olga", "mike", "once, two nodes").await;
    let (mut olga, mut mike) = shared.join_both_across(a, b).await;
    let session = shared.session.clone();
    for round in 0..3 {
        let message = buttons(&mut olga, &session, &format!("node round {round}")).await;
        let id = message["id"].as_str().unwrap().to_string();
        let (x, y) = tokio::join!(
            press(&mut olga, &shared.owner, &session, &id, "once"),
            press(&mut mike, &shared.member, &session, &id, "once"),
        );
        let ran = [&x, &y].iter().filter(|f| f["type"] == "message").count();
        assert_eq!(ran, 1, "round {round}: {x} / {y}");
        assert_eq!(
            stored_results(a, &session, &shared.owner.token, &id).await,
            1,
            "round {round}"
        );
        drain_until_quiet(&mut olga).await;
        drain_until_quiet(&mut mike).await;
    }
}

/// A press is a running call like a command: it counts against the presser's
/// `commands.max_running_per_user`, and one refused for it claims no `once` button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presses_count_as_running_commands() {
    let server = probe_server(Backend::Sqlite, |s| {
        s.set("commands", "max_running_per_user", "1")
    })
    .await;
    let ann = server.user("ann", "viewer").await;
    let (mut ws, session) = joined(&server, &ann, "busy").await;
    let message = buttons(&mut ws, &session, "busy").await;
    let id = message["id"].as_str().unwrap().to_string();
    // One command running: ann's one place is taken.
    ws.send(
        json!({"type": "message", "session_id": session, "content": "/probe-slow 1500",
                   "id": "slow"}),
    )
    .await;
    loop {
        let frame = ws.recv().await;
        if frame["id"] == "slow" {
            assert_eq!(frame["type"], "ack", "{frame}");
            break;
        }
    }
    for action in ["go", "once"] {
        let refused = press(&mut ws, &ann, &session, &id, action).await;
        assert_eq!(error_code(&refused), "rate_limited", "{action}: {refused}");
    }
    // Once the command is done, the `once` button is still unused and runs.
    loop {
        let frame = ws.recv().await;
        if frame["type"] == "message" && frame["message"]["content"] == "slept 1500 ms" {
            break;
        }
    }
    let ran = press(&mut ws, &ann, &session, &id, "once").await;
    assert_eq!(ran["message"]["content"], "once pressed by ann", "{ran}");
}
