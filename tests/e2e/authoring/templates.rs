//! The template of each language, from `slashd plugin new` to a reply over a socket: built
//! with its own toolchain by `scripts/template-plugins.sh` (as its README says), run with
//! `plugin run`, then served with no grants at all. Beside each template, a plugin of the
//! same SDK that throws: the invoker gets `plugin_failed` with the exception's message.

use std::path::PathBuf;

use super::{run_json, slashd, stderr, stdout};
use crate::harness::{built_by_script, Backend, Setup, BIN};
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
    // The server compiles every plugin before it listens, and these four big components
    // take longer than the harness waits; `plugin check` compiles them into the same cache
    // first, in parallel (the server's and the CLI's engines agree on the cache key).
    let cache = tempfile::tempdir().unwrap();
    let checks: Vec<_> = files
        .iter()
        .map(|(_, file)| {
            let (file, home) = (file.clone(), cache.path().to_path_buf());
            std::thread::spawn(move || {
                let out = std::process::Command::new(BIN)
                    .args(["plugin", "check", &file])
                    .env("XDG_CACHE_HOME", &home)
                    .output()
                    .expect("run slashd");
                assert!(out.status.success(), "{file}: {}", stderr(&out));
            })
        })
        .collect();
    for check in checks {
        check.join().unwrap();
    }
    let cache_dir = cache.path().join("slashd/plugin-cache");
    let mut setup = Setup::new(Backend::Sqlite).set(
        "commands",
        "cache_dir",
        &format!("{:?}", cache_dir.display().to_string()),
    );
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
