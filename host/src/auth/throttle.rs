//! Login throttling. Password hashing is deliberately slow, so an unthrottled login route is
//! a way to make everyone wait. Three limits, each checked before any hashing:
//!
//! - attempts per IP address (`auth.login_attempts_per_ip` per minute): a flood from one
//!   address is answered 429 at once and never reaches the hasher;
//! - failures per user name (`auth.login_failures_per_user` per minute, from anywhere):
//!   guessing one account's password is slow, wherever the guesses come from. Each attempt
//!   takes a token before it is hashed and a success gives it back, so guesses sent all at
//!   once when a token returns cannot all pass (a check now and a charge later would let
//!   them);
//! - logins waiting for a hashing slot (`auth.login_queue`): past it, 429 at once.
//!
//! A user logging in from another address is therefore never behind a flood's queue.
//!
//! In a cluster the first two hold across nodes (shared buckets in Redis,
//! `limits::ClusterLimit`): guesses spread over N nodes are not N times as many. The queue
//! is each node's own, as its hashing threads are.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::AuthConfig;
use crate::limits::{ClusterLimit, SharedBuckets};

pub struct LoginThrottle {
    per_ip: ClusterLimit,
    failures_per_user: ClusterLimit,
    queue: Semaphore,
}

/// A login refused by the throttle: retry after this long.
#[derive(Debug, Clone, Copy)]
pub struct Throttled {
    pub limit: &'static str,
    pub retry_after: Duration,
}

impl LoginThrottle {
    pub fn new(config: &AuthConfig, shared: Option<Arc<dyn SharedBuckets>>) -> Self {
        let per_minute = |n: u32| (f64::from(n), f64::from(n) / 60.0);
        let (ip_burst, ip_rate) = per_minute(config.login_attempts_per_ip);
        let (user_burst, user_rate) = per_minute(config.login_failures_per_user);
        LoginThrottle {
            per_ip: ClusterLimit::new("login_ip", ip_burst, ip_rate, shared.clone()),
            failures_per_user: ClusterLimit::new("login_failures", user_burst, user_rate, shared),
            queue: Semaphore::new(config.login_queue),
        }
    }

    /// Admit one login attempt for `name` from `ip`: charges the address, checks the name's
    /// failures, and takes a place in the hashing queue (held by the returned permit).
    pub async fn admit(&self, ip: IpAddr, name: &str) -> Result<SemaphorePermit<'_>, Throttled> {
        // IPv6 clients get a /64 each (one host has them all), IPv4 an address.
        self.per_ip
            .try_take(&address_key(ip))
            .await
            .map_err(|retry_after| Throttled {
                limit: "login_per_ip",
                retry_after,
            })?;
        self.failures_per_user
            .try_take(name)
            .await
            .map_err(|retry_after| Throttled {
                limit: "login_per_user",
                retry_after,
            })?;
        self.queue.try_acquire().map_err(|_| Throttled {
            limit: "login_queue",
            retry_after: Duration::from_secs(1),
        })
    }

    /// The password was right: the token `admit` took for `name` goes back (only failures
    /// count).
    pub async fn succeeded(&self, name: &str) {
        self.failures_per_user.charge(name, -1.0).await;
    }
}

fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(per_ip: u32, per_user: u32, queue: usize) -> AuthConfig {
        AuthConfig {
            login_attempts_per_ip: per_ip,
            login_failures_per_user: per_user,
            login_queue: queue,
            ..AuthConfig::default()
        }
    }

    #[tokio::test]
    async fn an_address_is_throttled_alone() {
        let throttle = LoginThrottle::new(&config(2, 100, 100), None);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(throttle.admit(a, "x").await.is_ok());
        assert!(throttle.admit(a, "x").await.is_ok());
        let refused = throttle.admit(a, "x").await.unwrap_err();
        assert_eq!(refused.limit, "login_per_ip");
        assert!(refused.retry_after > Duration::from_secs(20));
        assert!(
            throttle.admit(b, "x").await.is_ok(),
            "another address is not affected"
        );
    }

    #[tokio::test]
    async fn failures_throttle_a_name_from_anywhere() {
        let throttle = LoginThrottle::new(&config(100, 2, 100), None);
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        // Two wrong passwords (admitted, never given back), from two addresses.
        drop(throttle.admit(ip(1), "alice").await.unwrap());
        drop(throttle.admit(ip(2), "alice").await.unwrap());
        assert_eq!(
            throttle.admit(ip(9), "alice").await.unwrap_err().limit,
            "login_per_user"
        );
        assert!(throttle.admit(ip(9), "bob").await.is_ok());
    }

    #[tokio::test]
    async fn successes_give_their_token_back_and_guesses_at_once_cannot_all_pass() {
        let throttle = LoginThrottle::new(&config(100, 2, 100), None);
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..5 {
            drop(throttle.admit(ip, "carol").await.unwrap());
            throttle.succeeded("carol").await;
        }
        // Guesses in flight together: the third is refused before any of them is hashed.
        let first = throttle.admit(ip, "dave").await.unwrap();
        let second = throttle.admit(ip, "dave").await.unwrap();
        assert_eq!(
            throttle.admit(ip, "dave").await.unwrap_err().limit,
            "login_per_user"
        );
        drop((first, second));
    }

    #[tokio::test]
    async fn the_queue_is_bounded() {
        let throttle = LoginThrottle::new(&config(100, 100, 1), None);
        let ip = IpAddr::from([10, 0, 0, 1]);
        let held = throttle.admit(ip, "a").await.unwrap();
        assert_eq!(
            throttle.admit(ip, "b").await.unwrap_err().limit,
            "login_queue"
        );
        drop(held);
        assert!(throttle.admit(ip, "b").await.is_ok());
    }

    #[test]
    fn ipv6_hosts_share_their_64() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(address_key("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
    }
}
