//! REST routes. Handlers are thin; the shared rules live in `chat`, `auth` and `store`.
//!
//! Every route is registered together with its OpenAPI description (utoipa-axum's
//! `routes!`), so `GET /openapi.json` cannot drift from what the router serves: a handler
//! without `#[utoipa::path]` does not compile into this router.

mod admin;
mod auth;
mod commands;
pub mod extract;
mod health;
mod sessions;
pub mod web;

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{AppError, ErrorBody};
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "slashd",
        description = "REST API of slashd. The live chat is the WebSocket at `GET /ws` \
                       (protocol v1, see DESIGN.md §3); it is not described here."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The `bearer` security scheme (a JWT in `Authorization: Bearer …`).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every REST route with its description.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(sessions::create, sessions::list))
        .routes(routes!(sessions::get, sessions::update, sessions::end))
        .routes(routes!(sessions::messages))
        .routes(routes!(sessions::context))
        .routes(routes!(sessions::add_member))
        .routes(routes!(sessions::remove_member))
        .routes(routes!(commands::list))
        .routes(routes!(admin::plugins))
        .routes(routes!(admin::reload))
        .routes(routes!(admin::enable))
        .routes(routes!(admin::disable))
        .routes(routes!(admin::audit))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of every REST route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

pub fn routes() -> Router<AppState> {
    let (router, doc) = api().split_for_parts();
    let json = doc.to_pretty_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize the OpenAPI document");
        "{}".into()
    });
    router
        .layer(Extension(ApiJson(json.into())))
        .fallback(|| async { AppError::NotFound("no such route".into()) })
}

/// The serialized document, made once at start.
#[derive(Clone)]
struct ApiJson(Arc<str>);

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API",
               content_type = "application/json"))
)]
async fn openapi_json(Extension(ApiJson(json)): Extension<ApiJson>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
}
