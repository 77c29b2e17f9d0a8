//! Test plugin: claims `/hello`, which the template plugin also claims.

use slashd_plugin_api::{export_plugin, Command, Invocation, Manifest, Plugin, PluginError, Reply};

struct Clash;

impl Plugin for Clash {
    fn manifest() -> Manifest {
        Manifest::new("clash", "0.1.0")
            .command(Command::new("hello", "Also says hello"))
            .command(Command::new("clash-only", "Nobody else has this one"))
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        Ok(Reply::plain(format!("clash ran /{}", call.command)))
    }
}

export_plugin!(Clash);
