//! In-memory stand-ins for the server's services: what `slashd plugin check` (and the
//! `testkit` harness) run a plugin against, with no database or hub behind them.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::host_services::{CallContext, HostServices, ServerStats, SessionDetail, SessionSummary};
use super::jobs::ProgressUpdate;

/// In-memory stand-ins for the server's services.
#[derive(Default)]
pub struct FakeServices {
    kv: Mutex<HashMap<String, Vec<u8>>>,
    ended: Mutex<bool>,
}

impl FakeServices {
    pub const SESSION_ID: &'static str = "00000000-0000-7000-8000-000000000001";

    fn kv(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.kv.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl HostServices for FakeServices {
    async fn stats(&self) -> Result<ServerStats, String> {
        Ok(ServerStats {
            uptime_secs: 60,
            connections: 1,
            users_online: 1,
            sessions_active: 1,
            sessions_total: 1,
            messages_total: 1,
            messages_last_24h: 1,
        })
    }

    async fn current_session(&self, ctx: &CallContext) -> Result<SessionDetail, String> {
        let ended = *self.ended.lock().unwrap_or_else(|p| p.into_inner());
        Ok(SessionDetail {
            id: ctx.session_id.clone(),
            title: ctx.session_title.clone(),
            status: if ended { "ended" } else { "active" }.into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            owner_id: ctx.user_id.clone(),
            message_count: 1,
            participants: vec![ctx.user_id.clone()],
        })
    }

    async fn my_sessions(
        &self,
        ctx: &CallContext,
        _limit: u32,
    ) -> Result<Vec<SessionSummary>, String> {
        Ok(vec![SessionSummary {
            id: ctx.session_id.clone(),
            title: ctx.session_title.clone(),
            status: "active".into(),
            last_activity_at: "2026-01-01T00:00:00Z".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        }])
    }

    async fn end_current_session(&self, _ctx: &CallContext) -> Result<(), String> {
        *self.ended.lock().unwrap_or_else(|p| p.into_inner()) = true;
        Ok(())
    }

    async fn kv_get(&self, _plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.kv().get(key).cloned())
    }

    async fn kv_set(
        &self,
        _plugin: &str,
        key: &str,
        value: &[u8],
        max_keys: i64,
    ) -> Result<(), String> {
        let mut kv = self.kv();
        if !kv.contains_key(key) && kv.len() as i64 >= max_keys {
            return Err(format!(
                "kv quota reached: a plugin may keep at most {max_keys} keys"
            ));
        }
        kv.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    async fn kv_delete(&self, _plugin: &str, key: &str) -> Result<(), String> {
        self.kv().remove(key);
        Ok(())
    }

    async fn kv_list(&self, _plugin: &str, prefix: &str) -> Result<Vec<String>, String> {
        let mut keys: Vec<String> = self
            .kv()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn progress(&self, _ctx: &CallContext, _command: &str, _update: &ProgressUpdate) {}

    fn http_request(&self, _plugin: &str, _outcome: &str, _bytes: u64) {}
}

impl FakeServices {
    pub fn kv_value(&self, key: &str) -> Option<Vec<u8>> {
        self.kv().get(key).cloned()
    }

    pub fn seed_kv(&self, key: &str, value: &[u8]) {
        self.kv().insert(key.to_string(), value.to_vec());
    }

    /// Whether the plugin ended the (fake) session.
    pub fn session_ended(&self) -> bool {
        *self.ended.lock().unwrap_or_else(|p| p.into_inner())
    }
}
