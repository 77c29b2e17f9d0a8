//! `/admin/…`: plugin control and the command audit log. Admins only.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::common;
use super::extract::{Auth, Path, Query};
use crate::auth::{log_refusal, Principal, Refused, Role};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::plugins::{AdminError, PluginView};
use crate::state::AppState;
use crate::store::AuditRow;

fn require_admin(caller: &Principal) -> AppResult<()> {
    if caller.role.allows(Role::Admin) {
        Ok(())
    } else {
        log_refusal(
            Refused::Role,
            "rest",
            Some(&caller.name),
            "the admin role is required",
        );
        Err(AppError::Forbidden("admins only".into()))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PluginList {
    plugins: Vec<PluginView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OnePlugin {
    plugin: PluginView,
}

/// Every configured plugin: state, commands, grants, call counts.
#[utoipa::path(
    get,
    path = "/admin/plugins",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The plugins", body = PluginList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn plugins(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> AppResult<Json<PluginList>> {
    require_admin(&caller)?;
    Ok(Json(PluginList {
        plugins: state.plugins.describe(),
    }))
}

/// Enable a loaded plugin (until the next reload or restart).
#[utoipa::path(
    post,
    path = "/admin/plugins/{name}/enable",
    tag = "admin",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "The plugin, enabled; or, while it is still compiling, `loading`, \
                                      and the change applies when it has loaded", body = OnePlugin),
        (status = 400, description = "A NUL character or invalid percent-encoding in the name", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 409, description = "The plugin was refused at load", body = ErrorBody),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn enable(
    state: State<AppState>,
    caller: Auth,
    name: Path<String>,
) -> AppResult<Json<OnePlugin>> {
    set_enabled(state, caller, name, true).await
}

/// Disable a plugin (until the next reload or restart).
#[utoipa::path(
    post,
    path = "/admin/plugins/{name}/disable",
    tag = "admin",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "The plugin, disabled; or, while it is still compiling, `loading`, \
                                      and the change applies when it has loaded", body = OnePlugin),
        (status = 400, description = "A NUL character or invalid percent-encoding in the name", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 409, description = "The plugin was refused at load", body = ErrorBody),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
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
    state.plugins.set_enabled(&name, enabled).await?;
    if let Some(cluster) = &state.cluster {
        cluster.broadcast_plugin_state(&name, enabled);
    }
    let plugin = state
        .plugins
        .describe()
        .into_iter()
        .find(|p| p.name == name)
        .ok_or(AdminError::NoSuchPlugin(name))?;
    Ok(Json(OnePlugin { plugin }))
}

/// Re-read the config file and reload every plugin (on every node of a cluster).
#[utoipa::path(
    post,
    path = "/admin/plugins/reload",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The plugins after the reload", body = PluginList),
        (status = 400, description = "The config file is invalid; nothing changed", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn reload(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> AppResult<Json<PluginList>> {
    require_admin(&caller)?;
    state.plugins.reload_from(&state.config_file).await?;
    if let Some(cluster) = &state.cluster {
        cluster.broadcast_reload();
    }
    Ok(Json(PluginList {
        plugins: state.plugins.describe(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// A user id or name.
    user: Option<String>,
    /// A command name, with or without the `/`.
    command: Option<String>,
    /// How many rows to return.
    #[param(minimum = 0, maximum = 500, default = 100)]
    limit: Option<i64>,
    /// How many to skip.
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    entries: Vec<AuditRow>,
    has_more: bool,
}

/// The command audit log, newest first.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "admin",
    security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "Audit rows", body = AuditPage),
        (status = 400, description = "`limit` or `offset` out of range or not a number, or a NUL character", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<AuditParams>,
) -> AppResult<Json<AuditPage>> {
    require_admin(&caller)?;
    let (limit, offset) = super::sessions::page(params.limit, params.offset, 100)?;
    let user_id = match params.user.as_deref() {
        None | Some("") => None,
        Some(who) => Some(match state.chat.store.user_by_name(who).await? {
            Some(user) => user.id,
            None => who.to_string(),
        }),
    };
    let command = params
        .command
        .as_deref()
        .map(|c| c.trim_start_matches('/').to_string());
    let (entries, has_more) = state
        .chat
        .store
        .list_audit(user_id.as_deref(), command.as_deref(), limit, offset)
        .await?;
    Ok(Json(AuditPage { entries, has_more }))
}
