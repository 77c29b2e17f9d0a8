//! Many clients at once: `load` (1,000 clients in 100 sessions posting and running
//! commands), `soak` (connection churn while the server's RSS is sampled) and `hostile`
//! (normal users' round trips, quiet and while other clients run the hostile plugins).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::server::{cpu_secs, machine_busy_secs, Server, User};
use crate::stats::{summarize, Summary};
use crate::ws::{self, frame_type, int_field, str_field, Ws, WAIT};

// ---------------------------------------------------------------------------------------
// One load client: paced posts and commands on one connection, every answer timed
// ---------------------------------------------------------------------------------------

/// What one load client does.
#[derive(Clone)]
pub struct ClientPlan {
    pub session: String,
    /// Frames (posts and commands) per second, open loop: a slow answer does not delay
    /// the next frame.
    pub rate: f64,
    /// Frame `n` is a command when `n + offset` is a multiple of `command_every` (0: no
    /// commands); clients' offsets differ, so their commands are spread over time.
    pub command_every: u64,
    pub offset: u64,
    /// The commands, taken in turn.
    pub commands: Arc<Vec<String>>,
    /// Where the client's pacing starts (a fraction of one period), so clients do not
    /// all send at once.
    pub phase: f64,
}

/// Counts and raw latency samples (ns) of one or many clients.
#[derive(Default)]
pub struct ClientStats {
    pub posts_sent: u64,
    pub posts_acked: u64,
    pub commands_sent: u64,
    pub command_replies: u64,
    pub deliveries: u64,
    pub ack_ns: Vec<u64>,
    pub delivery_ns: Vec<u64>,
    pub command_ns: Vec<u64>,
    /// The same, by the command's index in the plan's list.
    pub command_ns_by: BTreeMap<usize, Vec<u64>>,
    /// `error` frames answering our frames, by code (e.g. `rate_limited`).
    pub errors: BTreeMap<String, u64>,
    /// Connections that broke (closed by the server, read errors), with the first reason.
    pub broken: u64,
    pub first_break: Option<String>,
}

impl ClientStats {
    pub fn merge(&mut self, other: ClientStats) {
        self.posts_sent += other.posts_sent;
        self.posts_acked += other.posts_acked;
        self.commands_sent += other.commands_sent;
        self.command_replies += other.command_replies;
        self.deliveries += other.deliveries;
        self.ack_ns.extend(other.ack_ns);
        self.delivery_ns.extend(other.delivery_ns);
        self.command_ns.extend(other.command_ns);
        for (i, v) in other.command_ns_by {
            self.command_ns_by.entry(i).or_default().extend(v);
        }
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        self.broken += other.broken;
        if self.first_break.is_none() {
            self.first_break = other.first_break;
        }
    }

    pub fn refusals(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "none".into();
        }
        self.errors
            .iter()
            .map(|(code, n)| format!("{code} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The clock all clients share: send times travel in ids and content as ns since `base`,
/// and only frames sent after `measure_from_ns` are measured (the warm-up is not).
#[derive(Clone, Copy)]
pub struct Clock {
    pub base: Instant,
    pub measure_from_ns: u64,
}

impl Clock {
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// Run one client until `stop` turns true, then keep reading for `grace` so answers in
/// flight are counted, and close.
pub async fn run_client(
    ws: Ws,
    plan: ClientPlan,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> ClientStats {
    let mut st = ClientStats::default();
    let (mut sink, mut stream) = ws.split();
    let period = Duration::from_secs_f64(1.0 / plan.rate.max(1e-3));
    let first = tokio::time::Instant::now() + period.mul_f64(plan.phase.clamp(0.0, 1.0));
    let mut ticks = tokio::time::interval_at(first, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Command invocations acked (message id → command index, send time), waiting for
    // their reply.
    let mut pending: HashMap<String, (usize, u64)> = HashMap::new();
    let mut n: u64 = 0;
    let mut stopping: Option<tokio::time::Instant> = None;
    loop {
        let sleep_until = stopping.unwrap_or_else(|| tokio::time::Instant::now() + WAIT * 100);
        tokio::select! {
            _ = ticks.tick(), if stopping.is_none() => {
                let now_ns = clock.now_ns();
                let is_command = plan.command_every > 0 && (n + plan.offset) % plan.command_every == 0;
                let frame = if is_command {
                    let i = ((n + plan.offset) / plan.command_every) as usize % plan.commands.len().max(1);
                    let line = plan.commands.get(i).map(String::as_str).unwrap_or("/help");
                    st.commands_sent += 1;
                    format!(r#"{{"type":"message","id":"c{i}:{now_ns}","session_id":"{}","content":"{line}"}}"#, plan.session)
                } else {
                    st.posts_sent += 1;
                    format!(r#"{{"type":"message","id":"m{now_ns}","session_id":"{}","content":"l {now_ns}"}}"#, plan.session)
                };
                n += 1;
                if let Err(e) = sink.send(Message::text(frame)).await {
                    st.broken += 1;
                    st.first_break.get_or_insert_with(|| format!("send: {e}"));
                    break;
                }
            }
            changed = stop.changed(), if stopping.is_none() => {
                if changed.is_err() || *stop.borrow() {
                    stopping = Some(tokio::time::Instant::now() + grace);
                }
            }
            _ = tokio::time::sleep_until(sleep_until), if stopping.is_some() => break,
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(f))) => {
                        st.broken += 1;
                        st.first_break.get_or_insert_with(|| format!("closed by server: {f:?}"));
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        st.broken += 1;
                        st.first_break.get_or_insert_with(|| format!("read: {e}"));
                        break;
                    }
                    None => {
                        st.broken += 1;
                        st.first_break.get_or_insert_with(|| "connection ended".into());
                        break;
                    }
                };
                on_frame(&text, &clock, &mut st, &mut pending);
            }
        }
    }
    let _ = sink.close().await;
    st
}

fn on_frame(
    text: &str,
    clock: &Clock,
    st: &mut ClientStats,
    pending: &mut HashMap<String, (usize, u64)>,
) {
    let now = clock.now_ns();
    // Ids are `m<sent ns>` (posts) or `c<command index>:<sent ns>` (commands).
    let sent_at = |id: &str| id.rsplit([':', 'm']).next()?.parse::<u64>().ok();
    match frame_type(text) {
        Some("ack") => {
            let Some(id) = str_field(text, "id") else {
                return;
            };
            let Some(sent) = sent_at(id) else { return };
            if id.starts_with('m') {
                st.posts_acked += 1;
                if sent >= clock.measure_from_ns {
                    st.ack_ns.push(now.saturating_sub(sent));
                }
            } else if let Some(mid) = str_field(text, "message_id") {
                let index = id
                    .get(1..)
                    .and_then(|v| v.split(':').next()?.parse().ok())
                    .unwrap_or(0);
                pending.insert(mid.to_string(), (index, sent));
            }
        }
        Some("message") => {
            const KEY: &str = r#""content":"l "#;
            if let Some(at) = text.find(KEY) {
                let rest = &text[at + KEY.len()..];
                if let Some(sent) = rest.split('"').next().and_then(|v| v.parse::<u64>().ok()) {
                    st.deliveries += 1;
                    if sent >= clock.measure_from_ns {
                        st.delivery_ns.push(now.saturating_sub(sent));
                    }
                }
            } else if text.contains(r#""role":"command""#) {
                if let Some((index, sent)) =
                    str_field(text, "reply_to").and_then(|r| pending.remove(r))
                {
                    st.command_replies += 1;
                    if sent >= clock.measure_from_ns {
                        let took = now.saturating_sub(sent);
                        st.command_ns.push(took);
                        st.command_ns_by.entry(index).or_default().push(took);
                    }
                }
            }
        }
        Some("error") => {
            let code = str_field(text, "code").unwrap_or("?").to_string();
            *st.errors.entry(code).or_default() += 1;
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Setup helpers
// ---------------------------------------------------------------------------------------

/// `sessions` sessions and `users` users; client `i` is in session `i % sessions` as user
/// `(i + i / sessions) % users`, so each session has several distinct users and each user a
/// few connections. Owners add the others as members. Returns the session ids and, per
/// client, (session index, user index).
pub async fn layout(
    server: &Server,
    users: &[User],
    sessions: usize,
    clients: usize,
) -> anyhow::Result<(Vec<String>, Vec<(usize, usize)>)> {
    if users.is_empty() || sessions == 0 {
        bail!("need at least one user and one session");
    }
    let map: Vec<(usize, usize)> = (0..clients)
        .map(|i| (i % sessions, (i + i / sessions) % users.len()))
        .collect();
    let mut ids = Vec::with_capacity(sessions);
    for s in 0..sessions {
        let owner = &users[s % users.len()];
        ids.push(server.session(owner, &format!("load {s}")).await?);
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); sessions];
    for &(s, u) in &map {
        if u != s % users.len() && !members[s].contains(&u) {
            members[s].push(u);
        }
    }
    let adds: Vec<(usize, usize)> = members
        .iter()
        .enumerate()
        .flat_map(|(s, us)| us.iter().map(move |&u| (s, u)))
        .collect();
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(adds)
        .map(|(s, u)| {
            let owner = &users[s % users.len()];
            let id = &ids[s];
            let member = &users[u];
            async move { server.add_member(owner, id, member).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r.context("add a session member")?;
    }
    Ok((ids, map))
}

/// Open one connection per token and join it to its session, `batch` at a time.
pub async fn connect_all(
    url: &str,
    tokens: &[String],
    sessions: &[String],
    batch: usize,
) -> anyhow::Result<Vec<Ws>> {
    let opened: Vec<anyhow::Result<Ws>> = futures_util::stream::iter(0..tokens.len())
        .map(|i| {
            let token = tokens[i].clone();
            let session = sessions[i].clone();
            let url = url.to_string();
            async move {
                let mut ws = ws::connect_ready(&url, &token).await?;
                ws::join(&mut ws, &session).await?;
                Ok(ws)
            }
        })
        .buffered(batch.max(1))
        .collect()
        .await;
    let mut out = Vec::with_capacity(opened.len());
    let mut failed = 0;
    let mut first = None;
    for r in opened {
        match r {
            Ok(ws) => out.push(ws),
            Err(e) => {
                failed += 1;
                first.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} clients failed to connect and join; first: {}",
            tokens.len(),
            first.unwrap_or_default()
        );
    }
    Ok(out)
}

/// CPU and memory of a stretch of a run.
pub struct Usage {
    pub wall: f64,
    pub server_cpu: f64,
    pub client_cpu: f64,
    pub machine_cpu: f64,
    pub rss_start_kib: u64,
    pub rss_peak_kib: u64,
    pub rss_end_kib: u64,
}

impl Usage {
    pub fn pct(&self, cpu: f64) -> f64 {
        100.0 * cpu / self.wall.max(1e-9)
    }
    pub fn others_pct(&self) -> f64 {
        self.pct(self.machine_cpu - self.server_cpu - self.client_cpu)
            .max(0.0)
    }
}

/// Samples the server's RSS every `every` until dropped-stopped; CPU from start to `finish`.
pub struct UsageMeter {
    start: Instant,
    server_cpu: f64,
    client_cpu: f64,
    machine_cpu: f64,
    pid: u32,
    rss_start: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl UsageMeter {
    pub fn start(server: &Server) -> UsageMeter {
        let pid = server.pid();
        let rss_start = rss_kib(pid).unwrap_or(0);
        let peak = Arc::new(AtomicU64::new(rss_start));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let peak = peak.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(rss) = rss_kib(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            });
        }
        UsageMeter {
            start: Instant::now(),
            server_cpu: cpu_secs(Some(pid)),
            client_cpu: cpu_secs(None),
            machine_cpu: machine_busy_secs(),
            pid,
            rss_start,
            peak,
            stop,
        }
    }

    pub fn finish(self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        let rss_end = rss_kib(self.pid).unwrap_or(0);
        Usage {
            wall: self.start.elapsed().as_secs_f64(),
            server_cpu: cpu_secs(Some(self.pid)) - self.server_cpu,
            client_cpu: cpu_secs(None) - self.client_cpu,
            machine_cpu: machine_busy_secs() - self.machine_cpu,
            rss_start_kib: self.rss_start,
            rss_peak_kib: self.peak.load(Ordering::Relaxed).max(rss_end),
            rss_end_kib: rss_end,
        }
    }
}

pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// One open-loop client task per connection; client `i` posts in `sessions[i]`.
fn spawn_clients(
    conns: Vec<Ws>,
    sessions: &[String],
    rate: f64,
    command_every: u64,
    commands: &Arc<Vec<String>>,
    clock: Clock,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<ClientStats>> {
    let n = conns.len();
    conns
        .into_iter()
        .zip(sessions)
        .enumerate()
        .map(|(i, (ws, session))| {
            let plan = ClientPlan {
                session: session.clone(),
                rate,
                command_every,
                offset: i as u64,
                commands: commands.clone(),
                phase: phase_of(i, n),
            };
            tokio::spawn(run_client(
                ws,
                plan,
                clock,
                stop.clone(),
                Duration::from_secs(3),
            ))
        })
        .collect()
}

fn phase_of(i: usize, n: usize) -> f64 {
    // Spread evenly, in an order that does not line up with sessions.
    ((i * 7919) % n.max(1)) as f64 / n.max(1) as f64
}

// ---------------------------------------------------------------------------------------
// load
// ---------------------------------------------------------------------------------------

pub struct LoadParams {
    pub clients: usize,
    pub sessions: usize,
    pub users: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub rate: f64,
    pub command_every: u64,
    pub commands: Vec<String>,
    pub batch: usize,
}

pub struct LoadResult {
    pub stats: ClientStats,
    pub measured: Duration,
    pub usage: Usage,
    pub setup: Duration,
    pub ack: Option<Summary>,
    pub delivery: Option<Summary>,
    pub command: Option<Summary>,
    /// Per command of the list: its reply latency.
    pub by_command: Vec<(String, Option<Summary>)>,
}

pub async fn load(server: &Server, p: &LoadParams) -> anyhow::Result<LoadResult> {
    let setup_start = Instant::now();
    crate::progress(&format!("load: creating {} users", p.users));
    let users = server.users("load", p.users.max(1)).await?;
    crate::progress(&format!(
        "load: {} sessions, {} clients connecting",
        p.sessions, p.clients
    ));
    let (ids, map) = layout(server, &users, p.sessions, p.clients).await?;
    let tokens: Vec<String> = map.iter().map(|&(_, u)| users[u].token.clone()).collect();
    let sessions: Vec<String> = map.iter().map(|&(s, _)| ids[s].clone()).collect();
    let conns = connect_all(&server.ws_url, &tokens, &sessions, p.batch).await?;
    // Presence frames from the joins settle before the run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let setup = setup_start.elapsed();

    let commands = Arc::new(p.commands.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let base = Instant::now();
    let clock = Clock {
        base,
        measure_from_ns: p.warmup.as_nanos() as u64,
    };
    let handles = spawn_clients(
        conns,
        &sessions,
        p.rate,
        p.command_every,
        &commands,
        clock,
        &stop_rx,
    );
    crate::progress(&format!(
        "load: running {:.0} s ({:.0} s warm-up)",
        p.duration.as_secs_f64(),
        p.warmup.as_secs_f64()
    ));
    tokio::time::sleep(p.warmup).await;
    let meter = UsageMeter::start(server);
    let measure_start = Instant::now();
    tokio::time::sleep(p.duration.saturating_sub(p.warmup)).await;
    let measured = measure_start.elapsed();
    let usage = meter.finish();
    let _ = stop_tx.send(true);
    let mut stats = ClientStats::default();
    for h in handles {
        stats.merge(h.await.context("load client task")?);
    }
    let ack = summarize(std::mem::take(&mut stats.ack_ns));
    let delivery = summarize(std::mem::take(&mut stats.delivery_ns));
    let command = summarize(std::mem::take(&mut stats.command_ns));
    let mut by = std::mem::take(&mut stats.command_ns_by);
    let by_command = p
        .commands
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), summarize(by.remove(&i).unwrap_or_default())))
        .collect();
    Ok(LoadResult {
        stats,
        measured,
        usage,
        setup,
        ack,
        delivery,
        command,
        by_command,
    })
}

// ---------------------------------------------------------------------------------------
// soak
// ---------------------------------------------------------------------------------------

pub struct SoakParams {
    pub duration: Duration,
    pub concurrency: usize,
    pub sessions: usize,
    pub users: usize,
    pub sample_every: Duration,
}

pub struct SoakSample {
    pub t: f64,
    pub rss_kib: u64,
    pub connections: u64,
}

pub struct SoakResult {
    pub samples: Vec<SoakSample>,
    pub connections: u64,
    pub failures: u64,
    pub first_failure: Option<String>,
    pub rss_after_idle_kib: u64,
    pub usage: Usage,
}

/// Churn: each worker connects (token in an `auth` frame), joins a session, posts one
/// message and waits for its ack, then drops the connection (every other one with a close
/// frame, the rest by just closing the socket), and again, until the time is up.
pub async fn soak(server: &Server, p: &SoakParams) -> anyhow::Result<SoakResult> {
    let users = server.users("soak", p.users.max(1)).await?;
    // Every user may post in every session.
    let mut ids = Vec::new();
    for s in 0..p.sessions.max(1) {
        let owner = &users[s % users.len()];
        let id = server.session(owner, &format!("soak {s}")).await?;
        for (u, user) in users.iter().enumerate() {
            if u != s % users.len() {
                server
                    .add_member(owner, &id, user)
                    .await
                    .context("add a soak member")?;
            }
        }
        ids.push(id);
    }
    let connections = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let first_failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let deadline = Instant::now() + p.duration;
    let ids = Arc::new(ids);
    let users = Arc::new(users);
    let meter = UsageMeter::start(server);
    let start = Instant::now();
    let mut workers = Vec::new();
    let stride = p.concurrency.max(1);
    for w in 0..stride {
        let url = server.ws_url.clone();
        let ids = ids.clone();
        let users = users.clone();
        let connections = connections.clone();
        let failures = failures.clone();
        let first_failure = first_failure.clone();
        workers.push(tokio::spawn(async move {
            let mut k: usize = w;
            while Instant::now() < deadline {
                let user = &users[k % users.len()];
                let session = &ids[(k / users.len()) % ids.len()];
                match churn_once(&url, &user.token, session, k % 2 == 0).await {
                    Ok(()) => {
                        connections.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut f) = first_failure.lock() {
                            f.get_or_insert_with(|| format!("{e:#}"));
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                k += stride;
            }
        }));
    }
    let pid = server.pid();
    let mut samples = vec![SoakSample {
        t: 0.0,
        rss_kib: rss_kib(pid)?,
        connections: 0,
    }];
    let mut next = start + p.sample_every;
    while next <= deadline {
        tokio::time::sleep_until(next.into()).await;
        let sample = SoakSample {
            t: start.elapsed().as_secs_f64(),
            rss_kib: rss_kib(pid).context("the server died during the soak")?,
            connections: connections.load(Ordering::Relaxed),
        };
        crate::progress(&format!(
            "soak: {:>6.0} s  RSS {:>8.1} MiB  {:>8} connections",
            sample.t,
            sample.rss_kib as f64 / 1024.0,
            sample.connections
        ));
        samples.push(sample);
        next += p.sample_every;
    }
    for w in workers {
        w.await.context("soak worker")?;
    }
    let usage = meter.finish();
    // Once the last connections have closed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_idle_kib = rss_kib(pid)?;
    let first_failure = first_failure.lock().ok().and_then(|f| f.clone());
    Ok(SoakResult {
        samples,
        connections: connections.load(Ordering::Relaxed),
        failures: failures.load(Ordering::Relaxed),
        first_failure,
        rss_after_idle_kib,
        usage,
    })
}

async fn churn_once(url: &str, token: &str, session: &str, graceful: bool) -> anyhow::Result<()> {
    let mut ws = ws::connect(url, None).await?;
    ws.send(Message::text(format!(
        r#"{{"type":"auth","token":"{token}"}}"#
    )))
    .await?;
    ws::recv_type(&mut ws, "ready").await?;
    ws::join(&mut ws, session).await?;
    ws.send(Message::text(format!(
        r#"{{"type":"message","id":1,"session_id":"{session}","content":"churn"}}"#
    )))
    .await?;
    ws::recv_type(&mut ws, "ack").await?;
    if graceful {
        let _ = ws.close(None).await;
        // Read until the server's close frame (or the end), bounded.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
    drop(ws);
    Ok(())
}

/// Median of a slice of RSS values.
pub fn median(values: &mut [u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    values[values.len() / 2]
}

// ---------------------------------------------------------------------------------------
// hostile
// ---------------------------------------------------------------------------------------

/// The hostile commands run under load, and what each does.
pub const HOSTILE: &[(&str, &str)] = &[
    ("/spin", "loops until the deadline"),
    ("/spin-host", "calls the host in a loop until its quota"),
    ("/membomb", "allocates until the memory limit"),
    ("/bigreply 100", "builds a 100 MiB reply"),
    ("/panic", "panics"),
    ("/recurse", "recurses until the stack overflows"),
    ("/hugekv", "stores an 8 MiB kv value"),
];

pub struct HostileParams {
    /// Attack the connection layer instead of the sandbox: a client re-joining a session
    /// with a large backlog without reading, and slowloris / silent sockets.
    pub connection_attacks: bool,
    pub normal_clients: usize,
    pub normal_sessions: usize,
    pub normal_rate: f64,
    pub per_kind: usize,
    pub phase: Duration,
    pub each_kind: bool,
    pub batch: usize,
}

pub struct PhaseResult {
    pub label: String,
    pub ack: Option<Summary>,
    pub command: Option<Summary>,
    pub normal: ClientStats,
    /// Outcomes of the hostile calls, by kind: answer → count.
    pub hostile: BTreeMap<String, BTreeMap<String, u64>>,
    pub usage: Usage,
    pub healthy: bool,
}

pub async fn hostile(server: &Server, p: &HostileParams) -> anyhow::Result<Vec<PhaseResult>> {
    // One user per normal client, so the per-user command rate is each client's own.
    let normal_users = server.users("normal", p.normal_clients.max(1)).await?;
    let session_count = p.normal_sessions.clamp(1, normal_users.len());
    let mut ids = Vec::new();
    for owner in &normal_users[..session_count] {
        ids.push(server.session(owner, "normal").await?);
    }
    let mut tokens = Vec::new();
    let mut sessions = Vec::new();
    for (i, user) in normal_users.iter().enumerate() {
        let s = i % session_count;
        if i != s {
            server.add_member(&normal_users[s], &ids[s], user).await?;
        }
        tokens.push(user.token.clone());
        sessions.push(ids[s].clone());
    }
    // One user and session per hostile client.
    let hostile_users = server.users("eve", HOSTILE.len() * p.per_kind).await?;
    let mut hostile_sessions = Vec::new();
    for u in &hostile_users {
        hostile_sessions.push(server.session(u, "hostile").await?);
    }

    let mut phases: Vec<(String, Vec<usize>)> = vec![("quiet".into(), vec![])];
    let attack = match p.connection_attacks {
        true => Some(ConnectionAttack::prepare(server).await?),
        false => None,
    };
    if attack.is_some() {
        phases.push((JOIN_FLOOD.into(), vec![]));
        phases.push((SLOWLORIS.into(), vec![]));
        phases.push((BOTH_ATTACKS.into(), vec![]));
    } else {
        phases.push(("all hostile".into(), (0..HOSTILE.len()).collect()));
    }
    if p.each_kind && attack.is_none() {
        phases.push(("all but /spin".into(), (1..HOSTILE.len()).collect()));
        for (k, (cmd, _)) in HOSTILE.iter().enumerate() {
            phases.push((format!("{cmd} alone"), vec![k]));
        }
    }
    phases.push(("quiet again".into(), vec![]));

    let mut results = Vec::new();
    for (label, kinds) in phases {
        crate::progress(&format!(
            "hostile: phase '{label}' for {:.0} s",
            p.phase.as_secs_f64()
        ));
        let conns = connect_all(&server.ws_url, &tokens, &sessions, p.batch).await?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut hostile_tasks = Vec::new();
        for &k in &kinds {
            for j in 0..p.per_kind {
                let idx = k * p.per_kind + j;
                let url = server.ws_url.clone();
                let token = hostile_users[idx].token.clone();
                let session = hostile_sessions[idx].clone();
                let stop = stop_rx.clone();
                let line = HOSTILE[k].0.to_string();
                hostile_tasks.push((
                    k,
                    tokio::spawn(async move {
                        hostile_client(&url, &token, &session, &line, stop).await
                    }),
                ));
            }
        }
        let mut attack_tasks = Vec::new();
        if let Some(attack) = &attack {
            if label == JOIN_FLOOD || label == BOTH_ATTACKS {
                for _ in 0..p.per_kind {
                    attack_tasks.push((
                        "join flood",
                        tokio::spawn(attack.join_flood(stop_rx.clone())),
                    ));
                }
            }
            if label == SLOWLORIS || label == BOTH_ATTACKS {
                attack_tasks.push(("slowloris", tokio::spawn(attack.slowloris(stop_rx.clone()))));
            }
        }
        // Let the hostile calls get going before measuring.
        if !kinds.is_empty() || !attack_tasks.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let base = Instant::now();
        let clock = Clock {
            base,
            measure_from_ns: 0,
        };
        let commands = Arc::new(vec!["/help".to_string()]);
        let meter = UsageMeter::start(server);
        let handles = spawn_clients(
            conns,
            &sessions,
            p.normal_rate,
            2,
            &commands,
            clock,
            &stop_rx,
        );
        tokio::time::sleep(p.phase).await;
        let usage = meter.finish();
        let _ = stop_tx.send(true);
        let mut normal = ClientStats::default();
        for h in handles {
            normal.merge(h.await.context("normal client task")?);
        }
        let mut outcomes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let named = hostile_tasks
            .into_iter()
            .map(|(k, h)| (HOSTILE[k].0, h))
            .chain(attack_tasks);
        for (name, h) in named {
            let entry = outcomes.entry(name.to_string()).or_default();
            for (what, c) in tally(h).await {
                *entry.entry(what).or_default() += c;
            }
        }
        let healthy = server
            .http
            .get(format!("http://{}/healthz", server.addr))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        let ack = summarize(normal.ack_ns.clone());
        let command = summarize(normal.command_ns.clone());
        results.push(PhaseResult {
            label,
            ack,
            command,
            normal,
            hostile: outcomes,
            usage,
            healthy,
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(results)
}

type Counts = BTreeMap<String, u64>;

/// What a hostile or attacking task counted, or how it failed to finish.
async fn tally(task: tokio::task::JoinHandle<anyhow::Result<Counts>>) -> Counts {
    match tokio::time::timeout(Duration::from_secs(15), task).await {
        Ok(Ok(Ok(counts))) => counts,
        Ok(Ok(Err(e))) => BTreeMap::from([(format!("client failed: {e:#}"), 1)]),
        Ok(Err(e)) => BTreeMap::from([(format!("task: {e}"), 1)]),
        Err(_) => BTreeMap::from([("no answer within 15 s".to_string(), 1)]),
    }
}

const JOIN_FLOOD: &str = "join flood";
const SLOWLORIS: &str = "slowloris";
const BOTH_ATTACKS: &str = "join flood + slowloris";

/// The connection-layer attacks of issue 14: a non-reading client whose every `join`
/// would queue a large backlog, and sockets that send headers a byte at a time or nothing.
struct ConnectionAttack {
    url: String,
    addr: String,
    token: String,
    session: String,
}

/// Messages in the attacked session's backlog, and their size: ~1.2 MB a join.
const BACKLOG: usize = 300;
const BACKLOG_CHARS: usize = 4000;
/// Sockets the slowloris task keeps open at once.
const SLOW_SOCKETS: usize = 300;

impl ConnectionAttack {
    async fn prepare(server: &Server) -> anyhow::Result<ConnectionAttack> {
        let users = server.users("mallory", 1).await?;
        let user = &users[0];
        let session = server.session(user, "backlog").await?;
        crate::progress(&format!("hostile: writing a backlog of {BACKLOG} messages"));
        let mut ws = ws::connect_ready(&server.ws_url, &user.token).await?;
        ws::join(&mut ws, &session).await?;
        let filler = "x".repeat(BACKLOG_CHARS);
        let mut stored = 0;
        while stored < BACKLOG {
            ws.send(Message::text(format!(
                r#"{{"type":"message","id":{stored},"session_id":"{session}","content":"{filler}"}}"#
            )))
            .await?;
            let answer = tokio::time::timeout(WAIT, async {
                loop {
                    let text = ws::next_text(&mut ws).await?;
                    match frame_type(&text) {
                        Some("ack") => return anyhow::Ok(true),
                        // The frame limits, when kept: wait and send it again.
                        Some("error") => return Ok(false),
                        _ => continue,
                    }
                }
            })
            .await
            .map_err(|_| anyhow!("no ack for a backlog message within {WAIT:?}"))??;
            match answer {
                true => stored += 1,
                false => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let _ = ws.close(None).await;
        Ok(ConnectionAttack {
            url: server.ws_url.clone(),
            addr: server.addr.to_string(),
            token: user.token.clone(),
            session,
        })
    }

    /// Join with `since_seq: 0` and leave, again and again, never reading; reconnect when
    /// the server closes the socket. Counts joins sent and closes.
    fn join_flood(
        &self,
        stop: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = anyhow::Result<BTreeMap<String, u64>>> + Send + 'static
    {
        let (url, token, session) = (self.url.clone(), self.token.clone(), self.session.clone());
        async move {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            let join = format!(r#"{{"type":"join","session_id":"{session}","since_seq":0}}"#);
            let leave = format!(r#"{{"type":"leave","session_id":"{session}"}}"#);
            while !*stop.borrow() {
                let mut ws = match ws::connect_ready(&url, &token).await {
                    Ok(ws) => ws,
                    Err(_) => {
                        // Refused (the reconnect rate): try again, as an attacker would.
                        *counts.entry("reconnects refused".into()).or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                *counts.entry("connections".into()).or_default() += 1;
                while !*stop.borrow() {
                    let sent = async {
                        ws.send(Message::text(join.clone())).await?;
                        ws.send(Message::text(leave.clone())).await
                    };
                    match tokio::time::timeout(Duration::from_millis(500), sent).await {
                        Ok(Ok(())) => *counts.entry("joins sent".into()).or_default() += 1,
                        // Closed by the server, or its window full: start over.
                        Ok(Err(_)) => {
                            *counts.entry("closed by the server".into()).or_default() += 1;
                            break;
                        }
                        Err(_) => {
                            *counts.entry("send blocked".into()).or_default() += 1;
                            break;
                        }
                    }
                }
            }
            Ok(counts)
        }
    }

    /// Keep `SLOW_SOCKETS` sockets open: half send a header byte every second, half send
    /// nothing; count how many the server closed.
    fn slowloris(
        &self,
        stop: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = anyhow::Result<BTreeMap<String, u64>>> + Send + 'static
    {
        let addr = self.addr.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..SLOW_SOCKETS {
                let (addr, stop) = (addr.clone(), stop.clone());
                tasks.spawn(async move { slow_socket(&addr, i % 2 == 0, stop).await });
            }
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            while let Some(done) = tasks.join_next().await {
                let what = match done {
                    Ok(Ok(what)) => what,
                    Ok(Err(e)) => format!("failed: {e}"),
                    Err(e) => format!("task: {e}"),
                };
                *counts.entry(what).or_default() += 1;
            }
            Ok(counts)
        }
    }
}

/// One slowloris socket, reopened whenever the server closes it, until `stop`. Returns
/// how its last socket ended.
async fn slow_socket(
    addr: &str,
    trickle: bool,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut closed = 0u64;
    while !*stop.borrow() {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        if trickle {
            tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await?;
        }
        let mut buf = [0u8; 512];
        loop {
            if *stop.borrow() {
                return Ok(format!(
                    "{} socket(s), {closed} closed by the server",
                    if trickle { "trickling" } else { "silent" }
                ));
            }
            let read = tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed += 1;
                    break;
                }
                Ok(Ok(_)) => continue,
                Err(_) if trickle => {
                    if tcp.write_all(b"X").await.is_err() {
                        closed += 1;
                        break;
                    }
                }
                Err(_) => {}
            }
        }
    }
    Ok(format!(
        "{} socket(s), {closed} closed by the server",
        if trickle { "trickling" } else { "silent" }
    ))
}

/// Run one hostile command again and again (the next as soon as the last is answered, or
/// 50 ms after a `rate_limited` refusal) until `stop`; count the answers (`error` codes,
/// or "reply").
async fn hostile_client(
    url: &str,
    token: &str,
    session: &str,
    line: &str,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut ws = ws::connect_ready(url, token).await?;
    ws::join(&mut ws, session).await?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut i: u64 = 0;
    while !*stop.borrow() {
        i += 1;
        ws.send(Message::text(format!(
            r#"{{"type":"message","id":{i},"session_id":"{session}","content":"{line}"}}"#
        )))
        .await?;
        let answer = tokio::time::timeout(WAIT, async {
            loop {
                let text = ws::next_text(&mut ws).await?;
                match frame_type(&text) {
                    Some("error") if int_field(&text, "id") == Some(i as i64) => {
                        return anyhow::Ok(str_field(&text, "code").unwrap_or("?").to_string())
                    }
                    Some("message") if text.contains(r#""role":"command""#) => {
                        return Ok("reply".to_string())
                    }
                    _ => continue,
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no answer to {line} within {WAIT:?}"))??;
        // Run as many calls as the server takes, without flooding it with refused frames
        // (flooding is the realtime rate limit's business, lifted in these runs).
        if answer == "rate_limited" {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *counts.entry(answer).or_default() += 1;
    }
    let _ = ws.close(None).await;
    Ok(counts)
}
