//! What a plugin says about itself — its exported `manifest()` (the API version is read
//! from its imports, in `wit/`) — and the checks it must pass to be enabled.

use std::collections::HashSet;

use crate::protocol::args;

/// One command of a manifest (the SDK's `Command`).
pub use slashd_plugin_api::Command as CommandSpec;
/// What a plugin declares is the SDK's own type: one definition for authors and the host.
pub use slashd_plugin_api::{ArgKind, ArgSpec, Capability, Manifest, API_VERSION_SECTION};

const MAX_COMMANDS: usize = 64;
const MAX_TEXT: usize = 200;

/// Decode the JSON manifest a native plugin returns (the SDK's `Manifest`). Not yet
/// validated: [`validate`] is the same check for every kind of plugin.
pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("the plugin's manifest is malformed: {e}"))
}

/// Command and alias names: lowercase letters, digits, `-` and `_`, at most 32.
pub fn valid_command_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Structural checks on what a plugin declared.
pub fn validate(manifest: &Manifest) -> Result<(), String> {
    if manifest.name.is_empty() || manifest.name.len() > 64 || manifest.version.len() > 64 {
        return Err("manifest name/version is empty or too long".into());
    }
    if manifest.commands.is_empty() {
        return Err("manifest declares no commands".into());
    }
    if manifest.commands.len() > MAX_COMMANDS {
        return Err(format!(
            "manifest declares more than {MAX_COMMANDS} commands"
        ));
    }
    let mut seen = HashSet::new();
    for c in &manifest.commands {
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
        if let Some(args) = &c.args {
            args::validate(args).map_err(|e| format!("/{} {e}", c.name))?;
        }
        if let Some(prompt) = &c.confirm {
            if prompt.trim().is_empty() || prompt.chars().count() > MAX_TEXT {
                return Err(format!(
                    "the confirm prompt of /{} is empty or too long",
                    c.name
                ));
            }
        }
    }
    Ok(())
}

/// [`validate`], then what the host derives from a valid manifest: a command with typed
/// `args` gets the usage line generated from them (whatever the plugin wrote).
pub fn accept(mut manifest: Manifest) -> Result<Manifest, String> {
    validate(&manifest)?;
    for c in &mut manifest.commands {
        if let Some(specs) = &c.args {
            c.usage = args::usage(&c.name, specs);
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slashd_plugin_api::Role;

    #[test]
    fn typed_commands_get_a_generated_usage() {
        let m = Manifest::new("p", "1").command(
            CommandSpec::new("deploy", "d")
                .usage("/deploy whatever")
                .arg(ArgSpec::new("service", ArgKind::Text, "s").required()),
        );
        let m = accept(m).unwrap();
        assert_eq!(m.commands[0].usage, "/deploy <service>");
        let untyped = Manifest::new("p", "1").command(CommandSpec::new("x", "x").usage("/x A"));
        assert_eq!(accept(untyped).unwrap().commands[0].usage, "/x A");
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
        let m = from_json(
            br#"{"name":"t","version":"1","commands":[{"name":"t","aliases":["u"],
                "summary":"s","usage":"/t","min_role":"analyst"}],"capabilities":["kv"]}"#,
        )
        .unwrap();
        assert_eq!(m.commands[0].min_role, Role::Analyst);
        assert_eq!(m.commands[0].aliases, ["u"]);
        assert_eq!(m.capabilities, [Capability::Kv]);
        assert!(validate(&m).is_ok());
        assert!(from_json(b"{}").is_err());
        assert!(from_json(b"\xff").is_err());
    }

    /// `check(manifest, expected)`: `Ok` or the refusal's exact text.
    #[test]
    fn validation() {
        fn check(manifest: Manifest, expected: Result<(), &str>) {
            assert_eq!(
                validate(&manifest),
                expected.map_err(String::from),
                "{manifest:?}"
            );
        }
        let cmd = |name: &str| CommandSpec::new(name, "does a thing");
        let one = |c: CommandSpec| Manifest::new("p", "1.0.0").command(c);
        check(one(cmd("deploy")), Ok(()));
        check(one(cmd("deploy").alias("ship").alias("d_2")), Ok(()));
        check(
            Manifest::new("", "1").command(cmd("x")),
            Err("manifest name/version is empty or too long"),
        );
        check(
            Manifest::new(&"n".repeat(65), "1").command(cmd("x")),
            Err("manifest name/version is empty or too long"),
        );
        check(
            Manifest::new("p", &"9".repeat(65)).command(cmd("x")),
            Err("manifest name/version is empty or too long"),
        );
        check(
            Manifest::new("p", "1"),
            Err("manifest declares no commands"),
        );
        let many = (0..65).fold(Manifest::new("p", "1"), |m, i| {
            m.command(cmd(&format!("c{i}")))
        });
        check(many, Err("manifest declares more than 64 commands"));
        check(one(cmd("Deploy")), Err("invalid command name \"Deploy\""));
        check(one(cmd("")), Err("invalid command name \"\""));
        check(
            one(cmd(&"x".repeat(33))),
            Err(&format!("invalid command name {:?}", "x".repeat(33))),
        );
        check(
            one(cmd("ok").alias("no way")),
            Err("invalid command name \"no way\""),
        );
        check(
            one(cmd("dup").alias("dup")),
            Err("command name \"dup\" is declared twice"),
        );
        check(
            Manifest::new("p", "1")
                .command(cmd("a"))
                .command(cmd("b").alias("a")),
            Err("command name \"a\" is declared twice"),
        );
        check(
            one(CommandSpec::new("long", &"s".repeat(201))),
            Err("summary or usage of /long is too long"),
        );
        check(
            one(cmd("long").usage(&"u".repeat(201))),
            Err("summary or usage of /long is too long"),
        );
        check(one(CommandSpec::new("edge", &"é".repeat(200))), Ok(()));
        check(
            one(cmd("deploy").arg(ArgSpec::new("service", ArgKind::Text, "what"))),
            Ok(()),
        );
        check(
            one(cmd("deploy").arg(ArgSpec::new("Service", ArgKind::Text, "what"))),
            Err("/deploy invalid argument name \"Service\""),
        );
        check(one(cmd("nuke").confirm("Really?")), Ok(()));
        check(
            one(cmd("nuke").confirm(" ")),
            Err("the confirm prompt of /nuke is empty or too long"),
        );
    }
}
