//! `hostile`: normal users' round trips, quiet and while other clients run the hostile
//! plugins (all at once, then each alone) or attack the connection layer: the p99 ratios
//! to quiet, and whether the server stayed healthy.

mod attack;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use futures_util::SinkExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::clients::{connect_all, spawn_clients, ClientStats, Clock};
use crate::flags::{seconds, PluginDir, ServerArgs};
use crate::report::{machine_line, mib, print_logs, progress};
use crate::server::{Server, ServerOpts};
use crate::stats::{self, fmt_us, summarize, Summary};
use crate::usage::{Usage, UsageMeter};
use crate::ws::{self, frame_type, int_field, str_field, WAIT};
use attack::{ConnectionAttack, BOTH_ATTACKS, JOIN_FLOOD, SLOWLORIS};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub plugins: PluginDir,
    /// Normal clients, a user each.
    #[arg(long, default_value_t = 20)]
    pub normal_clients: usize,
    /// Sessions the normal clients are spread over.
    #[arg(long, default_value_t = 4)]
    pub normal_sessions: usize,
    /// Frames per second of each normal client (alternately a post and /help).
    #[arg(long, default_value_t = 6.0)]
    pub normal_rate: f64,
    /// Clients per hostile command (and join flooders, with --connection-attacks).
    #[arg(long, default_value_t = 1)]
    pub per_kind: usize,
    /// The server's per-user command rate (`[commands] rate_per_sec`, burst twice it) —
    /// the default is slashd's own default; 0 lifts it (hostile clients then run as many
    /// calls as the sandbox will take).
    #[arg(long, default_value_t = 5.0)]
    pub command_rate: f64,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    pub phase_secs: f64,
    /// Also run each hostile command alone, a phase each (not with --connection-attacks).
    #[arg(long)]
    pub each_kind: bool,
    /// Attack the connection layer instead of the sandbox (a non-reading client
    /// re-joining a large backlog; slowloris and silent sockets).
    #[arg(long)]
    pub connection_attacks: bool,
    /// Keep slashd's default per-connection frame limits and per-user reconnect rate
    /// (lifted otherwise).
    #[arg(long)]
    pub frame_limits: bool,
    /// Connections opened in parallel.
    #[arg(long, default_value_t = 200)]
    pub connect_batch: usize,
}

impl Args {
    fn phase(&self) -> Duration {
        Duration::from_secs_f64(self.phase_secs)
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let server_opts = ServerOpts {
        extra_config: args.plugins.table("hostile", r#"["kv"]"#)?,
        commands_rate: (args.command_rate > 0.0).then_some(args.command_rate),
        frame_limits: args.frame_limits,
        ..args.server.opts()
    };
    let server = Server::start(&server_opts).await?;
    let phases = hostile(&server, &args).await?;
    let alive = server.rss_kib().is_ok();
    let logs = server.stop();
    println!();
    println!(
        "{}",
        machine_line(
            "slashd hostile gallery",
            args.server.database_url.as_deref()
        )
    );
    println!(
        "{} normal clients in {} sessions, each {} frames/s alternating a post (→ ack) and \
         /help (→ reply); {} client(s) per hostile command, each sending it again as soon as \
         it is answered (50 ms after a rate_limited); {:.0} s per phase; per-user command rate {}; ×quiet is p99 over the p99 \
         of both quiet phases' samples pooled",
        args.normal_clients,
        args.normal_sessions,
        args.normal_rate,
        args.per_kind,
        args.phase_secs,
        if args.command_rate > 0.0 {
            format!("{}/s, burst {}", args.command_rate, 2.0 * args.command_rate)
        } else {
            "lifted".into()
        }
    );
    for (cmd, what) in HOSTILE {
        println!("    {cmd:<14} {what}");
    }
    println!();
    // The baseline pools the samples of both quiet phases (before and after the hostile
    // ones), so one lucky or unlucky quiet phase does not set the ratios.
    let pooled = |f: fn(&ClientStats) -> &Vec<u64>| {
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

/// The hostile commands run under load, and what each does.
const HOSTILE: &[(&str, &str)] = &[
    ("/spin", "loops until the deadline"),
    ("/spin-host", "calls the host in a loop until its quota"),
    ("/membomb", "allocates until the memory limit"),
    ("/bigreply 100", "builds a 100 MiB reply"),
    ("/panic", "panics"),
    ("/recurse", "recurses until the stack overflows"),
    ("/hugekv", "stores an 8 MiB kv value"),
];

struct PhaseResult {
    label: String,
    ack: Option<Summary>,
    command: Option<Summary>,
    normal: ClientStats,
    /// Outcomes of the hostile calls, by kind: answer → count.
    hostile: BTreeMap<String, BTreeMap<String, u64>>,
    usage: Usage,
    healthy: bool,
}

async fn hostile(server: &Server, args: &Args) -> anyhow::Result<Vec<PhaseResult>> {
    let per_kind = args.per_kind.max(1);
    // One user per normal client, so the per-user command rate is each client's own.
    let normal_users = server.users("normal", args.normal_clients.max(1)).await?;
    let session_count = args.normal_sessions.clamp(1, normal_users.len());
    let mut ids = Vec::new();
    for owner in &normal_users[..session_count] {
        ids.push(server.session(owner, "normal").await?);
    }
    let mut tokens = Vec::new();
    let mut sessions = Vec::new();
    for (i, user) in normal_users.iter().enumerate() {
        let s = i % session_count;
        if i != s {
            server.add_member(&normal_users[s], &ids[s], user).await?;
        }
        tokens.push(user.token.clone());
        sessions.push(ids[s].clone());
    }
    // One user and session per hostile client.
    let hostile_users = server.users("eve", HOSTILE.len() * per_kind).await?;
    let mut hostile_sessions = Vec::new();
    for u in &hostile_users {
        hostile_sessions.push(server.session(u, "hostile").await?);
    }

    let mut phases: Vec<(String, Vec<usize>)> = vec![("quiet".into(), vec![])];
    let attack = match args.connection_attacks {
        true => Some(ConnectionAttack::prepare(server).await?),
        false => None,
    };
    if attack.is_some() {
        phases.push((JOIN_FLOOD.into(), vec![]));
        phases.push((SLOWLORIS.into(), vec![]));
        phases.push((BOTH_ATTACKS.into(), vec![]));
    } else {
        phases.push(("all hostile".into(), (0..HOSTILE.len()).collect()));
    }
    if args.each_kind && attack.is_none() {
        phases.push(("all but /spin".into(), (1..HOSTILE.len()).collect()));
        for (k, (cmd, _)) in HOSTILE.iter().enumerate() {
            phases.push((format!("{cmd} alone"), vec![k]));
        }
    }
    phases.push(("quiet again".into(), vec![]));

    let mut results = Vec::new();
    for (label, kinds) in phases {
        progress(&format!(
            "hostile: phase '{label}' for {:.0} s",
            args.phase().as_secs_f64()
        ));
        let conns = connect_all(&server.ws_url, &tokens, &sessions, args.connect_batch).await?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut hostile_tasks = Vec::new();
        for &k in &kinds {
            for j in 0..per_kind {
                let idx = k * per_kind + j;
                let url = server.ws_url.clone();
                let token = hostile_users[idx].token.clone();
                let session = hostile_sessions[idx].clone();
                let stop = stop_rx.clone();
                let line = HOSTILE[k].0.to_string();
                hostile_tasks.push((
                    k,
                    tokio::spawn(async move {
                        hostile_client(&url, &token, &session, &line, stop).await
                    }),
                ));
            }
        }
        let mut attack_tasks = Vec::new();
        if let Some(attack) = &attack {
            if label == JOIN_FLOOD || label == BOTH_ATTACKS {
                for _ in 0..per_kind {
                    attack_tasks.push((
                        "join flood",
                        tokio::spawn(attack.join_flood(stop_rx.clone())),
                    ));
                }
            }
            if label == SLOWLORIS || label == BOTH_ATTACKS {
                attack_tasks.push(("slowloris", tokio::spawn(attack.slowloris(stop_rx.clone()))));
            }
        }
        // Let the hostile calls get going before measuring.
        if !kinds.is_empty() || !attack_tasks.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let base = Instant::now();
        let clock = Clock {
            base,
            measure_from_ns: 0,
        };
        let commands = Arc::new(vec!["/help".to_string()]);
        let meter = UsageMeter::start(server);
        let handles = spawn_clients(
            conns,
            &sessions,
            args.normal_rate,
            2,
            &commands,
            clock,
            &stop_rx,
        );
        tokio::time::sleep(args.phase()).await;
        let usage = meter.finish();
        let _ = stop_tx.send(true);
        let mut normal = ClientStats::default();
        for h in handles {
            normal.merge(h.await.context("normal client task")?);
        }
        let mut outcomes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let named = hostile_tasks
            .into_iter()
            .map(|(k, h)| (HOSTILE[k].0, h))
            .chain(attack_tasks);
        for (name, h) in named {
            let entry = outcomes.entry(name.to_string()).or_default();
            for (what, c) in tally(h).await {
                *entry.entry(what).or_default() += c;
            }
        }
        let healthy = server
            .http
            .get(format!("http://{}/healthz", server.addr))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        let ack = summarize(normal.ack_ns.clone());
        let command = summarize(normal.command_ns.clone());
        results.push(PhaseResult {
            label,
            ack,
            command,
            normal,
            hostile: outcomes,
            usage,
            healthy,
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(results)
}

type Counts = BTreeMap<String, u64>;

/// What a hostile or attacking task counted, or how it failed to finish.
async fn tally(task: tokio::task::JoinHandle<anyhow::Result<Counts>>) -> Counts {
    match tokio::time::timeout(Duration::from_secs(15), task).await {
        Ok(Ok(Ok(counts))) => counts,
        Ok(Ok(Err(e))) => BTreeMap::from([(format!("client failed: {e:#}"), 1)]),
        Ok(Err(e)) => BTreeMap::from([(format!("task: {e}"), 1)]),
        Err(_) => BTreeMap::from([("no answer within 15 s".to_string(), 1)]),
    }
}

/// Run one hostile command again and again (the next as soon as the last is answered, or
/// 50 ms after a `rate_limited` refusal) until `stop`; count the answers (`error` codes,
/// or "reply").
async fn hostile_client(
    url: &str,
    token: &str,
    session: &str,
    line: &str,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut ws = ws::connect_ready(url, token).await?;
    ws::join(&mut ws, session).await?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut i: u64 = 0;
    while !*stop.borrow() {
        i += 1;
        ws.send(Message::text(format!(
            r#"{{"type":"message","id":{i},"session_id":"{session}","content":"{line}"}}"#
        )))
        .await?;
        let answer = tokio::time::timeout(WAIT, async {
            loop {
                let text = ws::next_text(&mut ws).await?;
                match frame_type(&text) {
                    Some("error") if int_field(&text, "id") == Some(i as i64) => {
                        return anyhow::Ok(str_field(&text, "code").unwrap_or("?").to_string())
                    }
                    Some("message") if text.contains(r#""role":"command""#) => {
                        return Ok("reply".to_string())
                    }
                    _ => continue,
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no answer to {line} within {WAIT:?}"))??;
        // Run as many calls as the server takes, without flooding it with refused frames
        // (flooding is the realtime rate limit's business, lifted in these runs).
        if answer == "rate_limited" {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *counts.entry(answer).or_default() += 1;
    }
    let _ = ws.close(None).await;
    Ok(counts)
}
