//! What a node hears from Redis. Room events travel on one channel per session
//! (`{namespace}:room:{session}`), and a node subscribes only to the sessions it has a
//! connection in, so it receives its rooms' events rather than every event of the
//! cluster; admin plugin changes travel on `{namespace}:events`, which every node hears.
//! With `shard_rooms = false` every room shares `{namespace}:rooms` and every node hears
//! it all (the way before, kept for comparing).
//!
//! One task owns the subscription connection and applies the hub's watch and unwatch
//! requests in the order they were made, so a session left and joined again ends up
//! subscribed. A watch is answered once Redis has confirmed the subscription: the join
//! that asked reads history only after that, so nothing published later is missed (what
//! was published earlier is in the history; a message in both is told apart by its seq).
//! After a reconnect the task subscribes again to every session with a local connection.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::{mpsc, oneshot};

use super::envelope::{ClusterKey, Envelope};
use super::health::Health;
use super::PluginCommand;
use crate::hub::{Hub, RoomEvent};
use crate::metrics::Metrics;
use crate::time_fmt::now_ms;

/// A request of the hub's about what this node listens to.
pub(super) enum Watch {
    /// Listen to a session; answer when Redis has confirmed it.
    Ensure(String, oneshot::Sender<()>),
    /// Stop listening to a session, unless someone here joined it again meanwhile.
    Release(String),
}

/// The channels of a deployment (`[cluster] namespace`, `shard_rooms`).
#[derive(Clone)]
pub(super) struct Channels {
    pub namespace: String,
    /// A channel per session (else one for every room).
    pub sharded: bool,
}

impl Channels {
    /// The channel of a session's room events.
    fn room(&self, session_id: &str) -> String {
        if self.sharded {
            format!("{}:room:{session_id}", self.namespace)
        } else {
            format!("{}:rooms", self.namespace)
        }
    }

    /// The channel of events for every node (admin plugin changes).
    fn control(&self) -> String {
        format!("{}:events", self.namespace)
    }

    /// Where an envelope is published.
    pub(super) fn of(&self, envelope: &Envelope) -> String {
        match envelope {
            Envelope::Room { session_id, .. } | Envelope::Expel { session_id, .. } => {
                self.room(session_id)
            }
            Envelope::Reload { .. } | Envelope::PluginState { .. } => self.control(),
        }
    }
}

/// Everything the subscriber needs, across reconnects.
pub(super) struct Subscriber {
    pub client: redis::Client,
    pub channels: Channels,
    pub node_id: String,
    pub key: Arc<ClusterKey>,
    pub hub: Hub,
    pub health: Arc<Health>,
    pub commands: mpsc::UnboundedSender<PluginCommand>,
    pub metrics: Arc<Metrics>,
    /// Envelopes dropped as forged, stale or malformed (logged now and then, not each).
    pub rejected: AtomicU64,
}

/// Longest one (un)subscribe may take before the connection is given up and made again
/// (a half-open connection would otherwise hold every later watch).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Most watch requests answered together (their subscriptions sent at once).
const WATCH_BATCH: usize = 256;

pub(super) async fn run(sub: Subscriber, mut watch: mpsc::UnboundedReceiver<Watch>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match subscribe_once(&sub, &mut watch, &mut backoff).await {
            Ok(()) => tracing::error!("Redis subscription ended; reconnecting"),
            Err(e) => tracing::error!(error = %e, "Redis subscription failed; reconnecting"),
        }
        sub.health.set_subscribed(false);
        // Joins waiting meanwhile are let through: recovery covers what they miss.
        while let Ok(request) = watch.try_recv() {
            drop(request);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One channel per (un)subscribe: redis-rs pairs each reply with the oldest waiting
/// request, so a command naming several channels (several replies) would answer the
/// requests sent after it.
async fn one(sink: &mut PubSubSink, channel: String, subscribe: bool) -> redis::RedisResult<()> {
    let sent = if subscribe {
        tokio::time::timeout(COMMAND_TIMEOUT, sink.subscribe(channel)).await
    } else {
        tokio::time::timeout(COMMAND_TIMEOUT, sink.unsubscribe(channel)).await
    };
    sent.unwrap_or_else(|_| {
        Err(redis::RedisError::from((
            redis::ErrorKind::IoError,
            "Redis did not answer a (un)subscribe in time",
        )))
    })
}

/// Subscribe to all of `channels` at once (pipelined on the connection, one reply each).
async fn subscribe_all(sink: &PubSubSink, channels: Vec<String>) -> redis::RedisResult<()> {
    let sends = channels.into_iter().map(|channel| {
        let mut sink = sink.clone();
        async move { one(&mut sink, channel, true).await }
    });
    for sent in futures_util::future::join_all(sends).await {
        sent?;
    }
    Ok(())
}

async fn subscribe_once(
    sub: &Subscriber,
    watch: &mut mpsc::UnboundedReceiver<Watch>,
    backoff: &mut Duration,
) -> redis::RedisResult<()> {
    let (mut sink, mut stream) = sub.client.get_async_pubsub().await?.split();
    let channels = &sub.channels;
    one(&mut sink, channels.control(), true).await?;
    // Unsharded, one channel carries every room: nothing to watch.
    let mut subscribed: HashSet<String> = if channels.sharded {
        sub.hub.local_sessions().into_iter().collect()
    } else {
        one(&mut sink, channels.room(""), true).await?;
        HashSet::new()
    };
    subscribe_all(&sink, subscribed.iter().map(|s| channels.room(s)).collect()).await?;
    if !sub.health.set_subscribed(true) {
        tracing::warn!("Redis is back: cross-node delivery resumed");
    }
    // Redis answers: what failed on the other connections while it was away is not held
    // against it (the next command that fails says so again).
    sub.health.command_ok();
    *backoff = Duration::from_millis(200);
    let mut requests = Vec::with_capacity(WATCH_BATCH);
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return Ok(()) };
                receive(sub, message.get_payload_bytes());
            }
            got = watch.recv_many(&mut requests, WATCH_BATCH) => {
                if got == 0 {
                    return Ok(());
                }
                // A burst of joins (a node taking over another's clients) is answered in
                // one round trip, not one each.
                let mut waiting = Vec::new();
                let mut new = Vec::new();
                for request in requests.drain(..) {
                    match request {
                        Watch::Ensure(session_id, done) => {
                            if channels.sharded && subscribed.insert(session_id.clone()) {
                                new.push(channels.room(&session_id));
                            }
                            waiting.push(done);
                        }
                        Watch::Release(session_id) => {
                            if !sub.hub.has_local_members(&session_id)
                                && subscribed.remove(&session_id)
                            {
                                one(&mut sink, channels.room(&session_id), false).await?;
                            }
                        }
                    }
                }
                subscribe_all(&sink, new).await?;
                for done in waiting {
                    let _ = done.send(());
                }
            }
        }
    }
}

fn receive(sub: &Subscriber, payload: &[u8]) {
    match sub.key.open(payload, now_ms()) {
        Ok(envelope) => deliver(sub, envelope),
        Err(why) => {
            sub.metrics.limit_hit("cluster_event_rejected");
            let n = sub.rejected.fetch_add(1, Ordering::Relaxed);
            // The first, then every 1000th: a flood of forgeries cannot flood the log.
            if n % 1000 == 0 {
                tracing::warn!(
                    reason = why,
                    rejected = n + 1,
                    "dropped a cluster event that failed its checks"
                );
            }
        }
    }
}

/// Act on a verified envelope from another node (our own come back too; they are skipped).
fn deliver(sub: &Subscriber, envelope: Envelope) {
    if envelope.node() == sub.node_id {
        return;
    }
    match envelope {
        Envelope::Room {
            session_id,
            frame,
            skip_user,
            seq,
            ..
        } => {
            sub.metrics.cluster_event_received();
            sub.hub.deliver_remote(RoomEvent {
                session_id,
                text: frame.into(),
                skip_user,
                seq,
            })
        }
        Envelope::Expel {
            session_id,
            user_id,
            ..
        } => sub.hub.expel_local(&session_id, &user_id),
        Envelope::Reload { .. } => {
            let _ = sub.commands.send(PluginCommand::Reload);
        }
        Envelope::PluginState { name, enabled, .. } => {
            let _ = sub
                .commands
                .send(PluginCommand::SetEnabled { name, enabled });
        }
    }
}
