//! `floor`: round trips of the ping frame through a bare tokio-tungstenite echo server.
//! slashd's own round trips are given as a ratio to it, measured in the same run, because
//! on a shared machine only a ratio within one run compares.

use std::net::SocketAddr;

use anyhow::{anyhow, Context};
use futures_util::SinkExt;
use futures_util::StreamExt;
use tokio::net::TcpListener;

use crate::report::{progress, sample_note, Report, Row};
use crate::round_trip::{round_trips, PING};
use crate::stats::{fmt_us, summarize, Summary};
use crate::usage::CpuMeter;
use crate::ws;

/// The round-trip counts of the floor, which ping, message and all measure too.
#[derive(clap::Args)]
// Flattened into other scenarios' `Args`: their argument groups would share the name.
#[group(id = "floor")]
pub struct Args {
    /// Measured round trips of the floor, and of ping → pong where ping runs.
    #[arg(long, default_value_t = 20_000)]
    pub iterations: usize,
    /// Unmeasured round trips before each measured series (for the series that write to
    /// the database, at most as many as they measure).
    #[arg(long, default_value_t = 1_000)]
    pub warmup: usize,
    /// Run the floor's echo server in a child process (like slashd) instead of on its own
    /// runtime inside the bench process.
    #[arg(long)]
    pub floor_process: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    measure(&args, &mut report).await?;
    // No server, no database: the header names the default one, as it always has.
    report.print(None);
    Ok(())
}

/// The floor's row and note, and its summary for the ratios of the rows after it.
pub async fn measure(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    progress("floor: echo round trips");
    let meter = CpuMeter::start(None);
    let floor = echo_round_trips(args.warmup, args.iterations, args.floor_process).await?;
    report.floor = Some(floor);
    let mut row = Row::new("floor", "echo round trip");
    row.p50 = fmt_us(floor.p50);
    row.p99 = fmt_us(floor.p99);
    row.ratio = "1.00".into();
    report.rows.push(row);
    report.notes.push(sample_note("floor", &floor, &meter));
    Ok(())
}

/// The same frame as ping through a bare echo server.
/// With `own_process`, the echo server runs in a child process (this binary's hidden
/// `echo-server` command), as slashd does; otherwise on its own runtime in this process.
async fn echo_round_trips(warmup: usize, n: usize, own_process: bool) -> anyhow::Result<Summary> {
    let (addr, echo, child) = if own_process {
        let (addr, child) = spawn_echo_process()?;
        (addr, None, Some(child))
    } else {
        let echo = EchoServer::start()?;
        (echo.addr, Some(echo), None)
    };
    let mut ws = ws::connect(&format!("ws://{addr}/"), None).await?;
    let samples = round_trips(&mut ws, warmup, n, PING, |reply| reply == PING).await?;
    let _ = ws.close(None).await;
    drop(ws);
    drop(echo);
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
    summarize(samples).context("no samples")
}

fn spawn_echo_process() -> anyhow::Result<(SocketAddr, std::process::Child)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("echo-server")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .parse()
        .with_context(|| format!("echo-server printed {line:?}"))?;
    Ok((addr, child))
}

/// The hidden `echo-server` command: the floor's echo server alone, in this process. Prints
/// its address, then serves until stdin closes (the parent's end of the pipe).
pub fn serve_echo() -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let echo = EchoServer::start()?;
    println!("{}", echo.addr);
    std::io::stdout().flush()?;
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(echo);
    Ok(())
}

/// A bare tokio-tungstenite echo server on its own two-worker runtime (as slashd has), in
/// its own threads, so client and server do not share a scheduler.
struct EchoServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    fn start() -> anyhow::Result<EchoServer> {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("echo runtime");
            rt.block_on(async move {
                let listener = match TcpListener::bind("127.0.0.1:0").await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e));
                        return;
                    }
                };
                let _ = addr_tx.send(listener.local_addr());
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(echo(stream));
                            }
                        }
                    }
                }
            });
        });
        let addr = addr_rx
            .recv()
            .map_err(|_| anyhow!("echo server thread died"))??;
        Ok(EchoServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn echo(stream: tokio::net::TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(ws::config())).await
    else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            break;
        }
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}
