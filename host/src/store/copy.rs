//! `slashd db copy`: every row of a SQLite database into an empty database of the current
//! schema (PostgreSQL, the way from one node to many) — users, sessions, members, messages
//! with their seqs, plugin kv, the audit and button uses — keeping ids, seqs and times.
//!
//! What holds:
//! - the source is read in one read transaction: a consistent snapshot, even if a server
//!   still writes to it (what it writes after the snapshot is not copied: stop it first);
//!   nothing is written to the source, and a missing source file is an error, not created;
//! - the source must be at this binary's schema (every migration applied): a column
//!   missing from an older one is refused by name rather than copied as a default;
//! - the source must not be newer than this binary either (a table it does not know
//!   would be left behind);
//! - the target is migrated, then refused unless every copied table is empty;
//! - every row goes into the target in one transaction, so a copy that fails or is
//!   interrupted leaves the target as empty as it found it: run it again;
//! - before that transaction commits, each table's count and the seqs (the messages' sum
//!   and highest, the sessions' `last_seq`) are compared between the source's snapshot and
//!   the target; a difference rolls it back.

use std::str::FromStr;

use anyhow::{bail, Context};
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection, Row};

use super::{redact, sqlite_path, Store, SQLITE_MIGRATIONS};

/// Rows read from the source and inserted into the target per statement.
const CHUNK: usize = 256;

#[derive(Clone, Copy)]
enum Kind {
    Text,
    OptText,
    Int,
    OptInt,
    Blob,
}

struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
}

use Kind::*;

/// Every table of the schema that holds data, parents before children (foreign keys).
const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Text),
            ("name", Text),
            ("role", Text),
            ("password_hash", OptText),
            ("status", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", Text),
            ("title", Text),
            ("owner_id", Text),
            ("status", Text),
            ("metadata", Text),
            ("created_at", Int),
            ("updated_at", Int),
            ("ended_at", OptInt),
            ("last_activity_at", Int),
            ("last_seq", Int),
        ],
    },
    Table {
        name: "session_members",
        columns: &[("session_id", Text), ("user_id", Text), ("added_at", Int)],
    },
    Table {
        name: "messages",
        columns: &[
            ("id", Text),
            ("session_id", Text),
            ("seq", Int),
            ("role", Text),
            ("user_id", OptText),
            ("content", Text),
            ("metadata", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "plugin_kv",
        columns: &[
            ("plugin", Text),
            ("key", Text),
            ("value", Blob),
            ("updated_at", Int),
        ],
    },
    Table {
        name: "command_audit",
        columns: &[
            ("id", Text),
            ("at", Int),
            ("user_id", Text),
            ("session_id", OptText),
            ("command", Text),
            ("plugin", OptText),
            ("args_sha256", Text),
            ("decision", Text),
            ("outcome", Text),
            ("duration_ms", Int),
        ],
    },
    Table {
        name: "action_uses",
        columns: &[
            ("message_id", Text),
            ("action_id", Text),
            ("user_id", Text),
            ("used_at", Int),
        ],
    },
];

/// How far a copy is, told after every chunk and at the end of every table.
pub struct Progress<'a> {
    pub table: &'a str,
    pub copied: u64,
    pub total: u64,
}

/// Rows copied, per table in copy order.
pub type Copied = Vec<(&'static str, u64)>;

/// Copy everything from the SQLite database at `from` into the empty database at `to`.
pub async fn copy(
    from: &str,
    to: &str,
    mut progress: impl FnMut(Progress<'_>),
) -> anyhow::Result<Copied> {
    sqlx::any::install_default_drivers();
    if !from.starts_with("sqlite:") {
        bail!("--from must be a SQLite database (sqlite://PATH); db copy moves a single node's SQLite to PostgreSQL");
    }
    if to.starts_with("sqlite:") && same_file(from, to) {
        // Checked before connecting: opening the target sets pragmas on it.
        bail!("--from and --to are the same database");
    }
    let mut source = open_source(from).await?;
    check_source_schema(&mut source).await?;
    let target = Store::connect(to, 2).await?;
    target.migrate().await?;

    let mut read = source.begin().await.context("begin reading the source")?;
    let mut write = target
        .pool()
        .begin()
        .await
        .context("begin writing the target")?;
    // In the transaction that writes: a server started on the target meanwhile (its first
    // admin) makes the copy fail on a duplicate, not mix with it.
    refuse_non_empty(&mut write).await?;
    let mut copied = Vec::new();
    for table in TABLES {
        let total = count(&mut *read, table.name).await?;
        let mut done = 0u64;
        progress(Progress {
            table: table.name,
            copied: 0,
            total,
        });
        let select = format!(
            "SELECT rowid, {} FROM {} WHERE rowid > $1 ORDER BY rowid LIMIT {CHUNK}",
            select_list(table),
            table.name
        );
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(&select)
                .bind(after)
                .fetch_all(&mut *read)
                .await
                .with_context(|| format!("read {} from the source", table.name))?;
            let Some(last) = rows.last() else { break };
            after = last.try_get(0)?;
            insert(&mut write, table, &rows).await?;
            done = done.saturating_add(rows.len() as u64);
            progress(Progress {
                table: table.name,
                copied: done,
                total,
            });
        }
        copied.push((table.name, done));
    }
    // Compared before the commit, both sides in their transactions: the source's snapshot
    // against what the target will hold. A difference rolls the copy back.
    verify(&mut read, &mut write, &copied).await?;
    write.commit().await.context("commit the copy")?;
    read.commit().await.context("end reading the source")?;
    target.close().await;
    Ok(copied)
}

/// The source, opened for reading an existing file: never created, never migrated.
async fn open_source(url: &str) -> anyhow::Result<AnyConnection> {
    let url = if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rw")
    } else {
        format!("{url}?mode=rw")
    };
    let options = AnyConnectOptions::from_str(&url).context("invalid --from")?;
    AnyConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open the source database ({})", redact(&url)))
}

fn same_file(a: &str, b: &str) -> bool {
    let path = |url: &str| {
        let p = sqlite_path(url);
        std::fs::canonicalize(p).unwrap_or_else(|_| p.into())
    };
    path(a) == path(b)
}

/// Every migration this binary knows has been applied to the source.
async fn check_source_schema(source: &mut AnyConnection) -> anyhow::Result<()> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut *source)
            .await
            .context("the source has no slashd schema (no _sqlx_migrations table)")?;
    let missing: Vec<String> = SQLITE_MIGRATIONS
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the source database lacks migrations ({}); run `slashd migrate` with its config first",
            missing.join(", ")
        );
    }
    let unknown: Vec<String> = applied
        .iter()
        .filter(|v| !SQLITE_MIGRATIONS.iter().any(|m| m.version == **v))
        .map(|v| v.to_string())
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the source database has migrations this slashd does not know ({}); copy it with the slashd that wrote it",
            unknown.join(", ")
        );
    }
    Ok(())
}

async fn refuse_non_empty(target: &mut sqlx::AnyConnection) -> anyhow::Result<()> {
    let mut held = Vec::new();
    for table in TABLES {
        let rows = count(&mut *target, table.name).await?;
        if rows > 0 {
            held.push(format!("{} {}", rows, table.name));
        }
    }
    if !held.is_empty() {
        bail!(
            "the target database is not empty ({}); db copy writes only into an empty one — \
             a new database, before `slashd serve` has run on it",
            held.join(", ")
        );
    }
    Ok(())
}

async fn count<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    table: &str,
) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(db)
        .await
        .with_context(|| format!("count {table}"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The columns as read from SQLite, whose values keep the type they were written with:
/// a BLOB column is cast, so a value stored as text is still copied as bytes.
fn select_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|(name, kind)| match kind {
            Blob => format!("CAST({name} AS BLOB)"),
            _ => name.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn column_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One multi-row `INSERT` of `rows` (read with the rowid first, then the table's columns).
async fn insert(
    write: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &Table,
    rows: &[sqlx::any::AnyRow],
) -> anyhow::Result<()> {
    let width = table.columns.len();
    let values = (0..rows.len())
        .map(|r| {
            let params = (1..=width)
                .map(|c| format!("${}", r * width + c))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({params})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {values}",
        table.name,
        column_list(table)
    );
    let mut query = sqlx::query(&sql);
    for row in rows {
        for (i, (column, kind)) in table.columns.iter().enumerate() {
            let at = i + 1;
            let bad = || format!("{}.{column} in the source", table.name);
            query = match kind {
                Text => query.bind(row.try_get::<String, _>(at).with_context(bad)?),
                OptText => query.bind(row.try_get::<Option<String>, _>(at).with_context(bad)?),
                Int => query.bind(row.try_get::<i64, _>(at).with_context(bad)?),
                OptInt => query.bind(row.try_get::<Option<i64>, _>(at).with_context(bad)?),
                Blob => query.bind(row.try_get::<Vec<u8>, _>(at).with_context(bad)?),
            };
        }
    }
    query
        .execute(&mut **write)
        .await
        .with_context(|| format!("insert {} into the target", table.name))?;
    Ok(())
}

/// The target holds what the source's snapshot does: every table's count, and the seqs
/// (the messages' sum and highest, the sessions' `last_seq` sum).
async fn verify(
    source: &mut sqlx::AnyConnection,
    target: &mut sqlx::AnyConnection,
    copied: &Copied,
) -> anyhow::Result<()> {
    for (table, rows) in copied {
        let was = count(&mut *source, table).await?;
        let is = count(&mut *target, table).await?;
        if was != *rows || is != *rows {
            bail!("verification failed: {table} has {was} rows in the source, {rows} were copied, the target has {is}; nothing was written");
        }
    }
    for sql in [
        "SELECT CAST(COALESCE(SUM(seq), 0) AS BIGINT), CAST(COALESCE(MAX(seq), 0) AS BIGINT) \
         FROM messages",
        "SELECT CAST(COALESCE(SUM(last_seq), 0) AS BIGINT), CAST(COUNT(*) AS BIGINT) FROM sessions",
    ] {
        let was: (i64, i64) = sqlx::query_as(sql).fetch_one(&mut *source).await?;
        let is: (i64, i64) = sqlx::query_as(sql).fetch_one(&mut *target).await?;
        if was != is {
            bail!("verification failed: the seqs differ between source and target ({was:?} vs {is:?} for `{sql}`); nothing was written");
        }
    }
    Ok(())
}
