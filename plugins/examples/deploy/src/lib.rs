//! Example: a real ChatOps command. `/deploy <service> [--env staging|prod]` (analysts and
//! admins) starts a deployment through a deploy API with a bearer token, reports progress
//! to the session while it polls the deployment's status, and can be cancelled (`/cancel`,
//! or the page's cancel button). Its arguments are typed: the host checks `--env` and
//! completes `service` from the plugin's `services` setting. The reply carries two buttons:
//! "Status" (analysts) and "Roll back" (admins, confirmed, once). docs/plugins.md walks
//! through it from config to use.
//!
//! The API it expects (a fake of it runs in the end-to-end tests):
//! - `POST {api}/deployments` `{"service","env"}` → `{"id"}`
//! - `GET {api}/deployments/{id}` → `{"state": "running"|"succeeded"|"failed",
//!   "progress"?: 0.0..1.0, "message"?: "…"}`
//! - `POST {api}/deployments/{id}/rollback` → `{"id"}` (the rollback's deployment)

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use slashd_plugin_api::host::http::Request;
use slashd_plugin_api::host::{config, progress, secrets};
use slashd_plugin_api::{
    export_plugin, Action, ActionEvent, ActionStyle, ArgKind, ArgSpec, Capability, Command,
    Completion, CompletionRequest, Invocation, Manifest, Plugin, PluginError, Reply, Role,
    Value as Typed,
};

struct Deploy;

impl Plugin for Deploy {
    fn manifest() -> Manifest {
        Manifest::new("deploy", "0.2.0")
            .command(
                Command::new("deploy", "Deploy a service and follow it to the end")
                    .arg(
                        ArgSpec::new("service", ArgKind::Text, "The service to deploy")
                            .required()
                            .completes(),
                    )
                    .arg(
                        ArgSpec::new(
                            "env",
                            ArgKind::Choice(vec!["staging".into(), "prod".into()]),
                            "Where to deploy it",
                        )
                        .default("staging"),
                    )
                    .min_role(Role::Analyst),
            )
            .capability(Capability::Http)
            .capability(Capability::Secrets)
            .capability(Capability::Config)
            .capability(Capability::Progress)
    }

    /// Service names from the `services` setting.
    fn complete(request: CompletionRequest) -> Vec<Completion> {
        let services = config::get("services").ok().flatten().unwrap_or_default();
        services
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|s| s.starts_with(&request.partial))
            .map(|s| Completion {
                value: s.to_string(),
                label: Some(format!("deploy {s}")),
            })
            .collect()
    }

    fn on_action(event: ActionEvent) -> Result<Reply, PluginError> {
        let data: Value = event
            .data
            .ok_or_else(|| PluginError::Failed("the reply has no deployment".into()))?;
        let field = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        };
        let (id, service, env) = (field("deployment"), field("service"), field("env"));
        let (api, token) = (api()?, token()?);
        match event.action.as_str() {
            "status" => {
                let status = Request::get(&format!("{api}/deployments/{id}"))
                    .bearer(&token)
                    .send()?
                    .json::<Value>()?;
                let state = status
                    .get("state")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                Ok(Reply::plain(format!("{service} in {env} ({id}): {state}")))
            }
            "rollback" => {
                let rolled = Request::post(&format!("{api}/deployments/{id}/rollback"))
                    .bearer(&token)
                    .json(&json!({ "by": event.caller.name }))
                    .send()?;
                if !rolled.is_success() {
                    return Err(PluginError::Failed(format!(
                        "the deploy API refused the rollback: {}",
                        rolled.status
                    )));
                }
                Ok(Reply::markdown(format!(
                    "Rolling back **{service}** in **{env}** (`{id}`), asked by {}",
                    event.caller.name
                )))
            }
            other => Err(PluginError::Failed(format!("no such action {other}"))),
        }
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        // The host checked both: `service` is there, `env` is staging or prod.
        let text = |name: &str| match call.value(name) {
            Some(Typed::Text(t) | Typed::Choice(t)) => Ok(t.clone()),
            _ => Err(PluginError::Failed(format!("the host gave no {name}"))),
        };
        let (service, env) = (text("service")?, text("env")?);
        if !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(PluginError::Usage(
                "a service name is letters, digits, - _ and .".into(),
            ));
        }
        let setting = |key: &str| config::get(key).map_err(PluginError::Failed);
        let api = api()?;
        let poll =
            Duration::from_millis(setting("poll_ms")?.and_then(|v| v.as_u64()).unwrap_or(1000));
        let token = token()?;

        let started = Instant::now();
        let created = Request::post(&format!("{api}/deployments"))
            .bearer(&token)
            .json(&json!({ "service": service, "env": env, "by": call.caller.name }))
            .send()?;
        if !created.is_success() {
            return Err(PluginError::Failed(format!(
                "the deploy API refused: {} {}",
                created.status,
                created.text().chars().take(200).collect::<String>()
            )));
        }
        let id = created
            .json::<Value>()?
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| PluginError::Failed("the deploy API answered no id".into()))?;
        progress::report(&format!("deploying {service} to {env} ({id})"), Some(0.0))
            .map_err(PluginError::Failed)?;
        loop {
            std::thread::sleep(poll);
            let status = Request::get(&format!("{api}/deployments/{id}"))
                .bearer(&token)
                .send()?
                .json::<Value>()?;
            let message = status.get("message").and_then(Value::as_str).unwrap_or("");
            let fraction = status
                .get("progress")
                .and_then(Value::as_f64)
                .map(|f| f as f32);
            match status.get("state").and_then(Value::as_str) {
                Some("succeeded") => {
                    return Ok(Reply::markdown(format!(
                        "Deployed **{service}** to **{env}** in {}s (`{id}`)",
                        started.elapsed().as_secs()
                    ))
                    .with_data(json!({ "deployment": id, "service": service, "env": env }))
                    .with_action(Action {
                        id: "status".into(),
                        label: "Status".into(),
                        style: ActionStyle::Secondary,
                        min_role: Role::Analyst,
                        confirm: None,
                        once: false,
                    })
                    .with_action(Action {
                        id: "rollback".into(),
                        label: "Roll back".into(),
                        style: ActionStyle::Danger,
                        min_role: Role::Admin,
                        confirm: Some(format!("Roll back {service} in {env}?")),
                        once: true,
                    }))
                }
                Some("failed") => {
                    return Err(PluginError::Failed(format!(
                        "deployment {id} failed: {message}"
                    )))
                }
                _ => progress::report(&format!("{service} → {env}: {message}"), fraction)
                    .map_err(PluginError::Failed)?,
            }
        }
    }
}

fn api() -> Result<String, PluginError> {
    config::get("api")
        .map_err(PluginError::Failed)?
        .and_then(|v| v.as_str().map(|s| s.trim_end_matches('/').to_string()))
        .ok_or_else(|| PluginError::Failed("settings.api is not configured".into()))
}

fn token() -> Result<String, PluginError> {
    secrets::get("token")
        .map_err(PluginError::Failed)?
        .ok_or_else(|| PluginError::Failed("secret `token` is not configured".into()))
}

export_plugin!(Deploy);
