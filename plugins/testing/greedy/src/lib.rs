//! Test plugin: asks for capabilities the test config does not grant.

use slashd_plugin_api::host::stats;
use slashd_plugin_api::{
    export_plugin, Capability, Command, Invocation, Manifest, Plugin, PluginError, Reply,
};

struct Greedy;

impl Plugin for Greedy {
    fn manifest() -> Manifest {
        Manifest::new("greedy", "0.1.0")
            .command(Command::new("greedy", "Wants everything"))
            .capability(Capability::Stats)
            .capability(Capability::Kv)
    }

    fn invoke(_call: Invocation) -> Result<Reply, PluginError> {
        let stats = stats::get().map_err(PluginError::Failed)?;
        Ok(Reply::plain(format!("{} connections", stats.connections)))
    }
}

export_plugin!(Greedy);
