//! `fanout`: one poster, N listeners in one session: deliveries per second and delivery
//! latency, per N a steady run at a moderate load (latency) and a saturating one (capacity).
//! `cluster` runs the same sweep across nodes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

use crate::flags::{at_least_one, positive, seconds, Connections, ServerArgs};
use crate::peer::{Peer, PeerKind};
use crate::report::{progress, verdict, Report, Row};
use crate::server::{Server, ServerOpts, User};
use crate::stats::{fmt_count, fmt_us, summarize, Summary};
use crate::usage::{cpu_secs, machine_busy_secs};
use crate::ws::{self, bench_marker, frame_type, Ws};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub sweep: Sweep,
    /// Skip the saturating runs (posting as fast as deliveries complete, at most --window
    /// messages in flight), which measure the most deliveries per second.
    #[arg(long)]
    pub no_saturate: bool,
    #[command(flatten)]
    pub conns: Connections,
    /// Run the same sweep, with the same client, against the peers in bench/peers (a
    /// Node.js `ws` broadcast server; installed from the npm registry on first use).
    #[arg(long)]
    pub peers: bool,
}

/// The fan-out runs `fanout` and `cluster` share: their sizes, load and length.
#[derive(clap::Args)]
pub struct Sweep {
    /// Fan-out sizes (listening connections in the session).
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000", value_parser = at_least_one)]
    pub fanout_sizes: Vec<usize>,
    /// Load of the steady runs, in deliveries per second: the poster posts at this / N
    /// messages per second, capped by --max-rate.
    #[arg(long, default_value_t = 100_000.0, value_parser = positive)]
    pub offered: f64,
    /// Highest steady post rate, in messages per second.
    #[arg(long, default_value_t = 1_000.0, value_parser = positive)]
    pub max_rate: f64,
    /// Most messages in flight (posted, not yet delivered to every listener).
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Seconds each run posts for.
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    pub duration: f64,
}

impl Sweep {
    /// The steady runs' post rate for N listeners.
    pub fn steady_rate(&self, n: usize) -> f64 {
        (self.offered / n as f64).min(self.max_rate)
    }

    /// Per N: a steady run at a moderate load (latency), then a saturating one (capacity).
    pub fn runs(&self, no_saturate: bool) -> Vec<(usize, Option<f64>)> {
        let mut runs = Vec::new();
        for &n in &self.fanout_sizes {
            runs.push((n, Some(self.steady_rate(n))));
            if !no_saturate {
                runs.push((n, None));
            }
        }
        runs
    }

    /// One run of the sweep: N listeners on `listen_urls` (empty: the poster's server),
    /// posting at `rate` (None: saturating).
    pub fn params(
        &self,
        n: usize,
        rate: Option<f64>,
        batch: usize,
        listen_urls: Vec<String>,
    ) -> FanoutParams {
        FanoutParams {
            n,
            rate,
            duration: Duration::from_secs_f64(self.duration),
            window: self.window,
            batch,
            listen_urls,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    measure(
        &args.server.opts(),
        &args.sweep,
        args.no_saturate,
        &args.conns,
        &mut report,
    )
    .await?;
    if args.peers {
        measure_peer(&args.sweep, args.no_saturate, &args.conns, &mut report).await?;
    }
    report.print(args.server.database_url.as_deref());
    Ok(())
}

/// The sweep against the Node.js `ws` peer, rows labelled `node ws N=…`.
async fn measure_peer(
    sweep: &Sweep,
    no_saturate: bool,
    conns: &Connections,
    report: &mut Report,
) -> anyhow::Result<()> {
    let peer = Peer::start(PeerKind::NodeWs)?;
    for (n, rate) in sweep.runs(no_saturate) {
        let label = format!("node ws N={n}");
        progress(&format!("{label}: {}", describe(rate, sweep)));
        let params = sweep.params(n, rate, conns.connect_batch, Vec::new());
        let result = peer_fanout(&peer, &params).await;
        record(report, &label, n, rate, result);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// A run's row and note, or a FAILED row with the reason.
fn record(
    report: &mut Report,
    label: &str,
    n: usize,
    rate: Option<f64>,
    result: anyhow::Result<FanoutResult>,
) {
    match result {
        Ok(r) => rows(report, label, n, rate, &r),
        Err(e) => {
            let mut row = Row::new(label, "FAILED");
            row.p50 = "—".into();
            report.rows.push(row);
            report.notes.push(format!("{label}: {e:#}"));
        }
    }
}

fn describe(rate: Option<f64>, sweep: &Sweep) -> String {
    format!(
        "{} for {:.0} s",
        match rate {
            Some(r) => format!("posting {r:.0} msg/s"),
            None => "posting as fast as deliveries complete".into(),
        },
        sweep.duration
    )
}

/// Every run of the sweep on one server, a row and a note each.
pub async fn measure(
    server_opts: &ServerOpts,
    sweep: &Sweep,
    no_saturate: bool,
    conns: &Connections,
    report: &mut Report,
) -> anyhow::Result<()> {
    let server = Server::start(server_opts).await?;
    let owner = server.users("poster", 1).await?.remove(0);
    let members = server.users("fan", conns.users.max(1)).await?;
    for (n, rate) in sweep.runs(no_saturate) {
        let label = format!("fanout N={n}");
        progress(&format!("{label}: {}", describe(rate, sweep)));
        let params = sweep.params(n, rate, conns.connect_batch, Vec::new());
        let result = fanout(&server, &owner, &members, &params).await;
        record(report, &label, n, rate, result);
        // Let the server finish closing the previous run's connections.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    report.logs.push(("fanout".into(), server.stop()));
    Ok(())
}

/// The row of one run, and its note.
pub fn rows(report: &mut Report, label: &str, n: usize, rate: Option<f64>, r: &FanoutResult) {
    let latency = r
        .latency
        .map(|l| format!("latency p50 {}, p99 {}", fmt_us(l.p50), fmt_us(l.p99)))
        .unwrap_or_else(|| "no deliveries".into());
    match rate {
        Some(rate) => {
            let mut row = Row::new(
                label,
                format!(
                    "delivery latency at {} msg/s ({} deliveries/s)",
                    fmt_count(rate),
                    fmt_count(r.deliveries_per_sec)
                ),
            );
            if let Some(l) = r.latency {
                row.p50 = fmt_us(l.p50);
                row.p99 = fmt_us(l.p99);
            }
            if r.post_rate < 0.95 * rate {
                row.target = format!("could not keep up: {} msg/s posted", fmt_count(r.post_rate));
            }
            report.rows.push(row);
        }
        None => {
            let mut row = Row::new(label, "max deliveries/s (saturating)");
            row.p50 = fmt_count(r.deliveries_per_sec);
            if n >= 1000 {
                row.target = format!(
                    "≥ 200,000/s at N=1000: {}",
                    verdict(r.deliveries_per_sec >= 200_000.0)
                );
            }
            report.rows.push(row);
        }
    }
    let mode = match rate {
        Some(_) => "steady",
        None => "saturating",
    };
    report.notes.push(format!(
        "{label} {mode}: posted {} ({} acked) at {:.0} msg/s; delivered {} of {} in {:.2} s \
         = {} deliveries/s; {latency}; CPU in % of one core: server {:.0}, bench client {:.0}, \
         everything else {:.0}; {} connections opened and joined in {:.1} s{}",
        r.posted,
        r.acked,
        r.post_rate,
        r.deliveries,
        r.expected,
        r.wall.as_secs_f64(),
        fmt_count(r.deliveries_per_sec),
        100.0 * r.server_cpu / r.wall.as_secs_f64().max(1e-9),
        100.0 * r.client_cpu / r.wall.as_secs_f64().max(1e-9),
        (100.0 * (r.machine_cpu - r.server_cpu - r.client_cpu) / r.wall.as_secs_f64().max(1e-9))
            .max(0.0),
        n + 1,
        r.setup.as_secs_f64(),
        if r.problems.is_empty() {
            String::new()
        } else {
            format!("; PROBLEMS: {}", r.problems.join("; "))
        }
    ));
}

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

/// One session, `n` listening connections (spread over `members`), one poster (`owner`).
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
    let opened = ws::open_many(&urls, members, p.n, p.batch, Some(&session)).await;
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
    drive(listeners, poster, &session, server.pid(), setup, p).await
}

/// The same run against a peer (`bench/peers`): no users, no stored session — the room is
/// named by the join.
pub async fn peer_fanout(peer: &Peer, p: &FanoutParams) -> anyhow::Result<FanoutResult> {
    let setup_start = Instant::now();
    let session = uuid::Uuid::new_v4().to_string();
    let nobody = [User {
        id: String::new(),
        token: "peer".into(),
    }];
    let urls = [peer.ws_url.clone()];
    let mut listeners = Vec::with_capacity(p.n);
    for r in ws::open_many(&urls, &nobody, p.n, p.batch, Some(&session)).await {
        listeners.push(r?);
    }
    let mut poster = ws::connect_ready(&peer.ws_url, "peer").await?;
    ws::join(&mut poster, &session).await?;
    let setup = setup_start.elapsed();
    drive(listeners, poster, &session, peer.pid(), setup, p).await
}

/// Post on `poster` and read every listener: the measured part of a fan-out run.
async fn drive(
    listeners: Vec<Ws>,
    poster: Ws,
    session: &str,
    server_pid: u32,
    setup: Duration,
    p: &FanoutParams,
) -> anyhow::Result<FanoutResult> {
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
    let server_cpu_start = cpu_secs(Some(server_pid));
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
    let server_cpu = cpu_secs(Some(server_pid)) - server_cpu_start;
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
