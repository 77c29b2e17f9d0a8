//! A team's first command: copy this crate, rename it, and build it with
//! `cargo build --release --target wasm32-wasip2`. See docs/plugins.md.

use slashd_plugin_api::{export_plugin, Command, Invocation, Manifest, Plugin, PluginError, Reply};

struct Hello;

impl Plugin for Hello {
    fn manifest() -> Manifest {
        Manifest::new("hello", "0.1.0")
            .command(Command::new("hello", "Say hello").usage("/hello [name]"))
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        match call.args.as_slice() {
            [] => Ok(Reply::markdown(format!("Hello, **{}**!", call.caller.name))),
            [name] => Ok(Reply::markdown(format!("Hello, **{name}**!"))),
            _ => Err(PluginError::Usage("/hello [name]".into())),
        }
    }
}

export_plugin!(Hello);
// The same source as a trusted native library (see docs/plugins.md before you use it).
slashd_plugin_api::export_native_plugin!(Hello);
