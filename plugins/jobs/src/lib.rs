//! Built-in plugin `jobs`: `/jobs` lists the caller's running commands (everyone's for an
//! admin) and `/cancel [id]` cancels one — by default the caller's most recent in this
//! session.

use slashd_plugin_api::host::jobs::{self, Job};
use slashd_plugin_api::{
    export_plugin, Capability, Command, Invocation, Manifest, Plugin, PluginError, Reply,
};

struct Jobs;

impl Plugin for Jobs {
    fn manifest() -> Manifest {
        Manifest::new("jobs", "0.2.0")
            .command(Command::new(
                "jobs",
                "Your running commands (everyone's, for an admin)",
            ))
            .command(
                Command::new(
                    "cancel",
                    "Cancel a running command: yours, or anyone's for an admin",
                )
                .usage("/cancel [id]"),
            )
            .capability(Capability::Jobs)
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        // This very call is a job too; it is not worth listing or cancelling.
        let running: Vec<Job> = jobs::list_mine()
            .map_err(PluginError::Failed)?
            .into_iter()
            .filter(|j| j.id != call.id)
            .collect();
        match call.command.as_str() {
            "jobs" => Ok(list(&running)),
            "cancel" => {
                let target = match call.args.first() {
                    Some(id) => id.clone(),
                    None => running
                        .iter()
                        .rev()
                        .find(|j| j.user_id == call.caller.id && j.session_id == call.session.id)
                        .map(|j| j.id.clone())
                        .ok_or_else(|| {
                            PluginError::Usage(
                                "nothing of yours is running in this session; usage: /cancel [id]"
                                    .into(),
                            )
                        })?,
                };
                jobs::cancel(&target).map_err(PluginError::Failed)?;
                Ok(Reply::plain(format!("cancelling {target}")).ephemeral())
            }
            other => Err(PluginError::Failed(format!("unexpected command {other}"))),
        }
    }
}

fn list(running: &[Job]) -> Reply {
    if running.is_empty() {
        return Reply::plain("no commands are running").ephemeral();
    }
    let mut text =
        String::from("| id | command | by | since | progress |\n|---|---|---|---|---|\n");
    for j in running {
        let progress = match j.fraction {
            Some(f) => format!("{:.0}% {}", f * 100.0, j.text),
            None => j.text.clone(),
        };
        text.push_str(&format!(
            "| `{}` | /{} | {} | {} | {} |\n",
            j.id, j.command, j.user_name, j.started_at, progress
        ));
    }
    let data = serde_json::to_value(running).unwrap_or_default();
    Reply::markdown(text)
        .with_data(serde_json::json!({ "jobs": data }))
        .ephemeral()
}

export_plugin!(Jobs);
