//! Test plugin: version 0.2.0 of the template's `hello`, to prove a reload picks up a new
//! component at the same path.

use slashd_plugin_api::{export_plugin, Command, Invocation, Manifest, Plugin, PluginError, Reply};

struct HelloV2;

impl Plugin for HelloV2 {
    fn manifest() -> Manifest {
        Manifest::new("hello", "0.2.0").command(Command::new("hello", "Say hello, version two"))
    }

    fn invoke(_call: Invocation) -> Result<Reply, PluginError> {
        Ok(Reply::plain("Hello from version two"))
    }
}

export_plugin!(HelloV2);
