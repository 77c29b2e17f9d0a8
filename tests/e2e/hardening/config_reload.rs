//! SPEC E — a config reload never echoes the config: a broken file's error names the
//! problem (and the key), never the secret, the value or a line of the file, neither to
//! the admin nor in the server's log.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Backend, Server, Setup};

const SEKRIT: &str = "SEKRIT-0123456789abcdef0123456789abcdef";

async fn server_with_secret() -> Server {
    Setup::new(Backend::Sqlite)
        .set("auth", "jwt_secret", &format!("{SEKRIT:?}"))
        .start()
        .await
}

/// The lines of the config file worth looking for in a message (not blank, not trivial).
fn telling_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.len() >= 5)
        .map(str::to_string)
        .collect()
}

/// Reload a broken file: 400, and neither the message nor the log holds `secrets` or any
/// line of the file. Returns the message.
async fn reload_refused(server: &Server, secrets: &[&str], case: &str) -> String {
    let admin = server.admin().await;
    let text = std::fs::read_to_string(&server.config_path).unwrap();
    let (status, body) = server
        .post("/admin/plugins/reload", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
    assert_eq!(body["error"]["code"], "bad_request", "{case}: {body}");
    let message = body["error"]["message"].as_str().unwrap().to_string();
    assert!(!message.is_empty());
    // The log line of the refusal is written by now (before the answer); give it a moment.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = server.logs_text();
    for secret in secrets {
        assert!(
            !message.contains(secret),
            "{case}: the reload error echoes {secret:?}: {message}"
        );
        assert!(
            !logs.contains(secret),
            "{case}: the server log holds {secret:?}"
        );
    }
    for line in telling_lines(&text) {
        let escaped = serde_json::to_string(&line).unwrap();
        let escaped = escaped.trim_matches('"');
        assert!(
            !message.contains(&line),
            "{case}: the reload error quotes the file's line {line:?}: {message}"
        );
        assert!(
            !logs.contains(escaped),
            "{case}: the server log quotes the file's line {line:?}"
        );
    }
    message
}

/// An unterminated string on a new line (the secret's own line, broken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unterminated_string_is_not_echoed() {
    let server = server_with_secret().await;
    server.edit_config(|text| {
        format!("{text}\njwt_secret = \"SEKRIT-unterminated-9876543210fedcba9876543210\n")
    });
    reload_refused(
        &server,
        &[SEKRIT, "SEKRIT-unterminated", "9876543210fedcba"],
        "unterminated string",
    )
    .await;
}

/// A broken table header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_table_header_is_not_echoed() {
    let server = server_with_secret().await;
    server.edit_config(|text| {
        // The secret's section comes first: break the file right after it.
        text.replacen("[auth]\n", "[auth\n", 1)
    });
    reload_refused(&server, &[SEKRIT], "broken [auth header").await;
}

/// A value of the wrong type: the message names the key, never the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_type_names_the_key_not_the_value() {
    const VALUE: &str = "12345678901234567890123456789012345";
    let server = server_with_secret().await;
    server.edit_config(|text| {
        text.replace(
            &format!("jwt_secret = {SEKRIT:?}"),
            &format!("jwt_secret = {VALUE}"),
        )
    });
    let message = reload_refused(&server, &[SEKRIT, VALUE], "wrong type").await;
    assert!(
        message.contains("jwt_secret"),
        "the error names the key: {message}"
    );
}
