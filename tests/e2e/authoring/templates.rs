//! The template of each language, from `slashd plugin new` to a reply over a socket: built
//! with its own toolchain by `scripts/template-plugins.sh` (as its README says), run with
//! `plugin run`, then served with no grants at all. Beside each template, a plugin of the
//! same SDK that throws: the invoker gets `plugin_failed` with the exception's message.

use std::path::PathBuf;

use super::{run_json, slashd, stderr, stdout};
use crate::harness::{
    built_by_script, Backend, Launch, Server, Setup, Ws, BIN, SHARED_XDG_CACHE_HOME,
};
use crate::support::{error_code, joined, reply_text};

const LANGS: [&str; 3] = ["rust", "python", "js"];

/// `hello-LANG.wasm` or `boom-LANG.wasm`, built once per test process (never skipped: a
/// toolchain that cannot be installed fails the tests that need it).
fn built(name: &str) -> String {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    built_by_script(
        &BUILT,
        "template-plugins.sh",
        "template-plugins",
        &[BIN],
        name,
    )
}

#[test]
fn each_template_checks_and_runs_with_the_shipped_binary() {
    let dir = tempfile::tempdir().unwrap();
    for lang in LANGS {
        let file = built(&format!("hello-{lang}"));
        let check = slashd(dir.path(), &["plugin", "check", &file]);
        let text = stdout(&check);
        assert!(check.status.success(), "{lang}: {}", stderr(&check));
        assert!(
            text.contains(&format!("ok: hello-{lang} ")),
            "{lang}: {text}"
        );
        assert!(text.contains("(plugin API 0.2.0)"), "{lang}: {text}");
        assert!(text.contains("grants needed: none"), "{lang}: {text}");

        let line = format!("/hello-{lang} world");
        let (ok, json) = run_json(dir.path(), &file, &line, &[]);
        assert!(ok, "{lang}: {json}");
        assert_eq!(json["reply"]["body"], "Hello, **world**!", "{lang}: {json}");
        assert_eq!(json["reply"]["data"]["name"], "world", "{lang}: {json}");
        assert_eq!(json["reply"]["actions"][0]["id"], "wave", "{lang}: {json}");
        let (ok, json) = run_json(dir.path(), &file, &format!("/hello-{lang} a b"), &[]);
        assert!(!ok);
        assert_eq!(json["error"]["code"], "usage", "{lang}: {json}");
    }
}

#[test]
fn plugin_new_refuses_bad_names_and_busy_directories() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["Hello", "1st", "a_b", "", &"x".repeat(33)] {
        let out = slashd(dir.path(), &["plugin", "new", name]);
        assert!(!out.status.success(), "{name:?}");
        assert!(
            stderr(&out).contains("a plugin name is"),
            "{name:?}: {}",
            stderr(&out)
        );
    }
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    std::fs::write(dir.path().join("taken/keep.txt"), "mine").unwrap();
    let out = slashd(dir.path(), &["plugin", "new", "taken"]);
    assert!(
        stderr(&out).contains("exists and is not empty"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("taken/keep.txt")).unwrap(),
        "mine"
    );
    let out = slashd(
        dir.path(),
        &["plugin", "new", "lost", "--sdk", "/nonexistent"],
    );
    assert!(
        stderr(&out).contains("no SDK at /nonexistent"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_exceptions_over_a_socket() {
    let files: Vec<(String, String)> = LANGS
        .iter()
        .flat_map(|lang| [format!("hello-{lang}"), format!("boom-{lang}")])
        .map(|name| {
            let file = built(&name);
            (name, file)
        })
        .collect();
    // Four big components compiled cold, one after another, by a debug build take longer
    // than the harness waits for readiness; `plugin check` compiles them into the suite's
    // cache first, in parallel (the server's and the CLI's engines agree on the cache key).
    let checks: Vec<_> = files
        .iter()
        .map(|(_, file)| {
            let file = file.clone();
            std::thread::spawn(move || {
                let out = std::process::Command::new(BIN)
                    .args(["plugin", "check", &file])
                    .env("XDG_CACHE_HOME", SHARED_XDG_CACHE_HOME)
                    .output()
                    .expect("run slashd");
                assert!(out.status.success(), "{file}: {}", stderr(&out));
            })
        })
        .collect();
    for check in checks {
        check.join().unwrap();
    }
    // Twelve commands in a row from one user pass the default burst of ten once the plugins
    // answer in milliseconds; this test is about replies, not the rate limit.
    let mut setup = Setup::new(Backend::Sqlite).set("commands", "rate_burst", "100.0");
    for (name, file) in &files {
        setup = setup.plugin_file(name, file, &[("grants", "[]")]);
    }
    let server = setup.start().await;
    let user = server.user("amy", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "templates").await;
    for lang in LANGS {
        let reply = ws.command(&session, &format!("/hello-{lang} there")).await;
        assert_eq!(reply_text(&reply), "Hello, **there**!", "{lang}: {reply}");

        let thrown = ws.command(&session, &format!("/boom-{lang} throw")).await;
        assert_eq!(error_code(&thrown), "plugin_failed", "{lang}: {thrown}");
        let message = thrown["message"].as_str().unwrap();
        assert!(
            message.contains("kaboom: the thing broke"),
            "{lang}: {message}"
        );
        assert!(
            !message.contains("trap"),
            "{lang}: a thrown error is not a trap: {message}"
        );

        let usage = ws.command(&session, &format!("/boom-{lang} usage")).await;
        assert_eq!(error_code(&usage), "usage", "{lang}: {usage}");
        assert!(
            usage["message"]
                .as_str()
                .unwrap()
                .contains("say throw or usage"),
            "{lang}: {usage}"
        );

        // The connection stays healthy after each.
        let again = ws.command(&session, &format!("/hello-{lang}")).await;
        assert_eq!(reply_text(&again), "Hello, **amy**!", "{lang}: {again}");
    }
}

/// On a cold compile cache the server listens at once and compiles in the background:
/// `/readyz` says how many are loading, their commands answer `unknown_command` ("plugins still
/// loading") until they are ready, then they run. The manifest kept beside the cache names a
/// loading plugin's commands even when its compiled code is gone; a warm start is ready
/// when it listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_listens_at_once_and_compiles_in_the_background() {
    let file = built("hello-python");
    let mut server = Setup::new(Backend::Sqlite)
        .own_compile_cache()
        .plugin_file("hello-python", &file, &[("grants", "[]")])
        .start_with(Launch {
            listening_only: true,
            ..Launch::default()
        })
        .await;
    let (status, body) = server.get("/readyz", "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not ready", "{body}");
    assert!(body["plugins_loading"].as_u64() >= Some(1), "{body}");
    let user = server.user("amy", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "loading").await;
    refused_while_loading(&mut ws, &session, "plugins still loading").await;
    let admin = server.admin().await;
    let (_, plugins) = server.get("/admin/plugins", &admin.token).await;
    let state = |plugins: &serde_json::Value| {
        plugins["plugins"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == "hello-python"))
            .map(|p| p["state"].clone())
    };
    assert_eq!(state(&plugins), Some("loading".into()), "{plugins}");
    // An admin's (or another node's) change while it loads applies once it is loaded.
    let (status, body) = server
        .post(
            "/admin/plugins/hello-python/disable",
            &admin.token,
            serde_json::json!({}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");

    server.wait_ready().await;
    let (_, plugins) = server.get("/admin/plugins", &admin.token).await;
    assert_eq!(state(&plugins), Some("disabled".into()), "{plugins}");
    let off = ws.command(&session, "/hello-python").await;
    assert_eq!(error_code(&off), "unknown_command", "{off}");
    let (status, body) = server
        .post(
            "/admin/plugins/hello-python/enable",
            &admin.token,
            serde_json::json!({}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let reply = ws.command(&session, "/hello-python").await;
    assert_eq!(reply_text(&reply), "Hello, **amy**!", "{reply}");
    drop(ws);

    // The compiled code gone (a new slashd invalidates it), the kept manifest stays.
    server.kill();
    let cache = server.dir.path().join("data/plugin-cache");
    let mut kept = 0;
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("cwasm") => std::fs::remove_file(&path).unwrap(),
            Some("json") => kept += 1,
            _ => {}
        }
    }
    // The built-ins' and hello-python's.
    assert!(kept >= 2, "no manifest kept in {}", cache.display());
    restart(&mut server, true).await;
    let (mut ws, session) = joined(&server, &user, "loading again").await;
    refused_while_loading(
        &mut ws,
        &session,
        "/hello-python is not ready: plugins still loading",
    )
    .await;
    server.wait_ready().await;
    drop(ws);

    server.kill();
    restart(&mut server, true).await;
    let (status, body) = server.get("/readyz", "").await;
    assert_eq!(status, 200, "a warm start is ready when it listens: {body}");
}

/// `/hello-python` answers `unknown_command` with a message containing `says`.
async fn refused_while_loading(ws: &mut Ws, session: &str, says: &str) {
    let early = ws.command(session, "/hello-python").await;
    assert_eq!(error_code(&early), "unknown_command", "{early}");
    let message = early["message"].as_str().unwrap();
    assert!(message.contains(says), "{early}");
}

async fn restart(server: &mut Server, listening_only: bool) {
    server
        .spawn_with(&Launch {
            listening_only,
            ..Launch::default()
        })
        .await;
}
