//! The outside world a plugin reaches in these tests: a real local HTTP server (axum) with
//! the answers the egress rules are tried against, and a fake deploy API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The bearer token the fake deploy API accepts.
pub const DEPLOY_TOKEN: &str = "dpl-7f3a9c1e5b2d8f4a";

#[derive(Default)]
struct Seen {
    hits: AtomicUsize,
    authorizations: Mutex<Vec<String>>,
    /// Deployment id → polls left before it succeeds.
    deployments: Mutex<HashMap<String, usize>>,
    /// Deployments asked to roll back, in order.
    rollbacks: Mutex<Vec<String>>,
}

pub struct World {
    pub port: u16,
    seen: Arc<Seen>,
}

impl World {
    pub async fn start() -> World {
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .route("/api/hello", get(|| async { "hello from the world" }))
            .route(
                "/api/host",
                get(|headers: HeaderMap| async move {
                    let host = headers.get("host").and_then(|h| h.to_str().ok());
                    format!("Host: {}", host.unwrap_or("none"))
                }),
            )
            .route(
                "/api/echo",
                post(|Json(body): Json<Value>| async move { Json(body) }),
            )
            .route(
                "/api/redirect",
                get(|| async {
                    (
                        StatusCode::FOUND,
                        [("location", "http://203.0.113.9/elsewhere")],
                        "",
                    )
                }),
            )
            .route("/api/big", get(|| async { "x".repeat(2 << 20) }))
            .route(
                "/api/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "too late"
                }),
            )
            .route("/api/deployments", post(create))
            .route("/api/deployments/{id}", get(status))
            .route("/api/deployments/{id}/rollback", post(rollback))
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(axum::middleware::from_fn_with_state(seen.clone(), count))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        World { port, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Requests that reached this server.
    pub fn hits(&self) -> usize {
        self.seen.hits.load(Ordering::SeqCst)
    }

    /// The deployments rolled back, in order.
    pub fn rollbacks(&self) -> Vec<String> {
        self.seen.rollbacks.lock().unwrap().clone()
    }

    pub fn authorizations(&self) -> Vec<String> {
        self.seen.authorizations.lock().unwrap().clone()
    }
}

async fn count(
    State(seen): State<Arc<Seen>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    if let Some(auth) = request.headers().get("authorization") {
        let auth = auth.to_str().unwrap_or_default().to_string();
        seen.authorizations.lock().unwrap().push(auth);
    }
    next.run(request).await
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {DEPLOY_TOKEN}"))
}

async fn create(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let service = body["service"].as_str().unwrap_or_default();
    // `slow-…` services take far longer than any test waits (for cancelling).
    let polls = if service.starts_with("slow") {
        10_000
    } else {
        3
    };
    let id = format!("d-{}", seen.deployments.lock().unwrap().len() + 1);
    seen.deployments.lock().unwrap().insert(id.clone(), polls);
    Json(json!({ "id": id })).into_response()
}

async fn status(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut deployments = seen.deployments.lock().unwrap();
    let Some(left) = deployments.get_mut(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if *left == 0 {
        return Json(json!({ "state": "succeeded", "progress": 1.0 })).into_response();
    }
    *left -= 1;
    Json(json!({ "state": "running", "progress": 0.5, "message": "rolling out" })).into_response()
}

async fn rollback(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    seen.rollbacks.lock().unwrap().push(id.clone());
    Json(json!({ "id": format!("{id}-rollback") })).into_response()
}
