//! The CLI against a real database.

use reqwest::StatusCode;

use crate::harness::{Backend, Server, PASSWORD};
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
