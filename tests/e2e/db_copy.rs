//! `slashd db copy`: a node's SQLite history moved into PostgreSQL, served by a node there.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use sqlx::{AnyConnection, Connection, Executor, Row};

use crate::harness::{Backend, PgDatabase, Setup, BIN};
use crate::support::{history, post, Shared};

fn db_copy(from: &str, to: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    Command::new(BIN)
        .args(["db", "copy", "--from", from, "--to", to])
        .current_dir(dir.path())
        .env("SLASHD_LOG", "warn")
        .output()
        .expect("run slashd db copy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn sql(url: &str, statement: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.expect("connect");
    conn.execute(statement).await.expect(statement);
}

async fn pg_count(pg: &PgDatabase, table: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&pg.url).await.expect("connect");
    let row = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut conn)
        .await
        .expect("count");
    row.try_get::<i64, _>(0).expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_moves_to_postgres_with_its_history() {
    // The old node: two users, a shared session with more messages than one copy chunk
    // (256), a command (an audit row and a stored reply), and a plugin's kv value that is
    // not text.
    let mut old = Setup::new(Backend::Sqlite)
        .set("realtime", "rate_per_sec", "10000.0")
        .set("realtime", "rate_burst", "10000.0")
        .start()
        .await;
    let shared = Shared::create(&old, "ana", "ben", "moving day").await;
    let (mut ana, _ben) = shared.join_both(&old).await;
    for i in 0..300 {
        post(&mut ana, &shared.session, &format!("message {i}")).await;
    }
    let reply = ana.command(&shared.session, "/help").await;
    assert_eq!(reply["type"], "message", "{reply}");
    let source = old.database_url();
    sql(
        &source,
        "INSERT INTO plugin_kv (plugin, key, value, updated_at) VALUES ('notes', 'k', x'00ff0a', 1)",
    )
    .await;
    let before = history(&old, &shared.session, &shared.member.token).await;
    assert!(before.len() >= 302, "{}", before.len());
    let (_, sessions_before) = old.get("/chat/sessions", &shared.owner.token).await;
    drop(ana);
    old.terminate(Duration::from_secs(10));
    let audit = old.count("SELECT COUNT(*) FROM command_audit").await;
    assert!(audit >= 1);

    // A copy that fails part-way (a trigger refuses the 200th message) leaves the target
    // empty — one transaction — and says why.
    let pg = Arc::new(PgDatabase::create().await);
    let migrate = Command::new(BIN)
        .arg("migrate")
        .env("SLASHD_DATABASE_URL", &pg.url)
        .env("SLASHD_LOG", "warn")
        .current_dir(old.dir.path())
        .output()
        .expect("migrate");
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));
    sql(
        &pg.url,
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN \
         IF NEW.seq = 200 THEN RAISE EXCEPTION 'refused on purpose'; END IF; RETURN NEW; \
         END $$ LANGUAGE plpgsql",
    )
    .await;
    sql(
        &pg.url,
        "CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .await;
    let failed = db_copy(&source, &pg.url);
    assert!(!failed.status.success());
    assert!(
        text(&failed.stderr).contains("insert messages into the target"),
        "{}",
        text(&failed.stderr)
    );
    for table in ["users", "sessions", "session_members", "messages"] {
        assert_eq!(pg_count(&pg, table).await, 0, "{table} after a failed copy");
    }
    sql(&pg.url, "DROP TRIGGER refuse ON messages").await;

    // The copy.
    let copied = db_copy(&source, &pg.url);
    assert!(copied.status.success(), "{}", text(&copied.stderr));
    let report = text(&copied.stdout);
    assert!(report.contains("verified"), "{report}");
    let line = |table: &str| {
        report
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("no count for {table}: {report}"))
    };
    assert_eq!(line("messages"), i64::try_from(before.len()).unwrap());
    assert_eq!(line("command_audit"), audit);
    assert_eq!(line("plugin_kv"), 1);
    assert!(
        text(&copied.stderr).contains("messages: "),
        "progress, one line per table when not a terminal: {}",
        text(&copied.stderr)
    );

    // A node on PostgreSQL serves the same history to the same users (their old tokens:
    // same ids, same secret), and goes on numbering where the old node stopped.
    let new = Setup::new(Backend::Postgres)
        .start_on_postgres(pg.clone())
        .await;
    let after = history(&new, &shared.session, &shared.member.token).await;
    assert_eq!(after, before);
    let (status, sessions_after) = new.get("/chat/sessions", &shared.owner.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sessions_after, sessions_before);
    let login = new.login("ben", crate::harness::PASSWORD).await;
    let mut ben = new.ws(&login).await;
    ben.join(&shared.session).await;
    let next = post(&mut ben, &shared.session, "first on postgres").await;
    assert_eq!(
        next["seq"].as_i64(),
        before.last().and_then(|m| m["seq"].as_i64()).map(|s| s + 1)
    );
    let value: Vec<u8> = {
        let mut conn = AnyConnection::connect(&pg.url).await.expect("connect");
        sqlx::query("SELECT value FROM plugin_kv WHERE plugin = 'notes'")
            .fetch_one(&mut conn)
            .await
            .expect("kv row")
            .try_get(0)
            .expect("bytes")
    };
    assert_eq!(value, [0x00, 0xff, 0x0a]);

    // Refusals: a target that is not empty, a source that is not there (and is not
    // created), a source that is not SQLite.
    let again = db_copy(&source, &pg.url);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("the target database is not empty"),
        "{}",
        text(&again.stderr)
    );
    let missing = old.dir.path().join("nothing-here.db");
    let out = db_copy(&format!("sqlite://{}", missing.display()), &pg.url);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot open the source database"),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists(), "a missing source is not created");
    let out = db_copy(&source, &source);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the same database"),
        "{}",
        text(&out.stderr)
    );
    sql(
        &source,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer slashd', 1, x'00', 0)",
    )
    .await;
    let out = db_copy(&source, &pg.url);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("migrations this slashd does not know (9999)"),
        "{}",
        text(&out.stderr)
    );
    let out = db_copy(&pg.url, &source);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--from must be a SQLite database"),
        "{}",
        text(&out.stderr)
    );
}
