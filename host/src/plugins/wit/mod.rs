//! The WIT worlds this host speaks, side by side: one module per API version, each with
//! its generated bindings, its host functions and its conversions to the plain types of
//! `manifest.rs` and `engine.rs`. Nothing generated leaves `wit/`.
//!
//! A component's version is read from the `slashd:plugin/…@VERSION` interfaces it imports
//! (every plugin imports `types`, which its exports use); the SDK's custom section, where
//! present, must agree.

pub mod since_v0_1_0;
pub mod since_v0_2_0;

use wasmtime::component::{InstancePre, Linker};
use wasmtime::Store;

use super::call::{ActionInput, CallError, CallInput, CompleteInput, RawReply};
use super::capabilities::CallState;
use super::host_services::CallContext;
use super::manifest::{Manifest, API_VERSION_SECTION};
use slashd_plugin_api::Completion;

/// A plugin API version this host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ApiVersion {
    V0_1_0,
    V0_2_0,
}

impl ApiVersion {
    pub const ALL: [ApiVersion; 2] = [ApiVersion::V0_1_0, ApiVersion::V0_2_0];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V0_1_0 => "0.1.0",
            ApiVersion::V0_2_0 => "0.2.0",
        }
    }

    fn parse(version: &str) -> Option<ApiVersion> {
        ApiVersion::ALL.into_iter().find(|v| v.as_str() == version)
    }

    /// 0.1.0's rule: every imported capability must be granted. From 0.2.0 on, only what
    /// the manifest asks for.
    pub fn imports_need_grants(self) -> bool {
        self == ApiVersion::V0_1_0
    }

    fn supported() -> String {
        ApiVersion::ALL.map(ApiVersion::as_str).join(", ")
    }
}

/// The API version of a component, from its imports and (if any) its version section.
pub fn api_version(wasm: &[u8]) -> Result<ApiVersion, String> {
    let mut imported: Vec<String> = Vec::new();
    let mut section = None;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| format!("not a valid component: {e}"))? {
            wasmparser::Payload::ComponentImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(|e| format!("not a valid component: {e}"))?;
                    if let Some(version) = slashd_version(import.name.name) {
                        if !imported.iter().any(|v| v == version) {
                            imported.push(version.to_string());
                        }
                    }
                }
            }
            wasmparser::Payload::CustomSection(s) if s.name() == API_VERSION_SECTION => {
                section = Some(String::from_utf8_lossy(s.data()).into_owned());
            }
            _ => {}
        }
    }
    let version = match (imported.as_slice(), &section) {
        ([], None) => {
            return Err(
                "imports no slashd:plugin interface: not a slashd plugin (build it \
                 against plugin-api/wit/since_v0.2.0)"
                    .into(),
            )
        }
        ([], Some(stamped)) => stamped.clone(),
        ([one], _) => one.clone(),
        (many, _) => {
            return Err(format!(
                "imports slashd:plugin at several versions ({}); a plugin speaks one",
                many.join(", ")
            ))
        }
    };
    if let Some(stamped) = section.filter(|s| *s != version) {
        return Err(format!(
            "built against plugin API {stamped} by its version section, but it imports \
             slashd:plugin@{version}: a broken build"
        ));
    }
    ApiVersion::parse(&version).ok_or_else(|| {
        format!(
            "built against plugin API {version}; this slashd supports {}",
            ApiVersion::supported()
        )
    })
}

/// `slashd:plugin/kv@0.2.0` → `0.2.0`.
fn slashd_version(import: &str) -> Option<&str> {
    import
        .strip_prefix("slashd:plugin/")?
        .split_once('@')
        .map(|(_, v)| v)
}

/// Every version's slashd interfaces (WASI and `wasi:http` are the engine's).
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    since_v0_1_0::add_to_linker(linker)?;
    since_v0_2_0::add_to_linker(linker)
}

/// A linked component of a known version.
#[derive(Clone)]
pub enum Pre {
    V0_1_0(since_v0_1_0::PluginPre<CallState>),
    V0_2_0(since_v0_2_0::PluginPre<CallState>),
}

impl Pre {
    pub fn new(version: ApiVersion, pre: InstancePre<CallState>) -> wasmtime::Result<Pre> {
        Ok(match version {
            ApiVersion::V0_1_0 => Pre::V0_1_0(since_v0_1_0::PluginPre::new(pre)?),
            ApiVersion::V0_2_0 => Pre::V0_2_0(since_v0_2_0::PluginPre::new(pre)?),
        })
    }

    pub fn version(&self) -> ApiVersion {
        match self {
            Pre::V0_1_0(_) => ApiVersion::V0_1_0,
            Pre::V0_2_0(_) => ApiVersion::V0_2_0,
        }
    }

    /// A fresh instance, its start functions run (there is nothing to call yet).
    pub async fn instantiate(&self, store: &mut Store<CallState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::V0_1_0(pre) => Instance::V0_1_0(pre.instantiate_async(store).await?),
            Pre::V0_2_0(pre) => Instance::V0_2_0(pre.instantiate_async(store).await?),
        })
    }
}

/// One instance of a plugin, used for one call and dropped with its store.
pub enum Instance {
    V0_1_0(since_v0_1_0::Plugin),
    V0_2_0(since_v0_2_0::Plugin),
}

impl Instance {
    pub async fn manifest(&self, store: &mut Store<CallState>) -> wasmtime::Result<Manifest> {
        match self {
            Instance::V0_1_0(plugin) => since_v0_1_0::manifest(plugin, store).await,
            Instance::V0_2_0(plugin) => since_v0_2_0::manifest(plugin, store).await,
        }
    }

    pub async fn invoke(
        &self,
        store: &mut Store<CallState>,
        ctx: &CallContext,
        input: CallInput,
    ) -> wasmtime::Result<Result<RawReply, CallError>> {
        match self {
            Instance::V0_1_0(plugin) => since_v0_1_0::invoke(plugin, store, ctx, input).await,
            Instance::V0_2_0(plugin) => since_v0_2_0::invoke(plugin, store, ctx, input).await,
        }
    }

    /// A plugin's completions; 0.1.0 has no `complete` (none).
    pub async fn complete(
        &self,
        store: &mut Store<CallState>,
        ctx: &CallContext,
        input: CompleteInput,
    ) -> wasmtime::Result<Vec<Completion>> {
        match self {
            Instance::V0_1_0(_) => Ok(Vec::new()),
            Instance::V0_2_0(plugin) => since_v0_2_0::complete(plugin, store, ctx, input).await,
        }
    }

    /// A button press; 0.1.0 replies carry no buttons, so none can be pressed.
    pub async fn on_action(
        &self,
        store: &mut Store<CallState>,
        ctx: &CallContext,
        input: ActionInput,
    ) -> wasmtime::Result<Result<RawReply, CallError>> {
        match self {
            Instance::V0_1_0(_) => Ok(Err(CallError::Failed("no such action".into()))),
            Instance::V0_2_0(plugin) => since_v0_2_0::on_action(plugin, store, ctx, input).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::slashd_version;

    #[test]
    fn versions_from_names() {
        assert_eq!(slashd_version("slashd:plugin/kv@0.2.0"), Some("0.2.0"));
        assert_eq!(slashd_version("slashd:plugin/types@0.1.0"), Some("0.1.0"));
        assert_eq!(slashd_version("wasi:http/types@0.2.12"), None);
        assert_eq!(slashd_version("slashd:plugin/kv"), None);
    }
}
