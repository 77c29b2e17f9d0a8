//! `bench`: starts the real `slashd` binary and measures it over real WebSocket connections
//! on this machine, beside a bare tokio-tungstenite echo server (the floor).
//!
//! ```text
//! cargo build --release -p slashd -p slashd-bench
//! ./target/release/bench all
//! ```

mod scenarios;
mod server;
mod stats;
mod ws;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use scenarios::{FanoutParams, FanoutResult};
use server::{CpuMeter, LogReport, Server, ServerOpts};
use stats::{fmt_count, fmt_us, Summary};

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Benchmark slashd over real sockets: echo floor, ping, message, fan-out, idle memory"
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
