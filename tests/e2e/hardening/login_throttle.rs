//! SPEC D — login throttling (`[auth]`): per-IP attempts (`login_attempts_per_ip`, 20 a
//! minute), per-user-name failures (`login_failures_per_user`, 10 a minute) and the queue
//! of logins waiting to hash (`login_queue`); past any of them, 429 `rate_limited` with an
//! integer `Retry-After`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Backend, Server, Setup, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    bogus_logins_from_one_ip_are_throttled,
    failures_for_one_name_throttle_that_name_from_any_ip,
);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Add a user with the CLI only (no login: that would spend the test's own attempts).
fn add_user(server: &Server, name: &str) {
    let out = server.cli(
        &["user", "add", name, "--role", "viewer", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn login_via(
    server: &Server,
    client: &reqwest::Client,
    name: &str,
    password: &str,
) -> (StatusCode, HeaderMap, Value) {
    server
        .call_via(
            client,
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": name, "password": password})),
        )
        .await
}

/// A 429 as the SPEC says: `rate_limited` and `Retry-After` in whole seconds, ≥ 1.
fn assert_throttled(status: StatusCode, headers: &HeaderMap, body: &Value, context: &str) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{context}: {body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{context}: {body}");
    let retry = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{context}: 429 without Retry-After"));
    assert!(
        retry.parse::<u64>().is_ok_and(|s| s >= 1),
        "{context}: Retry-After {retry:?}"
    );
}

/// 30 bogus logins (distinct unknown names) from 127.0.0.1: past the per-IP budget of 20
/// a minute they are answered 429 with `Retry-After`.
async fn bogus_logins_from_one_ip_are_throttled(backend: Backend) {
    let server = Server::start(backend).await;
    let client = Server::client_from(ip(1));
    let mut statuses = Vec::new();
    for i in 0..30 {
        let (status, headers, body) =
            login_via(&server, &client, &format!("nobody{i}"), "wrong-password").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_throttled(status, &headers, &body, &format!("attempt {i}"));
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}: {body}");
        }
        statuses.push(status.as_u16());
    }
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        throttled >= 5,
        "30 bogus logins from one IP, {throttled} throttled: {statuses:?}"
    );
    assert!(
        statuses[..10].iter().all(|s| *s == 401),
        "the first attempts are answered normally: {statuses:?}"
    );
}

/// 12 wrong passwords for alice from 127.0.0.3: later attempts are refused 429, and so is
/// alice's right password from 127.0.0.4; bob logs in from 127.0.0.4 as usual.
async fn failures_for_one_name_throttle_that_name_from_any_ip(backend: Backend) {
    let server = Server::start(backend).await;
    add_user(&server, "alice");
    add_user(&server, "bob");
    let attacker = Server::client_from(ip(3));
    let mut statuses = Vec::new();
    for i in 0..12 {
        let (status, headers, body) = login_via(&server, &attacker, "alice", "wrong-pass").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_throttled(status, &headers, &body, &format!("failure {i}"));
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "failure {i}: {body}");
        }
        statuses.push(status.as_u16());
    }
    assert!(
        statuses[10..].iter().all(|s| *s == 429),
        "failures past 10 a minute for one name are throttled: {statuses:?}"
    );
    let elsewhere = Server::client_from(ip(4));
    let (status, headers, body) = login_via(&server, &elsewhere, "alice", PASSWORD).await;
    assert_throttled(
        status,
        &headers,
        &body,
        "alice's right password from another IP",
    );
    let (status, _, body) = login_via(&server, &elsewhere, "bob", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another name is not throttled: {body}"
    );
}

/// While ~400 concurrent bogus logins from 127.0.0.1 run, a correct login for another
/// user from 127.0.0.2 succeeds within 5 s: the flood is throttled before it reaches the
/// password hashing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_from_one_ip_does_not_starve_others() {
    const FLOOD: usize = 400;
    let server = Server::start(Backend::Sqlite).await;
    add_user(&server, "carol");
    let flooder = Server::client_from(ip(1));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    for i in 0..FLOOD {
        let (client, url, stop) = (
            flooder.clone(),
            format!("{}/auth/login", server.base),
            stop.clone(),
        );
        flood.push(tokio::spawn(async move {
            // Each worker keeps one bogus login in flight until told to stop.
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 20 {
                let _ = client
                    .post(&url)
                    .json(
                        &json!({"username": format!("ghost{i}-{n}"), "password": "wrong-password"}),
                    )
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await;
                n += 1;
            }
        }));
    }
    // Let the flood get going.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let honest = Server::client_from(ip(2));
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        login_via(&server, &honest, "carol", PASSWORD),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (status, _, body) = answer.unwrap_or_else(|_| {
        panic!(
            "carol's login was not answered within 5 s of a {FLOOD}-login flood ({:?})",
            started.elapsed()
        )
    });
    assert_eq!(status, StatusCode::OK, "{body}");
    for task in flood {
        task.abort();
    }
}

/// `login_queue = 4`: 60 logins at once from 60 addresses (each within its per-IP budget,
/// each for its own name) overflow the queue of logins waiting to hash; the overflow is
/// answered 429 with `Retry-After` at once, the rest normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_past_the_queue_are_refused_429() {
    let server = Setup::new(Backend::Sqlite)
        .set("auth", "login_queue", "4")
        .start()
        .await;
    let server = std::sync::Arc::new(server);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(60));
    let mut tasks = Vec::new();
    for i in 0..60u8 {
        let (server, barrier) = (server.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let client = Server::client_from(ip(10 + i));
            barrier.wait().await;
            login_via(&server, &client, &format!("queued{i}"), "wrong-password").await
        }));
    }
    let mut throttled = 0;
    for task in tasks {
        let (status, headers, body) = task.await.unwrap();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_throttled(status, &headers, &body, "queue overflow");
            throttled += 1;
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        }
    }
    assert!(
        throttled > 0,
        "60 concurrent logins never overflowed a queue of 4"
    );
}
