//! Protocol v1 frames (docs/protocol.md). Decoding is strict — unknown types and unknown fields
//! are refused with a message that says what was wrong — and never panics.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{message, ErrorCode, Text, WireMessage};
use crate::auth::Principal;
use crate::store::{nul, Message};

/// Longest accepted client frame `id` when it is a string.
pub const MAX_ID_CHARS: usize = 128;

/// A client frame's `id`, echoed on every direct answer.
pub type FrameId = Option<Value>;

/// A client → server frame. `Serialize` writes it back as a client would send it (the fuzz
/// target checks that a decoded frame re-encodes to the same frame).
///
/// Its schema (`ToSchema`) is what `/asyncapi.json` states for each client frame; the
/// optional `id` every frame may carry is added there (it is taken off before decoding).
#[derive(Debug, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
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
    /// Cancel a running command (its invoker, or an admin).
    Cancel {
        invocation_id: String,
    },
    /// Suggest how to go on with a half-typed line.
    Complete {
        session_id: String,
        line: String,
    },
    /// Answer a `confirm_required`.
    Confirm {
        confirmation_id: String,
        accept: bool,
    },
    /// Press a button (a reply action).
    Action {
        session_id: String,
        message_id: String,
        action_id: String,
    },
}

/// A frame that could not be decoded (a `bad_request`), with whatever `id` could be
/// recovered from it.
#[derive(Debug, PartialEq)]
pub struct BadFrame {
    pub id: FrameId,
    /// What was wrong, for the client.
    pub message: String,
}

/// Decode one text frame into its `id` and body.
pub fn decode(text: &str) -> Result<(FrameId, ClientFrame), BadFrame> {
    let bad = |id: FrameId, message: String| BadFrame { id, message };
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

/// A frame `id` as a schema: a number, or a string of at most [`MAX_ID_CHARS`] characters.
pub fn frame_id() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use utoipa::openapi::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_ID_CHARS)),
        )
        .description(Some(
            "The client's frame id, echoed on the frame's direct answer",
        ))
        .into()
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresenceState {
    Joined,
    Left,
}

/// A server → client frame. Its schema (`ToSchema`) is what `/asyncapi.json` states for
/// each server frame.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Ready {
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = frame_id)]
        id: &'a FrameId,
        connection_id: &'a str,
        user: UserInfo<'a>,
    },
    Joined {
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = frame_id)]
        id: &'a FrameId,
        session_id: &'a str,
        participants: Vec<String>,
        last_seq: i64,
        #[serde(serialize_with = "message::serialize_all")]
        #[schema(value_type = Vec<WireMessage>)]
        missed: &'a [Message],
        /// More were missed than `missed` holds: page `GET …/messages?after_seq=`.
        has_more: bool,
    },
    Left {
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = frame_id)]
        id: &'a FrameId,
        session_id: &'a str,
    },
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = frame_id)]
        id: &'a FrameId,
        message_id: &'a str,
        seq: i64,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = frame_id)]
        id: &'a FrameId,
    },
    Message {
        session_id: &'a str,
        message: WireMessage<'a>,
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
        #[schema(schema_with = frame_id)]
        id: &'a FrameId,
        code: ErrorCode,
        message: &'a str,
    },
    /// The answer to `complete`: the items replace the line from character `from` on.
    Completions {
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = frame_id)]
        id: &'a FrameId,
        #[schema(value_type = Vec<slashd_plugin_api::Completion>)]
        items: &'a [slashd_plugin_api::Completion],
        from: usize,
    },
    /// The invoker must confirm before anything is stored or run.
    ConfirmRequired {
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = frame_id)]
        id: &'a FrameId,
        confirmation_id: &'a str,
        prompt: &'a str,
        #[serde(serialize_with = "crate::time_fmt::serialize")]
        #[schema(value_type = String, format = DateTime)]
        expires_at: i64,
    },
    /// A confirmation was declined or expired: nothing happened.
    Cancelled {
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = frame_id)]
        id: &'a FrameId,
        confirmation_id: &'a str,
    },
    /// How a running command is going, to its session (not stored). `failed` carries no
    /// reason: that goes to the invoker alone, as `error`.
    CommandProgress {
        session_id: &'a str,
        invocation_id: &'a str,
        command: &'a str,
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        fraction: Option<f32>,
        state: ProgressState,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProgressState {
    Running,
    Done,
    Failed,
    Cancelled,
}

impl ServerFrame<'_> {
    /// Serialize once; the text is then shared by every recipient.
    pub fn to_text(&self) -> Text {
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"encoding"}"#.into())
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`decode`] should answer: `Ok((id, frame))` with the frame as `{:?}` prints it,
    /// or `Err((id, message))` with a part of the message (serde's are long).
    type Expected<'a> = Result<(FrameId, &'a str), (FrameId, &'a str)>;

    /// No `id`, or none that could be echoed.
    const NO_ID: FrameId = None;

    fn id(v: impl Into<Value>) -> FrameId {
        Some(v.into())
    }

    #[track_caller]
    fn check(input: &str, expected: Expected) {
        let shown: String = input.chars().take(80).collect();
        match (decode(input), expected) {
            (Ok((id, frame)), Ok((want_id, want_frame))) => {
                assert_eq!(id, want_id, "id of {shown}");
                assert_eq!(format!("{frame:?}"), want_frame, "frame of {shown}");
            }
            (Err(bad), Err((want_id, want_message))) => {
                assert_eq!(bad.id, want_id, "id echoed for {shown}");
                assert!(
                    bad.message.contains(want_message),
                    "{shown}: {:?} does not contain {want_message:?}",
                    bad.message
                );
            }
            (got, want) => panic!("{shown}: decoded to {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn decodes_valid_frames() {
        check(r#"{"type":"ping"}"#, Ok((NO_ID, "Ping")));
        check(r#"{"type":"ping","id":7}"#, Ok((id(7), "Ping")));
        check(r#"{"id":"p","type":"ping"}"#, Ok((id("p"), "Ping")));
        check(r#"{"type":"ping","id":null}"#, Ok((NO_ID, "Ping")));
        check(r#"{"type":"ping","id":-1.5}"#, Ok((id(-1.5), "Ping")));
        check(r#"{"type":"ping","id":0}"#, Ok((id(0), "Ping")));
        check(r#"{"type":"ping","id":""}"#, Ok((id(""), "Ping")));
        // 128 characters (256 bytes) is the longest string id.
        let e128 = "é".repeat(MAX_ID_CHARS);
        check(
            &format!(r#"{{"type":"ping","id":"{e128}"}}"#),
            Ok((id(e128.as_str()), "Ping")),
        );
        check(
            r#"{"type":"auth","token":"t","id":"a1"}"#,
            Ok((id("a1"), r#"Auth { token: "t" }"#)),
        );
        check(
            r#"{"type":"join","session_id":"s"}"#,
            Ok((NO_ID, r#"Join { session_id: "s", since_seq: None }"#)),
        );
        check(
            r#"{"type":"join","session_id":"s","since_seq":3,"id":1}"#,
            Ok((id(1), r#"Join { session_id: "s", since_seq: Some(3) }"#)),
        );
        check(
            r#"{"type":"join","session_id":"s","since_seq":null}"#,
            Ok((NO_ID, r#"Join { session_id: "s", since_seq: None }"#)),
        );
        check(
            r#"{"type":"leave","session_id":"s","id":"l"}"#,
            Ok((id("l"), r#"Leave { session_id: "s" }"#)),
        );
        check(
            r#"{"type":"message","session_id":"s","content":"/x \"y\"","id":"m"}"#,
            Ok((
                id("m"),
                r#"Message { session_id: "s", content: "/x \"y\"" }"#,
            )),
        );
        check(
            r#"{"type":"typing","session_id":"s","state":true}"#,
            Ok((NO_ID, r#"Typing { session_id: "s", state: true }"#)),
        );
        check(
            r#"{"type":"complete","session_id":"s","line":"/de","id":4}"#,
            Ok((id(4), r#"Complete { session_id: "s", line: "/de" }"#)),
        );
        check(
            r#"{"type":"confirm","confirmation_id":"c","accept":false}"#,
            Ok((NO_ID, r#"Confirm { confirmation_id: "c", accept: false }"#)),
        );
        check(
            r#"{"type":"action","session_id":"s","message_id":"m","action_id":"a"}"#,
            Ok((
                NO_ID,
                r#"Action { session_id: "s", message_id: "m", action_id: "a" }"#,
            )),
        );
        // Decoding only checks shapes: what a value means is the connection's to refuse
        // (a negative `since_seq`, a session id that is not a UUID, an empty content, a
        // second `auth`).
        check(
            r#"{"type":"join","session_id":"s","since_seq":-1,"id":"t7"}"#,
            Ok((id("t7"), r#"Join { session_id: "s", since_seq: Some(-1) }"#)),
        );
        check(
            r#"{"type":"join","session_id":"../../etc/passwd"}"#,
            Ok((
                NO_ID,
                r#"Join { session_id: "../../etc/passwd", since_seq: None }"#,
            )),
        );
        check(
            r#"{"type":"message","session_id":"s","content":""}"#,
            Ok((NO_ID, r#"Message { session_id: "s", content: "" }"#)),
        );
    }

    #[test]
    fn refuses_what_is_not_a_json_object_without_an_id() {
        let not_json = "frame is not valid JSON";
        let not_object = "frame must be a JSON object";
        check("not json", Err((NO_ID, not_json)));
        check("nope", Err((NO_ID, not_json)));
        check("", Err((NO_ID, "EOF while parsing a value")));
        check(
            r#"{"type":"ping""#,
            Err((NO_ID, "EOF while parsing an object")),
        );
        check(
            r#"{"type":"ping","id":1} x"#,
            Err((NO_ID, "trailing characters")),
        );
        check("[1]", Err((NO_ID, not_object)));
        check("[1,2,3]", Err((NO_ID, not_object)));
        check(r#"[{"type":"ping","id":1}]"#, Err((NO_ID, not_object)));
        check(r#""ping""#, Err((NO_ID, not_object)));
        check("42", Err((NO_ID, not_object)));
        check("null", Err((NO_ID, not_object)));
    }

    #[test]
    fn refuses_unknown_or_missing_types_echoing_the_id() {
        let variants = "expected one of `auth`, `join`, `leave`, `message`, `typing`, `ping`, \
                        `cancel`, `complete`, `confirm`, `action`";
        check(r#"{"type":"warp","id":"u1"}"#, Err((id("u1"), variants)));
        check(
            r#"{"type":"warp","id":"a"}"#,
            Err((id("a"), "unknown variant `warp`")),
        );
        check(
            r#"{"type":"PING","id":"u2"}"#,
            Err((id("u2"), "unknown variant `PING`")),
        );
        check(
            r#"{"type":"","id":"u3"}"#,
            Err((id("u3"), "unknown variant ``")),
        );
        let needs_type = "frame needs a string \"type\"";
        check(r#"{"id":2}"#, Err((id(2), needs_type)));
        check("{}", Err((NO_ID, needs_type)));
        check(r#"{"type":7,"id":3}"#, Err((id(3), needs_type)));
        check(r#"{"type":null,"id":4}"#, Err((id(4), needs_type)));
        check(r#"{"type":["ping"],"id":5}"#, Err((id(5), needs_type)));
    }

    #[test]
    fn refuses_missing_extra_and_mistyped_fields_echoing_the_id() {
        // Missing.
        check(
            r#"{"type":"join","id":"m1"}"#,
            Err((id("m1"), "missing field `session_id`")),
        );
        check(
            r#"{"type":"auth","id":"m2"}"#,
            Err((id("m2"), "missing field `token`")),
        );
        check(
            r#"{"type":"message","session_id":"s","id":"m3"}"#,
            Err((id("m3"), "missing field `content`")),
        );
        check(
            r#"{"type":"typing","session_id":"s","id":"m4"}"#,
            Err((id("m4"), "missing field `state`")),
        );
        check(
            r#"{"type":"leave","id":"m5"}"#,
            Err((id("m5"), "missing field `session_id`")),
        );
        check(
            r#"{"type":"confirm","confirmation_id":"c","id":"m6"}"#,
            Err((id("m6"), "missing field `accept`")),
        );
        check(
            r#"{"type":"action","session_id":"s","message_id":"m","id":"m7"}"#,
            Err((id("m7"), "missing field `action_id`")),
        );
        check(
            r#"{"type":"confirm","confirmation_id":"c","accept":"yes","id":"m8"}"#,
            Err((id("m8"), "invalid type: string \"yes\", expected a boolean")),
        );
        // Extra.
        check(
            r#"{"type":"ping","id":"e1","extra":true}"#,
            Err((id("e1"), "unknown field `extra`, there are no fields")),
        );
        check(
            r#"{"type":"join","session_id":"s","id":"e2","since":1}"#,
            Err((
                id("e2"),
                "unknown field `since`, expected `session_id` or `since_seq`",
            )),
        );
        check(
            r#"{"type":"join","session_id":"x","extra":1}"#,
            Err((NO_ID, "unknown field `extra`")),
        );
        // Mistyped.
        check(
            r#"{"type":"message","session_id":"s","content":5,"id":"t1"}"#,
            Err((id("t1"), "invalid type: integer `5`, expected a string")),
        );
        check(
            r#"{"type":"message","session_id":"s","content":5}"#,
            Err((NO_ID, "invalid type: integer `5`")),
        );
        check(
            r#"{"type":"typing","session_id":"s","state":"yes","id":"t2"}"#,
            Err((id("t2"), "invalid type: string \"yes\", expected a boolean")),
        );
        check(
            r#"{"type":"join","session_id":"s","since_seq":"1","id":"t3"}"#,
            Err((id("t3"), "invalid type: string \"1\", expected i64")),
        );
        check(
            r#"{"type":"join","session_id":"s","since_seq":1.5,"id":"t4"}"#,
            Err((id("t4"), "invalid type: floating point `1.5`, expected i64")),
        );
        check(
            r#"{"type":"join","session_id":42,"id":"t5"}"#,
            Err((id("t5"), "invalid type: integer `42`, expected a string")),
        );
        check(
            r#"{"type":"join","session_id":null,"id":"t6"}"#,
            Err((id("t6"), "invalid type: null, expected a string")),
        );
    }

    #[test]
    fn refuses_invalid_ids_without_echoing_them() {
        let bad_id = "\"id\" must be a number or a string of at most 128 characters";
        let x129 = "x".repeat(MAX_ID_CHARS + 1);
        check(
            &format!(r#"{{"type":"ping","id":"{x129}"}}"#),
            Err((NO_ID, bad_id)),
        );
        let x10k = "x".repeat(10_000);
        check(
            &format!(r#"{{"type":"ping","id":"{x10k}"}}"#),
            Err((NO_ID, bad_id)),
        );
        check(r#"{"type":"ping","id":{"a":1}}"#, Err((NO_ID, bad_id)));
        check(r#"{"type":"ping","id":[1]}"#, Err((NO_ID, bad_id)));
        check(r#"{"type":"ping","id":true}"#, Err((NO_ID, bad_id)));
        // The id is checked before the rest: a bad id in a bad frame is what is reported.
        check(r#"{"type":"warp","id":false}"#, Err((NO_ID, bad_id)));
    }

    #[test]
    fn refuses_nul_anywhere_echoing_the_id() {
        check(
            r#"{"type":"message","id":3,"session_id":"s","content":"a\u0000"}"#,
            Err((id(3), nul::REFUSED)),
        );
        check(
            r#"{"type":"join","id":"n","session_id":"s\u0000"}"#,
            Err((id("n"), nul::REFUSED)),
        );
        check(
            r#"{"type":"ping","id":"k","a\u0000":1}"#,
            Err((id("k"), nul::REFUSED)),
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
