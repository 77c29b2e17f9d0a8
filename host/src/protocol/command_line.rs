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
    Some(split_words(raw)?.into_iter().map(|w| w.text).collect())
}

/// One word of a line, as [`split_args`] reads it, and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// Unquoted.
    pub text: String,
    /// Byte offset in the line of the word's first character (a quote, if it starts with
    /// one).
    pub start: usize,
}

impl Word {
    /// Typed as `--…` (not quoted): an option, for typed arguments.
    pub fn is_option(&self, line: &str) -> bool {
        line.get(self.start..).is_some_and(|s| s.starts_with("--"))
    }
}

/// [`split_args`], keeping where each word starts (typed arguments need it: a `rest`
/// argument takes the line verbatim from its first word, and completion replaces the word
/// being typed).
pub fn split_words(raw: &str) -> Option<Vec<Word>> {
    let mut words = Vec::new();
    // The word being read; `Some` with an empty text after `''`, so empty quotes make an
    // empty argument.
    let mut word: Option<Word> = None;
    let mut chars = raw.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => {
                let word = word_text(&mut word, at);
                loop {
                    match chars.next()?.1 {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                let word = word_text(&mut word, at);
                loop {
                    match chars.next()?.1 {
                        '"' => break,
                        '\\' => match chars.next()?.1 {
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
                let next = chars.next()?.1;
                let word = word_text(&mut word, at);
                if next != '\n' {
                    word.push(next);
                }
            }
            c => word_text(&mut word, at).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// The text of the word being read, which starts at `at` if this is its first character.
fn word_text(word: &mut Option<Word>, at: usize) -> &mut String {
    &mut word
        .get_or_insert_with(|| Word {
            text: String::new(),
            start: at,
        })
        .text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_command(input: &str, expected: Option<(&str, &str)>) {
        let got = split_command(input);
        let got = got.as_ref().map(|(name, rest)| (name.as_str(), *rest));
        assert_eq!(got, expected, "{input:?}");
    }

    /// `None`: refused (an unbalanced quote or a trailing backslash).
    #[track_caller]
    fn check(input: &str, expected: Option<&[&str]>) {
        let got = split_args(input);
        let got: Option<Vec<&str>> = got.as_ref().map(|a| a.iter().map(String::as_str).collect());
        assert_eq!(got.as_deref(), expected, "{input:?}");
    }

    #[test]
    fn splits_the_command_name() {
        check_command("/help", Some(("help", "")));
        check_command("/Reload  7 days", Some(("reload", "7 days")));
        check_command("/probe-echo a  b ", Some(("probe-echo", "a  b ")));
        check_command("/x\tone", Some(("x", "one")));
        check_command("/", Some(("", "")));
        check_command("hello", None);
        check_command(" /help", None);
    }

    #[test]
    fn splits_arguments_as_sh_does() {
        check("", Some(&[]));
        check("   \t\n", Some(&[]));
        check("a b  c", Some(&["a", "b", "c"]));
        check(r#"a "b c" 'd e' f\ g"#, Some(&["a", "b c", "d e", "f g"]));
        check(
            r#"one "two words" 'three' four\ five"#,
            Some(&["one", "two words", "three", "four five"]),
        );
        check(r#""green pears""#, Some(&["green pears"]));
        check("a\\\nb c\td\n", Some(&["ab", "c", "d"]));
        // Empty quotes make an empty argument; quotes join with what touches them.
        check("'' \"\"", Some(&["", ""]));
        check(r#"a"b"'c'd"#, Some(&["abcd"]));
        // Double quotes unescape only `\"`, `\\`, `\$`, `` \` `` and backslash-newline.
        check(r#""a\"b\\c\$d\x" 'e\f'"#, Some(&[r#"a"b\c$d\x"#, r"e\f"]));
        check(r#""\`""#, Some(&["`"]));
        check("\"a\\\nb\"", Some(&["ab"]));
        // Single quotes keep everything, backslashes and double quotes included.
        check(r#"'a "b" \c'"#, Some(&[r#"a "b" \c"#]));
        // Outside quotes a backslash escapes any character.
        check(r"\'\x\\", Some(&["'x\\"]));
    }

    /// `shlex::split`, used before, treats a word starting with `#` as a shell comment and
    /// silently dropped the rest of the line (`/tally add #ops` ran as `/tally add`). The
    /// `command_line` fuzz target now checks that no word is lost.
    #[test]
    fn hash_is_an_ordinary_character() {
        check("#ops deploy now", Some(&["#ops", "deploy", "now"]));
        check("a #b\nc", Some(&["a", "#b", "c"]));
        check("a#b '#c'", Some(&["a#b", "#c"]));
    }

    #[test]
    fn refuses_unbalanced_quotes_and_a_trailing_backslash() {
        check(r#"say "unterminated"#, None);
        check(r#""unbalanced"#, None);
        check("'open", None);
        check(r#""a\""#, None);
        check(" x\\", None);
        check("\"x\\", None);
    }

    #[test]
    fn words_know_where_they_start() {
        let words = split_words(r#"ab "c d"  --e=f 'g'"#).unwrap();
        let got: Vec<(&str, usize)> = words.iter().map(|w| (w.text.as_str(), w.start)).collect();
        assert_eq!(got, [("ab", 0), ("c d", 3), ("--e=f", 10), ("g", 16)]);
        let line = r#"--a "--b" x--"#;
        let words = split_words(line).unwrap();
        let options: Vec<bool> = words.iter().map(|w| w.is_option(line)).collect();
        assert_eq!(options, [true, false, false]);
    }

    #[test]
    fn words_quoted_by_shlex_split_back() {
        let args = ["a b", "it's", "\"q\"", "#x", "", "tab\there", "$HOME"];
        let line = shlex::try_join(args).unwrap();
        check(&line, Some(&args));
    }
}
