//! `cluster`: the fan-out sweep with every listener on one node, then split over two nodes
//! that share PostgreSQL and fan out over Redis, in the same run; the poster is on the
//! first node both times.

use crate::flags::{postgres_url, Connections, ServerBin};
use crate::report::{progress, Report};
use crate::scenario::fanout;
use crate::server::{self, Server, ServerOpts};

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
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    let cluster = server::ClusterOpts {
        redis_url: args.redis_url.clone(),
        namespace: format!("bench-{}", uuid::Uuid::new_v4().simple()),
        secret: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
    };
    let node_opts = ServerOpts {
        cluster: Some(cluster),
        ..args.bin.opts(Some(args.database_url.clone()))
    };
    let a = Server::start(&node_opts).await?;
    let b = Server::start(&node_opts).await?;
    let owner = a.users("cposter", 1).await?.remove(0);
    let members = a.users("cfan", args.conns.users.max(1)).await?;
    for &n in &args.sweep.fanout_sizes {
        for (label, urls) in [
            (format!("1 node N={n}"), vec![a.ws_url.clone()]),
            (
                format!("2 nodes N={n}"),
                vec![a.ws_url.clone(), b.ws_url.clone()],
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
                    Ok(r) => fanout::rows(&mut report, &label, n, rate, &r),
                    Err(e) => report.notes.push(format!("{label}: {e:#}")),
                }
            }
        }
    }
    report.logs.push(("cluster node A".into(), a.stop()));
    report.logs.push(("cluster node B".into(), b.stop()));
    report.print(Some(&args.database_url));
    Ok(())
}
