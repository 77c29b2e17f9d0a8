//! `message`: `message` → `ack` round trips through slashd (each one a database write),
//! beside the floor of the same run.

use std::time::Instant;

use anyhow::Context;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::flags::ServerArgs;
use crate::report::{progress, sample_note, Report, Row};
use crate::round_trip::RoundTripServer;
use crate::scenario::floor;
use crate::server::{Server, User};
use crate::stats::{fmt_us, summarize, Summary};
use crate::usage::CpuMeter;
use crate::ws;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub floor: floor::Args,
    /// Measured message → ack round trips (each one is a database write).
    #[arg(long, default_value_t = 5_000)]
    pub message_iterations: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    floor::measure(&args.floor, &mut report).await?;
    let rt = RoundTripServer::start(&args.server.opts()).await?;
    measure(&rt, args.floor.warmup, args.message_iterations, &mut report).await?;
    rt.stop(&mut report);
    report.print(args.server.database_url.as_deref());
    Ok(())
}

/// The message row and note; its ratio is to the floor when the report has it.
pub async fn measure(
    rt: &RoundTripServer,
    warmup: usize,
    iterations: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    progress("message: message → ack round trips");
    let meter = CpuMeter::start(Some(rt.server.pid()));
    let s = message(&rt.server, &rt.user, warmup.min(iterations), iterations).await?;
    let mut row = Row::new("message", "message → ack round trip");
    row.p50 = fmt_us(s.p50);
    row.p99 = fmt_us(s.p99);
    if let Some(f) = report.floor.map(|f| f.p50) {
        row.ratio = format!("{:.2}", s.p50 / f);
    }
    report.rows.push(row);
    report.notes.push(sample_note("message", &s, &meter));
    Ok(())
}

/// `message` → `ack` in a joined session (alone in it); the broadcast copy that follows
/// the ack is drained before the next post.
async fn message(server: &Server, user: &User, warmup: usize, n: usize) -> anyhow::Result<Summary> {
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
