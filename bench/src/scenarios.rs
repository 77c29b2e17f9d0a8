//! The five scenarios. Each returns plain numbers; `main` turns them into the table.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

use crate::server::{cpu_secs, machine_busy_secs, Server, User};
use crate::stats::{summarize, Summary};
use crate::ws::{self, bench_marker, frame_type, next_text, Ws, WAIT};

/// The frame both the floor and the ping scenario send, so they move the same bytes.
const PING: &str = r#"{"type":"ping"}"#;

// ---------------------------------------------------------------------------------------
// Round trips: floor, ping, message
// ---------------------------------------------------------------------------------------

/// A bare tokio-tungstenite echo server on its own two-worker runtime (as slashd has), in
/// its own threads, so client and server do not share a scheduler.
pub struct EchoServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    pub fn start() -> anyhow::Result<EchoServer> {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("echo runtime");
            rt.block_on(async move {
                let listener = match TcpListener::bind("127.0.0.1:0").await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e));
                        return;
                    }
                };
                let _ = addr_tx.send(listener.local_addr());
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(echo(stream));
                            }
                        }
                    }
                }
            });
        });
        let addr = addr_rx
            .recv()
            .map_err(|_| anyhow!("echo server thread died"))??;
        Ok(EchoServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn echo(stream: tokio::net::TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            break;
        }
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

/// Send a frame, wait for its answer, `warmup + n` times in sequence; the last `n` round
/// trips are returned, in nanoseconds.
async fn round_trips(
    ws: &mut Ws,
    warmup: usize,
    n: usize,
    frame: &str,
    answered: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<u64>> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let start = Instant::now();
        ws.send(Message::text(frame)).await?;
        let wait = async {
            loop {
                let reply = next_text(ws).await?;
                if answered(&reply) {
                    return Ok(());
                }
                if frame_type(&reply) == Some("error") {
                    bail!("error answer: {}", reply.as_str());
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .map_err(|_| anyhow!("no answer within {WAIT:?}"))??;
        if i >= warmup {
            samples.push(start.elapsed().as_nanos() as u64);
        }
    }
    Ok(samples)
}

/// (1) The floor: the same frame through a bare echo server.
/// With `own_process`, the echo server runs in a child process (this binary's hidden
/// `echo-server` command), as slashd does; otherwise on its own runtime in this process.
pub async fn floor(warmup: usize, n: usize, own_process: bool) -> anyhow::Result<Summary> {
    let (addr, echo, child) = if own_process {
        let (addr, child) = spawn_echo_process()?;
        (addr, None, Some(child))
    } else {
        let echo = EchoServer::start()?;
        (echo.addr, Some(echo), None)
    };
    let mut ws = ws::connect(&format!("ws://{addr}/"), None).await?;
    let samples = round_trips(&mut ws, warmup, n, PING, |reply| reply == PING).await?;
    let _ = ws.close(None).await;
    drop(ws);
    drop(echo);
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
    summarize(samples).context("no samples")
}

fn spawn_echo_process() -> anyhow::Result<(SocketAddr, std::process::Child)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("echo-server")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .parse()
        .with_context(|| format!("echo-server printed {line:?}"))?;
    Ok((addr, child))
}

/// (2) `ping` → `pong` through slashd.
pub async fn ping(
    server: &Server,
    user: &User,
    warmup: usize,
    n: usize,
) -> anyhow::Result<Summary> {
    let mut ws = ws::connect_ready(&server.ws_url, &user.token).await?;
    let samples = round_trips(&mut ws, warmup, n, PING, |reply| {
        frame_type(reply) == Some("pong")
    })
    .await?;
    let _ = ws.close(None).await;
    summarize(samples).context("no samples")
}

/// `/help` → its reply: the invocation is stored and acked, the help plugin runs in a fresh
/// wasm instance, and its reply is stored and broadcast; timed until the reply arrives.
pub async fn help_command(
    server: &Server,
    user: &User,
    warmup: usize,
    n: usize,
) -> anyhow::Result<Summary> {
    let session = server.session(user, "bench help").await?;
    let mut ws = ws::connect_ready(&server.ws_url, &user.token).await?;
    ws::join(&mut ws, &session).await?;
    let frame = format!(r#"{{"type":"message","session_id":"{session}","content":"/help"}}"#);
    let samples = round_trips(&mut ws, warmup, n, &frame, |reply| {
        frame_type(reply) == Some("message") && reply.contains(r#""role":"command""#)
    })
    .await?;
    let _ = ws.close(None).await;
    summarize(samples).context("no samples")
}

/// (3) `message` → `ack` in a joined session (alone in it); the broadcast copy that follows
/// the ack is drained before the next post.
pub async fn message(
    server: &Server,
    user: &User,
    warmup: usize,
    n: usize,
) -> anyhow::Result<Summary> {
    let session = server.session(user, "bench message").await?;
    let mut ws = ws::connect_ready(&server.ws_url, &user.token).await?;
    ws::join(&mut ws, &session).await?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let frame = format!(
            r#"{{"type":"message","id":{i},"session_id":"{session}","content":"bench message {i}"}}"#
        );
        let start = Instant::now();
        ws.send(Message::text(frame)).await?;
        ws::recv_type(&mut ws, "ack").await?;
        let rtt = start.elapsed();
        ws::recv_type(&mut ws, "message").await?;
        if i >= warmup {
            samples.push(rtt.as_nanos() as u64);
        }
    }
    let _ = ws.close(None).await;
    summarize(samples).context("no samples")
}

// ---------------------------------------------------------------------------------------
// Fan-out
// ---------------------------------------------------------------------------------------

pub struct FanoutParams {
    pub n: usize,
    /// Posts per second; `None` posts as fast as the delivery window allows.
    pub rate: Option<f64>,
    pub duration: Duration,
    /// Most messages posted but not yet delivered to every listener.
    pub window: usize,
    /// Connections opened at once.
    pub batch: usize,
    /// Nodes the listeners connect to, round robin (empty: the poster's server).
    pub listen_urls: Vec<String>,
}

pub struct FanoutResult {
    pub posted: usize,
    pub acked: usize,
    /// Achieved posts per second.
    pub post_rate: f64,
    pub deliveries: u64,
    pub expected: u64,
    pub deliveries_per_sec: f64,
    pub latency: Option<Summary>,
    pub setup: Duration,
    /// Wall time from the first post to the last delivery.
    pub wall: Duration,
    /// CPU seconds the server and this client used over that time.
    pub server_cpu: f64,
    pub client_cpu: f64,
    /// CPU seconds the whole machine was busy (both cores), over the same time.
    pub machine_cpu: f64,
    /// Problems seen (closed listeners, error frames, stalls), summarized.
    pub problems: Vec<String>,
}

struct ListenerOut {
    latencies: Vec<u64>,
    received: u64,
    last_ns: u64,
    error: Option<String>,
}

/// (4) One session, `n` listening connections (spread over `members`), one poster (`owner`).
/// Every listener reads on its own task; the content carries the send time.
pub async fn fanout(
    server: &Server,
    owner: &User,
    members: &[User],
    p: &FanoutParams,
) -> anyhow::Result<FanoutResult> {
    let setup_start = Instant::now();
    let session = server.session(owner, &format!("fanout {}", p.n)).await?;
    for m in members {
        server.add_member(owner, &session, m).await?;
    }
    let urls = if p.listen_urls.is_empty() {
        vec![server.ws_url.clone()]
    } else {
        p.listen_urls.clone()
    };
    let opened = open_many(&urls, members, p.n, p.batch, Some(&session)).await;
    let mut listeners = Vec::with_capacity(p.n);
    let mut failed = Vec::new();
    for r in opened {
        match r {
            Ok(ws) => listeners.push(ws),
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} listeners failed to connect and join; first: {}",
            failed.len(),
            p.n,
            failed[0]
        );
    }
    let mut poster = ws::connect_ready(&server.ws_url, &owner.token).await?;
    ws::join(&mut poster, &session).await?;
    // Let presence frames from the joins settle before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let setup = setup_start.elapsed();

    let capacity = match p.rate {
        Some(rate) => (rate * p.duration.as_secs_f64()).ceil() as usize,
        None => (2_000_000.0 * p.duration.as_secs_f64() / p.n as f64) as usize + 1000,
    }
    .max(1);
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..capacity).map(|_| AtomicU32::new(0)).collect());
    let notify = Arc::new(Notify::new());
    let base = Instant::now();
    let n = p.n as u32;
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|ws| tokio::spawn(listen(ws, n, counts.clone(), notify.clone(), base)))
        .collect();

    let (mut sink, mut stream) = poster.split();
    let poster_reader = tokio::spawn(async move {
        let mut acks = 0usize;
        let mut errors = Vec::new();
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(t))) => match frame_type(&t) {
                    Some("ack") => acks += 1,
                    Some("error") => errors.push(t.to_string()),
                    Some("message") if t.contains(r#""content":"b end""#) => break,
                    _ => {}
                },
                Some(Ok(Message::Close(f))) => {
                    errors.push(format!("poster closed by server: {f:?}"));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    errors.push(format!("poster read: {e}"));
                    break;
                }
                None => break,
            }
        }
        (acks, errors)
    });

    let mut problems = Vec::new();
    let server_cpu_start = cpu_secs(Some(server.pid()));
    let client_cpu_start = cpu_secs(None);
    let machine_cpu_start = machine_busy_secs();
    let start = Instant::now();
    let first_send_ns = base.elapsed().as_nanos() as u64;
    let mut sent = 0usize;
    let mut done = 0usize;
    loop {
        if sent >= capacity {
            break;
        }
        let elapsed = start.elapsed();
        if p.rate.is_none() && elapsed >= p.duration {
            break;
        }
        while done < sent && counts[done].load(Ordering::Relaxed) >= n {
            done += 1;
        }
        if sent - done >= p.window {
            if tokio::time::timeout(Duration::from_secs(10), notify.notified())
                .await
                .is_err()
            {
                problems.push(format!(
                    "poster stalled: message {done} not delivered to every listener within 10 s"
                ));
                break;
            }
            continue;
        }
        if let Some(rate) = p.rate {
            let due = ((elapsed.as_secs_f64() * rate) as usize + 1).min(capacity);
            if sent >= due {
                let next = start + Duration::from_secs_f64(sent as f64 / rate);
                tokio::time::sleep_until(next.into()).await;
                continue;
            }
        }
        let now_ns = base.elapsed().as_nanos() as u64;
        let frame = format!(
            r#"{{"type":"message","session_id":"{session}","content":"b {sent} {now_ns}"}}"#
        );
        sink.send(Message::text(frame)).await?;
        sent += 1;
    }
    let post_time = start.elapsed();
    sink.send(Message::text(format!(
        r#"{{"type":"message","session_id":"{session}","content":"b end"}}"#
    )))
    .await?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut latencies = Vec::new();
    let mut received = 0u64;
    let mut last_ns = first_send_ns;
    let mut listener_errors: Vec<String> = Vec::new();
    let mut unfinished = 0usize;
    for mut h in handles {
        match tokio::time::timeout_at(deadline, &mut h).await {
            Ok(Ok(out)) => {
                received += out.received;
                last_ns = last_ns.max(out.last_ns);
                latencies.extend_from_slice(&out.latencies);
                if let Some(e) = out.error {
                    listener_errors.push(e);
                }
            }
            Ok(Err(e)) => listener_errors.push(format!("listener task: {e}")),
            Err(_) => {
                h.abort();
                unfinished += 1;
            }
        }
    }
    if unfinished > 0 {
        problems.push(format!(
            "{unfinished} listeners did not see the end marker within 30 s"
        ));
    }
    if !listener_errors.is_empty() {
        problems.push(format!(
            "{} listeners failed; first: {}",
            listener_errors.len(),
            listener_errors[0]
        ));
    }
    let server_cpu = cpu_secs(Some(server.pid())) - server_cpu_start;
    let client_cpu = cpu_secs(None) - client_cpu_start;
    let machine_cpu = machine_busy_secs() - machine_cpu_start;
    let (acked, poster_errors) =
        match tokio::time::timeout(Duration::from_secs(10), poster_reader).await {
            Ok(Ok(r)) => r,
            _ => (0, vec!["poster reader did not finish".into()]),
        };
    if !poster_errors.is_empty() {
        problems.push(format!(
            "{} poster errors; first: {}",
            poster_errors.len(),
            poster_errors[0]
        ));
    }
    let _ = sink.close().await;

    let wall = Duration::from_nanos(last_ns.saturating_sub(first_send_ns));
    Ok(FanoutResult {
        posted: sent,
        // The end marker is acked too.
        acked: acked.saturating_sub(1),
        post_rate: sent as f64 / post_time.as_secs_f64(),
        deliveries: received,
        expected: sent as u64 * p.n as u64,
        deliveries_per_sec: if wall.is_zero() {
            0.0
        } else {
            received as f64 / wall.as_secs_f64()
        },
        latency: summarize(latencies),
        setup,
        wall,
        server_cpu,
        client_cpu,
        machine_cpu,
        problems,
    })
}

async fn listen(
    mut ws: Ws,
    n: u32,
    counts: Arc<Vec<AtomicU32>>,
    notify: Arc<Notify>,
    base: Instant,
) -> ListenerOut {
    let mut out = ListenerOut {
        latencies: Vec::new(),
        received: 0,
        last_ns: 0,
        error: None,
    };
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                if let Some((index, sent_ns)) = bench_marker(&t) {
                    let now = base.elapsed().as_nanos() as u64;
                    out.latencies.push(now.saturating_sub(sent_ns));
                    out.received += 1;
                    out.last_ns = now;
                    if let Some(c) = counts.get(index) {
                        if c.fetch_add(1, Ordering::Relaxed) + 1 == n {
                            notify.notify_one();
                        }
                    }
                } else if t.contains(r#""content":"b end""#) {
                    let _ = ws.close(None).await;
                    return out;
                } else if frame_type(&t) == Some("error") {
                    out.error.get_or_insert_with(|| t.to_string());
                }
            }
            Some(Ok(Message::Close(f))) => {
                out.error = Some(format!("closed by server: {f:?}"));
                return out;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                out.error = Some(format!("read: {e}"));
                return out;
            }
            None => {
                out.error = Some("connection ended".into());
                return out;
            }
        }
    }
}

/// Open `n` authenticated connections (users taken in turn), `batch` at a time, optionally
/// joining a session on each.
async fn open_many(
    urls: &[String],
    users: &[User],
    n: usize,
    batch: usize,
    session: Option<&str>,
) -> Vec<anyhow::Result<Ws>> {
    futures_util::stream::iter(0..n)
        .map(|i| {
            let token = users[i % users.len()].token.clone();
            let url = urls[i % urls.len()].clone();
            let session = session.map(str::to_string);
            async move {
                let mut ws = ws::connect_ready(&url, &token).await?;
                if let Some(session) = session {
                    ws::join(&mut ws, &session).await?;
                }
                Ok(ws)
            }
        })
        .buffer_unordered(batch.max(1))
        .collect()
        .await
}

// ---------------------------------------------------------------------------------------
// Idle connections
// ---------------------------------------------------------------------------------------

pub struct IdleResult {
    pub opened: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub open_time: Duration,
}

impl IdleResult {
    pub fn kib_per_connection(&self) -> f64 {
        if self.opened == 0 {
            return 0.0;
        }
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) / self.opened as f64
    }
}

/// (5) Open `n` authenticated connections that then sit idle; the server's RSS before and
/// after.
pub async fn idle(
    server: &Server,
    users: &[User],
    n: usize,
    batch: usize,
) -> anyhow::Result<IdleResult> {
    // Warm the server's connection path first, so one-time allocations are in the baseline.
    let urls = [server.ws_url.clone()];
    let warm = open_many(&urls, users, 64.min(n), batch, None).await;
    for ws in warm.into_iter().flatten() {
        let mut ws = ws;
        let _ = ws.close(None).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kib = server.rss_kib()?;

    let start = Instant::now();
    let opened = open_many(&urls, users, n, batch, None).await;
    let open_time = start.elapsed();
    let mut conns = Vec::with_capacity(n);
    let mut failed = 0;
    let mut first_error = None;
    for r in opened {
        match r {
            Ok(ws) => conns.push(ws),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_kib = server.rss_kib()?;
    let result = IdleResult {
        opened: conns.len(),
        failed,
        first_error,
        rss_before_kib,
        rss_after_kib,
        open_time,
    };
    drop(conns);
    Ok(result)
}
