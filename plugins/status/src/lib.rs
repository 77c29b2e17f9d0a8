//! `/status`: this session and this connection.

use serde_json::json;
use slashd_plugin_api::host::sessions;
use slashd_plugin_api::{
    export_plugin, Capability, Command, Invocation, Manifest, Plugin, PluginError, Reply,
};

struct Status;

impl Plugin for Status {
    fn manifest() -> Manifest {
        Manifest::new("status", env!("CARGO_PKG_VERSION"))
            .command(Command::new("status", "This session and this connection"))
            .capability(Capability::Sessions)
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        if !call.args.is_empty() {
            return Err(PluginError::Usage("/status".into()));
        }
        let session = sessions::current().map_err(PluginError::Failed)?;
        let connection = sessions::connection().map_err(PluginError::Failed)?;
        let role = call.caller.role.as_str();
        let body = format!(
            "**Session** {title}\n\n\
             | | |\n|---|---|\n\
             | id | `{id}` |\n| status | {status} |\n| created | {created} |\n\
             | messages | {count} |\n| participants | {participants} |\n\n\
             **Connection**\n\n\
             | | |\n|---|---|\n\
             | id | `{conn}` |\n| connected since | {since} |\n| user | {user} ({role}) |",
            title = session.title.replace('|', "\\|"),
            id = session.id,
            status = session.status,
            created = session.created_at,
            count = session.message_count,
            participants = session.participants.len(),
            conn = connection.id,
            since = connection.connected_at,
            user = call.caller.name,
        );
        Ok(Reply::markdown(body).with_data(json!({
            "session": {
                "id": session.id,
                "title": session.title,
                "status": session.status,
                "created_at": session.created_at,
                "owner_id": session.owner_id,
                "message_count": session.message_count,
                "participants": session.participants,
            },
            "connection": {
                "id": connection.id,
                "connected_at": connection.connected_at,
                "user_id": call.caller.id,
                "role": role,
            },
        })))
    }
}

export_plugin!(Status);
