//! Native plugins (libloading): the same SDK and the same rules as wasm, opt-in only.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{plugin_native, plugin_wasm, Backend, Setup};
use crate::on_both_backends;
use crate::support::joined;

on_both_backends!(
    wasm_and_native_answer_identically,
    native_needs_the_opt_in_and_the_right_abi,
    a_panicking_native_plugin_fails_only_its_call,
    native_host_calls_are_gated_by_grants,
);

fn quoted(path: &str) -> String {
    format!("{path:?}")
}

/// The reply as a user sees it: text, format and data (ids and timings differ).
fn visible(frame: &Value) -> Value {
    if frame["type"] == "error" {
        return json!({"error": frame["code"], "message": frame["message"]});
    }
    let m = &frame["message"];
    json!({"content": m["content"], "format": m["metadata"]["format"], "data": m["metadata"]["data"]})
}

async fn transcript(setup: Setup) -> Vec<Value> {
    let server = setup.set("commands", "rate_burst", "100.0").start().await;
    let anna = server.user("anna", "analyst").await;
    let vera = server.user("vera", "viewer").await;
    let (mut a, sa) = joined(&server, &anna, "native").await;
    let (mut v, sv) = joined(&server, &vera, "native").await;
    let mut out = Vec::new();
    for line in [
        "/tally apples",
        "/tally apples",
        "/tally \"green pears\"",
        "/tally",
        "/tally-reset apples",
        "/tally apples",
    ] {
        out.push(visible(&a.command(&sa, line).await));
    }
    // Role gates are the same both ways.
    out.push(visible(&v.command(&sv, "/tally-reset apples").await));
    let (_, listed) = server.get("/commands", &vera.token).await;
    out.push(listed);
    out
}

async fn wasm_and_native_answer_identically(backend: Backend) {
    let wasm = transcript(
        Setup::new(backend)
            .set("plugins.tally", "path", &quoted(&plugin_wasm("tally")))
            .set("plugins.tally", "grants", r#"["kv"]"#),
    )
    .await;
    let native = transcript(
        Setup::new(backend)
            .set("plugins.tally", "path", &quoted(&plugin_native("tally")))
            .set("plugins.tally", "native", "true")
            .set("plugins.tally", "grants", r#"["kv"]"#),
    )
    .await;
    assert_eq!(wasm, native);
    // And the transcript is what it should be, not merely the same.
    assert_eq!(
        wasm[0],
        json!({"content": "**apples**: 1", "format": "markdown", "data": {"name": "apples", "count": 1}})
    );
    assert_eq!(wasm[1]["content"], "**apples**: 2");
    assert_eq!(wasm[2]["data"], json!({"name": "green pears", "count": 1}));
    assert_eq!(wasm[3]["error"], "usage");
    assert_eq!(wasm[4]["content"], "apples reset");
    assert_eq!(wasm[5]["content"], "**apples**: 1");
    assert_eq!(wasm[6]["error"], "forbidden");
}

async fn native_needs_the_opt_in_and_the_right_abi(backend: Backend) {
    let server = Setup::new(backend)
        .set("plugins.tally", "path", &quoted(&plugin_native("tally")))
        .set("plugins.tally", "grants", r#"["kv"]"#)
        .set("plugins.badabi", "path", &quoted(&plugin_native("badabi")))
        .set("plugins.badabi", "native", "true")
        .start()
        .await;
    let admin = server.admin().await;
    let (status, body) = server.get("/admin/plugins", &admin.token).await;
    assert_eq!(status, StatusCode::OK);
    let plugin = |name: &str| {
        body["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let tally = plugin("tally");
    assert_eq!(tally["state"], "refused");
    assert!(
        tally["reason"].as_str().unwrap().contains("native = true"),
        "{tally}"
    );
    let badabi = plugin("badabi");
    assert_eq!(badabi["state"], "refused");
    assert_eq!(badabi["source"]["kind"], "native");
    assert!(
        badabi["reason"]
            .as_str()
            .unwrap()
            .contains("native ABI version 99 is not supported"),
        "{badabi}"
    );
    let (mut ws, session) = joined(&server, &admin, "native").await;
    assert_eq!(
        ws.command(&session, "/tally x").await["code"],
        "unknown_command"
    );
}

async fn a_panicking_native_plugin_fails_only_its_call(backend: Backend) {
    let server = Setup::new(backend)
        .set(
            "plugins.hostile",
            "path",
            &quoted(&plugin_native("hostile")),
        )
        .set("plugins.hostile", "native", "true")
        .set("plugins.hostile", "grants", r#"["kv"]"#)
        .start()
        .await;
    let vera = server.user("vera", "viewer").await;
    let (mut ws, session) = joined(&server, &vera, "native").await;
    for _ in 0..3 {
        let answer = ws.command(&session, "/panic").await;
        assert_eq!(answer["code"], "plugin_failed", "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("panicked"),
            "{answer}"
        );
    }
    let help = ws.command(&session, "/help").await;
    assert_eq!(help["type"], "message", "the server keeps serving: {help}");
    assert_eq!(
        ws.command(&session, "/steal k").await["message"]["content"],
        "none"
    );
    let admin = server.admin().await;
    let (_, body) = server.get("/admin/plugins", &admin.token).await;
    let hostile = body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hostile")
        .unwrap()
        .clone();
    assert_eq!(hostile["failures"], 3);
}

async fn native_host_calls_are_gated_by_grants(backend: Backend) {
    let server = Setup::new(backend)
        .set("plugins.liar", "path", &quoted(&plugin_native("liar")))
        .set("plugins.liar", "native", "true")
        .set("plugins.tally", "path", &quoted(&plugin_native("tally")))
        .set("plugins.tally", "native", "true")
        .start()
        .await;
    let vera = server.user("vera", "viewer").await;
    let (mut ws, session) = joined(&server, &vera, "native").await;
    // The liar declared nothing and was granted nothing: its kv call is refused.
    let answer = ws.command(&session, "/liar").await;
    assert_eq!(answer["code"], "plugin_failed", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("capability `kv` is not granted"),
        "{answer}"
    );
    // A plugin asking for an ungranted capability is refused at load, native or not.
    assert_eq!(
        ws.command(&session, "/tally x").await["code"],
        "unknown_command"
    );
    let reason = server
        .log_lines()
        .iter()
        .find(|l| {
            l["fields"]["message"] == "plugin not enabled" && l["fields"]["plugin"] == "tally"
        })
        .map(|l| l["fields"]["reason"].as_str().unwrap().to_string())
        .unwrap();
    assert!(reason.contains("needs capability kv"), "{reason}");
}
