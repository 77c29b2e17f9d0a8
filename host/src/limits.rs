//! Token buckets: the one mechanism behind every rate and budget a client can push against
//! (frames per connection, commands per user, logins per address and per user name, bytes
//! of recovery per connection and per user).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::config::RealtimeConfig;

/// `capacity` tokens, refilled at `per_sec`. Tokens may go into debt (down to
/// `-capacity`) when a charge must be paid after the fact, e.g. bytes already sent.
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(capacity: f64, per_sec: f64) -> Self {
        TokenBucket {
            capacity,
            per_sec,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
    }

    pub fn try_take(&mut self) -> bool {
        self.try_take_n(1.0).is_ok()
    }

    /// Take `cost` tokens, or say how long until they would be there.
    pub fn try_take_n(&mut self, cost: f64) -> Result<(), Duration> {
        self.refill();
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            let missing = cost - self.tokens;
            Err(Duration::from_secs_f64(
                (missing / self.per_sec).clamp(0.0, 86_400.0),
            ))
        }
    }

    /// Tokens there now (never negative).
    pub fn available(&mut self) -> f64 {
        self.refill();
        self.tokens.max(0.0)
    }

    /// Pay `cost` whatever the balance (bounded debt).
    /// Charge `cost` (negative: give tokens back, never past full).
    pub fn charge(&mut self, cost: f64) {
        self.refill();
        self.tokens = (self.tokens - cost).clamp(-self.capacity, self.capacity);
    }

    fn is_full(&mut self) -> bool {
        self.refill();
        self.tokens >= self.capacity
    }
}

/// One bucket per key (a user id, an address, a user name), bounded in how many keys it
/// holds: full buckets are dropped (a missing key *is* a full bucket), and when the table
/// is full of active keys a new key is refused — fail closed rather than grow without end.
pub struct KeyedBuckets {
    capacity: f64,
    per_sec: f64,
    max_keys: usize,
    buckets: DashMap<String, Mutex<TokenBucket>>,
    /// Milliseconds since `epoch` of the last prune; pruning is O(keys), so at most once a
    /// second.
    last_prune_ms: AtomicU64,
    epoch: Instant,
}

/// Most keys one table holds by default.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

impl KeyedBuckets {
    pub fn new(capacity: f64, per_sec: f64) -> Self {
        Self::with_max_keys(capacity, per_sec, DEFAULT_MAX_KEYS)
    }

    pub fn with_max_keys(capacity: f64, per_sec: f64, max_keys: usize) -> Self {
        KeyedBuckets {
            capacity,
            per_sec,
            max_keys,
            buckets: DashMap::new(),
            last_prune_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Run `f` on `key`'s bucket; `None` when the table is full and `key` is new.
    fn with<R>(&self, key: &str, f: impl FnOnce(&mut TokenBucket) -> R) -> Option<R> {
        if let Some(entry) = self.buckets.get(key) {
            let mut bucket = entry.lock().unwrap_or_else(|p| p.into_inner());
            return Some(f(&mut bucket));
        }
        if self.buckets.len() >= self.max_keys {
            self.prune();
            if self.buckets.len() >= self.max_keys {
                return None;
            }
        }
        let entry = self
            .buckets
            .entry(key.to_string())
            .or_insert_with(|| Mutex::new(TokenBucket::new(self.capacity, self.per_sec)));
        let mut bucket = entry.lock().unwrap_or_else(|p| p.into_inner());
        Some(f(&mut bucket))
    }

    /// Take one token for `key`, or say how long until one is there.
    pub fn try_take(&self, key: &str) -> Result<(), Duration> {
        self.try_take_n(key, 1.0)
    }

    pub fn try_take_n(&self, key: &str, cost: f64) -> Result<(), Duration> {
        self.with(key, |b| b.try_take_n(cost))
            .unwrap_or(Err(Duration::from_secs(1)))
    }

    /// Would one token be there for `key`? Takes nothing; a key not in the table has a
    /// full bucket.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let Some(entry) = self.buckets.get(key) else {
            return Ok(());
        };
        let mut bucket = entry.lock().unwrap_or_else(|p| p.into_inner());
        match bucket.available() >= 1.0 {
            true => Ok(()),
            false => bucket.try_take_n(1.0),
        }
    }

    pub fn available(&self, key: &str) -> f64 {
        self.with(key, TokenBucket::available).unwrap_or(0.0)
    }

    pub fn charge(&self, key: &str, cost: f64) {
        self.with(key, |b| b.charge(cost));
    }

    fn prune(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_prune_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 1000
            || self
                .last_prune_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.buckets.retain(|_, bucket| {
            !bucket
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .is_full()
        });
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// What a shared bucket is asked to do (as [`KeyedBuckets`]' methods of the same names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BucketOp {
    Take(f64),
    Check,
    Charge(f64),
}

/// Buckets every node sees the same (in a cluster, in Redis): the seam that makes a per-user
/// limit hold across nodes instead of once per node.
#[async_trait::async_trait]
pub trait SharedBuckets: Send + Sync {
    /// Apply `op` to `key`'s bucket in `table` (`capacity` tokens, refilled at `per_sec`).
    /// `None` when the shared store did not answer in time: only this node's bucket applies.
    async fn apply(
        &self,
        table: &str,
        key: &str,
        capacity: f64,
        per_sec: f64,
        op: BucketOp,
    ) -> Option<Result<(), Duration>>;
}

/// A limit per key that holds across nodes when they share buckets. This node's own bucket
/// always applies first — a flood is refused without a round trip, and it is the limit
/// while the shared store is away (each node then allows the limit on its own: chat stays
/// up through a broker outage, as delivery does) — and the shared bucket, when there,
/// decides for the whole cluster.
pub struct ClusterLimit {
    table: &'static str,
    local: KeyedBuckets,
    shared: Option<Arc<dyn SharedBuckets>>,
}

impl ClusterLimit {
    pub fn new(
        table: &'static str,
        capacity: f64,
        per_sec: f64,
        shared: Option<Arc<dyn SharedBuckets>>,
    ) -> Self {
        ClusterLimit {
            table,
            local: KeyedBuckets::new(capacity, per_sec),
            shared,
        }
    }

    /// Take one token for `key` here and across the cluster.
    pub async fn try_take(&self, key: &str) -> Result<(), Duration> {
        self.local.try_take(key)?;
        self.shared(key, BucketOp::Take(1.0)).await
    }

    /// Would a token be there for `key`, here and across the cluster? Takes nothing.
    pub async fn check(&self, key: &str) -> Result<(), Duration> {
        self.local.check(key)?;
        self.shared(key, BucketOp::Check).await
    }

    /// Charge `key` `cost` tokens here and across the cluster.
    pub async fn charge(&self, key: &str, cost: f64) {
        self.local.charge(key, cost);
        // A charge cannot be refused; a store that did not answer leaves the local one.
        let _ = self.shared(key, BucketOp::Charge(cost)).await;
    }

    async fn shared(&self, key: &str, op: BucketOp) -> Result<(), Duration> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let (capacity, per_sec) = (self.local.capacity, self.local.per_sec);
        shared
            .apply(self.table, key, capacity, per_sec, op)
            .await
            .unwrap_or(Ok(()))
    }
}

/// Budgets kept per user across all their connections (on this node).
pub struct UserBudgets {
    /// Bytes of `joined.missed` each user may still be sent.
    pub recovery: KeyedBuckets,
    /// New WebSocket connections each user may open: a client closed for flooding cannot
    /// come straight back and flood again.
    pub connects: KeyedBuckets,
}

impl UserBudgets {
    pub fn new(config: &RealtimeConfig) -> Self {
        let per_user = config.recovery_user_bytes_per_sec as f64;
        let connects = f64::from(config.connects_per_user_per_min);
        UserBudgets {
            recovery: KeyedBuckets::new(4.0 * per_user, per_user),
            connects: KeyedBuckets::new(connects, connects / 60.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_with_the_wait_and_pays_debts() {
        let mut bucket = TokenBucket::new(2.0, 1.0);
        assert!(bucket.try_take() && bucket.try_take());
        let wait = bucket.try_take_n(1.0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        bucket.charge(10.0);
        assert_eq!(bucket.available(), 0.0);
        assert!(bucket.try_take_n(1.0).unwrap_err() > Duration::from_secs(2));
    }

    #[test]
    fn keyed_buckets_are_independent_and_bounded() {
        let table = KeyedBuckets::with_max_keys(1.0, 0.001, 2);
        assert!(table.try_take("a").is_ok());
        assert!(table.try_take("a").is_err());
        assert!(table.try_take("b").is_ok());
        // Full of active keys: a new key is refused, not added.
        assert!(table.try_take("c").is_err());
        assert_eq!(table.len(), 2);
    }
}
