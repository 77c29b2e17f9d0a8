//! Typed command arguments (plugin API 0.2.0): binding the words of a command line to the
//! `args` a command declares, checking each against its kind, the usage line generated
//! from the declaration, and where in a half-typed line the cursor is (for completion).
//!
//! Syntax: positional words bind to the declared arguments in order, skipping those given
//! by name; `--name value` and `--name=value` may come anywhere before a `rest` argument;
//! a bare `--flag` is `true` for a boolean; `--` makes every later word positional. A
//! `rest` argument (the last) takes the line verbatim from its first word.
//!
//! Pure: a `user` or `session` argument comes out as the text typed, for the command layer
//! to resolve against what the caller may see.

use slashd_plugin_api::{ArgKind, ArgSpec, Value};

use super::command_line::{split_words, Word};

/// Most arguments a command may declare.
pub const MAX_ARGS: usize = 16;
/// Most choices a `choice` argument may list.
pub const MAX_CHOICES: usize = 64;
/// Longest typed text quoted back in an error.
const MAX_QUOTED: usize = 40;

/// A checked argument: its final value, or a user name / session id still to resolve.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Value(Value),
    User(String),
    Session(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BoundArg {
    pub name: String,
    pub value: Bound,
}

/// Why a line does not fit the declaration (the host answers `usage: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArgError(pub String);

fn err<T>(text: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(text.into()))
}

/// Bind and check `raw` (everything after the command name) against `specs`. Absent
/// optional arguments take their default; one without a default is left out.
pub fn bind(specs: &[ArgSpec], raw: &str) -> Result<Vec<BoundArg>, ArgError> {
    let words = split_words(raw).ok_or_else(|| ArgError("unbalanced quotes".into()))?;
    let typed = assign(specs, raw, &words)?;
    let mut bound = Vec::new();
    for (spec, typed) in specs.iter().zip(typed) {
        let text = match typed.or_else(|| spec.default.clone()) {
            Some(text) => text,
            None if spec.required => return err(format!("missing <{}>", spec.name)),
            None => continue,
        };
        bound.push(BoundArg {
            name: spec.name.clone(),
            value: check(spec, &text)?,
        });
    }
    Ok(bound)
}

/// Which text each declared argument was given, by name or by position.
fn assign(specs: &[ArgSpec], raw: &str, words: &[Word]) -> Result<Vec<Option<String>>, ArgError> {
    let mut given: Vec<Option<String>> = vec![None; specs.len()];
    let mut positional_only = false;
    let mut i = 0;
    while let Some(word) = words.get(i) {
        i += 1;
        if !positional_only && word.is_option(raw) {
            if word.text == "--" {
                positional_only = true;
                continue;
            }
            let (name, inline) = match word.text[2..].split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (&word.text[2..], None),
            };
            let Some(at) = specs.iter().position(|s| s.name == name) else {
                return err(format!("unknown option --{}", quoted(name)));
            };
            let spec = &specs[at];
            if given[at].is_some() {
                return err(format!("--{name} is given twice"));
            }
            let value = match inline {
                Some(value) => value,
                None if spec.kind == ArgKind::Boolean => "true".to_string(),
                None => {
                    let Some(next) = words.get(i) else {
                        return err(format!("--{name} needs a value"));
                    };
                    i += 1;
                    next.text.clone()
                }
            };
            given[at] = Some(value);
            continue;
        }
        let Some(at) = (0..specs.len()).find(|&at| given[at].is_none()) else {
            return err(format!("unexpected argument {:?}", quoted(&word.text)));
        };
        if specs[at].rest {
            given[at] = Some(raw[word.start..].trim_end().to_string());
            break;
        }
        given[at] = Some(word.text.clone());
    }
    Ok(given)
}

/// Check one typed value against its declaration.
pub fn check(spec: &ArgSpec, text: &str) -> Result<Bound, ArgError> {
    let name = &spec.name;
    let value = match &spec.kind {
        ArgKind::Text => Value::Text(text.to_string()),
        ArgKind::Integer => {
            let n: i64 = text
                .parse()
                .or_else(|_| err(format!("--{name} must be an integer")))?;
            in_bounds(spec, n as f64)?;
            Value::Integer(n)
        }
        ArgKind::Number => {
            let x = text
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| ArgError(format!("--{name} must be a number")))?;
            in_bounds(spec, x)?;
            Value::Number(x)
        }
        ArgKind::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Value::Boolean(true),
            "false" | "no" | "off" | "0" => Value::Boolean(false),
            _ => return err(format!("--{name} must be true or false")),
        },
        ArgKind::Duration => {
            let ms = parse_duration(text).ok_or_else(|| {
                ArgError(format!("--{name} must be a duration like 90s or 1h30m"))
            })?;
            in_bounds(spec, ms as f64 / 1000.0)?;
            Value::DurationMs(ms)
        }
        ArgKind::Choice(choices) => match choices.iter().find(|c| *c == text) {
            Some(choice) => Value::Choice(choice.clone()),
            None => return err(format!("--{name} must be one of {}", choices.join(", "))),
        },
        ArgKind::User => {
            let name = text.strip_prefix('@').unwrap_or(text);
            return Ok(Bound::User(name.to_string()));
        }
        ArgKind::Session => return Ok(Bound::Session(text.to_string())),
    };
    Ok(Bound::Value(value))
}

fn in_bounds(spec: &ArgSpec, x: f64) -> Result<(), ArgError> {
    let name = &spec.name;
    let unit = if spec.kind == ArgKind::Duration {
        "s"
    } else {
        ""
    };
    match (spec.min, spec.max) {
        (Some(min), Some(max)) if x < min || x > max => err(format!(
            "--{name} must be between {min}{unit} and {max}{unit}"
        )),
        (Some(min), None) if x < min => err(format!("--{name} must be at least {min}{unit}")),
        (None, Some(max)) if x > max => err(format!("--{name} must be at most {max}{unit}")),
        _ => Ok(()),
    }
}

/// `90s`, `1h30m`, `500ms`, `2d`, `1w`: whole numbers with units, largest first or not.
/// A bare number is refused (seconds or minutes? the user must say).
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let mut rest = text.as_str();
    let mut total: u64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let per: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(per)?)?;
    }
    Some(total)
}

/// The usage line generated from a declaration: `/deploy <service> [--env staging|prod]`.
pub fn usage(command: &str, specs: &[ArgSpec]) -> String {
    let mut line = format!("/{command}");
    for spec in specs {
        let name = &spec.name;
        let part = match (spec.required, spec.rest, &spec.kind) {
            (true, true, _) => format!("<{name}…>"),
            (true, false, _) => format!("<{name}>"),
            (false, true, _) => format!("[{name}…]"),
            (false, false, ArgKind::Boolean) => format!("[--{name}]"),
            (false, false, kind) => format!("[--{name} {}]", hint(kind)),
        };
        line.push(' ');
        line.push_str(&part);
    }
    line
}

fn hint(kind: &ArgKind) -> String {
    match kind {
        ArgKind::Text => "TEXT".into(),
        ArgKind::Integer => "N".into(),
        ArgKind::Number => "X".into(),
        ArgKind::Boolean => "true|false".into(),
        ArgKind::Duration => "DURATION".into(),
        ArgKind::Choice(choices) => choices.join("|"),
        ArgKind::User => "USER".into(),
        ArgKind::Session => "SESSION".into(),
    }
}

/// Structural checks on a command's declared arguments (part of manifest validation).
pub fn validate(specs: &[ArgSpec]) -> Result<(), String> {
    if specs.len() > MAX_ARGS {
        return Err(format!("declares more than {MAX_ARGS} arguments"));
    }
    for (i, spec) in specs.iter().enumerate() {
        let name = &spec.name;
        let valid_name = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_name {
            return Err(format!("invalid argument name {:?}", quoted(name)));
        }
        if specs[..i].iter().any(|s| &s.name == name) {
            return Err(format!("argument {name:?} is declared twice"));
        }
        if spec.summary.chars().count() > 200 {
            return Err(format!("the summary of argument {name:?} is too long"));
        }
        if spec.rest && (i + 1 != specs.len() || spec.kind != ArgKind::Text) {
            return Err(format!(
                "argument {name:?}: only the last argument, of kind text, may take the rest"
            ));
        }
        if let ArgKind::Choice(choices) = &spec.kind {
            let bad = choices
                .iter()
                .any(|c| c.is_empty() || c.chars().count() > 64 || c.contains(char::is_whitespace));
            if choices.is_empty() || choices.len() > MAX_CHOICES || bad {
                return Err(format!(
                    "argument {name:?}: a choice lists 1 to {MAX_CHOICES} words of at most 64 \
                     characters"
                ));
            }
        }
        let bounded = matches!(
            spec.kind,
            ArgKind::Integer | ArgKind::Number | ArgKind::Duration
        );
        let bounds = [spec.min, spec.max];
        if bounds.iter().flatten().next().is_some() && !bounded {
            return Err(format!(
                "argument {name:?}: min and max apply to integers, numbers and durations"
            ));
        }
        if bounds.iter().flatten().any(|b| !b.is_finite())
            || matches!((spec.min, spec.max), (Some(min), Some(max)) if min > max)
        {
            return Err(format!("argument {name:?}: min and max are not a range"));
        }
        if let Some(default) = &spec.default {
            if spec.required {
                return Err(format!("argument {name:?} is required and has a default"));
            }
            if matches!(spec.kind, ArgKind::User | ArgKind::Session) {
                return Err(format!(
                    "argument {name:?}: a user or session argument has no default"
                ));
            }
            if default.chars().count() > 200 {
                return Err(format!("the default of argument {name:?} is too long"));
            }
            check(spec, default).map_err(|e| format!("the default of argument {name:?}: {e}"))?;
        }
    }
    Ok(())
}

/// A bounded, printable piece of what the user typed, for an error message.
fn quoted(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_QUOTED).collect();
    if text.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}

/// Where the cursor of a half-typed line is: what is being typed and for which argument.
#[derive(Debug, PartialEq)]
pub struct Cursor<'a> {
    pub target: Target<'a>,
    /// What is typed of the word so far (unquoted).
    pub partial: String,
    /// Byte offset in the line where the replaced part starts.
    pub from: usize,
    /// The arguments typed so far, by name, as typed (for the plugin's `complete`).
    pub given: Vec<(&'a ArgSpec, String)>,
}

#[derive(Debug, PartialEq)]
pub enum Target<'a> {
    /// An option name (`--e…`): the options not given yet.
    Options(Vec<&'a ArgSpec>),
    /// The value of this argument.
    Value(&'a ArgSpec),
    /// Nothing to complete (past the last argument, or a broken line).
    Nothing,
}

/// The cursor at the end of `raw` (everything after the command name).
pub fn cursor<'a>(specs: &'a [ArgSpec], raw: &str) -> Cursor<'a> {
    let nothing = |from| Cursor {
        target: Target::Nothing,
        partial: String::new(),
        from,
        given: Vec::new(),
    };
    let Some(mut words) = split_words(raw) else {
        return nothing(raw.len());
    };
    let at_word_end = !raw.is_empty() && !raw.ends_with(char::is_whitespace);
    let (partial, from) = match words.pop() {
        Some(word) if at_word_end => (word.text, word.start),
        Some(word) => {
            words.push(word);
            (String::new(), raw.len())
        }
        None => (String::new(), raw.len()),
    };
    // Walk the complete words as `assign` does, without refusing anything.
    let mut given: Vec<Option<String>> = vec![None; specs.len()];
    let mut pending: Option<usize> = None;
    let mut positional_only = false;
    for word in &words {
        if let Some(at) = pending.take() {
            given[at] = Some(word.text.clone());
            continue;
        }
        if !positional_only && word.is_option(raw) {
            if word.text == "--" {
                positional_only = true;
                continue;
            }
            let (name, inline) = match word.text[2..].split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (&word.text[2..], None),
            };
            if let Some(at) = specs.iter().position(|s| s.name == name) {
                match inline {
                    Some(value) => given[at] = Some(value.to_string()),
                    None if specs[at].kind == ArgKind::Boolean => given[at] = Some("true".into()),
                    None => pending = Some(at),
                }
            }
            continue;
        }
        match (0..specs.len()).find(|&at| given[at].is_none()) {
            // Inside a rest argument: nothing more to complete.
            Some(at) if specs[at].rest => return nothing(from),
            Some(at) => given[at] = Some(word.text.clone()),
            None => return nothing(from),
        }
    }
    let given_now = specs
        .iter()
        .zip(&given)
        .filter_map(|(s, g)| g.clone().map(|g| (s, g)))
        .collect();
    let target = if let Some(at) = pending {
        Target::Value(&specs[at])
    } else if !positional_only && partial.starts_with("--") && raw[from..].starts_with("--") {
        match partial[2..].split_once('=') {
            Some((name, value)) => {
                let Some(spec) = specs.iter().find(|s| s.name == name) else {
                    return nothing(from);
                };
                // Where the value starts in the line as typed (quotes may sit before it).
                let at = raw[from..].find('=').map_or(raw.len(), |i| from + i + 1);
                return Cursor {
                    target: Target::Value(spec),
                    partial: value.to_string(),
                    from: at,
                    given: given_now,
                };
            }
            None => Target::Options(
                specs
                    .iter()
                    .zip(&given)
                    .filter(|(_, g)| g.is_none())
                    .map(|(s, _)| s)
                    .collect(),
            ),
        }
    } else {
        match (0..specs.len()).find(|&at| given[at].is_none()) {
            Some(at) => Target::Value(&specs[at]),
            None => Target::Nothing,
        }
    };
    Cursor {
        target,
        partial,
        from,
        given: given_now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slashd_plugin_api::ArgKind::*;

    fn specs() -> Vec<ArgSpec> {
        vec![
            ArgSpec::new("service", Text, "what").required(),
            ArgSpec::new(
                "env",
                Choice(vec!["staging".into(), "prod".into()]),
                "where",
            )
            .default("staging"),
            ArgSpec::new("count", Integer, "how many").range(Some(1.0), Some(10.0)),
            ArgSpec::new("force", Boolean, "no questions"),
            ArgSpec::new("wait", Duration, "how long").range(Some(1.0), Some(3600.0)),
            ArgSpec::new("ratio", Number, "share").range(Some(0.0), None),
            ArgSpec::new("who", User, "for whom"),
            ArgSpec::new("where", Session, "which session"),
            ArgSpec::new("note", Text, "why").rest(),
        ]
    }

    /// `check(line, expected)`: the bound values as `name=value` (Debug of the value), or
    /// the error's text.
    #[track_caller]
    fn check(raw: &str, expected: Result<&str, &str>) {
        let got = bind(&specs(), raw).map(|bound| {
            bound
                .iter()
                .map(|b| format!("{}={:?}", b.name, b.value))
                .collect::<Vec<_>>()
                .join(" ")
        });
        assert_eq!(
            got,
            expected.map(String::from).map_err(|e| ArgError(e.into())),
            "{raw:?}"
        );
    }

    const STAGING: &str = r#"env=Value(Choice("staging"))"#;

    #[test]
    fn binds_positional_and_named_arguments() {
        check(
            "api",
            Ok(&format!(r#"service=Value(Text("api")) {STAGING}"#)),
        );
        check(
            "api prod 3",
            Ok(r#"service=Value(Text("api")) env=Value(Choice("prod")) count=Value(Integer(3))"#),
        );
        // Options anywhere before the rest, `=` or a separate word.
        check(
            "--env prod api --count=2",
            Ok(r#"service=Value(Text("api")) env=Value(Choice("prod")) count=Value(Integer(2))"#),
        );
        // A bare boolean option is true; `=false` says false; positional skips given ones.
        check(
            "--force api",
            Ok(&format!(
                r#"service=Value(Text("api")) {STAGING} force=Value(Boolean(true))"#
            )),
        );
        check(
            "api --force=no",
            Ok(&format!(
                r#"service=Value(Text("api")) {STAGING} force=Value(Boolean(false))"#
            )),
        );
        check(
            "api --wait 30m --ratio 0.5",
            Ok(&format!(
                r#"service=Value(Text("api")) {STAGING} wait=Value(DurationMs(1800000)) ratio=Value(Number(0.5))"#
            )),
        );
        check(
            "api --who @bob --where 6f1c",
            Ok(&format!(
                r#"service=Value(Text("api")) {STAGING} who=User("bob") where=Session("6f1c")"#
            )),
        );
        // Quoting works as for untyped arguments; `--` ends the options.
        check(
            r#""two words" --env=prod"#,
            Ok(r#"service=Value(Text("two words")) env=Value(Choice("prod"))"#),
        );
        check(
            "-- --env",
            Ok(&format!(r#"service=Value(Text("--env")) {STAGING}"#)),
        );
        check(
            r#"'--env'"#,
            Ok(&format!(r#"service=Value(Text("--env")) {STAGING}"#)),
        );
        check("-5", Ok(&format!(r#"service=Value(Text("-5")) {STAGING}"#)));
    }

    #[test]
    fn the_rest_takes_the_line_verbatim() {
        let rest = vec![
            ArgSpec::new("count", Integer, "n").default("1"),
            ArgSpec::new("message", Text, "m").required().rest(),
        ];
        let bind_rest = |raw| {
            bind(&rest, raw).map(|b| {
                b.iter()
                    .map(|b| format!("{:?}", b.value))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            bind_rest(r#"2 hello  "big"   world --x "#),
            Ok(vec![
                "Value(Integer(2))".to_string(),
                r#"Value(Text("hello  \"big\"   world --x"))"#.to_string()
            ])
        );
        assert_eq!(
            bind_rest("--count 3 hi"),
            Ok(vec![
                "Value(Integer(3))".to_string(),
                r#"Value(Text("hi"))"#.to_string()
            ])
        );
        assert_eq!(bind_rest(""), Err(ArgError("missing <message>".into())));
    }

    #[test]
    fn refuses_what_does_not_fit_naming_the_argument() {
        check("", Err("missing <service>"));
        check("--env prod", Err("missing <service>"));
        check("api qa", Err("--env must be one of staging, prod"));
        check("api --env=PROD", Err("--env must be one of staging, prod"));
        check("api --count x", Err("--count must be an integer"));
        check("api --count 2.5", Err("--count must be an integer"));
        check("api --count 0", Err("--count must be between 1 and 10"));
        check("api --count 11", Err("--count must be between 1 and 10"));
        check(
            "api --count 99999999999999999999",
            Err("--count must be an integer"),
        );
        check("api --force=maybe", Err("--force must be true or false"));
        check(
            "api --wait 90",
            Err("--wait must be a duration like 90s or 1h30m"),
        );
        check(
            "api --wait 1y",
            Err("--wait must be a duration like 90s or 1h30m"),
        );
        check("api --wait 2h", Err("--wait must be between 1s and 3600s"));
        check(
            "api --wait 500ms",
            Err("--wait must be between 1s and 3600s"),
        );
        check("api --ratio -1", Err("--ratio must be at least 0"));
        check("api --ratio NaN", Err("--ratio must be a number"));
        check("api --ratio inf", Err("--ratio must be a number"));
        check("api --nope 1", Err("unknown option --nope"));
        check("api --env prod --env staging", Err("--env is given twice"));
        check("api --count", Err("--count needs a value"));
        check(r#"api "open"#, Err("unbalanced quotes"));
        let only_one = vec![ArgSpec::new("x", Text, "x").required()];
        assert_eq!(
            bind(&only_one, "a b"),
            Err(ArgError(r#"unexpected argument "b""#.into()))
        );
        let long = format!("--{}", "n".repeat(100));
        check(
            &format!("api {long}"),
            Err(&format!("unknown option --{}…", "n".repeat(40))),
        );
    }

    #[test]
    fn durations() {
        let cases = [
            ("90s", Some(90_000)),
            ("1h30m", Some(5_400_000)),
            ("30m1h", Some(5_400_000)),
            ("500ms", Some(500)),
            ("2d", Some(172_800_000)),
            ("1w", Some(604_800_000)),
            ("1H", Some(3_600_000)),
            ("0s", Some(0)),
            ("90", None),
            ("", None),
            ("s", None),
            ("1.5h", None),
            ("-1s", None),
            ("1h 30m", None),
            ("99999999999999999999w", None),
            ("40000000000w", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), expected, "{text:?}");
        }
    }

    #[test]
    fn generates_usage() {
        assert_eq!(
            usage("deploy", &specs()),
            "/deploy <service> [--env staging|prod] [--count N] [--force] [--wait DURATION] \
             [--ratio X] [--who USER] [--where SESSION] [note…]"
        );
        assert_eq!(usage("help", &[]), "/help");
    }

    #[test]
    fn validates_declarations() {
        #[track_caller]
        fn check_specs(specs: Vec<ArgSpec>, expected: Result<(), &str>) {
            assert_eq!(validate(&specs), expected.map_err(String::from));
        }
        check_specs(specs(), Ok(()));
        let a = |name: &str, kind| ArgSpec::new(name, kind, "s");
        check_specs(vec![a("Bad", Text)], Err(r#"invalid argument name "Bad""#));
        check_specs(
            vec![a("x", Text), a("x", Integer)],
            Err(r#"argument "x" is declared twice"#),
        );
        check_specs(
            vec![a("x", Text).rest(), a("y", Text)],
            Err(r#"argument "x": only the last argument, of kind text, may take the rest"#),
        );
        check_specs(
            vec![a("x", Integer).rest()],
            Err(r#"argument "x": only the last argument, of kind text, may take the rest"#),
        );
        check_specs(
            vec![a("x", Choice(vec![]))],
            Err(r#"argument "x": a choice lists 1 to 64 words of at most 64 characters"#),
        );
        check_specs(
            vec![a("x", Choice(vec!["a b".into()]))],
            Err(r#"argument "x": a choice lists 1 to 64 words of at most 64 characters"#),
        );
        check_specs(
            vec![a("x", Text).range(Some(1.0), None)],
            Err(r#"argument "x": min and max apply to integers, numbers and durations"#),
        );
        check_specs(
            vec![a("x", Integer).range(Some(2.0), Some(1.0))],
            Err(r#"argument "x": min and max are not a range"#),
        );
        check_specs(
            vec![a("x", Number).range(Some(f64::NAN), None)],
            Err(r#"argument "x": min and max are not a range"#),
        );
        check_specs(
            vec![a("x", Integer).required().default("1")],
            Err(r#"argument "x" is required and has a default"#),
        );
        check_specs(
            vec![a("x", Integer).range(Some(1.0), Some(5.0)).default("9")],
            Err(r#"the default of argument "x": --x must be between 1 and 5"#),
        );
        check_specs(
            vec![a("x", User).default("bob")],
            Err(r#"argument "x": a user or session argument has no default"#),
        );
        let many = (0..17).map(|i| a(&format!("a{i}"), Text)).collect();
        check_specs(many, Err("declares more than 16 arguments"));
    }

    /// `check_cursor(raw, target, partial, from)`: target as `value:NAME`, `options:A,B`
    /// or `nothing`.
    #[track_caller]
    fn check_cursor(raw: &str, target: &str, partial: &str, from: usize) {
        let specs = specs();
        let c = cursor(&specs, raw);
        let got = match &c.target {
            Target::Value(s) => format!("value:{}", s.name),
            Target::Options(o) => format!(
                "options:{}",
                o.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Target::Nothing => "nothing".into(),
        };
        assert_eq!(
            (got.as_str(), c.partial.as_str(), c.from),
            (target, partial, from),
            "{raw:?}"
        );
    }

    #[test]
    fn finds_the_cursor() {
        check_cursor("", "value:service", "", 0);
        check_cursor("ap", "value:service", "ap", 0);
        check_cursor("api ", "value:env", "", 4);
        check_cursor("api st", "value:env", "st", 4);
        check_cursor("api --env ", "value:env", "", 10);
        check_cursor("api --env p", "value:env", "p", 10);
        check_cursor("api --env=p", "value:env", "p", 10);
        check_cursor("api --force ", "value:env", "", 12);
        check_cursor(
            "api --w",
            "options:env,count,force,wait,ratio,who,where,note",
            "--w",
            4,
        );
        check_cursor("--env prod ", "value:service", "", 11);
        check_cursor("--who ", "value:who", "", 6);
        check_cursor("api prod 1 true 1s 1 bob s no", "value:note", "no", 27);
        check_cursor("api prod 1 true 1s 1 bob s no more", "nothing", "", 30);
        check_cursor(r#"api "open"#, "nothing", "", 9);
        check_cursor(r#"api --"é"=p"#, "nothing", "", 4);
        check_cursor(r#"api --"env"=p"#, "value:env", "p", 12);
    }
}
