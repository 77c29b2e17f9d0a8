//! `load`: 1,000 clients in 100 sessions posting and running commands, open loop, for
//! --load-secs: throughput, ack / delivery / command latency, server CPU and RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use crate::clients::{connect_all, layout, spawn_clients, ClientStats, Clock};
use crate::flags::{seconds, PluginDir, ServerArgs};
use crate::report::{machine_line, mib, print_logs, progress};
use crate::server::{Server, ServerOpts};
use crate::stats::{fmt_count, fmt_us, summarize, Summary};
use crate::usage::{Usage, UsageMeter};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub plugins: PluginDir,
    /// Concurrent clients.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Sessions the clients are spread over.
    #[arg(long, default_value_t = 100)]
    pub sessions: usize,
    /// Users the clients are spread over (each session has several).
    #[arg(long, default_value_t = 100)]
    pub load_users: usize,
    /// Frames (posts and commands) each client sends per second.
    #[arg(long, default_value_t = 1.0)]
    pub client_rate: f64,
    /// Every Nth frame of a client is a command (0: none).
    #[arg(long, default_value_t = 10)]
    pub command_every: u64,
    /// The commands, taken in turn.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "/help,/status,/tally load"
    )]
    pub commands: Vec<String>,
    /// Seconds the clients run (the first --load-warmup-secs are not measured).
    #[arg(long, default_value_t = 30.0, value_parser = seconds)]
    pub load_secs: f64,
    /// Seconds at the start that are not measured (at most half of --load-secs).
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    pub load_warmup_secs: f64,
    /// Connections opened in parallel.
    #[arg(long, default_value_t = 200)]
    pub connect_batch: usize,
}

impl Args {
    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.load_secs)
    }

    fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.load_warmup_secs.min(self.load_secs / 2.0))
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let server_opts = ServerOpts {
        extra_config: args.plugins.table("tally", r#"["kv"]"#)?,
        ..args.server.opts()
    };
    let server = Server::start(&server_opts).await?;
    let r = load(&server, &args).await?;
    let logs = server.stop();
    let secs = r.measured.as_secs_f64().max(1e-9);
    let st = &r.stats;
    let offered = args.clients as f64 * args.client_rate;
    println!();
    println!(
        "{}",
        machine_line("slashd load", args.server.database_url.as_deref())
    );
    println!(
        "{} clients in {} sessions ({} users), each sending {} frames/s (every {}th a command: {}); \
         {:.0} s, the first {:.0} s not measured; setup {:.1} s",
        args.clients,
        args.sessions,
        args.load_users,
        args.client_rate,
        args.command_every,
        args.commands.join(" "),
        args.load_secs,
        args.warmup().as_secs_f64(),
        r.setup.as_secs_f64()
    );
    println!();
    println!("offered             {} frames/s", fmt_count(offered));
    println!(
        "posts               {} sent, {} acked (whole run)",
        fmt_count(st.posts_sent as f64),
        fmt_count(st.posts_acked as f64)
    );
    println!(
        "commands            {} sent, {} replies",
        fmt_count(st.commands_sent as f64),
        fmt_count(st.command_replies as f64)
    );
    let ack_rate = r.ack.map(|a| a.count as f64 / secs).unwrap_or(0.0);
    let delivery_rate = r.delivery.map(|d| d.count as f64 / secs).unwrap_or(0.0);
    let command_rate = r.command.map(|d| d.count as f64 / secs).unwrap_or(0.0);
    println!(
        "throughput          {} messages/s acked, {} deliveries/s, {} command replies/s (measured part)",
        fmt_count(ack_rate),
        fmt_count(delivery_rate),
        fmt_count(command_rate)
    );
    println!("ack latency         {}", fmt_latency(&r.ack));
    println!("delivery latency    {}", fmt_latency(&r.delivery));
    println!("command reply       {}", fmt_latency(&r.command));
    for (cmd, s) in &r.by_command {
        println!("  {cmd:<17} {}", fmt_latency(s));
    }
    println!(
        "refusals/errors     {} ({})",
        st.refusals(),
        st.errors_text()
    );
    println!(
        "broken connections  {}{}",
        st.broken,
        st.first_break
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "CPU, % of one core  server {:.0}, bench client {:.0}, everything else {:.0}",
        r.usage.pct(r.usage.server_cpu),
        r.usage.pct(r.usage.client_cpu),
        r.usage.others_pct()
    );
    println!(
        "server RSS          {} at the start of the measured part, {} peak, {} at its end",
        mib(r.usage.rss_start_kib),
        mib(r.usage.rss_peak_kib),
        mib(r.usage.rss_end_kib)
    );
    println!();
    print_logs("load", &logs);
    Ok(())
}

struct LoadResult {
    stats: ClientStats,
    measured: Duration,
    usage: Usage,
    setup: Duration,
    ack: Option<Summary>,
    delivery: Option<Summary>,
    command: Option<Summary>,
    /// Per command of the list: its reply latency.
    by_command: Vec<(String, Option<Summary>)>,
}

async fn load(server: &Server, args: &Args) -> anyhow::Result<LoadResult> {
    let setup_start = Instant::now();
    progress(&format!("load: creating {} users", args.load_users));
    let users = server.users("load", args.load_users.max(1)).await?;
    progress(&format!(
        "load: {} sessions, {} clients connecting",
        args.sessions, args.clients
    ));
    let (ids, map) = layout(server, &users, args.sessions, args.clients).await?;
    let tokens: Vec<String> = map.iter().map(|&(_, u)| users[u].token.clone()).collect();
    let sessions: Vec<String> = map.iter().map(|&(s, _)| ids[s].clone()).collect();
    let conns = connect_all(&server.ws_url, &tokens, &sessions, args.connect_batch).await?;
    // Presence frames from the joins settle before the run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let setup = setup_start.elapsed();

    let commands = Arc::new(args.commands.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let base = Instant::now();
    let clock = Clock {
        base,
        measure_from_ns: args.warmup().as_nanos() as u64,
    };
    let handles = spawn_clients(
        conns,
        &sessions,
        args.client_rate,
        args.command_every,
        &commands,
        clock,
        &stop_rx,
    );
    progress(&format!(
        "load: running {:.0} s ({:.0} s warm-up)",
        args.duration().as_secs_f64(),
        args.warmup().as_secs_f64()
    ));
    tokio::time::sleep(args.warmup()).await;
    let meter = UsageMeter::start(server);
    let measure_start = Instant::now();
    tokio::time::sleep(args.duration().saturating_sub(args.warmup())).await;
    let measured = measure_start.elapsed();
    let usage = meter.finish();
    let _ = stop_tx.send(true);
    let mut stats = ClientStats::default();
    for h in handles {
        stats.merge(h.await.context("load client task")?);
    }
    let ack = summarize(std::mem::take(&mut stats.ack_ns));
    let delivery = summarize(std::mem::take(&mut stats.delivery_ns));
    let command = summarize(std::mem::take(&mut stats.command_ns));
    let mut by = std::mem::take(&mut stats.command_ns_by);
    let by_command = args
        .commands
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), summarize(by.remove(&i).unwrap_or_default())))
        .collect();
    Ok(LoadResult {
        stats,
        measured,
        usage,
        setup,
        ack,
        delivery,
        command,
        by_command,
    })
}

fn fmt_latency(s: &Option<Summary>) -> String {
    match s {
        Some(s) => format!(
            "p50 {}, p99 {} ({} samples, max {})",
            fmt_us(s.p50),
            fmt_us(s.p99),
            fmt_count(s.count as f64),
            fmt_us(s.max)
        ),
        None => "no samples".into(),
    }
}
