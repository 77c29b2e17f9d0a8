//! Plugin API 0.2.0, part 2, across the wire: typed arguments, completion, buttons and
//! confirmation, against the `probe` test plugin (`plugins/testing/probe`) and the
//! built-ins that use them.

mod buttons;
mod complete;
mod confirm;
mod typed;

use serde_json::{json, Value};

use crate::harness::{Backend, Server, Setup, User, Ws};

/// A server with `probe` enabled and the command rate lifted (these tests run many).
pub async fn probe_server(backend: Backend, edit: impl FnOnce(Setup) -> Setup) -> Server {
    let setup = Setup::new(backend)
        .set("commands", "rate_per_sec", "1000.0")
        .set("commands", "rate_burst", "1000.0")
        .plugin("probe", &[("grants", r#"["kv", "config"]"#)]);
    edit(setup).start().await
}

/// Send `frame` with id `id` and return the first frame that echoes that id.
pub async fn answer(ws: &mut Ws, mut frame: Value, id: &str) -> Value {
    frame["id"] = json!(id);
    ws.send(frame).await;
    reply_to(ws, id).await
}

/// The first frame that echoes `id`.
pub async fn reply_to(ws: &mut Ws, id: &str) -> Value {
    loop {
        let got = ws.recv().await;
        if got["id"] == id {
            return got;
        }
    }
}

/// Send a `complete` for `line` and return the `completions` (or `error`).
pub async fn complete(ws: &mut Ws, session: &str, line: &str) -> Value {
    let frame = json!({"type": "complete", "session_id": session, "line": line});
    answer(ws, frame, &format!("complete {line}")).await
}

/// The values of a `completions` frame.
pub fn values(completions: &Value) -> Vec<&str> {
    assert_eq!(completions["type"], "completions", "{completions}");
    completions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect()
}

/// Press button `action` of message `message` as `user` and return the first direct
/// answer (`error` or `confirm_required`), or the broadcast result of this user's press.
pub async fn press(ws: &mut Ws, user: &User, session: &str, message: &str, action: &str) -> Value {
    let id = format!("press {message} {action}");
    ws.send(
        json!({"type": "action", "session_id": session, "message_id": message,
                   "action_id": action, "id": id}),
    )
    .await;
    loop {
        let frame = ws.recv().await;
        let direct = frame["id"] == id.as_str();
        let result = frame["type"] == "message"
            && frame["message"]["metadata"]["reply_to"] == message
            && frame["message"]["metadata"]["action"] == action
            && frame["message"]["metadata"]["pressed_by"] == user.id.as_str();
        if direct || result {
            return frame;
        }
    }
}
