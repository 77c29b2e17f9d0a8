//! `/help [command]`: the commands the caller may run, or one in detail.

use serde_json::json;
use slashd_plugin_api::host::{commands, CommandInfo};
use slashd_plugin_api::{
    export_plugin, ArgKind, ArgSpec, Capability, Command, Completion, CompletionRequest,
    Invocation, Manifest, Plugin, PluginError, Reply,
};

struct Help;

impl Plugin for Help {
    fn manifest() -> Manifest {
        Manifest::new("help", env!("CARGO_PKG_VERSION"))
            .command(
                Command::new("help", "List the commands you can run, or explain one").arg(
                    ArgSpec::new("command", ArgKind::Text, "The command to explain").completes(),
                ),
            )
            .capability(Capability::Commands)
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        // `commands::visible` is filtered by the host with the same rule dispatch uses.
        let visible = commands::visible().map_err(PluginError::Failed)?;
        match call.args.as_slice() {
            [] => Ok(overview(&visible)),
            [name] => {
                let name = name.trim_start_matches('/');
                let found = visible
                    .iter()
                    .find(|c| c.name == name || c.aliases.iter().any(|a| a == name));
                match found {
                    Some(command) => Ok(detail(command)),
                    None => Err(PluginError::Usage(format!(
                        "no command /{name} that you can run; /help lists them"
                    ))),
                }
            }
            _ => Err(PluginError::Usage("/help [--command TEXT]".into())),
        }
    }

    /// Command names the caller may run (the host filters `visible` by role).
    fn complete(request: CompletionRequest) -> Vec<Completion> {
        let partial = request.partial.trim_start_matches('/');
        commands::visible()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.name.starts_with(partial))
            .map(|c| Completion {
                value: c.name,
                label: Some(c.summary),
            })
            .collect()
    }
}

fn overview(visible: &[CommandInfo]) -> Reply {
    let mut body = String::from("| command | what it does |\n|---|---|\n");
    for c in visible {
        body.push_str(&format!(
            "| `{}` | {} |\n",
            escape(&c.usage),
            escape(&c.summary)
        ));
    }
    body.push_str("\n`/help COMMAND` explains one.");
    let rows: Vec<_> = visible.iter().map(info_json).collect();
    Reply::markdown(body).with_data(json!({ "commands": rows }))
}

fn detail(c: &CommandInfo) -> Reply {
    let mut body = format!(
        "**/{}** — {}\n\nUsage: `{}`\n\nRole: {}",
        c.name,
        escape(&c.summary),
        // A code span outside a table: `|` stays as it is.
        c.usage.replace('`', "'"),
        c.min_role.as_str()
    );
    if !c.aliases.is_empty() {
        let aliases: Vec<String> = c.aliases.iter().map(|a| format!("`/{a}`")).collect();
        body.push_str(&format!("\n\nAliases: {}", aliases.join(", ")));
    }
    Reply::markdown(body).with_data(json!({ "command": info_json(c) }))
}

fn info_json(c: &CommandInfo) -> serde_json::Value {
    json!({
        "name": c.name,
        "aliases": c.aliases,
        "summary": c.summary,
        "usage": c.usage,
        "min_role": c.min_role.as_str(),
        "plugin": c.plugin,
    })
}

/// Keep table cells intact: a `|` in a summary would split the row.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

export_plugin!(Help);
