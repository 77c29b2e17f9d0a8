//! Whether this node reaches Redis, for `/readyz` and for the parts that skip waiting on
//! a Redis known to be away. Two things must hold: the subscription is up (the subscriber
//! says so as it connects and fails), and the last command on the other connections —
//! publishing, presence, the heartbeat, connection admission — succeeded. Each success
//! sets its half back, so one timed-out command does not leave the node unready forever.

use std::sync::atomic::{AtomicBool, Ordering};

pub(super) struct Health {
    subscribed: AtomicBool,
    commands: AtomicBool,
}

impl Health {
    pub fn new() -> Health {
        Health {
            subscribed: AtomicBool::new(true),
            commands: AtomicBool::new(true),
        }
    }

    pub fn ok(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed) && self.commands.load(Ordering::Relaxed)
    }

    /// The subscription is up (`true`) or lost (`false`); answers what it was.
    pub fn set_subscribed(&self, up: bool) -> bool {
        self.subscribed.swap(up, Ordering::Relaxed)
    }

    /// A command answered: log the recovery once.
    pub fn command_ok(&self) {
        if !self.commands.swap(true, Ordering::Relaxed) {
            tracing::warn!("Redis answers commands again");
        }
    }

    /// A command failed: log it once until one succeeds again.
    pub fn command_failed(&self, err: &redis::RedisError, what: &str) {
        if self.commands.swap(false, Ordering::Relaxed) {
            tracing::error!(error = %err, "Redis is unreachable: {what}");
        }
    }
}
