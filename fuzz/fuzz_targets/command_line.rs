//! The command-line parser (`slashd::protocol::command_line`): `split_command` and `split_args`
//! never panic; `split_command` finds a lowercase name and a trimmed rest; a line without
//! quotes or backslashes splits into exactly its words (nothing is dropped — `#` included);
//! `split_args` agrees with `shlex::split` wherever shell comments play no part; arguments
//! quoted with shlex and joined split back to exactly the same arguments; and whatever
//! `split_args` accepts re-joins to a line that splits the same way. Typed arguments
//! (`protocol::args`) bind and find the cursor on any line without panicking, and the
//! cursor is always a character boundary of the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slashd::plugins::manifest::{ArgKind, ArgSpec};
use slashd::protocol::args;
use slashd::protocol::command_line::{split_args, split_command};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    // Arguments to quote and split back: the same bytes, cut at U+001F (unit separator).
    let args: Vec<String> = line.split('\x1f').map(String::from).collect();

    match split_command(line) {
        Some((name, rest)) => {
            assert!(line.starts_with('/'));
            assert!(!name.chars().any(char::is_whitespace), "name {name:?}");
            assert_eq!(name, name.to_lowercase());
            assert!(!rest.starts_with(char::is_whitespace), "rest {rest:?}");
            // `rest` is a suffix of the line: what the plugin sees as the raw string.
            assert!(line.ends_with(rest));
            check(rest);
            typed(rest);
        }
        None => assert!(!line.starts_with('/')),
    }
    check(line);
    round_trip(&args);
});

fn check(line: &str) {
    let split = split_args(line);
    if !line.contains(['\'', '"', '\\']) {
        let words: Vec<String> = line
            .split([' ', '\t', '\n'])
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect();
        assert_eq!(split.as_ref(), Some(&words), "{line:?}");
    }
    // shlex is the reference for sh quoting; it also reads `#` as a comment, which we don't.
    if !line.contains('#') {
        assert_eq!(split, shlex::split(line), "{line:?}");
    }
    if let Some(split) = split {
        round_trip(&split);
    }
}

/// Quote and join `args` (as a client would type them), then split: the same arguments.
fn round_trip(args: &[String]) {
    // shlex refuses to quote a NUL; such arguments cannot be typed.
    let Ok(joined) = shlex::try_join(args.iter().map(String::as_str)) else {
        assert!(args.iter().any(|a| a.contains('\0')));
        return;
    };
    let split =
        split_args(&joined).unwrap_or_else(|| panic!("quoted arguments {joined:?} did not split"));
    assert_eq!(split, args, "through {joined:?}");
}

/// Typed arguments of every kind, a rest among them.
fn typed(raw: &str) {
    let specs = [
        ArgSpec::new("service", ArgKind::Text, "s").required(),
        ArgSpec::new("env", ArgKind::Choice(vec!["a".into(), "b".into()]), "e").default("a"),
        ArgSpec::new("n", ArgKind::Integer, "n").range(Some(1.0), Some(9.0)),
        ArgSpec::new("x", ArgKind::Number, "x"),
        ArgSpec::new("f", ArgKind::Boolean, "f"),
        ArgSpec::new("d", ArgKind::Duration, "d"),
        ArgSpec::new("u", ArgKind::User, "u"),
        ArgSpec::new("note", ArgKind::Text, "r").rest(),
    ];
    let _ = args::bind(&specs, raw);
    let cursor = args::cursor(&specs, raw);
    assert!(
        raw.is_char_boundary(cursor.from),
        "{raw:?} at {}",
        cursor.from
    );
}
