//! A connection's writer task: drains its [`Outbound`] queue into the WebSocket, a burst at
//! a time, and says why when it closes a client that stopped reading.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;

use crate::hub::outbound::{self, close, Outbound, Outgoing, Queue};
use crate::metrics::Metrics;

/// Create a queue and spawn its writer. The writer ends after a close frame, when every
/// `Outbound` is dropped, on a write error, or on overflow.
pub fn spawn_writer(
    sink: SplitSink<WebSocket, Message>,
    capacity: usize,
    max_bytes: usize,
    metrics: Arc<Metrics>,
) -> (Outbound, tokio::task::JoinHandle<()>) {
    let (out, queue) = outbound::channel(capacity, max_bytes, metrics.clone());
    let writer = tokio::spawn(write_loop(sink, queue, metrics));
    (out, writer)
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: Queue,
    metrics: Arc<Metrics>,
) {
    let overflow = queue.overflow.clone();
    let result = tokio::select! {
        biased;
        _ = overflow.cancelled() => Err(()),
        r = drain(&mut sink, &mut queue) => r,
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

async fn drain(sink: &mut SplitSink<WebSocket, Message>, queue: &mut Queue) -> Result<(), ()> {
    while let Some(first) = queue.rx.recv().await {
        // Feed everything already queued, then flush once: one syscall for a burst.
        let mut next = Some(first);
        while let Some(item) = next.take() {
            queue.taken(&item);
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
            next = queue.rx.try_recv().ok();
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
