//! The OpenAI-compatible chat-completions client: one `POST {base_url}/chat/completions`
//! with `stream: true`, read as server-sent events, under every limit the endpoint could
//! push against:
//!
//! - connect timeout; read timeout (the longest silence, before the response starts or
//!   between two chunks); total timeout for the whole reply;
//! - the reply's size (`max_reply_bytes`), and the bytes buffered for one event;
//! - a status other than 200, a stream that is not SSE or whose data is not a chunk, an
//!   error event, and a stream that ends before `[DONE]` (or a `finish_reason`) all fail.
//!
//! Failures are `AssistantError::Failed` with a message fit for chat participants; the
//! details go to the log. The API key is sent as a sensitive header and is never logged.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::StreamExt;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::timeout;

use super::AssistantError;
use crate::config::AssistantConfig;

/// One message of the prompt, as the endpoint takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: String,
}

/// Most of an error response's body that is logged.
const MAX_LOGGED_BODY: usize = 512;

pub struct ModelClient {
    http: reqwest::Client,
    url: String,
    model: String,
    /// `Bearer …`, marked sensitive so it is redacted from debug output.
    authorization: Option<HeaderValue>,
    connect_timeout: Duration,
    read_timeout: Duration,
    total_timeout: Duration,
    max_reply_bytes: usize,
    /// Bytes the SSE parser may hold for one event before it is judged endless.
    max_event_bytes: usize,
}

impl std::fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelClient")
            .field("url", &self.url)
            .field("model", &self.model)
            .field(
                "api_key",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl ModelClient {
    pub fn new(config: &AssistantConfig) -> anyhow::Result<ModelClient> {
        let authorization = match &config.api_key_env {
            Some(var) => match std::env::var(var) {
                Ok(key) if !key.trim().is_empty() => {
                    let mut value = HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                        .map_err(|_| {
                            anyhow::anyhow!("the API key in ${var} is not a valid header value")
                        })?;
                    value.set_sensitive(true);
                    Some(value)
                }
                _ => {
                    tracing::warn!(
                        var = var.as_str(),
                        "assistant.api_key_env names an unset variable; calling the model \
                         endpoint without an API key"
                    );
                    None
                }
            },
            None => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // A redirect would be answered with a status other than 200, and so fail: the
            // key is never sent anywhere but the configured endpoint.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("slashd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ModelClient {
            http,
            url: format!(
                "{}/chat/completions",
                config.base_url.trim().trim_end_matches('/')
            ),
            model: config.model.clone(),
            authorization,
            connect_timeout: config.connect_timeout,
            read_timeout: config.read_timeout,
            total_timeout: config.total_timeout,
            max_reply_bytes: config.max_reply_bytes,
            max_event_bytes: (config.max_reply_bytes.saturating_mul(8)).max(1024 * 1024),
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Ask for a reply to `messages`, calling `on_delta` with each piece of text as it
    /// arrives. Returns the whole reply (never empty), or fails without a partial one.
    pub async fn stream_reply(
        &self,
        messages: &[ChatMessage],
        mut on_delta: impl FnMut(&str),
    ) -> Result<String, AssistantError> {
        match timeout(self.total_timeout, self.stream(messages, &mut on_delta)).await {
            Ok(result) => result,
            Err(_) => Err(failed(format!(
                "the reply took longer than {}",
                humantime::format_duration(self.total_timeout)
            ))),
        }
    }

    async fn stream(
        &self,
        messages: &[ChatMessage],
        on_delta: &mut impl FnMut(&str),
    ) -> Result<String, AssistantError> {
        let body = serde_json::json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
        });
        let mut request = self
            .http
            .post(&self.url)
            .header(ACCEPT, "text/event-stream")
            .json(&body);
        if let Some(value) = &self.authorization {
            request = request.header(AUTHORIZATION, value.clone());
        }
        // Sending covers connecting, then waiting for the response to start.
        let wait = self.connect_timeout + self.read_timeout;
        let response = match timeout(wait, request.send()).await {
            Err(_) => return Err(self.stalled()),
            Ok(Err(err)) => {
                let err = err.without_url();
                tracing::warn!(error = %error_chain(&err), "cannot call the model endpoint");
                return Err(failed(if err.is_connect() {
                    "cannot reach the model endpoint"
                } else {
                    "the request to the model endpoint failed"
                }));
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status != StatusCode::OK {
            let detail = self.error_body(response).await;
            tracing::warn!(
                status = status.as_u16(),
                body = detail,
                "the model endpoint refused the request"
            );
            return Err(failed(format!(
                "the model endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        let content_type = response.headers().get(CONTENT_TYPE);
        if content_type.is_some_and(|v| v.as_bytes().starts_with(b"application/json")) {
            return Err(failed("the model endpoint answered without streaming"));
        }
        self.read_events(response, on_delta).await
    }

    async fn read_events(
        &self,
        response: reqwest::Response,
        on_delta: &mut impl FnMut(&str),
    ) -> Result<String, AssistantError> {
        // Bytes fed to the parser since the last event: bounds what it may buffer.
        let pending = Arc::new(AtomicUsize::new(0));
        let chunks = futures_util::stream::unfold(
            (response, pending.clone()),
            |(mut response, pending)| async move {
                let item = match timeout(self.read_timeout, response.chunk()).await {
                    Err(_) => Err(ReadError::Stalled),
                    Ok(Err(err)) => Err(ReadError::Transport(err.without_url())),
                    Ok(Ok(None)) => return None,
                    Ok(Ok(Some(bytes))) => {
                        let held = pending.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
                        if held > self.max_event_bytes {
                            Err(ReadError::Oversized)
                        } else {
                            Ok(bytes)
                        }
                    }
                };
                Some((item, (response, pending)))
            },
        );
        let mut events = std::pin::pin!(chunks.eventsource());
        let mut reply = String::new();
        let mut finished = false;
        loop {
            let event = match events.next().await {
                None if finished => break,
                None => return Err(failed("the stream ended before the reply was complete")),
                Some(Err(err)) => return Err(self.read_failure(err)),
                Some(Ok(event)) => event,
            };
            pending.store(0, Ordering::Relaxed);
            match event.event.as_str() {
                "message" => {}
                "error" => {
                    tracing::warn!(
                        data = truncate(&event.data),
                        "the model endpoint sent an error event"
                    );
                    return Err(failed("the model endpoint reported an error"));
                }
                _ => continue,
            }
            match parse_data(&event.data)? {
                Data::Done => break,
                Data::Chunk { content, finish } => {
                    finished |= finish;
                    let Some(content) = content.filter(|c| !c.is_empty()) else {
                        continue;
                    };
                    if reply.len() + content.len() > self.max_reply_bytes {
                        return Err(failed(format!(
                            "the reply is longer than {} bytes",
                            self.max_reply_bytes
                        )));
                    }
                    reply.push_str(&content);
                    on_delta(&content);
                }
            }
        }
        if reply.trim().is_empty() {
            return Err(failed("the model sent an empty reply"));
        }
        Ok(reply)
    }

    fn stalled(&self) -> AssistantError {
        failed(format!(
            "the model endpoint sent nothing for {}",
            humantime::format_duration(self.read_timeout)
        ))
    }

    fn read_failure(&self, err: EventStreamError<ReadError>) -> AssistantError {
        match err {
            EventStreamError::Transport(ReadError::Stalled) => self.stalled(),
            EventStreamError::Transport(ReadError::Oversized) => failed(format!(
                "the model endpoint sent an event larger than {} bytes",
                self.max_event_bytes
            )),
            EventStreamError::Transport(ReadError::Transport(err)) => {
                tracing::warn!(error = %error_chain(&err), "the model stream broke off");
                failed("the stream from the model endpoint broke off")
            }
            EventStreamError::Utf8(_) | EventStreamError::Parser(_) => {
                failed("the model endpoint sent a malformed stream")
            }
        }
    }

    /// The start of an error response's body, for the log (never waiting long for it).
    async fn error_body(&self, mut response: reqwest::Response) -> String {
        let mut body = Vec::new();
        while body.len() < MAX_LOGGED_BODY {
            match timeout(self.read_timeout, response.chunk()).await {
                Ok(Ok(Some(bytes))) => body.extend_from_slice(&bytes),
                _ => break,
            }
        }
        truncate(&String::from_utf8_lossy(&body)).to_string()
    }
}

/// Why reading the byte stream stopped.
#[derive(Debug)]
enum ReadError {
    Stalled,
    Oversized,
    Transport(reqwest::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Stalled => f.write_str("stalled"),
            ReadError::Oversized => f.write_str("event too large"),
            ReadError::Transport(err) => write!(f, "{err}"),
        }
    }
}

/// What one SSE `data` field holds.
#[derive(Debug, PartialEq, Eq)]
enum Data {
    Done,
    Chunk {
        content: Option<String>,
        /// The choice carried a `finish_reason`: the reply is complete.
        finish: bool,
    },
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

/// Parse one event's data: `[DONE]`, or a `chat.completion.chunk` (only the first choice is
/// used; slashd asks for one).
fn parse_data(data: &str) -> Result<Data, AssistantError> {
    if data.trim() == "[DONE]" {
        return Ok(Data::Done);
    }
    let chunk: Chunk = serde_json::from_str(data).map_err(|_| {
        tracing::warn!(
            data = truncate(data),
            "the model endpoint sent a malformed chunk"
        );
        failed("the model endpoint sent a malformed stream")
    })?;
    if let Some(error) = chunk.error {
        tracing::warn!(
            error = truncate(&error.to_string()),
            "the model endpoint reported an error"
        );
        return Err(failed("the model endpoint reported an error"));
    }
    let Some(choice) = chunk.choices.into_iter().next() else {
        return Ok(Data::Chunk {
            content: None,
            finish: false,
        });
    };
    Ok(Data::Chunk {
        content: choice.delta.and_then(|d| d.content),
        finish: choice.finish_reason.is_some(),
    })
}

fn failed(message: impl std::fmt::Display) -> AssistantError {
    AssistantError::Failed(format!("the assistant could not answer: {message}"))
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(MAX_LOGGED_BODY) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// An error and its causes, on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunks_done_and_errors() {
        assert_eq!(parse_data("[DONE]").unwrap(), Data::Done);
        assert_eq!(
            parse_data(r#"{"choices":[{"delta":{"content":"hi"}}]}"#).unwrap(),
            Data::Chunk {
                content: Some("hi".into()),
                finish: false
            }
        );
        assert_eq!(
            parse_data(r#"{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#)
                .unwrap(),
            Data::Chunk {
                content: None,
                finish: true
            }
        );
        assert_eq!(
            parse_data(r#"{"choices":[],"usage":{"total_tokens":3}}"#).unwrap(),
            Data::Chunk {
                content: None,
                finish: false
            }
        );
        assert!(parse_data("{not json").is_err());
        assert!(parse_data("5").is_err());
        assert!(parse_data(r#"{"error":{"message":"overloaded"}}"#).is_err());
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        // Not under the SLASHD_ prefix: config tests read that part of the environment.
        let var = "TEST_ASSISTANT_API_KEY_DEBUG";
        std::env::set_var(var, "sk-very-secret");
        let config = AssistantConfig {
            base_url: "http://127.0.0.1:1/v1/".into(),
            model: "m".into(),
            api_key_env: Some(var.into()),
            ..AssistantConfig::default()
        };
        let client = ModelClient::new(&config).unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains("sk-very-secret"), "{debug}");
        assert!(
            debug.contains("http://127.0.0.1:1/v1/chat/completions"),
            "{debug}"
        );
    }
}
