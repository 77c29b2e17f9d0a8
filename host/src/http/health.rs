//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::app::AppState;

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The node can serve: its database answers and, in a cluster, Redis does too.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = state.store.ping().await;
    let redis = state.cluster.as_ref().map(|c| c.healthy());
    let ready = database && redis.unwrap_or(true);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body =
        json!({ "status": if ready { "ready" } else { "not ready" }, "database": database });
    if let Some(redis) = redis {
        body["redis"] = json!(redis);
    }
    (status, Json(body))
}
