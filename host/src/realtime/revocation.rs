//! Account changes reach open sockets. `slashd user set-role` and `user disable` run in
//! another process (perhaps on another node) and only write the database; REST sees the
//! change on its next request, but a WebSocket authenticated once would keep its old role.
//!
//! So every node polls: every `auth.revocation_poll` (500 ms) it reads the users whose row
//! changed lately (`updated_at`, indexed) and tells their open connections through the hub
//! — a demoted user's next command is checked against the new role, a disabled user's
//! sockets get `unauthorized` and close 4001. The poll is one index range scan returning
//! only the users changed in the last `LOOKBACK`, on SQLite and PostgreSQL alike, and
//! needs no Redis in a cluster: every node reads the same database. Looking back
//! `LOOKBACK` before the newest change it has seen, it does not miss a change committed
//! late or stamped by a CLI whose clock is a little behind; a stamp from a clock ahead of
//! ours does not move the mark past our own clock. Applying a standing twice changes
//! nothing.

use std::time::Duration;

use crate::hub::{Hub, Standing};
use crate::store::{Store, UserStatus};
use crate::time_fmt::now_ms;

const LOOKBACK: Duration = Duration::from_secs(10);

pub fn spawn(
    store: Store,
    hub: Hub,
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let lookback = LOOKBACK.as_millis() as i64;
        let mut newest = now_ms();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match store
                .users_changed_since(newest.saturating_sub(lookback))
                .await
            {
                Ok(changed) => {
                    failing = false;
                    for (user_id, role, status, updated_at) in changed {
                        newest = newest.max(updated_at.min(now_ms()));
                        let disabled = status == UserStatus::Disabled;
                        hub.update_standing(&user_id, Standing { role, disabled });
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot poll for account changes; retrying");
                }
                Err(_) => {}
            }
        }
    });
}
