//! `GET /commands`: what the caller's role may run — the same rule as dispatch and `/help`.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::extract::Auth;
use crate::app::AppState;
use crate::commands;
use crate::plugins::CommandInfo;

#[derive(Serialize)]
pub struct CommandList {
    commands: Vec<CommandInfo>,
}

pub async fn list(State(state): State<AppState>, Auth(caller): Auth) -> Json<CommandList> {
    Json(CommandList {
        commands: commands::visible(&state, &caller),
    })
}
