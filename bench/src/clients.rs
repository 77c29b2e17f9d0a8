//! The paced clients `load` and `hostile` run: each posts and runs commands on its own
//! connection at a fixed rate, open loop (a slow answer does not delay the next frame), and
//! times every answer; plus the setup that gives them users, sessions and connections.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::server::{Server, User};
use crate::ws::{self, frame_type, str_field, Ws, WAIT};

// ---------------------------------------------------------------------------------------
// One load client: paced posts and commands on one connection, every answer timed
// ---------------------------------------------------------------------------------------

/// What one load client does.
#[derive(Clone)]
struct ClientPlan {
    session: String,
    /// Frames (posts and commands) per second, open loop: a slow answer does not delay
    /// the next frame.
    rate: f64,
    /// Frame `n` is a command when `n + offset` is a multiple of `command_every` (0: no
    /// commands); clients' offsets differ, so their commands are spread over time.
    command_every: u64,
    offset: u64,
    /// The commands, taken in turn.
    commands: Arc<Vec<String>>,
    /// Where the client's pacing starts (a fraction of one period), so clients do not
    /// all send at once.
    phase: f64,
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
async fn run_client(
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

/// One open-loop client task per connection; client `i` posts in `sessions[i]`.
pub fn spawn_clients(
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
