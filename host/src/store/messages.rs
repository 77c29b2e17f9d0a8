//! Messages: the stored row and reading it back. Storing goes through the writer of
//! `group_commit.rs`: `seq` comes from the session row's `last_seq`, bumped in the
//! transaction that stores the message (the row locked first on PostgreSQL; SQLite's write
//! lock taken by that first write), so concurrent posters, on one node or many, get
//! gap-free, unique seqs.

use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::parse_metadata;
use super::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    User,
    Assistant,
    Command,
    System,
}

impl MessageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::Command => "command",
            MessageRole::System => "system",
        }
    }

    pub(super) fn parse(text: &str) -> MessageRole {
        match text {
            "assistant" => MessageRole::Assistant,
            "command" => MessageRole::Command,
            "system" => MessageRole::System,
            _ => MessageRole::User,
        }
    }
}

/// A stored message row. Clients see it as `protocol::WireMessage`.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub session_id: String,
    pub seq: i64,
    pub role: MessageRole,
    pub user_id: Option<String>,
    pub content: String,
    pub metadata: Value,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl Message {
    /// About how many bytes this message takes as JSON: its content and metadata plus the
    /// fixed fields. What page and recovery budgets count.
    pub fn json_size(&self) -> usize {
        const FIXED: usize = 200;
        self.content.len() + metadata_size(&self.metadata) + FIXED
    }
}

/// The serialized size of a metadata object, without serializing it.
pub(super) fn metadata_size(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(_) => 24,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|v| metadata_size(v) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + metadata_size(v))
                .sum::<usize>()
        }
    }
}

pub struct NewMessage<'a> {
    /// The id to store it under; `None` generates one. (The assistant picks its reply's id
    /// before streaming, so the deltas and the stored message share it.)
    pub id: Option<&'a str>,
    pub session_id: &'a str,
    pub role: MessageRole,
    pub user_id: Option<&'a str>,
    pub content: &'a str,
    pub metadata: Value,
}

pub(super) const COLUMNS: &str =
    "id, session_id, seq, role, user_id, content, metadata, created_at";

pub(super) fn from_row(row: &AnyRow) -> Result<Message, sqlx::Error> {
    let role: String = row.try_get("role")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(Message {
        id: row.try_get("id")?,
        session_id: row.try_get("session_id")?,
        seq: row.try_get("seq")?,
        role: MessageRole::parse(&role),
        user_id: row.try_get("user_id")?,
        content: row.try_get("content")?,
        metadata: parse_metadata(&metadata),
        created_at: row.try_get("created_at")?,
    })
}

/// Why a message could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the session does not exist")]
    NoSession,
    #[error("the session has ended")]
    Ended,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl Store {
    /// Store a message with the session's next seq. Fails if the session is not active.
    /// Posts that arrive together are committed together (`group_commit.rs`); this returns
    /// once the message's batch has committed.
    pub async fn append_message(&self, new: NewMessage<'_>) -> Result<Message, AppendError> {
        self.writer.append(new).await
    }

    /// Store messages of one session together: one transaction, consecutive seqs in the
    /// order given, all or none (a side-effect-free command's invocation and its reply).
    pub async fn append_messages(
        &self,
        news: Vec<NewMessage<'_>>,
    ) -> Result<Vec<Message>, AppendError> {
        self.writer.append_all(news).await
    }

    /// Messages with `seq > after_seq`, oldest first, at most `limit` of them and about
    /// `max_bytes` of content and metadata (but always one, so paging moves on); fetches
    /// `limit + 1` to tell whether more follow.
    pub async fn messages_page(
        &self,
        session_id: &str,
        after_seq: i64,
        limit: i64,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(Vec<Message>, bool), sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE session_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3 OFFSET $4"
        );
        // Streamed and stopped early: a page of large messages is never all in memory.
        let mut rows = sqlx::query(&sql)
            .bind(session_id)
            .bind(after_seq)
            .bind(limit.saturating_add(1))
            .bind(offset)
            .fetch(self.pool());
        let mut messages = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.try_next().await? {
            let message = from_row(&row)?;
            bytes = bytes.saturating_add(message.json_size());
            if messages.len() as i64 >= limit || (bytes > max_bytes && !messages.is_empty()) {
                return Ok((messages, true));
            }
            messages.push(message);
        }
        Ok((messages, false))
    }

    /// The last `max` messages that make up the assistant's context, oldest first:
    /// user, assistant and system messages; command invocations and replies are left out.
    pub async fn context_messages(
        &self,
        session_id: &str,
        max: i64,
    ) -> Result<Vec<Message>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE session_id = $1 \
             AND role IN ('user', 'assistant', 'system') \
             AND NOT (role = 'user' AND content LIKE '/%') \
             ORDER BY seq DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(session_id)
            .bind(max)
            .fetch_all(self.pool())
            .await?;
        let mut messages: Vec<Message> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
        messages.reverse();
        Ok(messages)
    }
}
