//! Protocol v1 frames (DESIGN §3). Decoding is strict — unknown types and unknown fields
//! are refused with a message that says what was wrong — and never panics.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::Principal;
use crate::error::{AppError, ErrorCode};
use crate::store::{nul, Message};

/// Longest accepted client frame `id` when it is a string.
pub const MAX_ID_CHARS: usize = 128;

/// A client frame's `id`, echoed on every direct answer.
pub type FrameId = Option<Value>;

/// A client → server frame. `Serialize` writes it back as a client would send it (the fuzz
/// target checks that a decoded frame re-encodes to the same frame).
#[derive(Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Auth {
        token: String,
    },
    Join {
        session_id: String,
        #[serde(default)]
        since_seq: Option<i64>,
    },
    Leave {
        session_id: String,
    },
    Message {
        session_id: String,
        content: String,
    },
    Typing {
        session_id: String,
        state: bool,
    },
    Ping {},
}

/// A frame that could not be decoded, with whatever `id` could be recovered from it.
#[derive(Debug)]
pub struct BadFrame {
    pub id: FrameId,
    pub error: AppError,
}

/// Decode one text frame into its `id` and body.
pub fn decode(text: &str) -> Result<(FrameId, ClientFrame), BadFrame> {
    let bad = |id: FrameId, msg: String| BadFrame {
        id,
        error: AppError::BadRequest(msg),
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| bad(None, format!("frame is not valid JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(bad(None, "frame must be a JSON object".into()));
    };
    let id = take_id(&mut map).map_err(|msg| bad(None, msg))?;
    if nul::may_be_in_json_text(text.as_bytes()) && nul::in_map(&map) {
        return Err(bad(id, nul::REFUSED.into()));
    }
    if !matches!(map.get("type"), Some(Value::String(_))) {
        return Err(bad(id, "frame needs a string \"type\"".into()));
    }
    let frame = serde_json::from_value::<ClientFrame>(Value::Object(map))
        .map_err(|e| bad(id.clone(), format!("invalid frame: {e}")))?;
    Ok((id, frame))
}

/// The `id` of a frame, read without building the rest (other fields are scanned and
/// skipped, not allocated): what a refusal for rate echoes. `None` when there is none or
/// it is invalid.
pub fn peek_id(text: &str) -> FrameId {
    #[derive(Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Option<Value>,
    }
    check_id(serde_json::from_str::<IdOnly>(text).ok()?.id)
        .ok()
        .flatten()
}

fn take_id(map: &mut Map<String, Value>) -> Result<FrameId, String> {
    check_id(map.remove("id"))
}

fn check_id(id: Option<Value>) -> Result<FrameId, String> {
    match id {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_ID_CHARS => Ok(Some(Value::String(s))),
        Some(Value::Number(n)) => Ok(Some(Value::Number(n))),
        Some(_) => Err(format!(
            "\"id\" must be a number or a string of at most {MAX_ID_CHARS} characters"
        )),
    }
}

#[derive(Debug, Serialize)]
pub struct UserInfo<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub role: crate::auth::Role,
}

impl<'a> From<&'a Principal> for UserInfo<'a> {
    fn from(p: &'a Principal) -> Self {
        UserInfo {
            id: &p.id,
            name: &p.name,
            role: p.role,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceState {
    Joined,
    Left,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Ready {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: &'a FrameId,
        connection_id: &'a str,
        user: UserInfo<'a>,
    },
    Joined {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: &'a FrameId,
        session_id: &'a str,
        participants: Vec<String>,
        last_seq: i64,
        missed: &'a [Message],
        /// More were missed than `missed` holds: page `GET …/messages?after_seq=`.
        has_more: bool,
    },
    Left {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: &'a FrameId,
        session_id: &'a str,
    },
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: &'a FrameId,
        message_id: &'a str,
        seq: i64,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: &'a FrameId,
    },
    Message {
        session_id: &'a str,
        message: &'a Message,
    },
    Typing {
        session_id: &'a str,
        user_id: &'a str,
        state: bool,
    },
    Presence {
        session_id: &'a str,
        user_id: &'a str,
        state: PresenceState,
    },
    SessionEnded {
        session_id: &'a str,
    },
    /// A piece of an assistant reply being streamed; the stored `message` that follows has
    /// the same `message_id`.
    MessageDelta {
        session_id: &'a str,
        message_id: &'a str,
        delta: &'a str,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: &'a FrameId,
        code: ErrorCode,
        message: &'a str,
    },
}

impl ServerFrame<'_> {
    /// Serialize once; the text is then shared by every recipient.
    pub fn to_text(&self) -> axum::extract::ws::Utf8Bytes {
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"encoding"}"#.into())
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses() {
        let (id, frame) = decode(r#"{"type":"ping","id":7}"#).unwrap();
        assert_eq!(id, Some(Value::from(7)));
        assert!(matches!(frame, ClientFrame::Ping {}));
        assert!(decode("[1]").is_err());
        assert!(decode("nope").is_err());
        let err = decode(r#"{"type":"warp","id":"a"}"#).unwrap_err();
        assert_eq!(err.id, Some(Value::from("a")));
        let err = decode(r#"{"type":"join","session_id":"x","extra":1}"#).unwrap_err();
        assert!(err.error.to_string().contains("extra"), "{}", err.error);
        assert!(decode(&format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(129))).is_err());
        assert!(decode(r#"{"type":"message","session_id":"s","content":5}"#).is_err());
        let err = decode(r#"{"type":"message","id":3,"session_id":"s","content":"a\u0000"}"#)
            .unwrap_err();
        assert_eq!(
            (err.id, err.error.to_string()),
            (Some(Value::from(3)), nul::REFUSED.into())
        );
    }

    #[test]
    fn peeks_ids() {
        let check = |text: &str, expected: FrameId| assert_eq!(peek_id(text), expected, "{text}");
        check(
            r#"{"type":"message","id":"m-1","content":"x"}"#,
            Some(Value::from("m-1")),
        );
        check(r#"{"id":42,"type":"ping"}"#, Some(Value::from(42)));
        check(r#"{"type":"ping"}"#, None);
        check(r#"{"id":{"nested":1}}"#, None);
        check("not json", None);
        check(&format!(r#"{{"id":"{}"}}"#, "x".repeat(200)), None);
    }

    #[test]
    fn decoded_frames_reencode() {
        for text in [
            r#"{"type":"ping"}"#,
            r#"{"type":"auth","token":"t"}"#,
            r#"{"type":"join","session_id":"s","since_seq":3}"#,
            r#"{"type":"join","session_id":"s"}"#,
            r#"{"type":"message","session_id":"s","content":"/x \"y\""}"#,
            r#"{"type":"typing","session_id":"s","state":false}"#,
        ] {
            let (_, frame) = decode(text).unwrap();
            let again = serde_json::to_string(&frame).unwrap();
            assert_eq!(decode(&again).unwrap().1, frame, "{again}");
        }
    }
}
