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

impl Store {
    /// Retention: delete the rows written before `cutoff` (Unix ms); returns how many.
    pub async fn delete_audit_before(&self, cutoff: i64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM command_audit WHERE at < $1")
            .bind(cutoff)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

/// One audit row as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: String,
    #[serde(serialize_with = "crate::time_fmt::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub user_id: String,
    pub session_id: Option<String>,
    pub command: String,
    pub plugin: Option<String>,
    pub args_sha256: String,
    #[schema(schema_with = decision_schema)]
    pub decision: String,
    #[schema(schema_with = outcome_schema)]
    pub outcome: String,
    pub duration_ms: i64,
}

/// `AuditRow.decision` as a string enum (what `commands` writes).
fn decision_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["allowed", "denied"]))
        .description(Some("Whether the command was let through to its plugin"))
        .into()
}

/// `AuditRow.outcome` as a string enum: `ok`, `CommandError::outcome`'s words, and a
/// confirmation's `expired` / `declined`.
fn outcome_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some([
            "ok",
            "usage",
            "failed",
            "timeout",
            "cancelled",
            "forbidden",
            "unknown",
            "rate_limited",
            "not_found",
            "already_used",
            "expired",
            "declined",
        ]))
        .description(Some(
            "How it ended: `ok` when it ran and replied; otherwise the refusal or failure \
             (`forbidden`, `unknown`, `usage`, `rate_limited`, `not_found`, `already_used`, \
             `failed`, `timeout`, `cancelled`), or, for a confirmation that was not given, \
             `expired` or `declined`",
        ))
        .into()
}

impl Store {
    /// Newest first, optionally for one user and/or one command; fetches one extra row to
    /// tell whether more follow.
    pub async fn list_audit(
        &self,
        user_id: Option<&str>,
        command: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditRow>, bool), sqlx::Error> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT id, at, user_id, session_id, command, plugin, args_sha256, decision, outcome, \
             duration_ms FROM command_audit \
             WHERE ($1 = '' OR user_id = $1) AND ($2 = '' OR command = $2) \
             ORDER BY at DESC, id DESC LIMIT $3 OFFSET $4",
        )
        .bind(user_id.unwrap_or(""))
        .bind(command.unwrap_or(""))
        .bind(limit + 1)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    user_id: r.try_get("user_id")?,
                    session_id: r.try_get("session_id")?,
                    command: r.try_get("command")?,
                    plugin: r.try_get("plugin")?,
                    args_sha256: r.try_get("args_sha256")?,
                    decision: r.try_get("decision")?,
                    outcome: r.try_get("outcome")?,
                    duration_ms: r.try_get("duration_ms")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let has_more = out.len() as i64 > limit;
        out.truncate(limit as usize);
        Ok((out, has_more))
    }
}
