//! Test plugin: commands that report what the sandbox and the host let them see.

use serde_json::json;
use slashd_plugin_api::host::{config, kv};
use slashd_plugin_api::{
    export_plugin, Capability, Command, Invocation, Manifest, Plugin, PluginError, Reply, Role,
};

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
            .command(Command::new("probe-slow", "Take a while").usage("/probe-slow MILLIS"))
            .capability(Capability::Kv)
            .capability(Capability::Config)
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
            other => Err(PluginError::Failed(format!("unexpected command {other}"))),
        }
    }
}

export_plugin!(Probe);
