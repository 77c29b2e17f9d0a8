//! WebSocket protocol v1 (docs/protocol.md) against the real binary, one module per topic:
//! fan-out to every tab in `seq` order, typing, presence and `session_ended` (`fanout`);
//! concurrent posters and recovery with `since_seq` (`ordering`); bad input and protocol
//! abuse — bad frames, binary, invalid UTF-8, oversized frames, flooding (`bad_input`); auth
//! and token expiry (`auth`); per-user and per-connection limits and slow consumers
//! (`limits`); graceful shutdown (`shutdown`). How single frames decode is the unit table in
//! `host/src/protocol/frames.rs`; these tests prove the wire path and what needs a server.

mod auth;
mod bad_input;
mod fanout;
mod limits;
mod ordering;
mod shutdown;

use std::collections::HashSet;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::{Closed, Ws, WAIT};
use crate::support::usable;

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Reader = SplitStream<WsStream>;
type Writer = SplitSink<WsStream, Message>;

fn text(frame: Value) -> Message {
    Message::text(frame.to_string())
}

fn post_frame(session: &str, content: &str, id: Value) -> Value {
    json!({"type": "message", "session_id": session, "content": content, "id": id})
}

/// The next JSON text frame of a split reader; panics on close, error or after [`WAIT`].
async fn next_json(reader: &mut Reader) -> Value {
    let read = async {
        loop {
            match reader.next().await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str::<Value>(&t).expect("server sent JSON")
                }
                Some(Ok(Message::Close(frame))) => {
                    panic!("connection closed while reading: {frame:?}")
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("read error: {e}"),
                None => panic!("connection ended while reading"),
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("no frame within WAIT")
}

/// How long [`frames_until_close`] waits for the server to end a connection.
const CLOSE_WAIT: Duration = Duration::from_secs(25);

/// Every text frame until the connection ends, and how it ended; panics after [`CLOSE_WAIT`].
async fn frames_until_close(ws: &mut Ws) -> (Vec<Value>, Closed) {
    ws.frames_until_close(CLOSE_WAIT)
        .await
        .expect("connection did not close")
}

/// Assert an `error` frame: its code, the echoed `id` (or none), a message, nothing else.
fn assert_error(frame: &Value, code: &str, id: Option<&Value>, context: &str) {
    assert_eq!(frame["type"], "error", "{context} → {frame}");
    assert_eq!(frame["code"], code, "{context} → {frame}");
    assert_eq!(frame.get("id"), id, "{context} → {frame}");
    assert!(
        frame["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{context}: error without a message: {frame}"
    );
    let keys: HashSet<&str> = frame
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        keys.is_subset(&HashSet::from(["type", "code", "message", "id"])),
        "{frame}"
    );
}

/// Send raw text, expect an `error` with `code` (and `id` echoed when given), then prove the
/// connection is still usable.
async fn refused(ws: &mut Ws, raw: &str, code: &str, id: Option<Value>) {
    ws.send_text(raw).await;
    let answer = ws.recv().await;
    let context: String = raw.chars().take(200).collect();
    assert_error(&answer, code, id.as_ref(), &context);
    usable(ws).await;
}

/// The `seq` of each message.
fn seqs(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect()
}
