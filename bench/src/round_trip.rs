//! Timed round trips on one connection (send a frame, wait for its answer, again), which
//! the floor, ping, `/help` and message measure; and the one server ping, `/help` and
//! message share.

use std::time::Instant;

use anyhow::{anyhow, bail};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::report::Report;
use crate::server::{Server, ServerOpts, User};
use crate::ws::{frame_type, next_text, Ws, WAIT};

/// The frame both the floor and the ping scenario send, so they move the same bytes.
pub const PING: &str = r#"{"type":"ping"}"#;

/// Send a frame, wait for its answer, `warmup + n` times in sequence; the last `n` round
/// trips are returned, in nanoseconds.
pub async fn round_trips(
    ws: &mut Ws,
    warmup: usize,
    n: usize,
    frame: &str,
    answered: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<u64>> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let start = Instant::now();
        ws.send(Message::text(frame)).await?;
        let wait = async {
            loop {
                let reply = next_text(ws).await?;
                if answered(&reply) {
                    return Ok(());
                }
                if frame_type(&reply) == Some("error") {
                    bail!("error answer: {}", reply.as_str());
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .map_err(|_| anyhow!("no answer within {WAIT:?}"))??;
        if i >= warmup {
            samples.push(start.elapsed().as_nanos() as u64);
        }
    }
    Ok(samples)
}

/// The server ping, `/help` and message run on, with the one user they run as: `all` runs
/// them one after another on the same server.
pub struct RoundTripServer {
    pub server: Server,
    pub user: User,
}

impl RoundTripServer {
    pub async fn start(opts: &ServerOpts) -> anyhow::Result<RoundTripServer> {
        let server = Server::start(opts).await?;
        let user = server.users("rt", 1).await?.remove(0);
        Ok(RoundTripServer { server, user })
    }

    /// Stop the server; its log goes into the report.
    pub fn stop(self, report: &mut Report) {
        report
            .logs
            .push(("ping/message".into(), self.server.stop()));
    }
}
