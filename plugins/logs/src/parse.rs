//! One log line: JSON (`ts`, `level`, `msg`, optional `source`) or text
//! `<RFC 3339 timestamp> <LEVEL> <message>`.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, PartialEq)]
pub struct Line {
    pub ts: OffsetDateTime,
    pub level: String,
    pub source: Option<String>,
}

pub fn parse_line(line: &str) -> Option<Line> {
    let line = line.trim();
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let ts = OffsetDateTime::parse(v.get("ts")?.as_str()?, &Rfc3339).ok()?;
        let level = normalize_level(v.get("level")?.as_str()?)?;
        v.get("msg")?.as_str()?;
        let source = v
            .get("source")
            .and_then(|s| s.as_str())
            .map(|s| s.chars().take(100).collect());
        return Some(Line { ts, level, source });
    }
    let mut parts = line.splitn(3, char::is_whitespace);
    let ts = OffsetDateTime::parse(parts.next()?, &Rfc3339).ok()?;
    let level = normalize_level(parts.next()?)?;
    Some(Line {
        ts,
        level,
        source: None,
    })
}

/// Upper-case, and only plausible level words (letters, at most 16).
fn normalize_level(level: &str) -> Option<String> {
    let ok =
        !level.is_empty() && level.len() <= 16 && level.chars().all(|c| c.is_ascii_alphabetic());
    ok.then(|| level.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_formats() {
        let j = parse_line(
            r#"{"ts":"2026-11-27T10:00:00Z","level":"warn","msg":"disk","source":"db"}"#,
        )
        .unwrap();
        assert_eq!(j.level, "WARN");
        assert_eq!(j.source.as_deref(), Some("db"));
        let t = parse_line("2026-11-27T10:00:00+01:00 ERROR something broke").unwrap();
        assert_eq!(t.level, "ERROR");
        assert_eq!(t.source, None);
        for bad in [
            "",
            "garbage",
            "2026-13-01T00:00:00Z INFO x",
            r#"{"ts":"x","level":"INFO","msg":"m"}"#,
            r#"{"level":"INFO","msg":"m"}"#,
            "2026-11-27T10:00:00Z 42 numbers",
        ] {
            assert!(parse_line(bad).is_none(), "{bad}");
        }
    }
}
