//! Retention: active sessions idle past `sessions.idle_retention` are ended (their
//! participants are told), ended sessions older than that are deleted with their
//! messages, and audit rows older than `commands.audit_retention` are deleted.

use crate::app::AppState;
use crate::chat;
use crate::time_fmt::now_ms;

pub fn spawn(state: AppState) {
    let every = state.config.sessions.sweep_interval;
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(err) = sweep(&state).await {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "retention sweep failed; will retry"
                );
            }
        }
    });
}

async fn sweep(state: &AppState) -> anyhow::Result<()> {
    let retention =
        i64::try_from(state.config.sessions.idle_retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms().saturating_sub(retention);
    let ended = state.store.end_idle_sessions(cutoff).await?;
    for id in &ended {
        chat::announce_ended(&state.hub, id);
    }
    let deleted = state.store.delete_ended_sessions(cutoff).await?;
    let audit_retention =
        i64::try_from(state.config.commands.audit_retention.as_millis()).unwrap_or(i64::MAX);
    let audit_deleted = state
        .store
        .delete_audit_before(now_ms().saturating_sub(audit_retention))
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
