//! Where a plugin call starts: on the caller's thread, or handed to the plugin threads.
//!
//! A hand-off costs two thread wake-ups (~60 µs measured, several times a whole call of a
//! small plugin), so a call's first slice runs where the caller is, and only a call still
//! running when that slice ends moves to the plugin threads (nice 10) with its state. The
//! slice ends at the store's next epoch yield (within a 1 ms tick) or at the first wait on
//! I/O. What the slice cannot bound — one bulk `memory.fill` over tens of MB, copying a
//! huge result — is bounded per plugin instead: a plugin whose first slice took longer
//! than [`BUDGET`], or did not finish the call, starts its calls on the plugin threads for
//! the next [`DEMOTED_FOR`]. So a hostile plugin holds a chat thread for one slow slice
//! per half-minute, whatever it does, while a well-behaved one never pays the hop.
//!
//! A plugin granted `http` always starts on the plugin threads: wasi-http spawns the
//! request (DNS, connect, TLS, the body) on the runtime it is first polled on.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest first slice that keeps a plugin's calls on the caller's thread.
pub const BUDGET: Duration = Duration::from_micros(500);
/// How long a plugin over budget starts its calls on the plugin threads.
pub const DEMOTED_FOR: Duration = Duration::from_secs(30);

/// One plugin's standing.
#[derive(Debug, Default)]
pub struct FirstSlice {
    demoted_until: Mutex<Option<Instant>>,
}

impl FirstSlice {
    /// Whether the next call may start on the caller's thread.
    pub fn inline(&self, now: Instant) -> bool {
        match self.demoted_until.lock() {
            Ok(until) => until.is_none_or(|until| now >= until),
            Err(_) => false,
        }
    }

    /// A first slice ran for `took` and finished the call or not.
    pub fn ran(&self, now: Instant, took: Duration, finished: bool) {
        if finished && took <= BUDGET {
            return;
        }
        if let Ok(mut until) = self.demoted_until.lock() {
            *until = now.checked_add(DEMOTED_FOR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_or_unfinished_slice_demotes_for_a_while() {
        let t0 = Instant::now();
        let gate = FirstSlice::default();
        assert!(gate.inline(t0));
        gate.ran(t0, Duration::from_micros(20), true);
        assert!(gate.inline(t0), "fast and finished: stays");
        gate.ran(t0, Duration::from_micros(20), false);
        assert!(!gate.inline(t0), "waiting on I/O: demoted");
        assert!(!gate.inline(t0 + DEMOTED_FOR - Duration::from_millis(1)));
        assert!(gate.inline(t0 + DEMOTED_FOR), "for a while only");
        let t1 = t0 + DEMOTED_FOR;
        gate.ran(t1, BUDGET + Duration::from_micros(1), true);
        assert!(!gate.inline(t1), "over budget: demoted");
    }
}
