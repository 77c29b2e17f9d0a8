//! [`crate::host::http`] over the component's `wasi:http/outgoing-handler` import: build the
//! request, send it, wait, read the whole body. The host enforces the allow-list, the
//! request count, the response size and the timeout; this side only speaks the protocol.

use crate::host::http::{Request, Response};
use crate::wit::wasi::http::outgoing_handler;
use crate::wit::wasi::http::types as http;
use crate::wit::wasi::io::streams::StreamError;

/// The most one write to a wasi output stream may carry.
const WRITE_CHUNK: usize = 4096;
const READ_CHUNK: u64 = 64 * 1024;

pub fn send(request: Request) -> Result<Response, String> {
    let target = Target::parse(&request.url)?;
    let headers = http::Fields::new();
    for (name, value) in &request.headers {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| format!("header {name:?}: {e:?}"))?;
    }
    let outgoing = http::OutgoingRequest::new(headers);
    let method = match request.method.as_str() {
        "GET" => http::Method::Get,
        "HEAD" => http::Method::Head,
        "POST" => http::Method::Post,
        "PUT" => http::Method::Put,
        "DELETE" => http::Method::Delete,
        "PATCH" => http::Method::Patch,
        "OPTIONS" => http::Method::Options,
        other => http::Method::Other(other.to_string()),
    };
    let refused = |what: &str| format!("the request's {what} is not valid");
    outgoing
        .set_method(&method)
        .map_err(|()| refused("method"))?;
    outgoing
        .set_scheme(Some(&target.scheme))
        .map_err(|()| refused("scheme"))?;
    outgoing
        .set_authority(Some(&target.authority))
        .map_err(|()| refused("host"))?;
    outgoing
        .set_path_with_query(Some(&target.path))
        .map_err(|()| refused("path"))?;

    // The body is written after `handle`: before it nothing drains the body's buffer.
    let body = outgoing
        .body()
        .map_err(|()| "the request body is unavailable".to_string())?;
    let stream = body
        .write()
        .map_err(|()| "the request body is unavailable".to_string())?;
    let pending = outgoing_handler::handle(outgoing, None).map_err(code)?;
    for chunk in request.body.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| stream_error("writing the request body", e))?;
    }
    drop(stream);
    http::OutgoingBody::finish(body, None).map_err(code)?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(code(e)),
        Some(Err(())) | None => return Err("the response was lost".into()),
    };

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| "the response body is unavailable".to_string())?;
    let mut bytes = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| "the response body is unavailable".to_string())?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error("reading the response body", e)),
            }
        }
    }
    drop(http::IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

/// A wasi:http error code by its WIT name's Rust spelling (`HttpRequestDenied`, …).
fn code(e: http::ErrorCode) -> String {
    let text = format!("{e:?}");
    text.strip_prefix("ErrorCode::")
        .map(str::to_string)
        .unwrap_or(text)
}

fn stream_error(doing: &str, e: StreamError) -> String {
    match e {
        StreamError::Closed => format!("{doing}: the stream closed"),
        StreamError::LastOperationFailed(error) => match http::http_error_code(&error) {
            Some(c) => format!("{doing}: {}", code(c)),
            None => format!("{doing}: {}", error.to_debug_string()),
        },
    }
}

/// The parts of an absolute `http` or `https` URL that wasi:http takes apart.
struct Target {
    scheme: http::Scheme,
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let bad = || format!("{url:?} is not an absolute http or https URL");
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => http::Scheme::Http,
            "https" => http::Scheme::Https,
            _ => return Err(bad()),
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let path = path.split('#').next().unwrap_or_default();
        let path = if path.is_empty() || path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Target {
            scheme,
            authority: authority.to_string(),
            path,
        })
    }
}
