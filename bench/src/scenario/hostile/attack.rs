//! The connection-layer attacks of issue 14, run by `hostile --connection-attacks`: a
//! non-reading client whose every `join` would queue a large backlog, and slowloris and
//! silent sockets.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::anyhow;
use futures_util::SinkExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::report::progress;
use crate::server::Server;
use crate::ws::{self, frame_type, WAIT};

pub const JOIN_FLOOD: &str = "join flood";
pub const SLOWLORIS: &str = "slowloris";
pub const BOTH_ATTACKS: &str = "join flood + slowloris";

/// The connection-layer attacks of issue 14: a non-reading client whose every `join`
/// would queue a large backlog, and sockets that send headers a byte at a time or nothing.
pub struct ConnectionAttack {
    url: String,
    addr: String,
    token: String,
    session: String,
}

/// Messages in the attacked session's backlog, and their size: ~1.2 MB a join.
const BACKLOG: usize = 300;
const BACKLOG_CHARS: usize = 4000;
/// Sockets the slowloris task keeps open at once.
const SLOW_SOCKETS: usize = 300;

impl ConnectionAttack {
    pub async fn prepare(server: &Server) -> anyhow::Result<ConnectionAttack> {
        let users = server.users("mallory", 1).await?;
        let user = &users[0];
        let session = server.session(user, "backlog").await?;
        progress(&format!("hostile: writing a backlog of {BACKLOG} messages"));
        let mut ws = ws::connect_ready(&server.ws_url, &user.token).await?;
        ws::join(&mut ws, &session).await?;
        let filler = "x".repeat(BACKLOG_CHARS);
        let mut stored = 0;
        while stored < BACKLOG {
            ws.send(Message::text(format!(
                r#"{{"type":"message","id":{stored},"session_id":"{session}","content":"{filler}"}}"#
            )))
            .await?;
            let answer = tokio::time::timeout(WAIT, async {
                loop {
                    let text = ws::next_text(&mut ws).await?;
                    match frame_type(&text) {
                        Some("ack") => return anyhow::Ok(true),
                        // The frame limits, when kept: wait and send it again.
                        Some("error") => return Ok(false),
                        _ => continue,
                    }
                }
            })
            .await
            .map_err(|_| anyhow!("no ack for a backlog message within {WAIT:?}"))??;
            match answer {
                true => stored += 1,
                false => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let _ = ws.close(None).await;
        Ok(ConnectionAttack {
            url: server.ws_url.clone(),
            addr: server.addr.to_string(),
            token: user.token.clone(),
            session,
        })
    }

    /// Join with `since_seq: 0` and leave, again and again, never reading; reconnect when
    /// the server closes the socket. Counts joins sent and closes.
    pub fn join_flood(
        &self,
        stop: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = anyhow::Result<BTreeMap<String, u64>>> + Send + 'static
    {
        let (url, token, session) = (self.url.clone(), self.token.clone(), self.session.clone());
        async move {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            let join = format!(r#"{{"type":"join","session_id":"{session}","since_seq":0}}"#);
            let leave = format!(r#"{{"type":"leave","session_id":"{session}"}}"#);
            while !*stop.borrow() {
                let mut ws = match ws::connect_ready(&url, &token).await {
                    Ok(ws) => ws,
                    Err(_) => {
                        // Refused (the reconnect rate): try again, as an attacker would.
                        *counts.entry("reconnects refused".into()).or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                *counts.entry("connections".into()).or_default() += 1;
                while !*stop.borrow() {
                    let sent = async {
                        ws.send(Message::text(join.clone())).await?;
                        ws.send(Message::text(leave.clone())).await
                    };
                    match tokio::time::timeout(Duration::from_millis(500), sent).await {
                        Ok(Ok(())) => *counts.entry("joins sent".into()).or_default() += 1,
                        // Closed by the server, or its window full: start over.
                        Ok(Err(_)) => {
                            *counts.entry("closed by the server".into()).or_default() += 1;
                            break;
                        }
                        Err(_) => {
                            *counts.entry("send blocked".into()).or_default() += 1;
                            break;
                        }
                    }
                }
            }
            Ok(counts)
        }
    }

    /// Keep `SLOW_SOCKETS` sockets open: half send a header byte every second, half send
    /// nothing; count how many the server closed.
    pub fn slowloris(
        &self,
        stop: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = anyhow::Result<BTreeMap<String, u64>>> + Send + 'static
    {
        let addr = self.addr.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..SLOW_SOCKETS {
                let (addr, stop) = (addr.clone(), stop.clone());
                tasks.spawn(async move { slow_socket(&addr, i % 2 == 0, stop).await });
            }
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            while let Some(done) = tasks.join_next().await {
                let what = match done {
                    Ok(Ok(what)) => what,
                    Ok(Err(e)) => format!("failed: {e}"),
                    Err(e) => format!("task: {e}"),
                };
                *counts.entry(what).or_default() += 1;
            }
            Ok(counts)
        }
    }
}

/// One slowloris socket, reopened whenever the server closes it, until `stop`. Returns
/// how its last socket ended.
async fn slow_socket(
    addr: &str,
    trickle: bool,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut closed = 0u64;
    while !*stop.borrow() {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        if trickle {
            tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await?;
        }
        let mut buf = [0u8; 512];
        loop {
            if *stop.borrow() {
                return Ok(format!(
                    "{} socket(s), {closed} closed by the server",
                    if trickle { "trickling" } else { "silent" }
                ));
            }
            let read = tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed += 1;
                    break;
                }
                Ok(Ok(_)) => continue,
                Err(_) if trickle => {
                    if tcp.write_all(b"X").await.is_err() {
                        closed += 1;
                        break;
                    }
                }
                Err(_) => {}
            }
        }
    }
    Ok(format!(
        "{} socket(s), {closed} closed by the server",
        if trickle { "trickling" } else { "silent" }
    ))
}
