//! Login, tokens, and every way a token can be wrong.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{fixture, now_secs, Backend, Server, Setup, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    login_ok_and_failures,
    cli_issued_token_works,
    token_attacks_are_refused,
    database_role_and_status_win_over_the_token,
    issuer_and_audience_are_checked,
    external_identity_provider_rs256,
    external_identity_provider_eddsa_with_auto_provision,
    refused_auth_is_logged,
);

async fn login_ok_and_failures(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice", "analyst").await;

    let (status, body) = server
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["user"],
        json!({"id": alice.id, "name": "alice", "role": "analyst"})
    );
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    let (status, _) = server
        .get("/chat/sessions", body["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);

    for (name, password) in [("alice", "wrong-password"), ("nobody", PASSWORD), ("", "")] {
        let (status, body) = server
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"username": name, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(body["error"]["message"], "invalid username or password");
    }

    let out = server.cli(&["user", "disable", "alice"], None);
    assert!(out.status.success());
    let (status, body) = server
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    // The token issued before the account was disabled stops working too.
    let (status, _) = server.get("/chat/sessions", &alice.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Malformed login bodies are bad requests, not crashes.
    let (status, body) = server
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "alice"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
}

async fn cli_issued_token_works(backend: Backend) {
    let server = Server::start(backend).await;
    let bob = server.user("bob", "viewer").await;
    let out = server.cli(&["token", "issue", "bob", "--ttl", "10m"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let claims = decode_claims(&token);
    assert_eq!(claims["sub"], bob.id.as_str());
    assert_eq!(claims["role"], "viewer");
    let ttl = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(ttl, 600);
    let (status, body) = server.get("/chat/sessions", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let out = server.cli(&["token", "issue", "nobody"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named"));
}

fn decode_claims(token: &str) -> Value {
    use base64_payload::decode;
    serde_json::from_slice(&decode(token.split('.').nth(1).unwrap())).unwrap()
}

/// Minimal base64url decoding for reading (never trusting) a token's payload in tests.
mod base64_payload {
    pub fn decode(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bits = 0u32;
        let mut n = 0;
        let mut out = Vec::new();
        for c in text.bytes() {
            let v = ALPHABET.iter().position(|&a| a == c).expect("base64url") as u32;
            bits = (bits << 6) | v;
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
            }
        }
        out
    }

    pub fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
}

fn claims(user_id: &str, role: &str) -> Value {
    let now = now_secs();
    json!({"sub": user_id, "name": "x", "role": role, "iat": now, "exp": now + 600})
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// A token with `alg: none` and no signature.
fn unsigned(claims: &Value) -> String {
    let header = base64_payload::encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64_payload::encode(claims.to_string().as_bytes());
    format!("{header}.{payload}.")
}

async fn assert_refused(server: &Server, token: &str, why: &str) {
    let (status, body) = server.get("/chat/sessions", token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{why}");
}

async fn token_attacks_are_refused(backend: Backend) {
    let server = Server::start(backend).await;
    let carol = server.user("carol", "viewer").await;
    let good = Server::forge(&claims(&carol.id, "viewer"));
    let (status, _) = server.get("/chat/sessions", &good).await;
    assert_eq!(status, StatusCode::OK, "the control token must work");

    let now = now_secs();
    assert_refused(&server, &unsigned(&claims(&carol.id, "admin")), "alg none").await;
    let mut expired = claims(&carol.id, "viewer");
    expired["exp"] = json!(now - 10);
    assert_refused(
        &server,
        &Server::forge(&expired),
        "expired beyond the 5 s leeway",
    )
    .await;
    let mut future = claims(&carol.id, "viewer");
    future["nbf"] = json!(now + 60);
    assert_refused(&server, &Server::forge(&future), "nbf in the future").await;
    assert_refused(
        &server,
        &hs256(
            &claims(&carol.id, "viewer"),
            b"some-other-secret-of-enough-length!!",
        ),
        "wrong secret",
    )
    .await;
    assert_refused(
        &server,
        &Server::forge(&claims(&carol.id, "root")),
        "role root",
    )
    .await;
    let mut no_role = claims(&carol.id, "viewer");
    no_role.as_object_mut().unwrap().remove("role");
    assert_refused(&server, &Server::forge(&no_role), "no role").await;
    let mut no_sub = claims(&carol.id, "viewer");
    no_sub.as_object_mut().unwrap().remove("sub");
    assert_refused(&server, &Server::forge(&no_sub), "missing sub").await;
    let mut no_exp = claims(&carol.id, "viewer");
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_refused(&server, &Server::forge(&no_exp), "missing exp").await;
    assert_refused(
        &server,
        &Server::forge(&claims("00000000-0000-0000-0000-000000000000", "viewer")),
        "unknown sub",
    )
    .await;
    assert_refused(&server, "garbage", "garbage").await;
    assert_refused(&server, "a.b.c", "three garbage parts").await;
    // An empty bearer, and no header at all.
    let (status, body) = server
        .call(Method::GET, "/chat/sessions", Some(""), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = server.call(Method::GET, "/chat/sessions", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
}

async fn database_role_and_status_win_over_the_token(backend: Backend) {
    let server = Server::start(backend).await;
    let dave = server.user("dave", "admin").await;
    let out = server.cli(&["user", "set-role", "dave", "viewer"], None);
    assert!(out.status.success());
    // The old token still says admin; the connection reports the database's role.
    let mut ws = server.ws_with_header(Some(&dave.token)).await;
    let ready = ws.recv().await;
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["user"]["role"], "viewer", "{ready}");
    // A token claiming a higher role than the database's does not grant it either.
    let forged = Server::forge(&claims(&dave.id, "admin"));
    let mut ws = server.ws_with_header(Some(&forged)).await;
    assert_eq!(ws.recv().await["user"]["role"], "viewer");
}

async fn issuer_and_audience_are_checked(backend: Backend) {
    let server = Setup::new(backend)
        .set("auth", "issuer", "\"https://id.example\"")
        .set("auth", "audience", "\"slashd\"")
        .start()
        .await;
    let erin = server.user("erin", "viewer").await;
    // Tokens the server issues itself carry the configured iss/aud.
    let (status, _) = server.get("/chat/sessions", &erin.token).await;
    assert_eq!(status, StatusCode::OK);
    let with = |iss: Option<&str>, aud: Option<&str>| {
        let mut c = claims(&erin.id, "viewer");
        if let Some(iss) = iss {
            c["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            c["aud"] = json!(aud);
        }
        Server::forge(&c)
    };
    let (status, _) = server
        .get(
            "/chat/sessions",
            &with(Some("https://id.example"), Some("slashd")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_refused(
        &server,
        &with(Some("https://evil.example"), Some("slashd")),
        "wrong iss",
    )
    .await;
    assert_refused(
        &server,
        &with(Some("https://id.example"), Some("other")),
        "wrong aud",
    )
    .await;
    assert_refused(&server, &with(None, Some("slashd")), "missing iss").await;
    assert_refused(
        &server,
        &with(Some("https://id.example"), None),
        "missing aud",
    )
    .await;
}

fn rs256(claims: &Value) -> String {
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        claims,
        &key,
    )
    .unwrap()
}

async fn external_identity_provider_rs256(backend: Backend) {
    let public = fixture("rsa_public.pem");
    let server = Setup::new(backend)
        .unset("auth", "jwt_secret")
        .set("auth", "public_key_pem", &format!("{public:?}"))
        .start()
        .await;
    // The first admin exists (bootstrap) but local login is off: the IdP issues tokens.
    let (status, body) = server
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "admin", "password": "whatever-123"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let out = server.cli(
        &[
            "user",
            "add",
            "frank",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        Some("password-123\n"),
    );
    assert!(out.status.success());
    let users = String::from_utf8(server.cli(&["user", "list"], None).stdout).unwrap();
    let frank_id = users
        .lines()
        .find(|l| l.starts_with("frank"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();

    let (status, body) = server
        .get("/chat/sessions", &rs256(&claims(&frank_id, "analyst")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Key confusion: HS256 signed with the RSA public key as the secret.
    assert_refused(
        &server,
        &hs256(&claims(&frank_id, "analyst"), public.as_bytes()),
        "HS256 with the public key",
    )
    .await;
    assert_refused(
        &server,
        &unsigned(&claims(&frank_id, "analyst")),
        "alg none",
    )
    .await;
    // Unknown subject without auto-provisioning.
    assert_refused(
        &server,
        &rs256(&claims("external-user-1", "viewer")),
        "unknown sub",
    )
    .await;
}

async fn external_identity_provider_eddsa_with_auto_provision(backend: Backend) {
    let public = fixture("ed25519_public.pem");
    let server = Setup::new(backend)
        .unset("auth", "jwt_secret")
        .set("auth", "public_key_pem", &format!("{public:?}"))
        .set("auth", "auto_provision", "true")
        .start()
        .await;
    let key =
        jsonwebtoken::EncodingKey::from_ed_pem(fixture("ed25519_private.pem").as_bytes()).unwrap();
    let mut c = claims("idp|grace", "analyst");
    c["name"] = json!("grace");
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &c,
        &key,
    )
    .unwrap();
    let mut ws = server.ws_with_header(Some(&token)).await;
    let ready = ws.recv().await;
    assert_eq!(
        ready["user"],
        json!({"id": "idp|grace", "name": "grace", "role": "analyst"}),
        "{ready}"
    );
    let users = String::from_utf8(server.cli(&["user", "list"], None).stdout).unwrap();
    assert!(
        users
            .lines()
            .any(|l| l.starts_with("grace") && l.contains("analyst")),
        "{users}"
    );
    // Provisioning still validates the role claim.
    let mut bad = claims("idp|mallory", "root");
    bad["name"] = json!("mallory");
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &bad,
        &key,
    )
    .unwrap();
    assert_refused(&server, &token, "provisioning with role root").await;
}

async fn refused_auth_is_logged(backend: Backend) {
    let server = Server::start(backend).await;
    assert_refused(&server, "garbage", "garbage").await;
    let found = server
        .wait_for_log(|l| {
            l["target"] == "slashd::auth"
                && l["fields"]["message"] == "token refused"
                && l["fields"]["reason"] == "token is malformed"
        })
        .await;
    assert!(
        found,
        "no structured refusal line in:\n{}",
        server.logs_text()
    );
}
