//! Messages. `seq` is assigned by the database in the transaction that stores the message:
//! the session row's `last_seq` is bumped first (which locks the row on PostgreSQL and takes
//! the write lock on SQLite), so concurrent posters — on one node or many — get gap-free,
//! unique seqs.

use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::sessions::parse_metadata;
use super::{new_id, Store};
use crate::time_fmt::now_ms;

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

    fn parse(text: &str) -> MessageRole {
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
fn metadata_size(value: &Value) -> usize {
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
    pub async fn append_message(&self, new: NewMessage<'_>) -> Result<Message, AppendError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        // The write comes first so SQLite takes its write lock at once (no deferred-lock
        // upgrade that could fail with SQLITE_BUSY) and PostgreSQL locks the session row.
        let bumped = sqlx::query(
            "UPDATE sessions SET last_seq = last_seq + 1, last_activity_at = $1 \
             WHERE id = $2 AND status = 'active' RETURNING last_seq",
        )
        .bind(now)
        .bind(new.session_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = bumped else {
            drop(tx);
            return Err(match self.session(new.session_id).await? {
                None => AppendError::NoSession,
                Some(_) => AppendError::Ended,
            });
        };
        let seq: i64 = row.try_get("last_seq")?;
        let id = new.id.map_or_else(new_id, str::to_string);
        sqlx::query(
            "INSERT INTO messages (id, session_id, seq, role, user_id, content, metadata, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(new.session_id)
        .bind(seq)
        .bind(new.role.as_str())
        .bind(new.user_id)
        .bind(new.content)
        .bind(new.metadata.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Message {
            id,
            session_id: new.session_id.to_string(),
            seq,
            role: new.role,
            user_id: new.user_id.map(str::to_string),
            content: new.content.to_string(),
            metadata: new.metadata,
            created_at: now,
        })
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
