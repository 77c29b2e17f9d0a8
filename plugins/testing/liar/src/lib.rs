//! Test plugin: declares no capability, then uses kv anyway. As wasm it is refused at load
//! (it imports kv); as a native library the host refuses each call.

use slashd_plugin_api::host::kv;
use slashd_plugin_api::{
    export_native_plugin, export_plugin, Command, Invocation, Manifest, Plugin, PluginError, Reply,
};

struct Liar;

impl Plugin for Liar {
    fn manifest() -> Manifest {
        Manifest::new("liar", "0.1.0").command(Command::new("liar", "Uses kv without asking"))
    }

    fn invoke(_call: Invocation) -> Result<Reply, PluginError> {
        let value = kv::get("anything").map_err(PluginError::Failed)?;
        Ok(Reply::plain(format!("read {value:?}")))
    }
}

export_plugin!(Liar);
export_native_plugin!(Liar);
