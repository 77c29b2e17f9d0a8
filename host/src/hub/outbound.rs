//! One bounded queue per connection, drained by its socket's writer task
//! (`realtime/writer.rs`). Producers never wait: a full
//! queue means the client stopped reading, and the connection is closed (1008) rather than
//! allowed to slow anyone else down. The queue is bounded twice — in frames and in bytes —
//! so a few huge frames (a `joined` with a long backlog) cannot hold more memory than many
//! small ones. A broadcast is serialized once and the same bytes are shared by every queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::protocol::Text;

pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const UNAUTHORIZED: u16 = 4001;
}

#[derive(Debug)]
pub enum Outgoing {
    Text(Text),
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
    /// Bytes of text frames queued and not yet handed to the socket.
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Outbound {
    /// Queue a frame without waiting. On a full queue the connection is marked for closing
    /// and `false` is returned.
    pub fn push(&self, text: Text) -> bool {
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

/// The receiving side of a connection's queue: what its writer drains.
pub struct Queue {
    pub rx: mpsc::Receiver<Outgoing>,
    /// Cancelled when a producer found the queue full.
    pub overflow: CancellationToken,
    queued_bytes: Arc<AtomicUsize>,
}

impl Queue {
    /// `item` was handed to the socket: it no longer counts against the byte bound (what
    /// the socket buffers beyond that is bounded by its own write buffer).
    pub fn taken(&self, item: &Outgoing) {
        self.queued_bytes.fetch_sub(item.size(), Ordering::Relaxed);
    }
}

/// A queue bounded at `capacity` frames and `max_bytes` bytes of text.
pub fn channel(capacity: usize, max_bytes: usize, metrics: Arc<Metrics>) -> (Outbound, Queue) {
    let (tx, rx) = mpsc::channel(capacity);
    let overflow = CancellationToken::new();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let queue = Queue {
        rx,
        overflow: overflow.clone(),
        queued_bytes: queued_bytes.clone(),
    };
    let out = Outbound {
        tx,
        overflow,
        queued_bytes,
        max_bytes,
        metrics,
    };
    (out, queue)
}

#[cfg(test)]
mod tests {
    /// docs/protocol.md has a row for every close code the server uses.
    #[test]
    fn every_close_code_is_in_the_reference() {
        use super::close::*;
        let reference = include_str!("../../../docs/protocol.md");
        for code in [GOING_AWAY, INVALID_PAYLOAD, POLICY, TOO_BIG, UNAUTHORIZED] {
            let row = format!("| {code} |");
            assert!(
                reference.contains(&row),
                "docs/protocol.md, Close codes: no row {row}"
            );
        }
    }
}
