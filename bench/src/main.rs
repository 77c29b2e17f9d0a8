//! `bench`: starts the real `slashd` binary and measures it over real WebSocket connections
//! on this machine, beside a bare tokio-tungstenite echo server (the floor).
//!
//! ```text
//! cargo build --release -p slashd -p slashd-bench
//! ./target/release/bench all
//! ./target/release/bench load | soak | hostile | durability    # issue 10; see BENCHMARKS.md
//! ```

mod durability;
mod load;
mod scenarios;
mod server;
mod stats;
mod ws;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use scenarios::{FanoutParams, FanoutResult};
use server::{CpuMeter, LogReport, Server, ServerOpts};
use stats::{fmt_count, fmt_us, Summary};

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Benchmark slashd over real sockets: echo floor, ping, message, fan-out, idle memory; \
             load, soak, hostile plugins under load, durability across kill -9"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Every scenario, in order, then one table.
    All,
    /// Round trips through a bare tokio-tungstenite echo server (the floor).
    Floor,
    /// `ping` → `pong` round trips (the floor is measured too, for the ratio).
    Ping,
    /// `message` → `ack` round trips (the floor is measured too, for the ratio).
    Message,
    /// One poster, N listeners in one session: deliveries/s and delivery latency.
    Fanout,
    /// Server RSS per idle authenticated connection.
    Idle,
    /// Fan-out across nodes: the same session on 1 node, then listeners split over 2 nodes
    /// (PostgreSQL and Redis needed: --database-url, --redis-url).
    Cluster,
    /// 1,000 clients in 100 sessions posting and running commands for --load-secs:
    /// throughput, ack/delivery/command latency, server CPU and RSS.
    Load,
    /// Connection churn (connect, auth, join, post, drop) for --soak-secs, sampling the
    /// server's RSS every --sample-secs: the RSS curve and a verdict.
    Soak,
    /// Normal users' round trips quiet, then while other clients run the hostile plugins
    /// (all at once, then each alone): the p99 ratios.
    Hostile,
    /// Post with acks recorded, kill -9 the server mid-stream, restart it on the same
    /// database (--kills times), then check every acked message in the database. On
    /// SQLite, or on a fresh PostgreSQL database beside --database-url. Exits non-zero on
    /// any loss.
    Durability,
    /// Run the floor's echo server alone: print its address, serve until stdin closes.
    #[command(hide = true)]
    EchoServer,
}

#[derive(Args, Clone)]
struct Opts {
    /// The slashd binary to start.
    #[arg(long, global = true, default_value = "target/release/slashd")]
    server_bin: PathBuf,
    /// Database for the server: a fresh SQLite file in a temp dir by default, or a
    /// postgres://… URL (used as is; users get unique names).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Redis for the `cluster` scenario.
    #[arg(long, global = true, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Run the floor's echo server in a child process (like slashd) instead of on its own
    /// runtime inside the bench process.
    #[arg(long, global = true)]
    floor_process: bool,
    /// Measured round trips for floor and ping.
    #[arg(long, global = true, default_value_t = 20_000)]
    iterations: usize,
    /// Measured round trips for message (each one is a database write).
    #[arg(long, global = true, default_value_t = 5_000)]
    message_iterations: usize,
    /// Unmeasured round trips before each round-trip scenario.
    #[arg(long, global = true, default_value_t = 1_000)]
    warmup: usize,
    /// Seconds each fan-out run posts for.
    #[arg(long, global = true, default_value_t = 5.0)]
    duration: f64,
    /// Fan-out sizes (listening connections in the session).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "10,100,1000"
    )]
    fanout_sizes: Vec<usize>,
    /// Load of the steady fan-out runs, in deliveries per second: the poster posts at
    /// this / N messages per second, capped by --max-rate.
    #[arg(long, global = true, default_value_t = 100_000.0)]
    offered: f64,
    /// Highest steady post rate, in messages per second.
    #[arg(long, global = true, default_value_t = 1_000.0)]
    max_rate: f64,
    /// Skip the saturating fan-out runs (posting as fast as deliveries complete, at most
    /// --window messages in flight), which measure the most deliveries per second.
    #[arg(long, global = true)]
    no_saturate: bool,
    /// Most messages in flight (posted, not yet delivered to every listener).
    #[arg(long, global = true, default_value_t = 64)]
    window: usize,
    /// Idle connections to open.
    #[arg(long, global = true, default_value_t = 10_000)]
    idle_connections: usize,
    /// Connections opened in parallel.
    #[arg(long, global = true, default_value_t = 200)]
    connect_batch: usize,
    /// Viewer users the fan-out and idle connections are spread over.
    #[arg(long, global = true, default_value_t = 8)]
    users: usize,
    /// Where the test plugins (tally, hostile) were built.
    #[arg(
        long,
        global = true,
        default_value = "target/plugins/wasm32-wasip2/release"
    )]
    plugin_dir: PathBuf,
    /// load: concurrent clients.
    #[arg(long, global = true, default_value_t = 1000)]
    clients: usize,
    /// load: sessions the clients are spread over.
    #[arg(long, global = true, default_value_t = 100)]
    sessions: usize,
    /// load: users the clients are spread over (each session has several).
    #[arg(long, global = true, default_value_t = 100)]
    load_users: usize,
    /// load: frames (posts and commands) each client sends per second.
    #[arg(long, global = true, default_value_t = 1.0)]
    client_rate: f64,
    /// load: every Nth frame of a client is a command (0: none).
    #[arg(long, global = true, default_value_t = 10)]
    command_every: u64,
    /// load: the commands, taken in turn.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "/help,/status,/tally load"
    )]
    commands: Vec<String>,
    /// load: seconds the clients run (the first --load-warmup-secs are not measured).
    #[arg(long, global = true, default_value_t = 30.0)]
    load_secs: f64,
    #[arg(long, global = true, default_value_t = 5.0)]
    load_warmup_secs: f64,
    /// soak: seconds of churn.
    #[arg(long, global = true, default_value_t = 120.0)]
    soak_secs: f64,
    /// soak: seconds between RSS samples.
    #[arg(long, global = true, default_value_t = 5.0)]
    sample_secs: f64,
    /// soak: connections churning at once.
    #[arg(long, global = true, default_value_t = 50)]
    churn: usize,
    /// soak: the part of the run, from the start, left out of the verdict (0–0.9).
    #[arg(long, global = true, default_value_t = 0.25)]
    soak_warmup: f64,
    /// hostile: normal clients and their sessions.
    #[arg(long, global = true, default_value_t = 20)]
    normal_clients: usize,
    #[arg(long, global = true, default_value_t = 4)]
    normal_sessions: usize,
    /// hostile: frames per second of each normal client (alternately a post and /help).
    #[arg(long, global = true, default_value_t = 6.0)]
    normal_rate: f64,
    /// hostile: clients per hostile command.
    #[arg(long, global = true, default_value_t = 1)]
    per_kind: usize,
    /// hostile: the server's per-user command rate (`[commands] rate_per_sec`, burst twice
    /// it) — the default is slashd's own default; 0 lifts it (hostile clients then run as
    /// many calls as the sandbox will take).
    #[arg(long, global = true, default_value_t = 5.0)]
    command_rate: f64,
    /// hostile: seconds per phase.
    #[arg(long, global = true, default_value_t = 10.0)]
    phase_secs: f64,
    /// hostile: also run each hostile command alone, a phase each.
    #[arg(long, global = true)]
    each_kind: bool,
    /// hostile: attack the connection layer instead of the sandbox (a non-reading client
    /// re-joining a large backlog; slowloris and silent sockets).
    #[arg(long, global = true)]
    connection_attacks: bool,
    /// hostile: keep slashd's default per-connection frame limits and per-user reconnect
    /// rate (lifted otherwise).
    #[arg(long, global = true)]
    frame_limits: bool,
    /// durability: posting clients, sessions, and messages in flight per client.
    #[arg(long, global = true, default_value_t = 8)]
    dur_clients: usize,
    #[arg(long, global = true, default_value_t = 4)]
    dur_sessions: usize,
    #[arg(long, global = true, default_value_t = 8)]
    dur_window: usize,
    /// durability: kill -9s, each after --cycle-secs of posting (and posting as long again
    /// after the last restart).
    #[arg(long, global = true, default_value_t = 3)]
    kills: usize,
    #[arg(long, global = true, default_value_t = 3.0)]
    cycle_secs: f64,
    /// durability: keep the fresh PostgreSQL database even when the check passed.
    #[arg(long, global = true)]
    keep_database: bool,
    /// durability: check the checker (a fake ack and a wrong seq must make it fail).
    #[arg(long, global = true, hide = true)]
    self_test: bool,
}

/// One line of the result table.
struct Row {
    scenario: String,
    metric: String,
    p50: String,
    p99: String,
    ratio: String,
    target: String,
}

impl Row {
    fn new(scenario: impl Into<String>, metric: impl Into<String>) -> Row {
        Row {
            scenario: scenario.into(),
            metric: metric.into(),
            p50: String::new(),
            p99: String::new(),
            ratio: String::new(),
            target: String::new(),
        }
    }
}

struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    logs: Vec<(String, LogReport)>,
    floor: Option<Summary>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.scenario == Scenario::EchoServer {
        return echo_server_main();
    }
    raise_nofile_limit();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let opts = cli.opts;
    let server_opts = ServerOpts {
        bin: opts.server_bin.clone(),
        database_url: opts.database_url.clone(),
        cluster: None,
        extra_config: String::new(),
        commands_rate: None,
        frame_limits: false,
    };
    let mut report = Report {
        rows: Vec::new(),
        notes: Vec::new(),
        logs: Vec::new(),
        floor: None,
    };
    let all = cli.scenario == Scenario::All;
    let wants = |s: Scenario| all || cli.scenario == s;

    if wants(Scenario::Floor) || wants(Scenario::Ping) || wants(Scenario::Message) {
        progress("floor: echo round trips");
        let meter = CpuMeter::start(None);
        let floor = scenarios::floor(opts.warmup, opts.iterations, opts.floor_process).await?;
        report.floor = Some(floor);
        let mut row = Row::new("floor", "echo round trip");
        row.p50 = fmt_us(floor.p50);
        row.p99 = fmt_us(floor.p99);
        row.ratio = "1.00".into();
        report.rows.push(row);
        report.notes.push(sample_note("floor", &floor, &meter));
    }
    if wants(Scenario::Ping) || wants(Scenario::Message) {
        run_round_trips(
            &opts,
            &server_opts,
            &mut report,
            wants(Scenario::Ping),
            wants(Scenario::Message),
        )
        .await?;
    }
    if wants(Scenario::Fanout) {
        run_fanout(&opts, &server_opts, &mut report).await?;
    }
    if wants(Scenario::Idle) {
        run_idle(&opts, &server_opts, &mut report).await?;
    }
    // Not part of `all`: it needs PostgreSQL and Redis.
    if cli.scenario == Scenario::Cluster {
        run_cluster(&opts, &server_opts, &mut report).await?;
    }
    // Not part of `all` either: long, and each prints its own report.
    match cli.scenario {
        Scenario::Load => return run_load(&opts, &server_opts).await,
        Scenario::Soak => return run_soak(&opts, &server_opts).await,
        Scenario::Hostile => return run_hostile(&opts, &server_opts).await,
        Scenario::Durability => return run_durability(&opts, &server_opts).await,
        _ => {}
    }
    print_report(&report, &opts);
    Ok(())
}

async fn run_round_trips(
    opts: &Opts,
    server_opts: &ServerOpts,
    report: &mut Report,
    ping: bool,
    message: bool,
) -> anyhow::Result<()> {
    let server = Server::start(server_opts).await?;
    let users = server.users("rt", 1).await?;
    let floor_p50 = report.floor.map(|f| f.p50);
    if ping {
        progress("ping: ping → pong round trips");
        let meter = CpuMeter::start(Some(server.pid()));
        let s = scenarios::ping(&server, &users[0], opts.warmup, opts.iterations).await?;
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
        let h = scenarios::help_command(
            &server,
            &users[0],
            opts.warmup.min(opts.message_iterations),
            opts.message_iterations,
        )
        .await?;
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
    }
    if message {
        progress("message: message → ack round trips");
        let meter = CpuMeter::start(Some(server.pid()));
        let s = scenarios::message(
            &server,
            &users[0],
            opts.warmup.min(opts.message_iterations),
            opts.message_iterations,
        )
        .await?;
        let mut row = Row::new("message", "message → ack round trip");
        row.p50 = fmt_us(s.p50);
        row.p99 = fmt_us(s.p99);
        if let Some(f) = floor_p50 {
            row.ratio = format!("{:.2}", s.p50 / f);
        }
        report.rows.push(row);
        report.notes.push(sample_note("message", &s, &meter));
    }
    report.logs.push(("ping/message".into(), server.stop()));
    Ok(())
}

/// The same fan-out with every listener on one node, then split over two nodes that share
/// PostgreSQL and fan out over Redis; the poster is on the first node both times.
async fn run_cluster(
    opts: &Opts,
    server_opts: &ServerOpts,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(db) = server_opts
        .database_url
        .clone()
        .filter(|u| u.starts_with("postgres"))
    else {
        anyhow::bail!("the cluster scenario needs --database-url postgres://…");
    };
    let cluster = server::ClusterOpts {
        redis_url: opts.redis_url.clone(),
        namespace: format!("bench-{}", uuid::Uuid::new_v4().simple()),
        secret: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
    };
    let node_opts = ServerOpts {
        database_url: Some(db),
        cluster: Some(cluster),
        ..server_opts.clone()
    };
    let a = Server::start(&node_opts).await?;
    let b = Server::start(&node_opts).await?;
    let owner = a.users("cposter", 1).await?.remove(0);
    let members = a.users("cfan", opts.users.max(1)).await?;
    for &n in &opts.fanout_sizes {
        for (label, urls) in [
            (format!("1 node N={n}"), vec![a.ws_url.clone()]),
            (
                format!("2 nodes N={n}"),
                vec![a.ws_url.clone(), b.ws_url.clone()],
            ),
        ] {
            for rate in [Some((opts.offered / n as f64).min(opts.max_rate)), None] {
                progress(&format!(
                    "{label}: {}",
                    if rate.is_some() {
                        "steady"
                    } else {
                        "saturating"
                    }
                ));
                let params = FanoutParams {
                    n,
                    rate,
                    duration: Duration::from_secs_f64(opts.duration),
                    window: opts.window,
                    batch: opts.connect_batch,
                    listen_urls: urls.clone(),
                };
                match scenarios::fanout(&a, &owner, &members, &params).await {
                    Ok(r) => fanout_rows(report, &label, n, rate, &r),
                    Err(e) => report.notes.push(format!("{label}: {e:#}")),
                }
            }
        }
    }
    report.logs.push(("cluster node A".into(), a.stop()));
    report.logs.push(("cluster node B".into(), b.stop()));
    Ok(())
}

async fn run_fanout(
    opts: &Opts,
    server_opts: &ServerOpts,
    report: &mut Report,
) -> anyhow::Result<()> {
    let server = Server::start(server_opts).await?;
    let owner = server.users("poster", 1).await?.remove(0);
    let members = server.users("fan", opts.users.max(1)).await?;
    // Per N: a steady run at a moderate load (latency), then a saturating one (capacity).
    let mut runs: Vec<(usize, Option<f64>)> = Vec::new();
    for &n in &opts.fanout_sizes {
        runs.push((n, Some((opts.offered / n as f64).min(opts.max_rate))));
        if !opts.no_saturate {
            runs.push((n, None));
        }
    }
    for (n, rate) in runs {
        let label = format!("fanout N={n}");
        progress(&format!(
            "{label}: {} for {:.0} s",
            match rate {
                Some(r) => format!("posting {r:.0} msg/s"),
                None => "posting as fast as deliveries complete".into(),
            },
            opts.duration
        ));
        let params = FanoutParams {
            n,
            rate,
            duration: Duration::from_secs_f64(opts.duration),
            window: opts.window,
            batch: opts.connect_batch,
            listen_urls: Vec::new(),
        };
        match scenarios::fanout(&server, &owner, &members, &params).await {
            Ok(r) => fanout_rows(report, &label, n, rate, &r),
            Err(e) => {
                let mut row = Row::new(label.clone(), "FAILED");
                row.p50 = "—".into();
                report.rows.push(row);
                report.notes.push(format!("{label}: {e:#}"));
            }
        }
        // Let the server finish closing the previous run's connections.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    report.logs.push(("fanout".into(), server.stop()));
    Ok(())
}

fn fanout_rows(report: &mut Report, label: &str, n: usize, rate: Option<f64>, r: &FanoutResult) {
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

async fn run_idle(
    opts: &Opts,
    server_opts: &ServerOpts,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = opts.idle_connections;
    progress(&format!("idle: opening {n} connections"));
    let server = Server::start(server_opts).await?;
    let users = server.users("idle", opts.users.max(1)).await?;
    let r = scenarios::idle(&server, &users, n, opts.connect_batch).await?;
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

fn echo_server_main() -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let echo = scenarios::EchoServer::start()?;
    println!("{}", echo.addr);
    std::io::stdout().flush()?;
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(echo);
    Ok(())
}

fn sample_note(label: &str, s: &Summary, meter: &CpuMeter) -> String {
    format!(
        "{label}: {} round trips measured, slowest {}; other processes used {:.0}% of one core",
        fmt_count(s.count as f64),
        fmt_us(s.max),
        meter.others_pct()
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn progress(what: &str) {
    eprintln!("bench: {what}");
}

fn print_report(report: &Report, opts: &Opts) {
    let header = Row {
        scenario: "scenario".into(),
        metric: "metric".into(),
        p50: "p50 / value".into(),
        p99: "p99".into(),
        ratio: "× floor".into(),
        target: "target".into(),
    };
    let rows: Vec<&Row> = std::iter::once(&header).chain(report.rows.iter()).collect();
    let width =
        |f: fn(&Row) -> &String| rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
    let w = [
        width(|r| &r.scenario),
        width(|r| &r.metric),
        width(|r| &r.p50),
        width(|r| &r.p99),
        width(|r| &r.ratio),
    ];
    println!();
    println!(
        "slashd benchmark — {} cores, {} — database: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model(),
        opts.database_url
            .as_deref()
            .map(|u| if u.starts_with("postgres") {
                "PostgreSQL"
            } else {
                "custom"
            })
            .unwrap_or("SQLite")
    );
    println!();
    for (i, r) in rows.iter().enumerate() {
        println!(
            "{}  {}  {}  {}  {}  {}",
            pad(&r.scenario, w[0], false),
            pad(&r.metric, w[1], false),
            pad(&r.p50, w[2], true),
            pad(&r.p99, w[3], true),
            pad(&r.ratio, w[4], true),
            r.target
        );
        if i == 0 {
            println!(
                "{}",
                "-".repeat(w.iter().sum::<usize>() + 12 + header.target.len() + 14)
            );
        }
    }
    if !report.notes.is_empty() {
        println!();
        for note in &report.notes {
            println!("  {note}");
        }
    }
    println!();
    for (name, log) in &report.logs {
        println!(
            "server log ({name}): {} warnings, {} errors",
            log.warnings, log.errors
        );
        for line in log.lines.iter().take(5) {
            println!("    {line}");
        }
    }
}

fn pad(s: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(s.chars().count()));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Raise the open-file soft limit to the hard limit; the server child inherits it.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                eprintln!("bench: could not raise the open-file limit");
            }
        }
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            eprintln!("bench: open-file limit {}", lim.rlim_cur);
        }
    }
}

/// A `[plugins.NAME]` table for a test plugin built into --plugin-dir.
fn plugin_table(opts: &Opts, name: &str, grants: &str) -> anyhow::Result<String> {
    let path = opts.plugin_dir.join(format!("{name}.wasm"));
    let path = std::fs::canonicalize(&path).with_context(|| {
        format!(
            "plugin {} not found (`cargo build -p slashd` builds the test plugins; or pass \
             --plugin-dir)",
            path.display()
        )
    })?;
    Ok(format!(
        "\n[plugins.{name}]\npath = {:?}\ngrants = {grants}\n",
        path.display().to_string()
    ))
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

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn print_logs(name: &str, log: &LogReport) {
    println!(
        "server log ({name}): {} warnings, {} errors",
        log.warnings, log.errors
    );
    for line in log.lines.iter().take(5) {
        println!("    {line}");
    }
}

async fn run_load(opts: &Opts, server_opts: &ServerOpts) -> anyhow::Result<()> {
    let server_opts = ServerOpts {
        extra_config: plugin_table(opts, "tally", r#"["kv"]"#)?,
        ..server_opts.clone()
    };
    let server = Server::start(&server_opts).await?;
    let params = load::LoadParams {
        clients: opts.clients,
        sessions: opts.sessions,
        users: opts.load_users,
        duration: Duration::from_secs_f64(opts.load_secs),
        warmup: Duration::from_secs_f64(opts.load_warmup_secs.min(opts.load_secs / 2.0)),
        rate: opts.client_rate,
        command_every: opts.command_every,
        commands: opts.commands.clone(),
        batch: opts.connect_batch,
    };
    let r = load::load(&server, &params).await?;
    let logs = server.stop();
    let secs = r.measured.as_secs_f64().max(1e-9);
    let st = &r.stats;
    let offered = opts.clients as f64 * opts.client_rate;
    println!();
    println!(
        "slashd load — {} cores, {} — database: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model(),
        db_label(opts)
    );
    println!(
        "{} clients in {} sessions ({} users), each sending {} frames/s (every {}th a command: {}); \
         {:.0} s, the first {:.0} s not measured; setup {:.1} s",
        opts.clients,
        opts.sessions,
        opts.load_users,
        opts.client_rate,
        opts.command_every,
        opts.commands.join(" "),
        opts.load_secs,
        params.warmup.as_secs_f64(),
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

async fn run_soak(opts: &Opts, server_opts: &ServerOpts) -> anyhow::Result<()> {
    let server = Server::start(server_opts).await?;
    let params = load::SoakParams {
        duration: Duration::from_secs_f64(opts.soak_secs),
        concurrency: opts.churn,
        sessions: 10,
        users: opts.users.max(1),
        sample_every: Duration::from_secs_f64(opts.sample_secs.max(0.5)),
    };
    progress(&format!(
        "soak: {} workers churning for {:.0} s",
        params.concurrency, opts.soak_secs
    ));
    let r = load::soak(&server, &params).await?;
    let logs = server.stop();
    println!();
    println!(
        "slashd soak — {} cores, {} — database: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model(),
        db_label(opts)
    );
    println!(
        "{} workers, each: connect, auth frame, join, post, wait for the ack, drop (half with \
         a close frame, half by closing the socket), repeat; {:.0} s",
        opts.churn, opts.soak_secs
    );
    println!();
    println!(
        "{:>8}  {:>10}  {:>12}  {:>10}",
        "t (s)", "RSS (MiB)", "connections", "conn/s"
    );
    let mut prev: Option<&load::SoakSample> = None;
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
    let warm = opts.soak_warmup.clamp(0.0, 0.9) * opts.soak_secs;
    let after: Vec<&load::SoakSample> = r.samples.iter().filter(|s| s.t >= warm).collect();
    let third = after.len() / 3;
    println!();
    println!(
        "connections made {} ({}/s), failed {}{}",
        fmt_count(r.connections as f64),
        fmt_count(r.connections as f64 / opts.soak_secs.max(1e-9)),
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
        let (m1, m3) = (load::median(&mut first), load::median(&mut last));
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

async fn run_hostile(opts: &Opts, server_opts: &ServerOpts) -> anyhow::Result<()> {
    let server_opts = ServerOpts {
        extra_config: plugin_table(opts, "hostile", r#"["kv"]"#)?,
        commands_rate: (opts.command_rate > 0.0).then_some(opts.command_rate),
        frame_limits: opts.frame_limits,
        ..server_opts.clone()
    };
    let server = Server::start(&server_opts).await?;
    let params = load::HostileParams {
        connection_attacks: opts.connection_attacks,
        normal_clients: opts.normal_clients,
        normal_sessions: opts.normal_sessions,
        normal_rate: opts.normal_rate,
        per_kind: opts.per_kind.max(1),
        phase: Duration::from_secs_f64(opts.phase_secs),
        each_kind: opts.each_kind,
        batch: opts.connect_batch,
    };
    let phases = load::hostile(&server, &params).await?;
    let alive = server.rss_kib().is_ok();
    let logs = server.stop();
    println!();
    println!(
        "slashd hostile gallery — {} cores, {} — database: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model(),
        db_label(opts)
    );
    println!(
        "{} normal clients in {} sessions, each {} frames/s alternating a post (→ ack) and \
         /help (→ reply); {} client(s) per hostile command, each sending it again as soon as \
         it is answered (50 ms after a rate_limited); {:.0} s per phase; per-user command rate {}; ×quiet is p99 over the p99 \
         of both quiet phases' samples pooled",
        opts.normal_clients,
        opts.normal_sessions,
        opts.normal_rate,
        opts.per_kind,
        opts.phase_secs,
        if opts.command_rate > 0.0 {
            format!("{}/s, burst {}", opts.command_rate, 2.0 * opts.command_rate)
        } else {
            "lifted".into()
        }
    );
    for (cmd, what) in load::HOSTILE {
        println!("    {cmd:<14} {what}");
    }
    println!();
    // The baseline pools the samples of both quiet phases (before and after the hostile
    // ones), so one lucky or unlucky quiet phase does not set the ratios.
    let pooled = |f: fn(&load::ClientStats) -> &Vec<u64>| {
        stats::summarize(
            phases
                .iter()
                .filter(|p| p.label.starts_with("quiet"))
                .flat_map(|p| f(&p.normal).iter().copied())
                .collect(),
        )
    };
    let (qa, qc) = (pooled(|s| &s.ack_ns), pooled(|s| &s.command_ns));
    let ratio = |v: Option<Summary>, q: Option<Summary>| match (v, q) {
        (Some(v), Some(q)) if q.p99 > 0.0 => format!("{:.2}", v.p99 / q.p99),
        _ => "—".into(),
    };
    println!(
        "{:<22} {:>10} {:>10} {:>7}  {:>10} {:>10} {:>7}  {:>6} {:>6}  {:>9}  refusals",
        "phase",
        "ack p50",
        "ack p99",
        "×quiet",
        "/help p50",
        "/help p99",
        "×quiet",
        "srvCPU",
        "other",
        "RSS peak"
    );
    println!(
        "{:<22} {:>10} {:>10} {:>7}  {:>10} {:>10}",
        "quiet, both pooled",
        qa.map(|s| fmt_us(s.p50)).unwrap_or_default(),
        qa.map(|s| fmt_us(s.p99)).unwrap_or_default(),
        "1.00",
        qc.map(|s| fmt_us(s.p50)).unwrap_or_default(),
        qc.map(|s| fmt_us(s.p99)).unwrap_or_default(),
    );
    for p in &phases {
        println!(
            "{:<22} {:>10} {:>10} {:>7}  {:>10} {:>10} {:>7}  {:>5.0}% {:>5.0}%  {:>9}  {}",
            p.label,
            p.ack.map(|s| fmt_us(s.p50)).unwrap_or_default(),
            p.ack.map(|s| fmt_us(s.p99)).unwrap_or_default(),
            ratio(p.ack, qa),
            p.command.map(|s| fmt_us(s.p50)).unwrap_or_default(),
            p.command.map(|s| fmt_us(s.p99)).unwrap_or_default(),
            ratio(p.command, qc),
            p.usage.pct(p.usage.server_cpu),
            p.usage.others_pct(),
            mib(p.usage.rss_peak_kib),
            p.normal.errors_text()
        );
    }
    println!();
    for p in &phases {
        if p.hostile.is_empty() {
            continue;
        }
        let outcomes: Vec<String> = p
            .hostile
            .iter()
            .map(|(cmd, counts)| {
                let c: Vec<String> = counts.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
                format!("{cmd}: {}", c.join(", "))
            })
            .collect();
        println!("{} — hostile answers: {}", p.label, outcomes.join("; "));
        println!(
            "    normal: {} posts acked of {}, {} /help replies of {}, broken connections {}; \
             /healthz after: {}",
            p.normal.posts_acked,
            p.normal.posts_sent,
            p.normal.command_replies,
            p.normal.commands_sent,
            p.normal.broken,
            if p.healthy { "200" } else { "FAILED" }
        );
    }
    println!();
    println!(
        "server alive at the end: {}",
        if alive { "yes" } else { "NO" }
    );
    print_logs("hostile", &logs);
    Ok(())
}

async fn run_durability(opts: &Opts, server_opts: &ServerOpts) -> anyhow::Result<()> {
    let postgres = opts
        .database_url
        .clone()
        .filter(|u| u.starts_with("postgres"));
    if opts.database_url.is_some() && postgres.is_none() {
        anyhow::bail!("durability: --database-url must be postgres://… (SQLite is the default)");
    }
    let params = durability::DurabilityParams {
        postgres,
        clients: opts.dur_clients,
        sessions: opts.dur_sessions,
        window: opts.dur_window,
        kills: opts.kills,
        cycle: Duration::from_secs_f64(opts.cycle_secs),
        keep_database: opts.keep_database,
        self_test: opts.self_test,
    };
    let started = std::time::Instant::now();
    let r = durability::run(server_opts, &params).await?;
    println!();
    println!(
        "durability — {}: {} clients × {} in flight over {} sessions; {} × kill -9 + restart \
         (restarts took {} ms), {:.1} s in all",
        r.backend,
        opts.dur_clients,
        opts.dur_window,
        r.sessions,
        r.kills,
        r.restart_ms
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_secs_f64()
    );
    println!(
        "  sent {}, acked {}, refused {}, unanswered when the server died {} (may or may not \
         be stored)",
        r.sent, r.acked, r.refused, r.unanswered
    );
    println!(
        "  database ({}): {} messages in our sessions",
        r.database, r.rows
    );
    if r.violations.is_empty() {
        println!(
            "  PASS: all {} acked messages are stored with their seq and content; seqs \
             unique and gap-free in every session",
            r.acked
        );
    } else {
        for v in &r.violations {
            println!("  {v}");
        }
    }
    print_logs("durability", &r.logs);
    durability::verdict(&r)
}

fn db_label(opts: &Opts) -> &'static str {
    opts.database_url
        .as_deref()
        .map(|u| {
            if u.starts_with("postgres") {
                "PostgreSQL"
            } else {
                "custom"
            }
        })
        .unwrap_or("SQLite")
}
