//! The command audit log: one row per invocation, allowed or denied.

use super::{new_id, Store};
use crate::time_fmt::now_ms;

pub struct AuditEntry<'a> {
    pub user_id: &'a str,
    pub session_id: Option<&'a str>,
    pub command: &'a str,
    pub plugin: Option<&'a str>,
    /// sha256 of the raw arguments: what was run is provable without storing it.
    pub args_sha256: &'a str,
    /// `allowed` or `denied`.
    pub decision: &'a str,
    /// `ok`, `usage`, `failed`, `timeout`, `forbidden`, `unknown`, `rate_limited`.
    pub outcome: &'a str,
    pub duration_ms: i64,
}

impl Store {
    pub async fn audit(&self, e: AuditEntry<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO command_audit (id, at, user_id, session_id, command, plugin, args_sha256, \
             decision, outcome, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(new_id())
        .bind(now_ms())
        .bind(e.user_id)
        .bind(e.session_id)
        .bind(e.command)
        .bind(e.plugin)
        .bind(e.args_sha256)
        .bind(e.decision)
        .bind(e.outcome)
        .bind(e.duration_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
