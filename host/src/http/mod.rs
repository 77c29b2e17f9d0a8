//! REST routes. Handlers are thin; the shared rules live in `chat`, `auth` and `store`.

mod admin;
mod auth;
mod commands;
pub mod extract;
mod health;
mod sessions;

use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;
use crate::error::AppError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/chat/sessions", post(sessions::create).get(sessions::list))
        .route(
            "/chat/sessions/{id}",
            get(sessions::get)
                .put(sessions::update)
                .delete(sessions::end),
        )
        .route("/chat/sessions/{id}/messages", get(sessions::messages))
        .route("/chat/sessions/{id}/context", get(sessions::context))
        .route("/chat/sessions/{id}/members", post(sessions::add_member))
        .route("/commands", get(commands::list))
        .route("/admin/plugins", get(admin::plugins))
        .route("/admin/plugins/reload", post(admin::reload))
        .route("/admin/plugins/{name}/enable", post(admin::enable))
        .route("/admin/plugins/{name}/disable", post(admin::disable))
        .route("/admin/audit", get(admin::audit))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { AppError::NotFound("no such route".into()) })
}
