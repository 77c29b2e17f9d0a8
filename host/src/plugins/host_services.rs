//! The server-side operations behind the capabilities, as the plugin host sees them: who
//! runs a call ([`CallContext`]) and the services the server (or a fake) supplies.

use std::sync::Arc;

use async_trait::async_trait;

use super::jobs::{Job, ProgressUpdate};
use crate::auth::Role;

/// Who runs a command, where.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub user_id: String,
    pub user_name: String,
    pub role: Role,
    pub session_id: String,
    pub session_title: String,
    pub connection_id: String,
    /// RFC 3339.
    pub connected_at: String,
    /// The invocation message's id (the job's id).
    pub invocation_id: String,
    /// The running call, for progress and cancellation.
    pub job: Option<Arc<Job>>,
}

#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub uptime_secs: u64,
    pub connections: u64,
    pub users_online: u64,
    pub sessions_active: u64,
    pub sessions_total: u64,
    pub messages_total: u64,
    pub messages_last_24h: u64,
}

#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub id: String,
    pub title: String,
    pub status: String,
    pub last_activity_at: String,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct SessionDetail {
    pub id: String,
    pub title: String,
    pub status: String,
    pub created_at: String,
    pub owner_id: String,
    pub message_count: u64,
    pub participants: Vec<String>,
}

/// The server-side operations behind the capabilities. Errors are messages for the plugin.
#[async_trait]
pub trait HostServices: Send + Sync + 'static {
    async fn stats(&self) -> Result<ServerStats, String>;
    async fn current_session(&self, ctx: &CallContext) -> Result<SessionDetail, String>;
    async fn my_sessions(
        &self,
        ctx: &CallContext,
        limit: u32,
    ) -> Result<Vec<SessionSummary>, String>;
    async fn end_current_session(&self, ctx: &CallContext) -> Result<(), String>;
    async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Store a value; refuse a new key when the plugin already has `max_keys`.
    async fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        max_keys: i64,
    ) -> Result<(), String>;
    async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), String>;
    async fn kv_list(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, String>;
    /// Tell the session how a command is going (a `command_progress` frame, not stored).
    fn progress(&self, ctx: &CallContext, command: &str, update: &ProgressUpdate);
    /// One outbound HTTP request ended (`outcome` is a status code or why it failed).
    fn http_request(&self, plugin: &str, outcome: &str, bytes: u64);
}
