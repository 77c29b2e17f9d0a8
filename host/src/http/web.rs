//! The browser chat page at `/`. Its built assets (`web/dist`, built from `web/` with npm
//! and checked in) are embedded in the binary, so neither building nor serving needs npm or
//! the network.
//!
//! Every response carries a strict Content-Security-Policy: scripts and styles only from this
//! origin (no inline script or style), connections only to this origin over HTTP and
//! WebSocket, no framing, no plugins. Assets are revalidated on every load (`no-cache`) and
//! answered with `304 Not Modified` when the browser's ETag still matches, so a new binary
//! never serves a stale page.

use std::sync::LazyLock;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::state::AppState;

struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    etag: LazyLock<HeaderValue>,
}

macro_rules! asset {
    ($file:literal, $content_type:literal) => {
        Asset {
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/dist/", $file)),
            content_type: $content_type,
            etag: LazyLock::new(|| {
                etag(include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../web/dist/",
                    $file
                )))
            }),
        }
    };
}

static INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");
static APP_JS: Asset = asset!("app.js", "text/javascript; charset=utf-8");
static APP_CSS: Asset = asset!("app.css", "text/css; charset=utf-8");
static ICON: Asset = asset!("icon.svg", "image/svg+xml");

fn etag(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
        .expect("hex is a valid header value")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|req: Request| async move { serve(&INDEX, &req) }))
        .route(
            "/assets/app.js",
            get(|req: Request| async move { serve(&APP_JS, &req) }),
        )
        .route(
            "/assets/app.css",
            get(|req: Request| async move { serve(&APP_CSS, &req) }),
        )
        .route(
            "/assets/icon.svg",
            get(|req: Request| async move { serve(&ICON, &req) }),
        )
}

fn serve(asset: &'static Asset, req: &Request) -> Response {
    let etag = &*asset.etag;
    let headers = req.headers();
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag.to_str().unwrap_or_default()
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let out = response.headers_mut();
    out.insert(header::ETAG, etag.clone());
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::CONTENT_SECURITY_POLICY, csp(headers));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    out.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

const CSP_SELF_ONLY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                             img-src 'self'; base-uri 'none'; form-action 'self'; \
                             frame-ancestors 'none'; connect-src 'self'";

/// The policy, with `connect-src` naming this origin's WebSocket URLs. CSP level 3 lets
/// `'self'` cover `ws:`/`wss:` to the same host, but older browsers need them spelled out;
/// the host comes from the request and is used only if it looks like a host name.
fn csp(headers: &HeaderMap) -> HeaderValue {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
    let connect = match host {
        Some(h) => format!("connect-src 'self' ws://{h} wss://{h}"),
        None => "connect-src 'self'".to_string(),
    };
    HeaderValue::from_str(&format!("{CSP}; {connect}"))
        .unwrap_or_else(|_| HeaderValue::from_static(CSP_SELF_ONLY))
}
