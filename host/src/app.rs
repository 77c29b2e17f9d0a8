//! Application assembly: build every part once (`build`), the router, start-up
//! (migrations, keys, first admin, background tasks) and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::assistant::{Assistant, ReplyTurns};
use crate::auth::throttle::LoginThrottle;
use crate::auth::{self, Authenticator, Role, TokenKeys};
use crate::chat::Chat;
use crate::cluster::{Cluster, ClusterKey, PluginCommand};
use crate::commands::{Commands, ServerServices};
use crate::config::{Config, ConfigFile};
use crate::hub::{Hub, Presence};
use crate::limits::{SharedBuckets, UserBudgets};
use crate::metrics::Metrics;
use crate::plugins::{PluginHost, Startup};
use crate::retention::Retention;
use crate::state::AppState;
use crate::store::Store;
use crate::{http, realtime};

/// Connect, migrate, load the token keys, and build every part, each handed only what it
/// needs: the chat core first, then the services above it.
pub async fn build(config: Config) -> anyhow::Result<AppState> {
    let store = open_store(&config).await?;
    let keys = token_keys(&config)?;
    let auth = Authenticator::new(keys, store.clone(), config.auth.auto_provision);
    let hub = Hub::default();
    let metrics = Arc::new(Metrics::new(config.cluster.redis_url.is_some()));
    let cluster = match &config.cluster.redis_url {
        Some(url) => Some(
            Cluster::start(
                url,
                &config.cluster.namespace,
                config.cluster.shard_rooms,
                ClusterKey::from_config(&config)?,
                hub.clone(),
                metrics.clone(),
            )
            .await
            .with_context(|| format!("cannot reach Redis at {}", crate::store::redact(url)))?,
        ),
        None => None,
    };
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let presence = cluster.clone().map(|c| c as Arc<dyn Presence>);
    store.observe_batches({
        let metrics = metrics.clone();
        move |n| metrics.store_batch(n)
    });
    let chat = Chat::new(store, hub, metrics, presence, tasks.clone());
    let services = ServerServices::new(chat.clone());
    let plugins = PluginHost::start(&config, Arc::new(services), Startup::Background).await?;
    // In a cluster, per-user rates are counted in Redis, across nodes.
    let shared = cluster.clone().map(|c| c as Arc<dyn SharedBuckets>);
    let commands = Commands::new(
        chat.clone(),
        plugins.clone(),
        &config.commands,
        tasks.clone(),
        shared.clone(),
    );
    let assistant = match &config.assistant {
        Some(c) => Some(Arc::new(Assistant::new(
            c,
            chat.clone(),
            tasks.clone(),
            shutdown.clone(),
            cluster.clone().map(|c| c as Arc<dyn ReplyTurns>),
        )?)),
        None => None,
    };
    Ok(AppState {
        user_budgets: Arc::new(UserBudgets::new(&config.realtime)),
        login_throttle: Arc::new(LoginThrottle::new(&config.auth, shared)),
        config: Arc::new(config),
        chat,
        auth: Arc::new(auth),
        commands: Arc::new(commands),
        plugins,
        assistant,
        config_file: Arc::new(ConfigFile::new(None)),
        cluster,
        shutdown,
        tasks,
    })
}

pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url(), config.database.max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

/// The token keys, generating and keeping a secret in the data directory when the config
/// names no key (so tokens survive restarts).
pub fn token_keys(config: &Config) -> anyhow::Result<TokenKeys> {
    let secret = match (&config.auth.jwt_secret, &config.auth.public_key_pem) {
        (Some(secret), _) => Some(secret.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(auth::generated_secret(&config.server.data_dir)?),
    };
    TokenKeys::new(&config.auth, secret.as_deref())
}

pub fn router(state: AppState) -> Router {
    let limits = &state.config.server;
    let rest = http::routes()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes));
    Router::new()
        .route("/ws", get(realtime::upgrade))
        .merge(rest)
        .merge(http::web::routes())
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serve until SIGTERM or Ctrl-C, then close every socket with 1001 and wait (up to
/// `server.shutdown_grace`) for queued frames to flush.
pub async fn serve(config: Config, config_file: ConfigFile) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let mut state = build(config).await?;
    state.config_file = Arc::new(config_file);
    spawn_reload_on_sighup(state.clone());
    spawn_cluster_plugin_sync(&state);
    bootstrap_admin(&state).await?;
    Retention::from_config(&state.config).spawn(
        state.chat.clone(),
        &state.tasks,
        state.shutdown.clone(),
    );
    realtime::revocation::spawn(
        state.chat.store.clone(),
        state.chat.hub.clone(),
        state.config.auth.revocation_poll,
        state.shutdown.clone(),
    );

    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, database = %crate::store::redact(&state.config.database_url()), "listening");
    let shutdown = state.shutdown.clone();
    let tasks = state.tasks.clone();
    let grace = state.config.server.shutdown_grace;
    let store = state.chat.store.clone();
    tokio::spawn({
        let shutdown = shutdown.clone();
        let jobs = state.plugins.jobs().clone();
        async move {
            wait_for_signal().await;
            cancel_running_commands(&jobs).await;
            tracing::info!("shutting down: closing connections");
            shutdown.cancel();
        }
    });
    let limits = crate::listener::Limits::from_config(&state.config.server);
    let metrics = state.chat.metrics.clone();
    crate::listener::serve(listener, router(state), limits, metrics, shutdown).await;
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!("some connections did not close within {grace:?}");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Cancel every running command and give their invokers and sessions a moment to hear it
/// (`cancelled`), before the sockets close.
async fn cancel_running_commands(jobs: &crate::plugins::Jobs) {
    const AT_MOST: std::time::Duration = std::time::Duration::from_secs(5);
    let running = jobs.cancel_all("the server is shutting down");
    if running == 0 {
        return;
    }
    tracing::info!(running, "shutting down: cancelling running commands");
    let until = tokio::time::Instant::now() + AT_MOST;
    while !jobs.is_empty() && tokio::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Re-read the config file and reload the plugins from it (SIGHUP, another node's reload).
async fn reload_plugins(state: &AppState) {
    // A refusal is logged by `reload_from`; the running plugins stay.
    let _ = state.plugins.reload_from(&state.config_file).await;
}

/// Apply plugin changes that an admin made on another node.
fn spawn_cluster_plugin_sync(state: &AppState) {
    let Some(mut commands) = state
        .cluster
        .as_ref()
        .and_then(|c| c.take_plugin_commands())
    else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        while let Some(command) = commands.recv().await {
            match command {
                PluginCommand::Reload => {
                    tracing::info!("another node reloaded its plugins: reloading");
                    reload_plugins(&state).await;
                }
                PluginCommand::SetEnabled { name, enabled } => {
                    if let Err(e) = state.plugins.set_enabled(&name, enabled).await {
                        tracing::warn!(plugin = name.as_str(), error = %e, "cannot apply another node's plugin change");
                    }
                }
            }
        }
    });
}

fn spawn_reload_on_sighup(state: AppState) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading plugins");
            reload_plugins(&state).await;
        }
    });
    #[cfg(not(unix))]
    drop(state);
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// A fresh database gets an `admin` user: password from `SLASHD_ADMIN_PASSWORD`, or a random
/// one printed once.
async fn bootstrap_admin(state: &AppState) -> anyhow::Result<()> {
    if state.chat.store.count_users().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match std::env::var("SLASHD_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (auth::random_password(), true),
    };
    auth::password::validate_new(&password)
        .map_err(|e| anyhow::anyhow!("SLASHD_ADMIN_PASSWORD: {e}"))?;
    let hash = tokio::task::spawn_blocking(move || {
        auth::password::hash_blocking(&password).map(|h| (h, password))
    })
    .await??;
    match state
        .chat
        .store
        .create_user("admin", Role::Admin, Some(&hash.0))
        .await
    {
        Ok(_) if generated => {
            tracing::warn!("created the first admin user; its password is printed once below");
            eprintln!("\n  first admin: user `admin`, password `{}`\n", hash.1);
        }
        Ok(_) => tracing::info!("created the first admin user `admin` from SLASHD_ADMIN_PASSWORD"),
        // Another node created it first.
        Err(crate::store::CreateUserError::NameTaken(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
