//! `bench`: starts the real `slashd` binary and measures it over real WebSocket connections
//! on this machine, beside a bare tokio-tungstenite echo server (the floor).
//!
//! ```text
//! cargo build --release -p slashd -p slashd-bench
//! ./target/release/bench all
//! ./target/release/bench load | soak | hostile | durability    # issue 10; see BENCHMARKS.md
//! ./target/release/bench SCENARIO --help                      # that scenario's flags
//! ```

mod clients;
mod flags;
mod peer;
mod report;
mod round_trip;
mod scenario;
mod server;
mod stats;
mod usage;
mod ws;

use clap::{Parser, Subcommand};

use scenario::{
    all, chaos, cluster, complete, db_floor, durability, fanout, floor, hostile, idle, load,
    message, ping, soak, throughput, waiting,
};

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Benchmark slashd over real sockets: echo floor, ping, message, fan-out, idle memory; \
             load, soak, hostile plugins under load, durability across kill -9"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Scenario(Scenario),
    /// Run the floor's echo server alone: print its address, serve until stdin closes.
    #[command(hide = true)]
    EchoServer,
}

#[derive(Subcommand)]
enum Scenario {
    /// Every scenario, in order, then one table.
    All(all::Args),
    /// Round trips through a bare tokio-tungstenite echo server (the floor).
    Floor(floor::Args),
    /// `ping` → `pong` and `/help` → reply round trips (the floor is measured too, for the
    /// ratio).
    Ping(ping::Args),
    /// `message` → `ack` round trips (the floor is measured too, for the ratio).
    Message(message::Args),
    /// One poster, N listeners in one session: deliveries/s and delivery latency (with
    /// --peers, the same sweep against a Node.js `ws` broadcast server too).
    Fanout(fanout::Args),
    /// Server RSS per idle authenticated connection.
    Idle(idle::Args),
    /// Fan-out across nodes: the same session on 1 node, then listeners split over 2 nodes
    /// (PostgreSQL and Redis needed: --database-url, --redis-url).
    Cluster(cluster::Args),
    /// 1,000 clients in 100 sessions posting and running commands for --load-secs:
    /// throughput, ack/delivery/command latency, server CPU and RSS.
    Load(load::Args),
    /// One poster per session keeping --in-flight messages unanswered (closed loop): acked
    /// messages/s, ack latency, the batches the writer formed, then the database's own
    /// floor in the same run.
    Throughput(throughput::Args),
    /// Connection churn (connect, auth, join, post, drop) for --soak-secs, sampling the
    /// server's RSS every --sample-secs: the RSS curve and a verdict.
    Soak(soak::Args),
    /// Normal users' round trips quiet, then while other clients run the hostile plugins
    /// (all at once, then each alone): the p99 ratios.
    Hostile(hostile::Args),
    /// `/help` round trips quiet, then while --waiting commands wait on a slow HTTP
    /// endpoint: the ratio (a waiting command holds no thread and no CPU).
    Waiting(waiting::Args),
    /// `complete` round trips answered by the host alone, then by a plugin's `complete`,
    /// beside `ping`: what completion costs.
    Complete(complete::Args),
    /// Post with acks recorded, kill -9 the server mid-stream, restart it on the same
    /// database (--kills times), then check every acked message in the database. On
    /// SQLite, or on a fresh PostgreSQL database beside --database-url. Exits non-zero on
    /// any loss.
    Durability(durability::Args),
    /// The client side of scripts/cluster-chaos.sh: post and read through every node of a
    /// running cluster while the script injects faults, reconnecting with since_seq; then
    /// check every ack in the database, every client's sessions gap-free and in order, and
    /// presence. Exits non-zero on any violation.
    Chaos(chaos::Args),
    /// The database's own floor for slashd's write pattern, with sqlx in this process (no
    /// server): bump `last_seq` and insert, one message per transaction and batched, on
    /// SQLite and (with --database-url) a fresh PostgreSQL database.
    DbFloor(db_floor::Args),
}

impl Scenario {
    async fn run(self) -> anyhow::Result<()> {
        match self {
            Scenario::All(args) => all::run(args).await,
            Scenario::Floor(args) => floor::run(args).await,
            Scenario::Ping(args) => ping::run(args).await,
            Scenario::Message(args) => message::run(args).await,
            Scenario::Fanout(args) => fanout::run(args).await,
            Scenario::Idle(args) => idle::run(args).await,
            Scenario::Cluster(args) => cluster::run(args).await,
            Scenario::Load(args) => load::run(args).await,
            Scenario::Throughput(args) => throughput::run(args).await,
            Scenario::Soak(args) => soak::run(args).await,
            Scenario::Hostile(args) => hostile::run(args).await,
            Scenario::Waiting(args) => waiting::run(args).await,
            Scenario::Complete(args) => complete::run(args).await,
            Scenario::Durability(args) => durability::run(args).await,
            Scenario::Chaos(args) => chaos::run(args).await,
            Scenario::DbFloor(args) => db_floor::run(args).await,
        }
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        // The floor's child process: nothing of the bench's own beside the echo server.
        Command::EchoServer => floor::serve_echo(),
        Command::Scenario(scenario) => {
            raise_nofile_limit();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(scenario.run())
        }
    }
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Clap checks a command tree (unique argument and group names across flattened
    /// structs, …) only when it is built, so a clash would surface as a panic in one
    /// subcommand at run time; this builds them all.
    #[test]
    fn every_subcommand_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
