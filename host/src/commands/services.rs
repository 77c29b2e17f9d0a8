//! The server's side of the plugin capabilities: real sessions, statistics and kv storage.

use std::time::Instant;

use async_trait::async_trait;

use crate::chat::Chat;
use crate::plugins::host_services::{
    CallContext, HostServices, ServerStats, SessionDetail, SessionSummary,
};
use crate::plugins::ProgressUpdate;
use crate::protocol::frames::ProgressState;
use crate::store::{Access, KvError};
use crate::time_fmt::rfc3339;

pub struct ServerServices {
    chat: Chat,
    started: Instant,
}

impl ServerServices {
    pub fn new(chat: Chat) -> ServerServices {
        ServerServices {
            chat,
            started: Instant::now(),
        }
    }
}

/// A storage failure is logged in full and reported to the plugin in general terms.
fn storage_error(err: impl std::fmt::Display) -> String {
    tracing::error!(error = %err, "storage error in a plugin host call");
    "storage error".into()
}

#[async_trait]
impl HostServices for ServerServices {
    async fn stats(&self) -> Result<ServerStats, String> {
        let counts = self.chat.store.counts().await.map_err(storage_error)?;
        Ok(ServerStats {
            uptime_secs: self.started.elapsed().as_secs(),
            connections: self.chat.hub.connection_count() as u64,
            users_online: self.chat.hub.users_online() as u64,
            sessions_active: counts.sessions_active as u64,
            sessions_total: counts.sessions_total as u64,
            messages_total: counts.messages_total as u64,
            messages_last_24h: counts.messages_last_24h as u64,
        })
    }

    async fn current_session(&self, ctx: &CallContext) -> Result<SessionDetail, String> {
        let (session, _) = self
            .chat
            .store
            .session_for(&ctx.session_id, &ctx.user_id)
            .await
            .map_err(storage_error)?
            .ok_or("no such session")?;
        let message_count = self
            .chat
            .store
            .message_count(&session.id)
            .await
            .map_err(storage_error)?;
        Ok(SessionDetail {
            participants: self.chat.hub.participants(&session.id),
            message_count: message_count as u64,
            created_at: rfc3339(session.created_at),
            status: session.status.as_str().into(),
            owner_id: session.owner_id,
            title: session.title,
            id: session.id,
        })
    }

    async fn my_sessions(
        &self,
        ctx: &CallContext,
        limit: u32,
    ) -> Result<Vec<SessionSummary>, String> {
        let (sessions, _) = self
            .chat
            .store
            .list_sessions(&ctx.user_id, None, limit as i64, 0)
            .await
            .map_err(storage_error)?;
        Ok(sessions
            .into_iter()
            .map(|s| s.session)
            .map(|s| SessionSummary {
                last_activity_at: rfc3339(s.last_activity_at),
                created_at: rfc3339(s.created_at),
                status: s.status.as_str().into(),
                title: s.title,
                id: s.id,
            })
            .collect())
    }

    async fn end_current_session(&self, ctx: &CallContext) -> Result<(), String> {
        match self
            .chat
            .store
            .session_for(&ctx.session_id, &ctx.user_id)
            .await
            .map_err(storage_error)?
        {
            Some((_, Access::Owner)) => {}
            Some((_, Access::Member)) => return Err("only the session's owner can end it".into()),
            None => return Err("no such session".into()),
        }
        self.chat
            .end_session(&ctx.session_id)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.chat
            .store
            .kv_get(plugin, key)
            .await
            .map_err(storage_error)
    }

    async fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        max_keys: i64,
    ) -> Result<(), String> {
        match self.chat.store.kv_set(plugin, key, value, max_keys).await {
            Ok(()) => Ok(()),
            Err(e @ KvError::Quota(_)) => Err(e.to_string()),
            Err(KvError::Db(e)) => Err(storage_error(e)),
        }
    }

    async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), String> {
        self.chat
            .store
            .kv_delete(plugin, key)
            .await
            .map_err(storage_error)
    }

    async fn kv_list(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, String> {
        self.chat
            .store
            .kv_keys(plugin, prefix)
            .await
            .map_err(storage_error)
    }

    fn progress(&self, ctx: &CallContext, _command: &str, update: &ProgressUpdate) {
        if let Some(job) = &ctx.job {
            super::broadcast_progress(&self.chat, &job.spec, update, ProgressState::Running);
        }
    }

    fn http_request(&self, plugin: &str, outcome: &str, bytes: u64) {
        self.chat
            .metrics
            .plugin_http_request(plugin, outcome, bytes);
    }
}
