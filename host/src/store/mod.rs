//! Persistence. One repository layer over sqlx's `Any` driver, so SQLite and PostgreSQL run
//! the same SQL text; only the migrations differ (`migrations/sqlite`, `migrations/postgres`).
//!
//! Invariants kept here:
//! - a message's `seq` is assigned in the transaction that stores it, by the one writer
//!   that stores every message, in batches (`group_commit.rs`);
//! - ids are UUID v7 text; timestamps are Unix milliseconds.

mod actions;
mod audit;
pub mod copy;
mod group_commit;
mod kv;
mod messages;
pub mod nul;
mod sessions;
mod stats;
mod users;

pub use audit::{AuditEntry, AuditRow};
pub use kv::KvError;
pub use messages::{Message, MessageRole, NewMessage};
pub use stats::Counts;
/// Errors of `append_message`.
pub mod messages_error {
    pub use super::messages::AppendError;
}
pub use sessions::{
    Access, LastMessage, Relation, Session, SessionMember, SessionPatch, SessionStatus,
    SessionSummary,
};
pub use users::{valid_user_id, valid_user_name, CreateUserError, User, UserStatus};

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Every message is stored through it.
    writer: group_commit::Writer,
}

impl Store {
    /// Connect without migrating. SQLite files and their folder are created as needed.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("database.url must start with sqlite:// or postgres://");
        };
        let url = match backend {
            Backend::Sqlite => {
                create_sqlite_parent_dir(url)?;
                sqlite_create_if_missing(url)
            }
            Backend::Postgres => with_statement_cache(url),
        };
        let options = AnyConnectOptions::from_str(&url).context("invalid database.url")?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer; NORMAL sync is durable across
                        // process crashes (the WAL is fsynced at checkpoints).
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to the database ({})", redact(&url)))?;
        let writer = group_commit::Writer::start(pool.clone(), backend, max_connections);
        Ok(Store {
            pool,
            backend,
            writer,
        })
    }

    /// Be told the size of every batch of messages written (once; later calls are ignored).
    pub fn observe_batches(&self, observer: impl Fn(usize) + Send + Sync + 'static) {
        self.writer.observe(Box::new(observer));
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .context("database migration failed")
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Readiness: can we run a query right now?
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file path of a `sqlite:` URL (without the scheme and the query).
pub(crate) fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default()
}

fn create_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let path = sqlite_path(url);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    Ok(())
}

/// A SQLite URL that creates its file when missing (sqlx only does with `mode=rwc`), unless
/// it names a mode of its own (`mode=ro`, `mode=rw`).
fn sqlite_create_if_missing(url: &str) -> String {
    let has_mode = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|kv| kv.starts_with("mode=")));
    match (has_mode, url.contains('?')) {
        (true, _) => url.to_string(),
        (false, true) => format!("{url}&mode=rwc"),
        (false, false) => format!("{url}?mode=rwc"),
    }
}

/// PostgreSQL's URL with room in sqlx's per-connection statement cache (100 by default) for
/// the writer's statements — one per batch size — beside everyone else's: a miss there is
/// an extra round trip. A capacity the URL sets is kept.
fn with_statement_cache(url: &str) -> String {
    if url.contains("statement-cache-capacity=") {
        return url.to_string();
    }
    let join = if url.contains('?') { '&' } else { '?' };
    format!("{url}{join}statement-cache-capacity=400")
}

/// A database URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Is this error a unique-constraint violation (both backends)?
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A fresh time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A stored metadata column (JSON text) as a value; `{}` when it does not parse.
fn parse_metadata(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_files_are_created_unless_a_mode_is_named() {
        let check = |url: &str, expected: &str| {
            assert_eq!(super::sqlite_create_if_missing(url), expected, "{url}")
        };
        check("sqlite:///srv/chat.db", "sqlite:///srv/chat.db?mode=rwc");
        check(
            "sqlite://data/x.db?cache=shared",
            "sqlite://data/x.db?cache=shared&mode=rwc",
        );
        check("sqlite://data/x.db?mode=ro", "sqlite://data/x.db?mode=ro");
        check(
            "sqlite://x.db?cache=shared&mode=rw",
            "sqlite://x.db?cache=shared&mode=rw",
        );
    }

    #[test]
    fn postgres_gets_room_for_the_writers_statements() {
        let check = |url: &str, expected: &str| {
            assert_eq!(super::with_statement_cache(url), expected, "{url}")
        };
        check(
            "postgres://h/db",
            "postgres://h/db?statement-cache-capacity=400",
        );
        check(
            "postgres://h/db?sslmode=require",
            "postgres://h/db?sslmode=require&statement-cache-capacity=400",
        );
        check(
            "postgres://h/db?statement-cache-capacity=50",
            "postgres://h/db?statement-cache-capacity=50",
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
