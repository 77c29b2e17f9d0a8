//! The wire: what crosses between a client and the server, free of how it travels.
//! `frames` is protocol v1 (DESIGN §3), `message` the one shape of a chat message on the
//! wire (in frames and REST bodies alike), `command_line` how a `/command` line splits, and
//! [`ErrorCode`] the codes every refusal carries.

pub mod args;
pub mod command_line;
pub mod frames;
pub mod message;

use serde::Serialize;

pub use message::WireMessage;

/// Protocol error codes (DESIGN §3). Shared by REST bodies and WebSocket `error` frames;
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
