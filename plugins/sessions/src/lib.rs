//! `/sessions` (the caller's recent sessions) and `/clear` (end the current session).

use serde_json::json;
use slashd_plugin_api::host::sessions;
use slashd_plugin_api::{
    export_plugin, Capability, Command, Invocation, Manifest, Plugin, PluginError, Reply,
};

const RECENT: u32 = 20;

struct Sessions;

impl Plugin for Sessions {
    fn manifest() -> Manifest {
        Manifest::new("sessions", env!("CARGO_PKG_VERSION"))
            .command(Command::new("sessions", "Your recent sessions"))
            .command(
                Command::new("clear", "End this session")
                    .confirm("End this session for everyone in it? It becomes read-only history."),
            )
            .capability(Capability::Sessions)
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        if !call.args.is_empty() {
            return Err(PluginError::Usage(format!("/{}", call.command)));
        }
        match call.command.as_str() {
            "clear" => {
                sessions::end_current().map_err(PluginError::Failed)?;
                Ok(Reply::plain("This session has ended."))
            }
            _ => {
                let list = sessions::list_mine(RECENT).map_err(PluginError::Failed)?;
                if list.is_empty() {
                    return Ok(Reply::plain("You have no sessions."));
                }
                let mut body =
                    String::from("| session | status | last activity |\n|---|---|---|\n");
                for s in &list {
                    let here = if s.id == call.session.id {
                        " *(this one)*"
                    } else {
                        ""
                    };
                    body.push_str(&format!(
                        "| {}{} | {} | {} |\n",
                        s.title.replace('|', "\\|"),
                        here,
                        s.status,
                        s.last_activity_at
                    ));
                }
                let rows: Vec<_> = list
                    .iter()
                    .map(|s| json!({"id": s.id, "title": s.title, "status": s.status, "last_activity_at": s.last_activity_at, "created_at": s.created_at}))
                    .collect();
                Ok(Reply::markdown(body).with_data(json!({ "sessions": rows })))
            }
        }
    }
}

export_plugin!(Sessions);
