//! The plugins' private key-value data. Every query is scoped by plugin name, which the
//! host supplies — a plugin cannot name another plugin's namespace.

use sqlx::Row;

use super::{Backend, Store};
use crate::time_fmt::now_ms;

/// Most keys `kv_keys` returns.
const MAX_LISTED: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("kv quota reached: a plugin may keep at most {0} keys")]
    Quota(i64),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl Store {
    pub async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        let row = sqlx::query("SELECT value FROM plugin_kv WHERE plugin = $1 AND key = $2")
            .bind(plugin)
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| r.try_get("value")).transpose()
    }

    /// Insert or replace; a new key is refused once the plugin has `max_keys`.
    ///
    /// The quota check and the write are one statement, and on PostgreSQL one transaction
    /// serialized per plugin by an advisory lock: concurrent first writes cannot each see
    /// room for one more key and all insert (SQLite runs one writer at a time anyway).
    pub async fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        max_keys: i64,
    ) -> Result<(), KvError> {
        let mut tx = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('plugin_kv:' || $1)) IS NULL")
                .bind(plugin)
                .execute(&mut *tx)
                .await?;
        }
        // Updating an existing key is always allowed; a new one only below the quota.
        let written = sqlx::query(
            "INSERT INTO plugin_kv (plugin, key, value, updated_at) SELECT $1, $2, $3, $4 \
             WHERE EXISTS (SELECT 1 FROM plugin_kv WHERE plugin = $1 AND key = $2) \
                OR (SELECT COUNT(*) FROM plugin_kv WHERE plugin = $1) < $5 \
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(plugin)
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .bind(max_keys)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if written.rows_affected() == 0 {
            return Err(KvError::Quota(max_keys));
        }
        Ok(())
    }

    pub async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM plugin_kv WHERE plugin = $1 AND key = $2")
            .bind(plugin)
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Keys starting with `prefix`, sorted. (`substr`, not `LIKE`, so `%` and `_` in a
    /// prefix mean themselves.)
    pub async fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT key FROM plugin_kv WHERE plugin = $1 AND substr(key, 1, $2) = $3 ORDER BY key LIMIT $4",
        )
        .bind(plugin)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(MAX_LISTED)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| r.try_get("key")).collect()
    }
}
