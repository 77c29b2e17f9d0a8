//! `GET /openapi.json`: the document lists every REST route the router serves — each
//! documented (method, path) answers something other than the router's fallback — and
//! each has its section in the reference, docs/api.md.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Backend, Server};

/// Every REST route.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/auth/login"),
    ("post", "/chat/sessions"),
    ("get", "/chat/sessions"),
    ("get", "/chat/sessions/{id}"),
    ("put", "/chat/sessions/{id}"),
    ("delete", "/chat/sessions/{id}"),
    ("get", "/chat/sessions/{id}/messages"),
    ("get", "/chat/sessions/{id}/context"),
    ("get", "/chat/sessions/{id}/members"),
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
    ("get", "/asyncapi.json"),
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
        "the document must list exactly these routes"
    );
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"))
        .expect("docs/api.md");
    for (method, path) in &listed {
        let heading = format!("### `{} {path}`", method.to_uppercase());
        assert!(
            reference.lines().any(|l| l == heading),
            "docs/api.md has no section {heading}"
        );
    }

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

/// (method, documented path, concrete path, content type, body, who asks, status answered)
type Case<'a> = (Method, &'a str, String, &'a str, Vec<u8>, &'a str, u16);

/// What the server answers a bad request is a status the document declares for that route,
/// and the document's limits are the server's: a value at a documented bound is accepted,
/// one past it refused. Table-driven: (method, documented path, concrete path, content type,
/// body, the status the server gives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_declares_what_the_server_enforces() {
    let server = Server::start(Backend::Sqlite).await;
    let (_, doc) = server.call(Method::GET, "/openapi.json", None, None).await;
    let admin = server.admin().await;
    let viewer = server.user("vic", "viewer").await;
    let mine = server.session(&admin, "documented").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let json = "application/json";
    // Just over `server.max_body_bytes` (64 KiB): small enough to be sent whole before the
    // server answers 413 and closes (a much larger one can be cut off mid-send).
    let big = vec![b' '; 64 * 1024 + 1];
    let title = |n: usize| json!({ "title": "t".repeat(n) }).to_string().into_bytes();
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        (Method::POST, "/auth/login", "/auth/login".into(), "text/plain", b"x".to_vec(), "", 415),
        (Method::POST, "/auth/login", "/auth/login".into(), json, big.clone(), "", 413),
        (Method::POST, "/auth/login", "/auth/login".into(), json, b"{".to_vec(), "", 400),
        (Method::POST, "/chat/sessions", "/chat/sessions".into(), json, title(0), "admin", 400),
        (Method::POST, "/chat/sessions", "/chat/sessions".into(), json, title(201), "admin", 400),
        (Method::POST, "/chat/sessions", "/chat/sessions".into(), "text/plain", title(5), "admin", 415),
        (Method::POST, "/chat/sessions", "/chat/sessions".into(), json, big.clone(), "admin", 413),
        (Method::POST, "/chat/sessions", "/chat/sessions".into(), json, title(5), "", 401),
        (Method::GET, "/chat/sessions", "/chat/sessions?limit=501".into(), json, vec![], "admin", 400),
        (Method::GET, "/chat/sessions", "/chat/sessions?offset=-1".into(), json, vec![], "admin", 400),
        (Method::GET, "/chat/sessions/{id}", "/chat/sessions/not-a-uuid".into(), json, vec![], "admin", 400),
        (Method::GET, "/chat/sessions/{id}", format!("/chat/sessions/{unknown}"), json, vec![], "admin", 404),
        (Method::PUT, "/chat/sessions/{id}", format!("/chat/sessions/{mine}"), "text/plain", title(5), "admin", 415),
        (Method::PUT, "/chat/sessions/{id}", format!("/chat/sessions/{mine}"), json, title(201), "admin", 400),
        (Method::PUT, "/chat/sessions/{id}", format!("/chat/sessions/{mine}"), json, big.clone(), "admin", 413),
        (Method::DELETE, "/chat/sessions/{id}", "/chat/sessions/not-a-uuid".into(), json, vec![], "admin", 400),
        (Method::GET, "/chat/sessions/{id}/messages", format!("/chat/sessions/{mine}/messages?limit=501"), json, vec![], "admin", 400),
        (Method::GET, "/chat/sessions/{id}/messages", format!("/chat/sessions/{mine}/messages?after_seq=-1"), json, vec![], "admin", 400),
        (Method::GET, "/chat/sessions/{id}/members", format!("/chat/sessions/{mine}/members?limit=501"), json, vec![], "admin", 400),
        (Method::GET, "/chat/sessions/{id}/members", format!("/chat/sessions/{unknown}/members"), json, vec![], "viewer", 404),
        (Method::GET, "/chat/sessions/{id}/members", "/chat/sessions/not-a-uuid/members".into(), json, vec![], "admin", 400),
        (Method::POST, "/chat/sessions/{id}/members", format!("/chat/sessions/{mine}/members"), "text/plain", b"{}".to_vec(), "admin", 415),
        (Method::POST, "/chat/sessions/{id}/members", format!("/chat/sessions/{mine}/members"), json, big.clone(), "admin", 413),
        (Method::POST, "/admin/plugins/{name}/enable", "/admin/plugins/help/enable".into(), json, vec![], "viewer", 403),
        (Method::GET, "/admin/audit", "/admin/audit?limit=501".into(), json, vec![], "admin", 400),
    ];
    for (method, documented, path, content_type, body, who, expected) in cases {
        let token = match who {
            "admin" => admin.token.as_str(),
            "viewer" => viewer.token.as_str(),
            _ => "",
        };
        let (status, answer) = server
            .raw(method.clone(), &path, token, content_type, body)
            .await;
        assert_eq!(status.as_u16(), expected, "{method} {path}: {answer}");
        let declared = &doc["paths"][documented][method.as_str().to_lowercase()]["responses"];
        assert!(
            declared.get(expected.to_string()).is_some(),
            "{method} {documented} answers {expected} but the document does not declare it: {declared}"
        );
    }

    // The limits the document states are the server's own.
    let schemas = &doc["components"]["schemas"];
    let max_title = schemas["CreateSession"]["properties"]["title"]["maxLength"]
        .as_u64()
        .expect("CreateSession.title has a maxLength");
    let at_bound = title(usize::try_from(max_title).unwrap());
    let (status, _) = server
        .raw(Method::POST, "/chat/sessions", &admin.token, json, at_bound)
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a title of maxLength is accepted"
    );
    let limit = doc["paths"]["/chat/sessions"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        .expect("a limit parameter");
    assert_eq!(limit["schema"]["maximum"], 500, "{limit}");
    assert_eq!(limit["schema"]["minimum"], 0, "{limit}");
    let (status, _) = server.get("/chat/sessions?limit=500", &admin.token).await;
    assert_eq!(status, StatusCode::OK, "limit=500 is accepted");
    let id = doc["paths"]["/chat/sessions/{id}"]["get"]["parameters"][0].clone();
    assert_eq!(id["schema"]["format"], "uuid", "{id}");
}
