//! Per-connection rate limiting: a token bucket for frames, and a second bucket of
//! "strikes" that refused frames drain. A client that merely bursts gets `rate_limited`
//! answers; one that keeps flooding runs out of strikes and is disconnected.

pub use crate::limits::TokenBucket;

use crate::config::RealtimeConfig;
use crate::limits::KeyedBuckets;

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

pub enum Verdict {
    Allow,
    /// Refuse this frame with `rate_limited`.
    Refuse,
    /// Sustained flooding: close the connection (1008).
    Disconnect,
}

pub struct RateLimiter {
    frames: TokenBucket,
    strikes: TokenBucket,
}

impl RateLimiter {
    pub fn new(per_sec: f64, burst: f64, strikes: f64) -> Self {
        RateLimiter {
            frames: TokenBucket::new(burst, per_sec),
            strikes: TokenBucket::new(strikes, per_sec),
        }
    }

    pub fn check(&mut self) -> Verdict {
        if self.frames.try_take() {
            Verdict::Allow
        } else if self.strikes.try_take() {
            Verdict::Refuse
        } else {
            Verdict::Disconnect
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_then_disconnect() {
        let mut limiter = RateLimiter::new(0.001, 3.0, 2.0);
        assert!((0..3).all(|_| matches!(limiter.check(), Verdict::Allow)));
        assert!(matches!(limiter.check(), Verdict::Refuse));
        assert!(matches!(limiter.check(), Verdict::Refuse));
        assert!(matches!(limiter.check(), Verdict::Disconnect));
    }
}
