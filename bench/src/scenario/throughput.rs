//! `throughput`: how many messages one node stores and acks when it is kept busy — one
//! poster per session (100 sessions by default), each keeping --in-flight messages
//! unanswered (closed loop: every ack sends the next one), for --secs. Reports acked
//! messages/s, ack latency, server CPU and the batch sizes the writer formed
//! (`slashd_store_batch_messages` from `/metrics`), then measures the database's own floor
//! (`db-floor`) in the same run, at one message per transaction and at the batch size the
//! server formed, so the server is read against what the disk and sqlx allow.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::db_floor;
use crate::clients::connect_all;
use crate::flags::{at_least_one, seconds, ServerArgs};
use crate::report::{machine_line, print_logs, progress};
use crate::server::Server;
use crate::stats::{fmt_count, fmt_us, summarize};
use crate::usage::UsageMeter;
use crate::ws::{frame_type, str_field, Ws};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Sessions, one poster (its own user and connection) in each.
    #[arg(long, default_value_t = 100, value_parser = at_least_one)]
    pub sessions: usize,
    /// Messages each poster keeps unanswered.
    #[arg(long, default_value_t = 16, value_parser = at_least_one)]
    pub in_flight: usize,
    /// Seconds the posters run (the first --warmup-secs are not measured).
    #[arg(long, default_value_t = 15.0, value_parser = seconds)]
    pub secs: f64,
    /// Seconds at the start that are not measured (at most half of --secs).
    #[arg(long, default_value_t = 3.0, value_parser = seconds)]
    pub warmup_secs: f64,
    /// Skip the database floor measured after the server's run.
    #[arg(long)]
    pub no_floor: bool,
}

/// What the posters saw.
#[derive(Default)]
struct Posted {
    sent: u64,
    acked: u64,
    /// Acks that arrived in the measured part.
    acked_measured: u64,
    /// The latency (ns) of those acks whose message was sent in the measured part.
    ack_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Posted {
    fn merge(&mut self, other: Posted) {
        self.sent += other.sent;
        self.acked += other.acked;
        self.acked_measured += other.acked_measured;
        self.ack_ns.extend(other.ack_ns);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let server = Server::start(&args.server.opts()).await?;
    progress(&format!(
        "throughput: {} posters, {} sessions",
        args.sessions, args.sessions
    ));
    let users = server.users("tp", args.sessions).await?;
    let mut sessions = Vec::with_capacity(users.len());
    for (i, user) in users.iter().enumerate() {
        sessions.push(server.session(user, &format!("throughput {i}")).await?);
    }
    let tokens: Vec<String> = users.iter().map(|u| u.token.clone()).collect();
    let conns = connect_all(&server.ws_url, &tokens, &sessions, 100).await?;

    let base = Instant::now();
    let warmup = Duration::from_secs_f64(args.warmup_secs.min(args.secs / 2.0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (measure_tx, measure_rx) = watch::channel(None::<Instant>);
    let handles: Vec<_> = conns
        .into_iter()
        .zip(&sessions)
        .map(|(ws, session)| {
            tokio::spawn(poster(
                ws,
                session.clone(),
                args.in_flight,
                base,
                measure_rx.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    progress(&format!("throughput: running {:.0} s", args.secs));
    tokio::time::sleep(warmup).await;
    let batches_before = batch_totals(&server).await?;
    let meter = UsageMeter::start(&server);
    let measure_start = Instant::now();
    let _ = measure_tx.send(Some(measure_start));
    tokio::time::sleep(Duration::from_secs_f64(args.secs).saturating_sub(warmup)).await;
    let measured = measure_start.elapsed().as_secs_f64().max(1e-9);
    let usage = meter.finish();
    let batches_after = batch_totals(&server).await?;
    let _ = stop_tx.send(true);
    let mut posted = Posted::default();
    for h in handles {
        posted.merge(h.await.context("a poster task")?);
    }
    let logs = server.stop();

    let (messages, batches) = (
        batches_after.0 - batches_before.0,
        batches_after.1 - batches_before.1,
    );
    let mean_batch = if batches > 0.0 {
        messages / batches
    } else {
        0.0
    };
    let acked_measured = posted.acked_measured;
    let ack = summarize(std::mem::take(&mut posted.ack_ns));
    println!();
    println!(
        "{}",
        machine_line("slashd throughput", args.server.database_url.as_deref())
    );
    println!(
        "{} posters in {} sessions, {} messages in flight each, {:.0} s, the first {:.0} s not measured",
        args.sessions,
        args.sessions,
        args.in_flight,
        args.secs,
        warmup.as_secs_f64()
    );
    println!();
    println!(
        "posts               {} sent, {} acked (whole run)",
        fmt_count(posted.sent as f64),
        fmt_count(posted.acked as f64)
    );
    println!(
        "throughput          {} messages/s acked (measured part)",
        fmt_count(acked_measured as f64 / measured)
    );
    match &ack {
        Some(s) => println!(
            "ack latency         p50 {}, p99 {} (max {})",
            fmt_us(s.p50),
            fmt_us(s.p99),
            fmt_us(s.max)
        ),
        None => println!("ack latency         no samples"),
    }
    println!(
        "batches             {} messages in {} transactions, {:.1} per transaction",
        fmt_count(messages),
        fmt_count(batches),
        mean_batch
    );
    println!(
        "errors              {}{}",
        posted.errors,
        posted
            .first_error
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "CPU, % of one core  server {:.0}, bench client {:.0}, everything else {:.0}",
        usage.pct(usage.server_cpu),
        usage.pct(usage.client_cpu),
        usage.others_pct()
    );
    println!();
    print_logs("throughput", &logs);
    if posted.errors > 0 || posted.acked == 0 {
        bail!("the posters saw errors or no acks (above)");
    }
    if args.no_floor {
        return Ok(());
    }
    // The same run's floor, at one message per transaction and at the server's batch size.
    let formed = mean_batch.round().max(1.0) as usize;
    let mut batch = vec![1, formed];
    batch.dedup();
    db_floor::run(db_floor::Args {
        bin: args.server.bin.clone(),
        database_url: args.server.database_url.clone(),
        messages: 20_000,
        sessions: args.sessions,
        batch,
    })
    .await
}

/// (messages, transactions) the writer has stored so far, from `/metrics`.
async fn batch_totals(server: &Server) -> anyhow::Result<(f64, f64)> {
    let text = server.metrics().await?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((
        value("slashd_store_batch_messages_sum "),
        value("slashd_store_batch_messages_count "),
    ))
}

/// One poster: keeps `in_flight` messages unanswered until `stop`, then waits for the last
/// acks a moment and closes.
async fn poster(
    ws: Ws,
    session: String,
    in_flight: usize,
    base: Instant,
    measure: watch::Receiver<Option<Instant>>,
    mut stop: watch::Receiver<bool>,
) -> Posted {
    let mut st = Posted::default();
    let (mut sink, mut stream) = ws.split();
    let now_ns = || base.elapsed().as_nanos() as u64;
    let frame = |at: u64| {
        Message::text(format!(
            r#"{{"type":"message","id":"t{at}","session_id":"{session}","content":"t {at}"}}"#
        ))
    };
    let mut stopping = false;
    for _ in 0..in_flight {
        if sink.send(frame(now_ns())).await.is_err() {
            st.errors += 1;
            st.first_error.get_or_insert_with(|| "send failed".into());
            return st;
        }
        st.sent += 1;
    }
    let grace = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            changed = stop.changed(), if !stopping => {
                if changed.is_err() || *stop.borrow() {
                    stopping = true;
                    grace.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(2));
                }
            }
            _ = &mut grace => break,
            next = stream.next() => {
                let text = match next {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        st.errors += 1;
                        st.first_error.get_or_insert_with(|| format!("read: {e}"));
                        break;
                    }
                    None => {
                        st.errors += 1;
                        st.first_error.get_or_insert_with(|| "connection ended".into());
                        break;
                    }
                };
                match frame_type(&text) {
                    Some("ack") => {
                        let Some(sent) = str_field(&text, "id")
                            .and_then(|id| id.strip_prefix('t'))
                            .and_then(|v| v.parse::<u64>().ok())
                        else {
                            continue;
                        };
                        st.acked += 1;
                        let now = now_ns();
                        if let (Some(from), false) = (*measure.borrow(), stopping) {
                            st.acked_measured += 1;
                            if sent >= from.duration_since(base).as_nanos() as u64 {
                                st.ack_ns.push(now.saturating_sub(sent));
                            }
                        }
                        if stopping {
                            if st.acked == st.sent {
                                break;
                            }
                            continue;
                        }
                        if sink.send(frame(now)).await.is_err() {
                            st.errors += 1;
                            st.first_error.get_or_insert_with(|| "send failed".into());
                            break;
                        }
                        st.sent += 1;
                    }
                    Some("error") => {
                        st.errors += 1;
                        st.first_error.get_or_insert_with(|| text.to_string());
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = sink.close().await;
    st
}
