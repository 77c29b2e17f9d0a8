//! The wire: what crosses between a client and the server, free of how it travels.
//! `frames` is protocol v1 (docs/protocol.md), `message` the one shape of a chat message on the
//! wire (in frames and REST bodies alike), `command_line` how a `/command` line splits, and
//! [`ErrorCode`] the codes every refusal carries; `asyncapi` describes the frames as an
//! AsyncAPI 3 document.

pub mod args;
pub mod asyncapi;
pub mod command_line;
pub mod frames;
pub mod message;

use serde::Serialize;

pub use message::WireMessage;

/// Protocol error codes (docs/protocol.md). Shared by REST bodies and WebSocket `error` frames;
/// `error.rs` decides which one each failure gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    BadRequest,
    TooLarge,
    RateLimited,
    UnknownCommand,
    Usage,
    PluginFailed,
    PluginTimeout,
    AssistantFailed,
    /// A running command was cancelled (to its invoker).
    Cancelled,
    Internal,
}

/// A serialized frame, shared by every queue it is pushed onto (axum's UTF-8 bytes, so the
/// socket writer sends it without a copy).
pub type Text = axum::extract::ws::Utf8Bytes;

#[cfg(test)]
mod tests {
    use super::ErrorCode::*;

    const REFERENCE: &str = include_str!("../../../docs/protocol.md");

    /// docs/protocol.md has a row for every error code a client can be sent.
    #[test]
    fn every_error_code_is_in_the_reference() {
        let all = [
            Unauthorized,
            Forbidden,
            NotFound,
            BadRequest,
            TooLarge,
            RateLimited,
            UnknownCommand,
            Usage,
            PluginFailed,
            PluginTimeout,
            AssistantFailed,
            Cancelled,
            Internal,
        ];
        for code in all {
            // A new code fails to compile here: add it to the list and to the reference.
            match code {
                Unauthorized | Forbidden | NotFound | BadRequest | TooLarge | RateLimited
                | UnknownCommand | Usage | PluginFailed | PluginTimeout | AssistantFailed
                | Cancelled | Internal => {}
            }
            let name = serde_json::to_value(code).expect("a code serializes");
            let row = format!("| `{}` |", name.as_str().unwrap_or_default());
            assert!(
                REFERENCE.contains(&row),
                "docs/protocol.md, Error codes: no row {row}"
            );
        }
    }
}
