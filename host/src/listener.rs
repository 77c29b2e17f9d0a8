//! Accepting connections: what `axum::serve` leaves out and a server facing the internet
//! needs. Every TCP connection
//!
//! - takes a slot from a global cap and from its address's cap before anything is read;
//!   past either it is answered `503` (`rate_limited`, `Retry-After`) at once and closed;
//! - must send its first byte, and then a request's headers, within
//!   `server.header_read_timeout` (our watch, then hyper's timer), which also ends a
//!   keep-alive connection idle between requests;
//! - is closed after `server.idle_timeout` with no byte either way (an upgraded WebSocket
//!   leaves this watch: its own ping/pong timeout takes over).
//!
//! The slot lives in the connection's I/O object, so a WebSocket keeps its slot until the
//! socket closes. The accept loop survives running out of file descriptors: it backs off
//! and retries, and the global cap is lowered at start to fit the open-file limit, so the
//! server refuses (cheaply) long before the kernel does.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::ServerConfig;
use crate::metrics::Metrics;

/// File descriptors kept back from the connection cap: the database pool, plugin files,
/// the compile cache, logs, Redis, answering refusals.
const RESERVED_FDS: u64 = 64;
/// Refusals being written at once; past it a refused connection is just closed.
const MAX_REFUSING: usize = 64;

/// The connection limits, as configured and as the open-file limit allows.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long shutdown waits for open requests.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// From config, with the global cap lowered to what the open-file limit allows (after
    /// raising the soft limit to the hard one, as servers do).
    pub fn from_config(config: &ServerConfig) -> Limits {
        let fds = raise_open_file_limit();
        let fit = fds.map_or(usize::MAX, |n| {
            usize::try_from(n.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX)
        });
        let max_connections = config.max_connections.min(fit);
        if max_connections < config.max_connections {
            tracing::warn!(
                configured = config.max_connections,
                effective = max_connections,
                open_file_limit = fds.unwrap_or_default(),
                "server.max_connections lowered to fit the open-file limit"
            );
        }
        Limits {
            max_connections,
            max_per_ip: config.max_connections_per_ip,
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            shutdown_grace: config.shutdown_grace,
        }
    }
}

/// Raise the soft open-file limit to the hard one; returns the limit now in force.
fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        Some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    None
}

/// Open connections, in all and per address.
struct Slots {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection got no slot (the metric's label).
#[derive(Debug, Clone, Copy)]
enum Full {
    Total,
    PerIp,
}

impl Slots {
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Full> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.total >= self.max_total {
            return Err(Full::Total);
        }
        let count = state.per_ip.entry(ip).or_default();
        if *count >= self.max_per_ip {
            return Err(Full::PerIp);
        }
        *count += 1;
        state.total += 1;
        Ok(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

/// One connection's place under the caps; given back on drop.
struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.state.lock().unwrap_or_else(|p| p.into_inner());
        state.total = state.total.saturating_sub(1);
        if let Some(count) = state.per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.per_ip.remove(&self.ip);
            }
        }
    }
}

/// When a connection last moved a byte, in milliseconds since `start`, and whether the
/// client has sent any.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    heard: AtomicBool,
}

impl Activity {
    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }

    /// Resolves once nothing moved for `idle`, or — before the client sent its first byte
    /// — for `first_byte`. (hyper's header timer starts only once the protocol is known,
    /// and knowing it takes the client's first bytes: a silent socket would never time out.)
    async fn idle(&self, idle: Duration, first_byte: Duration) {
        loop {
            let limit = match self.heard.load(Ordering::Relaxed) {
                true => idle,
                false => first_byte.min(idle),
            };
            let quiet = self.idle_for();
            if quiet >= limit {
                return;
            }
            tokio::time::sleep(limit - quiet).await;
        }
    }
}

/// A TCP stream that holds its slot and notes its activity.
struct ConnIo {
    tcp: TcpStream,
    activity: Arc<Activity>,
    _slot: Slot,
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
            self.activity.heard.store(true, Ordering::Relaxed);
        }
        poll
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.tcp).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// Serve `router` on `listener` until `shutdown`, then let open requests finish.
/// Handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Slots {
        max_total: limits.max_connections,
        max_per_ip: limits.max_per_ip,
        state: Mutex::default(),
    });
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // No HTTP/2 keep-alive pings: they would count as activity, and an idle connection
    // would never reach `idle_timeout`.
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut backoff = BACKOFF_START;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => {
                backoff = BACKOFF_START;
                accepted
            }
            Err(e) => {
                // EMFILE/ENFILE and friends: the pending connection stays in the backlog;
                // wait for descriptors to come back instead of spinning or exiting.
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let slot = match slots.acquire(peer.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                metrics.limit_hit(match full {
                    Full::Total => "connections_total",
                    Full::PerIp => "connections_per_ip",
                });
                refuse(tcp, full, &refusing);
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            // Chat frames are small and latency-bound: without TCP_NODELAY a command's
            // reply, written right after the ack, waits for the client's delayed ACK.
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            heard: AtomicBool::new(false),
        });
        let io = TokioIo::new(ConnIo {
            tcp,
            activity: activity.clone(),
            _slot: slot,
        });
        let service = router
            .clone()
            .map_request(move |mut req: axum::extract::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = builder
            .serve_connection_with_upgrades(io, TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        let (idle_timeout, first_byte) = (limits.idle_timeout, limits.header_read_timeout);
        tokio::spawn(async move {
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = activity.idle(idle_timeout, first_byte) => {
                    tracing::debug!(peer = %peer, "closing an idle connection");
                }
            }
        });
    }
    drop(listener);
    // Idle keep-alive connections close at once; a request in flight gets the grace.
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "some requests did not finish within {:?}",
            limits.shutdown_grace
        );
    }
}

const BACKOFF_START: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Answer a connection that got no slot, without waiting on it for long.
fn refuse(mut tcp: TcpStream, full: Full, refusing: &Arc<Semaphore>) {
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        return; // dropped: closed without an answer
    };
    let message = match full {
        Full::Total => "the server is at its connection limit; retry shortly",
        Full::PerIp => "too many connections from your address; retry shortly",
    };
    tokio::spawn(async move {
        let _permit = permit;
        let body = format!(r#"{{"error":{{"code":"rate_limited","message":"{message}"}}}}"#);
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            tcp.write_all(response.as_bytes()).await?;
            tcp.shutdown().await?;
            // Read what the client sent, briefly, so closing does not reset the connection
            // (and destroy the answer) while its request is still unread.
            let mut sink = [0u8; 4096];
            while tcp.read(&mut sink).await? > 0 {}
            Ok::<_, io::Error>(())
        })
        .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cap_per_address_and_in_all() {
        let slots = Arc::new(Slots {
            max_total: 3,
            max_per_ip: 2,
            state: Mutex::default(),
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = slots.acquire(a).unwrap();
        let _second = slots.acquire(a).unwrap();
        assert!(matches!(slots.acquire(a), Err(Full::PerIp)));
        let _third = slots.acquire(b).unwrap();
        assert!(matches!(slots.acquire(b), Err(Full::Total)));
        drop(first);
        assert!(slots.acquire(a).is_ok(), "a dropped slot is given back");
    }
}
