//! Typed arguments: the host binds and checks them before anything is stored, resolves
//! `user` and `session` arguments against what the caller may see, and shows the typed
//! usage in `/help` and `GET /commands`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::probe_server;
use crate::harness::Backend;
use crate::on_both_backends;
use crate::support::{history, joined, Shared};

on_both_backends!(user_and_session_arguments_resolve_only_what_the_caller_can_see);

const USAGE: &str = "/probe-typed [--count N] [--env staging|prod] [--force] \
                     [--wait DURATION] [--ratio X] [--who USER] [--where SESSION] [note…]";

fn values(reply: &Value) -> &Value {
    assert_eq!(reply["type"], "message", "{reply}");
    &reply["message"]["metadata"]["data"]["values"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_arguments_bind_and_check_before_anything_is_stored() {
    let server = probe_server(Backend::Sqlite, |s| s).await;
    let ann = server.user("ann", "viewer").await;
    let (mut ws, session) = joined(&server, &ann, "typed").await;

    // `check(line, values)`: what the plugin receives.
    let cases = [
        ("/probe-typed", json!({"count": 1, "env": "staging"})),
        ("/probe-typed 3 prod", json!({"count": 3, "env": "prod"})),
        (
            "/probe-typed --env=prod --force 4",
            json!({"count": 4, "env": "prod", "force": true}),
        ),
        (
            "/probe-typed --force=no --wait 1h --ratio 0.25",
            json!({"count": 1, "env": "staging", "force": false,
                   "wait": {"ms": 3_600_000}, "ratio": 0.25}),
        ),
    ];
    let who = json!({"id": ann.id, "name": "ann", "role": "viewer"});
    let here = json!({"id": session, "title": "typed"});
    // Positional booleans, durations and numbers, people and places; the rest verbatim,
    // options in it included; `--` ends the options.
    let more = [
        (
            format!(
                r#"/probe-typed --who ann --where {session} 2 staging true 90s 1 "quoted"  --kept as typed"#
            ),
            json!({"count": 2, "env": "staging", "force": true, "wait": {"ms": 90_000},
                   "ratio": 1.0, "who": who, "where": here,
                   "note": r#""quoted"  --kept as typed"#}),
        ),
        (
            format!("/probe-typed 2 prod false 1s 0 ann {session} -- --not-an-option"),
            json!({"count": 2, "env": "prod", "force": false, "wait": {"ms": 1000},
                   "ratio": 0.0, "who": who, "where": here, "note": "--not-an-option"}),
        ),
    ];
    let cases = cases
        .into_iter()
        .map(|(line, v)| (line.to_string(), v))
        .chain(more);
    for (line, expected) in cases {
        let reply = ws.command(&session, &line).await;
        assert_eq!(values(&reply), &expected, "{line}");
    }

    let stored_before = history(&server, &session, &ann.token).await.len();
    let refusals = [
        (
            "/probe-typed --env qa",
            "--env must be one of staging, prod",
        ),
        ("/probe-typed 0", "--count must be between 1 and 10"),
        ("/probe-typed 11", "--count must be between 1 and 10"),
        ("/probe-typed x", "--count must be an integer"),
        (
            "/probe-typed --ratio 1.5",
            "--ratio must be between 0 and 1",
        ),
        ("/probe-typed --ratio nan", "--ratio must be a number"),
        (
            "/probe-typed --wait 5",
            "--wait must be a duration like 90s or 1h30m",
        ),
        (
            "/probe-typed --wait 2h",
            "--wait must be between 1s and 3600s",
        ),
        (
            "/probe-typed --force=maybe",
            "--force must be true or false",
        ),
        ("/probe-typed --nope", "unknown option --nope"),
        ("/probe-typed --count", "--count needs a value"),
        ("/probe-typed --env prod --env prod", "--env is given twice"),
        (r#"/probe-typed "open"#, "unbalanced quotes"),
        ("/probe-pick", "missing <item>"),
    ];
    for (line, why) in refusals {
        let answer = ws.command(&session, line).await;
        assert_eq!(answer["type"], "error", "{line}: {answer}");
        assert_eq!(answer["code"], "usage", "{line}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("usage: {why}; /")),
            "{line}: {message}"
        );
    }
    let typed_usage = ws.command(&session, "/probe-typed --env qa").await;
    assert_eq!(
        typed_usage["message"],
        format!("usage: --env must be one of staging, prod; {USAGE}")
    );
    // Nothing of a refused line was stored or broadcast.
    assert_eq!(
        history(&server, &session, &ann.token).await.len(),
        stored_before
    );
    ws.expect_silence(std::time::Duration::from_millis(200))
        .await;

    // The refusals are audited as denied.
    let admin = server.admin().await;
    let (_, audit) = server
        .get("/admin/audit?user=ann&command=probe-typed", &admin.token)
        .await;
    let denied = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["decision"] == "denied" && e["outcome"] == "usage")
        .count();
    assert_eq!(denied, 14, "{audit}");
}

async fn user_and_session_arguments_resolve_only_what_the_caller_can_see(backend: Backend) {
    let server = probe_server(backend, |s| s).await;
    let shared = Shared::create(&server, "olga", "mike", "typed people").await;
    let (mut olga, _mike) = shared.join_both(&server).await;
    let session = shared.session.clone();
    let outsider = server.user("carl", "admin").await;
    let foreign = server.session(&outsider, "carl's").await;
    let own_other = server.session(&shared.owner, "olga's other").await;

    let reply = olga
        .command(
            &session,
            &format!("/probe-typed --who @mike --where {own_other}"),
        )
        .await;
    let got = values(&reply);
    assert_eq!(got["who"]["id"], shared.member.id.as_str());
    assert_eq!(got["who"]["name"], "mike");
    assert_eq!(got["who"]["role"], "viewer");
    assert_eq!(
        got["where"],
        json!({"id": own_other, "title": "olga's other"})
    );
    let me = olga.command(&session, "/probe-typed --who olga").await;
    assert_eq!(values(&me)["who"]["name"], "olga");

    // Someone outside the session, and nobody at all, get the same answer; a foreign
    // session, a missing one and a malformed id too.
    for name in ["carl", "nobody", "../etc", "x".repeat(100).as_str()] {
        let answer = olga
            .command(&session, &format!("/probe-typed --who {name}"))
            .await;
        assert_eq!(answer["code"], "usage", "{answer}");
        let shown: String = name.chars().take(64).collect();
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("usage: --who: no user \"{shown}")),
            "{answer}"
        );
    }
    let missing = uuid::Uuid::new_v4().to_string();
    for id in [foreign.as_str(), missing.as_str(), "not-a-uuid"] {
        let answer = olga
            .command(&session, &format!("/probe-typed --where {id}"))
            .await;
        assert_eq!(
            answer["message"]
                .as_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap(),
            format!("usage: --where: no session {id:?} that you can see"),
            "{answer}"
        );
    }
    // A disabled member can no longer be named.
    let out = server.cli(&["user", "disable", "mike"], None);
    assert!(out.status.success(), "{out:?}");
    let answer = olga.command(&session, "/probe-typed --who mike").await;
    assert_eq!(answer["code"], "usage", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_and_get_commands_show_the_typed_usage_and_schema() {
    let logs = tempfile::tempdir().unwrap();
    let dirs = format!("{{ \"/logs\" = {:?} }}", logs.path().display().to_string());
    let server = probe_server(Backend::Sqlite, |s| s.plugin("logs", &[("dirs", &dirs)])).await;
    let anna = server.user("anna", "analyst").await;
    let (mut ws, session) = joined(&server, &anna, "typed help").await;

    let (status, list) = server.get("/commands", &anna.token).await;
    assert_eq!(status, StatusCode::OK);
    let find = |name: &str| {
        list["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {list}"))
            .clone()
    };
    let typed = find("probe-typed");
    assert_eq!(typed["usage"], USAGE);
    assert_eq!(
        typed["args"][1],
        json!({"name": "env", "kind": "choice", "choices": ["staging", "prod"],
               "summary": "Where", "required": false, "default": "staging", "rest": false,
               "completes": false, "min": null, "max": null})
    );
    assert_eq!(typed["args"].as_array().unwrap().len(), 8);
    // Untyped commands carry no schema; a confirmed one says so.
    assert!(find("probe-echo").get("args").is_none());
    assert_eq!(
        find("probe-confirm")["confirm"],
        r#"Really run <img src=x onerror="window.__xss=1"> probe-confirm?"#
    );
    assert_eq!(find("reload")["usage"], "/reload [--days N]");

    let detail = ws.command(&session, "/help probe-typed").await;
    let text = detail["message"]["content"].as_str().unwrap();
    assert!(text.contains("[--env staging|prod]"), "{text}");

    // `/reload N` still works beside `--days N`; the host checks the range.
    for line in ["/reload 2", "/reload --days 2", "/reload --days=2"] {
        let reply = ws.command(&session, line).await;
        assert_eq!(
            reply["message"]["metadata"]["data"]["days"], 2,
            "{line}: {reply}"
        );
    }
    let default = ws.command(&session, "/reload").await;
    assert_eq!(default["message"]["metadata"]["data"]["days"], 1);
    for (line, why) in [
        ("/reload 0", "--days must be between 1 and 365"),
        ("/reload 366", "--days must be between 1 and 365"),
        ("/reload banana", "--days must be an integer"),
        ("/reload 1 2", "unexpected argument \"2\""),
    ] {
        let answer = ws.command(&session, line).await;
        assert_eq!(
            answer["message"],
            format!("usage: {why}; /reload [--days N]"),
            "{line}"
        );
    }
}
