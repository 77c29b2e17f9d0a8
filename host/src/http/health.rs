//! Operations: liveness, readiness and Prometheus metrics. No token needed (see README,
//! "Decisions").

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::common;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::metrics::{Live, CONTENT_TYPE};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(schema_with = health_status)]
    status: &'static str,
}

/// `Health.status` as a one-value string enum.
fn health_status() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["ok"]))
        .description(Some("Always `ok`"))
        .into()
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    #[schema(schema_with = readiness_status)]
    status: &'static str,
    database: bool,
    /// Present in cluster mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<bool>,
    /// How many plugins are still compiling in the background after a start on a cold
    /// compile cache (their commands answer `unknown_command`, "plugins still loading",
    /// until then); absent when none. A count, not names: this route needs no token, and
    /// `GET /admin/plugins` names them for admins.
    #[serde(skip_serializing_if = "Option::is_none")]
    plugins_loading: Option<usize>,
}

/// `Readiness.status` as a string enum.
fn readiness_status() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["ready", "not ready"]))
        .description(Some("`ready` (answered 200) or `not ready` (answered 503)"))
        .into()
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Alive", body = Health),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The node can serve: its database answers, in a cluster Redis does too, and every plugin
/// is loaded (after a start on a cold compile cache they compile in the background).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = "Not ready: the database or Redis is unreachable, or plugins \
                                      are still loading; the body is a `Readiness` with `status` \
                                      `not ready`. (Separately, a node at its connection limit \
                                      answers 503 to any route before reading the request: then \
                                      the body is an `ErrorBody`, code `rate_limited`, with \
                                      `Retry-After: 1`.)", body = Readiness,
         headers(("Retry-After" = u64, description = "Only on the connection-limit refusal: always 1"))),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = state.chat.store.ping().await;
    let redis = state.cluster.as_ref().map(|c| c.healthy());
    let loading = state.plugins.still_loading().len();
    let ready = database && redis.unwrap_or(true) && loading == 0;
    let plugins_loading = (loading > 0).then_some(loading);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ready" } else { "not ready" },
        database,
        redis,
        plugins_loading,
    };
    (status, Json(body))
}

/// Prometheus metrics of this node (OpenMetrics text).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "OpenMetrics text", body = String,
         content_type = "application/openmetrics-text"),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = "Encoding the metrics failed (code `internal`), or \
                                      something else unexpected. A handler panic is answered \
                                      `text/plain` \"Service panicked\" instead",
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> AppResult<impl IntoResponse> {
    let live = Live {
        connections: state.chat.hub.connection_count(),
        users_online: state.chat.hub.users_online(),
        redis_connected: state.cluster.as_ref().map(|c| c.healthy()),
    };
    let text = state
        .chat
        .metrics
        .render(live)
        .map_err(AppError::internal)?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text))
}
