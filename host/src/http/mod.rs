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
                       (protocol v1, docs/protocol.md in the repository); it is not described here.\n\n\
                       Every route can also answer 408 (`server.request_timeout` passed; empty body), \
                       500 (`internal`) and 503 (the node or the client's address is at its \
                       connection limit; `Retry-After: 1`). Every route that takes a JSON body \
                       can answer 413 (larger than `server.max_body_bytes`) and 415 (not declared \
                       as JSON). A NUL character (U+0000) in a JSON body, or in the query string \
                       or path parameters of a route that reads them, gets 400. Each route lists \
                       these statuses too."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// Response descriptions that every route's `#[utoipa::path]` repeats: these statuses come
/// from the layers around the handlers (`app::router`, `listener`, the `Json` extractor), so
/// they are worded once here.
mod common {
    /// `TimeoutLayer` in `app::router`: a bare status, no body.
    pub const TIMED_OUT: &str = "The request took longer than `server.request_timeout` (30 s by \
                                 default). Empty body, not JSON";
    /// `AppError::Internal`, or `CatchPanicLayer` when a handler panics.
    pub const INTERNAL: &str = "Something unexpected (code `internal`); the cause goes to the \
                                server log only. A handler panic is answered `text/plain` \
                                \"Service panicked\" instead";
    /// `listener::refuse`, before the request is read.
    pub const AT_CAPACITY: &str = "The node is at `server.max_connections`, or the client's \
                                   address is at `server.max_connections_per_ip` (code \
                                   `rate_limited`). Sent before the request is read, with \
                                   `Retry-After: 1`; the connection is then closed";
    /// `DefaultBodyLimit` in `app::router`, through the `Json` extractor.
    pub const TOO_LARGE: &str = "The body is larger than `server.max_body_bytes` (64 KiB by \
                                 default; code `too_large`)";
    /// The `Json` extractor's Content-Type check.
    pub const NOT_JSON: &str = "The body is not declared as JSON: `Content-Type` must be \
                                `application/json` or `application/…+json` (code `bad_request`)";
}

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
        .routes(routes!(sessions::members, sessions::add_member))
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
        .routes(routes!(asyncapi_json))
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
    let asyncapi = serde_json::to_string_pretty(&crate::protocol::asyncapi::document())
        .unwrap_or_else(|_| "{}".into());
    router
        .layer(Extension(ApiJson(json.into())))
        .layer(Extension(AsyncApiJson(asyncapi.into())))
        .fallback(|| async { AppError::NotFound("no such route".into()) })
}

/// The serialized document, made once at start.
#[derive(Clone)]
struct ApiJson(Arc<str>);

/// The serialized AsyncAPI document of the WebSocket protocol, made once at start.
#[derive(Clone)]
struct AsyncApiJson(Arc<str>);

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API",
         content_type = "application/json"),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
async fn openapi_json(Extension(ApiJson(json)): Extension<ApiJson>) -> impl IntoResponse {
    json_document(&json)
}

/// A document made once at start, as `application/json`.
fn json_document(json: &str) -> axum::response::Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
        .into_response()
}

/// The AsyncAPI 3 document of the WebSocket protocol (`protocol::asyncapi`).
#[utoipa::path(
    get,
    path = "/asyncapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The AsyncAPI 3.0 document of the WebSocket protocol at \
                                      `/ws`: every frame each way, made from the frame types",
         content_type = "application/json"),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
async fn asyncapi_json(
    Extension(AsyncApiJson(json)): Extension<AsyncApiJson>,
) -> impl IntoResponse {
    json_document(&json)
}
