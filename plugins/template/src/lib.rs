//! A team's first command: copy this crate, rename it, and build it with
//! `cargo build --release --target wasm32-wasip2`. See docs/plugins.md.
//!
//! `/hello [name]` greets someone, with a button anyone in the session may press.

use serde_json::json;
use slashd_plugin_api::{
    export_plugin, Action, ActionEvent, ActionStyle, ArgKind, ArgSpec, Command, Invocation,
    Manifest, Plugin, PluginError, Reply, Role, Value,
};

struct Hello;

impl Plugin for Hello {
    fn manifest() -> Manifest {
        Manifest::new("hello", "0.2.0").command(
            // A typed argument: the host parses and checks it, and writes the usage line.
            Command::new("hello", "Say hello").arg(ArgSpec::new(
                "name",
                ArgKind::Text,
                "Who to greet (default: you)",
            )),
        )
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        let name = match call.value("name") {
            Some(Value::Text(name)) => name.clone(),
            _ => call.caller.name.clone(),
        };
        Ok(Reply::markdown(format!("Hello, **{name}**!"))
            .with_data(json!({ "name": name }))
            .with_action(Action {
                id: "wave".into(),
                label: "Wave back".into(),
                style: ActionStyle::Secondary,
                min_role: Role::Viewer,
                confirm: None,
                once: false,
            }))
    }

    /// The "Wave back" button; its result is a new message in the session.
    fn on_action(event: ActionEvent) -> Result<Reply, PluginError> {
        let greeted = event
            .data
            .as_ref()
            .and_then(|d| d.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or("someone");
        match event.action.as_str() {
            "wave" => Ok(Reply::plain(format!(
                "{} waves back at {greeted}",
                event.caller.name
            ))),
            other => Err(PluginError::Failed(format!("no such action {other}"))),
        }
    }
}

export_plugin!(Hello);
// The same source as a trusted native library (see docs/plugins.md before you use it; a
// native plugin's replies carry no buttons).
slashd_plugin_api::export_native_plugin!(Hello);
