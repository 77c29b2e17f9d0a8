//! Group commit of messages. Every message goes through a writer task — the one on SQLite,
//! its session's lane of up to four on PostgreSQL (`lanes`) — and the posts that arrive
//! while its transaction is in flight are stored together in the next one. Nothing
//! waits for a batch to fill — a batch is whatever is queued when the writer is free — so an
//! idle server writes each post at once, and a busy one pays one commit (one WAL append on
//! SQLite, one fsync on PostgreSQL) for many posts.
//!
//! What holds, batch or not:
//! - seqs are gap-free and unique per session: a batch bumps each session's `last_seq` by
//!   its count of messages in the transaction that stores them, and numbers them from it;
//! - acked means stored: a post learns its seq only after its batch has committed;
//! - one failing post fails only itself: an ended or unknown session is that post's answer,
//!   and a statement the database refuses (a constraint, a trigger, a deadlock) rolls the
//!   batch back and the writer stores each of its posts alone, so the others still go in —
//!   with no seq used up. A connection or pool failure fails the batch;
//! - a post of several messages (a command's invocation with its reply, `append_all`) is
//!   stored whole or not at all, with consecutive seqs: its messages are one session's and
//!   sit side by side in the batch;
//! - order within a session is arrival order (the batch keeps it; see `write_batch`);
//! - a post whose poster has gone (its connection closed) before its batch is formed is not
//!   stored, as before, when dropping the post rolled its transaction back. One that goes
//!   later is stored but not broadcast; clients get it on their next `join` with
//!   `since_seq`, and live ones skip the gap after the hub's short wait.
//!
//! A commit whose outcome is unknown (the connection lost after `COMMIT` was sent) fails
//! its whole batch, although the rows may be stored — the same window one transaction per
//! post had, now as wide as a batch.

use std::sync::{Arc, OnceLock};

use futures_util::FutureExt;
use serde_json::Value;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::messages::{metadata_size, AppendError, Message, MessageRole, NewMessage};
use super::{new_id, Backend};
use crate::time_fmt::now_ms;

/// Most messages one transaction stores — give or take the last post's: a post of several
/// messages is never split across transactions, so a batch may hold `MAX_POST - 1` more.
const MAX_BATCH: usize = 64;
/// Most messages one post stores together (a command's invocation and its reply).
const MAX_POST: usize = 2;
/// About the most bytes of content and metadata one transaction stores (a batch always
/// takes its first message, whatever its size).
const MAX_BATCH_BYTES: usize = 1 << 20;
/// Posts queued for the writer, shared out among its lanes; when full, posters wait
/// (backpressure, not loss).
const QUEUE: usize = 4096;

/// Told the size of each batch written (the server's metrics).
pub type BatchObserver = Box<dyn Fn(usize) + Send + Sync>;

struct Owned {
    id: Option<String>,
    session_id: String,
    role: MessageRole,
    user_id: Option<String>,
    content: String,
    metadata: Value,
}

impl Owned {
    fn new(new: NewMessage<'_>) -> Owned {
        Owned {
            id: new.id.map(str::to_string),
            session_id: new.session_id.to_string(),
            role: new.role,
            user_id: new.user_id.map(str::to_string),
            content: new.content.to_string(),
            metadata: new.metadata,
        }
    }

    fn bytes(&self) -> usize {
        self.content.len() + metadata_size(&self.metadata) + 64
    }

    /// The stored message, from what was posted and what the database gave it.
    fn into_message(self, stored: Stored) -> Message {
        Message {
            id: stored.id,
            session_id: self.session_id,
            seq: stored.seq,
            role: self.role,
            user_id: self.user_id,
            content: self.content,
            metadata: self.metadata,
            created_at: stored.created_at,
        }
    }
}

/// What the database gave a stored message.
#[derive(Debug)]
struct Stored {
    id: String,
    seq: i64,
    created_at: i64,
}

/// One post: one message, or several of one session stored together.
struct Pending {
    news: Vec<Owned>,
    done: oneshot::Sender<Result<Vec<Message>, AppendError>>,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.news
            .iter()
            .map(Owned::bytes)
            .fold(0, usize::saturating_add)
    }
}

/// The queues in front of the writer tasks: one per lane, each session always in the same.
#[derive(Clone)]
pub(super) struct Writer {
    lanes: Arc<[mpsc::Sender<Pending>]>,
    observer: Arc<OnceLock<BatchObserver>>,
}

/// How many writers run side by side. SQLite has one writer connection whatever we do.
/// PostgreSQL takes transactions on many connections at once, and a batch's time is mostly
/// waiting (its round trips and the commit's flush): with one writer a node stored what
/// one transaction at a time allows, with the server, the database and the machine half
/// idle. Each lane holds a connection while it writes: one lane per four connections
/// leaves the pool at least three quarters for everyone else once it has four.
fn lanes(backend: Backend, max_connections: u32) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => usize::try_from(max_connections / 4)
            .unwrap_or(1)
            .clamp(1, 4),
    }
}

impl Writer {
    pub(super) fn start(pool: AnyPool, backend: Backend, max_connections: u32) -> Writer {
        let observer = Arc::new(OnceLock::new());
        let count = lanes(backend, max_connections);
        let lanes = (0..count)
            .map(|_| {
                let (queue, pending) = mpsc::channel(QUEUE / count);
                tokio::spawn(run(pool.clone(), backend, pending, observer.clone()));
                queue
            })
            .collect();
        Writer { lanes, observer }
    }

    /// A session's lane: its messages are stored one batch after another, in the order
    /// they were posted, as with one writer. Lanes never share a session, so their
    /// batches do not wait on each other's row locks.
    fn lane(&self, session_id: &str) -> &mpsc::Sender<Pending> {
        use std::hash::{Hash, Hasher};
        if let [only] = &self.lanes[..] {
            return only;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        session_id.hash(&mut hasher);
        let lane = usize::try_from(hasher.finish() % self.lanes.len() as u64).unwrap_or(0);
        &self.lanes[lane]
    }

    pub(super) fn observe(&self, observer: BatchObserver) {
        let _ = self.observer.set(observer);
    }

    pub(super) async fn append(&self, new: NewMessage<'_>) -> Result<Message, AppendError> {
        let mut stored = self.append_all(vec![new]).await?;
        stored.pop().ok_or(AppendError::NoSession)
    }

    /// Messages of one session, stored in one transaction with consecutive seqs, or none
    /// of them.
    pub(super) async fn append_all(
        &self,
        news: Vec<NewMessage<'_>>,
    ) -> Result<Vec<Message>, AppendError> {
        let Some(first) = news.first() else {
            return Ok(Vec::new());
        };
        if news.len() > MAX_POST || news.iter().any(|n| n.session_id != first.session_id) {
            return Err(AppendError::Db(sqlx::Error::Protocol(format!(
                "messages stored together must share a session and be at most {MAX_POST}"
            ))));
        }
        let lane = self.lane(first.session_id);
        let (done, answer) = oneshot::channel();
        let news = news.into_iter().map(Owned::new).collect();
        lane.send(Pending { news, done })
            .await
            .map_err(|_| AppendError::Db(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| AppendError::Db(sqlx::Error::PoolClosed))?
    }
}

async fn run(
    pool: AnyPool,
    backend: Backend,
    mut pending: mpsc::Receiver<Pending>,
    observer: Arc<OnceLock<BatchObserver>>,
) {
    while let Some(first) = pending.recv().await {
        let mut bytes = first.bytes();
        let mut messages = first.news.len();
        let mut batch = vec![first];
        while messages < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match pending.try_recv() {
                Ok(next) => {
                    bytes = bytes.saturating_add(next.bytes());
                    messages = messages.saturating_add(next.news.len());
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        // Nobody would broadcast these (see the module comment).
        batch.retain(|p| !p.done.is_closed());
        if batch.is_empty() {
            continue;
        }
        let posts: Vec<&[Owned]> = batch.iter().map(|p| p.news.as_slice()).collect();
        if let Some(observe) = observer.get() {
            observe(posts.iter().map(|p| p.len()).sum());
        }
        // A panic while writing fails this batch, not every later post.
        let results = std::panic::AssertUnwindSafe(write(&pool, backend, &posts))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!(posts = posts.len(), "writing a batch of messages panicked");
                posts
                    .iter()
                    .map(|_| Err(AppendError::Db(sqlx::Error::WorkerCrashed)))
                    .collect()
            });
        for (pending, result) in batch.into_iter().zip(results) {
            let answer = result.map(|stored| {
                pending
                    .news
                    .into_iter()
                    .zip(stored)
                    .map(|(new, stored)| new.into_message(stored))
                    .collect()
            });
            // A poster that went away (its connection closed) just isn't told.
            let _ = pending.done.send(answer);
        }
    }
}

/// How writing a batch went wrong.
enum BatchError {
    /// A statement failed; the transaction was rolled back and nothing was stored.
    Statement(sqlx::Error),
    /// The commit failed: whether it took effect is unknown (a connection lost after
    /// `COMMIT` was sent), so nothing is retried.
    Commit(sqlx::Error),
}

/// One answer per post, in order: all its messages stored, or why none was.
async fn write(
    pool: &AnyPool,
    backend: Backend,
    posts: &[&[Owned]],
) -> Vec<Result<Vec<Stored>, AppendError>> {
    let batch: Vec<&Owned> = posts.iter().flat_map(|p| p.iter()).collect();
    match write_batch(pool, backend, &batch).await {
        Ok(results) => per_post(posts, results),
        Err(BatchError::Statement(sqlx::Error::Database(refused)))
            if posts.len() > 1 && !is_lock_timeout(refused.as_ref()) =>
        {
            tracing::debug!(error = %refused, "a batch of messages was refused; storing each post alone");
            // Store each post alone: only the one the database refuses fails.
            let mut results = Vec::with_capacity(posts.len());
            for post in posts {
                let alone: Vec<&Owned> = post.iter().collect();
                results.push(match write_batch(pool, backend, &alone).await {
                    Ok(stored) => per_post(&[*post], stored)
                        .pop()
                        .unwrap_or(Err(AppendError::NoSession)),
                    Err(BatchError::Statement(e) | BatchError::Commit(e)) => {
                        Err(AppendError::Db(e))
                    }
                });
            }
            results
        }
        Err(BatchError::Statement(e)) => {
            // One error, told to each poster (`sqlx::Error` is not `Clone`).
            let text = e.to_string();
            let mut first = Some(e);
            posts
                .iter()
                .map(|_| {
                    Err(AppendError::Db(
                        first
                            .take()
                            .unwrap_or_else(|| sqlx::Error::Protocol(text.clone())),
                    ))
                })
                .collect()
        }
        Err(BatchError::Commit(e)) => {
            let text = e.to_string();
            tracing::error!(error = %text, posts = posts.len(), "committing a batch of messages failed");
            posts
                .iter()
                .map(|_| Err(AppendError::Db(sqlx::Error::Protocol(text.clone()))))
                .collect()
        }
    }
}

/// The per-message results of a committed batch, gathered per post. A post's messages are
/// one session's, so they were all stored or all refused alike.
fn per_post(
    posts: &[&[Owned]],
    results: Vec<Result<Stored, AppendError>>,
) -> Vec<Result<Vec<Stored>, AppendError>> {
    let mut results = results.into_iter();
    posts
        .iter()
        .map(|post| {
            let mine: Vec<_> = results.by_ref().take(post.len()).collect();
            if mine.len() < post.len() {
                return Err(AppendError::NoSession);
            }
            mine.into_iter().collect()
        })
        .collect()
}

/// PostgreSQL's `lock_timeout` fired: storing each alone would wait that long again, once
/// per message.
fn is_lock_timeout(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.code().as_deref() == Some("55P03")
}

/// Store a batch in one transaction, in a handful of statements whatever its size: each
/// session's `last_seq` is bumped by its count of messages, the messages are numbered from
/// it (the writer is the only writer of `last_seq`, inside the transaction that holds the
/// rows), and one multi-row `INSERT` stores them. Per message that is no round trip at
/// all, where a statement per message made sqlx's hop to its SQLite worker thread (or a
/// PostgreSQL round trip) the cost of each post.
///
/// On SQLite that is `BEGIN`, the `UPDATE`, the `INSERT` and `COMMIT` (each a hop to sqlx's
/// worker). On PostgreSQL, where each is a round trip to the server, it is three: `BEGIN`
/// with the lock timeout, one statement that locks, bumps and inserts (`pg_store_sql`),
/// and `COMMIT` — and the pool's liveness ping when the connection is taken (sqlx's
/// `test_before_acquire`, kept: after a PostgreSQL restart it reconnects rather than fail a
/// batch per dead connection).
///
/// Each batch size is a statement of its own (up to 65 of each); sqlx caches them per
/// connection (`Store::connect` raises PostgreSQL's cache for that, where a miss is a round
/// trip; on SQLite a miss is a local prepare).
async fn write_batch(
    pool: &AnyPool,
    backend: Backend,
    batch: &[&Owned],
) -> Result<Vec<Result<Stored, AppendError>>, BatchError> {
    let groups = by_session(batch);
    let now = now_ms();
    let mut ids: Vec<String> = batch
        .iter()
        .map(|new| new.id.clone().unwrap_or_else(new_id))
        .collect();
    let mut tx = match backend {
        // A session row locked elsewhere for long (a stuck peer) fails this batch rather
        // than holding every post of the node behind it. One round trip with the `BEGIN`.
        Backend::Postgres => {
            pool.begin_with("BEGIN; SET LOCAL lock_timeout = '5s'")
                .await
        }
        Backend::Sqlite => pool.begin().await,
    }
    .map_err(BatchError::Statement)?;
    let last_seqs = match backend {
        Backend::Postgres => pg_store(&mut tx, batch, &groups, &ids, now).await?,
        // The write comes first so SQLite takes its write lock at once (no deferred-lock
        // upgrade that could fail with SQLITE_BUSY).
        Backend::Sqlite => bump(&mut tx, &groups, now).await?,
    };

    let mut results: Vec<Option<Result<Stored, AppendError>>> =
        (0..batch.len()).map(|_| None).collect();
    let mut refused = Vec::new();
    for (session, members) in &groups {
        let Some(&last) = last_seqs.get(*session) else {
            refused.push((*session, members));
            continue;
        };
        let count = i64::try_from(members.len()).unwrap_or(i64::MAX);
        let first = last.saturating_sub(count).saturating_add(1);
        for (seq, &i) in (first..).zip(members.iter()) {
            results[i] = Some(Ok(Stored {
                // Each message is numbered once: its id moves to the answer.
                id: std::mem::take(&mut ids[i]),
                seq,
                created_at: now,
            }));
        }
    }
    // Not bumped: an ended session or none at all, told apart for the poster.
    for (session, members) in refused {
        let exists = sqlx::query("SELECT 1 FROM sessions WHERE id = $1")
            .bind(session)
            .fetch_optional(&mut *tx)
            .await
            .map_err(BatchError::Statement)?;
        for &i in members {
            results[i] = Some(Err(match exists {
                None => AppendError::NoSession,
                Some(_) => AppendError::Ended,
            }));
        }
    }

    if backend == Backend::Sqlite {
        sqlite_insert(&mut tx, batch, &results, now).await?;
    }
    tx.commit().await.map_err(BatchError::Commit)?;
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or(Err(AppendError::NoSession)))
        .collect())
}

/// Each session's `last_seq` after its bump, for the active sessions among them.
type LastSeqs = std::collections::HashMap<String, i64>;

/// SQLite: bump the active sessions' `last_seq` by their counts of messages.
async fn bump(
    tx: &mut sqlx::AnyConnection,
    groups: &[(&str, Vec<usize>)],
    now: i64,
) -> Result<LastSeqs, BatchError> {
    let bump = bump_sql(groups.len());
    let mut query = sqlx::query_as::<_, (String, i64)>(&bump).bind(now);
    for (session, members) in groups {
        query = query
            .bind(*session)
            .bind(i64::try_from(members.len()).unwrap_or(i64::MAX));
    }
    let bumped = query.fetch_all(tx).await.map_err(BatchError::Statement)?;
    Ok(bumped.into_iter().collect())
}

/// SQLite: insert the messages that were numbered.
async fn sqlite_insert(
    tx: &mut sqlx::AnyConnection,
    batch: &[&Owned],
    results: &[Option<Result<Stored, AppendError>>],
    now: i64,
) -> Result<(), BatchError> {
    let rows: Vec<(&Owned, &Stored)> = batch
        .iter()
        .zip(results)
        .filter_map(|(new, r)| match r {
            Some(Ok(stored)) => Some((*new, stored)),
            _ => None,
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let sql = insert_sql(rows.len());
    let mut insert = sqlx::query(&sql);
    for (new, stored) in rows {
        insert = insert
            .bind(stored.id.as_str())
            .bind(new.session_id.as_str())
            .bind(stored.seq)
            .bind(new.role.as_str())
            .bind(new.user_id.as_deref())
            .bind(new.content.as_str())
            .bind(new.metadata.to_string())
            .bind(now);
    }
    insert.execute(tx).await.map_err(BatchError::Statement)?;
    Ok(())
}

/// PostgreSQL: lock, bump and insert in one statement (`pg_store_sql`); the messages of a
/// session that is not active are not inserted, and its id is missing from the answer.
async fn pg_store(
    tx: &mut sqlx::AnyConnection,
    batch: &[&Owned],
    groups: &[(&str, Vec<usize>)],
    ids: &[String],
    now: i64,
) -> Result<LastSeqs, BatchError> {
    // Each message's place among its session's in this batch, from 1.
    let mut ordinal = vec![0_i64; batch.len()];
    for (_, members) in groups {
        for (k, &i) in (1_i64..).zip(members) {
            ordinal[i] = k;
        }
    }
    let sql = pg_store_sql(batch.len());
    let mut query = sqlx::query_as::<_, (String, i64)>(&sql).bind(now);
    for ((new, id), k) in batch.iter().zip(ids).zip(ordinal) {
        query = query
            .bind(id.as_str())
            .bind(new.session_id.as_str())
            .bind(k)
            .bind(new.role.as_str())
            .bind(new.user_id.as_deref())
            .bind(new.content.as_str())
            .bind(new.metadata.to_string());
    }
    let bumped = query.fetch_all(tx).await.map_err(BatchError::Statement)?;
    Ok(bumped.into_iter().collect())
}

/// The batch's sessions in the order of their ids, each with the indices of its messages
/// in arrival order.
fn by_session<'a>(batch: &[&'a Owned]) -> Vec<(&'a str, Vec<usize>)> {
    let mut groups: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, new) in batch.iter().enumerate() {
        groups.entry(new.session_id.as_str()).or_default().push(i);
    }
    groups.into_iter().collect()
}

/// `$from, $from+1, …`, `count` of them.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bump `sessions` active sessions' `last_seq`: `$1` is the time, then (id, count) pairs.
fn bump_sql(sessions: usize) -> String {
    let cases: String = (0..sessions)
        .map(|k| format!(" WHEN ${} THEN CAST(${} AS BIGINT)", 2 + 2 * k, 3 + 2 * k))
        .collect();
    let ids = (0..sessions)
        .map(|k| format!("${}", 2 + 2 * k))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "UPDATE sessions SET last_seq = last_seq + CASE id{cases} END, last_activity_at = $1 \
         WHERE status = 'active' AND id IN ({ids}) RETURNING id, last_seq"
    )
}

/// Insert `rows` messages, eight parameters each.
fn insert_sql(rows: usize) -> String {
    let values = (0..rows)
        .map(|r| format!("({})", placeholders(1 + 8 * r, 8)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO messages (id, session_id, seq, role, user_id, content, metadata, \
         created_at) VALUES {values}"
    )
}

/// PostgreSQL's whole write of `rows` messages in one statement, so one round trip: `$1`
/// is the time, then seven parameters a message (id, session, its place among its
/// session's messages in the batch, role, user, content, metadata).
///
/// - `locked` takes the sessions' rows in the order of their ids, so two nodes' batches
///   over the same sessions cannot deadlock (an `UPDATE … IN (…)` locks rows in whatever
///   order its plan visits them), and `bumped` updates only rows that came out of it.
///   `NO KEY`: the lock the `UPDATE` takes anyway, which does not hold back a member being
///   added to the session (a foreign key's `KEY SHARE`) the way `FOR UPDATE` would.
/// - `bumped` bumps the active ones; under READ COMMITTED a row another node changed since
///   this statement's snapshot is re-read before it is updated, so the count is added to
///   the newest `last_seq`.
/// - `ins` numbers each message from its session's new `last_seq` (the same numbers
///   `write_batch` hands the posters) and inserts those of bumped sessions only.
fn pg_store_sql(rows: usize) -> String {
    const TYPES: [&str; 7] = ["TEXT", "TEXT", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT"];
    let values = (0..rows)
        .map(|r| {
            let row = (2 + TYPES.len() * r..)
                .zip(TYPES)
                .map(|(n, ty)| format!("CAST(${n} AS {ty})"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH m (id, session_id, k, role, user_id, content, metadata) AS (VALUES {values}), \
         counts AS (SELECT session_id, count(*) AS n FROM m GROUP BY session_id), \
         locked AS MATERIALIZED (SELECT id FROM sessions WHERE id IN (SELECT session_id FROM counts) \
           ORDER BY id FOR NO KEY UPDATE), \
         bumped AS (UPDATE sessions s SET last_seq = s.last_seq + c.n, last_activity_at = $1 \
           FROM counts c WHERE s.id = c.session_id AND s.status = 'active' \
           AND s.id IN (SELECT id FROM locked) RETURNING s.id, s.last_seq, c.n), \
         ins AS (INSERT INTO messages (id, session_id, seq, role, user_id, content, metadata, created_at) \
           SELECT m.id, m.session_id, b.last_seq - b.n + m.k, m.role, m.user_id, m.content, \
           m.metadata, $1 FROM m JOIN bumped b ON b.id = m.session_id) \
         SELECT id, last_seq FROM bumped"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use slashd_plugin_api::Role;
    use sqlx::{Connection, Row};

    fn msg(session: &str, content: &str) -> Owned {
        Owned {
            id: None,
            session_id: session.into(),
            role: MessageRole::User,
            user_id: None,
            content: content.into(),
            metadata: Value::Null,
        }
    }

    async fn session(store: &Store, owner: &str) -> String {
        let session = store
            .create_session(owner, "t", &serde_json::json!({}), 1000)
            .await
            .unwrap()
            .unwrap();
        session.id
    }

    async fn contents(store: &Store, session: &str) -> Vec<(i64, String)> {
        sqlx::query("SELECT seq, content FROM messages WHERE session_id = $1 ORDER BY seq")
            .bind(session)
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
            .collect()
    }

    fn seqs(results: &[Result<Stored, AppendError>]) -> Vec<Option<i64>> {
        results
            .iter()
            .map(|r| r.as_ref().ok().map(|m| m.seq))
            .collect()
    }

    /// A batch of one-message posts.
    async fn write_each(
        pool: &AnyPool,
        backend: Backend,
        batch: &[Owned],
    ) -> Vec<Result<Stored, AppendError>> {
        let posts: Vec<&[Owned]> = batch.chunks(1).collect();
        write(pool, backend, &posts)
            .await
            .into_iter()
            .map(|r| r.map(|mut one| one.remove(0)))
            .collect()
    }

    fn post_seqs(results: &[Result<Vec<Stored>, AppendError>]) -> Vec<Option<Vec<i64>>> {
        results
            .iter()
            .map(|r| r.as_ref().ok().map(|m| m.iter().map(|s| s.seq).collect()))
            .collect()
    }

    /// Post `content` into `session` through the writer's queue, as a poster does.
    async fn post_text(store: &Store, session: &str, content: &str) -> Message {
        let new = NewMessage {
            id: None,
            session_id: session,
            role: MessageRole::User,
            user_id: None,
            content,
            metadata: Value::Null,
        };
        store.append_message(new).await.unwrap()
    }

    /// The id of a message already stored in `session`.
    async fn stored_id(store: &Store, session: &str) -> String {
        sqlx::query("SELECT id FROM messages WHERE session_id = $1 ORDER BY seq LIMIT 1")
            .bind(session)
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get::<String, _>(0)
    }

    /// The batch edge cases, on one backend.
    async fn batch_edges(store: Store) {
        let owner = store
            .create_user("owner", Role::Viewer, None)
            .await
            .unwrap();
        let (a, b) = (
            session(&store, &owner.id).await,
            session(&store, &owner.id).await,
        );
        let pool = store.pool().clone();

        // A batch mixing sessions: each session's messages keep their order and seqs.
        let batch = [
            msg(&a, "a1"),
            msg(&b, "b1"),
            msg(&a, "a2"),
            msg(&b, "b2"),
            msg(&a, "a3"),
        ];
        let results = write_each(&pool, store.backend(), &batch).await;
        assert_eq!(
            seqs(&results),
            [Some(1), Some(1), Some(2), Some(2), Some(3)]
        );
        let stored = contents(&store, &a).await;
        assert_eq!(
            stored,
            [(1, "a1".into()), (2, "a2".into()), (3, "a3".into())]
        );

        // An ended session and a missing one inside a batch fail alone.
        let ended = session(&store, &owner.id).await;
        store.end_session(&ended).await.unwrap();
        let batch = [
            msg(&a, "a4"),
            msg(&ended, "e"),
            msg("no-such-session", "x"),
            msg(&b, "b3"),
        ];
        let results = write_each(&pool, store.backend(), &batch).await;
        assert_eq!(seqs(&results), [Some(4), None, None, Some(3)]);
        assert!(
            matches!(results[1], Err(AppendError::Ended)),
            "{:?}",
            results[1]
        );
        assert!(
            matches!(results[2], Err(AppendError::NoSession)),
            "{:?}",
            results[2]
        );
        assert!(contents(&store, &ended).await.is_empty());

        // A statement that fails (a duplicate id) fails only its message, uses no seq, and
        // the rest of its batch is stored.
        let taken = results[0].as_ref().unwrap().id.clone();
        let mut duplicate = msg(&a, "dup");
        duplicate.id = Some(taken);
        let batch = [msg(&a, "a5"), duplicate, msg(&b, "b4"), msg(&a, "a6")];
        let results = write_each(&pool, store.backend(), &batch).await;
        assert_eq!(seqs(&results), [Some(5), None, Some(4), Some(6)]);
        assert!(
            matches!(results[1], Err(AppendError::Db(_))),
            "{:?}",
            results[1]
        );
        let stored: Vec<i64> = contents(&store, &a).await.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            stored,
            (1..=6).collect::<Vec<_>>(),
            "gap-free after the failure"
        );

        // A post of two messages (a command and its reply) amid one-message posts of the
        // same session gets consecutive seqs; one whose second message the database refuses
        // stores neither, uses no seq, and fails alone.
        let pair = [msg(&a, "cmd"), msg(&a, "reply")];
        let mut bad_pair = [msg(&b, "cmd2"), msg(&b, "dup2")];
        bad_pair[1].id = Some(stored_id(&store, &b).await);
        let (one, other) = ([msg(&a, "a7")], [msg(&b, "b5")]);
        let posts: [&[Owned]; 4] = [&one, &pair, &bad_pair, &other];
        let results = write(&pool, store.backend(), &posts).await;
        assert_eq!(
            post_seqs(&results),
            [Some(vec![7]), Some(vec![8, 9]), None, Some(vec![5])]
        );
        assert!(
            matches!(results[2], Err(AppendError::Db(_))),
            "{:?}",
            results[2]
        );
        let b_stored: Vec<String> = contents(&store, &b)
            .await
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(
            b_stored,
            ["b1", "b2", "b3", "b4", "b5"],
            "no half of the refused pair"
        );
        // An ended session refuses a pair whole, like a single message.
        let ended_pair = [msg(&ended, "cmd3"), msg(&ended, "reply3")];
        let results = write(&pool, store.backend(), &[&ended_pair[..], &one[..]]).await;
        assert!(
            matches!(results[0], Err(AppendError::Ended)),
            "{:?}",
            results[0]
        );
        assert_eq!(post_seqs(&results)[1], Some(vec![10]));

        // A post of more than a command's two messages, or of two sessions, is refused
        // before it is queued.
        fn new_in(session: &str) -> NewMessage<'_> {
            NewMessage {
                id: None,
                session_id: session,
                role: MessageRole::User,
                user_id: None,
                content: "x",
                metadata: Value::Null,
            }
        }
        let too_many = (0..3).map(|_| new_in(&a)).collect();
        for post in [too_many, vec![new_in(&a), new_in(&b)]] {
            assert!(matches!(
                store.append_messages(post).await,
                Err(AppendError::Db(sqlx::Error::Protocol(_)))
            ));
        }

        // Concurrent posts through the queue are committed in batches, every seq once.
        let batches = Arc::new(std::sync::Mutex::new(Vec::new()));
        store.observe_batches({
            let batches = batches.clone();
            move |n| batches.lock().unwrap().push(n)
        });
        let posts: Vec<_> = (0..200)
            .map(|i| {
                let (store, session) = (
                    store.clone(),
                    if i % 2 == 0 { a.clone() } else { b.clone() },
                );
                tokio::spawn(async move {
                    let content = format!("m{i}");
                    let stored = post_text(&store, &session, &content).await;
                    assert_eq!(stored.content, content, "each poster gets its own answer");
                    (stored.session_id, stored.seq, stored.content)
                })
            })
            .collect();
        let mut acked = Vec::new();
        for post in posts {
            acked.push(post.await.unwrap());
        }
        for (session, seq, content) in &acked {
            let row = contents(&store, session).await;
            assert!(
                row.contains(&(*seq, content.clone())),
                "{seq} {content} not stored"
            );
        }
        let mut acked_seqs: Vec<_> = acked.iter().map(|(s, q, _)| (s.clone(), *q)).collect();
        acked_seqs.sort();
        acked_seqs.dedup();
        assert_eq!(acked_seqs.len(), 200, "every seq once");
        let seen = batches.lock().unwrap().clone();
        assert_eq!(seen.iter().sum::<usize>(), 200);
        assert!(seen.iter().any(|&n| n > 1), "no batch formed: {seen:?}");
        assert!(seen.iter().all(|&n| n <= MAX_BATCH), "{seen:?}");
        let a_seqs: Vec<i64> = contents(&store, &a).await.iter().map(|(s, _)| *s).collect();
        assert_eq!(a_seqs, (1..=110).collect::<Vec<_>>());

        // A full batch over many sessions (the most parameters one statement binds): each
        // session numbered from 1 in its arrival order.
        let mut many = Vec::new();
        for _ in 0..16 {
            many.push(session(&store, &owner.id).await);
        }
        let batch: Vec<Owned> = (0..MAX_BATCH)
            .map(|i| msg(&many[i % many.len()], &format!("f{i}")))
            .collect();
        // `write_batch`, not `write`: storing each alone would give the same seqs, and this
        // is about the one-transaction statements.
        let results =
            match write_batch(&pool, store.backend(), &batch.iter().collect::<Vec<_>>()).await {
                Ok(results) => results,
                Err(BatchError::Statement(e) | BatchError::Commit(e)) => {
                    panic!("the batch failed: {e}")
                }
            };
        let expected: Vec<Option<i64>> = (0..MAX_BATCH)
            .map(|i| Some((i / many.len() + 1) as i64))
            .collect();
        assert_eq!(seqs(&results), expected);
        let first: Vec<String> = contents(&store, &many[0])
            .await
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(first, ["f0", "f16", "f32", "f48"]);
    }

    #[test]
    fn lanes_by_database_and_pool() {
        use Backend::{Postgres, Sqlite};
        for (backend, max_connections, expected) in [
            (Sqlite, 16, 1),
            (Sqlite, 100, 1),
            (Postgres, 1, 1),
            (Postgres, 4, 1),
            (Postgres, 8, 2),
            (Postgres, 16, 4),
            (Postgres, 1000, 4),
        ] {
            assert_eq!(
                lanes(backend, max_connections),
                expected,
                "{backend:?} with {max_connections} connections"
            );
        }
    }

    #[tokio::test]
    async fn batch_edges_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Store::connect(&url, 4).await.unwrap();
        store.migrate().await.unwrap();
        batch_edges(store).await;
    }

    #[tokio::test]
    async fn batch_edges_on_postgres() {
        on_postgres(|url| async move {
            let store = Store::connect(&url, 4).await.unwrap();
            store.migrate().await.unwrap();
            batch_edges(store.clone()).await;
            store.close().await;
        })
        .await;
    }

    /// Two nodes' writers on one PostgreSQL database (four lanes each), posting into the
    /// same sessions at once: each batch's statement waits for the other node's row locks
    /// and adds its counts to the newest `last_seq`, so every seq is handed out once and
    /// none is skipped.
    #[tokio::test]
    async fn two_nodes_number_the_same_sessions_on_postgres() {
        on_postgres(|url| async move {
            let one = Store::connect(&url, 16).await.unwrap();
            one.migrate().await.unwrap();
            let two = Store::connect(&url, 16).await.unwrap();
            assert_eq!(one.writer.lanes.len(), 4);
            let owner = one.create_user("owner", Role::Viewer, None).await.unwrap();
            let mut sessions = Vec::new();
            for _ in 0..8 {
                sessions.push(session(&one, &owner.id).await);
            }
            let posts: Vec<_> = (0..400)
                .map(|i| {
                    let store = if i % 2 == 0 { one.clone() } else { two.clone() };
                    let session = sessions[(i / 2) % sessions.len()].clone();
                    tokio::spawn(async move {
                        let stored = post_text(&store, &session, &format!("m{i}")).await;
                        (stored.session_id, stored.seq, stored.content)
                    })
                })
                .collect();
            let mut acked = Vec::new();
            for post in posts {
                acked.push(post.await.unwrap());
            }
            for session in &sessions {
                let stored = contents(&one, session).await;
                let seqs: Vec<i64> = stored.iter().map(|(s, _)| *s).collect();
                assert_eq!(seqs, (1..=50).collect::<Vec<_>>(), "gap-free, each once");
                for (_, seq, content) in acked.iter().filter(|(s, ..)| s == session) {
                    assert!(stored.contains(&(*seq, content.clone())), "{seq} {content}");
                }
            }
            one.close().await;
            two.close().await;
        })
        .await;
    }

    /// Run `check` against a scratch PostgreSQL database, dropped even when a check fails.
    async fn on_postgres<F, Fut>(check: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let admin = std::env::var("SLASHD_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("slashd_unit_{}", uuid::Uuid::new_v4().simple());
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        let outcome = tokio::spawn(check(format!("{base}/{name}"))).await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .unwrap();
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic.into_panic());
        }
    }
}
