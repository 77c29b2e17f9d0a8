//! The AsyncAPI 3 document of protocol v1, served at `GET /asyncapi.json`: made from the frame
//! types themselves ([`ClientFrame`] and [`ServerFrame`] derive their JSON schemas), so it
//! cannot drift from what the server decodes and sends. docs/protocol.md says what the frames
//! mean; this says exactly what they look like.
//!
//! Each frame `type` is one message of the one channel, `/ws`: client frames under the
//! operation the server *receives*, server frames under the one it *sends*.

use serde_json::{json, Map, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::frames::{frame_id, ClientFrame, ServerFrame};

/// Where a frame goes: from the client (`client.<type>`) or from the server (`server.<type>`).
#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

impl Side {
    fn prefix(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// The document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    let mut referenced = Vec::new();
    ClientFrame::schemas(&mut referenced);
    ServerFrame::schemas(&mut referenced);
    for (name, schema) in referenced {
        schemas.insert(name, to_value(&schema));
    }
    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let mut operations = Map::new();
    for (side, union, action, operation, summary) in [
        (
            Side::Client,
            ClientFrame::schema(),
            "receive",
            "receiveClientFrames",
            "Frames a client sends",
        ),
        (
            Side::Server,
            ServerFrame::schema(),
            "send",
            "sendServerFrames",
            "Frames the server sends",
        ),
    ] {
        let mut refs = Vec::new();
        let mut variants = Vec::new();
        for mut frame in variants_of(&to_value(&union)) {
            let Some(ty) = frame_type(&frame) else {
                continue;
            };
            shape_fields(side, &mut frame);
            let key = format!("{}.{ty}", side.prefix());
            let schema_name = format!(
                "{}.{ty}",
                match side {
                    Side::Client => "ClientFrame",
                    Side::Server => "ServerFrame",
                }
            );
            let description = frame.get("description").cloned();
            schemas.insert(schema_name.clone(), frame);
            variants.push(json!({ "$ref": format!("#/components/schemas/{schema_name}") }));
            let mut message = json!({
                "name": ty,
                "title": format!("{ty} ({})", side.prefix()),
                "contentType": "application/json",
                "payload": { "$ref": format!("#/components/schemas/{schema_name}") },
            });
            if let Some(description) = description {
                message["summary"] = description;
            }
            messages.insert(key.clone(), message);
            channel_messages.insert(
                key.clone(),
                json!({ "$ref": format!("#/components/messages/{key}") }),
            );
            refs.push(json!({ "$ref": format!("#/channels/ws/messages/{key}") }));
        }
        // The union of one side, to validate a frame without knowing its type first.
        schemas.insert(
            match side {
                Side::Client => "ClientFrame".into(),
                Side::Server => "ServerFrame".into(),
            },
            json!({ "oneOf": variants }),
        );
        operations.insert(
            operation.into(),
            json!({
                "action": action,
                "summary": summary,
                "channel": { "$ref": "#/channels/ws" },
                "messages": refs,
            }),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "slashd WebSocket protocol",
            "version": "1",
            "description": "Protocol v1 of slashd's live chat: one JSON object per text frame, \
                            with a string `type`. What each frame means, the order of answers, \
                            close codes, limits and recovery are in docs/protocol.md in the \
                            repository. Any client frame may carry an `id` (a number, or a \
                            string of at most 128 characters), echoed on its direct answer.",
        },
        "defaultContentType": "application/json",
        "channels": {
            "ws": {
                "address": "/ws",
                "title": "The WebSocket",
                "description": "`GET /ws`, upgraded. Authenticate with `Authorization: Bearer \
                                <JWT>` on the upgrade, or with an `auth` frame first.",
                "messages": channel_messages,
            }
        },
        "operations": operations,
        "components": { "schemas": schemas, "messages": messages },
    })
}

fn to_value(schema: &RefOr<Schema>) -> Value {
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// The variants of an internally tagged enum's schema (`oneOf`, each an object).
fn variants_of(union: &Value) -> Vec<Value> {
    union
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The one value a variant's `type` property allows.
fn frame_type(variant: &Value) -> Option<String> {
    let ty = variant.pointer("/properties/type")?;
    ty.get("const")
        .or_else(|| ty.pointer("/enum/0"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `id`: any client frame may carry one (it is taken off before the frame is decoded, so
/// the type does not have it); a server frame carries it, optional, only on direct answers.
/// And no other field: the server refuses unknown fields, and sends none.
fn shape_fields(side: Side, frame: &mut Value) {
    let Some(object) = frame.as_object_mut() else {
        return;
    };
    object.insert("additionalProperties".into(), Value::Bool(false));
    if let Some(required) = object.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|r| r != "id");
    }
    if let (Side::Client, Some(properties)) = (
        side,
        object.get_mut("properties").and_then(Value::as_object_mut),
    ) {
        let mut id = to_value(&frame_id());
        // `null` is the same as no id.
        if let Some(one_of) = id.get_mut("oneOf").and_then(Value::as_array_mut) {
            one_of.push(json!({ "type": "null" }));
        }
        properties.insert("id".into(), id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &[&str] = &[
        "auth", "join", "leave", "message", "typing", "ping", "cancel", "complete", "confirm",
        "action",
    ];
    const SERVER: &[&str] = &[
        "ready",
        "joined",
        "left",
        "ack",
        "pong",
        "message",
        "typing",
        "presence",
        "session_ended",
        "message_delta",
        "error",
        "completions",
        "confirm_required",
        "cancelled",
        "command_progress",
    ];

    /// Every frame type of docs/protocol.md is a message, under the right operation, and
    /// every `$ref` in the document points at something in it.
    #[test]
    fn every_frame_is_a_message_and_every_ref_resolves() {
        let doc = document();
        assert_eq!(doc["asyncapi"], "3.0.0");
        for (side, types, operation) in [
            ("client", CLIENT, "receiveClientFrames"),
            ("server", SERVER, "sendServerFrames"),
        ] {
            let listed: Vec<String> = doc["operations"][operation]["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .map(|m| m["$ref"].as_str().unwrap_or_default().to_owned())
                .collect();
            let expected: Vec<String> = types
                .iter()
                .map(|t| format!("#/channels/ws/messages/{side}.{t}"))
                .collect();
            assert_eq!(listed, expected, "{operation}");
        }
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(refs.len() > 40, "{refs:?}");
        for r in refs {
            let pointer = r.strip_prefix('#').expect("a local ref");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn client_frames_may_carry_an_id_and_server_frames_never_need_one() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let join = &schemas["ClientFrame.join"];
        assert!(join["properties"]["id"].is_object(), "{join}");
        let ack = &schemas["ServerFrame.ack"];
        assert!(ack["properties"]["id"].is_object(), "{ack}");
        assert!(
            !ack["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == "id")),
            "{ack}"
        );
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => collect_refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
