//! `slashd plugin run`: the reply as the server would send it, and every refusal the server
//! would make — unknown command, role, ungranted capability, bad arguments — with its code.

use super::{run_json, slashd, stderr, stdout};
use crate::harness::plugin_wasm;
use crate::plugin_api::world::World;

#[test]
fn prints_the_reply_with_its_data_and_buttons() {
    let dir = tempfile::tempdir().unwrap();
    let hello = plugin_wasm("hello");
    let out = slashd(dir.path(), &["plugin", "run", &hello, "/hello world"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("Hello, **world**!\n"), "{text}");
    assert!(text.contains(r#"data: {"name":"world"}"#), "{text}");
    assert!(
        text.contains(r#"button: [Wave back] action "wave""#),
        "{text}"
    );

    let (ok, json) = run_json(dir.path(), &hello, "/hello", &["--user", "ada"]);
    assert!(ok, "{json}");
    assert_eq!(json["reply"]["body"], "Hello, **ada**!");
    assert_eq!(json["reply"]["format"], "markdown");
    assert_eq!(json["reply"]["actions"][0]["id"], "wave");
    assert!(json["timings"]["load_ms"].as_f64().unwrap() > 0.0, "{json}");
    assert_eq!(json["timings"]["calls"], 1);
}

/// `check(args, code, part of the message)` for each refusal.
#[test]
fn refuses_what_the_server_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let (hello, probe) = (plugin_wasm("hello"), plugin_wasm("probe"));
    let check = |file: &str, line: &str, args: &[&str], code: &str, part: &str| {
        let (ok, json) = run_json(dir.path(), file, line, args);
        assert!(!ok, "{line} should fail: {json}");
        assert_eq!(json["error"]["code"], code, "{line}: {json}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains(part), "{line}: {message:?} lacks {part:?}");
    };
    check(
        &hello,
        "/nope",
        &[],
        "unknown_command",
        "unknown command /nope",
    );
    check(&hello, "hello", &[], "unknown_command", "starts with '/'");
    check(
        &hello,
        "/hello a b",
        &[],
        "usage",
        "unexpected argument \"b\"",
    );
    check(&hello, "/hello \"open", &[], "usage", "unbalanced quotes");
    let grants = ["--grant", "kv,config"];
    check(
        &probe,
        "/probe-analyst",
        &grants,
        "forbidden",
        "needs the analyst role",
    );
    check(&probe, "/probe-fail", &grants, "plugin_failed", "");

    // Nothing is granted unless given, as on the server: the refusal names what is missing.
    let out = slashd(dir.path(), &["plugin", "run", &probe, "/probe-echo"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("needs capability kv, config which is not granted"),
        "{err}"
    );
    assert!(err.contains("--grant"), "{err}");
    let out = slashd(
        dir.path(),
        &["plugin", "run", &probe, "/probe-echo", "--grant", "root"],
    );
    assert!(
        stderr(&out).contains("unknown capability \"root\""),
        "{}",
        stderr(&out)
    );
    let out = slashd(dir.path(), &["plugin", "run", "/nonexistent.wasm", "/x"]);
    assert!(
        stderr(&out).contains("cannot read /nonexistent.wasm"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn roles_settings_and_a_kv_kept_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let probe = plugin_wasm("probe");
    let kv = dir.path().join("kv");
    let kv = kv.to_str().unwrap();
    let base = ["--grant", "kv", "--grant", "config", "--kv-dir", kv];
    let (ok, json) = run_json(
        dir.path(),
        &probe,
        "/probe-analyst",
        &[&base[..], &["--as", "analyst"]].concat(),
    );
    assert!(ok, "{json}");
    let (ok, _) = run_json(dir.path(), &probe, "/probe-kvset colour blue", &base);
    assert!(ok);
    let (ok, json) = run_json(dir.path(), &probe, "/probe-kvget colour", &base);
    assert!(ok, "{json}");
    assert_eq!(
        json["reply"]["body"], "value: blue",
        "the second run sees the first's kv"
    );
    let stored = std::fs::read_to_string(dir.path().join("kv/kv.json")).unwrap();
    assert!(
        stored.contains("\"colour\"") && stored.contains("blue"),
        "{stored}"
    );
    let (_, json) = run_json(
        dir.path(),
        &probe,
        "/probe-config greeting",
        &[&base[..], &["--setting", "greeting=hi there"]].concat(),
    );
    assert_eq!(
        json["reply"]["body"], "\"hi there\"",
        "a value that is not JSON is text"
    );
    let (_, json) = run_json(
        dir.path(),
        &probe,
        "/probe-config limit",
        &[&base[..], &["--setting", "limit=5"]].concat(),
    );
    assert_eq!(json["reply"]["body"], "5");

    // A kv file that is not one is refused, not overwritten.
    std::fs::write(dir.path().join("kv/kv.json"), "not json").unwrap();
    let out = slashd(
        dir.path(),
        &[
            "plugin",
            "run",
            &probe,
            "/probe-kvget colour",
            "--grant",
            "kv,config",
            "--kv-dir",
            kv,
        ],
    );
    assert!(
        stderr(&out).contains("is not a kv file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("kv/kv.json")).unwrap(),
        "not json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_goes_only_where_allowed_and_secrets_stay_hidden() {
    let world = World::start().await;
    let dir = tempfile::tempdir().unwrap();
    let reach = plugin_wasm("reach");
    let secret_file = dir.path().join("token");
    std::fs::write(&secret_file, "s3cr3t-value\n").unwrap();
    let secret = format!("token=@{}", secret_file.display());
    let allow = world.url("/api");
    let grants = ["--grant", "http,secrets,progress"];
    let hello = format!("/reach-get {}", world.url("/api/hello"));
    let (ok, json) = run_json(
        dir.path(),
        &reach,
        &hello,
        &[&grants[..], &["--http-allow", &allow]].concat(),
    );
    assert!(ok, "{json}");
    assert_eq!(json["reply"]["body"], "status 200: hello from the world");
    // Without the allow-list entry the request is refused inside the sandbox.
    let (ok, json) = run_json(dir.path(), &reach, &hello, &grants);
    assert!(!ok);
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{json}"
    );

    let leak = ["--secret", &secret];
    let (ok, json) = run_json(
        dir.path(),
        &reach,
        "/reach-secret token reply",
        &[&grants[..], &leak[..]].concat(),
    );
    assert!(ok, "{json}");
    assert_eq!(json["reply"]["body"], "the secret is [secret]");
    let out = slashd(
        dir.path(),
        &[
            "plugin",
            "run",
            &reach,
            "/reach-secret token log",
            "--grant",
            "http,secrets,progress",
            "--secret",
            &secret,
        ],
    );
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains("s3cr3t-value"), "{all}");
    assert!(
        all.contains("[secret]"),
        "the plugin's log line is shown, redacted: {all}"
    );

    // Progress reports reach the terminal.
    let out = slashd(
        dir.path(),
        &[
            "plugin",
            "run",
            &reach,
            "/reach-progress 2 1",
            "--grant",
            "http,secrets,progress",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("progress /reach-progress:"),
        "{}",
        stderr(&out)
    );
}
