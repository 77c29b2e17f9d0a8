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
    /// Outbound HTTP (`wasi:http/outgoing-handler`), filtered by the plugin's allow-list.
    Http,
    /// Named secrets the admin configures.
    Secrets,
    /// Report progress of a long command; learn that it was cancelled.
    Progress,
    /// The caller's running commands; cancel one.
    Jobs,
}

impl Capability {
    pub const ALL: [Capability; 9] = [
        Capability::Commands,
        Capability::Stats,
        Capability::Sessions,
        Capability::Kv,
        Capability::Config,
        Capability::Http,
        Capability::Secrets,
        Capability::Progress,
        Capability::Jobs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Commands => "commands",
            Capability::Stats => "stats",
            Capability::Sessions => "sessions",
            Capability::Kv => "kv",
            Capability::Config => "config",
            Capability::Http => "http",
            Capability::Secrets => "secrets",
            Capability::Progress => "progress",
            Capability::Jobs => "jobs",
        }
    }

    pub fn parse(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The capability an imported interface carries: `slashd:plugin/kv@…` is `kv`,
    /// `wasi:http/outgoing-handler@…` is `http`.
    pub fn of_import(import: &str) -> Option<Capability> {
        let (package, interface) = import.split('@').next()?.split_once('/')?;
        match package {
            "slashd:plugin" => Capability::parse(interface),
            "wasi:http" if interface == "outgoing-handler" => Some(Capability::Http),
            _ => None,
        }
    }
}

/// One command a plugin offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Without the leading `/`.
    pub name: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub usage: String,
    pub min_role: Role,
    /// Typed arguments (API 0.2.0); `None`: untyped, the plugin reads `Invocation::args`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<ArgSpec>>,
    /// Ask the invoker to confirm this prompt before the command runs (API 0.2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<String>,
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
            args: None,
            confirm: None,
        }
    }

    /// Declare a typed argument (in order: positional arguments bind in this order).
    pub fn arg(mut self, arg: ArgSpec) -> Command {
        self.args.get_or_insert_with(Vec::new).push(arg);
        self
    }

    /// Ask the invoker to confirm `prompt` first.
    pub fn confirm(mut self, prompt: &str) -> Command {
        self.confirm = Some(prompt.to_string());
        self
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

/// The kind of a typed argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "choices")]
pub enum ArgKind {
    Text,
    Integer,
    Number,
    Boolean,
    /// "90s", "1h30m".
    Duration,
    Choice(Vec<String>),
    /// A known user's name; the plugin receives a [`UserRef`].
    User,
    /// A session id the caller can see; the plugin receives a [`SessionRef`].
    Session,
}

/// A typed argument of a command (API 0.2.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArgSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: ArgKind,
    pub summary: String,
    pub required: bool,
    /// The value when absent, as it would be typed.
    pub default: Option<String>,
    /// The last argument may take the rest of the line.
    pub rest: bool,
    /// The plugin's [`Plugin::complete`] suggests values.
    pub completes: bool,
    /// Bounds of integers, numbers and durations (seconds).
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl ArgSpec {
    /// An optional argument of `kind`.
    pub fn new(name: &str, kind: ArgKind, summary: &str) -> ArgSpec {
        ArgSpec {
            name: name.to_string(),
            kind,
            summary: summary.to_string(),
            required: false,
            default: None,
            rest: false,
            completes: false,
            min: None,
            max: None,
        }
    }

    pub fn required(mut self) -> ArgSpec {
        self.required = true;
        self
    }

    pub fn default(mut self, value: &str) -> ArgSpec {
        self.default = Some(value.to_string());
        self
    }

    pub fn rest(mut self) -> ArgSpec {
        self.rest = true;
        self
    }

    pub fn completes(mut self) -> ArgSpec {
        self.completes = true;
        self
    }

    pub fn range(mut self, min: Option<f64>, max: Option<f64>) -> ArgSpec {
        self.min = min;
        self.max = max;
        self
    }
}

/// What a plugin is and needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// A user a typed `user` argument names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// A typed argument's value, checked by the host against its [`ArgSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Value {
    Text(String),
    Integer(i64),
    Number(f64),
    Boolean(bool),
    DurationMs(u64),
    Choice(String),
    User(UserRef),
    Session(SessionRef),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedValue {
    pub name: String,
    pub value: Value,
}

/// One call of a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// The invocation message's id: what [`crate::host::jobs::cancel`] names.
    #[serde(default)]
    pub id: String,
    /// The canonical command name (aliases resolved), without `/`.
    pub command: String,
    /// Arguments split shell-style (`/cmd "two words" x` → `["two words", "x"]`).
    pub args: Vec<String>,
    /// Everything after the command name, as typed.
    pub raw_args: String,
    /// Typed values, when the command declares `args`.
    #[serde(default)]
    pub values: Vec<NamedValue>,
    pub caller: Caller,
    pub session: SessionRef,
    pub connection_id: String,
}

impl Invocation {
    /// The typed value named `name`, if given.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|v| v.name == name)
            .map(|v| &v.value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStyle {
    Primary,
    Secondary,
    Danger,
}

/// A button under a stored reply (API 0.2.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub id: String,
    pub label: String,
    pub style: ActionStyle,
    /// Never below the command's own.
    pub min_role: Role,
    pub confirm: Option<String>,
    /// Pressed at most once, by anyone.
    pub once: bool,
}

/// What the host asks [`Plugin::complete`] for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    pub command: String,
    pub arg: String,
    pub partial: String,
    pub values: Vec<NamedValue>,
    pub caller: Caller,
    pub session: SessionRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Completion {
    pub value: String,
    #[cfg_attr(feature = "schema", schema(required = true))]
    pub label: Option<String>,
}

/// A button of one of the plugin's replies was pressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    pub command: String,
    pub action: String,
    pub message_id: String,
    pub data: Option<serde_json::Value>,
    pub caller: Caller,
    pub session: SessionRef,
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
    /// Buttons (API 0.2.0); dropped on an ephemeral reply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

impl Reply {
    pub fn plain(body: impl Into<String>) -> Reply {
        Reply {
            body: body.into(),
            format: Format::Plain,
            data: None,
            ephemeral: false,
            actions: Vec::new(),
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

    pub fn with_action(mut self, action: Action) -> Reply {
        self.actions.push(action);
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
        assert_eq!(
            Capability::of_import("wasi:http/outgoing-handler@0.2.12"),
            Some(Capability::Http)
        );
        assert_eq!(Capability::of_import("wasi:http/types@0.2.12"), None);
        assert_eq!(Capability::of_import("wasi:cli/stdout@0.2.9"), None);
        for c in Capability::ALL {
            assert_eq!(Capability::parse(c.as_str()), Some(c));
        }
    }
}
