//! Host calls through the host's callback table (native plugins). Each call sends one JSON
//! request and gets one JSON answer: `{"ok": value}` or `{"err": "why"}`.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::host::{CommandInfo, ConnectionInfo, ServerStats, SessionDetail, SessionSummary};
use crate::native::current_host;

fn call<T: DeserializeOwned>(request: Value) -> Result<T, String> {
    let host = current_host().ok_or("host capabilities are only available during invoke")?;
    let text = request.to_string();
    // Safety: the host table is valid for the duration of `invoke`, on this thread; the
    // answer is a buffer the host allocated, handed back to the host's `free`.
    let answer = unsafe {
        let buffer = (host.call)(host.ctx, text.as_ptr(), text.len());
        let parsed: Result<Value, _> = serde_json::from_slice(buffer.as_slice());
        (host.free)(buffer);
        parsed
    }
    .map_err(|e| format!("malformed answer from the host: {e}"))?;
    match answer {
        Value::Object(mut map) => {
            if let Some(err) = map.remove("err") {
                return Err(err.as_str().unwrap_or("host error").to_string());
            }
            serde_json::from_value(map.remove("ok").unwrap_or(Value::Null))
                .map_err(|e| e.to_string())
        }
        _ => Err("malformed answer from the host".into()),
    }
}

pub fn log(level: &str, message: &str) {
    let _ = call::<Value>(json!({"op": "log", "level": level, "message": message}));
}

pub fn kv_get(key: &str) -> Result<Option<Vec<u8>>, String> {
    call(json!({"op": "kv.get", "key": key}))
}

pub fn kv_set(key: &str, value: &[u8]) -> Result<(), String> {
    call::<Value>(json!({"op": "kv.set", "key": key, "value": value})).map(drop)
}

pub fn kv_delete(key: &str) -> Result<(), String> {
    call::<Value>(json!({"op": "kv.delete", "key": key})).map(drop)
}

pub fn kv_list_keys(prefix: &str) -> Result<Vec<String>, String> {
    call(json!({"op": "kv.list_keys", "prefix": prefix}))
}

pub fn config_get(key: &str) -> Result<Option<String>, String> {
    call::<Option<String>>(json!({"op": "config.get", "key": key}))
}

pub fn config_all() -> Result<String, String> {
    call(json!({"op": "config.all"}))
}

pub fn commands_visible() -> Result<Vec<CommandInfo>, String> {
    call(json!({"op": "commands.visible"}))
}

pub fn stats_get() -> Result<ServerStats, String> {
    call(json!({"op": "stats.get"}))
}

pub fn sessions_current() -> Result<SessionDetail, String> {
    call(json!({"op": "sessions.current"}))
}

pub fn sessions_list_mine(limit: u32) -> Result<Vec<SessionSummary>, String> {
    call(json!({"op": "sessions.list_mine", "limit": limit}))
}

pub fn sessions_end_current() -> Result<(), String> {
    call::<Value>(json!({"op": "sessions.end_current"})).map(drop)
}

pub fn sessions_connection() -> Result<ConnectionInfo, String> {
    call(json!({"op": "sessions.connection"}))
}

const NOT_NATIVE: &str =
    "not available to native plugins (they are trusted code: use your own means)";

pub fn secrets_get(_name: &str) -> Result<Option<String>, String> {
    Err(NOT_NATIVE.into())
}

pub fn progress_report(_text: &str, _fraction: Option<f32>) -> Result<(), String> {
    Err(NOT_NATIVE.into())
}

pub fn progress_cancelled() -> Result<bool, String> {
    Err(NOT_NATIVE.into())
}

pub fn jobs_list_mine() -> Result<Vec<crate::host::Job>, String> {
    Err(NOT_NATIVE.into())
}

pub fn jobs_cancel(_id: &str) -> Result<(), String> {
    Err(NOT_NATIVE.into())
}

pub fn http_send(
    _request: crate::host::http::Request,
) -> Result<crate::host::http::Response, String> {
    Err(NOT_NATIVE.into())
}
