//! The browser chat page: served at `/` from assets embedded in the binary, with a strict
//! Content-Security-Policy, the right content types and revalidation by ETag. (What the page
//! does in a browser is tested by scripts/browser-test.sh.)

use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;

use crate::harness::{Backend, Server};

fn header(res: &reqwest::Response, name: reqwest::header::HeaderName) -> &str {
    res.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_are_served_with_csp() {
    let server = Server::start(Backend::Sqlite).await;
    let http = reqwest::Client::new();

    let res = http.get(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&res, CACHE_CONTROL), "no-cache");
    let csp = header(&res, CONTENT_SECURITY_POLICY).to_string();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(part), "CSP lacks {part}: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let host = server.base.trim_start_matches("http://");
    assert!(csp.contains(&format!("ws://{host}")), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"<script src="/assets/app.js" defer></script>"#));
    assert!(!html.contains("<script>"), "no inline script");

    for (path, content_type) in [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let res = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&res, CONTENT_TYPE), content_type, "{path}");
        assert!(
            res.headers().contains_key(CONTENT_SECURITY_POLICY),
            "{path}"
        );
        let etag = header(&res, ETAG).to_string();
        assert!(!res.bytes().await.unwrap().is_empty(), "{path}");
        let again = http
            .get(format!("{}{path}", server.base))
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }

    // REST routes are untouched: an unknown path is still the JSON 404.
    let res = http
        .get(format!("{}/assets/nope.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
