//! `durability`: clients post with several messages in flight and record every `ack`; the
//! server is `kill -9`ed mid-stream and restarted on the same database, again and again;
//! then the database itself is read (sqlx, not the server) and every acked message must be
//! there with the acked seq and content, with no duplicate or missing seq in any session.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use sqlx::{Connection, Row};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::flags::{postgres_url, seconds, ServerBin};
use crate::report::{print_logs, progress};
use crate::server::{LogReport, Server, User};
use crate::ws::{self, ack_fields, frame_type, int_field};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bin: ServerBin,
    /// PostgreSQL to create a fresh database beside (postgres://…), dropped after a clean
    /// run; by default the server runs on SQLite in its temp dir.
    #[arg(long, value_parser = postgres_url)]
    pub database_url: Option<String>,
    /// Posting clients.
    #[arg(long, default_value_t = 8)]
    pub dur_clients: usize,
    /// Sessions the clients post in.
    #[arg(long, default_value_t = 4)]
    pub dur_sessions: usize,
    /// Messages in flight per client.
    #[arg(long, default_value_t = 8)]
    pub dur_window: usize,
    /// kill -9s, each after --cycle-secs of posting (and posting as long again after the
    /// last restart).
    #[arg(long, default_value_t = 3)]
    pub kills: usize,
    /// Seconds of posting before each kill -9, and after the last restart.
    #[arg(long, default_value_t = 3.0, value_parser = seconds)]
    pub cycle_secs: f64,
    /// Keep the fresh PostgreSQL database even when the check passed.
    #[arg(long)]
    pub keep_database: bool,
    /// Check the checker: before verifying, add an ack the server never gave and change
    /// the seq of a real one; the run must then fail with a LOST and a MISMATCH.
    #[arg(long, hide = true)]
    pub self_test: bool,
}

impl Args {
    fn cycle(&self) -> Duration {
        Duration::from_secs_f64(self.cycle_secs)
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let r = kill_and_check(&args).await?;
    println!();
    println!(
        "durability — {}: {} clients × {} in flight over {} sessions; {} × kill -9 + restart \
         (restarts took {} ms), {:.1} s in all",
        r.backend,
        args.dur_clients,
        args.dur_window,
        r.sessions,
        r.kills,
        r.restart_ms
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_secs_f64()
    );
    println!(
        "  sent {}, acked {}, refused {}, unanswered when the server died {} (may or may not \
         be stored)",
        r.sent, r.acked, r.refused, r.unanswered
    );
    println!(
        "  database ({}): {} messages in our sessions",
        r.database, r.rows
    );
    if r.violations.is_empty() {
        println!(
            "  PASS: all {} acked messages are stored with their seq and content; seqs \
             unique and gap-free in every session",
            r.acked
        );
    } else {
        for v in &r.violations {
            println!("  {v}");
        }
    }
    print_logs("durability", &r.logs);
    verdict(&r)
}

/// One acknowledged message, as the client saw it.
#[derive(Clone, Debug)]
pub(crate) struct Acked {
    pub session: String,
    pub message_id: String,
    pub seq: i64,
    pub content: String,
}

struct DurabilityResult {
    backend: String,
    acked: usize,
    sent: u64,
    /// Messages in flight (sent, not answered) when a connection broke: allowed either way.
    unanswered: u64,
    refused: u64,
    kills: usize,
    restart_ms: Vec<u128>,
    rows: usize,
    sessions: usize,
    /// Every broken promise, described; empty when the run passed.
    violations: Vec<String>,
    logs: LogReport,
    database: String,
}

/// Post, kill -9 and restart the server --kills times, then check the database.
async fn kill_and_check(args: &Args) -> anyhow::Result<DurabilityResult> {
    sqlx::any::install_default_drivers();
    let (db_url, backend, fresh) = match &args.database_url {
        Some(base) => {
            let (url, name) = create_database(base).await?;
            progress(&format!("durability: fresh PostgreSQL database {name}"));
            (
                Some(url),
                "PostgreSQL".to_string(),
                Some((base.clone(), name)),
            )
        }
        None => (None, "SQLite".to_string(), None),
    };
    let mut server = Server::start(&args.bin.opts(db_url.clone())).await?;
    let check_url = db_url.clone().unwrap_or_else(|| server.sqlite_url());
    let users = server.users("dur", args.dur_clients.clamp(1, 8)).await?;
    let mut sessions = Vec::new();
    for s in 0..args.dur_sessions.max(1) {
        let owner = &users[0];
        let id = server.session(owner, &format!("durability {s}")).await?;
        for u in users.iter().skip(1) {
            server.add_member(owner, &id, u).await?;
        }
        sessions.push(id);
    }

    let (url_tx, url_rx) = watch::channel(Some(server.ws_url.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::new(Mutex::new(Vec::new()));
    let counters = Arc::new(Counters::default());
    let mut clients = Vec::new();
    for c in 0..args.dur_clients.max(1) {
        let client = Client {
            index: c,
            user: users[c % users.len()].clone(),
            session: sessions[c % sessions.len()].clone(),
            window: args.dur_window.max(1),
            url: url_rx.clone(),
            stop: stop_rx.clone(),
            acked: acked.clone(),
            counters: counters.clone(),
        };
        clients.push(tokio::spawn(client.run()));
    }

    let mut restart_ms = Vec::new();
    for k in 0..args.kills {
        tokio::time::sleep(args.cycle()).await;
        let before = lock(&acked)?.len();
        let _ = url_tx.send(None);
        server.kill9()?;
        progress(&format!(
            "durability ({backend}): kill -9 #{} after {before} acks",
            k + 1
        ));
        let started = Instant::now();
        server.restart().await.context("restart after kill -9")?;
        restart_ms.push(started.elapsed().as_millis());
        let _ = url_tx.send(Some(server.ws_url.clone()));
    }
    tokio::time::sleep(args.cycle()).await;
    let _ = stop_tx.send(true);
    for c in clients {
        c.await.context("durability client task")?;
    }
    let mut acked = std::mem::take(&mut *lock(&acked)?);
    if args.self_test {
        if let Some(first) = acked.first().cloned() {
            acked.push(Acked {
                message_id: "self-test-never-acked".into(),
                seq: 1_000_000,
                ..first.clone()
            });
            acked[0].seq += 1_000_000;
        }
    }
    progress(&format!(
        "durability ({backend}): checking {} acked messages in the database",
        acked.len()
    ));
    let (violations, rows) = verify(&check_url, &sessions, &acked).await?;
    let logs = server.stop();
    let database = match &fresh {
        Some((base, name)) => {
            if violations.is_empty() && !args.keep_database {
                drop_database(base, name).await?;
                format!("{name} (dropped)")
            } else {
                format!("{name} (kept for inspection)")
            }
        }
        None => "SQLite file in the server's temp dir".into(),
    };
    Ok(DurabilityResult {
        backend,
        acked: acked.len(),
        sent: counters.sent.load(Ordering::Relaxed),
        unanswered: counters.unanswered.load(Ordering::Relaxed),
        refused: counters.refused.load(Ordering::Relaxed),
        kills: args.kills,
        restart_ms,
        rows,
        sessions: sessions.len(),
        violations,
        logs,
        database,
    })
}

fn lock<T>(m: &Mutex<T>) -> anyhow::Result<std::sync::MutexGuard<'_, T>> {
    m.lock().map_err(|_| anyhow!("a client task panicked"))
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    unanswered: AtomicU64,
    refused: AtomicU64,
}

struct Client {
    index: usize,
    user: User,
    session: String,
    window: usize,
    url: watch::Receiver<Option<String>>,
    stop: watch::Receiver<bool>,
    acked: Arc<Mutex<Vec<Acked>>>,
    counters: Arc<Counters>,
}

impl Client {
    /// Post until told to stop, reconnecting whenever the server goes away; when told to
    /// stop, wait for the answers still in flight.
    async fn run(mut self) {
        let mut n: u64 = 0;
        loop {
            if *self.stop.borrow() {
                return;
            }
            let current = self.url.borrow().clone();
            let url = match current {
                Some(url) => url,
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.url.changed()).await;
                    continue;
                }
            };
            let mut conn = match ws::connect_ready(&url, &self.user.token).await {
                Ok(ws) => ws,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if ws::join(&mut conn, &self.session).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let (mut sink, mut stream) = conn.split();
            let mut in_flight: HashMap<i64, String> = HashMap::new();
            let mut stopping: Option<tokio::time::Instant> = None;
            let ended_by_stop = loop {
                if stopping.is_none() && *self.stop.borrow() {
                    stopping = Some(tokio::time::Instant::now() + Duration::from_secs(10));
                }
                if stopping.is_some() && in_flight.is_empty() {
                    break true;
                }
                if stopping.is_none() && in_flight.len() < self.window {
                    n += 1;
                    let content =
                        format!("dur {} {n} {}", self.index, uuid::Uuid::new_v4().simple());
                    let frame = format!(
                        r#"{{"type":"message","id":{n},"session_id":"{}","content":"{content}"}}"#,
                        self.session
                    );
                    in_flight.insert(n as i64, content);
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    if sink.send(Message::text(frame)).await.is_err() {
                        break false;
                    }
                    continue;
                }
                let deadline = stopping
                    .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(30));
                let frame = tokio::select! {
                    f = stream.next() => f,
                    _ = tokio::time::sleep_until(deadline) => break stopping.is_some(),
                    _ = self.stop.changed(), if stopping.is_none() => continue,
                };
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break false,
                    Some(Ok(_)) => continue,
                };
                match frame_type(&text) {
                    Some("ack") => {
                        let Some((id, mid, seq)) = ack_fields(&text) else {
                            continue;
                        };
                        if let Some(content) = in_flight.remove(&id) {
                            if let Ok(mut acked) = self.acked.lock() {
                                acked.push(Acked {
                                    session: self.session.clone(),
                                    message_id: mid.to_string(),
                                    seq,
                                    content,
                                });
                            }
                        }
                    }
                    Some("error") => {
                        if let Some(id) = int_field(&text, "id") {
                            if in_flight.remove(&id).is_some() {
                                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    _ => {}
                }
            };
            self.counters
                .unanswered
                .fetch_add(in_flight.len() as u64, Ordering::Relaxed);
            if ended_by_stop {
                let _ = sink.close().await;
                return;
            }
        }
    }
}

/// Read the database directly and hold it against every ack.
pub(crate) async fn verify(
    url: &str,
    sessions: &[String],
    acked: &[Acked],
) -> anyhow::Result<(Vec<String>, usize)> {
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .with_context(|| format!("connect to the database to check it ({url})"))?;
    let ours: HashSet<&str> = sessions.iter().map(String::as_str).collect();
    let rows = sqlx::query("SELECT id, session_id, seq, content FROM messages")
        .fetch_all(&mut conn)
        .await
        .context("read the messages table")?;
    let mut stored: HashMap<String, (String, i64, String)> = HashMap::new();
    let mut seqs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut contents: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        let id: String = row.try_get("id")?;
        let session: String = row.try_get("session_id")?;
        let seq: i64 = row.try_get("seq")?;
        let content: String = row.try_get("content")?;
        if !ours.contains(session.as_str()) {
            continue;
        }
        seqs.entry(session.clone()).or_default().push(seq);
        *contents.entry(content.clone()).or_default() += 1;
        stored.insert(id, (session, seq, content));
    }
    let last_seqs: HashMap<String, i64> = sqlx::query("SELECT id, last_seq FROM sessions")
        .fetch_all(&mut conn)
        .await
        .context("read the sessions table")?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("id")?,
                r.try_get::<i64, _>("last_seq")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let _ = conn.close().await;

    let mut violations = Vec::new();
    let mut note = |v: String| {
        if violations.len() < 50 {
            violations.push(v);
        }
    };
    let mut acked_seqs: HashMap<(&str, i64), &str> = HashMap::new();
    for a in acked {
        match stored.get(&a.message_id) {
            None => note(format!(
                "LOST: acked message {} (session {}, seq {}) is not in the database",
                a.message_id, a.session, a.seq
            )),
            Some((session, seq, content)) => {
                if session != &a.session || *seq != a.seq || content != &a.content {
                    note(format!(
                        "MISMATCH: acked {} as seq {} {:?} in {}; stored seq {seq} {content:?} in {session}",
                        a.message_id, a.seq, a.content, a.session
                    ));
                }
            }
        }
        if contents.get(&a.content).copied().unwrap_or(0) > 1 {
            note(format!(
                "DUPLICATE: {:?} is stored more than once",
                a.content
            ));
        }
        if let Some(other) = acked_seqs.insert((a.session.as_str(), a.seq), &a.message_id) {
            note(format!(
                "SEQ REUSED: seq {} of session {} acked for both {other} and {}",
                a.seq, a.session, a.message_id
            ));
        }
    }
    for (session, list) in &mut seqs {
        list.sort_unstable();
        let unique: HashSet<i64> = list.iter().copied().collect();
        if unique.len() != list.len() {
            note(format!("DUPLICATE SEQ in session {session}"));
        }
        let max = list.last().copied().unwrap_or(0);
        if list.first() != Some(&1) || max as usize != list.len() {
            note(format!(
                "GAP: session {session} has {} messages with seqs 1..={max}",
                list.len()
            ));
        }
        if last_seqs.get(session).copied() != Some(max) {
            note(format!(
                "LAST_SEQ: session {session} says last_seq {:?}, its messages end at {max}",
                last_seqs.get(session)
            ));
        }
    }
    Ok((violations, stored.len()))
}

/// `CREATE DATABASE` a fresh one beside the database `base` names; returns its URL and name.
async fn create_database(base: &str) -> anyhow::Result<(String, String)> {
    create_scratch_database(base, "durability").await
}

/// `CREATE DATABASE slashd_<purpose>_<random>` beside the database `base` names; returns
/// its URL and name ([`drop_database`] removes it).
pub(crate) async fn create_scratch_database(
    base: &str,
    purpose: &str,
) -> anyhow::Result<(String, String)> {
    let name = format!(
        "slashd_{purpose}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .with_context(|| format!("connect to {base}"))?;
    let create = format!("CREATE DATABASE {name}");
    sqlx::raw_sql(&create)
        .execute(&mut conn)
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    let _ = conn.close().await;
    let mut url = reqwest::Url::parse(base).with_context(|| format!("parse {base}"))?;
    url.set_path(&format!("/{name}"));
    Ok((url.to_string(), name))
}

pub(crate) async fn drop_database(base: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .with_context(|| format!("connect to {base}"))?;
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::raw_sql(&drop)
        .execute(&mut conn)
        .await
        .with_context(|| format!("DROP DATABASE {name}"))?;
    let _ = conn.close().await;
    Ok(())
}

/// Fails the run when the check found anything.
fn verdict(r: &DurabilityResult) -> anyhow::Result<()> {
    if r.violations.is_empty() {
        Ok(())
    } else {
        bail!(
            "{}: {} acked messages checked, {} violations",
            r.backend,
            r.acked,
            r.violations.len()
        )
    }
}
