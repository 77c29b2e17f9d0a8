//! Token buckets shared by every node (`limits::SharedBuckets`): the command rate and the
//! login throttle hold across the cluster, not once per node. A bucket is a Redis hash
//! (`tokens`, `at`) updated by one script, so two nodes taking the last token at once cannot
//! both get it; time is Redis's (`TIME`), so the nodes' clocks do not matter. A key that is
//! absent is a full bucket, and a bucket expires once it would be full again.
//!
//! Redis away or slow (no answer within [`SHARED_WAIT`]): the caller's own bucket is all
//! that applies (`limits::ClusterLimit`), as for connection admission (`connections.rs`).

use std::time::Duration;

use super::Cluster;
use crate::limits::{BucketOp, SharedBuckets};

/// Longest a limit waits for Redis before going on with the node's own bucket.
const SHARED_WAIT: Duration = Duration::from_millis(250);

/// KEYS[1] the bucket; ARGV: capacity, tokens per second, op (`take`, `check`, `charge`),
/// cost. Returns 0 when allowed (or charged), else the milliseconds until it would be.
const BUCKET: &str = "\
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2]) / 1000
local op = ARGV[3]
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
if now > at then tokens = math.min(capacity, tokens + (now - at) * per_ms) end
if op == 'check' then
  if tokens >= 1 then return 0 end
  return math.max(1, math.ceil((1 - tokens) / per_ms))
end
if op == 'take' then
  if tokens < cost then return math.max(1, math.ceil((cost - tokens) / per_ms)) end
  tokens = tokens - cost
else
  tokens = math.min(capacity, math.max(-capacity, tokens - cost))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / per_ms) + 1000)
return 0";

impl Cluster {
    fn bucket_key(&self, table: &str, key: &str) -> String {
        format!("{}:bucket:{table}:{key}", self.namespace)
    }
}

#[async_trait::async_trait]
impl SharedBuckets for Cluster {
    async fn apply(
        &self,
        table: &str,
        key: &str,
        capacity: f64,
        per_sec: f64,
        op: BucketOp,
    ) -> Option<Result<(), Duration>> {
        if !self.healthy() {
            // Known to be away: don't make every command wait for a timeout.
            return None;
        }
        let (name, cost) = match op {
            BucketOp::Take(cost) => ("take", cost),
            BucketOp::Check => ("check", 1.0),
            BucketOp::Charge(cost) => ("charge", cost),
        };
        let mut conn = self.presence.clone();
        let script = redis::cmd("EVAL")
            .arg(BUCKET)
            .arg(1)
            .arg(self.bucket_key(table, key))
            .arg(capacity)
            // A rate of zero would never refill: the smallest rate instead (config checks).
            .arg(per_sec.max(1e-6))
            .arg(name)
            .arg(cost)
            .to_owned();
        let answered =
            tokio::time::timeout(SHARED_WAIT, script.query_async::<i64>(&mut conn)).await;
        match answered {
            Ok(Ok(wait_ms)) => {
                self.answered();
                Some(match u64::try_from(wait_ms) {
                    Ok(0) | Err(_) => Ok(()),
                    Ok(ms) => Err(Duration::from_millis(ms.min(86_400_000))),
                })
            }
            Ok(Err(e)) => {
                self.unhealthy(&e);
                None
            }
            Err(_) => None,
        }
    }
}
