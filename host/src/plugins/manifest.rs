//! What a plugin says about itself — read from the component (API version section) and
//! from its exported `manifest()` — and the checks it must pass to be enabled.

use std::collections::HashSet;

use serde::Serialize;

use crate::auth::Role;

/// API versions this host speaks. A component built against another is refused.
pub const SUPPORTED_API: &[&str] = &["0.1.0"];
pub const API_VERSION_SECTION: &str = "slashd-plugin-api";

const MAX_COMMANDS: usize = 64;
const MAX_TEXT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Commands,
    Stats,
    Sessions,
    Kv,
    Config,
}

impl Capability {
    pub const ALL: [Capability; 5] = [
        Capability::Commands,
        Capability::Stats,
        Capability::Sessions,
        Capability::Kv,
        Capability::Config,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Commands => "commands",
            Capability::Stats => "stats",
            Capability::Sessions => "sessions",
            Capability::Kv => "kv",
            Capability::Config => "config",
        }
    }

    pub fn parse(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The WIT interface that carries this capability (`slashd:plugin/kv@…`).
    pub fn of_import(import: &str) -> Option<Capability> {
        let rest = import.strip_prefix("slashd:plugin/")?;
        let interface = rest.split('@').next()?;
        Capability::parse(interface)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandSpec {
    pub name: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub usage: String,
    pub min_role: Role,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub commands: Vec<CommandSpec>,
    pub capabilities: Vec<Capability>,
}

impl From<slashd_plugin_api::Manifest> for Manifest {
    fn from(m: slashd_plugin_api::Manifest) -> Manifest {
        Manifest {
            name: m.name,
            version: m.version,
            commands: m
                .commands
                .into_iter()
                .map(|c| CommandSpec {
                    name: c.name,
                    aliases: c.aliases,
                    summary: c.summary,
                    usage: c.usage,
                    min_role: role_from_sdk(c.min_role),
                })
                .collect(),
            capabilities: m
                .capabilities
                .into_iter()
                .map(capability_from_sdk)
                .collect(),
        }
    }
}

impl Manifest {
    /// Decode the JSON manifest a native plugin returns (the SDK's `Manifest`). Not yet
    /// validated: [`Manifest::validate`] is the same check for every kind of plugin.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        let m: slashd_plugin_api::Manifest = serde_json::from_slice(bytes)
            .map_err(|e| format!("the plugin's manifest is malformed: {e}"))?;
        Ok(m.into())
    }
}

fn role_from_sdk(role: slashd_plugin_api::Role) -> Role {
    match role {
        slashd_plugin_api::Role::Viewer => Role::Viewer,
        slashd_plugin_api::Role::Analyst => Role::Analyst,
        slashd_plugin_api::Role::Admin => Role::Admin,
    }
}

fn capability_from_sdk(c: slashd_plugin_api::Capability) -> Capability {
    match c {
        slashd_plugin_api::Capability::Commands => Capability::Commands,
        slashd_plugin_api::Capability::Stats => Capability::Stats,
        slashd_plugin_api::Capability::Sessions => Capability::Sessions,
        slashd_plugin_api::Capability::Kv => Capability::Kv,
        slashd_plugin_api::Capability::Config => Capability::Config,
    }
}

/// The API version stamped into a component by the SDK, if any.
pub fn api_version(wasm: &[u8]) -> Result<Option<String>, String> {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| format!("not a valid component: {e}"))?;
        if let wasmparser::Payload::CustomSection(section) = payload {
            if section.name() == API_VERSION_SECTION {
                return Ok(Some(String::from_utf8_lossy(section.data()).into_owned()));
            }
        }
    }
    Ok(None)
}

/// Refuse a component built against an API version this host does not speak.
pub fn check_api_version(wasm: &[u8]) -> Result<String, String> {
    match api_version(wasm)? {
        Some(v) if SUPPORTED_API.contains(&v.as_str()) => Ok(v),
        Some(v) => Err(format!(
            "built against plugin API {v}; this slashd supports {}",
            SUPPORTED_API.join(", ")
        )),
        None => Err(
            "no plugin API version section: build it with slashd-plugin-api's export_plugin!"
                .into(),
        ),
    }
}

/// Command and alias names: lowercase letters, digits, `-` and `_`, at most 32.
pub fn valid_command_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Manifest {
    /// Structural checks on what a plugin declared.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > 64 || self.version.len() > 64 {
            return Err("manifest name/version is empty or too long".into());
        }
        if self.commands.is_empty() {
            return Err("manifest declares no commands".into());
        }
        if self.commands.len() > MAX_COMMANDS {
            return Err(format!(
                "manifest declares more than {MAX_COMMANDS} commands"
            ));
        }
        let mut seen = HashSet::new();
        for c in &self.commands {
            for name in std::iter::once(&c.name).chain(&c.aliases) {
                if !valid_command_name(name) {
                    return Err(format!("invalid command name {name:?}"));
                }
                if !seen.insert(name.as_str()) {
                    return Err(format!("command name {name:?} is declared twice"));
                }
            }
            if c.summary.chars().count() > MAX_TEXT || c.usage.chars().count() > MAX_TEXT {
                return Err(format!("summary or usage of /{} is too long", c.name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_map_from_imports() {
        assert_eq!(
            Capability::of_import("slashd:plugin/kv@0.1.0"),
            Some(Capability::Kv)
        );
        assert_eq!(Capability::of_import("slashd:plugin/log@0.1.0"), None);
        assert_eq!(Capability::of_import("wasi:cli/stdout@0.2.3"), None);
    }

    #[test]
    fn names() {
        assert!(valid_command_name("probe-echo"));
        assert!(!valid_command_name("Help"));
        assert!(!valid_command_name("a b"));
        assert!(!valid_command_name(""));
    }

    #[test]
    fn native_json_manifest_decodes() {
        let m = Manifest::from_json(
            br#"{"name":"t","version":"1","commands":[{"name":"t","aliases":["u"],
                "summary":"s","usage":"/t","min_role":"analyst"}],"capabilities":["kv"]}"#,
        )
        .unwrap();
        assert_eq!(m.commands[0].min_role, Role::Analyst);
        assert_eq!(m.commands[0].aliases, ["u"]);
        assert_eq!(m.capabilities, [Capability::Kv]);
        assert!(m.validate().is_ok());
        assert!(Manifest::from_json(b"{}").is_err());
        assert!(Manifest::from_json(b"\xff").is_err());
    }

    #[test]
    fn version_of_garbage_is_an_error() {
        assert!(check_api_version(b"not wasm").is_err());
    }
}
