//! One call's input and outcome, as the engine, the API versions (`wit/`) and native
//! plugins all speak them: plain types, no wasm.

use std::time::Duration;

use super::secrets::Secrets;

/// The arguments of one call.
pub struct CallInput {
    pub command: String,
    pub args: Vec<String>,
    pub raw_args: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyFormat {
    Plain,
    Markdown,
    Json,
}

impl ReplyFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyFormat::Plain => "plain",
            ReplyFormat::Markdown => "markdown",
            ReplyFormat::Json => "json",
        }
    }
}

/// A reply as a plugin returned it, before the host's checks ([`RawReply::check`]).
pub struct RawReply {
    pub body: String,
    pub format: ReplyFormat,
    /// JSON text.
    pub data: Option<String>,
    pub ephemeral: bool,
}

impl RawReply {
    /// The size limit, `data` as JSON, and every secret of the plugin hidden.
    pub(super) fn check(
        self,
        secrets: &Secrets,
        max_bytes: usize,
    ) -> Result<PluginReply, CallError> {
        check_reply_size(
            self.body.len() + self.data.as_ref().map_or(0, String::len),
            max_bytes,
        )?;
        let data = match self.data {
            None => None,
            Some(text) => {
                let mut value: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| CallError::Failed(format!("the reply's data is not JSON: {e}")))?;
                secrets.redact_json(&mut value);
                Some(value)
            }
        };
        Ok(PluginReply {
            body: secrets.redact_owned(self.body),
            format: self.format,
            data,
            ephemeral: self.ephemeral,
        })
    }
}

#[derive(Debug, Clone)]
pub struct PluginReply {
    pub body: String,
    pub format: ReplyFormat,
    pub data: Option<serde_json::Value>,
    pub ephemeral: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    #[error("the plugin did not answer within {0:?}")]
    Timeout(Duration),
    /// Cancelled by a user or a shutdown; the text says by whom.
    #[error("{0}")]
    Cancelled(String),
}

impl CallError {
    /// The same error with the plugin's secrets hidden in its text.
    pub(super) fn redacted(self, secrets: &Secrets) -> CallError {
        match self {
            CallError::Usage(t) => CallError::Usage(secrets.redact_owned(t)),
            CallError::Failed(t) => CallError::Failed(secrets.redact_owned(t)),
            other => other,
        }
    }
}

/// The reply size limit, the same for wasm and native plugins.
pub fn check_reply_size(size: usize, max_bytes: usize) -> Result<(), CallError> {
    if size > max_bytes {
        return Err(CallError::Failed(format!(
            "the reply is {size} bytes; the limit is {max_bytes}"
        )));
    }
    Ok(())
}
