//! `cluster`: the fan-out sweep with every listener on one node, then split over two and
//! over three nodes that share PostgreSQL and fan out over Redis, in the same run; the
//! poster is on the first node every time. Then **rooms spread over three nodes**, with `shard_rooms` on and
//! off in the same run: each session's listeners are all on one node and its poster on the
//! next, so every message crosses Redis once; what each node *receives* from Redis is read
//! from its `slashd_cluster_events_received_total`, and every listener counts its
//! deliveries.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::flags::{postgres_url, Connections, ServerBin};
use crate::report::{progress, Report};
use crate::scenario::fanout;
use crate::server::{self, Server, ServerOpts};
use crate::ws::{self, Ws};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bin: ServerBin,
    /// The PostgreSQL both nodes share (postgres://…; used as is, users get unique names).
    #[arg(long, value_parser = postgres_url)]
    pub database_url: String,
    /// Redis the nodes fan out over.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    #[command(flatten)]
    pub sweep: fanout::Sweep,
    #[command(flatten)]
    pub conns: Connections,
    /// Sessions of the three-node rooms measurement, spread evenly over the nodes (0: skip it).
    #[arg(long, default_value_t = 30)]
    pub rooms: usize,
    /// Listening connections in each of those sessions (all on the session's node).
    #[arg(long, default_value_t = 4)]
    pub room_listeners: usize,
    /// Messages posted to each of those sessions.
    #[arg(long, default_value_t = 50)]
    pub room_messages: usize,
    /// Only the rooms measurement, not the fan-out sweep.
    #[arg(long)]
    pub rooms_only: bool,
}

fn cluster_opts(redis_url: &str, shard_rooms: Option<bool>) -> server::ClusterOpts {
    server::ClusterOpts {
        redis_url: redis_url.to_string(),
        namespace: format!("bench-{}", uuid::Uuid::new_v4().simple()),
        secret: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
        shard_rooms,
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    if !args.rooms_only {
        sweep(&args, &mut report).await?;
    }
    if args.rooms > 0 {
        for shard in [true, false] {
            let label = if shard {
                "3 nodes, shard_rooms = true"
            } else {
                "3 nodes, shard_rooms = false"
            };
            progress(&format!("rooms: {label}"));
            match rooms(&args, shard, &mut report).await {
                Ok(line) => report.notes.push(format!("{label}: {line}")),
                Err(e) => report.notes.push(format!("{label}: {e:#}")),
            }
        }
    }
    report.print(Some(&args.database_url));
    Ok(())
}

async fn sweep(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let node_opts = ServerOpts {
        cluster: Some(cluster_opts(&args.redis_url, None)),
        ..args.bin.opts(Some(args.database_url.clone()))
    };
    let a = Server::start(&node_opts).await?;
    let b = Server::start(&node_opts).await?;
    let c = Server::start(&node_opts).await?;
    let owner = a.users("cposter", 1).await?.remove(0);
    let members = a.users("cfan", args.conns.users.max(1)).await?;
    for &n in &args.sweep.fanout_sizes {
        for (label, urls) in [
            (format!("1 node N={n}"), vec![a.ws_url.clone()]),
            (
                format!("2 nodes N={n}"),
                vec![a.ws_url.clone(), b.ws_url.clone()],
            ),
            (
                format!("3 nodes N={n}"),
                vec![a.ws_url.clone(), b.ws_url.clone(), c.ws_url.clone()],
            ),
        ] {
            for rate in [Some(args.sweep.steady_rate(n)), None] {
                progress(&format!(
                    "{label}: {}",
                    if rate.is_some() {
                        "steady"
                    } else {
                        "saturating"
                    }
                ));
                let params = args
                    .sweep
                    .params(n, rate, args.conns.connect_batch, urls.clone());
                match fanout::fanout(&a, &owner, &members, &params).await {
                    Ok(r) => fanout::rows(report, &label, n, rate, &r),
                    Err(e) => report.notes.push(format!("{label}: {e:#}")),
                }
            }
        }
    }
    report.logs.push(("cluster node A".into(), a.stop()));
    report.logs.push(("cluster node B".into(), b.stop()));
    report.logs.push(("cluster node C".into(), c.stop()));
    Ok(())
}

/// One rooms measurement on three fresh nodes; its one-line result.
async fn rooms(args: &Args, shard: bool, report: &mut Report) -> anyhow::Result<String> {
    let opts = ServerOpts {
        cluster: Some(cluster_opts(&args.redis_url, Some(shard))),
        ..args.bin.opts(Some(args.database_url.clone()))
    };
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Server::start(&opts).await?);
    }
    let posters = nodes[0].users("rposter", args.rooms).await?;
    let listeners = nodes[0]
        .users("rlisten", args.room_listeners.max(1))
        .await?;
    let mut rooms = Vec::new();
    for (i, poster) in posters.iter().enumerate() {
        let session = nodes[0].session(poster, &format!("room {i}")).await?;
        for member in &listeners {
            nodes[0].add_member(poster, &session, member).await?;
        }
        let home = &nodes[i % 3];
        let mut ears = Vec::new();
        for member in &listeners {
            let mut ws = ws::connect_ready(&home.ws_url, &member.token).await?;
            ws::join(&mut ws, &session).await?;
            ears.push(ws);
        }
        let mut mouth = ws::connect_ready(&nodes[(i + 1) % 3].ws_url, &poster.token).await?;
        ws::join(&mut mouth, &session).await?;
        rooms.push((session, mouth, ears));
    }
    let before = received(&nodes).await?;
    let started = Instant::now();
    let messages = args.room_messages;
    let tasks: Vec<_> = rooms
        .into_iter()
        .map(|(session, mouth, ears)| tokio::spawn(room(session, mouth, ears, messages)))
        .collect();
    let mut delivered = 0usize;
    for task in tasks {
        delivered += task.await.context("a room task")??;
    }
    let elapsed = started.elapsed();
    // Events still in flight to nodes that do not deliver them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = received(&nodes).await?;
    let per_node: Vec<u64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.saturating_sub(*b))
        .collect();
    let posted = args.rooms * messages;
    let expected = posted * args.room_listeners.max(1);
    if delivered != expected {
        bail!("delivered {delivered} of {expected}");
    }
    for (i, node) in nodes.into_iter().enumerate() {
        report
            .logs
            .push((format!("rooms node {i} (shard {shard})"), node.stop()));
    }
    let shares: Vec<String> = per_node
        .iter()
        .map(|n| format!("{n} ({:.2})", *n as f64 / posted.max(1) as f64))
        .collect();
    Ok(format!(
        "{posted} messages in {} rooms, {delivered} of {expected} deliveries in {:.1} s; \
         room events received from Redis per node (share of the messages): {}",
        args.rooms,
        elapsed.as_secs_f64(),
        shares.join(", ")
    ))
}

/// Post `messages` to a session (each acked before the next) while its listeners count
/// their deliveries; the deliveries counted.
async fn room(
    session: String,
    mut mouth: Ws,
    ears: Vec<Ws>,
    messages: usize,
) -> anyhow::Result<usize> {
    let counting: Vec<_> = ears
        .into_iter()
        .map(|mut ear| {
            tokio::spawn(async move {
                let mut seen = 0usize;
                while seen < messages {
                    let frame = tokio::time::timeout(ws::WAIT, ws::next_text(&mut ear))
                        .await
                        .context("a listener waited too long")??;
                    if ws::frame_type(&frame) == Some("message") {
                        seen += 1;
                    }
                }
                Ok::<_, anyhow::Error>(seen)
            })
        })
        .collect();
    for i in 0..messages {
        mouth
            .send(Message::text(format!(
                r#"{{"type":"message","session_id":"{session}","content":"room message {i}"}}"#
            )))
            .await?;
        ws::recv_type(&mut mouth, "ack").await?;
    }
    let mut delivered = 0;
    for count in counting {
        delivered += count.await.context("a listener task")??;
    }
    Ok(delivered)
}

/// Each node's `slashd_cluster_events_received_total`.
async fn received(nodes: &[Server]) -> anyhow::Result<Vec<u64>> {
    let mut counts = Vec::new();
    for node in nodes {
        let text = node.metrics().await?;
        let count = text
            .lines()
            .find_map(|l| l.strip_prefix("slashd_cluster_events_received_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .context("no slashd_cluster_events_received_total (a slashd from before it?)")?;
        counts.push(count as u64);
    }
    Ok(counts)
}
