//! `GET /metrics`: Prometheus (OpenMetrics) text, no token needed, and the counters move
//! when things happen.

use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::{Backend, Server, Setup};
use crate::on_both_backends;
use crate::support::joined;

on_both_backends!(metrics_count_what_happens);

/// The exposition text (asserting a 200 in OpenMetrics text).
pub async fn scrape(server: &Server) -> String {
    let resp = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status(), StatusCode::OK, "no token needed");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = resp.text().await.expect("metrics body");
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// The value of one series (`name{labels}` exactly as exported), if present.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Scrape until `series` has `expected` (counters are bumped after the reply is sent).
pub async fn wait_for_value(server: &Server, series: &str, expected: f64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = scrape(server).await;
        if value(&text, series) == Some(expected) {
            return text;
        }
        if std::time::Instant::now() >= deadline {
            panic!("{series} never became {expected}:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metrics_count_what_happens(backend: Backend) {
    let server = Server::start(backend).await;
    let text = scrape(&server).await;
    assert_eq!(value(&text, "slashd_connections"), Some(0.0), "{text}");
    assert_eq!(value(&text, "slashd_session_joins_total"), Some(0.0));
    assert!(
        !text.contains("slashd_cluster_redis_connected"),
        "no Redis gauge without a cluster:\n{text}"
    );
    for series in [
        r#"slashd_messages_stored_total{role="user"}"#,
        r#"slashd_command_refusals_total{reason="unknown"}"#,
        r#"slashd_assistant_replies_total{outcome="failed"}"#,
        "slashd_outbound_dropped_frames_total",
        "slashd_slow_reader_closes_total",
        "slashd_users_online",
    ] {
        assert_eq!(value(&text, series), Some(0.0), "{series}:\n{text}");
    }

    let viewer = server.user("vera", "viewer").await;
    let session = server.session(&viewer, "metered").await;
    let mut ws = server.ws(&viewer).await;
    ws.join(&session).await;
    let text = scrape(&server).await;
    assert_eq!(value(&text, "slashd_connections"), Some(1.0), "{text}");
    assert_eq!(value(&text, "slashd_users_online"), Some(1.0));
    assert_eq!(value(&text, "slashd_session_joins_total"), Some(1.0));

    let reply = ws.command(&session, "/help").await;
    assert_eq!(reply["type"], "message", "{reply}");
    let text = wait_for_value(
        &server,
        r#"slashd_command_invocations_total{plugin="help",outcome="ok"}"#,
        1.0,
    )
    .await;
    assert!(
        text.contains("# TYPE slashd_command_duration_seconds histogram"),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"slashd_command_duration_seconds_count{plugin="help"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"slashd_messages_stored_total{role="user"}"#),
        Some(1.0),
        "the invocation"
    );
    assert_eq!(
        value(&text, r#"slashd_messages_stored_total{role="command"}"#),
        Some(1.0),
        "the reply"
    );

    // Refused before running: counted by reason, not as an invocation.
    let unknown = ws.command(&session, "/no-such-command").await;
    assert_eq!(unknown["code"], "unknown_command", "{unknown}");
    let forbidden = ws.command(&session, "/reload").await;
    assert_eq!(forbidden["code"], "forbidden", "{forbidden}");
    let text = scrape(&server).await;
    assert_eq!(
        value(&text, r#"slashd_command_refusals_total{reason="unknown"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"slashd_command_refusals_total{reason="forbidden"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"slashd_command_invocations_total{plugin="help",outcome="ok"}"#
        ),
        Some(1.0),
        "refusals are not invocations"
    );

    drop(ws);
    wait_for_value(&server, "slashd_connections", 0.0).await;
}

/// In cluster mode the Redis gauge is exported, and reads 1 while Redis answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_state_is_exported_in_a_cluster() {
    let nodes = Setup::new(Backend::Postgres)
        .start_cluster(1, "redis://127.0.0.1:6379")
        .await;
    let text = scrape(&nodes[0]).await;
    assert_eq!(
        value(&text, "slashd_cluster_redis_connected"),
        Some(1.0),
        "{text}"
    );
}

/// Every `slashd_*` name the operator pictures in `deploy/` use (the Grafana dashboard,
/// the Prometheus alert rules) is one real nodes' `/metrics` expose — a series, or the
/// family a description names. A renamed metric fails here, not on a dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_dashboards_and_alerts_name_only_exposed_metrics() {
    // Cluster mode, for the Redis gauge; a command, for the latency histogram.
    let nodes = Setup::new(Backend::Postgres)
        .start_cluster(1, "redis://127.0.0.1:6379")
        .await;
    let node = &nodes[0];
    let user = node.user("ops", "viewer").await;
    let (mut ws, session) = joined(node, &user, "ops").await;
    ws.command(&session, "/help").await;
    let cluster_text = wait_for_value(
        node,
        r#"slashd_command_invocations_total{plugin="help",outcome="ok"}"#,
        1.0,
    )
    .await;
    // A plugin's outbound HTTP request, for the plugin HTTP series (a family appears with
    // its first series).
    let reach = crate::plugin_api::Reach::start(|s| s).await;
    let user = reach.server.user("hal", "viewer").await;
    let (mut ws, session) = joined(&reach.server, &user, "egress").await;
    let line = format!("/reach-get {}", reach.world.url("/api/hello"));
    ws.command(&session, &line).await;
    let http_text = wait_for_value(
        &reach.server,
        r#"slashd_plugin_http_requests_total{plugin="reach",outcome="200"}"#,
        1.0,
    )
    .await;
    let text = format!("{cluster_text}{http_text}");

    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut used = std::collections::BTreeSet::new();
    for file in ["deploy/grafana/slashd.json", "deploy/prometheus/alerts.yml"] {
        let source = std::fs::read_to_string(root.join(file)).expect(file);
        used.extend(metric_names(&source));
    }
    assert!(
        used.len() >= 10,
        "too few metrics found in deploy/: {used:?}"
    );
    let missing: Vec<&String> = used.iter().filter(|n| !exposed(&text, n)).collect();
    assert!(
        missing.is_empty(),
        "deploy/ names series /metrics does not expose: {missing:?}\n{text}"
    );
}

/// Every `slashd_…` identifier in `source`.
fn metric_names(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("slashd_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.push(tail[..len].to_string());
        }
        rest = &tail[len..];
    }
    names
}

fn exposed(text: &str, name: &str) -> bool {
    let sample = text.lines().any(|line| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    });
    let family = [
        ("", "counter"),
        ("", "histogram"),
        ("_total", "counter"),
        ("_bucket", "histogram"),
        ("_sum", "histogram"),
        ("_count", "histogram"),
        ("", "gauge"),
    ]
    .iter()
    .any(|(suffix, kind)| {
        name.strip_suffix(suffix)
            .is_some_and(|base| text.lines().any(|l| l == format!("# TYPE {base} {kind}")))
    });
    sample || family
}

#[test]
fn metric_names_are_found_whole() {
    let check = |source: &str, expected: &[&str]| assert_eq!(metric_names(source), expected);
    check(
        "rate(slashd_messages_stored_total[5m])",
        &["slashd_messages_stored_total"],
    );
    check(
        "sum(slashd_a) / slashd_b_count{x=\"y\"}",
        &["slashd_a", "slashd_b_count"],
    );
    check("uid: slashd-overview, job=\"slashd\", my_slashd_x", &[]);
}
