//! `slashd plugin check`: validate a plugin file the way the server loads one — file kind,
//! API version section, compilation, linking against the `slashd:plugin` world, the
//! manifest — without a server, a database or any grant.

use std::sync::Arc;
use std::time::Duration;

use super::capabilities::{CallEnv, PluginIdentity};
use super::engine::{CallLimits, Runtime};
use super::fake_services::FakeServices;
use super::grants::Grants;
use super::manifest::{self, Capability, Manifest};
use super::registry::{self, Counters, Registry};
use crate::config::CommandsConfig;

/// What a valid component declares and needs.
#[derive(Debug)]
pub struct Inspection {
    pub api_version: String,
    pub manifest: Manifest,
    /// Capabilities the component imports without its manifest asking for them (the
    /// server requires their grants all the same).
    pub unasked_imports: Vec<Capability>,
    /// Every import, by interface name.
    pub imports: Vec<String>,
}

/// Check a plugin file's bytes. The error is one line, fit for a terminal.
pub async fn inspect(wasm: &[u8], defaults: &CommandsConfig) -> Result<Inspection, String> {
    check_kind(wasm)?;
    let api_version = manifest::check_api_version(wasm)?;
    let runtime = Runtime::new(defaults, None).map_err(|e| format!("{e:#}"))?;
    let component = tokio::task::block_in_place(|| runtime.compile("plugin-under-check", wasm))
        .map_err(|e| format!("not a valid component: {}", one_line(&e)))?;
    let imports = runtime.import_names(&component);
    let identity = Arc::new(PluginIdentity {
        name: "plugin-under-check".into(),
        grants: Grants::default(),
        settings: Default::default(),
        host_call_quota: defaults.host_call_quota,
        kv_max_key_bytes: defaults.kv_max_key_bytes,
        kv_max_value_bytes: defaults.kv_max_value_bytes,
        kv_max_keys: defaults.kv_max_keys,
    });
    let limits = CallLimits {
        timeout: Duration::from_millis(defaults.timeout_ms),
        memory_bytes: (defaults.memory_mb as usize) << 20,
        max_reply_bytes: defaults.max_reply_bytes,
    };
    let prepared = runtime
        .prepare(&component, identity, limits, Vec::new())
        .map_err(|e| format!("does not fit the slashd:plugin world: {}", one_line(&e)))?;
    let env = Arc::new(CallEnv {
        services: Arc::new(FakeServices::default()),
        registry: Arc::new(Registry::default()),
        counters: Arc::new(Counters::default()),
    });
    let manifest = runtime
        .manifest(&prepared, env)
        .await
        .map_err(|e| one_line(&e))?;
    manifest::validate(&manifest)?;
    let asked = Grants::of(&manifest.capabilities);
    let unasked_imports = registry::missing_grants(&[], &prepared.imports, &asked);
    Ok(Inspection {
        api_version,
        manifest,
        unasked_imports,
        imports,
    })
}

/// Refuse, with a clear reason, a file that is not a wasm component at all.
fn check_kind(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"MZ") || bytes.starts_with(b"\xcf\xfa") {
        return Err(
            "a native library, not a wasm component (native plugins are configured with \
             native = true and are not sandboxed)"
                .into(),
        );
    }
    if !bytes.starts_with(b"\0asm") {
        return Err("not a wasm file (no \\0asm header)".into());
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err("a core wasm module, not a component: build the plugin for \
             wasm32-wasip2 with slashd-plugin-api's export_plugin!"
            .into());
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err("not a wasm component (unknown wasm version or layer)".into());
    }
    Ok(())
}

fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::check_kind;

    #[test]
    fn kinds() {
        assert!(check_kind(b"hello")
            .unwrap_err()
            .contains("not a wasm file"));
        assert!(check_kind(b"\0asm\x01\0\0\0")
            .unwrap_err()
            .contains("core wasm module"));
        assert!(check_kind(b"\x7fELF\x02\x01")
            .unwrap_err()
            .contains("native library"));
        assert!(check_kind(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
