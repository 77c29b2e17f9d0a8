//! `GET /commands`: what the caller's role may run — the same rule as dispatch and `/help`.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::common;
use super::extract::Auth;
use crate::error::ErrorBody;
use crate::plugins::CommandInfo;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CommandList {
    commands: Vec<CommandInfo>,
}

/// The commands the caller's role may run, with usage.
#[utoipa::path(
    get,
    path = "/commands",
    tag = "commands",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The commands", body = CommandList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn list(State(state): State<AppState>, Auth(caller): Auth) -> Json<CommandList> {
    Json(CommandList {
        commands: state.commands.visible(&caller),
    })
}
