//! `/admin/…`: plugin control and the command audit log. Admins only.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{Auth, Path, Query};
use crate::app::{self, AppState};
use crate::auth::{Principal, Role};
use crate::error::{AppError, AppResult};
use crate::plugins::{AdminError, PluginView};
use crate::store::AuditRow;

fn require_admin(caller: &Principal) -> AppResult<()> {
    if caller.role.allows(Role::Admin) {
        Ok(())
    } else {
        tracing::warn!(target: "slashd::auth", user = %caller.name, "admin route refused");
        Err(AppError::Forbidden("admins only".into()))
    }
}

#[derive(Serialize)]
pub struct PluginList {
    plugins: Vec<PluginView>,
}

#[derive(Serialize)]
pub struct OnePlugin {
    plugin: PluginView,
}

pub async fn plugins(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> AppResult<Json<PluginList>> {
    require_admin(&caller)?;
    Ok(Json(PluginList {
        plugins: state.plugins.describe(),
    }))
}

pub async fn enable(
    state: State<AppState>,
    caller: Auth,
    name: Path<String>,
) -> AppResult<Json<OnePlugin>> {
    set_enabled(state, caller, name, true).await
}

pub async fn disable(
    state: State<AppState>,
    caller: Auth,
    name: Path<String>,
) -> AppResult<Json<OnePlugin>> {
    set_enabled(state, caller, name, false).await
}

async fn set_enabled(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    enabled: bool,
) -> AppResult<Json<OnePlugin>> {
    require_admin(&caller)?;
    state
        .plugins
        .set_enabled(&name, enabled)
        .await
        .map_err(|e| match e {
            AdminError::NoSuchPlugin => AppError::NotFound(format!("no plugin named {name:?}")),
            AdminError::Refused(_) => AppError::Conflict(e.to_string()),
        })?;
    if let Some(cluster) = &state.cluster {
        cluster.broadcast_plugin_state(&name, enabled);
    }
    let plugin = state
        .plugins
        .describe()
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| AppError::NotFound(format!("no plugin named {name:?}")))?;
    Ok(Json(OnePlugin { plugin }))
}

pub async fn reload(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> AppResult<Json<PluginList>> {
    require_admin(&caller)?;
    app::reload_plugins(&state).await?;
    if let Some(cluster) = &state.cluster {
        cluster.broadcast_reload();
    }
    Ok(Json(PluginList {
        plugins: state.plugins.describe(),
    }))
}

#[derive(Deserialize)]
pub struct AuditParams {
    /// A user id or name.
    user: Option<String>,
    command: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize)]
pub struct AuditPage {
    entries: Vec<AuditRow>,
    has_more: bool,
}

pub async fn audit(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<AuditParams>,
) -> AppResult<Json<AuditPage>> {
    require_admin(&caller)?;
    let (limit, offset) = super::sessions::page(params.limit, params.offset, 100)?;
    let user_id = match params.user.as_deref() {
        None | Some("") => None,
        Some(who) => Some(match state.store.user_by_name(who).await? {
            Some(user) => user.id,
            None => who.to_string(),
        }),
    };
    let command = params
        .command
        .as_deref()
        .map(|c| c.trim_start_matches('/').to_string());
    let (entries, has_more) = state
        .store
        .list_audit(user_id.as_deref(), command.as_deref(), limit, offset)
        .await?;
    Ok(Json(AuditPage { entries, has_more }))
}
