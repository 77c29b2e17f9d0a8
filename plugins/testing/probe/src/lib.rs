//! Test plugin: commands that report what the sandbox and the host let them see.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;
use slashd_plugin_api::host::{config, kv};
use slashd_plugin_api::{
    export_plugin, Action, ActionEvent, ActionStyle, ArgKind, ArgSpec, Capability, Command,
    Completion, CompletionRequest, Invocation, Manifest, Plugin, PluginError, Reply, Role, Value,
};

/// What the page's tests feed through labels, prompts and completions.
const XSS: &str = r#"<img src=x onerror="window.__xss=1">"#;

struct Probe;

impl Plugin for Probe {
    fn manifest() -> Manifest {
        Manifest::new("probe", "1.0.0")
            .command(
                Command::new("probe-echo", "Echo the invocation")
                    .alias("pe")
                    .usage("/probe-echo [args…]"),
            )
            .command(
                Command::new("probe-analyst", "An analyst-only command").min_role(Role::Analyst),
            )
            .command(Command::new("probe-ephemeral", "Reply to the caller only"))
            .command(Command::new("probe-fs", "Read a file").usage("/probe-fs PATH"))
            .command(Command::new("probe-write", "Write a file").usage("/probe-write PATH"))
            .command(Command::new("probe-kvset", "Set a kv key").usage("/probe-kvset KEY VALUE"))
            .command(Command::new("probe-kvget", "Get a kv key").usage("/probe-kvget KEY"))
            .command(Command::new("probe-config", "Show a setting").usage("/probe-config KEY"))
            .command(Command::new("probe-fail", "Fail on purpose"))
            .command(Command::new("probe-stdout", "Print to stdout and stderr"))
            .command(Command::new(
                "probe-instance",
                "Count the calls this instance served",
            ))
            .command(Command::new("probe-slow", "Take a while").usage("/probe-slow MILLIS"))
            .command(typed())
            .command(
                Command::new("probe-buttons", "Reply with buttons").arg(
                    ArgSpec::new("label", ArgKind::Text, "The buttons' label")
                        .default("Go")
                        .rest(),
                ),
            )
            .command(
                Command::new("probe-confirm", "Ask first, then answer")
                    .confirm(&format!("Really run {XSS} probe-confirm?")),
            )
            .command(
                Command::new("probe-pick", "Pick an item the plugin suggests").arg(
                    ArgSpec::new("item", ArgKind::Text, "An item")
                        .required()
                        .completes(),
                ),
            )
            .capability(Capability::Kv)
            .capability(Capability::Config)
    }

    fn complete(request: CompletionRequest) -> Vec<Completion> {
        let partial = request.partial.as_str();
        match partial {
            // Past the host's deadline.
            p if p.starts_with("slow") => {
                std::thread::sleep(std::time::Duration::from_millis(1500));
                vec![Completion {
                    value: "late".into(),
                    label: None,
                }]
            }
            // Past the host's item cap.
            "many" => (0..100)
                .map(|i| Completion {
                    value: format!("many{i}"),
                    label: None,
                })
                .collect(),
            p => (1..=3)
                .map(|i| Completion {
                    value: format!("{p}{i}"),
                    label: Some(format!("{XSS} {p}{i} for {}", request.caller.name)),
                })
                .collect(),
        }
    }

    fn on_action(event: ActionEvent) -> Result<Reply, PluginError> {
        if event.action == "fail" {
            return Err(PluginError::Failed("the button failed on purpose".into()));
        }
        Ok(
            Reply::plain(format!("{} pressed by {}", event.action, event.caller.name)).with_data(
                json!({
                    "action": event.action,
                    "message_id": event.message_id,
                    "data": event.data,
                    "caller": event.caller.name,
                    "session": event.session.id,
                }),
            ),
        )
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        let arg = |i: usize| {
            call.args
                .get(i)
                .cloned()
                .ok_or_else(|| PluginError::Usage("missing argument".into()))
        };
        match call.command.as_str() {
            "probe-echo" => Ok(Reply::plain(call.raw_args.clone()).with_data(json!({
                "command": call.command,
                "args": call.args,
                "raw_args": call.raw_args,
                "caller": {"id": call.caller.id, "name": call.caller.name, "role": call.caller.role.as_str()},
                "session": {"id": call.session.id, "title": call.session.title},
                "connection_id": call.connection_id,
            }))),
            "probe-analyst" => Ok(Reply::plain("analyst ok")),
            "probe-ephemeral" => Ok(Reply::plain("only you can see this").ephemeral()),
            "probe-fs" => Ok(Reply::plain(match std::fs::read_to_string(arg(0)?) {
                Ok(text) => format!("read: {}", text.chars().take(200).collect::<String>()),
                Err(e) => format!("denied: {e}"),
            })),
            "probe-write" => Ok(Reply::plain(match std::fs::write(arg(0)?, b"written by probe") {
                Ok(()) => "wrote".to_string(),
                Err(e) => format!("denied: {e}"),
            })),
            "probe-kvset" => {
                kv::set(&arg(0)?, arg(1)?.as_bytes()).map_err(PluginError::Failed)?;
                Ok(Reply::plain("stored"))
            }
            "probe-kvget" => Ok(Reply::plain(match kv::get(&arg(0)?).map_err(PluginError::Failed)? {
                Some(bytes) => format!("value: {}", String::from_utf8_lossy(&bytes)),
                None => "none".to_string(),
            })),
            "probe-config" => Ok(Reply::plain(match config::get(&arg(0)?).map_err(PluginError::Failed)? {
                Some(value) => value.to_string(),
                None => "unset".to_string(),
            })),
            "probe-fail" => Err(PluginError::Failed("failed on purpose".into())),
            // Always 1 on slashd: every call gets an instance of its own.
            "probe-instance" => {
                static CALLS: AtomicU32 = AtomicU32::new(0);
                let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
                Ok(Reply::plain(format!("calls served by this instance: {calls}")))
            }
            "probe-stdout" => {
                println!("probe says hello on stdout");
                eprintln!("probe says hello on stderr");
                Ok(Reply::plain("printed"))
            }
            "probe-slow" => {
                let ms: u64 = arg(0)?.parse().map_err(|_| PluginError::Usage("/probe-slow MILLIS".into()))?;
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(Reply::plain(format!("slept {ms} ms")))
            }
            "probe-typed" => Ok(Reply::plain("typed").with_data(json!({
                "values": call.values.iter().map(|v| (v.name.clone(), value_json(&v.value))).collect::<serde_json::Map<_, _>>(),
                "args": call.args,
            }))),
            "probe-buttons" => {
                let label = match call.value("label") {
                    Some(Value::Text(t)) => t.clone(),
                    _ => "Go".into(),
                };
                let button = |id: &str, label: String, style, min_role, confirm, once| Action {
                    id: id.into(),
                    label,
                    style,
                    min_role,
                    confirm,
                    once,
                };
                let mut reply = Reply::plain(format!("buttons for {label}"))
                    .with_data(json!({ "label": label }))
                    .with_action(button("go", label.clone(), ActionStyle::Primary, Role::Viewer, None, false))
                    .with_action(button("once", format!("Once: {label}"), ActionStyle::Secondary, Role::Viewer, None, true))
                    .with_action(button("admin", "Admin only".into(), ActionStyle::Danger, Role::Admin, None, false))
                    .with_action(button("sure", format!("Sure? {label}"), ActionStyle::Primary, Role::Viewer, Some(format!("Really {label}?")), false))
                    .with_action(button("fail", "Fail".into(), ActionStyle::Secondary, Role::Viewer, None, true));
                if label == "ephemeral" {
                    reply = reply.ephemeral();
                }
                Ok(reply)
            }
            "probe-confirm" => Ok(Reply::plain("confirmed")),
            "probe-pick" => Ok(Reply::plain(format!("picked {}", call.raw_args))),
            other => Err(PluginError::Failed(format!("unexpected command {other}"))),
        }
    }
}

/// `/probe-typed`: one argument of every kind, echoed back as JSON.
fn typed() -> Command {
    let a = ArgSpec::new;
    Command::new("probe-typed", "Echo typed arguments")
        .arg(
            a("count", ArgKind::Integer, "How many")
                .default("1")
                .range(Some(1.0), Some(10.0)),
        )
        .arg(
            a(
                "env",
                ArgKind::Choice(vec!["staging".into(), "prod".into()]),
                "Where",
            )
            .default("staging"),
        )
        .arg(a("force", ArgKind::Boolean, "No questions"))
        .arg(a("wait", ArgKind::Duration, "How long").range(Some(1.0), Some(3600.0)))
        .arg(a("ratio", ArgKind::Number, "A share").range(Some(0.0), Some(1.0)))
        .arg(a("who", ArgKind::User, "Someone in this session"))
        .arg(a("where", ArgKind::Session, "A session you can see"))
        .arg(a("note", ArgKind::Text, "Anything else").rest())
}

fn value_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Text(t) | Value::Choice(t) => json!(t),
        Value::Integer(n) => json!(n),
        Value::Number(x) => json!(x),
        Value::Boolean(b) => json!(b),
        Value::DurationMs(ms) => json!({ "ms": ms }),
        Value::User(u) => json!({ "id": u.id, "name": u.name, "role": u.role.as_str() }),
        Value::Session(s) => json!({ "id": s.id, "title": s.title }),
    }
}

export_plugin!(Probe);
