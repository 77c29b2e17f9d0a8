//! Secrets: the plugin gets the value; nothing else ever shows it — not the log (the
//! plugin's own lines, stdout, stderr, a panic's backtrace), not errors or replies (the host
//! writes `[secret]`), not `plugin list`, `config check`, `/admin/plugins`, the audit rows
//! or the stored history.

use serde_json::Value;

use super::{Reach, SECRET};
use crate::support::{error_code, history, joined, reply_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_the_plugin_and_nothing_else() {
    let reach = Reach::start(|s| s).await;
    let server = &reach.server;
    let user = server.user("sam", "viewer").await;
    let (mut ws, session) = joined(server, &user, "secrets").await;

    // Present for the plugin.
    let reply = ws.command(&session, "/reach-secret token len").await;
    assert_eq!(
        reply_text(&reply),
        format!("a secret of {} bytes", SECRET.len())
    );
    // Hidden in what it answers.
    let reply = ws.command(&session, "/reach-secret token reply").await;
    assert_eq!(reply_text(&reply), "the secret is [secret]");
    let reply = ws.command(&session, "/reach-secret token data").await;
    assert_eq!(
        reply["message"]["metadata"]["data"],
        serde_json::json!({"secret": "[secret]", "[secret]": 1})
    );
    for (mode, code, text) in [
        ("fail", "plugin_failed", "failed holding [secret]"),
        ("usage", "usage", "usage holding [secret]"),
        ("panic", "plugin_failed", "trapped"),
    ] {
        let frame = ws
            .command(&session, &format!("/reach-secret token {mode}"))
            .await;
        assert_eq!(error_code(&frame), code, "{frame}");
        let message = frame["message"].as_str().unwrap();
        assert!(message.contains(text), "{mode}: {message}");
    }
    let reply = ws.command(&session, "/reach-secret token log").await;
    assert_eq!(reply_text(&reply), "logged");
    for text in [
        "logging the secret [secret]",
        "printing the secret [secret]",
        "eprinting the secret [secret]",
    ] {
        assert!(
            server
                .wait_for_log(|l| l["fields"]["message"] == text)
                .await,
            "{text} not logged"
        );
    }
    // The panic's message went to stderr, hidden too.
    assert!(
        server
            .wait_for_log(|l| l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("panicked holding [secret]")))
            .await
    );

    // Absent everywhere else.
    let admin = server.admin().await;
    let (_, plugins) = server.get("/admin/plugins", &admin.token).await;
    let list = server.cli(&["plugin", "list"], None);
    let check = server.cli(&["config", "check"], None);
    let audit: Vec<Value> = {
        let (_, page) = server.get("/admin/audit?limit=500", &admin.token).await;
        page["entries"].as_array().cloned().unwrap_or_default()
    };
    assert!(!audit.is_empty(), "the audit has the invocations");
    let stored = history(server, &session, &user.token).await;
    let everything = [
        server.logs_text(),
        plugins.to_string(),
        String::from_utf8_lossy(&list.stdout).into_owned(),
        String::from_utf8_lossy(&list.stderr).into_owned(),
        String::from_utf8_lossy(&check.stdout).into_owned(),
        String::from_utf8_lossy(&check.stderr).into_owned(),
        Value::Array(audit).to_string(),
        Value::Array(stored).to_string(),
    ];
    for (i, text) in everything.iter().enumerate() {
        assert!(
            !text.contains(SECRET),
            "the secret leaked into #{i}:\n{text}"
        );
    }
    assert!(list.status.success() && check.status.success());
}
