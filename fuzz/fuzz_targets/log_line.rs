//! The logs plugin's line parser (plugins/logs/src/parse.rs). The plugin is a wasm-only
//! crate in the separate plugins/ workspace, so its parser — a module that needs only
//! `time` and `serde_json` — is compiled in here as it is, rather than making the plugin
//! crate build for the host too.
//!
//! Properties: any line parses or is refused without panicking; a parsed level is a short
//! upper-case word and a source at most 100 characters; and a line written in either
//! documented format (`<RFC 3339> <LEVEL> <msg>`, or JSON `ts`/`level`/`msg`/`source`)
//! parses back to its timestamp, level and source.
#![no_main]

#[path = "../../plugins/logs/src/parse.rs"]
#[allow(dead_code)]
mod parse;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A well-formed line's parts, drawn from the same bytes as the raw line.
#[derive(Debug, Arbitrary)]
struct Input {
    /// Seconds since the epoch and an offset in minutes, for a well-formed line.
    unix: i64,
    offset_minutes: i16,
    level: String,
    msg: String,
    source: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(data) {
        if let Some(line) = parse::parse_line(raw) {
            check(&line);
        }
    }
    let Ok(input) = Unstructured::new(data).arbitrary::<Input>() else {
        return;
    };

    let Some(ts) = timestamp(input.unix, input.offset_minutes) else {
        return;
    };
    let Ok(ts_text) = ts.format(&Rfc3339) else {
        return; // a year RFC 3339 cannot write (before 0 or after 9999)
    };
    let level_ok = !input.level.is_empty()
        && input.level.len() <= 16
        && input.level.chars().all(|c| c.is_ascii_alphabetic());
    let want_level = input.level.to_ascii_uppercase();

    // Text: the message is free text on the rest of the line.
    let msg_line: String = input.msg.replace(['\n', '\r'], " ");
    let text = format!("{ts_text} {} {msg_line}", input.level);
    let parsed = parse::parse_line(&text);
    if level_ok {
        let line = parsed.unwrap_or_else(|| panic!("well-formed text line refused: {text:?}"));
        check(&line);
        assert_eq!(line.ts, ts, "{text:?}");
        assert_eq!(line.level, want_level, "{text:?}");
        assert_eq!(line.source, None);
    }

    // JSON, with any message and source.
    let mut object = serde_json::json!({ "ts": ts_text, "level": input.level, "msg": input.msg });
    if let Some(source) = &input.source {
        object["source"] = source.clone().into();
    }
    let json = object.to_string();
    let parsed = parse::parse_line(&json);
    if level_ok {
        let line = parsed.unwrap_or_else(|| panic!("well-formed JSON line refused: {json:?}"));
        check(&line);
        assert_eq!(line.ts, ts, "{json:?}");
        assert_eq!(line.level, want_level, "{json:?}");
        let want_source = input
            .source
            .map(|s| s.chars().take(100).collect::<String>());
        assert_eq!(line.source, want_source, "{json:?}");
    } else {
        assert!(parsed.is_none(), "bad level accepted: {json:?}");
    }
});

fn timestamp(unix: i64, offset_minutes: i16) -> Option<OffsetDateTime> {
    let offset = UtcOffset::from_whole_seconds(i32::from(offset_minutes % (24 * 60)) * 60).ok()?;
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .checked_to_offset(offset)
}

fn check(line: &parse::Line) {
    assert!(!line.level.is_empty() && line.level.len() <= 16, "{line:?}");
    assert!(
        line.level.chars().all(|c| c.is_ascii_uppercase()),
        "{line:?}"
    );
    if let Some(source) = &line.source {
        assert!(source.chars().count() <= 100, "{line:?}");
    }
}
