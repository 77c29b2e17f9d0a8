//! What the transports hold: [`AppState`], the parts a handler or a connection may use,
//! each built once by `app.rs`. The chat core and everything below it never see it — they
//! are handed only the parts they need.

use std::sync::Arc;

use axum::extract::FromRef;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::assistant::Assistant;
use crate::auth::throttle::LoginThrottle;
use crate::auth::Authenticator;
use crate::chat::Chat;
use crate::cluster::Cluster;
use crate::commands::Commands;
use crate::config::{Config, ConfigFile};
use crate::limits::UserBudgets;
use crate::plugins::PluginHost;

/// Everything a handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The chat core: store, hub, metrics, presence.
    pub chat: Chat,
    pub auth: Arc<Authenticator>,
    pub commands: Arc<Commands>,
    pub plugins: Arc<PluginHost>,
    pub login_throttle: Arc<LoginThrottle>,
    /// Budgets per user, all their connections together (recovery bytes, new sockets).
    pub user_budgets: Arc<UserBudgets>,
    /// Answers ordinary messages; `None` when `[assistant]` is not configured.
    pub assistant: Option<Arc<Assistant>>,
    /// Which config file a plugin reload reads.
    pub config_file: Arc<ConfigFile>,
    /// Redis fan-out to other nodes; `None` on a single node.
    pub cluster: Option<Arc<Cluster>>,
    /// Cancelled when the server begins shutting down.
    pub shutdown: CancellationToken,
    /// Connection tasks and background jobs, awaited on shutdown.
    pub tasks: TaskTracker,
}

impl FromRef<AppState> for Chat {
    fn from_ref(state: &AppState) -> Chat {
        state.chat.clone()
    }
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Arc<Authenticator> {
        state.auth.clone()
    }
}
