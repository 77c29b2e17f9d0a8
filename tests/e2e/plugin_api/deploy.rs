//! The example ChatOps command, `plugins/examples/deploy`, against a fake deploy API: an
//! analyst deploys with the configured bearer secret and sees progress; a viewer may not;
//! a deploy in flight can be cancelled; its typed arguments complete and its buttons work.

use serde_json::json;

use super::world::{World, DEPLOY_TOKEN};
use super::{frames_until, start_command};
use crate::harness::{Backend, Server, Setup};
use crate::interactive::{complete, press, values};
use crate::support::{error_code, joined, reply_text};

async fn start(world: &World, token_file: &std::path::Path) -> Server {
    let http = format!(
        r#"{{ allow = ["{}"], max_requests = 10000, timeout_ms = 5000 }}"#,
        world.url("/api/deployments")
    );
    let settings = format!(
        r#"{{ api = "{}", poll_ms = 50, services = ["api", "web", "worker"] }}"#,
        world.url("/api")
    );
    let secrets = format!(r#"{{ token = {{ file = {token_file:?} }} }}"#);
    Setup::new(Backend::Sqlite)
        .plugin(
            "deploy",
            &[
                ("grants", r#"["http", "secrets", "config", "progress"]"#),
                ("timeout_ms", "600000"),
                ("http", &http),
                ("settings", &settings),
                ("secrets", &secrets),
            ],
        )
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_deploys_with_progress_and_can_cancel() {
    let world = World::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("deploy_token");
    std::fs::write(&token_file, DEPLOY_TOKEN).unwrap();
    let server = start(&world, &token_file).await;

    let viewer = server.user("vic", "viewer").await;
    let (mut vws, vsession) = joined(&server, &viewer, "ops").await;
    let refused = vws.command(&vsession, "/deploy web").await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");

    let analyst = server.user("ana", "analyst").await;
    let (mut ws, session) = joined(&server, &analyst, "ops").await;
    let id = start_command(&mut ws, &session, "/deploy web prod").await;
    let seen = frames_until(&mut ws, |f| {
        f["type"] == "message" && f["message"]["metadata"]["reply_to"] == id.as_str()
    })
    .await;
    let reply = seen.last().unwrap();
    assert!(
        reply_text(reply).starts_with("Deployed **web** to **prod** in "),
        "{reply}"
    );
    assert_eq!(reply["message"]["metadata"]["data"]["deployment"], "d-1");
    let progress: Vec<_> = seen
        .iter()
        .filter(|f| f["type"] == "command_progress")
        .collect();
    assert!(
        progress
            .iter()
            .any(|f| f["text"] == "deploying web to prod (d-1)"),
        "{seen:?}"
    );
    assert!(progress.iter().any(|f| f["state"] == "done"), "{seen:?}");
    let bearer = format!("Bearer {DEPLOY_TOKEN}");
    assert!(world.authorizations().len() >= 4);
    assert!(world.authorizations().iter().all(|a| *a == bearer));

    // A slow deploy, cancelled with /cancel.
    let id = start_command(&mut ws, &session, "/deploy slow-api").await;
    frames_until(&mut ws, |f| {
        f["type"] == "command_progress" && f["invocation_id"] == id.as_str()
    })
    .await;
    ws.send(json!({"type": "cancel", "invocation_id": id}))
        .await;
    let heard = frames_until(&mut ws, |f| f["type"] == "error").await;
    assert_eq!(error_code(heard.last().unwrap()), "cancelled");
    assert!(
        !server.logs_text().contains(DEPLOY_TOKEN),
        "the token leaked into the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_completes_checks_arguments_and_its_buttons_work() {
    let world = World::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("deploy_token");
    std::fs::write(&token_file, DEPLOY_TOKEN).unwrap();
    let server = start(&world, &token_file).await;
    let admin = server.admin().await;
    let analyst = server.user("ana", "analyst").await;
    let session = server.session(&analyst, "ops").await;
    server.add_member(&analyst, &session, &admin).await;
    let mut ws = server.ws(&analyst).await;
    ws.join(&session).await;
    let mut aws = server.ws(&admin).await;
    aws.join(&session).await;

    // The plugin completes services from its settings; the host completes `--env`.
    let services = complete(&mut ws, &session, "/deploy w").await;
    assert_eq!(values(&services), ["web", "worker"]);
    let envs = complete(&mut ws, &session, "/deploy web --env ").await;
    assert_eq!(values(&envs), ["staging", "prod"]);
    let refused = ws.command(&session, "/deploy web qa").await;
    assert_eq!(
        refused["message"],
        "usage: --env must be one of staging, prod; /deploy <service> [--env staging|prod]"
    );
    assert_eq!(world.hits(), 0, "a refused line reached the deploy API");

    let reply = ws.command(&session, "/deploy web --env=prod").await;
    let message = reply["message"].clone();
    let id = message["id"].as_str().unwrap().to_string();
    let actions = message["metadata"]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2, "{message}");
    assert_eq!(actions[1]["min_role"], "admin");

    // Status: an analyst's button; Roll back: an admin's, confirmed, once.
    let status = press(&mut ws, &analyst, &session, &id, "status").await;
    assert_eq!(
        reply_text(&status),
        "web in prod (d-1): succeeded",
        "{status}"
    );
    let forbidden = press(&mut ws, &analyst, &session, &id, "rollback").await;
    assert_eq!(error_code(&forbidden), "forbidden", "{forbidden}");
    let asked = press(&mut aws, &admin, &session, &id, "rollback").await;
    assert_eq!(asked["type"], "confirm_required", "{asked}");
    assert_eq!(asked["prompt"], "Roll back web in prod?");
    assert!(world.rollbacks().is_empty());
    aws.send(
        json!({"type": "confirm", "confirmation_id": asked["confirmation_id"],
                    "accept": true}),
    )
    .await;
    let done = frames_until(&mut aws, |f| {
        f["type"] == "message" && f["message"]["metadata"]["action"] == "rollback"
    })
    .await;
    assert!(
        reply_text(done.last().unwrap()).starts_with("Rolling back **web** in **prod** (`d-1`)"),
        "{done:?}"
    );
    assert_eq!(world.rollbacks(), ["d-1"]);
    let again = press(&mut aws, &admin, &session, &id, "rollback").await;
    assert_eq!(again["message"], "this button was already used");
    assert_eq!(world.rollbacks().len(), 1);
}
