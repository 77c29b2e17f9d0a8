//! `GET /openapi.json`: the document lists every REST route the router serves — each
//! documented (method, path) answers something other than the router's fallback — and
//! exactly the routes of DESIGN §4 plus the ones slashd adds.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Backend, Server};

/// DESIGN §4, then slashd's additions (`/admin/audit`, `/openapi.json`, removing a member).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/auth/login"),
    ("post", "/chat/sessions"),
    ("get", "/chat/sessions"),
    ("get", "/chat/sessions/{id}"),
    ("put", "/chat/sessions/{id}"),
    ("delete", "/chat/sessions/{id}"),
    ("get", "/chat/sessions/{id}/messages"),
    ("get", "/chat/sessions/{id}/context"),
    ("post", "/chat/sessions/{id}/members"),
    ("get", "/commands"),
    ("get", "/admin/plugins"),
    ("post", "/admin/plugins/{name}/enable"),
    ("post", "/admin/plugins/{name}/disable"),
    ("post", "/admin/plugins/reload"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/admin/audit"),
    ("get", "/openapi.json"),
    ("delete", "/chat/sessions/{id}/members/{user_id}"),
];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                routes.insert((method.clone(), path.clone()));
            }
        }
    }
    routes
}

/// Whether an answer is the router's own "no such route" (404) or "wrong method" (405).
fn is_fallback(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && body["error"]["message"] == "no such route")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_route_the_router_serves() {
    let server = Server::start(Backend::Sqlite).await;
    let (status, doc) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "no token needed");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );

    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let listed = documented(&doc);
    assert_eq!(
        listed, expected,
        "the document must list exactly the routes of DESIGN §4 and slashd's additions"
    );

    // The fallback is detectable (so the loop below can fail) …
    let admin = server.admin().await;
    let (status, body) = server.get("/no/such/route", &admin.token).await;
    assert!(is_fallback(status, &body), "{status} {body}");
    let (status, body) = server
        .call(Method::PATCH, "/commands", Some(&admin.token), None)
        .await;
    assert!(is_fallback(status, &body), "{status} {body}");

    // … and no documented route falls through to it. Ids are well-formed but unknown, and
    // the plugin is one that does not exist, so nothing changes.
    let session = uuid::Uuid::new_v4().to_string();
    for (method, path) in &listed {
        let concrete = path
            .replace("{id}", &session)
            .replace("{user_id}", &session)
            .replace("{name}", "no-such-plugin");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));
        let (status, answer) = server
            .call(method.clone(), &concrete, Some(&admin.token), body)
            .await;
        assert!(
            !is_fallback(status, &answer),
            "{method} {concrete} is documented but not served: {status} {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_bodies_errors_and_the_bearer_scheme() {
    let server = Server::start(Backend::Sqlite).await;
    let (status, doc) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);

    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");

    let schemas = &doc["components"]["schemas"];
    let error = &schemas["ErrorBody"]["properties"]["error"];
    assert!(!error.is_null(), "ErrorBody: {}", schemas["ErrorBody"]);
    let codes = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("error codes");
    for code in [
        "unauthorized",
        "forbidden",
        "not_found",
        "bad_request",
        "too_large",
        "rate_limited",
        "internal",
    ] {
        assert!(codes.contains(&json!(code)), "{code} missing: {codes:?}");
    }
    let session = schemas["Session"]["properties"]
        .as_object()
        .expect("Session");
    for field in [
        "id",
        "title",
        "owner_id",
        "status",
        "created_at",
        "updated_at",
        "ended_at",
        "last_activity_at",
        "metadata",
    ] {
        assert!(session.contains_key(field), "Session.{field} missing");
    }

    let create = &doc["paths"]["/chat/sessions"]["post"];
    assert_eq!(create["security"], json!([{"bearer": []}]), "{create}");
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateSession",
        "{create}"
    );
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Session",
        "{create}"
    );
    assert_eq!(
        create["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody",
        "{create}"
    );
    let login = &doc["paths"]["/auth/login"]["post"];
    assert!(login.get("security").is_none(), "login needs no token");
    let params: Vec<&str> = doc["paths"]["/chat/sessions/{id}/messages"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for p in ["id", "limit", "offset", "after_seq"] {
        assert!(params.contains(&p), "{p} missing from {params:?}");
    }
}
