//! SPEC B — HTTP connections (`[server]`): `header_read_timeout` for slow and silent
//! clients and idle keep-alive connections, `max_connections_per_ip` (503 with
//! `Retry-After` and a `rate_limited` body), and an accept loop that survives running out
//! of file descriptors.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Backend, Launch, Server, Setup};

const LOCAL2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Whether the server has closed `stream`: reads until EOF or an error, up to `within`.
/// Anything the server sends first (a 408, say) is read and dropped.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(within, read).await.is_ok()
}

/// Everything the server sends until it closes (or `within` passes).
async fn read_all(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A client that sends a request line and a header, then one header byte every 300 ms,
/// is closed within `header_read_timeout` (1 s) plus slack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_closed_after_the_header_read_timeout() {
    let server = Setup::new(Backend::Sqlite)
        .set("server", "header_read_timeout", "\"1s\"")
        .start()
        .await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(6) {
        if stream.write_all(b"a").await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut stream, Duration::from_millis(300)).await {
            closed = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    assert!(
        closed,
        "a slowloris client was still connected after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "closed only after {elapsed:?} (header_read_timeout 1s)"
    );
    // Everyone else is still served — on a new connection: the server also closes idle
    // keep-alive connections after header_read_timeout, so the harness's pooled one (from
    // waiting for /readyz) may be gone, and reusing it would be reset.
    let fresh = reqwest::Client::new();
    let (status, _, _) = server
        .call_via(&fresh, Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// A connection that never sends a byte is closed too, and so is a keep-alive connection
/// that goes idle after a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_keep_alive_sockets_are_closed() {
    let server = Setup::new(Backend::Sqlite)
        .set("server", "header_read_timeout", "\"1s\"")
        .start()
        .await;
    let mut silent = TcpStream::connect(server.addr()).await.unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut silent, Duration::from_secs(4)).await,
        "a silent socket was still open after {:?}",
        started.elapsed()
    );

    let mut idle = TcpStream::connect(server.addr()).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let started = Instant::now();
    assert!(
        closed_within(&mut idle, Duration::from_secs(4)).await,
        "an idle keep-alive connection was still open after {:?}",
        started.elapsed()
    );
}

/// `max_connections_per_ip = 8`: the 9th concurrent socket from 127.0.0.1 is answered at
/// once with 503, `Retry-After` and a `rate_limited` body, and closed; 127.0.0.2 is still
/// served; once the eight close, 127.0.0.1 is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_are_capped_with_503() {
    let server = Setup::new(Backend::Sqlite)
        .set("server", "max_connections_per_ip", "8")
        .set("server", "header_read_timeout", "\"10s\"")
        .start()
        .await;
    let addr = server.addr();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Give the server time to accept the eight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ninth = TcpStream::connect(addr).await.unwrap();
    // Not a byte is sent: the answer comes at once, without reading a request.
    let answer = read_all(&mut ninth, Duration::from_secs(3)).await;
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "the 9th connection from one IP got: {answer:?}"
    );
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let retry_after = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("retry-after")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Retry-After in {head:?}"));
    assert!(
        retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
        "Retry-After: {retry_after:?}"
    );
    // The body may be chunked; find the JSON object in it.
    let json_start = body
        .find('{')
        .unwrap_or_else(|| panic!("no JSON body: {body:?}"));
    let json_end = body.rfind('}').unwrap() + 1;
    let parsed: Value = serde_json::from_str(&body[json_start..json_end])
        .unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(parsed["error"]["code"], "rate_limited", "{parsed}");

    let other = Server::client_from(LOCAL2);
    let (status, _, _) = server
        .call_via(&other, Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "another IP is not limited");

    drop(held);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let fresh = reqwest::Client::new();
        let resp = fresh.get(format!("{}/healthz", server.base)).send().await;
        if resp.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "127.0.0.1 was not served again after its connections closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A soft open-file limit of 128 and 140 silent sockets: the server still answers another
/// client at once (200, or 503 while at its cap), serves it properly once the silent
/// sockets time out, and stays alive. `header_read_timeout` and `max_connections_per_ip`
/// keep their defaults (10 s, 256), so today's server fails on the assertions, not on
/// unknown keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_does_not_stop_the_accept_loop() {
    const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    let mut server = Setup::new(Backend::Sqlite)
        .start_with(Launch {
            nofile: Some(128),
            ..Launch::default()
        })
        .await;
    let addr = server.addr();
    let mut silent = Vec::new();
    for _ in 0..140 {
        // The kernel completes connections the server cannot accept (the backlog).
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => silent.push(s),
            _ => break,
        }
    }
    assert!(
        silent.len() >= 128,
        "only {} sockets connected",
        silent.len()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let client = Server::client_from(LOCAL2);
    let first = tokio::time::timeout(
        Duration::from_secs(3),
        client.get(format!("{}/healthz", server.base)).send(),
    )
    .await;
    let first = match first {
        Ok(Ok(resp)) => resp.status(),
        Ok(Err(e)) => panic!("GET /healthz from 127.0.0.2 failed: {e}"),
        Err(_) => panic!("GET /healthz from 127.0.0.2 not answered within 3 s"),
    };
    assert!(
        first == StatusCode::OK || first == StatusCode::SERVICE_UNAVAILABLE,
        "first answer: {first}"
    );
    let deadline = started + HEADER_READ_TIMEOUT + Duration::from_secs(3);
    let mut last = first;
    while last != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "no 200 within header_read_timeout + 3 s (last: {last})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let client = Server::client_from(LOCAL2);
        if let Ok(Ok(resp)) = tokio::time::timeout(
            Duration::from_secs(2),
            client.get(format!("{}/healthz", server.base)).send(),
        )
        .await
        {
            last = resp.status();
        }
    }
    assert!(server.alive(), "the server died");
    drop(silent);
}
