//! U+0000 (NUL). PostgreSQL's `text` cannot hold it and SQLite truncates it in places, so
//! the two backends would disagree; every string that reaches the store is refused with a
//! clear error first, at the edges that decode client input (REST bodies, queries and
//! paths; WebSocket frames).

use serde_json::Value;

pub const REFUSED: &str = "text must not contain U+0000 (NUL)";

/// Does any string in `value` — keys included — hold a NUL?
pub fn in_json(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(in_json),
        Value::Object(map) => in_map(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// [`in_json`] for an object's keys and values.
pub fn in_map(map: &serde_json::Map<String, Value>) -> bool {
    map.iter().any(|(k, v)| k.contains('\0') || in_json(v))
}

/// Could JSON text decode to a string with a NUL? A cheap test that lets the common case
/// skip [`in_json`]: JSON can only carry a NUL as the escape `\u0000`.
pub fn may_be_in_json_text(text: &[u8]) -> bool {
    text.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

/// Does a URI component hold a percent-encoded NUL?
pub fn in_uri(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w == b"%00")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn finds_nul_anywhere() {
        let check = |value: serde_json::Value, expected: bool| {
            assert_eq!(super::in_json(&value), expected, "{value}")
        };
        check(json!({"a": "b"}), false);
        check(json!({"a": "b\u{0}"}), true);
        check(json!({"a\u{0}": 1}), true);
        check(json!([1, [true, {"x": ["\u{0}"]}]]), true);
        check(json!("\\u0000 is text here"), false);
    }

    #[test]
    fn prefilters_json_text_and_uris() {
        assert!(super::may_be_in_json_text(br#"{"a":"\u0000"}"#));
        assert!(!super::may_be_in_json_text(br#"{"a":"u0000"}"#));
        assert!(super::in_uri("/x?user=a%00b"));
        assert!(!super::in_uri("/x?user=a%0Ab"));
    }
}
