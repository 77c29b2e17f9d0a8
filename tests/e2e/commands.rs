//! Commands as wasm plugins: dispatch, roles, replies, the sandbox, and plugins that are
//! refused or misbehave. The test plugins live in plugins/testing and are built once by
//! host/build.rs.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Backend, Server, Setup};
use crate::on_both_backends;
use crate::support::{error_code, history, joined, reply_text, Shared};

on_both_backends!(
    help_and_get_commands_agree_per_role,
    replies_are_stored_and_broadcast,
    a_command_acting_only_through_its_reply_is_stored_with_it,
    ephemeral_replies_reach_only_the_invoker,
    arguments_aliases_and_typos,
    config_can_raise_a_role,
    hostile_plugins_are_contained,
    an_infinite_loop_times_out_while_others_are_served,
    filesystem_is_only_what_config_preopens,
    kv_is_private_and_persistent,
    plugins_are_refused_with_reasons,
    two_plugins_claiming_a_name_get_neither,
    plugin_output_and_settings,
    compiled_plugins_are_cached_across_restarts,
);

struct Fixture {
    server: Server,
    _logs: tempfile::TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

/// A server with the test plugins and a logs directory that has a symlink pointing out.
async fn plugin_server(backend: Backend) -> Fixture {
    plugin_setup(backend, |s| s).await
}

async fn plugin_setup(backend: Backend, extra: impl FnOnce(Setup) -> Setup) -> Fixture {
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(
        logs.path().join("app.log"),
        "2026-11-27T00:00:00Z INFO hello from the log\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", logs.path().join("escape")).unwrap();
    let dirs = format!("{{ \"/logs\" = {:?} }}", logs.path().display().to_string());
    let setup = Setup::new(backend)
        .plugin(
            "probe",
            &[
                ("grants", r#"["kv", "config"]"#),
                ("settings", r#"{ greeting = "hi", answer = 42 }"#),
                ("dirs", &dirs),
            ],
        )
        .plugin(
            "hostile",
            &[("grants", r#"["kv"]"#), ("timeout_ms", "1000")],
        )
        .plugin("greedy", &[("grants", r#"["kv"]"#)])
        .plugin("oldapi", &[])
        .set("commands", "rate_per_sec", "1000.0")
        .set("commands", "rate_burst", "1000.0");
    Fixture {
        server: extra(setup).start().await,
        _logs: logs,
    }
}

fn names(commands: &Value) -> Vec<String> {
    commands
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

async fn help_and_get_commands_agree_per_role(backend: Backend) {
    let server = plugin_server(backend).await;
    for (user, role) in [("vera", "viewer"), ("anna", "analyst")] {
        let user = server.user(user, role).await;
        let (_, listed) = server.get("/commands", &user.token).await;
        let listed = names(&listed["commands"]);
        let (mut ws, session) = joined(&server, &user, "commands").await;
        let reply = ws.command(&session, "/help").await;
        let shown = names(&reply["message"]["metadata"]["data"]["commands"]);
        assert_eq!(
            listed, shown,
            "/help and GET /commands must agree for {role}"
        );
        assert!(shown.contains(&"help".to_string()) && shown.contains(&"probe-echo".to_string()));
        assert_eq!(
            shown.contains(&"probe-analyst".to_string()),
            role == "analyst",
            "{role}: {shown:?}"
        );
        let body = reply_text(&reply);
        assert!(
            body.contains("/probe-echo [args…]"),
            "usage lines in the body: {body}"
        );
        assert_eq!(body.contains("probe-analyst"), role == "analyst");
        // Refused plugins contribute nothing.
        assert!(!shown.iter().any(|n| n == "greedy" || n == "oldapi"));

        let detail = ws.command(&session, "/help probe-echo").await;
        assert!(reply_text(&detail).contains("Usage: `/probe-echo [args…]`"));
        assert_eq!(
            detail["message"]["metadata"]["data"]["command"]["aliases"],
            json!(["pe"])
        );
        // A command the caller may not run is not explained to them.
        let hidden = ws.command(&session, "/help probe-analyst").await;
        if role == "viewer" {
            assert_eq!(error_code(&hidden), "usage");
        } else {
            assert!(reply_text(&hidden).contains("Role: analyst"));
        }
    }
}

/// Transactions of the message writer so far: (how many, how many stored one message).
async fn batches(server: &Server) -> (f64, f64) {
    let text = crate::metrics::scrape(server).await;
    let of = |series: &str| crate::metrics::value(&text, series).unwrap_or(0.0);
    (
        of("slashd_store_batch_messages_count"),
        of(r#"slashd_store_batch_messages_bucket{le="1.0"}"#),
    )
}

/// `/help` (granted only `commands`) runs before its invocation is stored, and both go in
/// one transaction; `/probe-echo` (granted `kv`) runs only after its invocation is
/// committed: two transactions. One client, one command at a time, so nothing else shares
/// a batch.
async fn a_command_acting_only_through_its_reply_is_stored_with_it(backend: Backend) {
    // Room for a debug build's slower host code in the first slice (release: ~30 µs).
    let server = plugin_setup(backend, |s| {
        s.set("commands", "first_slice_budget", r#""100ms""#)
    })
    .await;
    let user = server.user("tess", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "together").await;
    ws.command(&session, "/help").await; // a cold first call may not finish in its slice

    let (before, single_before) = batches(&server).await;
    for i in 0..5 {
        let id = format!("h{i}");
        ws.send(json!({"type": "message", "session_id": session, "content": "/help", "id": id}))
            .await;
        let ack = ws.recv().await;
        assert_eq!(
            (ack["type"].as_str(), ack["id"].as_str()),
            (Some("ack"), Some(id.as_str()))
        );
        let invocation = ws.recv_type("message").await;
        assert_eq!(invocation["message"]["id"], ack["message_id"]);
        let reply = ws.recv_type("message").await;
        assert_eq!(reply["message"]["role"], "command");
        assert_eq!(reply["message"]["metadata"]["reply_to"], ack["message_id"]);
        assert_eq!(reply["message"]["seq"], ack["seq"].as_i64().unwrap() + 1);
    }
    let (after, single_after) = batches(&server).await;
    let (written, single) = (after - before, single_after - single_before);
    // Each /help is one transaction of two, or — a call that outlived its first slice — two
    // of one; most are the first.
    assert!(
        written < 10.0 && single < written,
        "{written} transactions, {single} of one message, for 5 /help"
    );
    assert_eq!(
        written - single,
        (10.0 - single) / 2.0,
        "{written} {single}"
    );

    let (before, single_before) = batches(&server).await;
    for _ in 0..3 {
        let reply = ws.command(&session, "/probe-echo x").await;
        assert_eq!(reply["message"]["content"], "x");
    }
    let (after, single_after) = batches(&server).await;
    assert_eq!(
        (after - before, single_after - single_before),
        (6.0, 6.0),
        "a plugin granted kv runs after its invocation is committed"
    );

    // The history holds both, in order, with no gap.
    let stored = history(&server, &session, &user.token).await;
    let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(seqs.len(), 18);
}

async fn replies_are_stored_and_broadcast(backend: Backend) {
    let server = plugin_server(backend).await;
    let shared = Shared::create(&server, "olga", "mike", "shared").await;
    let (mut a, mut b) = shared.join_both(&server).await;
    let Shared { owner, session, .. } = shared;

    a.send(json!({"type": "message", "session_id": session, "content": "/probe-echo hi there", "id": 7})).await;
    let ack = a.recv().await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["id"], 7);
    let invocation = a.recv().await;
    assert_eq!(invocation["message"]["role"], "user");
    assert_eq!(invocation["message"]["content"], "/probe-echo hi there");
    assert_eq!(invocation["message"]["id"], ack["message_id"]);
    let reply = a.recv().await;
    assert_eq!(reply["type"], "message");
    let message = &reply["message"];
    assert_eq!(message["role"], "command");
    assert_eq!(message["content"], "hi there");
    assert_eq!(message["seq"], ack["seq"].as_i64().unwrap() + 1);
    let meta = &message["metadata"];
    assert_eq!(meta["command"], "probe-echo");
    assert_eq!(meta["plugin"], "probe");
    assert_eq!(meta["status"], "ok");
    assert_eq!(meta["format"], "plain");
    assert_eq!(meta["reply_to"], ack["message_id"]);
    assert!(meta["duration_ms"].as_i64().unwrap() >= 0);
    assert_eq!(meta["data"]["caller"]["id"], owner.id.as_str());
    assert_eq!(
        meta["data"]["session"],
        json!({"id": session, "title": "shared"})
    );

    // The member sees the invocation and the reply, in order.
    let seen_invocation = b.recv_type("message").await;
    assert_eq!(
        seen_invocation["message"]["content"],
        "/probe-echo hi there"
    );
    let seen_reply = b.recv_type("message").await;
    assert_eq!(seen_reply["message"], *message);

    let stored = history(&server, &session, &owner.token).await;
    let roles: Vec<&str> = stored.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "command"]);
    assert_eq!(stored[1], *message);

    // A failing plugin answers only the invoker, with the frame id.
    let failed = a.command(&session, "/probe-fail").await;
    assert_eq!(error_code(&failed), "plugin_failed");
    assert_eq!(failed["id"], "/probe-fail");
    assert!(failed["message"]
        .as_str()
        .unwrap()
        .contains("failed on purpose"));
    // The audit row is written once the answer is out: wait for it (bounded).
    let sql = "SELECT COUNT(*) FROM command_audit WHERE decision = 'allowed'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.count(sql).await < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(server.count(sql).await, 2);
}

async fn ephemeral_replies_reach_only_the_invoker(backend: Backend) {
    let server = plugin_server(backend).await;
    let shared = Shared::create(&server, "olga", "mike", "shared").await;
    let (mut a, mut b) = shared.join_both(&server).await;
    let Shared { owner, session, .. } = shared;

    let reply = a.command(&session, "/probe-ephemeral").await;
    assert_eq!(reply_text(&reply), "only you can see this");
    assert_eq!(reply["message"]["seq"], Value::Null);
    assert_eq!(reply["message"]["metadata"]["ephemeral"], true);
    // The member sees the invocation, then nothing more.
    assert_eq!(
        b.recv_type("message").await["message"]["content"],
        "/probe-ephemeral"
    );
    b.send(json!({"type": "ping"})).await;
    assert_eq!(
        b.recv().await["type"],
        "pong",
        "no reply reached the member before the pong"
    );
    assert_eq!(
        history(&server, &session, &owner.token).await.len(),
        1,
        "the ephemeral reply is not stored"
    );
}

async fn arguments_aliases_and_typos(backend: Backend) {
    let server = plugin_server(backend).await;
    let user = server.user("vera", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "commands").await;

    let reply = ws
        .command(
            &session,
            r#"/probe-echo one "two words" 'three' four\ five"#,
        )
        .await;
    let data = &reply["message"]["metadata"]["data"];
    assert_eq!(
        data["args"],
        json!(["one", "two words", "three", "four five"])
    );
    assert_eq!(data["raw_args"], r#"one "two words" 'three' four\ five"#);
    // An alias runs the canonical command.
    let reply = ws.command(&session, "/pe x").await;
    assert_eq!(
        reply["message"]["metadata"]["data"]["command"],
        "probe-echo"
    );
    assert_eq!(reply["message"]["metadata"]["command"], "probe-echo");

    let before = server.count("SELECT COUNT(*) FROM messages").await;
    let bad = ws.command(&session, r#"/probe-echo "unbalanced"#).await;
    assert_eq!(error_code(&bad), "usage");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("/probe-echo [args…]"),
        "{bad}"
    );
    let typo = ws.command(&session, "/hepl").await;
    assert_eq!(error_code(&typo), "unknown_command");
    assert!(
        typo["message"]
            .as_str()
            .unwrap()
            .contains("did you mean /help?"),
        "{typo}"
    );
    let far = ws.command(&session, "/deploy-everything").await;
    assert_eq!(error_code(&far), "unknown_command");
    assert!(!far["message"].as_str().unwrap().contains("did you mean"));
    // Hidden commands are not suggested to those who may not run them.
    let hidden = ws.command(&session, "/probe-analyts").await;
    assert!(
        !hidden["message"]
            .as_str()
            .unwrap()
            .contains("probe-analyst"),
        "{hidden}"
    );
    let forbidden = ws.command(&session, "/probe-analyst").await;
    assert_eq!(error_code(&forbidden), "forbidden");
    assert_eq!(forbidden["id"], "/probe-analyst");
    // Refused commands are not stored or broadcast.
    assert_eq!(server.count("SELECT COUNT(*) FROM messages").await, before);
    let denied = server
        .count("SELECT COUNT(*) FROM command_audit WHERE decision = 'denied' AND command = 'probe-analyst' AND outcome = 'forbidden'")
        .await;
    assert_eq!(denied, 1);
    // The connection is healthy after all that.
    assert_eq!(ws.request(json!({"type": "ping"})).await["type"], "pong");
}

async fn config_can_raise_a_role(backend: Backend) {
    let server = plugin_setup(backend, |s| s.set("plugins.probe", "min_role", "\"admin\"")).await;
    let anna = server.user("anna", "analyst").await;
    let admin = server.admin().await;
    let (_, listed) = server.get("/commands", &anna.token).await;
    let listed = names(&listed["commands"]);
    assert!(!listed.iter().any(|n| n.starts_with("probe")), "{listed:?}");
    let (mut ws, session) = joined(&server, &anna, "commands").await;
    assert_eq!(
        error_code(&ws.command(&session, "/probe-echo x").await),
        "forbidden"
    );
    let help = ws.command(&session, "/help").await;
    assert!(!reply_text(&help).contains("probe"));

    let (_, listed) = server.get("/commands", &admin.token).await;
    let echo = listed["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "probe-echo")
        .unwrap()
        .clone();
    assert_eq!(echo["min_role"], "admin");
    let (mut ws, session) = joined(&server, &admin, "commands").await;
    assert_eq!(
        reply_text(&ws.command(&session, "/probe-echo ok").await),
        "ok"
    );
}

async fn hostile_plugins_are_contained(backend: Backend) {
    let server = plugin_server(backend).await;
    let user = server.user("eve", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "commands").await;
    for (line, expect) in [
        ("/membomb", "plugin_failed"),
        ("/bigreply 100", "plugin_failed"),
        ("/bigreply 2", "plugin_failed"),
        ("/panic", "plugin_failed"),
        ("/recurse", "plugin_failed"),
        ("/spin-host", "plugin_failed"),
    ] {
        let answer = ws.command(&session, line).await;
        assert_eq!(error_code(&answer), expect, "{line}: {answer}");
    }
    let reply_limit = ws.command(&session, "/bigreply 2").await;
    assert!(
        reply_limit["message"].as_str().unwrap().contains("limit"),
        "{reply_limit}"
    );
    let quota = ws.command(&session, "/spin-host").await;
    assert!(
        quota["message"].as_str().unwrap().contains("quota"),
        "{quota}"
    );
    let huge = ws.command(&session, "/hugekv").await;
    assert!(
        reply_text(&huge).starts_with("refused: kv values must be at most"),
        "{huge}"
    );
    // Still serving, sandbox and server alike.
    assert_eq!(
        reply_text(&ws.command(&session, "/probe-echo alive").await),
        "alive"
    );
    let (status, _) = server.get("/healthz", &user.token).await;
    assert_eq!(status, StatusCode::OK);
}

async fn an_infinite_loop_times_out_while_others_are_served(backend: Backend) {
    let server = plugin_server(backend).await;
    let eve = server.user("eve", "viewer").await;
    let bob = server.user("bob", "viewer").await;
    let (mut spinner, s1) = joined(&server, &eve, "commands").await;
    let (mut other, s2) = joined(&server, &bob, "commands").await;

    let started = Instant::now();
    spinner
        .send(json!({"type": "message", "session_id": s1, "content": "/spin", "id": "spin"}))
        .await;
    assert_eq!(spinner.recv().await["type"], "ack");
    // While it spins, another user's commands keep answering.
    for i in 0..3 {
        let reply = other.command(&s2, &format!("/probe-echo during {i}")).await;
        assert_eq!(reply_text(&reply), format!("during {i}"));
    }
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "answers came while /spin was still running"
    );
    let answer = spinner.recv_type("error").await;
    let elapsed = started.elapsed();
    assert_eq!(answer["code"], "plugin_timeout", "{answer}");
    assert_eq!(answer["id"], "spin");
    // Deadline 1000 ms; the issue allows 250 ms on top.
    assert!(
        elapsed < Duration::from_millis(1250),
        "timed out after {elapsed:?}"
    );
    assert_eq!(
        reply_text(&spinner.command(&s1, "/probe-echo after").await),
        "after"
    );
}

async fn filesystem_is_only_what_config_preopens(backend: Backend) {
    let server = plugin_server(backend).await;
    let user = server.user("fred", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "commands").await;
    let read = ws.command(&session, "/probe-fs /logs/app.log").await;
    assert_eq!(
        reply_text(&read),
        "read: 2026-11-27T00:00:00Z INFO hello from the log\n"
    );
    for path in [
        "/etc/passwd",
        "/logs/../../etc/passwd",
        "/logs/../etc/passwd",
        "/logs/escape",
        "../etc/passwd",
    ] {
        let answer = ws.command(&session, &format!("/probe-fs {path}")).await;
        let text = reply_text(&answer);
        assert!(text.starts_with("denied:"), "{path}: {text}");
        assert!(!text.contains("root:"), "{path} leaked: {text}");
    }
    let write = ws.command(&session, "/probe-write /logs/new.txt").await;
    assert!(
        reply_text(&write).starts_with("denied:"),
        "read-only mount: {write}"
    );
}

async fn kv_is_private_and_persistent(backend: Backend) {
    let mut fixture = plugin_server(backend).await;
    let user = fixture.user("kim", "viewer").await;
    {
        let (mut ws, session) = joined(&fixture, &user, "commands").await;
        assert_eq!(
            reply_text(&ws.command(&session, "/probe-kvset secret s3cr3t").await),
            "stored"
        );
        assert_eq!(
            reply_text(&ws.command(&session, "/probe-kvget secret").await),
            "value: s3cr3t"
        );
        // Another plugin asking for the same key sees its own (empty) namespace.
        assert_eq!(
            reply_text(&ws.command(&session, "/steal secret").await),
            "none"
        );
    }
    assert_eq!(
        fixture
            .count("SELECT COUNT(*) FROM plugin_kv WHERE plugin = 'probe'")
            .await,
        1
    );
    fixture.server.kill();
    fixture.server.spawn().await;
    let user = fixture.login("kim", crate::harness::PASSWORD).await;
    let (mut ws, session) = joined(&fixture, &user, "commands").await;
    assert_eq!(
        reply_text(&ws.command(&session, "/probe-kvget secret").await),
        "value: s3cr3t"
    );
}

async fn plugins_are_refused_with_reasons(backend: Backend) {
    let fake_native = tempfile::tempdir().unwrap();
    let so = fake_native.path().join("libfast.so");
    std::fs::write(&so, b"\x7fELF not really").unwrap();
    let so_path = format!("{:?}", so.display().to_string());
    let server = plugin_setup(backend, |s| {
        s.set("plugins.fast", "path", &so_path)
            .set(
                "plugins.typo",
                "path",
                &format!("{:?}", crate::harness::plugin_wasm("hello")),
            )
            .set("plugins.typo", "grants", r#"["telepathy"]"#)
            .set("plugins.missing", "path", "\"/nonexistent/plugin.wasm\"")
            // Built against 0.1.0, whose rule is that every import needs its grant.
            .plugin_file("liar", &crate::harness::plugin_wasm_v010("liar"), &[])
    })
    .await;
    let user = server.user("vera", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "commands").await;
    assert_eq!(
        error_code(&ws.command(&session, "/greedy").await),
        "unknown_command"
    );
    assert_eq!(
        error_code(&ws.command(&session, "/oldapi").await),
        "unknown_command"
    );

    let reasons: Vec<(String, String)> = server
        .log_lines()
        .iter()
        .filter(|l| l["fields"]["message"] == "plugin not enabled")
        .map(|l| {
            (
                l["fields"]["plugin"].as_str().unwrap().to_string(),
                l["fields"]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reason = |name: &str| {
        reasons
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("no refusal logged for {name}: {reasons:?}"))
    };
    assert!(
        reason("greedy").contains("needs capability stats which config does not grant"),
        "{}",
        reason("greedy")
    );
    assert!(
        reason("oldapi").contains("plugin API 9.9.9"),
        "{}",
        reason("oldapi")
    );
    assert!(
        reason("fast").contains("native = true"),
        "{}",
        reason("fast")
    );
    assert!(
        reason("typo").contains("unknown capability \"telepathy\""),
        "{}",
        reason("typo")
    );
    // Its manifest declares nothing, but the 0.1.0 component imports kv: refused all the
    // same (a 0.2.0 one is not: plugin_api/versions.rs).
    assert!(
        reason("liar").contains("needs capability kv"),
        "{}",
        reason("liar")
    );
    assert!(
        reason("missing").contains("cannot read /nonexistent/plugin.wasm"),
        "{}",
        reason("missing")
    );
}

async fn two_plugins_claiming_a_name_get_neither(backend: Backend) {
    let server = plugin_setup(backend, |s| s.plugin("hello", &[]).plugin("clash", &[])).await;
    let user = server.user("vera", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "commands").await;
    assert_eq!(
        error_code(&ws.command(&session, "/hello").await),
        "unknown_command"
    );
    assert_eq!(
        reply_text(&ws.command(&session, "/clash-only").await),
        "clash ran /clash-only"
    );
    let logged = server.log_lines().iter().any(|l| {
        l["fields"]["message"] == "command claimed by several plugins; none of them gets it"
            && l["fields"]["command"] == "/hello"
    });
    assert!(logged, "{}", server.logs_text());
}

async fn plugin_output_and_settings(backend: Backend) {
    let server = plugin_server(backend).await;
    let user = server.user("vera", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "commands").await;
    assert_eq!(
        reply_text(&ws.command(&session, "/probe-config greeting").await),
        "\"hi\""
    );
    assert_eq!(
        reply_text(&ws.command(&session, "/probe-config answer").await),
        "42"
    );
    assert_eq!(
        reply_text(&ws.command(&session, "/probe-config nothing").await),
        "unset"
    );
    assert_eq!(
        reply_text(&ws.command(&session, "/probe-stdout").await),
        "printed"
    );
    for (stream, text) in [
        ("stdout", "probe says hello on stdout"),
        ("stderr", "probe says hello on stderr"),
    ] {
        let found = server
            .wait_for_log(|l| {
                l["target"] == "slashd::plugin"
                    && l["fields"]["plugin"] == "probe"
                    && l["fields"]["stream"] == stream
                    && l["fields"]["message"] == text
            })
            .await;
        assert!(found, "{stream} line missing");
    }
    // The invocation's line is written once the reply is out: wait for it.
    let command_line = server
        .wait_for_log(|l| {
            l["target"] == "slashd::command"
                && l["fields"]["command"] == "probe-stdout"
                && l["fields"]["outcome"] == "ok"
        })
        .await;
    assert!(command_line, "one structured line per invocation");
}

async fn compiled_plugins_are_cached_across_restarts(backend: Backend) {
    let mut fixture = plugin_setup(backend, Setup::own_compile_cache).await;
    let compiled_first = fixture
        .log_lines()
        .iter()
        .filter(|l| l["fields"]["message"] == "compiling plugin (cached for next start)")
        .count();
    assert!(
        compiled_first >= 4,
        "first start compiles every plugin ({compiled_first})"
    );
    let cached = std::fs::read_dir(fixture.dir.path().join("data/plugin-cache"))
        .unwrap()
        .count();
    assert!(cached >= 4, "{cached} cache entries");
    fixture.server.kill();
    let before = fixture.log_lines().len();
    fixture.server.spawn().await;
    let recompiled = fixture.log_lines()[before..]
        .iter()
        .filter(|l| l["fields"]["message"] == "compiling plugin (cached for next start)")
        .count();
    assert_eq!(
        recompiled, 0,
        "a restart loads compiled plugins from the cache"
    );
    let user = fixture.user("vera", "viewer").await;
    let (mut ws, session) = joined(&fixture, &user, "commands").await;
    assert_eq!(
        reply_text(&ws.command(&session, "/probe-echo cached").await),
        "cached"
    );
}
