//! REST sessions: CRUD, paging, isolation between users, bad input, retention.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Backend, Server, Setup, User, Ws};
use crate::on_both_backends;
use crate::support::history;

on_both_backends!(
    crud_and_listing,
    list_paging_edges,
    ended_session_is_read_only,
    messages_paging_and_context,
    foreign_sessions_are_invisible,
    members_read_but_do_not_own,
    bad_input_is_refused,
    text_round_trips_unchanged,
    idle_sessions_are_ended_then_deleted,
);

/// Post `n` messages through a joined socket and wait for their acks.
async fn post_messages(ws: &mut Ws, session: &str, texts: &[String]) {
    for text in texts {
        ws.send(json!({"type": "message", "session_id": session, "content": text}))
            .await;
        let ack = ws.recv_type("ack").await;
        assert!(ack["seq"].as_i64().unwrap() > 0);
    }
}

async fn crud_and_listing(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice", "viewer").await;

    let (status, created) = server
        .post(
            "/chat/sessions",
            &alice.token,
            json!({"title": "First", "metadata": {"topic": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["title"], "First");
    assert_eq!(created["owner_id"], alice.id.as_str());
    assert_eq!(created["status"], "active");
    assert_eq!(created["metadata"], json!({"topic": "x"}));
    assert_eq!(created["ended_at"], Value::Null);
    for field in ["created_at", "updated_at", "last_activity_at"] {
        assert!(created[field].as_str().unwrap().ends_with('Z'), "{field}");
    }

    let (status, got) = server
        .get(&format!("/chat/sessions/{id}"), &alice.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);

    let (status, updated) = server
        .call(
            Method::PUT,
            &format!("/chat/sessions/{id}"),
            Some(&alice.token),
            Some(json!({"title": "Renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["title"], "Renamed");
    assert_eq!(
        updated["metadata"],
        json!({"topic": "x"}),
        "metadata untouched by a title update"
    );
    let (_, updated) = server
        .call(
            Method::PUT,
            &format!("/chat/sessions/{id}"),
            Some(&alice.token),
            Some(json!({"metadata": {"a": 1}})),
        )
        .await;
    assert_eq!(updated["title"], "Renamed");
    assert_eq!(updated["metadata"], json!({"a": 1}));

    // Three more sessions; activity in the oldest moves it to the top of the list.
    let second = server.session(&alice, "Second").await;
    let third = server.session(&alice, "Third").await;
    let (_, list) = server.get("/chat/sessions", &alice.token).await;
    let ids: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [third.as_str(), second.as_str(), id.as_str()]);
    assert_eq!(list["total"], 3);

    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut ws = server.ws(&alice).await;
    ws.join(&id).await;
    post_messages(&mut ws, &id, &["bump".to_string()]).await;
    let (_, list) = server.get("/chat/sessions", &alice.token).await;
    assert_eq!(list["sessions"][0]["id"], id.as_str(), "{list}");

    let (status, ended) = server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["status"], "ended");
    assert!(ended["ended_at"].as_str().is_some());
    // Ending is idempotent and the session is kept.
    let (status, again) = server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["ended_at"], ended["ended_at"]);

    let (_, active) = server
        .get("/chat/sessions?status=active", &alice.token)
        .await;
    assert_eq!(active["total"], 2);
    let (_, ended_list) = server
        .get("/chat/sessions?status=ended", &alice.token)
        .await;
    assert_eq!(ended_list["total"], 1);
    assert_eq!(ended_list["sessions"][0]["id"], id.as_str());
    let (status, body) = server
        .get("/chat/sessions?status=paused", &alice.token)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

async fn list_paging_edges(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice", "viewer").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(server.session(&alice, &format!("s{i}")).await);
    }
    ids.reverse(); // newest first

    let page = |q: &'static str| {
        let server = &server;
        let token = alice.token.clone();
        async move { server.get(&format!("/chat/sessions{q}"), &token).await }
    };
    let (status, body) = page("?limit=2&offset=1").await;
    assert_eq!(status, StatusCode::OK);
    let got: Vec<&str> = body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[1].as_str(), ids[2].as_str()]);
    assert_eq!(body["total"], 5);

    let (status, body) = page("?limit=0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sessions"], json!([]));
    assert_eq!(body["total"], 5);

    let (status, body) = page("?limit=500").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sessions"].as_array().unwrap().len(), 5);

    let (status, body) = page("?offset=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sessions"], json!([]));

    for bad in [
        "?limit=501",
        "?limit=-1",
        "?offset=-1",
        "?limit=abc",
        "?limit=1.5",
    ] {
        let (status, body) = page(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{bad}");
    }
}

async fn ended_session_is_read_only(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice", "viewer").await;
    let bob = server.user("bob", "viewer").await;
    let id = server.session(&alice, "Soon over").await;
    server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{id}"),
            Some(&alice.token),
            None,
        )
        .await;

    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/chat/sessions/{id}"),
            Some(&alice.token),
            Some(json!({"title": "Again"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, _) = server
        .post(
            &format!("/chat/sessions/{id}/members"),
            &alice.token,
            json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Still readable.
    let (status, body) = server
        .get(&format!("/chat/sessions/{id}"), &alice.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["title"], "Soon over");
}

async fn messages_paging_and_context(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice", "viewer").await;
    let id = server.session(&alice, "History").await;
    let mut ws = server.ws(&alice).await;
    ws.join(&id).await;
    let texts: Vec<String> = (1..=12).map(|i| format!("message {i}")).collect();
    post_messages(&mut ws, &id, &texts).await;
    // A command's invocation and reply are stored but are not part of the assistant's context.
    let reply = ws.command(&id, "/help").await;
    assert_eq!(reply["message"]["role"], "command");

    let path = |q: &str| format!("/chat/sessions/{id}/messages{q}");
    let (status, body) = server.get(&path(""), &alice.token).await;
    assert_eq!(status, StatusCode::OK);
    let seqs: Vec<i64> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=14).collect::<Vec<_>>());
    assert_eq!(body["has_more"], false);
    let first = &body["messages"][0];
    assert_eq!(first["content"], "message 1");
    assert_eq!(first["role"], "user");
    assert_eq!(first["user_id"], alice.id.as_str());
    assert_eq!(first["session_id"], id.as_str());
    assert_eq!(first["metadata"], json!({}));

    let (_, body) = server.get(&path("?limit=5"), &alice.token).await;
    assert_eq!(body["messages"].as_array().unwrap().len(), 5);
    assert_eq!(body["has_more"], true);
    let (_, body) = server.get(&path("?limit=5&offset=10"), &alice.token).await;
    let seqs: Vec<i64> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [11, 12, 13, 14]);
    assert_eq!(body["has_more"], false);
    let (_, body) = server
        .get(&path("?after_seq=10&limit=2"), &alice.token)
        .await;
    let seqs: Vec<i64> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [11, 12]);
    assert_eq!(body["has_more"], true);
    let (_, body) = server.get(&path("?after_seq=14"), &alice.token).await;
    assert_eq!(body["messages"], json!([]));
    for bad in ["?limit=501", "?limit=-1", "?after_seq=-1", "?offset=-3"] {
        let (status, _) = server.get(&path(bad), &alice.token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _) = server.get(&path("?limit=500"), &alice.token).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = server
        .get(
            &format!("/chat/sessions/{id}/context?max_messages=3"),
            &alice.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"messages": [
            {"role": "user", "content": "message 10"},
            {"role": "user", "content": "message 11"},
            {"role": "user", "content": "message 12"},
        ]})
    );
    let (_, body) = server
        .get(&format!("/chat/sessions/{id}/context"), &alice.token)
        .await;
    assert_eq!(
        body["messages"].as_array().unwrap().len(),
        12,
        "default max is 20; the command is left out"
    );
    let (status, _) = server
        .get(
            &format!("/chat/sessions/{id}/context?max_messages=501"),
            &alice.token,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn foreign_sessions_are_invisible(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice", "viewer").await;
    let bob = server.user("bob", "admin").await;
    let id = server.session(&alice, "Private").await;

    let not_found = |status: StatusCode, body: &Value, what: &str| {
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{what}");
    };
    let (s, b) = server
        .get(&format!("/chat/sessions/{id}"), &bob.token)
        .await;
    not_found(s, &b, "get");
    let (s, b) = server
        .call(
            Method::PUT,
            &format!("/chat/sessions/{id}"),
            Some(&bob.token),
            Some(json!({"title": "mine"})),
        )
        .await;
    not_found(s, &b, "put");
    let (s, b) = server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{id}"),
            Some(&bob.token),
            None,
        )
        .await;
    not_found(s, &b, "delete");
    let (s, b) = server
        .get(&format!("/chat/sessions/{id}/messages"), &bob.token)
        .await;
    not_found(s, &b, "messages");
    let (s, b) = server
        .get(&format!("/chat/sessions/{id}/context"), &bob.token)
        .await;
    not_found(s, &b, "context");
    let (s, b) = server
        .post(
            &format!("/chat/sessions/{id}/members"),
            &bob.token,
            json!({"user_id": bob.id}),
        )
        .await;
    not_found(s, &b, "members");
    let (s, b) = server
        .get(&format!("/chat/sessions/{id}/members"), &bob.token)
        .await;
    not_found(s, &b, "member list");
    // A missing session looks exactly like a foreign one.
    let missing = "01900000-0000-7000-8000-000000000000";
    let (s, b) = server
        .get(&format!("/chat/sessions/{missing}"), &bob.token)
        .await;
    not_found(s, &b, "missing");
    // A malformed id is a bad request.
    let (s, b) = server.get("/chat/sessions/not-a-uuid", &bob.token).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

    let (_, list) = server.get("/chat/sessions", &bob.token).await;
    assert_eq!(list, json!({"sessions": [], "total": 0}));
    // Nothing changed for the owner.
    let (_, got) = server
        .get(&format!("/chat/sessions/{id}"), &alice.token)
        .await;
    assert_eq!(got["title"], "Private");
    assert_eq!(got["status"], "active");
}

async fn members_read_but_do_not_own(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice", "viewer").await;
    let bob = server.user("bob", "viewer").await;
    let id = server.session(&alice, "Shared").await;
    let mut ws = server.ws(&alice).await;
    ws.join(&id).await;
    post_messages(&mut ws, &id, &["hello bob".to_string()]).await;

    let (status, body) = server
        .post(
            &format!("/chat/sessions/{id}/members"),
            &alice.token,
            json!({"username": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["id"], bob.id.as_str());
    // Adding twice is harmless; unknown users and the owner are refused.
    let (status, _) = server
        .post(
            &format!("/chat/sessions/{id}/members"),
            &alice.token,
            json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server
        .post(
            &format!("/chat/sessions/{id}/members"),
            &alice.token,
            json!({"username": "nobody"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .post(
            &format!("/chat/sessions/{id}/members"),
            &alice.token,
            json!({"user_id": alice.id}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server
        .post(
            &format!("/chat/sessions/{id}/members"),
            &alice.token,
            json!({"user_id": bob.id, "username": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, list) = server.get("/chat/sessions", &bob.token).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["sessions"][0]["id"], id.as_str());
    let messages = history(&server, &id, &bob.token).await;
    assert_eq!(messages[0]["content"], "hello bob");

    // A member sees who is in the session: the owner first, names and roles.
    let (status, people) = server
        .get(&format!("/chat/sessions/{id}/members"), &bob.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{people}");
    assert_eq!(
        people,
        json!({"session_id": id, "total": 2, "members": [
            {"id": alice.id, "name": "alice", "role": "viewer", "relation": "owner"},
            {"id": bob.id, "name": "bob", "role": "viewer", "relation": "member"},
        ]})
    );
    let (_, page) = server
        .get(
            &format!("/chat/sessions/{id}/members?limit=1&offset=1"),
            &alice.token,
        )
        .await;
    assert_eq!(page["total"], 2);
    assert_eq!(
        page["members"],
        json!([{"id": bob.id, "name": "bob", "role": "viewer", "relation": "member"}])
    );

    // The list shows where each session is: its newest message, cut to 160 characters.
    let summary = &list["sessions"][0];
    assert_eq!(summary["last_seq"], 1, "{summary}");
    let last = &summary["last_message"];
    assert_eq!(last["seq"], 1, "{summary}");
    assert_eq!(last["role"], "user");
    assert_eq!(last["user_id"], alice.id.as_str());
    assert_eq!(last["user_name"], "alice");
    assert_eq!(last["preview"], "hello bob");
    assert_eq!(last["truncated"], false);
    let long = "é".repeat(150) + &"x".repeat(50);
    post_messages(&mut ws, &id, std::slice::from_ref(&long)).await;
    let (_, list) = server.get("/chat/sessions", &bob.token).await;
    let last = &list["sessions"][0]["last_message"];
    assert_eq!(list["sessions"][0]["last_seq"], 2);
    assert_eq!(last["preview"], long.chars().take(160).collect::<String>());
    assert_eq!(last["truncated"], true);
    let empty = server.session(&bob, "Nothing yet").await;
    let (_, list) = server.get("/chat/sessions", &bob.token).await;
    let listed = list["sessions"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["id"] == empty.as_str()))
        .expect("the new session is listed");
    assert_eq!(listed["last_message"], Value::Null, "{listed}");
    assert_eq!(listed["last_seq"], 0);

    // Members may not rename, end or invite.
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/chat/sessions/{id}"),
            Some(&bob.token),
            Some(json!({"title": "bob's"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{id}"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .post(
            &format!("/chat/sessions/{id}/members"),
            &bob.token,
            json!({"username": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn bad_input_is_refused(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice", "viewer").await;
    let raw = |body: &str, ct: &str| {
        let (server, token, body, ct) = (
            &server,
            alice.token.clone(),
            body.to_string(),
            ct.to_string(),
        );
        async move {
            server
                .raw(
                    Method::POST,
                    "/chat/sessions",
                    &token,
                    &ct,
                    body.into_bytes(),
                )
                .await
        }
    };
    let cases: Vec<(&str, &str, StatusCode, &str)> = vec![
        (
            "{\"title\":",
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        ("[]", "application/json", StatusCode::BAD_REQUEST, "array"),
        (
            "{\"title\": 5}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "wrong type",
        ),
        (
            "{}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "missing title",
        ),
        (
            "{\"title\":\"x\",\"owner_id\":\"me\"}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            "{\"title\":\"x\",\"metadata\":[1]}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "metadata not an object",
        ),
        (
            "{\"title\":\"   \"}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "blank title",
        ),
        (
            "{\"title\":\"a\\u0000b\"}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "control characters",
        ),
        (
            "{\"title\":\"x\"}",
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type",
        ),
    ];
    for (body, ct, want, what) in cases {
        let (status, resp) = raw(body, ct).await;
        assert_eq!(status, want, "{what}: {resp}");
        assert_eq!(resp["error"]["code"], "bad_request", "{what}: {resp}");
        assert!(
            !resp["error"]["message"].as_str().unwrap().is_empty(),
            "{what}"
        );
    }
    // Titles: 200 characters is the documented limit (counted in characters, not bytes).
    let (status, _) = server
        .post(
            "/chat/sessions",
            &alice.token,
            json!({"title": "é".repeat(200)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = server
        .post(
            "/chat/sessions",
            &alice.token,
            json!({"title": "t".repeat(201)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .post(
            "/chat/sessions",
            &alice.token,
            json!({"title": "t".repeat(10 * 1024)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("200"));
    // Metadata has a size limit too.
    let (status, _) = server
        .post(
            "/chat/sessions",
            &alice.token,
            json!({"title": "m", "metadata": {"blob": "x".repeat(20_000)}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A body over the 64 KiB limit.
    let (status, body) = raw(
        &format!("{{\"title\":\"{}\"}}", "x".repeat(70 * 1024)),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    // Empty update and unknown routes.
    let id = server.session(&alice, "ok").await;
    let (status, _) = server
        .call(
            Method::PUT,
            &format!("/chat/sessions/{id}"),
            Some(&alice.token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = server.get("/chat/nowhere", &alice.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    // Nothing above created a session by accident.
    let (_, list) = server.get("/chat/sessions", &alice.token).await;
    assert_eq!(list["total"], 2);
}

async fn text_round_trips_unchanged(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice", "viewer").await;
    let tricky = [
        "Robert'); DROP TABLE sessions;--",
        "\" OR 1=1 -- ' ; \\ % _ $1 ?",
        "日本語のタイトル 🚀 émoji ñ",
        "<script>alert(1)</script>",
    ];
    for title in tricky {
        let (status, created) = server
            .post(
                "/chat/sessions",
                &alice.token,
                json!({"title": title, "metadata": {"note": title}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let id = created["id"].as_str().unwrap();
        let (_, got) = server
            .get(&format!("/chat/sessions/{id}"), &alice.token)
            .await;
        assert_eq!(got["title"], title);
        assert_eq!(got["metadata"]["note"], title);
        let mut ws = server.ws(&alice).await;
        ws.join(id).await;
        post_messages(&mut ws, id, &[title.to_string()]).await;
        let messages = history(&server, id, &alice.token).await;
        assert_eq!(messages[0]["content"], title);
    }
    let (_, list) = server.get("/chat/sessions", &alice.token).await;
    assert_eq!(list["total"], tricky.len());
}

async fn idle_sessions_are_ended_then_deleted(backend: Backend) {
    let server = Setup::new(backend)
        .set("sessions", "idle_retention", "\"1s\"")
        .set("sessions", "sweep_interval", "\"200ms\"")
        .start()
        .await;
    let alice: User = server.user("alice", "viewer").await;
    let id = server.session(&alice, "Fleeting").await;
    let mut ws = server.ws(&alice).await;
    ws.join(&id).await;
    // Idle past retention: ended, and the joined participant is told.
    let ended = ws.recv_type("session_ended").await;
    assert_eq!(ended["session_id"], id.as_str());
    let (status, body) = server
        .get(&format!("/chat/sessions/{id}"), &alice.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ended");
    // Ended past retention: deleted.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = server
            .get(&format!("/chat/sessions/{id}"), &alice.token)
            .await;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "session was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
