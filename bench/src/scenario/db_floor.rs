//! `db-floor`: what the database itself allows for slashd's write pattern, measured with
//! sqlx in this process — no server, no socket. Per message: bump the session's `last_seq`
//! (`UPDATE … RETURNING`) and insert the message with it, exactly the statements of the
//! server's writer (`host/src/store/group_commit.rs`), over one connection, one message per
//! transaction and then N per transaction. The schema is the server's own (`slashd migrate`
//! creates it); SQLite gets the server's pragmas (WAL, `synchronous = NORMAL`).
//!
//! It is the floor `bench load` is read against: the server cannot ack faster than this,
//! and the batch sizes it forms (`slashd_store_batch_messages`) say which row applies.

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
    let mut rows = measure("SQLite", &sqlite, &args, dir.path()).await?;
    if let Some(base) = &args.database_url {
        let (url, name) = create_scratch_database(base, "dbfloor").await?;
        let measured = measure("PostgreSQL", &url, &args, dir.path()).await;
        drop_database(base, &name).await?;
        rows.extend(measured?);
    }
    println!();
    println!(
        "db-floor: {} messages over {} sessions, one connection, the server's statements",
        args.messages, args.sessions
    );
    println!("| database | messages per transaction | messages/s | × one per transaction |");
    println!("|---|---:|---:|---:|");
    for (backend, batch, rate, single) in rows {
        let ratio = if single > 0.0 {
            format!("{:.1}", rate / single)
        } else {
            "-".into()
        };
        println!("| {backend} | {batch} | {rate:.0} | {ratio} |");
    }
    Ok(())
}

/// (database, batch, messages/s, messages/s at batch 1 — 0 until it is measured) for each
/// `--batch`.
async fn measure(
    backend: &'static str,
    url: &str,
    args: &Args,
    scratch: &std::path::Path,
) -> anyhow::Result<Vec<(&'static str, usize, f64, f64)>> {
    migrate(&args.bin, url, scratch)?;
    let mut conn = AnyConnection::connect(url)
        .await
        .with_context(|| format!("connect to the {backend} database"))?;
    if backend == "SQLite" {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
    }
    let sessions = seed(&mut conn, args.sessions).await?;
    let mut out = Vec::new();
    let mut single = 0.0;
    for &batch in &args.batch {
        let started = Instant::now();
        let mut stored = 0usize;
        while stored < args.messages {
            let n = batch.min(args.messages - stored);
            let mut tx = conn.begin().await?;
            for i in stored..stored + n {
                let session = &sessions[i % sessions.len()];
                let now = i64::try_from(i).unwrap_or(i64::MAX);
                let row = sqlx::query(
                    "UPDATE sessions SET last_seq = last_seq + 1, last_activity_at = $1 \
                     WHERE id = $2 AND status = 'active' RETURNING last_seq",
                )
                .bind(now)
                .bind(session)
                .fetch_one(&mut *tx)
                .await?;
                let seq: i64 = row.try_get("last_seq")?;
                sqlx::query(
                    "INSERT INTO messages (id, session_id, seq, role, user_id, content, \
                     metadata, created_at) VALUES ($1, $2, $3, 'user', NULL, $4, 'null', $5)",
                )
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(session)
                .bind(seq)
                .bind("a message of about the size people type in a chat")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            stored += n;
        }
        let rate = args.messages as f64 / started.elapsed().as_secs_f64();
        if batch == 1 {
            single = rate;
        }
        eprintln!("db-floor: {backend}, {batch} per transaction: {rate:.0} messages/s");
        out.push((backend, batch, rate, single));
    }
    let _ = conn.close().await;
    Ok(out)
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
