//! Splitting a `/command args…` line.

/// `/name rest…` → (`name`, `rest`). The name is lowercased; the rest is kept as typed.
pub fn split_command(content: &str) -> Option<(String, &str)> {
    let body = content.strip_prefix('/')?;
    let (name, rest) = match body.find(char::is_whitespace) {
        Some(i) => (&body[..i], body[i..].trim_start()),
        None => (body, ""),
    };
    Some((name.to_lowercase(), rest))
}

/// Shell-style argument splitting (`"two words"`, `'quoted'`, `back\ slash`). `None` for
/// unbalanced quotes.
pub fn split_args(raw: &str) -> Option<Vec<String>> {
    shlex::split(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_commands_and_args() {
        assert_eq!(split_command("/help"), Some(("help".into(), "")));
        assert_eq!(
            split_command("/Reload  7 days"),
            Some(("reload".into(), "7 days"))
        );
        assert_eq!(split_command("hello"), None);
        assert_eq!(
            split_args(r#"a "b c" 'd e' f\ g"#).unwrap(),
            ["a", "b c", "d e", "f g"]
        );
        assert_eq!(split_args(r#"say "unterminated"#), None);
        assert_eq!(split_args("").unwrap(), Vec::<String>::new());
    }
}
