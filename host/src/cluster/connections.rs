//! The per-user connection cap (`realtime.max_connections_per_user`) across nodes: a sorted
//! set per user in Redis holds `node/connection` entries scored by expiry, refreshed by the
//! heartbeat, so a dead node's connections lapse on their own (within [`CONNECTION_TTL_MS`]).
//!
//! - A connection is admitted by one script that drops the lapsed entries, counts the rest
//!   and adds it only when under the cap, atomically: two nodes admitting at once cannot
//!   both take the last place.
//! - Closing releases the entry at once.
//! - Redis unreachable: the node falls back to its own count (the hub's cap, which always
//!   applies) rather than refusing everyone. Failing closed would take chat down on every
//!   node for a broker outage, which cluster mode otherwise survives; the cost is that a
//!   user may hold up to the cap on each node until Redis is back. An entry whose release
//!   was lost (Redis away at the time) lapses with its TTL.

use super::{Cluster, HEARTBEAT};
use crate::time_fmt::now_ms;

/// A connection's entry lives this long unless the heartbeat refreshes it (three beats).
pub(super) const CONNECTION_TTL_MS: i64 = 3 * HEARTBEAT.as_millis() as i64;

/// KEYS[1] the user's set; ARGV: now, expiry, cap, entry, key TTL (ms). 1 admitted, 0 full.
const ADMIT: &str = "\
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1";

/// The cluster's answer to a new connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The user already holds `max` connections across the cluster.
    Full,
    /// Redis did not answer: the node's own cap is all that applies.
    Unknown,
}

impl Cluster {
    fn connections_key(&self, user_id: &str) -> String {
        format!("{}:connections:{user_id}", self.namespace)
    }

    pub(super) fn connection_entry(&self, conn_id: &str) -> String {
        format!("{}/{conn_id}", self.node_id)
    }

    /// Count `conn_id` against `user_id`'s cap of `max` connections on all nodes.
    pub async fn admit_connection(&self, user_id: &str, conn_id: &str, max: usize) -> Admission {
        if !self.healthy() {
            // Known to be away: don't make every new connection wait for Redis's timeout.
            return Admission::Unknown;
        }
        let now = now_ms();
        let mut conn = self.presence.clone();
        let admitted: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(ADMIT)
            .arg(1)
            .arg(self.connections_key(user_id))
            .arg(now)
            .arg(now.saturating_add(CONNECTION_TTL_MS))
            .arg(max)
            .arg(self.connection_entry(conn_id))
            .arg(CONNECTION_TTL_MS)
            .query_async(&mut conn)
            .await;
        match admitted {
            Ok(1) => {
                self.answered();
                Admission::Admitted
            }
            Ok(_) => {
                self.answered();
                Admission::Full
            }
            Err(e) => {
                self.unhealthy(&e);
                Admission::Unknown
            }
        }
    }

    /// Give `conn_id`'s place back (in the background: a closing connection waits for
    /// nothing).
    pub fn release_connection(&self, user_id: &str, conn_id: &str) {
        let mut conn = self.presence.clone();
        let key = self.connections_key(user_id);
        let entry = self.connection_entry(conn_id);
        tokio::spawn(async move {
            let _: redis::RedisResult<()> = redis::cmd("ZREM")
                .arg(key)
                .arg(entry)
                .query_async(&mut conn)
                .await;
        });
    }

    /// Add the refresh of this node's connections to the heartbeat's pipeline. A
    /// connection released while the beat was being sent may be put back: it lapses
    /// with its TTL.
    pub(super) fn refresh_connections(
        &self,
        pipe: &mut redis::Pipeline,
        connections: &[(std::sync::Arc<str>, std::sync::Arc<str>)],
    ) {
        let now = now_ms();
        let expires = now.saturating_add(CONNECTION_TTL_MS);
        for (user_id, conn_id) in connections {
            let key = self.connections_key(user_id);
            pipe.zadd(&key, self.connection_entry(conn_id), expires)
                .ignore();
            pipe.pexpire(&key, CONNECTION_TTL_MS).ignore();
        }
    }
}
