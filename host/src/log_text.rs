//! Text from clients, tokens and plugins, made safe to put in a log line.
//!
//! Structured fields recorded as `&str` are already quoted and escaped by both log formats
//! (tracing's text format writes them with `Debug`, the JSON format as JSON strings). What
//! is not: a `%value` field and the message itself, which the text format writes raw — a
//! newline there forges a log line. So a client-controlled string goes into a log line as
//! a plain `&str` field, or through [`escape`] when it must be the message.

use std::borrow::Cow;

/// `text` with every control character (newlines, escape sequences, …) written as an
/// escape (`\n`, `\u{1b}`); other characters, non-ASCII included, are kept.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_control_characters_only() {
        let check = |input: &str, expected: &str| assert_eq!(super::escape(input), expected);
        check("plain text, ünïcode ✓", "plain text, ünïcode ✓");
        check("two\nlines", "two\\nlines");
        check("cr\rtab\t", "cr\\rtab\\t");
        check("\u{1b}[31mred", "\\u{1b}[31mred");
        check("nul\0", "nul\\u{0}");
        check("c1 \u{85}", "c1 \\u{85}");
    }
}
