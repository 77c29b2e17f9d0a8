//! Many nodes: Redis pub/sub carries room events between nodes, behind the hub's fan-out
//! seam; PostgreSQL holds the truth (seqs are assigned there, so they stay gap-free across
//! nodes). Without `[cluster]`, none of this runs and the hub fans out in-process.
//!
//! - Every node publishes its rooms' events on a channel per session and listens only to
//!   the sessions it has connections in (`subscriber.rs`), delivering the others' events
//!   to its local connections; a node ignores its own events (they carry its node id).
//! - Presence is cluster-wide: a sorted set per session holds `user@node` entries scored
//!   by expiry, refreshed by a heartbeat, so a dead node's entries lapse on their own.
//! - Redis down: nodes keep serving their own connections, `/readyz` says not ready, the
//!   log says so loudly, and delivery resumes when Redis returns. Pub/sub is at-most-once:
//!   what crossed nowhere during the outage is in the database, and a client that
//!   reconnects with `since_seq` gets it.
//! - Admin plugin changes are broadcast, so every node applies them.
//! - A user's connections are counted across nodes (`connections.rs`), so N nodes do not
//!   give a user N times `max_connections_per_user`; so are the command rate and the login
//!   throttle (`buckets.rs`, shared token buckets), and the assistant's one reply at a time
//!   per session (`turns.rs`).
//! - Nothing from Redis is trusted: every envelope carries an HMAC under the cluster key
//!   (`envelope.rs`) and a timestamp, and every field is validated before it reaches a
//!   room. Anyone who can publish on the channel but lacks the key is ignored.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::AsyncCommands;
use tokio::sync::{mpsc, oneshot};

use crate::hub::{Fanout, Hub, Presence, RoomEvent};
use crate::metrics::Metrics;
use crate::time_fmt::now_ms;

mod buckets;
mod connections;
mod envelope;
mod health;
mod subscriber;
mod turns;
pub use connections::Admission;
pub use envelope::ClusterKey;
use envelope::Envelope;
use health::Health;
use subscriber::{Channels, Subscriber, Watch};

/// Presence entries live this long unless the heartbeat refreshes them.
const PRESENCE_TTL_MS: i64 = 30_000;
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Events queued for publishing; past it they are dropped (and counted).
const PUBLISH_QUEUE: usize = 16_384;
/// Longest a join waits for Redis to confirm it listens to the session.
const WATCH_TIMEOUT: Duration = Duration::from_secs(2);

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
    health: Arc<Health>,
    dropped: AtomicU64,
    /// Plugin commands from other nodes, taken once by the server.
    commands: std::sync::Mutex<Option<mpsc::UnboundedReceiver<PluginCommand>>>,
    /// The sessions to listen to, as the hub's rooms open and close (`subscriber.rs`).
    watch: mpsc::UnboundedSender<Watch>,
}

impl Cluster {
    /// Connect, start the publisher, subscriber and heartbeat, and hook into the hub.
    pub async fn start(
        url: &str,
        namespace: &str,
        shard_rooms: bool,
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
        let health = Arc::new(Health::new());
        let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (watch, watch_requests) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            node_id: node_id.clone(),
            namespace: namespace.to_string(),
            publish,
            presence,
            health: health.clone(),
            dropped: AtomicU64::new(0),
            commands: std::sync::Mutex::new(Some(commands)),
            watch,
        });
        tokio::spawn(publish_loop(
            publisher,
            queue,
            Channels {
                namespace: namespace.to_string(),
                sharded: shard_rooms,
            },
            key.clone(),
            health.clone(),
        ));
        let subscriber = Subscriber {
            client,
            channels: Channels {
                namespace: namespace.to_string(),
                sharded: shard_rooms,
            },
            node_id: node_id.clone(),
            key,
            hub: hub.clone(),
            health,
            commands: commands_tx,
            metrics,
            rejected: AtomicU64::new(0),
        };
        tokio::spawn(subscriber::run(subscriber, watch_requests));
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
        self.health.ok()
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
        self.health
            .command_failed(err, "cross-node delivery and presence are degraded");
    }

    fn answered(&self) {
        self.health.command_ok();
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

    fn watch(&self, session_id: &str) -> BoxFuture<'static, ()> {
        let (done, confirmed) = oneshot::channel();
        let asked = self
            .0
            .watch
            .send(Watch::Ensure(session_id.to_string(), done))
            .is_ok();
        // Known to be away: don't hold the join for Redis's timeout (recovery covers it).
        let wait = asked && self.0.healthy();
        Box::pin(async move {
            if wait {
                let _ = tokio::time::timeout(WATCH_TIMEOUT, confirmed).await;
            }
        })
    }

    fn unwatch(&self, session_id: &str) {
        let _ = self.0.watch.send(Watch::Release(session_id.to_string()));
    }
}

/// Most envelopes sent to Redis in one pipeline.
const PUBLISH_BATCH: usize = 256;

/// Publish what the node's rooms send, pipelined: every envelope queued while the last
/// pipeline was in flight goes in the next one (no round trip per event).
async fn publish_loop(
    mut conn: redis::aio::ConnectionManager,
    mut queue: mpsc::Receiver<Envelope>,
    channels: Channels,
    key: Arc<ClusterKey>,
    health: Arc<Health>,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        let now = now_ms();
        for envelope in batch.drain(..) {
            if let Some(payload) = key.seal(&envelope, now) {
                pipe.publish(channels.of(&envelope), payload).ignore();
            }
        }
        let sent: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
        match sent {
            Ok(()) => health.command_ok(),
            Err(e) => health.command_failed(&e, "events are not reaching other nodes"),
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
        self.answered();
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
        self.answered();
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
                self.answered();
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

/// Most commands in one heartbeat pipeline: a node with many rooms and connections sends
/// several, each well inside the response timeout.
const HEARTBEAT_CHUNK: usize = 1000;

/// Refresh this node's presence and connection entries before they expire.
async fn heartbeat(cluster: Arc<Cluster>, hub: Hub) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let expires = now_ms() + PRESENCE_TTL_MS;
        let mut pipes = Pipelines::default();
        for chunk in hub.local_connections().chunks(HEARTBEAT_CHUNK / 2) {
            cluster.refresh_connections(pipes.with_room_for(2 * chunk.len()), chunk);
        }
        for (session_id, users) in hub.local_presence() {
            let key = cluster.presence_key(&session_id);
            let pipe = pipes.with_room_for(users.len() + 1);
            for user in users {
                pipe.zadd(&key, cluster.member(&user), expires).ignore();
            }
            pipe.zrembyscore(&key, "-inf", now_ms()).ignore();
        }
        let mut conn = cluster.presence.clone();
        for pipe in pipes.full {
            let done: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
            match done {
                Ok(()) => cluster.answered(),
                Err(e) => {
                    cluster.unhealthy(&e);
                    break;
                }
            }
        }
    }
}

/// The heartbeat's commands, split into pipelines of about [`HEARTBEAT_CHUNK`].
#[derive(Default)]
struct Pipelines {
    full: Vec<redis::Pipeline>,
    queued: usize,
}

impl Pipelines {
    /// The pipeline to add `commands` more to (a new one when the last is full).
    fn with_room_for(&mut self, commands: usize) -> &mut redis::Pipeline {
        if self.full.is_empty() || self.queued >= HEARTBEAT_CHUNK {
            self.full.push(redis::pipe());
            self.queued = 0;
        }
        self.queued = self.queued.saturating_add(commands);
        let last = self.full.len() - 1;
        &mut self.full[last]
    }
}
