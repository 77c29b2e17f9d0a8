//! `soak`: connection churn (connect, auth, join, post, drop) for --soak-secs while the
//! server's RSS is sampled every --sample-secs: the RSS curve and a verdict on its growth.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::flags::{seconds, ServerArgs};
use crate::report::{machine_line, mib, print_logs, progress};
use crate::server::Server;
use crate::stats::fmt_count;
use crate::usage::{rss_kib, Usage, UsageMeter};
use crate::ws;

/// Sessions the churning connections join, in turn.
const SESSIONS: usize = 10;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Seconds of churn.
    #[arg(long, default_value_t = 120.0, value_parser = seconds)]
    pub soak_secs: f64,
    /// Seconds between RSS samples (at least 0.5).
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    pub sample_secs: f64,
    /// Connections churning at once.
    #[arg(long, default_value_t = 50)]
    pub churn: usize,
    /// Viewer users the churning connections are spread over.
    #[arg(long, default_value_t = 8)]
    pub users: usize,
    /// The part of the run, from the start, left out of the verdict (0–0.9).
    #[arg(long, default_value_t = 0.25)]
    pub soak_warmup: f64,
}

impl Args {
    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.soak_secs)
    }

    fn sample_every(&self) -> Duration {
        Duration::from_secs_f64(self.sample_secs.max(0.5))
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let server = Server::start(&args.server.opts()).await?;
    progress(&format!(
        "soak: {} workers churning for {:.0} s",
        args.churn, args.soak_secs
    ));
    let r = soak(&server, &args).await?;
    let logs = server.stop();
    println!();
    println!(
        "{}",
        machine_line("slashd soak", args.server.database_url.as_deref())
    );
    println!(
        "{} workers, each: connect, auth frame, join, post, wait for the ack, drop (half with \
         a close frame, half by closing the socket), repeat; {:.0} s",
        args.churn, args.soak_secs
    );
    println!();
    println!(
        "{:>8}  {:>10}  {:>12}  {:>10}",
        "t (s)", "RSS (MiB)", "connections", "conn/s"
    );
    let mut prev: Option<&SoakSample> = None;
    for s in &r.samples {
        let rate = prev
            .map(|p| (s.connections - p.connections) as f64 / (s.t - p.t).max(1e-9))
            .unwrap_or(0.0);
        println!(
            "{:>8.0}  {:>10.1}  {:>12}  {:>10}",
            s.t,
            s.rss_kib as f64 / 1024.0,
            s.connections,
            fmt_count(rate)
        );
        prev = Some(s);
    }
    let warm = args.soak_warmup.clamp(0.0, 0.9) * args.soak_secs;
    let after: Vec<&SoakSample> = r.samples.iter().filter(|s| s.t >= warm).collect();
    let third = after.len() / 3;
    println!();
    println!(
        "connections made {} ({}/s), failed {}{}",
        fmt_count(r.connections as f64),
        fmt_count(r.connections as f64 / args.soak_secs.max(1e-9)),
        r.failures,
        r.first_failure
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "CPU, % of one core: server {:.0}, bench client {:.0}, everything else {:.0}",
        r.usage.pct(r.usage.server_cpu),
        r.usage.pct(r.usage.client_cpu),
        r.usage.others_pct()
    );
    if third == 0 {
        println!("verdict: too few samples after the warm-up for a verdict");
    } else {
        let mut first: Vec<u64> = after[..third].iter().map(|s| s.rss_kib).collect();
        let mut last: Vec<u64> = after[after.len() - third..]
            .iter()
            .map(|s| s.rss_kib)
            .collect();
        let (m1, m3) = (median(&mut first), median(&mut last));
        let growth = (m3 as f64 - m1 as f64) / (m1 as f64).max(1.0);
        let conns_between = after[after.len() - third].connections as f64
            - after[third.saturating_sub(1)].connections as f64;
        let per_conn = (m3 as f64 - m1 as f64) * 1024.0 / conns_between.max(1.0);
        println!(
            "verdict: after the first {warm:.0} s, RSS median of the first third {} vs the last \
             third {}: {:+.1}% ({:+.1} bytes per connection made in between) — {}",
            mib(m1),
            mib(m3),
            100.0 * growth,
            per_conn,
            if growth <= 0.05 {
                "FLAT (≤ 5%)"
            } else {
                "GROWING (> 5%)"
            }
        );
    }
    println!(
        "RSS 2 s after the churn stopped: {}",
        mib(r.rss_after_idle_kib)
    );
    println!();
    print_logs("soak", &logs);
    Ok(())
}

struct SoakSample {
    t: f64,
    rss_kib: u64,
    connections: u64,
}

struct SoakResult {
    samples: Vec<SoakSample>,
    connections: u64,
    failures: u64,
    first_failure: Option<String>,
    rss_after_idle_kib: u64,
    usage: Usage,
}

/// Churn: each worker connects (token in an `auth` frame), joins a session, posts one
/// message and waits for its ack, then drops the connection (every other one with a close
/// frame, the rest by just closing the socket), and again, until the time is up.
async fn soak(server: &Server, args: &Args) -> anyhow::Result<SoakResult> {
    let users = server.users("soak", args.users.max(1)).await?;
    // Every user may post in every session.
    let mut ids = Vec::new();
    for s in 0..SESSIONS {
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
    let deadline = Instant::now() + args.duration();
    let ids = Arc::new(ids);
    let users = Arc::new(users);
    let meter = UsageMeter::start(server);
    let start = Instant::now();
    let mut workers = Vec::new();
    let stride = args.churn.max(1);
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
    let mut next = start + args.sample_every();
    while next <= deadline {
        tokio::time::sleep_until(next.into()).await;
        let sample = SoakSample {
            t: start.elapsed().as_secs_f64(),
            rss_kib: rss_kib(pid).context("the server died during the soak")?,
            connections: connections.load(Ordering::Relaxed),
        };
        progress(&format!(
            "soak: {:>6.0} s  RSS {:>8.1} MiB  {:>8} connections",
            sample.t,
            sample.rss_kib as f64 / 1024.0,
            sample.connections
        ));
        samples.push(sample);
        next += args.sample_every();
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
fn median(values: &mut [u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    values[values.len() / 2]
}
