//! `all`: floor, ping (and /help), message, fan-out and idle, in that order, then one table.
//! Not cluster (it needs PostgreSQL and Redis), nor the long scenarios with reports of
//! their own (load, soak, hostile, durability).

use crate::flags::{Connections, ServerArgs};
use crate::report::Report;
use crate::round_trip::RoundTripServer;
use crate::scenario::{fanout, floor, idle, message, ping};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub floor: floor::Args,
    /// Measured message → ack and /help → reply round trips (each one is a database
    /// write).
    #[arg(long, default_value_t = 5_000)]
    pub message_iterations: usize,
    #[command(flatten)]
    pub sweep: fanout::Sweep,
    /// Skip the saturating fan-out runs (posting as fast as deliveries complete, at most
    /// --window messages in flight), which measure the most deliveries per second.
    #[arg(long)]
    pub no_saturate: bool,
    /// Idle connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub idle_connections: usize,
    #[command(flatten)]
    pub conns: Connections,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let server_opts = args.server.opts();
    let mut report = Report::default();
    floor::measure(&args.floor, &mut report).await?;
    // The three round-trip series share one server, started once.
    let rt = RoundTripServer::start(&server_opts).await?;
    let (warmup, iterations) = (args.floor.warmup, args.floor.iterations);
    ping::measure(
        &rt,
        warmup,
        iterations,
        args.message_iterations,
        &mut report,
    )
    .await?;
    message::measure(&rt, warmup, args.message_iterations, &mut report).await?;
    rt.stop(&mut report);
    fanout::measure(
        &server_opts,
        &args.sweep,
        args.no_saturate,
        &args.conns,
        &mut report,
    )
    .await?;
    idle::measure(
        &server_opts,
        args.idle_connections,
        &args.conns,
        &mut report,
    )
    .await?;
    report.print(args.server.database_url.as_deref());
    Ok(())
}
