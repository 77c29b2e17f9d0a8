//! Many nodes: Redis pub/sub carries room events between nodes, behind the hub's fan-out
//! seam; PostgreSQL holds the truth (seqs are assigned there, so they stay gap-free across
//! nodes). Without `[cluster]`, none of this runs and the hub fans out in-process.
//!
//! - Every node publishes its rooms' events on one channel and delivers the others' events
//!   to its local connections; a node ignores its own events (they carry its node id).
//! - Presence is cluster-wide: a sorted set per session holds `user@node` entries scored
//!   by expiry, refreshed by a heartbeat, so a dead node's entries lapse on their own.
//! - Redis down: nodes keep serving their own connections, `/readyz` says not ready, the
//!   log says so loudly, and delivery resumes when Redis returns. Pub/sub is at-most-once:
//!   what crossed nowhere during the outage is in the database, and a client that
//!   reconnects with `since_seq` gets it.
//! - Admin plugin changes are broadcast, so every node applies them.
//! - Nothing from Redis is trusted: every envelope carries an HMAC under the cluster key
//!   (`envelope.rs`) and a timestamp, and every field is validated before it reaches a
//!   room. Anyone who can publish on the channel but lacks the key is ignored.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::mpsc;

use crate::hub::{Fanout, Hub, Presence, RoomEvent};
use crate::metrics::Metrics;
use crate::time_fmt::now_ms;

mod envelope;
pub use envelope::ClusterKey;
use envelope::Envelope;

/// Presence entries live this long unless the heartbeat refreshes them.
const PRESENCE_TTL_MS: i64 = 30_000;
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Events queued for publishing; past it they are dropped (and counted).
const PUBLISH_QUEUE: usize = 16_384;

/// What another node asked this one to do about plugins.
#[derive(Debug)]
pub enum PluginCommand {
    Reload,
    SetEnabled { name: String, enabled: bool },
}

pub struct Cluster {
    node_id: String,
    /// Prefix of the channel and keys (`[cluster] namespace`).
    namespace: String,
    publish: mpsc::Sender<Envelope>,
    presence: redis::aio::ConnectionManager,
    healthy: Arc<AtomicBool>,
    dropped: AtomicU64,
    /// Plugin commands from other nodes, taken once by the server.
    commands: std::sync::Mutex<Option<mpsc::UnboundedReceiver<PluginCommand>>>,
}

impl Cluster {
    /// Connect, start the publisher, subscriber and heartbeat, and hook into the hub.
    pub async fn start(
        url: &str,
        namespace: &str,
        key: ClusterKey,
        hub: Hub,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Cluster>> {
        let key = Arc::new(key);
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2));
        let presence =
            redis::aio::ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
        let publisher =
            redis::aio::ConnectionManager::new_with_config(client.clone(), config).await?;
        let node_id = uuid::Uuid::new_v4().to_string();
        let healthy = Arc::new(AtomicBool::new(true));
        let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let channel = format!("{namespace}:events");
        let cluster = Arc::new(Cluster {
            node_id: node_id.clone(),
            namespace: namespace.to_string(),
            publish,
            presence,
            healthy: healthy.clone(),
            dropped: AtomicU64::new(0),
            commands: std::sync::Mutex::new(Some(commands)),
        });
        tokio::spawn(publish_loop(
            publisher,
            queue,
            channel.clone(),
            key.clone(),
            healthy.clone(),
        ));
        tokio::spawn(subscribe_loop(Subscriber {
            client,
            channel,
            node_id: node_id.clone(),
            key,
            hub: hub.clone(),
            healthy,
            commands: commands_tx,
            metrics,
            rejected: AtomicU64::new(0),
        }));
        tokio::spawn(heartbeat(cluster.clone(), hub.clone()));
        hub.set_fanout(Arc::new(ClusterFanout(cluster.clone())));
        tracing::info!(node = %node_id, "cluster mode: fanning out over Redis");
        Ok(cluster)
    }

    /// Plugin commands from other nodes (reloads, enable/disable); taken once.
    pub fn take_plugin_commands(&self) -> Option<mpsc::UnboundedReceiver<PluginCommand>> {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether Redis answered lately (for `/readyz`).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Events dropped because the publish queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, envelope: Envelope) {
        if self.publish.try_send(envelope).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn broadcast_reload(&self) {
        self.send(Envelope::Reload {
            node: self.node_id.clone(),
        });
    }

    pub fn broadcast_plugin_state(&self, name: &str, enabled: bool) {
        self.send(Envelope::PluginState {
            node: self.node_id.clone(),
            name: name.to_string(),
            enabled,
        });
    }

    async fn present_elsewhere(&self, session_id: &str, user_id: &str) -> bool {
        let mut conn = self.presence.clone();
        let members: redis::RedisResult<Vec<String>> = conn
            .zrangebyscore(self.presence_key(session_id), now_ms(), "+inf")
            .await;
        let mine = self.member(user_id);
        members
            .map(|m| {
                m.iter()
                    .any(|e| e.starts_with(&format!("{user_id}@")) && *e != mine)
            })
            .unwrap_or(false)
    }

    fn member(&self, user_id: &str) -> String {
        format!("{user_id}@{}", self.node_id)
    }

    fn unhealthy(&self, err: &redis::RedisError) {
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::error!(error = %err, "Redis is unreachable: cross-node delivery and presence are degraded");
        }
    }
}

impl Cluster {
    fn presence_key(&self, session_id: &str) -> String {
        format!("{}:presence:{session_id}", self.namespace)
    }
}

/// The hub's fan-out seam, implemented by publishing to Redis.
struct ClusterFanout(Arc<Cluster>);

impl Fanout for ClusterFanout {
    fn publish(&self, event: RoomEvent) {
        self.0.send(Envelope::Room {
            node: self.0.node_id.clone(),
            session_id: event.session_id,
            frame: event.text.as_str().to_string(),
            skip_user: event.skip_user,
            seq: event.seq,
        });
    }

    fn expel(&self, session_id: &str, user_id: &str) {
        self.0.send(Envelope::Expel {
            node: self.0.node_id.clone(),
            session_id: session_id.to_string(),
            user_id: user_id.to_string(),
        });
    }
}

async fn publish_loop(
    mut conn: redis::aio::ConnectionManager,
    mut queue: mpsc::Receiver<Envelope>,
    channel: String,
    key: Arc<ClusterKey>,
    healthy: Arc<AtomicBool>,
) {
    while let Some(envelope) = queue.recv().await {
        let Some(payload) = key.seal(&envelope, now_ms()) else {
            continue;
        };
        let sent: redis::RedisResult<()> = conn.publish(&channel, payload).await;
        if let Err(e) = sent {
            if healthy.swap(false, Ordering::Relaxed) {
                tracing::error!(error = %e, "Redis is unreachable: events are not reaching other nodes");
            }
        }
    }
}

/// Everything the subscriber needs, across reconnects.
struct Subscriber {
    client: redis::Client,
    channel: String,
    node_id: String,
    key: Arc<ClusterKey>,
    hub: Hub,
    healthy: Arc<AtomicBool>,
    commands: mpsc::UnboundedSender<PluginCommand>,
    metrics: Arc<Metrics>,
    /// Envelopes dropped as forged, stale or malformed (logged now and then, not each).
    rejected: AtomicU64,
}

async fn subscribe_loop(sub: Subscriber) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match subscribe_once(&sub).await {
            Ok(()) => tracing::error!("Redis subscription ended; reconnecting"),
            Err(e) => tracing::error!(error = %e, "Redis subscription failed; reconnecting"),
        }
        sub.healthy.store(false, Ordering::Relaxed);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        if sub.healthy.load(Ordering::Relaxed) {
            backoff = Duration::from_millis(200);
        }
    }
}

async fn subscribe_once(sub: &Subscriber) -> redis::RedisResult<()> {
    let mut pubsub = sub.client.get_async_pubsub().await?;
    pubsub.subscribe(&sub.channel).await?;
    if !sub.healthy.swap(true, Ordering::Relaxed) {
        tracing::warn!("Redis is back: cross-node delivery resumed");
    }
    let mut messages = pubsub.on_message();
    while let Some(msg) = messages.next().await {
        let payload: &[u8] = msg.get_payload_bytes();
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
    Ok(())
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
        } => sub.hub.deliver_remote(RoomEvent {
            session_id,
            text: frame.into(),
            skip_user,
            seq,
        }),
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

/// Presence across nodes: a sorted set per session in Redis.
#[async_trait::async_trait]
impl Presence for Cluster {
    /// Mark `user` present in `session` on this node. Returns whether the user was already
    /// present on another node (then no `presence joined` is due).
    async fn join(&self, session_id: &str, user_id: &str) -> bool {
        let mut conn = self.presence.clone();
        let key = self.presence_key(session_id);
        let expires = now_ms() + PRESENCE_TTL_MS;
        let added: redis::RedisResult<()> = conn.zadd(&key, self.member(user_id), expires).await;
        if let Err(e) = added {
            self.unhealthy(&e);
            return false;
        }
        self.present_elsewhere(session_id, user_id).await
    }

    /// Unmark `user` on this node. Returns whether the user is still present elsewhere.
    async fn leave(&self, session_id: &str, user_id: &str) -> bool {
        let mut conn = self.presence.clone();
        let removed: redis::RedisResult<()> = conn
            .zrem(self.presence_key(session_id), self.member(user_id))
            .await;
        if let Err(e) = removed {
            self.unhealthy(&e);
            return false;
        }
        self.present_elsewhere(session_id, user_id).await
    }

    /// Users present in a session on any node (unexpired entries).
    async fn participants(&self, session_id: &str) -> Option<Vec<String>> {
        let mut conn = self.presence.clone();
        let members: redis::RedisResult<Vec<String>> = conn
            .zrangebyscore(self.presence_key(session_id), now_ms(), "+inf")
            .await;
        match members {
            Ok(members) => {
                let mut seen = HashSet::new();
                Some(
                    members
                        .into_iter()
                        .filter_map(|m| m.split_once('@').map(|(user, _)| user.to_string()))
                        .filter(|u| seen.insert(u.clone()))
                        .collect(),
                )
            }
            Err(e) => {
                self.unhealthy(&e);
                None
            }
        }
    }
}

/// Refresh this node's presence entries before they expire.
async fn heartbeat(cluster: Arc<Cluster>, hub: Hub) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let expires = now_ms() + PRESENCE_TTL_MS;
        let mut pipe = redis::pipe();
        let mut any = false;
        for (session_id, users) in hub.local_presence() {
            for user in users {
                pipe.zadd(
                    cluster.presence_key(&session_id),
                    cluster.member(&user),
                    expires,
                )
                .ignore();
                any = true;
            }
            pipe.zrembyscore(cluster.presence_key(&session_id), "-inf", now_ms())
                .ignore();
        }
        if !any {
            continue;
        }
        let mut conn = cluster.presence.clone();
        let done: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
        if let Err(e) = done {
            cluster.unhealthy(&e);
        }
    }
}
