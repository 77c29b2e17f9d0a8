//! Per-connection rate limiting: a token bucket for frames, and a second bucket of
//! "strikes" that refused frames drain. A client that merely bursts gets `rate_limited`
//! answers; one that keeps flooding runs out of strikes and is disconnected.

pub use crate::limits::TokenBucket;

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
