//! One bounded queue per connection, drained by a writer task. Producers never wait: a full
//! queue means the client stopped reading, and the connection is closed (1008) rather than
//! allowed to slow anyone else down. The queue is bounded twice — in frames and in bytes —
//! so a few huge frames (a `joined` with a long backlog) cannot hold more memory than many
//! small ones. A broadcast is serialized once and the same bytes are shared by every queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const UNAUTHORIZED: u16 = 4001;
}

#[derive(Debug)]
pub enum Outgoing {
    Text(Utf8Bytes),
    Ping,
    Close(u16, &'static str),
}

impl Outgoing {
    /// What it counts against the queue's byte bound.
    fn size(&self) -> usize {
        match self {
            Outgoing::Text(text) => text.len(),
            Outgoing::Ping | Outgoing::Close(..) => 0,
        }
    }
}

/// The sending side of a connection's queue; cheap to clone into rooms.
#[derive(Clone)]
pub struct Outbound {
    tx: mpsc::Sender<Outgoing>,
    overflow: CancellationToken,
    /// Bytes of text frames queued and not yet written.
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Outbound {
    /// Queue a frame without waiting. On a full queue the connection is marked for closing
    /// and `false` is returned.
    pub fn push(&self, text: Utf8Bytes) -> bool {
        self.push_item(Outgoing::Text(text))
    }

    pub fn push_item(&self, item: Outgoing) -> bool {
        let size = item.size();
        let before = self.queued_bytes.fetch_add(size, Ordering::Relaxed);
        if before.saturating_add(size) > self.max_bytes {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            return self.overflowed_now();
        }
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(e) => {
                self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                match e {
                    mpsc::error::TrySendError::Full(_) => self.overflowed_now(),
                    mpsc::error::TrySendError::Closed(_) => false,
                }
            }
        }
    }

    fn overflowed_now(&self) -> bool {
        self.metrics.outbound_frame_dropped();
        self.overflow.cancel();
        false
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Queue a close frame, waiting (briefly) for room so queued frames go out first.
    pub async fn close(&self, code: u16, reason: &'static str) {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.tx.send(Outgoing::Close(code, reason)),
        )
        .await;
    }

    /// Resolves when the queue overflowed.
    pub async fn overflowed(&self) {
        self.overflow.cancelled().await
    }
}

/// Create a queue and spawn its writer. The writer ends after a close frame, when every
/// `Outbound` is dropped, on a write error, or on overflow.
pub fn spawn_writer(
    sink: SplitSink<WebSocket, Message>,
    capacity: usize,
    max_bytes: usize,
    metrics: Arc<Metrics>,
) -> (Outbound, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity);
    let overflow = CancellationToken::new();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(write_loop(
        sink,
        rx,
        overflow.clone(),
        queued_bytes.clone(),
        metrics.clone(),
    ));
    (
        Outbound {
            tx,
            overflow,
            queued_bytes,
            max_bytes,
            metrics,
        },
        writer,
    )
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
    overflow: CancellationToken,
    queued_bytes: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
) {
    let result = tokio::select! {
        biased;
        _ = overflow.cancelled() => Err(()),
        r = drain(&mut sink, &mut rx, &queued_bytes) => r,
    };
    if result.is_err() && overflow.is_cancelled() {
        // The client is not reading; try to say why, but do not wait on it for long.
        metrics.slow_reader_closed();
        let frame = close_frame(
            close::POLICY,
            "outbound queue full: the client is not reading",
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(frame)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

async fn drain(
    sink: &mut SplitSink<WebSocket, Message>,
    rx: &mut mpsc::Receiver<Outgoing>,
    queued_bytes: &AtomicUsize,
) -> Result<(), ()> {
    while let Some(first) = rx.recv().await {
        // Feed everything already queued, then flush once: one syscall for a burst.
        let mut next = Some(first);
        while let Some(item) = next.take() {
            // Counted out when handed to the socket: what the sink buffers beyond that is
            // bounded by its own write buffer.
            queued_bytes.fetch_sub(item.size(), Ordering::Relaxed);
            match item {
                Outgoing::Text(text) => sink.feed(Message::Text(text)).await.map_err(drop)?,
                Outgoing::Ping => sink
                    .feed(Message::Ping(Default::default()))
                    .await
                    .map_err(drop)?,
                Outgoing::Close(code, reason) => {
                    sink.send(close_frame(code, reason)).await.map_err(drop)?;
                    return Ok(());
                }
            }
            next = rx.try_recv().ok();
        }
        sink.flush().await.map_err(drop)?;
    }
    Ok(())
}

fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}
