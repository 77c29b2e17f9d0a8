//! `slashd plugin check`: validate a plugin file the way the server loads one — file kind,
//! API version section, compilation, linking against the `slashd:plugin` world, the
//! manifest — without a server, a database or any grant.

use std::sync::Arc;
use std::time::Duration;

use super::capabilities::{CallEnv, PluginIdentity};
use super::engine::{CallLimits, Runtime};
use super::fake_services::FakeServices;
use super::grants::Grants;
use super::jobs::Jobs;
use super::manifest::{Capability, Manifest};
use super::registry::{Counters, Registry};
use super::wit::ApiVersion;
use crate::config::CommandsConfig;

/// What a valid component declares and needs.
#[derive(Debug)]
pub struct Inspection {
    pub api_version: ApiVersion,
    pub manifest: Manifest,
    /// The grants the server requires before it enables the plugin.
    pub needs: Vec<Capability>,
    /// Capabilities the component imports without its manifest asking for them: under
    /// 0.1.0 the server requires their grants too; from 0.2.0 on, calling one fails.
    pub unasked_imports: Vec<Capability>,
    /// Every import, by interface name.
    pub imports: Vec<String>,
}

/// Check a plugin file's bytes, compiling through `cache_dir` when given (as the server
/// does: a second check of the same file skips the compile). The error is one line, fit
/// for a terminal.
pub async fn inspect(
    wasm: &[u8],
    defaults: &CommandsConfig,
    cache_dir: Option<std::path::PathBuf>,
) -> Result<Inspection, String> {
    check_kind(wasm)?;
    let runtime = Runtime::new(defaults, cache_dir).map_err(|e| format!("{e:#}"))?;
    let identity = Arc::new(PluginIdentity::with_defaults(
        "plugin-under-check",
        Grants::default(),
        defaults,
    ));
    let limits = CallLimits {
        timeout: Duration::from_millis(defaults.timeout_ms),
        memory_bytes: (defaults.memory_mb as usize) << 20,
        max_reply_bytes: defaults.max_reply_bytes,
    };
    let env = Arc::new(CallEnv {
        services: Arc::new(FakeServices::default()),
        registry: Arc::new(Registry::default()),
        counters: Arc::new(Counters::default()),
        jobs: Arc::new(Jobs::default()),
    });
    let (prepared, manifest) = runtime
        .load(
            "plugin-under-check",
            wasm,
            identity,
            limits,
            Vec::new(),
            env,
        )
        .await?;
    let needs = prepared.missing_grants(&manifest);
    let asked = Grants::of(&manifest.capabilities);
    let unasked_imports = super::registry::missing_grants(&[], &prepared.imports, &asked);
    Ok(Inspection {
        api_version: prepared.version(),
        manifest,
        needs,
        unasked_imports,
        imports: prepared.import_names,
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
