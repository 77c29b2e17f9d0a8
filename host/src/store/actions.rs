//! Reply buttons (actions) in the database: the message that carries them, and the claim
//! that makes a `once` button run at most once across every node.

use serde_json::Value;
use sqlx::Row;

use super::messages::{from_row, COLUMNS};
use super::{Message, Store};
use crate::time_fmt::now_ms;

impl Store {
    /// One message of a session, by id.
    pub async fn message_in(
        &self,
        session_id: &str,
        id: &str,
    ) -> Result<Option<Message>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE id = $1 AND session_id = $2");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(session_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Claim `once` button `action_id` of message `message_id` for `user_id`: true for the
    /// one press that wins, false for every other, whichever node it reaches. The winner
    /// also marks the action `used` in the message's stored metadata, so history reads it.
    pub async fn claim_action(
        &self,
        message_id: &str,
        action_id: &str,
        user_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        // Lock the message row first (PostgreSQL's row lock, SQLite's write lock), so two
        // claims of different buttons on one message cannot lose each other's `used`.
        sqlx::query("UPDATE messages SET metadata = metadata WHERE id = $1")
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        let claimed = sqlx::query(
            "INSERT INTO action_uses (message_id, action_id, user_id, used_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (message_id, action_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(action_id)
        .bind(user_id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            return Ok(false);
        }
        let row = sqlx::query("SELECT metadata FROM messages WHERE id = $1")
            .bind(message_id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            let text: String = row.try_get("metadata")?;
            let mut metadata = super::parse_metadata(&text);
            mark_used(&mut metadata, action_id);
            sqlx::query("UPDATE messages SET metadata = $1 WHERE id = $2")
                .bind(metadata.to_string())
                .bind(message_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// Set `used: true` on action `action_id` in a reply's metadata.
pub fn mark_used(metadata: &mut Value, action_id: &str) {
    let Some(actions) = metadata.get_mut("actions").and_then(Value::as_array_mut) else {
        return;
    };
    for action in actions {
        if action.get("id").and_then(Value::as_str) == Some(action_id) {
            action["used"] = Value::Bool(true);
        }
    }
}
