//! Example: a real ChatOps command. `/deploy SERVICE [ENV]` (analysts and admins) starts a
//! deployment through a deploy API with a bearer token, reports progress to the session
//! while it polls the deployment's status, and can be cancelled (`/cancel`, or the page's
//! cancel button). docs/plugins.md walks through it from config to use.
//!
//! The API it expects (a fake of it runs in the end-to-end tests):
//! - `POST {api}/deployments` `{"service","env"}` → `{"id"}`
//! - `GET {api}/deployments/{id}` → `{"state": "running"|"succeeded"|"failed",
//!   "progress"?: 0.0..1.0, "message"?: "…"}`

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use slashd_plugin_api::host::http::Request;
use slashd_plugin_api::host::{config, progress, secrets};
use slashd_plugin_api::{
    export_plugin, Capability, Command, Invocation, Manifest, Plugin, PluginError, Reply, Role,
};

struct Deploy;

impl Plugin for Deploy {
    fn manifest() -> Manifest {
        Manifest::new("deploy", "0.2.0")
            .command(
                Command::new("deploy", "Deploy a service and follow it to the end")
                    .usage("/deploy SERVICE [ENV]")
                    .min_role(Role::Analyst),
            )
            .capability(Capability::Http)
            .capability(Capability::Secrets)
            .capability(Capability::Config)
            .capability(Capability::Progress)
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        let usage = || PluginError::Usage("usage: /deploy SERVICE [ENV]".into());
        let service = call.args.first().ok_or_else(usage)?;
        if call.args.len() > 2
            || !service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(usage());
        }
        let setting = |key: &str| config::get(key).map_err(PluginError::Failed);
        let env = match call.args.get(1) {
            Some(env) => env.clone(),
            None => setting("default_env")?
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "staging".into()),
        };
        let api = setting("api")?
            .and_then(|v| v.as_str().map(|s| s.trim_end_matches('/').to_string()))
            .ok_or_else(|| PluginError::Failed("settings.api is not configured".into()))?;
        let poll =
            Duration::from_millis(setting("poll_ms")?.and_then(|v| v.as_u64()).unwrap_or(1000));
        let token = secrets::get("token")
            .map_err(PluginError::Failed)?
            .ok_or_else(|| PluginError::Failed("secret `token` is not configured".into()))?;

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
                    .with_data(json!({ "deployment": id, "service": service, "env": env })))
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

export_plugin!(Deploy);
