//! `db-floor`: what the database itself allows for slashd's write pattern, measured with
//! sqlx in this process — no server, no socket — over one connection, one message per
//! transaction and then N per transaction, in two shapes:
//! - **per batch**, the statements of the server's writer (`host/src/store/group_commit.rs`):
//!   one `UPDATE … CASE … RETURNING` bumps every session of the transaction by its count,
//!   one multi-row `INSERT` stores the messages (PostgreSQL first locks the sessions' rows
//!   in id order, as the writer does);
//! - **per message**, the writer's statements before it batched them: an `UPDATE …
//!   RETURNING` and an `INSERT` for each message — what a plain one-statement-per-row
//!   program does.
//!
//! The schema is the server's own (`slashd migrate` creates it); SQLite gets the server's
//! pragmas (WAL, `synchronous = NORMAL`).
//!
//! It is the floor `bench load` is read against: the server cannot ack faster than this,
//! and the batch sizes it forms (`slashd_store_batch_messages`) say which row applies.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context};
use sqlx::{AnyConnection, Connection, Executor, Row};

use super::durability::{create_scratch_database, drop_database};
use crate::flags::{postgres_url, ServerBin};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bin: ServerBin,
    /// PostgreSQL to measure too: a fresh database is created beside it and dropped after.
    #[arg(long, value_parser = postgres_url)]
    pub database_url: Option<String>,
    /// Messages stored per measurement.
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    /// Sessions the messages go to, in turn.
    #[arg(long, default_value_t = 100)]
    pub sessions: usize,
    /// Messages per transaction, each size measured in turn.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub batch: Vec<usize>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.messages == 0 || args.sessions == 0 || args.batch.contains(&0) {
        bail!("--messages, --sessions and every --batch must be at least 1");
    }
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}/floor.db?mode=rwc", dir.path().display());
    let mut rows = measure(Backend::Sqlite, &sqlite, &args, dir.path()).await?;
    if let Some(base) = &args.database_url {
        let (url, name) = create_scratch_database(base, "dbfloor").await?;
        let measured = measure(Backend::Postgres, &url, &args, dir.path()).await;
        drop_database(base, &name).await?;
        rows.extend(measured?);
    }
    println!();
    println!(
        "db-floor: {} messages over {} sessions, one connection",
        args.messages, args.sessions
    );
    println!("| database | statements | messages per transaction | messages/s | × per message, one per transaction |");
    println!("|---|---|---:|---:|---:|");
    for row in &rows {
        let single = rows
            .iter()
            .find(|r| r.backend == row.backend && r.shape == Shape::PerMessage && r.batch == 1)
            .map(|r| r.rate)
            .unwrap_or(0.0);
        let ratio = if single > 0.0 {
            format!("{:.1}", row.rate / single)
        } else {
            "-".into()
        };
        println!(
            "| {} | {} | {} | {:.0} | {ratio} |",
            row.backend.name(),
            row.shape.name(),
            row.batch,
            row.rate
        );
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// How a transaction's messages are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    PerMessage,
    PerBatch,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::PerMessage => "per message",
            Shape::PerBatch => "per batch (the writer's)",
        }
    }
}

struct Measured {
    backend: Backend,
    shape: Shape,
    batch: usize,
    rate: f64,
}

const CONTENT: &str = "a message of about the size people type in a chat";

/// Every shape at every `--batch`, on one database.
async fn measure(
    backend: Backend,
    url: &str,
    args: &Args,
    scratch: &std::path::Path,
) -> anyhow::Result<Vec<Measured>> {
    migrate(&args.bin, url, scratch)?;
    let mut conn = AnyConnection::connect(url)
        .await
        .with_context(|| format!("connect to the {} database", backend.name()))?;
    if backend == Backend::Sqlite {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
    }
    let sessions = seed(&mut conn, args.sessions).await?;
    let mut out = Vec::new();
    let mut now = 0i64;
    for shape in [Shape::PerMessage, Shape::PerBatch] {
        for &batch in &args.batch {
            let started = Instant::now();
            let mut stored = 0usize;
            while stored < args.messages {
                let n = batch.min(args.messages - stored);
                let targets: Vec<&str> = (stored..stored + n)
                    .map(|i| sessions[i % sessions.len()].as_str())
                    .collect();
                now = now.saturating_add(1);
                let mut tx = conn.begin().await?;
                match shape {
                    Shape::PerMessage => per_message(&mut tx, &targets, now).await?,
                    Shape::PerBatch => per_batch(&mut tx, backend, &targets, now).await?,
                }
                tx.commit().await?;
                stored += n;
            }
            let rate = args.messages as f64 / started.elapsed().as_secs_f64();
            eprintln!(
                "db-floor: {}, {}, {batch} per transaction: {rate:.0} messages/s",
                backend.name(),
                shape.name()
            );
            out.push(Measured {
                backend,
                shape,
                batch,
                rate,
            });
        }
    }
    let _ = conn.close().await;
    Ok(out)
}

/// An `UPDATE … RETURNING` and an `INSERT` per message.
async fn per_message(conn: &mut AnyConnection, targets: &[&str], now: i64) -> anyhow::Result<()> {
    for session in targets {
        let row = sqlx::query(
            "UPDATE sessions SET last_seq = last_seq + 1, last_activity_at = $1 \
             WHERE id = $2 AND status = 'active' RETURNING last_seq",
        )
        .bind(now)
        .bind(*session)
        .fetch_one(&mut *conn)
        .await?;
        let seq: i64 = row.try_get("last_seq")?;
        sqlx::query(
            "INSERT INTO messages (id, session_id, seq, role, user_id, content, \
             metadata, created_at) VALUES ($1, $2, $3, 'user', NULL, $4, 'null', $5)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(*session)
        .bind(seq)
        .bind(CONTENT)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The writer's statements: lock (PostgreSQL), one bump for all sessions, one insert.
async fn per_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    targets: &[&str],
    now: i64,
) -> anyhow::Result<()> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for session in targets {
        *counts.entry(session).or_default() += 1;
    }
    let list = |from: usize, step: usize| {
        (0..counts.len())
            .map(|k| format!("${}", from + step * k))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if backend == Backend::Postgres {
        let sql = format!(
            "SELECT id FROM sessions WHERE id IN ({}) ORDER BY id FOR NO KEY UPDATE",
            list(1, 1)
        );
        let mut lock = sqlx::query(&sql);
        for session in counts.keys() {
            lock = lock.bind(*session);
        }
        lock.fetch_all(&mut *conn).await?;
    }
    let cases: String = (0..counts.len())
        .map(|k| format!(" WHEN ${} THEN CAST(${} AS BIGINT)", 2 + 2 * k, 3 + 2 * k))
        .collect();
    let sql = format!(
        "UPDATE sessions SET last_seq = last_seq + CASE id{cases} END, last_activity_at = $1 \
         WHERE status = 'active' AND id IN ({}) RETURNING id, last_seq",
        list(2, 2)
    );
    let mut bump = sqlx::query_as::<_, (String, i64)>(&sql).bind(now);
    for (session, n) in &counts {
        bump = bump.bind(*session).bind(*n);
    }
    let mut next: BTreeMap<String, i64> = bump
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, last)| {
            let n = counts.get(id.as_str()).copied().unwrap_or(0);
            (id, last - n + 1)
        })
        .collect();
    // Eight parameters a row, as the writer binds them.
    let values = (0..targets.len())
        .map(|r| {
            let row: Vec<String> = (1 + 8 * r..9 + 8 * r).map(|p| format!("${p}")).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO messages (id, session_id, seq, role, user_id, content, metadata, \
         created_at) VALUES {values}"
    );
    let mut insert = sqlx::query(&sql);
    for session in targets {
        let seq = next.get_mut(*session).context("a session was not bumped")?;
        insert = insert
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(*session)
            .bind(*seq)
            .bind("user")
            .bind(None::<String>)
            .bind(CONTENT)
            .bind("null")
            .bind(now);
        *seq += 1;
    }
    insert.execute(&mut *conn).await?;
    Ok(())
}

/// The server's schema, by the server itself.
fn migrate(bin: &ServerBin, url: &str, scratch: &std::path::Path) -> anyhow::Result<()> {
    let server = std::fs::canonicalize(&bin.server_bin)
        .with_context(|| format!("no slashd binary at {}", bin.server_bin.display()))?;
    let out = std::process::Command::new(server)
        .arg("migrate")
        // In a directory of its own: no ./slashd.toml of the caller's is read.
        .current_dir(scratch)
        .env("SLASHD_DATABASE_URL", url)
        .env("SLASHD_SERVER_DATA_DIR", scratch)
        .output()
        .with_context(|| format!("run {} migrate", bin.server_bin.display()))?;
    if !out.status.success() {
        bail!(
            "slashd migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// One owner and `n` active sessions; their ids.
async fn seed(conn: &mut AnyConnection, n: usize) -> anyhow::Result<Vec<String>> {
    let owner = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO users (id, name, role, created_at, updated_at) \
         VALUES ($1, $2, 'viewer', 0, 0)",
    )
    .bind(&owner)
    .bind(format!("floor-{}", &owner[..8]))
    .execute(&mut *conn)
    .await?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO sessions (id, title, owner_id, created_at, updated_at, \
             last_activity_at) VALUES ($1, $2, $3, 0, 0, 0)",
        )
        .bind(&id)
        .bind(format!("floor {i}"))
        .bind(&owner)
        .execute(&mut *conn)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}
