//! Outbound HTTP: the allow-list (scheme, host, port, path prefix), the address rules
//! checked on the address connected to, no redirects, and the per-call limits — each
//! refusal reaching the plugin as a wasi:http error it reports, logged, and harmless.

use serde_json::Value;

use super::Reach;
use crate::support::{assert_no_panic, error_code, joined, reply_text, usable};

/// `check(line, Ok(reply) | Err(part of the plugin_failed text))`.
async fn check(
    ws: &mut crate::harness::Ws,
    session: &str,
    line: &str,
    expected: Result<&str, &str>,
) {
    let frame = ws.command(session, line).await;
    match expected {
        Ok(reply) => assert_eq!(reply_text(&frame), reply, "{line}"),
        Err(part) => {
            assert_eq!(error_code(&frame), "plugin_failed", "{line}: {frame}");
            let message = frame["message"].as_str().unwrap();
            assert!(message.contains(part), "{line}: {message:?} lacks {part:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_is_all_a_plugin_can_reach() {
    let reach = Reach::start(|s| s).await;
    let (server, world) = (&reach.server, &reach.world);
    let user = server.user("hal", "viewer").await;
    let (mut ws, session) = joined(server, &user, "egress").await;
    let port = world.port;
    let denied = "HTTP request failed: HttpRequestDenied";

    check(
        &mut ws,
        &session,
        &format!("/reach-get {}", world.url("/api/hello")),
        Ok("status 200: hello from the world"),
    )
    .await;
    // The Host header names the entry's host (wasi:http 0.2 leaves it to the sender).
    let host_line = format!("/reach-get {}", world.url("/api/host"));
    let expected = format!("status 200: Host: 127.0.0.1:{}", world.port);
    check(&mut ws, &session, &host_line, Ok(&expected)).await;
    let posted = format!("/reach-post {} '{{\"a\":1}}'", world.url("/api/echo"));
    check(&mut ws, &session, &posted, Ok("status 200: {\"a\":1}")).await;
    // Off the list: another path, the same host by another name, other addresses.
    for url in [
        format!("http://127.0.0.1:{port}/admin"),
        format!("http://127.0.0.1:{port}/apix"),
        format!("http://127.0.0.1:{port}/api/../admin"),
        format!("http://127.0.0.1:{port}/api/..;/admin"),
        format!("http://127.0.0.1:{port}/api/..%5cadmin"),
        format!("https://127.0.0.1:{port}/api/hello"),
        format!("http://localhost:{port}/api/hello"),
        format!("http://[::1]:{port}/api/hello"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://127.0.0.1/api/hello".to_string(),
    ] {
        check(&mut ws, &session, &format!("/reach-get {url}"), Err(denied)).await;
    }
    // On the list by name, but the name resolves to loopback: refused on the address.
    let by_name = format!("/reach-get http://{}:{port}/api/hello", reach.loopback_name);
    check(&mut ws, &session, &by_name, Err(denied)).await;
    assert!(
        server
            .wait_for_log(|l| l["fields"]["message"] == "plugin HTTP request refused"
                && l["fields"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("a loopback address")))
            .await,
        "the address refusal is logged with its reason"
    );
    // A redirect is not followed: the plugin sees the 302.
    let before = world.hits();
    check(
        &mut ws,
        &session,
        &format!("/reach-get {}", world.url("/api/redirect")),
        Err("status 302"),
    )
    .await;
    assert_eq!(world.hits(), before + 1, "one request, no follow-up");
    // Limits: the body size, the count per call, the timeout.
    check(
        &mut ws,
        &session,
        &format!("/reach-get {}", world.url("/api/big")),
        Err("HttpResponseBodySize"),
    )
    .await;
    check(
        &mut ws,
        &session,
        &format!("/reach-many {} 4", world.url("/api/hello")),
        Err("request 4 failed: HttpRequestDenied"),
    )
    .await;
    check(
        &mut ws,
        &session,
        &format!("/reach-get {}", world.url("/api/slow")),
        Err("Timeout"),
    )
    .await;

    // Every request is logged once and counted; the server is unharmed.
    let lines = server.log_lines();
    let http_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "slashd::plugin::http")
        .collect();
    assert!(http_lines.len() >= 14, "{http_lines:?}");
    assert!(http_lines
        .iter()
        .all(|l| l["fields"]["plugin"] == "reach" && l["fields"]["method"].is_string()));
    assert!(http_lines
        .iter()
        .any(|l| l["fields"]["status"] == "200" && l["fields"]["bytes"] == 20));
    let metrics = crate::metrics::wait_for_value(
        server,
        r#"slashd_plugin_http_requests_total{plugin="reach",outcome="200"}"#,
        7.0,
    )
    .await;
    assert!(
        crate::metrics::value(
            &metrics,
            r#"slashd_plugin_http_requests_total{plugin="reach",outcome="denied"}"#
        )
        .is_some_and(|n| n >= 10.0),
        "{metrics}"
    );
    usable(&mut ws).await;
    assert_no_panic(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_outside_the_grants_is_an_error_the_plugin_sees() {
    // The manifest asks for http; config grants only secrets and progress → refused.
    let reach =
        Reach::start(|s| s.set("plugins.reach", "grants", r#"["secrets", "progress"]"#)).await;
    let server = &reach.server;
    let admin = server.admin().await;
    let (_, plugins) = server.get("/admin/plugins", &admin.token).await;
    let entry = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "reach")
        .unwrap()
        .clone();
    assert_eq!(entry["state"], "refused", "{entry}");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("needs capability http"),
        "{entry}"
    );

    // Granted what it asks: kv, which it imports but does not ask for, answers an error.
    let reach = Reach::start(|s| s).await;
    let user = reach.server.user("ida", "viewer").await;
    let (mut ws, session) = joined(&reach.server, &user, "grants").await;
    let reply = ws.command(&session, "/reach-kv").await;
    assert_eq!(
        reply_text(&reply),
        "kv refused: capability `kv` is not granted to plugin reach"
    );
    assert!(
        reach
            .server
            .wait_for_log(|l| l["fields"]["message"]
                == "plugin called a capability it was not granted"
                && l["fields"]["capability"] == "kv")
            .await
    );
}
