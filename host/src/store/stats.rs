//! Counts for the `stats` capability.

use sqlx::Row;

use super::Store;
use crate::time_fmt::now_ms;

#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub sessions_active: i64,
    pub sessions_total: i64,
    pub messages_total: i64,
    pub messages_last_24h: i64,
}

impl Store {
    pub async fn counts(&self) -> Result<Counts, sqlx::Error> {
        let day_ago = now_ms() - 24 * 3600 * 1000;
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM sessions WHERE status = 'active') AS active, \
               (SELECT COUNT(*) FROM sessions) AS total, \
               (SELECT COUNT(*) FROM messages) AS messages, \
               (SELECT COUNT(*) FROM messages WHERE created_at >= $1) AS recent",
        )
        .bind(day_ago)
        .fetch_one(self.pool())
        .await?;
        Ok(Counts {
            sessions_active: row.try_get("active")?,
            sessions_total: row.try_get("total")?,
            messages_total: row.try_get("messages")?,
            messages_last_24h: row.try_get("recent")?,
        })
    }

    pub async fn message_count(&self, session_id: &str) -> Result<i64, sqlx::Error> {
        sqlx::query("SELECT COUNT(*) AS n FROM messages WHERE session_id = $1")
            .bind(session_id)
            .fetch_one(self.pool())
            .await?
            .try_get("n")
    }
}
