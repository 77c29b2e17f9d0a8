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

/// Shell-style argument splitting (`"two words"`, `'quoted'`, `back\ slash`), as POSIX
/// `sh` (and `shlex`) quote words: words are separated by spaces, tabs and newlines;
/// single quotes keep everything literally; double quotes keep everything except `\"`,
/// `\\`, `\$` and `` \` `` (unescaped) and a backslash-newline (removed); outside quotes a
/// backslash escapes the next character. Unlike a shell, `#` starts no comment: in a chat
/// line `/remind #ops deploy` means three arguments. `None` for an unbalanced quote or a
/// trailing backslash.
pub fn split_args(raw: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    // The word being read; `Some("")` after `''`, so empty quotes make an empty argument.
    let mut word: Option<String> = None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => args.extend(word.take()),
            '\'' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('$' | '`' | '"' | '\\') => word.push(c),
                            '\n' => {}
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                let next = chars.next()?;
                let word = word.get_or_insert_with(String::new);
                if next != '\n' {
                    word.push(next);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    args.extend(word);
    Some(args)
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

    /// `shlex::split`, used before, treats a word starting with `#` as a shell comment and
    /// silently dropped the rest of the line (`/tally add #ops` ran as `/tally add`). The
    /// `command_line` fuzz target now checks that no word is lost.
    #[test]
    fn hash_is_an_ordinary_character() {
        assert_eq!(
            split_args("#ops deploy now").unwrap(),
            ["#ops", "deploy", "now"]
        );
        assert_eq!(split_args("a #b\nc").unwrap(), ["a", "#b", "c"]);
        assert_eq!(split_args("a#b '#c'").unwrap(), ["a#b", "#c"]);
    }

    #[test]
    fn quoting_follows_sh() {
        assert_eq!(split_args("'' \"\"").unwrap(), ["", ""]);
        assert_eq!(
            split_args(r#""a\"b\\c\$d\x" 'e\f'"#).unwrap(),
            [r#"a"b\c$d\x"#, r"e\f"]
        );
        assert_eq!(split_args("a\\\nb c\td\n").unwrap(), ["ab", "c", "d"]);
        assert_eq!(split_args("\"a\\\nb\"").unwrap(), ["ab"]);
        assert_eq!(split_args(" x\\"), None);
        assert_eq!(split_args("'open"), None);
        let args = ["a b", "it's", "\"q\"", "#x", "", "tab\there", "$HOME"];
        let line = shlex::try_join(args).unwrap();
        assert_eq!(split_args(&line).unwrap(), args, "{line}");
    }
}
