//! Chat sessions, their members, and the access rule: a session is visible to its owner and
//! its members and to no one else (others get "not found", so ids do not leak).

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use slashd_plugin_api::Role;

use super::messages::MessageRole;
use super::{new_id, parse_metadata, Store};
use crate::time_fmt::{self, now_ms};

/// How many characters of a session's newest message its list entry carries.
pub const PREVIEW_CHARS: usize = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Active,
    Ended,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Ended => "ended",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Session {
    #[schema(format = "uuid")]
    pub id: String,
    pub title: String,
    pub owner_id: String,
    pub status: SessionStatus,
    #[serde(serialize_with = "time_fmt::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "time_fmt::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    #[serde(serialize_with = "time_fmt::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub ended_at: Option<i64>,
    #[serde(serialize_with = "time_fmt::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub last_activity_at: i64,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// The seq of the newest message (0 when empty): with the seq a client has seen, how
    /// many messages it has not.
    pub last_seq: i64,
}

/// A session as the caller's list shows it: the session and the start of its newest message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionSummary {
    #[serde(flatten)]
    pub session: Session,
    /// `null` while the session has no message.
    #[schema(required = true)]
    pub last_message: Option<LastMessage>,
}

/// The newest message of a session, cut short.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LastMessage {
    pub seq: i64,
    pub role: MessageRole,
    #[schema(required = true)]
    pub user_id: Option<String>,
    /// The author's user name, when a user wrote it.
    #[schema(required = true)]
    pub user_name: Option<String>,
    /// The first 160 characters of the content.
    #[schema(max_length = 160)]
    pub preview: String,
    /// Whether the content goes on past `preview`.
    pub truncated: bool,
    #[serde(serialize_with = "time_fmt::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// Who is in a session: its owner or a member, with their name and role.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionMember {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub relation: Relation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    Owner,
    Member,
}

/// How the caller relates to a session they can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Owner,
    Member,
}

#[derive(Debug, Default)]
pub struct SessionPatch {
    pub title: Option<String>,
    pub metadata: Option<Value>,
}

const COLUMNS: &str = "id, title, owner_id, status, metadata, created_at, updated_at, ended_at, \
                       last_activity_at, last_seq";
/// The same, of `sessions s` in a join.
const S_COLUMNS: &str = "s.id, s.title, s.owner_id, s.status, s.metadata, s.created_at, \
                         s.updated_at, s.ended_at, s.last_activity_at, s.last_seq";

fn from_row(row: &AnyRow) -> Result<Session, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(Session {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        owner_id: row.try_get("owner_id")?,
        status: if status == "ended" {
            SessionStatus::Ended
        } else {
            SessionStatus::Active
        },
        metadata: parse_metadata(&metadata),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        ended_at: row.try_get("ended_at")?,
        last_activity_at: row.try_get("last_activity_at")?,
        last_seq: row.try_get("last_seq")?,
    })
}

/// The `m_*` columns of a session list row: its newest message, if it has one.
fn last_message(row: &AnyRow) -> Result<Option<LastMessage>, sqlx::Error> {
    let Some(seq) = row.try_get::<Option<i64>, _>("m_seq")? else {
        return Ok(None);
    };
    let role: String = row.try_get("m_role")?;
    let content: String = row.try_get("m_content")?;
    let (preview, truncated) = match content.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => (content[..cut].to_string(), true),
        None => (content, false),
    };
    Ok(Some(LastMessage {
        seq,
        role: MessageRole::parse(&role),
        user_id: row.try_get("m_user_id")?,
        user_name: row.try_get("m_user_name")?,
        preview,
        truncated,
        created_at: row.try_get("m_created_at")?,
    }))
}

/// What "the caller's sessions" means, as SQL over `sessions s`: owned or joined as a member.
const VISIBLE_TO: &str = "s.id IN (SELECT id FROM sessions WHERE owner_id = $1 \
                          UNION SELECT session_id FROM session_members WHERE user_id = $1)";

impl Store {
    /// A new active session, or `None` when the owner already owns `max_owned` active
    /// ones (checked in the same statement as the insert).
    pub async fn create_session(
        &self,
        owner_id: &str,
        title: &str,
        metadata: &Value,
        max_owned: i64,
    ) -> Result<Option<Session>, sqlx::Error> {
        let now = now_ms();
        let id = new_id();
        let done = sqlx::query(
            "INSERT INTO sessions (id, title, owner_id, status, metadata, created_at, \
             updated_at, last_activity_at, last_seq) \
             SELECT $1, $2, $3, 'active', $4, $5, $5, $5, 0 \
             WHERE (SELECT COUNT(*) FROM sessions WHERE owner_id = $3 AND status = 'active') < $6",
        )
        .bind(&id)
        .bind(title)
        .bind(owner_id)
        .bind(metadata.to_string())
        .bind(now)
        .bind(max_owned)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(Session {
            id,
            title: title.to_string(),
            owner_id: owner_id.to_string(),
            status: SessionStatus::Active,
            created_at: now,
            updated_at: now,
            ended_at: None,
            last_activity_at: now,
            metadata: metadata.clone(),
            last_seq: 0,
        }))
    }

    pub async fn session(&self, id: &str) -> Result<Option<Session>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The session if `user_id` may see it, with how. `None` for missing and foreign alike.
    pub async fn session_for(
        &self,
        id: &str,
        user_id: &str,
    ) -> Result<Option<(Session, Access)>, sqlx::Error> {
        let Some(session) = self.session(id).await? else {
            return Ok(None);
        };
        if session.owner_id == user_id {
            return Ok(Some((session, Access::Owner)));
        }
        let member = sqlx::query(
            "SELECT 1 AS one FROM session_members WHERE session_id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(member.map(|_| (session, Access::Member)))
    }

    /// The caller's sessions, newest activity first, each with the start of its newest
    /// message, and how many there are in all.
    pub async fn list_sessions(
        &self,
        user_id: &str,
        status: Option<SessionStatus>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<SessionSummary>, i64), sqlx::Error> {
        let status_filter = match status {
            Some(SessionStatus::Active) => " AND s.status = 'active'",
            Some(SessionStatus::Ended) => " AND s.status = 'ended'",
            None => "",
        };
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM sessions s WHERE {VISIBLE_TO}{status_filter}"
        ))
        .bind(user_id)
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        // One character past the preview tells whether the content goes on.
        let rows = sqlx::query(&format!(
            "SELECT {S_COLUMNS}, m.seq AS m_seq, m.role AS m_role, m.user_id AS m_user_id, \
             substr(m.content, 1, {}) AS m_content, m.created_at AS m_created_at, \
             u.name AS m_user_name \
             FROM sessions s \
             LEFT JOIN messages m ON m.session_id = s.id AND m.seq = s.last_seq \
             LEFT JOIN users u ON u.id = m.user_id \
             WHERE {VISIBLE_TO}{status_filter} \
             ORDER BY s.last_activity_at DESC, s.id DESC LIMIT $2 OFFSET $3",
            PREVIEW_CHARS + 1
        ))
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        let sessions = rows
            .iter()
            .map(|row| {
                Ok(SessionSummary {
                    session: from_row(row)?,
                    last_message: last_message(row)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok((sessions, total))
    }

    /// Who is in a session, owner first then members by name, and how many there are.
    pub async fn members(
        &self,
        session_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<SessionMember>, i64), sqlx::Error> {
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM session_members WHERE session_id = $1")
                .bind(session_id)
                .fetch_one(self.pool())
                .await?
                .try_get("n")?;
        let rows = sqlx::query(
            "SELECT id, name, role, relation FROM ( \
               SELECT u.id, u.name, u.role, 'owner' AS relation, 0 AS rank \
               FROM sessions s JOIN users u ON u.id = s.owner_id WHERE s.id = $1 \
               UNION ALL \
               SELECT u.id, u.name, u.role, 'member' AS relation, 1 AS rank \
               FROM session_members sm JOIN users u ON u.id = sm.user_id \
               WHERE sm.session_id = $1 \
             ) AS everyone ORDER BY rank, name, id LIMIT $2 OFFSET $3",
        )
        .bind(session_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        let members = rows
            .iter()
            .map(|row| {
                let relation: String = row.try_get("relation")?;
                Ok(SessionMember {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    role: super::users::role_of(row)?,
                    relation: if relation == "owner" {
                        Relation::Owner
                    } else {
                        Relation::Member
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        // The owner counts too.
        Ok((members, total.saturating_add(1)))
    }

    /// Apply a patch to an active session. `None` when the session is not active.
    pub async fn update_session(
        &self,
        id: &str,
        patch: &SessionPatch,
    ) -> Result<Option<Session>, sqlx::Error> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE sessions SET title = COALESCE($1, title), \
             metadata = COALESCE($2, metadata), updated_at = $3 \
             WHERE id = $4 AND status = 'active'",
        )
        .bind(patch.title.as_deref())
        .bind(patch.metadata.as_ref().map(Value::to_string))
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.session(id).await
    }

    /// End a session. Returns the session and whether this call ended it (false when it
    /// had already ended), or `None` when it does not exist.
    pub async fn end_session(&self, id: &str) -> Result<Option<(Session, bool)>, sqlx::Error> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE sessions SET status = 'ended', ended_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'active'",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        let changed = done.rows_affected() > 0;
        Ok(self.session(id).await?.map(|s| (s, changed)))
    }

    /// Add a member; adding one twice is harmless. The owner is not stored as a member.
    pub async fn add_member(&self, session_id: &str, user_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO session_members (session_id, user_id, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (session_id, user_id) DO NOTHING",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Remove a member; returns false when the user was not one.
    pub async fn remove_member(
        &self,
        session_id: &str,
        user_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let done =
            sqlx::query("DELETE FROM session_members WHERE session_id = $1 AND user_id = $2")
                .bind(session_id)
                .bind(user_id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Retention: end active sessions idle since before `cutoff`; returns their ids so the
    /// hub can tell connected participants.
    pub async fn end_idle_sessions(&self, cutoff: i64) -> Result<Vec<String>, sqlx::Error> {
        let now = now_ms();
        let rows = sqlx::query(
            "UPDATE sessions SET status = 'ended', ended_at = $1, updated_at = $1 \
             WHERE status = 'active' AND last_activity_at < $2 RETURNING id",
        )
        .bind(now)
        .bind(cutoff)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| r.try_get("id")).collect()
    }

    /// Retention: delete sessions that ended before `cutoff` (messages and members cascade).
    pub async fn delete_ended_sessions(&self, cutoff: i64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE status = 'ended' AND ended_at < $1")
            .bind(cutoff)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_joined_columns_are_the_columns() {
        let qualified: Vec<String> = COLUMNS.split(", ").map(|c| format!("s.{c}")).collect();
        assert_eq!(S_COLUMNS, qualified.join(", "));
    }
}
