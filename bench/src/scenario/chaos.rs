//! `chaos`: the client side of `scripts/cluster-chaos.sh`. Clients spread over the cluster's
//! nodes post (recording every `ack`) and read their sessions while the script breaks the
//! network, Redis and the nodes around them. A client whose connection dies or goes quiet
//! moves to the next node and re-joins with `since_seq`; a seq that jumps ahead is a gap it
//! fills over REST (`after_seq`), as docs/protocol.md tells a client to. At the end every
//! client reads what is left after its last seq, and the run checks:
//!
//! - the database (read directly): every acked message stored once, with its seq and
//!   content, seqs gap-free in every session (`durability::verify`);
//! - every client: what reached it live came in seq order with nothing twice, and live,
//!   recovered and filled together are every message of its session from its first join on;
//! - presence: once every client has left, a join on every running node lists nobody else
//!   (within `--presence-secs`): what a killed node or a partition left behind lapsed.
//!
//! It exits non-zero on any violation. `--self-test` breaks one guarantee on purpose (a
//! message one client saw is forgotten, an ack is made up) and must fail.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::durability::{verify, Acked};
use crate::flags::seconds;
use crate::report::progress;
use crate::ws::{self, ack_fields, frame_type, int_field};

#[derive(clap::Args)]
pub struct Args {
    /// The nodes' HTTP base URLs, comma-separated (http://10.88.0.11:8080,…).
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<String>,
    /// The cluster's PostgreSQL, read at the end to check every ack.
    #[arg(long)]
    pub database_url: String,
    /// Users the script created (`<prefix>-0` …), all with --password.
    #[arg(long, default_value = "chaos")]
    pub user_prefix: String,
    #[arg(long, default_value_t = 6)]
    pub users: usize,
    #[arg(long, default_value = "chaos-password-123")]
    pub password: String,
    /// Clients (each posts in one session, from one node at a time).
    #[arg(long, default_value_t = 12)]
    pub clients: usize,
    #[arg(long, default_value_t = 3)]
    pub sessions: usize,
    /// Messages per second each client posts.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Seconds of posting (the script injects its faults meanwhile).
    #[arg(long, default_value_t = 60.0, value_parser = seconds)]
    pub secs: f64,
    /// Longest presence may take to converge after the last fault.
    #[arg(long, default_value_t = 40.0, value_parser = seconds)]
    pub presence_secs: f64,
    /// Check the checker: forget one message a client saw and add an ack never given.
    #[arg(long)]
    pub self_test: bool,
}

/// A connection that hears nothing (not even a pong) for this long is dead.
const QUIET: Duration = Duration::from_secs(6);
const PING_EVERY: Duration = Duration::from_secs(2);

pub async fn run(args: Args) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let rest = Rest {
        http: http.clone(),
        nodes: args.nodes.clone(),
    };
    let mut users = Vec::new();
    for i in 0..args.users.max(2) {
        users.push(
            rest.login(&format!("{}-{i}", args.user_prefix), &args.password)
                .await?,
        );
    }
    let mut sessions = Vec::new();
    for s in 0..args.sessions.max(1) {
        let owner = &users[0];
        let id = rest.session(owner, &format!("chaos {s}")).await?;
        for u in users.iter().skip(1) {
            rest.add_member(owner, &id, u).await?;
        }
        sessions.push(id);
    }
    progress(&format!(
        "chaos: {} clients on {} nodes, {} sessions, {} msg/s each, {:.0} s",
        args.clients,
        args.nodes.len(),
        sessions.len(),
        args.rate,
        args.secs
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let counters = Arc::new(Counters::default());
    let mut tasks = Vec::new();
    for c in 0..args.clients.max(1) {
        let client = Client {
            index: c,
            user: users[c % users.len()].clone(),
            session: sessions[c % sessions.len()].clone(),
            rest: rest.clone(),
            node: c % args.nodes.len(),
            interval: Duration::from_secs_f64(1.0 / args.rate.max(0.1)),
            stop: stop_rx.clone(),
            acked: acked.clone(),
            counters: counters.clone(),
            seen: Seen::default(),
        };
        tasks.push(tokio::spawn(client.run()));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.secs)).await;
    let _ = stop_tx.send(true);
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.context("a chaos client panicked")?);
    }
    let mut acked: Vec<Acked> = std::mem::take(&mut *acked.lock().map_err(|_| anyhow!("lock"))?);
    if args.self_test {
        if let Some(first) = acked.first().cloned() {
            acked.push(Acked {
                message_id: "self-test-never-acked".into(),
                seq: 1_000_000,
                ..first
            });
        }
        if let Some(c) = clients.iter_mut().find(|c| c.seen.live.len() > 2) {
            let forgotten = c.seen.live.remove(1);
            c.seen.all.remove(&forgotten);
        }
    }

    let mut violations = Vec::new();
    let mut recovered = 0;
    let mut filled = 0;
    let mut reconnects = 0;
    let mut last_read = 0;
    for c in &clients {
        recovered += c.seen.recovered;
        filled += c.seen.filled;
        last_read += c.seen.last_read;
        reconnects += c.reconnects;
        violations.extend(c.check());
    }
    settle(&args.database_url).await?;
    let (db_violations, rows) = verify(&args.database_url, &sessions, &acked).await?;
    violations.extend(db_violations);
    let presence = presence_converges(&args, &rest, &users, &sessions).await;
    violations.extend(presence.err());

    println!();
    println!(
        "chaos — {} nodes, {} clients, {} sessions, {:.0} s of posting ({:.1} s in all)",
        args.nodes.len(),
        clients.len(),
        sessions.len(),
        args.secs,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  sent {}, acked {}, refused {}, unanswered when a connection died {}; {} reconnects",
        counters.sent.load(Ordering::Relaxed),
        acked.len(),
        counters.refused.load(Ordering::Relaxed),
        counters.unanswered.load(Ordering::Relaxed),
        reconnects
    );
    println!(
        "  clients: {} messages live, {} recovered on re-join (since_seq), {} filled over REST \
         after a gap, {} read at the end; database: {rows} messages",
        clients.iter().map(|c| c.seen.live.len()).sum::<usize>(),
        recovered,
        filled,
        last_read
    );
    if violations.is_empty() {
        println!(
            "  PASS: every acked message stored once with its seq; every client saw its \
             sessions gap-free and in order; presence converged"
        );
        Ok(())
    } else {
        for v in violations.iter().take(40) {
            println!("  {v}");
        }
        bail!("chaos: {} violations", violations.len())
    }
}

/// Wait until nothing more is written: a message whose client gave up on it (a node cut
/// off from PostgreSQL) may still commit after the clients stopped, and the check reads
/// the messages and the sessions' `last_seq` one after the other.
async fn settle(url: &str) -> anyhow::Result<()> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .with_context(|| format!("connect to {url}"))?;
    let mut last = -1;
    for _ in 0..60 {
        let now: i64 =
            sqlx::query("SELECT CAST(COALESCE(SUM(last_seq), 0) AS BIGINT) AS n FROM sessions")
                .fetch_one(&mut conn)
                .await?
                .try_get("n")?;
        if now == last {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let _ = conn.close().await;
    Ok(())
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    refused: AtomicU64,
    unanswered: AtomicU64,
}

/// The cluster over REST, from whichever node answers.
#[derive(Clone)]
struct Rest {
    http: reqwest::Client,
    nodes: Vec<String>,
}

#[derive(Clone, Debug)]
struct User {
    id: String,
    name: String,
    token: String,
}

impl Rest {
    /// `method path` on the first node that answers, from `from` on.
    async fn call(
        &self,
        from: usize,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut last = anyhow!("no nodes");
        for k in 0..self.nodes.len() {
            let base = &self.nodes[(from + k) % self.nodes.len()];
            let mut req = self.http.request(method.clone(), format!("{base}{path}"));
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            if let Some(body) = &body {
                req = req.json(body);
            }
            match req.send().await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    if status >= 500 {
                        last = anyhow!("{base}{path}: {status}");
                        continue;
                    }
                    return Ok((status, res.json().await.unwrap_or(Value::Null)));
                }
                Err(e) => last = anyhow!("{base}{path}: {e}"),
            }
        }
        Err(last)
    }

    async fn login(&self, name: &str, password: &str) -> anyhow::Result<User> {
        let (status, body) = self
            .call(
                0,
                reqwest::Method::POST,
                "/auth/login",
                None,
                Some(json!({"username": name, "password": password})),
            )
            .await?;
        if status != 200 {
            bail!("log in as {name}: {status} {body}");
        }
        Ok(User {
            id: body["user"]["id"].as_str().unwrap_or_default().into(),
            name: name.into(),
            token: body["token"].as_str().unwrap_or_default().into(),
        })
    }

    async fn session(&self, owner: &User, title: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .call(
                0,
                reqwest::Method::POST,
                "/chat/sessions",
                Some(&owner.token),
                Some(json!({"title": title, "metadata": {"assistant": false}})),
            )
            .await?;
        if status != 201 {
            bail!("create a session: {status} {body}");
        }
        Ok(body["id"].as_str().unwrap_or_default().into())
    }

    async fn add_member(&self, owner: &User, session: &str, member: &User) -> anyhow::Result<()> {
        let (status, body) = self
            .call(
                0,
                reqwest::Method::POST,
                &format!("/chat/sessions/{session}/members"),
                Some(&owner.token),
                Some(json!({"user_id": member.id})),
            )
            .await?;
        if status != 201 {
            bail!("add a member: {status} {body}");
        }
        Ok(())
    }

    /// Every message after `after` (seqs), paging.
    async fn after(
        &self,
        from: usize,
        user: &User,
        session: &str,
        mut after: i64,
    ) -> anyhow::Result<Vec<i64>> {
        let mut seqs = Vec::new();
        loop {
            let (status, body) = self
                .call(
                    from,
                    reqwest::Method::GET,
                    &format!("/chat/sessions/{session}/messages?after_seq={after}&limit=500"),
                    Some(&user.token),
                    None,
                )
                .await?;
            if status != 200 {
                bail!("read history: {status} {body}");
            }
            let page: Vec<i64> = body["messages"]
                .as_array()
                .map(|ms| ms.iter().filter_map(|m| m["seq"].as_i64()).collect())
                .unwrap_or_default();
            let Some(&last) = page.last() else {
                return Ok(seqs);
            };
            after = last;
            seqs.extend(page);
            if body["has_more"] != true {
                return Ok(seqs);
            }
        }
    }
}

/// What one client saw of its session.
#[derive(Default)]
struct Seen {
    /// Seq of the session when the client first joined: it owes nothing before.
    from: Option<i64>,
    /// Seqs as `message` frames brought them, in arrival order.
    live: Vec<i64>,
    /// Everything it has, however it came.
    all: BTreeSet<i64>,
    /// Seqs that came in `joined.missed` or REST after a re-join.
    recovered: usize,
    /// Seqs fetched over REST after a gap in what arrived live.
    filled: usize,
    /// Seqs only the final read brought (missed live, with nothing after them to show it).
    last_read: usize,
    /// Live messages that came after a later one (out of order), or twice.
    disorder: Vec<String>,
}

impl Seen {
    fn highest(&self) -> i64 {
        self.all
            .last()
            .copied()
            .unwrap_or_else(|| self.from.unwrap_or(0))
    }
}

struct Client {
    index: usize,
    user: User,
    session: String,
    rest: Rest,
    node: usize,
    interval: Duration,
    stop: watch::Receiver<bool>,
    acked: Arc<Mutex<Vec<Acked>>>,
    counters: Arc<Counters>,
    seen: Seen,
}

struct Finished {
    index: usize,
    seen: Seen,
    reconnects: usize,
    final_seq: i64,
    error: Option<String>,
}

impl Finished {
    fn check(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .seen
            .disorder
            .iter()
            .map(|d| format!("ORDER: client {}: {d}", self.index))
            .collect();
        if let Some(e) = &self.error {
            out.push(format!("CLIENT: client {}: {e}", self.index));
        }
        let from = self.seen.from.unwrap_or(0);
        let missing: Vec<i64> = (from + 1..=self.final_seq)
            .filter(|s| !self.seen.all.contains(s))
            .take(10)
            .collect();
        if !missing.is_empty() {
            out.push(format!(
                "GAP: client {} never got seqs {missing:?} (of {}..={})",
                self.index,
                from + 1,
                self.final_seq
            ));
        }
        out
    }
}

impl Client {
    async fn run(mut self) -> Finished {
        let mut reconnects = 0;
        let mut n: i64 = 0;
        let mut next_post = tokio::time::Instant::now();
        let mut error = None;
        'connections: loop {
            if *self.stop.borrow() {
                break;
            }
            let base = self.rest.nodes[self.node].clone();
            let url = format!("{}/ws", base.replacen("http", "ws", 1));
            let conn = tokio::time::timeout(QUIET, self.open(&url)).await;
            let Ok(Ok(conn)) = conn else {
                self.node = (self.node + 1) % self.rest.nodes.len();
                reconnects += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let (mut sink, mut stream) = conn.split();
            let mut in_flight: HashSet<i64> = HashSet::new();
            let mut contents = HashMap::new();
            let mut heard = tokio::time::Instant::now();
            let mut ping = tokio::time::interval(PING_EVERY);
            loop {
                if *self.stop.borrow() {
                    let _ = sink.close().await;
                    break 'connections;
                }
                let frame = tokio::select! {
                    f = stream.next() => f,
                    _ = tokio::time::sleep_until(next_post) => {
                        next_post += self.interval;
                        n += 1;
                        let content = format!("chaos {} {n} {}", self.index, uuid::Uuid::new_v4().simple());
                        let frame = format!(
                            r#"{{"type":"message","id":{n},"session_id":"{}","content":"{content}"}}"#,
                            self.session
                        );
                        in_flight.insert(n);
                        contents.insert(n, content);
                        self.counters.sent.fetch_add(1, Ordering::Relaxed);
                        if sink.send(Message::text(frame)).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    _ = ping.tick() => {
                        if heard.elapsed() > QUIET || sink.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    _ = self.stop.changed() => continue,
                };
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                heard = tokio::time::Instant::now();
                match frame_type(&text) {
                    Some("ack") => {
                        let Some((id, mid, seq)) = ack_fields(&text) else {
                            continue;
                        };
                        if in_flight.remove(&id) {
                            if let (Some(content), Ok(mut acked)) =
                                (contents.remove(&id), self.acked.lock())
                            {
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
                            if in_flight.remove(&id) {
                                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Some("message") => {
                        if let Some(seq) = int_field(&text, "seq") {
                            if let Err(e) = self.live(seq).await {
                                error = Some(format!("filling a gap: {e}"));
                            }
                        }
                    }
                    _ => {}
                }
            }
            self.counters
                .unanswered
                .fetch_add(in_flight.len() as u64, Ordering::Relaxed);
            // Dead or quiet: the next node.
            self.node = (self.node + 1) % self.rest.nodes.len();
            reconnects += 1;
        }
        // What is left after the last seq it has, as any client would read it at the end.
        let final_seq = match self
            .rest
            .after(self.node, &self.user, &self.session, self.seen.highest())
            .await
        {
            Ok(rest) => {
                for seq in &rest {
                    if self.seen.all.insert(*seq) {
                        self.seen.last_read += 1;
                    }
                }
                self.seen.highest()
            }
            Err(e) => {
                error = Some(format!("the final read: {e}"));
                self.seen.highest()
            }
        };
        Finished {
            index: self.index,
            seen: self.seen,
            reconnects,
            final_seq,
            error,
        }
    }

    /// Connect, join (with `since_seq` once it has seen the session) and take in what was
    /// missed, paging over REST when `joined.missed` is not all of it.
    async fn open(&mut self, url: &str) -> anyhow::Result<ws::Ws> {
        let mut conn = ws::connect_ready(url, &self.user.token).await?;
        let join = match self.seen.from {
            None => json!({"type": "join", "session_id": self.session}),
            Some(_) => {
                json!({"type": "join", "session_id": self.session, "since_seq": self.seen.highest()})
            }
        };
        conn.send(Message::text(join.to_string())).await?;
        let joined: Value = serde_json::from_str(&ws::recv_type(&mut conn, "joined").await?)?;
        let last = joined["last_seq"].as_i64().unwrap_or(0);
        if self.seen.from.is_none() {
            self.seen.from = Some(last);
            return Ok(conn);
        }
        for m in joined["missed"].as_array().into_iter().flatten() {
            if let Some(seq) = m["seq"].as_i64() {
                if self.seen.all.insert(seq) {
                    self.seen.recovered += 1;
                }
            }
        }
        if joined["has_more"] == true {
            for seq in self
                .rest
                .after(self.node, &self.user, &self.session, self.seen.highest())
                .await?
            {
                if seq <= last && self.seen.all.insert(seq) {
                    self.seen.recovered += 1;
                }
            }
        }
        Ok(conn)
    }

    /// A live message: in order after what came live before, once; a jump ahead is a gap,
    /// filled over REST.
    async fn live(&mut self, seq: i64) -> anyhow::Result<()> {
        if let Some(&prev) = self.seen.live.last() {
            if seq <= prev {
                self.seen
                    .disorder
                    .push(format!("live seq {seq} came after {prev}"));
            }
        }
        self.seen.live.push(seq);
        let before = self.seen.highest();
        let fresh = self.seen.all.insert(seq);
        if fresh && seq > before + 1 {
            for s in self
                .rest
                .after(self.node, &self.user, &self.session, before)
                .await?
            {
                if s < seq && self.seen.all.insert(s) {
                    self.seen.filled += 1;
                }
            }
        }
        Ok(())
    }
}

/// Once every client has closed: a join on every running node lists only the prober, within
/// `--presence-secs`.
async fn presence_converges(
    args: &Args,
    rest: &Rest,
    users: &[User],
    sessions: &[String],
) -> Result<(), String> {
    let prober = &users[users.len() - 1];
    let deadline = Instant::now() + Duration::from_secs_f64(args.presence_secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        let mut all_converged = true;
        'nodes: for base in &rest.nodes {
            let url = format!("{}/ws", base.replacen("http", "ws", 1));
            let Ok(Ok(mut conn)) =
                tokio::time::timeout(QUIET, ws::connect_ready(&url, &prober.token)).await
            else {
                // A node the script killed and did not restart is not asked.
                continue;
            };
            for session in sessions {
                let join = json!({"type": "join", "session_id": session});
                if conn.send(Message::text(join.to_string())).await.is_err() {
                    all_converged = false;
                    break 'nodes;
                }
                let Ok(joined) = ws::recv_type(&mut conn, "joined").await else {
                    all_converged = false;
                    break 'nodes;
                };
                let joined: Value = serde_json::from_str(&joined).unwrap_or(Value::Null);
                let present: Vec<&str> = joined["participants"]
                    .as_array()
                    .map(|p| p.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if present != [prober.id.as_str()] {
                    all_converged = false;
                    let names: Vec<&str> = present
                        .iter()
                        .map(|id| {
                            users
                                .iter()
                                .find(|u| u.id == *id)
                                .map_or(*id, |u| u.name.as_str())
                        })
                        .collect();
                    last = format!("{base}: session {session} lists {names:?}");
                }
            }
            let _ = conn.close(None).await;
        }
        if all_converged {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(format!(
        "PRESENCE: not converged {:.0} s after the clients left: {last}",
        args.presence_secs
    ))
}
