//! `complete`: what completing costs. `complete` frames answered by the host alone
//! (command names), then by the built-in `help` plugin's `complete` export (a fresh wasm
//! instance per frame, as for every call), beside `ping` on the same connection: the
//! page sends one per keystroke pause, and a plugin's answer must arrive well within
//! `commands.complete_timeout` (200 ms).
//!
//! (The bench lifts the per-user completion rate, as it does the command rate.)

use anyhow::Context;

use crate::flags::ServerArgs;
use crate::report::{progress, sample_note, Report, Row};
use crate::round_trip::{round_trips, RoundTripServer, PING};
use crate::server::ServerOpts;
use crate::stats::{fmt_us, summarize, Summary};
use crate::usage::CpuMeter;
use crate::ws::{self, frame_type};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Round trips measured per kind.
    #[arg(long, default_value_t = 3_000)]
    pub iterations: usize,
    #[arg(long, default_value_t = 300)]
    pub warmup: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let opts = ServerOpts {
        completion_rate: true,
        ..args.server.opts()
    };
    let rt = RoundTripServer::start(&opts).await?;
    let session = rt.server.session(&rt.user, "bench complete").await?;
    let mut ws = ws::connect_ready(&rt.server.ws_url, &rt.user.token).await?;
    ws::join(&mut ws, &session).await?;
    let mut report = Report::default();
    let cases = [
        ("ping", "ping → pong round trip", PING.to_string()),
        (
            "complete-host",
            "complete \"/he\" (command names, the host's own)",
            complete_frame(&session, "/he"),
        ),
        (
            "complete-plugin",
            "complete \"/help he\" (the help plugin's complete, a fresh instance)",
            complete_frame(&session, "/help he"),
        ),
    ];
    let mut ping: Option<Summary> = None;
    for (name, metric, frame) in cases {
        progress(&format!("{name}: {metric}"));
        let meter = CpuMeter::start(Some(rt.server.pid()));
        let samples = round_trips(&mut ws, args.warmup, args.iterations, &frame, |reply| {
            matches!(frame_type(reply), Some("pong" | "completions" | "error"))
        })
        .await?;
        let s = summarize(samples).context("no samples")?;
        let mut row = Row::new(name, metric);
        row.p50 = fmt_us(s.p50);
        row.p99 = fmt_us(s.p99);
        if let Some(p) = &ping {
            row.ratio = format!("{:.2}", s.p50 / p.p50);
            row.target = "ratio to ping".into();
        }
        report.rows.push(row);
        report.notes.push(sample_note(name, &s, &meter));
        ping.get_or_insert(s);
    }
    let _ = ws.close(None).await;
    rt.stop(&mut report);
    report.print(args.server.database_url.as_deref());
    Ok(())
}

fn complete_frame(session: &str, line: &str) -> String {
    serde_json::json!({"type": "complete", "session_id": session, "line": line}).to_string()
}
