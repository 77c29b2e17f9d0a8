//! `idle`: the server's RSS per idle authenticated connection.

use std::time::{Duration, Instant};

use crate::flags::{Connections, ServerArgs};
use crate::report::{progress, verdict, Report, Row};
use crate::server::{Server, ServerOpts, User};
use crate::stats::fmt_count;
use crate::ws;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Idle connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub idle_connections: usize,
    #[command(flatten)]
    pub conns: Connections,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    measure(
        &args.server.opts(),
        args.idle_connections,
        &args.conns,
        &mut report,
    )
    .await?;
    report.print(args.server.database_url.as_deref());
    Ok(())
}

/// The idle rows (RSS per connection, connect rate) and note.
pub async fn measure(
    server_opts: &ServerOpts,
    n: usize,
    conns: &Connections,
    report: &mut Report,
) -> anyhow::Result<()> {
    progress(&format!("idle: opening {n} connections"));
    let server = Server::start(server_opts).await?;
    let users = server.users("idle", conns.users.max(1)).await?;
    let r = idle(&server, &users, n, conns.connect_batch).await?;
    let label = format!("idle {n}");
    let per = r.kib_per_connection();
    let mut row = Row::new(&label, "server RSS per connection");
    row.p50 = format!("{per:.1} KiB");
    row.target = format!("≤ 20 KB: {}", verdict(per * 1.024 <= 20.0));
    report.rows.push(row);
    let mut row = Row::new(&label, "connect + auth rate");
    row.p50 = format!(
        "{}/s",
        fmt_count(r.opened as f64 / r.open_time.as_secs_f64())
    );
    report.rows.push(row);
    report.notes.push(format!(
        "{label}: {} open, {} failed{}; server RSS {} KiB before, {} KiB after",
        r.opened,
        r.failed,
        r.first_error
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default(),
        r.rss_before_kib,
        r.rss_after_kib
    ));
    report.logs.push(("idle".into(), server.stop()));
    Ok(())
}

struct IdleResult {
    opened: usize,
    failed: usize,
    first_error: Option<String>,
    rss_before_kib: u64,
    rss_after_kib: u64,
    open_time: Duration,
}

impl IdleResult {
    fn kib_per_connection(&self) -> f64 {
        if self.opened == 0 {
            return 0.0;
        }
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) / self.opened as f64
    }
}

/// Open `n` authenticated connections that then sit idle; the server's RSS before and
/// after.
async fn idle(
    server: &Server,
    users: &[User],
    n: usize,
    batch: usize,
) -> anyhow::Result<IdleResult> {
    // Warm the server's connection path first, so one-time allocations are in the baseline.
    let urls = [server.ws_url.clone()];
    let warm = ws::open_many(&urls, users, 64.min(n), batch, None).await;
    for ws in warm.into_iter().flatten() {
        let mut ws = ws;
        let _ = ws.close(None).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kib = server.rss_kib()?;

    let start = Instant::now();
    let opened = ws::open_many(&urls, users, n, batch, None).await;
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
