//! `GET /commands`: what the caller's role may run — the same rule as dispatch and `/help`.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

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
    )
)]
pub async fn list(State(state): State<AppState>, Auth(caller): Auth) -> Json<CommandList> {
    Json(CommandList {
        commands: state.commands.visible(&caller),
    })
}
