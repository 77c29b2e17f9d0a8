//! `ping`: `ping` → `pong` round trips through slashd, and `/help` → its reply (stored,
//! run in the sandbox, stored and broadcast), beside the floor of the same run.

use anyhow::Context;

use crate::flags::ServerArgs;
use crate::report::{progress, sample_note, verdict, Report, Row};
use crate::round_trip::{round_trips, RoundTripServer, PING};
use crate::scenario::floor;
use crate::server::{Server, User};
use crate::stats::{fmt_us, summarize, Summary};
use crate::usage::CpuMeter;
use crate::ws::{self, frame_type};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub floor: floor::Args,
    /// Measured /help → reply round trips (each one stores the command and its reply).
    #[arg(long, default_value_t = 5_000)]
    pub message_iterations: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    floor::measure(&args.floor, &mut report).await?;
    let rt = RoundTripServer::start(&args.server.opts()).await?;
    measure(
        &rt,
        args.floor.warmup,
        args.floor.iterations,
        args.message_iterations,
        &mut report,
    )
    .await?;
    rt.stop(&mut report);
    report.print(args.server.database_url.as_deref());
    Ok(())
}

/// The ping and /help rows and notes; their ratios are to the floor when the report has it.
pub async fn measure(
    rt: &RoundTripServer,
    warmup: usize,
    iterations: usize,
    help_iterations: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (server, user) = (&rt.server, &rt.user);
    let floor_p50 = report.floor.map(|f| f.p50);
    progress("ping: ping → pong round trips");
    let meter = CpuMeter::start(Some(server.pid()));
    let s = ping(server, user, warmup, iterations).await?;
    let mut row = Row::new("ping", "ping → pong round trip");
    row.p50 = fmt_us(s.p50);
    row.p99 = fmt_us(s.p99);
    if let Some(f) = floor_p50 {
        let ratio = s.p50 / f;
        row.ratio = format!("{ratio:.2}");
        row.target = format!("p50 ≤ 1.3× floor: {}", verdict(ratio <= 1.3));
    }
    report.rows.push(row);
    report.notes.push(sample_note("ping", &s, &meter));

    progress("help: /help → command reply round trips");
    let meter = CpuMeter::start(Some(server.pid()));
    let h = help_command(server, user, warmup.min(help_iterations), help_iterations).await?;
    let mut row = Row::new("help", "/help → reply round trip");
    row.p50 = fmt_us(h.p50);
    row.p99 = fmt_us(h.p99);
    if let Some(f) = floor_p50 {
        row.ratio = format!("{:.2}", h.p50 / f);
    }
    let vs_ping = h.p50 / s.p50;
    row.target = format!(
        "p50 ≤ 1.5× ping: {} ({vs_ping:.2}×)",
        verdict(vs_ping <= 1.5)
    );
    report.rows.push(row);
    report.notes.push(sample_note("help", &h, &meter));
    Ok(())
}

/// `ping` → `pong` through slashd.
async fn ping(server: &Server, user: &User, warmup: usize, n: usize) -> anyhow::Result<Summary> {
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
