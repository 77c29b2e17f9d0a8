//! The README's WebSocket clients (`examples/clients`), run as a reader would run them,
//! against a real server: each joins a session, posts, and sees its own message come back.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::harness::{Backend, Server};
use crate::support::history;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The python that has `websockets` (and `ws` installed for node), from
/// `scripts/client-examples.sh`, once per test process. Panics if it cannot install them:
/// the test fails, it is never skipped.
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new(root().join("scripts/client-examples.sh"))
            .output()
            .expect("run scripts/client-examples.sh");
        assert!(
            out.status.success(),
            "scripts/client-examples.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

#[test]
fn the_readme_shows_the_example_clients_as_they_are() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    for file in ["chat.mjs", "chat.py"] {
        let source = std::fs::read_to_string(root().join("examples/clients").join(file))
            .expect("example client");
        assert!(
            readme.contains(&source),
            "README.md must show examples/clients/{file} verbatim"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_clients_post_and_see_their_message() {
    let python = python();
    let server = Server::start(Backend::Sqlite).await;
    let ann = server.user("ann", "viewer").await;
    let session = server.session(&ann, "from the readme").await;
    let clients: [(&str, &str, &str); 2] = [
        ("node", "chat.mjs", "hello from javascript"),
        (python, "chat.py", "hello from python"),
    ];
    for (runtime, file, text) in clients {
        let out = tokio::task::spawn_blocking({
            let (runtime, session, token, url) = (
                runtime.to_string(),
                session.clone(),
                ann.token.clone(),
                server.ws_url.clone(),
            );
            let dir = root().join("examples/clients");
            move || {
                Command::new(runtime)
                    .arg(file)
                    .args([session.as_str(), text])
                    .current_dir(dir)
                    .env("CHAT_URL", url)
                    .env("CHAT_TOKEN", token)
                    .output()
                    .expect("run the example client")
            }
        })
        .await
        .expect("client task");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let types: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(
            types,
            ["ready", "joined", "ack", "message"],
            "{file}: {stdout}"
        );
    }
    let stored: Vec<String> = history(&server, &session, &ann.token)
        .await
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(stored, ["hello from javascript", "hello from python"]);
}

/// The TypeScript client (`clients/ts`), from its lockfile, once per test process.
fn typescript_client() -> PathBuf {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let dir = root().join("clients/ts");
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent"])
                .current_dir(&dir)
                .output()
                .expect("run npm ci in clients/ts");
            assert!(
                out.status.success(),
                "npm ci in clients/ts failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            dir
        })
        .clone()
}

/// The client's frame types are what its generator makes of the server's AsyncAPI document.
#[test]
fn the_typescript_client_types_are_generated_from_the_asyncapi_document() {
    let dir = root().join("clients/ts");
    let mut child = Command::new("node")
        .args(["scripts/gen-frames.mjs", "-"])
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run gen-frames.mjs");
    let doc = slashd::protocol::asyncapi::document().to_string();
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), doc.as_bytes())
        .expect("write the document");
    let out = child.wait_with_output().expect("gen-frames.mjs");
    assert!(out.status.success(), "gen-frames.mjs failed");
    let committed = std::fs::read_to_string(dir.join("src/frames.ts")).expect("src/frames.ts");
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "clients/ts/src/frames.ts is stale: with a server on :8080, `(cd clients/ts && npm run gen)`"
    );
}

/// `clients/ts`'s own tests (node's test runner) against a real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_client_passes_its_tests_against_a_real_server() {
    let dir = tokio::task::spawn_blocking(typescript_client)
        .await
        .expect("install");
    let server = Server::start(Backend::Sqlite).await;
    let ann = server.user("ann", "viewer").await;
    let bob = server.user("bob", "analyst").await;
    let session = server.session(&ann, "typed client").await;
    let (status, body) = server
        .post(
            &format!("/chat/sessions/{session}/members"),
            &ann.token,
            serde_json::json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{body}");
    let out = tokio::task::spawn_blocking({
        let (url, ann, bob, session) = (
            server.base.clone(),
            ann.token.clone(),
            bob.token.clone(),
            session.clone(),
        );
        move || {
            Command::new("npm")
                .args(["test", "--silent"])
                .current_dir(dir)
                .env("SLASHD_URL", url)
                .env("ANN_TOKEN", ann)
                .env("BOB_TOKEN", bob)
                .env("SESSION_ID", session)
                .output()
                .expect("run npm test in clients/ts")
        }
    })
    .await
    .expect("npm test");
    assert!(
        out.status.success(),
        "clients/ts tests failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
