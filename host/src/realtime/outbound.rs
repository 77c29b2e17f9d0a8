//! One bounded queue per connection, drained by a writer task. Producers never wait: a full
//! queue means the client stopped reading, and the connection is closed (1008) rather than
//! allowed to slow anyone else down. A broadcast is serialized once and the same bytes are
//! shared by every queue.

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

/// The sending side of a connection's queue; cheap to clone into rooms.
#[derive(Clone)]
pub struct Outbound {
    tx: mpsc::Sender<Outgoing>,
    overflow: CancellationToken,
    metrics: Arc<Metrics>,
}

impl Outbound {
    /// Queue a frame without waiting. On a full queue the connection is marked for closing
    /// and `false` is returned.
    pub fn push(&self, text: Utf8Bytes) -> bool {
        self.push_item(Outgoing::Text(text))
    }

    pub fn push_item(&self, item: Outgoing) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.outbound_frame_dropped();
                self.overflow.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
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
    metrics: Arc<Metrics>,
) -> (Outbound, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity);
    let overflow = CancellationToken::new();
    let writer = tokio::spawn(write_loop(sink, rx, overflow.clone(), metrics.clone()));
    (
        Outbound {
            tx,
            overflow,
            metrics,
        },
        writer,
    )
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
    overflow: CancellationToken,
    metrics: Arc<Metrics>,
) {
    let result = tokio::select! {
        biased;
        _ = overflow.cancelled() => Err(()),
        r = drain(&mut sink, &mut rx) => r,
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
) -> Result<(), ()> {
    while let Some(first) = rx.recv().await {
        // Feed everything already queued, then flush once: one syscall for a burst.
        let mut next = Some(first);
        while let Some(item) = next.take() {
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
