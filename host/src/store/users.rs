//! Users: identity, role and status. The database's role and status are the truth; a token's
//! claims are checked against them on every use.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{is_unique_violation, new_id, Store};
use crate::time_fmt::now_ms;
use slashd_plugin_api::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Disabled,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    pub password_hash: Option<String>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, name, role, status, password_hash, created_at";

/// A row's `role` column (a role the schema's CHECK does not know is a decode error).
pub(super) fn role_of(row: &AnyRow) -> Result<Role, sqlx::Error> {
    let role: String = row.try_get("role")?;
    role.parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))
}

fn from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: role_of(row)?,
        status: if status == "disabled" {
            UserStatus::Disabled
        } else {
            UserStatus::Active
        },
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("a user named {0:?} already exists")]
    NameTaken(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// User names: 1–64 characters of ASCII letters, digits, `.`, `_` and `-`. (They are shown
/// to everyone and written to logs, so nothing else.)
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// User ids: our own are UUIDs; an identity provider's `sub` is any 1–255 bytes without
/// control characters.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && !id.chars().any(char::is_control)
}

impl Store {
    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        password_hash: Option<&str>,
    ) -> Result<User, CreateUserError> {
        self.insert_user(new_id(), name, role, password_hash).await
    }

    /// A user whose id is given by an external identity provider (the token's `sub`).
    pub async fn create_user_with_id(
        &self,
        id: &str,
        name: &str,
        role: Role,
    ) -> Result<User, CreateUserError> {
        self.insert_user(id.to_string(), name, role, None).await
    }

    async fn insert_user(
        &self,
        id: String,
        name: &str,
        role: Role,
        password_hash: Option<&str>,
    ) -> Result<User, CreateUserError> {
        let now = now_ms();
        let result = sqlx::query(
            "INSERT INTO users (id, name, role, password_hash, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'active', $5, $5)",
        )
        .bind(&id)
        .bind(name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now)
        .execute(self.pool())
        .await;
        match result {
            Ok(_) => Ok(User {
                id,
                name: name.to_string(),
                role,
                status: UserStatus::Active,
                password_hash: password_hash.map(str::to_string),
                created_at: now,
            }),
            Err(e) if is_unique_violation(&e) => Err(CreateUserError::NameTaken(name.into())),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The active users who may see a session — its owner and members — by name, at most
    /// `limit`: whom a typed `user` argument may name there.
    pub async fn session_people(
        &self,
        session_id: &str,
        limit: i64,
    ) -> Result<Vec<User>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE status = 'active' AND \
             (id IN (SELECT owner_id FROM sessions WHERE id = $1) \
              OR id IN (SELECT user_id FROM session_members WHERE session_id = $1)) \
             ORDER BY name LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(session_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn list_users(&self) -> Result<Vec<User>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM users ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn count_users(&self) -> Result<i64, sqlx::Error> {
        sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(self.pool())
            .await?
            .try_get("n")
    }

    /// Users whose row changed at or after `since` (Unix ms): id, role, status and when.
    pub async fn users_changed_since(
        &self,
        since: i64,
    ) -> Result<Vec<(String, Role, UserStatus, i64)>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS}, updated_at FROM users WHERE updated_at >= $1");
        let rows = sqlx::query(&sql).bind(since).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                let user = from_row(row)?;
                let updated_at: i64 = row.try_get("updated_at")?;
                Ok((user.id, user.role, user.status, updated_at))
            })
            .collect()
    }

    /// Returns false when no user has that name.
    pub async fn set_user_role(&self, name: &str, role: Role) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE name = $3")
            .bind(role.as_str())
            .bind(now_ms())
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Returns false when no user has that name.
    pub async fn set_user_status(
        &self,
        name: &str,
        status: UserStatus,
    ) -> Result<bool, sqlx::Error> {
        let status = match status {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        };
        let done = sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE name = $3")
            .bind(status)
            .bind(now_ms())
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
