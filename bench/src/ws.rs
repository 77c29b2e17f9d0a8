//! WebSocket client helpers. Hot paths look at frames with string scans rather than a JSON
//! parse, so the client spends as little of the shared CPU as it can.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::server::User;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long setup steps wait for an expected frame.
pub const WAIT: Duration = Duration::from_secs(20);

/// Open a WebSocket, with a bearer token on the upgrade when given.
pub async fn connect(url: &str, token: Option<&str>) -> anyhow::Result<Ws> {
    let mut req = url.into_client_request()?;
    if let Some(token) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config()), true)
        .await
        .with_context(|| format!("connect {url}"))?;
    Ok(ws)
}

/// The clients' (and the echo floor's) WebSocket settings: reads of 8 KiB, as slashd's own
/// (`realtime/mod.rs`). tungstenite zero-fills its whole read buffer (128 KiB by default)
/// before every read, which cost the fan-out client 39 % of its CPU in memset — and client
/// and server share the cores.
pub fn config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024)
}

/// Connect with a token and wait for `ready`.
pub async fn connect_ready(url: &str, token: &str) -> anyhow::Result<Ws> {
    let mut ws = connect(url, Some(token)).await?;
    let ready = recv_type(&mut ws, "ready").await?;
    drop(ready);
    Ok(ws)
}

/// Join a session and wait for `joined`.
pub async fn join(ws: &mut Ws, session: &str) -> anyhow::Result<()> {
    use futures_util::SinkExt;
    ws.send(Message::text(format!(
        r#"{{"type":"join","session_id":"{session}"}}"#
    )))
    .await?;
    recv_type(ws, "joined").await?;
    Ok(())
}

/// Open `n` authenticated connections (users taken in turn), `batch` at a time, optionally
/// joining a session on each.
pub async fn open_many(
    urls: &[String],
    users: &[User],
    n: usize,
    batch: usize,
    session: Option<&str>,
) -> Vec<anyhow::Result<Ws>> {
    futures_util::stream::iter(0..n)
        .map(|i| {
            let token = users[i % users.len()].token.clone();
            let url = urls[i % urls.len()].clone();
            let session = session.map(str::to_string);
            async move {
                let mut ws = connect_ready(&url, &token).await?;
                if let Some(session) = session {
                    join(&mut ws, &session).await?;
                }
                Ok(ws)
            }
        })
        .buffer_unordered(batch.max(1))
        .collect()
        .await
}

/// The next text frame; control frames are skipped (tungstenite answers pings itself).
pub async fn next_text(ws: &mut Ws) -> anyhow::Result<Utf8Bytes> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Close(frame))) => bail!("server closed the connection: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

/// Skip frames until one of type `ty` arrives (within [`WAIT`]); an `error` frame fails.
pub async fn recv_type(ws: &mut Ws, ty: &str) -> anyhow::Result<Utf8Bytes> {
    let wait = async {
        loop {
            let text = next_text(ws).await?;
            match frame_type(&text) {
                Some(t) if t == ty => return Ok(text),
                Some("error") => bail!("expected {ty}, got {}", text.as_str()),
                _ => continue,
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .map_err(|_| anyhow!("no {ty} frame within {WAIT:?}"))?
}

/// The `type` of a server frame: slashd always writes it first.
pub fn frame_type(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    rest.split('"').next()
}

/// The marker the fan-out poster puts in its content: `b <index> <sent-at ns>`.
pub fn bench_marker(text: &str) -> Option<(usize, u64)> {
    const KEY: &str = r#""content":"b "#;
    let at = text.find(KEY)? + KEY.len();
    let rest = &text[at..];
    let end = rest.find('"')?;
    let mut parts = rest[..end].split(' ');
    let index = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((index, sent))
}

/// The string value of the first `"key":"…"` in a frame (no unescaping: for ids and
/// codes the server writes, which never need escapes).
pub fn str_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(r#""{key}":""#);
    let at = text.find(&pat)? + pat.len();
    let rest = &text[at..];
    Some(&rest[..rest.find('"')?])
}

/// The integer value of the first `"key":123` in a frame.
/// An `ack` frame's `id` (a number), `message_id` and `seq`.
pub fn ack_fields(text: &str) -> Option<(i64, &str, i64)> {
    Some((
        int_field(text, "id")?,
        str_field(text, "message_id")?,
        int_field(text, "seq")?,
    ))
}

pub fn int_field(text: &str, key: &str) -> Option<i64> {
    let pat = format!(r#""{key}":"#);
    let at = text.find(&pat)? + pat.len();
    let rest = &text[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_frames() {
        assert_eq!(frame_type(r#"{"type":"pong","id":1}"#), Some("pong"));
        assert_eq!(frame_type(r#"{"id":1}"#), None);
        let msg = r#"{"type":"message","session_id":"s","message":{"id":"m","seq":3,"role":"user","content":"b 12 345","metadata":{}}}"#;
        assert_eq!(bench_marker(msg), Some((12, 345)));
        assert_eq!(
            bench_marker(r#"{"type":"message","content":"b end"}"#),
            None
        );
        let ack = r#"{"type":"ack","id":"m12","message_id":"abc","seq":41}"#;
        assert_eq!(str_field(ack, "id"), Some("m12"));
        assert_eq!(str_field(ack, "message_id"), Some("abc"));
        assert_eq!(int_field(ack, "seq"), Some(41));
        assert_eq!(int_field(ack, "nope"), None);
    }
}
