//! One call's input and outcome, as the engine, the API versions (`wit/`) and native
//! plugins all speak them: plain types, no wasm.

use std::time::Duration;

use slashd_plugin_api::{Action, Completion, NamedValue};

use super::manifest::valid_command_name;
use super::secrets::Secrets;

/// The arguments of one call.
pub struct CallInput {
    pub command: String,
    pub args: Vec<String>,
    pub raw_args: String,
    /// Typed values, when the command declares `args`.
    pub values: Vec<NamedValue>,
}

/// What a `complete` call asks: suggestions for argument `arg` of `command`.
pub struct CompleteInput {
    pub command: String,
    pub arg: String,
    pub partial: String,
    pub values: Vec<NamedValue>,
}

/// A button press, for `on-action`.
pub struct ActionInput {
    pub command: String,
    pub action: String,
    pub message_id: String,
    /// The reply's `data`, as JSON text.
    pub data: Option<String>,
}

/// Most buttons under one reply.
pub const MAX_ACTIONS: usize = 8;
/// Longest button label, in characters.
pub const MAX_LABEL_CHARS: usize = 80;
/// Longest confirm prompt, in characters.
pub const MAX_PROMPT_CHARS: usize = 200;
/// Most completions one call returns (more are cut).
pub const MAX_COMPLETIONS: usize = 25;
/// Longest completion value or label, in characters (longer ones are dropped).
const MAX_COMPLETION_CHARS: usize = 200;

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
    pub actions: Vec<Action>,
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
        let actions = check_actions(self.actions, secrets)?;
        Ok(PluginReply {
            body: secrets.redact_owned(self.body),
            format: self.format,
            data,
            ephemeral: self.ephemeral,
            actions,
        })
    }
}

/// Buttons a reply may carry: a few, with ids that are names and short labels and prompts
/// (secrets hidden). A bad one fails the reply: the plugin's author should hear of it.
fn check_actions(actions: Vec<Action>, secrets: &Secrets) -> Result<Vec<Action>, CallError> {
    let bad = |why: String| Err(CallError::Failed(format!("the reply's actions: {why}")));
    if actions.len() > MAX_ACTIONS {
        return bad(format!("more than {MAX_ACTIONS} buttons"));
    }
    let mut checked: Vec<Action> = Vec::with_capacity(actions.len());
    for mut action in actions {
        if !valid_command_name(&action.id) {
            return bad(format!(
                "button id {:?} is not a name (a-z, 0-9, - and _, at most 32)",
                action.id.chars().take(40).collect::<String>()
            ));
        }
        if checked.iter().any(|a| a.id == action.id) {
            return bad(format!("button id {:?} is used twice", action.id));
        }
        let label_chars = action.label.chars().count();
        if action.label.trim().is_empty() || label_chars > MAX_LABEL_CHARS {
            return bad(format!(
                "the label of button {:?} is empty or longer than {MAX_LABEL_CHARS} characters",
                action.id
            ));
        }
        if let Some(prompt) = &action.confirm {
            if prompt.trim().is_empty() || prompt.chars().count() > MAX_PROMPT_CHARS {
                return bad(format!(
                    "the confirm prompt of button {:?} is empty or longer than \
                     {MAX_PROMPT_CHARS} characters",
                    action.id
                ));
            }
        }
        if action.label.contains('\0') || action.confirm.as_ref().is_some_and(|p| p.contains('\0'))
        {
            return bad(format!("button {:?} contains U+0000 (NUL)", action.id));
        }
        action.label = secrets.redact_owned(action.label);
        action.confirm = action.confirm.map(|p| secrets.redact_owned(p));
        checked.push(action);
    }
    Ok(checked)
}

/// What a plugin's `complete` returned, made safe to send: at most [`MAX_COMPLETIONS`],
/// none empty, over-long or with a NUL, secrets hidden.
pub fn check_completions(items: Vec<Completion>, secrets: &Secrets) -> Vec<Completion> {
    let fits = |text: &str| text.chars().count() <= MAX_COMPLETION_CHARS && !text.contains('\0');
    items
        .into_iter()
        .filter(|c| !c.value.is_empty() && fits(&c.value))
        .filter(|c| c.label.as_deref().is_none_or(fits))
        .take(MAX_COMPLETIONS)
        .map(|c| Completion {
            value: secrets.redact_owned(c.value),
            label: c.label.map(|l| secrets.redact_owned(l)),
        })
        .collect()
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginReply {
    pub body: String,
    pub format: ReplyFormat,
    pub data: Option<serde_json::Value>,
    pub ephemeral: bool,
    /// Buttons (checked); stored with the reply.
    pub actions: Vec<Action>,
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
