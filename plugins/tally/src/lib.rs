//! An example whose single source builds both as a wasm component
//! (`--target wasm32-wasip2`) and as a native library (the host target): `/tally NAME`
//! counts, in the plugin's kv, how often NAME was tallied.

use serde_json::json;
use slashd_plugin_api::host::kv;
use slashd_plugin_api::{
    export_native_plugin, export_plugin, Capability, Command, Invocation, Manifest, Plugin,
    PluginError, Reply, Role,
};

struct Tally;

impl Plugin for Tally {
    fn manifest() -> Manifest {
        Manifest::new("tally", env!("CARGO_PKG_VERSION"))
            .command(Command::new("tally", "Count one more NAME").usage("/tally NAME"))
            .command(
                Command::new("tally-reset", "Forget a tally")
                    .usage("/tally-reset NAME")
                    .min_role(Role::Analyst),
            )
            .capability(Capability::Kv)
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        let [name] = call.args.as_slice() else {
            return Err(PluginError::Usage(format!("/{} NAME", call.command)));
        };
        let key = format!("count:{name}");
        if call.command == "tally-reset" {
            kv::delete(&key).map_err(PluginError::Failed)?;
            return Ok(Reply::plain(format!("{name} reset")));
        }
        let count = match kv::get(&key).map_err(PluginError::Failed)? {
            Some(bytes) => String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0),
            None => 0,
        } + 1;
        kv::set(&key, count.to_string().as_bytes()).map_err(PluginError::Failed)?;
        Ok(Reply::markdown(format!("**{name}**: {count}"))
            .with_data(json!({ "name": name, "count": count })))
    }
}

export_plugin!(Tally);
export_native_plugin!(Tally);
