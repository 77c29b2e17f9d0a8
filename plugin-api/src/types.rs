//! Plain Rust types of the plugin API, free of any WIT or wasm detail. (They serialize to
//! the JSON that crosses the native ABI.)

use serde::{Deserialize, Serialize};

// The one definition of roles: the host uses this type too (and documents it in OpenAPI,
// so the doc comment below is what API readers see).
/// viewer < analyst < admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// The single authorization rule: may a caller with this role use something that needs
    /// `required`?
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?} (expected viewer, analyst or admin)"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// The one definition of capabilities: the host grants exactly these.
/// A host capability a plugin asks for. `log` needs no grant and is not listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// List the commands the caller may run.
    Commands,
    /// Server statistics.
    Stats,
    /// The caller's sessions; end the current one.
    Sessions,
    /// A key-value store private to the plugin.
    Kv,
    /// The plugin's own settings from the config file.
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

/// One command a plugin offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Without the leading `/`.
    pub name: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub usage: String,
    pub min_role: Role,
}

impl Command {
    /// A viewer command whose usage line is just `/name`.
    pub fn new(name: &str, summary: &str) -> Command {
        Command {
            name: name.to_string(),
            aliases: Vec::new(),
            summary: summary.to_string(),
            usage: format!("/{name}"),
            min_role: Role::Viewer,
        }
    }

    pub fn alias(mut self, alias: &str) -> Command {
        self.aliases.push(alias.to_string());
        self
    }

    pub fn usage(mut self, usage: &str) -> Command {
        self.usage = usage.to_string();
        self
    }

    pub fn min_role(mut self, role: Role) -> Command {
        self.min_role = role;
        self
    }
}

/// What a plugin is and needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub commands: Vec<Command>,
    pub capabilities: Vec<Capability>,
}

impl Manifest {
    pub fn new(name: &str, version: &str) -> Manifest {
        Manifest {
            name: name.to_string(),
            version: version.to_string(),
            commands: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    pub fn command(mut self, command: Command) -> Manifest {
        self.commands.push(command);
        self
    }

    pub fn capability(mut self, capability: Capability) -> Manifest {
        self.capabilities.push(capability);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub id: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    pub id: String,
    pub title: String,
}

/// One call of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// The canonical command name (aliases resolved), without `/`.
    pub command: String,
    /// Arguments split shell-style (`/cmd "two words" x` → `["two words", "x"]`).
    pub args: Vec<String>,
    /// Everything after the command name, as typed.
    pub raw_args: String,
    pub caller: Caller,
    pub session: SessionRef,
    pub connection_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Plain,
    Markdown,
    Json,
}

/// A command's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub body: String,
    pub format: Format,
    /// Structured data (tables, figures) for clients that render it.
    pub data: Option<serde_json::Value>,
    /// Only the invoking connection sees it, and it is not stored.
    pub ephemeral: bool,
}

impl Reply {
    pub fn plain(body: impl Into<String>) -> Reply {
        Reply {
            body: body.into(),
            format: Format::Plain,
            data: None,
            ephemeral: false,
        }
    }

    pub fn markdown(body: impl Into<String>) -> Reply {
        Reply {
            format: Format::Markdown,
            ..Reply::plain(body)
        }
    }

    pub fn with_data(mut self, data: serde_json::Value) -> Reply {
        self.data = Some(data);
        self
    }

    pub fn ephemeral(mut self) -> Reply {
        self.ephemeral = true;
        self
    }
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginError {
    /// The arguments were wrong; the text says how to call it.
    Usage(String),
    /// Something went wrong running it.
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::{Capability, Role};

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Analyst));
        assert!(Role::Analyst.allows(Role::Analyst));
        assert!(!Role::Viewer.allows(Role::Analyst));
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn capabilities_are_named_by_their_interface() {
        let kv = format!("slashd:plugin/kv@{}", crate::API_VERSION);
        assert_eq!(Capability::of_import(&kv), Some(Capability::Kv));
        assert_eq!(Capability::of_import("slashd:plugin/log@0.1.0"), None);
        for c in Capability::ALL {
            assert_eq!(Capability::parse(c.as_str()), Some(c));
        }
    }
}
