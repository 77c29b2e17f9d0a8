//! Retention: active sessions idle past `sessions.idle_retention` are ended (their
//! participants are told), ended sessions older than that are deleted with their
//! messages, and audit rows older than `commands.audit_retention` are deleted.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chat::Chat;
use crate::config::Config;
use crate::time_fmt::now_ms;

/// How long things are kept, and how often the sweep runs.
#[derive(Clone, Copy)]
pub struct Retention {
    every: Duration,
    idle_sessions: Duration,
    audit_rows: Duration,
}

impl Retention {
    pub fn from_config(config: &Config) -> Retention {
        Retention {
            every: config.sessions.sweep_interval,
            idle_sessions: config.sessions.idle_retention,
            audit_rows: config.commands.audit_retention,
        }
    }

    /// Sweep every `sessions.sweep_interval` until shutdown.
    pub fn spawn(self, chat: Chat, tasks: &TaskTracker, shutdown: CancellationToken) {
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(err) = self.sweep(&chat).await {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "retention sweep failed; will retry"
                    );
                }
            }
        });
    }

    async fn sweep(&self, chat: &Chat) -> anyhow::Result<()> {
        let cutoff = |kept: Duration| {
            now_ms().saturating_sub(i64::try_from(kept.as_millis()).unwrap_or(i64::MAX))
        };
        let sessions_cutoff = cutoff(self.idle_sessions);
        let ended = chat.store.end_idle_sessions(sessions_cutoff).await?;
        for id in &ended {
            chat.announce_ended(id);
        }
        let deleted = chat.store.delete_ended_sessions(sessions_cutoff).await?;
        let audit_deleted = chat
            .store
            .delete_audit_before(cutoff(self.audit_rows))
            .await?;
        if !ended.is_empty() || deleted > 0 || audit_deleted > 0 {
            tracing::info!(
                ended = ended.len(),
                deleted,
                audit_deleted,
                "retention sweep"
            );
        }
        Ok(())
    }
}
