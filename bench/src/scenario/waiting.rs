//! `waiting`: /help round trips quiet, then while N commands wait on a slow HTTP endpoint
//! (the `reach` test plugin's `/reach-get` to a local server that accepts and never
//! answers): a command waiting on I/O holds no thread and no CPU, and gives its
//! `max_concurrent` place up, so `/help` should stay within 2× of quiet.

use std::time::Duration;

use anyhow::{anyhow, Context};
use futures_util::SinkExt;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

use crate::flags::{PluginDir, ServerArgs};
use crate::report::{progress, sample_note, verdict, Report, Row};
use crate::scenario::ping::help_command;
use crate::server::{Server, ServerOpts};
use crate::stats::fmt_us;
use crate::usage::CpuMeter;
use crate::ws;

/// slashd's default `commands.max_running_per_user`.
const PER_USER: usize = 8;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub plugins: PluginDir,
    /// Commands left waiting on the slow endpoint.
    #[arg(long, default_value_t = 200)]
    pub waiting: usize,
    /// /help round trips measured in each phase.
    #[arg(long, default_value_t = 2_000)]
    pub iterations: usize,
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let slow = SlowEndpoint::start().await?;
    let mut extra = args
        .plugins
        .table("reach", r#"["http", "secrets", "progress"]"#)?;
    extra.push_str(&format!(
        "timeout_ms = 600000\nhttp = {{ allow = [\"http://{}/\"], max_requests = 1, timeout_ms = 600000 }}\n",
        slow.addr
    ));
    let opts = ServerOpts {
        extra_config: extra,
        commands_rate: None,
        ..args.server.opts()
    };
    let server = Server::start(&opts).await?;
    // slashd lets one user run `commands.max_running_per_user` (8) at once: spread the
    // waiting commands over enough users.
    let waiters = args.waiting.div_ceil(PER_USER);
    let users = server.users("wait", waiters + 1).await?;
    let (probe, waiters) = users.split_first().context("no users")?;
    let mut report = Report::default();

    progress("waiting: /help round trips, quiet");
    let meter = CpuMeter::start(Some(server.pid()));
    let quiet = help_command(&server, probe, args.warmup, args.iterations).await?;
    report.notes.push(sample_note("quiet", &quiet, &meter));

    progress(&format!(
        "waiting: {} commands waiting on a slow endpoint",
        args.waiting
    ));
    let line = format!("/reach-get http://{}/wait", slow.addr);
    let mut sockets = Vec::new();
    let mut left = args.waiting;
    for waiter in waiters {
        let session = server.session(waiter, "bench waiting").await?;
        let mut ws = ws::connect_ready(&server.ws_url, &waiter.token).await?;
        ws::join(&mut ws, &session).await?;
        for _ in 0..left.min(PER_USER) {
            let frame =
                serde_json::json!({"type": "message", "session_id": session, "content": line});
            ws.send(Message::text(frame.to_string())).await?;
        }
        left = left.saturating_sub(PER_USER);
        sockets.push(ws);
    }
    // Every one of them is connected and waiting before the measurement starts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while slow.accepted() < args.waiting {
        if tokio::time::Instant::now() > deadline {
            return Err(anyhow!(
                "only {} of {} commands reached the slow endpoint",
                slow.accepted(),
                args.waiting
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let meter = CpuMeter::start(Some(server.pid()));
    let busy = help_command(&server, probe, args.warmup, args.iterations).await?;
    report.notes.push(sample_note("waiting", &busy, &meter));
    let still = slow.accepted();

    for (name, s) in [("quiet", &quiet), ("waiting", &busy)] {
        let mut row = Row::new(
            format!("waiting/{name}"),
            format!(
                "/help → reply, {} waiting",
                if name == "quiet" { 0 } else { args.waiting }
            ),
        );
        row.p50 = fmt_us(s.p50);
        row.p99 = fmt_us(s.p99);
        if name == "waiting" {
            let ratio = s.p50 / quiet.p50;
            row.ratio = format!("{ratio:.2} × quiet");
            row.target = format!("p50 ≤ 2× quiet: {}", verdict(ratio <= 2.0));
        }
        report.rows.push(row);
    }
    report.notes.push(format!(
        "{still} connections to the slow endpoint were open during the waiting phase"
    ));
    for mut ws in sockets {
        let _ = ws.close(None).await;
    }
    report.logs.push(("slashd".into(), server.stop()));
    report.print(args.server.database_url.as_deref());
    Ok(())
}

/// A TCP server that accepts, reads the request and never answers.
struct SlowEndpoint {
    addr: String,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowEndpoint {
    async fn start() -> anyhow::Result<SlowEndpoint> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the slow endpoint")?;
        let addr = listener.local_addr()?.to_string();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        Ok(SlowEndpoint { addr, accepted })
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}
