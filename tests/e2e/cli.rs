//! The CLI against a real database.

use std::process::{Command, Output};

use reqwest::StatusCode;

use crate::harness::{plugin_native, plugin_wasm, Backend, Server, Setup, BIN, PASSWORD};
use crate::on_both_backends;

on_both_backends!(user_administration, migrate_is_idempotent);

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn user_administration(backend: Backend) {
    let server = Server::start(backend).await;
    let added = server.cli(
        &[
            "user",
            "add",
            "zoe",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        Some("zoe-password-1\n"),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(stdout(&added).contains("created user zoe"));

    let list = stdout(&server.cli(&["user", "list"], None));
    let zoe = list
        .lines()
        .find(|l| l.starts_with("zoe"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(zoe.contains("analyst") && zoe.contains("active"), "{zoe}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("admin") && l.contains("admin")),
        "first admin: {list}"
    );

    let refusals: [(&[&str], Option<&str>, &str); 6] = [
        (
            &["user", "add", "zoe", "--role", "viewer", "--password-stdin"],
            Some("another-pass-1\n"),
            "already exists",
        ),
        (
            &["user", "add", "yan", "--role", "root", "--password-stdin"],
            Some("another-pass-1\n"),
            "unknown role",
        ),
        (
            &["user", "add", "yan", "--role", "viewer", "--password-stdin"],
            Some("short\n"),
            "at least 8",
        ),
        (
            &[
                "user",
                "add",
                "bad name!",
                "--role",
                "viewer",
                "--password-stdin",
            ],
            Some(PASSWORD),
            "user names",
        ),
        (
            &["user", "add", "yan", "--role", "viewer"],
            None,
            "--password-stdin",
        ),
        (
            &["user", "set-role", "nobody", "admin"],
            None,
            "no user named",
        ),
    ];
    for (args, input, expect) in refusals {
        let out = server.cli(args, input);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }

    let out = server.cli(&["user", "set-role", "zoe", "admin"], None);
    assert!(out.status.success());
    let zoe_user = server.login("zoe", "zoe-password-1").await;
    let (status, body) = server.get("/chat/sessions", &zoe_user.token).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert!(server
        .cli(&["user", "disable", "zoe"], None)
        .status
        .success());
    let (status, _) = server.get("/chat/sessions", &zoe_user.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(server
        .cli(&["user", "enable", "zoe"], None)
        .status
        .success());
    let (status, _) = server.get("/chat/sessions", &zoe_user.token).await;
    assert_eq!(status, StatusCode::OK);
}

async fn migrate_is_idempotent(backend: Backend) {
    let server = Server::start(backend).await;
    for _ in 0..2 {
        let out = server.cli(&["migrate"], None);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("migrations applied"));
    }
    let out = server.cli(&["--config", "/nonexistent.toml", "migrate"], None);
    assert!(!out.status.success());
}

/// Run the CLI with a config file of `config` (and extra environment), in a fresh directory.
fn offline(config: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("slashd.toml");
    std::fs::write(&path, config).expect("write config");
    Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .args(args)
        .current_dir(dir.path())
        .env("SLASHD_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run slashd")
}

/// A refusal: non-zero exit, and one `error: …` line saying `expect`.
fn assert_refused(out: &Output, expect: &str) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "should fail; stdout: {}",
        stdout(out)
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains(expect), "expected {expect:?} in {err}");
}

#[test]
fn plugin_list_shows_the_configured_plugins() {
    let config = format!(
        "[plugins.logs]\nenabled = false\n\
         [plugins.probe]\npath = {:?}\ngrants = [\"kv\", \"config\"]\n\
         [plugins.fast]\npath = {:?}\nnative = true\n\
         [plugins.ghost]\nenabled = true\n",
        plugin_wasm("probe"),
        plugin_native("tally"),
    );
    let out = offline(&config, &[], &["plugin", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row = |name: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{text}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("help")[1..4], ["wasm", "enabled", "commands"], "{text}");
    assert_eq!(row("help")[4], "built-in");
    assert_eq!(
        row("logs")[1..3],
        ["wasm", "disabled"],
        "disabled by config"
    );
    assert_eq!(row("probe")[1..4], ["wasm", "enabled", "kv,config"]);
    assert_eq!(row("probe")[4], plugin_wasm("probe"));
    assert_eq!(row("fast")[1], "native");
    assert_eq!(row("fast")[4], plugin_native("tally"));
    assert_eq!(row("ghost")[2], "refused", "{text}");
    assert!(
        text.contains("refused: [plugins.ghost] has no path and is not a built-in"),
        "{text}"
    );
}

/// `plugin list` and `config check` load the plugins as the server does: a plugin the
/// server refuses (here for a missing grant) is "refused", with the server's own reason —
/// not "enabled" because its table says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_list_and_config_check_agree_with_the_server() {
    let server = Setup::new(Backend::Sqlite)
        .plugin("probe", &[("grants", r#"["kv"]"#)])
        .start()
        .await;
    let admin = server.admin().await;
    let (_, plugins) = server.get("/admin/plugins", &admin.token).await;
    let probe = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "probe")
        .unwrap()
        .clone();
    assert_eq!(probe["state"], "refused", "{probe}");
    let reason = probe["reason"].as_str().unwrap();
    assert!(reason.contains("needs capability config"), "{reason}");

    let out = server.cli(&["plugin", "list"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("probe"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[2], "refused", "{text}");
    assert!(text.contains(&format!("refused: {reason}")), "{text}");

    let out = server.cli(&["config", "check"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("6 configured, 5 enabled, 1 refused"),
        "{text}"
    );
}

#[test]
fn plugin_check_prints_the_manifest_and_imports() {
    let out = offline("", &[], &["plugin", "check", &plugin_wasm("help")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("ok: help "), "{text}");
    assert!(text.contains("(plugin API 0.2.0)"), "{text}");
    assert!(text.contains("/help"), "{text}");
    assert!(text.contains("[viewer]"), "{text}");
    assert!(text.contains("usage: /help"), "{text}");
    assert!(text.contains("capabilities asked: commands"), "{text}");
    assert!(text.contains("slashd:plugin/commands"), "imports: {text}");

    // A 0.1.0 component importing kv without asking: valid, but said.
    let out = offline(
        "",
        &[],
        &["plugin", "check", &crate::harness::plugin_wasm_v010("liar")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("capabilities asked: none"), "{text}");
    assert!(text.contains("warning: imports kv"), "{text}");
}

/// A report piped into a reader that has gone (`| head -1`) ends the command quietly, as
/// any Unix tool does, instead of a panic on the broken pipe.
#[test]
fn a_closed_pipe_ends_a_report_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "{BIN:?} plugin check {:?} 2>{:?} | true",
        plugin_wasm("help"),
        dir.path().join("err")
    );
    // `true` has exited long before slashd has loaded the plugin and writes its report.
    std::process::Command::new("sh")
        .args(["-c", &script])
        .env("XDG_CACHE_HOME", dir.path())
        .status()
        .expect("run sh");
    let err = std::fs::read_to_string(dir.path().join("err")).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}

#[test]
fn plugin_check_refuses_what_is_not_a_plugin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text_file = dir.path().join("notes.wasm");
    std::fs::write(&text_file, "hello, not wasm").unwrap();
    let core = dir.path().join("core.wasm");
    // The smallest valid core module: magic and version 1, no sections.
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let cases = [
        (text_file.display().to_string(), "not a wasm file"),
        (
            core.display().to_string(),
            "a core wasm module, not a component",
        ),
        (plugin_wasm("oldapi"), "built against plugin API 9.9.9"),
        (plugin_native("tally"), "a native library"),
        ("/nonexistent/plugin.wasm".to_string(), "cannot read"),
    ];
    for (path, expect) in cases {
        let out = offline("", &[], &["plugin", "check", &path]);
        assert_refused(&out, expect);
    }
}

#[test]
fn config_check_summarizes_a_valid_config() {
    let config = "[server]\nlisten = \"127.0.0.1:9999\"\n\
                  [auth]\njwt_secret = \"0123456789abcdef0123456789abcdef\"\n\
                  [database]\nurl = \"postgres://app:hunter2@db:5432/slashd\"\n\
                  [plugins.probe]\npath = \"probe.wasm\"\n";
    let out = offline(config, &[], &["config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("config OK"), "{text}");
    assert!(text.contains("127.0.0.1:9999"), "{text}");
    assert!(text.contains("HS256 secret (auth.jwt_secret)"), "{text}");
    assert!(text.contains("postgres://"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "the password is redacted: {text}"
    );
    // probe.wasm is not there: refused, as the server would.
    assert!(
        text.contains("6 configured, 5 enabled, 1 refused"),
        "{text}"
    );
    // The environment counts too.
    let out = offline(
        config,
        &[("SLASHD_SERVER_LISTEN", "0.0.0.0:7000")],
        &["config", "check"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("0.0.0.0:7000"), "{}", stdout(&out));
}

#[test]
fn config_check_refuses_unknown_keys_and_bad_values() {
    /// The config file, extra environment, and what the error must say.
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: [Case; 4] = [
        ("[server]\nlisten_on = \"127.0.0.1:1\"\n", &[], "listen_on"),
        ("[server]\nlisten = \"not an address\"\n", &[], "listen"),
        (
            "[auth]\njwt_secret = \"short\"\n",
            &[],
            "auth.jwt_secret must be at least 32 bytes",
        ),
        (
            "",
            &[("SLASHD_REALTIME_OUTBOUND_QUEUE", "0")],
            "realtime limits must be positive",
        ),
    ];
    for (config, env, expect) in cases {
        let out = offline(config, env, &["config", "check"]);
        assert!(!out.status.success(), "{config:?} {env:?} should fail");
        let err = stderr(&out);
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(expect), "expected {expect:?} in {err}");
    }
}

/// Starting compiles each plugin with a line before and one after (with the time taken); a
/// restart finds each in the compile cache, again one line each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_compilation_reports_progress() {
    let mut server = Setup::new(Backend::Sqlite)
        .own_compile_cache()
        .start()
        .await;
    let builtins = ["help", "status", "sessions", "logs"];
    let lines = server.log_lines();
    for plugin in builtins {
        let of = |message: &str| {
            lines
                .iter()
                .filter(|l| l["fields"]["message"] == message && l["fields"]["plugin"] == plugin)
                .count()
        };
        assert_eq!(
            of("compiling plugin (cached for next start)"),
            1,
            "{plugin}"
        );
        assert_eq!(of("plugin compiled"), 1, "{plugin}");
        assert_eq!(of("plugin loaded from the compile cache"), 0, "{plugin}");
    }
    assert!(lines
        .iter()
        .filter(|l| l["fields"]["message"] == "plugin compiled")
        .all(|l| l["fields"]["elapsed_ms"].is_u64()));

    server.kill();
    let before = server.log_lines().len();
    server.spawn().await;
    let lines = server.log_lines()[before..].to_vec();
    for plugin in builtins {
        let hits: Vec<_> = lines
            .iter()
            .filter(|l| {
                l["fields"]["message"] == "plugin loaded from the compile cache"
                    && l["fields"]["plugin"] == plugin
            })
            .collect();
        assert_eq!(hits.len(), 1, "{plugin}: {lines:?}");
        assert!(hits[0]["fields"]["elapsed_ms"].is_u64());
        assert!(!lines.iter().any(
            |l| l["fields"]["message"] == "plugin compiled" && l["fields"]["plugin"] == plugin
        ));
    }
}
